//! Request parsing (`Request::parse`, what the server runs on every frame a
//! client sends) and the client's `ServerMsg::parse` on arbitrary payloads:
//! never panics; a request that parses serializes and parses back to itself;
//! a refused one is `bad_request`, and the id it recovers (if any) is the
//! payload's own `id`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use qchat_protocol::{ErrorCode, Request, ServerMsg};

fuzz_target!(|data: &[u8]| {
    match Request::parse(data) {
        Ok(req) => {
            let _ = req.op.name();
            let bytes = serde_json::to_vec(&req).expect("a parsed request serializes");
            let again = Request::parse(&bytes).expect("a serialized request parses");
            assert_eq!(again, req, "round trip changed the request");
        }
        Err(e) => {
            assert_eq!(e.error.code, ErrorCode::BadRequest);
            if let (Some(id), Ok(v)) = (e.id, serde_json::from_slice::<serde_json::Value>(data)) {
                assert_eq!(v["id"].as_u64(), Some(id), "recovered a wrong id");
            }
        }
    }
    let _ = ServerMsg::parse(data);
});

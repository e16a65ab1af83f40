//! File-stream headers: the 4-byte length (at most `MAX_STREAM_HEADER_LEN`)
//! and the JSON payload, through `stream_header_len` and
//! `decode_stream_header`, which the server uses for upload headers and the
//! client for download headers. Never panics; a header that parses
//! serializes and parses back to itself.

#![no_main]

use libfuzzer_sys::fuzz_target;
use qchat_protocol::{
    DownloadHeader, MAX_STREAM_HEADER_LEN, UploadHeader, decode_stream_header, stream_header_len,
};
use serde::{Serialize, de::DeserializeOwned};

/// What both sides do with the first bytes of a file stream: the protocol
/// crate's own prefix check and decoder, as the server and client call them.
fn read_header<T: DeserializeOwned>(data: &[u8]) -> Option<T> {
    let prefix: [u8; 4] = data.get(..4)?.try_into().ok()?;
    let len = stream_header_len(prefix).ok()?;
    assert!(len <= MAX_STREAM_HEADER_LEN);
    decode_stream_header(data.get(4..4 + len)?).ok()
}

fn round_trip<T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug>(h: &T) {
    let bytes = serde_json::to_vec(h).expect("a parsed header serializes");
    let again: T = serde_json::from_slice(&bytes).expect("a serialized header parses");
    assert_eq!(&again, h);
}

fuzz_target!(|data: &[u8]| {
    if let Some(h) = read_header::<UploadHeader>(data) {
        round_trip(&h);
    }
    if let Some(h) = read_header::<DownloadHeader>(data) {
        round_trip(&h);
    }
});

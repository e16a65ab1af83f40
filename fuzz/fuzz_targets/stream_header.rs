//! File-stream headers: the 4-byte length (at most `MAX_STREAM_HEADER_LEN`)
//! and the JSON payload, as the server reads an upload header and the
//! client reads a download header. Never panics; a header that parses
//! serializes and parses back to itself.

#![no_main]

use libfuzzer_sys::fuzz_target;
use qchat_protocol::{DownloadHeader, MAX_STREAM_HEADER_LEN, UploadHeader};
use serde::{Serialize, de::DeserializeOwned};

/// What both sides do with the first bytes of a file stream.
fn read_header<T: DeserializeOwned>(data: &[u8]) -> Option<T> {
    let len = u32::from_be_bytes(data.get(..4)?.try_into().ok()?) as usize;
    if len > MAX_STREAM_HEADER_LEN {
        return None;
    }
    serde_json::from_slice(data.get(4..4 + len)?).ok()
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

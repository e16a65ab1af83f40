//! Frame codec: a 4-byte big-endian payload length, then the payload (one JSON
//! object). Pure functions over [`BytesMut`]; the optional `tokio` feature
//! adds the one async reader, `FrameReader`, which fills a buffer from a
//! stream and leaves every rule to [`decode_frame`].

use bytes::{Buf, BufMut, Bytes, BytesMut};
use serde::Serialize;

use crate::limits::{FRAME_HEADER_LEN, MAX_FRAME_LEN};

/// Why bytes could not be decoded as a frame. Either way the stream cannot be
/// resynchronised, so the connection is closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The declared length exceeds [`MAX_FRAME_LEN`].
    #[error("frame of {0} bytes exceeds the limit of {MAX_FRAME_LEN}")]
    TooLarge(usize),
}

/// Why a value could not be encoded as a frame.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// The encoded payload exceeds [`MAX_FRAME_LEN`].
    #[error("payload of {0} bytes exceeds the frame limit of {MAX_FRAME_LEN}")]
    TooLarge(usize),
    /// The value could not be serialized to JSON.
    #[error("serializing frame: {0}")]
    Json(#[from] serde_json::Error),
}

/// Appends one frame carrying `payload` to `dst`.
///
/// # Errors
/// [`EncodeError::TooLarge`] when `payload` exceeds [`MAX_FRAME_LEN`].
pub fn encode_frame(payload: &[u8], dst: &mut BytesMut) -> Result<(), EncodeError> {
    if payload.len() > MAX_FRAME_LEN {
        return Err(EncodeError::TooLarge(payload.len()));
    }
    dst.reserve(FRAME_HEADER_LEN + payload.len());
    // Cannot truncate: MAX_FRAME_LEN < u32::MAX.
    dst.put_u32(payload.len() as u32);
    dst.put_slice(payload);
    Ok(())
}

/// Serializes `value` to JSON and returns the complete frame (header included),
/// ready to be written as is, or shared between many receivers.
///
/// # Errors
/// [`EncodeError`] when serialization fails or the result is too large.
pub fn encode_json<T: Serialize + ?Sized>(value: &T) -> Result<Bytes, EncodeError> {
    let mut buf = BytesMut::with_capacity(128);
    buf.put_u32(0);
    serde_json::to_writer((&mut buf).writer(), value)?;
    let len = buf.len() - FRAME_HEADER_LEN;
    if len > MAX_FRAME_LEN {
        return Err(EncodeError::TooLarge(len));
    }
    buf[..FRAME_HEADER_LEN].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(buf.freeze())
}

/// Takes one complete frame's payload off the front of `src`.
///
/// Returns `Ok(None)` when more bytes are needed; `src` is then left untouched
/// (apart from reserving room for the announced frame, never more than the
/// limit). The length is checked before any allocation.
///
/// # Errors
/// [`DecodeError::TooLarge`] when the header announces more than [`MAX_FRAME_LEN`].
pub fn decode_frame(src: &mut BytesMut) -> Result<Option<Bytes>, DecodeError> {
    if src.len() < FRAME_HEADER_LEN {
        return Ok(None);
    }
    let mut header = [0u8; FRAME_HEADER_LEN];
    header.copy_from_slice(&src[..FRAME_HEADER_LEN]);
    let len = u32::from_be_bytes(header) as usize;
    if len > MAX_FRAME_LEN {
        return Err(DecodeError::TooLarge(len));
    }
    let total = FRAME_HEADER_LEN + len;
    if src.len() < total {
        src.reserve(total - src.len());
        return Ok(None);
    }
    src.advance(FRAME_HEADER_LEN);
    Ok(Some(src.split_to(len).freeze()))
}

#[cfg(feature = "tokio")]
mod reader;
#[cfg(feature = "tokio")]
pub use reader::{FrameReader, ReadFrameError};

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trip_and_partial() {
        let mut buf = BytesMut::new();
        encode_frame(b"{\"a\":1}", &mut buf).expect("fits");
        encode_frame(b"", &mut buf).expect("fits");
        let whole = buf.clone();
        for cut in 0..whole.len() {
            let mut part = BytesMut::from(&whole[..cut]);
            let first = decode_frame(&mut part).expect("no error");
            if cut < 4 + 7 {
                assert_eq!(first, None, "cut at {cut}");
                assert_eq!(&part[..], &whole[..cut], "untouched at {cut}");
            } else {
                assert_eq!(first.as_deref(), Some(&b"{\"a\":1}"[..]));
            }
        }
        assert_eq!(decode_frame(&mut buf).expect("ok").as_deref(), Some(&b"{\"a\":1}"[..]));
        assert_eq!(decode_frame(&mut buf).expect("ok").as_deref(), Some(&b""[..]));
        assert_eq!(decode_frame(&mut buf).expect("ok"), None);
    }

    #[test]
    fn oversized_header_rejected_before_allocation() {
        let mut buf = BytesMut::from(&u32::MAX.to_be_bytes()[..]);
        assert_eq!(decode_frame(&mut buf), Err(DecodeError::TooLarge(u32::MAX as usize)));
        assert!(buf.capacity() < 1024, "nothing reserved for a hostile length");
        let mut at_limit = BytesMut::new();
        at_limit.put_u32(MAX_FRAME_LEN as u32);
        assert_eq!(decode_frame(&mut at_limit), Ok(None));
        let mut over = BytesMut::new();
        over.put_u32(MAX_FRAME_LEN as u32 + 1);
        assert!(decode_frame(&mut over).is_err());
    }

    #[test]
    fn encode_refuses_oversized() {
        let big = vec![b'x'; MAX_FRAME_LEN + 1];
        assert!(matches!(encode_frame(&big, &mut BytesMut::new()), Err(EncodeError::TooLarge(_))));
        let s = "y".repeat(MAX_FRAME_LEN);
        assert!(matches!(encode_json(&s), Err(EncodeError::TooLarge(_))));
    }

    #[test]
    fn encode_json_has_header() {
        let frame = encode_json(&serde_json::json!({"ping": true})).expect("encodes");
        let mut buf = BytesMut::from(&frame[..]);
        let payload = decode_frame(&mut buf).expect("ok").expect("complete");
        assert_eq!(&payload[..], br#"{"ping":true}"#);
    }

    proptest! {
        #[test]
        fn any_payloads_round_trip(payloads in proptest::collection::vec(
            proptest::collection::vec(any::<u8>(), 0..2048), 0..8)) {
            let mut buf = BytesMut::new();
            for p in &payloads {
                encode_frame(p, &mut buf).expect("fits");
            }
            for p in &payloads {
                let got = decode_frame(&mut buf).expect("ok").expect("complete");
                prop_assert_eq!(&got[..], &p[..]);
            }
            prop_assert!(buf.is_empty());
        }

        /// Proptest twin of the `frame_decoder` fuzz target: frames split
        /// at any read sizes decode to the same frames as in one piece.
        #[test]
        fn any_split_gives_the_same_frames(
            payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..6),
            chunk in 1usize..64,
        ) {
            let mut whole = BytesMut::new();
            for p in &payloads {
                encode_frame(p, &mut whole).expect("fits");
            }
            let mut buf = BytesMut::new();
            let mut got = Vec::new();
            for piece in whole.chunks(chunk) {
                buf.extend_from_slice(piece);
                while let Some(f) = decode_frame(&mut buf).expect("valid") {
                    got.push(f.to_vec());
                }
            }
            prop_assert_eq!(got, payloads);
            prop_assert!(buf.is_empty());
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
            let mut buf = BytesMut::from(&bytes[..]);
            // Decode until an error or a need for more: must terminate, never panic.
            for _ in 0..bytes.len() + 1 {
                match decode_frame(&mut buf) {
                    Ok(Some(_)) => continue,
                    Ok(None) | Err(_) => break,
                }
            }
        }
    }
}

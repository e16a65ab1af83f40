//! The control-stream frame decoder (`decode_frame`) on arbitrary bytes,
//! arriving in arbitrary read sizes: never panics, never allocates for a
//! hostile length, gives the same frames however the bytes are split, and
//! the frames it returns re-encode to exactly the bytes it consumed.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use qchat_protocol::{DecodeError, FRAME_HEADER_LEN, MAX_FRAME_LEN, decode_frame, encode_frame};

/// Frames decoded, bytes consumed, and the error that stopped decoding.
type Outcome = (Vec<Vec<u8>>, usize, Option<DecodeError>);

fn decode_all(bytes: &[u8], chunk: usize) -> Outcome {
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let mut consumed = 0;
    for piece in bytes.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            let before = buf.len();
            match decode_frame(&mut buf) {
                Ok(Some(frame)) => {
                    assert!(frame.len() <= MAX_FRAME_LEN, "frame over the limit");
                    assert_eq!(before - buf.len(), FRAME_HEADER_LEN + frame.len());
                    consumed += FRAME_HEADER_LEN + frame.len();
                    frames.push(frame.to_vec());
                }
                Ok(None) => {
                    assert_eq!(buf.len(), before, "need-more leaves the bytes alone");
                    assert!(
                        buf.capacity() <= 2 * (FRAME_HEADER_LEN + MAX_FRAME_LEN) + bytes.len(),
                        "reserved {} bytes",
                        buf.capacity()
                    );
                    break;
                }
                Err(e) => {
                    assert!(matches!(e, DecodeError::TooLarge(n) if n > MAX_FRAME_LEN));
                    return (frames, consumed, Some(e));
                }
            }
        }
    }
    (frames, consumed, None)
}

fuzz_target!(|data: &[u8]| {
    // The first byte picks the read size (1 to 256 bytes), like a stream.
    let Some((&chunk, rest)) = data.split_first() else { return };
    let whole = decode_all(rest, rest.len().max(1));
    let pieces = decode_all(rest, usize::from(chunk) + 1);
    assert_eq!(whole, pieces, "the split changed the frames");
    let (frames, consumed, _) = whole;
    let mut again = BytesMut::new();
    for f in &frames {
        encode_frame(f, &mut again).expect("a decoded frame fits");
    }
    assert_eq!(&again[..], &rest[..consumed], "re-encoding differs");
});

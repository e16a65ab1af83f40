//! The one async frame reader: [`decode_frame`] over a buffer that reads
//! from any tokio [`AsyncRead`] fill (a quinn `RecvStream` in practice, an
//! in-memory pipe in tests). The rules stay in [`decode_frame`]; this only
//! moves bytes, so the server, the client, the tests and the benchmarks all
//! read frames the same way.

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt as _};

use super::{DecodeError, decode_frame};

/// Why [`FrameReader::next`] could not return a frame. Either way the
/// stream cannot be read on.
#[derive(Debug, thiserror::Error)]
pub enum ReadFrameError {
    /// The peer broke the frame rules (a length over the limit).
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The stream failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Reads length-prefixed frames from `R`.
///
/// Cancel-safe: a [`next`](Self::next) or [`fill`](Self::fill) dropped
/// before it completes (a `select!` took another branch) loses nothing,
/// because what was read is in the reader's buffer.
#[derive(Debug)]
pub struct FrameReader<R> {
    inner: R,
    buf: BytesMut,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// Frames of `inner`, with a buffer of `capacity` bytes to start with
    /// (it grows to the announced frame, never past the frame limit).
    pub fn with_capacity(inner: R, capacity: usize) -> Self {
        Self { inner, buf: BytesMut::with_capacity(capacity) }
    }

    /// The next frame's payload, reading as needed; `Ok(None)` once the
    /// stream has ended (bytes of an unfinished frame are dropped then).
    ///
    /// # Errors
    /// [`ReadFrameError::Decode`] for a frame over the limit,
    /// [`ReadFrameError::Io`] when the stream fails.
    pub async fn next(&mut self) -> Result<Option<Bytes>, ReadFrameError> {
        loop {
            if let Some(frame) = self.buffered()? {
                return Ok(Some(frame));
            }
            if self.fill().await? == 0 {
                return Ok(None);
            }
        }
    }

    /// The next frame's payload if all its bytes are buffered already;
    /// never reads. With [`fill`](Self::fill), for a caller that does other
    /// work between reads.
    ///
    /// # Errors
    /// [`DecodeError`] for a frame over the limit.
    pub fn buffered(&mut self) -> Result<Option<Bytes>, DecodeError> {
        decode_frame(&mut self.buf)
    }

    /// Reads once into the buffer; the bytes read, `0` at the end of the
    /// stream.
    ///
    /// # Errors
    /// When the stream fails.
    pub async fn fill(&mut self) -> std::io::Result<usize> {
        self.inner.read_buf(&mut self.buf).await
    }
}

#[cfg(test)]
mod tests {
    use bytes::BufMut as _;
    use tokio::io::AsyncWriteExt as _;

    use super::*;
    use crate::{MAX_FRAME_LEN, encode_frame};

    #[tokio::test]
    async fn frames_split_across_reads_come_whole_then_the_end() {
        let mut wire = BytesMut::new();
        for payload in [&b"{\"a\":1}"[..], b"", b"{\"b\":2}"] {
            encode_frame(payload, &mut wire).expect("fits");
        }
        let (mut tx, rx) = tokio::io::duplex(3);
        let writer = tokio::spawn(async move {
            // Three bytes at a time: every frame arrives in pieces.
            tx.write_all(&wire).await.expect("write");
        });
        let mut reader = FrameReader::with_capacity(rx, 0);
        assert_eq!(reader.next().await.expect("a").as_deref(), Some(&b"{\"a\":1}"[..]));
        assert_eq!(reader.next().await.expect("empty").as_deref(), Some(&b""[..]));
        assert_eq!(reader.next().await.expect("b").as_deref(), Some(&b"{\"b\":2}"[..]));
        writer.await.expect("writer");
        assert!(reader.next().await.expect("end").is_none());
    }

    #[tokio::test]
    async fn an_unfinished_frame_at_the_end_is_the_end() {
        let mut wire = BytesMut::new();
        encode_frame(b"{\"a\":1}", &mut wire).expect("fits");
        let mut reader = FrameReader::with_capacity(&wire[..5], 16);
        assert!(reader.next().await.expect("end").is_none());
    }

    #[tokio::test]
    async fn a_length_over_the_limit_is_refused_before_its_bytes() {
        let mut wire = BytesMut::new();
        wire.put_u32(MAX_FRAME_LEN as u32 + 1);
        let mut reader = FrameReader::with_capacity(&wire[..], 16);
        let got = reader.next().await;
        assert!(matches!(got, Err(ReadFrameError::Decode(DecodeError::TooLarge(_)))), "{got:?}");
    }

    #[tokio::test]
    async fn buffered_never_reads_and_fill_reads_once() {
        let mut wire = BytesMut::new();
        encode_frame(b"xy", &mut wire).expect("fits");
        let mut reader = FrameReader::with_capacity(&wire[..], 16);
        assert_eq!(reader.buffered(), Ok(None), "nothing read yet");
        assert_eq!(reader.fill().await.expect("read"), wire.len());
        assert_eq!(reader.buffered().expect("ok").as_deref(), Some(&b"xy"[..]));
        assert_eq!(reader.fill().await.expect("end"), 0);
    }
}

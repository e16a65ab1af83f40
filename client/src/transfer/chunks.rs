//! Reading a file for a QUIC stream: a chunk at a time on the blocking
//! pool, straight into the buffer that becomes the stream's [`Bytes`] (no
//! copy on the way to quinn), hashed while it is in the cache.
//!
//! quinn holds each chunk until the peer has acknowledged it. The buffers
//! are kept track of and reused once quinn has let go, instead of a fresh
//! allocation per chunk: with several uploads at once, fresh 1 MiB buffers
//! made a new `qchat upload` process take about 300 MB of page faults
//! (pages the kernel maps and zeroes) per GiB sent.

use std::collections::VecDeque;
use std::io;

use bytes::Bytes;

/// Buffers lent to the stream and watched for reuse. A stream's flow
/// control window (2 MiB by default) keeps two or three 1 MiB chunks in
/// flight; one or two more are kept back for reuse.
const LENT: usize = 4;

/// A file read as a stream of chunks, optionally hashed (BLAKE3) on the way.
#[derive(Debug)]
pub struct FileChunks {
    /// `None` only while a read is on the blocking pool, or after a read's
    /// future was dropped (the reader is then spent).
    file: Option<std::fs::File>,
    hasher: Option<blake3::Hasher>,
    /// Clones of the chunks handed out, oldest first.
    lent: VecDeque<Bytes>,
}

impl FileChunks {
    /// Reads `file` from its current position; `hasher`, if given, takes
    /// every byte read.
    pub fn new(file: std::fs::File, hasher: Option<blake3::Hasher>) -> Self {
        Self { file: Some(file), hasher, lent: VecDeque::with_capacity(LENT) }
    }

    /// The next chunk of at most `want` bytes (fewer only at the end of the
    /// file; empty at its end).
    pub async fn next(&mut self, want: usize) -> io::Result<Bytes> {
        let file =
            self.file.take().ok_or_else(|| io::Error::other("an earlier read was cut off"))?;
        let mut buf = self.reusable(want).unwrap_or_default();
        buf.reserve_exact(want);
        let mut hasher = self.hasher.take();
        let (file, buf, hasher) = tokio::task::spawn_blocking(move || {
            use std::io::Read as _;
            // `take` + `read_to_end` reads into the spare capacity without
            // zeroing it first, and retries short reads.
            let read = (&file).take(want as u64).read_to_end(&mut buf);
            if let (Some(h), Ok(_)) = (&mut hasher, &read) {
                h.update(&buf);
            }
            (file, read.map(|_| buf), hasher)
        })
        .await
        .map_err(io::Error::other)?;
        self.file = Some(file);
        self.hasher = hasher;
        let chunk = Bytes::from(buf?);
        if !chunk.is_empty() {
            if self.lent.len() == LENT {
                self.lent.pop_front();
            }
            self.lent.push_back(chunk.clone());
        }
        Ok(chunk)
    }

    /// The hasher, with every byte read so far.
    pub fn into_hasher(self) -> Option<blake3::Hasher> {
        self.hasher
    }

    /// An emptied buffer of at least `want` bytes that nobody else holds
    /// any more.
    fn reusable(&mut self, want: usize) -> Option<Vec<u8>> {
        let i = self.lent.iter().position(Bytes::is_unique)?;
        let chunk = self.lent.remove(i)?;
        // Unique: the buffer comes back without a copy.
        let mut buf = Vec::from(chunk);
        buf.clear();
        (buf.capacity() >= want).then_some(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_of(len: usize) -> io::Result<(tempfile::NamedTempFile, Vec<u8>)> {
        let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        let mut f = tempfile::NamedTempFile::new()?;
        io::Write::write_all(&mut f, &data)?;
        Ok((f, data))
    }

    #[tokio::test]
    async fn chunks_cover_the_file_and_hash_it() -> io::Result<()> {
        let (f, data) = file_of(2_500_000)?;
        let mut chunks = FileChunks::new(f.reopen()?, Some(blake3::Hasher::new()));
        let mut got = Vec::new();
        let mut lens = Vec::new();
        loop {
            let chunk = chunks.next(1 << 20).await?;
            if chunk.is_empty() {
                break;
            }
            lens.push(chunk.len());
            got.extend_from_slice(&chunk);
        }
        assert_eq!(lens, [1 << 20, 1 << 20, 2_500_000 - (2 << 20)]);
        assert_eq!(got, data);
        let hasher = chunks.into_hasher().ok_or_else(|| io::Error::other("no hasher"))?;
        assert_eq!(hasher.finalize(), blake3::hash(&data));
        Ok(())
    }

    #[tokio::test]
    async fn a_buffer_is_reused_only_once_let_go() -> io::Result<()> {
        let (f, data) = file_of(4 * 1024)?;
        let mut chunks = FileChunks::new(f.reopen()?, None);
        let first = chunks.next(1024).await?;
        let first_at = first.as_ptr();
        // Still held (as quinn holds an unacknowledged chunk): a new buffer.
        let second = chunks.next(1024).await?;
        assert_ne!(second.as_ptr(), first_at);
        drop(first);
        // Let go: its buffer comes back, with the next bytes in it.
        let third = chunks.next(1024).await?;
        assert_eq!(third.as_ptr(), first_at);
        assert_eq!(&third[..], &data[2048..3072]);
        assert_eq!(&second[..], &data[1024..2048]);
        Ok(())
    }
}

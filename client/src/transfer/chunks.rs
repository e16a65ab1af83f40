//! Reading a file for a QUIC stream: a chunk at a time on the blocking
//! pool, straight into the buffer that becomes the stream's [`Bytes`] (no
//! copy on the way to quinn), hashed while it is in the cache. An upload
//! reads one chunk ahead ([`FileChunks::next_ahead`]), so the reading and
//! hashing of the next chunk overlap the sending of this one.
//!
//! quinn holds each chunk until the peer has acknowledged it. The buffers
//! are kept track of and reused once quinn has let go, instead of a fresh
//! allocation per chunk: with several uploads at once, fresh 1 MiB buffers
//! made a new `qchat upload` process take about 300 MB of page faults
//! (pages the kernel maps and zeroes) per GiB sent.

use std::collections::VecDeque;
use std::io;

use bytes::Bytes;
use tokio::task::JoinHandle;

/// Buffers lent to the stream and watched for reuse. A stream's flow
/// control window (2 MiB by default) keeps two or three 1 MiB chunks in
/// flight; one or two more are kept back for reuse (one more while a read
/// ahead holds its buffer).
const LENT: usize = 4;

/// A file read as a stream of chunks, optionally hashed (BLAKE3) on the way.
#[derive(Debug)]
pub struct FileChunks {
    /// The file and hasher while no read is on the blocking pool; `None`
    /// while one is, or after a read failed or its task was lost (the
    /// reader is then spent).
    reader: Option<Reader>,
    /// The read started ahead (see [`FileChunks::next_ahead`]), with the
    /// number of bytes it asked for. A started blocking read cannot be cut
    /// off: the exits the caller controls wait for it ([`FileChunks::close`]).
    /// Dropped with one pending (a cancelled upload), the read runs on
    /// detached, bounded by one chunk: it holds only a read-only handle of
    /// the file, its buffer and a hash whose result nobody takes, and lets
    /// them go when it ends.
    ahead: Option<(usize, JoinHandle<Read>)>,
    /// Clones of the chunks handed out, oldest first.
    lent: VecDeque<Bytes>,
}

/// What a read needs and gives back: the file and the running hash.
#[derive(Debug)]
struct Reader {
    file: std::fs::File,
    hasher: Option<blake3::Hasher>,
}

/// A finished read: the reader back, and the bytes (or why not).
type Read = (Reader, io::Result<Vec<u8>>);

impl FileChunks {
    /// Reads `file` from its current position; `hasher`, if given, takes
    /// every byte read.
    pub fn new(file: std::fs::File, hasher: Option<blake3::Hasher>) -> Self {
        Self {
            reader: Some(Reader { file, hasher }),
            ahead: None,
            lent: VecDeque::with_capacity(LENT + 1),
        }
    }

    /// The next chunk of at most `want` bytes (fewer only at the end of the
    /// file; empty at its end).
    pub async fn next(&mut self, want: usize) -> io::Result<Bytes> {
        self.next_ahead(want, 0).await
    }

    /// As [`FileChunks::next`], and starts reading the `ahead` bytes after
    /// the chunk on the blocking pool at once (none when 0), so that they
    /// are read and hashed while the caller sends this chunk; the next call
    /// must then ask for exactly `ahead` bytes.
    ///
    /// With one read always under way, the sender never waits for the disk
    /// and the hash between two chunks: the read of chunk k + 1 runs while
    /// chunk k waits for flow-control credit and goes out.
    pub async fn next_ahead(&mut self, want: usize, ahead: usize) -> io::Result<Bytes> {
        let handle = match self.ahead.take() {
            Some((asked, handle)) if asked == want => handle,
            Some((asked, handle)) => {
                // A caller bug; the reader is let go once the read under
                // way has ended (a started read runs to completion: one
                // chunk).
                drop(handle.await);
                return Err(io::Error::other(format!(
                    "read ahead {asked} bytes but {want} were asked for"
                )));
            }
            None => self.start(want)?,
        };
        let (reader, read) = handle.await.map_err(io::Error::other)?;
        self.reader = Some(reader);
        let chunk = Bytes::from(read?);
        if !chunk.is_empty() {
            if self.lent.len() > LENT {
                self.lent.pop_front();
            }
            self.lent.push_back(chunk.clone());
        }
        if ahead > 0 && !chunk.is_empty() {
            self.ahead = Some((ahead, self.start(ahead)?));
        }
        Ok(chunk)
    }

    /// Starts reading (and hashing) the next `want` bytes on the blocking
    /// pool.
    fn start(&mut self, want: usize) -> io::Result<JoinHandle<Read>> {
        let Reader { file, mut hasher } =
            self.reader.take().ok_or_else(|| io::Error::other("an earlier read was cut off"))?;
        let mut buf = self.reusable(want).unwrap_or_default();
        buf.reserve_exact(want);
        Ok(tokio::task::spawn_blocking(move || {
            use std::io::Read as _;
            // `take` + `read_to_end` reads into the spare capacity without
            // zeroing it first, and retries short reads.
            let read = (&file).take(want as u64).read_to_end(&mut buf);
            if let (Some(h), Ok(_)) = (&mut hasher, &read) {
                h.update(&buf);
            }
            (Reader { file, hasher }, read.map(|_| buf))
        }))
    }

    /// The hasher, with every byte read so far (a read started ahead is
    /// waited for first).
    pub async fn into_hasher(mut self) -> Option<blake3::Hasher> {
        if let Some((_, handle)) = self.ahead.take() {
            let (reader, _) = handle.await.ok()?;
            return reader.hasher;
        }
        self.reader.and_then(|r| r.hasher)
    }

    /// Ends the reading: waits for a read started ahead (it cannot be cut
    /// off; it reads one chunk at most), then lets the file go. For the
    /// exits before the end of the file, so that no read outlives them.
    pub async fn close(mut self) {
        if let Some((_, handle)) = self.ahead.take() {
            drop(handle.await);
        }
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
        let hasher = chunks.into_hasher().await.ok_or_else(|| io::Error::other("no hasher"))?;
        assert_eq!(hasher.finalize(), blake3::hash(&data));
        Ok(())
    }

    #[tokio::test]
    async fn reading_ahead_covers_the_file_and_hashes_it_in_order() -> io::Result<()> {
        let (f, data) = file_of(2_500_000)?;
        let mut chunks = FileChunks::new(f.reopen()?, Some(blake3::Hasher::new()));
        let chunk = 1 << 20;
        let mut got = Vec::new();
        let mut left = data.len();
        while left > 0 {
            let want = left.min(chunk);
            let ahead = (left - want).min(chunk);
            let piece = chunks.next_ahead(want, ahead).await?;
            assert_eq!(piece.len(), want);
            got.extend_from_slice(&piece);
            left -= want;
        }
        assert_eq!(got, data);
        let hasher = chunks.into_hasher().await.ok_or_else(|| io::Error::other("no hasher"))?;
        assert_eq!(hasher.finalize(), blake3::hash(&data));
        Ok(())
    }

    #[tokio::test]
    async fn a_read_ahead_of_another_size_is_refused() -> io::Result<()> {
        let (f, _) = file_of(4 * 1024)?;
        let mut chunks = FileChunks::new(f.reopen()?, Some(blake3::Hasher::new()));
        assert_eq!(chunks.next_ahead(1024, 1024).await?.len(), 1024);
        assert!(chunks.next_ahead(2048, 0).await.is_err());
        // The reader went with the read it let go.
        assert!(chunks.next(1024).await.is_err());
        Ok(())
    }

    #[tokio::test]
    async fn the_hasher_waits_for_a_read_ahead() -> io::Result<()> {
        let (f, data) = file_of(3 * 1024)?;
        let mut chunks = FileChunks::new(f.reopen()?, Some(blake3::Hasher::new()));
        chunks.next_ahead(1024, 2048).await?;
        let hasher = chunks.into_hasher().await.ok_or_else(|| io::Error::other("no hasher"))?;
        assert_eq!(hasher.finalize(), blake3::hash(&data), "the bytes read ahead are in");
        Ok(())
    }

    #[tokio::test]
    async fn close_waits_for_a_read_ahead() -> io::Result<()> {
        let (f, _) = file_of(3 * 1024)?;
        let mut chunks = FileChunks::new(f.reopen()?, Some(blake3::Hasher::new()));
        chunks.next_ahead(1024, 2048).await?;
        let (_, handle) = chunks.ahead.as_ref().ok_or_else(|| io::Error::other("no read"))?;
        let watch = handle.abort_handle();
        chunks.close().await;
        assert!(watch.is_finished(), "the read ahead ended before close returned");
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

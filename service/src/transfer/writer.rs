//! Hashing and writing an upload's bytes beside the network, not in its way.
//!
//! QUIC hands the upload task its bytes a packet at a time (about 1.2 KB).
//! BLAKE3 hashes such pieces one 64-byte block after another; it is only fast
//! (SIMD across many 1 KiB chunks at once) on long contiguous input. So the
//! pieces are gathered into batches of about [`BATCH`] bytes, and each batch
//! goes to the upload's write lane: a task that, one batch after another and
//! each on the blocking pool, copies the batch into one aligned buffer,
//! hashes it and writes it to the partial file. Batches end on [`ALIGN`]
//! boundaries of the file, so every batch but a resumed upload's first and
//! the file's last is written without the page cache ([`super::direct`]).
//!
//! The receive loop waits only when [`DEPTH`] batches of its upload are
//! queued, or when the server-wide write-behind budget ([`WriteBudget`]) is
//! spent: a direct write's time varies with the disk (0.4 to several ms per
//! MiB here), and with one batch of slack the loop stopped reading at every
//! slow write, which stalled the sender once the 2 MiB stream window was
//! full (a third of a 1 GiB upload's time was spent so).
//!
//! Where the file system refuses direct writes, the page cache holds what
//! was written until the final fsync, which then has the whole file to
//! write out while the client waits. So then every [`SYNC_EVERY`] bytes a
//! background `fdatasync` (on a clone of the file handle, at most one at a
//! time) pushes what is there to the disk while more arrives, and the final
//! fsync only has the tail left.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::JoinHandle;

use super::direct::{ALIGN, AlignedBuf, PartFile};

/// Bytes gathered before a batch goes to the disk (a multiple of [`ALIGN`]).
const BATCH: usize = 1024 * 1024;
/// Batches of one upload queued for its write lane at most (the server-wide
/// [`WriteBudget`] bounds them all together).
const DEPTH: usize = 8;
/// Bytes written between background syncs, when writes are buffered.
const SYNC_EVERY: u64 = 32 * 1024 * 1024;

/// Server-wide bound on the bytes received but not yet written, across all
/// uploads: each queued batch (at most [`BATCH`], 1 MiB) holds one permit.
#[derive(Debug, Clone)]
pub(crate) struct WriteBudget(Arc<Semaphore>);

impl WriteBudget {
    /// A budget of `mib` batches of at most 1 MiB (at least one).
    pub(crate) fn new(mib: usize) -> Self {
        Self(Arc::new(Semaphore::new(mib.max(1))))
    }
}

/// The BLAKE3 of a file's first bytes (its head, what hash-later begins are
/// matched by), built as the bytes pass instead of read back afterwards.
#[derive(Debug)]
pub(crate) struct HeadHasher {
    hasher: blake3::Hasher,
    /// Head bytes still to come.
    left: u64,
}

impl HeadHasher {
    /// A hasher for a head of `len` bytes (none seen yet).
    pub(crate) fn new(len: u64) -> Self {
        Self::continuing(blake3::Hasher::new(), len)
    }

    /// A hasher that has seen the head's first bytes (`hasher`), with `left`
    /// bytes of the head still to come.
    pub(crate) fn continuing(hasher: blake3::Hasher, left: u64) -> Self {
        Self { hasher, left }
    }

    /// Takes the next bytes of the file; those past the head are ignored.
    pub(crate) fn update(&mut self, data: &[u8]) {
        let n = usize::try_from(self.left).unwrap_or(usize::MAX).min(data.len());
        if n > 0 {
            self.hasher.update(&data[..n]);
            self.left -= n as u64;
        }
    }

    /// The head's hash, once every head byte has been seen.
    pub(crate) fn finish(&self) -> Option<blake3::Hash> {
        (self.left == 0).then(|| self.hasher.finalize())
    }
}

/// The partial file, its running hashes and the batch buffer: owned by the
/// write lane, lent to the blocking pool one batch at a time.
#[derive(Debug)]
struct Sink {
    hasher: blake3::Hasher,
    head: HeadHasher,
    file: PartFile,
    buf: AlignedBuf,
}

/// A gathered batch on its way to the lane, with its share of the budget.
struct Batch {
    pieces: Vec<Bytes>,
    len: usize,
    _permit: OwnedSemaphorePermit,
}

/// Writes an upload's bytes to its partial file, hashing them on the way.
#[derive(Debug)]
pub(crate) struct PartWriter {
    /// To the write lane; `None` once the lane has stopped.
    tx: Option<mpsc::Sender<Batch>>,
    /// The write lane: gives the sink back when `tx` is dropped; aborted
    /// if the writer is dropped without [`PartWriter::close`] or
    /// [`PartWriter::finish`] (at most the batch being written goes on).
    lane: Option<JoinHandle<io::Result<Sink>>>,
    budget: WriteBudget,
    batch: Vec<Bytes>,
    batch_len: usize,
    /// Bytes the current batch takes before it goes out (see [`target`]).
    batch_target: usize,
    /// File offset after every batch submitted so far.
    submitted: u64,
    /// Time the receive loop spent waiting for room in the lane or budget.
    waited: Duration,
}

impl PartWriter {
    /// Opens `path` for appending; `hasher` and `head` have seen the bytes
    /// already in it.
    pub(crate) async fn open(
        path: PathBuf,
        (hasher, head): (blake3::Hasher, HeadHasher),
        budget: WriteBudget,
    ) -> io::Result<Self> {
        let file = tokio::task::spawn_blocking(move || PartFile::open(&path))
            .await
            .map_err(io::Error::other)??;
        let submitted = file.pos();
        let (tx, rx) = mpsc::channel(DEPTH);
        let sink = Sink { hasher, head, file, buf: AlignedBuf::new(BATCH) };
        Ok(Self {
            tx: Some(tx),
            lane: Some(tokio::spawn(lane(sink, rx))),
            budget,
            batch: Vec::new(),
            batch_len: 0,
            batch_target: target(submitted),
            submitted,
            waited: Duration::ZERO,
        })
    }

    /// Takes the next bytes of the upload; waits only when its lane is full
    /// or the server's write-behind budget is spent.
    pub(crate) async fn write(&mut self, mut chunk: Bytes) -> io::Result<()> {
        while !chunk.is_empty() {
            let room = self.batch_target - self.batch_len;
            if chunk.len() < room {
                self.batch_len += chunk.len();
                self.batch.push(chunk);
                return Ok(());
            }
            // Cut the piece where the batch ends (no copy: `Bytes` shares).
            self.batch.push(chunk.split_to(room));
            self.batch_len += room;
            self.submit().await?;
        }
        Ok(())
    }

    /// Queues the gathered batch for the lane.
    async fn submit(&mut self) -> io::Result<()> {
        let started = Instant::now();
        let permit = self.budget.0.clone().acquire_owned().await.map_err(io::Error::other)?;
        let batch =
            Batch { pieces: std::mem::take(&mut self.batch), len: self.batch_len, _permit: permit };
        self.submitted += self.batch_len as u64;
        self.batch_len = 0;
        self.batch_target = target(self.submitted);
        let sent = match &self.tx {
            Some(tx) => tx.send(batch).await.is_ok(),
            None => false,
        };
        self.waited += started.elapsed();
        if !sent {
            // The lane stopped on an error: `finish` or `close` returns it.
            self.tx = None;
            return Err(io::Error::other("writing the partial file failed"));
        }
        Ok(())
    }

    /// Queues what is gathered and waits for the lane to write everything.
    async fn drain(mut self) -> io::Result<(Sink, Duration)> {
        if !self.batch.is_empty() && self.tx.is_some() {
            // An error here is the lane's, returned just below.
            let _ = self.submit().await;
        }
        drop(self.tx.take());
        let lane = self.lane.take().ok_or_else(|| io::Error::other("write lane gone"))?;
        let sink = lane.await.map_err(io::Error::other)??;
        Ok((sink, self.waited))
    }

    /// Writes out everything taken so far, without a final fsync: for an
    /// upload that stops here and may resume (its partial file then holds
    /// every byte).
    pub(crate) async fn close(self) -> io::Result<()> {
        self.drain().await.map(drop)
    }

    /// Writes out everything and fsyncs the file; the hashers (over the
    /// whole file and its head), how long the fsync took after the last byte
    /// was written, and how long the receive loop waited for the lane.
    pub(crate) async fn finish(self) -> io::Result<Finished> {
        let (sink, waited) = self.drain().await?;
        let direct = sink.file.direct();
        let started = Instant::now();
        let (hasher, head) = tokio::task::spawn_blocking(move || {
            sink.file.file().sync_all()?;
            Ok::<_, io::Error>((sink.hasher, sink.head))
        })
        .await
        .map_err(io::Error::other)??;
        Ok(Finished { hasher, head, synced: started.elapsed(), waited, direct })
    }
}

impl Drop for PartWriter {
    fn drop(&mut self) {
        if let Some(lane) = self.lane.take() {
            lane.abort();
        }
    }
}

/// What [`PartWriter::finish`] gives back.
#[derive(Debug)]
pub(crate) struct Finished {
    /// The hasher over the whole file.
    pub(crate) hasher: blake3::Hasher,
    /// The hasher over the file's head.
    pub(crate) head: HeadHasher,
    /// How long the final fsync took.
    pub(crate) synced: Duration,
    /// How long the receive loop waited for room in the lane or the budget.
    pub(crate) waited: Duration,
    /// Whether direct writes stayed on (the file system never refused one;
    /// a file smaller than a block is written buffered all the same).
    pub(crate) direct: bool,
}

/// The write lane: each batch in order, on the blocking pool, then the
/// sink back once the writer hangs up (or the first error).
async fn lane(mut sink: Sink, mut rx: mpsc::Receiver<Batch>) -> io::Result<Sink> {
    let mut unsynced = 0u64;
    let mut syncing: Option<JoinHandle<io::Result<()>>> = None;
    while let Some(batch) = rx.recv().await {
        unsynced += batch.len as u64;
        sink = tokio::task::spawn_blocking(move || {
            let data = sink.file.write(&mut sink.buf, &batch.pieces)?;
            sink.hasher.update(data);
            sink.head.update(data);
            // The permit goes back once the bytes are written.
            drop(batch);
            Ok::<_, io::Error>(sink)
        })
        .await
        .map_err(io::Error::other)??;
        if !sink.file.direct()
            && unsynced >= SYNC_EVERY
            && syncing.as_ref().is_none_or(JoinHandle::is_finished)
        {
            if let Some(task) = syncing.take() {
                task.await.map_err(io::Error::other)??;
            }
            let file = sink.file.file().try_clone()?;
            syncing = Some(tokio::task::spawn_blocking(move || file.sync_data()));
            unsynced = 0;
        }
    }
    if let Some(task) = syncing {
        task.await.map_err(io::Error::other)??;
    }
    Ok(sink)
}

/// Size of the batch starting at file offset `pos`: it ends where the
/// file reaches a multiple of [`ALIGN`] again, so the next batch starts
/// aligned (only a resumed upload's first batch is shorter than [`BATCH`]).
fn target(pos: u64) -> usize {
    BATCH - (pos % ALIGN as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pieces_are_written_in_order_and_hashed_whole() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("u.part");
        std::fs::write(&path, b"held:")?;
        let mut hasher = blake3::Hasher::new();
        hasher.update(b"held:");
        // A head that ends inside a batch, past the held bytes.
        let head_len = 1_000_003;
        let mut head = HeadHasher::new(head_len);
        head.update(b"held:");
        let mut writer =
            PartWriter::open(path.clone(), (hasher, head), WriteBudget::new(2)).await?;
        let mut expected = b"held:".to_vec();
        // Packet-sized pieces, past a few batches and a background sync.
        for i in 0..30_000u32 {
            let piece: Vec<u8> = (0..1200u32).map(|j| (i * 7 + j) as u8).collect();
            expected.extend_from_slice(&piece);
            writer.write(Bytes::from(piece)).await?;
        }
        let finished = writer.finish().await?;
        assert_eq!(std::fs::read(&path)?, expected);
        assert_eq!(finished.hasher.finalize(), blake3::hash(&expected));
        assert_eq!(finished.head.finish(), Some(blake3::hash(&expected[..head_len as usize])));
        Ok(())
    }

    #[test]
    fn a_head_takes_its_bytes_and_no_more() {
        let data: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        let mut head = HeadHasher::new(4_500);
        for (i, piece) in data.chunks(1_000).enumerate() {
            // Complete once the fifth piece (bytes 4,000..5,000) is in.
            assert_eq!(head.finish().is_some(), i >= 5, "before piece {i}");
            head.update(piece);
        }
        assert_eq!(head.finish(), Some(blake3::hash(&data[..4_500])));
        assert_eq!(HeadHasher::new(0).finish(), Some(blake3::hash(b"")));
    }

    #[tokio::test]
    async fn close_writes_everything_taken() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("u.part");
        let hashers = (blake3::Hasher::new(), HeadHasher::new(3));
        let mut writer = PartWriter::open(path.clone(), hashers, WriteBudget::new(1)).await?;
        writer.write(Bytes::from_static(b"abc")).await?;
        writer.close().await?;
        assert_eq!(std::fs::read(&path)?, b"abc");
        Ok(())
    }
}

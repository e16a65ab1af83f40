//! Hashing and writing an upload's bytes beside the network, not in its way.
//!
//! QUIC hands the upload task its bytes a packet at a time (about 1.2 KB).
//! BLAKE3 hashes such pieces one 64-byte block after another; it is only fast
//! (SIMD across many 1 KiB chunks at once) on long contiguous input. So the
//! pieces are gathered into batches of about [`BATCH`] bytes, and each batch
//! is copied into one aligned buffer, hashed and written to the partial file
//! on the blocking pool while the task goes on receiving the next batch. At
//! most two batches per upload are held: one being written, one being
//! gathered. Batches end on [`ALIGN`] boundaries of the file, so that every
//! batch but a resumed upload's first and the file's last is written
//! without the page cache ([`super::direct`]).
//!
//! Where the file system refuses direct writes, the page cache holds what
//! was written until the final fsync, which then has the whole file to
//! write out while the client waits. So then every [`SYNC_EVERY`] bytes a
//! background `fdatasync` (on a clone of the file handle, at most one at a
//! time) pushes what is there to the disk while more arrives, and the final
//! fsync only has the tail left.

use std::io;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::task::JoinHandle;

use super::direct::{ALIGN, AlignedBuf, PartFile};

/// Bytes gathered before a batch goes to the disk (a multiple of [`ALIGN`]).
const BATCH: usize = 1024 * 1024;
/// Bytes written between background syncs, when writes are buffered.
const SYNC_EVERY: u64 = 32 * 1024 * 1024;

/// The partial file, its running hash and the batch buffer: with the writer
/// while idle, on the blocking pool while a batch is written.
#[derive(Debug)]
struct Sink {
    hasher: blake3::Hasher,
    file: PartFile,
    buf: AlignedBuf,
}

/// Writes an upload's bytes to its partial file, hashing them on the way.
#[derive(Debug)]
pub(crate) struct PartWriter {
    idle: Option<Sink>,
    busy: Option<JoinHandle<io::Result<Sink>>>,
    batch: Vec<Bytes>,
    batch_len: usize,
    /// Bytes the current batch takes before it goes out (see [`target`]).
    batch_target: usize,
    /// File offset after every batch submitted so far.
    submitted: u64,
    /// Whether the file still takes direct writes (as of the last batch back).
    direct: bool,
    /// Bytes submitted since the last background sync started.
    unsynced: u64,
    /// The background sync in progress, if any.
    syncing: Option<JoinHandle<io::Result<()>>>,
}

impl PartWriter {
    /// Opens `path` for appending; `hasher` has seen the bytes already in it.
    pub(crate) async fn open(path: PathBuf, hasher: blake3::Hasher) -> io::Result<Self> {
        let file = tokio::task::spawn_blocking(move || PartFile::open(&path))
            .await
            .map_err(io::Error::other)??;
        let submitted = file.pos();
        Ok(Self {
            direct: file.direct(),
            idle: Some(Sink { hasher, file, buf: AlignedBuf::new(BATCH) }),
            busy: None,
            batch: Vec::new(),
            batch_len: 0,
            batch_target: target(submitted),
            submitted,
            unsynced: 0,
            syncing: None,
        })
    }

    /// Takes the next bytes of the upload; waits only when a full batch must
    /// go to the disk and the one before it is still being written.
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

    /// Sends the gathered batch to the blocking pool.
    async fn submit(&mut self) -> io::Result<()> {
        let mut sink = self.settle().await?;
        self.unsynced += self.batch_len as u64;
        if !self.direct
            && self.unsynced >= SYNC_EVERY
            && self.syncing.as_ref().is_none_or(JoinHandle::is_finished)
        {
            self.wait_sync().await?;
            let file = sink.file.file().try_clone()?;
            self.syncing = Some(tokio::task::spawn_blocking(move || file.sync_data()));
            self.unsynced = 0;
        }
        let batch = std::mem::take(&mut self.batch);
        self.submitted += self.batch_len as u64;
        self.batch_len = 0;
        self.batch_target = target(self.submitted);
        self.busy = Some(tokio::task::spawn_blocking(move || {
            let data = sink.file.write(&mut sink.buf, &batch)?;
            sink.hasher.update(data);
            Ok(sink)
        }));
        Ok(())
    }

    /// Waits for the batch being written, if any; the sink back.
    async fn settle(&mut self) -> io::Result<Sink> {
        if let Some(task) = self.busy.take() {
            let sink = task.await.map_err(io::Error::other)??;
            self.direct = sink.file.direct();
            return Ok(sink);
        }
        self.idle.take().ok_or_else(|| io::Error::other("an earlier write failed"))
    }

    /// Waits for the background sync, if one is running.
    async fn wait_sync(&mut self) -> io::Result<()> {
        match self.syncing.take() {
            Some(task) => task.await.map_err(io::Error::other)?,
            None => Ok(()),
        }
    }

    /// Writes out everything taken so far, without a final fsync: for an
    /// upload that stops here and may resume (its partial file then holds
    /// every byte).
    pub(crate) async fn close(mut self) -> io::Result<()> {
        if !self.batch.is_empty() {
            self.submit().await?;
        }
        let written = self.settle().await.map(drop);
        self.wait_sync().await?;
        written
    }

    /// Whether the bytes so far went past the page cache (for the log).
    pub(crate) fn direct(&self) -> bool {
        self.direct
    }

    /// Writes out everything and fsyncs the file; the hasher (over the whole
    /// file) and how long the fsyncs took after the last byte was written.
    pub(crate) async fn finish(mut self) -> io::Result<(blake3::Hasher, Duration)> {
        if !self.batch.is_empty() {
            self.submit().await?;
        }
        let sink = self.settle().await?;
        let started = Instant::now();
        self.wait_sync().await?;
        let hasher = tokio::task::spawn_blocking(move || {
            sink.file.file().sync_all()?;
            Ok::<_, io::Error>(sink.hasher)
        })
        .await
        .map_err(io::Error::other)??;
        Ok((hasher, started.elapsed()))
    }
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
        let mut writer = PartWriter::open(path.clone(), hasher).await?;
        let mut expected = b"held:".to_vec();
        // Packet-sized pieces, past a few batches and a background sync.
        for i in 0..30_000u32 {
            let piece: Vec<u8> = (0..1200u32).map(|j| (i * 7 + j) as u8).collect();
            expected.extend_from_slice(&piece);
            writer.write(Bytes::from(piece)).await?;
        }
        let (hasher, _) = writer.finish().await?;
        assert_eq!(std::fs::read(&path)?, expected);
        assert_eq!(hasher.finalize(), blake3::hash(&expected));
        Ok(())
    }

    #[tokio::test]
    async fn close_writes_everything_taken() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("u.part");
        let mut writer = PartWriter::open(path.clone(), blake3::Hasher::new()).await?;
        writer.write(Bytes::from_static(b"abc")).await?;
        writer.close().await?;
        assert_eq!(std::fs::read(&path)?, b"abc");
        Ok(())
    }
}

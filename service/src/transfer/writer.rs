//! Hashing and writing an upload's bytes beside the network, not in its way.
//!
//! QUIC hands the upload task its bytes a packet at a time (about 1.2 KB).
//! BLAKE3 hashes such pieces one 64-byte block after another; it is only fast
//! (SIMD across many 1 KiB chunks at once) on long contiguous input. So the
//! pieces are gathered into batches of [`BATCH`] bytes, and each batch is
//! copied into one buffer, hashed and written to the partial file on the
//! blocking pool while the task goes on receiving the next batch. At most
//! two batches per upload are held: one being written, one being gathered.
//!
//! The page cache holds what was written until the final fsync, which then
//! has the whole file to write out while the client waits. So every
//! [`SYNC_EVERY`] bytes a background `fdatasync` (on a clone of the file
//! handle, at most one at a time) pushes what is there to the disk while
//! more arrives, and the final fsync only has the tail left.

use std::io::{self, Write as _};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::task::JoinHandle;

/// Bytes gathered before a batch goes to the disk.
const BATCH: usize = 1024 * 1024;
/// Bytes written between background syncs.
const SYNC_EVERY: u64 = 32 * 1024 * 1024;

/// The partial file, its running hash and the batch buffer: with the writer
/// while idle, on the blocking pool while a batch is written.
#[derive(Debug)]
struct Sink {
    hasher: blake3::Hasher,
    file: std::fs::File,
    buf: Vec<u8>,
}

/// Writes an upload's bytes to its partial file, hashing them on the way.
#[derive(Debug)]
pub(crate) struct PartWriter {
    idle: Option<Sink>,
    busy: Option<JoinHandle<io::Result<Sink>>>,
    batch: Vec<Bytes>,
    batch_len: usize,
    /// Bytes submitted since the last background sync started.
    unsynced: u64,
    /// The background sync in progress, if any.
    syncing: Option<JoinHandle<io::Result<()>>>,
}

impl PartWriter {
    /// Opens `path` for appending; `hasher` has seen the bytes already in it.
    pub(crate) async fn open(path: PathBuf, hasher: blake3::Hasher) -> io::Result<Self> {
        let file = tokio::task::spawn_blocking(move || {
            std::fs::OpenOptions::new().create(true).append(true).open(path)
        })
        .await
        .map_err(io::Error::other)??;
        Ok(Self {
            idle: Some(Sink { hasher, file, buf: Vec::with_capacity(BATCH) }),
            busy: None,
            batch: Vec::new(),
            batch_len: 0,
            unsynced: 0,
            syncing: None,
        })
    }

    /// Takes the next bytes of the upload; waits only when a full batch must
    /// go to the disk and the one before it is still being written.
    pub(crate) async fn write(&mut self, chunk: Bytes) -> io::Result<()> {
        self.batch_len += chunk.len();
        self.batch.push(chunk);
        if self.batch_len >= BATCH {
            self.submit().await?;
        }
        Ok(())
    }

    /// Sends the gathered batch to the blocking pool.
    async fn submit(&mut self) -> io::Result<()> {
        let mut sink = self.settle().await?;
        self.unsynced += self.batch_len as u64;
        if self.unsynced >= SYNC_EVERY && self.syncing.as_ref().is_none_or(JoinHandle::is_finished)
        {
            self.wait_sync().await?;
            let file = sink.file.try_clone()?;
            self.syncing = Some(tokio::task::spawn_blocking(move || file.sync_data()));
            self.unsynced = 0;
        }
        let batch = std::mem::take(&mut self.batch);
        self.batch_len = 0;
        self.busy = Some(tokio::task::spawn_blocking(move || {
            sink.buf.clear();
            for piece in &batch {
                sink.buf.extend_from_slice(piece);
            }
            sink.hasher.update(&sink.buf);
            sink.file.write_all(&sink.buf)?;
            Ok(sink)
        }));
        Ok(())
    }

    /// Waits for the batch being written, if any; the sink back.
    async fn settle(&mut self) -> io::Result<Sink> {
        if let Some(task) = self.busy.take() {
            return task.await.map_err(io::Error::other)?;
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
            sink.file.sync_all()?;
            Ok::<_, io::Error>(sink.hasher)
        })
        .await
        .map_err(io::Error::other)??;
        Ok((hasher, started.elapsed()))
    }
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

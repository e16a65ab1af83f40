//! The partial file of a download. The stream's pieces are gathered into
//! 1 MiB batches. Each batch is hashed (BLAKE3, fast on long contiguous
//! input) and written on the blocking pool while the next one gathers. So
//! the download is verified as soon as its last byte is in, with no second
//! pass over the file, and the async task only copies the pieces once.
//! Batches go past the page cache where the file system allows it
//! ([`super::direct`]).

use std::fs::File;
use std::io::{self, Seek as _};
use std::path::PathBuf;

use tokio::task::JoinHandle;

use super::direct::{ALIGN, AlignedBatch, DirectFile};
use super::hash_prefix;

/// Bytes gathered before a batch goes to the blocking pool (a multiple of
/// [`ALIGN`]).
const BATCH: usize = 1024 * 1024;

/// The file and the running hash, with a spare batch; with the blocking
/// pool while a batch is being written.
struct Disk {
    file: DirectFile,
    hasher: blake3::Hasher,
    spare: AlignedBatch,
}

/// Writes a download's bytes to its partial file, hashing them on the way.
/// At most one batch is on the blocking pool at a time. If the writer is
/// dropped, that batch still finishes (a blocking write cannot be cut
/// short); the file then holds a prefix of the download, which a retry
/// resumes from.
pub(crate) struct PartWriter {
    /// `None` while a batch is on the blocking pool (then in `pending`).
    disk: Option<Disk>,
    pending: Option<JoinHandle<io::Result<Disk>>>,
    batch: AlignedBatch,
    /// File offset of the batch's first byte.
    batch_at: u64,
}

impl PartWriter {
    /// Opens (or creates) `path` for the bytes from `offset`: cuts off
    /// anything past `offset` (stale) and hashes the `offset` bytes before
    /// it, all on the blocking pool.
    pub(crate) async fn open(path: PathBuf, offset: u64) -> io::Result<Self> {
        let disk = tokio::task::spawn_blocking(move || {
            let mut file =
                File::options().create(true).truncate(false).read(true).write(true).open(&path)?;
            file.set_len(offset)?;
            let hasher = hash_prefix(&file, offset, "the partial file shrank")?;
            file.seek(io::SeekFrom::Start(offset))?;
            let file = DirectFile::new(file, offset);
            Ok::<_, io::Error>(Disk { file, hasher, spare: AlignedBatch::new(BATCH) })
        })
        .await
        .map_err(io::Error::other)??;
        Ok(Self {
            disk: Some(disk),
            pending: None,
            batch: AlignedBatch::new(BATCH),
            batch_at: offset,
        })
    }

    /// Takes the next bytes of the download.
    pub(crate) async fn write(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            // A batch ends on an aligned file offset (only a resumed
            // download's first one is shorter), so the next starts aligned.
            let limit = BATCH - (self.batch_at % ALIGN as u64) as usize;
            let n = self.batch.fill(data, limit);
            data = &data[n..];
            if self.batch.len() == limit {
                self.submit().await?;
            }
        }
        Ok(())
    }

    /// Sends the gathered batch to the blocking pool, once the one before
    /// it is written.
    async fn submit(&mut self) -> io::Result<()> {
        let mut disk = self.settle().await?;
        // The spare (empty) becomes the batch to gather into; the full one
        // goes with the disk.
        std::mem::swap(&mut self.batch, &mut disk.spare);
        self.batch_at += disk.spare.len() as u64;
        self.pending = Some(tokio::task::spawn_blocking(move || {
            disk.hasher.update(disk.spare.bytes());
            disk.file.write(&disk.spare)?;
            disk.spare.clear();
            Ok(disk)
        }));
        Ok(())
    }

    /// The file back from the blocking pool, every submitted batch written.
    async fn settle(&mut self) -> io::Result<Disk> {
        if let Some(task) = self.pending.take() {
            return task.await.map_err(io::Error::other)?;
        }
        self.disk.take().ok_or_else(|| io::Error::other("an earlier write failed"))
    }

    /// Submits what is gathered and waits until it is written.
    async fn drain(&mut self) -> io::Result<Disk> {
        if !self.batch.is_empty() {
            self.submit().await?;
        }
        self.settle().await
    }

    /// Writes out everything taken, without an fsync: for a download that
    /// stops here and resumes from the file's length.
    pub(crate) async fn close(mut self) -> io::Result<()> {
        self.drain().await.map(drop)
    }

    /// Writes out everything taken and fsyncs the file; the BLAKE3 of the
    /// whole file, held bytes included.
    pub(crate) async fn finish(mut self) -> io::Result<blake3::Hash> {
        let disk = self.drain().await?;
        tokio::task::spawn_blocking(move || {
            disk.file.file().sync_all()?;
            Ok(disk.hasher.finalize())
        })
        .await
        .map_err(io::Error::other)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_resumed_file_hashes_whole_and_drops_stale_bytes() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("f.part");
        let data: Vec<u8> = (0..3 * BATCH + 123).map(|i| (i * 13 % 253) as u8).collect();
        // 1000 bytes held, then stale bytes past them that must go.
        let mut held = data[..1000].to_vec();
        held.extend_from_slice(b"stale");
        std::fs::write(&path, &held)?;
        let mut writer = PartWriter::open(path.clone(), 1000).await?;
        // Packet-sized pieces across several batches.
        for piece in data[1000..].chunks(1200) {
            writer.write(piece).await?;
        }
        assert_eq!(writer.finish().await?, blake3::hash(&data));
        assert_eq!(std::fs::read(&path)?, data);
        Ok(())
    }

    #[tokio::test]
    async fn close_keeps_every_byte_taken() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("f.part");
        let mut writer = PartWriter::open(path.clone(), 0).await?;
        writer.write(&[7u8; BATCH + 5]).await?;
        writer.close().await?;
        assert_eq!(std::fs::read(&path)?, vec![7u8; BATCH + 5]);
        // An empty download is the hash of nothing.
        let empty = PartWriter::open(dir.path().join("e.part"), 0).await?;
        assert_eq!(empty.finish().await?, blake3::hash(b""));
        Ok(())
    }
}

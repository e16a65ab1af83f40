//! Writing a download's partial file past the page cache (`O_DIRECT` on
//! Linux), as qchatd writes uploads (`service/src/transfer/direct.rs`).
//!
//! A buffered write of a downloaded GiB cost the `qchat` process about
//! 1.6 s of system time on the project's VM, most of it the kernel copying
//! into the page cache (`copy_folio_from_iter_atomic`, 44% of the CLI's
//! samples in a profile of `qchat download`); with `O_DIRECT` the disk reads
//! the bytes straight from our buffer. Direct writes need the memory
//! address, the length and the file offset aligned to the device's block
//! size, so:
//!
//! - [`AlignedBatch`] over-allocates a `Vec` and starts its data where the
//!   address is a multiple of [`ALIGN`] (`align_offset`, no `unsafe`);
//! - [`DirectFile::write`] writes a batch directly only when it starts at an
//!   aligned file offset and is a whole number of blocks long, and through
//!   the page cache otherwise (a resumed download's first batch, the
//!   file's last one). The part writer cuts a resumed download's first
//!   batch short, so every later one starts aligned.
//!
//! Where the file system refuses `O_DIRECT` (tmpfs, other systems) the file
//! takes buffered writes for good; the bytes are the same either way, and
//! the final fsync makes both durable.

use std::fs::File;
use std::io::{self, Seek as _, SeekFrom, Write as _};

/// Alignment of direct writes: memory address, length and file offset.
/// 4 KiB covers devices with 512-byte and 4 KiB logical blocks.
pub(crate) const ALIGN: usize = 4096;

/// A batch of up to `capacity` bytes whose data starts at an
/// [`ALIGN`]-aligned address (when the allocator gives one).
#[derive(Debug)]
pub(crate) struct AlignedBatch {
    vec: Vec<u8>,
    /// Where the data starts in `vec`.
    base: usize,
    capacity: usize,
}

impl AlignedBatch {
    /// An empty batch for up to `capacity` bytes; never reallocates.
    pub(crate) fn new(capacity: usize) -> Self {
        let mut vec: Vec<u8> = Vec::with_capacity(capacity + ALIGN);
        let base = vec.as_ptr().align_offset(ALIGN).min(ALIGN);
        vec.resize(base, 0);
        Self { vec, base, capacity }
    }

    /// Bytes held.
    pub(crate) fn len(&self) -> usize {
        self.vec.len() - self.base
    }

    /// Whether it holds nothing.
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends as much of `data` as fits below `limit` bytes (at most the
    /// capacity); returns how many bytes it took.
    pub(crate) fn fill(&mut self, data: &[u8], limit: usize) -> usize {
        let n = limit.min(self.capacity).saturating_sub(self.len()).min(data.len());
        self.vec.extend_from_slice(&data[..n]);
        n
    }

    /// The bytes held.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.vec[self.base..]
    }

    /// Empties it, keeping the allocation.
    pub(crate) fn clear(&mut self) {
        self.vec.truncate(self.base);
    }

    fn aligned(&self) -> bool {
        self.bytes().as_ptr().align_offset(ALIGN) == 0
    }
}

/// A partial file appended to at [`DirectFile::pos`], directly where it can.
#[derive(Debug)]
pub(crate) struct DirectFile {
    file: File,
    /// File offset of the next byte.
    pos: u64,
    /// Whether `O_DIRECT` is set on the file right now.
    direct_on: bool,
    /// Whether direct writes are still worth trying on this file.
    direct_ok: bool,
}

impl DirectFile {
    /// `file`, positioned at `pos`, to append to.
    pub(crate) fn new(file: File, pos: u64) -> Self {
        Self { file, pos, direct_on: false, direct_ok: cfg!(target_os = "linux") }
    }

    /// File offset of the next byte.
    #[cfg(test)]
    fn pos(&self) -> u64 {
        self.pos
    }

    /// The open file (for syncing).
    pub(crate) fn file(&self) -> &File {
        &self.file
    }

    /// Appends `batch`: directly when it starts at an aligned file offset,
    /// is whole blocks long and lies at an aligned address; through the
    /// page cache otherwise.
    pub(crate) fn write(&mut self, batch: &AlignedBatch) -> io::Result<()> {
        let data = batch.bytes();
        let direct = self.direct_ok
            && batch.aligned()
            && self.pos.is_multiple_of(ALIGN as u64)
            && data.len().is_multiple_of(ALIGN);
        match self.write_at(direct, data) {
            // The file system takes no direct writes (EINVAL, or no such
            // flag here): the same bytes, buffered, from now on.
            Err(e) if direct && refused(&e) => {
                tracing::debug!(cause = %e, "direct writes refused; writing buffered");
                self.direct_ok = false;
                self.write_at(false, data)
            }
            result => result,
        }
    }

    /// Writes `bytes` at the file's position with `O_DIRECT` on or off.
    fn write_at(&mut self, direct: bool, bytes: &[u8]) -> io::Result<()> {
        if self.direct_on != direct {
            set_direct(&self.file, direct)?;
            self.direct_on = direct;
        }
        // A failed write may have moved the position part of the way: go back
        // to where this write started, so a buffered retry lands in place.
        if let Err(e) = self.file.write_all(bytes) {
            self.file.seek(SeekFrom::Start(self.pos))?;
            return Err(e);
        }
        self.pos += bytes.len() as u64;
        Ok(())
    }
}

/// Whether an error says the file (system) does not do direct writes.
fn refused(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::InvalidInput || e.kind() == io::ErrorKind::Unsupported
}

#[cfg(target_os = "linux")]
fn set_direct(file: &File, on: bool) -> io::Result<()> {
    use rustix::fs::OFlags;
    let flags = rustix::fs::fcntl_getfl(file)?;
    let flags = if on { flags | OFlags::DIRECT } else { flags - OFlags::DIRECT };
    rustix::fs::fcntl_setfl(file, flags)?;
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn set_direct(_file: &File, on: bool) -> io::Result<()> {
    if on { Err(io::ErrorKind::Unsupported.into()) } else { Ok(()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_land_in_place_at_any_offset() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        for held in [0usize, 1, 4095, 4096, 5000] {
            let path = dir.path().join(format!("f{held}"));
            let prefix: Vec<u8> = (0..held).map(|i| (i % 251) as u8).collect();
            std::fs::write(&path, &prefix)?;
            let mut file = std::fs::OpenOptions::new().write(true).open(&path)?;
            file.seek(SeekFrom::End(0))?;
            let mut file = DirectFile::new(file, held as u64);
            let data: Vec<u8> = (0..5 * ALIGN * 4 + 17).map(|i| (i * 7 % 253) as u8).collect();
            let mut batch = AlignedBatch::new(4 * ALIGN);
            let mut rest = &data[..];
            while !rest.is_empty() {
                // The first batch ends at an aligned offset, as the part
                // writer cuts it; the rest are whole batches and a tail.
                let limit = 4 * ALIGN - (file.pos() % ALIGN as u64) as usize;
                let n = batch.fill(rest, limit);
                rest = &rest[n..];
                file.write(&batch)?;
                batch.clear();
            }
            assert_eq!(file.pos(), (held + data.len()) as u64);
            file.file().sync_all()?;
            let mut expected = prefix;
            expected.extend_from_slice(&data);
            assert_eq!(std::fs::read(&path)?, expected, "held {held}");
        }
        Ok(())
    }

    #[test]
    fn a_batch_starts_aligned_and_never_grows() {
        let mut batch = AlignedBatch::new(ALIGN);
        assert!(batch.aligned() && batch.is_empty());
        assert_eq!(batch.fill(&[1u8; 3 * ALIGN], usize::MAX), ALIGN);
        assert_eq!(batch.fill(&[1u8; 5], usize::MAX), 0);
        assert!(batch.aligned());
        batch.clear();
        assert_eq!(batch.fill(&[2u8; 10], 4), 4);
        assert_eq!(batch.bytes(), &[2u8; 4]);
    }
}

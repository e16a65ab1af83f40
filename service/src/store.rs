//! The file store on disk. Finished files live under
//! `<data>/files/<tenant id>/<first two hex>/<blake3 hex>` — content-addressed
//! per tenant, so a tenant never reads another's bytes and identical uploads
//! are stored once. Partial uploads live in `<data>/uploads/<upload id>.part`.
//! No path is ever built from a client-supplied name: only from row ids,
//! hashes checked to be hex, and upload ids the server generated.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};

use crate::db::TenantId;

/// Paths of the file store.
#[derive(Debug, Clone)]
pub(crate) struct Store {
    files: PathBuf,
    uploads: PathBuf,
}

impl Store {
    /// Creates the store's directories under `data_dir`.
    pub(crate) fn open(data_dir: &Path) -> io::Result<Self> {
        let s = Self { files: data_dir.join("files"), uploads: data_dir.join("uploads") };
        std::fs::create_dir_all(&s.files)?;
        std::fs::create_dir_all(&s.uploads)?;
        Ok(s)
    }

    /// Where a finished file lives. `hash` must be validated hex.
    pub(crate) fn file_path(&self, tenant: TenantId, hash: &str) -> PathBuf {
        let prefix = hash.get(..2).unwrap_or("00");
        self.files.join(tenant.0.to_string()).join(prefix).join(hash)
    }

    /// Where the bytes of an upload in progress live. `id` is server-made hex.
    pub(crate) fn part_path(&self, upload_id: &str) -> PathBuf {
        self.uploads.join(format!("{upload_id}.part"))
    }

    /// Bytes held for an upload (0 when nothing yet).
    pub(crate) async fn held(&self, upload_id: &str) -> io::Result<u64> {
        match tokio::fs::metadata(self.part_path(upload_id)).await {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// Removes an upload's partial bytes (fine if there are none).
    pub(crate) async fn discard(&self, upload_id: &str) {
        if let Err(e) = tokio::fs::remove_file(self.part_path(upload_id)).await
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(upload_id, cause = %e, "removing partial upload");
        }
    }

    /// Moves a complete, fsynced upload into the store and makes the rename
    /// durable.
    pub(crate) async fn promote(
        &self,
        upload_id: &str,
        tenant: TenantId,
        hash: &str,
    ) -> io::Result<()> {
        let dest = self.file_path(tenant, hash);
        let dir = dest.parent().map(Path::to_path_buf).unwrap_or_else(|| self.files.clone());
        tokio::fs::create_dir_all(&dir).await?;
        tokio::fs::rename(self.part_path(upload_id), &dest).await?;
        sync_dir(dir).await
    }

    /// Start-up sweep: removes stored files without a row (a crash between
    /// rename and commit) and partial files without an upload row.
    pub(crate) fn sweep(
        &self,
        rows: &[(i64, String)],
        uploads: &[String],
    ) -> io::Result<(usize, usize)> {
        let keep: HashSet<PathBuf> =
            rows.iter().map(|(t, h)| self.file_path(TenantId(*t), h)).collect();
        let mut orphans = 0;
        for path in walk_files(&self.files)? {
            if !keep.contains(&path) {
                tracing::warn!(path = %path.display(), "removing stored file without a row");
                std::fs::remove_file(&path)?;
                orphans += 1;
            }
        }
        let live: HashSet<PathBuf> = uploads.iter().map(|id| self.part_path(id)).collect();
        let mut partials = 0;
        for entry in std::fs::read_dir(&self.uploads)? {
            let path = entry?.path();
            if !live.contains(&path) {
                std::fs::remove_file(&path)?;
                partials += 1;
            }
        }
        Ok((orphans, partials))
    }
}

fn walk_files(root: &Path) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                stack.push(entry.path());
            } else {
                out.push(entry.path());
            }
        }
    }
    Ok(out)
}

async fn sync_dir(dir: PathBuf) -> io::Result<()> {
    tokio::task::spawn_blocking(move || std::fs::File::open(&dir)?.sync_all())
        .await
        .map_err(io::Error::other)?
}

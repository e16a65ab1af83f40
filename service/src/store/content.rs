//! The file-store boundary: where finished file contents are kept.
//!
//! [`ContentStore`] is what the rest of the server asks of it: put a
//! finished upload under its tenant and hash, read one from an offset, say
//! whether one is there, remove one, and keep only a given set (the
//! start-up sweep). [`Dir`] keeps them as files under a directory — the
//! data directory on a single node, the shared mount (`files_dir`) in a
//! cluster. An object store fits behind the same five calls (a multipart
//! upload of the finished part file, a ranged GET, a HEAD, a DELETE, a
//! listing) without a change elsewhere.
//!
//! Partial uploads stay outside it, as files in `uploads/` next to it:
//! they are appended, fsynced and hashed in place while bytes arrive,
//! which is a local (or shared) file's job; only a finished, verified one
//! crosses the boundary, with [`ContentStore::put`].

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;

use futures_util::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncSeekExt as _};

use crate::db::TenantId;

/// Content being read, from the offset asked.
pub(crate) type Reader = Pin<Box<dyn AsyncRead + Send>>;

/// Where finished contents are kept, each under its tenant and BLAKE3 hash
/// (lower-case hex, validated by the caller), written once and never
/// changed.
pub(crate) trait ContentStore: Send + Sync + std::fmt::Debug {
    /// Stores the finished, fsynced file at `part` as the tenant's content
    /// `hash`, durably (after this returns, a crash keeps it); `part` is
    /// gone afterwards. Storing content that is there already replaces it
    /// with the same bytes.
    fn put<'a>(
        &'a self,
        part: &'a Path,
        tenant: TenantId,
        hash: &'a str,
    ) -> BoxFuture<'a, io::Result<()>>;

    /// The content from byte `offset` on; `NotFound` when it is not there.
    fn open<'a>(
        &'a self,
        tenant: TenantId,
        hash: &'a str,
        offset: u64,
    ) -> BoxFuture<'a, io::Result<Reader>>;

    /// Whether the content is there.
    fn exists<'a>(&'a self, tenant: TenantId, hash: &'a str) -> BoxFuture<'a, io::Result<bool>>;

    /// Removes the content; `false` when it was not there.
    fn remove<'a>(&'a self, tenant: TenantId, hash: &'a str) -> BoxFuture<'a, io::Result<bool>>;

    /// Removes every stored content not in `keep` (and anything else
    /// found where contents live); returns how many. Blocking: the
    /// start-up sweep, before the server serves.
    fn retain(&self, keep: &HashSet<(TenantId, String)>) -> io::Result<usize>;
}

/// Contents as files: `<root>/<tenant id>/<first two hex>/<hash>`.
#[derive(Debug, Clone)]
pub(crate) struct Dir {
    root: PathBuf,
}

impl Dir {
    /// Contents under `root` (created if missing).
    pub(crate) fn open(root: PathBuf) -> io::Result<Self> {
        std::fs::create_dir_all(&root)?;
        Ok(Self { root })
    }

    /// Where a content's file is. `hash` must be validated hex.
    fn path(&self, tenant: TenantId, hash: &str) -> PathBuf {
        let prefix = hash.get(..2).unwrap_or("00");
        self.root.join(tenant.0.to_string()).join(prefix).join(hash)
    }
}

impl ContentStore for Dir {
    fn put<'a>(
        &'a self,
        part: &'a Path,
        tenant: TenantId,
        hash: &'a str,
    ) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            let dest = self.path(tenant, hash);
            let dir = dest.parent().map_or_else(|| self.root.clone(), Path::to_path_buf);
            tokio::fs::create_dir_all(&dir).await?;
            tokio::fs::rename(part, &dest).await?;
            sync_dir(dir).await
        })
    }

    fn open<'a>(
        &'a self,
        tenant: TenantId,
        hash: &'a str,
        offset: u64,
    ) -> BoxFuture<'a, io::Result<Reader>> {
        Box::pin(async move {
            let mut file = tokio::fs::File::open(self.path(tenant, hash)).await?;
            file.seek(io::SeekFrom::Start(offset)).await?;
            Ok(Box::pin(file) as Reader)
        })
    }

    fn exists<'a>(&'a self, tenant: TenantId, hash: &'a str) -> BoxFuture<'a, io::Result<bool>> {
        Box::pin(async move {
            match tokio::fs::metadata(self.path(tenant, hash)).await {
                Ok(_) => Ok(true),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
                Err(e) => Err(e),
            }
        })
    }

    fn remove<'a>(&'a self, tenant: TenantId, hash: &'a str) -> BoxFuture<'a, io::Result<bool>> {
        Box::pin(async move {
            match tokio::fs::remove_file(self.path(tenant, hash)).await {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
                Err(e) => Err(e),
            }
        })
    }

    fn retain(&self, keep: &HashSet<(TenantId, String)>) -> io::Result<usize> {
        let keep: HashSet<PathBuf> = keep.iter().map(|(t, h)| self.path(*t, h)).collect();
        let mut removed = 0;
        for path in walk_files(&self.root)? {
            if !keep.contains(&path) {
                tracing::warn!(path = %path.display(), "removing stored file without a row");
                std::fs::remove_file(&path)?;
                removed += 1;
            }
        }
        Ok(removed)
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

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt as _;

    use super::*;

    #[tokio::test]
    async fn a_directory_keeps_contents_by_tenant_and_hash() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let store: Box<dyn ContentStore> =
            Box::new(Dir::open(tmp.path().join("files")).expect("dir"));
        let (t, hash) = (TenantId(3), "ab".repeat(32));
        let part = tmp.path().join("x.part");
        std::fs::write(&part, b"hello, world").expect("part");
        assert!(!store.exists(t, &hash).await.expect("exists"));
        store.put(&part, t, &hash).await.expect("put");
        assert!(!part.exists(), "the part file moved");
        assert!(store.exists(t, &hash).await.expect("exists"));
        assert!(!store.exists(TenantId(4), &hash).await.expect("exists"), "per tenant");
        let mut rest = String::new();
        store.open(t, &hash, 7).await.expect("open").read_to_string(&mut rest).await.expect("read");
        assert_eq!(rest, "world");
        let missing = store.open(t, &"cd".repeat(32), 0).await.err().map(|e| e.kind());
        assert_eq!(missing, Some(io::ErrorKind::NotFound));

        let other = tmp.path().join("y.part");
        std::fs::write(&other, b"other").expect("part");
        store.put(&other, t, &"cd".repeat(32)).await.expect("put");
        let keep = HashSet::from([(t, hash.clone())]);
        assert_eq!(store.retain(&keep).expect("retain"), 1);
        assert!(store.exists(t, &hash).await.expect("exists"));
        assert!(store.remove(t, &hash).await.expect("remove"));
        assert!(!store.remove(t, &hash).await.expect("remove"), "gone already");
    }
}

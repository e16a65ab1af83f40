//! The file store. Finished contents are kept behind the [`ContentStore`]
//! boundary (`store/content.rs`), content-addressed per tenant, so a tenant
//! never reads another's bytes and identical uploads are stored once; today
//! as files under `<data>/files/<tenant id>/<first two hex>/<blake3 hex>`
//! ([`content::Dir`]). Partial uploads live in
//! `<data>/uploads/<upload id>.part`. No path is ever built from a
//! client-supplied name: only from row ids, hashes checked to be hex, and
//! upload ids the server generated.

pub(crate) mod content;

use std::collections::{HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::OwnedMutexGuard;

use crate::db::{self, Db, TenantId};
pub(crate) use content::ContentStore;

/// One lock per stored content being promoted, offered again or removed.
type ContentLocks = Mutex<HashMap<(TenantId, String), Arc<tokio::sync::Mutex<()>>>>;

/// The file store: finished contents and partial uploads.
#[derive(Debug, Clone)]
pub(crate) struct Store {
    /// Finished contents.
    content: Arc<dyn ContentStore>,
    uploads: PathBuf,
    /// Content that no room offers any more is removed only under its lock
    /// and after a look at the rows, and an upload holds the lock from its
    /// promote to its commit (and a dedupe from its look-up to its commit):
    /// so a removal never takes content that a row is about to name.
    locks: Arc<ContentLocks>,
}

/// Holds the lock of one stored content ([`Store::lock_content`]).
pub(crate) struct ContentLock {
    store: Store,
    key: (TenantId, String),
    _guard: OwnedMutexGuard<()>,
}

impl Drop for ContentLock {
    fn drop(&mut self) {
        let mut locks = self.store.locks.lock().unwrap_or_else(PoisonError::into_inner);
        // The map's and this guard's mutex: nobody else wants it.
        if locks.get(&self.key).is_some_and(|m| Arc::strong_count(m) <= 2) {
            locks.remove(&self.key);
        }
    }
}

impl ContentLock {
    /// Removes the content from disk unless a file row of the tenant still
    /// names it. Failures are logged: at worst a file without a row stays
    /// until the start-up sweep.
    pub(crate) async fn remove_if_unreferenced(&self, pool: &Db) {
        let (tenant, hash) = (&self.key.0, &self.key.1);
        match db::files::by_hash(pool, *tenant, hash).await {
            Ok(Some(_)) => {}
            Ok(None) => match self.store.content.remove(*tenant, hash).await {
                Ok(true) => {
                    tracing::info!(tenant = tenant.0, hash, "removed content no room offers")
                }
                Ok(false) => {}
                Err(e) => tracing::warn!(tenant = tenant.0, hash, cause = %e, "removing content"),
            },
            Err(e) => tracing::warn!(cause = %e, "looking for a file's row before removing it"),
        }
    }
}

impl Store {
    /// Creates the store's directories under `data_dir`: contents in
    /// `files/` ([`content::Dir`]), partial uploads in `uploads/`.
    pub(crate) fn open(data_dir: &Path) -> io::Result<Self> {
        let content = Arc::new(content::Dir::open(data_dir.join("files"))?);
        let s = Self { content, uploads: data_dir.join("uploads"), locks: Arc::default() };
        std::fs::create_dir_all(&s.uploads)?;
        Ok(s)
    }

    /// Where finished contents are kept.
    pub(crate) fn content(&self) -> &Arc<dyn ContentStore> {
        &self.content
    }

    /// Takes the lock of the tenant's content `hash` (see [`Store::locks`]).
    pub(crate) async fn lock_content(&self, tenant: TenantId, hash: &str) -> ContentLock {
        let key = (tenant, hash.to_owned());
        let mutex = {
            let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
            locks.entry(key.clone()).or_default().clone()
        };
        ContentLock { store: self.clone(), key, _guard: mutex.lock_owned().await }
    }

    /// Removes the tenant's content `hash` from disk if no file row names
    /// it (a deleted room's files that no other room offers).
    pub(crate) async fn remove_unreferenced(&self, pool: &Db, tenant: TenantId, hash: &str) {
        self.lock_content(tenant, hash).await.remove_if_unreferenced(pool).await;
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

    /// Hands a complete, fsynced upload to the content store, durably.
    pub(crate) async fn promote(
        &self,
        upload_id: &str,
        tenant: TenantId,
        hash: &str,
    ) -> io::Result<()> {
        self.content.put(&self.part_path(upload_id), tenant, hash).await
    }

    /// Start-up sweep: removes stored files without a row (a crash between
    /// rename and commit) and partial files without an upload row.
    pub(crate) fn sweep(
        &self,
        rows: &[(i64, String)],
        uploads: &[String],
    ) -> io::Result<(usize, usize)> {
        let keep: HashSet<(TenantId, String)> =
            rows.iter().map(|(t, h)| (TenantId(*t), h.clone())).collect();
        let orphans = self.content.retain(&keep)?;
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

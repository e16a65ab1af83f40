//! File transfer: limits and live state shared by every connection. What
//! `upload.begin` decides (dedupe, resume, quota) is in [`begin`]; the
//! stream handlers are in [`upload`] and [`download`]; an upload's bytes are
//! hashed and written beside the network by [`writer`], past the page cache
//! where the file system allows ([`direct`]).
//!
//! Bounds: uploads per connection are capped by QUIC's stream limit (the
//! server grants `max_uploads_per_connection` unidirectional streams), bytes
//! in flight by the stream and connection receive windows, downloads per
//! connection by a semaphore, and stored bytes by the per-tenant quota, which
//! counts bytes still arriving so concurrent uploads cannot overshoot it.

mod begin;
pub(crate) mod cluster;
mod direct;
pub(crate) mod download;
pub(crate) mod upload;
mod writer;

pub(crate) use begin::{Begin, begin};
pub(crate) use cluster::ClusterClaims;
pub(crate) use writer::WriteBudget;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use tokio_util::sync::{CancellationToken, DropGuard};

use crate::db::{Content, RoomId, TenantId, UserId};
use crate::store::Store;

/// How long a take-over waits for the stream holding an upload to let go.
/// The holder stops at its next read (at once when its connection is dead)
/// and flushes what it wrote, so this is a backstop.
const TAKE_OVER_WAIT: Duration = Duration::from_secs(10);

/// Transfer limits from the configuration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TransferLimits {
    pub(crate) max_file_size: u64,
    pub(crate) tenant_quota: u64,
    pub(crate) max_downloads_per_connection: usize,
}

/// Bytes received but not yet written to partial files, across every upload
/// on the server, in MiB: received bytes beyond it wait in QUIC's receive
/// windows (so the senders wait) until the disk catches up.
const WRITE_BEHIND_MIB: usize = 64;

/// Shared transfer state.
#[derive(Debug)]
pub(crate) struct Transfers {
    pub(crate) store: Store,
    pub(crate) limits: TransferLimits,
    /// Bounds the bytes queued for writing ([`WRITE_BEHIND_MIB`]).
    pub(crate) write_budget: WriteBudget,
    state: Mutex<State>,
    /// In a cluster: claims in the database too, seen by every node.
    cluster: Option<ClusterClaims>,
}

#[derive(Debug, Default)]
struct State {
    /// Uploads being received right now (one stream each).
    active: HashMap<String, Active>,
    /// Bytes received but not yet stored, per tenant.
    in_flight: HashMap<TenantId, u64>,
    /// Per tenant, the bytes of every upload stored since start (only ever
    /// grows): a stream that read the stored bytes when this stood at `x`
    /// adds what it grew by since, instead of asking the database again.
    stored_added: HashMap<TenantId, u64>,
    /// Tells claims apart (an entry is only removed by its own claim).
    next_claim: u64,
}

/// What took an upload over from the stream holding it, for that stream's
/// failure message (PROTOCOL.md §9.5, code 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TakenBy {
    /// A newer upload stream of the owner.
    Stream,
    /// The owner's `upload.status`.
    Status,
    /// The owner's `upload.begin`, resuming the upload.
    Begin,
    /// The owner's stream, `upload.begin` or `upload.status` on another
    /// node of the cluster.
    OtherNode,
}

impl TakenBy {
    /// For the old stream's `upload.failed` message.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Self::Stream => "taken over by a newer stream of the same upload",
            Self::Status => "taken over by upload.status for the same upload",
            Self::Begin => "taken over by upload.begin resuming the same upload",
            Self::OtherNode => "taken over by the same upload on another node",
        }
    }
}

/// The stream holding an upload.
#[derive(Debug)]
struct Active {
    claim: u64,
    /// Asks the holder to stop.
    stop: CancellationToken,
    /// Set (once) by what takes the upload over, before `stop` fires.
    taken_by: Arc<OnceLock<TakenBy>>,
    /// Tells the holder its uploader may no longer post in the room: stop
    /// and discard.
    revoked: CancellationToken,
    /// Cancelled once the holder has let go.
    released: CancellationToken,
}

/// What [`Claim::reserve`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reserve {
    /// Counted.
    Granted,
    /// The tenant's quota would be exceeded; nothing counted.
    OverQuota,
}

impl Transfers {
    pub(crate) fn new(store: Store, limits: TransferLimits) -> Self {
        Self {
            store,
            limits,
            write_budget: WriteBudget::new(WRITE_BEHIND_MIB),
            state: Mutex::default(),
            cluster: None,
        }
    }

    /// The same, claiming uploads in the database too (cluster mode).
    pub(crate) fn clustered(self, claims: ClusterClaims) -> Self {
        Self { cluster: Some(claims), ..self }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Claims an upload for one stream. When another stream holds it — in
    /// practice one from a connection that died without the server noticing
    /// yet — that stream is told to stop, and this waits (bounded) until it
    /// has let go. `None` when the holder did not let go in time or another
    /// stream claimed it first. The caller must have checked that the upload
    /// is the caller's own: only its owner may take it over.
    pub(crate) async fn claim(
        self: &Arc<Self>,
        upload_id: &str,
        tenant: TenantId,
    ) -> Option<Claim> {
        let mut claim = match self.try_claim(upload_id, tenant) {
            Some(c) => c,
            None => {
                if !self.take_over(upload_id, TakenBy::Stream).await {
                    return None;
                }
                self.try_claim(upload_id, tenant)?
            }
        };
        // Then in the database, where a stream on another node may hold it.
        if let Some(cluster) = &self.cluster {
            let id: i64 = rand::random();
            if !cluster.hold(upload_id, id, TAKE_OVER_WAIT).await {
                return None;
            }
            claim.db_claim = Some(id);
        }
        Some(claim)
    }

    /// Stops this node's stream of `upload_id`, as another node resuming
    /// it asks; with none here, lets go of this node's claim in the
    /// database (one left behind).
    pub(crate) async fn stop_for_other_node(&self, upload_id: &str) {
        let held = {
            let st = self.lock();
            st.active.get(upload_id).map(|active| {
                let _ = active.taken_by.set(TakenBy::OtherNode);
                active.stop.cancel();
            })
        };
        if held.is_none()
            && let Some(cluster) = &self.cluster
        {
            cluster.release_mine(upload_id).await;
        }
    }

    /// Claims an upload if no stream holds it.
    pub(crate) fn try_claim(self: &Arc<Self>, upload_id: &str, tenant: TenantId) -> Option<Claim> {
        let mut st = self.lock();
        if st.active.contains_key(upload_id) {
            return None;
        }
        st.next_claim += 1;
        let claim = st.next_claim;
        let stop = CancellationToken::new();
        let revoked = CancellationToken::new();
        let released = CancellationToken::new();
        let taken_by = Arc::new(OnceLock::new());
        st.active.insert(
            upload_id.to_owned(),
            Active {
                claim,
                stop: stop.clone(),
                taken_by: taken_by.clone(),
                revoked: revoked.clone(),
                released: released.clone(),
            },
        );
        let added_seen = st.stored_added.get(&tenant).copied().unwrap_or(0);
        Some(Claim {
            transfers: self.clone(),
            upload_id: upload_id.to_owned(),
            tenant,
            claim,
            bytes: 0,
            stored: 0,
            added_seen,
            stop,
            taken_by,
            revoked,
            db_claim: None,
            _released: released.drop_guard(),
        })
    }

    /// Tells the stream holding `upload_id`, if any, that the upload was
    /// cancelled (its uploader may no longer post in its room, or the room
    /// is gone): it stops with stream code `forbidden` and discards its
    /// bytes. `true` when a stream held it.
    pub(crate) fn revoke(&self, upload_id: &str) -> bool {
        let st = self.lock();
        let Some(active) = st.active.get(upload_id) else { return false };
        active.revoked.cancel();
        true
    }

    /// Makes the stream holding `upload_id` (if any) stop and waits, at most
    /// [`TAKE_OVER_WAIT`], until it has let go and flushed its bytes; `true`
    /// when nothing holds the upload any more. The caller must have checked
    /// that the upload is the caller's own.
    pub(crate) async fn take_over(&self, upload_id: &str, by: TakenBy) -> bool {
        self.take_over_within(upload_id, by, TAKE_OVER_WAIT).await
    }

    /// The bytes held for one of the caller's uploads, after taking it over
    /// from any stream still holding it (in practice one from a connection
    /// that died without the server noticing yet), so the answer is final
    /// and the caller's next stream is not refused as a conflict.
    ///
    /// # Errors
    /// When the partial file cannot be read.
    pub(crate) async fn held_now(&self, upload_id: &str, by: TakenBy) -> std::io::Result<u64> {
        if !self.take_over(upload_id, by).await {
            tracing::warn!(upload_id, "the stream holding an upload did not let go in time");
        }
        if let Some(cluster) = &self.cluster
            && !cluster.wait_free(upload_id, TAKE_OVER_WAIT).await
        {
            tracing::warn!(upload_id, "the node holding an upload did not let go in time");
        }
        self.store.held(upload_id).await
    }

    async fn take_over_within(&self, upload_id: &str, by: TakenBy, wait: Duration) -> bool {
        let released = {
            let st = self.lock();
            let Some(active) = st.active.get(upload_id) else {
                return true;
            };
            // The first taker is the one the holder stops for.
            let _ = active.taken_by.set(by);
            active.stop.cancel();
            active.released.clone()
        };
        tracing::info!(upload_id, "taking an upload over from another stream");
        tokio::time::timeout(wait, released.cancelled()).await.is_ok()
    }
}

/// An upload being received; releases its claim and in-flight bytes on drop.
#[derive(Debug)]
pub(crate) struct Claim {
    transfers: Arc<Transfers>,
    upload_id: String,
    tenant: TenantId,
    claim: u64,
    /// Bytes counted in flight for this upload.
    bytes: u64,
    /// The tenant's stored bytes as this claim counts them: as last read,
    /// plus the uploads stored since ([`State::stored_added`] then).
    stored: u64,
    added_seen: u64,
    stop: CancellationToken,
    taken_by: Arc<OnceLock<TakenBy>>,
    revoked: CancellationToken,
    /// This claim's id in the database, in a cluster.
    db_claim: Option<i64>,
    /// Tells a waiting take-over that this claim is gone (on drop, after the
    /// entry is removed).
    _released: DropGuard,
}

impl Claim {
    /// The tenant the upload counts against.
    pub(crate) fn tenant(&self) -> TenantId {
        self.tenant
    }

    /// Cancelled when another stream or request of the upload's owner
    /// takes it over.
    pub(crate) fn stop_token(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// What took the upload over, for after [`Claim::stop_token`] fired;
    /// a handle, so the receive loop can ask while it lends the claim out.
    pub(crate) fn taken_by(&self) -> impl Fn() -> TakenBy + use<> {
        let taken_by = self.taken_by.clone();
        move || taken_by.get().copied().unwrap_or(TakenBy::Stream)
    }

    /// Cancelled when the upload is revoked ([`Transfers::revoke`]).
    pub(crate) fn revoke_token(&self) -> CancellationToken {
        self.revoked.clone()
    }

    /// A mark to take before reading the tenant's stored bytes from the
    /// database; pass both to [`Claim::set_stored`]. An upload stored while
    /// the read runs is then counted even if the read missed it (and twice
    /// if it did not: the quota errs on the safe side until the next read).
    pub(crate) fn stored_mark(&self) -> u64 {
        self.transfers.lock().stored_added.get(&self.tenant).copied().unwrap_or(0)
    }

    /// Records the tenant's stored bytes, read after `mark` was taken.
    pub(crate) fn set_stored(&mut self, stored: u64, mark: u64) {
        self.stored = stored;
        self.added_seen = mark;
    }

    /// Counts `n` more bytes against the tenant's quota: stored bytes plus
    /// everything in flight, across all of the tenant's uploads. A refused
    /// upload fails, so its bytes leave the count in the same step: of two
    /// uploads that reach the quota together, exactly one is refused.
    pub(crate) fn reserve(&mut self, n: u64) -> Reserve {
        let mut st = self.transfers.lock();
        // Uploads stored since the last look move from in flight (where
        // they no longer count) to this claim's stored bytes.
        let added = st.stored_added.get(&self.tenant).copied().unwrap_or(0);
        self.stored = self.stored.saturating_add(added.saturating_sub(self.added_seen));
        self.added_seen = added;
        let flying = st.in_flight.entry(self.tenant).or_default();
        if self.stored.saturating_add(*flying).saturating_add(n)
            > self.transfers.limits.tenant_quota
        {
            let mine = self.bytes;
            release_in_flight(&mut st, self.tenant, mine);
            self.bytes = 0;
            return Reserve::OverQuota;
        }
        *flying += n;
        self.bytes += n;
        Reserve::Granted
    }

    /// Gives back the bytes counted in flight (a failed upload, before its
    /// bytes are discarded), so other uploads are not refused meanwhile.
    pub(crate) fn release_in_flight(&mut self) {
        release_in_flight(&mut self.transfers.lock(), self.tenant, self.bytes);
        self.bytes = 0;
    }

    /// The upload is recorded as a stored file of `size` bytes: its bytes
    /// leave the in-flight count and join every stream's stored bytes in one
    /// step, so no stream counts them nowhere (or twice).
    pub(crate) fn stored(mut self, size: u64) {
        let mut st = self.transfers.lock();
        let added = st.stored_added.entry(self.tenant).or_default();
        *added = added.saturating_add(size);
        release_in_flight(&mut st, self.tenant, self.bytes);
        self.bytes = 0;
    }
}

fn release_in_flight(st: &mut State, tenant: TenantId, bytes: u64) {
    if let Some(f) = st.in_flight.get_mut(&tenant) {
        *f = f.saturating_sub(bytes);
        if *f == 0 {
            st.in_flight.remove(&tenant);
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut st = self.transfers.lock();
        if st.active.get(&self.upload_id).is_some_and(|a| a.claim == self.claim) {
            st.active.remove(&self.upload_id);
        }
        release_in_flight(&mut st, self.tenant, self.bytes);
        drop(st);
        if let (Some(id), Some(cluster)) = (self.db_claim, &self.transfers.cluster) {
            cluster.release_later(self.upload_id.clone(), id);
        }
    }
}

/// The upload id of a share named by a client key: the same key, room and
/// content from the same user always give the same id (so a repeated
/// `upload.begin` finds its upload, or its file message once stored), and
/// anything else a different one. 32 lower-case hex digits, like
/// [`new_upload_id`].
pub(crate) fn keyed_upload_id(
    tenant: TenantId,
    user: UserId,
    room: RoomId,
    key: &str,
    content: Content<'_>,
    size: u64,
) -> String {
    let mut h = blake3::Hasher::new_derive_key("qchat 2026-11 upload id from client key");
    for n in [tenant.0, user.0, room.0] {
        h.update(&n.to_le_bytes());
    }
    h.update(&size.to_le_bytes());
    // A head is marked as one, so it never names the upload a hash would.
    match content {
        Content::Hash(hash) => h.update(hash.as_bytes()),
        Content::Head(head) => h.update(b"head:").update(head.as_bytes()),
    };
    h.update(&(key.len() as u64).to_le_bytes());
    h.update(key.as_bytes());
    hex::encode(&h.finalize().as_bytes()[..16])
}

/// A new upload id: 16 random bytes, hex (safe as a file name by construction).
pub(crate) fn new_upload_id() -> String {
    let mut raw = [0u8; 16];
    rand::Rng::fill_bytes(&mut rand::rng(), &mut raw);
    hex::encode(raw)
}

/// Whether `id` looks like one of ours (so it can be used in a path).
pub(crate) fn valid_upload_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Transfers over a store in `dir` whose file size and tenant quota are
    /// both `quota` (also for the upload modules' tests).
    pub(super) fn transfers(dir: &tempfile::TempDir, quota: u64) -> Arc<Transfers> {
        let store = Store::open(dir.path()).expect("store");
        let limits = TransferLimits {
            max_file_size: quota,
            tenant_quota: quota,
            max_downloads_per_connection: 1,
        };
        Arc::new(Transfers::new(store, limits))
    }

    const T: TenantId = TenantId(1);

    #[tokio::test]
    async fn a_newer_claim_takes_over_and_the_old_one_is_told() {
        let dir = tempfile::tempdir().expect("tempdir");
        let t = transfers(&dir, 100);
        let old = t.try_claim("u", T).expect("free");
        assert!(t.try_claim("u", T).is_none(), "held");
        // The holder lets go when told, as a stream does at its next read.
        let holder = tokio::spawn(async move {
            old.stop_token().cancelled().await;
            drop(old);
        });
        let new = t.claim("u", T).await.expect("taken over");
        holder.await.expect("holder");
        assert!(t.try_claim("u", T).is_none(), "the new claim holds it");
        drop(new);
        assert!(t.take_over("u", TakenBy::Status).await, "nothing holds it");
        assert!(t.try_claim("u", T).is_some());
    }

    #[tokio::test]
    async fn a_holder_that_never_lets_go_bounds_the_take_over() {
        let dir = tempfile::tempdir().expect("tempdir");
        let t = transfers(&dir, 100);
        let stuck = t.try_claim("u", T).expect("free");
        let by = TakenBy::Begin;
        assert!(!t.take_over_within("u", by, Duration::from_millis(50)).await, "gave up");
        assert_eq!(stuck.taken_by()(), TakenBy::Begin, "the holder learns who took it");
        assert!(t.try_claim("u", T).is_none(), "still held");
        drop(stuck);
        assert!(t.try_claim("u", T).is_some());
    }

    #[test]
    fn an_upload_stored_meanwhile_counts_against_the_others_at_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let t = transfers(&dir, 100);
        let mut a = t.try_claim("a", T).expect("a");
        let mut b = t.try_claim("b", T).expect("b");
        // Both read the stored bytes (0) before a is stored.
        a.set_stored(0, a.stored_mark());
        b.set_stored(0, b.stored_mark());
        assert_eq!(a.reserve(60), Reserve::Granted);
        assert_eq!(b.reserve(30), Reserve::Granted);
        a.stored(60);
        // a's 60 bytes left the in-flight count and are stored now: b counts
        // them without reading the database again.
        assert_eq!(b.reserve(10), Reserve::Granted, "60 stored + 30 + 10");
        assert_eq!(b.reserve(1), Reserve::OverQuota);
        assert!(t.lock().in_flight.is_empty(), "the refused upload's bytes are given back");
        b.release_in_flight();
        drop(b);
        assert!(t.lock().in_flight.is_empty());
        assert!(t.lock().active.is_empty());
        // A read that raced the store (mark taken before it) counts it too.
        let mut c = t.try_claim("c", T).expect("c");
        c.set_stored(0, 0);
        assert_eq!(c.reserve(40), Reserve::Granted);
        assert_eq!(c.reserve(1), Reserve::OverQuota, "the 60 stored bytes count");
    }

    #[test]
    fn of_two_uploads_reaching_the_quota_together_one_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let t = transfers(&dir, 100);
        let mut a = t.try_claim("a", T).expect("a");
        let mut b = t.try_claim("b", T).expect("b");
        assert_eq!(a.reserve(50), Reserve::Granted);
        assert_eq!(b.reserve(50), Reserve::Granted);
        assert_eq!(a.reserve(1), Reserve::OverQuota);
        assert_eq!(b.reserve(1), Reserve::Granted, "a's 50 bytes left with its refusal");
        assert_eq!(b.reserve(49), Reserve::Granted);
    }

    #[test]
    fn keyed_ids_name_one_share() {
        let id = |k: &str, hash: &str, room: i64| {
            keyed_upload_id(T, UserId(2), RoomId(room), k, Content::Hash(hash), 10)
        };
        let h = "a".repeat(64);
        assert_eq!(id("k", &h, 3), id("k", &h, 3));
        assert!(valid_upload_id(&id("k", &h, 3)));
        assert_ne!(id("k", &h, 3), id("k2", &h, 3));
        assert_ne!(id("k", &h, 3), id("k", &"b".repeat(64), 3));
        assert_ne!(id("k", &h, 3), id("k", &h, 4));
        let head = keyed_upload_id(T, UserId(2), RoomId(3), "k", Content::Head(&h), 10);
        assert_ne!(head, id("k", &h, 3), "a head never names a hash's upload");
    }
}

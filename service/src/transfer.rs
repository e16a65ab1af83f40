//! File transfer: limits and live state shared by every connection. The
//! stream handlers are in [`upload`] and [`download`].
//!
//! Bounds: uploads per connection are capped by QUIC's stream limit (the
//! server grants `max_uploads_per_connection` unidirectional streams), bytes
//! in flight by the stream and connection receive windows, downloads per
//! connection by a semaphore, and stored bytes by the per-tenant quota, which
//! counts bytes still arriving so concurrent uploads cannot overshoot it.

pub(crate) mod download;
pub(crate) mod upload;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use crate::db::TenantId;
use crate::store::Store;

/// Transfer limits from the configuration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TransferLimits {
    pub(crate) max_file_size: u64,
    pub(crate) tenant_quota: u64,
    pub(crate) max_downloads_per_connection: usize,
}

/// Shared transfer state.
#[derive(Debug)]
pub(crate) struct Transfers {
    pub(crate) store: Store,
    pub(crate) limits: TransferLimits,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Uploads being received right now (one stream each).
    active: HashSet<String>,
    /// Bytes received but not yet stored, per tenant.
    in_flight: HashMap<TenantId, u64>,
}

impl Transfers {
    pub(crate) fn new(store: Store, limits: TransferLimits) -> Self {
        Self { store, limits, state: Mutex::default() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Claims an upload for one stream; `None` when another stream has it.
    pub(crate) fn claim(self: &Arc<Self>, upload_id: &str, tenant: TenantId) -> Option<Claim> {
        let mut st = self.lock();
        if !st.active.insert(upload_id.to_owned()) {
            return None;
        }
        Some(Claim { transfers: self.clone(), upload_id: upload_id.to_owned(), tenant, bytes: 0 })
    }
}

/// An upload being received; releases its claim and in-flight bytes on drop.
#[derive(Debug)]
pub(crate) struct Claim {
    transfers: Arc<Transfers>,
    upload_id: String,
    tenant: TenantId,
    bytes: u64,
}

impl Claim {
    /// Counts `n` more bytes against the tenant's quota; `false` (nothing
    /// counted) when `stored` plus everything in flight would exceed it.
    pub(crate) fn reserve(&mut self, n: u64, stored: u64) -> bool {
        let mut st = self.transfers.lock();
        let flying = st.in_flight.entry(self.tenant).or_default();
        if stored.saturating_add(*flying).saturating_add(n) > self.transfers.limits.tenant_quota {
            return false;
        }
        *flying += n;
        self.bytes += n;
        true
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut st = self.transfers.lock();
        st.active.remove(&self.upload_id);
        if let Some(f) = st.in_flight.get_mut(&self.tenant) {
            *f = f.saturating_sub(self.bytes);
            if *f == 0 {
                st.in_flight.remove(&self.tenant);
            }
        }
    }
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

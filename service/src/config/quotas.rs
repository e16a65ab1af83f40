//! `[quotas]`: how much of each kind of thing users may create, per user
//! and per tenant.

use serde::Deserialize;

/// Limits on what users create (operators' `qchatd` commands are not
/// limited). Reaching one gets `quota_exceeded`. Defaults suit a tenant of
/// a few hundred people; a tenant's total also bounds what its members must
/// page through.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Quotas {
    /// Rooms one user may have created (0: users create none).
    pub rooms_per_user: u64,
    /// Rooms one tenant may hold, however made (0: users create none).
    pub rooms_per_tenant: u64,
}

impl Default for Quotas {
    fn default() -> Self {
        Self { rooms_per_user: 100, rooms_per_tenant: 10_000 }
    }
}

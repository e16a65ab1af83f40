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
    /// Direct messages are counted apart.
    pub rooms_per_tenant: u64,
    /// Direct messages one user may have opened (0: users open none).
    pub dms_per_user: u64,
    /// Direct messages one tenant may hold.
    pub dms_per_tenant: u64,
    /// Invitations one user may have pending (sent, not yet answered).
    pub invitations_per_user: u64,
    /// Invitations pending in one tenant.
    pub invitations_per_tenant: u64,
}

impl Default for Quotas {
    fn default() -> Self {
        Self {
            rooms_per_user: 100,
            rooms_per_tenant: 10_000,
            dms_per_user: 1_000,
            dms_per_tenant: 100_000,
            invitations_per_user: 1_000,
            invitations_per_tenant: 100_000,
        }
    }
}

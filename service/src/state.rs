//! The service's state: what every connection shares ([`Shared`], built
//! once by the server) and who a connection is logged in as ([`Login`]).
//! Sessions, request handlers and transfer streams depend on this module,
//! not on the server or the session that hand it to them.

use std::sync::Arc;

use crate::auth::Auth;
use crate::committer::Committer;
use crate::config::Config;
use crate::db::{Db, TenantId, UserId};
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::transfer::Transfers;

/// State shared by every connection.
pub(crate) struct Shared {
    /// The configuration the server started with.
    pub(crate) config: Config,
    /// Connections to the database, SQLite or PostgreSQL (the committer
    /// writes messages on its own).
    pub(crate) pool: Db,
    /// Room subscriptions, presence and fan-out.
    pub(crate) hub: Arc<Hub>,
    /// Password hashing, tokens and the failed-login limit.
    pub(crate) auth: Auth,
    /// The single message writer.
    pub(crate) committer: Committer,
    /// Prometheus counters.
    pub(crate) metrics: Arc<Metrics>,
    /// Upload and download state, the file store and its limits.
    pub(crate) transfers: Arc<Transfers>,
}

/// Who a connection is logged in as.
#[derive(Debug, Clone)]
pub(crate) struct Login {
    /// The tenant.
    pub(crate) tenant: TenantId,
    /// The tenant's name.
    pub(crate) tenant_name: String,
    /// The user.
    pub(crate) user: UserId,
    /// The user's name.
    pub(crate) user_name: String,
    /// SHA-256 of the session token (`logout` deletes that session).
    pub(crate) token_hash: Vec<u8>,
}

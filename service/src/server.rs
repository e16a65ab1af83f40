//! The QUIC endpoint: transport limits, the accept loop with its connection
//! cap, and an orderly shutdown that commits everything pending.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use qchat_protocol::CloseCode;
use quinn::crypto::rustls::QuicServerConfig;
use quinn::{Endpoint, Incoming, TransportConfig, VarInt};
use sqlx::SqlitePool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument as _;

use crate::auth::Auth;
use crate::committer::Committer;
use crate::config::Config;
use crate::hub::Hub;
use crate::{db, session, tls};

/// State shared by every connection.
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) pool: SqlitePool,
    pub(crate) hub: Arc<Hub>,
    pub(crate) auth: Auth,
    pub(crate) committer: Committer,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Creating the data directory or binding the socket failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The database could not be opened or migrated.
    #[error("opening database: {0}")]
    Db(#[from] sqlx::Error),
    /// The certificate could not be loaded or made.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

/// A bound, ready server. Call [`Server::run`] to serve.
pub struct Server {
    endpoint: Endpoint,
    shared: Arc<Shared>,
    committer_task: JoinHandle<()>,
    fingerprint: String,
}

impl Server {
    /// Opens the database, loads or makes the certificate and binds the socket.
    ///
    /// # Errors
    /// [`StartError`] naming what failed.
    pub async fn bind(config: Config) -> Result<Self, StartError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|source| StartError::Io {
            what: format!("creating data directory {}", config.data_dir.display()),
            source,
        })?;
        let pool = db::open(&config.data_dir, config.durability).await?;
        let expired = db::delete_expired_sessions(&pool).await?;
        tracing::debug!(expired, "removed expired sessions");
        let files = config.tls_cert.as_deref().zip(config.tls_key.as_deref());
        let identity = tls::load_or_generate(&config.data_dir, files, &config.public_names)?;
        let fingerprint = identity.fingerprint();
        let crypto = QuicServerConfig::try_from(tls::server_config(&identity)?)
            .map_err(|e| StartError::Other(format!("QUIC TLS config: {e}")))?;
        let mut server_config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
        server_config.transport_config(Arc::new(transport(&config)?));
        let endpoint = Endpoint::server(server_config, config.listen).map_err(|source| {
            StartError::Io { what: format!("binding {}", config.listen), source }
        })?;
        let hub = Arc::new(Hub::default());
        let (committer, committer_task) = Committer::spawn(pool.clone(), hub.clone());
        let auth = Auth::new().map_err(|e| StartError::Other(e.to_string()))?;
        let shared = Arc::new(Shared { config, pool, hub, auth, committer });
        Ok(Self { endpoint, shared, committer_task, fingerprint })
    }

    /// The address actually bound (useful with port 0).
    ///
    /// # Errors
    /// When the socket cannot report its address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.endpoint.local_addr()
    }

    /// SHA-256 fingerprint of the certificate, lower-case hex.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Serves until `shutdown` completes, then stops accepting, closes every
    /// connection with code `shutdown`, commits what is queued and returns.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let Self { endpoint, shared, committer_task, .. } = self;
        let cancel = CancellationToken::new();
        let tracker = TaskTracker::new();
        let ids = AtomicU64::new(1);
        tokio::pin!(shutdown);
        loop {
            let incoming = tokio::select! {
                () = &mut shutdown => break,
                i = endpoint.accept() => match i {
                    Some(i) => i,
                    None => break,
                },
            };
            if tracker.len() >= shared.config.limits.max_connections {
                tracing::warn!(remote = %incoming.remote_address(), "refusing connection: at capacity");
                incoming.refuse();
                continue;
            }
            let id = ids.fetch_add(1, Ordering::Relaxed);
            let span = tracing::info_span!("conn", id, remote = %incoming.remote_address());
            tracker
                .spawn(handle(incoming, shared.clone(), id, cancel.child_token()).instrument(span));
        }
        tracing::info!(connections = tracker.len(), "shutting down");
        cancel.cancel();
        tracker.close();
        if tokio::time::timeout(Duration::from_secs(10), tracker.wait()).await.is_err() {
            tracing::warn!("connections did not end in time");
        }
        endpoint.close(CloseCode::Shutdown.code().into(), b"server shutting down");
        let pool = shared.pool.clone();
        // The writer ends once the last Committer handle is gone, after
        // committing everything still queued.
        drop(shared);
        if let Err(e) = committer_task.await {
            tracing::error!(cause = %e, "message writer failed");
        }
        let _ = tokio::time::timeout(Duration::from_secs(3), endpoint.wait_idle()).await;
        pool.close().await;
        tracing::info!("stopped");
    }
}

async fn handle(incoming: Incoming, shared: Arc<Shared>, id: u64, cancel: CancellationToken) {
    let conn = match incoming.accept() {
        Ok(connecting) => match connecting.await {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(cause = %e, "handshake failed");
                return;
            }
        },
        Err(e) => {
            tracing::debug!(cause = %e, "accept failed");
            return;
        }
    };
    tracing::debug!("connected");
    session::run(shared, conn, id, cancel).await;
}

/// Transport limits: quinn's defaults are sized for throughput, not for a
/// public host that must bound what each stranger can make it hold.
fn transport(config: &Config) -> Result<TransportConfig, StartError> {
    let mut t = TransportConfig::default();
    let idle = quinn::IdleTimeout::try_from(config.limits.idle_timeout())
        .map_err(|e| StartError::Other(format!("idle timeout: {e}")))?;
    t.max_idle_timeout(Some(idle));
    // One control stream; unidirectional streams are reserved for files.
    t.max_concurrent_bidi_streams(VarInt::from_u32(1));
    t.max_concurrent_uni_streams(VarInt::from_u32(0));
    // A frame is at most 1 MiB; room for one in flight plus some.
    t.stream_receive_window(VarInt::from_u32(2 * 1024 * 1024));
    t.receive_window(VarInt::from_u32(4 * 1024 * 1024));
    t.send_window(8 * 1024 * 1024);
    t.datagram_receive_buffer_size(None);
    Ok(t)
}

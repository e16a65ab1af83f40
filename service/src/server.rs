//! The QUIC endpoint: transport limits, the accept loop with its connection
//! cap, and an orderly shutdown that commits everything pending.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use qchat_protocol::CloseCode;
use quinn::{Endpoint, Incoming, TransportConfig, VarInt};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument as _;

use crate::admission::{Admission, Decision};
use crate::auth::Auth;
use crate::bus::{self, Bus};
use crate::committer::Committer;
use crate::config::Config;
use crate::hub::Hub;
use crate::hub::remote::NodeId;
use crate::metrics::{self, Metrics};
use crate::reload::{self, ReloadError, Reloader};
use crate::state::Shared;
use crate::store::Store;
use crate::transfer::{self, ClusterClaims, TransferLimits, Transfers};
use crate::{db, session, tls};

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
    /// The certificate could not be made into a QUIC configuration.
    #[error(transparent)]
    Quic(#[from] ReloadError),
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
    reloader: Reloader,
    metrics_listener: Option<tokio::net::TcpListener>,
    /// The link to the other nodes, in cluster mode.
    bus: Option<Bus>,
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
        let url = config.database().map_err(StartError::Other)?;
        let pool = db::Db::open(&url, config.durability).await?;
        tracing::info!(backend = ?pool.backend(), database = ?url, "database open");
        let expired = db::sessions::delete_expired(&pool).await?;
        tracing::debug!(expired, "removed expired sessions");
        let files = config.tls_cert.as_deref().zip(config.tls_key.as_deref());
        let identity = tls::load_or_generate(&config.data_dir, files, &config.public_names)?;
        let fingerprint = identity.fingerprint();
        let transport = Arc::new(transport_config(&config)?);
        let server_config = reload::server_config(&identity, transport.clone())?;
        let cid_prefix = config.cluster.cid_prefix;
        let endpoint =
            bind_endpoint(server_config, config.listen, cid_prefix).map_err(|source| {
                StartError::Io { what: format!("binding {}", config.listen), source }
            })?;
        let cert_files = config.tls_cert.clone().zip(config.tls_key.clone());
        let reloader = Reloader::new(
            endpoint.clone(),
            config.data_dir.clone(),
            cert_files,
            config.public_names.clone(),
            transport,
        );
        let metrics_listener = match config.metrics_listen {
            Some(addr) => Some(metrics::bind(addr).await.map_err(|source| StartError::Io {
                what: format!("binding metrics_listen {addr}"),
                source,
            })?),
            None => None,
        };
        let metrics = Arc::new(Metrics::default());
        let store_dir = config.cluster.files_dir.clone().unwrap_or_else(|| config.data_dir.clone());
        let store = Store::open(&store_dir).map_err(|source| StartError::Io {
            what: format!("creating the file store in {}", store_dir.display()),
            source,
        })?;
        // In a cluster another node may be between storing a file and
        // committing its row: only a single node sweeps what lacks a row.
        let sweep = !config.cluster.enabled();
        sweep_uploads(&pool, &store, config.files.upload_max_age_secs, sweep).await?;
        let transfers = Transfers::new(
            store,
            TransferLimits {
                max_file_size: config.files.max_file_size,
                tenant_quota: config.files.tenant_quota,
                max_downloads_per_connection: config.files.max_downloads_per_connection,
            },
        );
        let (hub, bus, transfers) = if config.cluster.enabled() {
            let node: NodeId = rand::random();
            let (to_bus, from_hub) = tokio::sync::mpsc::channel(crate::hub::BUS_QUEUE);
            let hub = Arc::new(Hub::clustered(to_bus, metrics.clone()));
            let bus = Bus::connect(&config.cluster, node, from_hub)
                .await
                .map_err(|e| StartError::Other(e.to_string()))?;
            // Deliver in seq order from where every room stands now.
            let rooms = bus::load_baselines(&pool, &hub).await?;
            tracing::debug!(rooms, "delivery baselines loaded");
            let claims = ClusterClaims::new(node, pool.clone(), hub.clone());
            (hub, Some(bus), Arc::new(transfers.clustered(claims)))
        } else {
            (Arc::new(Hub::default()), None, Arc::new(transfers))
        };
        let (committer, committer_task) = Committer::spawn(
            pool.clone(),
            hub.clone(),
            metrics.clone(),
            config.quotas.clone(),
            config.max_commit_batch,
        );
        let auth = Auth::new()
            .map_err(|e| StartError::Other(e.to_string()))?
            .with_rate_limit(config.limits.login_failures, config.limits.login_failure_window())
            .with_check_limit(config.limits.max_password_checks)
            .with_metrics(metrics.clone());
        let shared = Arc::new(Shared { config, pool, hub, auth, committer, metrics, transfers });
        Ok(Self { endpoint, shared, committer_task, fingerprint, reloader, metrics_listener, bus })
    }

    /// A handle that reloads the certificate from disk (on SIGHUP).
    pub fn reloader(&self) -> Reloader {
        self.reloader.clone()
    }

    /// The address of the metrics port, when configured.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener.as_ref().and_then(|l| l.local_addr().ok())
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
        let Self { endpoint, shared, committer_task, metrics_listener, bus, .. } = self;
        let cancel = CancellationToken::new();
        let tracker = TaskTracker::new();
        let ids = AtomicU64::new(1);
        let admission = Arc::new(Admission::default());
        // Server-wide tasks, apart from connections so counts stay honest;
        // both end on `cancel` and are awaited below.
        let background = TaskTracker::new();
        if let Some(listener) = metrics_listener {
            background.spawn(metrics::serve(
                listener,
                shared.metrics.clone(),
                cancel.child_token(),
            ));
        }
        background.spawn(expire_uploads(shared.clone(), cancel.child_token()));
        if let Some(bus) = bus {
            background.spawn(bus.run(
                shared.hub.clone(),
                shared.pool.clone(),
                shared.transfers.clone(),
                cancel.child_token(),
            ));
            background
                .spawn(transfer::cluster::renew(shared.transfers.clone(), cancel.child_token()));
        }
        tokio::pin!(shutdown);
        loop {
            let incoming = tokio::select! {
                () = &mut shutdown => break,
                i = endpoint.accept() => match i {
                    Some(i) => i,
                    None => break,
                },
            };
            let remote = incoming.remote_address();
            let validated = incoming.remote_address_validated();
            let ticket = match admission.decide(remote.ip(), validated, &shared.config.limits) {
                Decision::Accept(t) => t,
                Decision::Retry => {
                    shared.metrics.retried();
                    if let Err(e) = incoming.retry() {
                        tracing::debug!(cause = %e, "retry impossible");
                    }
                    continue;
                }
                Decision::Refuse(why) => {
                    tracing::warn!(%remote, why, "refusing connection");
                    shared.metrics.refused();
                    incoming.refuse();
                    continue;
                }
            };
            let id = ids.fetch_add(1, Ordering::Relaxed);
            let span = tracing::info_span!("conn", id, %remote);
            let arrived = tokio::time::Instant::now();
            // Boxed: the packet and keys of a connection attempt (about
            // 0.4 KiB) are needed only until the handshake, but as the
            // task's argument they would stay in it for the connection's
            // whole life (docs/BENCHMARKS.md, "Idle connections").
            let incoming = Box::new(incoming);
            let conn = handle(incoming, arrived, shared.clone(), id, cancel.child_token(), ticket);
            tracker.spawn(conn.instrument(span));
        }
        tracing::info!(connections = tracker.len(), "shutting down");
        cancel.cancel();
        tracker.close();
        if tokio::time::timeout(Duration::from_secs(10), tracker.wait()).await.is_err() {
            tracing::warn!("connections did not end in time");
        }
        background.close();
        if tokio::time::timeout(Duration::from_secs(5), background.wait()).await.is_err() {
            tracing::warn!("background tasks did not end in time");
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

async fn handle(
    incoming: Box<Incoming>,
    arrived: tokio::time::Instant,
    shared: Arc<Shared>,
    id: u64,
    cancel: CancellationToken,
    mut ticket: crate::admission::Ticket,
) {
    // Out of its box at once, so that the box is freed now and not when
    // this function returns (a moved-from box keeps its allocation until
    // it goes out of scope).
    let incoming = {
        let boxed = incoming;
        *boxed
    };
    let handshake = match incoming.accept() {
        Ok(connecting) => connecting.await,
        Err(e) => {
            tracing::debug!(cause = %e, "accept failed");
            return;
        }
    };
    ticket.handshake_done();
    let conn = match handshake {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!(cause = %e, "handshake failed");
            return;
        }
    };
    let handshake_ms = u64::try_from(arrived.elapsed().as_millis()).unwrap_or(u64::MAX);
    tracing::debug!(handshake_ms, "connected");
    shared.metrics.connection_opened();
    let metrics = shared.metrics.clone();
    session::run(shared, conn.clone(), id, cancel, arrived).await;
    let stats = conn.stats();
    metrics.connection_closed(stats.udp_rx.bytes, stats.udp_tx.bytes);
    drop(ticket);
}

/// Socket buffer asked for in each direction. A burst (a client's whole
/// flow-control window arriving while this process waits for a core) must
/// fit: at the kernel's 208 KiB default the socket drops datagrams, and a
/// dropped CONNECTION_CLOSE leaves the peer's connection open until the idle
/// timeout. Linux caps the request at `net.core.rmem_max`/`wmem_max`.
const SOCKET_BUFFER: usize = 4 * 1024 * 1024;

/// Binds the UDP socket with [`SOCKET_BUFFER`] (best effort: a smaller cap
/// is logged, not fatal) and starts the endpoint on it.
fn bind_endpoint(
    config: quinn::ServerConfig,
    addr: SocketAddr,
    cid_prefix: Option<u8>,
) -> std::io::Result<Endpoint> {
    let socket = std::net::UdpSocket::bind(addr)?;
    let state = quinn::udp::UdpSocketState::new((&socket).into())?;
    for (what, result) in [
        ("receive", state.set_recv_buffer_size((&socket).into(), SOCKET_BUFFER)),
        ("send", state.set_send_buffer_size((&socket).into(), SOCKET_BUFFER)),
    ] {
        if let Err(e) = result {
            tracing::warn!(cause = %e, what, "could not enlarge the UDP socket buffer");
        }
    }
    let got = state.recv_buffer_size((&socket).into()).unwrap_or(0);
    if got < SOCKET_BUFFER {
        // Linux reports twice what it grants; less than asked means capped.
        tracing::warn!(
            receive_buffer = got,
            "UDP receive buffer capped below 4 MiB; raise net.core.rmem_max and \
             net.core.wmem_max (docs/OPERATIONS.md) or bursts will drop datagrams"
        );
    } else {
        tracing::debug!(receive_buffer = got, "UDP socket bound");
    }
    let runtime = quinn::default_runtime()
        .ok_or_else(|| std::io::Error::other("no async runtime for the endpoint"))?;
    let mut endpoint_config = quinn::EndpointConfig::default();
    if let Some(prefix) = cid_prefix {
        endpoint_config.cid_generator(move || Box::new(crate::cid::NodeCids { prefix }));
    }
    Endpoint::new(endpoint_config, Some(config), socket, runtime)
}

/// Ack-eliciting packets a client may receive before it must acknowledge
/// them (otherwise it does after its `max_ack_delay`, 25 ms by default).
/// Server CPU per delivery at 500 clients fell by about a sixth against the
/// QUIC default of 1 (docs/BENCHMARKS.md, "Peers", levers).
const ACK_ELICITING_THRESHOLD: u32 = 9;

/// Transport limits: quinn's defaults are sized for throughput, not for a
/// public host that must bound what each stranger can make it hold.
/// Public so that benchmark baselines run with exactly the server's settings.
///
/// # Errors
/// [`StartError::Other`] when the idle timeout is out of QUIC's range.
pub fn transport_config(config: &Config) -> Result<TransportConfig, StartError> {
    let mut t = TransportConfig::default();
    let idle = quinn::IdleTimeout::try_from(config.limits.idle_timeout())
        .map_err(|e| StartError::Other(format!("idle timeout: {e}")))?;
    t.max_idle_timeout(Some(idle));
    t.keep_alive_interval(config.limits.keep_alive());
    // One control stream; unidirectional streams are reserved for files.
    t.max_concurrent_bidi_streams(VarInt::from_u32(1));
    t.max_concurrent_uni_streams(VarInt::from_u32(config.limits.max_uni_streams));
    t.stream_receive_window(VarInt::from_u32(config.limits.stream_receive_window));
    t.receive_window(VarInt::from_u32(config.limits.receive_window));
    t.send_window(config.limits.send_window);
    t.datagram_receive_buffer_size(None);
    // Clients that support QUIC ACK frequency (every quinn client does) are
    // asked to acknowledge every tenth packet instead of every second: in a
    // busy room each delivery is a packet to another connection, and each
    // acknowledgement one more datagram to receive and decrypt.
    let mut ack = quinn::AckFrequencyConfig::default();
    ack.ack_eliciting_threshold(VarInt::from_u32(ACK_ELICITING_THRESHOLD));
    t.ack_frequency_config(Some(ack));
    Ok(t)
}

/// Deletes partial uploads older than `max_age_secs`, then (with `sweep`)
/// removes stored files without a row and partial files without an upload
/// (what a crash between two steps can leave). Runs before the server
/// accepts anyone.
async fn sweep_uploads(
    pool: &db::Db,
    store: &Store,
    max_age_secs: u64,
    sweep: bool,
) -> Result<(), StartError> {
    let expired = expire_stale(pool, store, max_age_secs).await?;
    if !sweep {
        tracing::info!(expired, "file store shared with other nodes; not swept");
        return Ok(());
    }
    let rows = db::files::all(pool).await?;
    let uploads = db::files::all_uploads(pool).await?;
    let (orphans, partials) = store
        .sweep(&rows, &uploads)
        .map_err(|source| StartError::Io { what: "sweeping the file store".into(), source })?;
    tracing::info!(expired, orphans, partials, "file store checked");
    Ok(())
}

async fn expire_stale(
    pool: &db::Db,
    store: &Store,
    max_age_secs: u64,
) -> Result<usize, sqlx::Error> {
    let age_ms = i64::try_from(max_age_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    let stale = db::files::stale_uploads(pool, db::now_ms().saturating_sub(age_ms)).await?;
    for id in &stale {
        store.discard(id).await;
        db::files::delete_upload(pool, id).await?;
    }
    Ok(stale.len())
}

/// Periodically expires stale partial uploads until cancelled.
async fn expire_uploads(shared: Arc<Shared>, cancel: CancellationToken) {
    let every = Duration::from_secs((shared.config.files.upload_max_age_secs / 4).clamp(60, 3600));
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        match expire_stale(
            &shared.pool,
            &shared.transfers.store,
            shared.config.files.upload_max_age_secs,
        )
        .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(expired = n, "expired stale uploads"),
            Err(e) => tracing::error!(cause = %e, "expiring stale uploads"),
        }
    }
}

//! The supervisor: one task per client that owns the event pipeline and the
//! connection's lifecycle.
//!
//! While connected it feeds server events through the [`Sequencer`] to the
//! application, issues the syncs the sequencer asks for, and writes outbox
//! entries. When the connection drops (and the client did not quit) it
//! reconnects with exponential backoff, resumes the session, syncs every
//! room from the last seq delivered, resends the outbox with the same
//! `client_msg_id`s, and only then reports [`ConnState::Connected`] and lets
//! waiting requests through.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use qchat_protocol::{
    Credentials, ErrorCode, Event, LoginOk, MessagesOk, Op, RemovedReason, Resume, RoomRemoved,
    RoomsOk, RoomsReq, SendOk, SyncReq,
};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::config::{Auth, ClientConfig, Trust};
use crate::connection::Connection;
use crate::dial::{self, RoundError};
use crate::error::ClientError;
use crate::events::ClientEvent;
use crate::mutex::lock;
use crate::outbox::SendResult;
use crate::sequencer::{Sequencer, Step, SyncFrom};
use crate::state::{ConnState, Shared};
use crate::trust::{self, Anchor};

/// First reconnect delay; doubles up to [`BACKOFF_MAX`].
const BACKOFF_START: Duration = Duration::from_millis(200);
/// Longest reconnect delay.
const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// Budget for one reconnect attempt: handshake, log-in and room list.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(20);
/// What the server's `sessions` list shows this client as.
const CLIENT_NAME: &str = concat!("qchat/", env!("CARGO_PKG_VERSION"));

/// The certificate a reconnect to `server` accepts: the one that address
/// presented earlier this session, else what the trust settings say for an
/// address not met yet (its known-hosts pins, or trust on first use).
fn anchor_for_reconnect(shared: &Shared, server: &str) -> Result<Anchor, ClientError> {
    match shared.cfg.trust {
        Trust::SystemRoots => Ok(Anchor::Roots),
        Trust::Fingerprint(_) | Trust::KnownHosts { .. } => match lock(&shared.pins).get(server) {
            Some(pin) => Ok(Anchor::Pin(vec![pin.clone()])),
            None => trust::initial_anchor(&shared.cfg, server),
        },
    }
}

/// Logs in on a fresh connection: `register` or `login` with a password,
/// `resume` with a token; on reconnect `resume` first and fall back to the
/// password if the token is refused.
///
/// # Errors
/// The server's refusal, or a lost connection.
pub(crate) async fn log_in(
    conn: &Connection,
    cfg: &ClientConfig,
    token: Option<&str>,
    register: bool,
) -> Result<LoginOk, ClientError> {
    let creds = |password: &str| Credentials {
        tenant: cfg.tenant.clone(),
        user: cfg.user.clone(),
        password: password.to_owned(),
        client: Some(CLIENT_NAME.to_owned()),
    };
    let token = token.or(match &cfg.auth {
        Auth::Token(t) => Some(t.as_str()),
        Auth::Password(_) => None,
    });
    if let Some(token) = token {
        match conn
            .request(Op::Resume(Resume {
                token: token.to_owned(),
                client: Some(CLIENT_NAME.to_owned()),
            }))
            .await
        {
            Err(e) if e.code() == Some(ErrorCode::Unauthorized) => {
                if !matches!(cfg.auth, Auth::Password(_)) {
                    return Err(e);
                }
                info!("session token refused; logging in with the password");
            }
            other => return other,
        }
    }
    match &cfg.auth {
        Auth::Password(p) if register => conn.request(Op::Register(creds(p))).await,
        Auth::Password(p) => conn.request(Op::Login(creds(p))).await,
        Auth::Token(_) => Err(ClientError::Protocol("no credentials left to try".to_owned())),
    }
}

/// Every room of the tenant, asking page after page (`rooms` with `after`)
/// while the server says `more`; one `RoomsOk` holding them all.
///
/// # Errors
/// The first failed page's error; [`ClientError::Protocol`] when a page
/// with `more` does not move past the previous one.
pub(crate) async fn all_rooms(conn: &Connection) -> Result<RoomsOk, ClientError> {
    let mut all = RoomsOk { rooms: Vec::new(), more: false };
    let mut after: Option<String> = None;
    loop {
        let page: RoomsOk = conn.request(Op::Rooms(RoomsReq { after: after.clone() })).await?;
        let last = page.rooms.last().map(|r| r.name.clone());
        all.rooms.extend(page.rooms);
        if !page.more {
            return Ok(all);
        }
        match last {
            Some(name) if after.as_ref().is_none_or(|a| *a < name) => after = Some(name),
            _ => {
                return Err(ClientError::Protocol("a rooms page with more did not advance".into()));
            }
        }
    }
}

/// Tracks the rooms of the server's list that the user joined and the
/// sequencer does not follow yet, each from its `last_seq` (only new
/// messages arrive as events). A tracked room missing from the list (left
/// elsewhere, kicked, banned or deleted while the connection was down)
/// stays tracked: its catch-up `sync` is refused, which untracks it and
/// tells the application ([`ClientEvent::RoomRemoved`]).
pub(crate) fn reconcile_rooms(seq: &mut Sequencer, rooms: &RoomsOk) {
    let tracked: Vec<String> = seq.tracked().into_iter().map(|(r, _)| r).collect();
    for room in &rooms.rooms {
        if room.joined && !tracked.iter().any(|t| t == room.key()) {
            seq.track(room.key(), room.last_seq);
        }
    }
}

/// How a session ended.
enum End {
    /// The client is stopping.
    Stop,
    /// The connection was lost, for this reason.
    Lost(String),
}

/// Where a (re)connected session stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Syncing rooms after a reconnect.
    Syncing,
    /// Resending the outbox after the syncs.
    Flushing,
    /// Connected; requests flow.
    Live,
}

/// The supervisor task. `conn` is the first connection, already logged in
/// and with the sequencer initialised.
pub(crate) async fn run(
    shared: Arc<Shared>,
    mut conn: Arc<Connection>,
    mut events: mpsc::Receiver<Event>,
    events_tx: mpsc::Sender<Event>,
    app: mpsc::Sender<ClientEvent>,
) {
    let mut generation = 0u64;
    let mut resync = false;
    let reason = loop {
        let lost = match session(&shared, &conn, generation, resync, &mut events, &app).await {
            End::Stop => break shared.closed_reason().unwrap_or_else(|| "stopped".to_owned()),
            End::Lost(reason) => reason,
        };
        shared.ready.send_replace(None);
        if shared.quitting.load(Ordering::SeqCst) || !shared.cfg.reconnect {
            break lost;
        }
        warn!(reason = %lost, "connection lost; reconnecting");
        match reconnect(&shared, lost, &events_tx, &app).await {
            Ok(new) => {
                conn = new;
                generation += 1;
                shared.reconnects.fetch_add(1, Ordering::Relaxed);
                resync = true;
            }
            Err(reason) => break reason,
        }
    };
    shared.close(&reason);
    *lock(&shared.current) = None;
    if let ConnState::Closed { reason } = shared.state.borrow().clone() {
        // Best effort: the application may have stopped reading.
        let _ = app.try_send(ClientEvent::State(ConnState::Closed { reason }));
    }
    debug!("supervisor stopped");
}

/// Reconnects with backoff until it works, the client stops (`Err` with the
/// reason to close with), or an error no retry can cure. Each attempt is a
/// round over the configured addresses, from the one after the address
/// just lost (with several nodes, the lost one is the likeliest to be
/// down).
async fn reconnect(
    shared: &Shared,
    mut last_error: String,
    events_tx: &mpsc::Sender<Event>,
    app: &mpsc::Sender<ClientEvent>,
) -> Result<Arc<Connection>, String> {
    let servers = shared.cfg.servers();
    let mut delay = BACKOFF_START;
    for attempt in 1u32.. {
        set_state(shared, app, ConnState::Reconnecting { attempt, last_error: last_error.clone() })
            .await
            .map_err(|()| "stopped".to_owned())?;
        // Jitter of up to +50% spreads a crowd of clients after a restart.
        let jitter = delay.mul_f64(rand::random::<f64>() * 0.5);
        tokio::select! {
            _ = tokio::time::sleep(delay + jitter) => {}
            _ = shared.cancel.cancelled() => return Err("stopped".to_owned()),
        }
        delay = (delay * 2).min(BACKOFF_MAX);
        let start = shared.server_index.load(Ordering::Relaxed) + 1;
        let try_round = dial::round(&servers, start, ATTEMPT_TIMEOUT, |index, server| {
            connect_again(shared, index, server, events_tx)
        });
        let result = tokio::select! {
            r = try_round => r,
            _ = shared.cancel.cancelled() => return Err("stopped".to_owned()),
        };
        match result {
            Ok((_, conn)) => return Ok(conn),
            Err(RoundError::Failed(failed)) => match failed.transient {
                Some(e) => {
                    debug!(attempt, cause = %e, "reconnect attempt failed");
                    last_error = e.to_string();
                }
                // Every address refused by the trust settings: no retry
                // changes that.
                None => return Err(failed.into_error().to_string()),
            },
            Err(RoundError::Fatal(e)) => return Err(e.to_string()),
        }
    }
    Err("gave up reconnecting".to_owned())
}

async fn connect_again(
    shared: &Shared,
    index: usize,
    server: String,
    events_tx: &mpsc::Sender<Event>,
) -> Result<Arc<Connection>, ClientError> {
    let anchor = anchor_for_reconnect(shared, &server)?;
    let conn =
        Connection::open(&shared.cfg, &server, &anchor, events_tx.clone(), &shared.tracker).await?;
    *lock(&shared.current) = Some(conn.clone());
    trust::record_if_new(&shared.cfg, &server, &anchor, conn.fingerprint())?;
    let token = lock(&shared.token).clone();
    let login = log_in(&conn, &shared.cfg, Some(&token), false).await?;
    *lock(&shared.token) = login.token;
    *lock(&shared.fingerprint) = conn.fingerprint().to_owned();
    lock(&shared.pins).insert(server.clone(), conn.fingerprint().to_owned());
    shared.server_index.store(index, Ordering::Relaxed);
    let rooms = all_rooms(&conn).await?;
    reconcile_rooms(&mut lock(&shared.sequencer), &rooms);
    info!(%server, "reconnected");
    Ok(conn)
}

/// Publishes a state change; `Err` when the client is stopping.
async fn set_state(
    shared: &Shared,
    app: &mpsc::Sender<ClientEvent>,
    state: ConnState,
) -> Result<(), ()> {
    if shared.cancel.is_cancelled() {
        return Err(());
    }
    shared.state.send_replace(state.clone());
    deliver(shared, app, ClientEvent::State(state)).await
}

/// Hands one event to the application, waiting while its queue is full (so
/// a slow application slows the reader instead of losing events). `Err` when
/// the client is stopping. An application that dropped its `Events` simply
/// gets nothing.
async fn deliver(
    shared: &Shared,
    app: &mpsc::Sender<ClientEvent>,
    ev: ClientEvent,
) -> Result<(), ()> {
    tokio::select! {
        _ = app.send(ev) => Ok(()),
        _ = shared.cancel.cancelled() => Err(()),
    }
}

type SyncDone = (String, Result<MessagesOk, ClientError>);
type SendDone = (String, SendResult);

/// Runs one connection until it ends or the client stops.
async fn session(
    shared: &Shared,
    conn: &Arc<Connection>,
    generation: u64,
    resync: bool,
    events: &mut mpsc::Receiver<Event>,
    app: &mpsc::Sender<ClientEvent>,
) -> End {
    let mut syncs: JoinSet<SyncDone> = JoinSet::new();
    let mut sends: JoinSet<SendDone> = JoinSet::new();
    // Server-opened streams whose header is being read; aborted with the
    // session (a routed stream belongs to its download task).
    let mut streams: JoinSet<()> = JoinSet::new();
    let mut phase = Phase::Syncing;
    if resync {
        let todo = lock(&shared.sequencer).resync_all();
        for sync in todo {
            spawn_sync(&mut syncs, conn, sync);
        }
    }
    loop {
        if phase == Phase::Syncing && syncs.is_empty() && !lock(&shared.sequencer).is_syncing() {
            phase = Phase::Flushing;
            flush_outbox(shared, conn, generation, &mut sends);
        }
        if phase == Phase::Flushing && sends.is_empty() {
            // Syncs and sends also finish by failing when the connection
            // drops; never announce a dead connection as connected.
            if conn.is_closed() {
                return End::Lost(conn.closed().await);
            }
            phase = Phase::Live;
            if resync && set_state(shared, app, ConnState::Connected).await.is_err() {
                return End::Stop;
            }
            shared.ready.send_replace(Some(conn.clone()));
            flush_outbox(shared, conn, generation, &mut sends);
        }
        tokio::select! {
            _ = shared.cancel.cancelled() => return End::Stop,
            reason = conn.closed() => return End::Lost(reason),
            uni = conn.accept_uni() => match uni {
                Ok(stream) => drop(streams.spawn(shared.transfers.clone().route(stream))),
                Err(_) => return End::Lost(conn.closed().await),
            },
            Some(_) = streams.join_next(), if !streams.is_empty() => {}
            Some(ev) = events.recv() => {
                let step = on_event(shared, ev, app).await;
                let Ok(step) = step else { return End::Stop };
                if apply(shared, app, conn, &mut syncs, step).await.is_err() {
                    return End::Stop;
                }
            }
            Some(done) = syncs.join_next() => {
                let Ok((room, result)) = done else { continue };
                let mut gone = None;
                let step = match result {
                    Ok(page) => lock(&shared.sequencer).on_sync_page(&room, page.messages, page.more),
                    Err(e) => {
                        debug!(%room, cause = %e, "sync failed");
                        let mut seq = lock(&shared.sequencer);
                        if matches!(e.code(), Some(ErrorCode::Forbidden | ErrorCode::NotFound)) {
                            seq.untrack(&room);
                            gone = Some(room);
                        } else {
                            seq.on_sync_failed(&room);
                        }
                        Step::default()
                    }
                };
                // The room left the user's reach while the connection was
                // down (kicked, banned, deleted): its `room.removed` went to
                // a connection that was gone, so say it here, reason unknown.
                if let Some(room) = gone {
                    let removed = RoomRemoved {
                        room: room.clone(),
                        room_id: room,
                        reason: RemovedReason::Unknown,
                        by: None,
                    };
                    if deliver(shared, app, ClientEvent::RoomRemoved(removed)).await.is_err() {
                        return End::Stop;
                    }
                }
                if apply(shared, app, conn, &mut syncs, step).await.is_err() {
                    return End::Stop;
                }
            }
            Some(done) = sends.join_next() => {
                let Ok((id, result)) = done else { continue };
                match result {
                    // Not answered, or refused only because the server is
                    // going away: it goes out again on the next connection.
                    Err(ClientError::Disconnected(_)) => {}
                    Err(e) if e.code() == Some(ErrorCode::Unavailable) => {}
                    result => lock(&shared.outbox).complete(&id, result),
                }
            }
            _ = shared.outbox_kick.notified(), if phase == Phase::Live => {
                flush_outbox(shared, conn, generation, &mut sends);
            }
        }
    }
}

/// Turns one server event into deliveries and syncs.
async fn on_event(shared: &Shared, ev: Event, app: &mpsc::Sender<ClientEvent>) -> Result<Step, ()> {
    Ok(match ev {
        Event::Message(msg) => lock(&shared.sequencer).on_message(msg),
        Event::Lagged(lagged) => {
            debug!(room = %lagged.room, "server reports lag; syncing");
            lock(&shared.sequencer).on_lagged(lagged.key())
        }
        Event::Presence(p) => {
            deliver(shared, app, ClientEvent::Presence(p)).await?;
            Step::default()
        }
        Event::Member(m) => {
            if m.user == shared.cfg.user && !m.joined {
                lock(&shared.sequencer).untrack(&m.room);
            }
            deliver(shared, app, ClientEvent::Member(m)).await?;
            Step::default()
        }
        // Joined on another connection, or a DM opened by someone else:
        // deliver its messages from here on.
        Event::Room(ev) => {
            if ev.room.joined {
                lock(&shared.sequencer).track(ev.room.key(), ev.room.last_seq);
            }
            deliver(shared, app, ClientEvent::Room(Box::new(ev.room))).await?;
            Step::default()
        }
        Event::RoomRemoved(r) => {
            {
                let mut seq = lock(&shared.sequencer);
                seq.untrack(&r.room_id);
                seq.untrack(&r.room);
            }
            deliver(shared, app, ClientEvent::RoomRemoved(r)).await?;
            Step::default()
        }
        Event::Read(r) => {
            deliver(shared, app, ClientEvent::Read(r)).await?;
            Step::default()
        }
        Event::Typing(t) => {
            deliver(shared, app, ClientEvent::Typing(t)).await?;
            Step::default()
        }
        // Progress for the upload task that is waiting for it.
        ev @ (Event::UploadDone(_) | Event::UploadFailed(_)) => {
            if let Some(ev) = shared.transfers.upload_event(ev) {
                debug!(?ev, "unexpected event");
            }
            Step::default()
        }
    })
}

async fn apply(
    shared: &Shared,
    app: &mpsc::Sender<ClientEvent>,
    conn: &Arc<Connection>,
    syncs: &mut JoinSet<SyncDone>,
    step: Step,
) -> Result<(), ()> {
    if let Some(sync) = step.sync {
        spawn_sync(syncs, conn, sync);
    }
    for msg in step.deliver {
        shared.transfers.file_message(&msg);
        deliver(shared, app, ClientEvent::Message(msg)).await?;
    }
    Ok(())
}

fn spawn_sync(syncs: &mut JoinSet<SyncDone>, conn: &Arc<Connection>, sync: SyncFrom) {
    let conn = conn.clone();
    syncs.spawn(async move {
        let SyncFrom { room, after_seq } = sync;
        let op = Op::Sync(SyncReq { room: room.clone(), after_seq, limit: None });
        (room, conn.request(op).await)
    });
}

fn flush_outbox(
    shared: &Shared,
    conn: &Arc<Connection>,
    generation: u64,
    sends: &mut JoinSet<SendDone>,
) {
    let due = lock(&shared.outbox).due(generation);
    for req in due {
        let conn = conn.clone();
        sends.spawn(async move {
            let id = req.client_msg_id.clone();
            let result: Result<SendOk, ClientError> = conn.request(Op::Send(req)).await;
            (id, result)
        });
    }
}

//! The network side. [`NetPort`] is the tuirealm async port that carries
//! [`NetEvent`]s into the event loop; [`Runner`] carries out the
//! [`Effect`]s update() queued, each in a task of its own (a `JoinSet`
//! under a `CancellationToken`), so the UI never waits on the network.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::mutex::lock;
use crate::{Auth, Client, ClientConfig, ClientError, ErrorCode, Trust};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tuirealm::event::Event;
use tuirealm::listener::{PollAsync, PortResult};

use super::app::{ConnectError, Effect, Login, ModAction, NetEvent, UserEvent};
use super::session::{LastLogin, TokenStore};
use super::transfer::{self, FileTransfers, TransferUpdate, UpdateKind};

/// Network events into tuirealm's listener.
pub(crate) struct NetPort {
    rx: mpsc::UnboundedReceiver<NetEvent>,
}

impl NetPort {
    /// A port reading `rx`.
    pub(crate) fn new(rx: mpsc::UnboundedReceiver<NetEvent>) -> Self {
        Self { rx }
    }
}

#[tuirealm::async_trait]
impl PollAsync<UserEvent> for NetPort {
    async fn poll(&mut self) -> PortResult<Option<Event<UserEvent>>> {
        Ok(self.rx.recv().await.map(|e| Event::User(UserEvent::Net(e))))
    }
}

/// How long quitting may take before the UI leaves anyway.
const QUIT_BUDGET: Duration = Duration::from_secs(6);
/// Messages per history page.
const PAGE: u32 = 100;
/// Hits a `/search` shows.
const SEARCH_HITS: u32 = 50;
/// Messages per page when loading history back to a search hit.
const LOAD_PAGE: u32 = 500;
/// Pages loaded at most to reach a search hit (10,000 messages).
const LOAD_PAGES: usize = 20;
/// Messages loaded before a search hit, for context.
const LOAD_CONTEXT: u64 = 10;
/// Replies per page of a thread.
const THREAD_PAGE: u32 = 50;

/// Carries out effects.
pub(crate) struct Runner {
    client: Arc<Mutex<Option<Client>>>,
    /// Counts log-ins: a client replaced by a newer one (`/reconnect`)
    /// forwards no more events.
    generation: Arc<AtomicU64>,
    tx: mpsc::UnboundedSender<NetEvent>,
    tasks: JoinSet<()>,
    cancel: CancellationToken,
    trust: Trust,
    tokens: TokenStore,
    last: LastLogin,
    files: Arc<dyn FileTransfers>,
    /// The address and new fingerprint of the last changed certificate a
    /// log-in met, so that a repin replaces the pin of that address (one
    /// of several when the server field lists a cluster's nodes).
    changed: Changed,
}

/// See [`Runner`]'s `changed`: `(address, fingerprint)`.
type Changed = Arc<Mutex<Option<(String, String)>>>;

impl Runner {
    /// A runner reporting to `tx`, trusting servers by `trust`, keeping
    /// session tokens in `tokens` and the last identity in `last`.
    pub(crate) fn new(
        tx: mpsc::UnboundedSender<NetEvent>,
        trust: Trust,
        tokens: TokenStore,
        last: LastLogin,
    ) -> Self {
        let client: Arc<Mutex<Option<Client>>> = Arc::default();
        let files = Arc::new(transfer::ClientTransfers { client: client.clone() });
        Self {
            client,
            generation: Arc::default(),
            tx,
            tasks: JoinSet::new(),
            cancel: CancellationToken::new(),
            trust,
            tokens,
            last,
            files,
            changed: Changed::default(),
        }
    }

    fn spawn<F>(&mut self, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let cancel = self.cancel.clone();
        self.tasks.spawn(async move {
            tokio::select! {
                () = cancel.cancelled() => {}
                () = fut => {}
            }
        });
        // Reap finished tasks so the set does not grow without bound.
        while self.tasks.try_join_next().is_some() {}
    }

    /// Starts the work `effect` asks for.
    pub(crate) fn run(&mut self, effect: Effect) {
        let tx = self.tx.clone();
        if let Effect::Repin { login, fingerprint } = effect {
            match &self.trust {
                Trust::KnownHosts { path, .. } => {
                    let server = match lock(&self.changed).take() {
                        Some((server, got)) if got == fingerprint => server,
                        _ => login.server.clone(),
                    };
                    if let Err(e) = crate::trust::repin(path, &server, &fingerprint) {
                        let _ = tx.send(NetEvent::ConnectFailed(ConnectError::Other(format!(
                            "pinning the new certificate: {e}"
                        ))));
                        return;
                    }
                }
                // Pinned by --fingerprint: the new one for this run only.
                Trust::Fingerprint(_) => self.trust = Trust::Fingerprint(fingerprint),
                Trust::SystemRoots => {}
            }
            return self.run(Effect::Connect(login));
        }
        if let Effect::Connect(login) = effect {
            let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
            if let Some(old) = lock(&self.client).take() {
                // Replaced: say goodbye on the old connection, if it has one.
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(QUIT_BUDGET, old.quit(Some("reconnecting"))).await;
                });
            }
            let files = (self.tokens.clone(), self.last.clone());
            let slot = (self.client.clone(), self.generation.clone(), generation);
            let task = connect(login, self.trust.clone(), files, slot, (tx, self.changed.clone()));
            self.spawn(task);
            return;
        }
        if let Effect::Probe { server, tenant } = effect {
            let trust = self.trust.clone();
            self.spawn(async move {
                let open = match crate::probe(&server, Some(&tenant), &trust).await {
                    Ok(info) => info.open_registration,
                    Err(e) => {
                        tracing::debug!(cause = %e, "could not ask about registration");
                        None
                    }
                };
                let _ = tx.send(NetEvent::Registration { server, tenant, open });
            });
            return;
        }
        let Some(client) = lock(&self.client).clone() else {
            let _ = tx.send(match effect {
                Effect::Quit { .. } => NetEvent::QuitDone,
                Effect::Send { room, local, .. } => {
                    NetEvent::Sent { room, local, result: Err("not connected".into()) }
                }
                // Work the UI does on its own (read marks, member lists,
                // history, catching up): a "not connected" for it would
                // hide what the status line says about the connection
                // (such as how to pin a changed certificate).
                Effect::MarkRead { .. }
                | Effect::Typing(_)
                | Effect::Members(_)
                | Effect::History { .. }
                | Effect::CatchUp { .. }
                | Effect::Rooms => {
                    tracing::debug!(?effect, "not connected; dropped");
                    return;
                }
                _ => NetEvent::Notice("not connected".into()),
            });
            return;
        };
        let notice = move |tx: &mpsc::UnboundedSender<NetEvent>, what: &str, e: ClientError| {
            let _ = tx.send(NetEvent::Notice(format!("{what}: {e}")));
        };
        match effect {
            Effect::Connect(_) | Effect::Probe { .. } | Effect::Repin { .. } => {}
            Effect::Rooms => self.spawn(async move {
                match client.rooms().await {
                    Ok(r) => drop(tx.send(NetEvent::Rooms(r))),
                    Err(e) => notice(&tx, "rooms", e),
                }
            }),
            Effect::Join(room) => self.spawn(async move {
                match client.join_room(&room).await {
                    Ok(info) => drop(tx.send(NetEvent::Joined(Box::new(info)))),
                    Err(e) => notice(&tx, &format!("join {room}"), e),
                }
            }),
            Effect::Create(room) => self.spawn(async move {
                match client.create_room(&room).await {
                    Ok(info) => drop(tx.send(NetEvent::Joined(Box::new(info)))),
                    Err(e) => notice(&tx, &format!("create {room}"), e),
                }
            }),
            Effect::Leave(room) => self.spawn(async move {
                match client.leave_room(&room).await {
                    Ok(()) => drop(tx.send(NetEvent::Left(room))),
                    Err(e) => notice(&tx, &format!("leave {room}"), e),
                }
            }),
            Effect::Dm(users) => self.spawn(async move {
                let names: Vec<&str> = users.iter().map(String::as_str).collect();
                match client.open_dm(&names).await {
                    Ok(info) => drop(tx.send(NetEvent::Joined(Box::new(info)))),
                    Err(e) => notice(&tx, &format!("dm {}", users.join(" ")), e),
                }
            }),
            Effect::Moderate { room, action } => self.spawn(async move {
                let done = match &action {
                    ModAction::Invite(user) => client.invite(&room, user).await,
                    ModAction::Kick(user, why) => client.kick(&room, user, why.as_deref()).await,
                    ModAction::Ban(user, why) => client.ban(&room, user, why.as_deref()).await,
                    ModAction::Topic(topic) => client.set_topic(&room, topic).await,
                    ModAction::Private(on) => client.set_private(&room, *on).await,
                };
                // Done: the room's system message says so. Nothing changed
                // (a repeat): say that, or the command seems ignored.
                match done {
                    Ok(Some(_)) => {}
                    Ok(None) => {
                        drop(tx.send(NetEvent::Notice(format!("{room}: nothing to change"))))
                    }
                    Err(e) => notice(&tx, &room, e),
                }
            }),
            Effect::Members(room) => self.spawn(async move {
                match client.members(&room).await {
                    Ok(members) => drop(tx.send(NetEvent::Members { room, members })),
                    Err(e) => notice(&tx, "members", e),
                }
            }),
            Effect::History { room, before } => self.spawn(async move {
                match client.history(&room, before, Some(PAGE)).await {
                    Ok(page) => drop(tx.send(NetEvent::History { older: before.is_some(), page })),
                    Err(e) => {
                        let page = crate::MessagesOk { room, messages: Vec::new(), more: true };
                        let _ = tx.send(NetEvent::History { older: true, page });
                        notice(&tx, "history", e);
                    }
                }
            }),
            // Waits as long as the client reconnects: the line shows as
            // sending meanwhile, and fails only if the server refuses it or
            // the client closes.
            Effect::Send { room, body, local, reply_to } => self.spawn(async move {
                let sent = client.send_reply(&room, &body, reply_to).await;
                let result = sent.map(|ok| ok.seq).map_err(|e| e.to_string());
                let _ = tx.send(NetEvent::Sent { room, local, result });
            }),
            // Done: the change arrives as an event and is applied then.
            Effect::Edit { room, seq, body } => self.spawn(async move {
                match client.edit(&room, seq, &body).await {
                    Ok(_) => drop(tx.send(NetEvent::Notice(format!("#{seq} edited")))),
                    Err(e) => notice(&tx, &format!("edit #{seq}"), e),
                }
            }),
            Effect::Delete { room, seq } => self.spawn(async move {
                match client.delete_message(&room, seq).await {
                    Ok(_) => drop(tx.send(NetEvent::Notice(format!("#{seq} deleted")))),
                    Err(e) => notice(&tx, &format!("delete #{seq}"), e),
                }
            }),
            Effect::React { room, seq, emoji, remove } => self.spawn(async move {
                match client.react(&room, seq, &emoji, remove).await {
                    Ok(_) if remove => {
                        drop(tx.send(NetEvent::Notice(format!("took back {emoji} from #{seq}"))))
                    }
                    Ok(_) => drop(tx.send(NetEvent::Notice(format!("reacted {emoji} to #{seq}")))),
                    Err(e) => notice(&tx, &format!("react to #{seq}"), e),
                }
            }),
            Effect::Thread { room, seq, after } => self.spawn(async move {
                match client.thread(&room, seq, after, Some(THREAD_PAGE)).await {
                    Ok(page) => {
                        let first = after.is_none();
                        drop(tx.send(NetEvent::Thread { first, page: Box::new(page) }));
                    }
                    Err(e) => {
                        notice(&tx, &format!("thread of #{seq}"), e);
                        drop(tx.send(NetEvent::ThreadFailed { room, seq }));
                    }
                }
            }),
            Effect::Typing(room) => self.spawn(async move {
                if let Err(e) = client.typing(&room).await {
                    tracing::debug!(cause = %e, "typing failed");
                }
            }),
            Effect::MarkRead { room, seq } => self.spawn(async move {
                if let Err(e) = client.mark_read(&room, seq).await {
                    tracing::debug!(cause = %e, "mark_read failed");
                }
            }),
            Effect::Upload { id, room, path } => {
                let start = self.files.upload(&room, &path);
                self.spawn(drive(id, start, tx));
            }
            Effect::Download { id, file_id, dir } => {
                let start = self.files.download(file_id, &dir);
                self.spawn(drive(id, start, tx));
            }
            Effect::Search(query) => self.spawn(async move {
                let req = crate::SearchReq {
                    query: query.clone(),
                    limit: Some(SEARCH_HITS),
                    ..crate::SearchReq::default()
                };
                match client.search(req).await {
                    Ok(ok) => {
                        let _ = tx.send(NetEvent::SearchResults {
                            query,
                            hits: ok.hits,
                            more: ok.more,
                        });
                    }
                    Err(e) => notice(&tx, "search", e),
                }
            }),
            Effect::LoadTo { room, before, seq } => self.spawn(async move {
                // A few messages before the one shown, for context.
                let down_to = seq.saturating_sub(LOAD_CONTEXT);
                let mut before = before;
                // Bounded: a hit further back than this many pages is
                // shown once the pages reach it (scrolling loads more).
                for _ in 0..LOAD_PAGES {
                    match client.history(&room, before, Some(LOAD_PAGE)).await {
                        Ok(page) => {
                            let oldest = page.messages.first().map(|m| m.seq);
                            let more = page.more;
                            let _ = tx.send(NetEvent::History { older: true, page });
                            match oldest {
                                Some(o) if more && o > down_to.max(1) => before = Some(o),
                                _ => break,
                            }
                        }
                        Err(e) => {
                            notice(&tx, &format!("loading {room}"), e);
                            break;
                        }
                    }
                }
                let _ = tx.send(NetEvent::Loaded { room, seq });
            }),
            Effect::CatchUp { room, after } => self.spawn(async move {
                let mut after = after;
                // Bounded: a room that grows faster than it is read stops
                // after this many pages; the rest arrives as events.
                for _ in 0..100 {
                    match client.sync(&room, after, None).await {
                        Ok(page) => {
                            let more = page.more;
                            after = page.messages.last().map_or(after, |m| m.seq);
                            let _ = tx.send(NetEvent::History { older: false, page });
                            if !more {
                                break;
                            }
                        }
                        Err(e) => {
                            notice(&tx, &format!("catching up on {room}"), e);
                            break;
                        }
                    }
                }
            }),
            Effect::Quit { reason } => {
                // Not under the cancellation token: it must finish.
                tokio::spawn(async move {
                    let quit = client.quit(reason.as_deref());
                    let _ = tokio::time::timeout(QUIT_BUDGET, quit).await;
                    let _ = tx.send(NetEvent::QuitDone);
                });
            }
        }
    }

    /// Stops every task (the UI is leaving).
    pub(crate) async fn shutdown(mut self) {
        self.cancel.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        self.tasks.abort_all();
    }
}

async fn drive(
    id: transfer::TransferId,
    start: transfer::Starting,
    tx: mpsc::UnboundedSender<NetEvent>,
) {
    match start.await {
        Ok(running) => {
            transfer::forward(id, running, |u| drop(tx.send(NetEvent::Transfer(u)))).await;
        }
        Err(why) => {
            drop(tx.send(NetEvent::Transfer(TransferUpdate { id, kind: UpdateKind::Failed(why) })))
        }
    }
}

/// The client configuration for a log-in from the form.
fn config(login: &Login, trust: &Trust, token: Option<String>) -> Result<ClientConfig, String> {
    let trust = match trust.clone() {
        Trust::KnownHosts { path, accept_new } => {
            Trust::KnownHosts { path, accept_new: accept_new || login.accept_new }
        }
        other => other,
    };
    let auth = match (&login.password, token) {
        (Some(p), _) => Auth::Password(p.clone()),
        (None, Some(t)) => Auth::Token(t),
        (None, None) => return Err("enter the password".to_owned()),
    };
    let mut cfg = ClientConfig::new(&login.server, &login.tenant, &login.user, auth, trust);
    cfg.register = login.register;
    Ok(cfg)
}

/// Where a log-in's client goes: the slot, the runner's generation
/// counter, and the generation of this log-in.
type Slot = (Arc<Mutex<Option<Client>>>, Arc<AtomicU64>, u64);

async fn connect(
    login: Login,
    trust: Trust,
    (tokens, last): (TokenStore, LastLogin),
    (slot, generation, mine): Slot,
    (tx, changed): (mpsc::UnboundedSender<NetEvent>, Changed),
) {
    let current = || generation.load(Ordering::SeqCst) == mine;
    let token = tokens.load(&login.server, &login.tenant, &login.user);
    let cfg = match config(&login, &trust, token) {
        Ok(cfg) => cfg,
        Err(e) => {
            let _ = tx.send(NetEvent::ConnectFailed(ConnectError::Other(e)));
            return;
        }
    };
    let with_token = matches!(cfg.auth, Auth::Token(_));
    tracing::info!(server = %cfg.server, tenant = %cfg.tenant, user = %cfg.user, with_token, "connecting");
    match Client::connect(cfg.clone()).await {
        Ok((client, mut events)) => {
            if let Err(e) =
                tokens.store(&login.server, &login.tenant, &login.user, Some(&client.token()))
            {
                tracing::warn!(cause = %e, "could not save the session token");
            }
            if let Err(e) = last.store(&login.server, &login.tenant, &login.user) {
                tracing::warn!(cause = %e, "could not record the last log-in");
            }
            let rooms = client.rooms().await.unwrap_or_default();
            {
                let mut slot = lock(&slot);
                if !current() {
                    // Another log-in started meanwhile: it wins.
                    drop(slot);
                    let _ = client.quit(None).await;
                    return;
                }
                *slot = Some(client.clone());
            }
            let _ = tx.send(NetEvent::Connected { user: client.user().to_owned(), rooms });
            while let Some(ev) = events.recv().await {
                if !current() || tx.send(NetEvent::Client(ev)).is_err() {
                    break;
                }
            }
        }
        Err(_) if !current() => {}
        Err(e) => {
            tracing::info!(cause = %e, "log-in failed");
            let err = match e {
                ClientError::UnknownHost { fingerprint, .. } => {
                    ConnectError::UnknownHost { fingerprint }
                }
                ClientError::HostChanged { server, expected, got } => {
                    let message = host_changed(&cfg, &server, &expected, &got);
                    *lock(&changed) = Some((server, got.clone()));
                    ConnectError::HostChanged { message, got }
                }
                e if login.register && e.code() == Some(ErrorCode::Forbidden) => {
                    ConnectError::RegistrationClosed
                }
                e if with_token && e.code() == Some(ErrorCode::Unauthorized) => {
                    let _ = tokens.store(&login.server, &login.tenant, &login.user, None);
                    ConnectError::TokenRefused
                }
                e => ConnectError::Other(e.to_string()),
            };
            let _ = tx.send(NetEvent::ConnectFailed(err));
        }
    }
}

/// The loud refusal of a changed certificate (the same words as the
/// command line's).
fn host_changed(cfg: &ClientConfig, server: &str, expected: &str, got: &str) -> String {
    let file = match &cfg.trust {
        Trust::KnownHosts { path, .. } => format!(" in {}", path.display()),
        _ => String::new(),
    };
    format!(
        "server certificate changed: {} is pinned to sha256 {expected}{file} but presented \
         {got}; refusing to connect (if the operator replaced the certificate, remove the old \
         pin)",
        server
    )
}

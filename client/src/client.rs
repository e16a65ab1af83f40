//! The public handle [`Client`] for typed requests and transfers; what the
//! server pushes comes through [`Events`]. Both are cheap to hold; the work
//! happens in the supervisor task, which stops when the client quits or the
//! last handle is dropped.

mod account;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use qchat_protocol::{
    ArchiveReq, ChangeOk, CloseCode, DmOpenReq, EditReq, HistoryReq, MemberInfo, MembersOk,
    MembersReq, MessageReq, MessagesOk, ModerateReq, Op, PrivateReq, Quit, ReactReq, ReadReq,
    RenameReq, Role, RoleReq, RoomCreateReq, RoomInfo, RoomOk, RoomReq, RoomsOk, RoomsReq, SendOk,
    SyncReq, ThreadOk, ThreadReq, TopicReq, UserReq,
};
use serde::de::DeserializeOwned;
use tokio::sync::{Notify, Semaphore, mpsc, watch};
use tokio_util::sync::{CancellationToken, DropGuard};
use tokio_util::task::TaskTracker;
use tracing::debug;

use crate::config::ClientConfig;
use crate::connection::Connection;
use crate::dial;
use crate::error::ClientError;
use crate::events::{ClientEvent, Events};
use crate::mutex::lock;
use crate::outbox::Outbox;
use crate::sequencer::Sequencer;
use crate::state::{ConnState, Shared};
use crate::supervisor;
use crate::transfer::{
    self, DownloadHandle, DownloadProgress, DownloadState, Router, TransferHandle, UploadHandle,
    UploadProgress, UploadState,
};
use crate::trust;

/// Budget for the first connection and log-in in [`Client::connect`].
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// How long `quit` waits for the server's reply and close.
const QUIT_WAIT: Duration = Duration::from_secs(5);
/// Events queued for the application before the reader is slowed down.
const EVENT_QUEUE: usize = 4096;
/// Server events queued between the reader and the supervisor.
const INBOUND_QUEUE: usize = 1024;
/// Downloads in flight at once; more wait for a slot (the server refuses
/// more than 16 per connection by default).
const MAX_DOWNLOADS: usize = 16;

/// Handle to a logged-in session. Clones share the session; when the last
/// clone and the [`Events`] are dropped, everything stops.
#[derive(Clone)]
pub struct Client {
    shared: Arc<Shared>,
    _guard: Arc<DropGuard>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("server", &self.shared.cfg.server)
            .field("tenant", &self.shared.cfg.tenant)
            .field("user", &self.shared.cfg.user)
            .field("state", &self.state())
            .finish()
    }
}

impl Client {
    /// Connects, verifies the server's certificate, logs in (or registers),
    /// and starts supervising the connection.
    ///
    /// Messages already in joined rooms are not replayed as events; fetch
    /// them with [`Client::history`].
    ///
    /// # Errors
    /// [`ClientError::UnknownHost`] / [`ClientError::HostChanged`] for trust
    /// problems, [`ClientError::Connect`] when the server cannot be reached,
    /// [`ClientError::Server`] when log-in is refused.
    pub async fn connect(cfg: ClientConfig) -> Result<(Self, Events), ClientError> {
        let servers = cfg.servers();
        let tracker = TaskTracker::new();
        let (events_tx, events_rx) = mpsc::channel(INBOUND_QUEUE);
        // The addresses in the order given; the first that connects, trusts
        // and logs in wins.
        let first = dial::round(&servers, 0, CONNECT_TIMEOUT, |_, server| {
            let (cfg, events_tx, tracker) = (&cfg, events_tx.clone(), &tracker);
            async move {
                let anchor = trust::initial_anchor(cfg, &server)?;
                let conn = Connection::open(cfg, &server, &anchor, events_tx, tracker).await?;
                trust::record_if_new(cfg, &server, &anchor, conn.fingerprint())?;
                let login = supervisor::log_in(&conn, cfg, None, cfg.register).await?;
                let rooms = supervisor::all_rooms(&conn).await?;
                Ok::<_, ClientError>((server, conn, login, rooms))
            }
        });
        let (index, (server, conn, login, rooms)) = first.await.map_err(|e| match e {
            dial::RoundError::Fatal(e) => e,
            dial::RoundError::Failed(failed) => failed.into_error(),
        })?;
        let mut sequencer = Sequencer::default();
        supervisor::reconcile_rooms(&mut sequencer, &rooms);

        let cancel = CancellationToken::new();
        let guard = Arc::new(cancel.clone().drop_guard());
        let (app_tx, app_rx) = mpsc::channel(EVENT_QUEUE);
        let _ = app_tx.try_send(ClientEvent::State(ConnState::Connected));
        let shared = Arc::new(Shared {
            cfg,
            token: Mutex::new(login.token),
            fingerprint: Mutex::new(conn.fingerprint().to_owned()),
            pins: Mutex::new(HashMap::from([(server, conn.fingerprint().to_owned())])),
            server_index: AtomicUsize::new(index),
            state: watch::Sender::new(ConnState::Connected),
            ready: watch::Sender::new(Some(conn.clone())),
            current: Mutex::new(Some(conn.clone())),
            outbox: Mutex::new(Outbox::default()),
            outbox_kick: Notify::new(),
            sequencer: Mutex::new(sequencer),
            cancel,
            tracker: tracker.clone(),
            quitting: Default::default(),
            reconnects: Default::default(),
            transfers: Router::default(),
            download_slots: Arc::new(Semaphore::new(MAX_DOWNLOADS)),
        });
        tracker.spawn(supervisor::run(shared.clone(), conn, events_rx, events_tx, app_tx));
        let client = Self { shared, _guard: guard.clone() };
        Ok((client, Events::new(app_rx, guard)))
    }

    /// The user name logged in as.
    pub fn user(&self) -> &str {
        &self.shared.cfg.user
    }

    /// The tenant logged in to.
    pub fn tenant(&self) -> &str {
        &self.shared.cfg.tenant
    }

    /// The current session token (secret: usable with [`crate::Auth::Token`]
    /// for the server's session lifetime, 30 days by default, until logout
    /// or a password change revokes it).
    pub fn token(&self) -> String {
        lock(&self.shared.token).clone()
    }

    /// The connection state right now.
    pub fn state(&self) -> ConnState {
        self.shared.state.borrow().clone()
    }

    /// SHA-256 of the server certificate (64 lower-case hex digits).
    pub fn server_fingerprint(&self) -> String {
        lock(&self.shared.fingerprint).clone()
    }

    /// The address (one of [`ClientConfig::servers`]) of the server this
    /// client is connected to, or was last connected to while it
    /// reconnects.
    pub fn server_address(&self) -> String {
        let servers = self.shared.cfg.servers();
        let index = self.shared.server_index.load(Ordering::Relaxed);
        servers.get(index).cloned().unwrap_or_default()
    }

    /// Every room of the tenant, by name, with membership and unread counts
    /// (asked for page by page while the server says `more`).
    ///
    /// # Errors
    /// See [`ClientError`]; waits up to 30 s for a reconnect per page.
    pub async fn rooms(&self) -> Result<Vec<RoomInfo>, ClientError> {
        let mut rooms: Vec<RoomInfo> = Vec::new();
        loop {
            let after = rooms.last().map(|r| r.name.clone());
            let page = self.call::<RoomsOk>(Op::Rooms(RoomsReq { after: after.clone() }), true);
            let page = page.await?;
            let advanced =
                page.rooms.last().is_some_and(|r| after.as_ref().is_none_or(|a| *a < r.name));
            rooms.extend(page.rooms);
            if !page.more {
                return Ok(rooms);
            }
            if !advanced {
                return Err(ClientError::Protocol("a rooms page with more did not advance".into()));
            }
        }
    }

    /// Creates a public room and joins it as its owner; new messages in it
    /// arrive as events.
    ///
    /// # Errors
    /// `conflict` if it exists. Not retried across a reconnect (the room may
    /// have been created): then [`ClientError::Disconnected`].
    pub async fn create_room(&self, room: &str) -> Result<RoomInfo, ClientError> {
        self.create_room_with(room, false).await
    }

    /// Creates a room, private (members by invitation only) or public, and
    /// joins it as its owner.
    ///
    /// # Errors
    /// As [`Client::create_room`].
    pub async fn create_room_with(
        &self,
        room: &str,
        private: bool,
    ) -> Result<RoomInfo, ClientError> {
        let op = Op::RoomCreate(RoomCreateReq { room: room.to_owned(), private });
        let info = self.call::<RoomOk>(op, false).await?.room;
        lock(&self.shared.sequencer).track(info.key(), info.last_seq);
        Ok(info)
    }

    /// Joins a room (idempotent); new messages in it arrive as events.
    ///
    /// # Errors
    /// `not_found` when there is no such room (or none the user may see).
    pub async fn join_room(&self, room: &str) -> Result<RoomInfo, ClientError> {
        let op = Op::RoomJoin(RoomReq { room: room.to_owned() });
        let info = self.call::<RoomOk>(op, true).await?.room;
        lock(&self.shared.sequencer).track(info.key(), info.last_seq);
        Ok(info)
    }

    /// Opens the direct message between this user and `users` (1 to 15
    /// others), creating it on first use: the same set of people always
    /// gets the same conversation, whoever opens it. New messages in it
    /// arrive as events.
    ///
    /// # Errors
    /// `not_found` naming a user that does not exist; `bad_request` for too
    /// few or too many users.
    pub async fn open_dm(&self, users: &[&str]) -> Result<RoomInfo, ClientError> {
        let users = users.iter().map(|u| (*u).to_owned()).collect();
        let info = self.call::<RoomOk>(Op::DmOpen(DmOpenReq { users }), true).await?.room;
        lock(&self.shared.sequencer).track(info.key(), info.last_seq);
        Ok(info)
    }

    async fn change(&self, op: Op) -> Result<Option<u64>, ClientError> {
        Ok(self.call::<ChangeOk>(op, false).await?.seq)
    }

    /// Invites `user` into `room` (owners and moderators). Returns the seq
    /// of the system message recording it; `None` when nothing changed.
    ///
    /// # Errors
    /// `forbidden`, `not_found` (room or user); not retried across a
    /// reconnect.
    pub async fn invite(&self, room: &str, user: &str) -> Result<Option<u64>, ClientError> {
        self.change(Op::RoomInvite(UserReq { room: room.to_owned(), user: user.to_owned() })).await
    }

    /// Removes `user` from `room` (owners and moderators); a public room
    /// may be joined again.
    ///
    /// # Errors
    /// As [`Client::invite`].
    pub async fn kick(
        &self,
        room: &str,
        user: &str,
        reason: Option<&str>,
    ) -> Result<Option<u64>, ClientError> {
        let req = ModerateReq {
            room: room.to_owned(),
            user: user.to_owned(),
            reason: reason.map(str::to_owned),
        };
        self.change(Op::RoomKick(req)).await
    }

    /// Bans `user` from `room` (owners and moderators) until unbanned.
    ///
    /// # Errors
    /// As [`Client::invite`].
    pub async fn ban(
        &self,
        room: &str,
        user: &str,
        reason: Option<&str>,
    ) -> Result<Option<u64>, ClientError> {
        let req = ModerateReq {
            room: room.to_owned(),
            user: user.to_owned(),
            reason: reason.map(str::to_owned),
        };
        self.change(Op::RoomBan(req)).await
    }

    /// Lifts `user`'s ban from `room` (owners and moderators).
    ///
    /// # Errors
    /// As [`Client::invite`].
    pub async fn unban(&self, room: &str, user: &str) -> Result<Option<u64>, ClientError> {
        self.change(Op::RoomUnban(UserReq { room: room.to_owned(), user: user.to_owned() })).await
    }

    /// Gives a member of `room` a role (owners); [`Role::Owner`] moves the
    /// ownership to them.
    ///
    /// # Errors
    /// As [`Client::invite`].
    pub async fn set_role(
        &self,
        room: &str,
        user: &str,
        role: Role,
    ) -> Result<Option<u64>, ClientError> {
        let req = RoleReq { room: room.to_owned(), user: user.to_owned(), role };
        self.change(Op::RoomRole(req)).await
    }

    /// Sets the topic of `room` (owners); empty clears it.
    ///
    /// # Errors
    /// As [`Client::invite`].
    pub async fn set_topic(&self, room: &str, topic: &str) -> Result<Option<u64>, ClientError> {
        self.change(Op::RoomTopic(TopicReq { room: room.to_owned(), topic: topic.to_owned() }))
            .await
    }

    /// Renames `room` (owners).
    ///
    /// # Errors
    /// As [`Client::invite`]; `conflict` when the name is taken.
    pub async fn rename_room(&self, room: &str, name: &str) -> Result<Option<u64>, ClientError> {
        self.change(Op::RoomRename(RenameReq { room: room.to_owned(), name: name.to_owned() }))
            .await
    }

    /// Makes `room` private or public (owners).
    ///
    /// # Errors
    /// As [`Client::invite`].
    pub async fn set_private(&self, room: &str, private: bool) -> Result<Option<u64>, ClientError> {
        self.change(Op::RoomPrivate(PrivateReq { room: room.to_owned(), private })).await
    }

    /// Archives `room` (read-only, history kept) or makes it writable again
    /// (owners).
    ///
    /// # Errors
    /// As [`Client::invite`].
    pub async fn archive_room(
        &self,
        room: &str,
        archived: bool,
    ) -> Result<Option<u64>, ClientError> {
        self.change(Op::RoomArchive(ArchiveReq { room: room.to_owned(), archived })).await
    }

    /// Deletes `room` with its messages and the files no other room offers
    /// (owners).
    ///
    /// # Errors
    /// As [`Client::invite`].
    pub async fn delete_room(&self, room: &str) -> Result<(), ClientError> {
        let op = Op::RoomDelete(RoomReq { room: room.to_owned() });
        self.call::<serde::de::IgnoredAny>(op, false).await.map(drop)
    }

    /// Leaves a room (idempotent); its events stop.
    ///
    /// # Errors
    /// `not_found` when there is no such room.
    pub async fn leave_room(&self, room: &str) -> Result<(), ClientError> {
        let op = Op::RoomLeave(RoomReq { room: room.to_owned() });
        self.call::<serde::de::IgnoredAny>(op, true).await?;
        lock(&self.shared.sequencer).untrack(room);
        Ok(())
    }

    /// The room's members with their online flag, by name.
    ///
    /// # Errors
    /// `forbidden` when not a member, `not_found` for no such room.
    pub async fn members(&self, room: &str) -> Result<Vec<MemberInfo>, ClientError> {
        let mut members: Vec<MemberInfo> = Vec::new();
        loop {
            let after = members.last().map(|m| m.user.clone());
            let op = Op::Members(MembersReq { room: room.to_owned(), after: after.clone() });
            let page = self.call::<MembersOk>(op, true).await?;
            let advanced =
                page.members.last().is_some_and(|m| after.as_ref().is_none_or(|a| *a < m.user));
            members.extend(page.members);
            if !page.more {
                return Ok(members);
            }
            if !advanced {
                return Err(ClientError::Protocol(
                    "a members page with more did not advance".into(),
                ));
            }
        }
    }

    /// Sends a text message through the outbox and waits until the server
    /// has committed it, across reconnects: the message is retried with the
    /// same `client_msg_id`, so it is stored exactly once.
    ///
    /// There is no deadline while the client reconnects; wrap the call in
    /// `tokio::time::timeout` for one. A message whose caller stopped
    /// waiting stays in the outbox and is still delivered.
    ///
    /// # Errors
    /// The server's refusal (`forbidden`, `too_large`, ...), or
    /// [`ClientError::Closed`] if the client closes first.
    pub async fn send(&self, room: &str, body: &str) -> Result<SendOk, ClientError> {
        self.send_reply(room, body, None).await
    }

    /// Sends a reply to message `reply_to` of `room` (or, with `None`, a
    /// plain message), through the outbox as [`Client::send`].
    ///
    /// # Errors
    /// As [`Client::send`]; `not_found` when there is no such message.
    pub async fn send_reply(
        &self,
        room: &str,
        body: &str,
        reply_to: Option<u64>,
    ) -> Result<SendOk, ClientError> {
        if let Some(reason) = self.shared.closed_reason() {
            return Err(ClientError::Closed(reason));
        }
        let rx = lock(&self.shared.outbox).push(room, body, reply_to);
        self.shared.outbox_kick.notify_one();
        rx.await.unwrap_or_else(|_| {
            Err(ClientError::Closed(
                self.shared.closed_reason().unwrap_or_else(|| "stopped".to_owned()),
            ))
        })
    }

    /// Up to `limit` (default 50, at most 500) messages before `before_seq`
    /// (default: the newest), oldest first; `more` says whether older ones
    /// exist. Not delivered as events.
    ///
    /// # Errors
    /// `forbidden` when not a member.
    pub async fn history(
        &self,
        room: &str,
        before_seq: Option<u64>,
        limit: Option<u32>,
    ) -> Result<MessagesOk, ClientError> {
        let op = Op::History(HistoryReq { room: room.to_owned(), before_seq, limit });
        self.call(op, true).await
    }

    /// Up to `limit` (default 500) messages after `after_seq`, oldest first;
    /// `more` says whether newer ones exist. Not delivered as events (the
    /// client already syncs by itself after gaps and reconnects).
    ///
    /// # Errors
    /// `forbidden` when not a member.
    pub async fn sync(
        &self,
        room: &str,
        after_seq: u64,
        limit: Option<u32>,
    ) -> Result<MessagesOk, ClientError> {
        let op = Op::Sync(SyncReq { room: room.to_owned(), after_seq, limit });
        self.call(op, true).await
    }

    /// Replaces the text of one's own message `seq` of `room`. Returns the
    /// seq of the `edited` system message; `None` when the text was the
    /// same.
    ///
    /// # Errors
    /// `forbidden` (another's message), `not_found` (no such message).
    pub async fn edit(&self, room: &str, seq: u64, body: &str) -> Result<Option<u64>, ClientError> {
        self.change(Op::MessageEdit(EditReq { room: room.to_owned(), seq, body: body.to_owned() }))
            .await
    }

    /// Deletes message `seq` of `room` (one's own; moderators and owners:
    /// anyone's). Returns the seq of the `deleted` system message.
    ///
    /// # Errors
    /// As [`Client::edit`].
    pub async fn delete_message(&self, room: &str, seq: u64) -> Result<Option<u64>, ClientError> {
        self.change(Op::MessageDelete(MessageReq { room: room.to_owned(), seq })).await
    }

    /// Adds (or, with `remove`, takes back) the reaction `emoji` to message
    /// `seq` of `room`. `None` when it was so already.
    ///
    /// # Errors
    /// As [`Client::edit`]; `too_large` past 64 different reactions.
    pub async fn react(
        &self,
        room: &str,
        seq: u64,
        emoji: &str,
        remove: bool,
    ) -> Result<Option<u64>, ClientError> {
        let req = ReactReq { room: room.to_owned(), seq, emoji: emoji.to_owned(), remove };
        self.change(Op::MessageReact(req)).await
    }

    /// Message `seq` of `room` and one page of its replies after
    /// `after_seq`, oldest first.
    ///
    /// # Errors
    /// `not_found` (no such message), `forbidden` (not a member).
    pub async fn thread(
        &self,
        room: &str,
        seq: u64,
        after_seq: Option<u64>,
        limit: Option<u32>,
    ) -> Result<ThreadOk, ClientError> {
        let op = Op::Thread(ThreadReq { room: room.to_owned(), seq, after_seq, limit });
        self.call(op, true).await
    }

    /// Tells the room's other members this user is typing (the server
    /// relays it at most every few seconds; send it again while typing).
    ///
    /// # Errors
    /// `forbidden` (may not post), `not_found`.
    pub async fn typing(&self, room: &str) -> Result<(), ClientError> {
        let op = Op::Typing(RoomReq { room: room.to_owned() });
        self.call::<serde::de::IgnoredAny>(op, false).await.map(drop)
    }

    /// Moves the read marker of `room` to `seq` (never backwards).
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn mark_read(&self, room: &str, seq: u64) -> Result<(), ClientError> {
        let op = Op::Read(ReadReq { room: room.to_owned(), seq });
        self.call::<serde::de::IgnoredAny>(op, true).await.map(drop)
    }

    /// Round trip to the server.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn ping(&self) -> Result<(), ClientError> {
        self.call::<serde::de::IgnoredAny>(Op::Ping, true).await.map(drop)
    }

    /// Uploads the file at `path` to `room` (the user must be a member),
    /// offered under the file's own name. Returns at once; the transfer runs
    /// in the background on its own stream, beside the chat and other
    /// transfers, and resumes by itself after a reconnect.
    ///
    /// The file is hashed (BLAKE3) first; when the tenant already stores the
    /// same content nothing is sent and the upload is done at once.
    ///
    /// # Errors
    /// [`ClientError::Closed`] when the client is closed,
    /// [`ClientError::Config`] when `path` names no file. Everything later
    /// (missing file, refusals) ends the upload as
    /// [`UploadState::Failed`].
    pub fn upload(&self, room: &str, path: &Path) -> Result<UploadHandle, ClientError> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| ClientError::Config(format!("{} names no file", path.display())))?;
        self.upload_named(room, path, &name)
    }

    /// Like [`Client::upload`], offered under `name` instead (display only:
    /// the server sanitizes it and never uses it as a path).
    ///
    /// # Errors
    /// As [`Client::upload`].
    pub fn upload_named(
        &self,
        room: &str,
        path: &Path,
        name: &str,
    ) -> Result<UploadHandle, ClientError> {
        if let Some(reason) = self.shared.closed_reason() {
            return Err(ClientError::Closed(reason));
        }
        let (tx, rx) = watch::channel(UploadProgress {
            name: name.to_owned(),
            room: room.to_owned(),
            total: 0,
            done: 0,
            sent: 0,
            state: UploadState::Hashing,
        });
        let cancel = self.shared.cancel.child_token();
        let job = transfer::upload::Job {
            shared: self.shared.clone(),
            room: room.to_owned(),
            path: path.to_path_buf(),
            name: name.to_owned(),
            progress: tx,
            cancel: cancel.clone(),
        };
        self.shared.tracker.spawn(transfer::upload::run(job));
        Ok(TransferHandle::new(rx, cancel))
    }

    /// Downloads file offer `file_id` (the `id` of a file message's `file`)
    /// into `out_dir`: received into `.<name>.qchat-part` there, verified
    /// against the file's BLAKE3, then renamed to the name this offer was
    /// made under (sanitized) — two offers of the same content under two
    /// names each download under their own — or `name (1).ext`, ... when that is
    /// taken — an existing file is never replaced. Returns at once; the
    /// download runs in the background on a server-opened stream and resumes
    /// from the partial file after a reconnect (or in a later run).
    ///
    /// # Errors
    /// [`ClientError::Closed`] when the client is closed. Everything later
    /// (`forbidden`, `not_found`, disk errors, a hash mismatch) ends the
    /// download as [`DownloadState::Failed`].
    pub fn download(&self, file_id: u64, out_dir: &Path) -> Result<DownloadHandle, ClientError> {
        if let Some(reason) = self.shared.closed_reason() {
            return Err(ClientError::Closed(reason));
        }
        let (tx, rx) = watch::channel(DownloadProgress {
            file_id,
            name: String::new(),
            total: 0,
            done: 0,
            received: 0,
            state: DownloadState::Waiting,
        });
        let cancel = self.shared.cancel.child_token();
        let job = transfer::download::Job {
            shared: self.shared.clone(),
            file_id,
            out_dir: out_dir.to_path_buf(),
            progress: tx,
            cancel: cancel.clone(),
        };
        self.shared.tracker.spawn(transfer::download::run(job));
        Ok(TransferHandle::new(rx, cancel))
    }

    /// Leaves gracefully: sends `quit` (rooms see `reason`), waits for the
    /// server to close the connection, and stops supervising. Unacknowledged
    /// sends fail with [`ClientError::Closed`]. Idempotent.
    ///
    /// # Errors
    /// None in practice: a server that does not answer in time is left.
    pub async fn quit(&self, reason: Option<&str>) -> Result<(), ClientError> {
        self.shared.quitting.store(true, Ordering::SeqCst);
        let conn = lock(&self.shared.current).clone();
        if let Some(conn) = conn.filter(|c| !c.is_closed()) {
            let op = Op::Quit(Quit { reason: reason.map(str::to_owned) });
            let said_bye =
                tokio::time::timeout(QUIT_WAIT, conn.request::<serde::de::IgnoredAny>(op)).await;
            if matches!(said_bye, Ok(Ok(_))) {
                let _ = tokio::time::timeout(QUIT_WAIT, conn.closed()).await;
            }
            conn.close(CloseCode::Normal, "quit");
        }
        self.stop("quit").await;
        Ok(())
    }

    /// Revokes the session token on the server and closes the client.
    ///
    /// # Errors
    /// See [`ClientError`]; the client is closed either way.
    pub async fn logout(&self) -> Result<(), ClientError> {
        let result = self.call::<serde::de::IgnoredAny>(Op::Logout, false).await;
        self.shared.quitting.store(true, Ordering::SeqCst);
        if let Some(conn) = lock(&self.shared.current).clone() {
            conn.close(CloseCode::Normal, "logout");
        }
        self.stop("logged out").await;
        result.map(drop)
    }

    /// Number of sends not yet acknowledged by the server.
    pub fn pending_sends(&self) -> usize {
        lock(&self.shared.outbox).len()
    }

    /// Diagnostics and test hook: closes the current QUIC connection at once,
    /// without `quit`, as a network loss would. The supervisor reconnects
    /// (unless reconnecting is off), syncs and resends as usual.
    pub fn force_disconnect(&self) {
        if let Some(conn) = lock(&self.shared.current).clone() {
            debug!("forcing a disconnect");
            conn.close(CloseCode::Normal, "simulated network loss");
        }
    }

    /// Test hook: loses the current connection silently, as a network that
    /// vanishes would. Unlike [`Client::force_disconnect`] no
    /// CONNECTION_CLOSE reaches the server: the connection's endpoint is
    /// switched to a socket that swallows every datagram, then closed
    /// locally, so the server notices only at its idle timeout. The
    /// supervisor reconnects on a fresh endpoint (new UDP socket), syncs and
    /// resends as usual. Does nothing when there is no connection.
    ///
    /// # Errors
    /// [`ClientError::Io`] when the connection's socket address cannot be read
    /// (the connection is left as it was).
    pub fn abandon_connection(&self) -> Result<(), ClientError> {
        let Some(conn) = lock(&self.shared.current).clone() else { return Ok(()) };
        debug!("abandoning the connection without a close");
        conn.abandon().map_err(|e| ClientError::Io {
            context: "abandoning the connection".to_owned(),
            message: e.to_string(),
        })
    }

    /// Diagnostics and test hook: moves the current connection to a new UDP
    /// socket (new local port), as a NAT rebinding or a network switch
    /// would. QUIC migrates the connection: no reconnect, no new log-in.
    ///
    /// # Errors
    /// [`ClientError::Disconnected`] when there is no connection right now,
    /// [`ClientError::Io`] when no new socket can be bound.
    pub fn rebind(&self) -> Result<(), ClientError> {
        let conn = lock(&self.shared.current).clone().filter(|c| !c.is_closed());
        let conn = conn.ok_or_else(|| ClientError::Disconnected("no connection".to_owned()))?;
        conn.rebind().map_err(|e| ClientError::Io {
            context: "binding a new UDP socket".to_owned(),
            message: e.to_string(),
        })
    }

    /// The local UDP address of the current connection, if there is one.
    pub fn local_addr(&self) -> Option<std::net::SocketAddr> {
        lock(&self.shared.current).as_ref().and_then(|c| c.local_addr().ok())
    }

    /// How many times the client has reconnected (a new QUIC connection and
    /// log-in) since [`Client::connect`]. A migration after
    /// [`Client::rebind`] does not count.
    pub fn reconnects(&self) -> u64 {
        self.shared.reconnects.load(Ordering::Relaxed)
    }

    async fn stop(&self, reason: &str) {
        self.shared.close(reason);
        self.shared.tracker.close();
        // The tasks notice the cancellation at once; the bound is a backstop.
        let _ = tokio::time::timeout(QUIT_WAIT, self.shared.tracker.wait()).await;
    }

    async fn call<T: DeserializeOwned>(&self, op: Op, retry: bool) -> Result<T, ClientError> {
        self.shared.call(op, retry).await
    }
}

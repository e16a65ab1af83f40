//! One task per connection: accepts the control stream, reads request frames,
//! dispatches them, and owns the writer task that drains the connection's
//! outbound queue. Ends on quit, on a protocol violation, when the peer goes
//! away, or on server shutdown — always detaching from the hub and closing the
//! connection with a code and a reason.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use qchat_protocol::{
    CloseCode, ErrorCode, Event, FrameReader, Lagged, Op, Request, Response, encode_json,
};
use quinn::{Connection, RecvStream, SendStream};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::cmd;
use crate::hub::ConnId;
use crate::outbound::{self, Next, Outbound, OutboundRx};
use crate::state::{Login, Shared};
use crate::transfer::download::Downloads;
use crate::transfer::upload;

/// How long a closing session waits for its upload streams to write out
/// what they took; what is still running then is aborted.
const UPLOADS_STOP: Duration = Duration::from_secs(5);

/// A connection's state; request handlers see the part of it in
/// [`cmd::Ctx`].
struct Session {
    shared: Arc<Shared>,
    id: ConnId,
    remote: SocketAddr,
    out: Outbound,
    login: Option<Login>,
    /// The QUIC connection.
    conn: Connection,
    /// Download slots and tasks of this connection; aborted when it ends.
    downloads: Downloads,
    /// Upload tasks of this connection, made by the first upload: an idle
    /// connection holds none.
    uploads: Option<Uploads>,
    /// Cancelled when the session token this connection logged in with is
    /// revoked (`session.revoke`, `passwd` elsewhere): the connection ends.
    kick: CancellationToken,
    /// The client's name from `hello`, for the session's record when a
    /// log-in names none.
    client: String,
    /// When a connection that has not logged in is closed.
    login_deadline: Instant,
}

/// How a session ended: the close code and reason sent to the peer, and the
/// reason shown to the rooms.
struct End {
    code: CloseCode,
    reason: String,
    presence: Option<String>,
}

impl End {
    /// An end the server decides, told to the rooms by its code's fixed
    /// presence reason (PROTOCOL.md §5).
    fn new(code: CloseCode, reason: impl Into<String>) -> Self {
        let presence = match code {
            CloseCode::Shutdown => "server shutting down",
            CloseCode::ProtocolError | CloseCode::FrameTooLarge => "protocol error",
            CloseCode::Internal | CloseCode::ServerBusy => "internal error",
            CloseCode::Revoked => "session revoked",
            // Before log-in nobody is told anything; a normal end says why.
            CloseCode::LoginTimeout | CloseCode::Normal => "closed",
        };
        Self { code, reason: reason.into(), presence: Some(presence.into()) }
    }

    /// A normal end (`quit`, `logout`) with the reason the rooms are told.
    fn normal(reason: impl Into<String>, presence: impl Into<String>) -> Self {
        Self { code: CloseCode::Normal, reason: reason.into(), presence: Some(presence.into()) }
    }
}

/// The presence reason when the peer's side ended the connection without
/// `quit`: `closed` when it closed it (QUIC CONNECTION_CLOSE, any code),
/// `connection lost` when it went silent (idle timeout), reset or
/// vanished.
pub(crate) fn gone(e: &quinn::ConnectionError) -> &'static str {
    match e {
        quinn::ConnectionError::ApplicationClosed(_)
        | quinn::ConnectionError::ConnectionClosed(_) => "closed",
        _ => "connection lost",
    }
}

/// Serves one accepted connection until it ends. `arrived` is when the
/// server accepted the connection's first packet: the log-in deadline
/// counts from there, not from the end of the handshake, so that it holds
/// as the client sees it ("10 s after the handshake") even when a burst of
/// handshakes makes the server finish each one seconds after its client
/// did (docs/RELIABILITY.md, section 3a).
pub(crate) async fn run(
    shared: Arc<Shared>,
    conn: Connection,
    id: ConnId,
    cancel: CancellationToken,
    arrived: Instant,
) {
    let remote = conn.remote_address();
    let deadline = arrived + shared.config.limits.login_timeout();
    let streams = tokio::select! {
        s = tokio::time::timeout_at(deadline, conn.accept_bi()) => s,
        () = cancel.cancelled() => {
            conn.close(CloseCode::Shutdown.code().into(), b"server shutting down");
            return;
        }
    };
    let (send, recv) = match streams {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(cause = %e, "connection ended before the control stream");
            return;
        }
        Err(_) => {
            conn.close(CloseCode::LoginTimeout.code().into(), b"no control stream in time");
            return;
        }
    };
    let (out, out_rx) = outbound::channel(shared.config.limits.outbound_queue);
    let writer = tokio::spawn(write_loop(send, out_rx));
    let downloads =
        Downloads::new(conn.clone(), shared.transfers.limits.max_downloads_per_connection);
    let mut session = Session {
        shared: shared.clone(),
        id,
        remote,
        out,
        login: None,
        conn: conn.clone(),
        downloads,
        uploads: None,
        kick: CancellationToken::new(),
        client: String::new(),
        login_deadline: deadline,
    };
    let end = session.read_loop(recv, deadline, &cancel).await;
    session.downloads.abort_all();
    if let Some(Uploads { tasks: uploads, closing }) = &mut session.uploads {
        closing.cancel();
        let uploads_done = tokio::time::timeout(UPLOADS_STOP, async {
            while uploads.join_next().await.is_some() {}
        });
        if uploads_done.await.is_err() {
            tracing::warn!("upload streams did not stop in time; aborting them");
            uploads.abort_all();
        }
        while uploads.join_next().await.is_some() {}
    }
    while session.downloads.join_next().await.is_some() {}

    // Detach first so no new events are queued, then let the writer drain what
    // is queued (the quit reply among it) before closing.
    if session.login.is_some() {
        shared.hub.detach(id, end.presence.clone());
    }
    drop(session);
    let mut writer = writer;
    let drained = tokio::time::timeout(Duration::from_secs(2), &mut writer).await;
    if drained.is_err() {
        // The peer stopped reading; do not leave the writer behind.
        writer.abort();
    }
    if let Ok(Ok(Some(mut send))) = drained {
        let _ = send.finish();
        // A revoked session may have answered its own `session.revoke`.
        if matches!(end.code, CloseCode::Normal | CloseCode::Revoked) {
            // Give the peer a moment to read the last reply; it usually closes first.
            let _ = tokio::time::timeout(Duration::from_secs(2), send.stopped()).await;
        }
    }
    tracing::debug!(code = ?end.code, reason = %end.reason, "closing connection");
    conn.close(end.code.code().into(), end.reason.as_bytes());
}

impl Session {
    async fn read_loop(
        &mut self,
        recv: RecvStream,
        deadline: Instant,
        cancel: &CancellationToken,
    ) -> End {
        let mut frames = FrameReader::with_capacity(recv, 256);
        loop {
            // Checked here too: a read that is always ready (a client that
            // keeps sending) never lets its timeout fire.
            if self.login.is_none() && Instant::now() >= deadline {
                return End::new(CloseCode::LoginTimeout, "log in within the deadline");
            }
            let frame = match frames.buffered() {
                Ok(Some(frame)) => frame,
                Err(e) => return End::new(CloseCode::FrameTooLarge, e.to_string()),
                Ok(None) => {
                    let read = async {
                        if self.login.is_none() {
                            tokio::time::timeout_at(deadline, frames.fill()).await.ok()
                        } else {
                            Some(frames.fill().await)
                        }
                    };
                    tokio::select! {
                        r = read => match r {
                            None => return End::new(CloseCode::LoginTimeout, "log in within the deadline"),
                            Some(Ok(0)) => return End::new(CloseCode::ProtocolError, "control stream finished"),
                            Some(Ok(_)) => continue,
                            Some(Err(e)) => {
                                let mut end = End::new(CloseCode::ProtocolError, "control stream failed");
                                // A reset control stream is the client's
                                // protocol error; a lost connection is not.
                                if let Some(how) = self.conn.close_reason() {
                                    end.presence = Some(gone(&how).into());
                                }
                                // The read error only says "connection lost";
                                // the connection says how (timed out, closed by
                                // the peer, reset), which operators want.
                                let cause = match self.conn.close_reason() {
                                    Some(how) => format!("{e}: {how}"),
                                    None => e.to_string(),
                                };
                                tracing::debug!(%cause, "control stream read");
                                return end;
                            }
                        },
                        () = cancel.cancelled() => {
                            return End::new(CloseCode::Shutdown, "server shutting down");
                        }
                        () = self.kick.cancelled() => {
                            return End::new(CloseCode::Revoked, "session revoked");
                        }
                        uni = self.conn.accept_uni() => {
                            if let Ok(recv) = uni {
                                let uploads = self.uploads.get_or_insert_with(Uploads::default);
                                let upload = upload::receive(
                                    self.shared.clone(),
                                    self.login.clone(),
                                    self.out.clone(),
                                    recv,
                                    uploads.closing.clone(),
                                );
                                uploads.tasks.spawn(upload.in_current_span());
                            }
                            continue;
                        }
                        Some(()) = self.downloads.join_next(), if !self.downloads.is_empty() => continue,
                        Some(()) = next_upload(&mut self.uploads),
                            if self.uploads.as_ref().is_some_and(|u| !u.tasks.is_empty()) => continue,
                    }
                }
            };
            // Boxed: a request's state (the handlers', about 9 KiB) lives
            // only while it runs; inline it would sit in every connection's
            // task for the connection's whole life (docs/BENCHMARKS.md,
            // "Idle connections").
            if let Some(end) = Box::pin(self.handle_frame(frame)).await {
                return end;
            }
        }
    }

    /// Handles one request frame; `Some` ends the session.
    async fn handle_frame(&mut self, frame: Bytes) -> Option<End> {
        let req = match Request::parse(&frame) {
            Ok(req) => req,
            Err(e) => {
                tracing::debug!(id = ?e.id, error = %e.error, "bad request");
                return self
                    .reply(Response { re: e.id, reply: qchat_protocol::Reply::Err(e.error) })
                    .await;
            }
        };
        let id = req.id;
        let name = req.op.name();
        if let Op::Quit(q) = &req.op {
            let reason = q.reason.as_deref().unwrap_or("quit");
            let reason: String = reason.chars().filter(|c| !c.is_control()).take(256).collect();
            self.reply(Response::empty(id)).await;
            return Some(End::normal("quit", reason));
        }
        let logout = matches!(req.op, Op::Logout);
        let response = match self.dispatch_watching_close(req.op).await {
            Ok(value) => Response { re: Some(id), reply: qchat_protocol::Reply::Ok(value) },
            Err(e) => {
                if e.is_internal() {
                    tracing::error!(op = name, cause = %e, "request failed");
                } else {
                    tracing::debug!(op = name, error = %e, "request refused");
                }
                Response { re: Some(id), reply: qchat_protocol::Reply::Err(e.to_body()) }
            }
        };
        let ok = matches!(response.reply, qchat_protocol::Reply::Ok(_));
        if let Some(end) = self.reply(response).await {
            return Some(end);
        }
        (logout && ok).then(|| End::normal("logged out", "logged out"))
    }

    /// Runs a request to its end (handlers are not cancel-safe), but when
    /// the connection closes meanwhile — a send can wait for a slow fsync —
    /// tells the rooms at once: a client that reconnects before the request
    /// ends would otherwise never be seen going offline. The detach at the
    /// end of the session is then a no-op.
    async fn dispatch_watching_close(&mut self, op: Op) -> crate::error::Result<serde_json::Value> {
        let (hub, id, conn) = (self.shared.hub.clone(), self.id, self.conn.clone());
        let logged_in = self.login.is_some();
        let cx = cmd::Ctx {
            shared: &self.shared,
            caller: cmd::Caller {
                id: self.id,
                remote: self.remote,
                out: &self.out,
                login: &mut self.login,
                kick: &self.kick,
                client: &mut self.client,
            },
            downloads: &mut self.downloads,
        };
        let work = cmd::dispatch(cx, op);
        tokio::pin!(work);
        tokio::select! {
            biased;
            result = &mut work => result,
            how = conn.closed() => {
                if logged_in {
                    hub.detach(id, Some(gone(&how).into()));
                }
                work.await
            }
        }
    }

    async fn reply(&self, response: Response) -> Option<End> {
        let frame = match encode_json(&response) {
            Ok(f) => f,
            Err(e) => {
                // Cannot happen for list replies (`paging` keeps them within
                // the frame) nor errors (their messages are bounded); should
                // another reply outgrow the frame, the client gets `internal`
                // for that request and keeps its connection.
                tracing::error!(cause = %e, re = ?response.re, "encoding reply");
                let fallback = Response::err(response.re, ErrorCode::Internal, "internal error");
                match encode_json(&fallback) {
                    Ok(f) => f,
                    Err(_) => return Some(End::new(CloseCode::Internal, "internal error")),
                }
            }
        };
        let send = self.out.send(frame);
        // Before log-in the deadline bounds the wait for queue room too: a
        // client that sends requests but never reads the replies would
        // otherwise hold the session, unauthenticated, for ever. (A log-in
        // that is being checked when the deadline passes still completes.)
        let sent = if self.login.is_none() {
            match tokio::time::timeout_at(self.login_deadline, send).await {
                Ok(sent) => sent,
                Err(_) => {
                    return Some(End::new(CloseCode::LoginTimeout, "log in within the deadline"));
                }
            }
        } else {
            send.await
        };
        match sent {
            Ok(()) => None,
            Err(_) => Some(End::new(CloseCode::Internal, "writer ended")),
        }
    }
}

/// A connection's upload tasks: told to stop (`closing`) when it ends, and
/// waited for, so each writes out what it took (kept for a resume) before
/// its upload can be claimed again.
#[derive(Default)]
struct Uploads {
    tasks: JoinSet<()>,
    /// Cancelled when the session ends.
    closing: CancellationToken,
}

/// Waits for the next upload task to end; `None` when there is none.
async fn next_upload(uploads: &mut Option<Uploads>) -> Option<()> {
    uploads.as_mut()?.tasks.join_next().await.map(|_| ())
}

/// Writes queued frames to the control stream until every sender is gone.
/// Returns the stream so the session can finish it gracefully.
async fn write_loop(mut send: SendStream, mut rx: OutboundRx) -> Option<SendStream> {
    let mut frames = Vec::new();
    while let Some(next) = rx.next(&mut frames).await {
        let result = match next {
            // The shared frames go to quinn as they are: no copy per connection.
            Next::Frames => {
                let r = send.write_all_chunks(&mut frames).await;
                frames.clear();
                // A burst's batch is not kept for an idle connection.
                if frames.capacity() > outbound::KEEP {
                    frames = Vec::new();
                }
                r
            }
            Next::Lagged(rooms) => {
                let mut r = Ok(());
                for room in rooms {
                    let lagged = Lagged { room: room.name, room_id: Some(room.id) };
                    let Ok(frame) = encode_json(&Event::Lagged(lagged)) else { continue };
                    r = send.write_all(&frame).await;
                    if r.is_err() {
                        break;
                    }
                }
                r
            }
        };
        if let Err(e) = result {
            tracing::debug!(cause = %e, "control stream write");
            return None;
        }
    }
    Some(send)
}

//! Request handlers: one function per operation, thin — validate, resolve
//! the room through [`crate::access`] (the one place that decides who may
//! do what), call storage, the writer and the hub, shape the reply. Grouped
//! by domain: [`account`] (hello, register, login, resume, logout),
//! [`rooms`] (rooms, room.create, room.join, room.leave, members, read,
//! dm.open), [`moderation`] (room.invite, kick, ban, unban, role, topic,
//! rename, private, archive, delete), [`messages`] (send, history, sync),
//! [`files`] (upload.begin, upload.status, file.get) and [`search`]; the
//! account handlers also serve profile, profile.set, passwd, sessions and
//! session.revoke.
//!
//! A handler gets only what it uses: the server's [`Shared`] state and the
//! caller's [`Login`]; the account handlers also the [`Caller`] whose login
//! they change, `file.get` also the connection's [`Downloads`].

mod account;
mod files;
mod messages;
mod moderation;
mod rooms;
mod search;

use std::net::SocketAddr;

use qchat_protocol::{ErrorCode, Op};
use serde::Serialize;
use serde_json::Value;

use crate::access::{self, Access, Need};
use crate::changes::{ChangeJob, RoomChange};
use crate::db::Room;
use crate::error::{Error, Result, refuse};
use crate::hub::ConnId;
use crate::outbound::Outbound;
use crate::state::{Login, Shared};
use crate::transfer::download::Downloads;

/// What of its connection a request may use; the session lends it for one
/// request at a time.
pub(crate) struct Ctx<'a> {
    /// The server's state.
    pub(crate) shared: &'a Shared,
    /// Who sent the request.
    pub(crate) caller: Caller<'a>,
    /// The connection's downloads (`file.get` starts one).
    pub(crate) downloads: &'a mut Downloads,
}

/// The connection as the account handlers see it: who is on the other end,
/// and the login they set.
pub(crate) struct Caller<'a> {
    /// The connection's id in the hub.
    pub(crate) id: ConnId,
    /// The peer's address (failed logins are limited per address).
    pub(crate) remote: SocketAddr,
    /// The connection's outbound queue (the hub queues its events there).
    pub(crate) out: &'a Outbound,
    /// Who the connection is logged in as; `register`, `login` and
    /// `resume` set it.
    pub(crate) login: &'a mut Option<Login>,
    /// Ends the connection when its session is revoked (the log-in hands
    /// it to the hub).
    pub(crate) kick: &'a tokio_util::sync::CancellationToken,
    /// The client's name from `hello` (a log-in that names none uses it).
    pub(crate) client: &'a mut String,
}

/// Runs one operation for the connection and returns the `ok` payload.
///
/// # Errors
/// The request's failure, mapped to a wire code by the caller.
pub(crate) async fn dispatch(cx: Ctx<'_>, op: Op) -> Result<Value> {
    let Ctx { shared, mut caller, downloads } = cx;
    match op {
        Op::Hello(h) => account::hello(shared, &mut caller, &h).await,
        Op::Register(c) => account::register(shared, &mut caller, c).await,
        Op::Login(c) => account::login(shared, &mut caller, c).await,
        Op::Resume(r) => account::resume(shared, &mut caller, r).await,
        Op::Ping => empty(),
        // Handled by the session before dispatch; kept total for the compiler.
        Op::Quit(_) => empty(),
        op => {
            let login = caller
                .login
                .clone()
                .ok_or_else(|| refuse(ErrorCode::Unauthorized, "log in first"))?;
            let s = shared;
            match op {
                Op::Logout => account::logout(s, &login).await,
                Op::Rooms(r) => rooms::list(s, &login, r).await,
                Op::RoomCreate(r) => rooms::create(s, &login, &r).await,
                Op::RoomJoin(r) => rooms::join(s, &login, &r.room).await,
                Op::RoomLeave(r) => rooms::leave(s, &login, &r.room).await,
                Op::Members(r) => rooms::members(s, &login, r).await,
                Op::Read(r) => rooms::read(s, &login, caller.id, &r.room, r.seq).await,
                Op::Typing(r) => rooms::typing(s, &login, &r.room).await,
                Op::Send(r) => messages::send(s, &login, r).await,
                Op::History(r) => messages::history(s, &login, r).await,
                Op::Sync(r) => messages::sync(s, &login, r).await,
                Op::UploadBegin(r) => files::begin(s, &login, r).await,
                Op::UploadStatus(r) => files::status(s, &login, r).await,
                Op::FileGet(r) => files::get(s, &login, downloads, r).await,
                Op::DmOpen(r) => rooms::dm_open(s, &login, r).await,
                Op::RoomInvite(r) => moderation::invite(s, &login, r).await,
                Op::RoomKick(r) => moderation::kick(s, &login, r).await,
                Op::RoomBan(r) => moderation::ban(s, &login, r).await,
                Op::RoomUnban(r) => moderation::unban(s, &login, r).await,
                Op::RoomRole(r) => moderation::role(s, &login, r).await,
                Op::RoomTopic(r) => moderation::topic(s, &login, r).await,
                Op::RoomRename(r) => moderation::rename(s, &login, r).await,
                Op::RoomPrivate(r) => moderation::private(s, &login, r).await,
                Op::RoomArchive(r) => moderation::archive(s, &login, r).await,
                Op::RoomDelete(r) => moderation::delete(s, &login, &r.room).await,
                Op::Profile(r) => account::profile(s, &login, r).await,
                Op::ProfileSet(r) => account::profile_set(s, &login, r).await,
                Op::Passwd(r) => account::passwd(s, &login, caller.remote, r).await,
                Op::Sessions(r) => account::sessions(s, &login, r).await,
                Op::SessionRevoke(r) => account::revoke(s, &login, &r.session).await,
                Op::Search(r) => search::search(s, &login, r).await,
                Op::MessageEdit(r) => messages::edit(s, &login, r).await,
                Op::MessageDelete(r) => messages::delete(s, &login, r).await,
                Op::MessageReact(r) => messages::react(s, &login, r).await,
                Op::Thread(r) => messages::thread(s, &login, r).await,
                Op::Hello(_)
                | Op::Register(_)
                | Op::Login(_)
                | Op::Resume(_)
                | Op::Ping
                | Op::Quit(_) => Err(Error::Internal("unreachable op".into())),
            }
        }
    }
}

fn ok<T: Serialize>(payload: &T) -> Result<Value> {
    serde_json::to_value(payload).map_err(|e| Error::Internal(format!("encoding reply: {e}")))
}

fn empty() -> Result<Value> {
    Ok(Value::Object(serde_json::Map::new()))
}

fn check_name(what: &str, name: &str) -> Result<()> {
    if qchat_protocol::valid_name(name) {
        Ok(())
    } else {
        Err(refuse(
            ErrorCode::BadRequest,
            format!("invalid {what} name: use 1-64 letters, digits, '-', '_' or '.'"),
        ))
    }
}

/// The caller, as [`access`] sees them.
fn who(login: &Login) -> access::Caller<'_> {
    access::Caller { tenant: login.tenant, user: login.user, name: &login.user_name }
}

/// Resolves the room the caller names by `reference` and decides `need`
/// there ([`access::resolve`]).
async fn room(s: &Shared, login: &Login, reference: &str, need: Need) -> Result<Access> {
    access::resolve(&s.pool, who(login), reference, need).await
}

/// A change to `room` by the caller, who named it `reference`.
fn change(login: &Login, reference: &str, room: &Room, change: RoomChange) -> ChangeJob {
    ChangeJob {
        reference: reference.to_owned(),
        tenant: login.tenant,
        room: room.id,
        actor: login.user,
        actor_name: login.user_name.clone(),
        change,
    }
}

//! Room changes — joins and leaves, invitations, kicks, bans, roles, topic,
//! name, public or private, archive, delete — applied by the writer
//! (the committer) inside its transaction: the actor's and the
//! target's standing are read there and checked against [`access`]'s
//! rules, so a change and the messages around it are ordered and decided
//! against the same state. Each change that alters anything is recorded as
//! a `system` message in the same savepoint (who did what), and says what
//! the hub must do once it is committed (subscriptions, `room` and
//! `room.removed` events) and what the caller cleans up (uploads, files).

use crate::access::{self, MessageAct, Need, Verdict};
use crate::config::Quotas;
use crate::db::members::{self, Lookup};
use crate::db::messages;
use crate::db::rooms as room_db;
use crate::db::{self, Conn, DbError, NewMessage, Room, RoomId, Standing, TenantId, UserId};
use crate::error::{Error, Result, refuse};
use crate::metrics::Metrics;
use crate::quota::{self, kind::Created};
use qchat_protocol::{
    Change, ChangeKind, ErrorCode, MAX_REACTIONS, MemberEvent, MessageKind, RemovedReason, Role,
    RoomInfo, RoomKind,
};

/// What the writer checks room changes against (invitations count against
/// their quotas).
pub(crate) struct Limits {
    pub(crate) quotas: Quotas,
    pub(crate) metrics: std::sync::Arc<Metrics>,
}

/// A change to one room, asked for by `actor`.
#[derive(Debug, Clone)]
pub(crate) struct ChangeJob {
    /// The room as the actor named it (echoed in refusals).
    pub(crate) reference: String,
    pub(crate) tenant: TenantId,
    pub(crate) room: RoomId,
    pub(crate) actor: UserId,
    pub(crate) actor_name: String,
    pub(crate) change: RoomChange,
}

/// What is to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RoomChange {
    Join,
    Leave,
    Invite {
        user: String,
    },
    Kick {
        user: String,
        reason: Option<String>,
    },
    Ban {
        user: String,
        reason: Option<String>,
    },
    Unban {
        user: String,
    },
    Role {
        user: String,
        role: Role,
    },
    Topic(String),
    Rename(String),
    Private(bool),
    Archive(bool),
    Delete,
    /// Replace the body of message `seq` (the sender's own).
    Edit {
        seq: u64,
        body: String,
    },
    /// Make message `seq` a tombstone.
    DeleteMessage {
        seq: u64,
    },
    /// Add (`add`) or take back a reaction to message `seq`.
    React {
        seq: u64,
        emoji: String,
        add: bool,
    },
}

/// What the hub must do for a committed change.
#[derive(Debug, Clone)]
pub(crate) enum HubAction {
    /// Subscribe every connection of the user to the room.
    Subscribe(UserId),
    /// Unsubscribe every connection of the user from the room.
    Unsubscribe(UserId),
    /// Unsubscribe everyone (the room is gone).
    Close,
    /// A `room` event to the user's connections (the room as it was before
    /// the change's own message).
    Room(UserId, RoomInfo),
    /// A `room.removed` event to the user's connections.
    Removed(UserId, RemovedReason),
    /// A `room.removed` event to every subscriber of the room.
    RemovedAll(RemovedReason),
    /// The compatibility `member` event to the room's subscribers.
    Member(MemberEvent),
}

/// What is left to clean up outside the database once a change is
/// committed (by the caller: the writer only writes).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Cleanup {
    /// Uploads whose rows the change deleted: stop their streams
    /// (`forbidden`) and discard their bytes.
    pub(crate) uploads: Vec<String>,
    /// Hashes of stored files no room offers any more: remove from disk.
    pub(crate) unreferenced: Vec<String>,
}

/// A change applied in the writer's transaction, to finish after the commit.
#[derive(Debug, Clone)]
pub(crate) struct Applied {
    /// The room as it is after the change.
    pub(crate) room: Room,
    /// The `system` message recording it; `None` when nothing changed.
    pub(crate) system: Option<NewMessage>,
    /// Hub actions before the system message is published.
    pub(crate) before: Vec<HubAction>,
    /// Hub actions after it.
    pub(crate) after: Vec<HubAction>,
    pub(crate) cleanup: Cleanup,
    /// A join: the room as the new member sees it, just before the join's
    /// own system message (the `room` event's, and the reply's).
    pub(crate) joined: Option<Box<RoomInfo>>,
}

impl Applied {
    fn nothing(room: Room) -> Self {
        Self {
            room,
            system: None,
            before: Vec::new(),
            after: Vec::new(),
            cleanup: Cleanup::default(),
            joined: None,
        }
    }
}

/// Reads `user`'s standing in the room inside the transaction; `None` when
/// the room is gone.
async fn standing(
    conn: &mut Conn<'_>,
    tenant: TenantId,
    room: RoomId,
    user: UserId,
) -> Result<Option<(Room, Standing)>> {
    Ok(members::standings(&mut *conn, tenant, user, Lookup::Id(room)).await?.pop())
}

/// The named user of the tenant and their standing in the room.
async fn target(conn: &mut Conn<'_>, job: &ChangeJob, name: &str) -> Result<(UserId, Standing)> {
    let missing = || refuse(ErrorCode::NotFound, format!("no user named {name}"));
    if !qchat_protocol::valid_name(name) {
        return Err(missing());
    }
    let user = db::users::by_name(&mut *conn, job.tenant, name).await?.ok_or_else(missing)?;
    let (_, s) = standing(conn, job.tenant, job.room, user.id).await?.ok_or_else(missing)?;
    Ok((user.id, s))
}

fn need(change: &RoomChange) -> Need {
    match change {
        RoomChange::Join => Need::Join,
        RoomChange::Leave => Need::Leave,
        RoomChange::Invite { .. }
        | RoomChange::Kick { .. }
        | RoomChange::Ban { .. }
        | RoomChange::Unban { .. } => Need::Moderate,
        RoomChange::Role { .. }
        | RoomChange::Topic(_)
        | RoomChange::Rename(_)
        | RoomChange::Private(_)
        | RoomChange::Archive(_)
        | RoomChange::Delete => Need::Own,
        // Decided on the message, once it is found (`message_change`).
        RoomChange::Edit { .. } | RoomChange::DeleteMessage { .. } | RoomChange::React { .. } => {
            Need::See
        }
    }
}

/// Applies `job` on `conn` (inside the writer's transaction): decides it
/// against the state in the transaction, writes it, and returns the
/// system message to append and what to do after the commit.
///
/// # Errors
/// The refusal to send the actor (`not_found` for a room they cannot see,
/// `forbidden`, `conflict`), or a database fault.
pub(crate) async fn apply(
    conn: &mut Conn<'_>,
    job: &ChangeJob,
    limits: &Limits,
) -> Result<Applied> {
    // The actor resolved the room moments ago; if it vanished or was hidden
    // from them meanwhile, the answer is the one for a missing room.
    let Some((room, actor)) = standing(conn, job.tenant, job.room, job.actor).await? else {
        return Err(access::not_found(&job.reference));
    };
    match access::decide(&room, &actor, need(&job.change)) {
        Verdict::Allowed => {}
        Verdict::Hidden => return Err(access::not_found(&job.reference)),
        Verdict::Forbidden(why) => {
            return Err(refuse(ErrorCode::Forbidden, format!("{}: {why}", job.reference)));
        }
    }
    let (tenant, id, me) = (job.tenant, job.room, job.actor);
    let mut done = Applied::nothing(room.clone());
    let change = |kind: ChangeKind| Change::new(kind, job.actor_name.clone());
    let recorded = match &job.change {
        RoomChange::Join => {
            if !room_db::join(conn.re(), tenant, id, me, Role::Member).await? {
                return Ok(done);
            }
            let tally = db::mentions::tally(&mut *conn, tenant, id, me).await?;
            let info = joined_info(&room, &actor, Role::Member, tally);
            done.joined = Some(Box::new(info.clone()));
            done.before.push(HubAction::Subscribe(me));
            done.before.push(HubAction::Room(me, info));
            done.after.push(member(&room, &job.actor_name, true));
            Change { user: Some(job.actor_name.clone()), ..change(ChangeKind::Joined) }
        }
        RoomChange::Leave => {
            if actor.role.is_none() {
                // Declining an invitation; nothing to record.
                if members::uninvite(&mut *conn, tenant, id, me).await? {
                    done.after.push(HubAction::Removed(me, RemovedReason::Left));
                }
                return Ok(done);
            }
            if actor.role == Some(Role::Owner)
                && members::member_count(&mut *conn, tenant, id, 2).await? > 1
            {
                return Err(refuse(
                    ErrorCode::Forbidden,
                    format!(
                        "{}: the owner leaves last; give the room another owner first",
                        room.display_name()
                    ),
                ));
            }
            room_db::leave(&mut *conn, tenant, id, me).await?;
            done.cleanup.uploads = members::drop_uploads(&mut *conn, tenant, id, me).await?;
            // Heard by the user's other connections before they unsubscribe.
            done.after.push(member(&room, &job.actor_name, false));
            done.after.push(HubAction::Unsubscribe(me));
            done.after.push(HubAction::Removed(me, RemovedReason::Left));
            Change { user: Some(job.actor_name.clone()), ..change(ChangeKind::Left) }
        }
        RoomChange::Invite { user } => {
            if room.archived {
                return Err(refuse(
                    ErrorCode::Forbidden,
                    format!("{}: the room is archived (read-only)", room.display_name()),
                ));
            }
            let (who, s) = target(conn, job, user).await?;
            if s.banned {
                return Err(refuse(
                    ErrorCode::Forbidden,
                    format!("{user} is banned from {}; unban first", room.display_name()),
                ));
            }
            // The tenant's row locked (PostgreSQL) before the insert, so the
            // quota counts below see every concurrent invitation, on every
            // node (SQLite's writer is the only one).
            db::tenants::lock(&mut *conn, tenant).await?;
            if s.role.is_some() || !members::invite(&mut *conn, tenant, id, who, me).await? {
                return Ok(done);
            }
            let Limits { quotas, metrics } = limits;
            quota::check(conn, quotas, metrics, Created::Invitation, tenant, me).await?;
            let seen = Standing { invited: true, ..s };
            let info = room_db::room_info(&room, &seen, db::Counts::default(), None);
            done.before.push(HubAction::Room(who, info));
            Change { user: Some(user.clone()), ..change(ChangeKind::Invited) }
        }
        RoomChange::Kick { user, reason } => {
            let (who, s) = target(conn, job, user).await?;
            if s.role.is_none() {
                return Err(refuse(
                    ErrorCode::NotFound,
                    format!("{user} is not a member of {}", room.display_name()),
                ));
            }
            outrank(&room, &actor, &s, user)?;
            room_db::leave(&mut *conn, tenant, id, who).await?;
            done.cleanup.uploads = members::drop_uploads(&mut *conn, tenant, id, who).await?;
            done.after.push(member(&room, user, false));
            done.after.push(HubAction::Unsubscribe(who));
            done.after.push(HubAction::Removed(who, RemovedReason::Kicked));
            Change {
                user: Some(user.clone()),
                reason: reason.clone(),
                ..change(ChangeKind::Kicked)
            }
        }
        RoomChange::Ban { user, reason } => {
            let (who, s) = target(conn, job, user).await?;
            outrank(&room, &actor, &s, user)?;
            if !members::ban(&mut *conn, tenant, id, who, me, reason.as_deref().unwrap_or(""))
                .await?
            {
                return Ok(done);
            }
            let was_member = room_db::leave(&mut *conn, tenant, id, who).await?;
            let was_invited = members::uninvite(&mut *conn, tenant, id, who).await?;
            done.cleanup.uploads = members::drop_uploads(&mut *conn, tenant, id, who).await?;
            if was_member {
                done.after.push(member(&room, user, false));
                done.after.push(HubAction::Unsubscribe(who));
            }
            // Only someone who had the room in their list hears of it.
            if was_member || was_invited {
                done.after.push(HubAction::Removed(who, RemovedReason::Banned));
            }
            Change {
                user: Some(user.clone()),
                reason: reason.clone(),
                ..change(ChangeKind::Banned)
            }
        }
        RoomChange::Unban { user } => {
            let (who, _) = target(conn, job, user).await?;
            if !members::unban(&mut *conn, tenant, id, who).await? {
                return Ok(done);
            }
            Change { user: Some(user.clone()), ..change(ChangeKind::Unbanned) }
        }
        RoomChange::Role { user, role } => {
            let (who, s) = target(conn, job, user).await?;
            let Some(current) = s.role else {
                return Err(refuse(
                    ErrorCode::NotFound,
                    format!("{user} is not a member of {}", room.display_name()),
                ));
            };
            outrank(&room, &actor, &s, user)?;
            if current == *role {
                return Ok(done);
            }
            members::set_role(&mut *conn, tenant, id, who, *role).await?;
            if *role == Role::Owner {
                // One owner: the previous one (the actor, unless an admin
                // acted) becomes a moderator.
                members::demote_owners(&mut *conn, tenant, id, who).await?;
            }
            Change { user: Some(user.clone()), role: Some(*role), ..change(ChangeKind::Role) }
        }
        RoomChange::Topic(topic) => {
            if *topic == room.topic {
                return Ok(done);
            }
            room_db::set_topic(&mut *conn, tenant, id, topic).await?;
            done.room.topic.clone_from(topic);
            Change { topic: Some(topic.clone()), ..change(ChangeKind::Topic) }
        }
        RoomChange::Rename(name) => {
            if name == room.display_name() {
                return Ok(done);
            }
            name_free(conn, job, name).await?;
            room_db::set_name_and_kind(&mut *conn, tenant, id, name, room.kind)
                .await
                .map_err(|e| taken(e, name))?;
            done.room = reread(conn, job).await?;
            Change { name: Some(name.clone()), ..change(ChangeKind::Renamed) }
        }
        RoomChange::Private(private) => {
            let kind = if *private { RoomKind::Private } else { RoomKind::Public };
            if kind == room.kind {
                return Ok(done);
            }
            let name = room.display_name().to_owned();
            room_db::set_name_and_kind(&mut *conn, tenant, id, &name, kind)
                .await
                .map_err(|e| taken(e, &name))?;
            done.room = reread(conn, job).await?;
            change(if *private { ChangeKind::MadePrivate } else { ChangeKind::MadePublic })
        }
        RoomChange::Archive(archived) => {
            if *archived == room.archived {
                return Ok(done);
            }
            room_db::set_archived(&mut *conn, tenant, id, *archived).await?;
            done.room.archived = *archived;
            if *archived {
                // Read-only: uploads in progress stop.
                done.cleanup.uploads = members::drop_room_uploads(&mut *conn, tenant, id).await?;
            }
            change(if *archived { ChangeKind::Archived } else { ChangeKind::Unarchived })
        }
        RoomChange::Delete => {
            let invited = members::invitees(&mut *conn, tenant, id).await?;
            let deleted = room_db::delete(conn.re(), tenant, id).await?;
            done.cleanup = Cleanup { uploads: deleted.uploads, unreferenced: deleted.unreferenced };
            done.after.push(HubAction::RemovedAll(RemovedReason::Deleted));
            for user in invited {
                done.after.push(HubAction::Removed(user, RemovedReason::Deleted));
            }
            done.after.push(HubAction::Close);
            return Ok(done);
        }
        RoomChange::Edit { .. } | RoomChange::DeleteMessage { .. } | RoomChange::React { .. } => {
            let now = db::now_ms();
            if let Some(recorded) = message_change(conn, job, &room, &actor, &mut done, now).await?
            {
                // The edit's or deletion's time is its system message's.
                let system = system_message(job, &done.room, recorded);
                done.system = Some(NewMessage { ts: now, ..system });
            }
            return Ok(done);
        }
    };
    done.system = Some(system_message(job, &done.room, recorded));
    Ok(done)
}

/// An edit, a deletion or a reaction: finds the message, decides the
/// actor's right to it ([`access::decide_message`]) and writes it. `None`
/// when nothing changed (a reaction given or taken back already, the same
/// text again).
async fn message_change(
    conn: &mut Conn<'_>,
    job: &ChangeJob,
    room: &Room,
    actor: &Standing,
    done: &mut Applied,
    now: i64,
) -> Result<Option<Change>> {
    let (tenant, id, me) = (job.tenant, job.room, job.actor);
    let (seq, act) = match &job.change {
        RoomChange::Edit { seq, .. } => (*seq, MessageAct::Edit),
        RoomChange::DeleteMessage { seq } => (*seq, MessageAct::Delete),
        RoomChange::React { seq, .. } => (*seq, MessageAct::React),
        _ => return Err(Error::Internal("not a message change".into())),
    };
    let missing = || refuse(ErrorCode::NotFound, format!("no message {seq} in {}", job.reference));
    // Only what users sent is edited, deleted or reacted to; a tombstone is
    // no longer there to act on.
    let target = match messages::target(&mut *conn, tenant, id, seq).await? {
        Some(t) if t.kind != MessageKind::System && !t.deleted => t,
        _ => {
            // The right to read decides first: a reader who may not read
            // the room learns nothing of its messages.
            return match access::decide(room, actor, Need::Read) {
                Verdict::Allowed => Err(missing()),
                Verdict::Hidden => Err(access::not_found(&job.reference)),
                Verdict::Forbidden(why) => {
                    Err(refuse(ErrorCode::Forbidden, format!("{}: {why}", job.reference)))
                }
            };
        }
    };
    let own = target.sender == Some(me);
    match access::decide_message(room, actor, act, own) {
        Verdict::Allowed => {}
        Verdict::Hidden => return Err(access::not_found(&job.reference)),
        Verdict::Forbidden(why) => {
            return Err(refuse(ErrorCode::Forbidden, format!("{}: {why}", job.reference)));
        }
    }
    let base =
        Change { seq: Some(seq), ..Change::new(ChangeKind::Unknown, job.actor_name.clone()) };
    Ok(Some(match &job.change {
        RoomChange::Edit { body, .. } => {
            if target.kind != MessageKind::Text {
                return Err(refuse(
                    ErrorCode::BadRequest,
                    format!("message {seq} is a file offer; only text is edited"),
                ));
            }
            if *body == target.body {
                return Ok(None);
            }
            messages::edit(&mut *conn, tenant, id, seq, body, now).await?;
            Change { kind: ChangeKind::Edited, body: Some(body.clone()), ..base }
        }
        RoomChange::DeleteMessage { .. } => {
            let by = &job.actor_name;
            if let Some(hash) = messages::tombstone(&mut *conn, tenant, id, seq, by, now).await? {
                done.cleanup.unreferenced.push(hash);
            }
            // Whose message it was, when a moderator deleted another's.
            let user = (!own).then(|| target.sender_name.clone());
            Change { kind: ChangeKind::Deleted, user, ..base }
        }
        RoomChange::React { emoji, add, .. } => {
            if *add
                && messages::reaction_kinds(&mut *conn, tenant, id, seq).await?
                    >= MAX_REACTIONS as u64
                && !messages::has_reaction(&mut *conn, tenant, id, seq, emoji).await?
            {
                return Err(refuse(
                    ErrorCode::TooLarge,
                    format!("message {seq} holds {MAX_REACTIONS} different reactions already"),
                ));
            }
            if !messages::react(&mut *conn, (tenant, id, seq), me, emoji, *add, now).await? {
                return Ok(None);
            }
            let kind = if *add { ChangeKind::Reacted } else { ChangeKind::Unreacted };
            Change { kind, emoji: Some(emoji.clone()), ..base }
        }
        _ => return Err(Error::Internal("not a message change".into())),
    }))
}

fn outrank(room: &Room, actor: &Standing, target: &Standing, name: &str) -> Result<()> {
    if access::outranks(room, actor, target) {
        Ok(())
    } else {
        Err(refuse(
            ErrorCode::Forbidden,
            format!("{}: you may not do that to {name}", room.display_name()),
        ))
    }
}

fn member(room: &Room, user: &str, joined: bool) -> HubAction {
    HubAction::Member(MemberEvent { room: room.name.clone(), user: user.to_owned(), joined })
}

/// The room as a new member sees it: read up to the `last_seq` the
/// membership started at (`db::rooms::join`), as read back in the join's
/// transaction (`tally`): on PostgreSQL another node may have added
/// messages since `room` was read.
fn joined_info(
    room: &Room,
    before: &Standing,
    role: Role,
    tally: Option<db::mentions::Tally>,
) -> RoomInfo {
    let read_seq = Some(tally.map_or(room.last_seq, |t| t.read_seq));
    let s = Standing { role: Some(role), read_seq, invited: false, ..*before };
    let mut info = room_db::room_info(room, &s, tally.map(|t| t.counts).unwrap_or_default(), None);
    if let Some(t) = tally {
        info.last_seq = t.last_seq;
    }
    info
}

/// A rename must not make two rooms the actor sees share a name (a room
/// the actor cannot see does not count: its name is not taken for them).
async fn name_free(conn: &mut Conn<'_>, job: &ChangeJob, name: &str) -> Result<()> {
    let rows = members::standings(&mut *conn, job.tenant, job.actor, Lookup::Name(name)).await?;
    if rows.iter().any(|(r, s)| r.id != job.room && access::visible(r, s)) {
        return Err(refuse(ErrorCode::Conflict, format!("a room named {name} exists")));
    }
    Ok(())
}

fn taken(e: DbError, name: &str) -> Error {
    match e {
        DbError::Conflict => refuse(ErrorCode::Conflict, format!("a room named {name} exists")),
        DbError::Sqlx(e) => Error::Db(e),
    }
}

async fn reread(conn: &mut Conn<'_>, job: &ChangeJob) -> Result<Room> {
    let (room, _) = standing(conn, job.tenant, job.room, job.actor)
        .await?
        .ok_or_else(|| Error::Internal("room vanished inside its own change".into()))?;
    Ok(room)
}

/// The `system` message recording `change` in `room` (the room as it is
/// after the change: a rename's message carries the new name).
fn system_message(job: &ChangeJob, room: &Room, change: Change) -> NewMessage {
    NewMessage {
        tenant: job.tenant,
        room: room.id,
        sender: None,
        sender_name: job.actor_name.clone(),
        client_msg_id: None,
        kind: MessageKind::System,
        body: describe(&change),
        ts: db::now_ms(),
        file: None,
        change: Some(Box::new(change)),
        reply_to: None,
        mentions: None,
    }
}

/// The change in words, for readers that do not interpret `change`.
pub(crate) fn describe(c: &Change) -> String {
    let by = &c.by;
    let user = c.user.as_deref().unwrap_or("someone");
    let seq = |c: &Change| c.seq.map_or_else(|| "?".to_owned(), |s| s.to_string());
    let why = |text: String| match c.reason.as_deref().filter(|r| !r.is_empty()) {
        Some(reason) => format!("{text}: {reason}"),
        None => text,
    };
    match c.kind {
        ChangeKind::Joined => format!("{user} joined"),
        ChangeKind::Left => format!("{user} left"),
        ChangeKind::Invited => format!("{by} invited {user}"),
        ChangeKind::Kicked => why(format!("{by} removed {user}")),
        ChangeKind::Banned => why(format!("{by} banned {user}")),
        ChangeKind::Unbanned => format!("{by} lifted the ban on {user}"),
        ChangeKind::Role => match c.role {
            Some(Role::Owner) => format!("{by} made {user} the owner"),
            Some(Role::Moderator) => format!("{by} made {user} a moderator"),
            _ => format!("{by} made {user} a member"),
        },
        ChangeKind::Topic => match c.topic.as_deref().filter(|t| !t.is_empty()) {
            Some(topic) => format!("{by} set the topic: {topic}"),
            None => format!("{by} cleared the topic"),
        },
        ChangeKind::Renamed => {
            format!("{by} renamed the room to {}", c.name.as_deref().unwrap_or("?"))
        }
        ChangeKind::MadePrivate => format!("{by} made the room private"),
        ChangeKind::MadePublic => format!("{by} made the room public"),
        ChangeKind::Archived => format!("{by} archived the room"),
        ChangeKind::Unarchived => format!("{by} unarchived the room"),
        ChangeKind::Edited => format!("{by} edited message {}", seq(c)),
        ChangeKind::Deleted => match c.user.as_deref() {
            Some(user) => format!("{by} deleted message {} by {user}", seq(c)),
            None => format!("{by} deleted message {}", seq(c)),
        },
        ChangeKind::Reacted => {
            format!("{by} reacted {} to message {}", c.emoji.as_deref().unwrap_or("?"), seq(c))
        }
        ChangeKind::Unreacted => {
            format!("{by} took back {} on message {}", c.emoji.as_deref().unwrap_or("?"), seq(c))
        }
        ChangeKind::Unknown => format!("{by} changed the room"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_read_as_sentences() {
        let c = |kind| Change {
            kind,
            by: "ann".into(),
            user: Some("bob".into()),
            role: Some(Role::Moderator),
            topic: Some(String::new()),
            name: Some("q".into()),
            reason: Some("spam".into()),
            seq: Some(4),
            body: None,
            emoji: Some("👍".into()),
        };
        assert_eq!(describe(&c(ChangeKind::Banned)), "ann banned bob: spam");
        assert_eq!(describe(&c(ChangeKind::Role)), "ann made bob a moderator");
        assert_eq!(describe(&c(ChangeKind::Topic)), "ann cleared the topic");
        assert_eq!(describe(&c(ChangeKind::Joined)), "bob joined");
        assert_eq!(describe(&c(ChangeKind::Renamed)), "ann renamed the room to q");
        assert_eq!(describe(&c(ChangeKind::Reacted)), "ann reacted 👍 to message 4");
        assert_eq!(describe(&c(ChangeKind::Deleted)), "ann deleted message 4 by bob");
    }
}

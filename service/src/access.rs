//! Who may see and do what in which room: the one place the service decides
//! it (DESIGN.md 1a). Every request that names a room resolves it here
//! ([`resolve`]), the `rooms` list is filtered here ([`list`]), a file is
//! visible through the rooms that offer it ([`file`]), and the writer checks
//! every sender and every room change against the same rules ([`decide`],
//! [`outranks`]) inside its transaction.
//!
//! The rule behind all of it: whoever may not read a room cannot tell that
//! it exists. A room the caller may not see gets exactly the answer of a
//! room never created (and of another tenant's room): `not_found` with the
//! message `no room named <what the caller sent>`, after the same queries.
//! `forbidden` is only ever said about a room the caller can see.

use crate::db::members::{self, Lookup};
use crate::db::{self, Db, Room, RoomId, Standing, TenantId, UserId};
use crate::error::{Error, Result, refuse};
use crate::paging;
use futures_util::TryStreamExt as _;
use qchat_protocol::{
    DM_ALIAS_PREFIX, ErrorCode, MAX_DM_MEMBERS, Role, RoomInfo, RoomKind, valid_name, valid_room_id,
};

/// What the caller wants to do in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Need {
    /// Know that it exists: list it, name it in a request.
    See,
    /// Read its history and members, fetch its files.
    Read,
    /// Send a message or a file.
    Post,
    /// Become a member.
    Join,
    /// Stop being a member (or decline an invitation).
    Leave,
    /// Invite, kick, ban, unban (owners and moderators).
    Moderate,
    /// Change roles, rename, set the topic, make public or private,
    /// archive, delete (owners).
    Own,
}

/// The answer for one room, one user and one [`Need`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Allowed,
    /// The room does not exist for the caller.
    Hidden,
    /// The caller sees the room but may not do this; the reason is safe to
    /// show.
    Forbidden(&'static str),
}

/// Whether the user can tell that the room exists.
pub(crate) fn visible(room: &Room, s: &Standing) -> bool {
    match room.kind {
        RoomKind::Public => true,
        // A ban removes the membership and the invitation with it.
        RoomKind::Private => s.role.is_some() || s.invited || s.admin,
        // Admins have no rights in DMs.
        RoomKind::Dm => s.role.is_some(),
    }
}

/// The user's rank in the room: a tenant admin's (4) above an owner's (3),
/// a moderator's (2), a member's (1), anyone else's (0). In a DM everyone
/// is a member.
pub(crate) fn rank(room: &Room, s: &Standing) -> u8 {
    if room.kind == RoomKind::Dm {
        return u8::from(s.role.is_some());
    }
    if s.admin {
        return 4;
    }
    match s.role {
        Some(Role::Owner) => 3,
        Some(Role::Moderator) => 2,
        Some(Role::Member) => 1,
        None => 0,
    }
}

/// Whether `actor` may act on `target` (kick, ban, change the role): only
/// on someone of a lower rank.
pub(crate) fn outranks(room: &Room, actor: &Standing, target: &Standing) -> bool {
    rank(room, actor) > rank(room, target)
}

/// Decides whether a user in standing `s` may do `need` in `room`.
pub(crate) fn decide(room: &Room, s: &Standing, need: Need) -> Verdict {
    use Verdict::{Allowed, Forbidden, Hidden};
    if !visible(room, s) {
        return Hidden;
    }
    let member = s.role.is_some();
    let dm = room.kind == RoomKind::Dm;
    match need {
        Need::See => Allowed,
        Need::Read if member || s.admin && !dm => Allowed,
        Need::Read => Forbidden("not a member; join the room first"),
        Need::Post if !member => Forbidden("not a member; join the room first"),
        Need::Post if room.archived => Forbidden("the room is archived (read-only)"),
        Need::Post => Allowed,
        Need::Join if member => Allowed,
        Need::Join if s.banned => Forbidden("banned from the room"),
        Need::Join if room.archived => Forbidden("the room is archived (read-only)"),
        Need::Join => Allowed,
        Need::Leave if dm => Forbidden("the members of a direct message are fixed"),
        Need::Leave => Allowed,
        Need::Moderate | Need::Own if dm => Forbidden("a direct message has no moderators"),
        Need::Moderate if rank(room, s) >= 2 => Allowed,
        Need::Moderate => Forbidden("only the room's owner and moderators may do that"),
        Need::Own if rank(room, s) >= 3 => Allowed,
        Need::Own => Forbidden("only the room's owner may do that"),
    }
}

/// Whether a user in standing `s` can be mentioned in `room` (an `@name`
/// of a message there counts for them): its members, nobody else. A name
/// that is no member's is plain text, whoever it names — whether that user
/// exists, is invited, banned or an admin — so a mention tells the sender
/// nothing they could not read in `members`.
pub(crate) fn mentionable(room: &Room, s: &Standing) -> bool {
    decide(room, s, Need::Read) == Verdict::Allowed && s.role.is_some()
}

/// A room of at most this many members may be mentioned whole (`@room`)
/// by any member; a larger one by its owners and moderators only.
pub(crate) const ROOM_MENTION_MEMBERS: u64 = qchat_protocol::MAX_ROOM_MENTION_MEMBERS;

/// Whether `@room` in a message whose sender is in standing `s` mentions
/// every member of `room`, which has `members` members: anyone's in a room
/// of at most [`ROOM_MENTION_MEMBERS`]; in a larger one only its owners'
/// and moderators' (and a tenant admin's, who acts as an owner). Else
/// `@room` is plain text. Decided in the writer's transaction, like
/// [`mentionable`].
pub(crate) fn room_mention(room: &Room, s: &Standing, members: u64) -> bool {
    members <= ROOM_MENTION_MEMBERS || decide(room, s, Need::Moderate) == Verdict::Allowed
}

/// What a user does to one message of a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MessageAct {
    /// Replace its text.
    Edit,
    /// Delete it (a tombstone stays).
    Delete,
    /// Add or remove a reaction.
    React,
}

/// Decides whether a user in standing `s` may do `act` to a message of
/// `room`; `own` says whether they sent it. Everyone who may post reacts
/// and edits or deletes their own messages; moderators, owners and tenant
/// admins also delete others' (not in direct messages, which have no
/// moderators). Nothing changes in an archived room.
pub(crate) fn decide_message(room: &Room, s: &Standing, act: MessageAct, own: bool) -> Verdict {
    match act {
        MessageAct::React => decide(room, s, Need::Post),
        MessageAct::Edit if own => decide(room, s, Need::Post),
        MessageAct::Edit => match decide(room, s, Need::Read) {
            Verdict::Allowed => Verdict::Forbidden("only the sender may edit a message"),
            other => other,
        },
        MessageAct::Delete if own => decide(room, s, Need::Post),
        MessageAct::Delete => match decide(room, s, Need::Moderate) {
            Verdict::Allowed if room.archived => {
                Verdict::Forbidden("the room is archived (read-only)")
            }
            Verdict::Forbidden(_) if decide(room, s, Need::Read) == Verdict::Allowed => {
                Verdict::Forbidden("only moderators and owners delete others' messages")
            }
            other => other,
        },
    }
}

/// The answer to a room the caller may not see, or that does not exist:
/// one code, one message, whatever the reason.
pub(crate) fn not_found(reference: &str) -> Error {
    refuse(ErrorCode::NotFound, format!("no room named {reference}"))
}

/// A room resolved for the caller, with the caller's standing in it.
#[derive(Debug, Clone)]
pub(crate) struct Access {
    pub(crate) room: Room,
    pub(crate) standing: Standing,
}

/// Who is asking.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Caller<'a> {
    pub(crate) tenant: TenantId,
    pub(crate) user: UserId,
    pub(crate) name: &'a str,
}

/// What a room reference names.
enum Reference<'a> {
    Handle(&'a str),
    Name(&'a str),
    /// A DM alias: the other members' names.
    Dm(Vec<String>),
}

fn parse<'a>(reference: &'a str, caller: &str) -> Result<Reference<'a>> {
    if valid_room_id(reference) {
        return Ok(Reference::Handle(reference));
    }
    if let Some(list) = reference.strip_prefix(DM_ALIAS_PREFIX) {
        let mut names: Vec<String> = Vec::new();
        for name in list.split(',') {
            if !valid_name(name) {
                return Err(invalid_reference());
            }
            if name != caller && !names.iter().any(|n| n == name) {
                names.push(name.to_owned());
            }
        }
        if names.is_empty() || names.len() >= MAX_DM_MEMBERS {
            return Err(invalid_reference());
        }
        return Ok(Reference::Dm(names));
    }
    if valid_name(reference) {
        return Ok(Reference::Name(reference));
    }
    Err(invalid_reference())
}

fn invalid_reference() -> Error {
    refuse(
        ErrorCode::BadRequest,
        "invalid room: give a room name (1-64 letters, digits, '-', '_' or '.'), a room id \
         ('+' and 16 hex digits) or '@' and 1 to 15 user names, comma-separated",
    )
}

/// Resolves `reference` (a name, an id, a DM alias) to the one room the
/// caller means, and decides `need` there.
///
/// # Errors
/// `bad_request` for a malformed reference; `not_found` when no room of
/// that reference is visible to the caller (whatever the reason);
/// `conflict` when several visible rooms share the name; `forbidden` when
/// the caller sees the room but may not do `need`.
pub(crate) async fn resolve(
    pool: &Db,
    caller: Caller<'_>,
    reference: &str,
    need: Need,
) -> Result<Access> {
    let parsed = parse(reference, caller.name)?;
    let key;
    let lookup = match &parsed {
        Reference::Handle(h) => Lookup::Handle(h),
        Reference::Name(n) => Lookup::Name(n),
        Reference::Dm(names) => {
            let found = members::user_ids(pool, caller.tenant, names.as_slice()).await?;
            // A missing user: the same lookup still runs, with a key no DM
            // has, so the answer and its cost are those of a missing DM.
            key = if found.len() == names.len() {
                let mut ids: Vec<UserId> = found.iter().map(|(id, _)| *id).collect();
                ids.push(caller.user);
                members::dm_key(&ids)
            } else {
                String::new()
            };
            Lookup::DmKey(&key)
        }
    };
    let rows = members::standings(pool, caller.tenant, caller.user, lookup).await?;
    let mut seen: Vec<(Room, Standing)> =
        rows.into_iter().filter(|(room, s)| visible(room, s)).collect();
    if seen.len() > 1 {
        let ids: Vec<&str> = seen.iter().map(|(r, _)| r.handle.as_str()).collect();
        return Err(refuse(
            ErrorCode::Conflict,
            format!(
                "several rooms you can see are named {reference}: use an id ({})",
                ids.join(", ")
            ),
        ));
    }
    let Some((room, standing)) = seen.pop() else {
        return Err(not_found(reference));
    };
    match decide(&room, &standing, need) {
        Verdict::Allowed => Ok(Access { room, standing }),
        Verdict::Hidden => Err(not_found(reference)),
        Verdict::Forbidden(why) => Err(refuse(ErrorCode::Forbidden, format!("{reference}: {why}"))),
    }
}

/// Decides `need` for the caller in the room with this row id (a room the
/// caller reached earlier, say through an upload it began); a room gone
/// since is `Hidden`.
///
/// # Errors
/// Database faults.
pub(crate) async fn decide_in(
    pool: &Db,
    caller: Caller<'_>,
    room: RoomId,
    need: Need,
) -> Result<Verdict> {
    let rows = members::standings(pool, caller.tenant, caller.user, Lookup::Id(room)).await?;
    Ok(rows.first().map_or(Verdict::Hidden, |(r, s)| decide(r, s, need)))
}

/// One page of the rooms the caller sees, as listed by `rooms`: public
/// rooms, the rooms the caller is in or invited to, and (for an admin)
/// every private room; by `name` (the keyset), from the first after
/// `after`, as many as fit in one frame. Returns them and `more`.
///
/// # Errors
/// Database faults.
pub(crate) async fn list(
    pool: &Db,
    caller: Caller<'_>,
    after: Option<&str>,
) -> Result<(Vec<RoomInfo>, bool)> {
    let mut titles = members::dm_names(pool, caller.tenant, caller.user).await?;
    let rows = members::candidates(pool, caller.tenant, caller.user, after, true).try_filter_map(
        |(room, s, counts)| {
            let seen = decide(&room, &s, Need::See) == Verdict::Allowed;
            let title = titles.remove(&room.id).map(|n| dm_title(&n, caller.name));
            std::future::ready(Ok(seen.then(|| db::rooms::room_info(&room, &s, counts, title))))
        },
    );
    paging::fill(rows, usize::MAX).await
}

/// Every room the caller may read now ([`Need::Read`], decided as for
/// any request): the rooms a `search` looks in. From the rooms `list`
/// considers, so a room the caller cannot see is never among them.
///
/// # Errors
/// Database faults.
pub(crate) async fn readable(pool: &Db, caller: Caller<'_>) -> Result<Vec<Room>> {
    let rooms = members::candidates(pool, caller.tenant, caller.user, None, false)
        .try_filter_map(|(room, s, _)| {
            let read = decide(&room, &s, Need::Read) == Verdict::Allowed;
            std::future::ready(Ok(read.then_some(room)))
        })
        .try_collect()
        .await?;
    Ok(rooms)
}

/// A DM's title for one of its members: `@` and the others' names.
pub(crate) fn dm_title(members: &[String], viewer: &str) -> String {
    let others: Vec<&str> = members.iter().map(String::as_str).filter(|n| *n != viewer).collect();
    format!("{DM_ALIAS_PREFIX}{}", others.join(","))
}

/// The wire view of a room the caller has resolved, with a DM's title and
/// the caller's counts.
///
/// # Errors
/// Database faults.
pub(crate) async fn info(pool: &Db, caller: Caller<'_>, a: &Access) -> Result<RoomInfo> {
    let tally = db::mentions::tally(pool, caller.tenant, a.room.id, caller.user).await?;
    let counts = tally.map(|t| t.counts).unwrap_or_default();
    let title = if a.room.kind == RoomKind::Dm {
        // A read transaction: the one connection the chunked query runs on.
        let mut tx = pool.begin().await?;
        let mut names = members::member_names(&mut tx.conn(), caller.tenant, &[a.room.id]).await?;
        names.remove(&a.room.id).map(|n| dm_title(&n, caller.name))
    } else {
        None
    };
    let mut info = db::rooms::room_info(&a.room, &a.standing, counts, title);
    if let Some(t) = tally.filter(|_| info.joined) {
        // The counts are of the messages up to the `last_seq` they were
        // taken at (a client adds the later ones), not the one `a` read.
        (info.last_seq, info.read_seq) = (t.last_seq, t.read_seq);
    }
    Ok(info)
}

/// What a file id (an offer's) is to the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FileVerdict {
    /// Offered in a room the caller may read.
    Readable(db::VisibleFile),
    /// Offered in a room the caller sees but may not read (a public room
    /// the caller is not in).
    Forbidden,
    /// No such file for the caller: not in the tenant, or offered in a room
    /// the caller cannot see.
    Hidden,
}

/// Decides what the caller may do with offer `offer`: what its room allows.
///
/// # Errors
/// Database faults.
pub(crate) async fn file(pool: &Db, caller: Caller<'_>, offer: u64) -> Result<FileVerdict> {
    let found = db::files::offer(pool, caller.tenant, offer).await?;
    // A missing offer costs the room look-up too (of a room that is never
    // there), as a hidden one does.
    let room = found.as_ref().map_or(RoomId(0), |(room, _)| *room);
    let verdict = decide_in(pool, caller, room, Need::Read).await?;
    Ok(match (found, verdict) {
        (Some((_, f)), Verdict::Allowed) => FileVerdict::Readable(f),
        (Some(_), Verdict::Forbidden(_)) => FileVerdict::Forbidden,
        _ => FileVerdict::Hidden,
    })
}

/// Whether the caller may read stored content `file` (a `files` row): it
/// is offered in a room the caller reads. Only then is it offered again
/// without its bytes being sent (and a hash-later begin told to hash): the
/// content of rooms the caller cannot read is not theirs to reuse, nor to
/// learn exists.
///
/// # Errors
/// Database faults.
pub(crate) async fn content_readable(pool: &Db, caller: Caller<'_>, file: u64) -> Result<bool> {
    let mut tx = pool.begin().await?;
    let rooms = db::files::content_rooms(&mut tx, caller.tenant, file).await?;
    let triples: Vec<_> = rooms.iter().map(|r| (caller.tenant, *r, caller.user)).collect();
    let standings = members::standings_of(&mut tx.conn(), &triples).await?;
    Ok(standings.values().any(|(room, s)| decide(room, s, Need::Read) == Verdict::Allowed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(kind: RoomKind, archived: bool) -> Room {
        Room {
            id: RoomId(1),
            name: "r".into(),
            handle: "+0000000000000001".into(),
            kind,
            title: None,
            topic: String::new(),
            archived,
            last_seq: 0,
        }
    }

    fn standing(role: Option<Role>, invited: bool, banned: bool, admin: bool) -> Standing {
        Standing { role, read_seq: role.map(|_| 0), invited, banned, admin }
    }

    #[test]
    fn at_room_in_a_large_room_is_for_its_owners_and_moderators() {
        let r = room(RoomKind::Public, false);
        let as_role = |role| standing(Some(role), false, false, false);
        assert!(room_mention(&r, &as_role(Role::Member), ROOM_MENTION_MEMBERS));
        assert!(!room_mention(&r, &as_role(Role::Member), ROOM_MENTION_MEMBERS + 1));
        assert!(room_mention(&r, &as_role(Role::Moderator), ROOM_MENTION_MEMBERS + 1));
        assert!(room_mention(&r, &as_role(Role::Owner), 10_000));
        let admin = standing(Some(Role::Member), false, false, true);
        assert!(room_mention(&r, &admin, 10_000), "a tenant admin acts as an owner");
        let dm = room(RoomKind::Dm, false);
        assert!(room_mention(&dm, &as_role(Role::Member), 16), "a DM is small");
    }

    /// Every kind of room, standing and need, against the rules written out
    /// case by case.
    #[test]
    fn the_rules_case_by_case() {
        use Need::*;
        use Verdict::*;
        let needs = [See, Read, Post, Join, Leave, Moderate, Own];
        let roles = [None, Some(Role::Member), Some(Role::Moderator), Some(Role::Owner)];
        let mut checked = 0;
        for kind in [RoomKind::Public, RoomKind::Private, RoomKind::Dm] {
            for archived in [false, true] {
                let r = room(kind, archived);
                for role in roles {
                    for (invited, banned, admin) in [
                        (false, false, false),
                        (true, false, false),
                        (false, true, false),
                        (false, false, true),
                    ] {
                        let s = standing(role, invited, banned, admin);
                        let member = role.is_some();
                        let seen = match kind {
                            RoomKind::Public => true,
                            RoomKind::Private => member || invited || admin,
                            RoomKind::Dm => member,
                        };
                        for need in needs {
                            let got = decide(&r, &s, need);
                            checked += 1;
                            if !seen {
                                assert_eq!(got, Hidden, "{kind:?} {s:?} {need:?}");
                                continue;
                            }
                            assert_ne!(got, Hidden, "{kind:?} {s:?} {need:?}");
                            let dm = kind == RoomKind::Dm;
                            let rank = if dm {
                                u8::from(member)
                            } else if admin {
                                4
                            } else {
                                role.map_or(0, |r| r as u8 + 1)
                            };
                            let want = match need {
                                See => true,
                                Read => member || admin && !dm,
                                Post => member && !archived,
                                Join => member || !banned && !archived,
                                Leave => !dm,
                                Moderate => !dm && rank >= 2,
                                Own => !dm && rank >= 3,
                            };
                            assert_eq!(got == Allowed, want, "{kind:?} {s:?} {need:?}: {got:?}");
                        }
                    }
                }
            }
        }
        assert_eq!(checked, 3 * 2 * 4 * 4 * 7);
    }

    #[test]
    fn admins_act_in_public_and_private_rooms_never_in_dms() {
        let admin = standing(None, false, false, true);
        for kind in [RoomKind::Public, RoomKind::Private] {
            let r = room(kind, false);
            assert_eq!(decide(&r, &admin, Need::Own), Verdict::Allowed);
            assert_eq!(decide(&r, &admin, Need::Read), Verdict::Allowed);
            let owner = standing(Some(Role::Owner), false, false, false);
            assert!(outranks(&r, &admin, &owner), "an admin acts on an owner");
            assert!(!outranks(&r, &admin, &admin), "not on another admin");
        }
        let dm = room(RoomKind::Dm, false);
        assert_eq!(decide(&dm, &admin, Need::Read), Verdict::Hidden, "not even seen");
    }

    #[test]
    fn who_may_edit_delete_and_react() {
        use MessageAct::{Delete, Edit, React};
        let r = room(RoomKind::Public, false);
        let member = standing(Some(Role::Member), false, false, false);
        let moderator = standing(Some(Role::Moderator), false, false, false);
        let admin = standing(None, false, false, true);
        let stranger = standing(None, false, false, false);
        let ok = |s: &Standing, act, own| decide_message(&r, s, act, own) == Verdict::Allowed;
        assert!(ok(&member, Edit, true) && ok(&member, Delete, true) && ok(&member, React, false));
        assert!(!ok(&member, Edit, false), "nobody edits another's message");
        assert!(!ok(&moderator, Edit, false));
        assert!(!ok(&member, Delete, false), "a member deletes only their own");
        assert!(ok(&moderator, Delete, false) && ok(&admin, Delete, false));
        assert!(!ok(&stranger, React, false) && !ok(&stranger, Delete, true));
        let dm = room(RoomKind::Dm, false);
        let dm_member = standing(Some(Role::Member), false, false, false);
        assert!(decide_message(&dm, &dm_member, Delete, true) == Verdict::Allowed);
        assert!(matches!(decide_message(&dm, &dm_member, Delete, false), Verdict::Forbidden(_)));
        assert_eq!(decide_message(&dm, &admin, Delete, false), Verdict::Hidden);
        let archived = room(RoomKind::Public, true);
        for (s, own) in [(&member, true), (&moderator, false), (&admin, false)] {
            for act in [Edit, Delete, React] {
                if act == Edit && !own {
                    continue;
                }
                let got = decide_message(&archived, s, act, own);
                assert!(matches!(got, Verdict::Forbidden(_)), "{act:?} archived: {got:?}");
            }
        }
    }

    #[test]
    fn nobody_acts_on_an_equal() {
        let r = room(RoomKind::Public, false);
        let owner = standing(Some(Role::Owner), false, false, false);
        let moderator = standing(Some(Role::Moderator), false, false, false);
        let member = standing(Some(Role::Member), false, false, false);
        let stranger = standing(None, false, false, false);
        assert!(outranks(&r, &owner, &moderator));
        assert!(outranks(&r, &moderator, &member));
        assert!(outranks(&r, &moderator, &stranger), "a ban of a non-member");
        assert!(!outranks(&r, &moderator, &moderator));
        assert!(!outranks(&r, &member, &member));
        assert!(!outranks(&r, &owner, &owner));
    }

    #[test]
    fn references() {
        assert!(matches!(parse("general", "ann"), Ok(Reference::Name("general"))));
        assert!(matches!(parse("+0123456789abcdef", "ann"), Ok(Reference::Handle(_))));
        match parse("@bob,ann,carol,bob", "ann") {
            Ok(Reference::Dm(names)) => assert_eq!(names, ["bob", "carol"]),
            _ => panic!("an alias"),
        }
        for bad in ["@", "@ann", "@bob,", "@,bob", "+0123", "has space", "", "@bo b"] {
            assert!(parse(bad, "ann").is_err(), "{bad}");
        }
        let many: Vec<String> = (0..MAX_DM_MEMBERS).map(|i| format!("u{i}")).collect();
        assert!(parse(&format!("@{}", many.join(",")), "ann").is_err(), "17 members");
        assert!(parse(&format!("@{}", many[1..].join(",")), "ann").is_ok(), "16 members");
    }

    #[test]
    fn dm_titles_name_the_others() {
        let names = vec!["ann".to_owned(), "bob".to_owned(), "carol".to_owned()];
        assert_eq!(dm_title(&names, "bob"), "@ann,carol");
    }
}

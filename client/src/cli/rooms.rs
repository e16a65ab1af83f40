//! The room commands: `rooms`, `create`, `dm`, and the moderation and owner
//! commands (`invite`, `kick`, `ban`, `unban`, `role`, `topic`, `rename`,
//! `private`, `archive`, `delete`).

use std::collections::HashMap;

use anyhow::{Context, bail};
use qchat_client::{Client, RoomInfo, RoomKind};

use super::RoleArg;
use super::print::sanitize;

/// `rooms`: one line per room, `NAME joined|invited|- UNREAD @MENTIONS
/// KIND ROLE|- [TOPIC]`, or with `json` the protocol's room object.
pub(super) async fn list(client: &Client, json: bool) -> anyhow::Result<()> {
    let rooms = client.rooms().await.context("listing rooms")?;
    if json {
        for r in &rooms {
            println!("{}", serde_json::to_string(r)?);
        }
        return Ok(());
    }
    for line in lines(&rooms) {
        println!("{line}");
    }
    Ok(())
}

/// The lines of `rooms` for this list.
pub(super) fn lines(rooms: &[RoomInfo]) -> Vec<String> {
    let mut shown: HashMap<&str, usize> = HashMap::new();
    for r in rooms {
        *shown.entry(r.display()).or_default() += 1;
    }
    rooms
        .iter()
        .map(|r| {
            // What to type for the room: its name or a DM's alias, unless
            // another listed room shows the same (then its id).
            let name = if shown.get(r.display()).copied().unwrap_or(0) > 1 {
                r.key()
            } else {
                r.display()
            };
            let state = if r.joined {
                "joined"
            } else if r.invited {
                "invited"
            } else {
                "-"
            };
            let kind = match r.kind {
                RoomKind::Public => "public",
                RoomKind::Private => "private",
                RoomKind::Dm => "dm",
            };
            let role = r.role.map_or("-", |role| role.as_str());
            let mut line = format!("{name} {state} {} @{} {kind} {role}", r.unread, r.mentions);
            if r.archived {
                line.push_str(" [archived]");
            }
            if let Some(topic) = r.topic.as_deref() {
                line.push(' ');
                line.push_str(&sanitize(topic));
            }
            line
        })
        .collect()
}

/// `create`: a public or private room with the user as its owner.
pub(super) async fn create(client: &Client, room: &str, private: bool) -> anyhow::Result<()> {
    client.create_room_with(room, private).await.with_context(|| format!("creating {room}"))?;
    Ok(())
}

/// `dm USER... TEXT`: opens the DM and sends; prints its name and the seq.
pub(super) async fn dm(client: &Client, args: &[String]) -> anyhow::Result<()> {
    let Some((text, users)) = args.split_last() else { bail!("give users and a text") };
    let users: Vec<&str> = users.iter().map(String::as_str).collect();
    let room = client.open_dm(&users).await.context("opening the direct message")?;
    let name = room.display().to_owned();
    let ok = client.send(room.key(), text).await.with_context(|| format!("sending to {name}"))?;
    println!("{name} {}", ok.seq);
    Ok(())
}

/// Prints what a change did: the seq of its system message, or that it
/// changed nothing.
fn report(what: &str, seq: Option<u64>) {
    match seq {
        Some(seq) => println!("{what} (seq {seq})"),
        None => println!("{what}: nothing to change"),
    }
}

/// The room moderation and owner commands.
pub(super) enum Moderation {
    Invite { room: String, users: Vec<String> },
    Kick { room: String, user: String, reason: Option<String> },
    Ban { room: String, user: String, reason: Option<String> },
    Unban { room: String, user: String },
    Role { room: String, user: String, role: RoleArg },
    Topic { room: String, text: String },
    Rename { room: String, name: String },
    Private { room: String, on: bool },
    Archive { room: String, undo: bool },
    Delete { room: String, yes: bool },
}

/// Runs one moderation or owner command.
pub(super) async fn moderate(client: &Client, m: Moderation) -> anyhow::Result<()> {
    match m {
        Moderation::Invite { room, users } => {
            for user in users {
                let seq = client.invite(&room, &user).await;
                report(
                    &format!("invited {user}"),
                    seq.with_context(|| format!("inviting {user}"))?,
                );
            }
        }
        Moderation::Kick { room, user, reason } => {
            let seq = client.kick(&room, &user, reason.as_deref()).await;
            report(&format!("removed {user}"), seq.with_context(|| format!("kicking {user}"))?);
        }
        Moderation::Ban { room, user, reason } => {
            let seq = client.ban(&room, &user, reason.as_deref()).await;
            report(&format!("banned {user}"), seq.with_context(|| format!("banning {user}"))?);
        }
        Moderation::Unban { room, user } => {
            let seq = client.unban(&room, &user).await;
            report(&format!("unbanned {user}"), seq.with_context(|| format!("unbanning {user}"))?);
        }
        Moderation::Role { room, user, role } => {
            let role = qchat_client::Role::from(role);
            let seq = client.set_role(&room, &user, role).await;
            let what = format!("{user} is {}", role.as_str());
            report(&what, seq.with_context(|| format!("setting {user}'s role"))?);
        }
        Moderation::Topic { room, text } => {
            let seq = client.set_topic(&room, &text).await.context("setting the topic")?;
            report("topic set", seq);
        }
        Moderation::Rename { room, name } => {
            let seq = client.rename_room(&room, &name).await.context("renaming")?;
            report(&format!("renamed to {name}"), seq);
        }
        Moderation::Private { room, on } => {
            let seq = client.set_private(&room, on).await.context("changing the room")?;
            report(if on { "private" } else { "public" }, seq);
        }
        Moderation::Archive { room, undo } => {
            let seq = client.archive_room(&room, !undo).await.context("archiving")?;
            report(if undo { "writable again" } else { "archived" }, seq);
        }
        Moderation::Delete { room, yes } => {
            if !yes {
                bail!("deleting {room} erases its messages and files: pass --yes");
            }
            client.delete_room(&room).await.with_context(|| format!("deleting {room}"))?;
            println!("deleted {room}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use qchat_client::Role;

    fn room(name: &str, kind: RoomKind, title: &str, id: &str) -> RoomInfo {
        RoomInfo {
            name: name.into(),
            joined: true,
            last_seq: 3,
            read_seq: 1,
            unread: 2,
            mentions: 0,
            id: Some(id.into()),
            kind,
            title: Some(title.into()),
            role: Some(Role::Owner),
            invited: false,
            topic: None,
            archived: false,
        }
    }

    #[test]
    fn lines_name_rooms_so_they_can_be_typed() {
        let mut rooms = vec![
            room("+0000000000000001", RoomKind::Private, "plans", "+0000000000000001"),
            room("+0000000000000002", RoomKind::Dm, "@bob", "+0000000000000002"),
            room("general", RoomKind::Public, "general", "+0000000000000003"),
            room("+0000000000000004", RoomKind::Private, "general", "+0000000000000004"),
        ];
        rooms[0].topic = Some("launch \u{1b}[31m".into());
        rooms[1].role = Some(Role::Member);
        rooms[1].mentions = 1;
        rooms[2].joined = false;
        rooms[2].role = None;
        assert_eq!(
            lines(&rooms),
            [
                "plans joined 2 @0 private owner launch \\u{1b}[31m",
                "@bob joined 2 @1 dm member",
                "+0000000000000003 - 2 @0 public -",
                "+0000000000000004 joined 2 @0 private owner",
            ]
        );
    }
}

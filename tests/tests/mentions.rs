//! Unread counts and mentions end to end (issue 18, PROTOCOL.md section
//! 12), against a real qchatd on 127.0.0.1 with three users, on SQLite and
//! (in the `.ci/run` matrix) PostgreSQL:
//!
//! * `unread` counts only the text and file messages of others after the
//!   read marker: joins, edits, reactions and deletions do not raise it, a
//!   deleted unread message stops counting, one's own messages never count;
//! * `@name` of a member and `@room` are counted per user, also while the
//!   user is offline (shown by `rooms` after they log in again); a name
//!   that is no member's counts for nobody and is not listed;
//! * the `message` event carries `mentions` (names, or `@room`), so a
//!   client keeps its counts live;
//! * moving the read marker on one connection clears the counts, and the
//!   `read` event to the user's other connection carries them;
//! * an edit that adds a name mentions nobody new;
//! * in a room of more than 50 members only an owner's or a moderator's
//!   `@room` mentions everyone; a member's is plain text, and the `send`
//!   reply says so;
//! * counts followed from the events alone (`message` and `read` events,
//!   the latter carrying the `last_seq` its counts were taken at) end on
//!   the server's figures while reads on one device race sends.

use anyhow::Context as _;
use qchat_protocol::{Message, ReadEvent, RoomInfo};
use qchat_tests::{RawConn, TestServer, within};
use serde_json::{Value, json};

const PW: &str = "correct horse";

async fn server() -> anyhow::Result<TestServer> {
    let s = TestServer::start().await?;
    s.tenant("acme", false).await?;
    for u in ["ann", "bob", "carol", "dave"] {
        s.user("acme", u, PW).await?;
    }
    Ok(s)
}

async fn login(s: &TestServer, user: &str) -> anyhow::Result<RawConn> {
    let mut c = RawConn::connect(s.addr, &s.data_dir()).await?;
    c.login("acme", user, PW).await?;
    Ok(c)
}

async fn send(c: &mut RawConn, room: &str, key: &str, body: &str) -> anyhow::Result<u64> {
    let fields = json!({"room": room, "client_msg_id": key, "body": body});
    c.ok("send", fields).await?["seq"].as_u64().context("seq")
}

/// The caller's `(unread, mentions)` in `room`, from `rooms`.
async fn counts(c: &mut RawConn, room: &str) -> anyhow::Result<(u64, u64)> {
    let rooms = c.ok("rooms", json!({})).await?;
    let r = rooms["rooms"]
        .as_array()
        .and_then(|all| all.iter().find(|r| r["name"] == room || r["title"] == room))
        .with_context(|| format!("{room} in {rooms}"))?;
    Ok((r["unread"].as_u64().context("unread")?, r["mentions"].as_u64().context("mentions")?))
}

/// The `message` event with seq `seq` on `c`.
async fn message_event(c: &mut RawConn, seq: u64) -> anyhow::Result<Value> {
    within("message event", async {
        loop {
            let ev = c.event().await?;
            if ev["ev"] == "message" && ev["seq"] == seq {
                return Ok(ev);
            }
        }
    })
    .await
}

#[tokio::test]
async fn unread_counts_only_others_messages_and_mentions_wait_for_the_offline() -> anyhow::Result<()>
{
    let s = server().await?;
    let mut ann = login(&s, "ann").await?;
    ann.ok("room.create", json!({"room": "general"})).await?;
    let mut bob = login(&s, "bob").await?;
    let mut carol = login(&s, "carol").await?;
    bob.ok("room.join", json!({"room": "general"})).await?;
    carol.ok("room.join", json!({"room": "general"})).await?;
    // Bob reads everything so far; joins did not count anyway.
    assert_eq!(counts(&mut bob, "general").await?, (0, 0), "joins are not unread");
    let first = send(&mut ann, "general", "a1", "the plan").await?;
    assert_eq!(counts(&mut bob, "general").await?, (1, 0));
    assert_eq!(counts(&mut ann, "general").await?, (0, 0), "one's own message is not unread");

    // Edits and reactions take seqs but are not messages to read.
    ann.ok("message.edit", json!({"room": "general", "seq": first, "body": "the plan v2"})).await?;
    carol.ok("message.react", json!({"room": "general", "seq": first, "emoji": "👍"})).await?;
    carol
        .ok(
            "message.react",
            json!({"room": "general", "seq": first, "emoji": "👍",
        "remove": true}),
        )
        .await?;
    assert_eq!(counts(&mut bob, "general").await?, (1, 0), "edits and reactions are not unread");
    let oops = send(&mut carol, "general", "c1", "oops").await?;
    assert_eq!(counts(&mut bob, "general").await?, (2, 0));
    carol.ok("message.delete", json!({"room": "general", "seq": oops})).await?;
    assert_eq!(counts(&mut bob, "general").await?, (1, 0), "a deleted unread message goes");

    // Bob goes offline; he is mentioned by name and with @room meanwhile,
    // dave (no member) and a name nobody has are mentioned too.
    bob.ok("quit", json!({})).await?;
    drop(bob);
    let named = send(&mut ann, "general", "a2", "@bob, have a look (cc @dave @nobody)").await?;
    let ev = message_event(&mut carol, named).await?;
    assert_eq!(ev["mentions"], json!(["bob"]), "only members are listed: {ev}");
    let everyone = send(&mut carol, "general", "c2", "@room lunch! @ann too").await?;
    let ev = message_event(&mut ann, everyone).await?;
    assert_eq!(ev["mentions"], json!(["@room"]), "{ev}");
    send(&mut ann, "general", "a3", "ann@example.com is my mail, @Bob is not bob").await?;
    // An edit that adds a name mentions nobody new.
    let quiet = send(&mut ann, "general", "a4", "no one here").await?;
    ann.ok("message.edit", json!({"room": "general", "seq": quiet, "body": "@bob now?"})).await?;
    assert_eq!(counts(&mut carol, "general").await?, (4, 0), "carol's own @room is not hers");
    assert_eq!(counts(&mut ann, "general").await?, (1, 1), "ann: carol's @room");

    // Bob comes back on two devices: the rooms listing has it all.
    let mut bob = login(&s, "bob").await?;
    let mut bob2 = login(&s, "bob").await?;
    assert_eq!(counts(&mut bob, "general").await?, (5, 2), "named and @room, while offline");
    let h = bob.ok("history", json!({"room": "general"})).await?;
    let listed = |seq: u64| {
        h["messages"].as_array().and_then(|m| m.iter().find(|m| m["seq"] == seq)).cloned()
    };
    assert_eq!(listed(named).context("named")?["mentions"], json!(["bob"]), "{h}");
    assert_eq!(listed(everyone).context("@room")?["mentions"], json!(["@room"]), "{h}");
    assert!(listed(quiet).context("quiet")?.get("mentions").is_none(), "the edit added none");

    // Reading up to @room on one device: the other hears the new counts.
    bob.ok("read", json!({"room": "general", "seq": everyone})).await?;
    let ev = within("read event", async {
        loop {
            let ev = bob2.event().await?;
            if ev["ev"] == "read" {
                return Ok::<_, anyhow::Error>(ev);
            }
        }
    })
    .await?;
    assert_eq!(
        (&ev["seq"], &ev["unread"], &ev["mentions"]),
        (&json!(everyone), &json!(2), &json!(0))
    );
    assert_eq!(counts(&mut bob2, "general").await?, (2, 0));
    let last = bob.ok("rooms", json!({})).await?["rooms"][0]["last_seq"].clone();
    bob.ok("read", json!({"room": "general", "seq": last})).await?;
    assert_eq!(counts(&mut bob2, "general").await?, (0, 0), "read to the end: nothing left");

    // Dave joins later: what was said before is read for him (his marker
    // starts at the room's end), the @room from before included.
    let mut dave = login(&s, "dave").await?;
    let joined = dave.ok("room.join", json!({"room": "general"})).await?;
    let room = &joined["room"];
    assert_eq!((&room["unread"], &room["mentions"]), (&json!(0), &json!(0)), "{joined}");
    assert_eq!(room["read_seq"], room["last_seq"], "{joined}");
    send(&mut carol, "general", "c3", "welcome @dave").await?;
    assert_eq!(counts(&mut dave, "general").await?, (1, 1));
    // Leaving and joining again: what was said meanwhile is not unread
    // either, mentions of everyone included.
    dave.ok("room.leave", json!({"room": "general"})).await?;
    send(&mut carol, "general", "c4", "@room dave left").await?;
    send(&mut carol, "general", "c5", "did he?").await?;
    let again = dave.ok("room.join", json!({"room": "general"})).await?;
    let room = &again["room"];
    assert_eq!((&room["unread"], &room["mentions"]), (&json!(0), &json!(0)), "{again}");
    assert_eq!(counts(&mut dave, "general").await?, (0, 0), "rejoined: nothing unread");
    send(&mut carol, "general", "c6", "welcome back @dave").await?;
    assert_eq!(counts(&mut dave, "general").await?, (1, 1));
    Ok(())
}

#[tokio::test]
async fn a_mention_in_a_room_one_cannot_read_counts_for_nothing() -> anyhow::Result<()> {
    let s = server().await?;
    let mut ann = login(&s, "ann").await?;
    let mut bob = login(&s, "bob").await?;
    ann.ok("room.create", json!({"room": "plans", "private": true})).await?;
    ann.ok("room.invite", json!({"room": "plans", "user": "bob"})).await?;
    // Bob is invited, not a member: a mention of him is plain text.
    send(&mut ann, "plans", "p1", "@bob @carol secret").await?;
    let rooms = bob.ok("rooms", json!({})).await?;
    let plans = &rooms["rooms"][0];
    assert_eq!((&plans["unread"], &plans["mentions"]), (&json!(0), &json!(0)), "{rooms}");
    bob.ok("room.join", json!({"room": "plans"})).await?;
    assert_eq!(counts(&mut bob, "plans").await?, (0, 0), "said before he joined");
    let h = bob.ok("history", json!({"room": "plans"})).await?;
    assert!(!h.to_string().contains("\"mentions\""), "nobody was mentioned: {h}");
    // Kicked, he hears nothing more and his counts are gone.
    send(&mut ann, "plans", "p2", "@bob still?").await?;
    assert_eq!(counts(&mut bob, "plans").await?, (1, 1));
    ann.ok("room.kick", json!({"room": "plans", "user": "bob"})).await?;
    send(&mut ann, "plans", "p3", "@bob gone").await?;
    let rooms = bob.ok("rooms", json!({})).await?;
    assert!(!rooms.to_string().contains("plans"), "{rooms}");
    // A DM: @room there mentions the other member.
    let dm = ann.ok("dm.open", json!({"users": ["bob"]})).await?;
    let dm = dm["room"]["name"].as_str().context("dm name")?.to_owned();
    send(&mut ann, &dm, "d1", "@room hi").await?;
    let rooms = bob.ok("rooms", json!({})).await?;
    let listed = rooms["rooms"].as_array().context("rooms")?;
    let d = listed.iter().find(|r| r["name"] == dm.as_str()).context("dm listed")?;
    assert_eq!((&d["unread"], &d["mentions"]), (&json!(1), &json!(1)), "{rooms}");
    Ok(())
}

/// Follows `room` on `c` as a client would (PROTOCOL.md section 12) until
/// it has had message `last` and the `read` event that moved the marker
/// to `marker`.
async fn follow_until(
    c: &mut RawConn,
    room: &mut RoomInfo,
    heard: &mut Vec<Message>,
    last: u64,
    marker: u64,
) -> anyhow::Result<()> {
    within("message and read events", async {
        let mut read_seen = room.read_seq >= marker;
        while room.last_seq < last || heard.last().is_none_or(|m| m.seq < last) || !read_seen {
            let ev = c.event().await?;
            match ev["ev"].as_str() {
                Some("message") => {
                    let m: Message = serde_json::from_value(ev)?;
                    room.follow(&m, "bob");
                    heard.push(m);
                }
                Some("read") => {
                    let r: ReadEvent = serde_json::from_value(ev)?;
                    read_seen |= r.seq == marker;
                    room.follow_read(&r, heard.iter(), "bob");
                }
                _ => {}
            }
        }
        Ok(())
    })
    .await
}

#[tokio::test]
async fn counts_followed_from_events_match_the_servers_while_reads_race_sends() -> anyhow::Result<()>
{
    let s = server().await?;
    let mut ann = login(&s, "ann").await?;
    ann.ok("room.create", json!({"room": "general"})).await?;
    let mut bob = login(&s, "bob").await?;
    bob.ok("room.join", json!({"room": "general"})).await?;
    let mut bob2 = login(&s, "bob").await?;
    let listed = bob2.ok("rooms", json!({})).await?;
    let mut room: RoomInfo = serde_json::from_value(listed["rooms"][0].clone())?;
    let mut heard: Vec<Message> = Vec::new();
    // Rounds of sends (a third mention bob) pipelined against reads on
    // bob's first device: the `read` events' counts are taken while
    // messages commit, and reach bob2 before or after those messages'
    // events. Counting from the events must land on the server's figures.
    const ROUNDS: u64 = 8;
    const BATCH: u64 = 30;
    for round in 0..ROUNDS {
        let base = room.last_seq;
        let sends = async {
            for i in 0..BATCH {
                let body = if i % 3 == 0 { "@bob look" } else { "plain" };
                let req = json!({"id": 1000 + i, "op": "send", "room": "general",
                    "client_msg_id": format!("r{round}m{i}"), "body": body});
                ann.write_frame(&serde_json::to_vec(&req)?).await?;
            }
            for i in 0..BATCH {
                let r = ann.reply(Some(1000 + i)).await?;
                anyhow::ensure!(r.get("ok").is_some(), "send: {r}");
            }
            Ok::<_, anyhow::Error>(())
        };
        let reads = async {
            // Up to the middle of the batch, in steps: the last reads
            // are clamped to whatever is committed then.
            for k in 1..=BATCH / 2 {
                let req = json!({"id": 2000 + k, "op": "read", "room": "general",
                    "seq": base + 2 * k});
                bob.write_frame(&serde_json::to_vec(&req)?).await?;
            }
            for k in 1..=BATCH / 2 {
                let r = bob.reply(Some(2000 + k)).await?;
                anyhow::ensure!(r.get("ok").is_some(), "read: {r}");
            }
            Ok::<_, anyhow::Error>(())
        };
        tokio::try_join!(sends, reads)?;
        let now = bob.ok("rooms", json!({})).await?;
        let (last, marker) = (&now["rooms"][0]["last_seq"], &now["rooms"][0]["read_seq"]);
        let (last, marker) = (last.as_u64().context("last")?, marker.as_u64().context("read")?);
        follow_until(&mut bob2, &mut room, &mut heard, last, marker).await?;
        let exact = counts(&mut bob2, "general").await?;
        assert_eq!((room.unread, room.mentions), exact, "round {round}: marker {marker}");
    }
    Ok(())
}

#[tokio::test]
async fn at_room_past_fifty_members_is_for_owners_and_moderators() -> anyhow::Result<()> {
    let s = server().await?;
    let mut ann = login(&s, "ann").await?;
    ann.ok("room.create", json!({"room": "big"})).await?;
    let mut bob = login(&s, "bob").await?;
    let mut carol = login(&s, "carol").await?;
    bob.ok("room.join", json!({"room": "big"})).await?;
    carol.ok("room.join", json!({"room": "big"})).await?;
    let say = async |c: &mut RawConn, key: &str, body: &str| -> anyhow::Result<Value> {
        let fields = json!({"room": "big", "client_msg_id": key, "body": body});
        c.ok("send", fields).await
    };
    // Three members: anyone's @room mentions everyone.
    let small = say(&mut bob, "b1", "@room hi").await?;
    assert_eq!(small["room_mention"], json!(true), "{small}");
    let plain = say(&mut bob, "b2", "@carol hi").await?;
    assert!(plain.get("room_mention").is_none(), "no @room: no field: {plain}");
    assert_eq!(counts(&mut ann, "big").await?, (2, 1));
    assert_eq!(counts(&mut carol, "big").await?, (2, 2));

    // 51 members.
    for i in 0..48 {
        let name = format!("filler{i:02}");
        s.user("acme", &name, PW).await?;
        let mut c = login(&s, &name).await?;
        c.ok("room.join", json!({"room": "big"})).await?;
        c.ok("quit", json!({})).await?;
    }
    ann.ok("read", json!({"room": "big", "seq": u64::MAX})).await?;
    carol.ok("read", json!({"room": "big", "seq": u64::MAX})).await?;
    // A member's @room is plain text; the names beside it still count.
    let big = say(&mut bob, "b3", "@room @carol look").await?;
    assert_eq!(big["room_mention"], json!(false), "{big}");
    let ev = message_event(&mut carol, big["seq"].as_u64().context("seq")?).await?;
    assert_eq!(ev["mentions"], json!(["carol"]), "{ev}");
    assert_eq!(counts(&mut ann, "big").await?, (1, 0), "not mentioned");
    assert_eq!(counts(&mut carol, "big").await?, (1, 1), "by name");
    let h = carol.ok("history", json!({"room": "big", "limit": 1})).await?;
    assert_eq!(h["messages"][0]["mentions"], json!(["carol"]), "{h}");
    // The owner's and a moderator's mention everyone.
    let owner = say(&mut ann, "a1", "@room all hands").await?;
    assert_eq!(owner["room_mention"], json!(true), "{owner}");
    ann.ok("room.role", json!({"room": "big", "user": "carol", "role": "moderator"})).await?;
    let moderator = say(&mut carol, "c1", "@room me too").await?;
    assert_eq!(moderator["room_mention"], json!(true), "{moderator}");
    assert_eq!(counts(&mut bob, "big").await?.1, 2, "the owner's and the moderator's");
    // A retry says nothing of it.
    let again = say(&mut bob, "b3", "@room @carol look").await?;
    assert_eq!((&again["duplicate"], again.get("room_mention")), (&json!(true), None));
    Ok(())
}

//! Direct messages, private rooms, roles and moderation end to end (issue
//! 17), against a real qchatd on 127.0.0.1:
//!
//! * a third user's every operation on a DM, a private room they are not
//!   invited to, and a private room they are banned from — by every name
//!   and id the protocol accepts — answers exactly as for a room never
//!   created, and no event, history row, file or member list of it reaches
//!   them;
//! * a ban while the banned user is mid-upload and mid-send: the upload
//!   stops with stream code 10 `forbidden`, the sends after the ban fail
//!   with `forbidden`, nothing they sent after it is stored;
//! * membership and role changes survive a restart and are replayed by
//!   `sync` exactly once after a reconnect;
//! * deleting a room removes its messages from the database file and the
//!   files no other room offers from disk.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use qchat_client::{
    Auth, Client, ClientConfig, ClientEvent, ConnState, Events, Message, MessageKind, Trust,
};
use qchat_tests::{RawConn, TestServer, within};
use serde_json::{Value, json};

const PW: &str = "correct horse";

/// A server with tenant `acme` (users ann, bob, carol, dave; eve its admin)
/// and tenant `globex` (user hank).
async fn server() -> anyhow::Result<TestServer> {
    let s = TestServer::start().await?;
    s.tenant("acme", false).await?;
    for u in ["ann", "bob", "carol", "dave"] {
        s.user("acme", u, PW).await?;
    }
    s.admin(
        &["user", "create", "--tenant", "acme", "eve", "--admin", "--password-stdin"],
        Some(&format!("{PW}\n")),
    )
    .await?;
    s.tenant("globex", false).await?;
    s.user("globex", "hank", PW).await?;
    Ok(s)
}

async fn login(s: &TestServer, tenant: &str, user: &str) -> anyhow::Result<RawConn> {
    let mut c = RawConn::connect(s.addr, &s.data_dir()).await?;
    c.login(tenant, user, PW).await?;
    Ok(c)
}

/// Every room-naming operation, with the room named `r`.
fn probes(r: &str) -> Vec<(&'static str, Value)> {
    let abc = blake3::hash(b"abc").to_hex().to_string();
    vec![
        ("room.join", json!({"room": r})),
        ("room.leave", json!({"room": r})),
        ("members", json!({"room": r})),
        ("send", json!({"room": r, "client_msg_id": "probe", "body": "hi"})),
        ("history", json!({"room": r})),
        ("sync", json!({"room": r, "after_seq": 0})),
        ("read", json!({"room": r, "seq": 1})),
        ("upload.begin", json!({"room": r, "name": "a.txt", "size": 3, "hash": abc})),
        ("upload.begin", json!({"room": r, "name": "a.txt", "size": 3, "head": abc})),
        ("room.invite", json!({"room": r, "user": "dave"})),
        ("room.kick", json!({"room": r, "user": "ann", "reason": "x"})),
        ("room.ban", json!({"room": r, "user": "ann"})),
        ("room.unban", json!({"room": r, "user": "ann"})),
        ("room.role", json!({"room": r, "user": "ann", "role": "moderator"})),
        ("room.topic", json!({"room": r, "topic": "t"})),
        ("room.rename", json!({"room": r, "name": "renamed"})),
        ("room.private", json!({"room": r, "private": false})),
        ("room.archive", json!({"room": r, "archived": true})),
        ("room.delete", json!({"room": r})),
        ("message.edit", json!({"room": r, "seq": 1, "body": "x"})),
        ("message.delete", json!({"room": r, "seq": 1})),
        ("message.react", json!({"room": r, "seq": 1, "emoji": "x"})),
        ("thread", json!({"room": r, "seq": 1})),
        ("send", json!({"room": r, "client_msg_id": "probe2", "body": "hi", "reply_to": 1})),
    ]
}

/// The reply's error with `reference` taken out (the message echoes it).
fn normalized(reply: &Value, reference: &str) -> String {
    reply["err"].to_string().replace(reference, "<room>")
}

/// Runs every probe naming `hidden` and the same naming `missing` (a room
/// never created) on `c`: the answers must be the same, `not_found`, word
/// for word but the name; returns the median time of each kind.
async fn indistinguishable(
    c: &mut RawConn,
    hidden: &str,
    missing: &str,
) -> anyhow::Result<(Duration, Duration)> {
    let mut times = (Vec::new(), Vec::new());
    for round in 0..3 {
        for ((op, h), (_, m)) in probes(hidden).into_iter().zip(probes(missing)) {
            let t = Instant::now();
            let got = c.call(op, h).await?;
            let took = t.elapsed();
            let t = Instant::now();
            let want = c.call(op, m).await?;
            let base = t.elapsed();
            if round > 0 {
                times.0.push(took);
                times.1.push(base);
            }
            ensure!(want["err"]["code"] == "not_found", "{op} on a missing room: {want}");
            ensure!(
                normalized(&got, hidden) == normalized(&want, missing),
                "{op} on {hidden}: {got}\nand on {missing} (never created): {want}"
            );
        }
    }
    times.0.sort();
    times.1.sort();
    Ok((times.0[times.0.len() / 2], times.1[times.1.len() / 2]))
}

/// Whether any frame `c` kept or still receives (up to a `ping`) holds any
/// of `needles`.
async fn heard_of(c: &mut RawConn, needles: &[&str]) -> anyhow::Result<Option<String>> {
    c.ok("ping", json!({})).await?;
    Ok(std::mem::take(&mut c.events)
        .into_iter()
        .map(|e| e.to_string())
        .find(|e| needles.iter().any(|n| e.contains(n))))
}

/// Uploads `bytes` to `room` on `c` and returns the file id.
async fn upload(c: &mut RawConn, room: &str, name: &str, bytes: &[u8]) -> anyhow::Result<u64> {
    let hash = blake3::hash(bytes).to_hex().to_string();
    let ok = c
        .ok("upload.begin", json!({"room": room, "name": name, "size": bytes.len(), "hash": hash}))
        .await?;
    if ok["complete"] == true {
        return ok["file"]["id"].as_u64().context("file id");
    }
    let id = ok["upload_id"].as_str().context("upload id")?.to_owned();
    let mut st = c.conn.open_uni().await?;
    st.write_all(&RawConn::frame(format!(r#"{{"upload_id":"{id}","offset":0}}"#).as_bytes()))
        .await?;
    st.write_all(bytes).await?;
    st.finish()?;
    let done = within("upload done", upload_outcome(c, &id)).await?;
    ensure!(done["ev"] == "upload.done", "{done}");
    done["file"]["id"].as_u64().context("file id")
}

/// The `upload.done` or `upload.failed` of `id` (kept aside already, or
/// still to come); other frames are kept.
async fn upload_outcome(c: &mut RawConn, id: &str) -> anyhow::Result<Value> {
    if let Some(i) = c.events.iter().position(|v| v["upload_id"] == id) {
        return Ok(c.events.remove(i));
    }
    loop {
        let v = c.read().await?;
        if v["upload_id"] == id && v.get("ev").is_some() {
            return Ok(v);
        }
        if v.get("ev").is_some() {
            c.events.push(v);
        }
    }
}

#[tokio::test]
async fn a_room_one_may_not_read_does_not_exist_for_them() -> anyhow::Result<()> {
    let s = server().await?;
    let mut ann = login(&s, "acme", "ann").await?;
    let mut bob = login(&s, "acme", "bob").await?;
    let mut carol = login(&s, "acme", "carol").await?;
    let mut hank = login(&s, "globex", "hank").await?;

    // A DM of ann and bob, with a message and a file.
    let dm = ann.ok("dm.open", json!({"users": ["bob"]})).await?["room"].clone();
    let dm_id = dm["id"].as_str().context("dm id")?.to_owned();
    assert_eq!((dm["kind"].as_str(), dm["title"].as_str()), (Some("dm"), Some("@bob")));
    let again = bob.ok("dm.open", json!({"users": ["ann"]})).await?["room"].clone();
    assert_eq!(again["id"], dm["id"], "the same people, the same conversation");
    assert_eq!(again["title"], "@ann");
    ann.ok("send", json!({"room": dm_id, "client_msg_id": "d1", "body": "dm-secret-words"}))
        .await?;
    let dm_file = upload(&mut ann, &dm_id, "dm.txt", b"dm-secret-file").await?;
    bob.ok("send", json!({"room": "@ann", "client_msg_id": "d2", "body": "dm-secret-reply"}))
        .await?;

    // A private room of ann's with bob invited and joined, and a file.
    let plans =
        ann.ok("room.create", json!({"room": "plans", "private": true})).await?["room"].clone();
    let plans_id = plans["id"].as_str().context("plans id")?.to_owned();
    assert_eq!((plans["kind"].as_str(), plans["role"].as_str()), (Some("private"), Some("owner")));
    ann.ok("room.invite", json!({"room": "plans", "user": "bob"})).await?;
    bob.ok("room.join", json!({"room": "plans"})).await?;
    ann.ok("send", json!({"room": "plans", "client_msg_id": "p1", "body": "plans-secret-words"}))
        .await?;
    let plans_file = upload(&mut ann, "plans", "plans.txt", b"plans-secret-file").await?;

    // Carol, of the same tenant, and hank, of another: for every operation
    // by every name and id, both rooms are rooms that were never created.
    let mut timings = Vec::new();
    for (who, c) in [("carol", &mut carol), ("hank", &mut hank)] {
        timings.push((who, "dm by id", indistinguishable(c, &dm_id, "+00000000000000ff").await?));
        timings.push((
            who,
            "plans by id",
            indistinguishable(c, &plans_id, "+00000000000000fe").await?,
        ));
        timings.push((who, "plans by name", indistinguishable(c, "plans", "noplans").await?));
    }
    // From carol, "@ann,bob" is the DM of ann, bob and carol: never opened.
    timings.push((
        "carol",
        "dm by alias",
        indistinguishable(&mut carol, "@ann,bob", "@ann,dave").await?,
    ));
    for (who, what, (hidden, missing)) in &timings {
        println!(
            "{who} {what}: median {hidden:?} for the hidden room, {missing:?} for a missing one"
        );
    }
    // Files: as for an id never used.
    for c in [&mut carol, &mut hank] {
        for file in [dm_file, plans_file] {
            let got = c.call("file.get", json!({"file_id": file})).await?;
            let want = c.call("file.get", json!({"file_id": 1_000_000})).await?;
            ensure!(
                got["err"] == want["err"] && want["err"]["code"] == "not_found",
                "{got} {want}"
            );
        }
    }
    // Content only those rooms offer is not handed over by its hash.
    let hash = blake3::hash(b"dm-secret-file").to_hex().to_string();
    carol.ok("room.create", json!({"room": "carols"})).await?;
    let begun = carol
        .ok("upload.begin", json!({"room": "carols", "name": "x", "size": 14, "hash": hash}))
        .await?;
    assert_eq!(begun["complete"], false, "stored content carol cannot read is not reused: {begun}");
    // Carol's lists and the rooms she may name know nothing of either.
    let rooms = carol.ok("rooms", json!({})).await?;
    let listed = rooms.to_string();
    assert!(!listed.contains(&dm_id) && !listed.contains(&plans_id) && !listed.contains("plans"));
    // A name is not taken by a room one cannot see: carol may create "plans".
    let mine = carol.ok("room.create", json!({"room": "plans"})).await?;
    assert_eq!(mine["room"]["kind"], "public");
    assert_ne!(mine["room"]["id"].as_str(), Some(plans_id.as_str()));
    // ... and ann, who sees both, must tell them apart by id.
    let r = ann.call("send", json!({"room": "plans", "client_msg_id": "x", "body": "?"})).await?;
    assert_eq!(r["err"]["code"], "conflict", "{r}");
    assert!(r["err"]["message"].as_str().is_some_and(|m| m.contains(&plans_id)), "{r}");

    // The tenant's admin sees the private room (and may read it), never the DM.
    let mut eve = login(&s, "acme", "eve").await?;
    let eves = eve.ok("rooms", json!({})).await?.to_string();
    assert!(eves.contains(&plans_id) && !eves.contains(&dm_id), "{eves}");
    let h = eve.ok("history", json!({"room": plans_id})).await?;
    assert!(h.to_string().contains("plans-secret-words"));
    indistinguishable(&mut eve, &dm_id, "+00000000000000fd").await?;

    // Nothing of either reached carol or hank, live or otherwise.
    let secrets = [dm_id.as_str(), plans_id.as_str(), "secret"];
    for c in [&mut carol, &mut hank] {
        if let Some(leak) = heard_of(c, &secrets).await? {
            anyhow::bail!("an event leaked: {leak}");
        }
    }
    // And the members see each other's messages, with the right names.
    let h = bob.ok("history", json!({"room": "@ann"})).await?;
    let bodies: Vec<&str> =
        h["messages"].as_array().into_iter().flatten().filter_map(|m| m["body"].as_str()).collect();
    assert_eq!(bodies, ["dm-secret-words", "dm.txt", "dm-secret-reply"]);
    Ok(())
}

#[tokio::test]
async fn a_banned_user_loses_the_room_at_once() -> anyhow::Result<()> {
    let s = server().await?;
    let mut ann = login(&s, "acme", "ann").await?;
    let mut bob = login(&s, "acme", "bob").await?;
    let plans = ann.ok("room.create", json!({"room": "plans", "private": true})).await?;
    let plans_id = plans["room"]["id"].as_str().context("id")?.to_owned();
    ann.ok("room.invite", json!({"room": "plans", "user": "bob"})).await?;
    bob.ok("room.join", json!({"room": "plans"})).await?;
    ann.ok("room.create", json!({"room": "lobby"})).await?;
    bob.ok("room.join", json!({"room": "lobby"})).await?;
    bob.events.clear();

    let ban = ann.ok("room.ban", json!({"room": "plans", "user": "bob", "reason": "spam"})).await?;
    let ban_seq = ban["seq"].as_u64().context("seq")?;
    ann.ok("send", json!({"room": "plans", "client_msg_id": "after", "body": "after-ban-secret"}))
        .await?;
    // Bob hears of his ban, then nothing of the room.
    bob.ok("ping", json!({})).await?;
    let heard: Vec<String> = bob.events.drain(..).map(|e| e.to_string()).collect();
    assert!(
        heard.iter().any(|e| e.contains("\"banned\"") && e.contains("room.removed")),
        "{heard:?}"
    );
    assert!(heard.iter().any(|e| e.contains("ann banned bob: spam")), "{heard:?}");
    assert!(!heard.iter().any(|e| e.contains("after-ban-secret")), "{heard:?}");
    // The private room is now, for bob, a room that never existed.
    indistinguishable(&mut bob, &plans_id, "+00000000000000fc").await?;
    indistinguishable(&mut bob, "plans", "noplans").await?;
    // Invitations are refused; an unban lets an invitation through again.
    let r = ann.call("room.invite", json!({"room": "plans", "user": "bob"})).await?;
    assert_eq!(r["err"]["code"], "forbidden", "{r}");
    ann.ok("room.unban", json!({"room": "plans", "user": "bob"})).await?;
    ann.ok("room.invite", json!({"room": "plans", "user": "bob"})).await?;
    let joined = bob.ok("room.join", json!({"room": plans_id})).await?;
    assert!(joined["room"]["last_seq"].as_u64() > Some(ban_seq));

    // In a public room a ban keeps the room visible but closed.
    ann.ok("room.ban", json!({"room": "lobby", "user": "bob"})).await?;
    for (op, fields) in [
        ("room.join", json!({"room": "lobby"})),
        ("send", json!({"room": "lobby", "client_msg_id": "l1", "body": "x"})),
        ("history", json!({"room": "lobby"})),
    ] {
        let r = bob.call(op, fields).await?;
        assert_eq!(r["err"]["code"], "forbidden", "{op}: {r}");
    }
    let rooms = bob.ok("rooms", json!({})).await?;
    let lobby = rooms["rooms"].as_array().into_iter().flatten().find(|r| r["name"] == "lobby");
    assert_eq!(lobby.map(|r| r["joined"].clone()), Some(json!(false)));
    // A kicked member may come back to a public room.
    ann.ok("room.unban", json!({"room": "lobby", "user": "bob"})).await?;
    bob.ok("room.join", json!({"room": "lobby"})).await?;
    ann.ok("room.kick", json!({"room": "lobby", "user": "bob"})).await?;
    bob.ok("room.join", json!({"room": "lobby"})).await?;
    Ok(())
}

#[tokio::test]
async fn a_ban_stops_an_upload_and_sends_in_flight() -> anyhow::Result<()> {
    let s = server().await?;
    let mut ann = login(&s, "acme", "ann").await?;
    let mut bob = login(&s, "acme", "bob").await?;
    // A public room: after the ban it stays visible to bob, so every send
    // of his is refused with `forbidden` (the one in flight at the writer,
    // and those the ban reached first); in a private room the later ones
    // would be `not_found`, the room gone for him.
    ann.ok("room.create", json!({"room": "plans"})).await?;
    bob.ok("room.join", json!({"room": "plans"})).await?;

    // Bob begins an 8 MiB upload and sends its first MiB, then stalls.
    let big = vec![7u8; 8 << 20];
    let hash = blake3::hash(&big).to_hex().to_string();
    let begun = bob
        .ok(
            "upload.begin",
            json!({"room": "plans", "name": "big.bin", "size": big.len(), "hash": hash}),
        )
        .await?;
    let upload_id = begun["upload_id"].as_str().context("upload id")?.to_owned();
    let mut st = bob.conn.open_uni().await?;
    st.write_all(&RawConn::frame(
        format!(r#"{{"upload_id":"{upload_id}","offset":0}}"#).as_bytes(),
    ))
    .await?;
    st.write_all(&big[..1 << 20]).await?;
    // Wait until the server holds part of it (the stream is being received).
    let mut status = RawConn::connect(s.addr, &s.data_dir()).await?;
    status.login("acme", "bob", PW).await?;
    within("bytes arrive", async {
        loop {
            // upload.status would take the upload over; look at the disk.
            let part = s.data_dir().join("uploads").join(format!("{upload_id}.part"));
            if std::fs::metadata(&part).is_ok_and(|m| m.len() > 0) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;

    // Bob's sends, pipelined: many in flight at the moment of the ban.
    const SENDS: u64 = 400;
    for i in 0..SENDS {
        let req = json!({"id": 1000 + i, "op": "send", "room": "plans",
            "client_msg_id": format!("b{i}"), "body": format!("bob {i}")});
        bob.write_frame(&serde_json::to_vec(&req)?).await?;
    }
    // The ban lands once a few of them are acknowledged.
    let mut replies: BTreeMap<u64, Value> = BTreeMap::new();
    while replies.len() < 10 {
        let v = within("first replies", bob.read()).await?;
        if let Some(id) = v["re"].as_u64() {
            replies.insert(id - 1000, v);
        } else {
            bob.events.push(v);
        }
    }
    let ban = ann.ok("room.ban", json!({"room": "plans", "user": "bob"})).await?;
    let ban_seq = ban["seq"].as_u64().context("ban seq")?;
    while replies.len() < SENDS as usize {
        let v = within("all replies", bob.read()).await?;
        match v["re"].as_u64() {
            Some(id) => drop(replies.insert(id - 1000, v)),
            None => bob.events.push(v),
        }
    }
    // Acknowledged before the ban, refused after it, never the other way.
    let codes: Vec<&str> =
        replies.values().map(|r| r["err"]["code"].as_str().unwrap_or("ok")).collect();
    let first_refused = codes.iter().position(|c| *c != "ok").context("some sends refused")?;
    ensure!(first_refused >= 10, "{codes:?}");
    ensure!(codes[first_refused..].iter().all(|c| *c == "forbidden"), "{codes:?}");
    for r in replies.values().take(first_refused) {
        ensure!(r["ok"]["seq"].as_u64() < Some(ban_seq), "acked after the ban: {r}");
    }

    // The upload stopped with stream code 10 and `upload.failed` forbidden.
    let stopped = within("upload stopped", st.stopped()).await;
    match stopped {
        Ok(Some(code)) => assert_eq!(code.into_inner(), 10),
        other => anyhow::bail!("upload stream not stopped: {other:?}"),
    }
    let failed = within("upload failed", upload_outcome(&mut bob, &upload_id)).await?;
    assert_eq!((&failed["ev"], &failed["code"]), (&json!("upload.failed"), &json!("forbidden")));
    let r = status.call("upload.status", json!({"upload_id": upload_id})).await?;
    assert_eq!(r["err"]["code"], "not_found", "the upload is gone: {r}");
    assert!(
        !s.data_dir().join("uploads").join(format!("{upload_id}.part")).exists(),
        "its bytes are discarded"
    );

    // Nothing bob sent after the ban is stored.
    let h = ann.ok("history", json!({"room": "plans", "limit": 500})).await?;
    let bobs: Vec<u64> = h["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["sender"] == "bob" && m["kind"] != "system")
        .filter_map(|m| m["seq"].as_u64())
        .collect();
    assert_eq!(bobs.len(), first_refused, "stored exactly what was acknowledged");
    assert!(bobs.iter().all(|seq| *seq < ban_seq), "{bobs:?} after {ban_seq}");
    println!(
        "ban at seq {ban_seq}: {first_refused} of bob's {SENDS} pipelined sends stored before it, \
         {} refused after it; the 8 MiB upload stopped with stream code 10",
        SENDS as usize - first_refused
    );
    Ok(())
}

fn config(s: &TestServer, user: &str) -> ClientConfig {
    ClientConfig::new(
        s.addr.to_string(),
        "acme",
        user,
        Auth::Password(PW.into()),
        Trust::Fingerprint(s.fingerprint.clone()),
    )
}

/// Waits for the client's next `Connected` after a drop.
async fn reconnected(events: &mut Events, kept: &mut Vec<Message>) -> anyhow::Result<()> {
    let mut dropped = false;
    loop {
        match events.recv().await {
            Some(ClientEvent::State(ConnState::Reconnecting { .. })) => dropped = true,
            Some(ClientEvent::State(ConnState::Connected)) if dropped => return Ok(()),
            Some(ClientEvent::Message(m)) => kept.push(m),
            Some(_) => {}
            None => anyhow::bail!("events ended"),
        }
    }
}

#[tokio::test]
async fn changes_survive_a_restart_and_sync_replays_them_once() -> anyhow::Result<()> {
    let mut s = server().await?;
    let mut ann = login(&s, "acme", "ann").await?;
    ann.ok("room.create", json!({"room": "plans", "private": true})).await?;
    for u in ["bob", "carol", "dave"] {
        ann.ok("room.invite", json!({"room": "plans", "user": u})).await?;
        let mut c = login(&s, "acme", u).await?;
        c.ok("room.join", json!({"room": "plans"})).await?;
    }
    let (bob, mut events) = within("bob connects", Client::connect(config(&s, "bob"))).await?;
    let (carol, mut carol_events) =
        within("carol connects", Client::connect(config(&s, "carol"))).await?;
    let rooms = carol.rooms().await?;
    let plans_id = rooms.iter().find(|r| r.display() == "plans").map(|r| r.key().to_owned());
    let plans_id = plans_id.context("carol lists plans")?;
    let mut seen: Vec<Message> = Vec::new();
    // Bob's and carol's connections drop; meanwhile the room changes (carol
    // is kicked, then banned), and the server restarts.
    bob.force_disconnect();
    carol.force_disconnect();
    let changes = [
        ("room.kick", json!({"room": "plans", "user": "carol", "reason": "too loud"})),
        ("room.role", json!({"room": "plans", "user": "dave", "role": "moderator"})),
        ("room.topic", json!({"room": "plans", "topic": "launch on friday"})),
        ("room.ban", json!({"room": "plans", "user": "carol"})),
    ];
    let mut seqs = Vec::new();
    for (op, fields) in changes {
        seqs.push(ann.ok(op, fields).await?["seq"].as_u64().context("seq")?);
    }
    s.restart().await?;
    within("bob reconnects", reconnected(&mut events, &mut seen)).await?;
    // Ann's next message comes through once bob is back.
    let mut ann = login(&s, "acme", "ann").await?;
    ann.ok("send", json!({"room": "plans", "client_msg_id": "back", "body": "welcome back"}))
        .await?;
    within("bob catches up", async {
        while !seen.iter().any(|m| m.body == "welcome back") {
            match events.recv().await {
                Some(ClientEvent::Message(m)) => seen.push(m),
                Some(_) => {}
                None => anyhow::bail!("events ended"),
            }
        }
        anyhow::Ok(())
    })
    .await?;
    let system: Vec<(u64, String)> = seen
        .iter()
        .filter(|m| m.kind == MessageKind::System && m.seq >= seqs[0])
        .map(|m| (m.seq, m.body.clone()))
        .collect();
    assert_eq!(
        system,
        [
            (seqs[0], "ann removed carol: too loud".to_owned()),
            (seqs[1], "ann made dave a moderator".to_owned()),
            (seqs[2], "ann set the topic: launch on friday".to_owned()),
            (seqs[3], "ann banned carol".to_owned()),
        ],
        "each change once, in order"
    );
    let mut all: Vec<u64> = seen.iter().map(|m| m.seq).collect();
    let n = all.len();
    all.dedup();
    assert_eq!(all.len(), n, "nothing twice");
    assert!(all.windows(2).all(|w| w[0] < w[1]), "in order");
    assert_eq!(
        seen[0].change.as_ref().map(|c| c.by.as_str()),
        seen[0].change.as_ref().map(|_| "ann")
    );
    // The state itself survived the restart.
    let members = bob.members("plans").await?;
    let roles: Vec<(String, Option<&str>)> =
        members.iter().map(|m| (m.user.clone(), m.role.map(|r| r.as_str()))).collect();
    assert_eq!(
        roles,
        [
            ("ann".to_owned(), Some("owner")),
            ("bob".to_owned(), Some("member")),
            ("dave".to_owned(), Some("moderator")),
        ]
    );
    let rooms = bob.rooms().await?;
    let plans = rooms.iter().find(|r| r.display() == "plans").context("plans listed")?;
    assert_eq!(plans.topic.as_deref(), Some("launch on friday"));
    let mut raw = login(&s, "acme", "carol").await?;
    let r = raw.call("room.join", json!({"room": "plans"})).await?;
    assert_eq!(r["err"]["message"], "no room named plans", "still banned: {r}");
    // Carol's client, back, finds the room gone (its `room.removed` went
    // to the dropped connection) and says so, once; nothing of the room
    // after her kick reaches her.
    let removed = within("carol hears plans is gone", async {
        loop {
            match carol_events.recv().await {
                Some(ClientEvent::RoomRemoved(r)) => return anyhow::Ok(r),
                Some(ClientEvent::Message(m)) if m.room_id.as_deref() == Some(&plans_id) => {
                    ensure!(m.seq < seqs[0], "carol got seq {} of plans after her kick", m.seq);
                }
                Some(_) => {}
                None => anyhow::bail!("events ended"),
            }
        }
    })
    .await?;
    assert_eq!((removed.room_id.as_str(), removed.by), (plans_id.as_str(), None));
    assert_eq!(removed.reason, qchat_client::RemovedReason::Unknown);
    bob.quit(None).await?;
    carol.quit(None).await?;
    Ok(())
}

/// Every file under `dir`.
fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

#[tokio::test]
async fn deleting_a_room_erases_its_messages_and_unshared_files() -> anyhow::Result<()> {
    let mut s = server().await?;
    let mut ann = login(&s, "acme", "ann").await?;
    ann.ok("room.create", json!({"room": "doomed"})).await?;
    ann.ok("room.create", json!({"room": "kept"})).await?;
    for i in 0..20 {
        let body = format!("erase-me-{i:02}-zq");
        ann.ok("send", json!({"room": "doomed", "client_msg_id": format!("d{i}"), "body": body}))
            .await?;
    }
    ann.ok("send", json!({"room": "kept", "client_msg_id": "k", "body": "keep-me-zq"})).await?;
    let only = b"only-in-doomed-content".repeat(100);
    let shared = b"offered-in-both-rooms".repeat(100);
    upload(&mut ann, "doomed", "only.bin", &only).await?;
    upload(&mut ann, "doomed", "shared.bin", &shared).await?;
    let kept_file = upload(&mut ann, "kept", "shared.bin", &shared).await?;
    let store = s.data_dir().join("files");
    let hash = |b: &[u8]| blake3::hash(b).to_hex().to_string();
    let on_disk = |h: &str| files_under(&store).iter().any(|p| p.ends_with(h));
    assert!(on_disk(&hash(&only)) && on_disk(&hash(&shared)));

    let mut bob = login(&s, "acme", "bob").await?;
    bob.ok("room.join", json!({"room": "doomed"})).await?;
    bob.events.clear();
    ann.ok("room.delete", json!({"room": "doomed"})).await?;
    bob.ok("ping", json!({})).await?;
    assert!(
        bob.events.iter().any(|e| e["ev"] == "room.removed" && e["reason"] == "deleted"),
        "{:?}",
        bob.events
    );
    let r = bob.call("history", json!({"room": "doomed"})).await?;
    assert_eq!(r["err"]["message"], "no room named doomed");
    assert!(!on_disk(&hash(&only)), "the file no other room offers is gone");
    assert!(on_disk(&hash(&shared)), "the file another room offers stays");
    let got = ann.ok("file.get", json!({"file_id": kept_file})).await?;
    assert_eq!(got["file"]["name"], "shared.bin");

    drop((ann, bob));
    if let Some(url) = s.database_url() {
        // PostgreSQL: the rows are gone (their space is the server's to
        // reclaim, by autovacuum).
        use sqlx::Connection as _;
        let mut c = sqlx::PgConnection::connect(url).await?;
        let left: Vec<String> = sqlx::query_scalar(
            "select body from messages where body like 'erase-me-%' or body = 'only.bin'",
        )
        .fetch_all(&mut c)
        .await?;
        ensure!(left.is_empty(), "rows of the deleted room remain: {left:?}");
        let kept: i64 =
            sqlx::query_scalar("select count(*) from messages where body = 'keep-me-zq'")
                .fetch_one(&mut c)
                .await?;
        ensure!(kept == 1, "the kept room's message is there");
        c.close().await?;
    } else {
        // SQLite, the server running: the deletion checkpointed the WAL,
        // and the database file holds none of it (secure_delete overwrote
        // the freed pages).
        let mut db = Vec::new();
        for name in ["qchat.db", "qchat.db-wal"] {
            if let Ok(bytes) = std::fs::read(s.data_dir().join(name)) {
                db.extend(bytes);
            }
        }
        let holds = |needle: &[u8]| db.windows(needle.len()).any(|w| w == needle);
        assert!(holds(b"keep-me-zq"), "the kept room's message is there");
        for i in 0..20 {
            let body = format!("erase-me-{i:02}-zq");
            assert!(!holds(body.as_bytes()), "{body} is still in the database file");
        }
        assert!(!holds(b"only.bin"), "the deleted offer's name is still in the database file");
    }
    assert!(s.stop().await?.success());
    s.start_again().await?;
    let mut ann = login(&s, "acme", "ann").await?;
    let h = ann.ok("history", json!({"room": "kept"})).await?;
    assert!(h.to_string().contains("keep-me-zq"));
    Ok(())
}

/// The `qchat` CLI as `user` of `acme`, pinned to the server's certificate;
/// its exit status, stdout and stderr.
async fn qchat(
    s: &TestServer,
    home: &std::path::Path,
    user: &str,
    args: &[&str],
) -> anyhow::Result<(bool, String, String)> {
    s.qchat(home, "acme", user, PW, args).await
}

/// The README's walk-through of a DM and a private room, command by command.
#[tokio::test]
async fn the_cli_walk_through_of_a_dm_and_a_private_room() -> anyhow::Result<()> {
    let s = server().await?;
    let home = tempfile::tempdir()?;
    let ok = async |user: &str, args: &[&str]| -> anyhow::Result<String> {
        let (ok, out, err) = qchat(&s, home.path(), user, args).await?;
        ensure!(ok, "qchat {args:?} as {user}: {err}");
        Ok(out)
    };
    // Bob writes to ann alone; the same two always share one conversation.
    assert_eq!(ok("bob", &["dm", "ann", "lunch at noon?"]).await?, "@ann 1\n");
    assert_eq!(ok("ann", &["dm", "bob", "yes"]).await?, "@bob 2\n");
    let h = ok("bob", &["history", "@ann"]).await?;
    assert_eq!(h, "#1 bob: lunch at noon?\n#2 ann: yes\n");

    // Ann's private room, with bob invited and a topic.
    ok("ann", &["create", "plans", "--private"]).await?;
    assert_eq!(ok("ann", &["invite", "plans", "bob"]).await?, "invited bob (seq 1)\n");
    ok("ann", &["topic", "plans", "launch on friday"]).await?;
    let rooms = ok("ann", &["rooms"]).await?;
    assert!(rooms.contains("plans joined 0 @0 private owner launch on friday\n"), "{rooms}");
    assert!(rooms.contains("@bob joined 1 @0 dm member\n"), "{rooms}");
    let bobs = ok("bob", &["rooms"]).await?;
    assert!(bobs.contains("plans invited 0 @0 private - launch on friday\n"), "{bobs}");
    assert_eq!(ok("bob", &["send", "plans", "count me in"]).await?, "4\n", "after bob joined");

    // For carol neither exists.
    let carols = ok("carol", &["rooms"]).await?;
    assert!(!carols.contains("plans") && !carols.contains("@"), "{carols}");
    let (fine, _, err) = qchat(&s, home.path(), "carol", &["history", "plans"]).await?;
    assert!(!fine && err.contains("no room named plans"), "{err}");
    let (fine, _, err) = qchat(&s, home.path(), "carol", &["history", "@ann,bob"]).await?;
    assert!(!fine && err.contains("no room named @ann,bob"), "{err}");

    // Roles and moderation.
    assert_eq!(
        ok("ann", &["role", "plans", "bob", "moderator"]).await?,
        "bob is moderator (seq 5)\n"
    );
    let who = ok("ann", &["who", "plans"]).await?;
    assert!(who.contains("bob"), "{who}");
    let (fine, _, err) = qchat(&s, home.path(), "bob", &["kick", "plans", "ann"]).await?;
    assert!(!fine && err.contains("forbidden"), "a moderator does not outrank the owner: {err}");
    ok("ann", &["ban", "plans", "bob", "--reason", "spam"]).await?;
    let (fine, _, err) = qchat(&s, home.path(), "bob", &["send", "plans", "still?"]).await?;
    assert!(!fine && err.contains("no room named plans"), "{err}");
    let h = ok("ann", &["history", "plans"]).await?;
    assert!(h.ends_with("* ann made bob a moderator\n#6 * ann banned bob: spam\n"), "{h}");
    ok("ann", &["unban", "plans", "bob"]).await?;
    let (fine, _, err) = qchat(&s, home.path(), "ann", &["delete", "plans"]).await?;
    assert!(!fine && err.contains("--yes"), "{err}");
    ok("ann", &["delete", "plans", "--yes"]).await?;
    let rooms = ok("ann", &["rooms"]).await?;
    assert!(!rooms.contains("plans"), "{rooms}");
    Ok(())
}

/// Direct messages and pending invitations count against quotas of their
/// own, per user (and per tenant); reopening a DM is never refused, and an
/// answered invitation stops counting.
#[tokio::test]
async fn dms_and_invitations_have_quotas() -> anyhow::Result<()> {
    let s = TestServer::start_with(&[
        "--idle-timeout-secs",
        "4",
        "--dms-per-user",
        "2",
        "--invitations-per-user",
        "1",
    ])
    .await?;
    s.tenant("acme", false).await?;
    for u in ["ann", "bob", "carol", "dave"] {
        s.user("acme", u, PW).await?;
    }
    let mut ann = login(&s, "acme", "ann").await?;
    ann.ok("dm.open", json!({"users": ["bob"]})).await?;
    ann.ok("dm.open", json!({"users": ["carol"]})).await?;
    let r = ann.call("dm.open", json!({"users": ["dave"]})).await?;
    assert_eq!(r["err"]["code"], "quota_exceeded", "{r}");
    ann.ok("dm.open", json!({"users": ["bob"]})).await.context("an existing DM reopens")?;
    let mut dave = login(&s, "acme", "dave").await?;
    dave.ok("dm.open", json!({"users": ["ann"]})).await.context("dave's own quota")?;

    ann.ok("room.create", json!({"room": "plans", "private": true})).await?;
    ann.ok("room.invite", json!({"room": "plans", "user": "bob"})).await?;
    let r = ann.call("room.invite", json!({"room": "plans", "user": "carol"})).await?;
    assert_eq!(r["err"]["code"], "quota_exceeded", "{r}");
    let mut bob = login(&s, "acme", "bob").await?;
    bob.ok("room.join", json!({"room": "plans"})).await?;
    ann.ok("room.invite", json!({"room": "plans", "user": "carol"})).await.context("answered")?;
    let mut carol = login(&s, "acme", "carol").await?;
    let rooms = carol.ok("rooms", json!({})).await?;
    assert!(rooms.to_string().contains("\"invited\":true"), "{rooms}");
    Ok(())
}

//! Moving a deployment between backends: `qchatd migrate` on either, and
//! `qchatd migrate-to`, which copies a populated SQLite deployment into
//! PostgreSQL; the server started on the copy shows every room's history,
//! members and files exactly as before — a DM, a private room, a pending
//! invitation and a ban included, each still hidden from or refused to whom
//! it was — and goes on numbering from there.

use std::collections::BTreeMap;
use std::process::Stdio;

use anyhow::{Context as _, ensure};
use qchat_client::{Auth, Client, ClientConfig, Trust};
use qchat_tests::{Backend, RawConn, ScratchDb, TestServer, bin_path, within};
use serde_json::{Value, json};

const PW: &str = "correct horse battery";

/// `(tenant, user, room)`: whose view of which room is compared.
const VIEWS: &[(&str, &str, &str)] = &[
    ("acme", "ann", "general"),
    ("acme", "ann", "random"),
    ("acme", "bob", "general"),
    ("acme", "ann", "plans"),
    ("acme", "bob", "@ann"),
    ("other", "zed", "general"),
];

/// What dan (banned from `lobby`, not in `plans`, `later` or the DM of ann
/// and bob) gets for each: the error of a join, the error of a history.
const DAN_PROBES: &[(&str, &str)] = &[
    ("room.join", "lobby"),
    ("room.join", "plans"),
    ("room.join", "later"),
    ("history", "plans"),
    ("history", "@ann,bob"),
];

async fn login(s: &TestServer, tenant: &str, user: &str) -> anyhow::Result<RawConn> {
    let mut c = RawConn::connect(s.addr, &s.data_dir()).await?;
    c.login(tenant, user, PW).await?;
    Ok(c)
}

/// A room's whole history, oldest first, paged as a client would.
async fn history(c: &mut RawConn, room: &str) -> anyhow::Result<Vec<Value>> {
    let mut all = Vec::new();
    let mut before: Option<u64> = None;
    for _ in 0..1000 {
        let mut req = json!({"room": room, "limit": 50});
        if let Some(b) = before {
            req["before_seq"] = json!(b);
        }
        let page = c.ok("history", req).await?;
        let mut msgs = page["messages"].as_array().cloned().unwrap_or_default();
        before = msgs.first().and_then(|m| m["seq"].as_u64());
        msgs.extend(all);
        all = msgs;
        if page["more"] == false {
            return Ok(all);
        }
    }
    anyhow::bail!("history of {room} did not end")
}

/// Everything the compared users see: each view's history and members,
/// and each user's room list.
async fn views(s: &TestServer) -> anyhow::Result<BTreeMap<String, Value>> {
    let mut out = BTreeMap::new();
    for &(tenant, user, room) in VIEWS {
        let mut c = login(s, tenant, user).await?;
        let h = history(&mut c, room).await?;
        out.insert(format!("{tenant}/{user}/{room}/history"), Value::Array(h));
        let mut members = c.ok("members", json!({"room": room})).await?["members"].clone();
        // Who is online differs between the two runs; who is a member not.
        if let Some(list) = members.as_array_mut() {
            for m in list {
                m.as_object_mut().map(|o| o.remove("online"));
            }
        }
        out.insert(format!("{tenant}/{user}/{room}/members"), members);
        let rooms = c.ok("rooms", json!({})).await?["rooms"].clone();
        out.insert(format!("{tenant}/{user}/rooms"), rooms);
    }
    let mut dan = login(s, "acme", "dan").await?;
    let rooms = dan.ok("rooms", json!({})).await?["rooms"].clone();
    out.insert("acme/dan/rooms".into(), rooms);
    for &(op, room) in DAN_PROBES {
        let reply = dan.call(op, json!({"room": room})).await?;
        out.insert(format!("acme/dan/{op}/{room}"), reply["err"].clone());
    }
    Ok(out)
}

async fn client(s: &TestServer, tenant: &str, user: &str) -> anyhow::Result<Client> {
    let cfg = ClientConfig::new(
        s.addr.to_string(),
        tenant,
        user,
        Auth::Password(PW.into()),
        Trust::Fingerprint(s.fingerprint.clone()),
    );
    let (c, _events) = within("connect", Client::connect(cfg)).await?;
    Ok(c)
}

async fn qchatd(args: &[&str]) -> anyhow::Result<(bool, String)> {
    let out = tokio::process::Command::new(bin_path("qchatd"))
        .args(args)
        .env_remove("QCHAT_DATABASE_URL")
        .stdin(Stdio::null())
        .output();
    let out = within("qchatd", out).await?;
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    Ok((out.status.success(), text))
}

#[tokio::test]
async fn a_sqlite_deployment_moves_to_postgres_with_every_room_history() -> anyhow::Result<()> {
    let mut s = TestServer::start_on(
        Backend::Sqlite,
        &["--idle-timeout-secs", "4"],
        "qchat_service=debug,info",
    )
    .await?;
    s.tenant("acme", false).await?;
    s.tenant("other", true).await?;
    for (t, u) in [("acme", "ann"), ("acme", "bob"), ("acme", "dan"), ("other", "zed")] {
        s.user(t, u, PW).await?;
    }
    for (t, r) in [("acme", "general"), ("acme", "random"), ("acme", "empty"), ("other", "general")]
    {
        s.room(t, r).await?;
    }
    let mut ann = login(&s, "acme", "ann").await?;
    let mut bob = login(&s, "acme", "bob").await?;
    let mut zed = login(&s, "other", "zed").await?;
    for r in ["general", "random"] {
        ann.ok("room.join", json!({"room": r})).await?;
    }
    bob.ok("room.join", json!({"room": "general"})).await?;
    zed.ok("room.join", json!({"room": "general"})).await?;
    for i in 0..130 {
        let (c, room) = match i % 5 {
            0 => (&mut bob, "general"),
            1 => (&mut ann, "random"),
            2 => (&mut zed, "general"),
            _ => (&mut ann, "general"),
        };
        let body = format!("message {i} with ünïcödé and 'quotes'");
        c.ok("send", json!({"room": room, "client_msg_id": format!("m{i}"), "body": body})).await?;
    }
    ann.ok("read", json!({"room": "general", "seq": 40})).await?;
    // Issue 17's rows: a private room bob was invited to and joined, one he
    // is only invited to, a public room dan was banned from, a DM.
    let mut dan = login(&s, "acme", "dan").await?;
    for (room, private) in [("plans", true), ("later", true), ("lobby", false)] {
        ann.ok("room.create", json!({"room": room, "private": private})).await?;
    }
    ann.ok("room.invite", json!({"room": "plans", "user": "bob"})).await?;
    bob.ok("room.join", json!({"room": "plans"})).await?;
    ann.ok("room.invite", json!({"room": "later", "user": "bob"})).await?;
    dan.ok("room.join", json!({"room": "lobby"})).await?;
    ann.ok("room.ban", json!({"room": "lobby", "user": "dan", "reason": "spam"})).await?;
    ann.ok("send", json!({"room": "plans", "client_msg_id": "p1", "body": "secret plan"})).await?;
    ann.ok("dm.open", json!({"users": ["bob"]})).await?;
    ann.ok("send", json!({"room": "@bob", "client_msg_id": "d1", "body": "just us"})).await?;
    drop(dan);
    // A file, offered twice under two names (one stored file, two offers).
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("report.bin");
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&path, &data)?;
    let hash = blake3::hash(&data).to_hex().to_string();
    let c = client(&s, "acme", "ann").await?;
    let first = within("upload", c.upload("general", &path)?.wait()).await?;
    let again = within("upload again", c.upload_named("random", &path, "copy.bin")?.wait()).await?;
    ensure!(again.deduplicated, "the second offer reuses the stored file");
    c.quit(None).await?;
    let before = views(&s).await?;
    drop((ann, bob, zed));
    s.stop().await?;

    // Nothing but SQLite flags: migrate-to reads the SQLite file of the
    // data directory and fills the (new, empty) PostgreSQL database.
    let pg = ScratchDb::create().await?;
    let data_dir = s.data_dir();
    let data_dir = data_dir.to_str().context("utf-8 path")?;
    let (ok, out) = qchatd(&["migrate-to", &pg.url, "--data-dir", data_dir]).await?;
    ensure!(ok, "migrate-to failed: {out}");
    // 130 texts, 2 file messages, 4 joins of the public rooms, and issue
    // 17's: 2 invitations, a join, dan's join and ban, a text in plans, one
    // in the DM.
    let counts = [
        "tenants: 2",
        "users: 4",
        "rooms: 8",
        "memberships: 10",
        "invitations: 1",
        "bans: 1",
        "messages: 143",
        "files: 1",
        "offers: 2",
    ];
    for line in counts {
        ensure!(out.lines().any(|l| l == line), "{line} reported: {out}");
    }
    // A second copy into the same database is refused: it is not empty.
    let (ok, out) = qchatd(&["migrate-to", &pg.url, "--data-dir", data_dir]).await?;
    ensure!(!ok && out.contains("not empty"), "a second copy is refused: {out}");

    s.use_postgres(Some(pg))?;
    s.start_again().await?;
    let log = s.log_text();
    let opened = log.lines().rfind(|l| l.contains("database open")).unwrap_or_default();
    ensure!(opened.contains("Postgres"), "the server runs on PostgreSQL now: {opened}");
    let after = views(&s).await?;
    for (key, v) in &before {
        assert_eq!(Some(v), after.get(key), "{key} is the same after the move");
    }
    assert_eq!(before.len(), after.len());
    // The views hold what they should (not just the same nothing twice).
    let dm = before["acme/bob/@ann/history"].to_string();
    ensure!(dm.contains("just us"), "bob reads the DM: {dm}");
    for (key, code) in [
        ("acme/dan/room.join/lobby", "forbidden"),
        ("acme/dan/room.join/plans", "not_found"),
        ("acme/dan/room.join/later", "not_found"),
        ("acme/dan/history/@ann,bob", "not_found"),
    ] {
        ensure!(after[key]["code"] == code, "{key}: {}", after[key]);
    }
    let dan_rooms = after["acme/dan/rooms"].to_string();
    ensure!(!dan_rooms.contains("plans") && !dan_rooms.contains("dm"), "{dan_rooms}");

    // It goes on from where SQLite left off: the next seq, new rows of every
    // kind (ids past the copied ones), the stored file by both offers.
    let mut ann = login(&s, "acme", "ann").await?;
    let last = before["acme/ann/general/history"]
        .as_array()
        .and_then(|h| h.last())
        .and_then(|m| m["seq"].as_u64())
        .context("general has messages")?;
    let sent = ann
        .ok("send", json!({"room": "general", "client_msg_id": "after", "body": "on postgres"}))
        .await?;
    assert_eq!(sent["seq"].as_u64(), Some(last + 1));
    let dup =
        ann.ok("send", json!({"room": "general", "client_msg_id": "m3", "body": "x"})).await?;
    assert_eq!(dup["duplicate"], true, "idempotency keys came along");
    // The copied messages are searchable on PostgreSQL (its index is a
    // column it computes; nothing of SQLite's FTS5 index is copied).
    let found = ann.ok("search", json!({"query": "message 8", "room": "general"})).await?;
    assert_eq!(found["hits"].as_array().map(Vec::len), Some(1), "{found}");
    ann.ok("room.create", json!({"room": "new-room"})).await?;
    s.user("acme", "cy", PW).await?;
    let c = client(&s, "acme", "ann").await?;
    let out = tempfile::tempdir()?;
    for id in [first.file.id, again.file.id] {
        let got = within("download", c.download(id, out.path())?.wait()).await?;
        assert_eq!(blake3::hash(&std::fs::read(&got.path)?).to_hex().to_string(), hash);
    }
    let third =
        within("upload on pg", c.upload_named("general", &path, "third.bin")?.wait()).await?;
    assert!(third.file.id > again.file.id, "offer ids keep counting up");
    c.quit(None).await?;
    Ok(())
}

/// `qchatd migrate` creates and migrates either backend, and the admin
/// commands then work on it.
#[tokio::test]
async fn migrate_and_admin_commands_work_on_either_backend() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let pg = ScratchDb::create().await?;
    let data = dir.path().join("data");
    let data = data.to_str().context("utf-8 path")?;
    for url in [String::new(), pg.url.clone()] {
        let db = ["--data-dir", data, "--database-url", url.as_str()];
        let run = |args: &[&str]| {
            let mut all: Vec<&str> = args.to_vec();
            all.extend_from_slice(&db);
            let all: Vec<String> = all.into_iter().map(str::to_owned).collect();
            async move {
                let refs: Vec<&str> = all.iter().map(String::as_str).collect();
                qchatd(&refs).await
            }
        };
        let (ok, out) = run(&["migrate"]).await?;
        ensure!(ok, "migrate: {out}");
        let (ok, out) = run(&["migrate"]).await?;
        ensure!(ok, "migrate is idempotent: {out}");
        let (ok, out) = run(&["tenant", "create", "acme"]).await?;
        ensure!(ok, "tenant create: {out}");
        let (ok, out) = run(&["room", "create", "--tenant", "acme", "general"]).await?;
        ensure!(ok, "room create: {out}");
        let (ok, out) = run(&["room", "list", "--tenant", "acme"]).await?;
        ensure!(ok && out.contains("general\tfalse\t0\t0"), "room list: {out}");
        let (ok, out) = run(&["tenant", "create", "acme"]).await?;
        ensure!(!ok && out.contains("exists"), "a second acme is refused: {out}");
    }
    let (ok, out) = qchatd(&["backup", "--out", "x.db", "--database-url", &pg.url]).await?;
    ensure!(!ok && out.contains("pg_dump"), "backup on PostgreSQL points to pg_dump: {out}");
    Ok(())
}

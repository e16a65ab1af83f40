//! One ordinary member must not be able to cut a room, or a whole tenant,
//! off from everyone else (issue 22). Each test sets up what a hostile
//! member could store — messages whose escaped bodies outgrow a frame,
//! more rooms or members than one frame lists — or sends what they could
//! send, and checks that every other member is still served as
//! docs/PROTOCOL.md says. On the server before the fix each of them failed:
//! the replies were closed with code 6 (`internal`) instead.
//!
//! Every reply here is read by `RawConn`, whose frame decoder refuses a
//! frame over 1 MiB, so a reply that is read at all was within the limit;
//! the tests also re-encode each one and check its size.

use std::collections::BTreeSet;
use std::process::Stdio;

use anyhow::{Context as _, ensure};
use qchat_protocol::{MAX_BODY_LEN, MAX_FRAME_LEN};
use qchat_tests::{RawConn, TestServer, bin_path, within};
use serde_json::{Value, json};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions as _, SqliteConnection};

const PW: &str = "correct horse";

/// Calls `op` and checks the reply's size: the payload, re-encoded, is
/// within the frame limit (the read itself already refuses a larger frame).
async fn call_fitting(c: &mut RawConn, op: &str, fields: Value) -> anyhow::Result<Value> {
    let r = within(op, c.call(op, fields)).await.with_context(|| format!("{op} reply"))?;
    let len = serde_json::to_vec(&r)?.len();
    ensure!(len <= MAX_FRAME_LEN, "{op}: reply of {len} bytes");
    ensure!(c.conn.close_reason().is_none(), "{op}: connection closed");
    r.get("ok").cloned().with_context(|| format!("{op} failed: {r}"))
}

fn seqs(page: &Value) -> anyhow::Result<Vec<u64>> {
    page["messages"]
        .as_array()
        .context("messages")?
        .iter()
        .map(|m| m["seq"].as_u64().context("seq"))
        .collect()
}

/// Pages `history` back from the newest with `limit` (`None`: the server's
/// default) until `more` is false; returns every seq, ascending, and the
/// number of pages.
async fn history_all(
    c: &mut RawConn,
    room: &str,
    limit: Option<u64>,
) -> anyhow::Result<(Vec<u64>, usize)> {
    let mut pages: Vec<Vec<u64>> = Vec::new();
    let mut before: Option<u64> = None;
    loop {
        let mut fields = json!({"room": room});
        if let Some(b) = before {
            fields["before_seq"] = json!(b);
        }
        if let Some(l) = limit {
            fields["limit"] = json!(l);
        }
        let page = call_fitting(c, "history", fields).await?;
        let got = seqs(&page)?;
        ensure!(got.windows(2).all(|w| w[0] < w[1]), "history page not ascending: {got:?}");
        let more = page["more"] == true;
        ensure!(!more || !got.is_empty(), "an empty history page with more");
        before = got.first().copied();
        pages.push(got);
        if !more {
            break;
        }
        ensure!(pages.len() <= 10_000, "history does not end");
    }
    let n = pages.len();
    Ok((pages.into_iter().rev().flatten().collect(), n))
}

/// Pages `sync` forward from `after` with `limit` until `more` is false;
/// returns every seq and the number of pages.
async fn sync_all(
    c: &mut RawConn,
    room: &str,
    mut after: u64,
    limit: Option<u64>,
) -> anyhow::Result<(Vec<u64>, usize)> {
    let (mut all, mut pages) = (Vec::new(), 0);
    loop {
        let mut fields = json!({"room": room, "after_seq": after});
        if let Some(l) = limit {
            fields["limit"] = json!(l);
        }
        let page = call_fitting(c, "sync", fields).await?;
        let got = seqs(&page)?;
        let more = page["more"] == true;
        ensure!(!more || !got.is_empty(), "an empty sync page with more");
        pages += 1;
        if let Some(&last) = got.last() {
            after = last;
        }
        all.extend(got);
        if !more {
            break;
        }
        ensure!(pages <= 10_000, "sync does not end");
    }
    Ok((all, pages))
}

async fn open_db(s: &TestServer) -> anyhow::Result<SqliteConnection> {
    let opts = SqliteConnectOptions::new()
        .filename(s.data_dir().join("qchat.db"))
        .create_if_missing(false)
        .busy_timeout(std::time::Duration::from_secs(10));
    Ok(opts.connect().await?)
}

/// The `qchat` CLI as `user` against `s`, pinned to its certificate.
fn qchat(s: &TestServer, home: &std::path::Path, user: &str) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(bin_path("qchat"));
    cmd.args(["--server", &s.addr.to_string(), "--tenant", "acme", "--user", user])
        .args(["--fingerprint", &s.fingerprint])
        .arg("--known-hosts")
        .arg(home.join("known_hosts"))
        .env("QCHAT_PASSWORD", PW)
        .env("HOME", home)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    cmd
}

/// Runs the CLI; returns its stdout, failing on a non-zero exit.
async fn cli(
    s: &TestServer,
    home: &std::path::Path,
    user: &str,
    args: &[&str],
) -> anyhow::Result<String> {
    let out = within("qchat", qchat(s, home, user).args(args).output()).await?;
    ensure!(
        out.status.success(),
        "qchat {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}

/// 12 messages of 16 KiB of U+0001 (96 KiB each once escaped, 1.15 MiB
/// together) and 70 messages of 16,000 ordinary bytes: every member's
/// `history` and `sync` with the default limits, and the documented
/// recovery after `lagged` (sync from the last seq held), are served in
/// pages that fit the frame, and paging returns each message exactly once.
#[tokio::test]
async fn long_messages_are_paged_instead_of_closing_the_readers_connection() -> anyhow::Result<()> {
    let s = TestServer::start().await?;
    s.tenant("acme", false).await?;
    let users = ["ann", "bob", "carol"];
    for u in users {
        s.user("acme", u, PW).await?;
    }
    s.room("acme", "ctl").await?;
    s.room("acme", "long").await?;
    let mut conns = Vec::new();
    for u in users {
        let mut c = RawConn::connect(s.addr, &s.data_dir()).await?;
        c.login("acme", u, PW).await?;
        for room in ["ctl", "long"] {
            c.ok("room.join", json!({"room": room})).await?;
        }
        conns.push(c);
    }
    let ann = &mut conns[0];
    let control = "\u{1}".repeat(MAX_BODY_LEN);
    for i in 0..12 {
        let r = ann
            .ok("send", json!({"room": "ctl", "client_msg_id": format!("c{i}"), "body": control}))
            .await?;
        // After the three users' "joined".
        ensure!(r["seq"] == i + 4, "{r}");
    }
    let ordinary = "x".repeat(16_000);
    for i in 0..70 {
        ann.ok("send", json!({"room": "long", "client_msg_id": format!("l{i}"), "body": ordinary}))
            .await?;
    }
    ann.events.clear();
    // Each room: three "joined" system messages, then ann's.
    let ctl: Vec<u64> = (1..=15).collect();
    let long: Vec<u64> = (1..=73).collect();
    for (c, user) in conns.iter_mut().zip(users) {
        // The first page with default limits: cut short, with `more`.
        let first = call_fitting(c, "history", json!({"room": "ctl"})).await?;
        let n = seqs(&first)?.len();
        ensure!(first["more"] == true && (1..12).contains(&n), "{user}: first page of {n}");
        ensure!(
            first["messages"][0]["body"].as_str() == Some(control.as_str()),
            "{user}: bodies arrive whole"
        );
        let (all, pages) = history_all(c, "ctl", None).await?;
        ensure!(all == ctl, "{user}: history of ctl {all:?}");
        let (synced, sync_pages) = sync_all(c, "ctl", 0, None).await?;
        ensure!(synced == ctl, "{user}: sync of ctl {synced:?}");
        let (all_long, _) = history_all(c, "long", None).await?;
        ensure!(all_long == long, "{user}: history of long");
        let (synced_long, long_pages) = sync_all(c, "long", 0, None).await?;
        ensure!(synced_long == long, "{user}: sync of long");
        // After `lagged` a client syncs from the last seq it holds.
        let (rest, _) = sync_all(c, "long", 33, None).await?;
        ensure!(rest == (34..=73).collect::<Vec<_>>(), "{user}: sync after a lag");
        println!(
            "{user}: ctl in {pages} history pages (first {n}) and {sync_pages} sync pages; \
             long synced in {long_pages} pages"
        );
        c.ok("ping", json!({})).await.context("the connection stays open")?;
    }
    // The CLI reads the same history (it used to reconnect for ever).
    let home = tempfile::tempdir()?;
    let out = cli(&s, home.path(), "bob", &["history", "ctl", "--json"]).await?;
    ensure!(out.lines().count() == 15, "qchat history printed {} lines", out.lines().count());
    Ok(())
}

/// A tenant with more rooms than one frame can list (9,000 names of 64
/// bytes, stored directly) and a room with more members than one frame can
/// list (12,000): `rooms` and `members` answer in pages with `more`, and
/// `after` walks through all of them exactly once; the CLI's `rooms`,
/// `who` and `send` work for the tenant's members.
#[tokio::test]
async fn rooms_and_members_beyond_a_frame_are_paged() -> anyhow::Result<()> {
    const ROOMS: usize = 9_000;
    const MEMBERS: usize = 12_000;
    let s = TestServer::start().await?;
    s.tenant("acme", false).await?;
    for u in ["ann", "bob"] {
        s.user("acme", u, PW).await?;
    }
    s.room("acme", "general").await?;
    let mut db = open_db(&s).await?;
    let tenant: i64 =
        sqlx::query_scalar("select id from tenants where name = 'acme'").fetch_one(&mut db).await?;
    let general: i64 = sqlx::query_scalar("select id from rooms where name = 'general'")
        .fetch_one(&mut db)
        .await?;
    let room_name = |i: usize| format!("r{i:0>63}");
    let user_name = |i: usize| format!("u{i:0>63}");
    sqlx::query("begin").execute(&mut db).await?;
    for i in 0..ROOMS {
        sqlx::query("insert into rooms (tenant_id, name, created_at) values (?, ?, 0)")
            .bind(tenant)
            .bind(room_name(i))
            .execute(&mut db)
            .await?;
    }
    for i in 0..MEMBERS {
        let id: i64 = sqlx::query_scalar(
            "insert into users (tenant_id, name, password_hash, created_at) values (?, ?, 'x', 0)
             returning id",
        )
        .bind(tenant)
        .bind(user_name(i))
        .fetch_one(&mut db)
        .await?;
        sqlx::query(
            "insert into memberships (tenant_id, room_id, user_id, read_seq, joined_at)
             values (?, ?, ?, 0, 0)",
        )
        .bind(tenant)
        .bind(general)
        .bind(id)
        .execute(&mut db)
        .await?;
    }
    sqlx::query("commit").execute(&mut db).await?;
    drop(db);

    let mut ann = RawConn::connect(s.addr, &s.data_dir()).await?;
    ann.login("acme", "ann", PW).await?;
    ann.ok("room.join", json!({"room": "general"})).await?;
    let mut rooms: Vec<String> = Vec::new();
    let mut pages = 0;
    loop {
        let mut fields = json!({});
        if let Some(last) = rooms.last() {
            fields["after"] = json!(last);
        }
        let page = call_fitting(&mut ann, "rooms", fields).await?;
        pages += 1;
        let names: Vec<String> = page["rooms"]
            .as_array()
            .context("rooms")?
            .iter()
            .map(|r| r["name"].as_str().map(str::to_owned).context("name"))
            .collect::<anyhow::Result<_>>()?;
        ensure!(page["more"] == false || !names.is_empty(), "an empty rooms page with more");
        rooms.extend(names);
        if page["more"] == false {
            break;
        }
        ensure!(pages < 100, "rooms does not end");
    }
    let mut want: Vec<String> = (0..ROOMS).map(room_name).collect();
    want.push("general".into());
    want.sort();
    ensure!(
        rooms == want,
        "rooms: {} listed, {} expected (or not in order)",
        rooms.len(),
        want.len()
    );
    ensure!(pages > 1, "9,000 rooms of 64 bytes do not fit one frame");

    let mut members: Vec<String> = Vec::new();
    let mut member_pages = 0;
    loop {
        let mut fields = json!({"room": "general"});
        if let Some(last) = members.last() {
            fields["after"] = json!(last);
        }
        let page = call_fitting(&mut ann, "members", fields).await?;
        member_pages += 1;
        let names: Vec<String> = page["members"]
            .as_array()
            .context("members")?
            .iter()
            .map(|m| m["user"].as_str().map(str::to_owned).context("user"))
            .collect::<anyhow::Result<_>>()?;
        ensure!(page["more"] == false || !names.is_empty(), "an empty members page with more");
        members.extend(names);
        if page["more"] == false {
            break;
        }
        ensure!(member_pages < 100, "members does not end");
    }
    let mut want: Vec<String> = (0..MEMBERS).map(user_name).collect();
    want.push("ann".into());
    want.sort();
    ensure!(members == want, "members: {} listed, {} expected", members.len(), want.len());
    ensure!(member_pages > 1, "12,000 members do not fit one frame");
    let distinct: BTreeSet<_> = members.iter().collect();
    ensure!(distinct.len() == members.len(), "a member listed twice");
    println!("{ROOMS} rooms in {pages} pages, {MEMBERS} members in {member_pages} pages");

    // The tenant stays usable from the CLI.
    let home = tempfile::tempdir()?;
    let listed = cli(&s, home.path(), "bob", &["rooms"]).await?;
    ensure!(listed.lines().count() == ROOMS + 1, "qchat rooms printed {}", listed.lines().count());
    cli(&s, home.path(), "bob", &["send", "general", "still here"]).await?;
    let who = cli(&s, home.path(), "bob", &["who", "general"]).await?;
    ensure!(who.lines().count() == MEMBERS + 2, "qchat who printed {}", who.lines().count());
    ensure!(who.contains("ann online"), "ann is online");
    Ok(())
}

/// A message body for the paging property: `len` bytes of one kind.
fn body(kind: u8, len: usize) -> String {
    match kind {
        // Six bytes each once escaped: the worst case.
        0 => "\u{1}".repeat(len),
        // A mix of everything JSON escapes, and plain letters.
        1 => b"\x01\"\\a\n\x1f\t".iter().cycle().take(len).map(|&b| char::from(b)).collect(),
        // Two-byte UTF-8, sent as is.
        2 => "é".repeat(len / 2),
        _ => "x".repeat(len),
    }
}

/// Messages of one case: (kind, length in bytes), lengths up to the 16 KiB
/// maximum and often exactly it.
fn messages() -> impl proptest::strategy::Strategy<Value = Vec<(u8, usize)>> {
    use proptest::prelude::*;
    let len = prop_oneof![Just(MAX_BODY_LEN), 1..=MAX_BODY_LEN];
    proptest::collection::vec((0u8..4, len), 1..40)
}

/// Paging as a property: rooms of random messages (bodies up to 16 KiB,
/// often all escaped), read back by two members with `history` and `sync`
/// at random limits (or the defaults) from random starting points. Every
/// reply fits the frame, and the pages together hold every message exactly
/// once, in order, with the body that was sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_and_sync_pages_fit_and_cover_every_message_once() -> anyhow::Result<()> {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestCaseError, TestRunner};
    let s =
        TestServer::start_with(&["--idle-timeout-secs", "10", "--durability", "normal"]).await?;
    s.tenant("acme", false).await?;
    for u in ["ann", "bob"] {
        s.user("acme", u, PW).await?;
    }
    let mut ann = RawConn::connect(s.addr, &s.data_dir()).await?;
    ann.login("acme", "ann", PW).await?;
    let mut bob = RawConn::connect(s.addr, &s.data_dir()).await?;
    bob.login("acme", "bob", PW).await?;
    let conns = tokio::sync::Mutex::new((ann, bob));
    let handle = tokio::runtime::Handle::current();
    let limit = || prop_oneof![Just(None), (1u64..=500).prop_map(Some), (1u64..=3).prop_map(Some)];
    let strategy = (messages(), limit(), limit(), 0usize..40);
    let mut runner = TestRunner::new(Config {
        cases: 10,
        max_shrink_iters: 16,
        failure_persistence: None,
        ..Config::default()
    });
    let case = std::sync::atomic::AtomicUsize::new(0);
    let stats = std::sync::Mutex::new((0usize, 0usize, 0usize));
    let result = runner.run(&strategy, |(msgs, h_limit, s_limit, start)| {
        let n = case.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let run = async {
            let (ann, bob) = &mut *conns.lock().await;
            let room = format!("p{n}");
            ann.ok("room.create", json!({"room": room})).await?;
            bob.ok("room.join", json!({"room": room})).await?;
            let bodies: Vec<String> = msgs.iter().map(|&(k, l)| body(k, l)).collect();
            for (i, b) in bodies.iter().enumerate() {
                let r = ann
                    .ok("send", json!({"room": room, "client_msg_id": format!("m{i}"), "body": b}))
                    .await?;
                // After "bob joined".
                ensure!(r["seq"] == i as u64 + 2, "{r}");
            }
            ann.events.clear();
            bob.events.clear();
            let total = bodies.len() as u64 + 1;
            let all: Vec<u64> = (1..=total).collect();
            let start = (start as u64).min(total);
            let mut pages = 0;
            for c in [&mut *ann, &mut *bob] {
                let (got, hp) = history_all(c, &room, h_limit).await?;
                ensure!(got == all, "history {got:?}");
                let (got, sp) = sync_all(c, &room, start, s_limit).await?;
                ensure!(
                    got == (start + 1..=total).collect::<Vec<_>>(),
                    "sync from {start}: {got:?}"
                );
                pages += hp + sp;
                // The bodies arrive whole and in place.
                let page =
                    call_fitting(c, "sync", json!({"room": room, "after_seq": 1, "limit": 1}))
                        .await?;
                ensure!(page["messages"][0]["body"].as_str() == Some(bodies[0].as_str()), "body");
            }
            let bytes: usize = bodies.iter().map(String::len).sum();
            let mut st = stats.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            st.0 += bodies.len();
            st.1 += bytes;
            st.2 += pages;
            anyhow::Ok(())
        };
        tokio::task::block_in_place(|| handle.block_on(run))
            .map_err(|e| TestCaseError::fail(format!("{e:#}")))
    });
    let (msgs, bytes, pages) =
        stats.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
    println!("paging: {msgs} messages ({bytes} bytes of bodies) read back in {pages} pages");
    if let Err(e) = result {
        anyhow::bail!("{e}");
    }
    Ok(())
}

fn code(reply: &Value) -> &str {
    reply["err"]["code"].as_str().unwrap_or("<none>")
}

fn from(last: u8) -> qchat_tests::RawOpts {
    qchat_tests::RawOpts::from_ip(std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, last)))
}

/// The metrics port a server started with `--metrics-listen 127.0.0.1:0
/// --log-format json` logged.
async fn metrics_addr(s: &TestServer) -> anyhow::Result<std::net::SocketAddr> {
    within("metrics address logged", async {
        loop {
            let log = s.log_text();
            if let Some(a) = log.split("\"metrics\":\"").nth(1).and_then(|r| r.split('"').next()) {
                return Ok(a.parse()?);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await
}

/// One counter from `GET /metrics`.
async fn metric(addr: std::net::SocketAddr, name: &str) -> anyhow::Result<u64> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let text = within("GET /metrics", async {
        let mut tcp = tokio::net::TcpStream::connect(addr).await?;
        tcp.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await?;
        let mut body = String::new();
        tcp.read_to_string(&mut body).await?;
        anyhow::Ok(body)
    })
    .await?;
    let prefix = format!("{name} ");
    let value = text.lines().find_map(|l| l.strip_prefix(&prefix)).context(format!("no {name}"))?;
    Ok(value.trim().parse()?)
}

/// Error replies quote at most a short, escaped prefix of the input: a
/// 1 MiB unknown op before log-in (on several connections) and a 1 MiB
/// string as `history`'s `limit` get small `bad_request` replies on kept
/// connections, and the server logs no error for them. Also the smaller
/// items: a 1 MiB user name in `login` is `bad_request`; request id 2^53 is
/// refused (`re: null`) where 2^53 - 1 is served; an upload stream before
/// log-in is stopped with `not_found` and no `upload.failed` event (events
/// go to logged-in connections only).
#[tokio::test]
async fn errors_echo_no_more_than_a_short_prefix() -> anyhow::Result<()> {
    let s = TestServer::start_with(&["--idle-timeout-secs", "10", "--log-format", "json"]).await?;
    s.tenant("acme", false).await?;
    s.user("acme", "ann", PW).await?;
    s.room("acme", "general").await?;
    let big = "A".repeat(MAX_FRAME_LEN - 200);
    for n in 0..3u64 {
        let mut c = RawConn::connect_with(s.addr, &s.data_dir(), &from(2)).await?;
        let payload = format!(r#"{{"id":{n},"op":"{big}\u0007"}}"#);
        ensure!(payload.len() <= MAX_FRAME_LEN);
        c.write_frame(payload.as_bytes()).await?;
        let r = within("unknown op reply", c.reply(Some(n))).await?;
        let len = serde_json::to_vec(&r)?.len();
        ensure!(code(&r) == "bad_request" && len < 512, "{len} bytes: {r}");
        let message = r["err"]["message"].as_str().context("message")?;
        ensure!(message.contains("AAAA…"), "a short prefix is quoted: {message}");
        c.ok("ping", json!({})).await.context("the connection is kept")?;
    }
    let mut ann = RawConn::connect(s.addr, &s.data_dir()).await?;
    ann.login("acme", "ann", PW).await?;
    ann.ok("room.join", json!({"room": "general"})).await?;
    let r = ann.call("history", json!({"room": "general", "limit": big})).await?;
    let len = serde_json::to_vec(&r)?.len();
    ensure!(code(&r) == "bad_request" && len < 512, "{len} bytes: {r}");
    let r = ann.call("send", json!({"room": "general", "client_msg_id": big, "body": "x"})).await?;
    ensure!(code(&r) == "bad_request" && serde_json::to_vec(&r)?.len() < 512, "{r}");

    let mut pre = RawConn::connect(s.addr, &s.data_dir()).await?;
    let r = pre.call("login", json!({"tenant": "acme", "user": big, "password": PW})).await?;
    ensure!(code(&r) == "bad_request", "1 MiB user name: {r}");
    let r = pre.call("login", json!({"tenant": big, "user": "ann", "password": PW})).await?;
    ensure!(code(&r) == "bad_request", "1 MiB tenant name: {r}");
    let max = (1u64 << 53) - 1;
    pre.write_frame(format!(r#"{{"id":{},"op":"ping"}}"#, max + 1).as_bytes()).await?;
    let r = within("id 2^53", pre.reply(None)).await?;
    ensure!(code(&r) == "bad_request" && r["re"].is_null(), "id 2^53: {r}");
    pre.write_frame(format!(r#"{{"id":{max},"op":"ping"}}"#).as_bytes()).await?;
    let r = within("id 2^53 - 1", pre.reply(Some(max))).await?;
    ensure!(r.get("ok").is_some(), "id 2^53 - 1: {r}");

    let mut st = pre.conn.open_uni().await?;
    let header = RawConn::frame(br#"{"upload_id":"00000000000000000000000000000000","offset":0}"#);
    st.write_all(&header).await?;
    let stopped = within("stream stopped", st.stopped()).await?;
    ensure!(stopped.map(|c| c.into_inner()) == Some(2), "stream code {stopped:?}");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    pre.ok("ping", json!({})).await?;
    ensure!(pre.events.is_empty(), "events before log-in: {:?}", pre.events);
    pre.login("acme", "ann", PW).await.context("and then logs in as usual")?;

    let errors: Vec<String> = s
        .log_text()
        .lines()
        .filter(|l| l.contains(r#""level":"ERROR""#))
        .map(str::to_owned)
        .collect();
    ensure!(errors.is_empty(), "error lines in the log: {errors:?}");
    Ok(())
}

/// 30 connections from one address send two wrong passwords each, all at
/// once: exactly the allowance (10) is checked and answered
/// `unauthorized` — attempts are counted before the check — and the other
/// 50 are `rate_limited` without an argon2 run; the right password from
/// that address is refused too, and another address logs in.
#[tokio::test]
async fn a_burst_of_wrong_passwords_is_counted_exactly() -> anyhow::Result<()> {
    const CONNS: usize = 30;
    const ALLOWED: usize = 10;
    let s = TestServer::start_with(&[
        "--idle-timeout-secs",
        "10",
        "--metrics-listen",
        "127.0.0.1:0",
        "--log-format",
        "json",
    ])
    .await?;
    s.tenant("acme", false).await?;
    s.user("acme", "ann", PW).await?;
    let metrics = metrics_addr(&s).await?;
    let checks_before = metric(metrics, "qchat_password_checks_total").await.unwrap_or(0);
    let mut conns = Vec::new();
    for _ in 0..CONNS {
        conns.push(RawConn::connect_with(s.addr, &s.data_dir(), &from(3)).await?);
    }
    let mut tasks = tokio::task::JoinSet::new();
    for mut c in conns {
        tasks.spawn(async move {
            for id in [1u64, 2] {
                let req = json!({"id": id, "op": "login", "tenant": "acme", "user": "ann",
                                 "password": format!("guess {id}")});
                c.write_frame(&serde_json::to_vec(&req)?).await?;
            }
            let mut codes = Vec::new();
            for id in [1u64, 2] {
                codes.push(code(&within("login reply", c.reply(Some(id))).await?).to_owned());
            }
            anyhow::Ok(codes)
        });
    }
    let (mut unauthorized, mut limited) = (0, 0);
    while let Some(r) = tasks.join_next().await {
        for c in r?? {
            match c.as_str() {
                "unauthorized" => unauthorized += 1,
                "rate_limited" => limited += 1,
                other => anyhow::bail!("a wrong password answered {other}"),
            }
        }
    }
    println!(
        "{} wrong passwords at once: {unauthorized} unauthorized, {limited} rate_limited",
        2 * CONNS
    );
    ensure!(
        unauthorized == ALLOWED && limited == 2 * CONNS - ALLOWED,
        "{unauthorized} / {limited}"
    );
    let checked = metric(metrics, "qchat_password_checks_total").await? - checks_before;
    ensure!(checked == ALLOWED as u64, "{checked} passwords checked");
    let mut c = RawConn::connect_with(s.addr, &s.data_dir(), &from(3)).await?;
    let r = c.call("login", json!({"tenant": "acme", "user": "ann", "password": PW})).await?;
    ensure!(code(&r) == "rate_limited", "the right password from a limited address: {r}");
    let mut other = RawConn::connect_with(s.addr, &s.data_dir(), &from(4)).await?;
    other.login("acme", "ann", PW).await.context("another address")?;
    Ok(())
}

/// The clients behind one address (a NAT) resume at once, as after the
/// node they were on went away: 32 valid tokens from one address at the
/// same moment all resume (none is held back by the others being checked).
/// Dead tokens still count: 20 at once from another address spend its
/// allowance, and then a valid token from it is refused too.
#[tokio::test]
async fn a_burst_of_resumes_from_one_address_all_pass() -> anyhow::Result<()> {
    const CONNS: usize = 32;
    let s = TestServer::start_with(&["--idle-timeout-secs", "20"]).await?;
    s.tenant("acme", false).await?;
    s.user("acme", "ann", PW).await?;
    let mut tokens = Vec::new();
    for _ in 0..CONNS + 1 {
        let mut c = RawConn::connect_with(s.addr, &s.data_dir(), &from(5)).await?;
        let ok = c.login("acme", "ann", PW).await?;
        tokens.push(ok["token"].as_str().context("token")?.to_owned());
    }
    let spare = tokens.pop().context("a spare token")?;
    let resume_all = |tokens: Vec<String>, addr: u8| {
        let mut tasks = tokio::task::JoinSet::new();
        for token in tokens {
            let (server, dir) = (s.addr, s.data_dir());
            tasks.spawn(async move {
                let mut c = RawConn::connect_with(server, &dir, &from(addr)).await?;
                let r = within("resume", c.call("resume", json!({"token": token}))).await?;
                anyhow::Ok(if r.get("ok").is_some() {
                    "ok".to_owned()
                } else {
                    code(&r).to_owned()
                })
            });
        }
        tasks
    };
    let mut tasks = resume_all(tokens, 5);
    let mut answers = Vec::new();
    while let Some(r) = tasks.join_next().await {
        answers.push(r??);
    }
    ensure!(answers.iter().all(|a| a == "ok"), "{CONNS} resumes at once: {answers:?}");

    let dead: Vec<String> = (0..20).map(|i| format!("dead-token-{i:040}")).collect();
    let mut tasks = resume_all(dead, 6);
    while let Some(r) = tasks.join_next().await {
        let a = r??;
        ensure!(a == "unauthorized" || a == "rate_limited", "a dead token answered {a}");
    }
    let mut c = RawConn::connect_with(s.addr, &s.data_dir(), &from(6)).await?;
    let r = c.call("resume", json!({"token": spare})).await?;
    ensure!(code(&r) == "rate_limited", "a valid token after 20 dead ones: {r}");
    Ok(())
}

/// A server-wide cap on password checks queued or running (here 1): log-ins
/// from many addresses at once beyond it are answered `unavailable` at
/// once, counted in `qchat_password_checks_refused_total`; the others are
/// served, and a retry later succeeds.
#[tokio::test]
async fn password_checks_are_capped_server_wide() -> anyhow::Result<()> {
    const AT_ONCE: u8 = 16;
    let s = TestServer::start_with(&[
        "--max-password-checks",
        "1",
        "--metrics-listen",
        "127.0.0.1:0",
        "--log-format",
        "json",
    ])
    .await?;
    s.tenant("acme", false).await?;
    s.user("acme", "ann", PW).await?;
    let metrics = metrics_addr(&s).await?;
    let mut refused_total = 0u64;
    let mut rounds = 0;
    // Log-ins take tens of ms each, so a burst meets the cap; on a machine
    // busy enough to spread the burst out, another round.
    while refused_total == 0 && rounds < 5 {
        rounds += 1;
        let mut conns = Vec::new();
        for i in 0..AT_ONCE {
            conns.push(RawConn::connect_with(s.addr, &s.data_dir(), &from(10 + i)).await?);
        }
        let mut tasks = tokio::task::JoinSet::new();
        for mut c in conns {
            tasks.spawn(async move {
                let r = c.call("login", json!({"tenant": "acme", "user": "ann", "password": PW}));
                let r = within("login", r).await?;
                anyhow::Ok((code(&r).to_owned(), c))
            });
        }
        let (mut ok, mut refused) = (0u64, 0u64);
        let mut retry = Vec::new();
        while let Some(r) = tasks.join_next().await {
            let (code, c) = r??;
            match code.as_str() {
                "<none>" => ok += 1,
                "unavailable" => {
                    refused += 1;
                    retry.push(c);
                }
                other => anyhow::bail!("log-in answered {other}"),
            }
        }
        ensure!(ok >= 1, "the cap lets one check through");
        refused_total += refused;
        let counted = metric(metrics, "qchat_password_checks_refused_total").await?;
        ensure!(counted == refused_total, "{counted} counted, {refused_total} refused");
        println!("round {rounds}: {ok} logged in, {refused} unavailable");
        for mut c in retry {
            c.login("acme", "ann", PW).await.context("a retry is served")?;
        }
    }
    ensure!(refused_total > 0, "no log-in met the cap in {rounds} bursts");
    Ok(())
}

/// Per-user and per-tenant room quotas (here 3 and 5): a user's fourth
/// room and the tenant's sixth are refused with `quota_exceeded`, also
/// when ten connections of one user create at once; existing names are
/// still `conflict`; the operator's `qchatd room create` is not limited;
/// another tenant is not affected; the refusals and creations are counted
/// in the metrics. With the default quotas a user's 101st room is refused.
#[tokio::test]
async fn room_creation_is_bounded_per_user_and_per_tenant() -> anyhow::Result<()> {
    let s = TestServer::start_with(&[
        "--rooms-per-user",
        "3",
        "--rooms-per-tenant",
        "5",
        "--metrics-listen",
        "127.0.0.1:0",
        "--log-format",
        "json",
    ])
    .await?;
    for t in ["acme", "beta", "gamma"] {
        s.tenant(t, false).await?;
    }
    for u in ["ann", "bob", "carol"] {
        s.user("acme", u, PW).await?;
    }
    s.user("beta", "zed", PW).await?;
    s.user("gamma", "dave", PW).await?;
    s.room("acme", "general").await?;
    let metrics = metrics_addr(&s).await?;
    let mut ann = RawConn::connect(s.addr, &s.data_dir()).await?;
    ann.login("acme", "ann", PW).await?;
    for r in ["r1", "r2", "r3"] {
        ann.ok("room.create", json!({"room": r})).await?;
    }
    let r = ann.call("room.create", json!({"room": "r4"})).await?;
    ensure!(code(&r) == "quota_exceeded", "ann's fourth room: {r}");
    ensure!(r["err"]["message"].as_str().is_some_and(|m| m.contains("one user")), "{r}");
    let r = ann.call("room.create", json!({"room": "r1"})).await?;
    ensure!(code(&r) == "conflict", "an existing name: {r}");
    let mut bob = RawConn::connect(s.addr, &s.data_dir()).await?;
    bob.login("acme", "bob", PW).await?;
    bob.ok("room.create", json!({"room": "b1"})).await?;
    let r = bob.call("room.create", json!({"room": "b2"})).await?;
    ensure!(code(&r) == "quota_exceeded", "the tenant's sixth room: {r}");
    ensure!(r["err"]["message"].as_str().is_some_and(|m| m.contains("tenant")), "{r}");
    s.room("acme", "ops").await.context("the operator is not limited")?;

    // The tenant stays usable: every room listed, joined, talked in.
    let mut carol = RawConn::connect(s.addr, &s.data_dir()).await?;
    carol.login("acme", "carol", PW).await?;
    let rooms = carol.ok("rooms", json!({})).await?;
    ensure!(
        rooms["rooms"].as_array().map(Vec::len) == Some(6) && rooms["more"] == false,
        "{rooms}"
    );
    carol.ok("room.join", json!({"room": "r1"})).await?;
    carol.ok("send", json!({"room": "r1", "client_msg_id": "c1", "body": "hi"})).await?;

    // Another tenant is not affected.
    let mut zed = RawConn::connect(s.addr, &s.data_dir()).await?;
    zed.login("beta", "zed", PW).await?;
    for r in ["r1", "r2", "r3"] {
        zed.ok("room.create", json!({"room": r})).await?;
    }

    // Ten creations at once by one user: exactly the quota gets through.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..10 {
        let mut c = RawConn::connect(s.addr, &s.data_dir()).await?;
        c.login("gamma", "dave", PW).await?;
        tasks.spawn(async move {
            let r = within("room.create", c.call("room.create", json!({"room": format!("d{i}")})));
            anyhow::Ok(code(&r.await?).to_owned())
        });
    }
    let (mut created, mut refused) = (0, 0);
    while let Some(r) = tasks.join_next().await {
        match r??.as_str() {
            "<none>" => created += 1,
            "quota_exceeded" => refused += 1,
            other => anyhow::bail!("room.create at once answered {other}"),
        }
    }
    ensure!((created, refused) == (3, 7), "{created} created, {refused} refused at once");

    let user = metric(metrics, r#"qchat_quota_refusals_total{what="room",scope="user"}"#).await?;
    let tenant =
        metric(metrics, r#"qchat_quota_refusals_total{what="room",scope="tenant"}"#).await?;
    let made = metric(metrics, r#"qchat_created_total{what="room"}"#).await?;
    ensure!(
        (user, tenant, made) == (8, 1, 10),
        "metrics: {user} user, {tenant} tenant, {made} made"
    );

    // The defaults: 100 rooms per user.
    let d = TestServer::start_with(&["--durability", "normal"]).await?;
    d.tenant("acme", false).await?;
    d.user("acme", "ann", PW).await?;
    let mut ann = RawConn::connect(d.addr, &d.data_dir()).await?;
    ann.login("acme", "ann", PW).await?;
    for i in 0..100 {
        ann.ok("room.create", json!({"room": format!("x{i}")})).await?;
    }
    let r = ann.call("room.create", json!({"room": "x100"})).await?;
    ensure!(code(&r) == "quota_exceeded", "the default quota: {r}");
    Ok(())
}

/// CPU time (user and system) a process has used, in seconds.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised name; utime and stime are the 14th
    // and 15th of the line, in clock ticks (100 per second on Linux).
    let rest = stat.rsplit(')').next().unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// Percentiles of `xs` (sorted here): min, median, 90th, max.
fn spread(xs: &mut [f64]) -> String {
    xs.sort_by(f64::total_cmp);
    let at = |q: f64| xs[((xs.len() - 1) as f64 * q).round() as usize];
    format!(
        "min {:.2} / median {:.2} / p90 {:.2} / max {:.2} s",
        at(0.0),
        at(0.5),
        at(0.9),
        at(1.0)
    )
}

/// 300 handshakes at once (from ten addresses, 30 each, so most are told
/// to Retry first), none of which logs in: every one is closed with code 3
/// `login_timeout` within the documented 10 s of its handshake, as the
/// client sees it (with a second of slack for delivering the close on a
/// busy machine; the median within 10 s). Before the fix the deadline
/// counted from when the server finished the handshake, under this burst
/// up to 2-3 s after the client had: connections were closed 10.3 to
/// 12.9 s after their handshakes (12 to 16 s in the issue's probe).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_login_deadline_holds_under_a_burst_of_handshakes() -> anyhow::Result<()> {
    const BURST: usize = 300;
    const DEADLINE: f64 = 10.0;
    let s = TestServer::start_with(&["--metrics-listen", "127.0.0.1:0", "--log-format", "json"])
        .await?;
    let metrics = metrics_addr(&s).await?;
    let pid = s.pid().context("server pid")?;
    let (cpu_before, own_before) = (cpu_secs(pid), cpu_secs(std::process::id()));
    let started = std::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..BURST {
        let (addr, dir) = (s.addr, s.data_dir());
        let opts = from(20 + (i / 30) as u8);
        tasks.spawn(async move {
            let (endpoint, conn) = qchat_tests::handshake(addr, &dir, &opts).await?;
            let shaken = started.elapsed();
            let closed =
                tokio::time::timeout(std::time::Duration::from_secs(40), conn.closed()).await;
            let held = started.elapsed() - shaken;
            drop(endpoint);
            let code = match closed {
                Ok(quinn::ConnectionError::ApplicationClosed(c)) => Some(c.error_code.into_inner()),
                _ => None,
            };
            anyhow::Ok((shaken.as_secs_f64(), held.as_secs_f64(), code))
        });
    }
    let (mut shaken, mut held, mut codes) = (Vec::new(), Vec::new(), Vec::new());
    let mut failed = Vec::new();
    while let Some(r) = tasks.join_next().await {
        match r? {
            Ok((s, h, c)) => {
                shaken.push(s);
                held.push(h);
                codes.push(c);
            }
            Err(e) => failed.push(format!("{e:#}")),
        }
    }
    ensure!(failed.is_empty(), "{} handshakes failed, e.g. {:?}", failed.len(), failed.first());
    let retries = metric(metrics, "qchat_retries_total").await?;
    println!(
        "CPU during the burst and its deadlines: server {:.2} s, the 300 clients {:.2} s",
        cpu_secs(pid) - cpu_before,
        cpu_secs(std::process::id()) - own_before
    );
    // How long the server took over each handshake, from the Initial it
    // accepted (after any Retry) to the connection (its debug log).
    let mut server_hs: Vec<f64> = s
        .log_text()
        .lines()
        .filter_map(|l| l.split("\"handshake_ms\":").nth(1))
        .filter_map(|r| {
            let digits = r.trim_start_matches('"');
            digits.split(|c: char| !c.is_ascii_digit()).next()?.parse::<f64>().ok()
        })
        .map(|ms| ms / 1000.0)
        .collect();
    if !server_hs.is_empty() {
        println!("server-side handshakes: {}", spread(&mut server_hs));
    }
    let late = held.iter().filter(|h| **h > DEADLINE).count();
    println!(
        "{BURST} handshakes ({retries} told to Retry): done after {}; closed after the handshake: {}; {late} after more than {DEADLINE} s",
        spread(&mut shaken),
        spread(&mut held)
    );
    ensure!(codes.iter().all(|c| *c == Some(3)), "not all closed with login_timeout: {codes:?}");
    // The deadline counts from the server's first packet of a connection,
    // which comes before the client's handshake ends: each close is due
    // at most 10 s after that, plus its delivery (ms, a busy machine's
    // scheduling aside: 1 s of slack).
    let worst = held.iter().copied().fold(0.0, f64::max);
    ensure!(worst <= DEADLINE + 1.0, "a connection was held {worst:.2} s after its handshake");
    let mut sorted = held.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    ensure!(median <= DEADLINE, "half the connections were held over {median:.2} s");
    Ok(())
}

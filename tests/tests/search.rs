//! Full-text search end to end (issue 18, item 4): hits come only from the
//! rooms the caller can read now (joined; not left, not another tenant's),
//! newest first, paged with a cursor exactly once; filters by room, sender,
//! time and file; file names are found; excerpts mark the words found; and
//! `qchat search` prints them.

use std::process::Stdio;

use anyhow::Context as _;
use qchat_client::{Auth, Client, ClientConfig, SearchReq, Trust};
use qchat_tests::{RawConn, TestServer, bin_path, within};
use serde_json::{Value, json};

const PW: &str = "correct horse";

async fn login(s: &TestServer, tenant: &str, user: &str) -> anyhow::Result<RawConn> {
    let mut c = RawConn::connect(s.addr, &s.data_dir()).await?;
    c.login(tenant, user, PW).await?;
    Ok(c)
}

async fn send(c: &mut RawConn, room: &str, body: &str) -> anyhow::Result<u64> {
    let id = format!("k{}", rand_id());
    let ok = c.ok("send", json!({"room": room, "client_msg_id": id, "body": body})).await?;
    ok["seq"].as_u64().context("seq")
}

fn rand_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// `(room, seq)` of every hit of one `search` reply.
fn hits(ok: &Value) -> Vec<(String, u64)> {
    ok["hits"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|h| {
            (h["room"].as_str().unwrap_or_default().to_owned(), h["seq"].as_u64().unwrap_or(0))
        })
        .collect()
}

fn at(room: &str, seq: u64) -> (String, u64) {
    (room.to_owned(), seq)
}

#[tokio::test]
async fn search_finds_only_what_the_caller_can_read_now() -> anyhow::Result<()> {
    let s = TestServer::start().await?;
    s.tenant("acme", false).await?;
    s.tenant("other", false).await?;
    for u in ["ann", "bob"] {
        s.user("acme", u, PW).await?;
    }
    s.user("other", "eve", PW).await?;
    s.room("acme", "general").await?;
    s.room("acme", "ops").await?;
    s.room("other", "general").await?;
    let mut ann = login(&s, "acme", "ann").await?;
    let mut bob = login(&s, "acme", "bob").await?;
    let mut eve = login(&s, "other", "eve").await?;
    ann.ok("room.join", json!({"room": "general"})).await?;
    ann.ok("room.join", json!({"room": "ops"})).await?;
    bob.ok("room.join", json!({"room": "general"})).await?;
    eve.ok("room.join", json!({"room": "general"})).await?;

    let g1 = send(&mut ann, "general", "Deploy on Friday?").await?;
    let g2 = send(&mut bob, "general", "no deploys on friday, ever").await?;
    let o1 = send(&mut ann, "ops", "friday deploy checklist").await?;
    send(&mut eve, "general", "friday deploy at other corp").await?;

    // Newest first, across the caller's rooms; bob is not in ops.
    let ok = ann.ok("search", json!({"query": "friday"})).await?;
    assert_eq!(hits(&ok), [at("ops", o1), at("general", g2), at("general", g1)], "{ok}");
    let ok = bob.ok("search", json!({"query": "friday"})).await?;
    assert_eq!(hits(&ok), [at("general", g2), at("general", g1)], "{ok}");
    let ok = eve.ok("search", json!({"query": "deploy*"})).await?;
    assert_eq!(hits(&ok).len(), 1, "{ok}");
    // All words must occur; a prefix; case does not matter.
    let ok = ann.ok("search", json!({"query": "DEPLOY friday"})).await?;
    assert_eq!(hits(&ok), [at("ops", o1), at("general", g1)], "{ok}");
    let ok = ann.ok("search", json!({"query": "deploy*"})).await?;
    assert_eq!(hits(&ok).len(), 3, "{ok}");
    // The excerpt marks the words found.
    let first = &ok["hits"][1];
    assert_eq!(first["excerpt"], "no deploys on friday, ever");
    assert_eq!(first["marks"], json!([[3, 10]]));
    assert_eq!((first["sender"].as_str(), first["kind"].as_str()), (Some("bob"), Some("text")));

    // Filters.
    let ok = ann.ok("search", json!({"query": "friday", "room": "general"})).await?;
    assert_eq!(hits(&ok), [at("general", g2), at("general", g1)]);
    let ok = ann.ok("search", json!({"query": "friday", "from": "bob"})).await?;
    assert_eq!(hits(&ok), [at("general", g2)]);
    let g2_ts = ok["hits"][0]["ts"].as_i64().context("ts")?;
    let ok = ann.ok("search", json!({"query": "friday", "before": g2_ts})).await?;
    assert_eq!(hits(&ok), [at("general", g1)]);
    let ok = ann.ok("search", json!({"query": "friday", "after": g2_ts})).await?;
    assert_eq!(hits(&ok), [at("ops", o1), at("general", g2)]);
    let ok = ann.ok("search", json!({"query": "friday", "has_file": true})).await?;
    assert_eq!(hits(&ok), []);

    // A room the caller sees but does not read is forbidden; another
    // tenant's does not exist.
    let r = bob.call("search", json!({"query": "friday", "room": "ops"})).await?;
    assert_eq!(r["err"]["code"], "forbidden", "{r}");
    let r = eve.call("search", json!({"query": "friday", "room": "ops"})).await?;
    assert_eq!(r["err"]["code"], "not_found", "{r}");
    for bad in [
        json!({"query": "  -*() "}),
        json!({"query": "x", "limit": 0}),
        json!({"query": "x", "limit": 101}),
        json!({"query": "x", "cursor": "nonsense"}),
        json!({"query": "x".repeat(257)}),
    ] {
        let r = ann.call("search", bad.clone()).await?;
        assert_eq!(r["err"]["code"], "bad_request", "{bad}: {r}");
    }

    // Joining makes a room's history searchable, leaving takes it away.
    bob.ok("room.join", json!({"room": "ops"})).await?;
    let ok = bob.ok("search", json!({"query": "checklist"})).await?;
    assert_eq!(hits(&ok), [at("ops", o1)]);
    bob.ok("room.leave", json!({"room": "ops"})).await?;
    let ok = bob.ok("search", json!({"query": "checklist"})).await?;
    assert_eq!(hits(&ok), []);
    bob.ok("room.leave", json!({"room": "general"})).await?;
    let ok = bob.ok("search", json!({"query": "friday"})).await?;
    assert_eq!(hits(&ok), []);
    Ok(())
}

#[tokio::test]
async fn pages_hold_every_hit_once_and_file_names_are_found() -> anyhow::Result<()> {
    let s = TestServer::start().await?;
    s.tenant("acme", false).await?;
    s.user("acme", "ann", PW).await?;
    s.room("acme", "general").await?;
    let cfg = ClientConfig::new(
        s.addr.to_string(),
        "acme",
        "ann",
        Auth::Password(PW.into()),
        Trust::Fingerprint(s.fingerprint.clone()),
    );
    let (client, _events) = within("connect", Client::connect(cfg)).await?;
    client.join_room("general").await?;
    let mut sent = Vec::new();
    for i in 0..23 {
        // Long bodies of control characters, so a page also ends by size.
        let body = format!("needle {i} {}", "\u{1}".repeat(if i % 5 == 0 { 16_000 } else { 10 }));
        sent.push(client.send("general", &body).await?.seq);
    }
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("report.bin");
    std::fs::write(&path, b"quarterly numbers")?;
    let upload = client.upload_named("general", &path, "Quarterly-Report 2026.pdf")?;
    let uploaded = within("upload", upload.wait()).await?;

    let mut req = SearchReq { query: "needle".into(), limit: Some(5), ..SearchReq::default() };
    let mut got = Vec::new();
    for _ in 0..20 {
        let page = client.search(req.clone()).await?;
        assert!(!page.hits.is_empty() && page.hits.len() <= 5, "{page:?}");
        got.extend(page.hits.iter().map(|h| h.seq));
        if !page.more {
            assert!(page.cursor.is_none());
            break;
        }
        req.cursor = page.cursor;
    }
    sent.reverse();
    assert_eq!(got, sent, "every hit once, newest first");

    let req =
        |q: &str, has_file: bool| SearchReq { query: q.into(), has_file, ..SearchReq::default() };
    let page = client.search(req("quarterly report", true)).await?;
    assert_eq!(page.hits.len(), 1, "{page:?}");
    let hit = &page.hits[0];
    assert_eq!((hit.seq, hit.kind), (uploaded.seq, qchat_client::MessageKind::File));
    assert_eq!(hit.excerpt, "Quarterly-Report 2026.pdf");
    assert_eq!(hit.marks, [[0, 9], [10, 16]]);
    assert!(client.search(req("needle", true)).await?.hits.is_empty());
    // Words only: the query's punctuation is no syntax.
    let page = client.search(req("\"2026\" OR pdf*", false)).await?;
    assert!(page.hits.is_empty(), "OR is a word here: {page:?}");
    let page = client.search(req("\"2026\" pdf*", false)).await?;
    assert_eq!(page.hits.len(), 1, "{page:?}");
    client.quit(None).await?;
    Ok(())
}

#[tokio::test]
async fn qchat_search_prints_hits() -> anyhow::Result<()> {
    let s = TestServer::start().await?;
    s.tenant("acme", false).await?;
    s.user("acme", "ann", PW).await?;
    s.room("acme", "general").await?;
    s.room("acme", "random").await?;
    let mut ann = login(&s, "acme", "ann").await?;
    ann.ok("room.join", json!({"room": "general"})).await?;
    ann.ok("room.join", json!({"room": "random"})).await?;
    send(&mut ann, "general", "the deploy went fine").await?;
    send(&mut ann, "random", "deploy the cat\u{1b}[31m").await?;
    let home = tempfile::tempdir()?;
    let qchat = |args: &[&str]| {
        let mut cmd = tokio::process::Command::new(bin_path("qchat"));
        cmd.args(["--server", &s.addr.to_string(), "--tenant", "acme", "--user", "ann"])
            .args(["--fingerprint", &s.fingerprint])
            .args(args)
            .env("QCHAT_PASSWORD", PW)
            .env("HOME", home.path())
            .stdin(Stdio::null())
            .kill_on_drop(true);
        cmd
    };
    let out = within("qchat search", qchat(&["search", "deploy"]).output()).await?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout)?;
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].starts_with("random #2 ann 20"), "{text}");
    assert!(lines[0].ends_with(": [deploy] the cat [31m"), "control characters shown: {text}");
    assert!(lines[1].ends_with(": the [deploy] went fine"), "{text}");

    let out = within(
        "qchat search --json",
        qchat(&["search", "deploy", "--room", "general", "--json"]).output(),
    )
    .await?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let hit: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!((hit["room"].as_str(), hit["seq"].as_u64()), (Some("general"), Some(2)));
    assert_eq!(hit["marks"], json!([[4, 10]]));

    let out = within(
        "qchat search --after",
        qchat(&["search", "deploy", "--after", "2999-01-01"]).output(),
    )
    .await?;
    assert!(out.status.success() && out.stdout.is_empty(), "{out:?}");
    let out = within("qchat search bad date", qchat(&["search", "x", "--before", "soon"]).output())
        .await?;
    assert!(!out.status.success());
    Ok(())
}

/// An edit's words are found at once, those it keeps included; the words
/// it took out are not. (Before migration 0012 the kept words could vanish
/// from the index: the new body went in before the old one came out.)
#[tokio::test]
async fn an_edit_is_found_by_its_kept_and_new_words() -> anyhow::Result<()> {
    let s = TestServer::start().await?;
    s.tenant("acme", false).await?;
    s.user("acme", "ann", PW).await?;
    s.room("acme", "general").await?;
    let mut ann = login(&s, "acme", "ann").await?;
    ann.ok("room.join", json!({"room": "general"})).await?;
    let seq = send(&mut ann, "general", "lunch at noon").await?;
    // Other messages around it, so that the index has merged segments.
    for i in 0..40 {
        send(&mut ann, "general", &format!("filler {i}")).await?;
    }
    for (i, when) in ["one", "two", "three"].into_iter().enumerate() {
        let edit = json!({"room": "general", "seq": seq, "body": format!("lunch at {when}")});
        ann.ok("message.edit", edit).await?;
        send(&mut ann, "general", &format!("after edit {i}")).await?;
        for (word, found) in [("lunch", true), (when, true), ("noon", false)] {
            let ok = ann.ok("search", json!({"query": word})).await?;
            let want = if found { vec![at("general", seq)] } else { vec![] };
            assert_eq!(hits(&ok), want, "search {word} after the edit to {when}: {ok}");
        }
    }
    Ok(())
}

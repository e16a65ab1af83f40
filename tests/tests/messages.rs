//! Edits, deletions, reactions, replies and threads end to end (issue 18),
//! against a real qchatd on 127.0.0.1 with two and three users:
//!
//! * each change reaches the other members live, as a `system` message with
//!   its own seq, and a member who was away gets every one of them exactly
//!   once, in order, from `sync` after reconnecting;
//! * history shows the current body with its `edited` time, reactions with
//!   their counts and the caller's own, replies with their parent's
//!   excerpt, and a deleted message as a tombstone whose replies stay
//!   readable;
//! * only the sender edits; the sender or a moderator deletes;
//! * a deleted body is gone from the database file and its WAL, and a
//!   deleted file message's content from the disk.

use anyhow::{Context as _, ensure};
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

async fn send(
    c: &mut RawConn,
    key: &str,
    body: &str,
    reply_to: Option<u64>,
) -> anyhow::Result<u64> {
    let mut fields = json!({"room": "general", "client_msg_id": key, "body": body});
    if let Some(p) = reply_to {
        fields["reply_to"] = json!(p);
    }
    c.ok("send", fields).await?["seq"].as_u64().context("seq")
}

/// The `message` events with seq above `after` that reach `c`, until one
/// with seq `until` (kept aside events first).
async fn messages_until(c: &mut RawConn, until: u64) -> anyhow::Result<Vec<Value>> {
    let mut out = Vec::new();
    loop {
        let ev = within("event", c.event()).await?;
        if ev["ev"] == "message" {
            let seq = ev["seq"].as_u64().context("seq")?;
            out.push(ev);
            if seq >= until {
                return Ok(out);
            }
        }
    }
}

/// Every message of the room from `after` on, by `sync`, all pages.
async fn sync_all(c: &mut RawConn, after: u64) -> anyhow::Result<Vec<Value>> {
    let mut out: Vec<Value> = Vec::new();
    let mut from = after;
    for _ in 0..100 {
        let page = c.ok("sync", json!({"room": "general", "after_seq": from, "limit": 3})).await?;
        let msgs = page["messages"].as_array().context("messages")?.clone();
        if let Some(last) = msgs.last() {
            from = last["seq"].as_u64().context("seq")?;
        }
        out.extend(msgs);
        if page["more"] != true {
            return Ok(out);
        }
    }
    anyhow::bail!("sync never ended")
}

fn by_seq(history: &Value, seq: u64) -> Value {
    history["messages"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["seq"] == seq))
        .cloned()
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn edits_reactions_replies_and_deletes_reach_everyone_once() -> anyhow::Result<()> {
    let s = server().await?;
    let mut ann = login(&s, "ann").await?;
    ann.ok("room.create", json!({"room": "general"})).await?;
    let mut bob = login(&s, "bob").await?;
    let mut carol = login(&s, "carol").await?;
    bob.ok("room.join", json!({"room": "general"})).await?;
    carol.ok("room.join", json!({"room": "general"})).await?;
    let first = send(&mut ann, "a1", "first draft", None).await?;
    // Carol goes away and misses everything that follows.
    let carol_had = first;
    carol.ok("quit", json!({})).await?;
    drop(carol);
    bob.events.clear();

    // An edit: its own seq, heard live.
    let edit = ann.ok("message.edit", json!({"room": "general", "seq": first, "body": "final"}));
    let edit = edit.await?["seq"].as_u64().context("edit seq")?;
    assert_eq!(edit, first + 1, "an edit takes the next seq of the room");
    let heard = messages_until(&mut bob, edit).await?;
    let ev = heard.last().context("edit event")?;
    assert_eq!(ev["kind"], "system");
    assert_eq!(ev["change"], json!({"type": "edited", "by": "ann", "seq": first, "body": "final"}));
    assert_eq!(ev["body"], format!("ann edited message {first}"));
    let same = ann.ok("message.edit", json!({"room": "general", "seq": first, "body": "final"}));
    assert_eq!(same.await?, json!({}), "the same text again changes nothing");

    // Only the sender edits; only the sender or a moderator deletes.
    let r =
        bob.call("message.edit", json!({"room": "general", "seq": first, "body": "mine"})).await?;
    assert_eq!(r["err"]["code"], "forbidden", "{r}");
    let r = bob.call("message.delete", json!({"room": "general", "seq": first})).await?;
    assert_eq!(r["err"]["code"], "forbidden", "{r}");
    for seq in [edit, 999] {
        let r = bob.call("message.react", json!({"room": "general", "seq": seq, "emoji": "x"}));
        let r = r.await?;
        assert_eq!(r["err"]["code"], "not_found", "system messages and missing ones: {r}");
    }
    let r = bob.call("message.react", json!({"room": "general", "seq": first, "emoji": "a b"}));
    assert_eq!(r.await?["err"]["code"], "bad_request");

    // Reactions: one per user and emoji.
    let react = |emoji: &str, remove: bool| json!({"room": "general", "seq": first, "emoji": emoji, "remove": remove});
    let r1 = bob.ok("message.react", react("👍", false)).await?["seq"].as_u64();
    let r2 = ann.ok("message.react", react("👍", false)).await?["seq"].as_u64();
    let r3 = bob.ok("message.react", react("🎉", false)).await?["seq"].as_u64();
    assert_eq!(bob.ok("message.react", react("👍", false)).await?, json!({}), "once per user");
    let (r1, r2, r3) = (r1.context("r1")?, r2.context("r2")?, r3.context("r3")?);
    assert!(edit < r1 && r1 < r2 && r2 < r3);

    // A reply carries its parent's seq, sender and excerpt, live too.
    let reply = send(&mut bob, "b1", "agreed", Some(first)).await?;
    let heard = messages_until(&mut ann, reply).await?;
    let ev = heard.last().context("reply event")?;
    assert_eq!(ev["reply_to"], json!({"seq": first, "sender": "ann", "excerpt": "final"}));
    let r = bob.call(
        "send",
        json!({"room": "general", "client_msg_id": "b2", "body": "?", "reply_to": 999}),
    );
    assert_eq!(r.await?["err"]["code"], "not_found", "a reply to nothing");
    let unreact =
        ann.ok("message.react", react("👍", true)).await?["seq"].as_u64().context("un")?;

    let h = bob.ok("history", json!({"room": "general"})).await?;
    let m = by_seq(&h, first);
    assert_eq!(m["body"], "final");
    assert!(m["edited"].as_i64().is_some_and(|t| t >= m["ts"].as_i64().unwrap_or(i64::MAX)));
    assert_eq!(
        m["reactions"],
        json!([{"emoji": "👍", "count": 1, "me": true}, {"emoji": "🎉", "count": 1, "me": true}])
    );
    assert_eq!(m["replies"], 1);
    let h = ann.ok("history", json!({"room": "general"})).await?;
    assert_eq!(by_seq(&h, first)["reactions"][0], json!({"emoji": "👍", "count": 1, "me": false}));
    assert_eq!(by_seq(&h, reply)["reply_to"]["excerpt"], "final");

    // The thread: the message and its replies.
    let t = ann.ok("thread", json!({"room": "general", "seq": first})).await?;
    assert_eq!(t["message"]["body"], "final");
    let replies: Vec<u64> = t["messages"]
        .as_array()
        .context("replies")?
        .iter()
        .filter_map(|m| m["seq"].as_u64())
        .collect();
    assert_eq!((replies, &t["more"]), (vec![reply], &json!(false)));

    // The sender deletes it: a tombstone; the reply stays readable.
    let del = ann.ok("message.delete", json!({"room": "general", "seq": first})).await?;
    let del = del["seq"].as_u64().context("delete seq")?;
    let heard = messages_until(&mut bob, del).await?;
    assert_eq!(
        heard.last().context("delete event")?["change"],
        json!({"type": "deleted", "by": "ann", "seq": first})
    );
    let h = bob.ok("history", json!({"room": "general"})).await?;
    let m = by_seq(&h, first);
    assert_eq!((&m["body"], &m["deleted"]["by"]), (&json!(""), &json!("ann")), "{m}");
    assert!(m.get("reactions").is_none() && m.get("edited").is_none(), "{m}");
    let r = by_seq(&h, reply);
    assert_eq!((&r["body"], &r["reply_to"]["deleted"]), (&json!("agreed"), &json!(true)), "{r}");
    assert!(!h.to_string().contains("final"), "the deleted text is nowhere: {h}");
    let r = ann.call("message.delete", json!({"room": "general", "seq": first})).await?;
    assert_eq!(r["err"]["code"], "not_found", "deleted already");
    let t = ann.ok("thread", json!({"room": "general", "seq": first})).await?;
    assert_eq!(t["messages"][0]["body"], "agreed", "a deleted parent's thread stays");

    // Carol comes back: sync brings each change once, in order, and the
    // edit's text no more (its message is deleted).
    let mut carol = login(&s, "carol").await?;
    let got = sync_all(&mut carol, carol_had).await?;
    let seqs: Vec<u64> = got.iter().filter_map(|m| m["seq"].as_u64()).collect();
    let want: Vec<u64> = (carol_had + 1..=del).collect();
    assert_eq!(seqs, want, "every change once, gap-free, in order");
    let kinds: Vec<&str> =
        got.iter().map(|m| m["change"]["type"].as_str().unwrap_or("text")).collect();
    assert_eq!(
        kinds,
        ["edited", "reacted", "reacted", "reacted", "text", "unreacted", "deleted"],
        "{got:?}"
    );
    assert_eq!(got[0]["change"], json!({"type": "edited", "by": "ann", "seq": first}));
    assert_eq!(got[5]["change"]["emoji"], "👍");
    assert!(seqs.contains(&unreact));
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

async fn upload(c: &mut RawConn, name: &str, bytes: &[u8]) -> anyhow::Result<(u64, u64)> {
    let hash = blake3::hash(bytes).to_hex().to_string();
    let begin = json!({"room": "general", "name": name, "size": bytes.len(), "hash": hash});
    let ok = c.ok("upload.begin", begin).await?;
    let id = ok["upload_id"].as_str().context("upload id")?.to_owned();
    let mut st = c.conn.open_uni().await?;
    st.write_all(&RawConn::frame(format!(r#"{{"upload_id":"{id}","offset":0}}"#).as_bytes()))
        .await?;
    st.write_all(bytes).await?;
    st.finish()?;
    let done = within("upload done", async {
        loop {
            if let Some(i) = c.events.iter().position(|v| v["upload_id"] == id) {
                return Ok::<_, anyhow::Error>(c.events.remove(i));
            }
            let v = c.read().await?;
            if v.get("ev").is_some() {
                c.events.push(v);
            }
        }
    })
    .await?;
    ensure!(done["ev"] == "upload.done", "{done}");
    Ok((done["file"]["id"].as_u64().context("file")?, done["seq"].as_u64().context("seq")?))
}

#[tokio::test]
async fn a_deleted_message_leaves_no_trace_on_disk() -> anyhow::Result<()> {
    let s = server().await?;
    let mut ann = login(&s, "ann").await?;
    ann.ok("room.create", json!({"room": "general"})).await?;
    let mut bob = login(&s, "bob").await?;
    bob.ok("room.join", json!({"room": "general"})).await?;
    let mut dave = login(&s, "dave").await?;
    dave.ok("room.join", json!({"room": "general"})).await?;
    send(&mut ann, "k", "keep-me-qz7", None).await?;
    let secret = send(&mut bob, "s", "erase-me-qz7-first", None).await?;
    bob.ok(
        "message.edit",
        json!({"room": "general", "seq": secret, "body": "erase-me-qz7-edited"}),
    )
    .await?;
    let other = send(&mut bob, "o", "erase-me-qz7-other", None).await?;
    let content = b"only-here-qz7".repeat(200);
    let (file, file_seq) = upload(&mut bob, "only-qz7.bin", &content).await?;
    let store = s.data_dir().join("files");
    let hash = blake3::hash(&content).to_hex().to_string();
    let on_disk = || files_under(&store).iter().any(|p| p.ends_with(&hash));
    assert!(on_disk());

    // A member may not delete another's message; the owner may.
    let r = dave.call("message.delete", json!({"room": "general", "seq": other})).await?;
    assert_eq!(r["err"]["code"], "forbidden", "{r}");
    let del = ann.ok("message.delete", json!({"room": "general", "seq": other})).await?;
    ensure!(del["seq"].as_u64().is_some(), "{del}");
    bob.ok("message.delete", json!({"room": "general", "seq": secret})).await?;
    bob.ok("message.delete", json!({"room": "general", "seq": file_seq})).await?;
    let h = dave.ok("history", json!({"room": "general"})).await?;
    let moderated = h["messages"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["change"]["type"] == "deleted"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        moderated["change"],
        json!({"type": "deleted", "by": "ann", "seq": other, "user": "bob"})
    );
    assert_eq!(moderated["body"], format!("ann deleted message {other} by bob"));
    assert!(by_seq(&h, file_seq).get("file").is_none(), "the offer is gone");
    let r = dave.call("file.get", json!({"file_id": file})).await?;
    assert_eq!(r["err"]["code"], "not_found", "{r}");
    assert!(!on_disk(), "content no other offer references is removed");
    // Search forgets deleted and edited-away text at once.
    for query in ["erase", "only", "first", "keep"] {
        let found = dave.ok("search", json!({"query": query})).await?;
        let hits = found["hits"].as_array().map_or(0, Vec::len);
        assert_eq!(hits, usize::from(query == "keep"), "search {query}: {found}");
    }

    if let Some(url) = s.database_url() {
        use sqlx::Connection as _;
        let mut c = sqlx::PgConnection::connect(url).await?;
        let left: i64 = sqlx::query_scalar(
            "select count(*) from messages where body like '%qz7%' and body <> 'keep-me-qz7'
                 or change like '%erase-me%'",
        )
        .fetch_one(&mut c)
        .await?;
        ensure!(left == 0, "{left} rows still hold a deleted text");
        c.close().await?;
    } else {
        // SQLite, the server running: the deletion checkpointed the WAL,
        // and secure_delete overwrote the old cells.
        let mut db = Vec::new();
        for name in ["qchat.db", "qchat.db-wal"] {
            if let Ok(bytes) = std::fs::read(s.data_dir().join(name)) {
                db.extend(bytes);
            }
        }
        let holds = |needle: &[u8]| db.windows(needle.len()).any(|w| w == needle);
        assert!(holds(b"keep-me-qz7"), "the kept message is there");
        for gone in
            ["erase-me-qz7-first", "erase-me-qz7-edited", "erase-me-qz7-other", "only-qz7.bin"]
        {
            assert!(!holds(gone.as_bytes()), "{gone} is still in the database files");
        }
    }
    Ok(())
}

#[tokio::test]
async fn threads_page_and_strangers_learn_nothing() -> anyhow::Result<()> {
    let s = server().await?;
    let mut ann = login(&s, "ann").await?;
    ann.ok("room.create", json!({"room": "general", "private": true})).await?;
    let root = send(&mut ann, "r", "root", None).await?;
    let mut replies = Vec::new();
    for i in 0..7 {
        replies.push(send(&mut ann, &format!("r{i}"), &format!("reply {i}"), Some(root)).await?);
        send(&mut ann, &format!("x{i}"), "noise", None).await?;
    }
    let mut got = Vec::new();
    let mut after = None;
    for _ in 0..10 {
        let mut req = json!({"room": "general", "seq": root, "limit": 3});
        if let Some(a) = after {
            req["after_seq"] = json!(a);
        }
        let page = ann.ok("thread", req).await?;
        assert_eq!(page["message"]["seq"], root);
        assert_eq!(page["message"]["replies"], 7);
        let seqs: Vec<u64> = page["messages"]
            .as_array()
            .context("replies")?
            .iter()
            .filter_map(|m| m["seq"].as_u64())
            .collect();
        after = seqs.last().copied();
        got.extend(seqs);
        if page["more"] != true {
            break;
        }
    }
    assert_eq!(got, replies, "every reply once, in order, across pages");

    // Bob cannot see the private room: every message op answers as for a
    // room never created.
    let mut bob = login(&s, "bob").await?;
    for (op, fields) in [
        ("thread", json!({"room": "general", "seq": root})),
        ("message.edit", json!({"room": "general", "seq": root, "body": "x"})),
        ("message.delete", json!({"room": "general", "seq": root})),
        ("message.react", json!({"room": "general", "seq": root, "emoji": "x"})),
        ("send", json!({"room": "general", "client_msg_id": "b", "body": "x", "reply_to": root})),
    ] {
        let r = bob.call(op, fields).await?;
        assert_eq!(r["err"]["message"], "no room named general", "{op}: {r}");
    }
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

#[tokio::test]
async fn the_cli_edits_reacts_replies_shows_threads_and_deletes() -> anyhow::Result<()> {
    let s = server().await?;
    s.room("acme", "general").await?;
    let home = tempfile::tempdir()?;
    let run = |user: &'static str, args: Vec<String>| {
        let (s, home) = (&s, home.path().to_path_buf());
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let (ok, out, err) = qchat(s, &home, user, &args).await?;
            ensure!(ok, "qchat {args:?} failed: {err}");
            Ok::<_, anyhow::Error>(out.trim().to_owned())
        }
    };
    let a = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let seq = run("ann", a(&["send", "general", "first draft"])).await?;
    let edit = run("ann", a(&["edit", "general", &seq, "the plan"])).await?;
    ensure!(edit.parse::<u64>().is_ok(), "edit prints a seq: {edit}");
    run("bob", a(&["join", "general"])).await?;
    run("bob", a(&["react", "general", &seq, "👍"])).await?;
    let reply = run("bob", a(&["reply", "general", &seq, "agreed"])).await?;
    let thread = run("ann", a(&["thread", "general", &seq])).await?;
    assert_eq!(
        thread,
        format!(
            "#{seq} ann: the plan (edited)  [👍 1]  (1 reply)\n\
             #{reply} bob [re #{seq} ann: the plan]: agreed"
        )
    );
    let history = run("bob", a(&["history", "general"])).await?;
    assert!(history.contains(&format!("#{seq} ann: the plan (edited)  [*👍 1]")), "{history}");
    let (ok, _, err) = qchat(&s, home.path(), "bob", &["delete", "general", &seq]).await?;
    assert!(!ok && err.contains("forbidden"), "bob may not: {err}");
    run("bob", a(&["react", "general", &seq, "👍", "--remove"])).await?;
    run("ann", a(&["delete", "general", &seq])).await?;
    let history = run("bob", a(&["history", "general"])).await?;
    assert!(history.contains(&format!("#{seq} ann: (deleted by ann)")), "{history}");
    assert!(history.contains(&format!("bob [re #{seq} (deleted)]: agreed")), "{history}");
    assert!(!history.contains("the plan (edited)"), "{history}");
    Ok(())
}

/// The next event of kind `ev` on `c` within a second, or `None`.
async fn next_event(c: &mut RawConn, ev: &str) -> Option<Value> {
    let wait = async {
        loop {
            match c.event().await {
                Ok(v) if v["ev"] == ev => return Some(v),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(1), wait).await.ok().flatten()
}

#[tokio::test]
async fn read_markers_follow_on_other_devices_and_typing_reaches_members_only() -> anyhow::Result<()>
{
    let s = server().await?;
    let mut ann = login(&s, "ann").await?;
    ann.ok("room.create", json!({"room": "general"})).await?;
    let mut bob = login(&s, "bob").await?;
    bob.ok("room.join", json!({"room": "general"})).await?;
    let mut bob2 = login(&s, "bob").await?;
    let mut carol = login(&s, "carol").await?;
    let last = send(&mut ann, "a1", "hello", None).await?;

    // Bob reads on one device: the other hears where the marker went.
    bob.ok("read", json!({"room": "general", "seq": last})).await?;
    let ev = next_event(&mut bob2, "read").await.context("read event on bob's other device")?;
    assert_eq!((&ev["room"], &ev["seq"]), (&json!("general"), &json!(last)));
    assert!(ev["room_id"].as_str().is_some_and(|id| id.starts_with('+')));
    let rooms = bob2.ok("rooms", json!({})).await?;
    assert_eq!(rooms["rooms"][0]["unread"], 0, "{rooms}");
    assert!(next_event(&mut bob, "read").await.is_none(), "not to the asking connection");
    // A marker that does not move says nothing.
    bob.ok("read", json!({"room": "general", "seq": 1})).await?;
    assert!(next_event(&mut bob2, "read").await.is_none(), "nothing moved");

    // Typing: to the other members, not to the typer's devices, not to a
    // stranger; repeated at once, relayed once.
    bob.ok("typing", json!({"room": "general"})).await?;
    let ev = next_event(&mut ann, "typing").await.context("typing reaches ann")?;
    assert_eq!((&ev["user"], &ev["room"]), (&json!("bob"), &json!("general")));
    bob.ok("typing", json!({"room": "general"})).await?;
    assert!(next_event(&mut ann, "typing").await.is_none(), "rate-limited");
    assert!(next_event(&mut bob2, "typing").await.is_none(), "not to the typer");
    assert!(next_event(&mut carol, "typing").await.is_none(), "not to a non-member");
    let r = carol.call("typing", json!({"room": "general"})).await?;
    assert_eq!(r["err"]["code"], "forbidden", "a non-member may not: {r}");
    // Nothing was stored: the room's last message is still ann's.
    let h = ann.ok("history", json!({"room": "general", "limit": 1})).await?;
    assert_eq!(h["messages"][0]["seq"], last);
    Ok(())
}

/// The README's walk-through of a reply, a thread, a mention and search,
/// command by command: Ann follows the room, Bob says hello and answers
/// himself with a mention of Ann, who finds it counted in `qchat rooms`.
#[tokio::test]
async fn the_cli_walk_through_of_a_reply_and_search() -> anyhow::Result<()> {
    let s = server().await?;
    s.room("acme", "general").await?;
    let home = tempfile::tempdir()?;
    let ok = async |user: &str, args: &[&str]| -> anyhow::Result<String> {
        let (ok, out, err) = qchat(&s, home.path(), user, args).await?;
        ensure!(ok, "qchat {args:?} as {user}: {err}");
        Ok(out)
    };
    // Ann follows the room (`tail` joins it first): seq 1 is her join.
    ok("ann", &["join", "general"]).await?;
    assert_eq!(ok("bob", &["send", "general", "hello ann"]).await?, "3\n", "after bob joined");
    assert_eq!(ok("bob", &["reply", "general", "3", "@ann lunch at noon?"]).await?, "4\n");
    let thread = ok("bob", &["thread", "general", "3"]).await?;
    assert_eq!(
        thread,
        "#3 bob: hello ann  (1 reply)\n#4 bob [re #3 bob: hello ann]: @ann lunch at noon?\n"
    );
    let found = ok("bob", &["search", "hello", "--from", "bob", "--after", "2026-01-01"]).await?;
    let lines: Vec<&str> = found.lines().collect();
    ensure!(lines.len() == 1, "one hit: {found}");
    ensure!(lines[0].starts_with("general #3 bob "), "{found}");
    ensure!(lines[0].ends_with(": [hello] ann"), "{found}");
    let rooms = ok("ann", &["rooms"]).await?;
    assert_eq!(rooms, "general joined 2 @1 public member\n", "bob's two, one for ann");
    Ok(())
}

//! End-to-end chat through the real client library and the real `qchat`
//! binary against a real qchatd on 127.0.0.1: delivery to every member in
//! order exactly once, reconnect with catch-up, fan-out to 50 clients, and two
//! CLI processes talking (the README walk-through).

use std::collections::{BTreeMap, HashSet};
use std::process::Stdio;

use qchat_client::{
    Auth, Client, ClientConfig, ClientEvent, ConnState, Events, Message, MessageKind, Trust,
};
use qchat_tests::{TestServer, bin_path, within};
use tokio::io::{AsyncBufReadExt as _, BufReader};

const PW: &str = "correct horse";

fn config(s: &TestServer, tenant: &str, user: &str) -> ClientConfig {
    ClientConfig::new(
        s.addr.to_string(),
        tenant,
        user,
        Auth::Password(PW.into()),
        Trust::Fingerprint(s.fingerprint.clone()),
    )
}

async fn connect(s: &TestServer, user: &str) -> anyhow::Result<(Client, Events)> {
    let (c, ev) = within("connect", Client::connect(config(s, "acme", user))).await?;
    c.join_room("general").await?;
    Ok((c, ev))
}

/// Collects message events until `want` users' messages have arrived,
/// asserting each message (the rooms' `system` ones, such as "bob joined",
/// included) arrives once and in ascending order; returns the users'.
async fn collect(events: &mut Events, want: usize) -> anyhow::Result<Vec<Message>> {
    let mut got: Vec<Message> = Vec::new();
    let mut last = 0;
    while got.len() < want {
        match events.recv().await {
            Some(ClientEvent::Message(m)) => {
                assert!(m.seq > last, "seq {} after {last}: out of order or repeated", m.seq);
                last = m.seq;
                if m.kind != MessageKind::System {
                    got.push(m);
                }
            }
            Some(_) => {}
            None => anyhow::bail!("event stream ended after {} messages", got.len()),
        }
    }
    Ok(got)
}

#[tokio::test]
async fn every_message_reaches_every_member_in_order_exactly_once() -> anyhow::Result<()> {
    let s = TestServer::start().await?;
    s.tenant("acme", false).await?;
    for u in ["ann", "bob", "cat"] {
        s.user("acme", u, PW).await?;
    }
    s.room("acme", "general").await?;
    let mut clients = Vec::new();
    for u in ["ann", "bob", "cat"] {
        clients.push(connect(&s, u).await?);
    }
    // Everyone sends 20 messages at once.
    let mut sends = tokio::task::JoinSet::new();
    for (c, _) in &clients {
        let c = c.clone();
        sends.spawn(async move {
            for i in 0..20 {
                c.send("general", &format!("{} says {i}", c.user())).await?;
            }
            Ok::<_, anyhow::Error>(())
        });
    }
    while let Some(r) = within("sends", sends.join_next()).await {
        r??;
    }
    let mut views = Vec::new();
    for (_, events) in &mut clients {
        views.push(within("all 60 messages", collect(events, 60)).await?);
    }
    let expected: HashSet<String> = ["ann", "bob", "cat"]
        .iter()
        .flat_map(|u| (0..20).map(move |i| format!("{u} says {i}")))
        .collect();
    for view in &views {
        // After the three "joined" messages.
        let seqs: Vec<u64> = view.iter().map(|m| m.seq).collect();
        assert_eq!(seqs, (4..=63).collect::<Vec<u64>>(), "gap-free, ordered, once");
        let bodies: HashSet<String> = view.iter().map(|m| m.body.clone()).collect();
        assert_eq!(bodies, expected);
        // Each sender's own messages keep the order they were sent in.
        let mut per_sender: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for m in view {
            let i = m.body.rsplit(' ').next().and_then(|n| n.parse().ok()).unwrap_or(usize::MAX);
            per_sender.entry(m.sender.as_str()).or_default().push(i);
        }
        for (sender, idx) in per_sender {
            assert_eq!(idx, (0..20).collect::<Vec<_>>(), "{sender}'s order");
        }
    }
    assert_eq!(views[0], views[1]);
    assert_eq!(views[1], views[2]);
    Ok(())
}

#[tokio::test]
async fn a_client_that_drops_gets_everything_it_missed_through_sync() -> anyhow::Result<()> {
    let s = TestServer::start().await?;
    s.tenant("acme", false).await?;
    s.user("acme", "ann", PW).await?;
    s.user("acme", "bob", PW).await?;
    s.room("acme", "general").await?;
    let (ann, _ann_events) = connect(&s, "ann").await?;
    let (bob, mut bob_events) = connect(&s, "bob").await?;
    ann.send("general", "before").await?;
    assert_eq!(within("first", collect(&mut bob_events, 1)).await?[0].body, "before");

    // Bob's connection drops; Ann keeps talking while he is away.
    bob.force_disconnect();
    within("bob notices", async {
        loop {
            match bob_events.recv().await {
                Some(ClientEvent::State(ConnState::Reconnecting { .. })) => return,
                Some(_) => {}
                None => panic!("events ended"),
            }
        }
    })
    .await;
    for i in 0..30 {
        ann.send("general", &format!("while away {i}")).await?;
    }
    // Bob also sent while disconnected: his outbox delivers it exactly once.
    let bob_send = tokio::spawn({
        let bob = bob.clone();
        async move { bob.send("general", "queued while offline").await }
    });
    let missed = within("catch-up", collect(&mut bob_events, 31)).await?;
    // After "ann joined", "bob joined" and "before".
    let seqs: Vec<u64> = missed.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, (4..=34).collect::<Vec<u64>>());
    let ann_bodies: Vec<&str> =
        missed.iter().filter(|m| m.sender == "ann").map(|m| m.body.as_str()).collect();
    let want: Vec<String> = (0..30).map(|i| format!("while away {i}")).collect();
    assert_eq!(ann_bodies, want.iter().map(String::as_str).collect::<Vec<_>>());
    let sent = within("queued send acked", bob_send).await??;
    assert_eq!(sent.seq, missed.iter().find(|m| m.sender == "bob").map_or(0, |m| m.seq));
    assert_eq!(bob.pending_sends(), 0);
    let history = ann.history("general", None, Some(100)).await?;
    let texts = history.messages.iter().filter(|m| m.kind == MessageKind::Text).count();
    assert_eq!((history.messages.len(), texts), (34, 32), "nothing duplicated in storage");
    Ok(())
}

#[tokio::test]
async fn fifty_clients_in_one_room_all_receive_all_messages() -> anyhow::Result<()> {
    const N: usize = 50;
    const SENDERS: usize = 5;
    const EACH: usize = 10;
    // All test clients come from 127.0.0.1: lift the per-address cap (32 by
    // default) that protects a public host.
    let s =
        TestServer::start_with(&["--idle-timeout-secs", "4", "--max-connections-per-ip", "100"])
            .await?;
    s.tenant("acme", true).await?;
    s.room("acme", "general").await?;
    let mut clients = Vec::new();
    for i in 0..N {
        let mut cfg = config(&s, "acme", &format!("user{i:02}"));
        cfg.register = true;
        let (c, ev) = within("register", Client::connect(cfg)).await?;
        c.join_room("general").await?;
        clients.push((c, ev));
    }
    let mut sends = tokio::task::JoinSet::new();
    for (c, _) in clients.iter().take(SENDERS) {
        let c = c.clone();
        sends.spawn(async move {
            for i in 0..EACH {
                c.send("general", &format!("{}:{i}", c.user())).await?;
            }
            Ok::<_, anyhow::Error>(())
        });
    }
    while let Some(r) = within("sends", sends.join_next()).await {
        r??;
    }
    let mut receivers = tokio::task::JoinSet::new();
    for (client, mut events) in clients {
        receivers.spawn(async move {
            // The client lives as long as its receiver.
            let _client = client;
            collect(&mut events, SENDERS * EACH).await
        });
    }
    let mut done = 0;
    while let Some(r) = within("fan-out to 50", receivers.join_next()).await {
        let view = r??;
        // After the N "joined" messages.
        let seqs: Vec<u64> = view.iter().map(|m| m.seq).collect();
        let first = N as u64 + 1;
        assert_eq!(seqs, (first..first + (SENDERS * EACH) as u64).collect::<Vec<_>>());
        done += 1;
    }
    assert_eq!(done, N);
    Ok(())
}

#[tokio::test]
async fn two_cli_processes_exchange_messages() -> anyhow::Result<()> {
    let s = TestServer::start().await?;
    s.tenant("acme", false).await?;
    s.user("acme", "ann", PW).await?;
    s.user("acme", "bob", "battery staple").await?;
    s.room("acme", "general").await?;
    let home = tempfile::tempdir()?;
    let known_hosts = home.path().join("known_hosts");
    let qchat = |user: &str, password: &str| {
        let mut cmd = tokio::process::Command::new(bin_path("qchat"));
        cmd.args(["--server", &s.addr.to_string(), "--tenant", "acme", "--user", user])
            .arg("--known-hosts")
            .arg(&known_hosts)
            .env("QCHAT_PASSWORD", password)
            .env("HOME", home.path())
            .stdin(Stdio::null())
            .kill_on_drop(true);
        cmd
    };
    // Trust on first use, recorded in the known-hosts file.
    let rooms = qchat("ann", PW).args(["--accept-new", "rooms"]).output().await?;
    assert!(rooms.status.success(), "{}", String::from_utf8_lossy(&rooms.stderr));
    let recorded = std::fs::read_to_string(&known_hosts)?;
    assert!(recorded.contains(&s.fingerprint), "{recorded}");

    // Bob is in the room before ann's tail starts, so the tail sees one
    // system message, its own "ann joined", then bob's three.
    let join = qchat("bob", "battery staple").args(["join", "general"]).output().await?;
    assert!(join.status.success(), "{}", String::from_utf8_lossy(&join.stderr));
    let mut tail = qchat("ann", PW)
        .args(["tail", "general", "--json", "--count", "4"])
        .stdout(Stdio::piped())
        .spawn()?;
    let mut lines =
        BufReader::new(tail.stdout.take().ok_or_else(|| anyhow::anyhow!("stdout"))?).lines();
    // Wait until ann is online before bob talks, so tail sees the messages live.
    within("ann online", async {
        loop {
            let who = qchat("bob", "battery staple").args(["who", "general"]).output().await?;
            if String::from_utf8_lossy(&who.stdout).contains("ann online") {
                return Ok::<_, anyhow::Error>(());
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })
    .await?;
    for text in ["hello ann", "how are you?", "日本語も 🎉"] {
        let out = qchat("bob", "battery staple").args(["send", "general", text]).output().await?;
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let mut got = Vec::new();
    while let Some(line) = within("tail output", lines.next_line()).await? {
        let m: Message = serde_json::from_str(&line)?;
        got.push((m.sender, m.body));
    }
    let status = within("tail exits", tail.wait()).await?;
    assert!(status.success());
    // The room's system messages are part of what tail shows.
    assert_eq!(
        got,
        vec![
            ("ann".to_owned(), "ann joined".to_owned()),
            ("bob".to_owned(), "hello ann".to_owned()),
            ("bob".to_owned(), "how are you?".to_owned()),
            ("bob".to_owned(), "日本語も 🎉".to_owned()),
        ]
    );
    let history = qchat("ann", PW).args(["history", "general", "--limit", "2"]).output().await?;
    let text = String::from_utf8_lossy(&history.stdout);
    assert!(
        text.contains("how are you?")
            && text.contains("日本語も 🎉")
            && !text.contains("hello ann"),
        "{text}"
    );
    // Failures are one line and a non-zero exit.
    let bad = qchat("ann", "wrong password").args(["rooms"]).output().await?;
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("qchat: "), "{err}");
    Ok(())
}

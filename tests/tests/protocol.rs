//! End-to-end tests of qchatd through the raw protocol: a real server on
//! 127.0.0.1 (random port, temp data dir) and hand-written frames, as a client
//! in another language would send them.

use std::collections::HashSet;

use qchat_tests::{RawConn, TestServer, within};
use serde_json::{Value, json};

const PW: &str = "correct horse";

async fn acme(users: &[&str]) -> anyhow::Result<TestServer> {
    let s = TestServer::start().await?;
    s.tenant("acme", false).await?;
    for u in users {
        s.user("acme", u, PW).await?;
    }
    s.room("acme", "general").await?;
    Ok(s)
}

async fn login(s: &TestServer, user: &str) -> anyhow::Result<RawConn> {
    let mut c = RawConn::connect(s.addr, &s.data_dir()).await?;
    c.login("acme", user, PW).await?;
    Ok(c)
}

fn code(reply: &Value) -> &str {
    reply["err"]["code"].as_str().unwrap_or("<none>")
}

#[tokio::test]
async fn bad_input_gets_its_code_and_the_server_keeps_serving() -> anyhow::Result<()> {
    let s = acme(&["ann", "bob"]).await?;
    let mut bob = login(&s, "bob").await?;
    bob.ok("room.join", json!({"room": "general"})).await?;

    let mut c = RawConn::connect(s.addr, &s.data_dir()).await?;
    let r = c.call("login", json!({"tenant": "acme", "user": "ann", "password": "wrong"})).await?;
    assert_eq!(code(&r), "unauthorized");
    let r = c.call("login", json!({"tenant": "nope", "user": "ann", "password": PW})).await?;
    assert_eq!(code(&r), "unauthorized", "unknown tenant looks the same as a wrong password");
    let r = c.call("rooms", json!({})).await?;
    assert_eq!(code(&r), "unauthorized", "nothing before login");

    // Malformed JSON: reply with re = null, connection stays usable.
    c.write_frame(b"{this is not json").await?;
    let r = c.reply(None).await?;
    assert_eq!(code(&r), "bad_request");
    assert!(r["re"].is_null());
    // Unknown op and missing fields keep the id.
    let r = c.call("teleport", json!({})).await?;
    assert_eq!(code(&r), "bad_request");
    assert_eq!(r["re"], 4);
    c.login("acme", "ann", PW).await?;
    let r = c.call("send", json!({"room": "general"})).await?;
    assert_eq!(code(&r), "bad_request");
    let r = c
        .call("send", json!({"room": "general", "client_msg_id": "x", "body": "y".repeat(20_000)}))
        .await?;
    assert_eq!(code(&r), "too_large");
    let r = c.call("send", json!({"room": "general", "client_msg_id": "x", "body": "hi"})).await?;
    assert_eq!(code(&r), "forbidden", "not a member yet");
    let key = json!({"room": "general", "client_msg_id": "upload:0a1b", "body": "hi"});
    let r = c.call("send", key).await?;
    assert_eq!(code(&r), "bad_request", "upload: keys are the file messages' own");
    let r = c.call("room.join", json!({"room": "../etc"})).await?;
    assert_eq!(code(&r), "bad_request");
    let r = c.call("room.join", json!({"room": "nowhere"})).await?;
    assert_eq!(code(&r), "not_found");
    let r = c.call("history", json!({"room": "general"})).await?;
    assert_eq!(code(&r), "forbidden");
    let r = c.call("history", json!({"room": "general", "limit": 0})).await?;
    assert_eq!(code(&r), "bad_request");
    let r = c.call("login", json!({"tenant": "acme", "user": "ann", "password": PW})).await?;
    assert_eq!(code(&r), "conflict", "one login per connection");
    let r = c.call("ping", json!({})).await?;
    assert!(r.get("ok").is_some());

    // An oversized frame header closes that connection with code 2 ...
    c.write_raw(&(2u32 << 20).to_be_bytes()).await?;
    let err = within("close after oversized frame", c.conn.closed()).await;
    match err {
        quinn::ConnectionError::ApplicationClosed(close) => {
            assert_eq!(close.error_code.into_inner(), 2)
        }
        other => panic!("expected an application close, got {other}"),
    }
    // ... and everyone else is still served.
    let sent = bob
        .ok("send", json!({"room": "general", "client_msg_id": "b1", "body": "still here"}))
        .await?;
    assert_eq!(sent["seq"], 2, "after the system message \"bob joined\"");
    let mut d = login(&s, "ann").await?;
    assert!(d.ok("rooms", json!({})).await?["rooms"].is_array());
    Ok(())
}

#[tokio::test]
async fn tenants_never_see_each_other() -> anyhow::Result<()> {
    let s = acme(&["ann"]).await?;
    s.tenant("globex", false).await?;
    s.user("globex", "ann", PW).await?; // same user name, other tenant
    s.user("globex", "hank", PW).await?;
    s.room("globex", "secret").await?;

    let mut a = login(&s, "ann").await?;
    a.ok("room.join", json!({"room": "general"})).await?;
    a.ok("send", json!({"room": "general", "client_msg_id": "a1", "body": "acme only"})).await?;

    let mut g = RawConn::connect(s.addr, &s.data_dir()).await?;
    g.login("globex", "hank", PW).await?;
    g.ok("room.join", json!({"room": "secret"})).await?;
    g.ok("send", json!({"room": "secret", "client_msg_id": "g1", "body": "globex only"})).await?;

    let rooms = a.ok("rooms", json!({})).await?;
    let names: Vec<&str> = rooms["rooms"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(names, vec!["general"]);
    for op in ["room.join", "members", "history"] {
        let r = a.call(op, json!({"room": "secret"})).await?;
        assert_eq!(code(&r), "not_found", "{op} on another tenant's room");
    }
    let r = a.call("sync", json!({"room": "secret", "after_seq": 0})).await?;
    assert_eq!(code(&r), "not_found");
    let r = g.call("room.join", json!({"room": "general"})).await?;
    assert_eq!(code(&r), "not_found");
    // A globex user with the same name is a different account.
    let mut ga = RawConn::connect(s.addr, &s.data_dir()).await?;
    ga.login("globex", "ann", PW).await?;
    let r = ga.call("history", json!({"room": "general"})).await?;
    assert_eq!(code(&r), "not_found");
    let members = g.ok("members", json!({"room": "secret"})).await?;
    assert_eq!(members["members"], json!([{"user": "hank", "online": true, "role": "member"}]));
    // No event crossed over.
    g.ok("ping", json!({})).await?;
    assert!(g.events.iter().all(|e| e["room"] != "general"), "{:?}", g.events);
    assert!(!g.events.iter().any(|e| e.to_string().contains("acme only")));
    Ok(())
}

#[tokio::test]
async fn retried_send_returns_the_original_seq() -> anyhow::Result<()> {
    let s = acme(&["ann", "bob"]).await?;
    let mut a = login(&s, "ann").await?;
    a.ok("room.join", json!({"room": "general"})).await?;
    let first =
        a.ok("send", json!({"room": "general", "client_msg_id": "k-1", "body": "once"})).await?;
    assert_eq!(first["duplicate"], false);
    a.ok("send", json!({"room": "general", "client_msg_id": "k-2", "body": "twice"})).await?;
    let again =
        a.ok("send", json!({"room": "general", "client_msg_id": "k-1", "body": "once"})).await?;
    assert_eq!(again["seq"], first["seq"]);
    assert_eq!(again["ts"], first["ts"]);
    assert_eq!(again["duplicate"], true);
    // Also from another connection of the same user (a reconnect).
    let mut a2 = login(&s, "ann").await?;
    let third =
        a2.ok("send", json!({"room": "general", "client_msg_id": "k-1", "body": "once"})).await?;
    assert_eq!(third["seq"], first["seq"]);
    // The same key from another user is a different message.
    let mut b = login(&s, "bob").await?;
    b.ok("room.join", json!({"room": "general"})).await?;
    let bobs =
        b.ok("send", json!({"room": "general", "client_msg_id": "k-1", "body": "mine"})).await?;
    // After the system messages "ann joined" (1) and "bob joined" (4).
    assert_eq!(bobs["seq"], 5);
    // An empty body is a message like any other (issue 16 §1.11).
    let empty =
        b.ok("send", json!({"room": "general", "client_msg_id": "k-3", "body": ""})).await?;
    assert_eq!(empty["seq"], 6);
    let h = a.ok("history", json!({"room": "general"})).await?;
    let bodies: Vec<&str> =
        h["messages"].as_array().into_iter().flatten().filter_map(|m| m["body"].as_str()).collect();
    assert_eq!(bodies, vec!["ann joined", "once", "twice", "bob joined", "mine", ""]);
    Ok(())
}

#[tokio::test]
async fn members_shows_who_is_online_and_quit_or_drop_removes_them() -> anyhow::Result<()> {
    let s = acme(&["ann", "bob", "cat"]).await?;
    let mut a = login(&s, "ann").await?;
    a.ok("room.join", json!({"room": "general"})).await?;
    let mut b = login(&s, "bob").await?;
    b.ok("room.join", json!({"room": "general"})).await?;
    let mut c = login(&s, "cat").await?;
    c.ok("room.join", json!({"room": "general"})).await?;

    let online = |v: &Value| -> Vec<(String, bool)> {
        v["members"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|m| {
                (
                    m["user"].as_str().unwrap_or("").to_owned(),
                    m["online"].as_bool().unwrap_or(false),
                )
            })
            .collect()
    };
    let m = a.ok("members", json!({"room": "general"})).await?;
    assert_eq!(online(&m), vec![("ann".into(), true), ("bob".into(), true), ("cat".into(), true)]);

    // bob quits with a reason: ann hears it, and the connection closes with code 0.
    b.ok("quit", json!({"reason": "lunch"})).await?;
    let closed = within("quit closes", b.conn.closed()).await;
    assert!(
        matches!(closed, quinn::ConnectionError::ApplicationClosed(ref c) if c.error_code.into_inner() == 0),
        "{closed}"
    );
    let ev = within("presence after quit", async {
        loop {
            let e = a.event().await?;
            if e["ev"] == "presence" && e["user"] == "bob" {
                return Ok::<_, anyhow::Error>(e);
            }
        }
    })
    .await?;
    assert_eq!(ev, json!({"ev": "presence", "user": "bob", "online": false, "reason": "lunch"}));

    // cat drops without a word (no quit, no close): gone after the idle timeout.
    drop(c);
    let m = within("cat goes offline", async {
        loop {
            let m = a.ok("members", json!({"room": "general"})).await?;
            if !online(&m).contains(&("cat".to_owned(), true)) {
                return Ok::<_, anyhow::Error>(m);
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    })
    .await?;
    assert_eq!(
        online(&m),
        vec![("ann".into(), true), ("bob".into(), false), ("cat".into(), false)]
    );
    Ok(())
}

#[tokio::test]
async fn history_survives_restart_and_pages_back_through_1000_exactly_once() -> anyhow::Result<()> {
    let mut s = acme(&["ann"]).await?;
    // Ten connections of the same user send concurrently so the writer can
    // group commits; each send is still acknowledged only after its commit.
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..10 {
        let mut c = login(&s, "ann").await?;
        c.ok("room.join", json!({"room": "general"})).await?;
        tasks.spawn(async move {
            for i in 0..100 {
                c.ok("send", json!({"room": "general", "client_msg_id": format!("{w}-{i}"), "body": format!("m {w} {i}")}))
                    .await?;
            }
            Ok::<_, anyhow::Error>(())
        });
    }
    while let Some(r) = within("1000 sends", tasks.join_next()).await {
        r??;
    }
    s.restart().await?;
    let mut a = login(&s, "ann").await?;
    let mut seen = HashSet::new();
    let mut before: Option<u64> = None;
    let mut pages = 0;
    loop {
        let mut req = json!({"room": "general", "limit": 37});
        if let Some(b) = before {
            req["before_seq"] = json!(b);
        }
        let page = a.ok("history", req).await?;
        let msgs = page["messages"].as_array().cloned().unwrap_or_default();
        let seqs: Vec<u64> = msgs.iter().filter_map(|m| m["seq"].as_u64()).collect();
        assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "ascending, gap-free: {seqs:?}");
        for m in &msgs {
            assert!(
                seen.insert(m["body"].as_str().unwrap_or_default().to_owned()),
                "duplicate {m}"
            );
        }
        pages += 1;
        if page["more"] == false {
            break;
        }
        before = seqs.first().copied();
        assert!(pages < 100, "paging must end");
    }
    // The 1000 messages and the system message of ann's first join.
    assert_eq!(seen.len(), 1001);
    assert!(seen.contains("ann joined"));
    assert_eq!(pages, 1001usize.div_ceil(37));
    for w in 0..10 {
        for i in 0..100 {
            assert!(seen.contains(&format!("m {w} {i}")));
        }
    }
    Ok(())
}

#[tokio::test]
async fn hello_with_a_tenant_says_whether_registration_is_open() -> anyhow::Result<()> {
    let s = acme(&["ann"]).await?;
    s.tenant("open", true).await?;
    let mut c = RawConn::connect(s.addr, &s.data_dir()).await?;
    let r = c.ok("hello", json!({"version": 1})).await?;
    assert!(r.get("open_registration").is_none(), "only when asked: {r}");
    let r = c.ok("hello", json!({"version": 1, "tenant": "open"})).await?;
    assert_eq!(r["open_registration"], true);
    let r = c.ok("hello", json!({"version": 1, "tenant": "acme"})).await?;
    assert_eq!(r["open_registration"], false);
    for unknown in ["nope", "not a name"] {
        let r = c.ok("hello", json!({"version": 1, "tenant": unknown})).await?;
        assert_eq!(r["open_registration"], false, "{unknown}");
    }
    // And register agrees.
    let r = c.call("register", json!({"tenant": "acme", "user": "carl", "password": PW})).await?;
    assert_eq!(code(&r), "forbidden");
    c.ok("register", json!({"tenant": "open", "user": "carl", "password": PW})).await?;

    // The client library's probe asks the same before logging in.
    let trust = qchat_client::Trust::Fingerprint(s.fingerprint.clone());
    let addr = s.addr.to_string();
    for (tenant, open) in [(Some("open"), Some(true)), (Some("acme"), Some(false)), (None, None)] {
        let info = within("probe", qchat_client::probe(&addr, tenant, &trust)).await?;
        assert_eq!(info.open_registration, open, "{tenant:?}");
        assert!(info.server.starts_with("qchatd/"), "{info:?}");
    }
    Ok(())
}

/// Issue 16 §1.3: a join sends `member` to every connection of the room,
/// the joining one included (before its reply); a repeated join sends
/// nothing; a leave tells the leaving connection too; leaving again, or a
/// room never joined, sends nothing. Issue 17: the joining user's
/// connections first get the `room` event, and each change is also the
/// room's `system` message, just before its `member` event; the leaving
/// user's connections end with `room.removed`.
#[tokio::test]
async fn join_and_leave_tell_the_asking_connection_once() -> anyhow::Result<()> {
    let s = acme(&["ann", "bob"]).await?;
    let mut bob = login(&s, "bob").await?;
    bob.ok("room.join", json!({"room": "general"})).await?;
    bob.events.clear();
    let mut ann = login(&s, "ann").await?;
    // The frames in the order they arrive, events and replies alike.
    let next = async |c: &mut RawConn| within("frame", c.read()).await;
    let joined = json!({"ev": "member", "room": "general", "user": "ann", "joined": true});
    let left = json!({"ev": "member", "room": "general", "user": "ann", "joined": false});
    let system = |v: &Value, body: &str| {
        v["ev"] == "message" && v["kind"] == "system" && v["body"] == body && v["sender"] == "ann"
    };

    ann.write_frame(br#"{"id":1,"op":"room.join","room":"general"}"#).await?;
    let room = next(&mut ann).await?;
    assert_eq!((&room["ev"], &room["room"]["name"]), (&json!("room"), &json!("general")));
    assert_eq!(room["room"]["last_seq"], 1, "the room as it was before the join's message");
    let msg = next(&mut ann).await?;
    assert!(system(&msg, "ann joined") && msg["seq"] == 2, "{msg}");
    assert_eq!(next(&mut ann).await?, joined, "the joining connection hears it first");
    assert_eq!(next(&mut ann).await?["re"], 1);
    assert!(system(&next(&mut bob).await?, "ann joined"));
    assert_eq!(next(&mut bob).await?, joined);
    ann.write_frame(br#"{"id":2,"op":"room.join","room":"general"}"#).await?;
    ann.write_frame(br#"{"id":3,"op":"ping"}"#).await?;
    assert_eq!(next(&mut ann).await?["re"], 2, "a repeated join sends no event");
    assert_eq!(next(&mut ann).await?["re"], 3);

    ann.write_frame(br#"{"id":4,"op":"room.leave","room":"general"}"#).await?;
    assert!(system(&next(&mut ann).await?, "ann left"));
    assert_eq!(next(&mut ann).await?, left, "the leaving connection hears it first");
    let removed = next(&mut ann).await?;
    assert_eq!((&removed["ev"], &removed["reason"]), (&json!("room.removed"), &json!("left")));
    assert_eq!(next(&mut ann).await?["re"], 4);
    assert!(system(&next(&mut bob).await?, "ann left"));
    assert_eq!(next(&mut bob).await?, left);
    ann.write_frame(br#"{"id":5,"op":"room.leave","room":"general"}"#).await?;
    ann.write_frame(br#"{"id":6,"op":"ping"}"#).await?;
    assert_eq!(next(&mut ann).await?, json!({"re": 5, "ok": {}}), "leaving again: nothing");
    assert_eq!(next(&mut ann).await?["re"], 6);
    // bob heard nothing more: his next frame is his own ping's reply.
    bob.write_frame(br#"{"id":90,"op":"ping"}"#).await?;
    assert_eq!(next(&mut bob).await?, json!({"re": 90, "ok": {}}));
    Ok(())
}

/// Issue 16 §1.8: the `reason` of an offline `presence` says how the user's
/// last connection ended: the `quit` reason (or `quit`), `logged out`,
/// `closed` when the client closed the connection without `quit`, and
/// `protocol error` when the server closed it for breaking the protocol.
#[tokio::test]
async fn presence_reasons_say_how_a_connection_ended() -> anyhow::Result<()> {
    let s = acme(&["ann", "bob"]).await?;
    let mut ann = login(&s, "ann").await?;
    ann.ok("room.join", json!({"room": "general"})).await?;
    let mut bob = login(&s, "bob").await?;
    bob.ok("room.join", json!({"room": "general"})).await?;
    let offline = async |ann: &mut RawConn| {
        within("bob goes offline", async {
            loop {
                let e = ann.event().await?;
                if e["ev"] == "presence" && e["online"] == false {
                    return anyhow::Ok(e["reason"].clone());
                }
            }
        })
        .await
    };
    bob.ok("quit", json!({})).await?;
    assert_eq!(offline(&mut ann).await?, "quit", "quit without a reason");

    let mut bob = login(&s, "bob").await?;
    bob.ok("logout", json!({})).await?;
    assert_eq!(offline(&mut ann).await?, "logged out");

    let bob = login(&s, "bob").await?;
    bob.conn.close(0u32.into(), b"bye");
    assert_eq!(offline(&mut ann).await?, "closed", "closed without quit");
    drop(bob);

    let mut bob = login(&s, "bob").await?;
    bob.write_raw(&(2u32 << 20).to_be_bytes()).await?;
    assert_eq!(offline(&mut ann).await?, "protocol error", "an oversized frame");
    Ok(())
}

/// Issue 16 §1.10: a handshake offering another ALPN, or none, is refused
/// by TLS with `no_application_protocol` (alert 120), which QUIC carries as
/// the transport error CRYPTO_ERROR 0x178 (0x100 + 120).
#[tokio::test]
async fn another_alpn_is_refused_with_crypto_error_0x178() -> anyhow::Result<()> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    let s = acme(&[]).await?;
    let cert = CertificateDer::from_pem_file(s.data_dir().join("tls/cert.pem"))?;
    for alpn in [vec![b"qchat/2".to_vec(), b"h3".to_vec()], vec![]] {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert.clone())?;
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_root_certificates(roots)
            .with_no_client_auth();
        tls.alpn_protocols = alpn.clone();
        let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls)?;
        let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse()?)?;
        endpoint.set_default_client_config(quinn::ClientConfig::new(std::sync::Arc::new(crypto)));
        let refused = within("handshake", endpoint.connect(s.addr, "localhost")?).await;
        match refused {
            Err(quinn::ConnectionError::ConnectionClosed(close)) => {
                assert_eq!(u64::from(close.error_code), 0x178, "{alpn:?}: {close}");
            }
            other => panic!("{alpn:?}: expected CRYPTO_ERROR 0x178, got {other:?}"),
        }
    }
    Ok(())
}

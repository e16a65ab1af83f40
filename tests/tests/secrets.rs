//! Secrets never reach the server log, at any level: after a full session
//! (register, login, a wrong password, send, reconnect with the token, logout)
//! the log holds no password, no token and no message body. Nor the client's:
//! the real `qchat` CLI at `RUST_LOG=trace` prints none of them to stderr and
//! writes none into any file under its home and state directories.
//! Session tokens end: an expired token (lifetime set to seconds with
//! `--session-ttl-secs`) and a revoked one (logout from another connection,
//! `qchatd user passwd`, `qchatd user disable`) cannot resume.

use anyhow::Context as _;
use qchat_client::{Auth, Client, ClientConfig, ClientEvent, ConnState, Trust};
use qchat_tests::{RawConn, TestServer, within};
use serde_json::json;

#[tokio::test]
async fn no_password_token_or_body_in_trace_logs() -> anyhow::Result<()> {
    let password = "pw-7c1e9f-secret";
    let wrong = "pw-wrong-4b2d";
    let body = "body-9a8b7c-private";
    let s = TestServer::start_logging(&["--idle-timeout-secs", "4"], "trace").await?;
    s.tenant("acme", true).await?;
    s.room("acme", "general").await?;

    let mut cfg = ClientConfig::new(
        s.addr.to_string(),
        "acme",
        "ann",
        Auth::Password(password.into()),
        Trust::Fingerprint(s.fingerprint.clone()),
    );
    cfg.register = true;
    let (ann, mut events) = within("register", Client::connect(cfg)).await?;
    let token = ann.token();
    ann.join_room("general").await?;
    ann.send("general", body).await?;
    // A reconnect resumes with the token.
    ann.force_disconnect();
    within("reconnected", async {
        let mut dropped = false;
        while let Some(ev) = events.recv().await {
            match ev {
                ClientEvent::State(ConnState::Reconnecting { .. }) => dropped = true,
                ClientEvent::State(ConnState::Connected) if dropped => return,
                _ => {}
            }
        }
    })
    .await;
    ann.send("general", body).await?;

    let mut raw = RawConn::connect(s.addr, &s.data_dir()).await?;
    let r = raw.call("login", json!({"tenant": "acme", "user": "ann", "password": wrong})).await?;
    assert_eq!(r["err"]["code"], "unauthorized");
    let r = raw.call("resume", json!({"token": token})).await?;
    assert!(r.get("ok").is_some(), "{r}");
    raw.ok("logout", json!({})).await?;
    let mut again = RawConn::connect(s.addr, &s.data_dir()).await?;
    let r = again.call("resume", json!({"token": token})).await?;
    assert_eq!(r["err"]["code"], "unauthorized", "logout revokes the token");
    ann.quit(None).await?;

    let log = s.log_text();
    assert!(log.len() > 10_000, "trace logging was on ({} bytes)", log.len());
    for (what, secret) in [
        ("password", password),
        ("wrong password", wrong),
        ("token", token.as_str()),
        ("body", body),
    ] {
        assert!(!log.contains(secret), "the server log contains the {what}");
    }
    // The token is stored only as a hash.
    let db = std::fs::read(s.data_dir().join("qchat.db"))?;
    let wal = std::fs::read(s.data_dir().join("qchat.db-wal")).unwrap_or_default();
    for bytes in [&db, &wal] {
        assert!(
            !bytes.windows(token.len()).any(|w| w == token.as_bytes()),
            "token stored in clear"
        );
        assert!(
            !bytes.windows(password.len()).any(|w| w == password.as_bytes()),
            "password stored in clear"
        );
    }
    Ok(())
}

/// The real `qchat` CLI sends one message at `RUST_LOG=trace` (every crate:
/// quinn and rustls included). Its stderr and every file it leaves under its
/// home and state directories hold neither the password nor the body, nor
/// any session token: the CLI's own token is never shown to the test, so
/// every 43-character base64url run in that text is hashed and looked up
/// among the server's stored token hashes.
#[tokio::test]
async fn the_cli_logs_no_password_token_or_body_at_trace() -> anyhow::Result<()> {
    use sha2::{Digest as _, Sha256};
    use sqlx::ConnectOptions as _;

    let password = "pw-cli-5e3d1a-secret";
    let body = "body-cli-2f6e0b-private";
    let s = TestServer::start().await?;
    s.tenant("acme", false).await?;
    s.user("acme", "cli", password).await?;
    s.room("acme", "general").await?;
    let home = tempfile::tempdir()?;
    let qchat = |args: &[&str]| {
        let mut cmd = tokio::process::Command::new(qchat_tests::bin_path("qchat"));
        cmd.args(["--server", &s.addr.to_string(), "--tenant", "acme", "--user", "cli"])
            .args(["--fingerprint", &s.fingerprint])
            .args(args)
            .env("QCHAT_PASSWORD", password)
            .env("RUST_LOG", "trace")
            .env("HOME", home.path())
            .env("XDG_STATE_HOME", home.path().join("state"))
            .env("XDG_DATA_HOME", home.path().join("data"))
            .env("QCHAT_STATE_DIR", home.path().join("qchat-state"))
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        cmd
    };
    let out = within("qchat send", qchat(&["send", "general", body]).output()).await?;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "qchat send failed: {}", stderr.lines().last().unwrap_or(""));
    assert!(stderr.len() > 10_000, "trace logging was on ({} bytes)", stderr.len());
    let mut texts = vec![("send's stderr".to_owned(), stderr)];

    // `send` logs out when done, which deletes its session; a `tail` that
    // is killed instead keeps its session, so its token can be looked for.
    let mut tail = qchat(&["tail", "general"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let stdout = tail.stdout.take().context("tail's stdout")?;
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
    let mut sender = RawConn::connect(s.addr, &s.data_dir()).await?;
    sender.login("acme", "cli", password).await?;
    let mut heard = false;
    // Until the tail is logged in and prints one (at most 20 tries).
    for i in 0..20 {
        let text = format!("ping {i}");
        let id = format!("secrets-ping-{i}");
        sender.ok("send", json!({"room": "general", "body": text, "client_msg_id": id})).await?;
        let line = tokio::time::timeout(std::time::Duration::from_millis(500), lines.next_line());
        if let Ok(line) = line.await {
            heard = line?.context("tail ended")?.contains("ping");
            if heard {
                break;
            }
        }
    }
    assert!(heard, "qchat tail printed none of 20 messages");
    tail.start_kill()?;
    let tail_out = within("qchat tail", tail.wait_with_output()).await?;
    let stderr = String::from_utf8_lossy(&tail_out.stderr).into_owned();
    assert!(stderr.len() > 10_000, "trace logging was on ({} bytes)", stderr.len());
    texts.push(("tail's stderr".to_owned(), stderr));

    // Everything the CLI wrote: stderr and every file under its directories.
    let mut dirs = vec![home.path().to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir)?.flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                let text = String::from_utf8_lossy(&std::fs::read(&path)?).into_owned();
                texts.push((path.display().to_string(), text));
            }
        }
    }

    // A token the test does know, to check the lookup finds tokens.
    let known = login(&s, "cli", password).await?;
    let opts = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(s.data_dir().join("qchat.db"))
        .create_if_missing(false);
    let mut db = opts.connect().await?;
    let hashes: Vec<Vec<u8>> =
        sqlx::query_scalar("select token_hash from sessions").fetch_all(&mut db).await?;
    assert!(hashes.len() >= 3, "the tail's session is there: {} sessions", hashes.len());
    assert!(hashes.contains(&Sha256::digest(known.as_bytes()).to_vec()), "hashes as the server");
    let token_char = |b: &u8| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_';
    let mut candidates = 0usize;
    for (place, text) in &texts {
        assert!(!text.contains(password), "{place} contains the password");
        assert!(!text.contains(body), "{place} contains the message body");
        for w in text.as_bytes().windows(43) {
            if w.iter().all(token_char) {
                candidates += 1;
                let hash = Sha256::digest(w).to_vec();
                assert!(!hashes.contains(&hash), "{place} contains a session token");
            }
        }
    }
    println!(
        "qchat send and tail at trace: {} + {} bytes of stderr, {} files, {candidates} \
         token-shaped runs hashed, none a session token; no password or body",
        texts[0].1.len(),
        texts[1].1.len(),
        texts.len() - 2
    );
    Ok(())
}

/// Resumes `token` on a fresh raw connection; the reply.
async fn resume(s: &TestServer, token: &str) -> anyhow::Result<serde_json::Value> {
    let mut raw = RawConn::connect(s.addr, &s.data_dir()).await?;
    raw.call("resume", json!({"token": token})).await
}

async fn login(s: &TestServer, user: &str, password: &str) -> anyhow::Result<String> {
    let mut raw = RawConn::connect(s.addr, &s.data_dir()).await?;
    let ok = raw.login("acme", user, password).await?;
    Ok(ok["token"].as_str().unwrap_or_default().to_owned())
}

/// A token is refused once the session lifetime (`--session-ttl-secs`, here
/// 2 s) has passed, by the raw protocol and by the client library.
#[tokio::test]
async fn an_expired_token_cannot_resume() -> anyhow::Result<()> {
    let s =
        TestServer::start_with(&["--idle-timeout-secs", "4", "--session-ttl-secs", "2"]).await?;
    s.tenant("acme", false).await?;
    s.user("acme", "ann", "pw-ann-123").await?;
    let token = login(&s, "ann", "pw-ann-123").await?;
    let issued = std::time::Instant::now();
    let r = resume(&s, &token).await?;
    assert!(r.get("ok").is_some(), "fresh token resumes: {r}");
    tokio::time::sleep(std::time::Duration::from_millis(2300).saturating_sub(issued.elapsed()))
        .await;
    let r = resume(&s, &token).await?;
    assert_eq!(r["err"]["code"], "unauthorized", "expired token: {r}");
    let cfg = ClientConfig::new(
        s.addr.to_string(),
        "acme",
        "ann",
        Auth::Token(token.clone()),
        Trust::Fingerprint(s.fingerprint.clone()),
    );
    let refused = within("connect", Client::connect(cfg)).await.map(drop);
    assert!(
        matches!(&refused, Err(e) if e.code() == Some(qchat_protocol::ErrorCode::Unauthorized)),
        "the client library is refused too: {refused:?}"
    );
    // A new log-in gets a new token that works.
    let fresh = login(&s, "ann", "pw-ann-123").await?;
    assert!(resume(&s, &fresh).await?.get("ok").is_some());
    Ok(())
}

/// Revocation: `logout` on one connection revokes the token for every other
/// connection; `qchatd user passwd` and `qchatd user disable`, run while the
/// server is up, revoke every token of the user. Each token resumed just
/// before, so only the revocation explains the refusal (the lifetime is the
/// 30-day default here).
#[tokio::test]
async fn revoked_tokens_cannot_resume() -> anyhow::Result<()> {
    let s = TestServer::start().await?;
    s.tenant("acme", false).await?;
    for u in ["ann", "bob", "cat"] {
        s.user("acme", u, &format!("pw-{u}-123")).await?;
    }

    // Logout on another connection than the one that logged in.
    let token = login(&s, "ann", "pw-ann-123").await?;
    let mut other = RawConn::connect(s.addr, &s.data_dir()).await?;
    assert!(other.call("resume", json!({"token": token})).await?.get("ok").is_some());
    let mut third = RawConn::connect(s.addr, &s.data_dir()).await?;
    assert!(third.call("resume", json!({"token": token})).await?.get("ok").is_some());
    other.ok("logout", json!({})).await?;
    let r = resume(&s, &token).await?;
    assert_eq!(r["err"]["code"], "unauthorized", "logged out elsewhere: {r}");

    // A password change revokes all of the user's tokens.
    let (b1, b2) = (login(&s, "bob", "pw-bob-123").await?, login(&s, "bob", "pw-bob-123").await?);
    assert!(resume(&s, &b1).await?.get("ok").is_some());
    s.admin(
        &["user", "passwd", "--tenant", "acme", "bob", "--password-stdin"],
        Some("pw-bob-456\n"),
    )
    .await?;
    for t in [&b1, &b2] {
        let r = resume(&s, t).await?;
        assert_eq!(r["err"]["code"], "unauthorized", "after passwd: {r}");
    }
    assert!(!login(&s, "bob", "pw-bob-456").await?.is_empty(), "the new password works");

    // Disabling the account revokes its tokens and refuses log-ins.
    let c = login(&s, "cat", "pw-cat-123").await?;
    assert!(resume(&s, &c).await?.get("ok").is_some());
    s.admin(&["user", "disable", "--tenant", "acme", "cat"], None).await?;
    let r = resume(&s, &c).await?;
    assert_eq!(r["err"]["code"], "unauthorized", "after disable: {r}");
    let mut raw = RawConn::connect(s.addr, &s.data_dir()).await?;
    let r = raw.call("login", json!({"tenant": "acme", "user": "cat", "password": "pw-cat-123"}));
    assert_eq!(r.await?["err"]["code"], "unauthorized", "disabled");
    drop(third);
    Ok(())
}

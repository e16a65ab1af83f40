//! Secrets never reach the server log, at any level: after a full session
//! (register, login, a wrong password, send, reconnect with the token, logout)
//! the log holds no password, no token and no message body.

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

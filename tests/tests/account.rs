//! The caller's own account end to end (issue 18, item 8): a display name
//! shown in `members` and `profile`; `passwd`, which needs the old password
//! and revokes the user's other sessions, ending their connections at once;
//! `sessions` (client, address, last use) and `session.revoke`; and the
//! `qchat profile`, `qchat passwd` and `qchat sessions` commands.

use std::process::Stdio;

use anyhow::Context as _;
use qchat_protocol::CloseCode;
use qchat_tests::{RawConn, TestServer, bin_path, within};
use serde_json::{Value, json};

const PW: &str = "correct horse";

async fn server() -> anyhow::Result<TestServer> {
    let s = TestServer::start().await?;
    s.tenant("acme", false).await?;
    s.user("acme", "ann", PW).await?;
    s.user("acme", "bob", PW).await?;
    s.room("acme", "general").await?;
    Ok(s)
}

async fn login(s: &TestServer, user: &str, fields: Value) -> anyhow::Result<(RawConn, String)> {
    let mut c = RawConn::connect(s.addr, &s.data_dir()).await?;
    let mut req = json!({"tenant": "acme", "user": user, "password": PW});
    if let (Some(obj), Value::Object(extra)) = (req.as_object_mut(), fields) {
        obj.extend(extra);
    }
    let ok = c.ok("login", req).await?;
    let token = ok["token"].as_str().context("token")?.to_owned();
    Ok((c, token))
}

/// Whether a `resume` with `token` on a fresh connection is accepted.
async fn resumes(s: &TestServer, token: &str) -> anyhow::Result<bool> {
    let mut c = RawConn::connect(s.addr, &s.data_dir()).await?;
    let r = c.call("resume", json!({"token": token})).await?;
    c.conn.close(0u32.into(), b"done");
    Ok(r.get("ok").is_some())
}

/// The application close code the server ended `c` with.
async fn closed_with(c: &RawConn) -> Option<u64> {
    match within("connection closed", c.conn.closed()).await {
        quinn::ConnectionError::ApplicationClosed(close) => Some(close.error_code.into_inner()),
        _ => None,
    }
}

#[tokio::test]
async fn display_names_show_in_members_and_profiles() -> anyhow::Result<()> {
    let s = server().await?;
    let (mut ann, _) = login(&s, "ann", json!({})).await?;
    let (mut bob, _) = login(&s, "bob", json!({})).await?;
    for c in [&mut ann, &mut bob] {
        c.ok("room.join", json!({"room": "general"})).await?;
    }
    assert_eq!(bob.ok("profile", json!({"user": "ann"})).await?, json!({"user": "ann"}));
    ann.ok("profile.set", json!({"display_name": "Ann Arbor ✈"})).await?;
    assert_eq!(
        bob.ok("profile", json!({"user": "ann"})).await?,
        json!({"user": "ann", "display_name": "Ann Arbor ✈"})
    );
    assert_eq!(ann.ok("profile", json!({})).await?["display_name"], "Ann Arbor ✈");
    let members = bob.ok("members", json!({"room": "general"})).await?;
    assert_eq!(
        members["members"],
        json!([
            {"user": "ann", "online": true, "role": "member", "display_name": "Ann Arbor ✈"},
            {"user": "bob", "online": true, "role": "member"}
        ])
    );
    // Refused: control characters, white space at the ends, too long.
    for (name, code) in [
        (json!("a\u{1b}[31m"), "bad_request"),
        (json!(" ann"), "bad_request"),
        (json!("é".repeat(33)), "too_large"),
    ] {
        let r = ann.call("profile.set", json!({"display_name": name})).await?;
        assert_eq!(r["err"]["code"], code, "{name}: {r}");
    }
    assert_eq!(bob.call("profile", json!({"user": "nobody"})).await?["err"]["code"], "not_found");
    // Cleared.
    ann.ok("profile.set", json!({"display_name": null})).await?;
    assert_eq!(bob.ok("profile", json!({"user": "ann"})).await?, json!({"user": "ann"}));
    Ok(())
}

#[tokio::test]
async fn passwd_needs_the_old_password_and_revokes_the_other_sessions() -> anyhow::Result<()> {
    let s = server().await?;
    let (mut here, here_token) = login(&s, "ann", json!({})).await?;
    let (elsewhere, elsewhere_token) = login(&s, "ann", json!({})).await?;
    // A session with no connection now.
    let (mut idle, idle_token) = login(&s, "ann", json!({})).await?;
    idle.ok("quit", json!({})).await?;
    let (bob, bob_token) = login(&s, "bob", json!({})).await?;

    let wrong = here
        .call("passwd", json!({"old_password": "not it at all", "new_password": "new horse 1"}))
        .await?;
    assert_eq!(wrong["err"]["code"], "unauthorized", "{wrong}");
    let short = here.call("passwd", json!({"old_password": PW, "new_password": "short"})).await?;
    assert_eq!(short["err"]["code"], "bad_request", "{short}");

    let ok = here.ok("passwd", json!({"old_password": PW, "new_password": "new horse 1"})).await?;
    assert_eq!(ok, json!({"revoked": 2}));
    // The other connection is ended at once, with the code that says why.
    assert_eq!(closed_with(&elsewhere).await, Some(u64::from(CloseCode::Revoked.code())));
    assert!(!resumes(&s, &elsewhere_token).await?);
    assert!(!resumes(&s, &idle_token).await?);
    // This connection's session, and other users', stand.
    assert!(resumes(&s, &here_token).await?);
    assert!(resumes(&s, &bob_token).await?);
    here.ok("ping", json!({})).await?;
    assert!(bob.conn.close_reason().is_none());
    // The old password no longer logs in; the new one does.
    let mut c = RawConn::connect(s.addr, &s.data_dir()).await?;
    let r = c.call("login", json!({"tenant": "acme", "user": "ann", "password": PW})).await?;
    assert_eq!(r["err"]["code"], "unauthorized", "{r}");
    c.login("acme", "ann", "new horse 1").await?;
    Ok(())
}

#[tokio::test]
async fn sessions_are_listed_and_any_can_be_revoked() -> anyhow::Result<()> {
    let s = server().await?;
    // One client names itself in `hello`, the other in its log-in.
    let mut a = RawConn::connect(s.addr, &s.data_dir()).await?;
    a.ok("hello", json!({"client": "laptop/1.0"})).await?;
    let a_ok = a.login("acme", "ann", PW).await?;
    let a_token = a_ok["token"].as_str().context("token")?.to_owned();
    let (b, b_token) = login(&s, "ann", json!({"client": "phone/2.0"})).await?;
    let (mut idle, _) = login(&s, "ann", json!({"client": "old/0.1"})).await?;
    idle.ok("quit", json!({})).await?;
    let (mut bob, _) = login(&s, "bob", json!({})).await?;

    let list = a.ok("sessions", json!({})).await?;
    assert_eq!(list["more"], false);
    let sessions = list["sessions"].as_array().context("sessions")?;
    assert_eq!(sessions.len(), 3, "{list}");
    let by_client = |c: &str| sessions.iter().find(|s| s["client"] == c).cloned();
    let mine = by_client("laptop/1.0").context("the hello's client")?;
    let phone = by_client("phone/2.0").context("the log-in's client")?;
    let old = by_client("old/0.1").context("the idle session")?;
    assert_eq!((mine["current"].clone(), mine["connected"].clone()), (json!(true), json!(true)));
    assert_eq!((phone["current"].clone(), phone["connected"].clone()), (json!(false), json!(true)));
    assert_eq!(old["connected"], false, "{old}");
    for s in sessions {
        assert_eq!(s["address"], "127.0.0.1", "{s}");
        assert!(s["last_seen"].as_i64() >= s["created"].as_i64(), "{s}");
        assert!(s["id"].as_str().is_some_and(|id| id.len() == 16), "{s}");
    }
    // Ids sort, so a page can follow the last one.
    let ids: Vec<&str> = sessions.iter().filter_map(|s| s["id"].as_str()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    let after = a.ok("sessions", json!({"after": ids[0]})).await?;
    assert_eq!(after["sessions"].as_array().map(Vec::len), Some(2));

    // Another user cannot revoke ann's session; ids are checked.
    let phone_id = phone["id"].as_str().context("id")?;
    let r = bob.call("session.revoke", json!({"session": phone_id})).await?;
    assert_eq!(r["err"]["code"], "not_found", "{r}");
    let r = a.call("session.revoke", json!({"session": "not-an-id"})).await?;
    assert_eq!(r["err"]["code"], "bad_request", "{r}");

    a.ok("session.revoke", json!({"session": phone_id})).await?;
    assert_eq!(closed_with(&b).await, Some(u64::from(CloseCode::Revoked.code())));
    assert!(!resumes(&s, &b_token).await?);
    let r = a.call("session.revoke", json!({"session": phone_id})).await?;
    assert_eq!(r["err"]["code"], "not_found", "revoked twice: {r}");
    let left = a.ok("sessions", json!({})).await?;
    assert_eq!(left["sessions"].as_array().map(Vec::len), Some(2), "{left}");

    // Revoking one's own session answers, then ends the connection.
    let mine_id = mine["id"].as_str().context("id")?;
    a.ok("session.revoke", json!({"session": mine_id})).await?;
    assert_eq!(closed_with(&a).await, Some(u64::from(CloseCode::Revoked.code())));
    assert!(!resumes(&s, &a_token).await?);
    Ok(())
}

#[tokio::test]
async fn the_cli_shows_profiles_changes_passwords_and_lists_sessions() -> anyhow::Result<()> {
    let s = server().await?;
    let home = tempfile::tempdir()?;
    let qchat = |password: &str| {
        let mut cmd = tokio::process::Command::new(bin_path("qchat"));
        cmd.args(["--server", &s.addr.to_string(), "--tenant", "acme", "--user", "ann"])
            .args(["--fingerprint", &s.fingerprint])
            .env("QCHAT_PASSWORD", password)
            .env("HOME", home.path())
            .stdin(Stdio::null())
            .kill_on_drop(true);
        cmd
    };
    let run = |mut cmd: tokio::process::Command| async move {
        let out = within("qchat", cmd.output()).await?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        anyhow::ensure!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
        anyhow::Ok(stdout)
    };
    let mut cmd = qchat(PW);
    cmd.args(["profile", "--set", "Ann A."]);
    assert_eq!(run(cmd).await?, "ann Ann A.\n");
    let mut cmd = qchat(PW);
    cmd.args(["profile", "bob"]);
    assert_eq!(run(cmd).await?, "bob\n");
    let mut cmd = qchat(PW);
    cmd.args(["who", "general"]);
    assert_eq!(run(cmd).await?, "ann online Ann A.\n");

    let (_other, other_token) = login(&s, "ann", json!({"client": "tui/9"})).await?;
    let mut cmd = qchat(PW);
    cmd.arg("sessions");
    let out = run(cmd).await?;
    let lines: Vec<&str> = out.lines().collect();
    // The commands above logged in too, and logged out when done: only
    // this command's session and the other client's are left.
    assert_eq!(lines.len(), 2, "{out:?}");
    assert!(!lines.iter().any(|l| l.contains(" - qchat/")), "{out}");
    assert!(
        lines.iter().any(|l| l.contains(" current qchat/") && l.contains(" 127.0.0.1 ")),
        "{out}"
    );
    let other = lines.iter().find(|l| l.contains(" connected tui/9 ")).context(out.clone())?;
    let other_id = other.split(' ').next().context("id")?;
    let mut cmd = qchat(PW);
    cmd.args(["sessions", "--revoke", other_id]);
    assert_eq!(run(cmd).await?, format!("revoked {other_id}\n"));
    assert!(!resumes(&s, &other_token).await?);

    // The new password from the environment; then only it logs in.
    let mut cmd = qchat(PW);
    cmd.arg("passwd").env("QCHAT_NEW_PASSWORD", "brand new horse");
    assert!(run(cmd).await?.starts_with("password changed"));
    let mut cmd = qchat(PW);
    cmd.arg("rooms");
    assert!(run(cmd).await.is_err(), "the old password still logs in");
    // With --password-stdin: old on the first line, new on the second.
    let mut cmd = qchat("");
    cmd.args(["passwd", "--password-stdin"]).stdin(Stdio::piped()).stdout(Stdio::piped());
    let mut child = cmd.spawn()?;
    let mut stdin = child.stdin.take().context("stdin")?;
    tokio::io::AsyncWriteExt::write_all(&mut stdin, b"brand new horse\nthird horse!\n").await?;
    drop(stdin);
    let out = within("qchat passwd", child.wait_with_output()).await?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut cmd = qchat("third horse!");
    cmd.arg("rooms");
    run(cmd).await?;
    Ok(())
}

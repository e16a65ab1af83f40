//! Operations end to end: the deploy script's steps, `qchatd healthcheck`,
//! SIGTERM with clients connected, SIGHUP certificate reload, online backup
//! and restore, configuration precedence and refusal, disabling accounts.
//! Real qchatd processes on 127.0.0.1 with random ports and temp dirs.

use std::path::Path;
use std::process::Stdio;

use anyhow::{Context as _, bail};
use qchat_tests::{Backend, RawConn, STEP, TestServer, bin_path, within};
use serde_json::json;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::Command;

const PW: &str = "correct horse";

/// Environment variables for a child process.
type Envs<'a> = &'a [(&'a str, &'a str)];

async fn acme(s: &TestServer, users: &[&str]) -> anyhow::Result<()> {
    s.tenant("acme", false).await?;
    for u in users {
        s.user("acme", u, PW).await?;
    }
    s.room("acme", "general").await
}

/// Runs `qchatd ARGS` to completion: (success, stdout, stderr).
async fn qchatd(args: &[&str], envs: &[(&str, &str)]) -> anyhow::Result<(bool, String, String)> {
    let mut cmd = Command::new(bin_path("qchatd"));
    cmd.args(args).stdin(Stdio::null()).kill_on_drop(true);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(STEP, cmd.output()).await.context("qchatd timed out")??;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

#[tokio::test]
async fn deploy_script_steps_build_and_start_a_server_a_client_reaches() -> anyhow::Result<()> {
    let stage = tempfile::tempdir()?;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/build-and-run.sh");
    let mut child = Command::new("bash")
        .arg(&script)
        .arg("--wait")
        .arg(stage.path())
        .env("QCHATD_BIN", bin_path("qchatd"))
        .env("LISTEN", "127.0.0.1:0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
    let addr = within("script reaches its health check", async {
        let mut addr = None;
        while let Some(line) = lines.next_line().await? {
            if let Some(a) = line.strip_prefix("listening on ") {
                addr = Some(a.parse::<std::net::SocketAddr>()?);
            }
            if line.starts_with("ok ") {
                return addr.context("health check before address");
            }
        }
        bail!("script ended before the health check")
    })
    .await?;

    let data = stage.path().join("data");
    let d = data.to_str().context("utf-8 path")?;
    assert!(qchatd(&["tenant", "create", "acme", "--data-dir", d], &[]).await?.0);
    let create = ["user", "create", "--tenant", "acme", "ann", "--data-dir", d];
    assert!(qchatd(&create, &[("QCHAT_PASSWORD", PW)]).await?.0);
    let mut c = RawConn::connect(addr, &data).await?;
    c.login("acme", "ann", PW).await?;
    c.ok("ping", json!({})).await?;

    drop(child.stdin.take());
    let rest = within("script stops the server", async {
        let mut rest = Vec::new();
        while let Some(line) = lines.next_line().await? {
            rest.push(line);
        }
        Ok::<_, anyhow::Error>(rest)
    })
    .await?;
    let status = within("script exits", child.wait()).await?;
    assert!(status.success(), "script failed: {rest:?}");
    assert!(rest.iter().any(|l| l == "stopped (exit 0)"), "{rest:?}");
    Ok(())
}

#[tokio::test]
async fn healthcheck_passes_with_a_server_and_fails_without() -> anyhow::Result<()> {
    let mut s = TestServer::start().await?;
    let addr = s.addr.to_string();
    let d = s.data_dir();
    let d = d.to_str().context("utf-8 path")?;
    let (ok, out, err) = qchatd(&["healthcheck", "--server", &addr, "--data-dir", d], &[]).await?;
    assert!(ok, "healthy server: {err}");
    assert!(out.contains(&s.fingerprint), "{out}");
    assert!(s.stop().await?.success());
    let args = ["healthcheck", "--server", &addr, "--data-dir", d, "--timeout-secs", "2"];
    let (ok, _, err) = qchatd(&args, &[]).await?;
    assert!(!ok, "no server, yet healthy");
    assert_eq!(err.trim().lines().count(), 1, "one-line reason: {err}");
    Ok(())
}

#[tokio::test]
async fn sigterm_closes_clients_with_the_reason_and_loses_no_acknowledged_message()
-> anyhow::Result<()> {
    let mut s = TestServer::start().await?;
    acme(&s, &["ann", "bob"]).await?;
    let mut ann = RawConn::connect(s.addr, &s.data_dir()).await?;
    ann.login("acme", "ann", PW).await?;
    ann.ok("room.join", json!({"room": "general"})).await?;
    let mut bob = RawConn::connect(s.addr, &s.data_dir()).await?;
    bob.login("acme", "bob", PW).await?;
    bob.ok("room.join", json!({"room": "general"})).await?;
    for i in 0..20 {
        let m =
            json!({"room": "general", "client_msg_id": format!("m{i}"), "body": format!("hi {i}")});
        ann.ok("send", m).await?;
    }

    let status = s.stop().await?;
    assert!(status.success(), "exit status {status}");
    for c in [&ann, &bob] {
        match within("client sees the close", c.conn.closed()).await {
            quinn::ConnectionError::ApplicationClosed(close) => {
                assert_eq!(close.error_code.into_inner(), 4);
                assert_eq!(&close.reason[..], b"server shutting down");
            }
            other => bail!("expected code 4, got {other}"),
        }
    }

    s.start_again().await?;
    let mut c = RawConn::connect(s.addr, &s.data_dir()).await?;
    c.login("acme", "bob", PW).await?;
    let h = c.ok("history", json!({"room": "general", "limit": 100})).await?;
    let bodies: Vec<_> = h["messages"]
        .as_array()
        .context("messages")?
        .iter()
        // Past the system messages of the two joins.
        .filter(|m| m["kind"] == "text")
        .filter_map(|m| m["body"].as_str().map(str::to_owned))
        .collect();
    let want: Vec<_> = (0..20).map(|i| format!("hi {i}")).collect();
    assert_eq!(bodies, want);
    Ok(())
}

#[tokio::test]
async fn sighup_reloads_the_certificate_and_keeps_open_connections() -> anyhow::Result<()> {
    let s = TestServer::start().await?;
    acme(&s, &["ann"]).await?;
    let mut old = RawConn::connect(s.addr, &s.data_dir()).await?;
    old.login("acme", "ann", PW).await?;

    // A new certificate, generated elsewhere, put in place of the old one.
    let other = tempfile::tempdir()?;
    let o = other.path().to_str().context("utf-8 path")?;
    let (ok, out, _) = qchatd(&["cert", "show", "--data-dir", o], &[]).await?;
    assert!(ok);
    let new_fp = out.trim().strip_prefix("certificate sha256 ").context("fingerprint")?.to_owned();
    assert_ne!(new_fp, s.fingerprint);
    for f in ["tls/cert.pem", "tls/key.pem"] {
        std::fs::copy(other.path().join(f), s.data_dir().join(f))?;
    }
    let pid = s.pid().context("pid")?;
    assert!(
        std::process::Command::new("kill").arg("-HUP").arg(pid.to_string()).status()?.success()
    );

    // Poll (bounded) until new handshakes see the new certificate: the
    // health check pins the data directory's (new) certificate.
    let addr = s.addr.to_string();
    let d = s.data_dir();
    let d = d.to_str().context("utf-8 path")?;
    within("new certificate served", async {
        loop {
            let args = ["healthcheck", "--server", &addr, "--data-dir", d, "--timeout-secs", "2"];
            let (ok, out, _) = qchatd(&args, &[]).await?;
            if ok && out.contains(&new_fp) {
                return Ok::<_, anyhow::Error>(());
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })
    .await?;
    let mut fresh = RawConn::connect(s.addr, &s.data_dir()).await?;
    fresh.login("acme", "ann", PW).await?;
    old.ok("ping", json!({})).await.context("the open connection survived")?;
    Ok(())
}

#[tokio::test]
async fn online_backup_restores_the_messages() -> anyhow::Result<()> {
    // `qchatd backup` copies the SQLite file (PostgreSQL's is pg_dump), so
    // this test runs on SQLite whatever QCHAT_TEST_BACKEND says.
    let mut s = TestServer::start_on(
        Backend::Sqlite,
        &["--idle-timeout-secs", "4"],
        "qchat_service=debug,info",
    )
    .await?;
    acme(&s, &["ann"]).await?;
    let mut ann = RawConn::connect(s.addr, &s.data_dir()).await?;
    ann.login("acme", "ann", PW).await?;
    ann.ok("room.join", json!({"room": "general"})).await?;
    for i in 0..5 {
        ann.ok(
            "send",
            json!({"room": "general", "client_msg_id": format!("b{i}"), "body": "kept"}),
        )
        .await?;
    }
    let out = s.dir.path().join("backup/qchat-backup.db");
    let out_s = out.to_str().context("utf-8 path")?;
    s.admin(&["backup", "--out", out_s], None).await?;
    // Written after the backup: gone after the restore.
    ann.ok("send", json!({"room": "general", "client_msg_id": "late", "body": "late"})).await?;
    assert!(s.admin(&["backup", "--out", out_s], None).await.is_err(), "never overwrites");

    drop(ann);
    assert!(s.stop().await?.success());
    let db = s.data_dir().join("qchat.db");
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(s.data_dir().join(format!("qchat.db{suffix}")));
    }
    std::fs::copy(&out, &db)?;
    s.start_again().await?;
    let mut c = RawConn::connect(s.addr, &s.data_dir()).await?;
    c.login("acme", "ann", PW).await?;
    let h = c.ok("history", json!({"room": "general"})).await?;
    let texts = h["messages"].as_array().context("messages")?;
    let n = texts.iter().filter(|m| m["kind"] == "text").count();
    assert_eq!(n, 5, "{h}");
    Ok(())
}

/// Starts `qchatd serve` with a config file, env and flags; returns the
/// listening address, or the stderr when it refused to start.
async fn serve(
    dir: &Path,
    toml: &str,
    envs: &[(&str, &str)],
    flags: &[&str],
) -> anyhow::Result<Result<(tokio::process::Child, std::net::SocketAddr), String>> {
    let cfg = dir.join("qchatd.toml");
    std::fs::write(&cfg, toml)?;
    let mut cmd = Command::new(bin_path("qchatd"));
    cmd.arg("serve").arg("--config").arg(&cfg).args(flags);
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn()?;
    let mut lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
    let first = within("serve starts or fails", lines.next_line()).await?;
    if let Some(addr) = first.as_deref().and_then(|l| l.strip_prefix("listening on ")) {
        let addr = addr.parse()?;
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        return Ok(Ok((child, addr)));
    }
    let out = within("serve exits", child.wait_with_output()).await?;
    Ok(Err(String::from_utf8_lossy(&out.stderr).into_owned()))
}

/// How many connections from 127.0.0.1 the server accepts (up to 4).
async fn accepted(addr: std::net::SocketAddr, data: &Path) -> usize {
    let mut conns = Vec::new();
    for _ in 0..4 {
        let Ok(mut c) = RawConn::connect(addr, data).await else { break };
        if c.call("ping", json!({})).await.is_err() {
            break;
        }
        conns.push(c);
    }
    conns.len()
}

#[tokio::test]
async fn config_precedence_is_file_then_env_then_flags_and_bad_keys_are_refused()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let file = format!(
        "data_dir = {:?}\nlisten = \"127.0.0.1:0\"\n[limits]\nmax_connections_per_ip = 1\n",
        data.to_str().context("utf-8 path")?
    );
    let cases: [(Envs<'_>, &[&str], usize); 3] = [
        (&[], &[], 1),
        (&[("QCHAT_MAX_CONNECTIONS_PER_IP", "2")], &[], 2),
        (&[("QCHAT_MAX_CONNECTIONS_PER_IP", "2")], &["--max-connections-per-ip", "3"], 3),
    ];
    for (envs, flags, want) in cases {
        let (mut child, addr) = serve(dir.path(), &file, envs, flags)
            .await?
            .map_err(|e| anyhow::anyhow!("did not start: {e}"))?;
        assert_eq!(accepted(addr, &data).await, want, "env {envs:?} flags {flags:?}");
        child.kill().await?;
    }

    let refused: [(&str, Envs<'_>, &str); 4] = [
        ("[limits]\nmax_conections = 3\n", &[], "max_conections"),
        ("listen = 4433\n", &[], "listen"),
        ("", &[("QCHAT_MAX_CONNECTIONS", "many")], "max-connections"),
        ("", &[("QCHAT_MAX_CONNECTIONS_PER_IP", "0")], "max_connections_per_ip"),
    ];
    for (toml, envs, key) in refused {
        let err =
            serve(dir.path(), toml, envs, &["--data-dir", "unused", "--listen", "127.0.0.1:0"])
                .await?
                .err()
                .with_context(|| format!("{toml:?} {envs:?} was accepted"))?;
        assert!(err.contains(key), "{key} not named in: {err}");
    }
    Ok(())
}

#[tokio::test]
async fn disable_and_password_reset_revoke_sessions() -> anyhow::Result<()> {
    let s = TestServer::start().await?;
    acme(&s, &["ann"]).await?;
    let mut c = RawConn::connect(s.addr, &s.data_dir()).await?;
    let token = c.login("acme", "ann", PW).await?["token"].as_str().context("token")?.to_owned();

    let out = s.admin(&["user", "disable", "--tenant", "acme", "ann"], None).await?;
    assert!(out.contains("revoked 1 sessions"), "{out}");
    let mut c = RawConn::connect(s.addr, &s.data_dir()).await?;
    let r = c.call("resume", json!({"token": token})).await?;
    assert_eq!(r["err"]["code"], "unauthorized", "{r}");
    let r = c.call("login", json!({"tenant": "acme", "user": "ann", "password": PW})).await?;
    assert_eq!(r["err"]["code"], "unauthorized", "{r}");

    s.admin(&["user", "enable", "--tenant", "acme", "ann"], None).await?;
    let new_pw = "battery staple";
    let passwd = ["user", "passwd", "--tenant", "acme", "ann", "--password-stdin"];
    s.admin(&passwd, Some(&format!("{new_pw}\n"))).await?;
    let mut c = RawConn::connect(s.addr, &s.data_dir()).await?;
    let r = c.call("login", json!({"tenant": "acme", "user": "ann", "password": PW})).await?;
    assert_eq!(r["err"]["code"], "unauthorized", "old password: {r}");
    c.login("acme", "ann", new_pw).await?;

    let list = s.admin(&["user", "list", "--tenant", "acme"], None).await?;
    assert!(list.contains("ann\tfalse\t1"), "{list}");
    assert!(s.admin(&["tenant", "delete", "acme"], None).await.is_err(), "needs --yes");
    Ok(())
}

#[tokio::test]
async fn metrics_port_serves_prometheus_text_and_health() -> anyhow::Result<()> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let s = TestServer::start_with(&["--metrics-listen", "127.0.0.1:0", "--log-format", "json"])
        .await?;
    acme(&s, &["ann"]).await?;
    let metrics: std::net::SocketAddr = within("metrics address logged", async {
        loop {
            let log = s.log_text();
            if let Some(a) = log.split("\"metrics\":\"").nth(1).and_then(|r| r.split('"').next()) {
                return a.parse::<std::net::SocketAddr>();
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await?;
    let mut c = RawConn::connect(s.addr, &s.data_dir()).await?;
    c.login("acme", "ann", PW).await?;
    let r = c.call("login", json!({"tenant": "acme", "user": "ann", "password": "nope"})).await?;
    assert_eq!(r["err"]["code"], "conflict");
    let get = |path: &'static str| async move {
        let mut tcp = tokio::net::TcpStream::connect(metrics).await?;
        tcp.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()).await?;
        let mut body = String::new();
        tcp.read_to_string(&mut body).await?;
        Ok::<_, anyhow::Error>(body)
    };
    let text = within("GET /metrics", get("/metrics")).await?;
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    for line in [
        "qchat_connections 1",
        "qchat_logins_total 1",
        "# TYPE qchat_commit_seconds histogram",
        "qchat_transfers_active 0",
    ] {
        assert!(text.contains(line), "{line} missing: {text}");
    }
    assert!(!text.contains(PW) && !text.contains("ann"), "no names or secrets");
    assert!(within("GET /health", get("/health")).await?.ends_with("ok\n"));
    Ok(())
}

//! PostgreSQL going away under a running qchatd: requests during the outage
//! fail with `unavailable` within seconds (never hang, never `internal`),
//! nothing acknowledged is lost, and the server recovers by itself when the
//! database is back, without a restart.
//!
//! The outage is made with a TCP relay of the test's own in front of the
//! machine's PostgreSQL (qchatd connects to the relay): stopping the relay
//! refuses new connections and cuts every open one, as a database restart
//! does, while the shared server itself is never touched.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use qchat_tests::{RawConn, ScratchDb, TestServer, bin_path, pg_admin_url, within};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

const PW: &str = "correct horse battery";

/// A TCP relay on a fixed loopback port to the PostgreSQL server.
struct Relay {
    addr: SocketAddr,
    upstream: SocketAddr,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: Option<JoinHandle<()>>,
}

impl Relay {
    async fn start(upstream: SocketAddr) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let mut r = Self { addr, upstream, tasks: Arc::default(), accept: None };
        r.serve(listener);
        Ok(r)
    }

    fn serve(&mut self, listener: TcpListener) {
        let (upstream, tasks) = (self.upstream, self.tasks.clone());
        self.accept = Some(tokio::spawn(async move {
            while let Ok((mut down, _)) = listener.accept().await {
                let t = tokio::spawn(async move {
                    if let Ok(mut up) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
                    }
                });
                tasks.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(t);
            }
        }));
    }

    /// The database "goes down": no new connections, open ones cut.
    fn stop(&mut self) {
        if let Some(a) = self.accept.take() {
            a.abort();
        }
        for t in self.tasks.lock().unwrap_or_else(std::sync::PoisonError::into_inner).drain(..) {
            t.abort();
        }
    }

    /// The database is back on the same address.
    async fn restart(&mut self) -> anyhow::Result<()> {
        let listener = TcpListener::bind(self.addr).await.context("rebinding the relay")?;
        self.serve(listener);
        Ok(())
    }
}

/// `postgres://` URL host:port of the test server.
fn pg_addr(url: &str) -> anyhow::Result<SocketAddr> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host = rest.split(['/', '?']).next().unwrap_or_default();
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    let host = if host.contains(':') { host.to_owned() } else { format!("{host}:5432") };
    let host = host.replace("localhost", "127.0.0.1");
    host.parse().with_context(|| format!("the test server's address in {url}"))
}

#[tokio::test]
async fn a_database_outage_answers_unavailable_and_heals_without_a_restart() -> anyhow::Result<()> {
    let pg = ScratchDb::create().await?;
    let mut relay = Relay::start(pg_addr(&pg_admin_url())?).await?;
    let via_relay = pg.url.replacen(&pg_addr(&pg.url)?.to_string(), &relay.addr.to_string(), 1);
    let via_relay = if via_relay == pg.url {
        // The URL named the host without a port, or as localhost.
        qchat_tests::with_database(&format!("postgres://root@{}/postgres", relay.addr), pg.name())
    } else {
        via_relay
    };
    // Tenant, user and room straight on the database (the admin commands
    // take the URL too), then the server through the relay.
    let dir = tempfile::tempdir()?;
    let admin = async |args: &[&str], stdin: &str| -> anyhow::Result<()> {
        use tokio::io::AsyncWriteExt as _;
        let mut child = tokio::process::Command::new(bin_path("qchatd"))
            .args(args)
            .arg("--database-url")
            .arg(&pg.url)
            .arg("--data-dir")
            .arg(dir.path())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()?;
        if let Some(mut input) = child.stdin.take() {
            input.write_all(stdin.as_bytes()).await?;
        }
        let out = within("qchatd admin", child.wait_with_output()).await?;
        ensure!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        Ok(())
    };
    admin(&["tenant", "create", "acme"], "").await?;
    admin(&["user", "create", "--tenant", "acme", "ann", "--password-stdin"], &format!("{PW}\n"))
        .await?;
    admin(&["room", "create", "--tenant", "acme", "general"], "").await?;
    let s = TestServer::start_with(&["--idle-timeout-secs", "30", "--database-url", &via_relay])
        .await?;
    let mut ann = RawConn::connect(s.addr, &s.data_dir()).await?;
    ann.login("acme", "ann", PW).await?;
    ann.ok("room.join", json!({"room": "general"})).await?;
    for i in 0..5 {
        ann.ok(
            "send",
            json!({"room": "general", "client_msg_id": format!("a{i}"), "body": "before"}),
        )
        .await?;
    }

    relay.stop();
    let started = Instant::now();
    let reply = within(
        "a send during the outage",
        ann.call("send", json!({"room": "general", "client_msg_id": "during", "body": "x"})),
    )
    .await?;
    ensure!(reply["err"]["code"] == "unavailable", "during the outage: {reply}");
    ensure!(started.elapsed() < Duration::from_secs(15), "answered in {:?}", started.elapsed());
    let reply =
        within("history during the outage", ann.call("history", json!({"room": "general"})))
            .await?;
    ensure!(reply["err"]["code"] == "unavailable", "history during the outage: {reply}");

    relay.restart().await?;
    // The retry of the refused send, as a client does after `unavailable`,
    // then more; no restart of qchatd.
    let deadline = Instant::now() + Duration::from_secs(15);
    let seq = loop {
        let r = ann
            .call("send", json!({"room": "general", "client_msg_id": "during", "body": "x"}))
            .await?;
        if let Some(seq) = r["ok"]["seq"].as_u64() {
            break seq;
        }
        ensure!(Instant::now() < deadline, "no recovery: {r}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Seq 1 is ann's join (a system message), 2 to 6 the sends before.
    assert_eq!(seq, 7, "the next seq: nothing lost, no gap");
    let page = ann.ok("history", json!({"room": "general", "limit": 50})).await?;
    let seqs: Vec<u64> = page["messages"]
        .as_array()
        .map(|m| m.iter().filter_map(|m| m["seq"].as_u64()).collect())
        .unwrap_or_default();
    assert_eq!(seqs, (1..=7).collect::<Vec<_>>(), "every acknowledged message, once");
    drop(relay);
    Ok(())
}

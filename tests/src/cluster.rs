//! A cluster on loopback for one test: a private `nats-server` on a random
//! port, one fresh PostgreSQL database, one shared file directory, and N
//! `qchatd` nodes that use all three and share one certificate (so that a
//! client pinning it by fingerprint may be moved between nodes).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio::process::{Child, Command};

use crate::{ScratchDb, TestServer};

/// Where the NATS server binary is, unless `NATS_SERVER_BIN` says.
const NATS_SERVER: &str = "/usr/sbin/nats-server";

/// A private `nats-server` on 127.0.0.1, killed on drop.
pub struct Nats {
    child: Option<Child>,
    /// Its client port.
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Nats {
    /// Starts one on a free port and waits until it takes connections.
    ///
    /// # Errors
    /// When the binary is missing or does not come up within 10 s.
    pub async fn start() -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut n = Self { child: None, port, dir: tempfile::tempdir()? };
        n.start_again().await?;
        Ok(n)
    }

    /// Its process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Starts it again on the same port after [`Self::stop`].
    ///
    /// # Errors
    /// As [`Self::start`].
    pub async fn start_again(&mut self) -> anyhow::Result<()> {
        if self.child.is_some() {
            bail!("nats-server still running");
        }
        let bin =
            std::env::var_os("NATS_SERVER_BIN").map_or(PathBuf::from(NATS_SERVER), PathBuf::from);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("nats.log"))?;
        let child = Command::new(&bin)
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {} (Debian package nats-server)", bin.display()))?;
        self.child = Some(child);
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("nats-server did not listen on {addr} within 10 s")
    }

    /// Stops it (SIGKILL: the nodes see their connections drop).
    ///
    /// # Errors
    /// When it is not running.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        let mut child = self.child.take().context("nats-server not running")?;
        child.start_kill()?;
        let _ = tokio::time::timeout(crate::STEP, child.wait()).await;
        Ok(())
    }
}

/// N nodes sharing a database, a NATS server and a file directory.
pub struct Cluster {
    /// The nodes (dropped, so killed, before what they share).
    pub nodes: Vec<TestServer>,
    /// Their NATS server.
    pub nats: Nats,
    /// Their database.
    pub db: ScratchDb,
    /// Their shared file directory (and where the shared certificate is).
    pub shared: tempfile::TempDir,
}

impl Cluster {
    /// Starts `n` nodes (idle timeout 4 s, so that a killed node's clients
    /// notice within seconds) with `extra` `serve` flags.
    ///
    /// # Errors
    /// When PostgreSQL, nats-server or a node cannot be started.
    pub async fn start(n: usize, extra: &[&str]) -> anyhow::Result<Self> {
        Self::start_logging(n, extra, "qchat_service=debug,info").await
    }

    /// [`Self::start`] with a `RUST_LOG` filter for the nodes; an
    /// `--idle-timeout-secs` in `extra` replaces the 4 s.
    ///
    /// # Errors
    /// As [`Self::start`].
    pub async fn start_logging(n: usize, extra: &[&str], log: &str) -> anyhow::Result<Self> {
        let db = ScratchDb::create().await?;
        let nats = Nats::start().await?;
        let shared = tempfile::tempdir()?;
        let files = shared.path().join("files");
        let mut c = Self { nodes: Vec::new(), nats, db, shared };
        for i in 0..n {
            c.add_node(i, extra, &files, log).await?;
        }
        Ok(c)
    }

    async fn add_node(
        &mut self,
        i: usize,
        extra: &[&str],
        files: &Path,
        log: &str,
    ) -> anyhow::Result<()> {
        let mut args: Vec<String> = Vec::new();
        if !extra.contains(&"--idle-timeout-secs") {
            args.extend(["--idle-timeout-secs".into(), "4".into()]);
        }
        args.extend([
            "--nats-url".into(),
            self.nats.url(),
            "--node-name".into(),
            format!("node{i}"),
            "--files-dir".into(),
            files.display().to_string(),
        ]);
        if let Some(first) = self.nodes.first() {
            // One certificate for every node: the first node's.
            let tls = first.data_dir().join("tls");
            args.extend([
                "--tls-cert".into(),
                tls.join("cert.pem").display().to_string(),
                "--tls-key".into(),
                tls.join("key.pem").display().to_string(),
            ]);
        }
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let node = TestServer::start_in(&self.db.url, &args, log).await?;
        // No wait for the node to reach NATS: it serves at once, and what
        // other nodes publish before its subscription is up is read back
        // from the database when it is (messages, revocations, kicks).
        self.nodes.push(node);
        Ok(())
    }

    /// The nodes' addresses as a client's `--server` list, in node order.
    pub fn addresses(&self) -> String {
        self.nodes.iter().map(|n| n.addr.to_string()).collect::<Vec<_>>().join(",")
    }

    /// The certificate every node presents.
    pub fn fingerprint(&self) -> &str {
        &self.nodes[0].fingerprint
    }
}

//! A real `qchatd` process for one test.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context as _, bail};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

use crate::Backend;

/// Path of a workspace binary (`qchatd` or `qchat`) next to the test executable.
pub fn bin_path(name: &str) -> PathBuf {
    let var = format!("{}_BIN", name.to_uppercase());
    if let Some(p) = std::env::var_os(&var) {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    // target/<profile>/deps/<test> -> target/<profile>/<name>; a binary such as
    // target/release/qchat-bench finds its siblings directly.
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.pop();
    }
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} not found: run the suite with `cargo test --workspace` (or set {var})",
        path.display()
    );
    path
}

/// A running `qchatd serve`, killed on drop.
pub struct TestServer {
    child: Option<Child>,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its certificate fingerprint as printed.
    pub fingerprint: String,
    /// Its data directory.
    pub dir: tempfile::TempDir,
    extra: Vec<String>,
    log_filter: String,
    /// The PostgreSQL database it runs on (`None`: SQLite in the data directory).
    pg: Option<crate::ScratchDb>,
    /// A PostgreSQL database it shares with other servers (a cluster's),
    /// owned by the caller.
    shared_db: Option<String>,
    /// Captured stderr of the current process (logs), appended on exit.
    pub log: PathBuf,
}

impl TestServer {
    /// Runs the `qchat` CLI as `user` of `tenant` with `password`, pinned
    /// to this server's certificate, with `home` as its HOME (and its
    /// known-hosts file there); its exit status, stdout and stderr.
    ///
    /// # Errors
    /// When the CLI cannot be started.
    ///
    /// # Panics
    /// When it runs longer than [`crate::STEP`].
    pub async fn qchat(
        &self,
        home: &Path,
        tenant: &str,
        user: &str,
        password: &str,
        args: &[&str],
    ) -> anyhow::Result<(bool, String, String)> {
        let out = crate::within(
            "qchat",
            Command::new(bin_path("qchat"))
                .args(["--server", &self.addr.to_string(), "--tenant", tenant, "--user", user])
                .args(["--fingerprint", &self.fingerprint, "--known-hosts"])
                .arg(home.join("known_hosts"))
                .args(args)
                .env("QCHAT_PASSWORD", password)
                .env("HOME", home)
                .stdin(Stdio::null())
                .kill_on_drop(true)
                .output(),
        )
        .await?;
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        Ok((out.status.success(), text(&out.stdout), text(&out.stderr)))
    }

    /// Starts a server with a fresh data directory and a short idle timeout
    /// (so dropped clients go offline within seconds).
    ///
    /// # Errors
    /// When the binary fails to start or print its two lines.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(&["--idle-timeout-secs", "4"]).await
    }

    /// Starts a server with extra `serve` flags.
    ///
    /// # Errors
    /// When the binary fails to start or print its two lines.
    pub async fn start_with(extra: &[&str]) -> anyhow::Result<Self> {
        Self::start_logging(extra, "qchat_service=debug,info").await
    }

    /// Starts a server with extra `serve` flags and a `RUST_LOG` filter.
    ///
    /// # Errors
    /// When the binary fails to start or print its two lines.
    pub async fn start_logging(extra: &[&str], log_filter: &str) -> anyhow::Result<Self> {
        Self::start_on(Backend::from_env(), extra, log_filter).await
    }

    /// Starts a server on `backend` (a fresh PostgreSQL database for
    /// [`Backend::Postgres`]) with extra `serve` flags and a `RUST_LOG` filter.
    ///
    /// # Errors
    /// When the database cannot be made or the binary fails to start.
    pub async fn start_on(
        backend: Backend,
        extra: &[&str],
        log_filter: &str,
    ) -> anyhow::Result<Self> {
        let pg = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(crate::ScratchDb::create().await?),
        };
        let dir = tempfile::tempdir().context("tempdir")?;
        let log = dir.path().join("qchatd.log");
        let mut s = Self {
            child: None,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            fingerprint: String::new(),
            dir,
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
            log_filter: log_filter.to_owned(),
            pg,
            shared_db: None,
            log,
        };
        s.spawn().await?;
        Ok(s)
    }

    /// Starts a server on the PostgreSQL database at `database_url`, which
    /// the caller owns and other servers may share (a cluster's nodes).
    ///
    /// # Errors
    /// When the binary fails to start.
    pub async fn start_in(
        database_url: &str,
        extra: &[&str],
        log_filter: &str,
    ) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir().context("tempdir")?;
        let log = dir.path().join("qchatd.log");
        let mut s = Self {
            child: None,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            fingerprint: String::new(),
            dir,
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
            log_filter: log_filter.to_owned(),
            pg: None,
            shared_db: Some(database_url.to_owned()),
            log,
        };
        s.spawn().await?;
        Ok(s)
    }

    async fn spawn(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log)?;
        let mut child = self.qchatd();
        let mut child = child
            .arg("serve")
            .arg("--data-dir")
            .arg(self.dir.path().join("data"))
            .arg("--listen")
            .arg(self.addr.to_string())
            .args(&self.extra)
            .env("RUST_LOG", &self.log_filter)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .context("spawning qchatd")?;
        let stdout = child.stdout.take().context("stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let read = async {
            let mut addr = None;
            let mut fp = None;
            while let Some(line) = lines.next_line().await? {
                if let Some(a) = line.strip_prefix("listening on ") {
                    addr = Some(a.parse::<SocketAddr>()?);
                } else if let Some(f) = line.strip_prefix("certificate sha256 ") {
                    fp = Some(f.to_owned());
                }
                if let (Some(a), Some(f)) = (addr, &fp) {
                    return Ok::<_, anyhow::Error>((a, f.clone()));
                }
            }
            bail!("qchatd exited before printing its address; log: {}", self.log.display())
        };
        let (addr, fp) =
            tokio::time::timeout(crate::STEP, read).await.context("qchatd start timed out")??;
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        self.addr = addr;
        self.fingerprint = fp;
        self.child = Some(child);
        Ok(())
    }

    /// Stops the server with SIGTERM and waits for it to exit; returns its status.
    ///
    /// # Errors
    /// When the process cannot be signalled or does not exit in time.
    pub async fn stop(&mut self) -> anyhow::Result<std::process::ExitStatus> {
        let mut child = self.child.take().context("not running")?;
        if let Some(pid) = child.id() {
            let status =
                std::process::Command::new("kill").arg("-TERM").arg(pid.to_string()).status()?;
            if !status.success() {
                bail!("kill -TERM failed");
            }
        }
        Ok(tokio::time::timeout(crate::STEP, child.wait())
            .await
            .context("qchatd did not stop")??)
    }

    /// Kills the process with SIGKILL — a crash: no shutdown, nothing
    /// flushed that was not already written — and reaps it. [`Self::start_again`]
    /// brings it back on the same address and data directory.
    ///
    /// # Errors
    /// When it is not running or does not die in time.
    pub async fn kill(&mut self) -> anyhow::Result<std::process::ExitStatus> {
        let mut child = self.child.take().context("not running")?;
        child.start_kill().context("sending SIGKILL")?;
        Ok(tokio::time::timeout(crate::STEP, child.wait())
            .await
            .context("qchatd did not die")??)
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// Starts the process again after [`Self::stop`], on the same address and
    /// data directory (e.g. after restoring a backup into it).
    ///
    /// # Errors
    /// When it fails to start.
    pub async fn start_again(&mut self) -> anyhow::Result<()> {
        if self.child.is_some() {
            bail!("still running");
        }
        self.spawn().await
    }

    /// Stops and starts again on the same address and data directory.
    ///
    /// # Errors
    /// When either step fails.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        let status = self.stop().await?;
        if !status.success() {
            bail!("qchatd exited with {status}");
        }
        self.spawn().await
    }

    /// A `qchatd` command on this server's database (`QCHAT_DATABASE_URL`
    /// set for PostgreSQL, cleared for SQLite).
    fn qchatd(&self) -> Command {
        let mut c = Command::new(bin_path("qchatd"));
        match (&self.pg, &self.shared_db) {
            (Some(pg), _) => c.env("QCHAT_DATABASE_URL", &pg.url),
            (None, Some(url)) => c.env("QCHAT_DATABASE_URL", url),
            (None, None) => c.env_remove("QCHAT_DATABASE_URL"),
        };
        c
    }

    /// Moves the stopped server to another database: `Some` runs it on that
    /// PostgreSQL database from the next start on, `None` on the SQLite file
    /// in its data directory.
    ///
    /// # Errors
    /// While it is running.
    pub fn use_postgres(&mut self, pg: Option<crate::ScratchDb>) -> anyhow::Result<()> {
        if self.child.is_some() {
            bail!("stop the server before moving it to another database");
        }
        self.pg = pg;
        Ok(())
    }

    /// The backend this server runs on.
    pub fn backend(&self) -> Backend {
        if self.pg.is_some() || self.shared_db.is_some() {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }

    /// The PostgreSQL URL of its database, when it runs on PostgreSQL.
    pub fn database_url(&self) -> Option<&str> {
        self.pg.as_ref().map(|p| p.url.as_str()).or(self.shared_db.as_deref())
    }

    /// The server's data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Runs a `qchatd` admin command against this server's data directory.
    ///
    /// # Errors
    /// When the command cannot run or exits non-zero (with its stderr).
    pub async fn admin(&self, args: &[&str], stdin: Option<&str>) -> anyhow::Result<String> {
        use tokio::io::AsyncWriteExt as _;
        let mut child = self
            .qchatd()
            .args(args)
            .arg("--data-dir")
            .arg(self.data_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        if let (Some(mut input), Some(text)) = (child.stdin.take(), stdin) {
            input.write_all(text.as_bytes()).await?;
        }
        let out = tokio::time::timeout(crate::STEP, child.wait_with_output()).await??;
        if !out.status.success() {
            bail!("qchatd {args:?}: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Creates a tenant.
    ///
    /// # Errors
    /// As [`Self::admin`].
    pub async fn tenant(&self, name: &str, open: bool) -> anyhow::Result<()> {
        let mut args = vec!["tenant", "create", name];
        if open {
            args.push("--open-registration");
        }
        self.admin(&args, None).await.map(drop)
    }

    /// Creates a user with `password`.
    ///
    /// # Errors
    /// As [`Self::admin`].
    pub async fn user(&self, tenant: &str, name: &str, password: &str) -> anyhow::Result<()> {
        self.admin(
            &["user", "create", "--tenant", tenant, name, "--password-stdin"],
            Some(&format!("{password}\n")),
        )
        .await
        .map(drop)
    }

    /// Creates a room.
    ///
    /// # Errors
    /// As [`Self::admin`].
    pub async fn room(&self, tenant: &str, name: &str) -> anyhow::Result<()> {
        self.admin(&["room", "create", "--tenant", tenant, name], None).await.map(drop)
    }

    /// The server's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        // QCHAT_TEST_KEEP=1 keeps the data directory and log for a post-mortem.
        if std::env::var_os("QCHAT_TEST_KEEP").is_some() || std::thread::panicking() {
            let dir = std::mem::replace(
                &mut self.dir,
                tempfile::TempDir::new().unwrap_or_else(|_| std::process::abort()),
            );
            eprintln!("qchatd data and log kept in {}", dir.keep().display());
        }
    }
}

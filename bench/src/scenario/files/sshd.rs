//! The scp peer of `files-scp`: OpenSSH's `sshd` (Debian's `openssh-server`,
//! installed by `bench/run`) on 127.0.0.1 with a configuration, host key and
//! client key of its own in a temporary directory, and `scp` commands that
//! trust that host key only.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

use crate::scenario::fanout::irc::free_tcp_port;

/// Where Debian installs the daemon and its SFTP server.
const SSHD: &str = "/usr/sbin/sshd";
const SFTP_SERVER: &str = "/usr/lib/openssh/sftp-server";

/// A running `sshd -D`, killed (by its PID) on drop.
pub(crate) struct Sshd {
    child: Child,
    port: u16,
    user: String,
    dir: tempfile::TempDir,
}

impl Sshd {
    /// Generates the keys, writes the configuration for a free loopback port
    /// and starts the daemon in the foreground; returns once it accepts
    /// connections.
    pub(crate) async fn start() -> anyhow::Result<Self> {
        ensure!(
            Path::new(SSHD).exists(),
            "{SSHD} is missing: run through bench/run, which installs Debian's openssh-server"
        );
        let dir = tempfile::Builder::new().prefix("qchat-bench-sshd").tempdir()?;
        let d = dir.path();
        for (key, what) in [("host_ed25519", "host"), ("client_ed25519", "client")] {
            let status = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", what, "-f"])
                .arg(d.join(key))
                .stdin(Stdio::null())
                .status()
                .await
                .context("running ssh-keygen")?;
            ensure!(status.success(), "ssh-keygen failed ({status})");
        }
        let user = current_user().await?;
        let port = free_tcp_port()?;
        std::fs::copy(d.join("client_ed25519.pub"), d.join("authorized_keys"))?;
        let host_pub = std::fs::read_to_string(d.join("host_ed25519.pub"))?;
        let mut fields = host_pub.split_whitespace();
        let (kind, key) = (fields.next().context("host key")?, fields.next().context("host key")?);
        std::fs::write(d.join("known_hosts"), format!("[127.0.0.1]:{port} {kind} {key}\n"))?;
        std::fs::write(d.join("sshd_config"), config(port, d, &user))?;
        // sshd's privilege separation directory (the package's service unit
        // makes it; nothing has here).
        std::fs::create_dir_all("/run/sshd").context("creating /run/sshd")?;
        let log = std::fs::File::create(d.join("sshd.log"))?;
        let child = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .context("starting sshd")?;
        let mut me = Self { child, port, user, dir };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return Ok(me);
            }
            if let Some(status) = me.child.try_wait()? {
                bail!("sshd exited ({status}): {}", me.log());
            }
            if tokio::time::Instant::now() >= deadline {
                bail!("sshd did not listen within 20 s: {}", me.log());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Its process id (its per-connection processes are its children).
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// `scp` with `cipher`, this server's port and keys, and nothing from
    /// the user's own ssh configuration.
    pub(crate) fn scp(&self, cipher: &str) -> Command {
        let d = self.dir.path();
        let mut cmd = Command::new("scp");
        cmd.args(["-q", "-B", "-F", "/dev/null", "-c", cipher, "-P", &self.port.to_string()])
            .arg("-i")
            .arg(d.join("client_ed25519"))
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", d.join("known_hosts").display()))
            .args([
                "-o",
                "GlobalKnownHostsFile=/dev/null",
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "LogLevel=ERROR",
            ])
            .stdin(Stdio::null());
        cmd
    }

    /// `user@127.0.0.1:PATH`, a remote path for [`Self::scp`].
    pub(crate) fn remote(&self, path: &Path) -> String {
        format!("{}@127.0.0.1:{}", self.user, path.display())
    }

    /// Kills it (by its PID) and reaps it.
    pub(crate) async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// The user this process runs as (whom the client key logs in as).
async fn current_user() -> anyhow::Result<String> {
    let out = Command::new("id").arg("-un").output().await.context("running id -un")?;
    ensure!(out.status.success(), "id -un failed");
    Ok(String::from_utf8(out.stdout)?.trim().to_owned())
}

/// Loopback only, public-key log-in for `user` with the temporary key,
/// Debian's SFTP server (what scp speaks by default since OpenSSH 9).
fn config(port: u16, dir: &Path, user: &str) -> String {
    let dir = dir.display();
    format!(
        "Port {port}\n\
         ListenAddress 127.0.0.1\n\
         HostKey {dir}/host_ed25519\n\
         PidFile none\n\
         AuthorizedKeysFile {dir}/authorized_keys\n\
         AllowUsers {user}\n\
         PubkeyAuthentication yes\n\
         PasswordAuthentication no\n\
         KbdInteractiveAuthentication no\n\
         PermitRootLogin prohibit-password\n\
         StrictModes no\n\
         UsePAM no\n\
         UseDNS no\n\
         Subsystem sftp {SFTP_SERVER}\n"
    )
}

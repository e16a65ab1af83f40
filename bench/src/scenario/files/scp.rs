//! Scenario `files-scp` (issue 20): the `qchat` command line's `upload` and
//! `download` against `scp` (OpenSSH, [`sshd`](super::sshd)) for the same
//! files, one big file (1 GiB) and eight in one command (8 x 128 MiB), in
//! the same run. Per round and case the two tools alternate which goes
//! first, up and then down.
//!
//! Each transfer is one command run to its end, timed from its start to its
//! exit: the process start, the handshake and log-in (qchat: TLS 1.3 over
//! QUIC and an argon2id password check; scp: SSH with an Ed25519 key), the
//! bytes, and on qchat's side everything the server does before it answers
//! (hashing, the direct write, fsync, the commit of the file message) and
//! the client's own hashing and verification. scp runs with
//! `-c aes128-gcm@openssh.com` (`--cipher`), the fastest cipher on a CPU with
//! AES-NI, as qchat's QUIC uses AES-128-GCM.
//!
//! Every round writes fresh random files (and fsyncs them), so dedupe never
//! applies. Before the downloads, both servers' copies (the file scp
//! uploaded, the file in qchatd's store) are read once, so both are served
//! from the page cache. A fresh `qchatd` serves each round and case.
//!
//! CPU per side (user + system, 10 ms ticks, per GiB): the command, with
//! its children (`scp` and the `ssh` it runs), from this process's reaped
//! children's times; the server: `qchatd`'s own time, or the time of
//! `sshd`'s per-connection processes (with the `sftp-server` they run) as
//! `sshd` reaps them.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use qchat_tests::TestServer;
use tokio::process::Command;

use super::sshd::Sshd;
use super::{Case, Files, MIB, PASSWORD, ROOM, TENANT, USER, median};
use crate::process::{children_cpu_time, cpu_time, has_children};
use crate::report::Report;

/// Bound on one command.
const COMMAND_LIMIT: Duration = Duration::from_secs(300);

/// Flags of this scenario.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Rounds per case (each round runs both tools, up and down).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Size of the single file of the first case, in MiB.
    #[arg(long, default_value_t = 1024)]
    big_mib: u64,
    /// Files in one command in the second case.
    #[arg(long, default_value_t = 8)]
    parallel: usize,
    /// Size of each file of the second case, in MiB.
    #[arg(long, default_value_t = 128)]
    parallel_mib: u64,
    /// Directory for the generated and transferred files (default: the
    /// system temp dir).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// scp's cipher (`-c`).
    #[arg(long, default_value = "aes128-gcm@openssh.com")]
    cipher: String,
}

/// The two tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tool {
    Scp,
    Qchat,
}

/// Up or down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Upload,
    Download,
}

/// One tool's figures in one case and direction, a value per round.
#[derive(Debug, Default)]
struct Rounds {
    secs: Vec<f64>,
    /// CPU s/GiB of the command (with its children).
    cpu_client: Vec<f64>,
    /// CPU s/GiB of the server.
    cpu_server: Vec<f64>,
}

impl Rounds {
    fn add(&mut self, case: &Case, m: &Measured) {
        self.secs.push(m.took.as_secs_f64());
        self.cpu_client.push(case.per_gib(m.client_cpu));
        self.cpu_server.push(case.per_gib(m.server_cpu));
    }

    fn cpu(&self) -> String {
        let (c, s) = (median(&self.cpu_client), median(&self.cpu_server));
        format!("{:.2} ({c:.2} + {s:.2})", c + s)
    }
}

/// What one command took.
struct Measured {
    took: Duration,
    client_cpu: Duration,
    server_cpu: Duration,
    stdout: String,
}

/// Whose CPU time is the server's.
#[derive(Clone, Copy)]
enum ServerCpu {
    /// `qchatd`: the process itself.
    Own(u32),
    /// `sshd`: its per-connection children, once reaped.
    Children(u32),
}

impl ServerCpu {
    fn read(self) -> anyhow::Result<Duration> {
        match self {
            Self::Own(pid) => cpu_time(pid),
            Self::Children(pid) => children_cpu_time(pid),
        }
    }

    /// Waits (bounded) until `sshd` has reaped the session that just ended.
    async fn settle(self) {
        if let Self::Children(pid) = self {
            let deadline = Instant::now() + Duration::from_secs(5);
            while has_children(pid) && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// Runs `cmd` to its end; fails when it does.
async fn timed(cmd: &mut Command, server: ServerCpu, what: &str) -> anyhow::Result<Measured> {
    let me = std::process::id();
    let (client0, server0) = (children_cpu_time(me)?, server.read()?);
    let started = Instant::now();
    let out = tokio::time::timeout(
        COMMAND_LIMIT,
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true).output(),
    )
    .await
    .with_context(|| format!("{what} timed out"))?
    .with_context(|| format!("running {what}"))?;
    let took = started.elapsed();
    ensure!(
        out.status.success(),
        "{what} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    server.settle().await;
    Ok(Measured {
        took,
        client_cpu: children_cpu_time(me)?.saturating_sub(client0),
        server_cpu: server.read()?.saturating_sub(server0),
        stdout: String::from_utf8(out.stdout)?,
    })
}

/// Runs the scenario.
pub(crate) async fn run(args: Args) -> anyhow::Result<Report> {
    ensure!(args.rounds >= 1, "--rounds must be at least 1");
    ensure!(
        args.parallel >= 1 && args.big_mib >= 1 && args.parallel_mib >= 1,
        "sizes must be >= 1"
    );
    let cases = [
        Case { count: 1, mib: args.big_mib },
        Case { count: args.parallel, mib: args.parallel_mib },
    ];
    let root = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    let sshd = Sshd::start().await?;
    let sshd_cpu = ServerCpu::Children(sshd.pid().context("sshd pid")?);
    // Per case and direction: (scp, qchat).
    let mut tally: Vec<[(Rounds, Rounds); 2]> = cases.iter().map(|_| Default::default()).collect();
    for round in 0..args.rounds {
        let order =
            if round % 2 == 0 { [Tool::Scp, Tool::Qchat] } else { [Tool::Qchat, Tool::Scp] };
        for (case, t) in cases.iter().zip(&mut tally) {
            let server = TestServer::start_logging(&[], "warn").await?;
            server.tenant(TENANT, false).await?;
            server.user(TENANT, USER, PASSWORD).await?;
            server.room(TENANT, ROOM).await?;
            let qchatd_cpu = ServerCpu::Own(server.pid().context("qchatd pid")?);
            let files = Files::write(&root, case).await?;
            let work = tempfile::Builder::new().prefix("qchat-bench-scp").tempdir_in(&root)?;
            let dirs = ["scp-up", "scp-down", "qchat-down", "home"].map(|d| work.path().join(d));
            for d in &dirs {
                std::fs::create_dir(d)?;
            }
            let [scp_up, scp_down, qchat_down, home] = &dirs;
            let qchat = |args: &[&str]| {
                let mut cmd = Command::new(qchat_tests::bin_path("qchat"));
                cmd.args([
                    "--server",
                    &server.addr.to_string(),
                    "--tenant",
                    TENANT,
                    "--user",
                    USER,
                ])
                .args(["--fingerprint", &server.fingerprint])
                .args(args)
                .env("QCHAT_PASSWORD", PASSWORD)
                .env("QCHAT_KNOWN_HOSTS", home.join("known_hosts"))
                .env("HOME", home)
                .env_remove("RUST_LOG")
                .stdin(Stdio::null());
                cmd
            };
            let paths: Vec<&Path> = files.list.iter().map(|f| f.path.as_path()).collect();

            let mut ids = Vec::new();
            for tool in order {
                let m = match tool {
                    Tool::Scp => {
                        let mut cmd = sshd.scp(&args.cipher);
                        cmd.args(&paths).arg(sshd.remote(&with_slash(scp_up)));
                        timed(&mut cmd, sshd_cpu, "scp upload").await?
                    }
                    Tool::Qchat => {
                        let mut cmd = qchat(&["upload", ROOM]);
                        cmd.args(&paths);
                        let m = timed(&mut cmd, qchatd_cpu, "qchat upload").await?;
                        ids = uploaded_ids(&m.stdout, &files)?;
                        m
                    }
                };
                report_line(round, case, Direction::Upload, tool, &m);
                pick(t, Direction::Upload, tool).add(case, &m);
            }

            // Both servers' copies into the page cache.
            let sizes: Vec<u64> = files.list.iter().map(|f| f.size).collect();
            warm(scp_up, &sizes).await?;
            warm(&server.data_dir(), &sizes).await?;
            for tool in order {
                let m = match tool {
                    Tool::Scp => {
                        let mut cmd = sshd.scp(&args.cipher);
                        for f in &files.list {
                            let name = f.path.file_name().context("file name")?;
                            cmd.arg(sshd.remote(&scp_up.join(name)));
                        }
                        cmd.arg(scp_down);
                        timed(&mut cmd, sshd_cpu, "scp download").await?
                    }
                    Tool::Qchat => {
                        let mut cmd = qchat(&["download", "--out"]);
                        cmd.arg(qchat_down).args(ids.iter().map(u64::to_string));
                        timed(&mut cmd, qchatd_cpu, "qchat download").await?
                    }
                };
                report_line(round, case, Direction::Download, tool, &m);
                pick(t, Direction::Download, tool).add(case, &m);
            }
            for d in [scp_up, scp_down, qchat_down] {
                check_sizes(d, &sizes)?;
            }
            drop(server);
        }
    }
    sshd.stop().await;

    let mut report = Report::new(
        "files-scp",
        &[
            "case",
            "direction",
            "scp s (median)",
            "qchat s (median)",
            "qchat speed / scp",
            "scp rounds s",
            "qchat rounds s",
            "scp CPU s/GiB (scp + sshd)",
            "qchat CPU s/GiB (CLI + qchatd)",
        ],
    );
    for (case, t) in cases.iter().zip(&tally) {
        for (dir, (scp, qchat)) in [Direction::Upload, Direction::Download].iter().zip(t) {
            let (s, q) = (median(&scp.secs), median(&qchat.secs));
            report.row(vec![
                case.name(),
                format!("{dir:?}").to_lowercase(),
                format!("{s:.2}"),
                format!("{q:.2}"),
                crate::report::ratio(s, q),
                secs_list(&scp.secs),
                secs_list(&qchat.secs),
                scp.cpu(),
                qchat.cpu(),
            ]);
        }
    }
    report.note(format!(
        "{} round(s) per case; in each, scp and qchat alternate which goes first, uploading \
         then downloading; fresh random files every round; loopback. scp: OpenSSH with -c {} \
         (SFTP, key log-in); qchat: the `qchat` command line against a release qchatd (fresh \
         per round and case), password log-in, every file in one command. Times are each \
         command's start to exit; qchat speed / scp = scp's time over qchat's (above 1: qchat \
         faster). CPU = user + system seconds per GiB (medians): the command with its \
         children, and the server (qchatd; sshd's per-connection processes).",
        args.rounds, args.cipher
    ));
    Ok(report)
}

fn pick(t: &mut [(Rounds, Rounds); 2], dir: Direction, tool: Tool) -> &mut Rounds {
    let pair = &mut t[usize::from(dir == Direction::Download)];
    if tool == Tool::Scp { &mut pair.0 } else { &mut pair.1 }
}

fn report_line(round: usize, case: &Case, dir: Direction, tool: Tool, m: &Measured) {
    #[allow(clippy::cast_precision_loss)]
    let rate = case.bytes() as f64 / MIB as f64 / m.took.as_secs_f64().max(1e-9);
    eprintln!(
        "round {} {} {dir:?} {tool:?}: {:.2} s ({rate:.0} MiB/s), CPU {:.2} + {:.2} s/GiB",
        round + 1,
        case.name(),
        m.took.as_secs_f64(),
        case.per_gib(m.client_cpu),
        case.per_gib(m.server_cpu)
    );
}

fn secs_list(v: &[f64]) -> String {
    v.iter().map(|s| format!("{s:.2}")).collect::<Vec<_>>().join(", ")
}

/// `dir` with a trailing `/`, so scp treats the remote target as a directory.
fn with_slash(dir: &Path) -> PathBuf {
    let mut s = dir.as_os_str().to_owned();
    s.push("/");
    PathBuf::from(s)
}

/// The file ids `qchat upload` printed (`uploaded NAME file_id=ID ... sent=N`),
/// in the order of `files`; every file must have been sent in full.
fn uploaded_ids(stdout: &str, files: &Files) -> anyhow::Result<Vec<u64>> {
    let field = |line: &str, key: &str| -> Option<u64> {
        line.split_whitespace().find_map(|w| w.strip_prefix(key)).and_then(|v| v.parse().ok())
    };
    let mut ids = Vec::new();
    for f in &files.list {
        let name = f.path.file_name().and_then(|n| n.to_str()).context("file name")?;
        let line = stdout
            .lines()
            .find(|l| {
                l.strip_prefix("uploaded ").is_some_and(|r| r.starts_with(&format!("{name} ")))
            })
            .with_context(|| format!("qchat upload printed nothing for {name}: {stdout}"))?;
        ensure!(field(line, "sent=") == Some(f.size), "{name} was not sent in full: {line}");
        ids.push(field(line, "file_id=").with_context(|| format!("no file id in {line}"))?);
    }
    Ok(ids)
}

/// Reads every file under `dir` whose size is one of `sizes`, so it is in
/// the page cache.
async fn warm(dir: &Path, sizes: &[u64]) -> anyhow::Result<()> {
    let (dir, sizes) = (dir.to_path_buf(), sizes.to_vec());
    tokio::task::spawn_blocking(move || {
        let mut buf = vec![0u8; usize::try_from(MIB)?];
        for path in files_under(&dir)? {
            if !sizes.contains(&std::fs::metadata(&path)?.len()) {
                continue;
            }
            let mut f = std::fs::File::open(&path)?;
            while std::io::Read::read(&mut f, &mut buf)? > 0 {}
        }
        Ok::<_, anyhow::Error>(())
    })
    .await?
}

/// Regular files under `dir`, recursively.
fn files_under(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                todo.push(entry.path());
            } else if kind.is_file() {
                out.push(entry.path());
            }
        }
    }
    Ok(out)
}

/// `dir` holds exactly one file of each of `sizes`' sizes (as many as given).
fn check_sizes(dir: &Path, sizes: &[u64]) -> anyhow::Result<()> {
    let mut found: Vec<u64> = files_under(dir)?
        .iter()
        .map(|p| std::fs::metadata(p).map(|m| m.len()))
        .collect::<Result<_, _>>()?;
    let mut want = sizes.to_vec();
    found.sort_unstable();
    want.sort_unstable();
    ensure!(found == want, "{} holds files of {found:?} bytes, expected {want:?}", dir.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_slash_marks_a_directory() {
        assert_eq!(with_slash(Path::new("/tmp/x")), PathBuf::from("/tmp/x/"));
    }
}

//! Scenario `idle`: thousands of logged-in idle connections; qchatd's
//! resident memory per connection (VmRSS from `/proc/<pid>/status`, before and
//! after they connect), then one message to a room of 1,000 of them, counted
//! at every receiver. No baseline: the target is absolute (≤ 64 KiB each).
//!
//! Set-up: `--room` users (one connection each) join room `big`, and
//! `--other-users` users join room `other`; the remaining connections are
//! spread over the other users (a user may hold many connections). Every
//! user is registered once over the protocol (one argon2 hash each); the idle
//! connections then log in with `resume` and their session tokens. They are
//! spread over `--workers` client processes (`qchat-bench worker
//! idle-clients`), so this process only measures and sends.

pub(crate) mod clients;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use serde_json::json;
use tokio::process::Command;
use tokio::time::Instant;

use crate::process;
use crate::report::Report;
use crate::scenario::fanout::{self, link};
use crate::worker::WorkerProcess;

/// Bound on the idle clients all logging in.
const READY_WITHIN: Duration = Duration::from_secs(600);
/// Bound on the room message reaching every member.
const DELIVER_WITHIN: Duration = Duration::from_secs(30);

/// Flags of this scenario.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Idle logged-in connections.
    #[arg(long, default_value_t = 5000)]
    connections: usize,
    /// Connections (one user each) in the room that gets the message.
    #[arg(long, default_value_t = 1000)]
    room: usize,
    /// Users the other connections are spread over.
    #[arg(long, default_value_t = 100)]
    other_users: usize,
    /// Client processes.
    #[arg(long, default_value_t = 4)]
    workers: usize,
    /// Client connections per UDP socket.
    #[arg(long, default_value_t = 64)]
    per_socket: usize,
    /// Seconds to let qchatd settle before each memory reading.
    #[arg(long, default_value_t = 3)]
    settle_secs: u64,
}

/// Runs the scenario.
pub(crate) async fn run(args: Args) -> anyhow::Result<Report> {
    ensure!(args.room <= args.connections, "--room must be ≤ --connections");
    ensure!(
        args.other_users >= 1 || args.room == args.connections,
        "--other-users must be ≥ 1 when some connections are outside the room"
    );
    ensure!(args.workers >= 1, "--workers must be ≥ 1");
    let qchatd = qchat_tests::TestServer::start_logging(
        // Every client logs in from 127.0.0.1, 64 at a time: log-ins
        // being checked count against the per-address allowance.
        &[
            "--max-connections-per-ip",
            "20000",
            "--max-connections",
            "20000",
            "--login-failures",
            "100000",
        ],
        "warn",
    )
    .await?;
    let pid = qchatd.pid().context("qchatd pid")?;
    qchatd.tenant(fanout::TENANT, true).await?;
    qchatd.room(fanout::TENANT, "big").await?;
    qchatd.room(fanout::TENANT, "other").await?;
    let (rss_start, _) = process::memory_kib(pid)?;

    let eps = Arc::new(link::Endpoints::qchat(qchatd.addr, &qchatd.data_dir(), 4)?);
    let t = Instant::now();
    let room_tokens = fanout::register(&eps, args.room, "r", &["big"]).await?;
    let other_n = if args.room < args.connections { args.other_users } else { 0 };
    let other_tokens = fanout::register(&eps, other_n, "o", &["other"]).await?;
    let sender_token = fanout::register(&eps, 1, "sender", &["big"]).await?;
    let registered = t.elapsed();
    eprintln!("registered {} users in {:.1} s", args.room + other_n + 1, registered.as_secs_f64());

    // One token per idle connection, dealt round-robin to the workers.
    let dir = tempfile::tempdir()?;
    let mut per_worker = vec![String::new(); args.workers];
    for c in 0..args.connections {
        let token = if c < args.room {
            &room_tokens[c]
        } else {
            &other_tokens[(c - args.room) % other_tokens.len()]
        };
        per_worker[c % args.workers].push_str(token);
        per_worker[c % args.workers].push('\n');
    }
    tokio::time::sleep(Duration::from_secs(args.settle_secs)).await;
    let (rss_before, hwm_before) = process::memory_kib(pid)?;

    let marker = format!("idle-bench-{}", std::process::id());
    let t = Instant::now();
    let mut workers = Vec::new();
    for (w, tokens) in per_worker.iter().enumerate() {
        let path = dir.path().join(format!("tokens-{w}"));
        std::fs::write(&path, tokens)?;
        workers.push(spawn_worker(&qchatd, &path, args.per_socket, &marker)?);
    }
    let mut connected = 0;
    for w in &mut workers {
        let line = tokio::time::timeout(READY_WITHIN, w.line())
            .await
            .context("idle clients did not log in in time")??;
        let n: usize = line
            .strip_prefix("ready ")
            .and_then(|r| r.split(' ').next())
            .and_then(|n| n.parse().ok())
            .with_context(|| format!("unexpected worker line {line:?}"))?;
        connected += n;
    }
    let login_secs = t.elapsed().as_secs_f64();
    ensure!(connected == args.connections, "only {connected} connections logged in");
    tokio::time::sleep(Duration::from_secs(args.settle_secs)).await;
    let (rss_after, hwm_after) = process::memory_kib(pid)?;

    // One message to the room; count it at every member.
    let mut sender = eps.connect().await?;
    sender.call(1, "resume", json!({"token": sender_token[0]})).await?;
    let t = Instant::now();
    sender
        .call(2, "send", json!({"room": "big", "client_msg_id": "idle-1", "body": marker}))
        .await?;
    let mut delivered = 0;
    while t.elapsed() < DELIVER_WITHIN {
        delivered = 0;
        for w in &mut workers {
            w.send("count").await?;
            let line = tokio::time::timeout(Duration::from_secs(10), w.line()).await??;
            delivered += line
                .strip_prefix("count ")
                .and_then(|n| n.parse::<usize>().ok())
                .with_context(|| format!("unexpected worker line {line:?}"))?;
        }
        if delivered >= args.room {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let deliver_ms = t.elapsed().as_secs_f64() * 1000.0;
    let (rss_end, hwm_end) = process::memory_kib(pid)?;
    sender.conn.close(0u32.into(), b"done");
    for w in workers {
        w.stop(Duration::from_secs(15)).await;
    }
    eps.close();

    #[allow(clippy::cast_precision_loss)]
    let per_conn = rss_after.saturating_sub(rss_before) as f64 / args.connections as f64;
    let mut report = Report::new(
        "idle",
        &[
            "connections",
            "qchatd RSS before",
            "RSS with all connected",
            "KiB per connection",
            "target",
            "room message delivered",
        ],
    );
    report.row(vec![
        args.connections.to_string(),
        format!("{:.1} MiB", kib_to_mib(rss_before)),
        format!("{:.1} MiB", kib_to_mib(rss_after)),
        format!("{per_conn:.1}"),
        "≤ 64".into(),
        format!("{delivered}/{} in {deliver_ms:.0} ms", args.room),
    ]);
    report.note(format!(
        "qchatd RSS at start {:.1} MiB; peak (VmHWM) before the connections {:.1} MiB \
         (argon2 during registration), after {:.1} MiB, at the end {:.1} MiB (RSS {:.1} MiB).",
        kib_to_mib(rss_start),
        kib_to_mib(hwm_before),
        kib_to_mib(hwm_after),
        kib_to_mib(hwm_end),
        kib_to_mib(rss_end)
    ));
    report.note(format!(
        "{} users registered over the protocol in {:.1} s; {} connections logged in with \
         `resume` from {} client processes in {login_secs:.1} s ({} in room `big`, one user \
         each; the rest share {other_n} users in room `other`); {} s settling before each \
         reading; qchatd log level warn.",
        args.room + other_n + 1,
        registered.as_secs_f64(),
        args.connections,
        args.workers,
        args.room,
        args.settle_secs
    ));
    if delivered != args.room {
        bail!("room message reached {delivered} of {} members\n{}", args.room, report.table());
    }
    Ok(report)
}

#[allow(clippy::cast_precision_loss)]
fn kib_to_mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Starts one idle-clients process.
fn spawn_worker(
    qchatd: &qchat_tests::TestServer,
    tokens: &std::path::Path,
    per_socket: usize,
    marker: &str,
) -> anyhow::Result<WorkerProcess> {
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.args(["worker", "idle-clients", "--server", &qchatd.addr.to_string(), "--data-dir"])
        .arg(qchatd.data_dir())
        .arg("--tokens")
        .arg(tokens)
        .args(["--per-socket", &per_socket.to_string(), "--marker", marker]);
    WorkerProcess::spawn(&mut cmd, "idle-clients worker")
}

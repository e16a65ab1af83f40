//! Scenario `durable`: acknowledged messages per second with 100 concurrent
//! senders, the writer's group commit (`max_commit_batch` at its default)
//! against one transaction per message (`max_commit_batch = 1`, the
//! baseline), each with `durability` full and normal (SQLite
//! `synchronous=FULL` / `NORMAL`). Every case starts a fresh release `qchatd`
//! on loopback with its data directory on the real disk (the system temp
//! directory, or `--dir`), and the cases run interleaved, their order
//! reversed in every other round. The same two commit modes run on
//! PostgreSQL too (`postgres`, a fresh database per case on the server
//! `QCHAT_TEST_PG_URL` names, 127.0.0.1:5432 by default), in the same run:
//! the figure is PostgreSQL's group commit against SQLite's `full`.
//!
//! Each sender is its own registered user in its own room, so the figure is
//! the writer's and not the fan-out's: every message still goes back to its
//! sender as an event, but to nobody else.

mod case;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::ensure;

use crate::report::{Percentiles, Report, ms, ratio};

/// Flags of this scenario.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Concurrent senders (connections, each with one send in flight).
    #[arg(long, default_value_t = 100)]
    senders: usize,
    /// Seconds each case sends for.
    #[arg(long, default_value_t = 5)]
    secs: u64,
    /// Rounds; each case runs once per round.
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// The group-commit batch (qchatd's default).
    #[arg(long, default_value_t = 256)]
    batch: usize,
    /// Directory for the servers' data directories (default: the system
    /// temp directory). Put it on the disk you want to measure: a tmpfs
    /// makes fsync free.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Run only these cases, as DURABILITY:BATCH (e.g. `full:256`,
    /// `postgres:256`); for profiling one case. The ratio needs both
    /// batches of a durability.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
}

/// Per case: label, outcomes of every round.
struct Case {
    setup: case::Setup,
    outcomes: Vec<case::Outcome>,
}

/// Runs the scenario.
pub(crate) async fn run(args: Args) -> anyhow::Result<Report> {
    ensure!(args.rounds >= 2, "at least 2 rounds");
    ensure!(args.senders >= 1, "at least one sender");
    if let Some(dir) = &args.dir {
        std::fs::create_dir_all(dir)?;
        set_tmpdir(dir);
    }
    let duration = Duration::from_secs(args.secs);
    let mut cases: Vec<Case> = Vec::new();
    for durability in ["full", "normal", "postgres"] {
        for batch in [args.batch, 1] {
            let setup = case::Setup { durability, batch, senders: args.senders, duration };
            if args.only.is_empty() || args.only.contains(&format!("{durability}:{batch}")) {
                cases.push(Case { setup, outcomes: Vec::new() });
            }
        }
    }
    ensure!(!cases.is_empty(), "--only matched no case (try full:256)");
    for round in 0..args.rounds {
        let mut order: Vec<usize> = (0..cases.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let setup = cases[i].setup;
            let outcome = case::run(setup).await?;
            eprintln!(
                "durable: round {} {} batch {}: {:.0} acks/s ({} in {:.2?}, {} commits)",
                round + 1,
                setup.durability,
                setup.batch,
                outcome.rate(),
                outcome.acked,
                outcome.elapsed,
                outcome.commits
            );
            cases[i].outcomes.push(outcome);
        }
    }
    Ok(report(&args, cases))
}

/// Where TestServer (through tempfile) puts the servers' data directories.
fn set_tmpdir(dir: &std::path::Path) {
    // Not TMPDIR: set_var is unsafe in edition 2024 and the workspace
    // forbids unsafe code; tempfile has an override for exactly this.
    if tempfile::env::override_temp_dir(dir).is_err() {
        eprintln!("durable: temp directory already chosen; --dir ignored");
    }
}

fn report(args: &Args, cases: Vec<Case>) -> Report {
    let mut report = Report::new(
        "durable",
        &[
            "durability",
            "commit",
            "acks/s (rounds)",
            "acks/s",
            "group ÷ single",
            "msgs per commit",
            "commit ms (mean)",
            "ack p50 ms",
            "ack p99 ms",
            "qchatd CPU µs/ack",
            "senders CPU µs/ack",
        ],
    );
    let rate = |c: &Case| {
        let acked: u64 = c.outcomes.iter().map(|o| o.acked).sum();
        let secs: f64 = c.outcomes.iter().map(|o| o.elapsed.as_secs_f64()).sum();
        acked as f64 / secs.max(1e-9)
    };
    for c in &cases {
        let single = cases
            .iter()
            .find(|o| o.setup.durability == c.setup.durability && o.setup.batch == 1)
            .map_or(0.0, rate);
        let acked: u64 = c.outcomes.iter().map(|o| o.acked).sum();
        let commits: u64 = c.outcomes.iter().map(|o| o.commits).sum();
        let commit_time: Duration = c.outcomes.iter().map(|o| o.commit_time).sum();
        let mut lat: Vec<Duration> =
            c.outcomes.iter().flat_map(|o| o.latencies.iter().copied()).collect();
        let p = Percentiles::of(&mut lat);
        let rounds: Vec<String> = c.outcomes.iter().map(|o| format!("{:.0}", o.rate())).collect();
        let per_ack = |f: fn(&case::Outcome) -> Duration| {
            let cpu: Duration = c.outcomes.iter().map(f).sum();
            format!("{:.0}", cpu.as_secs_f64() * 1e6 / acked.max(1) as f64)
        };
        report.row(vec![
            c.setup.durability.to_owned(),
            if c.setup.batch == 1 {
                "one transaction per message".to_owned()
            } else {
                format!("group (batch ≤ {})", c.setup.batch)
            },
            rounds.join(" / "),
            format!("{:.0}", rate(c)),
            ratio(rate(c), single),
            format!("{:.1}", acked as f64 / commits.max(1) as f64),
            format!("{:.2}", commit_time.as_secs_f64() * 1000.0 / commits.max(1) as f64),
            p.map_or_else(|| "-".to_owned(), |p| ms(p.p50)),
            p.map_or_else(|| "-".to_owned(), |p| ms(p.p99)),
            per_ack(|o| o.server_cpu),
            per_ack(|o| o.client_cpu),
        ]);
    }
    let group = |d: &str| {
        cases.iter().find(|c| c.setup.durability == d && c.setup.batch == args.batch).map(rate)
    };
    if let (Some(pg), Some(full)) = (group("postgres"), group("full")) {
        report.note(format!(
            "PostgreSQL ÷ SQLite full, group commit: {} ({pg:.0} / {full:.0} acks/s).",
            ratio(pg, full)
        ));
    }
    report.note(format!(
        "{} senders, each its own user and room with one send in flight, sending for {} s per \
         case; {} rounds, cases interleaved (order reversed every other round), a fresh qchatd \
         per case. Every acknowledgement checked: each sender's seqs are 1, 2, 3, ... with no \
         duplicate. Commits and commit time from qchatd's /metrics (time inside the writer's \
         transaction, fsync included); CPU from /proc while the senders sent (qchatd and \
         the senders share the machine's cores). Target: group >= 10x one transaction per message with \
         durability full.",
        args.senders, args.secs, args.rounds,
    ));
    report
}

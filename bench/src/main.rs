//! `qchat-bench`: qchat's load generator. Every scenario starts the real
//! `qchatd` (the release binary next to this one) on 127.0.0.1 with a fresh
//! data directory, drives it with the client library, and measures a baseline
//! in the same run, because only ratios mean anything on a noisy 2-core
//! machine. Each prints a table; `--json FILE` also writes the figures.
//!
//! Run through `bench/run SCENARIO [ARGS]`, which builds the release binaries
//! first. Figures and the commands that produced them are in
//! `docs/BENCHMARKS.md`.

mod baseline;
mod process;
mod report;
mod scenario;
mod worker;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Command line.
#[derive(Parser)]
#[command(name = "qchat-bench", about = "qchat benchmarks: ratios against a same-run baseline")]
struct Cli {
    /// Also write the figures as JSON to this file.
    #[arg(long, global = true)]
    json: Option<PathBuf>,
    #[command(subcommand)]
    scenario: Scenario,
}

/// The scenarios.
#[derive(Subcommand)]
enum Scenario {
    /// Upload throughput (1 x 1 GiB, 8 x 128 MiB) against a bare quinn sender and sink.
    Files(scenario::files::Args),
    /// The `qchat` CLI's upload and download against scp (Debian's openssh-server).
    FilesScp(scenario::files::scp::Args),
    /// Both peer scenarios with their defaults: fanout-irc, then files-scp.
    Peers,
    /// Room fan-out against a minimal quinn fan-out server.
    Fanout(scenario::fanout::Args),
    /// Room fan-out against InspIRCd (Debian's package; `bench/run` installs it).
    FanoutIrc(scenario::fanout::IrcArgs),
    /// Room fan-out over two cluster nodes (PostgreSQL, NATS) against one node.
    FanoutCluster(scenario::fanout::cluster::ClusterArgs),
    /// Resident memory per idle logged-in connection.
    Idle(scenario::idle::Args),
    /// Random history pages through the protocol against the direct SQLite query.
    History(scenario::history::Args),
    /// Full-text searches through the protocol against the direct SQLite query.
    Search(scenario::search::Args),
    /// Acknowledged sends per second: group commit against one transaction per message.
    Durable(scenario::durable::Args),
    /// Chat latency during a login storm against without it.
    LoginStorm(scenario::login_storm::Args),
    /// TUI: event-to-frame latency and full redraw with 100,000 messages against 100.
    Tui(scenario::tui::Args),
    /// Internal: a helper process started by a scenario.
    #[command(hide = true, subcommand)]
    Worker(Worker),
}

/// Helper processes (baseline servers, client fleets) started by scenarios.
#[derive(Subcommand)]
enum Worker {
    /// The fan-out baseline server.
    FanoutServer(baseline::ServerArgs),
    /// The file-upload baseline sink.
    FilesSink(baseline::ServerArgs),
    /// A fleet of idle logged-in clients.
    IdleClients(scenario::idle::clients::Args),
    /// The login-storm clients.
    StormClients(scenario::login_storm::clients::Args),
}

/// A scenario's flags at their defaults.
fn defaults<A: clap::Args>() -> A {
    /// A command of just these flags.
    #[derive(Parser)]
    struct Only<A: clap::Args> {
        #[command(flatten)]
        args: A,
    }
    Only::<A>::parse_from(["qchat-bench"]).args
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let report = match cli.scenario {
        Scenario::Files(a) => scenario::files::run(a).await?,
        Scenario::Fanout(a) => scenario::fanout::run(a).await?,
        Scenario::FanoutIrc(a) => scenario::fanout::run_irc(a).await?,
        Scenario::FanoutCluster(a) => scenario::fanout::cluster::run(a).await?,
        Scenario::FilesScp(a) => scenario::files::scp::run(a).await?,
        Scenario::Peers => {
            let reports = [
                scenario::fanout::run_irc(defaults::<scenario::fanout::IrcArgs>()).await?,
                scenario::files::scp::run(defaults::<scenario::files::scp::Args>()).await?,
            ];
            for r in &reports {
                print!("{}", r.table());
            }
            if let Some(path) = cli.json {
                report::write_json_all(&reports, &path)?;
                eprintln!("wrote {}", path.display());
            }
            return Ok(());
        }
        Scenario::Idle(a) => scenario::idle::run(a).await?,
        Scenario::History(a) => scenario::history::run(a).await?,
        Scenario::Search(a) => scenario::search::run(a).await?,
        Scenario::Durable(a) => scenario::durable::run(a).await?,
        Scenario::LoginStorm(a) => scenario::login_storm::run(a).await?,
        Scenario::Tui(a) => scenario::tui::run(a).await?,
        Scenario::Worker(Worker::FanoutServer(a)) => return scenario::fanout::server::run(a).await,
        Scenario::Worker(Worker::FilesSink(a)) => return scenario::files::baseline::run(a).await,
        Scenario::Worker(Worker::IdleClients(a)) => return scenario::idle::clients::run(a).await,
        Scenario::Worker(Worker::StormClients(a)) => {
            return scenario::login_storm::clients::run(a).await;
        }
    };
    print!("{}", report.table());
    if let Some(path) = cli.json {
        report.write_json(&path)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

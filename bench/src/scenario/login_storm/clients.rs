//! The storm clients of the `login-storm` scenario, run as their own process
//! (`qchat-bench worker storm-clients`), started by the scenario at a lower
//! CPU priority: in a deployment the users logging in are other machines, so
//! their client-side handshakes should not take the cores from the chatters
//! that measure the server.
//!
//! Line protocol on standard input/output: the worker prints `ready`; on a
//! `storm` line it starts every log-in at once and, when all are done,
//! prints `done` followed by each log-in's time in microseconds; it then
//! logs them all out and prints `quit`. When standard input closes it exits.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context as _, ensure};
use qchat_client::{Auth, Client, ClientConfig, Events, Trust};
use tokio::io::AsyncBufReadExt as _;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::scenario::fanout::{PASSWORD, TENANT};

/// Bound on one storm (all its logins).
pub(crate) const STORM_WITHIN: Duration = Duration::from_secs(300);

/// Flags of the worker.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// qchatd's address.
    #[arg(long)]
    server: SocketAddr,
    /// qchatd's certificate fingerprint.
    #[arg(long)]
    fingerprint: String,
    /// File with one session token per line: one storm user each (`s0`, `s1`, …).
    #[arg(long)]
    tokens: std::path::PathBuf,
    /// Log in with the session tokens instead of the password.
    #[arg(long)]
    with_tokens: bool,
}

/// Runs storms on request until standard input closes.
pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.tokens)
        .with_context(|| format!("reading {}", args.tokens.display()))?;
    let tokens: Vec<String> = text.lines().map(str::to_owned).collect();
    ensure!(!tokens.is_empty(), "no storm users");
    println!("ready");
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        if line.trim() != "storm" {
            continue;
        }
        let (clients, took) =
            storm(args.server, &args.fingerprint, &tokens, args.with_tokens).await?;
        let micros: Vec<String> = took.iter().map(|d| d.as_micros().to_string()).collect();
        println!("done {}", micros.join(" "));
        logout(clients).await;
        println!("quit");
    }
    Ok(())
}

/// Starts one `Client::connect` per token at once and waits for all of them:
/// the clients and each log-in's time.
pub(crate) async fn storm(
    server: SocketAddr,
    fingerprint: &str,
    tokens: &[String],
    with_tokens: bool,
) -> anyhow::Result<(Vec<(Client, Events)>, Vec<Duration>)> {
    let mut set = JoinSet::new();
    for (s, token) in tokens.iter().enumerate() {
        let auth =
            if with_tokens { Auth::Token(token.clone()) } else { Auth::Password(PASSWORD.into()) };
        let mut cfg = ClientConfig::new(
            server.to_string(),
            TENANT,
            format!("s{s}"),
            auth,
            Trust::Fingerprint(fingerprint.to_owned()),
        );
        cfg.reconnect = false;
        set.spawn(async move {
            let t = Instant::now();
            Client::connect(cfg).await.map(|c| (c, t.elapsed()))
        });
    }
    let mut clients = Vec::new();
    let mut took = Vec::new();
    let wait = async {
        while let Some(r) = set.join_next().await {
            let (c, t) = r?.context("storm log-in")?;
            took.push(t);
            clients.push(c);
        }
        Ok::<_, anyhow::Error>(())
    };
    tokio::time::timeout(STORM_WITHIN, wait).await.context("storm took too long")??;
    Ok((clients, took))
}

/// Logs every storm client out (their event streams are kept open until then).
pub(crate) async fn logout(clients: Vec<(Client, Events)>) {
    let mut quits = JoinSet::new();
    for c in clients {
        quits.spawn(async move { c.0.quit(None).await });
    }
    while quits.join_next().await.is_some() {}
}

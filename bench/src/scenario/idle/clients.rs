//! The client fleet of the `idle` scenario, run as its own process
//! (`qchat-bench worker idle-clients`) so several of them can share the
//! connections: each logs in its connections with `resume`, prints
//! `ready N SECS`, then keeps them open and idle, counting `message` events
//! whose body is the marker. On a `count` line on standard input it prints
//! `count N`; when standard input closes it closes every connection and exits.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::Context as _;
use serde_json::json;
use tokio::io::AsyncBufReadExt as _;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::scenario::fanout::link::Endpoints;

/// Connections set up at once by one worker.
const CONNECT_PARALLEL: usize = 16;

/// Flags of the worker.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// qchatd's address.
    #[arg(long)]
    server: SocketAddr,
    /// qchatd's data directory (for its certificate).
    #[arg(long)]
    data_dir: PathBuf,
    /// File with one session token per line: one connection each.
    #[arg(long)]
    tokens: PathBuf,
    /// Connections per UDP socket.
    #[arg(long, default_value_t = 64)]
    per_socket: usize,
    /// Message body to count.
    #[arg(long)]
    marker: String,
}

/// Runs the fleet until standard input closes.
pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.tokens)
        .with_context(|| format!("reading {}", args.tokens.display()))?;
    let tokens: Vec<String> = text.lines().map(str::to_owned).collect();
    let eps = Arc::new(Endpoints::qchat(
        args.server,
        &args.data_dir,
        tokens.len().div_ceil(args.per_socket.max(1)),
    )?);
    let started = Instant::now();
    let sem = Arc::new(Semaphore::new(CONNECT_PARALLEL));
    let mut logins = JoinSet::new();
    for token in tokens {
        let (sem, eps) = (sem.clone(), eps.clone());
        logins.spawn(async move {
            let _permit = sem.acquire().await?;
            let mut link = eps.connect().await?;
            link.call(1, "resume", json!({"token": token})).await?;
            Ok::<_, anyhow::Error>(link)
        });
    }
    let seen = Arc::new(AtomicU64::new(0));
    let marker: Arc<str> = args.marker.into();
    let mut readers = JoinSet::new();
    let mut conns = Vec::new();
    while let Some(r) = logins.join_next().await {
        let link = r??;
        conns.push(link.conn);
        let mut reader = link.reader;
        let (seen, marker) = (seen.clone(), marker.clone());
        // Keep the sending half open: finishing it would end the session.
        let send = link.send;
        readers.spawn(async move {
            let _send = send;
            while let Ok(Some(frame)) = reader.next().await {
                let Ok(v) = serde_json::from_slice::<serde_json::Value>(&frame) else { continue };
                if v["ev"] == "message" && v["body"].as_str() == Some(&*marker) {
                    seen.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    println!("ready {} {:.1}", conns.len(), started.elapsed().as_secs_f64());
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if line.trim() == "count" {
            println!("count {}", seen.load(Ordering::Relaxed));
        }
    }
    for c in &conns {
        c.close(0u32.into(), b"bench done");
    }
    eps.close();
    readers.abort_all();
    while readers.join_next().await.is_some() {}
    Ok(())
}

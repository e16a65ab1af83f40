//! Scenario `fanout-cluster`: the `fanout` measurement with the room's
//! members spread over two `qchatd` nodes (one PostgreSQL database, one
//! NATS server: `qchat_tests::Cluster`) against the same members on one
//! node on PostgreSQL, in the same run, rounds alternating.
//!
//! Client `i` connects to node `i % 2`, so half the members and, with
//! several senders, half the senders are on each node; every message
//! committed on one node reaches the other's members through NATS. Both
//! sides commit on PostgreSQL, so the ratio is the cost of the second node
//! and the bus, not of the database engine (`durable` compares engines).
//! Server CPU counts both nodes and the NATS server on the cluster side.

use std::sync::Arc;

use anyhow::{Context as _, ensure};
use qchat_tests::{Cluster, ScratchDb, TestServer};
use tokio::time::Instant;

use super::link::Endpoints;
use super::{Acc, Args, Pool, ROOM, Side, TENANT, register, triple};
use crate::report::{Report, ratio};

/// Flags of `fanout-cluster`.
#[derive(Debug, clap::Args)]
pub(crate) struct ClusterArgs {
    /// Clients in the room; one case per value.
    #[arg(long, value_delimiter = ',', default_values_t = [500])]
    clients: Vec<usize>,
    /// Senders (among the clients); one case per value.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 10])]
    senders: Vec<usize>,
    /// Rounds per side and case (one node and two alternate).
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// Seconds each round sends for.
    #[arg(long, default_value_t = 3.0)]
    secs: f64,
    /// Messages a sender may have out that have not yet reached every client.
    #[arg(long, default_value_t = 1)]
    window: usize,
    /// Message body bytes (the timestamp tag plus padding).
    #[arg(long, default_value_t = 100)]
    body_bytes: usize,
    /// Distinct qchat users the connections are spread over.
    #[arg(long, default_value_t = 100)]
    users: usize,
    /// Client connections per UDP socket.
    #[arg(long, default_value_t = 32)]
    per_socket: usize,
    /// Ablation: the one-node side runs with the bus on too (a cluster of
    /// one node with its own NATS), which separates the cost of publishing
    /// every message to NATS from the second node's.
    #[arg(long)]
    single_on_bus: bool,
}

/// Flags every node runs with. Every client resumes from 127.0.0.1 and a
/// resume holds one of the address's log-in attempts while it reads the
/// session (longer on PostgreSQL than on SQLite), so the cap is raised.
const SERVE: &[&str] = &[
    "--max-connections-per-ip",
    "20000",
    "--max-connections",
    "20000",
    "--idle-timeout-secs",
    "60",
    "--login-failures",
    "10000",
];

/// Runs the scenario.
pub(crate) async fn run(a: ClusterArgs) -> anyhow::Result<Report> {
    let max_n = a.clients.iter().copied().max().context("--clients is empty")?;
    let max_s = a.senders.iter().copied().max().context("--senders is empty")?;
    ensure!(a.clients.iter().all(|&n| n >= max_s.max(2)), "every --clients value ≥ senders, 2");
    ensure!(a.senders.iter().all(|&s| s >= 1), "--senders must be ≥ 1");
    ensure!(a.rounds >= 1 && a.window >= 1 && a.users >= 1, "rounds, window, users ≥ 1");
    ensure!(a.secs > 0.0 && a.secs <= 60.0, "--secs must be in (0, 60]");
    ensure!(a.body_bytes >= 48 && a.body_bytes <= 16_000, "--body-bytes must be 48..=16000");
    let args = Args {
        clients: a.clients.clone(),
        senders: a.senders.clone(),
        rounds: a.rounds,
        secs: a.secs,
        window: a.window,
        body_bytes: a.body_bytes,
        users: a.users,
        per_socket: a.per_socket,
        durability: "full".into(),
        rate: vec![0.0],
        quickack: false,
    };
    let sockets = max_n.div_ceil(a.per_socket.max(1));

    let (mut _single_db, mut single_server, mut single_cluster) = (None, None, None);
    let mut s_pids: Vec<u32> = Vec::new();
    let single: &TestServer = if a.single_on_bus {
        let c = single_cluster.insert(Cluster::start_logging(1, SERVE, "warn").await?);
        s_pids.extend(c.nats.pid());
        &c.nodes[0]
    } else {
        let db = _single_db.insert(ScratchDb::create().await?);
        single_server.insert(TestServer::start_in(&db.url, SERVE, "warn").await?)
    };
    s_pids.extend(single.pid());
    single.tenant(TENANT, true).await?;
    single.room(TENANT, ROOM).await?;
    let s_eps = Arc::new(Endpoints::qchat(single.addr, &single.data_dir(), sockets)?);
    let s_tokens = register(&s_eps, a.users.min(max_n), "u", &[ROOM]).await?;

    let cluster = Cluster::start_logging(2, SERVE, "warn").await?;
    cluster.nodes[0].tenant(TENANT, true).await?;
    cluster.nodes[0].room(TENANT, ROOM).await?;
    // Every node presents node 0's certificate.
    let cert_dir = cluster.nodes[0].data_dir();
    let c_eps: Vec<Arc<Endpoints>> = cluster
        .nodes
        .iter()
        .map(|n| Endpoints::qchat(n.addr, &cert_dir, sockets.div_ceil(2)).map(Arc::new))
        .collect::<anyhow::Result<_>>()?;
    let c_tokens = register(&c_eps[0], a.users.min(max_n), "u", &[ROOM]).await?;
    let c_pids: Vec<u32> =
        cluster.nodes.iter().filter_map(TestServer::pid).chain(cluster.nats.pid()).collect();
    ensure!(c_pids.len() == 3, "the cluster's processes: {c_pids:?}");

    let mut report = Report::new(
        "fanout-cluster",
        &[
            "clients",
            "senders",
            "1 node deliveries/s",
            "2 nodes deliveries/s",
            "ratio 2/1",
            "1 node p50 / p99 / max ms",
            "2 nodes p50 / p99 / max ms",
            "p99 ratio 2/1",
            "server CPU µs/delivery 1 node / 2 nodes + NATS",
            "delivered 1 node / 2 nodes",
        ],
    );
    let epoch = Instant::now();
    let mut round_id = 0u64;
    for &n in &a.clients {
        let one = Pool::connect(
            Side::Qchat,
            std::slice::from_ref(&s_eps),
            n,
            &s_tokens,
            epoch,
            s_pids.clone(),
        )
        .await?;
        let two = Pool::connect(Side::Qchat, &c_eps, n, &c_tokens, epoch, c_pids.clone()).await?;
        let mut pools = [one, two];
        for &senders in &a.senders {
            let mut acc = [Acc::default(), Acc::default()];
            for r in 0..a.rounds {
                let order = if r % 2 == 0 { [0, 1] } else { [1, 0] };
                for side in order {
                    round_id += 1;
                    let out = pools[side].round(round_id, senders, None, &args, epoch).await?;
                    acc[side].add(out);
                }
            }
            let [s, c] = &mut acc;
            let (sp, cp) = (s.percentiles(), c.percentiles());
            report.row(vec![
                n.to_string(),
                senders.to_string(),
                format!("{:.0}", s.rate()),
                format!("{:.0}", c.rate()),
                ratio(c.rate(), s.rate()),
                triple(sp),
                triple(cp),
                match (sp, cp) {
                    (Some(s), Some(c)) => ratio(c.p99.as_secs_f64(), s.p99.as_secs_f64()),
                    _ => "n/a".into(),
                },
                format!("{:.1} / {:.1}", s.cpu_per_delivery_us(), c.cpu_per_delivery_us()),
                format!("{}/{} / {}/{}", s.delivered, s.expected, c.delivered, c.expected),
            ]);
            report.note(format!(
                "N={n}, {senders} sender(s): per-round deliveries/s 1 node {:?}, 2 nodes {:?}; \
                 lagged events 1 node {}, 2 nodes {}",
                s.round_rates,
                c.round_rates,
                pools[0].lagged(),
                pools[1].lagged()
            ));
            eprintln!("done: N={n}, senders={senders}");
        }
        for pool in pools {
            pool.close().await;
        }
    }
    s_eps.close();
    for eps in &c_eps {
        eps.close();
    }
    report.note(format!(
        "{} s per round, {} round(s) per side alternating, window {}, {}-byte bodies, \
         connections over {} users (resume), {} per client socket; every qchatd on its own \
         fresh PostgreSQL database on the shared server, log level warn. Client i on node \
         i % 2; senders are clients 0.., so spread over both nodes. Server CPU: user + system \
         time over the rounds (1 node: qchatd; 2 nodes: both qchatd and nats-server) divided \
         by the deliveries.{}",
        a.secs,
        a.rounds,
        a.window,
        a.body_bytes,
        a.users.min(max_n),
        a.per_socket,
        if a.single_on_bus {
            " Ablation --single-on-bus: the 1-node side is a cluster of one node with its own \
             nats-server (counted in its CPU), publishing every message to NATS."
        } else {
            ""
        },
    ));
    Ok(report)
}

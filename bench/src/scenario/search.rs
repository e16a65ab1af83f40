//! Scenario `search`: full-text searches over 1,000,000 messages in 20
//! rooms, by a user who may read 10 of them, through the protocol (the
//! real client library's `Client::search`, and raw frames) against the
//! very statement the server runs ([`qchat_service::SEARCH_SQLITE_SQL`])
//! executed directly on the database file with the same parameters, in the
//! same run, interleaved.
//!
//! The rooms are filled while the server is stopped, with the server's
//! insert statement (the FTS5 triggers of migration 0008 index every row as
//! they would a sent message); after the restart the first searches through
//! the protocol must equal the direct query's.

mod store;

use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use qchat_client::{Auth, Client, ClientConfig, SearchReq, Trust};
use qchat_tests::{RawConn, TestServer, within};
use rand::SeedableRng as _;
use rand::rngs::StdRng;
use serde_json::json;

use crate::report::{Percentiles, Report, ms, ratio};

const TENANT: &str = "bench";
const PASSWORD: &str = "bench password";
/// Users the filled messages come from.
const SENDERS: usize = 10;

/// Flags of this scenario.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Messages, spread over the rooms.
    #[arg(long, default_value_t = 1_000_000)]
    messages: u64,
    /// Rooms; the searching user is a member of every other one.
    #[arg(long, default_value_t = 20)]
    rooms: usize,
    /// Hits per page (the protocol's default).
    #[arg(long, default_value_t = 20)]
    limit: u32,
    /// Searches each side runs per round.
    #[arg(long, default_value_t = 300)]
    searches: usize,
    /// Rounds; each side runs once per round, the order alternating.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Seed for the queries (the same queries for every side).
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// The ways a search is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    /// The server's statement on the database file (the baseline).
    Direct,
    /// Raw protocol frames (`RawConn`): request, JSON reply.
    Raw,
    /// The client library's `Client::search`.
    Client,
}

impl Side {
    const ALL: [Self; 3] = [Self::Direct, Self::Raw, Self::Client];

    fn label(self) -> &'static str {
        match self {
            Self::Direct => "direct SQLite, same statement (baseline)",
            Self::Raw => "protocol, raw frames",
            Self::Client => "protocol, Client::search",
        }
    }
}

/// What the measuring loop talks to.
struct Sides {
    direct: store::Direct,
    raw: RawConn,
    client: Client,
}

impl Sides {
    /// Runs one search on `side`; returns its hits as `(room, seq)` and how
    /// long it took.
    async fn search(
        &mut self,
        side: Side,
        q: &store::Query,
        limit: u32,
    ) -> anyhow::Result<(Vec<(String, u64)>, Duration)> {
        match side {
            Side::Direct => self.direct.search(q, limit).await,
            Side::Raw => {
                let started = Instant::now();
                let ok = self.raw.ok("search", json!({"query": q.text, "limit": limit})).await?;
                let took = started.elapsed();
                let hits = ok["hits"]
                    .as_array()
                    .context("hits")?
                    .iter()
                    .map(|h| {
                        (
                            h["room"].as_str().unwrap_or_default().to_owned(),
                            h["seq"].as_u64().unwrap_or(0),
                        )
                    })
                    .collect();
                Ok((hits, took))
            }
            Side::Client => {
                let req =
                    SearchReq { query: q.text.clone(), limit: Some(limit), ..SearchReq::default() };
                let started = Instant::now();
                let ok = self.client.search(req).await?;
                let took = started.elapsed();
                Ok((ok.hits.into_iter().map(|h| (h.room, h.seq)).collect(), took))
            }
        }
    }
}

/// Runs the scenario.
pub(crate) async fn run(args: Args) -> anyhow::Result<Report> {
    ensure!(args.rounds >= 2, "at least 2 rounds");
    ensure!(args.rooms >= 2, "at least 2 rooms");
    let mut server = TestServer::start_logging(&["--idle-timeout-secs", "60"], "warn").await?;
    server.tenant(TENANT, false).await?;
    let senders: Vec<String> = (0..SENDERS).map(|i| format!("u{i}")).collect();
    for name in senders.iter().chain(std::iter::once(&"reader".to_owned())) {
        server.user(TENANT, name, PASSWORD).await?;
    }
    let rooms: Vec<String> = (0..args.rooms).map(|i| format!("room{i:02}")).collect();
    for r in &rooms {
        server.room(TENANT, r).await?;
    }
    server.stop().await?;

    let db = server.data_dir().join(qchat_service::DB_FILE);
    eprintln!("search: filling {} messages directly into {}", args.messages, db.display());
    let fill = store::fill(&db, TENANT, &rooms, &senders, args.messages).await?;
    let db_size = std::fs::metadata(&db).map(|m| m.len()).unwrap_or_default();
    eprintln!("search: filled in {:.1?}, {} MiB", fill.took, db_size >> 20);
    server.start_again().await?;

    let mut cfg = ClientConfig::new(
        server.addr.to_string(),
        TENANT,
        "reader",
        Auth::Password(PASSWORD.into()),
        Trust::Fingerprint(server.fingerprint.clone()),
    );
    cfg.reconnect = false;
    let (client, _events) = within("connect", Client::connect(cfg)).await?;
    let readable: Vec<String> = rooms.iter().step_by(2).cloned().collect();
    for r in &readable {
        client.join_room(r).await?;
    }
    let mut raw = RawConn::connect(server.addr, &server.data_dir()).await?;
    raw.login(TENANT, "reader", PASSWORD).await?;
    let direct = store::Direct::open(&db, fill.tenant, &fill.rooms, &readable).await?;
    let mut sides = Sides { direct, raw, client };

    let mut rng = StdRng::seed_from_u64(args.seed);
    let mut queries = |n: usize| -> Vec<store::Query> {
        (0..n).map(|_| store::Query::random(&mut rng)).collect()
    };
    // The protocol's hits are the direct query's, and the queries find
    // something.
    let mut found = 0usize;
    for q in queries(50) {
        let (direct, _) = sides.search(Side::Direct, &q, args.limit).await?;
        for side in [Side::Raw, Side::Client] {
            let (hits, _) = within("check search", sides.search(side, &q, args.limit)).await?;
            ensure!(hits == direct, "{side:?} and direct differ for {:?}", q.text);
        }
        found += usize::from(!direct.is_empty());
    }
    ensure!(found > 25, "only {found} of 50 queries found anything");
    for side in Side::ALL {
        for q in queries(args.searches / 4) {
            sides.search(side, &q, args.limit).await?;
        }
    }

    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); Side::ALL.len()];
    let mut per_round: Vec<Vec<Percentiles>> = vec![Vec::new(); Side::ALL.len()];
    let mut hit_counts = Vec::new();
    for round in 0..args.rounds {
        let qs = queries(args.searches);
        let mut order = Side::ALL.to_vec();
        if round % 2 == 1 {
            order.reverse();
        }
        for side in order {
            let mut times = Vec::with_capacity(qs.len());
            for q in &qs {
                let (hits, took) = within("search", sides.search(side, q, args.limit)).await?;
                if side == Side::Direct {
                    hit_counts.push(hits.len());
                }
                times.push(took);
            }
            let i = side as usize;
            per_round[i].push(Percentiles::of(&mut times.clone()).context("empty round")?);
            samples[i].extend(times);
            eprintln!("search: round {} {:?} done", round + 1, side);
        }
    }
    let matches = sides.direct.match_counts(&queries(20)).await?;

    let Sides { direct, raw, client } = sides;
    drop(raw);
    let _ = client.quit(None).await;
    direct.close().await;
    server.stop().await?;

    let mut report = Report::new(
        "search",
        &[
            "side",
            "searches",
            "p50 ms",
            "p99 ms",
            "max ms",
            "p50 ratio",
            "p99 ratio",
            "p99 per round ms",
        ],
    );
    let all: Vec<Percentiles> = samples
        .iter_mut()
        .map(|s| Percentiles::of(s).context("no samples"))
        .collect::<anyhow::Result<_>>()?;
    let base = all[Side::Direct as usize];
    for side in Side::ALL {
        let p = all[side as usize];
        let rounds: Vec<String> = per_round[side as usize].iter().map(|r| ms(r.p99)).collect();
        report.row(vec![
            side.label().to_owned(),
            p.count.to_string(),
            ms(p.p50),
            ms(p.p99),
            ms(p.max),
            ratio(p.p50.as_secs_f64(), base.p50.as_secs_f64()),
            ratio(p.p99.as_secs_f64(), base.p99.as_secs_f64()),
            rounds.join(" / "),
        ]);
    }
    let full = hit_counts.iter().filter(|&&n| n == args.limit as usize).count();
    report.note(format!(
        "{} messages in {} rooms ({} MiB database with its FTS5 index, filled directly in {:.1} \
         s with the server's INSERT statement while qchatd was stopped; verified: 50 searches \
         through the protocol equal the direct query's). The searching user reads {} of the \
         rooms. Queries: one word, two words, or a two-syllable prefix, from a vocabulary of \
         8,000 words (bodies of 6-14 of them); {} searches per side and round, {} rounds, order \
         alternating, the same queries for every side; {} of the measured pages were full ({} \
         hits); whole-index matches of 20 sample queries (every room): {}. Target: protocol \
         p99 <= 3x the direct query.",
        args.messages,
        args.rooms,
        db_size >> 20,
        fill.took.as_secs_f64(),
        readable.len(),
        args.searches,
        args.rounds,
        full,
        args.limit,
        matches,
    ));
    Ok(report)
}

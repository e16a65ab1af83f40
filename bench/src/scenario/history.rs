//! Scenario `history`: random 50-message pages of a room with 1,000,000
//! messages, fetched through the protocol by the real client library
//! (`Client::history`) and by raw frames, against the very statement the
//! server runs ([`qchat_service::HISTORY_SQL`]) executed directly on the
//! database file, with the same parameters, in the same run, interleaved.
//!
//! The room is filled while the server is stopped, with the server's insert
//! statement and the values its writer would bind (see [`store::fill`]);
//! after the restart one send through the protocol must get seq
//! `messages + 1` and the newest page through the protocol must equal the
//! direct query's, so the rows are what the server would have written.
//!
//! With `--backend postgres` the server runs on a fresh PostgreSQL
//! database, filled by PostgreSQL itself ([`pg::fill`]), and the baseline
//! is the same statement on that database.

mod pg;
mod store;

use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use qchat_client::{Auth, Client, ClientConfig, Trust};
use qchat_tests::{RawConn, TestServer, within};
use rand::rngs::StdRng;
use rand::{RngExt as _, SeedableRng as _};
use serde_json::json;

use crate::report::{Percentiles, Report, ms, ratio};

const TENANT: &str = "bench";
const ROOM: &str = "big";
const PASSWORD: &str = "bench password";
/// Users the filled messages come from.
const SENDERS: usize = 10;

/// Flags of this scenario.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Messages in the room.
    #[arg(long, default_value_t = 1_000_000)]
    messages: u64,
    /// Messages per page.
    #[arg(long, default_value_t = 50)]
    limit: u32,
    /// Pages each side fetches per round.
    #[arg(long, default_value_t = 1000)]
    pages: usize,
    /// Rounds; each side runs once per round, the order alternating.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Seed for the random page positions (the same positions for every side).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// `sqlite` (the data directory's file) or `postgres` (a fresh database
    /// on the server `QCHAT_TEST_PG_URL` names, 127.0.0.1:5432 by default).
    #[arg(long, default_value = "sqlite")]
    backend: String,
}

/// The database side: the server's statement on either engine.
enum Direct {
    Sqlite(store::Direct),
    Postgres(pg::Direct),
}

impl Direct {
    async fn page(
        &self,
        before: u64,
        limit: u32,
    ) -> anyhow::Result<(Vec<(u64, String)>, Duration)> {
        match self {
            Self::Sqlite(d) => d.page(before, limit).await,
            Self::Postgres(d) => d.page(before, limit).await,
        }
    }

    async fn close(self) {
        match self {
            Self::Sqlite(d) => d.close().await,
            Self::Postgres(d) => d.close().await,
        }
    }
}

/// The ways a page is fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    /// The server's statement on the database file (the baseline).
    Direct,
    /// Raw protocol frames (`RawConn`): request, JSON reply.
    Raw,
    /// The client library's `Client::history`.
    Client,
}

impl Side {
    const ALL: [Self; 3] = [Self::Direct, Self::Raw, Self::Client];

    fn label(self, pg: bool) -> &'static str {
        match self {
            Self::Direct if pg => "direct PostgreSQL, same statement (baseline)",
            Self::Direct => "direct SQLite, same statement (baseline)",
            Self::Raw => "protocol, raw frames",
            Self::Client => "protocol, Client::history",
        }
    }
}

/// What the measuring loop talks to.
struct Sides {
    direct: Direct,
    raw: RawConn,
    client: Client,
}

impl Sides {
    /// Fetches one page on `side`; returns its seqs and how long it took.
    async fn page(
        &mut self,
        side: Side,
        before: u64,
        limit: u32,
    ) -> anyhow::Result<(Vec<u64>, Duration)> {
        match side {
            Side::Direct => {
                let (page, took) = self.direct.page(before, limit).await?;
                Ok((page.into_iter().map(|(seq, _)| seq).collect(), took))
            }
            Side::Raw => {
                let started = Instant::now();
                let ok = self
                    .raw
                    .ok("history", json!({"room": ROOM, "before_seq": before, "limit": limit}))
                    .await?;
                let took = started.elapsed();
                let seqs = ok["messages"]
                    .as_array()
                    .context("messages")?
                    .iter()
                    .filter_map(|m| m["seq"].as_u64())
                    .collect();
                Ok((seqs, took))
            }
            Side::Client => {
                let started = Instant::now();
                let ok = self.client.history(ROOM, Some(before), Some(limit)).await?;
                let took = started.elapsed();
                Ok((ok.messages.iter().map(|m| m.seq).collect(), took))
            }
        }
    }
}

/// Runs the scenario.
pub(crate) async fn run(args: Args) -> anyhow::Result<Report> {
    ensure!(args.rounds >= 2, "at least 2 rounds");
    ensure!(args.messages > u64::from(args.limit), "more messages than one page");
    let pg = match args.backend.as_str() {
        "sqlite" => None,
        "postgres" => Some(qchat_tests::ScratchDb::create().await?),
        other => anyhow::bail!("--backend {other}: sqlite or postgres"),
    };
    let flags = ["--idle-timeout-secs", "60"];
    let mut server = match &pg {
        None => TestServer::start_logging(&flags, "warn").await?,
        Some(db) => TestServer::start_in(&db.url, &flags, "warn").await?,
    };
    server.tenant(TENANT, false).await?;
    let senders: Vec<String> = (0..SENDERS).map(|i| format!("u{i}")).collect();
    for name in senders.iter().chain(std::iter::once(&"reader".to_owned())) {
        server.user(TENANT, name, PASSWORD).await?;
    }
    server.room(TENANT, ROOM).await?;
    server.stop().await?;

    let db = server.data_dir().join(qchat_service::DB_FILE);
    eprintln!("history: filling {} messages directly ({})", args.messages, args.backend);
    let (ids, fill_time) = match &pg {
        None => store::fill(&db, TENANT, ROOM, &senders, args.messages).await?,
        Some(pg) => pg::fill(&pg.url, TENANT, ROOM, &senders, args.messages).await?,
    };
    let db_size = match &pg {
        None => std::fs::metadata(&db).map(|m| m.len()).unwrap_or_default(),
        Some(pg) => pg_size(&pg.url).await.unwrap_or_default(),
    };
    eprintln!("history: filled in {fill_time:.1?}, {} MiB", db_size >> 20);
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
    client.join_room(ROOM).await?;
    let mut raw = RawConn::connect(server.addr, &server.data_dir()).await?;
    raw.login(TENANT, "reader", PASSWORD).await?;
    let direct = match &pg {
        None => Direct::Sqlite(store::Direct::open(&db, ids).await?),
        Some(pg) => Direct::Postgres(pg::Direct::open(&pg.url, ids).await?),
    };

    // The filled rows are what the server would have written: it continues
    // the seq (after the reader's join, a system message of its own since
    // issue 17), and its newest page is the direct query's.
    let sent = within("check send", client.send(ROOM, "after the fill")).await?;
    ensure!(sent.seq == args.messages + 2, "server continued at seq {}", sent.seq);
    let (newest, _) = direct.page(sent.seq, args.limit).await?;
    let through =
        within("check page", client.history(ROOM, Some(sent.seq), Some(args.limit))).await?;
    let through: Vec<(u64, String)> =
        through.messages.into_iter().map(|m| (m.seq, m.body)).collect();
    ensure!(through == newest, "protocol and direct pages differ");

    let mut sides = Sides { direct, raw, client };
    let mut rng = StdRng::seed_from_u64(args.seed);
    // Page positions so that every page is full: before in limit+1 ..= messages+1.
    let lo = u64::from(args.limit) + 1;
    let hi = args.messages + 1;
    let warm: Vec<u64> = (0..args.pages / 4).map(|_| rng.random_range(lo..=hi)).collect();
    for side in Side::ALL {
        for &b in &warm {
            sides.page(side, b, args.limit).await?;
        }
    }
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); Side::ALL.len()];
    let mut per_round: Vec<Vec<Percentiles>> = vec![Vec::new(); Side::ALL.len()];
    for round in 0..args.rounds {
        let positions: Vec<u64> = (0..args.pages).map(|_| rng.random_range(lo..=hi)).collect();
        let mut order = Side::ALL.to_vec();
        if round % 2 == 1 {
            order.reverse();
        }
        for side in order {
            let mut times = Vec::with_capacity(positions.len());
            for &b in &positions {
                let (seqs, took) = within("history page", sides.page(side, b, args.limit)).await?;
                ensure!(
                    seqs.len() == args.limit as usize
                        && seqs.first() == Some(&(b - u64::from(args.limit)))
                        && seqs.windows(2).all(|w| w[1] == w[0] + 1),
                    "{side:?}: wrong page before {b}: {seqs:?}"
                );
                times.push(took);
            }
            let i = side as usize;
            per_round[i].push(Percentiles::of(&mut times.clone()).context("empty round")?);
            samples[i].extend(times);
            eprintln!("history: round {} {:?} done", round + 1, side);
        }
    }

    let Sides { direct, raw, client } = sides;
    drop(raw);
    let _ = client.quit(None).await;
    direct.close().await;
    server.stop().await?;

    let mut report = Report::new(
        "history",
        &[
            "side",
            "pages",
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
            side.label(pg.is_some()).to_owned(),
            p.count.to_string(),
            ms(p.p50),
            ms(p.p99),
            ms(p.max),
            ratio(p.p50.as_secs_f64(), base.p50.as_secs_f64()),
            ratio(p.p99.as_secs_f64(), base.p99.as_secs_f64()),
            rounds.join(" / "),
        ]);
    }
    let how = if pg.is_some() {
        "on PostgreSQL, filled by PostgreSQL (generate_series) in the writer's columns"
    } else {
        "on SQLite, filled directly with the server's INSERT statement"
    };
    report.note(format!(
        "{} messages in one room ({} MiB database {how}, in {:.1} s while qchatd was stopped; verified: the next send got seq {} (after the reader's join) and the \
         newest page through the protocol equals the direct query's). {}-message pages at {} \
         random positions per side and round, {} rounds, order alternating; the same positions \
         for every side. Target: protocol p99 <= 3x the direct query.",
        args.messages,
        db_size >> 20,
        fill_time.as_secs_f64(),
        args.messages + 2,
        args.limit,
        args.pages,
        args.rounds,
    ));
    drop(server);
    drop(pg);
    Ok(report)
}

/// The PostgreSQL database's size on disk.
async fn pg_size(url: &str) -> anyhow::Result<u64> {
    use sqlx::Connection as _;
    let mut c = sqlx::PgConnection::connect(url).await?;
    let size: i64 =
        sqlx::query_scalar("select pg_database_size(current_database())").fetch_one(&mut c).await?;
    let _ = c.close().await;
    Ok(u64::try_from(size).unwrap_or_default())
}

//! Scenario `login-storm`: `--storm` password logins at once while
//! `--chatters` clients chat in one room; chat latency (send timestamp in the
//! body to arrival at each member) during the storm against the same chat
//! without it, in the same run: quiet and storm phases alternate.
//!
//! Everyone here is the real client library (`qchat_client::Client`): the
//! chatters log in once with their session tokens and send at a steady total
//! `--rate`; each storm login is a fresh `Client::connect` with a password,
//! i.e. a QUIC handshake plus one argon2id verification on the server. Storm
//! users are in no room, so the chat load is the same in both phases.
//!
//! The storm clients run in a process of their own (`qchat-bench worker
//! storm-clients`, see [`clients`]) started under `nice`, because in a
//! deployment the 200 users logging in are other machines: their client-side
//! handshakes must not take this process's cores from the chatters, whose
//! latency is the measurement. `--storm-in-process` keeps the old layout
//! (storm clients on this process's runtime) for comparison.

pub(crate) mod clients;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use qchat_client::{Auth, Client, ClientConfig, ClientEvent, Trust};
use tokio::process::Command;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::report::{Percentiles, Report, ms, ratio};
use crate::scenario::fanout::{self, TENANT, link};
use crate::worker::WorkerProcess;
use clients::STORM_WITHIN;

const ROOM: &str = "chat";

/// Flags of this scenario.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Clients chatting in one room.
    #[arg(long, default_value_t = 100)]
    chatters: usize,
    /// Password logins started at once in each storm.
    #[arg(long, default_value_t = 200)]
    storm: usize,
    /// Chat messages per second, all chatters together.
    #[arg(long, default_value_t = 50.0)]
    rate: f64,
    /// Quiet/storm phase pairs.
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// Seconds of each quiet phase (a storm lasts until its logins are done).
    #[arg(long, default_value_t = 5.0)]
    quiet_secs: f64,
    /// qchatd's SQLite durability (`full` or `normal`).
    #[arg(long, default_value = "full")]
    durability: String,
    /// Storm logins with session tokens (`resume`) instead of passwords:
    /// the same handshakes without argon2, to tell the two costs apart.
    #[arg(long)]
    storm_tokens: bool,
    /// Run the storm clients on this process's runtime, next to the chatters
    /// (the old layout), instead of in a worker process.
    #[arg(long)]
    storm_in_process: bool,
    /// `nice` increment of the storm worker process (0 to 19).
    #[arg(long, default_value_t = 10)]
    storm_nice: u8,
}

/// Chat deliveries: (sent, latency) in microseconds since the epoch.
type Samples = Arc<Mutex<Vec<(u64, u64)>>>;

/// Runs the scenario.
pub(crate) async fn run(args: Args) -> anyhow::Result<Report> {
    ensure!(args.chatters >= 1 && args.storm >= 1 && args.rounds >= 1, "counts must be ≥ 1");
    ensure!(args.rate > 0.0 && args.rate <= 5000.0, "--rate must be in (0, 5000]");
    ensure!(args.quiet_secs > 0.0 && args.quiet_secs <= 120.0, "--quiet-secs in (0, 120]");
    ensure!(args.storm_nice <= 19, "--storm-nice must be in 0..=19");
    let cap = (args.chatters + args.storm + 16).to_string();
    let qchatd = qchat_tests::TestServer::start_logging(
        &[
            "--max-connections-per-ip",
            &cap,
            "--max-connections",
            "20000",
            "--durability",
            &args.durability,
        ],
        "warn",
    )
    .await?;
    qchatd.tenant(TENANT, true).await?;
    qchatd.room(TENANT, ROOM).await?;
    let eps = Arc::new(link::Endpoints::qchat(qchatd.addr, &qchatd.data_dir(), 4)?);
    let chat_tokens = fanout::register(&eps, args.chatters, "c", &[ROOM]).await?;
    let storm_tokens = fanout::register(&eps, args.storm, "s", &[]).await?;
    eps.close();
    let token_dir = tempfile::tempdir()?;
    let mut worker = if args.storm_in_process {
        None
    } else {
        let path = token_dir.path().join("storm-tokens");
        std::fs::write(&path, storm_tokens.join("\n"))?;
        let mut w = spawn_storm_worker(&qchatd, &path, args.storm_tokens, args.storm_nice)?;
        let line = tokio::time::timeout(Duration::from_secs(30), w.line()).await??;
        ensure!(line == "ready", "unexpected storm worker line {line:?}");
        Some(w)
    };
    let config = |user: String, auth: Auth| {
        let mut c = ClientConfig::new(
            qchatd.addr.to_string(),
            TENANT,
            user,
            auth,
            Trust::Fingerprint(qchatd.fingerprint.clone()),
        );
        c.reconnect = false;
        c
    };

    // The chatters: log in, read events, send at the rate.
    let epoch = Instant::now();
    let samples: Samples = Arc::default();
    let stop = CancellationToken::new();
    let mut tasks = JoinSet::new();
    let interval = Duration::from_secs_f64(args.chatters as f64 / args.rate);
    for (i, token) in chat_tokens.iter().enumerate() {
        let cfg = config(format!("c{i}"), Auth::Token(token.clone()));
        let (client, mut events) = Client::connect(cfg).await.context("chatter log-in")?;
        let (samples, stopped) = (samples.clone(), stop.clone());
        tasks.spawn(async move {
            loop {
                let ev = tokio::select! {
                    () = stopped.cancelled() => return,
                    ev = events.recv() => ev,
                };
                let now = micros(epoch);
                match ev {
                    Some(ClientEvent::Message(m)) => {
                        if let Some(sent) = m.body.split(':').next().and_then(|s| s.parse().ok()) {
                            let lat = now.saturating_sub(sent);
                            samples
                                .lock()
                                .unwrap_or_else(PoisonError::into_inner)
                                .push((sent, lat));
                        }
                    }
                    Some(_) => {}
                    None => return,
                }
            }
        });
        let stop = stop.clone();
        // Stagger the chatters evenly over one interval.
        let offset = interval.mul_f64(i as f64 / args.chatters as f64);
        tasks.spawn(async move {
            let mut tick = tokio::time::interval_at(Instant::now() + offset, interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = stop.cancelled() => break,
                    _ = tick.tick() => {}
                }
                let body = format!("{}:{i}:chat", micros(epoch));
                if let Err(e) = client.send(ROOM, &body).await {
                    eprintln!("chatter {i}: send failed: {e}");
                }
            }
            let _ = client.quit(None).await;
        });
    }
    // Warm up, then alternate quiet and storm phases.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut quiet = Vec::new();
    let mut storms = Vec::new();
    let mut logins = Vec::new();
    for _ in 0..args.rounds {
        let a = micros(epoch);
        tokio::time::sleep(Duration::from_secs_f64(args.quiet_secs)).await;
        quiet.push((a, micros(epoch)));

        let a = micros(epoch);
        if let Some(w) = worker.as_mut() {
            w.send("storm").await?;
            let line = tokio::time::timeout(STORM_WITHIN, w.line())
                .await
                .context("storm took too long")??;
            storms.push((a, micros(epoch)));
            let Some(times) = line.strip_prefix("done") else {
                bail!("unexpected storm worker line {line:?}");
            };
            for t in times.split_whitespace() {
                logins.push(Duration::from_micros(t.parse().context("storm worker login time")?));
            }
            // Logged out outside the measured windows.
            let line = tokio::time::timeout(STORM_WITHIN, w.line()).await??;
            ensure!(line == "quit", "unexpected storm worker line {line:?}");
        } else {
            let (clients, took) =
                clients::storm(qchatd.addr, &qchatd.fingerprint, &storm_tokens, args.storm_tokens)
                    .await?;
            storms.push((a, micros(epoch)));
            logins.extend(took);
            clients::logout(clients).await;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    // Let the last messages arrive, then stop.
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(20), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    tasks.abort_all();
    if let Some(w) = worker {
        w.stop(Duration::from_secs(15)).await;
    }

    let all = std::mem::take(&mut *samples.lock().unwrap_or_else(PoisonError::into_inner));
    let pick = |windows: &[(u64, u64)]| {
        let mut v: Vec<Duration> = all
            .iter()
            .filter(|(sent, _)| windows.iter().any(|(a, b)| (*a..*b).contains(sent)))
            .map(|(_, lat)| Duration::from_micros(*lat))
            .collect();
        Percentiles::of(&mut v)
    };
    let mut report = Report::new(
        "login-storm",
        &["phase", "seconds", "chat deliveries", "p50 ms", "p99 ms", "max ms", "p99 vs quiet"],
    );
    let q = pick(&quiet).context("no chat deliveries in the quiet phases")?;
    let s = pick(&storms).context("no chat deliveries during the storms")?;
    let secs = |w: &[(u64, u64)]| {
        w.iter().map(|(a, b)| Duration::from_micros(b - a).as_secs_f64()).sum::<f64>()
    };
    report.row(vec![
        "quiet".into(),
        format!("{:.1}", secs(&quiet)),
        q.count.to_string(),
        ms(q.p50),
        ms(q.p99),
        ms(q.max),
        "1.00".into(),
    ]);
    report.row(vec![
        format!("storm ({} × {} logins)", args.rounds, args.storm),
        format!("{:.1}", secs(&storms)),
        s.count.to_string(),
        ms(s.p50),
        ms(s.p99),
        ms(s.max),
        ratio(s.p99.as_secs_f64(), q.p99.as_secs_f64()),
    ]);
    for (r, ((qa, qb), (sa, sb))) in quiet.iter().zip(&storms).enumerate() {
        let (qr, sr) = (pick(&[(*qa, *qb)]), pick(&[(*sa, *sb)]));
        if let (Some(qr), Some(sr)) = (qr, sr) {
            report.note(format!(
                "round {}: quiet p99 {} ms, storm p99 {} ms over {:.1} s",
                r + 1,
                ms(qr.p99),
                ms(sr.p99),
                Duration::from_micros(sb - sa).as_secs_f64()
            ));
        }
    }
    if let Some(l) = Percentiles::of(&mut logins) {
        report.note(format!(
            "storm log-in time (connect + handshake + argon2id verify + rooms): p50 {} ms, \
             p99 {} ms, max {} ms over {} logins",
            ms(l.p50),
            ms(l.p99),
            ms(l.max),
            l.count
        ));
    }
    if args.storm_tokens {
        report.note("storm logins used session tokens (resume): no argon2 in this run");
    }
    report.note(if args.storm_in_process {
        "storm clients on this process's runtime, next to the chatters (old layout)".to_owned()
    } else {
        format!("storm clients in a worker process under `nice -n {}`", args.storm_nice)
    });
    report.note(format!(
        "{} chatters (client library, resumed sessions) sending {} messages/s in total to one \
         room; latency from the send timestamp to arrival at each chatter, grouped by send \
         time into the phase windows; qchatd synchronous={}, log level warn.",
        args.chatters,
        args.rate,
        args.durability.to_uppercase()
    ));
    Ok(report)
}

fn micros(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// Starts the storm-clients process (see [`clients`]) under `nice`.
fn spawn_storm_worker(
    qchatd: &qchat_tests::TestServer,
    tokens: &std::path::Path,
    with_tokens: bool,
    nice: u8,
) -> anyhow::Result<WorkerProcess> {
    let mut cmd = Command::new("nice");
    cmd.args(["-n", &nice.to_string()])
        .arg(std::env::current_exe()?)
        .args(["worker", "storm-clients", "--server", &qchatd.addr.to_string()])
        .args(["--fingerprint", &qchatd.fingerprint])
        .arg("--tokens")
        .arg(tokens);
    if with_tokens {
        cmd.arg("--with-tokens");
    }
    WorkerProcess::spawn(&mut cmd, "storm-clients worker (with `nice`)")
}

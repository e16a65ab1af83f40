//! Scenario `files` (issue 4): loopback upload throughput for one big file
//! (1 GiB) and for eight files in parallel (8 x 128 MiB), qchat against a bare
//! quinn sender and sink ([`baseline`]) in the same run. Rounds alternate
//! baseline, qchat, baseline, qchat, ... per case.
//!
//! qchat side: a fresh release `qchatd` per round (`qchat_tests::TestServer`,
//! logging at `warn`; a fresh server keeps the tenant's quota and the disk
//! use flat), the client library logged in and joined to the room, then
//! `Client::upload` for every file at once; the clock runs from the first
//! `upload` call until every handle reports the file stored (`upload.done`).
//! That covers everything an upload is: the client's hash-later
//! `upload.begin` (size and the BLAKE3 of the first MiB), the stream with the
//! client hashing (BLAKE3) as it sends, and on the server hashing while
//! writing to a partial file, verifying against the trailer, fsync, rename
//! into the store and the commit of file row and file message.
//!
//! Every round writes fresh random files (and fsyncs them) before its clock
//! starts, on both sides, so dedupe never applies and both read from a warm
//! page cache. Files live in a temporary directory removed after the round.
//!
//! Each round also reads the CPU time (user + system, 10 ms resolution)
//! spent while its clock ran, by each side: the baseline's sender (this
//! process) and sink (its own process), or the qchat client (this process)
//! and qchatd. Both sides are CPU-bound on two cores, so CPU seconds per GiB
//! say where a ratio comes from, and qchatd's over the sink's is steadier
//! from run to run than the throughput ratio.

pub(crate) mod baseline;
pub(crate) mod scp;
mod sshd;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use qchat_client::{Auth, Client, ClientConfig, Trust, UploadProgress, UploadState};
use qchat_tests::TestServer;
use std::io::Write as _;
use tokio::sync::watch;

use self::baseline::{Sender, Sink};
use crate::process::cpu_time;
use crate::report::{Report, ratio};

const TENANT: &str = "bench";
const USER: &str = "uploader";
const PASSWORD: &str = "bench password";
const ROOM: &str = "files";
const MIB: u64 = 1 << 20;
/// Bound on one qchat round's uploads.
const ROUND_LIMIT: Duration = Duration::from_secs(600);

/// Flags of this scenario.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Rounds per side and case (baseline and qchat alternate); at least 2.
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// Size of the single file of the first case, in MiB.
    #[arg(long, default_value_t = 1024)]
    big_mib: u64,
    /// Files sent in parallel in the second case.
    #[arg(long, default_value_t = 8)]
    parallel: usize,
    /// Size of each file of the second case, in MiB.
    #[arg(long, default_value_t = 128)]
    parallel_mib: u64,
    /// Directory for the generated files (default: the system temp dir).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Diagnostics: run qchatd with this `RUST_LOG` filter (e.g. `info`) and
    /// print its `upload stored` lines (receive, fsync and store times) and
    /// the client's phases after each qchat round.
    #[arg(long)]
    server_log: Option<String>,
}

/// One case: `count` files of `mib` MiB each, all at once.
struct Case {
    count: usize,
    mib: u64,
}

impl Case {
    fn name(&self) -> String {
        format!("{} x {} MiB", self.count, self.mib)
    }

    fn bytes(&self) -> u64 {
        self.count as u64 * self.mib * MIB
    }

    /// CPU seconds per GiB moved.
    fn per_gib(&self, cpu: Duration) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let gib = self.bytes() as f64 / (1u64 << 30) as f64;
        cpu.as_secs_f64() / gib
    }
}

/// One side's figures in one case, a value per round.
#[derive(Debug, Default)]
struct Rounds {
    /// MiB/s.
    rate: Vec<f64>,
    /// CPU seconds per GiB of the sending side (baseline sender or client).
    cpu_sender: Vec<f64>,
    /// CPU seconds per GiB of the receiving side (baseline sink or qchatd).
    cpu_receiver: Vec<f64>,
}

impl Rounds {
    /// Median CPU seconds per GiB: `total (sender + receiver)`.
    fn cpu(&self) -> String {
        let (s, r) = (median(&self.cpu_sender), median(&self.cpu_receiver));
        format!("{:.2} ({s:.2} + {r:.2})", s + r)
    }
}

/// CPU time of the baseline's sender (this process) and of its sink.
fn baseline_cpu(sink: &Sink) -> anyhow::Result<(Duration, Duration)> {
    Ok((cpu_time(std::process::id())?, cpu_time(sink.pid()?)?))
}

/// Runs the scenario.
pub(crate) async fn run(args: Args) -> anyhow::Result<Report> {
    ensure!(args.rounds >= 2, "--rounds must be at least 2");
    ensure!(
        args.parallel >= 1 && args.big_mib >= 1 && args.parallel_mib >= 1,
        "sizes must be >= 1"
    );
    let cases = [
        Case { count: 1, mib: args.big_mib },
        Case { count: args.parallel, mib: args.parallel_mib },
    ];
    let root = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    let sink = Sink::start().await?;
    // Per case: (baseline rounds, qchat rounds).
    let mut rounds: Vec<(Rounds, Rounds)> = cases.iter().map(|_| Default::default()).collect();
    for round in 1..=args.rounds {
        for (case, (base, qchat)) in cases.iter().zip(&mut rounds) {
            let files = Files::write(&root, case).await?;
            let mut sender = Sender::connect(sink.addr(), sink.cert()).await?;
            let cpu = baseline_cpu(&sink)?;
            let took = sender.send(&files.sizes()).await?;
            let (sender_cpu, sink_cpu) = baseline_cpu(&sink)?;
            sender.close().await;
            drop(files);
            let (sender_cpu, sink_cpu) = (
                case.per_gib(sender_cpu.saturating_sub(cpu.0)),
                case.per_gib(sink_cpu.saturating_sub(cpu.1)),
            );
            base.rate.push(rate(case.bytes(), took));
            base.cpu_sender.push(sender_cpu);
            base.cpu_receiver.push(sink_cpu);
            eprintln!(
                "round {round} {}: baseline {:.0} MiB/s ({took:.2?}), CPU {sender_cpu:.2} + \
                 {sink_cpu:.2} s/GiB (sender + sink)",
                case.name(),
                rate(case.bytes(), took),
            );

            let files = Files::write(&root, case).await?;
            let out = qchat_round(&files, args.server_log.as_deref()).await?;
            drop(files);
            qchat.rate.push(rate(case.bytes(), out.took));
            qchat.cpu_sender.push(case.per_gib(out.client_cpu));
            qchat.cpu_receiver.push(case.per_gib(out.server_cpu));
            eprintln!(
                "round {round} {}: qchat {:.0} MiB/s ({:.2?}), CPU {:.2} + {:.2} s/GiB \
                 (client + qchatd)",
                case.name(),
                rate(case.bytes(), out.took),
                out.took,
                case.per_gib(out.client_cpu),
                case.per_gib(out.server_cpu)
            );
        }
    }
    sink.stop().await;

    let mut report = Report::new(
        "files",
        &[
            "case",
            "baseline MiB/s (median)",
            "qchat MiB/s (median)",
            "qchat / baseline",
            "baseline rounds",
            "qchat rounds",
            "baseline CPU s/GiB (sender + sink)",
            "qchat CPU s/GiB (client + qchatd)",
        ],
    );
    for (case, (base, qchat)) in cases.iter().zip(&rounds) {
        let (b, q) = (median(&base.rate), median(&qchat.rate));
        report.row(vec![
            case.name(),
            format!("{b:.0}"),
            format!("{q:.0}"),
            ratio(q, b),
            list(&base.rate),
            list(&qchat.rate),
            base.cpu(),
            qchat.cpu(),
        ]);
    }
    report.note(format!(
        "{} rounds per side and case, alternating baseline and qchat; fresh random files every \
         round; loopback; qchat = release qchatd (fresh per round) + client library, from the \
         first upload call to the last upload.done (client hashing, server hashing, disk write, \
         fsync and commit included); baseline = bare quinn sender and sink with qchatd's \
         transport settings, sink discards the bytes. CPU = user + system seconds per GiB \
         while the clock ran (medians). Sink and qchatd each run in a process of their own.",
        args.rounds
    ));
    Ok(report)
}

fn rate(bytes: u64, took: Duration) -> f64 {
    #[allow(clippy::cast_precision_loss)]
    let mib = bytes as f64 / MIB as f64;
    mib / took.as_secs_f64().max(1e-9)
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn list(v: &[f64]) -> String {
    v.iter().map(|r| format!("{r:.0}")).collect::<Vec<_>>().join(", ")
}

/// What one qchat round measured.
struct QchatRound {
    took: Duration,
    /// CPU time of this process (the client) while the clock ran.
    client_cpu: Duration,
    /// CPU time of qchatd while the clock ran.
    server_cpu: Duration,
}

/// One qchat round: fresh server, one client, every file uploaded at once.
async fn qchat_round(files: &Files, log: Option<&str>) -> anyhow::Result<QchatRound> {
    let server = TestServer::start_logging(&[], log.unwrap_or("warn")).await?;
    server.tenant(TENANT, false).await?;
    server.user(TENANT, USER, PASSWORD).await?;
    server.room(TENANT, ROOM).await?;
    let cfg = ClientConfig::new(
        server.addr.to_string(),
        TENANT,
        USER,
        Auth::Password(PASSWORD.into()),
        Trust::Fingerprint(server.fingerprint.clone()),
    );
    let (client, _events) = Client::connect(cfg).await?;
    client.join_room(ROOM).await?;

    let (me, pid) = (std::process::id(), server.pid().context("qchatd pid")?);
    let cpu = (cpu_time(me)?, cpu_time(pid)?);
    let started = Instant::now();
    let handles =
        files.list.iter().map(|f| client.upload(ROOM, &f.path)).collect::<Result<Vec<_>, _>>()?;
    let phases: Vec<_> = handles.iter().map(|h| tokio::spawn(phases(h.progress()))).collect();
    let mut done = Vec::new();
    for h in &handles {
        let up = tokio::time::timeout(ROUND_LIMIT, h.wait()).await.context("qchat round")??;
        done.push(up);
    }
    let took = started.elapsed();
    let client_cpu = cpu_time(me)?.saturating_sub(cpu.0);
    let server_cpu = cpu_time(pid)?.saturating_sub(cpu.1);
    let log_text = server.log_text();
    for (up, f) in done.iter().zip(&files.list) {
        ensure!(up.file.hash == f.hash, "stored hash differs");
        ensure!(!up.deduplicated && up.sent == f.size, "sent {} of {} bytes", up.sent, f.size);
    }
    client.quit(None).await?;
    drop(server);
    for (i, p) in phases.into_iter().enumerate() {
        let Phases { hashed, sending, written } = p.await?;
        if log.is_some() {
            eprintln!(
                "  client file {i}: hashed after {hashed:.2?}, sending after {sending:.2?}, \
                 all bytes written after {written:.2?}"
            );
        }
    }
    if log.is_some() {
        for line in log_text.lines().filter(|l| l.contains("upload stored")) {
            eprintln!("  server: {line}");
        }
    }
    Ok(QchatRound { took, client_cpu, server_cpu })
}

/// When an upload stopped hashing, started sending (after `upload.begin`)
/// and had written every byte, from now; read off its progress.
#[derive(Debug, Default, Clone, Copy)]
struct Phases {
    hashed: Duration,
    sending: Duration,
    written: Duration,
}

async fn phases(mut rx: watch::Receiver<UploadProgress>) -> Phases {
    let started = Instant::now();
    let mut p = Phases::default();
    loop {
        let state = rx.borrow_and_update().state.clone();
        if p.hashed.is_zero() && state != UploadState::Hashing {
            p.hashed = started.elapsed();
        }
        if p.sending.is_zero() && state == UploadState::Sending {
            p.sending = started.elapsed();
        }
        let end =
            matches!(state, UploadState::Verifying | UploadState::Done(_) | UploadState::Failed(_));
        if end || rx.changed().await.is_err() {
            p.written = started.elapsed();
            return p;
        }
    }
}

/// A generated file.
struct GenFile {
    path: PathBuf,
    size: u64,
    hash: String,
}

/// A round's files, in a temporary directory removed on drop.
struct Files {
    _dir: tempfile::TempDir,
    list: Vec<GenFile>,
}

impl Files {
    /// Writes the case's files with fresh random content and fsyncs them.
    async fn write(root: &Path, case: &Case) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix("qchat-bench-files").tempdir_in(root)?;
        let (count, size) = (case.count, case.mib * MIB);
        let base = dir.path().to_path_buf();
        let list = tokio::task::spawn_blocking(move || {
            (0..count)
                .map(|i| random_file(&base.join(format!("f{i}.bin")), size))
                .collect::<anyhow::Result<Vec<_>>>()
        })
        .await??;
        Ok(Self { _dir: dir, list })
    }

    fn sizes(&self) -> Vec<(PathBuf, u64)> {
        self.list.iter().map(|f| (f.path.clone(), f.size)).collect()
    }
}

fn random_file(path: &Path, size: u64) -> anyhow::Result<GenFile> {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; MIB as usize];
    let mut rng = rand::rng();
    let mut left = size;
    while left > 0 {
        let n = usize::try_from(left.min(MIB))?;
        rand::Rng::fill_bytes(&mut rng, &mut buf[..n]);
        hasher.update(&buf[..n]);
        file.write_all(&buf[..n])?;
        left -= n as u64;
    }
    file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(GenFile { path: path.to_path_buf(), size, hash: hasher.finalize().to_hex().to_string() })
}

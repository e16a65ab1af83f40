//! Scenario `tui` (issue 5): the terminal UI with 100,000 messages loaded
//! against the same UI with 100, in the same run, rounds interleaved.
//!
//! A real `qchatd` holds two rooms filled by a real client (bob): `small`
//! and `big`. The UI's user (ann) connects with the client library, loads
//! each room's whole history through the protocol, and hands it to a
//! [`HeadlessUi`](qchat_client::tui::HeadlessUi) per room: `qchat`'s own
//! UI loop (tuirealm application, async network port, update, view) drawing
//! on ratatui's `TestBackend`, on a thread of its own as in `qchat`.
//!
//! Two measures, each for both rooms:
//! - **full redraw**: the whole screen drawn again (every cell rewritten),
//!   paging back every other frame so the window moves through history;
//! - **event → frame**: bob sends; ann's client library delivers the
//!   message event; from the moment it is handed to the UI's port (as
//!   `qchat`'s network side hands it) to the end of the draw whose screen
//!   shows it. Also reported: bob's send to that frame (through the
//!   server), and bob's send to the port (the client library alone, what
//!   the UI adds to).

mod ui_thread;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use qchat_client::tui::UiEvents;
use qchat_client::{Auth, Client, ClientConfig, ClientEvent, Message, Trust};
use qchat_tests::{TestServer, within};
use tokio::task::JoinSet;

use crate::report::{Percentiles, Report, ms, ratio};
use ui_thread::{Loaded, Side, UiThread};

const TENANT: &str = "bench";
const PASSWORD: &str = "bench password";
/// Connections filling the rooms: the server answers one connection's
/// requests in order, so parallel connections are what lets group commit
/// put many messages in one transaction.
const FILL_CONNECTIONS: usize = 16;

/// Flags of this scenario.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Messages loaded in the large room.
    #[arg(long, default_value_t = 100_000)]
    big: u64,
    /// Messages loaded in the baseline room.
    #[arg(long, default_value_t = 100)]
    small: u64,
    /// Full redraws per room per round.
    #[arg(long, default_value_t = 300)]
    frames: usize,
    /// Messages sent (and timed to the frame) per room per round.
    #[arg(long, default_value_t = 100)]
    events: usize,
    /// Rounds; each room runs once per round, the order alternating.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Screen width.
    #[arg(long, default_value_t = 120)]
    width: u16,
    /// Screen height.
    #[arg(long, default_value_t = 40)]
    height: u16,
}

/// When each message (by body) was handed to the UI's port.
type PortTimes = Arc<Mutex<HashMap<String, Instant>>>;

/// Samples of one room.
#[derive(Default)]
struct Samples {
    redraw: Vec<Duration>,
    port_to_frame: Vec<Duration>,
    send_to_frame: Vec<Duration>,
    send_to_port: Vec<Duration>,
}

/// Runs the scenario.
pub(crate) async fn run(args: Args) -> anyhow::Result<Report> {
    ensure!(args.small >= 1 && args.big >= args.small, "need 1 ≤ --small ≤ --big");
    ensure!(
        args.frames >= 2 && args.events >= 1 && args.rounds >= 2,
        "need ≥ 2 frames, ≥ 1 event, ≥ 2 rounds"
    );
    ensure!(args.width >= 40 && args.height >= 10, "the screen must be at least 40x10");
    let server = TestServer::start_logging(&[], "warn").await?;
    server.tenant(TENANT, false).await?;
    for user in ["ann", "bob"] {
        server.user(TENANT, user, PASSWORD).await?;
    }
    for room in ["small", "big"] {
        server.room(TENANT, room).await?;
    }
    let config = |user: &str| {
        ClientConfig::new(
            server.addr.to_string(),
            TENANT,
            user,
            Auth::Password(PASSWORD.into()),
            Trust::Fingerprint(server.fingerprint.clone()),
        )
    };

    // bob fills both rooms through the protocol, over several connections.
    let mut drains = JoinSet::new();
    let mut fillers = Vec::new();
    for _ in 0..FILL_CONNECTIONS {
        let (c, events) = within("bob logs in", Client::connect(config("bob"))).await?;
        drains.spawn(drain_events(events));
        fillers.push(c);
    }
    let bob = fillers[0].clone();
    let fill_start = Instant::now();
    for (room, n) in [("small", args.small), ("big", args.big)] {
        within("bob joins", bob.join_room(room)).await?;
        fill(&fillers, room, n).await?;
    }
    let fill_time = fill_start.elapsed();
    for c in fillers.iter().skip(1) {
        let _ = tokio::time::timeout(Duration::from_secs(5), c.quit(None)).await;
    }

    // ann loads each room's whole history, as paging back in the UI would.
    let (ann, mut ann_events) = within("ann logs in", Client::connect(config("ann"))).await?;
    let mut loaded = HashMap::new();
    let load_start = Instant::now();
    for (room, n) in [("small", args.small), ("big", args.big)] {
        within("ann joins", ann.join_room(room)).await?;
        let history = load(&ann, room).await?;
        ensure!(history.len() as u64 == n, "{room}: loaded {} of {n} messages", history.len());
        loaded.insert(room, history);
    }
    let load_time = load_start.elapsed();
    let rooms = within("rooms", ann.rooms()).await?;
    let info = |name: &str| {
        rooms.iter().find(|r| r.name == name).cloned().context("room missing from the listing")
    };
    let small =
        Loaded { info: info("small")?, history: loaded.remove("small").unwrap_or_default() };
    let big = Loaded { info: info("big")?, history: loaded.remove("big").unwrap_or_default() };
    let (ui, small_events, big_events) =
        UiThread::start("ann".into(), small, big, (args.width, args.height)).await?;

    // ann's events go to the UI of their room, timed at the hand-over.
    let port_times: PortTimes = Arc::default();
    let forward = {
        let times = port_times.clone();
        tokio::spawn(async move {
            while let Some(ev) = ann_events.recv().await {
                hand_over(ev, &times, &small_events, &big_events);
            }
        })
    };

    let mut samples: HashMap<Side, Samples> = HashMap::new();
    let result = async {
        ui.settle(Side::Small).await?;
        ui.settle(Side::Big).await?;
        for round in 0..args.rounds {
            let order =
                if round % 2 == 0 { [Side::Small, Side::Big] } else { [Side::Big, Side::Small] };
            for side in order {
                let s = samples.entry(side).or_default();
                s.redraw.extend(ui.redraws(side, args.frames).await?);
                for i in 0..args.events {
                    latency(&ui, &bob, &port_times, side, format!("tick {round}.{i}"), s).await?;
                }
                ui.settle(side).await?;
            }
        }
        anyhow::Ok(())
    }
    .await;

    forward.abort();
    ui.stop();
    let _ = tokio::time::timeout(Duration::from_secs(5), ann.quit(None)).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), bob.quit(None)).await;
    drains.abort_all();
    result?;

    let mut small = samples.remove(&Side::Small).unwrap_or_default();
    let mut big = samples.remove(&Side::Big).unwrap_or_default();
    let mut report = Report::new(
        "tui",
        &[
            "measure",
            &format!("{} messages (ms)", args.small),
            &format!("{} messages (ms)", args.big),
            "ratio",
        ],
    );
    let mut row = |name: &str, a: &mut Vec<Duration>, b: &mut Vec<Duration>| {
        let (Some(pa), Some(pb)) = (Percentiles::of(a), Percentiles::of(b)) else { return };
        for (q, x, y) in [("p50", pa.p50, pb.p50), ("p99", pa.p99, pb.p99)] {
            report.row(vec![
                format!("{name} {q}"),
                ms(x),
                ms(y),
                ratio(y.as_secs_f64(), x.as_secs_f64()),
            ]);
        }
    };
    row("full redraw", &mut small.redraw, &mut big.redraw);
    row("event → frame", &mut small.port_to_frame, &mut big.port_to_frame);
    row("send → frame (via qchatd)", &mut small.send_to_frame, &mut big.send_to_frame);
    row("send → port (client library only)", &mut small.send_to_port, &mut big.send_to_port);
    report.note(format!(
        "{}x{} TestBackend; {} rounds, rooms interleaved (order alternating); per room and \
         round: {} full redraws (paging back every other frame), then {} messages sent one at \
         a time, each timed to the frame that shows it. Filling {} + {} messages took {:.1} s, \
         loading them into the client {:.1} s.",
        args.width,
        args.height,
        args.rounds,
        args.frames,
        args.events,
        args.small,
        args.big,
        fill_time.as_secs_f64(),
        load_time.as_secs_f64(),
    ));
    Ok(report)
}

/// Sends `needle` to `side`'s room as bob and records the three intervals.
async fn latency(
    ui: &UiThread,
    bob: &Client,
    port_times: &PortTimes,
    side: Side,
    needle: String,
    s: &mut Samples,
) -> anyhow::Result<()> {
    let room = if side == Side::Small { "small" } else { "big" };
    // Watch first, so the UI thread is turning when the event arrives.
    let drawn = ui.watch(side, needle.clone())?;
    let sent = Instant::now();
    within("send", bob.send(room, &needle)).await?;
    let frame = within("the frame", drawn).await.context("the UI thread stopped")??;
    let port = port_times
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(&needle)
        .context("the message was drawn but never handed to the port")?;
    s.port_to_frame.push(frame.saturating_duration_since(port));
    s.send_to_frame.push(frame.saturating_duration_since(sent));
    s.send_to_port.push(port.saturating_duration_since(sent));
    Ok(())
}

/// Hands one of ann's events to the UI of its room; a message's hand-over
/// instant is recorded by body.
fn hand_over(ev: ClientEvent, times: &PortTimes, small: &UiEvents, big: &UiEvents) {
    let ClientEvent::Message(m) = ev else {
        // Connection state, presence: both UIs, as qchat's one UI gets all.
        small.send(ev.clone());
        big.send(ev);
        return;
    };
    let to = if m.room == "small" { small } else { big };
    let body = m.body.clone();
    let at = Instant::now();
    if to.send(ClientEvent::Message(m)) {
        times.lock().unwrap_or_else(PoisonError::into_inner).insert(body, at);
    }
}

/// Sends `n` messages to `room`, spread over the `senders`' connections.
async fn fill(senders: &[Client], room: &str, n: u64) -> anyhow::Result<()> {
    let mut tasks = JoinSet::new();
    let count = senders.len() as u64;
    for (k, c) in (0u64..).zip(senders) {
        let c = c.clone();
        let room = room.to_owned();
        tasks.spawn(async move {
            for i in (1 + k..=n).step_by(usize::try_from(count).unwrap_or(1)) {
                // Text that wraps at 120 columns, with CJK and emoji.
                let body = format!(
                    "history message {i}: some words to wrap across the width of the view, \
                     日本語のテキスト and an emoji 🙂 so widths are not all ASCII"
                );
                within("a fill send", c.send(&room, &body)).await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.context("fill task")??;
    }
    Ok(())
}

/// The whole history of `room`, oldest first, in 500-message pages.
async fn load(client: &Client, room: &str) -> anyhow::Result<Vec<Message>> {
    let mut pages = Vec::new();
    let mut before = None;
    loop {
        let page = within("a history page", client.history(room, before, Some(500))).await?;
        before = page.messages.first().map(|m| m.seq);
        let more = page.more && before.is_some();
        pages.push(page.messages);
        if !more {
            break;
        }
    }
    Ok(pages.into_iter().rev().flatten().collect())
}

/// Reads bob's own events so nothing backs up.
async fn drain_events(mut events: qchat_client::Events) {
    while events.recv().await.is_some() {}
}

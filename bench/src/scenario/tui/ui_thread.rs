//! The UI thread: owns one [`HeadlessUi`] per loaded room and turns them on
//! request, as `qchat`'s UI loop owns its thread. Jobs come in over a
//! channel; each reply goes back on a oneshot.

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow};
use qchat_client::tui::{HeadlessUi, Scroll, UiEvents};
use qchat_client::{Message, RoomInfo};
use tokio::sync::oneshot;

/// How long one turn waits for an event.
const TURN: Duration = Duration::from_millis(100);
/// Bound on waiting for a message to be drawn.
const DRAWN_WITHIN: Duration = Duration::from_secs(10);

/// Which of the two UIs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Side {
    /// The baseline: the small room loaded.
    Small,
    /// The large room loaded.
    Big,
}

/// A room for one UI: its listing and its whole history.
pub(super) struct Loaded {
    /// The room as `rooms` lists it.
    pub(super) info: RoomInfo,
    /// Every message, ascending seq.
    pub(super) history: Vec<Message>,
}

/// Work for the UI thread.
enum Job {
    /// Full redraws, scrolling back a page every other frame (to the end
    /// again at the top); replies with each redraw's duration.
    Redraw { side: Side, frames: usize, reply: oneshot::Sender<Vec<Duration>> },
    /// Turns until a frame showing `needle` is drawn; replies with the
    /// instant that draw ended.
    Drawn { side: Side, needle: String, reply: oneshot::Sender<anyhow::Result<Instant>> },
    /// Turns until nothing changes for a turn (ticks, pending events).
    Settle { side: Side, reply: oneshot::Sender<()> },
}

/// The handle the scenario keeps.
pub(super) struct UiThread {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl UiThread {
    /// Starts the thread with a UI per room, `width`×`height`, logged in as
    /// `me`; returns it with the event handles of the small and big UI.
    pub(super) async fn start(
        me: String,
        small: Loaded,
        big: Loaded,
        (width, height): (u16, u16),
    ) -> anyhow::Result<(Self, UiEvents, UiEvents)> {
        let handle = tokio::runtime::Handle::current();
        let (jobs, rx) = mpsc::channel::<Job>();
        let (ready_tx, ready) = oneshot::channel::<anyhow::Result<(UiEvents, UiEvents)>>();
        let thread = std::thread::Builder::new()
            .name("headless-ui".into())
            .spawn(move || {
                // The UIs' network ports run on the scenario's runtime.
                let _rt = handle.enter();
                let uis = (|| -> anyhow::Result<(HeadlessUi, HeadlessUi)> {
                    let s = HeadlessUi::new(&me, small.info, small.history, width, height)?;
                    let b = HeadlessUi::new(&me, big.info, big.history, width, height)?;
                    Ok((s, b))
                })();
                let (mut s, mut b) = match uis {
                    Ok(uis) => uis,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok((s.events(), b.events())));
                while let Ok(job) = rx.recv() {
                    serve(job, &mut s, &mut b);
                }
            })
            .context("starting the UI thread")?;
        let (small_events, big_events) = ready.await.context("the UI thread stopped")??;
        Ok((Self { jobs: Some(jobs), thread: Some(thread) }, small_events, big_events))
    }

    fn send(&self, job: Job) -> anyhow::Result<()> {
        self.jobs
            .as_ref()
            .and_then(|j| j.send(job).ok())
            .ok_or_else(|| anyhow!("the UI thread stopped"))
    }

    /// `frames` full redraws of `side`'s UI.
    pub(super) async fn redraws(&self, side: Side, frames: usize) -> anyhow::Result<Vec<Duration>> {
        let (reply, rx) = oneshot::channel();
        self.send(Job::Redraw { side, frames, reply })?;
        rx.await.context("the UI thread stopped")
    }

    /// Asks the thread to watch for `needle`; the returned receiver gets
    /// the instant the frame showing it was drawn.
    pub(super) fn watch(
        &self,
        side: Side,
        needle: String,
    ) -> anyhow::Result<oneshot::Receiver<anyhow::Result<Instant>>> {
        let (reply, rx) = oneshot::channel();
        self.send(Job::Drawn { side, needle, reply })?;
        Ok(rx)
    }

    /// Waits until `side`'s UI has nothing left to draw.
    pub(super) async fn settle(&self, side: Side) -> anyhow::Result<()> {
        let (reply, rx) = oneshot::channel();
        self.send(Job::Settle { side, reply })?;
        rx.await.context("the UI thread stopped")
    }

    /// Stops the thread and waits for it.
    pub(super) fn stop(mut self) {
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(job: Job, small: &mut HeadlessUi, big: &mut HeadlessUi) {
    let pick = |side: Side| if side == Side::Small { small } else { big };
    match job {
        Job::Redraw { side, frames, reply } => {
            let _ = reply.send(redraws(pick(side), frames));
        }
        Job::Drawn { side, needle, reply } => {
            let _ = reply.send(drawn(pick(side), &needle));
        }
        Job::Settle { side, reply } => {
            let ui = pick(side);
            // Bounded: a turn draws only when something changed.
            for _ in 0..50 {
                if !ui.turn(Duration::from_millis(20)).unwrap_or(false) {
                    break;
                }
            }
            let _ = reply.send(());
        }
    }
}

fn redraws(ui: &mut HeadlessUi, frames: usize) -> Vec<Duration> {
    ui.scroll(Scroll::Bottom);
    let mut out = Vec::with_capacity(frames);
    for i in 0..frames {
        if i % 2 == 1 {
            ui.scroll(if ui.at_top() { Scroll::Bottom } else { Scroll::PageUp });
        }
        let start = Instant::now();
        if ui.redraw().is_err() {
            break;
        }
        out.push(start.elapsed());
    }
    ui.scroll(Scroll::Bottom);
    out
}

fn drawn(ui: &mut HeadlessUi, needle: &str) -> anyhow::Result<Instant> {
    let deadline = Instant::now() + DRAWN_WITHIN;
    while Instant::now() < deadline {
        if ui.turn(TURN)? {
            let end = Instant::now();
            if ui.screen().contains(needle) {
                return Ok(end);
            }
        }
    }
    Err(anyhow!("{needle:?} was not drawn within {DRAWN_WITHIN:?}; screen:\n{}", ui.screen()))
}

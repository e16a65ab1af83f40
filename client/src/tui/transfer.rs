//! Transfers as the panel shows them: per-file progress, speed and ETA
//! (pure), and the small adapter trait [`FileTransfers`] the network side
//! starts uploads and downloads through ([`ClientTransfers`] over the
//! client library's `Client::upload` / `download`).

use std::collections::VecDeque;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::{Duration, Instant};

use tokio::sync::watch;

/// Names a transfer for its lifetime in the UI.
pub(crate) type TransferId = u64;

/// Upload or download.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// To the server.
    Up,
    /// From the server.
    Down,
}

/// Where a transfer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Progress {
    /// Bytes of the file done (held on the other side, or on disk), which
    /// a resumed transfer starts from.
    pub(crate) done: u64,
    /// Bytes in all.
    pub(crate) total: u64,
    /// Bytes moved over the network by this run: the speed is measured
    /// on these, so a resume's held part does not count as speed.
    pub(crate) moved: u64,
}

/// A report about one transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TransferUpdate {
    /// Which.
    pub(crate) id: TransferId,
    /// What happened.
    pub(crate) kind: UpdateKind,
}

/// What happened to a transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum UpdateKind {
    /// Bytes moved.
    Progress(Progress),
    /// Finished; the detail says where or what (`file 12`, a path).
    Done(String),
    /// Failed, with why.
    Failed(String),
}

/// Where a transfer stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Status {
    /// Moving.
    Active,
    /// Finished.
    Done(String),
    /// Failed.
    Failed(String),
}

/// One row of the transfers panel.
#[derive(Debug, Clone)]
pub(crate) struct Transfer {
    /// Id.
    pub(crate) id: TransferId,
    /// Up or down.
    pub(crate) dir: Direction,
    /// File name shown.
    pub(crate) name: String,
    /// Latest progress.
    pub(crate) progress: Progress,
    /// Where it stands.
    pub(crate) status: Status,
    /// Recent (time, bytes done) samples for the speed.
    samples: VecDeque<(Instant, u64)>,
    /// When it finished (done or failed).
    pub(crate) finished: Option<Instant>,
}

/// The window the speed is averaged over.
const SPEED_WINDOW: Duration = Duration::from_secs(5);
/// How long a finished transfer stays in the panel (failed ones stay
/// until cleared with Ctrl-K: they need reading).
pub(crate) const KEEP_DONE: Duration = Duration::from_secs(10);

impl Transfer {
    /// A transfer that just started.
    pub(crate) fn new(
        id: TransferId,
        dir: Direction,
        name: String,
        total: u64,
        now: Instant,
    ) -> Self {
        let mut samples = VecDeque::new();
        samples.push_back((now, 0));
        Self {
            id,
            dir,
            name,
            progress: Progress { done: 0, total, moved: 0 },
            status: Status::Active,
            samples,
            finished: None,
        }
    }

    /// Records `done` bytes at `now` and forgets samples older than the
    /// speed window (keeping two, so there is always a span).
    fn sample(&mut self, now: Instant, done: u64) {
        self.samples.push_back((now, done));
        while self.samples.len() > 2
            && self.samples.front().is_some_and(|(t, _)| now.duration_since(*t) > SPEED_WINDOW)
        {
            self.samples.pop_front();
        }
    }

    /// The clock moved on (once a second): a sample of where it stands, so
    /// a stalled transfer's speed falls to zero and its ETA to `--:--`
    /// instead of freezing at the last values.
    pub(crate) fn tick(&mut self, now: Instant) {
        if self.status == Status::Active {
            self.sample(now, self.progress.moved);
        }
    }

    /// Whether the panel should still show it at `now`.
    pub(crate) fn keep(&self, now: Instant) -> bool {
        match (&self.status, self.finished) {
            (Status::Done(_), Some(at)) => now.saturating_duration_since(at) < KEEP_DONE,
            _ => true,
        }
    }

    /// Applies an update received at `now`.
    pub(crate) fn apply(&mut self, kind: UpdateKind, now: Instant) {
        match kind {
            UpdateKind::Progress(p) => {
                self.progress = p;
                self.sample(now, p.moved);
            }
            UpdateKind::Done(detail) => {
                self.progress.done = self.progress.total.max(self.progress.done);
                self.status = Status::Done(detail);
                self.finished = Some(now);
            }
            UpdateKind::Failed(why) => {
                self.status = Status::Failed(why);
                self.finished = Some(now);
            }
        }
    }

    /// 0..=100.
    pub(crate) fn percent(&self) -> u8 {
        if matches!(self.status, Status::Done(_)) {
            return 100;
        }
        if self.progress.total == 0 {
            return 0;
        }
        let p = self.progress.done.min(self.progress.total) * 100 / self.progress.total;
        u8::try_from(p).unwrap_or(100)
    }

    /// Bytes per second over the last few seconds.
    pub(crate) fn speed(&self) -> f64 {
        match (self.samples.front(), self.samples.back()) {
            (Some((t0, b0)), Some((t1, b1))) if t1 > t0 => {
                (b1 - b0.min(b1)) as f64 / t1.duration_since(*t0).as_secs_f64()
            }
            _ => 0.0,
        }
    }

    /// Time left at the current speed, when it can be guessed.
    pub(crate) fn eta(&self) -> Option<Duration> {
        let speed = self.speed();
        if self.status != Status::Active || speed <= 0.0 {
            return None;
        }
        let left = self.progress.total.saturating_sub(self.progress.done) as f64;
        Some(Duration::from_secs_f64(left / speed))
    }
}

/// `1:05`, `1:02:03`, `--:--`.
pub(crate) fn fmt_eta(eta: Option<Duration>) -> String {
    match eta {
        None => "--:--".to_owned(),
        Some(d) => {
            let s = d.as_secs();
            if s >= 3600 {
                format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
            } else {
                format!("{}:{:02}", s / 60, s % 60)
            }
        }
    }
}

/// A transfer under way: its progress, and how it ends.
pub(crate) struct Running {
    /// Bytes moved, updated by the transfer.
    pub(crate) progress: watch::Receiver<Progress>,
    /// The end: a detail for the panel (`file 12`, the saved path), or why
    /// it failed.
    pub(crate) done: Pin<Box<dyn Future<Output = Result<String, String>> + Send>>,
}

/// A boxed future of a started transfer.
pub(crate) type Starting = Pin<Box<dyn Future<Output = Result<Running, String>> + Send>>;

/// What the UI needs from the client library's transfer API.
pub(crate) trait FileTransfers: Send + Sync {
    /// Starts uploading `path` into `room`.
    fn upload(&self, room: &str, path: &Path) -> Starting;
    /// Starts downloading file `file_id` into `out_dir`.
    fn download(&self, file_id: u64, out_dir: &Path) -> Starting;
}

/// The adapter over the client library's `Client::upload` / `download`,
/// for whichever client is logged in.
pub(crate) struct ClientTransfers {
    /// The logged-in client, once there is one.
    pub(crate) client: std::sync::Arc<std::sync::Mutex<Option<crate::Client>>>,
}

impl ClientTransfers {
    fn client(&self) -> Result<crate::Client, String> {
        let guard = self.client.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        guard.clone().ok_or_else(|| "not connected".to_owned())
    }
}

/// A receiver of `Progress` fed from a receiver of the library's progress.
fn map_progress<T: Send + Sync + 'static>(
    mut rx: watch::Receiver<T>,
    f: fn(&T) -> Progress,
) -> watch::Receiver<Progress> {
    let (tx, out) = watch::channel(f(&rx.borrow_and_update()));
    tokio::spawn(async move {
        while rx.changed().await.is_ok() {
            let p = f(&rx.borrow_and_update());
            if tx.send(p).is_err() {
                break;
            }
        }
    });
    out
}

impl FileTransfers for ClientTransfers {
    fn upload(&self, room: &str, path: &Path) -> Starting {
        let started = self.client().and_then(|c| c.upload(room, path).map_err(|e| e.to_string()));
        Box::pin(async move {
            let handle = started?;
            let progress = map_progress(handle.progress(), |p| Progress {
                done: p.done,
                total: p.total,
                moved: p.sent,
            });
            let done = async move {
                handle
                    .wait()
                    .await
                    .map(|u| format!("file {}", u.file.id))
                    .map_err(|e| e.to_string())
            };
            Ok(Running { progress, done: Box::pin(done) })
        })
    }

    fn download(&self, file_id: u64, out_dir: &Path) -> Starting {
        let started =
            self.client().and_then(|c| c.download(file_id, out_dir).map_err(|e| e.to_string()));
        Box::pin(async move {
            let handle = started?;
            let progress = map_progress(handle.progress(), |p| Progress {
                done: p.done,
                total: p.total,
                moved: p.received,
            });
            let done = async move {
                handle.wait().await.map(|d| d.path.display().to_string()).map_err(|e| e.to_string())
            };
            Ok(Running { progress, done: Box::pin(done) })
        })
    }
}

/// Forwards a running transfer's progress and its end as updates, at most
/// every 100 ms (progress) so a fast transfer cannot flood the UI.
pub(crate) async fn forward(id: TransferId, running: Running, send: impl Fn(TransferUpdate)) {
    let Running { mut progress, done } = running;
    let mut done = done;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut last = None;
    loop {
        tokio::select! {
            end = &mut done => {
                let p = *progress.borrow();
                send(TransferUpdate { id, kind: UpdateKind::Progress(p) });
                let kind = match end { Ok(d) => UpdateKind::Done(d), Err(e) => UpdateKind::Failed(e) };
                send(TransferUpdate { id, kind });
                return;
            }
            _ = tick.tick() => {
                let p = *progress.borrow_and_update();
                if last != Some(p) {
                    last = Some(p);
                    send(TransferUpdate { id, kind: UpdateKind::Progress(p) });
                }
            }
        }
    }
}

/// The file name part of a path, for the panel.
pub(crate) fn display_name(path: &Path) -> String {
    path.file_name()
        .map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
}

/// Where downloads go: the platform's download directory, else the
/// current one (made absolute, so the UI can say where files land).
pub(crate) fn download_dir() -> PathBuf {
    directories::UserDirs::new()
        .and_then(|d| d.download_dir().map(Path::to_path_buf))
        .or_else(|| std::env::current_dir().ok())
        .unwrap_or_else(|| PathBuf::from("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_download_directory_is_absolute_so_the_ui_can_say_where() {
        // No XDG download folder here (a bare HOME in CI): the fallback is
        // the current directory, written out in full, not ".".
        assert!(download_dir().is_absolute(), "{}", download_dir().display());
    }

    #[test]
    fn percent_speed_eta() {
        let t0 = Instant::now();
        let mut t = Transfer::new(1, Direction::Up, "a.bin".into(), 1000, t0);
        assert_eq!(t.percent(), 0);
        assert_eq!(t.eta(), None);
        t.apply(
            UpdateKind::Progress(Progress { done: 250, total: 1000, moved: 250 }),
            t0 + Duration::from_secs(1),
        );
        assert_eq!(t.percent(), 25);
        assert!((t.speed() - 250.0).abs() < 1e-6);
        assert_eq!(t.eta(), Some(Duration::from_secs(3)));
        assert_eq!(fmt_eta(t.eta()), "0:03");
        t.apply(UpdateKind::Done("file 7".into()), t0 + Duration::from_secs(2));
        assert_eq!(t.percent(), 100);
        assert_eq!(t.eta(), None);
    }

    #[test]
    fn a_resumed_transfer_starts_at_the_held_part_and_its_speed_counts_only_what_moves() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut t = Transfer::new(1, Direction::Down, "big.iso".into(), 0, t0);
        // The library reports the partial file it found before any byte moved.
        t.apply(UpdateKind::Progress(Progress { done: 600, total: 1000, moved: 0 }), t0);
        assert_eq!(t.percent(), 60, "the held part, not 0%");
        t.apply(UpdateKind::Progress(Progress { done: 700, total: 1000, moved: 100 }), t0 + s(1));
        assert!((t.speed() - 100.0).abs() < 1e-6, "100 B/s, not 700: {}", t.speed());
        assert_eq!(t.eta(), Some(s(3)));
    }

    #[test]
    fn a_stalled_transfer_slows_to_zero_on_ticks() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut t = Transfer::new(1, Direction::Up, "a.bin".into(), 1000, t0);
        t.apply(UpdateKind::Progress(Progress { done: 400, total: 1000, moved: 400 }), t0 + s(2));
        assert!((t.speed() - 200.0).abs() < 1e-6);
        // No progress reports while it stalls; only ticks.
        for i in 3..=5 {
            t.tick(t0 + s(i));
        }
        assert!((t.speed() - 80.0).abs() < 1e-6, "400 B over 5 s: {}", t.speed());
        for i in 6..=9 {
            t.tick(t0 + s(i));
        }
        assert_eq!(t.speed(), 0.0, "nothing moved in the last 5 s");
        assert_eq!(fmt_eta(t.eta()), "--:--");
        // It picks up again.
        t.apply(UpdateKind::Progress(Progress { done: 600, total: 1000, moved: 600 }), t0 + s(10));
        assert!(t.speed() > 0.0);
        // Ticks leave finished transfers alone.
        t.apply(UpdateKind::Done("file 1".into()), t0 + s(11));
        let before = t.speed();
        t.tick(t0 + s(12));
        assert_eq!(t.speed(), before);
    }

    #[test]
    fn done_transfers_go_after_a_while_failed_ones_stay() {
        let t0 = Instant::now();
        let mut done = Transfer::new(1, Direction::Up, "a".into(), 10, t0);
        done.apply(UpdateKind::Done("file 1".into()), t0);
        let mut failed = Transfer::new(2, Direction::Up, "b".into(), 10, t0);
        failed.apply(UpdateKind::Failed("no".into()), t0);
        let active = Transfer::new(3, Direction::Up, "c".into(), 10, t0);
        assert!(done.keep(t0 + KEEP_DONE - Duration::from_millis(1)));
        assert!(!done.keep(t0 + KEEP_DONE));
        assert!(failed.keep(t0 + KEEP_DONE * 100));
        assert!(active.keep(t0 + KEEP_DONE * 100));
    }

    #[tokio::test]
    async fn forward_reports_progress_and_end() {
        let (tx, rx) = watch::channel(Progress { done: 0, total: 10, moved: 0 });
        let (end_tx, end_rx) = tokio::sync::oneshot::channel::<Result<String, String>>();
        let running = Running {
            progress: rx,
            done: Box::pin(async move { end_rx.await.unwrap_or(Err("dropped".into())) }),
        };
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen2 = seen.clone();
        let task = tokio::spawn(forward(3, running, move |u| seen2.lock().expect("lock").push(u)));
        tokio::time::sleep(Duration::from_millis(150)).await;
        let _ = tx.send(Progress { done: 10, total: 10, moved: 10 });
        let _ = end_tx.send(Ok("file 9".into()));
        task.await.expect("forward ends");
        let seen = seen.lock().expect("lock").clone();
        assert_eq!(
            seen.last(),
            Some(&TransferUpdate { id: 3, kind: UpdateKind::Done("file 9".into()) })
        );
        assert!(seen.contains(&TransferUpdate {
            id: 3,
            kind: UpdateKind::Progress(Progress { done: 10, total: 10, moved: 10 })
        }));
    }
}

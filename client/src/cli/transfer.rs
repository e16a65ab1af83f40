//! `qchat upload` and `qchat download`: start the transfers through the
//! library and show their progress — redrawn lines with percentage and speed
//! on a terminal, one plain line per finished transfer otherwise.

use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use qchat_client::{
    Client, DownloadHandle, DownloadProgress, DownloadState, TransferHandle, TransferProgress,
    UploadHandle, UploadProgress, UploadState,
};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

use super::join_if_needed;
use super::print::sanitize;

/// How often a terminal's progress lines are redrawn.
const REDRAW: Duration = Duration::from_millis(200);

/// One line of progress on a terminal.
struct Line {
    label: String,
    done: u64,
    total: u64,
    status: String,
    last: (Instant, u64),
    speed: f64,
}

impl Line {
    fn new(label: String) -> Self {
        Self {
            label,
            done: 0,
            total: 0,
            status: String::new(),
            last: (Instant::now(), 0),
            speed: 0.0,
        }
    }

    fn update(&mut self, done: u64, total: u64, status: String) {
        let now = Instant::now();
        let dt = now.duration_since(self.last.0).as_secs_f64();
        if dt >= 0.5 || done < self.last.1 {
            // Bytes per second over the last half second or so.
            self.speed = done.saturating_sub(self.last.1) as f64 / dt.max(0.001);
            self.last = (now, done);
        }
        self.done = done;
        self.total = total;
        self.status = status;
    }

    fn render(&self) -> String {
        let pct =
            if self.total == 0 { 100.0 } else { self.done as f64 * 100.0 / self.total as f64 };
        format!(
            "{:<32.32} {:>5.1}% {:>10} / {:<10} {:>10}/s  {}",
            self.label,
            pct,
            human(self.done),
            human(self.total),
            human(self.speed as u64),
            self.status
        )
    }
}

/// Bytes with a binary unit, e.g. `1.5 MiB`.
fn human(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{n} B") } else { format!("{v:.1} {}", UNITS[unit]) }
}

/// Redraws `lines` in place (the cursor sits below them after the first draw).
fn redraw(lines: &[Line], first: bool) {
    let mut out = std::io::stdout().lock();
    if !first && !lines.is_empty() {
        let _ = write!(out, "\x1b[{}A", lines.len());
    }
    for l in lines {
        let _ = writeln!(out, "\r\x1b[2K{}", l.render());
    }
    let _ = out.flush();
}

fn upload_status(p: &UploadProgress) -> String {
    match &p.state {
        UploadState::Hashing => "hashing".to_owned(),
        UploadState::Waiting => "waiting".to_owned(),
        UploadState::Sending => "sending".to_owned(),
        UploadState::Verifying => "verifying".to_owned(),
        UploadState::Done(u) if u.deduplicated => {
            format!("done (already stored) file {} #{}", u.file.id, u.seq)
        }
        UploadState::Done(u) => format!("done file {} #{}", u.file.id, u.seq),
        UploadState::Failed(e) => format!("FAILED: {e}"),
    }
}

/// Wakes `notify` whenever a transfer finishes, so the progress loops below
/// exit (and print) as soon as the last one is done rather than at their
/// next redraw. The tasks end with their transfers, or when the set is
/// dropped.
fn on_finish<T: Send + Sync + 'static>(
    progress: impl IntoIterator<Item = watch::Receiver<T>>,
    finished: fn(&T) -> bool,
    notify: &Arc<Notify>,
) -> JoinSet<()> {
    let mut set = JoinSet::new();
    for mut rx in progress {
        let notify = notify.clone();
        set.spawn(async move {
            let _ = rx.wait_for(finished).await;
            notify.notify_one();
        });
    }
    set
}

/// One round of the upload and download progress loops, seen from its
/// end: the lines to redraw (on a terminal), which transfers were reported
/// and what wakes the loop.
struct Round<'a> {
    tty: bool,
    lines: &'a [Line],
    reported: &'a [bool],
    notify: &'a Notify,
}

impl Round<'_> {
    /// Redraws, then `Ok(true)` when every transfer was reported; else
    /// waits for the next redraw or a finished transfer (`Ok(false)`). On
    /// Ctrl-C cancels every one of `handles` and fails, saying how to
    /// resume the `what` (upload, download).
    async fn end<P: TransferProgress>(
        &self,
        first: &mut bool,
        handles: &[TransferHandle<P>],
        what: &str,
    ) -> anyhow::Result<bool> {
        if self.tty {
            redraw(self.lines, *first);
            *first = false;
        }
        if self.reported.iter().all(|r| *r) {
            return Ok(true);
        }
        tokio::select! {
            _ = tokio::time::sleep(REDRAW) => Ok(false),
            () = self.notify.notified() => Ok(false),
            _ = tokio::signal::ctrl_c() => {
                for h in handles {
                    h.cancel();
                }
                bail!("interrupted; run the same {what} again to resume");
            }
        }
    }
}

/// `qchat upload ROOM FILE...`: every file in parallel; fails when any did.
pub(super) async fn upload(client: &Client, room: &str, files: &[PathBuf]) -> anyhow::Result<()> {
    join_if_needed(client, room).await?;
    let mut handles: Vec<UploadHandle> = Vec::new();
    for path in files {
        handles.push(
            client.upload(room, path).with_context(|| format!("uploading {}", path.display()))?,
        );
    }
    let tty = std::io::stdout().is_terminal();
    let notify = Arc::new(Notify::new());
    let _watchers =
        on_finish(handles.iter().map(UploadHandle::progress), UploadProgress::is_finished, &notify);
    let mut lines: Vec<Line> =
        files.iter().map(|p| Line::new(sanitize(&p.display().to_string()))).collect();
    let mut reported = vec![false; handles.len()];
    let mut failed = 0usize;
    let mut first = true;
    loop {
        for (i, h) in handles.iter().enumerate() {
            let p = h.snapshot();
            if tty {
                lines[i].update(p.done, p.total, upload_status(&p));
            }
            if reported[i] || !p.is_finished() {
                continue;
            }
            reported[i] = true;
            match &p.state {
                UploadState::Done(u) if !tty => println!(
                    "uploaded {} file_id={} seq={} bytes={} sent={}",
                    sanitize(&u.file.name),
                    u.file.id,
                    u.seq,
                    u.file.size,
                    u.sent
                ),
                UploadState::Failed(e) => {
                    failed += 1;
                    if !tty {
                        eprintln!("qchat: uploading {} failed: {e}", files[i].display());
                    }
                }
                _ => {}
            }
        }
        let round = Round { tty, lines: &lines, reported: &reported, notify: &notify };
        if round.end(&mut first, &handles, "upload").await? {
            break;
        }
    }
    if failed > 0 {
        bail!("{failed} of {} uploads failed", handles.len());
    }
    Ok(())
}

fn download_status(p: &DownloadProgress) -> String {
    match &p.state {
        DownloadState::Requesting => "requesting".to_owned(),
        DownloadState::Waiting => "waiting".to_owned(),
        DownloadState::Receiving => "receiving".to_owned(),
        DownloadState::Verifying => "verifying".to_owned(),
        DownloadState::Done(_) => "done".to_owned(),
        DownloadState::Failed(e) => format!("FAILED: {e}"),
    }
}

/// `qchat download FILE_ID... [--out DIR]`: every file in parallel; prints
/// the path written for each as it finishes; fails when any did.
pub(super) async fn download(client: &Client, file_ids: &[u64], out: &Path) -> anyhow::Result<()> {
    let mut handles: Vec<DownloadHandle> = Vec::new();
    for &id in file_ids {
        handles.push(client.download(id, out).with_context(|| format!("downloading file {id}"))?);
    }
    let tty = std::io::stdout().is_terminal();
    let notify = Arc::new(Notify::new());
    let _watchers = on_finish(
        handles.iter().map(DownloadHandle::progress),
        DownloadProgress::is_finished,
        &notify,
    );
    let mut lines: Vec<Line> = file_ids.iter().map(|id| Line::new(format!("file {id}"))).collect();
    let mut reported = vec![false; handles.len()];
    let mut failed = 0usize;
    let mut first = true;
    loop {
        for (i, h) in handles.iter().enumerate() {
            let p = h.snapshot();
            if tty {
                if !p.name.is_empty() {
                    lines[i].label = sanitize(&p.name);
                }
                lines[i].update(p.done, p.total, download_status(&p));
            }
            if reported[i] || !p.is_finished() {
                continue;
            }
            reported[i] = true;
            match &p.state {
                DownloadState::Done(d) if !tty => println!("{}", d.path.display()),
                DownloadState::Failed(e) => {
                    failed += 1;
                    if !tty {
                        eprintln!("qchat: downloading file {} failed: {e}", file_ids[i]);
                    }
                }
                _ => {}
            }
        }
        let round = Round { tty, lines: &lines, reported: &reported, notify: &notify };
        if round.end(&mut first, &handles, "download").await? {
            break;
        }
    }
    if tty {
        // The redrawn lines show the status; the paths follow them.
        for h in &handles {
            if let DownloadState::Done(d) = h.snapshot().state {
                println!("{}", d.path.display());
            }
        }
    }
    if failed > 0 {
        if let [id] = file_ids {
            bail!("downloading file {id} failed");
        }
        bail!("{failed} of {} downloads failed", handles.len());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes() {
        assert_eq!(human(0), "0 B");
        assert_eq!(human(1023), "1023 B");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(64 << 20), "64.0 MiB");
    }

    #[test]
    fn lines_show_percent() {
        let mut l = Line::new("a.bin".into());
        l.update(512, 1024, "sending".into());
        assert!(l.render().contains(" 50.0%"), "{}", l.render());
        assert!(l.render().ends_with("sending"));
    }
}

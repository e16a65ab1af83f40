//! A `qchat-bench worker ...` child process driven over its standard streams:
//! the parent writes command lines to its stdin, reads result lines from its
//! stdout, and stops it by closing stdin. Killed on drop, so no worker
//! outlives the scenario that started it.

use std::process::Stdio;
use std::time::Duration;

use anyhow::Context as _;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// A running worker process.
pub(crate) struct WorkerProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Lines<BufReader<ChildStdout>>,
    what: &'static str,
}

impl WorkerProcess {
    /// Spawns `cmd` with piped stdin and stdout; `what` names it in errors.
    pub(crate) fn spawn(cmd: &mut Command, what: &'static str) -> anyhow::Result<Self> {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("spawning the {what}"))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().with_context(|| format!("{what} stdout"))?;
        Ok(Self { child, stdin, lines: BufReader::new(stdout).lines(), what })
    }

    /// The next line the worker prints.
    pub(crate) async fn line(&mut self) -> anyhow::Result<String> {
        self.lines.next_line().await?.with_context(|| format!("{} exited", self.what))
    }

    /// Sends the worker one command line.
    pub(crate) async fn send(&mut self, line: &str) -> anyhow::Result<()> {
        let stdin = self.stdin.as_mut().with_context(|| format!("{} stdin closed", self.what))?;
        stdin.write_all(format!("{line}\n").as_bytes()).await?;
        stdin.flush().await?;
        Ok(())
    }

    /// The process id, while it runs.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Closes its stdin and waits up to `within` for it to exit, then kills it.
    pub(crate) async fn stop(mut self, within: Duration) {
        drop(self.stdin.take());
        if tokio::time::timeout(within, self.child.wait()).await.is_err() {
            let _ = self.child.kill().await;
        }
    }
}

//! The terminal UI, started when `qchat` gets no subcommand. A stub until the
//! TUI lands (it will live in `tui/` and replace this file's body).

use crate::cli::SharedOpts;

/// Runs the terminal UI.
///
/// # Errors
/// Always, for now: there is no terminal UI yet.
pub(crate) async fn run(opts: &SharedOpts) -> anyhow::Result<()> {
    let _ = opts;
    anyhow::bail!("the terminal UI is not built yet; use a subcommand (see --help)")
}

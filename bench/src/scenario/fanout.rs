//! Scenario `fanout` (issue 7). Not written yet: running it fails with a message.

use crate::report::Report;

/// Flags of this scenario.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

/// Runs the scenario.
pub(crate) async fn run(_args: Args) -> anyhow::Result<Report> {
    anyhow::bail!("scenario fanout is not written yet (issue 7)")
}

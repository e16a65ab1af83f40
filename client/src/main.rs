//! `qchat`: the qchat client. With a subcommand it does one thing and exits
//! (for scripts and tests); without one it starts the terminal UI.
//!
//! On failure it prints one line, `qchat: <reason>`, to stderr and exits
//! non-zero. Logs go to stderr only when asked for (`-v` or `RUST_LOG`).

mod cli;

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    // The terminal UI logs to a file of its own; stderr is its screen.
    if cli.command.is_some() {
        init_tracing(cli.shared.verbose);
    }
    match cli::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let line = format!("{e:#}").replace(['\n', '\r'], " ");
            eprintln!("qchat: {line}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr when `-v` is given or `RUST_LOG` is set; silent otherwise
/// (stdout is for the command's output, and the TUI owns the terminal).
fn init_tracing(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.is_empty() => EnvFilter::new(spec),
        _ if verbose == 0 => return,
        _ if verbose == 1 => EnvFilter::new("qchat=info,qchat_client=info"),
        _ => EnvFilter::new("qchat=debug,qchat_client=debug,quinn=info"),
    };
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

/// The terminal UI's entry from the command line: the shared options become
/// [`qchat_client::tui::TuiOptions`] and the library runs the UI.
mod tui {
    use std::io::BufRead as _;

    use anyhow::Context as _;
    use qchat_client::tui::{self, TuiOptions};

    use crate::cli::SharedOpts;

    /// Runs the terminal UI until the user quits.
    ///
    /// # Errors
    /// No known-hosts location, an unreadable password, or the UI failed.
    pub(crate) async fn run(opts: &SharedOpts) -> anyhow::Result<()> {
        // Read the password before the terminal goes raw.
        let password = if opts.password_stdin {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("reading the password from stdin")?;
            line.trim_end_matches(['\n', '\r']).to_owned()
        } else {
            std::env::var("QCHAT_PASSWORD").unwrap_or_default()
        };
        let options = TuiOptions {
            server: opts.server.clone(),
            tenant: opts.tenant.clone(),
            user: opts.user.clone(),
            password,
            trust: opts.trust()?,
            register: opts.register,
            verbose: opts.verbose,
            config: opts.config.clone(),
        };
        Ok(tui::run(options).await?)
    }
}

//! The terminal UI (cargo feature `tui`, on by default), which `qchat`
//! starts when it gets no subcommand: tuirealm on ratatui + crossterm, a
//! thin layer over this library's [`Client`](crate::Client). Elm-style:
//! events become `Msg`s, the pure update function changes the `Chat` model
//! and queues effects, the `Runner` carries the effects out in tasks whose
//! results come back through the async `NetPort`, and the view draws the
//! model.
//!
//! # Layout
//! - `app`: `Id`, `Msg` (nested: form, input, view keys, network events),
//!   `UserEvent`, `NetEvent`, `Effect`.
//! - `model`: the state (`room`: a room, `timeline`: what it shows:
//!   messages, join/quit lines, unacknowledged sends; `selection`: an edit
//!   or reply being written, the emoji picker, a deletion to confirm, the
//!   thread view; `changes`: edits, deletions and reactions applied in
//!   place); `update`: `Chat::update`, one match.
//! - `view`: layout; `components/`: one widget per file.
//! - `layout` + `wrap` + `clock`: the message view's rows and visible
//!   window, display widths, local dates and times; pure.
//! - `config`: the config file (settings, colours, keys) and its documented
//!   defaults.
//! - `commands`: parsing the input line, Tab completion, `:shortcode:`s.
//! - `input`: the input line's editing keys and sent-line history.
//! - `keys`: key bindings (actions, the keymap, key names).
//! - `transfer`: progress, speed, ETA, and the transfer adapter.
//! - `theme`: the colours; `notify`: which messages alert, and the bell
//!   and desktop-notification escapes.
//! - `ports`: the network side; `session`: token file and state directory.
//! - `event_loop`: the loop both [`run`] and [`HeadlessUi`] turn.
//! - `headless`: [`HeadlessUi`], that loop on ratatui's `TestBackend`
//!   (benchmarks, tests).

mod app;
mod changes;
mod clock;
mod commands;
mod components;
mod config;
mod event_loop;
mod headless;
mod input;
mod keys;
mod layout;
mod model;
mod notify;
mod ports;
mod room;
mod selection;
mod session;
mod theme;
mod timeline;
mod transfer;
mod update;
mod view;
mod wrap;

#[cfg(test)]
mod tests;

pub use config::{
    ConfigError, default_path as default_config_path, default_text as default_config,
};
pub use headless::{HeadlessUi, Scroll, UiEvents};

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::ThreadId;

use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::sync::mpsc;
use tuirealm::terminal::{CrosstermTerminalAdapter, TerminalAdapter as _, TerminalError};

use crate::Trust;
use app::{FormMsg, Msg};
use event_loop::Ui;
use model::Chat;
use session::{LastLogin, TokenStore};

/// What the terminal UI starts with (the command line's shared options).
#[derive(Debug, Clone)]
pub struct TuiOptions {
    /// Server `host:port` to prefill.
    pub server: Option<String>,
    /// Tenant to prefill.
    pub tenant: Option<String>,
    /// User to prefill.
    pub user: Option<String>,
    /// Password to prefill (masked); empty to type it or use a saved session.
    pub password: String,
    /// How to trust the server's certificate. With `KnownHosts` the form
    /// also offers to pin an unknown certificate (trust on first use).
    pub trust: Trust,
    /// Create the account instead of logging in (the form can toggle it).
    pub register: bool,
    /// Log file verbosity: 0 and 1 info, 2 or more debug; `RUST_LOG`
    /// overrides.
    pub verbose: u8,
    /// The config file; `None`: [`default_config_path`].
    pub config: Option<PathBuf>,
}

/// Why the terminal UI could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TuiError {
    /// No state directory could be found for the log and session files.
    #[error("no home directory for the state directory; set QCHAT_STATE_DIR")]
    NoStateDir,
    /// A file in the state directory could not be created or opened.
    #[error("{what} {}", path.display())]
    StateFile {
        /// What was being done.
        what: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The terminal failed (opening it, raw mode, drawing, restoring).
    #[error("terminal: {what}")]
    Terminal {
        /// What was being done.
        what: &'static str,
        /// The cause.
        #[source]
        source: TerminalError,
    },
    /// Restoring the terminal on the way out failed.
    #[error("restoring the terminal")]
    Restore(#[source] std::io::Error),
    /// tuirealm refused a component or could not read events.
    #[error("terminal UI: {0}")]
    App(#[from] tuirealm::application::ApplicationError),
    /// Not called within a tokio runtime (the network side needs one).
    #[error("the terminal UI must run within a tokio runtime")]
    NoRuntime,
    /// The config file was refused.
    #[error("config file {0}")]
    Config(#[from] ConfigError),
}

impl TuiError {
    fn terminal(what: &'static str) -> impl FnOnce(TerminalError) -> Self {
        move |source| Self::Terminal { what, source }
    }
}

/// Checks the config file at `path` (or the default one): `Ok` with the
/// file that was read, or `None` when there is none (the defaults apply).
///
/// # Errors
/// The file cannot be read, or holds an unknown setting or a bad value.
pub fn check_config(path: Option<&std::path::Path>) -> Result<Option<PathBuf>, ConfigError> {
    let Some(path) = path.map(std::path::Path::to_path_buf).or_else(config::default_path) else {
        return Ok(None);
    };
    config::load(&path)?;
    Ok(path.exists().then_some(path))
}

/// Runs the terminal UI until the user quits (Ctrl-C or `/quit`), then
/// restores the terminal. Logs go to `qchat.log` in the state directory
/// (`QCHAT_STATE_DIR`, else the platform's), never to the terminal; saved
/// session tokens (`sessions`, mode 0600) and the last identity logged in
/// with (`last_login`, which prefills the form) live beside it.
///
/// Call it on a multi-threaded tokio runtime: the UI loop blocks its thread
/// (handed off with [`tokio::task::block_in_place`]) while the network side
/// runs in tasks.
///
/// # Errors
/// No state directory, no terminal, or a terminal failure while running.
pub async fn run(opts: TuiOptions) -> Result<(), TuiError> {
    // A bad config file stops the UI before it takes the terminal.
    let cfg = match opts.config.clone().or_else(config::default_path) {
        Some(path) => config::load(&path)?,
        None => config::Config::default(),
    };
    let in_tmux = std::env::var_os("TMUX").is_some_and(|t| !t.is_empty());
    let flag_letters = cfg.flag_letters.unwrap_or(in_tmux);
    let state = session::state_dir().ok_or(TuiError::NoStateDir)?;
    std::fs::create_dir_all(&state).map_err(|source| TuiError::StateFile {
        what: "creating",
        path: state.clone(),
        source,
    })?;
    init_logging(&state.join("qchat.log"), opts.verbose)?;
    let tokens = TokenStore::new(state.join("sessions"));
    let last = LastLogin::new(state.join("last_login"));

    let given = [opts.server.clone(), opts.tenant.clone(), opts.user.clone()];
    let from_options = given.iter().all(Option::is_some);
    let [server, tenant, user] = session::prefill(given, last.load());
    let fields = [server, tenant, user, opts.password.clone()];
    let have_token = tokens.load(&fields[0], &fields[1], &fields[2]).is_some();
    let zone = clock::Zone::system()
        .with_formats(&cfg.time_format, &cfg.date_format)
        .unwrap_or_else(|_| clock::Zone::system());
    let mut chat = Chat::new(fields, opts.register, have_token, zone);
    chat.sessions = tokens.identities();
    chat.download_dir = cfg.download_dir.clone().unwrap_or_else(transfer::download_dir);
    chat.keys = cfg.keys.clone();
    chat.theme = cfg.theme.clone();
    chat.notify = cfg.notify;
    chat.events = cfg.events;
    chat.send_typing = cfg.typing;
    // Whether to offer registration: ask about a prefilled tenant now.
    chat.probe_registration();
    // A saved session for the identity given on the command line and no
    // password: log straight in. One prefilled from the last log-in waits
    // for Enter instead, so the user can still switch account.
    if from_options && chat.have_token() && chat.login.fields[3].is_empty() {
        chat.update(Msg::Login(FormMsg::Submit));
    }

    let (tx, rx) = mpsc::unbounded_channel();
    let terminal = CrosstermTerminalAdapter::new().map_err(TuiError::terminal("opening"))?;
    let mut ui = Ui::new(terminal, chat, rx, true)?;
    // Bells and notification escapes go straight to the terminal, after
    // the frame (outside tmux's passthrough unless inside tmux).
    ui.alerts = Box::new(move |alerts, cfg| {
        use std::io::Write as _;
        let bytes = notify::escape(alerts, cfg, in_tmux);
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(&bytes).and_then(|()| out.flush());
    });
    install_panic_hook();
    ui.terminal.enable_raw_mode().map_err(TuiError::terminal("raw mode"))?;
    ui.terminal.enter_alternate_screen().map_err(TuiError::terminal("alternate screen"))?;
    if cfg.mouse {
        // Restored (turned off) with the rest of the terminal.
        ui.terminal.enable_mouse_capture().map_err(TuiError::terminal("mouse"))?;
    }

    let mut runner = ports::Runner::new(tx, opts.trust.clone(), tokens, last);
    // The loop blocks between events; hand this worker's other tasks to
    // the rest of the runtime meanwhile, or tasks the UI just spawned could
    // wait in this worker's queue until the next key.
    // Set on the thread that lays out and draws (a per-thread setting).
    let mut run_ui = || {
        wrap::set_flags_as_letters(flag_letters);
        ui.run(&mut runner)
    };
    let result = if Handle::current().runtime_flavor() == RuntimeFlavor::MultiThread {
        tokio::task::block_in_place(run_ui)
    } else {
        run_ui()
    };
    runner.shutdown().await;
    let restored = ui.terminal.restore();
    let _ = crossterm::execute!(std::io::stdout(), crossterm::cursor::Show);
    tracing::info!("terminal UI closed");
    result?;
    restored.map_err(TuiError::Restore)
}

/// Logs go to a file, never the terminal the UI draws on.
fn init_logging(path: &std::path::Path, verbose: u8) -> Result<(), TuiError> {
    use tracing_subscriber::EnvFilter;
    let file =
        std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(|source| {
            TuiError::StateFile { what: "opening the log file", path: path.into(), source }
        })?;
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.is_empty() => EnvFilter::new(spec),
        _ if verbose >= 2 => EnvFilter::new("qchat=debug,qchat_client=debug,quinn=info"),
        _ => EnvFilter::new("qchat=info,qchat_client=info"),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(Mutex::new(file))
        .try_init();
    Ok(())
}

/// Panics on threads other than the UI's since the hook went in: tasks the
/// UI survives (tokio catches them), which the loop reports on the status
/// line.
static BACKGROUND_PANICS: AtomicUsize = AtomicUsize::new(0);

/// How many background panics happened so far (see [`BACKGROUND_PANICS`]).
pub(crate) fn background_panics() -> usize {
    BACKGROUND_PANICS.load(Ordering::Relaxed)
}

/// Whether a panic on `thread` is the UI's own, which ends the UI: only
/// then is the terminal restored. A network task's panic leaves the screen
/// to the UI, which carries on.
fn is_ui_panic(ui: ThreadId, thread: ThreadId) -> bool {
    ui == thread
}

/// Installs the panic hook, for panics on the calling thread (the one that
/// runs the UI loop): restore the terminal first (tuirealm's adapter does
/// that in its own hook, which this one calls), show the cursor, log the
/// panic. A panic on any other thread is only logged and counted: the UI
/// survives it, and restoring the terminal under a running UI would leave
/// it drawing garbage in cooked mode.
fn install_panic_hook() {
    let ui = std::thread::current().id();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let here = std::thread::current();
        if !is_ui_panic(ui, here.id()) {
            BACKGROUND_PANICS.fetch_add(1, Ordering::Relaxed);
            let thread = here.name().unwrap_or("unnamed");
            tracing::error!(%info, thread, "panic in a background task; the UI carries on");
            return;
        }
        let _ = crossterm::terminal::disable_raw_mode();
        let _ = crossterm::execute!(
            std::io::stdout(),
            crossterm::event::DisableMouseCapture,
            crossterm::terminal::LeaveAlternateScreen,
            crossterm::cursor::Show
        );
        tracing::error!(%info, "panic");
        previous(info);
    }));
}

#[cfg(test)]
mod panic_tests {
    use super::*;

    #[test]
    fn only_the_ui_threads_panic_restores_the_terminal() {
        let ui = std::thread::current().id();
        let other = std::thread::spawn(|| std::thread::current().id()).join().expect("join");
        assert!(is_ui_panic(ui, ui));
        assert!(!is_ui_panic(ui, other));
    }
}

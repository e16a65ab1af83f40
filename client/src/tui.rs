//! The terminal UI, started when `qchat` gets no subcommand (tuirealm on
//! ratatui + crossterm). Elm-style: events become [`app::Msg`]s, the pure
//! update function changes the [`model::Chat`] and queues effects, the
//! [`ports::Runner`] carries the effects out in tasks whose results come
//! back through the async [`ports::NetPort`], and the view draws the model.
//!
//! # Layout
//! - `app`: `Id`, `Msg` (nested: form, input, view keys, network events),
//!   `UserEvent`, `NetEvent`, `Effect`.
//! - `model`: the state; `update`: `Chat::update`, one match.
//! - `view`: layout; `components/`: one widget per file.
//! - `layout` + `wrap`: the message view's rows and visible window, pure.
//! - `commands`: parsing the input line, Tab completion, `:shortcode:`s.
//! - `transfer`: progress, speed, ETA, and the transfer adapter.
//! - `ports`: the network side; `session`: token file and state directory.

mod app;
mod commands;
mod components;
mod layout;
mod model;
mod ports;
mod session;
mod transfer;
mod update;
mod view;
mod wrap;

#[cfg(test)]
mod tests;

use std::io::BufRead as _;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::mpsc;
use tuirealm::application::PollStrategy;
use tuirealm::listener::EventListenerCfg;
use tuirealm::terminal::{CrosstermTerminalAdapter, TerminalAdapter as _};

use crate::cli::SharedOpts;
use app::{FormMsg, Msg};
use model::Chat;
use session::TokenStore;

/// Runs the terminal UI until the user quits.
///
/// # Errors
/// No state directory, no terminal, or a terminal failure while running.
pub(crate) async fn run(opts: &SharedOpts) -> anyhow::Result<()> {
    let state = session::state_dir()
        .context("no home directory for the state directory; set QCHAT_STATE_DIR")?;
    std::fs::create_dir_all(&state).with_context(|| format!("creating {}", state.display()))?;
    init_logging(&state.join("qchat.log"), opts.verbose)?;
    let tokens = TokenStore::new(state.join("sessions"));

    // Read the password before the terminal goes raw.
    let password = if opts.password_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).context("reading the password from stdin")?;
        line.trim_end_matches(['\n', '\r']).to_owned()
    } else {
        std::env::var("QCHAT_PASSWORD").unwrap_or_default()
    };
    let field = |v: &Option<String>| v.clone().unwrap_or_default();
    let fields = [field(&opts.server), field(&opts.tenant), field(&opts.user), password];
    let have_token = tokens.load(&fields[0], &fields[1], &fields[2]).is_some();
    let mut chat = Chat::new(fields, opts.register, have_token);
    // A saved session and nothing to type: log straight in.
    if have_token
        && chat.login.fields.iter().take(3).all(|f| !f.is_empty())
        && chat.login.fields[3].is_empty()
    {
        chat.update(Msg::Login(FormMsg::Submit));
    }

    let (tx, rx) = mpsc::unbounded_channel();
    let listener = EventListenerCfg::default()
        .with_handle(tokio::runtime::Handle::current())
        .async_crossterm_input_listener(Duration::ZERO, 16)
        .add_async_port(Box::new(ports::NetPort::new(rx)), Duration::ZERO, 256)
        .tick_interval(Duration::from_secs(1));
    let mut app = view::App::init(listener);
    view::mount(&mut app, &chat)?;

    let mut terminal = CrosstermTerminalAdapter::new().context("opening the terminal")?;
    install_panic_hook();
    terminal.enable_raw_mode().context("raw mode")?;
    terminal.enter_alternate_screen().context("alternate screen")?;

    let mut runner = ports::Runner::new(tx, opts.clone(), tokens);
    let result = event_loop(&mut app, &mut terminal, &mut chat, &mut runner);
    runner.shutdown().await;
    let restored = terminal.restore();
    let _ = crossterm::execute!(std::io::stdout(), crossterm::cursor::Show);
    tracing::info!("terminal UI closed");
    result?;
    restored.context("restoring the terminal")
}

fn event_loop(
    app: &mut view::App,
    terminal: &mut CrosstermTerminalAdapter,
    chat: &mut Chat,
    runner: &mut ports::Runner,
) -> anyhow::Result<()> {
    loop {
        for effect in chat.effects.drain(..) {
            runner.run(effect);
        }
        if chat.quit {
            return Ok(());
        }
        view::focus(app, chat);
        if chat.redraw {
            terminal.draw(|f| view::draw(f, app, chat)).context("drawing")?;
            chat.redraw = false;
        }
        let msgs = app
            .tick(PollStrategy::UpTo(256, Duration::from_millis(100)))
            .context("reading terminal events")?;
        for msg in msgs {
            chat.update(msg);
        }
    }
}

/// Logs go to a file, never the terminal the UI draws on.
fn init_logging(path: &std::path::Path, verbose: u8) -> anyhow::Result<()> {
    use tracing_subscriber::EnvFilter;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening the log file {}", path.display()))?;
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

/// On a panic: restore the terminal first (tuirealm's adapter does that in
/// its own hook, which this one calls), show the cursor, log the panic.
fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let _ = crossterm::terminal::disable_raw_mode();
        let _ = crossterm::execute!(
            std::io::stdout(),
            crossterm::terminal::LeaveAlternateScreen,
            crossterm::cursor::Show
        );
        tracing::error!(%info, "panic");
        previous(info);
    }));
}

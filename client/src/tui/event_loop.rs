//! The loop of the UI, shared by the real terminal and [`HeadlessUi`]:
//! wait for events (keys, the network port, ticks), apply them with
//! update(), hand the queued effects on, draw when something changed.
//!
//! [`HeadlessUi`]: super::HeadlessUi

use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tuirealm::application::PollStrategy;
use tuirealm::listener::EventListenerCfg;
use tuirealm::terminal::TerminalAdapter;

use super::TuiError;
use super::app::{Msg, NetEvent};
use super::model::Chat;
use super::notify::{Alert, Notify};
use super::ports::{NetPort, Runner};
use super::view;

/// How long one turn waits for the first event.
const POLL: Duration = Duration::from_millis(100);
/// Events taken in one turn at most.
const BATCH: usize = 256;

/// Raises alerts (rings the bell, writes notification escapes).
pub(crate) type AlertSink = Box<dyn FnMut(&[Alert], &Notify) + Send>;

/// The running UI: the tuirealm application, the terminal it draws on and
/// the state.
pub(crate) struct Ui<T: TerminalAdapter> {
    /// Components and the event listener.
    pub(crate) app: view::App,
    /// Where frames go.
    pub(crate) terminal: T,
    /// The state.
    pub(crate) chat: Chat,
    /// Where alerts go after a frame (nowhere until set).
    pub(crate) alerts: AlertSink,
    /// Background panics already reported on the status line.
    panics_seen: usize,
}

impl<T: TerminalAdapter> Ui<T> {
    /// Mounts the components and starts the listener: the network port
    /// reading `net`, a tick a second, and terminal input when `keys`.
    ///
    /// # Errors
    /// No tokio runtime, or tuirealm refused a mount.
    pub(crate) fn new(
        terminal: T,
        chat: Chat,
        net: mpsc::UnboundedReceiver<NetEvent>,
        keys: bool,
    ) -> Result<Self, TuiError> {
        let handle = Handle::try_current().map_err(|_| TuiError::NoRuntime)?;
        let mut listener = EventListenerCfg::default().with_handle(handle);
        if keys {
            listener = listener.async_crossterm_input_listener(Duration::ZERO, 16);
        }
        let listener = listener
            .add_async_port(Box::new(NetPort::new(net)), Duration::ZERO, 256)
            .tick_interval(Duration::from_secs(1));
        let mut app = view::App::init(listener);
        view::mount(&mut app, &chat)?;
        let alerts: AlertSink = Box::new(|_, _| {});
        Ok(Self { app, terminal, chat, alerts, panics_seen: super::background_panics() })
    }

    /// Turns until the user quits, handing effects to `runner`.
    ///
    /// # Errors
    /// Reading events or drawing failed.
    pub(crate) fn run(&mut self, runner: &mut Runner) -> Result<(), TuiError> {
        loop {
            for effect in self.chat.effects.drain(..) {
                runner.run(effect);
            }
            if self.chat.quit {
                return Ok(());
            }
            self.draw_if_needed()?;
            self.pump(POLL)?;
        }
    }

    /// Draws when the state changed since the last frame. Returns whether
    /// it drew.
    ///
    /// # Errors
    /// The terminal failed.
    pub(crate) fn draw_if_needed(&mut self) -> Result<bool, TuiError> {
        view::focus(&mut self.app, &self.chat);
        if !self.chat.redraw {
            return Ok(false);
        }
        let Self { app, terminal, chat, .. } = self;
        if chat.repaint {
            // Forget what the terminal shows: every cell is written again.
            terminal.clear_screen().map_err(TuiError::terminal("clearing"))?;
            chat.repaint = false;
        }
        terminal.draw(|f| view::draw(f, app, chat)).map_err(TuiError::terminal("drawing"))?;
        chat.redraw = false;
        self.raise_alerts();
        Ok(true)
    }

    /// Waits up to `wait` for the first event, takes what else is there
    /// (up to a batch), and applies them all.
    ///
    /// # Errors
    /// Reading events failed.
    pub(crate) fn pump(&mut self, wait: Duration) -> Result<(), TuiError> {
        for msg in self.app.tick(PollStrategy::UpTo(BATCH, wait))? {
            self.chat.update(msg);
        }
        self.report_panics(super::background_panics());
        Ok(())
    }

    /// Hands the alerts queued since the last frame to the sink, at once.
    fn raise_alerts(&mut self) {
        if !self.chat.alerts.is_empty() {
            (self.alerts)(&self.chat.alerts, &self.chat.notify);
            self.chat.alerts.clear();
        }
    }

    /// Says on the status line that a background task panicked (the hook
    /// logged it and left the terminal alone), once per new count.
    fn report_panics(&mut self, count: usize) {
        if count > self.panics_seen {
            self.panics_seen = count;
            let notice = "internal error in a background task (details in qchat.log); \
                          if something stops working, restart qchat";
            self.chat.update(Msg::Net(NetEvent::Notice(notice.to_owned())));
        }
    }
}

#[cfg(test)]
mod tests {
    use tuirealm::ratatui::layout::Size;
    use tuirealm::terminal::TestTerminalAdapter;

    use super::*;
    use crate::tui::clock::Zone;

    #[tokio::test]
    async fn a_background_panic_is_reported_once_on_the_status_line() {
        let terminal = TestTerminalAdapter::new(Size::new(80, 24)).expect("test terminal");
        let chat = Chat::new(Default::default(), false, false, Zone::utc());
        let (_tx, rx) = mpsc::unbounded_channel();
        let mut ui = Ui::new(terminal, chat, rx, false).expect("ui");
        let seen = ui.panics_seen;
        ui.report_panics(seen);
        assert_eq!(ui.chat.notice, None);
        ui.report_panics(seen + 1);
        assert!(
            ui.chat.notice.as_deref().is_some_and(|n| n.contains("background task")),
            "{:?}",
            ui.chat.notice
        );
        ui.chat.notice = None;
        ui.report_panics(seen + 1);
        assert_eq!(ui.chat.notice, None, "the same panic is not reported twice");
    }
}

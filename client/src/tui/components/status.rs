//! The status line: connection state, who and where, the last notice, and
//! a transfers summary.

use crate::ConnState;
use tuirealm::component::{AppComponent, Component};
use tuirealm::event::Event;
use tuirealm::props::Props;
use tuirealm::ratatui::Frame;
use tuirealm::ratatui::layout::Rect;
use tuirealm::ratatui::style::{Color, Style};
use tuirealm::ratatui::text::{Line, Span};
use tuirealm::ratatui::widgets::Paragraph;

use super::{global, props_boilerplate};
use crate::tui::app::{Msg, UserEvent};
use crate::tui::theme::Theme;
use crate::tui::transfer::{Status, Transfer};

/// What the status line shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct StatusInfo {
    /// Connection state.
    pub(crate) conn: Option<ConnState>,
    /// `ann@acme`.
    pub(crate) who: String,
    /// The last notice.
    pub(crate) notice: Option<String>,
    /// `↑2 ↓1 45%` or empty.
    pub(crate) transfers: String,
    /// The alert setting when it is not the usual (`muted`).
    pub(crate) alerts: Option<&'static str>,
}

/// `↑2 ↓1 45%`: active uploads, downloads, and overall progress.
pub(crate) fn transfer_summary(ts: &[Transfer]) -> String {
    let active: Vec<&Transfer> = ts.iter().filter(|t| t.status == Status::Active).collect();
    if active.is_empty() {
        let done = ts.iter().filter(|t| matches!(t.status, Status::Done(_))).count();
        return if done > 0 { format!("{done} done") } else { String::new() };
    }
    let up = active.iter().filter(|t| t.dir == crate::tui::transfer::Direction::Up).count();
    let down = active.len() - up;
    let total: u64 = active.iter().map(|t| t.progress.total).sum();
    let done: u64 = active.iter().map(|t| t.progress.done.min(t.progress.total)).sum();
    let pct = (done * 100).checked_div(total).unwrap_or(0);
    format!("↑{up} ↓{down} {pct}%")
}

/// The status line.
#[derive(Default)]
pub(crate) struct StatusBar {
    props: Props,
    theme: Theme,
    info: StatusInfo,
}

impl StatusBar {
    /// The widget, drawn in `theme`'s colours.
    pub(crate) fn new(theme: Theme) -> Self {
        Self { theme, ..Self::default() }
    }

    /// What to draw.
    pub(crate) fn set(&mut self, info: StatusInfo) {
        self.info = info;
    }
}

impl Component for StatusBar {
    fn view(&mut self, frame: &mut Frame, area: Rect) {
        let (label, color) = match &self.info.conn {
            Some(ConnState::Connected) => ("connected".to_owned(), self.theme.ok),
            Some(ConnState::Reconnecting { attempt, .. }) => {
                (format!("reconnecting (try {attempt})"), self.theme.warn)
            }
            Some(ConnState::Closed { .. }) | None => ("offline".to_owned(), self.theme.error),
        };
        let mut spans = vec![
            Span::styled(format!(" {label} "), Style::default().fg(Color::Black).bg(color)),
            Span::raw(format!(" {} ", self.info.who)),
        ];
        // Why the connection went (`server shutting down`), while it is away.
        if let Some(
            ConnState::Reconnecting { last_error, .. } | ConnState::Closed { reason: last_error },
        ) = &self.info.conn
            && self.info.notice.is_none()
        {
            spans.push(Span::styled(format!("│ {last_error} "), Theme::fg(self.theme.warn)));
        }
        if let Some(a) = self.info.alerts {
            spans.push(Span::styled(format!("│ {a} "), Theme::fg(self.theme.warn)));
        }
        if !self.info.transfers.is_empty() {
            spans.push(Span::styled(
                format!("│ {} ", self.info.transfers),
                Theme::fg(self.theme.accent),
            ));
        }
        if let Some(n) = &self.info.notice {
            spans.push(Span::styled(format!("│ {n}"), Theme::fg(self.theme.warn)));
        } else {
            spans.push(Span::styled("│ /help for commands", Theme::fg(self.theme.dim)));
        }
        frame.render_widget(
            Paragraph::new(Line::from(spans)).style(Style::default().bg(Color::Black)),
            area,
        );
    }

    props_boilerplate!();
}

impl AppComponent<Msg, UserEvent> for StatusBar {
    fn on(&mut self, ev: &Event<UserEvent>) -> Option<Msg> {
        global(ev)
    }
}

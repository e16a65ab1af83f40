//! An overlay box (help, the room list); Esc closes it.

use tuirealm::component::{AppComponent, Component};
use tuirealm::event::Event;
use tuirealm::props::Props;
use tuirealm::ratatui::Frame;
use tuirealm::ratatui::layout::Rect;
use tuirealm::ratatui::text::Line;
use tuirealm::ratatui::widgets::{Clear, Paragraph, Wrap};

use super::{global, props_boilerplate};
use crate::tui::app::{Msg, UserEvent};
use crate::tui::model::Popup;
use crate::tui::theme::Theme;

/// The overlay.
#[derive(Default)]
pub(crate) struct PopupView {
    props: Props,
    theme: Theme,
    popup: Option<Popup>,
    /// It has more rows than fit: say how to scroll.
    more: bool,
}

impl PopupView {
    /// The widget, drawn in `theme`'s colours.
    pub(crate) fn new(theme: Theme) -> Self {
        Self { theme, ..Self::default() }
    }

    /// What to draw, and whether it has more rows than fit.
    pub(crate) fn set(&mut self, popup: Option<&Popup>, more: bool) {
        self.popup = popup.cloned();
        self.more = more;
    }
}

impl Component for PopupView {
    fn view(&mut self, frame: &mut Frame, area: Rect) {
        let Some(p) = &self.popup else { return };
        let lines: Vec<Line> = p.lines.iter().map(|l| Line::from(l.clone())).collect();
        let hint = if self.more { " Esc close · ↑↓ PgUp PgDn scroll " } else { " Esc close " };
        let block = self.theme.block(&format!(" {} ", p.title), true).title_bottom(hint);
        let scroll = u16::try_from(p.scroll).unwrap_or(u16::MAX);
        frame.render_widget(Clear, area);
        frame.render_widget(
            Paragraph::new(lines).wrap(Wrap { trim: false }).scroll((scroll, 0)).block(block),
            area,
        );
    }

    props_boilerplate!();
}

impl AppComponent<Msg, UserEvent> for PopupView {
    fn on(&mut self, ev: &Event<UserEvent>) -> Option<Msg> {
        global(ev)
    }
}

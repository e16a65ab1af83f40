//! An overlay box (help, the room list); Esc closes it.

use tuirealm::component::{AppComponent, Component};
use tuirealm::event::Event;
use tuirealm::props::Props;
use tuirealm::ratatui::Frame;
use tuirealm::ratatui::layout::Rect;
use tuirealm::ratatui::text::Line;
use tuirealm::ratatui::widgets::{Clear, Paragraph, Wrap};

use super::{block, global, props_boilerplate};
use crate::tui::app::{Msg, UserEvent};
use crate::tui::model::Popup;

/// The overlay.
#[derive(Default)]
pub(crate) struct PopupView {
    props: Props,
    popup: Option<Popup>,
}

impl PopupView {
    /// What to draw.
    pub(crate) fn set(&mut self, popup: Option<&Popup>) {
        self.popup = popup.cloned();
    }
}

impl Component for PopupView {
    fn view(&mut self, frame: &mut Frame, area: Rect) {
        let Some(p) = &self.popup else { return };
        let mut lines: Vec<Line> = p.lines.iter().map(|l| Line::from(l.clone())).collect();
        lines.push(Line::from(""));
        lines.push(Line::from("Esc to close"));
        frame.render_widget(Clear, area);
        frame.render_widget(
            Paragraph::new(lines)
                .wrap(Wrap { trim: false })
                .block(block(&format!(" {} ", p.title), true)),
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

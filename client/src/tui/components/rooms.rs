//! The room list: joined rooms with unread counts and a mention mark, then
//! rooms one could join.

use tuirealm::component::{AppComponent, Component};
use tuirealm::event::Event;
use tuirealm::props::Props;
use tuirealm::ratatui::Frame;
use tuirealm::ratatui::layout::Rect;
use tuirealm::ratatui::style::{Modifier, Style};
use tuirealm::ratatui::text::Line;
use tuirealm::ratatui::widgets::Paragraph;

use super::{global, props_boilerplate};
use crate::tui::app::{Msg, UserEvent};
use crate::tui::model::RoomState;
use crate::tui::theme::Theme;
use crate::tui::wrap;

/// One entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RoomItem {
    /// Name.
    pub(crate) name: String,
    /// Member.
    pub(crate) joined: bool,
    /// Unread messages.
    pub(crate) unread: u64,
    /// An unread message mentions the user.
    pub(crate) mention: bool,
    /// Shown now.
    pub(crate) current: bool,
}

/// The room list.
#[derive(Default)]
pub(crate) struct RoomList {
    props: Props,
    theme: Theme,
    items: Vec<RoomItem>,
}

impl RoomList {
    /// The widget, drawn in `theme`'s colours.
    pub(crate) fn new(theme: Theme) -> Self {
        Self { theme, ..Self::default() }
    }

    /// What to draw.
    pub(crate) fn set(&mut self, rooms: &[RoomState], current: Option<usize>) {
        self.items = rooms
            .iter()
            .enumerate()
            .map(|(i, r)| RoomItem {
                name: r.info.name.clone(),
                joined: r.info.joined,
                unread: r.info.unread,
                mention: r.mention,
                current: Some(i) == current,
            })
            .collect();
    }
}

impl Component for RoomList {
    fn view(&mut self, frame: &mut Frame, area: Rect) {
        let width = usize::from(area.width.saturating_sub(2));
        let lines: Vec<Line> = self
            .items
            .iter()
            .map(|it| {
                let badge = match (it.unread, it.mention) {
                    (0, _) => String::new(),
                    (n, true) => format!(" @{n}"),
                    (n, false) => format!(" {n}"),
                };
                let mark = if it.current { "▸" } else { " " };
                let name_w = width.saturating_sub(1 + wrap::width(&badge));
                let text = format!("{mark}{}{badge}", wrap::pad(&it.name, name_w));
                let mut style = Style::default();
                if !it.joined {
                    style = style.fg(self.theme.dim);
                }
                if it.unread > 0 {
                    style = style.add_modifier(Modifier::BOLD);
                }
                if it.mention {
                    style = style.fg(self.theme.mention);
                }
                if it.current {
                    style = style.fg(self.theme.accent);
                }
                Line::styled(text, style)
            })
            .collect();
        frame.render_widget(Paragraph::new(lines).block(self.theme.block(" Rooms ", false)), area);
    }

    props_boilerplate!();
}

impl AppComponent<Msg, UserEvent> for RoomList {
    fn on(&mut self, ev: &Event<UserEvent>) -> Option<Msg> {
        global(ev)
    }
}

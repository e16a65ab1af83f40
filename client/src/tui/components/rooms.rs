//! The room list: joined rooms with unread and mention counts, then
//! rooms one could join, then the direct messages under their own heading.

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
    /// Of those, the ones that mention the user (`@name`, `@room`).
    pub(crate) mentions: u64,
    /// An unread message mentions the user.
    pub(crate) mention: bool,
    /// Shown now.
    pub(crate) current: bool,
    /// A direct message.
    pub(crate) dm: bool,
    /// A private room.
    pub(crate) private: bool,
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
                name: r.title().to_owned(),
                joined: r.info.joined,
                unread: r.info.unread,
                mentions: r.info.mentions,
                mention: r.mention,
                current: Some(i) == current,
                dm: r.is_dm(),
                private: r.info.kind == crate::RoomKind::Private,
            })
            .collect();
    }
}

impl Component for RoomList {
    fn view(&mut self, frame: &mut Frame, area: Rect) {
        let width = usize::from(area.width.saturating_sub(2));
        let mut lines: Vec<Line> = Vec::with_capacity(self.items.len() + 1);
        for it in &self.items {
            if it.dm && lines.len() == self.items.iter().take_while(|x| !x.dm).count() {
                // The heading row (`Chat::room_at_row` skips it for clicks).
                let heading = wrap::truncate(RoomState::DMS_HEADING, width);
                lines.push(Line::styled(heading, Style::default().fg(self.theme.dim)));
            }
            lines.push({
                // Unread messages, then `@` and how many mention the user
                // (the server's count); a call for the user that is not one
                // (a DM, `name:`) shows in the colour only.
                let badge = match (it.unread, it.mentions) {
                    (0, _) => String::new(),
                    (n, 0) => format!(" {}", count(n)),
                    (n, m) => format!(" {} @{}", count(n), count(m)),
                };
                let mark = if it.current { "▸" } else { " " };
                let name_w = width.saturating_sub(1 + wrap::width(&badge));
                // A private room is marked, so nobody mistakes who reads it.
                let name = if it.private { format!("{} 🔒", it.name) } else { it.name.clone() };
                let text = format!("{mark}{}{badge}", wrap::pad(&name, name_w));
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
            });
        }
        frame.render_widget(Paragraph::new(lines).block(self.theme.block(" Rooms ", false)), area);
    }

    props_boilerplate!();
}

impl AppComponent<Msg, UserEvent> for RoomList {
    fn on(&mut self, ev: &Event<UserEvent>) -> Option<Msg> {
        global(ev)
    }
}

/// A count as the badge shows it: the server stops counting at
/// [`qchat_protocol::MAX_UNREAD_COUNT`] (`999+` from there).
fn count(n: u64) -> String {
    if n >= qchat_protocol::MAX_UNREAD_COUNT { "999+".to_owned() } else { n.to_string() }
}

//! The member list of the current room: online first, with a mark, the
//! display name when one is set, and each owner's and moderator's role
//! after the name.

use crate::MemberInfo;
use tuirealm::component::{AppComponent, Component};
use tuirealm::event::Event;
use tuirealm::props::Props;
use tuirealm::ratatui::Frame;
use tuirealm::ratatui::layout::Rect;
use tuirealm::ratatui::text::Line;
use tuirealm::ratatui::widgets::Paragraph;

use super::{global, props_boilerplate};
use crate::tui::app::{Msg, UserEvent};
use crate::tui::theme::Theme;
use crate::tui::wrap;

/// The member list.
#[derive(Default)]
pub(crate) struct MemberList {
    props: Props,
    theme: Theme,
    members: Vec<MemberInfo>,
}

impl MemberList {
    /// The widget, drawn in `theme`'s colours.
    pub(crate) fn new(theme: Theme) -> Self {
        Self { theme, ..Self::default() }
    }

    /// What to draw.
    pub(crate) fn set(&mut self, members: &[MemberInfo]) {
        self.members = members.to_vec();
        self.members.sort_by(|a, b| b.online.cmp(&a.online).then_with(|| a.user.cmp(&b.user)));
    }
}

impl Component for MemberList {
    fn view(&mut self, frame: &mut Frame, area: Rect) {
        let width = usize::from(area.width.saturating_sub(4));
        let online = self.members.iter().filter(|m| m.online).count();
        let lines: Vec<Line> = self
            .members
            .iter()
            .map(|m| {
                let (mark, style) = if m.online {
                    ("●", Theme::fg(self.theme.ok))
                } else {
                    ("○", Theme::fg(self.theme.dim))
                };
                let role = match m.role {
                    Some(crate::Role::Owner) => " owner",
                    Some(crate::Role::Moderator) => " mod",
                    _ => "",
                };
                // The display name where the user set one, then the
                // user name to address them by.
                let shown = match &m.display_name {
                    Some(d) => format!("{d} ({})", m.user),
                    None => m.user.clone(),
                };
                let name = wrap::truncate(&shown, width.saturating_sub(role.len()));
                Line::styled(format!("{mark} {name}{role}"), style)
            })
            .collect();
        let title = format!(" Members {online}/{} ", self.members.len());
        frame.render_widget(Paragraph::new(lines).block(self.theme.block(&title, false)), area);
    }

    props_boilerplate!();
}

impl AppComponent<Msg, UserEvent> for MemberList {
    fn on(&mut self, ev: &Event<UserEvent>) -> Option<Msg> {
        global(ev)
    }
}

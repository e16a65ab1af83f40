//! The colours the widgets draw with ([`Theme`]), from the config file's
//! `[colors]` table or the defaults.

use tuirealm::ratatui::style::{Color, Modifier, Style};

/// The colours of the UI by role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Theme {
    /// Panel borders.
    pub(crate) border: Color,
    /// The focused panel, the current room, the prompt, active transfers.
    pub(crate) accent: Color,
    /// Times, separators, system lines, offline members, rooms not joined.
    pub(crate) dim: Color,
    /// The user's own messages.
    pub(crate) own: Color,
    /// Messages that mention the user, rooms with such messages.
    pub(crate) mention: Color,
    /// File offers.
    pub(crate) file: Color,
    /// The new-messages line.
    pub(crate) marker: Color,
    /// Connected, online, finished transfers.
    pub(crate) ok: Color,
    /// Reconnecting, notices.
    pub(crate) warn: Color,
    /// Offline, failures.
    pub(crate) error: Color,
    /// Sender names take one of these, by name.
    pub(crate) senders: Vec<Color>,
}

impl Default for Theme {
    fn default() -> Self {
        Self {
            border: Color::DarkGray,
            accent: Color::Cyan,
            dim: Color::DarkGray,
            own: Color::Gray,
            mention: Color::Magenta,
            file: Color::Yellow,
            marker: Color::Red,
            ok: Color::Green,
            warn: Color::Yellow,
            error: Color::Red,
            senders: vec![
                Color::LightBlue,
                Color::LightGreen,
                Color::LightYellow,
                Color::LightMagenta,
                Color::LightCyan,
                Color::LightRed,
            ],
        }
    }
}

impl Theme {
    /// A colour per sender, stable across runs.
    pub(crate) fn sender(&self, name: &str) -> Color {
        if self.senders.is_empty() {
            return Color::Reset;
        }
        let h = name.bytes().fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(usize::from(b)));
        self.senders[h % self.senders.len()]
    }

    /// Foreground `c`.
    pub(crate) fn fg(c: Color) -> Style {
        Style::default().fg(c)
    }

    /// Dim italic: system lines, joins and quits.
    pub(crate) fn system(&self) -> Style {
        Style::default().fg(self.dim).add_modifier(Modifier::ITALIC)
    }

    /// A bordered block with a title, its border in the accent colour when
    /// `focused`.
    pub(crate) fn block(
        &self,
        title: &str,
        focused: bool,
    ) -> tuirealm::ratatui::widgets::Block<'static> {
        use tuirealm::ratatui::widgets::{Block, Borders};
        let color = if focused { self.accent } else { self.border };
        Block::default().borders(Borders::ALL).border_style(Self::fg(color)).title(title.to_owned())
    }
}

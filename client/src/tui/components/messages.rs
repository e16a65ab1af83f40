//! The message view: draws the rows of the visible window that the view
//! computed with [`crate::tui::layout::window`] (never the whole history).

use tuirealm::component::{AppComponent, Component};
use tuirealm::event::Event;
use tuirealm::props::Props;
use tuirealm::ratatui::Frame;
use tuirealm::ratatui::layout::Rect;
use tuirealm::ratatui::style::{Modifier, Style};
use tuirealm::ratatui::text::{Line, Span};
use tuirealm::ratatui::widgets::Paragraph;

use super::{global, props_boilerplate};
use crate::tui::app::{Msg, UserEvent};
use crate::tui::layout::{LineStyle, Row};
use crate::tui::theme::Theme;
use crate::tui::wrap;

/// The message view.
#[derive(Default)]
pub(crate) struct MessageView {
    props: Props,
    theme: Theme,
    rows: Vec<Row>,
    title: String,
    typing: Option<String>,
}

impl MessageView {
    /// The widget, drawn in `theme`'s colours.
    pub(crate) fn new(theme: Theme) -> Self {
        Self { theme, ..Self::default() }
    }

    /// What to draw: the window's rows, the title, and who is typing (on
    /// the bottom border).
    pub(crate) fn set(&mut self, rows: Vec<Row>, title: String, typing: Option<String>) {
        self.rows = rows;
        self.title = title;
        self.typing = typing;
    }
}

fn separator(label: &str, width: usize, style: Style) -> Line<'static> {
    let label = format!(" {label} ");
    let side = width.saturating_sub(wrap::width(&label)) / 2;
    let right = width.saturating_sub(side + wrap::width(&label));
    Line::styled(format!("{}{label}{}", "─".repeat(side), "─".repeat(right)), style)
}

impl Component for MessageView {
    fn view(&mut self, frame: &mut Frame, area: Rect) {
        let width = usize::from(area.width.saturating_sub(2));
        let lines: Vec<Line> = self
            .rows
            .iter()
            .map(|row| match row {
                Row::Day(d) => separator(d, width, Theme::fg(self.theme.dim)),
                Row::NewMarker => separator("new messages", width, Theme::fg(self.theme.marker)),
                Row::Line(l) => {
                    let time = l.time.clone().unwrap_or_default();
                    let name_w = l.indent.saturating_sub(l.time_col + 1);
                    let mut spans =
                        vec![Span::styled(wrap::pad(&time, l.time_col), Theme::fg(self.theme.dim))];
                    if l.style == LineStyle::System {
                        spans.push(Span::raw(" ".repeat(l.indent.saturating_sub(l.time_col))));
                    } else {
                        let sender = l.sender.as_deref().unwrap_or("");
                        let name = wrap::pad(sender, name_w);
                        spans.push(Span::styled(
                            format!("{name} "),
                            Style::default()
                                .fg(self.theme.sender(sender))
                                .add_modifier(Modifier::BOLD),
                        ));
                    }
                    let style = match l.style {
                        LineStyle::Text => Style::default(),
                        LineStyle::Own => Theme::fg(self.theme.own),
                        LineStyle::Mention => {
                            Theme::fg(self.theme.mention).add_modifier(Modifier::BOLD)
                        }
                        LineStyle::System => self.theme.system(),
                        LineStyle::File => Theme::fg(self.theme.file),
                        LineStyle::Pending => Theme::fg(self.theme.dim),
                        LineStyle::Failed => Theme::fg(self.theme.error),
                        LineStyle::Quote | LineStyle::Deleted => {
                            Theme::fg(self.theme.dim).add_modifier(Modifier::ITALIC)
                        }
                        LineStyle::Reactions => Theme::fg(self.theme.accent),
                    };
                    spans.push(Span::styled(l.text.clone(), style));
                    let line = Line::from(spans);
                    if l.selected {
                        // The selected message: reversed, the whole width.
                        line.patch_style(Style::default().add_modifier(Modifier::REVERSED))
                    } else {
                        line
                    }
                }
            })
            .collect();
        let mut block = self.theme.block(&self.title, true);
        if let Some(t) = &self.typing {
            block = block.title_bottom(Line::styled(format!(" {t} "), Theme::fg(self.theme.dim)));
        }
        frame.render_widget(Paragraph::new(lines).block(block), area);
    }

    props_boilerplate!();
}

impl AppComponent<Msg, UserEvent> for MessageView {
    fn on(&mut self, ev: &Event<UserEvent>) -> Option<Msg> {
        global(ev)
    }
}

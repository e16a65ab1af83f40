//! The message view: draws the rows of the visible window that the view
//! computed with [`crate::tui::layout::window`] (never the whole history).

use tuirealm::component::{AppComponent, Component};
use tuirealm::event::Event;
use tuirealm::props::Props;
use tuirealm::ratatui::Frame;
use tuirealm::ratatui::layout::Rect;
use tuirealm::ratatui::style::{Color, Modifier, Style};
use tuirealm::ratatui::text::{Line, Span};
use tuirealm::ratatui::widgets::Paragraph;

use super::{block, global, props_boilerplate};
use crate::tui::app::{Msg, UserEvent};
use crate::tui::layout::{LineStyle, Row};
use crate::tui::wrap;

/// The message view.
#[derive(Default)]
pub(crate) struct MessageView {
    props: Props,
    rows: Vec<Row>,
    title: String,
}

impl MessageView {
    /// What to draw: the window's rows and the title.
    pub(crate) fn set(&mut self, rows: Vec<Row>, title: String) {
        self.rows = rows;
        self.title = title;
    }
}

/// A colour per sender, stable across runs.
fn sender_color(name: &str) -> Color {
    const PALETTE: [Color; 6] = [
        Color::LightBlue,
        Color::LightGreen,
        Color::LightYellow,
        Color::LightMagenta,
        Color::LightCyan,
        Color::LightRed,
    ];
    let h = name.bytes().fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(usize::from(b)));
    PALETTE[h % PALETTE.len()]
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
                Row::Day(d) => separator(d, width, Style::default().fg(Color::DarkGray)),
                Row::NewMarker => separator("new messages", width, Style::default().fg(Color::Red)),
                Row::Line(l) => {
                    let time = l.time.clone().unwrap_or_default();
                    let name_w = l.indent.saturating_sub(6 + 1);
                    let mut spans = vec![Span::styled(
                        wrap::pad(&time, 6),
                        Style::default().fg(Color::DarkGray),
                    )];
                    if l.style == LineStyle::System {
                        spans.push(Span::raw(" ".repeat(l.indent - 6)));
                    } else {
                        let sender = l.sender.as_deref().unwrap_or("");
                        let name = wrap::pad(sender, name_w);
                        spans.push(Span::styled(
                            format!("{name} "),
                            Style::default().fg(sender_color(sender)).add_modifier(Modifier::BOLD),
                        ));
                    }
                    let style = match l.style {
                        LineStyle::Text => Style::default(),
                        LineStyle::Own => Style::default().fg(Color::Gray),
                        LineStyle::Mention => {
                            Style::default().fg(Color::Magenta).add_modifier(Modifier::BOLD)
                        }
                        LineStyle::System => {
                            Style::default().fg(Color::DarkGray).add_modifier(Modifier::ITALIC)
                        }
                        LineStyle::File => Style::default().fg(Color::Yellow),
                    };
                    spans.push(Span::styled(l.text.clone(), style));
                    Line::from(spans)
                }
            })
            .collect();
        frame.render_widget(Paragraph::new(lines).block(block(&self.title, true)), area);
    }

    props_boilerplate!();
}

impl AppComponent<Msg, UserEvent> for MessageView {
    fn on(&mut self, ev: &Event<UserEvent>) -> Option<Msg> {
        global(ev)
    }
}

//! The transfers panel: one line per file with a bar, percent, speed and ETA.

use tuirealm::component::{AppComponent, Component};
use tuirealm::event::Event;
use tuirealm::props::Props;
use tuirealm::ratatui::Frame;
use tuirealm::ratatui::layout::Rect;
use tuirealm::ratatui::style::{Color, Style};
use tuirealm::ratatui::text::{Line, Span};
use tuirealm::ratatui::widgets::Paragraph;

use super::{block, global, props_boilerplate};
use crate::tui::app::{Msg, UserEvent};
use crate::tui::layout::human_bytes;
use crate::tui::transfer::{Direction, Status, Transfer, fmt_eta};
use crate::tui::wrap;

/// One line of the panel, computed when the view is drawn.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TransferRow {
    /// Up or down.
    pub(crate) dir: Direction,
    /// File name.
    pub(crate) name: String,
    /// 0..=100.
    pub(crate) percent: u8,
    /// `1.2 MiB/s` or empty.
    pub(crate) speed: String,
    /// `0:05`, `done`, `failed: why`.
    pub(crate) tail: String,
    /// Where it stands.
    pub(crate) status: Status,
}

impl TransferRow {
    /// The row for a transfer.
    pub(crate) fn of(t: &Transfer) -> Self {
        let (speed, tail) = match &t.status {
            Status::Active => (
                format!("{}/s", human_bytes(t.speed() as u64)),
                format!("ETA {}", fmt_eta(t.eta())),
            ),
            Status::Done(d) => (human_bytes(t.progress.total), format!("done {d}")),
            Status::Failed(why) => (String::new(), format!("failed: {why}")),
        };
        Self {
            dir: t.dir,
            name: t.name.clone(),
            percent: t.percent(),
            speed,
            tail,
            status: t.status.clone(),
        }
    }
}

/// The panel.
#[derive(Default)]
pub(crate) struct TransferPanel {
    props: Props,
    rows: Vec<TransferRow>,
}

impl TransferPanel {
    /// What to draw.
    pub(crate) fn set(&mut self, rows: Vec<TransferRow>) {
        self.rows = rows;
    }
}

impl Component for TransferPanel {
    fn view(&mut self, frame: &mut Frame, area: Rect) {
        let width = usize::from(area.width.saturating_sub(2));
        let name_w = (width / 4).clamp(8, 30);
        let visible = usize::from(area.height.saturating_sub(2));
        let skip = self.rows.len().saturating_sub(visible);
        let lines: Vec<Line> = self
            .rows
            .iter()
            .skip(skip)
            .map(|r| {
                let arrow = if r.dir == Direction::Up { "↑" } else { "↓" };
                let fixed = 2 + name_w + 1 + 2 + 5 + 12;
                let bar_w = width.saturating_sub(fixed + 14).clamp(5, 30);
                let filled = bar_w * usize::from(r.percent) / 100;
                let bar = format!("[{}{}]", "█".repeat(filled), "░".repeat(bar_w - filled));
                let color = match r.status {
                    Status::Active => Color::Cyan,
                    Status::Done(_) => Color::Green,
                    Status::Failed(_) => Color::Red,
                };
                let text = format!(
                    "{arrow} {} {bar} {:>3}% {:>11} {}",
                    wrap::pad(&r.name, name_w),
                    r.percent,
                    r.speed,
                    r.tail
                );
                Line::from(Span::styled(
                    wrap::truncate(&text, width).into_owned(),
                    Style::default().fg(color),
                ))
            })
            .collect();
        let active = self.rows.iter().filter(|r| r.status == Status::Active).count();
        let title = format!(" Transfers {active} active / {} ", self.rows.len());
        frame.render_widget(Paragraph::new(lines).block(block(&title, false)), area);
    }

    props_boilerplate!();
}

impl AppComponent<Msg, UserEvent> for TransferPanel {
    fn on(&mut self, ev: &Event<UserEvent>) -> Option<Msg> {
        global(ev)
    }
}

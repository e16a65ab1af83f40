//! The transfers panel: one line per file with a bar, percent, speed and ETA.

use tuirealm::component::{AppComponent, Component};
use tuirealm::event::Event;
use tuirealm::props::Props;
use tuirealm::ratatui::Frame;
use tuirealm::ratatui::layout::Rect;
use tuirealm::ratatui::style::Style;
use tuirealm::ratatui::text::{Line, Span};
use tuirealm::ratatui::widgets::Paragraph;

use super::{global, props_boilerplate};
use crate::tui::app::{Msg, UserEvent};
use crate::tui::layout::human_bytes;
use crate::tui::theme::Theme;
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

/// The rows that fit in `visible` lines, in their order: every active
/// transfer first (they are what the user waits for), then the newest
/// finished ones in what room is left.
pub(crate) fn shown(rows: &[TransferRow], visible: usize) -> Vec<&TransferRow> {
    if rows.len() <= visible {
        return rows.iter().collect();
    }
    let mut keep = vec![false; rows.len()];
    let active = rows.iter().enumerate().filter(|(_, r)| r.status == Status::Active);
    let finished = rows.iter().enumerate().rev().filter(|(_, r)| r.status != Status::Active);
    for (i, _) in active.chain(finished).take(visible) {
        keep[i] = true;
    }
    rows.iter().zip(keep).filter_map(|(r, k)| k.then_some(r)).collect()
}

/// The panel.
#[derive(Default)]
pub(crate) struct TransferPanel {
    props: Props,
    theme: Theme,
    rows: Vec<TransferRow>,
    /// The keys that clear finished transfers and show them all.
    hints: [String; 2],
}

impl TransferPanel {
    /// The widget, drawn in `theme`'s colours.
    pub(crate) fn new(theme: Theme) -> Self {
        Self { theme, ..Self::default() }
    }

    /// What to draw: the rows, and the keys that clear finished transfers
    /// and show every transfer in full (named in the title).
    pub(crate) fn set(&mut self, rows: Vec<TransferRow>, clear: String, details: String) {
        self.rows = rows;
        self.hints = [clear, details];
    }
}

impl Component for TransferPanel {
    fn view(&mut self, frame: &mut Frame, area: Rect) {
        let width = usize::from(area.width.saturating_sub(2));
        let name_w = (width / 4).clamp(8, 30);
        let visible = usize::from(area.height.saturating_sub(2));
        let shown = shown(&self.rows, visible);
        let hidden = self.rows.len() - shown.len();
        let lines: Vec<Line> = shown
            .into_iter()
            .map(|r| {
                let arrow = if r.dir == Direction::Up { "↑" } else { "↓" };
                let fixed = 2 + name_w + 1 + 2 + 5 + 12;
                let bar_w = width.saturating_sub(fixed + 14).clamp(5, 30);
                let filled = bar_w * usize::from(r.percent) / 100;
                let bar = format!("[{}{}]", "█".repeat(filled), "░".repeat(bar_w - filled));
                let color = match r.status {
                    Status::Active => self.theme.accent,
                    Status::Done(_) => self.theme.ok,
                    Status::Failed(_) => self.theme.error,
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
        let mut title = format!(" Transfers {active} active / {} ", self.rows.len());
        let [clear, details] = &self.hints;
        if hidden > 0 {
            title.push_str(&format!("· {hidden} not shown · {clear} clears finished "));
        }
        if self.rows.iter().any(|r| matches!(r.status, Status::Failed(_))) {
            title.push_str(&format!("· {details} full errors "));
        }
        frame.render_widget(Paragraph::new(lines).block(self.theme.block(&title, false)), area);
    }

    props_boilerplate!();
}

impl AppComponent<Msg, UserEvent> for TransferPanel {
    fn on(&mut self, ev: &Event<UserEvent>) -> Option<Msg> {
        global(ev)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, status: Status) -> TransferRow {
        TransferRow {
            dir: Direction::Up,
            name: name.into(),
            percent: 0,
            speed: String::new(),
            tail: String::new(),
            status,
        }
    }

    #[test]
    fn active_transfers_are_shown_first_then_the_newest_finished() {
        let done = || Status::Done("file".into());
        let rows = vec![
            row("a", Status::Active),
            row("b", done()),
            row("c", Status::Failed("x".into())),
            row("d", done()),
            row("e", Status::Active),
            row("f", done()),
        ];
        let names = |v: Vec<&TransferRow>| v.iter().map(|r| r.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(shown(&rows, 10)), ["a", "b", "c", "d", "e", "f"]);
        assert_eq!(names(shown(&rows, 4)), ["a", "d", "e", "f"]);
        assert_eq!(names(shown(&rows, 2)), ["a", "e"]);
        assert_eq!(names(shown(&rows, 1)), ["a"]);
        assert!(shown(&rows, 0).is_empty());
    }
}

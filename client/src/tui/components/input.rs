//! The input line: what is being typed (Alt-Enter adds lines), completion
//! candidates, and the keys of the main screen.

use tuirealm::component::{AppComponent, Component};
use tuirealm::event::{Event, Key, KeyEvent, KeyModifiers};
use tuirealm::props::Props;
use tuirealm::ratatui::Frame;
use tuirealm::ratatui::layout::Rect;
use tuirealm::ratatui::style::{Color, Style};
use tuirealm::ratatui::text::{Line, Span};
use tuirealm::ratatui::widgets::{Block, Borders, Paragraph};

use super::{global, props_boilerplate};
use crate::tui::app::{InputMsg, Msg, UserEvent, ViewMsg};
use crate::tui::model::InputLine;
use crate::tui::wrap;

/// The input line.
#[derive(Default)]
pub(crate) struct InputBox {
    props: Props,
    input: InputLine,
    room: String,
    candidates: Vec<String>,
}

impl InputBox {
    /// What to draw.
    pub(crate) fn set(&mut self, input: &InputLine, room: &str, candidates: &[String]) {
        self.input.clone_from(input);
        room.clone_into(&mut self.room);
        self.candidates = candidates.to_vec();
    }

    /// Rows the box needs: a border line plus the text lines (at most 4).
    pub(crate) fn height(input: &InputLine) -> u16 {
        let lines = input.text.split('\n').count().clamp(1, 4);
        u16::try_from(lines).unwrap_or(4) + 1
    }
}

impl Component for InputBox {
    fn view(&mut self, frame: &mut Frame, area: Rect) {
        let title = if self.candidates.is_empty() {
            format!(" {} ", self.room)
        } else {
            format!(" {} ", self.candidates.join("  "))
        };
        let block = Block::default()
            .borders(Borders::TOP)
            .border_style(Style::default().fg(Color::DarkGray))
            .title(title);
        let inner = block.inner(area);
        let lines: Vec<&str> = self.input.text.split('\n').collect();
        let before = &self.input.text[..self.input.cursor];
        let cursor_line = before.matches('\n').count();
        let visible = usize::from(inner.height).max(1);
        let first = (cursor_line + 1).saturating_sub(visible);
        let width = usize::from(inner.width).saturating_sub(2).max(1);
        let col = wrap::width(before.rsplit('\n').next().unwrap_or_default());
        // Long lines scroll horizontally so the cursor stays in view.
        let hscroll = col.saturating_sub(width.saturating_sub(1));
        let text: Vec<Line> = lines
            .iter()
            .enumerate()
            .skip(first)
            .take(visible)
            .map(|(i, l)| {
                let prompt = if i == 0 { "> " } else { "  " };
                let shown = skip_cols(l, if i == cursor_line { hscroll } else { 0 });
                Line::from(vec![
                    Span::styled(prompt, Style::default().fg(Color::Cyan)),
                    Span::raw(wrap::truncate(shown, width).into_owned()),
                ])
            })
            .collect();
        frame.render_widget(Paragraph::new(text).block(block), area);
        let x = inner.x + u16::try_from(2 + col - hscroll).unwrap_or(0);
        let y = inner.y + u16::try_from(cursor_line - first).unwrap_or(0);
        if x < inner.right() && y < inner.bottom() {
            frame.set_cursor_position((x, y));
        }
    }

    props_boilerplate!();
}

fn skip_cols(s: &str, cols: usize) -> &str {
    &s[wrap::prefix_len(s, cols)..]
}

impl AppComponent<Msg, UserEvent> for InputBox {
    fn on(&mut self, ev: &Event<UserEvent>) -> Option<Msg> {
        if let Some(m) = global(ev) {
            return Some(m);
        }
        let Event::Keyboard(key) = ev else { return None };
        key_to_msg(*key)
    }
}

/// The main screen's keys.
pub(crate) fn key_to_msg(KeyEvent { code, modifiers }: KeyEvent) -> Option<Msg> {
    let ctrl = modifiers.contains(KeyModifiers::CONTROL);
    let alt = modifiers.contains(KeyModifiers::ALT);
    let input = |m| Some(Msg::Input(m));
    let view = |m| Some(Msg::View(m));
    match code {
        Key::Enter if alt || modifiers.contains(KeyModifiers::SHIFT) => input(InputMsg::Newline),
        Key::Enter => input(InputMsg::Submit),
        Key::Char('a') if ctrl => input(InputMsg::Start),
        Key::Char('e') if ctrl => input(InputMsg::End),
        Key::Char('u') if ctrl => input(InputMsg::Clear),
        Key::Char('n') if ctrl => view(ViewMsg::NextRoom),
        Key::Char('p') if ctrl => view(ViewMsg::PrevRoom),
        Key::Char('g') if ctrl => view(ViewMsg::GetLatestFile),
        Key::Char('k') if ctrl => view(ViewMsg::ClearTransfers),
        Key::Char('j') if ctrl => input(InputMsg::Newline),
        Key::Char(c) if !ctrl && !alt => input(InputMsg::Char(c)),
        Key::Backspace => input(InputMsg::Backspace),
        Key::Delete => input(InputMsg::Delete),
        Key::Left => input(InputMsg::Left),
        Key::Right => input(InputMsg::Right),
        Key::Tab => input(InputMsg::Complete),
        Key::Up if alt => view(ViewMsg::PrevRoom),
        Key::Down if alt => view(ViewMsg::NextRoom),
        Key::Up => view(ViewMsg::LineUp),
        Key::Down => view(ViewMsg::LineDown),
        Key::PageUp => view(ViewMsg::PageUp),
        Key::PageDown => view(ViewMsg::PageDown),
        Key::Home => view(ViewMsg::Top),
        Key::End => view(ViewMsg::Bottom),
        Key::Esc => view(ViewMsg::Close),
        _ => None,
    }
}

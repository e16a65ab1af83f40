//! The input line: what is being typed (Alt-Enter adds lines), completion
//! candidates, and the keys of the main screen.

use tuirealm::component::{AppComponent, Component};
use tuirealm::event::{
    Event, Key, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use tuirealm::props::Props;
use tuirealm::ratatui::Frame;
use tuirealm::ratatui::layout::Rect;
use tuirealm::ratatui::style::Style;
use tuirealm::ratatui::text::{Line, Span};
use tuirealm::ratatui::widgets::{Block, Borders, Paragraph};

use super::{global, props_boilerplate};
use crate::tui::app::{InputMsg, MessageAction, MouseKind, MouseMsg, Msg, UserEvent, ViewMsg};
use crate::tui::keys::{Action, Keymap};
use crate::tui::theme::Theme;
use crate::tui::wrap;

/// The input line.
#[derive(Default)]
pub(crate) struct InputBox {
    props: Props,
    theme: Theme,
    text: String,
    cursor: usize,
    room: String,
    candidates: Vec<String>,
    keys: Keymap,
}

impl InputBox {
    /// An input box mapping keys by `keys`, drawn in `theme`'s colours.
    pub(crate) fn new(keys: Keymap, theme: Theme) -> Self {
        Self { keys, theme, ..Self::default() }
    }

    /// What to draw: the text, the cursor (a byte index in it), the room
    /// and completion candidates.
    pub(crate) fn set(&mut self, text: &str, cursor: usize, room: &str, candidates: &[String]) {
        text.clone_into(&mut self.text);
        self.cursor = cursor.min(text.len());
        room.clone_into(&mut self.room);
        self.candidates = candidates.to_vec();
    }

    /// Rows the box needs: a border line plus the text lines (at most 4).
    pub(crate) fn height(text: &str) -> u16 {
        let lines = text.split('\n').count().clamp(1, 4);
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
            .border_style(Style::default().fg(self.theme.border))
            .title(title);
        let inner = block.inner(area);
        let lines: Vec<&str> = self.text.split('\n').collect();
        let before = &self.text[..self.cursor];
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
                    Span::styled(prompt, Style::default().fg(self.theme.accent)),
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
        match ev {
            Event::Keyboard(key) => key_to_msg(&self.keys, *key),
            Event::Mouse(m) => mouse_to_msg(*m),
            _ => None,
        }
    }
}

/// The mouse events the main screen uses: the wheel, left clicks.
pub(crate) fn mouse_to_msg(m: MouseEvent) -> Option<Msg> {
    let kind = match m.kind {
        MouseEventKind::ScrollUp => MouseKind::WheelUp,
        MouseEventKind::ScrollDown => MouseKind::WheelDown,
        MouseEventKind::Down(MouseButton::Left) => MouseKind::Click,
        _ => return None,
    };
    Some(Msg::Mouse(MouseMsg { kind, col: m.column, row: m.row }))
}

/// The main screen's keys: bound ones do their action, other characters
/// are typed.
pub(crate) fn key_to_msg(keys: &Keymap, ev: KeyEvent) -> Option<Msg> {
    let otherwise = main_key_to_msg(keys, ev);
    match keys.message_action(ev).map(action_msg) {
        Some(Msg::OnMessage(what, _)) => Some(Msg::OnMessage(what, otherwise.map(Box::new))),
        _ => otherwise,
    }
}

/// What a key does with no message selected.
fn main_key_to_msg(keys: &Keymap, ev: KeyEvent) -> Option<Msg> {
    if let Some(action) = keys.action(ev) {
        return Some(action_msg(action));
    }
    let KeyEvent { code, modifiers } = ev;
    match code {
        Key::Char(c)
            if !modifiers.intersects(KeyModifiers::CONTROL | KeyModifiers::ALT)
                && !c.is_control() =>
        {
            Some(Msg::Input(InputMsg::Char(c)))
        }
        _ => None,
    }
}

/// What an action is as a message to update().
pub(crate) fn action_msg(action: Action) -> Msg {
    let input = Msg::Input;
    let view = Msg::View;
    match action {
        Action::Send => input(InputMsg::Submit),
        Action::Newline => input(InputMsg::Newline),
        Action::Complete => input(InputMsg::Complete),
        Action::Left => input(InputMsg::Left),
        Action::Right => input(InputMsg::Right),
        Action::WordLeft => input(InputMsg::WordLeft),
        Action::WordRight => input(InputMsg::WordRight),
        Action::LineStart => input(InputMsg::Start),
        Action::LineEnd => input(InputMsg::End),
        Action::DeleteLeft => input(InputMsg::Backspace),
        Action::DeleteRight => input(InputMsg::Delete),
        Action::DeleteWordLeft => input(InputMsg::KillWordLeft),
        Action::DeleteWordRight => input(InputMsg::KillWordRight),
        Action::DeleteToStart => input(InputMsg::KillToStart),
        Action::DeleteToEnd => input(InputMsg::KillToEnd),
        Action::Yank => input(InputMsg::Yank),
        Action::Up => input(InputMsg::Up),
        Action::Down => input(InputMsg::Down),
        Action::ScrollUp => view(ViewMsg::LineUp),
        Action::ScrollDown => view(ViewMsg::LineDown),
        Action::PageUp => view(ViewMsg::PageUp),
        Action::PageDown => view(ViewMsg::PageDown),
        Action::Top => view(ViewMsg::Top),
        Action::Bottom => view(ViewMsg::Bottom),
        Action::NextRoom => view(ViewMsg::NextRoom),
        Action::PrevRoom => view(ViewMsg::PrevRoom),
        Action::Close => view(ViewMsg::Close),
        Action::GetLatestFile => view(ViewMsg::GetLatestFile),
        Action::Transfers => view(ViewMsg::Transfers),
        Action::ClearTransfers => view(ViewMsg::ClearTransfers),
        Action::RetryFailed => view(ViewMsg::RetryFailed),
        Action::EditFailed => view(ViewMsg::EditFailed),
        Action::ToggleEvents => view(ViewMsg::ToggleEvents),
        Action::Redraw => view(ViewMsg::Repaint),
        Action::Help => view(ViewMsg::Help),
        Action::Quit => Msg::Quit,
        Action::SelectUp => view(ViewMsg::SelectUp),
        Action::SelectDown => view(ViewMsg::SelectDown),
        Action::EditMessage => Msg::OnMessage(MessageAction::Edit, None),
        Action::DeleteMessage => Msg::OnMessage(MessageAction::Delete, None),
        Action::Reply => Msg::OnMessage(MessageAction::Reply, None),
        Action::React => Msg::OnMessage(MessageAction::React, None),
        Action::Thread => Msg::OnMessage(MessageAction::Thread, None),
    }
}

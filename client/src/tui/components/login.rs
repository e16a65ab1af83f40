//! The log-in form: server, tenant, user, password (masked), the register
//! switch (greyed out where the tenant takes no registrations), and the
//! line under it (errors, the trust question, a refused
//! certificate).

use tuirealm::component::{AppComponent, Component};
use tuirealm::event::{Event, Key, KeyEvent, KeyModifiers};
use tuirealm::props::Props;
use tuirealm::ratatui::Frame;
use tuirealm::ratatui::layout::Rect;
use tuirealm::ratatui::style::{Color, Modifier, Style};
use tuirealm::ratatui::text::{Line, Span};
use tuirealm::ratatui::widgets::{Paragraph, Wrap};

use super::{global, props_boilerplate};
use crate::tui::app::{FormMsg, Msg, UserEvent};
use crate::tui::model::{FIELDS, FormStatus, LoginForm, PASSWORD, Registration};
use crate::tui::theme::Theme;
use crate::tui::wrap;

/// The log-in form's keys (fixed, not in the keymap) as the help screen
/// lists them: key names as the config file writes them, and what they do.
pub(crate) const LOGIN_KEYS: &[(&[&str], &str)] = &[
    (&["enter"], "log in (or register)"),
    (&["tab", "down"], "next field"),
    (&["backtab", "up"], "previous field"),
    (&["ctrl-u"], "clear the field"),
    (&["ctrl-w", "alt-backspace"], "delete the word left"),
    (&["backspace"], "delete left"),
    (&["ctrl-r"], "create the account (where the tenant allows it)"),
    (&["ctrl-t"], "pin a changed certificate (asks again)"),
    (&["y", "n"], "answer a certificate question"),
    (&["esc"], "say no to a certificate question"),
    (&["ctrl-c"], "quit"),
];

/// The log-in screen.
#[derive(Default)]
pub(crate) struct LoginView {
    props: Props,
    theme: Theme,
    form: Option<LoginForm>,
    have_token: bool,
}

impl LoginView {
    /// The widget, drawn in `theme`'s colours.
    pub(crate) fn new(theme: Theme) -> Self {
        Self { theme, ..Self::default() }
    }

    /// What to draw.
    pub(crate) fn set(&mut self, form: &LoginForm, have_token: bool) {
        self.form = Some(form.clone());
        self.have_token = have_token;
    }
}

impl Component for LoginView {
    fn view(&mut self, frame: &mut Frame, area: Rect) {
        let Some(form) = &self.form else { return };
        let label_w = 10;
        let field_w = usize::from(area.width.saturating_sub(4 + label_w as u16)).max(4);
        let mut lines = vec![
            Line::from(""),
            Line::from(Span::styled(
                "  qchat — chat over QUIC",
                Style::default().add_modifier(Modifier::BOLD),
            )),
            Line::from(""),
        ];
        for (i, name) in FIELDS.iter().enumerate() {
            let value = if i == PASSWORD {
                "•".repeat(form.fields[i].chars().count())
            } else {
                form.fields[i].clone()
            };
            let shown = if i == PASSWORD && value.is_empty() && self.have_token {
                "(saved session)".to_owned()
            } else {
                value
            };
            let shown = wrap::truncate(&shown, field_w.saturating_sub(1)).into_owned();
            let focused = i == form.focus;
            let marker = if focused { "▸ " } else { "  " };
            let style = if focused { Theme::fg(self.theme.accent) } else { Style::default() };
            let cursor = if focused { "▏" } else { "" };
            lines.push(Line::from(vec![
                Span::styled(format!("{marker}{}", wrap::pad(&format!("{name}:"), label_w)), style),
                Span::raw(shown),
                Span::styled(cursor, style),
            ]));
        }
        lines.push(Line::from(""));
        if form.registration() == Registration::Closed {
            lines.push(Line::from(Span::styled(
                "  [-] create the account: not offered by this tenant",
                Theme::fg(self.theme.dim),
            )));
        } else {
            let mark = if form.register { 'x' } else { ' ' };
            lines.push(Line::from(format!("  [{mark}] create the account (Ctrl-R)")));
        }
        lines
            .push(Line::from("  Enter log in · Tab next field · Ctrl-U clear field · Ctrl-C quit"));
        lines.push(Line::from(""));
        match &form.status {
            FormStatus::Idle => {}
            FormStatus::Connecting => {
                lines.push(Line::from(Span::styled("  connecting…", Theme::fg(self.theme.warn))))
            }
            FormStatus::Error(e) => {
                lines.push(Line::from(Span::styled(format!("  {e}"), Theme::fg(self.theme.error))))
            }
            FormStatus::Trust(fp) => {
                lines.push(Line::from(Span::styled(
                    "  First contact with this server. Its certificate is",
                    Theme::fg(self.theme.warn),
                )));
                push_fingerprint(&mut lines, fp);
                lines.push(Line::from(Span::styled(
                    "  Check it with the operator. Trust it? (y/n)",
                    Theme::fg(self.theme.warn).add_modifier(Modifier::BOLD),
                )));
            }
            FormStatus::HostChanged(msg, _) => {
                lines.push(Line::from(Span::styled(
                    "  !! SERVER CERTIFICATE CHANGED — NOT CONNECTING !!",
                    Style::default()
                        .fg(Color::White)
                        .bg(self.theme.error)
                        .add_modifier(Modifier::BOLD),
                )));
                lines.push(Line::from(Span::styled(
                    format!("  {msg}"),
                    Theme::fg(self.theme.error),
                )));
                lines.push(Line::from(Span::styled(
                    "  Ctrl-T: pin the new certificate, once the operator confirms it",
                    Theme::fg(self.theme.warn),
                )));
            }
            FormStatus::Repin(fp) => {
                lines.push(Line::from(Span::styled(
                    "  Replace the pinned certificate of this server by",
                    Theme::fg(self.theme.warn),
                )));
                push_fingerprint(&mut lines, fp);
                lines.push(Line::from(Span::styled(
                    "  Only if the operator confirmed exactly this one. Pin it? (y/n)",
                    Theme::fg(self.theme.warn).add_modifier(Modifier::BOLD),
                )));
            }
        }
        let title = if form.register { " Register " } else { " Log in " };
        frame.render_widget(
            Paragraph::new(lines).wrap(Wrap { trim: false }).block(self.theme.block(title, true)),
            area,
        );
    }

    props_boilerplate!();
}

/// A fingerprint on two lines of 32 hex digits.
fn push_fingerprint(lines: &mut Vec<Line<'static>>, fp: &str) {
    let cut = fp.len().min(32);
    lines.push(Line::from(format!("  sha256 {}", &fp[..cut])));
    if fp.len() > 32 {
        lines.push(Line::from(format!("         {}", &fp[cut..])));
    }
}

impl AppComponent<Msg, UserEvent> for LoginView {
    fn on(&mut self, ev: &Event<UserEvent>) -> Option<Msg> {
        if let Some(m) = global(ev) {
            return Some(m);
        }
        let Event::Keyboard(KeyEvent { code, modifiers }) = ev else { return None };
        let ctrl = modifiers.contains(KeyModifiers::CONTROL);
        let m = match code {
            Key::Char('r' | 'R') if ctrl => FormMsg::ToggleRegister,
            Key::Char('u' | 'U') if ctrl => FormMsg::ClearField,
            Key::Char('w' | 'W') if ctrl => FormMsg::DeleteWord,
            Key::Char('t' | 'T') if ctrl => FormMsg::TrustChanged,
            Key::Backspace if modifiers.contains(KeyModifiers::ALT) => FormMsg::DeleteWord,
            Key::Char(c) if !ctrl => FormMsg::Char(*c),
            Key::Backspace => FormMsg::Backspace,
            Key::Tab | Key::Down => FormMsg::Next,
            Key::BackTab | Key::Up => FormMsg::Prev,
            Key::Enter => FormMsg::Submit,
            Key::Esc => FormMsg::Cancel,
            _ => return None,
        };
        Some(Msg::Login(m))
    }
}

//! Key bindings of the main screen, pure: the [`Action`]s a key can do,
//! the [`Keymap`] from keys to actions (the defaults, or the config file's
//! `[keys]` table), and key names as the config file and the help screen
//! write them (`ctrl-k`, `alt-enter`, `pgup`, `f1`).

use std::collections::HashMap;
use std::fmt;

use tuirealm::event::{Key, KeyEvent, KeyModifiers};

/// Something a key does on the main screen. The config file names each by
/// its [`Action::name`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Action {
    /// Send the line (or run the command).
    Send,
    /// Start a new line in the input.
    Newline,
    /// Complete the word before the cursor.
    Complete,
    /// Cursor one character left.
    Left,
    /// Cursor one character right.
    Right,
    /// Cursor to the previous word.
    WordLeft,
    /// Cursor past the next word.
    WordRight,
    /// Cursor to the start of the line.
    LineStart,
    /// Cursor to the end of the line.
    LineEnd,
    /// Delete the character left of the cursor.
    DeleteLeft,
    /// Delete the character under the cursor.
    DeleteRight,
    /// Delete the word left of the cursor.
    DeleteWordLeft,
    /// Delete to the end of the next word.
    DeleteWordRight,
    /// Delete to the start of the line.
    DeleteToStart,
    /// Delete to the end of the line.
    DeleteToEnd,
    /// Insert what the last delete-word/line removed.
    Yank,
    /// Recall the previous sent line (empty input), else scroll up a line.
    Up,
    /// Recall the next sent line (while recalling), else scroll down a line.
    Down,
    /// Scroll the messages up a line.
    ScrollUp,
    /// Scroll the messages down a line.
    ScrollDown,
    /// Scroll up a page.
    PageUp,
    /// Scroll down a page.
    PageDown,
    /// The oldest loaded message (loads older ones).
    Top,
    /// The newest message.
    Bottom,
    /// The next room.
    NextRoom,
    /// The previous room.
    PrevRoom,
    /// Close the overlay, drop completions.
    Close,
    /// Download the newest file offered in the room.
    GetLatestFile,
    /// Show every transfer with its full status.
    Transfers,
    /// Take finished transfers off the panel.
    ClearTransfers,
    /// Send the room's failed messages again.
    RetryFailed,
    /// Take the room's newest failed message back into the input.
    EditFailed,
    /// Join, leave and quit lines: one each, folded, hidden.
    ToggleEvents,
    /// Clear the terminal and draw everything again.
    Redraw,
    /// The help screen.
    Help,
    /// Leave qchat.
    Quit,
    /// Select the message above.
    SelectUp,
    /// Select the message below.
    SelectDown,
    /// Edit the selected message (one's own).
    EditMessage,
    /// Delete the selected message.
    DeleteMessage,
    /// Reply to the selected message.
    Reply,
    /// React to the selected message (the emoji picker).
    React,
    /// Open the selected message's thread.
    Thread,
}

impl Action {
    /// Every action, in the order the help screen lists them.
    pub(crate) const ALL: [Self; 43] = [
        Self::Send,
        Self::Newline,
        Self::Complete,
        Self::Left,
        Self::Right,
        Self::WordLeft,
        Self::WordRight,
        Self::LineStart,
        Self::LineEnd,
        Self::DeleteLeft,
        Self::DeleteRight,
        Self::DeleteWordLeft,
        Self::DeleteWordRight,
        Self::DeleteToStart,
        Self::DeleteToEnd,
        Self::Yank,
        Self::Up,
        Self::Down,
        Self::ScrollUp,
        Self::ScrollDown,
        Self::PageUp,
        Self::PageDown,
        Self::Top,
        Self::Bottom,
        Self::NextRoom,
        Self::PrevRoom,
        Self::Close,
        Self::GetLatestFile,
        Self::Transfers,
        Self::ClearTransfers,
        Self::RetryFailed,
        Self::EditFailed,
        Self::ToggleEvents,
        Self::Redraw,
        Self::Help,
        Self::Quit,
        Self::SelectUp,
        Self::SelectDown,
        Self::EditMessage,
        Self::DeleteMessage,
        Self::Reply,
        Self::React,
        Self::Thread,
    ];

    /// Whether the action acts on the selected message: its keys do it
    /// while a message is selected, and what they do otherwise (typing)
    /// the rest of the time.
    pub(crate) fn on_message(self) -> bool {
        matches!(
            self,
            Self::EditMessage | Self::DeleteMessage | Self::Reply | Self::React | Self::Thread
        )
    }

    /// The name in the config file's `[keys]` table.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Send => "send",
            Self::Newline => "newline",
            Self::Complete => "complete",
            Self::Left => "left",
            Self::Right => "right",
            Self::WordLeft => "word_left",
            Self::WordRight => "word_right",
            Self::LineStart => "line_start",
            Self::LineEnd => "line_end",
            Self::DeleteLeft => "delete_left",
            Self::DeleteRight => "delete_right",
            Self::DeleteWordLeft => "delete_word_left",
            Self::DeleteWordRight => "delete_word_right",
            Self::DeleteToStart => "delete_to_start",
            Self::DeleteToEnd => "delete_to_end",
            Self::Yank => "yank",
            Self::Up => "up",
            Self::Down => "down",
            Self::ScrollUp => "scroll_up",
            Self::ScrollDown => "scroll_down",
            Self::PageUp => "page_up",
            Self::PageDown => "page_down",
            Self::Top => "top",
            Self::Bottom => "bottom",
            Self::NextRoom => "next_room",
            Self::PrevRoom => "prev_room",
            Self::Close => "close",
            Self::GetLatestFile => "get_latest_file",
            Self::Transfers => "transfers",
            Self::ClearTransfers => "clear_transfers",
            Self::RetryFailed => "retry_failed",
            Self::EditFailed => "edit_failed",
            Self::ToggleEvents => "toggle_events",
            Self::Redraw => "redraw",
            Self::Help => "help",
            Self::Quit => "quit",
            Self::SelectUp => "select_up",
            Self::SelectDown => "select_down",
            Self::EditMessage => "edit_message",
            Self::DeleteMessage => "delete_message",
            Self::Reply => "reply",
            Self::React => "react",
            Self::Thread => "thread",
        }
    }

    /// What the help screen says it does.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Self::Send => "send the line or run the command",
            Self::Newline => "new line in the message",
            Self::Complete => "complete a command, room, member or path",
            Self::Left => "cursor left",
            Self::Right => "cursor right",
            Self::WordLeft => "cursor to the previous word",
            Self::WordRight => "cursor past the next word",
            Self::LineStart => "cursor to the start of the line",
            Self::LineEnd => "cursor to the end of the line",
            Self::DeleteLeft => "delete left",
            Self::DeleteRight => "delete right",
            Self::DeleteWordLeft => "delete the word left",
            Self::DeleteWordRight => "delete the word right",
            Self::DeleteToStart => "delete to the start of the line",
            Self::DeleteToEnd => "delete to the end of the line",
            Self::Yank => "paste what was deleted last",
            Self::Up => "recall sent lines (empty input), else scroll",
            Self::Down => "next sent line, else scroll",
            Self::ScrollUp => "scroll up a line",
            Self::ScrollDown => "scroll down a line",
            Self::PageUp => "scroll up a page",
            Self::PageDown => "scroll down a page",
            Self::Top => "oldest message (loads older history)",
            Self::Bottom => "newest message",
            Self::NextRoom => "next room",
            Self::PrevRoom => "previous room",
            Self::Close => "close the overlay, drop the completions",
            Self::GetLatestFile => "download the latest file offered here",
            Self::Transfers => "transfers with their full status",
            Self::ClearTransfers => "clear finished transfers",
            Self::RetryFailed => "send this room's failed messages again",
            Self::EditFailed => "take the last failed message back to edit",
            Self::ToggleEvents => "joins/leaves/quits: lines, folded, hidden",
            Self::Redraw => "redraw the screen",
            Self::Help => "this help",
            Self::Quit => "quit",
            Self::SelectUp => "select the message above (Esc: none)",
            Self::SelectDown => "select the message below",
            Self::EditMessage => "selected: edit your message (Enter saves)",
            Self::DeleteMessage => "selected: delete the message (asks first)",
            Self::Reply => "selected: reply to it",
            Self::React => "selected: react (type to search :shortcodes)",
            Self::Thread => "selected: open its thread (Esc back)",
        }
    }

    /// The action named `name` in the config file.
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    /// The keys bound to it by default.
    pub(crate) fn default_keys(self) -> &'static [&'static str] {
        match self {
            Self::Send => &["enter"],
            Self::Newline => &["alt-enter", "shift-enter", "ctrl-j"],
            Self::Complete => &["tab"],
            Self::Left => &["left", "ctrl-b"],
            Self::Right => &["right", "ctrl-f"],
            Self::WordLeft => &["alt-b", "ctrl-left"],
            Self::WordRight => &["alt-f", "ctrl-right"],
            Self::LineStart => &["ctrl-a"],
            Self::LineEnd => &["ctrl-e"],
            Self::DeleteLeft => &["backspace"],
            Self::DeleteRight => &["delete", "ctrl-d"],
            Self::DeleteWordLeft => &["ctrl-w", "alt-backspace"],
            Self::DeleteWordRight => &["alt-d"],
            Self::DeleteToStart => &["ctrl-u"],
            Self::DeleteToEnd => &["ctrl-k"],
            Self::Yank => &["ctrl-y"],
            Self::Up => &["up"],
            Self::Down => &["down"],
            Self::ScrollUp => &["shift-up"],
            Self::ScrollDown => &["shift-down"],
            Self::PageUp => &["pgup"],
            Self::PageDown => &["pgdn"],
            Self::Top => &["home"],
            Self::Bottom => &["end"],
            Self::NextRoom => &["ctrl-n", "alt-down"],
            Self::PrevRoom => &["ctrl-p", "alt-up"],
            Self::Close => &["esc"],
            Self::GetLatestFile => &["ctrl-g"],
            Self::Transfers => &["ctrl-t"],
            Self::ClearTransfers => &["ctrl-x"],
            Self::RetryFailed => &["ctrl-r"],
            Self::EditFailed => &["alt-r"],
            Self::ToggleEvents => &["alt-j"],
            Self::Redraw => &["ctrl-l"],
            Self::Help => &["f1"],
            Self::Quit => &["ctrl-c"],
            Self::SelectUp => &["ctrl-up", "alt-p"],
            Self::SelectDown => &["ctrl-down", "alt-n"],
            Self::EditMessage => &["e"],
            Self::DeleteMessage => &["d", "delete"],
            Self::Reply => &["r"],
            Self::React => &["+"],
            Self::Thread => &["t"],
        }
    }
}

/// A key with its modifiers, as bound: letters lower-case, Shift kept only
/// for keys that are not characters (a character carries its own case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Chord {
    /// The key.
    pub(crate) key: Key,
    /// Ctrl, Alt, Shift.
    pub(crate) mods: KeyModifiers,
}

impl Chord {
    /// The chord a terminal key event is.
    pub(crate) fn of(ev: KeyEvent) -> Self {
        let mut mods =
            ev.modifiers & (KeyModifiers::CONTROL | KeyModifiers::ALT | KeyModifiers::SHIFT);
        let key = match ev.code {
            Key::Char(c) => {
                mods.remove(KeyModifiers::SHIFT);
                // Ctrl and Alt letters arrive in either case (Caps Lock).
                if mods.is_empty() { Key::Char(c) } else { Key::Char(c.to_ascii_lowercase()) }
            }
            // Shift-Tab: one key, whatever the terminal says of Shift.
            Key::BackTab => {
                mods.remove(KeyModifiers::SHIFT);
                Key::BackTab
            }
            other => other,
        };
        Self { key, mods }
    }

    /// Parses `ctrl-k`, `alt-shift-up`, `f5`, `pgup`, `space`, `x`.
    ///
    /// # Errors
    /// A sentence naming what is wrong.
    pub(crate) fn parse(spec: &str) -> Result<Self, String> {
        let lower = spec.trim().to_ascii_lowercase();
        let mut parts: Vec<&str> = lower.split('-').collect();
        // `ctrl--` would be the minus key; `-` alone too.
        if lower.ends_with("--") || lower == "-" {
            parts.retain(|p| !p.is_empty());
            parts.push("-");
        }
        let Some((name, mods)) = parts.split_last() else {
            return Err(format!("empty key {spec:?}"));
        };
        let mut m = KeyModifiers::NONE;
        for p in mods {
            m |= match *p {
                "ctrl" | "c" => KeyModifiers::CONTROL,
                "alt" | "meta" | "m" => KeyModifiers::ALT,
                "shift" | "s" => KeyModifiers::SHIFT,
                other => return Err(format!("unknown modifier {other:?} in key {spec:?}")),
            };
        }
        let key = match *name {
            "enter" | "return" => Key::Enter,
            "tab" => Key::Tab,
            "backtab" => Key::BackTab,
            "backspace" | "bs" => Key::Backspace,
            "delete" | "del" => Key::Delete,
            "insert" | "ins" => Key::Insert,
            "esc" | "escape" => Key::Esc,
            "up" => Key::Up,
            "down" => Key::Down,
            "left" => Key::Left,
            "right" => Key::Right,
            "home" => Key::Home,
            "end" => Key::End,
            "pgup" | "pageup" => Key::PageUp,
            "pgdn" | "pagedown" => Key::PageDown,
            "space" => Key::Char(' '),
            f if f.len() >= 2
                && f.starts_with('f')
                && f[1..].bytes().all(|b| b.is_ascii_digit()) =>
            {
                let n: u8 = f[1..].parse().map_err(|_| format!("no key {spec:?}"))?;
                if !(1..=24).contains(&n) {
                    return Err(format!("no key {spec:?}"));
                }
                Key::Function(n)
            }
            one if one.chars().count() == 1 => {
                // The original case: a plain `K` is Shift-k typed.
                let original = spec.trim().chars().last().unwrap_or(' ');
                let c = if m.is_empty() { original } else { original.to_ascii_lowercase() };
                Key::Char(c)
            }
            _ => return Err(format!("no key named {name:?} in {spec:?}")),
        };
        Ok(Self::of(KeyEvent { code: key, modifiers: m }))
    }
}

impl fmt::Display for Chord {
    /// `Ctrl-K`, `Alt-Enter`, `PgUp`, `F1`: as the help screen shows keys.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.mods.contains(KeyModifiers::CONTROL) {
            f.write_str("Ctrl-")?;
        }
        if self.mods.contains(KeyModifiers::ALT) {
            f.write_str("Alt-")?;
        }
        if self.mods.contains(KeyModifiers::SHIFT) {
            f.write_str("Shift-")?;
        }
        match self.key {
            Key::Char(' ') => f.write_str("Space"),
            Key::Char(c) if !self.mods.is_empty() => write!(f, "{}", c.to_ascii_uppercase()),
            Key::Char(c) => write!(f, "{c}"),
            Key::Function(n) => write!(f, "F{n}"),
            Key::PageUp => f.write_str("PgUp"),
            Key::PageDown => f.write_str("PgDn"),
            Key::Backspace => f.write_str("Backspace"),
            Key::BackTab => f.write_str("Shift-Tab"),
            other => write!(f, "{other:?}"),
        }
    }
}

/// Keys to actions on the main screen: one map for the keys that act on
/// the selected message ([`Action::on_message`]), checked first while one
/// is selected, and one for the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Keymap {
    map: HashMap<Chord, Action>,
    on_message: HashMap<Chord, Action>,
}

impl Default for Keymap {
    fn default() -> Self {
        let mut km = Self { map: HashMap::new(), on_message: HashMap::new() };
        for a in Action::ALL {
            for spec in a.default_keys() {
                if let Ok(c) = Chord::parse(spec) {
                    km.map_of(a).insert(c, a);
                }
            }
        }
        km
    }
}

impl Keymap {
    /// The defaults with `overrides` (action name → keys) applied: an
    /// action listed there gets exactly those keys (none: unbound), and a
    /// key it takes leaves the action it had by default.
    ///
    /// # Errors
    /// An unknown action or key name, or one key given to two actions.
    pub(crate) fn with(overrides: &[(String, Vec<String>)]) -> Result<Self, String> {
        let mut km = Self::default();
        let mut taken: HashMap<(bool, Chord), Action> = HashMap::new();
        for (name, keys) in overrides {
            let action =
                Action::from_name(name).ok_or_else(|| format!("keys: no action named {name:?}"))?;
            km.map_of(action).retain(|_, a| *a != action);
            for spec in keys {
                let chord = Chord::parse(spec).map_err(|e| format!("keys.{name}: {e}"))?;
                let key = (action.on_message(), chord);
                if let Some(other) = taken.insert(key, action).filter(|o| *o != action) {
                    return Err(format!(
                        "keys: {spec:?} is given to both {} and {name}",
                        other.name()
                    ));
                }
                km.map_of(action).insert(chord, action);
            }
        }
        Ok(km)
    }

    fn map_of(&mut self, action: Action) -> &mut HashMap<Chord, Action> {
        if action.on_message() { &mut self.on_message } else { &mut self.map }
    }

    /// The action of a key event, if it is bound (not counting the keys
    /// that act on the selected message).
    pub(crate) fn action(&self, ev: KeyEvent) -> Option<Action> {
        self.map.get(&Chord::of(ev)).copied()
    }

    /// The action on the selected message a key event is bound to.
    pub(crate) fn message_action(&self, ev: KeyEvent) -> Option<Action> {
        self.on_message.get(&Chord::of(ev)).copied()
    }

    /// The keys of `action`, in a stable order, as the help shows them.
    pub(crate) fn keys_of(&self, action: Action) -> Vec<String> {
        let map = if action.on_message() { &self.on_message } else { &self.map };
        let mut keys: Vec<String> =
            map.iter().filter(|(_, a)| **a == action).map(|(c, _)| c.to_string()).collect();
        // Defaults first, in their order; then the rest by name.
        let defaults: Vec<String> = action
            .default_keys()
            .iter()
            .filter_map(|s| Chord::parse(s).ok())
            .map(|c| c.to_string())
            .collect();
        keys.sort_by_key(|k| {
            (defaults.iter().position(|d| d == k).unwrap_or(usize::MAX), k.clone())
        });
        keys
    }

    /// `Ctrl-K` for an action's first key, or `unbound`, for hints.
    pub(crate) fn hint(&self, action: Action) -> String {
        self.keys_of(action).into_iter().next().unwrap_or_else(|| "unbound".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(code: Key, modifiers: KeyModifiers) -> KeyEvent {
        KeyEvent { code, modifiers }
    }

    #[test]
    fn every_action_has_a_unique_name_and_default_keys_that_parse() {
        let mut names: Vec<&str> = Action::ALL.iter().map(|a| a.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Action::ALL.len());
        for a in Action::ALL {
            assert_eq!(Action::from_name(a.name()), Some(a));
            for k in a.default_keys() {
                assert!(Chord::parse(k).is_ok(), "{k}");
            }
        }
        // No default key is bound twice (in the same scope).
        let mut seen = HashMap::new();
        for a in Action::ALL {
            for k in a.default_keys() {
                let c = Chord::parse(k).expect("parses");
                if let Some(other) = seen.insert((a.on_message(), c), a) {
                    assert_eq!(other, a, "{k} is bound to {other:?} and {a:?}");
                }
            }
        }
    }

    #[test]
    fn key_names_parse_and_print() {
        let ctrl_k = Chord::parse("ctrl-k").expect("parses");
        assert_eq!(ctrl_k, Chord::of(ev(Key::Char('k'), KeyModifiers::CONTROL)));
        assert_eq!(ctrl_k.to_string(), "Ctrl-K");
        assert_eq!(Chord::parse("Alt-Enter").expect("parses").to_string(), "Alt-Enter");
        assert_eq!(Chord::parse("pgup").expect("parses").to_string(), "PgUp");
        assert_eq!(Chord::parse("f12").expect("parses").key, Key::Function(12));
        assert_eq!(Chord::parse("shift-up").expect("parses").to_string(), "Shift-Up");
        assert_eq!(Chord::parse("ctrl--").expect("parses").key, Key::Char('-'));
        assert!(Chord::parse("hyper-x").is_err());
        assert!(Chord::parse("f99").is_err());
        assert!(Chord::parse("nokey").is_err());
    }

    #[test]
    fn events_match_whatever_the_case_and_shift() {
        let km = Keymap::default();
        assert_eq!(km.action(ev(Key::Char('K'), KeyModifiers::CONTROL)), Some(Action::DeleteToEnd));
        let shift_ctrl = KeyModifiers::CONTROL | KeyModifiers::SHIFT;
        assert_eq!(km.action(ev(Key::Char('W'), shift_ctrl)), Some(Action::DeleteWordLeft));
        assert_eq!(km.action(ev(Key::Char('b'), KeyModifiers::ALT)), Some(Action::WordLeft));
        assert_eq!(km.action(ev(Key::Char('x'), KeyModifiers::NONE)), None, "typed, not bound");
        assert_eq!(km.action(ev(Key::Char('X'), KeyModifiers::SHIFT)), None);
        assert_eq!(km.action(ev(Key::Up, KeyModifiers::SHIFT)), Some(Action::ScrollUp));
        assert_eq!(km.action(ev(Key::Up, KeyModifiers::NONE)), Some(Action::Up));
    }

    #[test]
    fn overrides_replace_an_actions_keys_and_take_keys_from_defaults() {
        let km = Keymap::with(&[
            ("clear_transfers".into(), vec!["ctrl-k".into()]),
            ("delete_to_end".into(), vec!["alt-k".into()]),
            ("yank".into(), vec![]),
        ])
        .expect("valid");
        let ctrl_k = ev(Key::Char('k'), KeyModifiers::CONTROL);
        assert_eq!(km.action(ctrl_k), Some(Action::ClearTransfers));
        assert_eq!(km.action(ev(Key::Char('x'), KeyModifiers::CONTROL)), None, "old key gone");
        assert_eq!(km.action(ev(Key::Char('k'), KeyModifiers::ALT)), Some(Action::DeleteToEnd));
        assert_eq!(km.keys_of(Action::Yank), Vec::<String>::new());
        assert_eq!(km.hint(Action::Yank), "unbound");
        let err = Keymap::with(&[
            ("yank".into(), vec!["ctrl-q".into()]),
            ("redraw".into(), vec!["ctrl-q".into()]),
        ])
        .expect_err("a clash");
        assert!(err.contains("both yank and redraw"), "{err}");
        assert!(Keymap::with(&[("fly".into(), vec![])]).is_err());
    }

    #[test]
    fn keys_of_lists_defaults_in_order() {
        let km = Keymap::default();
        assert_eq!(km.keys_of(Action::Newline), ["Alt-Enter", "Shift-Enter", "Ctrl-J"]);
        assert_eq!(km.hint(Action::ClearTransfers), "Ctrl-X");
    }
}

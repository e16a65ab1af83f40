//! Alerts, pure: when a message calls for one ([`Notify::wants`]: a mention,
//! or every message, or none), and the bytes that raise it in the terminal
//! ([`escape`]: the bell, and a desktop notification as OSC 9 or OSC 777,
//! wrapped for tmux when inside it). The event loop writes the bytes after
//! a frame; update() only queues [`Alert`]s.

/// Which messages raise an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum When {
    /// Messages that mention the user (`@name`, `name:`), and direct
    /// messages.
    Mentions,
    /// Every message from someone else.
    All,
    /// None.
    Never,
}

impl When {
    /// The name in the config file and `/notify`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Mentions => "mentions",
            Self::All => "all",
            Self::Never => "none",
        }
    }

    /// Parses a name from the config file or `/notify`.
    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "mentions" => Some(Self::Mentions),
            "all" => Some(Self::All),
            "none" | "off" => Some(Self::Never),
            _ => None,
        }
    }
}

/// The desktop notification escape to emit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Desktop {
    /// `ESC ] 9 ; text ST` (iTerm2, Windows Terminal, WezTerm, kitty, foot,
    /// Ghostty, ConEmu).
    Osc9,
    /// `ESC ] 777 ; notify ; title ; text ST` (urxvt, foot, WezTerm,
    /// Ghostty, VTE-based terminals with the patch).
    Osc777,
    /// None: the bell alone, if on.
    Off,
}

impl Desktop {
    /// The name in the config file.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Osc9 => "osc9",
            Self::Osc777 => "osc777",
            Self::Off => "off",
        }
    }

    /// Parses a name from the config file.
    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "osc9" => Some(Self::Osc9),
            "osc777" => Some(Self::Osc777),
            "off" | "none" => Some(Self::Off),
            _ => None,
        }
    }
}

/// The notification settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Notify {
    /// Which messages alert.
    pub(crate) when: When,
    /// Ring the terminal bell.
    pub(crate) bell: bool,
    /// The desktop notification escape.
    pub(crate) desktop: Desktop,
}

impl Default for Notify {
    fn default() -> Self {
        Self { when: When::Mentions, bell: true, desktop: Desktop::Osc9 }
    }
}

impl Notify {
    /// What the status line says about the setting, when it is not the
    /// usual (alerts on mentions): `muted`, `alerts: all`.
    pub(crate) fn label(&self) -> Option<&'static str> {
        let silent = !self.bell && self.desktop == Desktop::Off;
        match self.when {
            When::Never => Some("muted"),
            _ if silent => Some("muted"),
            When::All => Some("alerts: all"),
            When::Mentions => None,
        }
    }

    /// Whether a message from someone else (`mention`: it mentions the
    /// user) alerts.
    pub(crate) fn wants(&self, mention: bool) -> bool {
        match self.when {
            When::Mentions => mention,
            When::All => true,
            When::Never => false,
        }
    }
}

/// A message that calls for the user's attention.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Alert {
    /// The room.
    pub(crate) room: String,
    /// Who wrote it.
    pub(crate) sender: String,
    /// What it says (or the file's name).
    pub(crate) text: String,
}

/// The longest text a notification carries.
const MAX_TEXT: usize = 160;

/// Text safe inside an OSC string: no control characters (an ESC or BEL
/// would end it early, letting a sender write escapes to the terminal), no
/// `;` where it separates fields, at most [`MAX_TEXT`] characters.
fn clean(s: &str, no_semicolon: bool) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .filter(|c| !(no_semicolon && *c == ';'))
        .take(MAX_TEXT)
        .collect();
    if s.chars().count() > MAX_TEXT {
        out.push('…');
    }
    out
}

/// The bytes that raise `alerts` (queued since the last frame; one bell and
/// one notification for all of them): the bell when `cfg.bell`, then the
/// desktop escape. Inside tmux (`in_tmux`) the escape is wrapped in tmux's
/// passthrough (`ESC P tmux; ... ESC \`, ESCs doubled), which tmux 3.3+
/// forwards when `allow-passthrough` is on and drops otherwise; the bell
/// needs no wrapping. Empty when there is nothing to raise.
pub(crate) fn escape(alerts: &[Alert], cfg: &Notify, in_tmux: bool) -> Vec<u8> {
    let Some(first) = alerts.first() else { return Vec::new() };
    let mut out = Vec::new();
    if cfg.bell {
        out.push(0x07);
    }
    let more = match alerts.len() {
        1 => String::new(),
        n => format!(" (+{} more)", n - 1),
    };
    let title = clean(&format!("qchat: {} in {}", first.sender, first.room), true);
    let text = clean(&first.text, false);
    let osc = match cfg.desktop {
        Desktop::Off => return out,
        Desktop::Osc9 => format!("\x1b]9;{title}: {text}{more}\x1b\\"),
        Desktop::Osc777 => {
            format!("\x1b]777;notify;{title};{}{more}\x1b\\", clean(&first.text, true))
        }
    };
    if in_tmux {
        out.extend_from_slice(b"\x1bPtmux;");
        out.extend_from_slice(osc.replace('\x1b', "\x1b\x1b").as_bytes());
        out.extend_from_slice(b"\x1b\\");
    } else {
        out.extend_from_slice(osc.as_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(text: &str) -> Alert {
        Alert { room: "general".into(), sender: "bob".into(), text: text.into() }
    }

    #[test]
    fn which_messages_alert() {
        let mut n = Notify::default();
        assert!(n.wants(true) && !n.wants(false));
        n.when = When::All;
        assert!(n.wants(false));
        n.when = When::Never;
        assert!(!n.wants(true));
        for w in [When::Mentions, When::All, When::Never] {
            assert_eq!(When::parse(w.name()), Some(w));
        }
        for d in [Desktop::Osc9, Desktop::Osc777, Desktop::Off] {
            assert_eq!(Desktop::parse(d.name()), Some(d));
        }
        assert_eq!(Notify::default().label(), None);
        assert_eq!(Notify { when: When::Never, ..Notify::default() }.label(), Some("muted"));
        let silent = Notify { bell: false, desktop: Desktop::Off, ..Notify::default() };
        assert_eq!(silent.label(), Some("muted"));
    }

    #[test]
    fn bell_then_osc9_or_osc777() {
        let a = [alert("ann: lunch?")];
        let n = Notify::default();
        assert_eq!(escape(&a, &n, false), b"\x07\x1b]9;qchat: bob in general: ann: lunch?\x1b\\");
        let n777 = Notify { desktop: Desktop::Osc777, ..n };
        assert_eq!(
            escape(&a, &n777, false),
            b"\x07\x1b]777;notify;qchat: bob in general;ann: lunch?\x1b\\"
        );
        let quiet = Notify { bell: false, desktop: Desktop::Off, ..n };
        assert!(escape(&a, &quiet, false).is_empty());
        assert!(escape(&[], &n, false).is_empty());
        let bell_only = Notify { desktop: Desktop::Off, ..n };
        assert_eq!(escape(&a, &bell_only, false), b"\x07");
    }

    #[test]
    fn several_alerts_make_one_bell_and_one_notification() {
        let a = [alert("one"), alert("two"), alert("three")];
        let out = escape(&a, &Notify::default(), false);
        assert_eq!(out.iter().filter(|b| **b == 0x07).count(), 1);
        assert!(String::from_utf8_lossy(&out).contains("one (+2 more)"));
    }

    #[test]
    fn a_sender_cannot_write_escapes_to_the_terminal() {
        let a = [alert("hi\x1b]52;c;cHduZWQ=\x07\x1b\\ there; ok")];
        let n777 = Notify { desktop: Desktop::Osc777, ..Notify::default() };
        let out = escape(&a, &n777, false);
        // One BEL (the bell), one ESC ] and one ST: nothing from the text.
        assert_eq!(out.iter().filter(|b| **b == 0x07).count(), 1);
        assert_eq!(out.iter().filter(|b| **b == 0x1b).count(), 2);
        assert!(!String::from_utf8_lossy(&out).contains("there;"), "no field separator");
        let long = [alert(&"x".repeat(1000))];
        assert!(escape(&long, &Notify::default(), false).len() < 250);
    }

    #[test]
    fn inside_tmux_the_escape_passes_through() {
        let out = escape(&[alert("hi")], &Notify::default(), true);
        assert_eq!(out, b"\x07\x1bPtmux;\x1b\x1b]9;qchat: bob in general: hi\x1b\x1b\\\x1b\\");
    }
}

//! The terminal UI's config file: `config.toml` in the platform's config
//! directory (`~/.config/qchat/config.toml` on Linux), or the file `--config`
//! / `QCHAT_TUI_CONFIG` names. Every setting is optional; [`default_text`]
//! is the documented file with every default, which `qchat config
//! defaults` prints and a test parses back into [`Config::default`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr as _;

use serde::Deserialize;
use tuirealm::ratatui::style::Color;

use super::clock::{DATE_FORMAT, TIME_FORMAT};
use super::keys::{Action, Keymap};
use super::notify::{Desktop, Notify, When};
use super::theme::Theme;
use super::timeline::EventsShown;

/// The settings, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Config {
    /// strftime format of message times.
    pub(crate) time_format: String,
    /// strftime format of day separators.
    pub(crate) date_format: String,
    /// Where downloads go; `None`: the platform's Downloads folder, else
    /// the current directory.
    pub(crate) download_dir: Option<PathBuf>,
    /// Colours.
    pub(crate) theme: Theme,
    /// Key bindings of the main screen.
    pub(crate) keys: Keymap,
    /// Which messages alert, and how.
    pub(crate) notify: Notify,
    /// How join, leave and quit lines show.
    pub(crate) events: EventsShown,
    /// Take the mouse (wheel, clicks); off leaves it to the terminal
    /// (selecting text without Shift).
    pub(crate) mouse: bool,
    /// Tell a room's members while the user types there.
    pub(crate) typing: bool,
    /// Draw flags as their letters (`[JP]`): `None` decides at start
    /// (inside tmux, yes).
    pub(crate) flag_letters: Option<bool>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            time_format: TIME_FORMAT.to_owned(),
            date_format: DATE_FORMAT.to_owned(),
            download_dir: None,
            theme: Theme::default(),
            keys: Keymap::default(),
            notify: Notify::default(),
            events: EventsShown::Lines,
            mouse: true,
            typing: true,
            flag_letters: None,
        }
    }
}

/// The file as written: every field optional, unknown ones refused (a
/// misspelt setting must not be silently ignored).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    time_format: Option<String>,
    date_format: Option<String>,
    download_dir: Option<String>,
    events: Option<String>,
    mouse: Option<bool>,
    typing: Option<bool>,
    flags: Option<String>,
    colors: Option<RawColors>,
    keys: Option<BTreeMap<String, OneOrMany>>,
    notifications: Option<RawNotify>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNotify {
    on: Option<String>,
    bell: Option<bool>,
    desktop: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawColors {
    border: Option<String>,
    accent: Option<String>,
    dim: Option<String>,
    own: Option<String>,
    mention: Option<String>,
    file: Option<String>,
    marker: Option<String>,
    ok: Option<String>,
    warn: Option<String>,
    error: Option<String>,
    senders: Option<Vec<String>>,
}

/// `key = "ctrl-k"` or `key = ["ctrl-k", "alt-k"]`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// Why the config file was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// It exists but could not be read.
    #[error("reading {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// It is not valid TOML, or a setting is unknown or has a bad value.
    #[error("{}: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the setting.
        message: String,
    },
}

/// Where the config file is read from unless `--config` says otherwise:
/// `config.toml` in the platform's config directory.
pub fn default_path() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "qchat").map(|d| d.config_dir().join("config.toml"))
}

/// Reads the config at `path`; a missing file is the defaults.
///
/// # Errors
/// The file exists but cannot be read, is not TOML, or holds an unknown
/// setting or a bad value.
pub(crate) fn load(path: &Path) -> Result<Config, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            parse(&text).map_err(|message| ConfigError::Invalid { path: path.to_owned(), message })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
        Err(source) => Err(ConfigError::Read { path: path.to_owned(), source }),
    }
}

/// Checks the settings in `text`.
///
/// # Errors
/// A sentence naming the bad setting.
pub(crate) fn parse(text: &str) -> Result<Config, String> {
    let raw: Raw = toml::from_str(text).map_err(|e| e.to_string().trim_end().to_owned())?;
    let mut cfg = Config::default();
    if let Some(t) = raw.time_format {
        cfg.time_format = t;
    }
    if let Some(d) = raw.date_format {
        cfg.date_format = d;
    }
    // Fails early on a format that cannot write a time.
    super::clock::Zone::system().with_formats(&cfg.time_format, &cfg.date_format)?;
    cfg.download_dir = raw.download_dir.filter(|d| !d.trim().is_empty()).map(|d| expand_home(&d));
    if let Some(c) = raw.colors {
        let t = &mut cfg.theme;
        let slots: [(&str, Option<String>, &mut Color); 10] = [
            ("border", c.border, &mut t.border),
            ("accent", c.accent, &mut t.accent),
            ("dim", c.dim, &mut t.dim),
            ("own", c.own, &mut t.own),
            ("mention", c.mention, &mut t.mention),
            ("file", c.file, &mut t.file),
            ("marker", c.marker, &mut t.marker),
            ("ok", c.ok, &mut t.ok),
            ("warn", c.warn, &mut t.warn),
            ("error", c.error, &mut t.error),
        ];
        for (name, value, slot) in slots {
            if let Some(v) = value {
                *slot = color(name, &v)?;
            }
        }
        if let Some(list) = c.senders {
            t.senders = list.iter().map(|v| color("senders", v)).collect::<Result<_, _>>()?;
        }
    }
    if let Some(e) = raw.events {
        cfg.events = EventsShown::parse(&e).ok_or_else(|| {
            format!("events: {e:?} is not one of \"lines\", \"folded\", \"hidden\"")
        })?;
    }
    if let Some(m) = raw.mouse {
        cfg.mouse = m;
    }
    if let Some(t) = raw.typing {
        cfg.typing = t;
    }
    if let Some(f) = raw.flags {
        cfg.flag_letters = match f.trim() {
            "auto" => None,
            "emoji" => Some(false),
            "letters" => Some(true),
            _ => {
                return Err(format!("flags: {f:?} is not one of \"auto\", \"emoji\", \"letters\""));
            }
        };
    }
    if let Some(n) = raw.notifications {
        if let Some(on) = n.on {
            cfg.notify.when = When::parse(&on).ok_or_else(|| {
                format!("notifications.on: {on:?} is not one of \"mentions\", \"all\", \"none\"")
            })?;
        }
        if let Some(bell) = n.bell {
            cfg.notify.bell = bell;
        }
        if let Some(d) = n.desktop {
            cfg.notify.desktop = Desktop::parse(&d).ok_or_else(|| {
                format!("notifications.desktop: {d:?} is not one of \"osc9\", \"osc777\", \"off\"")
            })?;
        }
    }
    if let Some(keys) = raw.keys {
        let overrides: Vec<(String, Vec<String>)> = keys
            .into_iter()
            .map(|(action, k)| {
                let list = match k {
                    OneOrMany::One(k) => vec![k],
                    OneOrMany::Many(ks) => ks,
                };
                (action, list)
            })
            .collect();
        cfg.keys = Keymap::with(&overrides)?;
    }
    Ok(cfg)
}

fn color(name: &str, value: &str) -> Result<Color, String> {
    Color::from_str(value).map_err(|_| {
        format!(
            "colors.{name}: {value:?} is not a colour (a name like \"lightblue\", \
             a palette index 0-255, or \"#rrggbb\")"
        )
    })
}

/// `~/x` as a path in the home directory.
fn expand_home(p: &str) -> PathBuf {
    match (p.strip_prefix("~/"), directories::BaseDirs::new()) {
        (Some(rest), Some(home)) => home.home_dir().join(rest),
        _ => PathBuf::from(p),
    }
}

/// The name a colour is written with in the config file.
fn color_name(c: Color) -> String {
    match c {
        Color::Rgb(r, g, b) => format!("#{r:02x}{g:02x}{b:02x}"),
        Color::Indexed(i) => i.to_string(),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// The config file with every setting at its default, commented: what
/// `qchat config defaults` prints.
pub fn default_text() -> String {
    let t = Theme::default();
    let mut out = String::from(
        "# qchat terminal UI settings. `qchat config defaults` prints this file with\n\
         # every default; `qchat config path` says where qchat reads it (the\n\
         # platform's config directory, e.g. ~/.config/qchat/config.toml; --config\n\
         # FILE or QCHAT_TUI_CONFIG names another). Every setting is optional: one\n\
         # left out keeps the value shown here. `qchat config check` checks a file.\n\n",
    );
    out.push_str(&format!(
        "# Message times and day separators, strftime style (\"%H:%M:%S\",\n\
         # \"%I:%M %p\", \"%a %d %b\").\n\
         time_format = \"{TIME_FORMAT}\"\n\
         date_format = \"{DATE_FORMAT}\"\n\n\
         # Where /get and Ctrl-G save files (\"~/\" is your home). Empty: the\n\
         # platform's Downloads folder, else the directory qchat started in; the\n\
         # status line says where each download goes.\n\
         download_dir = \"\"\n\n\
         # Joins, leaves and quits (with their reasons), and this client losing\n\
         # its connection, as dim lines in the rooms: \"lines\" (one each),\n\
         # \"folded\" (each run on one line) or \"hidden\". Alt-J cycles them.\n\
         events = \"lines\"\n\n\
         # The mouse: the wheel scrolls, a click opens a room, downloads a file\n\
         # offer or shows the transfers. Hold Shift to select text meanwhile\n\
         # (most terminals); false leaves the mouse to the terminal.\n\
         mouse = true\n\n\
         # Tell a room's members while you type there (\"alice is typing…\");\n\
         # false keeps it to yourself. Others' typing shows either way.\n\
         typing = true\n\n\
         # Flags (🇯🇵) as emoji, or as their letters ([JP]) for terminals that\n\
         # break them apart and leave stray halves (tmux 3.3 does). \"auto\":\n\
         # letters inside tmux, emoji elsewhere.\n\
         flags = \"auto\"\n\n"
    ));
    let n = Notify::default();
    out.push_str(&format!(
        "[notifications]\n\
         # Which messages alert: \"mentions\" (@you, or you: at the start of a\n\
         # line), \"all\" (every message from someone else) or \"none\". /notify\n\
         # changes it while qchat runs.\n\
         on = \"{}\"\n\
         # Ring the terminal bell.\n\
         bell = {}\n\
         # Desktop notification escape: \"osc9\" (iTerm2, WezTerm, kitty, foot,\n\
         # Ghostty, Windows Terminal), \"osc777\" (urxvt, foot, WezTerm, VTE with\n\
         # the patch) or \"off\". Inside tmux it is passed through (tmux needs\n\
         # `set -g allow-passthrough on`).\n\
         desktop = \"{}\"\n\n",
        n.when.name(),
        n.bell,
        n.desktop.name()
    ));
    out.push_str(
        "[colors]\n\
         # A name (red, lightblue, darkgray, ...), a palette index (\"208\"), or\n\
         # \"#rrggbb\".\n",
    );
    for (name, c, what) in [
        ("border", t.border, "panel borders"),
        ("accent", t.accent, "the focused panel, the current room, the prompt"),
        ("dim", t.dim, "times, separators, joins and quits, offline members"),
        ("own", t.own, "your messages"),
        ("mention", t.mention, "messages that mention you"),
        ("file", t.file, "file offers"),
        ("marker", t.marker, "the new-messages line"),
        ("ok", t.ok, "connected, online, finished transfers"),
        ("warn", t.warn, "reconnecting, notices"),
        ("error", t.error, "offline, failures"),
    ] {
        let line = format!("{name} = \"{}\"", color_name(c));
        out.push_str(&format!("{line:<20} # {what}\n"));
    }
    let senders: Vec<String> =
        t.senders.iter().map(|c| format!("\"{}\"", color_name(*c))).collect();
    out.push_str(&format!(
        "# Sender names take one of these, always the same for a name.\nsenders = [{}]\n\n",
        senders.join(", ")
    ));
    out.push_str(
        "[keys]\n\
         # action = [\"key\", ...] for the main screen. An action listed here gets\n\
         # exactly these keys (an empty list unbinds it), taking them from any\n\
         # other action. Keys: ctrl-, alt-, shift- before a letter or one of enter,\n\
         # tab, backspace, delete, insert, esc, up, down, left, right, home, end,\n\
         # pgup, pgdn, space, f1 ... f24. Ctrl-C always quits. The keys of\n\
         # edit_message, delete_message, reply, react and thread act on the\n\
         # message selected (select_up, select_down); otherwise they type.\n",
    );
    for a in Action::ALL {
        let keys: Vec<String> = a.default_keys().iter().map(|k| format!("\"{k}\"")).collect();
        let line = format!("{} = [{}]", a.name(), keys.join(", "));
        out.push_str(&format!("{line:<48} # {}\n", a.describe()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_printed_defaults_are_the_defaults() {
        let text = default_text();
        assert_eq!(parse(&text).expect("the defaults parse"), Config::default());
        assert_eq!(parse("").expect("an empty file"), Config::default());
        for a in Action::ALL {
            assert!(text.contains(&format!("\n{} = [", a.name())), "{} is documented", a.name());
        }
    }

    #[test]
    fn settings_override_the_defaults() {
        let cfg = parse(
            r##"
            time_format = "%H:%M:%S"
            download_dir = "/tmp/dl"
            events = "folded"
            mouse = false
            flags = "letters"
            [colors]
            mention = "#ff8800"
            own = "208"
            senders = ["red"]
            [keys]
            clear_transfers = "ctrl-k"
            delete_to_end = ["alt-k"]
            [notifications]
            on = "all"
            bell = false
            desktop = "osc777"
            "##,
        )
        .expect("valid");
        assert_eq!(cfg.time_format, "%H:%M:%S");
        assert_eq!(cfg.events, EventsShown::Folded);
        assert!(!cfg.mouse);
        assert_eq!(cfg.flag_letters, Some(true));
        assert_eq!(cfg.download_dir.as_deref(), Some(Path::new("/tmp/dl")));
        assert_eq!(cfg.theme.mention, Color::Rgb(0xff, 0x88, 0));
        assert_eq!(cfg.theme.own, Color::Indexed(208));
        assert_eq!(cfg.theme.senders, [Color::Red]);
        assert_eq!(cfg.keys.hint(Action::ClearTransfers), "Ctrl-K");
        assert_eq!(cfg.keys.hint(Action::DeleteToEnd), "Alt-K");
        assert_eq!(cfg.notify, Notify { when: When::All, bell: false, desktop: Desktop::Osc777 });
    }

    #[test]
    fn bad_settings_are_named() {
        let err = |text: &str| parse(text).expect_err("refused");
        assert!(err("tim_format = \"%H\"").contains("unknown field `tim_format`"));
        assert!(err("[colors]\nmention = \"plaid\"").contains("colors.mention"));
        assert!(err("time_format = \"%H:%\"").contains("time_format"));
        assert!(err("[keys]\nsend = \"hyper-x\"").contains("keys.send"));
        assert!(err("[keys]\nteleport = \"f5\"").contains("teleport"));
        assert!(err("time_format = 5").contains("time_format"));
        assert!(err("[notifications]\non = \"sometimes\"").contains("notifications.on"));
        assert!(err("flags = \"pictures\"").contains("flags"));
        assert!(err("[notifications]\ndesktop = \"osc8\"").contains("notifications.desktop"));
    }

    #[test]
    fn a_missing_file_is_the_defaults_and_a_bad_one_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.toml");
        assert_eq!(load(&path).expect("missing is fine"), Config::default());
        std::fs::write(&path, "download_dir = 3").expect("write");
        let e = load(&path).expect_err("refused").to_string();
        assert!(e.contains("config.toml") && e.contains("download_dir"), "{e}");
    }
}

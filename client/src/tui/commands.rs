//! What the input line means, pure: [`parse`] turns a submitted line into a
//! [`Command`], [`complete`] does Tab completion, [`emojify`] replaces
//! `:shortcode:`s.

use std::path::{Path, PathBuf};

use super::notify::When;

/// The commands, for `/help` and completion.
pub(crate) const COMMANDS: &[(&str, &str)] = &[
    ("/join", "ROOM      join a room and switch to it"),
    ("/leave", "[ROOM]   leave a room (default: this one)"),
    ("/create", "ROOM    create a room and join it"),
    ("/rooms", "         list the rooms"),
    ("/dm", "USER...     a direct message with them, opened once"),
    ("/invite", "USER... invite users into this room"),
    ("/kick", "WHO [WHY] remove a member (they may come back)"),
    ("/ban", "WHO [WHY]  ban a user from this room"),
    ("/topic", "[TEXT]   show or set the topic (- clears it)"),
    ("/private", "[off]  make this room private (or public)"),
    ("/who", "           show the member list (again to hide)"),
    ("/search", "WORDS   search every room you can read; Enter jumps to a hit"),
    ("/send", "FILE...   upload files to this room, all at once"),
    ("/get", "ID...      download files offered in a room"),
    ("/transfers", "     every transfer with its full status"),
    ("/me", "TEXT        an action: * you TEXT"),
    ("/notify", "[WHICH]  alert on mentions, all or none"),
    ("/reconnect", "     log in again on the saved session"),
    ("/trust", "[HEX]    pin the server's new certificate"),
    ("/quit", "[REASON]  leave qchat (also Ctrl-C)"),
    ("/help", "          this help"),
];

/// A submitted input line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Command {
    /// Plain text for the current room (shortcodes already replaced).
    Say(String),
    /// `/me TEXT`.
    Me(String),
    /// `/join ROOM`.
    Join(String),
    /// `/leave [ROOM]`.
    Leave(Option<String>),
    /// `/create ROOM`.
    Create(String),
    /// `/rooms`.
    Rooms,
    /// `/dm USER...`: the direct message with these users.
    Dm(Vec<String>),
    /// `/invite USER...` into the current room.
    Invite(Vec<String>),
    /// `/kick USER [REASON]` from the current room.
    Kick {
        /// Who.
        user: String,
        /// Why, shown to the room.
        reason: Option<String>,
    },
    /// `/ban USER [REASON]` from the current room.
    Ban {
        /// Who.
        user: String,
        /// Why, shown to the room.
        reason: Option<String>,
    },
    /// `/topic [TEXT]`: `None` shows the topic, `Some("")` cannot be typed
    /// (`/topic -` clears it).
    Topic(Option<String>),
    /// `/private [on|off]`.
    Private(bool),
    /// `/who`.
    Who,
    /// `/search WORDS`.
    Search(String),
    /// `/send FILE...`.
    Send(Vec<PathBuf>),
    /// `/get ID...`.
    Get(Vec<u64>),
    /// `/transfers`.
    Transfers,
    /// `/notify [mentions|all|none]`: `None` shows the setting.
    Notify(Option<When>),
    /// `/reconnect`.
    Reconnect,
    /// `/trust [FINGERPRINT]`.
    Trust(Option<String>),
    /// `/quit [REASON]`.
    Quit(Option<String>),
    /// `/help`.
    Help,
    /// Nothing to do (blank line).
    Nothing,
}

/// Parses a submitted line. `//text` sends `/text` literally.
///
/// # Errors
/// A sentence for an unknown command or missing/bad arguments.
pub(crate) fn parse(line: &str) -> Result<Command, String> {
    if line.trim().is_empty() {
        return Ok(Command::Nothing);
    }
    if let Some(rest) = line.strip_prefix("//") {
        return Ok(Command::Say(emojify(&format!("/{rest}"))));
    }
    let Some(rest) = line.strip_prefix('/') else {
        return Ok(Command::Say(emojify(line)));
    };
    let (name, args) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let args = args.trim();
    let one = |noun: &str| -> Result<String, String> {
        match split_args(args)?.as_slice() {
            [one] => Ok(one.clone()),
            [] => Err(format!("/{name} needs a {noun}")),
            _ => Err(format!("/{name} takes one {noun}")),
        }
    };
    let rest = || (!args.is_empty()).then(|| args.to_owned());
    match name {
        "join" | "j" => one("room name").map(Command::Join),
        "leave" | "part" => {
            if args.is_empty() {
                Ok(Command::Leave(None))
            } else {
                one("room name").map(|r| Command::Leave(Some(r)))
            }
        }
        "create" => one("room name").map(Command::Create),
        "rooms" | "list" => Ok(Command::Rooms),
        "dm" | "msg" | "query" => {
            let users = split_args(args)?;
            if users.is_empty() {
                return Err(format!("/{name} needs one or more user names"));
            }
            Ok(Command::Dm(users))
        }
        "invite" => {
            let users = split_args(args)?;
            if users.is_empty() {
                return Err("/invite needs one or more user names".to_owned());
            }
            Ok(Command::Invite(users))
        }
        "kick" | "ban" => {
            let (user, reason) = args.split_once(char::is_whitespace).unwrap_or((args, ""));
            if user.is_empty() {
                return Err(format!("/{name} needs a user name"));
            }
            let user = user.to_owned();
            let reason = (!reason.trim().is_empty()).then(|| reason.trim().to_owned());
            Ok(if name == "kick" {
                Command::Kick { user, reason }
            } else {
                Command::Ban { user, reason }
            })
        }
        "topic" if args.is_empty() => Ok(Command::Topic(None)),
        "topic" if args == "-" => Ok(Command::Topic(Some(String::new()))),
        "topic" => Ok(Command::Topic(Some(emojify(args)))),
        "private" => match args {
            "" | "on" => Ok(Command::Private(true)),
            "off" => Ok(Command::Private(false)),
            other => Err(format!("/private takes on or off, not {other:?}")),
        },
        "who" | "names" => Ok(Command::Who),
        "search" | "find" if args.is_empty() => Err(format!("/{name} needs some words")),
        "search" | "find" => Ok(Command::Search(args.to_owned())),
        "send" | "upload" => {
            let files = split_args(args)?;
            if files.is_empty() {
                return Err("/send needs one or more files".to_owned());
            }
            Ok(Command::Send(files.into_iter().map(|f| expand_home(&f)).collect()))
        }
        "get" | "download" => {
            let ids = split_args(args)?;
            if ids.is_empty() {
                return Err(format!("/{name} needs one or more file ids"));
            }
            ids.iter()
                .map(|id| {
                    id.trim_start_matches('#')
                        .parse()
                        .map_err(|_| format!("/{name}: {id:?} is not a file id"))
                })
                .collect::<Result<Vec<u64>, String>>()
                .map(Command::Get)
        }
        "transfers" => Ok(Command::Transfers),
        "reconnect" => Ok(Command::Reconnect),
        "notify" if args.is_empty() => Ok(Command::Notify(None)),
        "notify" => When::parse(args)
            .map(|w| Command::Notify(Some(w)))
            .ok_or_else(|| format!("/notify takes mentions, all or none, not {args:?}")),
        "trust" => match split_args(args)?.as_slice() {
            [] => Ok(Command::Trust(None)),
            [fp] => Ok(Command::Trust(Some(fp.clone()))),
            _ => Err("/trust takes one fingerprint".to_owned()),
        },
        "me" if !args.is_empty() => Ok(Command::Me(emojify(args))),
        "me" => Err("/me needs some text".to_owned()),
        "quit" | "exit" | "q" => Ok(Command::Quit(rest())),
        "help" | "h" | "?" => Ok(Command::Help),
        other => Err(format!("unknown command /{other} (try /help; //{other} sends it as text)")),
    }
}

/// Splits arguments at spaces, honouring `"double"` and `'single'` quotes
/// and backslash escapes.
///
/// # Errors
/// An unterminated quote.
pub(crate) fn split_args(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"') | None, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
                in_word = true;
            }
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err("unterminated quote".to_owned());
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

fn expand_home(p: &str) -> PathBuf {
    match (p.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => Path::new(&home).join(rest),
        _ => PathBuf::from(p),
    }
}

/// Replaces `:shortcode:` (GitHub names, e.g. `:tada:`) by the emoji;
/// unknown codes stay as typed.
pub(crate) fn emojify(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(':') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let code_end =
            after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '+' || c == '-'));
        match code_end {
            Some(end) if end > 0 && after[end..].starts_with(':') => {
                let code = &after[..end];
                if let Some(e) = emojis::get_by_shortcode(code) {
                    out.push_str(e.as_str());
                    rest = &after[end + 1..];
                } else {
                    out.push(':');
                    rest = after;
                }
            }
            _ => {
                out.push(':');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// What completion may draw on.
pub(crate) struct CompletionCtx<'a> {
    /// Room names.
    pub(crate) rooms: &'a [String],
    /// Members of the current room.
    pub(crate) members: &'a [String],
    /// Every user the client has seen (members of any room, DM partners).
    pub(crate) users: &'a [String],
    /// Lists a directory: (name, is_dir) pairs.
    pub(crate) list_dir: &'a dyn Fn(&Path) -> Vec<(String, bool)>,
}

/// The result of a Tab press.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Completion {
    /// The new input line.
    pub(crate) line: String,
    /// The candidates when there was more than one.
    pub(crate) candidates: Vec<String>,
}

/// Completes the last word of `line` (the cursor is at its end): command
/// names, room names after `/join` `/leave`, file paths after `/send`
/// (quoted when they contain spaces), member names elsewhere. `None` when
/// nothing matches.
pub(crate) fn complete(line: &str, ctx: &CompletionCtx<'_>) -> Option<Completion> {
    if line.starts_with('/') && !line.contains(char::is_whitespace) {
        let names: Vec<String> = COMMANDS.iter().map(|(c, _)| (*c).to_owned()).collect();
        return finish("", line, &names, " ");
    }
    let (cmd, _) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    match cmd {
        "/send" | "/upload" => complete_path(line, ctx),
        "/join" | "/leave" => {
            let (head, word) = last_word(line);
            finish(head, word, ctx.rooms, " ")
        }
        "/dm" | "/msg" | "/query" | "/invite" => {
            let (head, word) = last_word(line);
            finish(head, word, ctx.users, " ")
        }
        "/kick" | "/ban" if !line[cmd.len()..].trim_start().contains(char::is_whitespace) => {
            let (head, word) = last_word(line);
            finish(head, word, ctx.members, " ")
        }
        _ => {
            let (head, word) = last_word(line);
            let (at, word) = match word.strip_prefix('@') {
                Some(w) => ("@", w),
                None => ("", word),
            };
            if word.is_empty() {
                return None;
            }
            let suffix = if head.is_empty() && at.is_empty() { ": " } else { " " };
            let head = format!("{head}{at}");
            finish(&head, word, ctx.members, suffix)
        }
    }
}

fn last_word(line: &str) -> (&str, &str) {
    match line.rfind(char::is_whitespace) {
        Some(i) => line.split_at(i + 1),
        None => ("", line),
    }
}

fn finish(head: &str, word: &str, names: &[String], suffix: &str) -> Option<Completion> {
    let matches: Vec<&String> = names.iter().filter(|n| n.starts_with(word)).collect();
    match matches.as_slice() {
        [] => None,
        [one] => Some(Completion { line: format!("{head}{one}{suffix}"), candidates: Vec::new() }),
        many => {
            let prefix = common_prefix(many.iter().map(|s| s.as_str()));
            Some(Completion {
                line: format!("{head}{prefix}"),
                candidates: many.iter().map(|s| (*s).clone()).collect(),
            })
        }
    }
}

fn common_prefix<'a>(mut it: impl Iterator<Item = &'a str>) -> String {
    let Some(first) = it.next() else { return String::new() };
    let mut len = first.len();
    for s in it {
        len = first
            .char_indices()
            .zip(s.chars())
            .take_while(|((_, a), b)| a == b)
            .map(|((i, a), _)| i + a.len_utf8())
            .last()
            .unwrap_or(0)
            .min(len);
    }
    first[..len].to_owned()
}

/// Completes the path being typed after `/send`, which may have started
/// with a quote.
fn complete_path(line: &str, ctx: &CompletionCtx<'_>) -> Option<Completion> {
    let start = path_word_start(line);
    let head = &line[..start];
    let raw = &line[start..];
    let typed = split_args(raw)
        .ok()
        .and_then(|v| v.into_iter().next())
        .unwrap_or_else(|| raw.trim_start_matches(['"', '\'']).to_owned());
    let (dir_part, file_part) = match typed.rfind('/') {
        Some(i) => typed.split_at(i + 1),
        None => ("", typed.as_str()),
    };
    let dir = if dir_part.is_empty() { PathBuf::from(".") } else { expand_home(dir_part) };
    let mut entries: Vec<(String, bool)> = (ctx.list_dir)(&dir)
        .into_iter()
        .filter(|(n, _)| {
            n.starts_with(file_part) && (file_part.starts_with('.') || !n.starts_with('.'))
        })
        .collect();
    entries.sort();
    let quote = |p: &str, closed: bool| -> String {
        if p.contains([' ', '"', '\'', '\\']) {
            let esc = p.replace('\\', "\\\\").replace('"', "\\\"");
            if closed { format!("\"{esc}\"") } else { format!("\"{esc}") }
        } else {
            p.to_owned()
        }
    };
    match entries.as_slice() {
        [] => None,
        [(name, is_dir)] => {
            let full = format!("{dir_part}{name}{}", if *is_dir { "/" } else { "" });
            let done =
                if *is_dir { quote(&full, false) } else { format!("{} ", quote(&full, true)) };
            Some(Completion { line: format!("{head}{done}"), candidates: Vec::new() })
        }
        many => {
            let prefix = common_prefix(many.iter().map(|(n, _)| n.as_str()));
            let full = format!("{dir_part}{prefix}");
            Some(Completion {
                line: format!("{head}{}", quote(&full, false)),
                candidates: many
                    .iter()
                    .map(|(n, d)| if *d { format!("{n}/") } else { n.clone() })
                    .collect(),
            })
        }
    }
}

/// Byte index where the last (possibly quoted, unfinished) argument starts.
fn path_word_start(line: &str) -> usize {
    let mut start = line.len();
    let mut quote: Option<char> = None;
    let mut in_word = false;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match (quote, c) {
            (_, '\\') if quote != Some('\'') => escaped = true,
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => {
                if !in_word {
                    start = i;
                    in_word = true;
                }
                quote = Some(c);
            }
            (None, c) if c.is_whitespace() => {
                in_word = false;
                start = line.len();
            }
            (None, _) => {
                if !in_word {
                    start = i;
                    in_word = true;
                }
            }
        }
    }
    start
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_and_escaped_slash() {
        assert_eq!(parse("hello"), Ok(Command::Say("hello".into())));
        assert_eq!(parse("//etc/passwd"), Ok(Command::Say("/etc/passwd".into())));
        assert_eq!(parse("   "), Ok(Command::Nothing));
    }

    #[test]
    fn commands_parse() {
        assert_eq!(parse("/join dev"), Ok(Command::Join("dev".into())));
        assert_eq!(parse("/leave"), Ok(Command::Leave(None)));
        assert_eq!(parse("/leave dev"), Ok(Command::Leave(Some("dev".into()))));
        assert_eq!(parse("/create ops"), Ok(Command::Create("ops".into())));
        assert_eq!(parse("/rooms"), Ok(Command::Rooms));
        assert_eq!(parse("/who"), Ok(Command::Who));
        assert_eq!(parse("/get 42"), Ok(Command::Get(vec![42])));
        assert_eq!(parse("/get 42 #43 44"), Ok(Command::Get(vec![42, 43, 44])));
        assert_eq!(parse("/quit gone fishing"), Ok(Command::Quit(Some("gone fishing".into()))));
        assert_eq!(parse("/reconnect"), Ok(Command::Reconnect));
        assert_eq!(parse("/trust"), Ok(Command::Trust(None)));
        assert_eq!(parse("/trust 0a1b2c3d"), Ok(Command::Trust(Some("0a1b2c3d".into()))));
        assert_eq!(parse("/transfers"), Ok(Command::Transfers));
        assert_eq!(parse("/notify"), Ok(Command::Notify(None)));
        assert_eq!(parse("/notify all"), Ok(Command::Notify(Some(When::All))));
        assert!(parse("/notify loud").is_err());
        assert_eq!(parse("/me waves :wave:"), Ok(Command::Me("waves 👋".into())));
        assert_eq!(parse("/quit"), Ok(Command::Quit(None)));
        assert_eq!(parse("/help"), Ok(Command::Help));
        assert_eq!(
            parse(r#"/send a.txt "my file.pdf" b\ c"#),
            Ok(Command::Send(vec!["a.txt".into(), "my file.pdf".into(), "b c".into()]))
        );
    }

    #[test]
    fn command_errors_are_sentences() {
        assert_eq!(parse("/join"), Err("/join needs a room name".into()));
        assert_eq!(parse("/join a b"), Err("/join takes one room name".into()));
        assert_eq!(parse("/create"), Err("/create needs a room name".into()));
        assert_eq!(parse("/get"), Err("/get needs one or more file ids".into()));
        assert_eq!(parse("/get 1 x"), Err("/get: \"x\" is not a file id".into()));
        assert!(parse("/frob").expect_err("an error").starts_with("unknown command /frob"));
        assert_eq!(parse("/send"), Err("/send needs one or more files".into()));
        assert_eq!(parse("/send \"oops"), Err("unterminated quote".into()));
    }

    #[test]
    fn shortcodes() {
        assert_eq!(emojify("ship it :rocket: :tada:"), "ship it 🚀 🎉");
        assert_eq!(emojify("time 10:30:00 :nope_not_real:"), "time 10:30:00 :nope_not_real:");
        assert_eq!(emojify(":+1:"), "👍");
    }

    fn ctx_with<'a>(
        rooms: &'a [String],
        members: &'a [String],
        fs: &'a dyn Fn(&Path) -> Vec<(String, bool)>,
    ) -> CompletionCtx<'a> {
        CompletionCtx { rooms, members, users: members, list_dir: fs }
    }

    fn no_fs(_: &Path) -> Vec<(String, bool)> {
        Vec::new()
    }

    #[test]
    fn completes_commands_rooms_and_members() {
        let rooms = vec!["general".to_owned(), "dev".to_owned(), "design".to_owned()];
        let members = vec!["alice".to_owned(), "bob".to_owned()];
        let ctx = ctx_with(&rooms, &members, &no_fs);
        assert_eq!(complete("/jo", &ctx).map(|c| c.line), Some("/join ".into()));
        assert_eq!(complete("/join ge", &ctx).map(|c| c.line), Some("/join general ".into()));
        let c = complete("/join de", &ctx).expect("two candidates");
        assert_eq!(c.line, "/join de");
        assert_eq!(c.candidates, ["dev", "design"]);
        assert_eq!(complete("al", &ctx).map(|c| c.line), Some("alice: ".into()));
        assert_eq!(complete("hi @b", &ctx).map(|c| c.line), Some("hi @bob ".into()));
        assert_eq!(complete("hi zed", &ctx), None);
    }

    #[test]
    fn completes_paths_with_quotes() {
        let fs = |dir: &Path| -> Vec<(String, bool)> {
            if dir == Path::new(".") {
                vec![
                    ("my docs".into(), true),
                    ("notes.txt".into(), false),
                    (".hidden".into(), false),
                ]
            } else if dir == Path::new("my docs/") {
                vec![("big report.pdf".into(), false)]
            } else {
                Vec::new()
            }
        };
        let ctx = ctx_with(&[], &[], &fs);
        assert_eq!(complete("/send no", &ctx).map(|c| c.line), Some("/send notes.txt ".into()));
        assert_eq!(complete("/send my", &ctx).map(|c| c.line), Some("/send \"my docs/".into()));
        assert_eq!(
            complete("/send a.txt \"my docs/bi", &ctx).map(|c| c.line),
            Some("/send a.txt \"my docs/big report.pdf\" ".into())
        );
        let c = complete("/send ", &ctx).expect("candidates");
        assert_eq!(c.candidates, ["my docs/", "notes.txt"]);
    }
}

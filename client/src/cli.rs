//! The scriptable command line: options shared by every mode (and the TUI),
//! the subcommands, and turning options into a [`ClientConfig`].

mod account;
mod commands;
mod print;
mod rooms;
mod search;
mod transfer;

use std::io::BufRead;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{ArgAction, Args, Parser, Subcommand};
use qchat_client::{Auth, Client, ClientConfig, ClientError, Events, Trust};

/// qchat: chat over QUIC. Without a subcommand, starts the terminal UI.
#[derive(Debug, Parser)]
#[command(
    name = "qchat",
    version,
    about = "qchat chat client: terminal UI, or one-shot commands for scripts",
    after_help = "The password comes from QCHAT_PASSWORD or, with --password-stdin, from the \
                  first line of standard input; it is never a flag.\n\
                  The server's certificate is trusted by --fingerprint HEX (printed by \
                  `qchatd serve`), or by the known-hosts file (pinned on first use with \
                  --accept-new).\n\
                  send, tail, history, who and upload join the room first when the user is \
                  not a member yet.\n\
                  ROOM is a room's name, its id (+ and 16 hex digits, shown by `rooms` when \
                  names clash) or, for a direct message, @ and the other users' names \
                  (@bob,carol)."
)]
pub(crate) struct Cli {
    /// Options every command uses.
    #[command(flatten)]
    pub(crate) shared: SharedOpts,
    /// What to do; none starts the terminal UI.
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
}

/// Connection and identity options, shared by the subcommands and the TUI.
#[derive(Debug, Clone, Args)]
pub(crate) struct SharedOpts {
    /// Server address; several nodes of one service as a comma-separated
    /// list (`a:4433,b:4433`), tried in turn when a connection drops.
    /// Each address is pinned on its own in the known-hosts file;
    /// --fingerprint pins one certificate for them all.
    #[arg(long, global = true, env = "QCHAT_SERVER", value_name = "ADDR:PORT[,...]")]
    pub(crate) server: Option<String>,
    /// Tenant (organisation) name.
    #[arg(long, global = true, env = "QCHAT_TENANT", value_name = "T")]
    pub(crate) tenant: Option<String>,
    /// User name.
    #[arg(long, global = true, env = "QCHAT_USER", value_name = "U")]
    pub(crate) user: Option<String>,
    /// Read the password from the first line of standard input (else
    /// QCHAT_PASSWORD is used).
    #[arg(long, global = true)]
    pub(crate) password_stdin: bool,
    /// Trust exactly the server certificate with this SHA-256 (64 hex digits).
    #[arg(long, global = true, value_name = "HEX", conflicts_with = "accept_new")]
    pub(crate) fingerprint: Option<String>,
    /// Pin an unknown server's certificate in the known-hosts file (trust on
    /// first use). A changed certificate is still refused.
    #[arg(long, global = true)]
    pub(crate) accept_new: bool,
    /// Known-hosts file [default: the platform data dir, e.g.
    /// ~/.local/share/qchat/known_hosts].
    #[arg(long, global = true, env = "QCHAT_KNOWN_HOSTS", value_name = "FILE")]
    pub(crate) known_hosts: Option<PathBuf>,
    /// Create the account (the tenant must allow self-registration) instead
    /// of logging in.
    #[arg(long, global = true)]
    pub(crate) register: bool,
    /// Log to stderr (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub(crate) verbose: u8,
    /// The terminal UI's config file [default: the platform config dir,
    /// e.g. ~/.config/qchat/config.toml]; `qchat config defaults` prints one.
    #[arg(long, global = true, env = "QCHAT_TUI_CONFIG", value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// The password once read (standard input can be read only once).
    #[arg(skip)]
    pub(crate) password_read: Remembered,
}

/// A password kept after it was read; never printed.
#[derive(Clone, Default)]
pub(crate) struct Remembered(std::sync::OnceLock<String>);

impl Remembered {
    fn get(&self) -> Option<&String> {
        self.0.get()
    }
}

impl std::fmt::Debug for Remembered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The one-shot commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Send one text message; prints its seq.
    Send {
        /// Room (joined first if needed).
        room: String,
        /// Message text.
        text: String,
    },
    /// Print a room's latest messages, oldest first.
    History {
        /// Room (joined first if needed).
        room: String,
        /// How many messages.
        #[arg(long, default_value_t = 50, value_name = "N")]
        limit: u32,
        /// One message JSON object per line (the protocol's message object).
        #[arg(long)]
        json: bool,
    },
    /// List a room's members: `name online|offline [DISPLAY NAME]` per line.
    Who {
        /// Room (joined first if needed).
        room: String,
    },
    /// List the rooms you can see, one per line:
    /// `NAME joined|invited|- UNREAD @MENTIONS KIND ROLE|- [TOPIC]`. NAME is
    /// what to give other commands: a room's name (a private room's id when
    /// two listed rooms share its name), `@USER,...` for a direct message;
    /// UNREAD counts the messages of others after your read marker,
    /// MENTIONS those of them that mention you (`@you`, `@room`), both
    /// stopping at 1000; KIND is public, private or dm.
    Rooms {
        /// One room JSON object per line (the protocol's room object).
        #[arg(long)]
        json: bool,
    },
    /// Print a room's new messages as they arrive; keeps going across
    /// reconnects until interrupted.
    Tail {
        /// Room (joined first if needed).
        room: String,
        /// One message JSON object per line.
        #[arg(long)]
        json: bool,
        /// Exit successfully after this many messages.
        #[arg(long, value_name = "N")]
        count: Option<u64>,
    },
    /// Join a room (no-op if already a member).
    Join {
        /// Room name.
        room: String,
    },
    /// Create a room (you are its owner) and join it.
    Create {
        /// Room name.
        room: String,
        /// A private room: others join only when invited.
        #[arg(long)]
        private: bool,
    },
    /// Send a direct message to one or more users (2 to 16 people with
    /// you); the same people always share the same conversation. Prints the
    /// conversation's name (`@USER,...`, usable as ROOM elsewhere) and the
    /// message's seq.
    Dm {
        /// The other users, then the message text.
        #[arg(required = true, num_args = 2.., value_name = "USER... TEXT")]
        args: Vec<String>,
    },
    /// Invite users into a room (owners and moderators).
    Invite {
        /// Room.
        room: String,
        /// Users to invite.
        #[arg(required = true, value_name = "USER")]
        users: Vec<String>,
    },
    /// Remove a member from a room (owners and moderators); they may rejoin
    /// a public room.
    Kick {
        /// Room.
        room: String,
        /// The member.
        // Not `user`: that is the global --user option's id.
        #[arg(value_name = "USER")]
        target: String,
        /// Why, shown in the room.
        #[arg(long, value_name = "R")]
        reason: Option<String>,
    },
    /// Ban a user from a room until unbanned (owners and moderators).
    Ban {
        /// Room.
        room: String,
        /// The user.
        // Not `user`: that is the global --user option's id.
        #[arg(value_name = "USER")]
        target: String,
        /// Why, shown in the room.
        #[arg(long, value_name = "R")]
        reason: Option<String>,
    },
    /// Lift a ban (owners and moderators).
    Unban {
        /// Room.
        room: String,
        /// The user.
        // Not `user`: that is the global --user option's id.
        #[arg(value_name = "USER")]
        target: String,
    },
    /// Give a member a role (owners); `owner` hands the room over.
    Role {
        /// Room.
        room: String,
        /// The member.
        // Not `user`: that is the global --user option's id.
        #[arg(value_name = "USER")]
        target: String,
        /// The new role.
        role: RoleArg,
    },
    /// Set a room's topic (owners); an empty TEXT clears it.
    Topic {
        /// Room.
        room: String,
        /// The topic.
        text: String,
    },
    /// Rename a room (owners).
    Rename {
        /// Room.
        room: String,
        /// Its new name.
        name: String,
    },
    /// Make a room private (`on`) or public (`off`) (owners).
    Private {
        /// Room.
        room: String,
        /// `on` or `off`.
        #[arg(value_parser = ["on", "off"])]
        value: String,
    },
    /// Archive a room: read-only, history kept (owners); `--undo` reopens it.
    Archive {
        /// Room.
        room: String,
        /// Make it writable again.
        #[arg(long)]
        undo: bool,
    },
    /// Delete message SEQ of a room (your own; moderators and owners:
    /// anyone's): a tombstone stays, its text is gone. Without SEQ, delete
    /// the room itself with its messages and the files no other room
    /// offers (owners), which asks for --yes.
    Delete {
        /// Room.
        room: String,
        /// The message to delete (as `history` shows it, `#SEQ`).
        seq: Option<u64>,
        /// Really delete the room.
        #[arg(long)]
        yes: bool,
    },
    /// Replace the text of your message SEQ; prints the seq of the edit.
    Edit {
        /// Room.
        room: String,
        /// The message (`#SEQ` in history).
        seq: u64,
        /// Its new text.
        text: String,
    },
    /// React to message SEQ with EMOJI (one of each per user); --remove
    /// takes it back.
    React {
        /// Room.
        room: String,
        /// The message.
        seq: u64,
        /// The reaction: an emoji or a short word without spaces.
        emoji: String,
        /// Take your reaction back.
        #[arg(long)]
        remove: bool,
    },
    /// Reply to message SEQ; prints the reply's seq.
    Reply {
        /// Room (joined first if needed).
        room: String,
        /// The message replied to.
        seq: u64,
        /// Message text.
        text: String,
    },
    /// Print message SEQ and all its replies, oldest first.
    Thread {
        /// Room.
        room: String,
        /// The message.
        seq: u64,
        /// One message JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Upload files to a room, all in parallel; each becomes a file message.
    /// Progress per file on a terminal, else one line per file:
    /// `uploaded NAME file_id=ID seq=SEQ bytes=N sent=M` (sent = bytes
    /// transmitted; 0 when the server already had the content). Exits
    /// non-zero if any upload failed. Interrupted uploads resume when run
    /// again.
    Upload {
        /// Room (joined first if needed).
        room: String,
        /// Files to upload.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// The terminal UI's config file: print the defaults, where it is read
    /// from, or check it.
    Config {
        /// What to do.
        #[command(subcommand)]
        what: ConfigCmd,
    },
    /// Download files by id, all in parallel; verify each one's BLAKE3 and
    /// print the path written, one line per file as it finishes. Never
    /// replaces an existing file (adds " (1)" etc.); exits non-zero if any
    /// download failed; an interrupted download resumes when run again.
    Download {
        /// File ids (shown as `[file ID]` in history and tail).
        #[arg(required = true, value_name = "FILE_ID")]
        file_ids: Vec<u64>,
        /// Directory to write into.
        #[arg(long, value_name = "DIR", default_value = ".")]
        out: PathBuf,
    },
    /// Search the messages of every room you can read, newest first: one
    /// line per hit, `ROOM #SEQ SENDER TIME: EXCERPT`, the words found in
    /// brackets. All words must occur; `word*` matches words it begins.
    /// DATE: YYYY-MM-DD (UTC), 2026-12-05T09:30:00Z, or ms since the epoch.
    Search {
        /// Words to find.
        query: String,
        /// Only this room.
        #[arg(long, value_name = "R")]
        room: Option<String>,
        /// Only messages from this user.
        #[arg(long, value_name = "U")]
        from: Option<String>,
        /// Only messages from this time on.
        #[arg(long, value_name = "DATE")]
        after: Option<String>,
        /// Only messages before this time.
        #[arg(long, value_name = "DATE")]
        before: Option<String>,
        /// Only file messages (their file names are searched).
        #[arg(long)]
        has_file: bool,
        /// How many hits at most.
        #[arg(long, default_value_t = 20, value_name = "N")]
        limit: u32,
        /// One hit JSON object per line (the protocol's hit object).
        #[arg(long)]
        json: bool,
    },
    /// Show a user's display name (yours without USER), or set or clear
    /// yours: prints `USER [DISPLAY NAME]`.
    Profile {
        /// Whose profile.
        #[arg(conflicts_with_all = ["set", "clear"])]
        user: Option<String>,
        /// Set your display name.
        #[arg(long, value_name = "NAME", conflicts_with = "clear")]
        set: Option<String>,
        /// Clear your display name.
        #[arg(long)]
        clear: bool,
    },
    /// Change your password (the one you log in with now is the old one).
    /// The new one comes from QCHAT_NEW_PASSWORD or, with --password-stdin,
    /// the second line of standard input. Your other sessions are revoked.
    Passwd,
    /// List your sessions, `ID current|connected|- CLIENT ADDRESS
    /// LAST_SEEN` per line, or revoke one.
    Sessions {
        /// Revoke the session with this id.
        #[arg(long, value_name = "ID")]
        revoke: Option<String>,
    },
}

/// `qchat config ...`.
#[derive(Debug, Clone, Copy, Subcommand)]
pub(crate) enum ConfigCmd {
    /// Print the config file with every setting at its default, documented
    /// (`qchat config defaults > ~/.config/qchat/config.toml` starts one).
    Defaults,
    /// Print the path the config file is read from.
    Path,
    /// Check the config file; exit non-zero naming the bad setting.
    Check,
}

/// A room role on the command line.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum RoleArg {
    /// The room's owner (one per room).
    Owner,
    /// Invites, kicks, bans.
    Moderator,
    /// Reads and posts.
    Member,
}

impl From<RoleArg> for qchat_client::Role {
    fn from(r: RoleArg) -> Self {
        match r {
            RoleArg::Owner => Self::Owner,
            RoleArg::Moderator => Self::Moderator,
            RoleArg::Member => Self::Member,
        }
    }
}

/// Runs the parsed command line.
///
/// # Errors
/// Whatever stopped the command, as one sentence.
pub(crate) async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        None => crate::tui::run(&cli.shared).await,
        Some(Command::Config { what }) => config(&cli.shared, what),
        Some(command) => commands::run(&cli.shared, command).await,
    }
}

/// Joins `room` unless the user already is a member (join is idempotent on
/// the server, but skipping it spares the room a system message).
async fn join_if_needed(client: &Client, room: &str) -> anyhow::Result<()> {
    joined(client, room).await.map(drop)
}

/// The room `room` names (by name, id or a DM's `@` alias), joined first
/// if the user is not a member yet.
async fn joined(client: &Client, room: &str) -> anyhow::Result<qchat_client::RoomInfo> {
    let rooms = client.rooms().await.context("listing rooms")?;
    let mine: Vec<&qchat_client::RoomInfo> = rooms
        .iter()
        .filter(|r| r.joined && (r.name == room || r.key() == room || r.display() == room))
        .collect();
    if let [only] = mine.as_slice() {
        return Ok((*only).clone());
    }
    // None, or several sharing a name: the server resolves it (and says
    // which ids clash).
    client.join_room(room).await.with_context(|| format!("joining {room}"))
}

/// `qchat config ...`: nothing to connect to.
fn config(opts: &SharedOpts, what: ConfigCmd) -> anyhow::Result<()> {
    use qchat_client::tui;
    let path = opts.config.clone().or_else(tui::default_config_path);
    match what {
        ConfigCmd::Defaults => print!("{}", tui::default_config()),
        ConfigCmd::Path => match path {
            Some(p) => println!("{}", p.display()),
            None => bail!("no home directory for the config file; pass --config FILE"),
        },
        ConfigCmd::Check => match tui::check_config(path.as_deref())? {
            Some(p) => println!("{}: ok", p.display()),
            None => println!("no config file; the defaults apply (qchat config defaults)"),
        },
    }
    Ok(())
}

impl SharedOpts {
    /// The client configuration these options describe, reading the
    /// password from the environment or standard input.
    ///
    /// # Errors
    /// A missing server, tenant, user, password or known-hosts location.
    pub(crate) fn client_config(&self) -> anyhow::Result<ClientConfig> {
        let server =
            required(&self.server, "no server: pass --server ADDR:PORT or set QCHAT_SERVER")?;
        let tenant = required(&self.tenant, "no tenant: pass --tenant T or set QCHAT_TENANT")?;
        let user = required(&self.user, "no user: pass --user U or set QCHAT_USER")?;
        let password = self.password()?;
        let mut cfg =
            ClientConfig::new(server, tenant, user, Auth::Password(password), self.trust()?);
        cfg.register = self.register;
        Ok(cfg)
    }

    /// How the server certificate is to be trusted.
    ///
    /// # Errors
    /// When no known-hosts location can be found and no fingerprint is given.
    pub(crate) fn trust(&self) -> anyhow::Result<Trust> {
        if let Some(fp) = &self.fingerprint {
            return Ok(Trust::Fingerprint(fp.clone()));
        }
        let path = match &self.known_hosts {
            Some(path) => path.clone(),
            None => qchat_client::default_known_hosts_path().context(
                "no home directory for the known-hosts file; pass --known-hosts FILE or --fingerprint HEX",
            )?,
        };
        Ok(Trust::KnownHosts { path, accept_new: self.accept_new })
    }

    /// The password this command logs in with (`qchat passwd`'s old one).
    ///
    /// # Errors
    /// No password given.
    pub(crate) fn password_used(&self) -> anyhow::Result<String> {
        if let Some(p) = self.password_read.get() {
            return Ok(p.clone());
        }
        self.password()
    }

    fn password(&self) -> anyhow::Result<String> {
        if let Some(p) = self.password_read.get() {
            return Ok(p.clone());
        }
        if self.password_stdin {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("reading the password from stdin")?;
            let password = line.trim_end_matches(['\n', '\r']).to_owned();
            if password.is_empty() {
                bail!("no password on standard input");
            }
            return Ok(self.password_read.0.get_or_init(|| password).clone());
        }
        match std::env::var("QCHAT_PASSWORD") {
            Ok(p) if !p.is_empty() => Ok(p),
            _ => bail!("no password: set QCHAT_PASSWORD or pass --password-stdin"),
        }
    }

    /// Connects and logs in, turning trust failures into instructions.
    ///
    /// # Errors
    /// Configuration, trust, network or log-in failures, as one sentence.
    pub(crate) async fn connect(&self) -> anyhow::Result<(Client, Events)> {
        let cfg = self.client_config()?;
        Client::connect(cfg.clone()).await.map_err(|e| explain(e, &cfg))
    }
}

fn required(value: &Option<String>, missing: &'static str) -> anyhow::Result<String> {
    match value {
        Some(v) if !v.is_empty() => Ok(v.clone()),
        _ => bail!(missing),
    }
}

/// Words a person can act on for the errors that need a decision.
pub(crate) fn explain(err: ClientError, cfg: &ClientConfig) -> anyhow::Error {
    match err {
        ClientError::UnknownHost { server, fingerprint } => anyhow::anyhow!(
            "unknown server certificate sha256 {fingerprint}{}; check it with the operator, \
             then pass --fingerprint {fingerprint} or --accept-new",
            at_one_of(cfg, &server)
        ),
        ClientError::HostChanged { server, expected, got } => {
            let file = match &cfg.trust {
                Trust::KnownHosts { path, .. } => format!(" in {}", path.display()),
                _ => String::new(),
            };
            anyhow::anyhow!(
                "server certificate changed: {} is pinned to sha256 {expected}{file} but \
                 presented {got}; refusing to connect (if the operator replaced the \
                 certificate, remove the old pin)",
                server
            )
        }
        other => anyhow::Error::new(other),
    }
}

/// ` at ADDR` when the configuration lists several addresses, so that the
/// message names the one that refused.
fn at_one_of(cfg: &ClientConfig, server: &str) -> String {
    if cfg.servers().len() > 1 { format!(" at {server}") } else { String::new() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_options_after_subcommand() {
        let cli = Cli::try_parse_from([
            "qchat",
            "send",
            "general",
            "hi",
            "--server",
            "h:1",
            "--tenant",
            "t",
            "--user",
            "u",
            "--accept-new",
        ])
        .expect("parses");
        assert_eq!(cli.shared.server.as_deref(), Some("h:1"));
        assert!(cli.shared.accept_new);
        assert!(matches!(cli.command, Some(Command::Send { .. })));
    }

    #[test]
    fn download_takes_several_ids_and_at_least_one() {
        let cli =
            Cli::try_parse_from(["qchat", "download", "3", "4", "--out", "d"]).expect("parses");
        match cli.command {
            Some(Command::Download { file_ids, out }) => {
                assert_eq!(file_ids, vec![3, 4]);
                assert_eq!(out, PathBuf::from("d"));
            }
            other => panic!("parsed as {other:?}"),
        }
        assert!(Cli::try_parse_from(["qchat", "download"]).is_err());
    }

    #[test]
    fn dm_takes_users_then_the_text() {
        let cli = Cli::try_parse_from(["qchat", "dm", "bob", "carol", "hi there"]).expect("parses");
        match cli.command {
            Some(Command::Dm { args }) => assert_eq!(args, ["bob", "carol", "hi there"]),
            other => panic!("{other:?}"),
        }
        assert!(Cli::try_parse_from(["qchat", "dm", "hi"]).is_err(), "a user and a text");
        let role = Cli::try_parse_from(["qchat", "--user", "ann", "role", "r", "bob", "moderator"])
            .expect("role");
        assert_eq!(role.shared.user.as_deref(), Some("ann"), "the acting user stays ann");
        assert!(matches!(
            role.command,
            Some(Command::Role { role: RoleArg::Moderator, ref target, .. }) if target == "bob"
        ));
    }

    #[test]
    fn fingerprint_and_accept_new_conflict() {
        let r = Cli::try_parse_from(["qchat", "rooms", "--fingerprint", "ab", "--accept-new"]);
        assert!(r.is_err());
    }

    #[test]
    fn unknown_host_message_names_the_fingerprint_and_the_flags() {
        let cfg =
            ClientConfig::new("h:1", "t", "u", Auth::Password("p".into()), Trust::SystemRoots);
        let unknown =
            || ClientError::UnknownHost { server: "h:1".into(), fingerprint: "abc".into() };
        let msg = explain(unknown(), &cfg).to_string();
        assert_eq!(
            msg,
            "unknown server certificate sha256 abc; check it with the operator, then pass \
             --fingerprint abc or --accept-new"
        );
        let mut several = cfg.clone();
        several.server = "h:1,h:2".into();
        let msg = explain(unknown(), &several).to_string();
        assert!(msg.starts_with("unknown server certificate sha256 abc at h:1; "), "{msg}");
    }

    #[test]
    fn several_servers_from_the_environment_style_list() {
        let cli = Cli::try_parse_from(["qchat", "rooms", "--server", "a:1,b:2"]).expect("parses");
        assert_eq!(cli.shared.server.as_deref(), Some("a:1,b:2"));
    }
}

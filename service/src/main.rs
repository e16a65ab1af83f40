//! `qchatd`: parses the command line and hands off to the library.

use std::io::{BufRead as _, Write as _};
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::{Args, Parser, Subcommand};
use qchat_service::config::{LogFormat, Overrides};
use qchat_service::{Config, DatabaseUrl, Reloader, Server, admin, healthcheck};

/// qchat server: multi-tenant chat over QUIC with persistent history.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (SIGTERM/SIGINT: drain and stop; SIGHUP: reload the certificate).
    Serve(Box<ServeArgs>),
    /// Create the database (SQLite in the data directory, or --database-url) and migrate it, then exit.
    Migrate(DataDir),
    /// Copy the SQLite database (of --data-dir, or --database-url sqlite://PATH) into an
    /// empty PostgreSQL database, ids and all; then run qchatd with database_url set to it.
    MigrateTo {
        /// The PostgreSQL database to fill: postgres://USER@HOST:PORT/DB (must be empty).
        to: String,
        #[command(flatten)]
        dir: DataDir,
    },
    /// Manage tenants.
    #[command(subcommand)]
    Tenant(TenantCmd),
    /// Manage users.
    #[command(subcommand)]
    User(UserCmd),
    /// Manage rooms.
    #[command(subcommand)]
    Room(RoomCmd),
    /// Certificate commands.
    #[command(subcommand)]
    Cert(CertCmd),
    /// Copy the database to FILE while the server runs (SQLite VACUUM INTO).
    Backup {
        /// Where to write the copy (must not exist).
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        dir: DataDir,
    },
    /// Exit 0 when the server answers a ping over QUIC, else 1 with a reason.
    Healthcheck(HealthArgs),
}

#[derive(Args)]
struct DataDir {
    /// Data directory (database, generated certificate).
    #[arg(long, env = "QCHAT_DATA_DIR", default_value = "data")]
    data_dir: PathBuf,
    /// Database: sqlite://PATH or postgres://USER@HOST:PORT/DB [default: qchat.db in the data directory].
    #[arg(long, env = "QCHAT_DATABASE_URL", default_value = "")]
    database_url: String,
}

impl DataDir {
    /// The database these options name.
    fn db(&self) -> anyhow::Result<DatabaseUrl> {
        DatabaseUrl::parse(&self.database_url, &self.data_dir)
            .map_err(|e| anyhow::anyhow!("--database-url: {e}"))
    }
}

#[derive(Args)]
struct ServeArgs {
    /// TOML configuration file (overridden by QCHAT_* variables, then flags).
    #[arg(long, env = "QCHAT_CONFIG")]
    config: Option<PathBuf>,
    #[command(flatten)]
    overrides: Overrides,
}

#[derive(Args)]
struct HealthArgs {
    /// Server address to ping.
    #[arg(long, env = "QCHAT_HEALTH_SERVER", default_value = "127.0.0.1:4433")]
    server: SocketAddr,
    /// Seconds to wait for the answer.
    #[arg(long, default_value_t = 5)]
    timeout_secs: u64,
    #[command(flatten)]
    dir: DataDir,
}

#[derive(Args)]
struct Tenant {
    /// Tenant the user or room belongs to.
    #[arg(long)]
    tenant: String,
}

#[derive(Args)]
struct Confirm {
    /// Really delete (there is no undo; `disable` is the reversible way).
    #[arg(long)]
    yes: bool,
}

#[derive(Subcommand)]
enum TenantCmd {
    /// Create a tenant.
    Create {
        /// Tenant name.
        name: String,
        /// Let anyone register an account in this tenant.
        #[arg(long)]
        open_registration: bool,
        #[command(flatten)]
        dir: DataDir,
    },
    /// List tenants.
    List(DataDir),
    /// Refuse log-ins to every user of the tenant and revoke their sessions.
    Disable {
        /// Tenant name.
        name: String,
        #[command(flatten)]
        dir: DataDir,
    },
    /// Undo `disable`.
    Enable {
        /// Tenant name.
        name: String,
        #[command(flatten)]
        dir: DataDir,
    },
    /// Delete a tenant with all its users, rooms and messages.
    Delete {
        /// Tenant name.
        name: String,
        #[command(flatten)]
        confirm: Confirm,
        #[command(flatten)]
        dir: DataDir,
    },
}

#[derive(Subcommand)]
enum UserCmd {
    /// Create a user; the password comes from stdin (--password-stdin) or QCHAT_PASSWORD.
    Create {
        #[command(flatten)]
        tenant: Tenant,
        /// User name.
        name: String,
        /// Read the password from the first line of stdin.
        #[arg(long)]
        password_stdin: bool,
        /// Make the user an admin of the tenant: owner rights in every
        /// public and private room (none in direct messages).
        #[arg(long)]
        admin: bool,
        #[command(flatten)]
        dir: DataDir,
    },
    /// Make a user an admin of their tenant (`on`), or not (`off`).
    SetAdmin {
        #[command(flatten)]
        tenant: Tenant,
        /// User name.
        name: String,
        /// `on` or `off`.
        #[arg(value_parser = ["on", "off"])]
        value: String,
        #[command(flatten)]
        dir: DataDir,
    },
    /// List a tenant's users.
    List {
        #[command(flatten)]
        tenant: Tenant,
        #[command(flatten)]
        dir: DataDir,
    },
    /// Set a new password (--password-stdin or QCHAT_PASSWORD); revokes the user's sessions.
    Passwd {
        #[command(flatten)]
        tenant: Tenant,
        /// User name.
        name: String,
        /// Read the password from the first line of stdin.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        dir: DataDir,
    },
    /// Refuse the user's log-ins and revoke their sessions.
    Disable {
        #[command(flatten)]
        tenant: Tenant,
        /// User name.
        name: String,
        #[command(flatten)]
        dir: DataDir,
    },
    /// Undo `disable`.
    Enable {
        #[command(flatten)]
        tenant: Tenant,
        /// User name.
        name: String,
        #[command(flatten)]
        dir: DataDir,
    },
    /// Delete a user (their messages stay, under their name).
    Delete {
        #[command(flatten)]
        tenant: Tenant,
        /// User name.
        name: String,
        #[command(flatten)]
        confirm: Confirm,
        #[command(flatten)]
        dir: DataDir,
    },
}

#[derive(Subcommand)]
enum RoomCmd {
    /// Create a room; prints its id.
    Create {
        #[command(flatten)]
        tenant: Tenant,
        /// Room name.
        name: String,
        /// A private room: members by invitation only.
        #[arg(long)]
        private: bool,
        /// Its owner and first member (a user of the tenant).
        #[arg(long, value_name = "USER")]
        owner: Option<String>,
        #[command(flatten)]
        dir: DataDir,
    },
    /// List a tenant's rooms.
    List {
        #[command(flatten)]
        tenant: Tenant,
        #[command(flatten)]
        dir: DataDir,
    },
    /// Hide a room: it is not listed and cannot be joined, read or written.
    Disable {
        #[command(flatten)]
        tenant: Tenant,
        /// Room: its name, or its id (`+` and hex, shown by `room list`).
        name: String,
        #[command(flatten)]
        dir: DataDir,
    },
    /// Undo `disable`.
    Enable {
        #[command(flatten)]
        tenant: Tenant,
        /// Room: its name, or its id (`+` and hex, shown by `room list`).
        name: String,
        #[command(flatten)]
        dir: DataDir,
    },
    /// Delete a room with its messages.
    Delete {
        #[command(flatten)]
        tenant: Tenant,
        /// Room: its name, or its id (`+` and hex, shown by `room list`).
        name: String,
        #[command(flatten)]
        confirm: Confirm,
        #[command(flatten)]
        dir: DataDir,
    },
}

#[derive(Subcommand)]
enum CertCmd {
    /// Print the fingerprint of the certificate `serve` would use with the
    /// same configuration (the configured files, else the generated pair,
    /// generating it if needed).
    Show(Box<ServeArgs>),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("qchatd: starting runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("qchatd: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat, level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    // Admin commands log warnings only: their output is for the operator.
    if !matches!(command, Command::Serve(_)) {
        init_logging(LogFormat::Text, "warn");
    }
    match command {
        Command::Serve(args) => serve(*args).await,
        Command::Migrate(d) => Ok(admin::migrate(&d.db()?).await?),
        Command::MigrateTo { to, dir } => {
            let target = DatabaseUrl::parse(&to, &dir.data_dir).map_err(anyhow::Error::msg)?;
            for c in admin::migrate_to(&dir.db()?, &target).await? {
                println!("{}: {}", c.table, c.rows);
            }
            println!(
                "copied; run qchatd with database_url set to the target and the same data \
                 directory (it keeps the files and the certificate)"
            );
            Ok(())
        }
        Command::Tenant(c) => tenant(c).await,
        Command::User(c) => user(c).await,
        Command::Room(c) => room(c).await,
        Command::Backup { out, dir } => {
            admin::backup(&dir.db()?, &out).await?;
            println!("backup written to {}", out.display());
            Ok(())
        }
        Command::Healthcheck(h) => {
            let timeout = std::time::Duration::from_secs(h.timeout_secs.max(1));
            let fp = healthcheck::check(h.server, &h.dir.data_dir, timeout).await?;
            println!("ok {} certificate sha256 {fp}", h.server);
            Ok(())
        }
        Command::Cert(CertCmd::Show(args)) => {
            let config = Config::load(args.config.as_deref(), &args.overrides)?;
            std::fs::create_dir_all(&config.data_dir)
                .with_context(|| format!("creating {}", config.data_dir.display()))?;
            let files = config.tls_cert.as_deref().zip(config.tls_key.as_deref());
            let id = qchat_service::tls::load_or_generate(
                &config.data_dir,
                files,
                &config.public_names,
            )?;
            println!("certificate sha256 {}", id.fingerprint());
            Ok(())
        }
    }
}

fn yes(c: &Confirm, what: &str) -> anyhow::Result<()> {
    if !c.yes {
        bail!("deleting {what} cannot be undone: add --yes (or use disable)");
    }
    Ok(())
}

async fn tenant(c: TenantCmd) -> anyhow::Result<()> {
    match c {
        TenantCmd::Create { name, open_registration, dir } => {
            admin::create_tenant(&dir.db()?, &name, open_registration).await?;
            println!("created tenant {name}");
        }
        TenantCmd::List(dir) => {
            println!("NAME\tOPEN_REGISTRATION\tDISABLED\tUSERS\tROOMS");
            for t in admin::list_tenants(&dir.db()?).await? {
                let (n, o, d, u, r) = (t.name, t.open_registration, t.disabled, t.users, t.rooms);
                println!("{n}\t{o}\t{d}\t{u}\t{r}");
            }
        }
        TenantCmd::Disable { name, dir } => {
            let revoked = admin::set_tenant_disabled(&dir.db()?, &name, true).await?;
            println!("disabled tenant {name}; revoked {revoked} sessions");
        }
        TenantCmd::Enable { name, dir } => {
            admin::set_tenant_disabled(&dir.db()?, &name, false).await?;
            println!("enabled tenant {name}");
        }
        TenantCmd::Delete { name, confirm, dir } => {
            yes(&confirm, &format!("tenant {name} with all its users, rooms and messages"))?;
            admin::delete_tenant(&dir.db()?, &name).await?;
            println!("deleted tenant {name}");
        }
    }
    Ok(())
}

async fn user(c: UserCmd) -> anyhow::Result<()> {
    match c {
        UserCmd::Create { tenant: Tenant { tenant }, name, password_stdin, admin, dir } => {
            let password = read_password(password_stdin)?;
            admin::create_user(&dir.db()?, &tenant, &name, &password, admin).await?;
            let what = if admin { "admin" } else { "user" };
            println!("created {what} {name} in {tenant}");
        }
        UserCmd::SetAdmin { tenant: Tenant { tenant }, name, value, dir } => {
            let on = value == "on";
            admin::set_admin(&dir.db()?, &tenant, &name, on).await?;
            let what = if on { "an admin" } else { "no longer an admin" };
            println!("{name} is {what} of {tenant}");
        }
        UserCmd::List { tenant: Tenant { tenant }, dir } => {
            println!("NAME\tDISABLED\tSESSIONS\tADMIN");
            for u in admin::list_users(&dir.db()?, &tenant).await? {
                println!("{}\t{}\t{}\t{}", u.name, u.disabled, u.sessions, u.admin);
            }
        }
        UserCmd::Passwd { tenant: Tenant { tenant }, name, password_stdin, dir } => {
            let password = read_password(password_stdin)?;
            let revoked = admin::set_password(&dir.db()?, &tenant, &name, &password).await?;
            println!("password of {name} in {tenant} changed; revoked {revoked} sessions");
        }
        UserCmd::Disable { tenant: Tenant { tenant }, name, dir } => {
            let revoked = admin::set_user_disabled(&dir.db()?, &tenant, &name, true).await?;
            println!("disabled user {name} in {tenant}; revoked {revoked} sessions");
        }
        UserCmd::Enable { tenant: Tenant { tenant }, name, dir } => {
            admin::set_user_disabled(&dir.db()?, &tenant, &name, false).await?;
            println!("enabled user {name} in {tenant}");
        }
        UserCmd::Delete { tenant: Tenant { tenant }, name, confirm, dir } => {
            yes(&confirm, &format!("user {name}"))?;
            admin::delete_user(&dir.db()?, &tenant, &name).await?;
            println!("deleted user {name} in {tenant}");
        }
    }
    Ok(())
}

async fn room(c: RoomCmd) -> anyhow::Result<()> {
    match c {
        RoomCmd::Create { tenant: Tenant { tenant }, name, private, owner, dir } => {
            let id =
                admin::create_room(&dir.db()?, &tenant, &name, private, owner.as_deref()).await?;
            let kind = if private { "private room" } else { "room" };
            println!("created {kind} {name} in {tenant}, id {id}");
        }
        RoomCmd::List { tenant: Tenant { tenant }, dir } => {
            println!("NAME\tDISABLED\tLAST_SEQ\tMEMBERS\tKIND\tID");
            for r in admin::list_rooms(&dir.db()?, &tenant).await? {
                let name = if r.name.is_empty() { "-" } else { r.name.as_str() };
                println!(
                    "{name}\t{}\t{}\t{}\t{}\t{}",
                    r.disabled, r.last_seq, r.members, r.kind, r.id
                );
            }
        }
        RoomCmd::Disable { tenant: Tenant { tenant }, name, dir } => {
            admin::set_room_disabled(&dir.db()?, &tenant, &name, true).await?;
            println!("disabled room {name} in {tenant}");
        }
        RoomCmd::Enable { tenant: Tenant { tenant }, name, dir } => {
            admin::set_room_disabled(&dir.db()?, &tenant, &name, false).await?;
            println!("enabled room {name} in {tenant}");
        }
        RoomCmd::Delete { tenant: Tenant { tenant }, name, confirm, dir } => {
            yes(&confirm, &format!("room {name} with its messages"))?;
            let files = admin::delete_room(&dir.db()?, &tenant, &name).await?;
            println!(
                "deleted room {name} in {tenant}; {files} stored files no other room offers \
                 leave the disk when qchatd next starts"
            );
        }
    }
    Ok(())
}

fn read_password(from_stdin: bool) -> anyhow::Result<String> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).context("reading password from stdin")?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_owned());
    }
    match std::env::var("QCHAT_PASSWORD") {
        Ok(p) => Ok(p),
        Err(_) => bail!("give the password with --password-stdin or QCHAT_PASSWORD"),
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = Config::load(args.config.as_deref(), &args.overrides)?;
    init_logging(config.log_format, &config.log_level);
    let server = Server::bind(config).await?;
    let addr = server.local_addr().context("reading bound address")?;
    // The contract scripts and tests read: exactly these two lines on stdout.
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on {addr}")?;
    writeln!(stdout, "certificate sha256 {}", server.fingerprint())?;
    stdout.flush()?;
    drop(stdout);
    if let Some(metrics) = server.metrics_addr() {
        tracing::info!(%metrics, "serving /metrics and /health");
    }
    tokio::spawn(reload_on_hangup(server.reloader()));
    server.run(shutdown_signal()).await;
    Ok(())
}

/// Reloads the certificate from disk on every SIGHUP.
async fn reload_on_hangup(reloader: Reloader) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hup = match signal(SignalKind::hangup()) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(cause = %e, "cannot listen for SIGHUP; certificate reload is off");
                return;
            }
        };
        while hup.recv().await.is_some() {
            match reloader.reload() {
                Ok(fp) => tracing::info!(fingerprint = %fp, "certificate reloaded"),
                Err(e) => {
                    tracing::error!(cause = %e, "certificate reload failed; keeping the old one")
                }
            }
        }
    }
    #[cfg(not(unix))]
    drop(reloader);
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                tracing::warn!(cause = %e, "cannot listen for SIGTERM");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

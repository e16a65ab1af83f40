//! `qchatd`: parses the command line and hands off to the library.

use std::io::{BufRead as _, Write as _};
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::{Args, Parser, Subcommand};
use qchat_service::{Config, Durability, Server, admin};

/// qchat server: multi-tenant chat over QUIC with persistent history.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, env = "QCHAT_LOG_FORMAT", default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Create the data directory and migrate the database, then exit.
    Migrate(DataDir),
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
}

#[derive(Args)]
struct DataDir {
    /// Data directory (database, generated certificate).
    #[arg(long, env = "QCHAT_DATA_DIR", default_value = "data")]
    data_dir: PathBuf,
}

#[derive(Args)]
struct ServeArgs {
    /// TOML configuration file (overridden by QCHAT_* variables and flags).
    #[arg(long, env = "QCHAT_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory [default: data].
    #[arg(long, env = "QCHAT_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// UDP address to listen on [default: 0.0.0.0:4433].
    #[arg(long, env = "QCHAT_LISTEN")]
    listen: Option<SocketAddr>,
    /// SQLite durability: full (survives power loss) or normal.
    #[arg(long, env = "QCHAT_DURABILITY")]
    durability: Option<DurabilityArg>,
    /// Close connections idle this many seconds [default: 30].
    #[arg(long, env = "QCHAT_IDLE_TIMEOUT_SECS")]
    idle_timeout_secs: Option<u64>,
    /// Seconds a new connection has to log in [default: 10].
    #[arg(long, env = "QCHAT_LOGIN_TIMEOUT_SECS")]
    login_timeout_secs: Option<u64>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum DurabilityArg {
    Full,
    Normal,
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
}

#[derive(Subcommand)]
enum UserCmd {
    /// Create a user; the password comes from stdin (--password-stdin) or QCHAT_PASSWORD.
    Create {
        /// Tenant the user belongs to.
        #[arg(long)]
        tenant: String,
        /// User name.
        name: String,
        /// Read the password from the first line of stdin.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        dir: DataDir,
    },
}

#[derive(Subcommand)]
enum RoomCmd {
    /// Create a room.
    Create {
        /// Tenant the room belongs to.
        #[arg(long)]
        tenant: String,
        /// Room name.
        name: String,
        #[command(flatten)]
        dir: DataDir,
    },
}

#[derive(Subcommand)]
enum CertCmd {
    /// Print the certificate's SHA-256 fingerprint (generating it if needed).
    Show(DataDir),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
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

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => serve(args).await,
        Command::Migrate(d) => Ok(admin::migrate(&d.data_dir).await?),
        Command::Tenant(TenantCmd::Create { name, open_registration, dir }) => {
            admin::create_tenant(&dir.data_dir, &name, open_registration).await?;
            println!("created tenant {name}");
            Ok(())
        }
        Command::User(UserCmd::Create { tenant, name, password_stdin, dir }) => {
            let password = read_password(password_stdin)?;
            admin::create_user(&dir.data_dir, &tenant, &name, &password).await?;
            println!("created user {name} in {tenant}");
            Ok(())
        }
        Command::Room(RoomCmd::Create { tenant, name, dir }) => {
            admin::create_room(&dir.data_dir, &tenant, &name).await?;
            println!("created room {name} in {tenant}");
            Ok(())
        }
        Command::Cert(CertCmd::Show(d)) => {
            std::fs::create_dir_all(&d.data_dir)
                .with_context(|| format!("creating {}", d.data_dir.display()))?;
            let id =
                qchat_service::tls::load_or_generate(&d.data_dir, None, &["localhost".into()])?;
            println!("certificate sha256 {}", id.fingerprint());
            Ok(())
        }
    }
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
    let mut config = match &args.config {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    if let Some(d) = args.data_dir {
        config.data_dir = d;
    }
    if let Some(l) = args.listen {
        config.listen = l;
    }
    if let Some(d) = args.durability {
        config.durability = match d {
            DurabilityArg::Full => Durability::Full,
            DurabilityArg::Normal => Durability::Normal,
        };
    }
    if let Some(s) = args.idle_timeout_secs {
        config.limits.idle_timeout_secs = s;
    }
    if let Some(s) = args.login_timeout_secs {
        config.limits.login_timeout_secs = s;
    }
    let server = Server::bind(config).await?;
    let addr = server.local_addr().context("reading bound address")?;
    // The contract scripts and tests read: exactly these two lines on stdout.
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on {addr}")?;
    writeln!(stdout, "certificate sha256 {}", server.fingerprint())?;
    stdout.flush()?;
    drop(stdout);
    server.run(shutdown_signal()).await;
    Ok(())
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

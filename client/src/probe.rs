//! A look at a server before logging in: one connection, `hello` (naming a
//! tenant when asked, to learn whether it allows self-registration), a
//! polite `quit`, and the connection closed. Nothing is pinned: an unknown
//! certificate fails with [`ClientError::UnknownHost`] unless the trust
//! settings accept it, and even then it is not recorded.

use std::time::Duration;

use qchat_protocol::{CloseCode, Hello, HelloOk, Op, PROTOCOL_VERSION, Quit};
use tokio::sync::mpsc;
use tokio_util::task::TaskTracker;

use crate::config::{Auth, ClientConfig, Trust};
use crate::connection::Connection;
use crate::dial;
use crate::error::ClientError;
use crate::trust;

/// The whole probe's budget: connecting, `hello`, and leaving.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait for the server to close after `quit`.
const QUIT_WAIT: Duration = Duration::from_secs(1);

/// What a server's `hello` reply says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerInfo {
    /// Server name and version, e.g. `qchatd/0.1.0`.
    pub server: String,
    /// Protocol version the server speaks.
    pub version: u32,
    /// Whether the tenant asked about allows `register`; `None` when no
    /// tenant was named or the server predates the field (unknown).
    pub open_registration: Option<bool>,
}

/// Connects to `server` (the first of its addresses that answers, trusting its certificate by `trust`), sends
/// `hello` naming `tenant` when given, and leaves. Use it to decide whether
/// to offer registration before logging in.
///
/// # Errors
/// [`ClientError::UnknownHost`] / [`ClientError::HostChanged`] for trust
/// refusals, [`ClientError::Connect`] when the server cannot be reached in
/// time, [`ClientError::Server`] if the server refuses `hello`.
pub async fn probe(
    server: &str,
    tenant: Option<&str>,
    trust: &Trust,
) -> Result<ServerInfo, ClientError> {
    // No credentials: the configuration only carries the server and trust.
    let cfg = ClientConfig::new(server, "", "", Auth::Token(String::new()), trust.clone());
    let tracker = TaskTracker::new();
    // The first address that answers; nothing is recorded.
    let result = dial::round(&cfg.servers(), 0, PROBE_TIMEOUT, |_, server| {
        let (cfg, tracker) = (&cfg, &tracker);
        async move {
            let anchor = trust::initial_anchor(cfg, &server)?;
            // The server sends no events before a log-in; the receiver
            // just has to outlive the connection.
            let (events_tx, _events_rx) = mpsc::channel(1);
            let conn = Connection::open(cfg, &server, &anchor, events_tx, tracker).await?;
            let hello = Hello {
                version: PROTOCOL_VERSION,
                client: concat!("qchat/", env!("CARGO_PKG_VERSION")).to_owned(),
                tenant: tenant.map(str::to_owned),
            };
            let reply = conn.request::<HelloOk>(Op::Hello(hello)).await;
            let bye = Op::Quit(Quit { reason: Some("probe".to_owned()) });
            if let Ok(Ok(_)) =
                tokio::time::timeout(QUIT_WAIT, conn.request::<serde::de::IgnoredAny>(bye)).await
            {
                let _ = tokio::time::timeout(QUIT_WAIT, conn.closed()).await;
            }
            conn.close(CloseCode::Normal, "probe done");
            reply
        }
    })
    .await
    .map(|(_, ok)| ok)
    .map_err(|e| match e {
        dial::RoundError::Fatal(e) => e,
        dial::RoundError::Failed(failed) => failed.into_error(),
    });
    tracker.close();
    let ok = result?;
    Ok(ServerInfo {
        server: ok.server,
        version: ok.version,
        open_registration: ok.open_registration,
    })
}

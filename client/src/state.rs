//! The client's state, shared by the [`crate::Client`] handles, the
//! supervisor task and the transfer tasks: the connection to use, the
//! session token, the outbox and the sequencer, how the connection stands
//! ([`ConnState`]), and the one wait for a ready connection that every
//! request and transfer goes through. Those three depend on this module,
//! not on each other.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use qchat_protocol::Op;
use serde::de::DeserializeOwned;
use tokio::sync::{Notify, Semaphore, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::ClientConfig;
use crate::connection::Connection;
use crate::error::ClientError;
use crate::mutex::lock;
use crate::outbox::Outbox;
use crate::sequencer::Sequencer;
use crate::transfer::Router;

/// How long a request waits for a connection while the client reconnects.
const REQUEST_WAIT: Duration = Duration::from_secs(30);

/// The connection as the application should show it.
#[derive(Clone, Debug, PartialEq)]
pub enum ConnState {
    /// Logged in; requests go straight out.
    Connected,
    /// The connection dropped and the client is trying again; requests wait.
    Reconnecting {
        /// Attempt number, from 1.
        attempt: u32,
        /// Why the connection dropped or the last attempt failed.
        last_error: String,
    },
    /// Finished for good (quit, logout, or an unrecoverable error).
    Closed {
        /// Why, in a sentence.
        reason: String,
    },
}

/// State shared by the [`crate::Client`] handles, the supervisor task and
/// the transfer tasks.
pub(crate) struct Shared {
    pub(crate) cfg: ClientConfig,
    /// Current session token (changes only when a password log-in replaces
    /// a refused token).
    pub(crate) token: Mutex<String>,
    /// Fingerprint of the current connection's certificate.
    pub(crate) fingerprint: Mutex<String>,
    /// The certificate each address presented this session, by address;
    /// pinned for every reconnect to that address unless trust is by
    /// system roots.
    pub(crate) pins: Mutex<HashMap<String, String>>,
    /// Index in [`ClientConfig::servers`] of the current (or last)
    /// connection's address; a reconnect starts at the next one.
    pub(crate) server_index: AtomicUsize,
    pub(crate) state: watch::Sender<ConnState>,
    /// The connection requests may use: `Some` only while connected, synced
    /// and flushed.
    pub(crate) ready: watch::Sender<Option<Arc<Connection>>>,
    /// The connection being set up or used, ready or not (for quit and
    /// force_disconnect).
    pub(crate) current: Mutex<Option<Arc<Connection>>>,
    pub(crate) outbox: Mutex<Outbox>,
    pub(crate) outbox_kick: Notify,
    pub(crate) sequencer: Mutex<Sequencer>,
    /// Stops the supervisor and everything it started.
    pub(crate) cancel: CancellationToken,
    pub(crate) tracker: TaskTracker,
    /// Set by quit/logout: a closed connection is then not reconnected.
    pub(crate) quitting: AtomicBool,
    /// Successful reconnects so far (diagnostics: a migrated connection is
    /// not a reconnect).
    pub(crate) reconnects: AtomicU64,
    /// Hands download streams and upload outcomes to the transfer tasks.
    pub(crate) transfers: Router,
    /// Downloads in flight (the server refuses more than 16 per connection).
    pub(crate) download_slots: Arc<Semaphore>,
}

impl Shared {
    /// Ends the client for good with `reason`: state `Closed`, waiting
    /// requests and sends fail, the supervisor stops. Idempotent.
    pub(crate) fn close(&self, reason: &str) {
        let mut first = false;
        self.state.send_if_modified(|state| {
            if matches!(state, ConnState::Closed { .. }) {
                return false;
            }
            *state = ConnState::Closed { reason: reason.to_owned() };
            first = true;
            true
        });
        if first {
            lock(&self.outbox).fail_all(&ClientError::Closed(reason.to_owned()));
            self.ready.send_replace(None);
        }
        self.cancel.cancel();
    }

    /// The reason the client closed, if it did.
    pub(crate) fn closed_reason(&self) -> Option<String> {
        match &*self.state.borrow() {
            ConnState::Closed { reason } => Some(reason.clone()),
            _ => None,
        }
    }

    /// The ready connection, waiting while the client reconnects: until
    /// `deadline` when there is one (requests), else as long as it takes
    /// (file transfers outlast outages; they end when the client closes).
    ///
    /// # Errors
    /// [`ClientError::Closed`] once the client closed,
    /// [`ClientError::Timeout`] at the deadline.
    pub(crate) async fn ready_conn(
        &self,
        deadline: Option<Instant>,
    ) -> Result<Arc<Connection>, ClientError> {
        let mut ready = self.ready.subscribe();
        let timeout = async {
            match deadline {
                Some(deadline) => tokio::time::sleep_until(deadline).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(timeout);
        loop {
            if let Some(reason) = self.closed_reason() {
                return Err(ClientError::Closed(reason));
            }
            if let Some(conn) = ready.borrow_and_update().clone().filter(|c| !c.is_closed()) {
                return Ok(conn);
            }
            // Closing publishes on `ready` too ([`Shared::close`], and the
            // supervisor when it stops), so `changed` wakes this then.
            tokio::select! {
                changed = ready.changed() => if changed.is_err() {
                    return Err(ClientError::Closed("stopped".to_owned()));
                },
                () = &mut timeout => return Err(ClientError::Timeout),
                // A dead connection stays in `ready` until the supervisor
                // notices; poll rather than miss that moment.
                () = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
    }

    /// Sends `op` on a ready connection, waiting up to 30 s for one while
    /// reconnecting. With `retry`, a request cut off by a lost connection is
    /// sent again (for operations that are safe to repeat).
    ///
    /// # Errors
    /// The server's refusal, [`ClientError::Timeout`], or
    /// [`ClientError::Closed`].
    pub(crate) async fn call<T: DeserializeOwned>(
        &self,
        op: Op,
        retry: bool,
    ) -> Result<T, ClientError> {
        let deadline = Instant::now() + REQUEST_WAIT;
        loop {
            let conn = self.ready_conn(Some(deadline)).await?;
            let result = tokio::time::timeout_at(deadline, conn.request(op.clone()))
                .await
                .map_err(|_| ClientError::Timeout)?;
            match result {
                Err(ClientError::Disconnected(_)) if retry => continue,
                result => return result,
            }
        }
    }
}

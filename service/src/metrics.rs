//! Counters for Prometheus and a tiny HTTP/1.1 responder for `/metrics` and
//! `/health` on an optional local port. Hand-rolled on purpose: two GET
//! routes do not justify an HTTP stack in the server's dependency tree.
//! Never exposes names, passwords or tokens: only numbers.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::quota::kind::{Created, Scope};

/// Upper bounds (seconds) of the commit latency histogram buckets.
const COMMIT_BUCKETS: [f64; 10] = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0];

/// The server's counters; shared, lock-free.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    connections: AtomicI64,
    transfers: AtomicI64,
    connections_total: AtomicU64,
    refused_total: AtomicU64,
    retries_total: AtomicU64,
    logins_ok: AtomicU64,
    logins_failed: AtomicU64,
    messages: AtomicU64,
    bytes_rx: AtomicU64,
    bytes_tx: AtomicU64,
    commit_buckets: [AtomicU64; COMMIT_BUCKETS.len()],
    commit_count: AtomicU64,
    commit_sum_us: AtomicU64,
    pages_cut: AtomicU64,
    password_checks: AtomicU64,
    password_checks_refused: AtomicU64,
    /// Items the hub could not queue for the cluster bus (queue full).
    bus_dropped: AtomicU64,
    /// Things users created, per `quota::Created` kind.
    created: [AtomicU64; Created::ALL.len()],
    /// Creations refused, per kind and `quota::Scope`.
    quota_refusals: [[AtomicU64; Scope::ALL.len()]; Created::ALL.len()],
}

/// Keeps one transfer counted in `qchat_transfers_active`.
#[derive(Debug)]
pub(crate) struct TransferGuard(Arc<Metrics>);

impl Drop for TransferGuard {
    fn drop(&mut self) {
        self.0.transfers.fetch_sub(1, Relaxed);
    }
}

impl Metrics {
    /// A connection was accepted (handshake started).
    pub(crate) fn connection_opened(&self) {
        self.connections.fetch_add(1, Relaxed);
        self.connections_total.fetch_add(1, Relaxed);
    }

    /// A connection ended, having moved `rx`/`tx` UDP bytes.
    pub(crate) fn connection_closed(&self, rx: u64, tx: u64) {
        self.connections.fetch_sub(1, Relaxed);
        self.bytes_rx.fetch_add(rx, Relaxed);
        self.bytes_tx.fetch_add(tx, Relaxed);
    }

    /// Counts a file transfer (upload or download stream) as active until
    /// the returned guard is dropped.
    pub(crate) fn transfer(self: &Arc<Self>) -> TransferGuard {
        self.transfers.fetch_add(1, Relaxed);
        TransferGuard(self.clone())
    }

    /// The hub dropped an item for the cluster bus: its queue was full.
    pub(crate) fn bus_dropped(&self) {
        self.bus_dropped.fetch_add(1, Relaxed);
    }

    /// A connection attempt was refused (caps).
    pub(crate) fn refused(&self) {
        self.refused_total.fetch_add(1, Relaxed);
    }

    /// A QUIC Retry was sent.
    pub(crate) fn retried(&self) {
        self.retries_total.fetch_add(1, Relaxed);
    }

    /// A login, register or resume succeeded.
    pub(crate) fn login_ok(&self) {
        self.logins_ok.fetch_add(1, Relaxed);
    }

    /// A login or resume failed.
    pub(crate) fn login_failed(&self) {
        self.logins_failed.fetch_add(1, Relaxed);
    }

    /// A user created one `kind` (within its quotas).
    pub(crate) fn created(&self, kind: Created) {
        self.created[kind.index()].fetch_add(1, Relaxed);
    }

    /// A creation of `kind` was refused: it would have passed the `scope` quota.
    pub(crate) fn quota_refused(&self, kind: Created, scope: Scope) {
        let i = Scope::ALL.iter().position(|s| *s == scope).unwrap_or(0);
        self.quota_refusals[kind.index()][i].fetch_add(1, Relaxed);
    }

    /// A password was handed to the hashing threads (checked or hashed).
    pub(crate) fn password_checked(&self) {
        self.password_checks.fetch_add(1, Relaxed);
    }

    /// A password check was refused: the server-wide cap was reached.
    pub(crate) fn password_check_refused(&self) {
        self.password_checks_refused.fetch_add(1, Relaxed);
    }

    /// A list reply held fewer items than asked because the next one would
    /// not have fit in the frame (`paging`).
    pub(crate) fn page_cut_short(&self) {
        self.pages_cut.fetch_add(1, Relaxed);
    }

    /// A group commit of `messages` new messages took `took`.
    pub(crate) fn committed(&self, messages: u64, took: Duration) {
        self.messages.fetch_add(messages, Relaxed);
        let secs = took.as_secs_f64();
        for (bucket, le) in self.commit_buckets.iter().zip(COMMIT_BUCKETS) {
            if secs <= le {
                bucket.fetch_add(1, Relaxed);
            }
        }
        self.commit_count.fetch_add(1, Relaxed);
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.commit_sum_us.fetch_add(us, Relaxed);
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub(crate) fn render(&self) -> String {
        let mut s = String::new();
        let mut one = |name: &str, kind: &str, help: &str, value: String| {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
        };
        one("qchat_connections", "gauge", "Open QUIC connections.", self.get_i(&self.connections));
        one(
            "qchat_transfers_active",
            "gauge",
            "File uploads and downloads in progress.",
            self.get_i(&self.transfers),
        );
        one(
            "qchat_connections_total",
            "counter",
            "Connections accepted.",
            self.get(&self.connections_total),
        );
        one(
            "qchat_connections_refused_total",
            "counter",
            "Connections refused by a cap.",
            self.get(&self.refused_total),
        );
        one(
            "qchat_retries_total",
            "counter",
            "QUIC Retry packets sent to unvalidated addresses.",
            self.get(&self.retries_total),
        );
        one("qchat_logins_total", "counter", "Successful logins.", self.get(&self.logins_ok));
        one(
            "qchat_login_failures_total",
            "counter",
            "Failed logins.",
            self.get(&self.logins_failed),
        );
        one(
            "qchat_messages_committed_total",
            "counter",
            "Messages committed.",
            self.get(&self.messages),
        );
        one(
            "qchat_bytes_received_total",
            "counter",
            "UDP bytes received on closed connections.",
            self.get(&self.bytes_rx),
        );
        one(
            "qchat_bytes_sent_total",
            "counter",
            "UDP bytes sent on closed connections.",
            self.get(&self.bytes_tx),
        );
        one(
            "qchat_password_checks_total",
            "counter",
            "Passwords checked or hashed with argon2id (log-in, register).",
            self.get(&self.password_checks),
        );
        one(
            "qchat_password_checks_refused_total",
            "counter",
            "Password checks refused (unavailable): the server-wide cap was reached.",
            self.get(&self.password_checks_refused),
        );
        one(
            "qchat_bus_dropped_total",
            "counter",
            "Items for the other nodes dropped on a full bus queue (they read them from the database).",
            self.get(&self.bus_dropped),
        );
        one(
            "qchat_list_pages_cut_total",
            "counter",
            "List replies (history, sync, rooms, members) cut short to fit the frame.",
            self.get(&self.pages_cut),
        );
        let name = "qchat_created_total";
        let _ = writeln!(s, "# HELP {name} Things users created, by kind.\n# TYPE {name} counter");
        for kind in Created::ALL {
            let n = self.created[kind.index()].load(Relaxed);
            let _ = writeln!(s, "{name}{{what=\"{}\"}} {n}", kind.name());
        }
        let name = "qchat_quota_refusals_total";
        let _ = writeln!(
            s,
            "# HELP {name} Creations refused with quota_exceeded, by kind and quota.\n# TYPE {name} counter"
        );
        for kind in Created::ALL {
            for (i, scope) in Scope::ALL.iter().enumerate() {
                let n = self.quota_refusals[kind.index()][i].load(Relaxed);
                let _ = writeln!(
                    s,
                    "{name}{{what=\"{}\",scope=\"{}\"}} {n}",
                    kind.name(),
                    scope.name()
                );
            }
        }
        let name = "qchat_commit_seconds";
        let _ = writeln!(s, "# HELP {name} Group commit latency.\n# TYPE {name} histogram");
        for (bucket, le) in self.commit_buckets.iter().zip(COMMIT_BUCKETS) {
            let _ = writeln!(s, "{name}_bucket{{le=\"{le}\"}} {}", bucket.load(Relaxed));
        }
        let count = self.commit_count.load(Relaxed);
        let sum = Duration::from_micros(self.commit_sum_us.load(Relaxed)).as_secs_f64();
        let _ = writeln!(s, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(s, "{name}_sum {sum}\n{name}_count {count}");
        s
    }

    fn get(&self, c: &AtomicU64) -> String {
        c.load(Relaxed).to_string()
    }

    fn get_i(&self, c: &AtomicI64) -> String {
        c.load(Relaxed).to_string()
    }
}

/// Binds the metrics port.
///
/// # Errors
/// When the address cannot be bound.
pub(crate) async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves `GET /metrics` and `GET /health` until cancelled. One short-lived
/// task per request, each bounded by a timeout.
pub(crate) async fn serve(listener: TcpListener, metrics: Arc<Metrics>, cancel: CancellationToken) {
    loop {
        let (stream, _) = tokio::select! {
            () = cancel.cancelled() => return,
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!(cause = %e, "metrics accept");
                    continue;
                }
            },
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(Duration::from_secs(5), respond(stream, &metrics)).await;
        });
    }
}

async fn respond(mut stream: tokio::net::TcpStream, metrics: &Metrics) -> std::io::Result<()> {
    let mut buf = vec![0u8; 2048];
    let mut len = 0;
    // Read the request head (bounded); only the request line matters.
    while !buf[..len].windows(4).any(|w| w == b"\r\n\r\n") && len < buf.len() {
        let n = stream.read(&mut buf[len..]).await?;
        if n == 0 {
            break;
        }
        len += n;
    }
    let head = String::from_utf8_lossy(&buf[..len]);
    let mut parts = head.split_whitespace();
    let (status, ctype, body) = match (parts.next(), parts.next()) {
        (Some("GET"), Some("/metrics")) => {
            ("200 OK", "text/plain; version=0.0.4; charset=utf-8", metrics.render())
        }
        (Some("GET"), Some("/health")) => ("200 OK", "text/plain; charset=utf-8", "ok\n".into()),
        (Some("GET"), _) => ("404 Not Found", "text/plain; charset=utf-8", "not found\n".into()),
        _ => ("405 Method Not Allowed", "text/plain; charset=utf-8", "GET only\n".into()),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative() {
        let m = Metrics::default();
        m.committed(3, Duration::from_micros(1500));
        m.committed(1, Duration::from_secs(2));
        let text = m.render();
        assert!(text.contains("qchat_messages_committed_total 4"), "{text}");
        assert!(text.contains("qchat_commit_seconds_bucket{le=\"0.001\"} 0"), "{text}");
        assert!(text.contains("qchat_commit_seconds_bucket{le=\"0.002\"} 1"), "{text}");
        assert!(text.contains("qchat_commit_seconds_bucket{le=\"+Inf\"} 2"), "{text}");
        assert!(text.contains("qchat_commit_seconds_count 2"), "{text}");
    }
}

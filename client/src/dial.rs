//! Dialling a list of server addresses (the nodes of a cluster,
//! `--server a:4433,b:4433`): one round tries each address in turn from a
//! given one, with a time budget per address, until one attempt succeeds.
//!
//! What an address refuses on its own — its certificate is unknown or not
//! the pinned one — does not end the round: the next address may be a node
//! the client trusts. Network failures and `unavailable` answers move on
//! too. Any other refusal (bad credentials, say) holds for every node and
//! ends the round at once.

use std::future::Future;
use std::time::Duration;

use crate::error::ClientError;

/// How long one address of several may take before the next is tried: a
/// killed node never answers, and QUIC only notices that at the handshake
/// timeout.
pub(crate) const PER_ADDRESS: Duration = Duration::from_secs(10);

/// How a round that found no address ended.
#[derive(Debug)]
pub(crate) struct Failed {
    /// The first certificate refusal, if an address refused the client's
    /// trust settings.
    pub(crate) refusal: Option<ClientError>,
    /// The last failure a later try may cure (unreachable, timed out,
    /// `unavailable`), if there was one.
    pub(crate) transient: Option<ClientError>,
}

impl Failed {
    /// The error to report when no further round follows: a certificate
    /// refusal first (a person can act on it), else the last failure.
    pub(crate) fn into_error(self) -> ClientError {
        self.refusal.or(self.transient).unwrap_or_else(|| ClientError::Connect {
            server: String::new(),
            reason: "no server address configured".to_owned(),
        })
    }
}

/// Why one round ended without a connection.
#[derive(Debug)]
pub(crate) enum RoundError {
    /// Every address failed, each on its own (see [`Failed`]).
    Failed(Failed),
    /// A refusal that holds for every address (e.g. `unauthorized`).
    Fatal(ClientError),
}

fn is_refusal(e: &ClientError) -> bool {
    matches!(e, ClientError::UnknownHost { .. } | ClientError::HostChanged { .. })
}

/// Tries `attempt` on each of `servers` once, starting at index `start`
/// (wrapping), each within `last_budget` if it is the round's last address
/// and [`PER_ADDRESS`] (or `last_budget` if smaller) otherwise. Returns the
/// index that worked and what the attempt made of it.
///
/// # Errors
/// See [`RoundError`].
pub(crate) async fn round<T, F, Fut>(
    servers: &[String],
    start: usize,
    last_budget: Duration,
    mut attempt: F,
) -> Result<(usize, T), RoundError>
where
    F: FnMut(usize, String) -> Fut,
    Fut: Future<Output = Result<T, ClientError>>,
{
    let n = servers.len();
    let mut failed = Failed { refusal: None, transient: None };
    for i in 0..n {
        let index = (start + i) % n;
        let server = servers[index].clone();
        let budget = if i + 1 == n { last_budget } else { PER_ADDRESS.min(last_budget) };
        let outcome = tokio::time::timeout(budget, attempt(index, server.clone())).await;
        match outcome.unwrap_or_else(|_| {
            Err(ClientError::Connect { server: server.clone(), reason: "timed out".to_owned() })
        }) {
            Ok(value) => return Ok((index, value)),
            Err(e) if is_refusal(&e) => {
                tracing::warn!(%server, cause = %e, "server refused by the trust settings");
                failed.refusal.get_or_insert(e);
            }
            Err(e) if e.is_transient() => {
                tracing::debug!(%server, cause = %e, "server not reachable");
                failed.transient = Some(e);
            }
            Err(e) => return Err(RoundError::Fatal(e)),
        }
    }
    Err(RoundError::Failed(failed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use qchat_protocol::{ErrorBody, ErrorCode};

    fn servers() -> Vec<String> {
        ["a:1", "b:1", "c:1"].map(str::to_owned).to_vec()
    }

    fn down(server: &str) -> ClientError {
        ClientError::Connect { server: server.to_owned(), reason: "down".to_owned() }
    }

    #[tokio::test]
    async fn tries_in_turn_from_start_and_wraps() {
        let mut tried = Vec::new();
        let got = round(&servers(), 2, Duration::from_secs(1), |i, s| {
            tried.push(s.clone());
            async move { if i == 1 { Ok(s) } else { Err(down(&s)) } }
        })
        .await
        .expect("b answers");
        assert_eq!(got, (1, "b:1".to_owned()));
        assert_eq!(tried, ["c:1", "a:1", "b:1"]);
    }

    #[tokio::test]
    async fn a_refused_certificate_moves_on() {
        let got = round(&servers(), 0, Duration::from_secs(1), |i, s| async move {
            match i {
                0 => Err(ClientError::UnknownHost { server: s, fingerprint: "ab".into() }),
                1 => Err(down(&s)),
                _ => Ok(i),
            }
        })
        .await
        .expect("c answers");
        assert_eq!(got.0, 2);
    }

    #[tokio::test]
    async fn failures_are_reported_refusal_first() {
        let err = round(&servers(), 0, Duration::from_secs(1), |i, s| async move {
            if i == 1 {
                Err::<(), _>(ClientError::UnknownHost { server: s, fingerprint: "ab".into() })
            } else {
                Err(down(&s))
            }
        })
        .await
        .expect_err("none answers");
        let RoundError::Failed(failed) = err else { panic!("not fatal") };
        assert!(
            matches!(failed.transient, Some(ClientError::Connect { ref server, .. }) if server == "c:1")
        );
        assert!(
            matches!(failed.into_error(), ClientError::UnknownHost { server, .. } if server == "b:1")
        );
    }

    #[tokio::test]
    async fn a_refusal_for_every_node_ends_the_round() {
        let mut tried = 0;
        let err = round(&servers(), 0, Duration::from_secs(1), |_, _| {
            tried += 1;
            async {
                Err::<(), _>(ClientError::Server(ErrorBody::new(ErrorCode::Unauthorized, "no")))
            }
        })
        .await
        .expect_err("refused");
        assert!(matches!(err, RoundError::Fatal(_)));
        assert_eq!(tried, 1);
    }

    #[tokio::test]
    async fn a_silent_address_costs_its_budget_only() {
        let got = round(&servers(), 0, Duration::from_millis(200), |i, _| async move {
            if i == 0 {
                std::future::pending::<()>().await;
            }
            Ok(i)
        })
        .await
        .expect("b answers");
        assert_eq!(got.0, 1);
    }
}

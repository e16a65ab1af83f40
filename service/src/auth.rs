//! Passwords (argon2id off the async threads, behind a semaphore so a login
//! storm cannot starve chat), session tokens (only their hash is stored) and
//! the failed-login rate limiter.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use base64::Engine as _;
use rand::Rng as _;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::error::{Error, Result};

/// Failed logins allowed per address per window, unless configured.
const MAX_FAILURES: u32 = 10;
/// The rate limiter's window, unless configured.
const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// Addresses tracked before the oldest windows are swept.
const MAX_TRACKED: usize = 100_000;

/// Password hashing and login throttling, shared by all connections.
#[derive(Clone)]
pub(crate) struct Auth {
    inner: Arc<Inner>,
    max_failures: u32,
    failure_window: Duration,
    metrics: Option<Arc<crate::metrics::Metrics>>,
}

struct Inner {
    /// Bounds concurrent argon2 runs (19 MiB each) to the cores we have.
    hashers: Semaphore,
    /// Verified against when the user does not exist, so timing does not
    /// reveal which user names exist.
    dummy_hash: String,
    /// Failed logins per address: (window start, count). std Mutex: never held
    /// across an await.
    failures: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl Auth {
    /// Builds the shared state; hashes one dummy password (takes ~50 ms).
    ///
    /// # Errors
    /// When argon2 fails, which only happens on invalid parameters.
    pub(crate) fn new() -> Result<Self> {
        let dummy_hash = hash_blocking("qchat dummy password")?;
        let permits = std::thread::available_parallelism().map_or(2, |n| n.get()).max(1);
        Ok(Self {
            inner: Arc::new(Inner {
                hashers: Semaphore::new(permits),
                dummy_hash,
                failures: Mutex::new(HashMap::new()),
            }),
            max_failures: MAX_FAILURES,
            failure_window: FAILURE_WINDOW,
            metrics: None,
        })
    }

    /// Allows `max_failures` failed logins per address per `window`.
    pub(crate) fn with_rate_limit(mut self, max_failures: u32, window: Duration) -> Self {
        self.max_failures = max_failures.max(1);
        self.failure_window = window;
        self
    }

    /// Counts failed logins in `metrics`.
    pub(crate) fn with_metrics(mut self, metrics: Arc<crate::metrics::Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Hashes a password with argon2id (m=19 MiB, t=2, p=1) on the blocking pool.
    ///
    /// # Errors
    /// Internal errors only.
    pub(crate) async fn hash(&self, password: &str) -> Result<String> {
        let _permit = self.permit().await?;
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || hash_blocking(&password))
            .await
            .map_err(|e| Error::Internal(format!("hash task: {e}")))?
    }

    /// Checks `password` against `hash`; with `None` (no such user) it still
    /// spends the same time on a dummy hash and returns `false`.
    ///
    /// # Errors
    /// Internal errors only.
    pub(crate) async fn verify(&self, password: &str, hash: Option<&str>) -> Result<bool> {
        let _permit = self.permit().await?;
        let password = password.to_owned();
        let (hash, real) = match hash {
            Some(h) => (h.to_owned(), true),
            None => (self.inner.dummy_hash.clone(), false),
        };
        let ok = tokio::task::spawn_blocking(move || {
            PasswordHash::new(&hash)
                .map(|parsed| {
                    Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok()
                })
                .unwrap_or(false)
        })
        .await
        .map_err(|e| Error::Internal(format!("verify task: {e}")))?;
        Ok(ok && real)
    }

    async fn permit(&self) -> Result<tokio::sync::SemaphorePermit<'_>> {
        self.inner.hashers.acquire().await.map_err(|_| Error::Internal("hasher closed".into()))
    }

    /// Whether `addr` may try another login now.
    pub(crate) fn allow_attempt(&self, addr: IpAddr) -> bool {
        let map = self.inner.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match map.get(&addr) {
            Some((start, count)) => {
                start.elapsed() > self.failure_window || *count < self.max_failures
            }
            None => true,
        }
    }

    /// Records a failed login from `addr`.
    pub(crate) fn record_failure(&self, addr: IpAddr) {
        if let Some(m) = &self.metrics {
            m.login_failed();
        }
        let window = self.failure_window;
        let mut map = self.inner.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= MAX_TRACKED {
            map.retain(|_, (start, _)| start.elapsed() <= window);
        }
        let entry = map.entry(addr).or_insert((Instant::now(), 0));
        if entry.0.elapsed() > window {
            *entry = (Instant::now(), 0);
        }
        entry.1 += 1;
    }
}

fn hash_blocking(password: &str) -> Result<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| Error::Internal(format!("argon2: {e}")))
}

/// A new session token (32 random bytes, base64url) and the hash to store.
pub(crate) fn new_token() -> (String, Vec<u8>) {
    let mut raw = [0u8; 32];
    rand::rng().fill_bytes(&mut raw);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
    let hash = token_hash(&token);
    (token, hash)
}

/// SHA-256 of a token as presented on the wire.
pub(crate) fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_and_verify() {
        let auth = Auth::new().expect("auth");
        let h = auth.hash("correct horse").await.expect("hash");
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(auth.verify("correct horse", Some(&h)).await.expect("verify"));
        assert!(!auth.verify("wrong", Some(&h)).await.expect("verify"));
        assert!(!auth.verify("correct horse", None).await.expect("verify"));
        assert!(!auth.verify("x", Some("not a phc string")).await.expect("verify"));
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let (a, ha) = new_token();
        let (b, _) = new_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(ha, token_hash(&a));
        assert_eq!(ha.len(), 32);
    }

    #[tokio::test]
    async fn failures_are_limited_per_address() {
        let auth = Auth::new().expect("auth").with_rate_limit(3, Duration::from_secs(60));
        let a: IpAddr = [127, 0, 0, 1].into();
        let b: IpAddr = [127, 0, 0, 2].into();
        for _ in 0..3 {
            assert!(auth.allow_attempt(a));
            auth.record_failure(a);
        }
        assert!(!auth.allow_attempt(a));
        assert!(auth.allow_attempt(b));
    }
}

//! Passwords (argon2id on a few hashing threads of their own, at a lower CPU
//! priority, so a login storm cannot starve chat), session tokens (only their
//! hash is stored) and the failed-login rate limiter.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use base64::Engine as _;
use rand::Rng as _;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Failed logins allowed per address per window, unless configured.
const MAX_FAILURES: u32 = 10;
/// The rate limiter's window, unless configured.
const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// Addresses tracked before the oldest windows are swept.
const MAX_TRACKED: usize = 100_000;
/// `nice` increment of the hashing threads: a login storm's argon2 runs
/// then take only the CPU the runtime (established connections) leaves.
const HASHER_NICE: i32 = 10;

/// A password job for a hashing thread.
type Job = Box<dyn FnOnce(&Mutex<Vec<Vec<Block>>>) + Send>;

/// Password hashing and login throttling, shared by all connections.
#[derive(Clone)]
pub(crate) struct Auth {
    inner: Arc<Inner>,
    max_failures: u32,
    failure_window: Duration,
    metrics: Option<Arc<crate::metrics::Metrics>>,
}

struct Inner {
    /// Jobs for the hashing threads; they end when this is dropped. Their
    /// number bounds concurrent argon2 runs (19 MiB each).
    jobs: mpsc::Sender<Job>,
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
        // argon2 working memory, reused: at most one area per hashing thread is
        // ever out, so this never holds more than that many areas. Allocating 19 MiB
        // per run instead left each run's area resident in the malloc arena of
        // whichever blocking thread ran it, and a login flood grew the server
        // by 19 MiB per thread (found by tests/tests/hostile.rs).
        let areas = Arc::new(Mutex::new(Vec::new()));
        let dummy_hash = hash_blocking(&areas, "qchat dummy password")?;
        // Half the cores (at least one): with one hasher per core a login
        // storm kept every core busy and the chat's p99 went from 3 ms to
        // 48 ms (bench/run login-storm, docs/BENCHMARKS.md); with half, the
        // runtime always keeps the other half and the storm takes longer.
        // At `HASHER_NICE` they also yield to the runtime on a busy machine.
        let threads = (std::thread::available_parallelism().map_or(2, |n| n.get()) / 2).max(1);
        let (jobs, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads {
            let (rx, areas) = (rx.clone(), areas.clone());
            std::thread::Builder::new()
                .name(format!("qchatd-argon2-{i}"))
                .spawn(move || hasher_thread(&rx, &areas))
                .map_err(|e| Error::Internal(format!("hashing thread: {e}")))?;
        }
        Ok(Self {
            inner: Arc::new(Inner { jobs, dummy_hash, failures: Mutex::new(HashMap::new()) }),
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

    /// Hashes a password with argon2id (m=19 MiB, t=2, p=1) on a hashing thread.
    ///
    /// # Errors
    /// Internal errors only.
    pub(crate) async fn hash(&self, password: &str) -> Result<String> {
        let password = password.to_owned();
        self.run(move |areas| hash_blocking(areas, &password)).await?
    }

    /// Checks `password` against `hash`; with `None` (no such user) it still
    /// spends the same time on a dummy hash and returns `false`.
    ///
    /// # Errors
    /// Internal errors only.
    pub(crate) async fn verify(&self, password: &str, hash: Option<&str>) -> Result<bool> {
        let password = password.to_owned();
        let (hash, real) = match hash {
            Some(h) => (h.to_owned(), true),
            None => (self.inner.dummy_hash.clone(), false),
        };
        let ok = self.run(move |areas| verify_blocking(areas, &password, &hash)).await?;
        Ok(ok && real)
    }

    /// Runs `f` on a hashing thread (in queue order) and waits for its result.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Mutex<Vec<Vec<Block>>>) -> T + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |areas| {
            let _ = tx.send(f(areas));
        });
        self.inner.jobs.send(job).map_err(|_| Error::Internal("hashing threads gone".into()))?;
        rx.await.map_err(|_| Error::Internal("hashing job lost".into()))
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

/// A hashing thread: lowers its own priority, then runs jobs until the
/// sender (the [`Auth`] state) is dropped.
fn hasher_thread(rx: &Mutex<mpsc::Receiver<Job>>, areas: &Mutex<Vec<Vec<Block>>>) {
    #[cfg(target_os = "linux")]
    if let Err(e) =
        rustix::process::setpriority_process(Some(rustix::thread::gettid()), HASHER_NICE)
    {
        tracing::warn!(cause = %e, "could not lower the hashing thread's priority");
    }
    loop {
        // The lock is held only while waiting for the next job.
        let job = rx.lock().unwrap_or_else(std::sync::PoisonError::into_inner).recv();
        match job {
            Ok(job) => job(areas),
            Err(mpsc::RecvError) => return,
        }
    }
}

/// Runs argon2 in a working area from `areas` (allocated on first use, and
/// kept only when it has the default size, so the pool stays bounded).
fn argon2_into(
    areas: &Mutex<Vec<Vec<Block>>>,
    argon2: &Argon2<'_>,
    params: &Params,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> std::result::Result<(), argon2::Error> {
    let lock = || areas.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let need = params.block_count();
    let mut area = lock().pop().unwrap_or_default();
    if area.len() < need {
        area.resize(need, Block::default());
    }
    let result = argon2.hash_password_into_with_memory(password, salt, out, &mut area[..need]);
    if area.len() == Params::DEFAULT.block_count() {
        lock().push(area);
    }
    result
}

/// argon2id (m=19 MiB, t=2, p=1) of `password` with a fresh 16-byte salt,
/// as a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`).
fn hash_blocking(areas: &Mutex<Vec<Vec<Block>>>, password: &str) -> Result<String> {
    let internal = |e: &dyn std::fmt::Display| Error::Internal(format!("argon2: {e}"));
    let params = Params::DEFAULT;
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    argon2_into(areas, &argon2, &params, password.as_bytes(), &salt, &mut out)
        .map_err(|e| internal(&e))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| internal(&e))?,
        salt: Some(Salt::new(&salt).map_err(|e| internal(&e))?),
        hash: Some(Output::new(&out).map_err(|e| internal(&e))?),
    };
    Ok(phc.to_string())
}

/// Whether `password` matches the PHC string `hash` (any argon2 variant and
/// parameters; a malformed hash matches nothing). The comparison is
/// constant-time (`Output`'s equality).
fn verify_blocking(areas: &Mutex<Vec<Vec<Block>>>, password: &str, hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else { return false };
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else { return false };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm.as_str()) else { return false };
    let Ok(version) = parsed.version.map(Version::try_from).transpose() else { return false };
    let Ok(params) = Params::try_from(&parsed) else { return false };
    let argon2 = Argon2::new(algorithm, version.unwrap_or_default(), params.clone());
    let mut out = vec![0u8; expected.len()];
    if argon2_into(areas, &argon2, &params, password.as_bytes(), salt, &mut out).is_err() {
        return false;
    }
    Output::new(&out).is_ok_and(|computed| computed == *expected)
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

    /// The pooled hashing is argon2id as the crate's own API writes and
    /// checks it, both ways; the pool keeps at most one area per run.
    #[test]
    fn pooled_argon2_matches_the_reference() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let areas = Mutex::new(Vec::new());
        let ours = hash_blocking(&areas, "correct horse").expect("hash");
        let parsed = PasswordHash::new(&ours).expect("phc");
        assert!(Argon2::default().verify_password(b"correct horse", &parsed).is_ok());
        assert!(Argon2::default().verify_password(b"wrong", &parsed).is_err());
        let theirs = Argon2::default().hash_password(b"battery staple").expect("hash").to_string();
        assert!(verify_blocking(&areas, "battery staple", &theirs));
        assert!(!verify_blocking(&areas, "battery stapler", &theirs));
        // Other parameters (a cheaper argon2i) verify too, without being pooled.
        let params = Params::new(1024, 1, 1, None).expect("params");
        let cheap = Argon2::new(Algorithm::Argon2i, Version::V0x13, params)
            .hash_password(b"x")
            .expect("hash")
            .to_string();
        assert!(verify_blocking(&areas, "x", &cheap));
        assert!(!verify_blocking(&areas, "x", "$argon2id$v=19$m=19456,t=2,p=1$bm9wZQ$bm9wZQ"));
        assert!(!verify_blocking(&areas, "x", "not a phc string"));
        assert_eq!(areas.lock().expect("lock").len(), 1, "one area, reused");
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

//! Passwords (argon2id on a few hashing threads of their own, at a lower CPU
//! priority, so a login storm cannot starve chat), session tokens (only their
//! hash is stored), the failed-login rate limiter (an attempt is counted
//! before its password is checked, and given back when it succeeds) and the
//! server-wide cap on password checks queued or running.

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
/// Password checks (and hashes) queued or running at once, server-wide,
/// unless configured.
pub(crate) const MAX_PASSWORD_CHECKS: usize = 256;
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
    /// One permit per password check queued or running; a check that finds
    /// none is refused (`unavailable`) instead of queueing without bound.
    checks: Arc<tokio::sync::Semaphore>,
}

struct Inner {
    /// Jobs for the hashing threads; they end when this is dropped. Their
    /// number bounds concurrent argon2 runs (19 MiB each).
    jobs: mpsc::Sender<Job>,
    /// Verified against when the user does not exist, so timing does not
    /// reveal which user names exist.
    dummy_hash: String,
    /// Log-in attempts per address in the current window: (window start,
    /// count), counting attempts being checked and failed ones. std Mutex:
    /// never held across an await.
    failures: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

/// One log-in attempt, counted against its address's allowance from
/// before its password (or token) is checked, so attempts made at once can
/// never pass the limit together. [`Attempt::failed`] keeps it counted;
/// dropped without that (the log-in succeeded, or was never checked: the
/// server was busy, or failed), it is given back.
pub(crate) struct Attempt {
    auth: Auth,
    ip: IpAddr,
    /// The window it was counted in; a later window owes it nothing.
    window: Instant,
    failed: bool,
}

impl Attempt {
    /// The attempt failed (wrong password, unknown token): it stays counted.
    pub(crate) fn failed(mut self) {
        self.failed = true;
        if let Some(m) = &self.auth.metrics {
            m.login_failed();
        }
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        if self.failed {
            return;
        }
        let mut map =
            self.auth.inner.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(entry) = map.get_mut(&self.ip)
            && entry.0 == self.window
        {
            entry.1 = entry.1.saturating_sub(1);
            if entry.1 == 0 {
                map.remove(&self.ip);
            }
        }
    }
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
            checks: Arc::new(tokio::sync::Semaphore::new(MAX_PASSWORD_CHECKS)),
        })
    }

    /// Allows `max` password checks (and hashes) queued or running at once.
    pub(crate) fn with_check_limit(mut self, max: usize) -> Self {
        self.checks = Arc::new(tokio::sync::Semaphore::new(max.max(1)));
        self
    }

    /// Allows `max_failures` failed logins per address per `window`.
    pub(crate) fn with_rate_limit(mut self, max_failures: u32, window: Duration) -> Self {
        self.max_failures = max_failures.max(1);
        self.failure_window = window;
        self
    }

    /// Counts failed logins and password checks in `metrics`.
    pub(crate) fn with_metrics(mut self, metrics: Arc<crate::metrics::Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Hashes a password with argon2id (m=19 MiB, t=2, p=1) on a hashing thread.
    ///
    /// # Errors
    /// `unavailable` when the password checks are at their cap; otherwise
    /// internal errors only.
    pub(crate) async fn hash(&self, password: &str) -> Result<String> {
        let password = password.to_owned();
        self.run(move |areas| hash_blocking(areas, &password)).await?
    }

    /// Checks `password` against `hash`; with `None` (no such user) it still
    /// spends the same time on a dummy hash and returns `false`.
    ///
    /// # Errors
    /// `unavailable` when the password checks are at their cap; otherwise
    /// internal errors only.
    pub(crate) async fn verify(&self, password: &str, hash: Option<&str>) -> Result<bool> {
        let password = password.to_owned();
        let (hash, real) = match hash {
            Some(h) => (h.to_owned(), true),
            None => (self.inner.dummy_hash.clone(), false),
        };
        let ok = self.run(move |areas| verify_blocking(areas, &password, &hash)).await?;
        Ok(ok && real)
    }

    /// Runs `f` on a hashing thread (in queue order) and waits for its
    /// result, holding one of the check permits until the thread is done
    /// with it (also when the caller stops waiting).
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Mutex<Vec<Vec<Block>>>) -> T + Send + 'static,
    ) -> Result<T> {
        let Ok(permit) = self.checks.clone().try_acquire_owned() else {
            if let Some(m) = &self.metrics {
                m.password_check_refused();
            }
            return Err(crate::error::refuse(
                qchat_protocol::ErrorCode::Unavailable,
                "the server is busy checking passwords; retry in a few seconds",
            ));
        };
        if let Some(m) = &self.metrics {
            m.password_checked();
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |areas| {
            let result = f(areas);
            // Before the answer, so a caller that checks again at once
            // finds the permit back.
            drop(permit);
            let _ = tx.send(result);
        });
        self.inner.jobs.send(job).map_err(|_| Error::Internal("hashing threads gone".into()))?;
        rx.await.map_err(|_| Error::Internal("hashing job lost".into()))
    }

    /// Whether `ip` has failed log-ins left in this window. For `resume`,
    /// whose token check is one indexed lookup: it needs no place held
    /// while it runs (a whole NAT's clients resume at once after a node
    /// dies), and counts only when it fails ([`Auth::count_failure`]).
    pub(crate) fn allows(&self, ip: IpAddr) -> bool {
        let map = self.inner.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(&ip).is_none_or(|(start, n)| {
            start.elapsed() > self.failure_window || *n < self.max_failures
        })
    }

    /// Counts a failure from `ip` that held no place (see [`Auth::allows`]).
    pub(crate) fn count_failure(&self, ip: IpAddr) {
        if let Some(attempt) = self.reserve_place(ip, true) {
            attempt.failed();
        }
    }

    /// Counts a log-in attempt from `ip` against its allowance, before its
    /// password or token is checked; `None` when the allowance for this
    /// window is spent (failed attempts and those still being checked
    /// count).
    pub(crate) fn reserve_attempt(&self, ip: IpAddr) -> Option<Attempt> {
        self.reserve_place(ip, false)
    }

    /// [`Auth::reserve_attempt`]; `over` counts it even past the allowance.
    fn reserve_place(&self, ip: IpAddr, over: bool) -> Option<Attempt> {
        let window = self.failure_window;
        let mut map = self.inner.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= MAX_TRACKED {
            map.retain(|_, (start, _)| start.elapsed() <= window);
        }
        let entry = map.entry(ip).or_insert((Instant::now(), 0));
        if entry.0.elapsed() > window {
            *entry = (Instant::now(), 0);
        }
        if entry.1 >= self.max_failures && !over {
            return None;
        }
        entry.1 += 1;
        Some(Attempt { auth: self.clone(), ip, window: entry.0, failed: false })
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
            auth.reserve_attempt(a).expect("allowed").failed();
        }
        assert!(auth.reserve_attempt(a).is_none());
        assert!(auth.reserve_attempt(b).is_some());
    }

    /// Attempts count from before their check: of many at once only the
    /// allowance is let through, a successful one gives its place back, and
    /// a successful address leaves nothing tracked.
    #[tokio::test]
    async fn attempts_count_before_they_are_checked() {
        let auth = Auth::new().expect("auth").with_rate_limit(3, Duration::from_secs(60));
        let a: IpAddr = [127, 0, 0, 1].into();
        let held: Vec<_> = (0..10).filter_map(|_| auth.reserve_attempt(a)).collect();
        assert_eq!(held.len(), 3, "three in flight at once, no more");
        let mut held = held.into_iter();
        drop(held.next()); // succeeded: given back
        let again = auth.reserve_attempt(a).expect("a place was given back");
        assert!(auth.reserve_attempt(a).is_none());
        for attempt in held {
            attempt.failed();
        }
        drop(again);
        let one = auth.reserve_attempt(a).expect("one place left");
        one.failed();
        assert!(auth.reserve_attempt(a).is_none(), "three failures spend the allowance");
        let b: IpAddr = [127, 0, 0, 2].into();
        drop(auth.reserve_attempt(b));
        assert!(!auth.inner.failures.lock().expect("lock").contains_key(&b));
    }

    /// A `resume` holds no place while it is checked: any number at once
    /// pass while the address has failures left; each failure counts, and
    /// once the allowance is spent none passes.
    #[tokio::test]
    async fn resumes_hold_no_place_and_count_their_failures() {
        let auth = Auth::new().expect("auth").with_rate_limit(3, Duration::from_secs(60));
        let a: IpAddr = [127, 0, 0, 1].into();
        let _logins: Vec<_> = (0..2).filter_map(|_| auth.reserve_attempt(a)).collect();
        assert!((0..100).all(|_| auth.allows(a)), "places held by log-ins do not stop resumes");
        for _ in 0..5 {
            auth.count_failure(a);
        }
        assert!(!auth.allows(a), "failures spend the allowance");
        assert!(auth.reserve_attempt(a).is_none(), "for log-ins too");
        assert!(auth.allows([127, 0, 0, 2].into()));
    }

    /// At most `with_check_limit` checks are queued or running; one more is
    /// refused as `unavailable` at once, and a permit returns when its
    /// check is done.
    #[tokio::test]
    async fn password_checks_are_capped_server_wide() {
        let auth = Auth::new().expect("auth").with_check_limit(2);
        let hash = auth.hash("correct horse").await.expect("hash");
        let (a, b, c) = tokio::join!(
            auth.verify("x", Some(&hash)),
            auth.verify("correct horse", Some(&hash)),
            auth.verify("y", Some(&hash)),
        );
        assert!(!a.expect("checked"));
        assert!(b.expect("checked"));
        let refused = c.expect_err("a third check at once is refused");
        assert_eq!(refused.to_body().code, qchat_protocol::ErrorCode::Unavailable);
        assert!(auth.verify("correct horse", Some(&hash)).await.expect("permits come back"));
    }
}

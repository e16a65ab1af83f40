//! Who may start a connection: the overall cap, the per-address cap, and
//! QUIC Retry (address validation) when many handshakes are in flight — the
//! cheap defence against spoofed-source floods, since a Retry costs the
//! server no state.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use crate::config::Limits;

/// Connection bookkeeping shared by the accept loop and the connections.
#[derive(Debug, Default)]
pub(crate) struct Admission {
    /// Open connections per address. std Mutex: never held across an await.
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    open: AtomicUsize,
    handshaking: AtomicUsize,
}

/// What to do with an incoming connection.
pub(crate) enum Decision {
    /// Accept it; the ticket frees its slots when dropped.
    Accept(Ticket),
    /// Ask the client to prove its address first.
    Retry,
    /// Refuse: a cap is reached (the reason is for the log).
    Refuse(&'static str),
}

impl Admission {
    /// Decides for a connection from `ip` whose address is `validated` or not.
    pub(crate) fn decide(self: &Arc<Self>, ip: IpAddr, validated: bool, l: &Limits) -> Decision {
        if self.open.load(Relaxed) >= l.max_connections {
            return Decision::Refuse("at capacity");
        }
        if !validated && self.handshaking.load(Relaxed) >= l.retry_above_handshakes {
            return Decision::Retry;
        }
        let mut per_ip = self.per_ip.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = per_ip.entry(ip).or_insert(0);
        if *n >= l.max_connections_per_ip {
            return Decision::Refuse("too many connections from this address");
        }
        *n += 1;
        drop(per_ip);
        self.open.fetch_add(1, Relaxed);
        self.handshaking.fetch_add(1, Relaxed);
        Decision::Accept(Ticket { admission: self.clone(), ip, handshaking: true })
    }
}

/// A connection's claim on its slots.
pub(crate) struct Ticket {
    admission: Arc<Admission>,
    ip: IpAddr,
    handshaking: bool,
}

impl Ticket {
    /// The handshake is over (either way).
    pub(crate) fn handshake_done(&mut self) {
        if std::mem::take(&mut self.handshaking) {
            self.admission.handshaking.fetch_sub(1, Relaxed);
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.handshake_done();
        self.admission.open.fetch_sub(1, Relaxed);
        let mut per_ip =
            self.admission.per_ip.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                per_ip.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_and_retry() {
        let a = Arc::new(Admission::default());
        let l =
            Limits { max_connections_per_ip: 2, retry_above_handshakes: 3, ..Limits::default() };
        let ip: IpAddr = [10, 0, 0, 1].into();
        let other: IpAddr = [10, 0, 0, 2].into();
        let Decision::Accept(mut t1) = a.decide(ip, false, &l) else { panic!("first is accepted") };
        let t2 = a.decide(ip, false, &l);
        assert!(matches!(t2, Decision::Accept(_)));
        assert!(matches!(a.decide(ip, true, &l), Decision::Refuse(_)), "per-address cap");
        let t3 = a.decide(other, false, &l);
        assert!(matches!(t3, Decision::Accept(_)));
        assert!(matches!(a.decide(other, false, &l), Decision::Retry), "3 handshaking");
        t1.handshake_done();
        drop(t1);
        assert!(matches!(a.decide(ip, true, &l), Decision::Accept(_)), "slot freed");
        drop((t2, t3));
        assert!(a.per_ip.lock().expect("lock").is_empty());
    }
}

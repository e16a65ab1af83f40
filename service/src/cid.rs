//! Connection IDs that name the node, for a UDP load balancer that routes
//! QUIC packets by their destination connection ID (the QUIC-LB idea, in
//! its plaintext form): every ID this node issues is 8 bytes, the first the
//! node's `cid_prefix`, the other seven random. A balancer sends a packet
//! whose destination ID starts with a node's byte to that node, and any
//! other (a client's first Initial, whose ID the client chose) by a hash of
//! its addresses. A connection that migrates keeps its IDs, so it keeps its
//! node behind the balancer.
//!
//! The byte tells an observer which node a connection is on and nothing
//! more: the rest of every ID is fresh randomness, so IDs of one connection
//! still cannot be linked to each other.

use std::time::Duration;

use quinn::{ConnectionId, ConnectionIdGenerator};

/// Length of the IDs issued (quinn's default length too).
pub(crate) const CID_LEN: usize = 8;

/// Issues IDs that start with the node's byte.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NodeCids {
    /// The node's byte.
    pub(crate) prefix: u8,
}

impl ConnectionIdGenerator for NodeCids {
    fn generate_cid(&mut self) -> ConnectionId {
        let tail: [u8; CID_LEN - 1] = rand::random();
        let mut id = [0u8; CID_LEN];
        id[0] = self.prefix;
        id[1..].copy_from_slice(&tail);
        ConnectionId::new(&id)
    }

    fn cid_len(&self) -> usize {
        CID_LEN
    }

    fn cid_lifetime(&self) -> Option<Duration> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_start_with_the_prefix_and_differ() {
        let mut g = NodeCids { prefix: 0xa7 };
        let a = g.generate_cid();
        let b = g.generate_cid();
        assert_eq!(a.len(), CID_LEN);
        assert_eq!((a[0], b[0]), (0xa7, 0xa7));
        assert_ne!(a, b);
        assert_eq!(g.cid_len(), CID_LEN);
    }
}

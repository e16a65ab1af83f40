//! The fan-out baseline: a minimal quinn server with `qchatd`'s transport
//! settings and the same shape as qchat's hub (one bounded queue and writer
//! task per connection, frames shared by reference count), but no JSON,
//! storage, ordering or auth. Each client opens one stream and writes an empty
//! frame; the server answers with an empty frame once the client is
//! registered, then forwards every non-empty frame any client writes to every
//! connected client, the writer included.
//!
//! It runs in its own process (`qchat-bench worker fanout-server`), as
//! `qchatd` does, and stops when its standard input closes.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::{BufMut as _, Bytes, BytesMut};
use tokio::sync::mpsc;
use tokio_util::task::TaskTracker;

use super::link;
use crate::baseline::{self, ServerArgs};

/// Frames queued per connection, as `qchatd`'s default `outbound_queue`.
const QUEUE: usize = 1024;

#[derive(Default)]
struct Hub {
    /// std Mutex: held only for map updates and non-blocking sends.
    subs: Mutex<HashMap<u64, mpsc::Sender<Bytes>>>,
    dropped: AtomicU64,
}

/// Serves until standard input closes.
pub(crate) async fn run(args: ServerArgs) -> anyhow::Result<()> {
    let addr = SocketAddr::from(([127, 0, 0, 1], 0));
    // With the socket buffers qchatd asks for (its server.rs), so bursts of
    // acknowledgements from hundreds of clients are not dropped here alone.
    let (endpoint, cert) = baseline::server(addr)?;
    baseline::announce(&endpoint, &cert, &args.cert_out)?;
    let hub = Arc::new(Hub::default());
    let tracker = TaskTracker::new();
    let mut ids = 0u64;
    let stdin_closed = baseline::stdin_closed();
    tokio::pin!(stdin_closed);
    loop {
        let incoming = tokio::select! {
            () = &mut stdin_closed => break,
            i = endpoint.accept() => match i { Some(i) => i, None => break },
        };
        ids += 1;
        tracker.spawn(serve(incoming, hub.clone(), ids));
    }
    endpoint.close(0u32.into(), b"done");
    tracker.close();
    let _ = tokio::time::timeout(Duration::from_secs(5), tracker.wait()).await;
    eprintln!(
        "baseline fan-out: {} frames dropped on full queues",
        hub.dropped.load(Ordering::Relaxed)
    );
    Ok(())
}

async fn serve(incoming: quinn::Incoming, hub: Arc<Hub>, id: u64) {
    let Ok(connecting) = incoming.accept() else { return };
    let Ok(conn) = connecting.await else { return };
    let Ok((mut send, recv)) = conn.accept_bi().await else { return };
    let (tx, mut rx) = mpsc::channel::<Bytes>(QUEUE);
    let writer = tokio::spawn(async move {
        while let Some(frame) = rx.recv().await {
            if send.write_all(&frame).await.is_err() {
                break;
            }
        }
    });
    let welcome = Bytes::from_static(&[0, 0, 0, 0]);
    hub.subs.lock().unwrap_or_else(PoisonError::into_inner).insert(id, tx.clone());
    let _ = tx.try_send(welcome);
    let mut reader = link::frames(recv);
    while let Ok(Some(payload)) = reader.next().await {
        if payload.is_empty() {
            continue;
        }
        // Framed once, shared by every subscriber.
        let mut buf = BytesMut::with_capacity(payload.len() + 4);
        buf.put_u32(u32::try_from(payload.len()).unwrap_or(u32::MAX));
        buf.put_slice(&payload);
        let frame = buf.freeze();
        let subs = hub.subs.lock().unwrap_or_else(PoisonError::into_inner);
        for out in subs.values() {
            if out.try_send(frame.clone()).is_err() {
                hub.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    hub.subs.lock().unwrap_or_else(PoisonError::into_inner).remove(&id);
    drop(tx);
    let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
    conn.close(0u32.into(), b"bye");
}

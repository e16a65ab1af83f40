//! Sending one file on a server-opened unidirectional stream: a header frame
//! ([`DownloadHeader`]) then the bytes from the requested offset; and a
//! connection's [`Downloads`], the slots and tasks of its streams.

use std::sync::Arc;

use qchat_protocol::{DownloadHeader, StreamCode, encode_json};
use quinn::{Connection, VarInt};
use tokio::io::AsyncReadExt as _;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use crate::db::TenantId;
use crate::metrics::TransferGuard;
use crate::store::ContentStore;

const CHUNK: usize = 256 * 1024;

/// A connection's downloads: a bounded number of slots, and a task per
/// download stream, owned here and aborted when the connection ends. The
/// slots and the task set are made with the first download: most
/// connections never download, and an idle one should hold nothing for it
/// (docs/BENCHMARKS.md, "Idle connections").
pub(crate) struct Downloads {
    /// The connection the streams are opened on.
    conn: Connection,
    /// One task per download in progress.
    tasks: Option<JoinSet<()>>,
    /// Download slots of this connection.
    slots: Option<Arc<Semaphore>>,
    /// How many slots.
    max: usize,
}

impl Downloads {
    /// No downloads yet on `conn`, and `max` slots for them.
    pub(crate) fn new(conn: Connection, max: usize) -> Self {
        Self { conn, tasks: None, slots: None, max }
    }

    /// A free download slot, or `None` when all are taken.
    pub(crate) fn slot(&mut self) -> Option<OwnedSemaphorePermit> {
        let max = self.max;
        let slots = self.slots.get_or_insert_with(|| Arc::new(Semaphore::new(max)));
        Arc::clone(slots).try_acquire_owned().ok()
    }

    /// Starts streaming the tenant's content `header.hash` from `content`
    /// as [`send`] does, holding `slot` until done.
    pub(crate) fn start(
        &mut self,
        content: Arc<dyn ContentStore>,
        tenant: TenantId,
        header: DownloadHeader,
        slot: OwnedSemaphorePermit,
        active: TransferGuard,
    ) {
        let conn = self.conn.clone();
        let tasks = self.tasks.get_or_insert_with(JoinSet::new);
        tasks.spawn(send(conn, content, tenant, header, slot, active));
    }

    /// Whether no download task is left to reap.
    pub(crate) fn is_empty(&self) -> bool {
        self.tasks.as_ref().is_none_or(JoinSet::is_empty)
    }

    /// Waits for the next download task to end; `None` when there is none.
    pub(crate) async fn join_next(&mut self) -> Option<()> {
        self.tasks.as_mut()?.join_next().await.map(|_| ())
    }

    /// Aborts every download still running (the connection ends).
    pub(crate) fn abort_all(&mut self) {
        if let Some(tasks) = &mut self.tasks {
            tasks.abort_all();
        }
    }
}

/// Streams the content from `header.offset` to the client. Holds `permit`
/// (the connection's download slot) and `_active` (the metrics gauge) until
/// done.
async fn send(
    conn: Connection,
    content: Arc<dyn ContentStore>,
    tenant: TenantId,
    header: DownloadHeader,
    _permit: OwnedSemaphorePermit,
    _active: TransferGuard,
) {
    if let Err(e) = send_inner(&conn, content.as_ref(), tenant, &header).await {
        tracing::debug!(file_id = header.file_id, cause = %e, "download ended early");
    }
}

async fn send_inner(
    conn: &Connection,
    content: &dyn ContentStore,
    tenant: TenantId,
    header: &DownloadHeader,
) -> Result<(), SendError> {
    let mut send = conn.open_uni().await?;
    let mut file = match content.open(tenant, &header.hash, header.offset).await {
        Ok(f) => f,
        Err(e) => {
            tracing::error!(hash = %header.hash, cause = %e, "stored file missing");
            let _ = send.reset(VarInt::from_u32(StreamCode::Internal.code()));
            return Ok(());
        }
    };
    let frame = encode_json(header)?;
    send.write_all(&frame).await?;
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = file.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        send.write_all(&buf[..n]).await?;
    }
    send.finish()?;
    // Wait until the client has everything (or stops), so the stream is not
    // cut short by a close.
    let _ = send.stopped().await;
    Ok(())
}

/// Why a download stream ended early; only logged (the client sees the
/// stream reset or the connection gone).
#[derive(Debug, thiserror::Error)]
enum SendError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Connection(#[from] quinn::ConnectionError),
    #[error(transparent)]
    Write(#[from] quinn::WriteError),
    #[error(transparent)]
    Closed(#[from] quinn::ClosedStream),
    #[error(transparent)]
    Encode(#[from] qchat_protocol::EncodeError),
}

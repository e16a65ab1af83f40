//! Sending one file on a server-opened unidirectional stream: a header frame
//! ([`DownloadHeader`]) then the bytes from the requested offset.

use std::path::PathBuf;

use qchat_protocol::{DownloadHeader, StreamCode, encode_json};
use quinn::{Connection, VarInt};
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};
use tokio::sync::OwnedSemaphorePermit;

use crate::metrics::TransferGuard;

const CHUNK: usize = 256 * 1024;

/// Streams `path` from `header.offset` to the client. Holds `permit` (the
/// connection's download slot) and `_active` (the metrics gauge) until done.
pub(crate) async fn send(
    conn: Connection,
    path: PathBuf,
    header: DownloadHeader,
    _permit: OwnedSemaphorePermit,
    _active: TransferGuard,
) {
    if let Err(e) = send_inner(&conn, &path, &header).await {
        tracing::debug!(file_id = header.file_id, cause = %e, "download ended early");
    }
}

async fn send_inner(
    conn: &Connection,
    path: &PathBuf,
    header: &DownloadHeader,
) -> Result<(), SendError> {
    let mut send = conn.open_uni().await?;
    let mut file = match tokio::fs::File::open(path).await {
        Ok(f) => f,
        Err(e) => {
            tracing::error!(path = %path.display(), cause = %e, "stored file missing");
            let _ = send.reset(VarInt::from_u32(StreamCode::Internal.code()));
            return Ok(());
        }
    };
    let frame = encode_json(header)?;
    send.write_all(&frame).await?;
    file.seek(std::io::SeekFrom::Start(header.offset)).await?;
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

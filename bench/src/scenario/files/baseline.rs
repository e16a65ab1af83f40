//! The baseline for `files`: a bare quinn sender and sink with qchatd's
//! transport settings ([`crate::baseline`]) and no qchat logic. The sender
//! opens one unidirectional stream per file, writes a 4-byte file index and
//! the file's bytes (read from disk with the client library's reader), and
//! finishes it; the sink reads and discards the bytes (32 chunks per read,
//! as qchatd takes them) and, at each stream's
//! end, acknowledges `(index, bytes)` on the one bidirectional stream the
//! sender opened first — as qchatd reports `upload.done` on the control
//! stream. The sender's clock stops when every file is acknowledged.
//!
//! The sink runs in its own process (`qchat-bench worker files-sink`), as
//! qchatd does, while the sender runs in this one, as the qchat client
//! library does: each side pays the same for being a process of its own
//! (scheduling between two processes on two cores), and each side's CPU
//! time is read from its own process.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use qchat_client::FileChunks;
use quinn::{Connection, Endpoint, RecvStream};
use rustls::pki_types::CertificateDer;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::baseline::{self, BaselineProcess, ServerArgs};

/// Bytes per read and write: the client library's upload chunk.
const CHUNK: usize = 1024 * 1024;
/// Bound on the whole transfer of one round.
const ROUND_LIMIT: Duration = Duration::from_secs(600);

/// The sink process (`worker files-sink`), stopped on drop.
pub(crate) struct Sink(BaselineProcess);

impl Sink {
    /// Starts the sink process on 127.0.0.1 and waits until it listens.
    pub(crate) async fn start() -> anyhow::Result<Self> {
        Ok(Self(BaselineProcess::start("files-sink").await?))
    }

    /// Where it listens.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.0.addr
    }

    /// The certificate to trust.
    pub(crate) fn cert(&self) -> &CertificateDer<'static> {
        &self.0.cert
    }

    /// Its process id.
    pub(crate) fn pid(&self) -> anyhow::Result<u32> {
        self.0.pid().context("the baseline sink has exited")
    }

    /// Stops it (bounded).
    pub(crate) async fn stop(self) {
        self.0.stop().await;
    }
}

/// The sink worker's body: serves senders until standard input closes.
pub(crate) async fn run(args: ServerArgs) -> anyhow::Result<()> {
    let (endpoint, cert) = baseline::server(SocketAddr::from(([127, 0, 0, 1], 0)))?;
    baseline::announce(&endpoint, &cert, &args.cert_out)?;
    let stop = CancellationToken::new();
    let serving = serve(endpoint, stop.clone());
    tokio::pin!(serving);
    tokio::select! {
        () = &mut serving => {}
        () = baseline::stdin_closed() => {
            stop.cancel();
            serving.await;
        }
    }
    Ok(())
}

/// Accepts connections until stopped; each connection's tasks end with it.
async fn serve(endpoint: Endpoint, stop: CancellationToken) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            incoming = endpoint.accept() => match incoming {
                Some(incoming) => {
                    conns.spawn(async move {
                        if let Ok(conn) = incoming.await
                            && let Err(e) = sink_connection(conn).await
                        {
                            eprintln!("baseline sink: {e:#}");
                        }
                    });
                }
                None => break,
            },
        }
    }
    endpoint.close(0u32.into(), b"done");
    conns.shutdown().await;
    let _ = tokio::time::timeout(Duration::from_secs(2), endpoint.wait_idle()).await;
}

/// One sender: its bidirectional stream carries the acknowledgements, each
/// unidirectional stream one file.
async fn sink_connection(conn: Connection) -> anyhow::Result<()> {
    let (mut acks, mut hello) = conn.accept_bi().await?;
    let mut byte = [0u8; 1];
    hello.read_exact(&mut byte).await?;
    let (tx, mut rx) = mpsc::unbounded_channel::<(u32, u64)>();
    let mut streams = JoinSet::new();
    loop {
        tokio::select! {
            uni = conn.accept_uni() => match uni {
                Ok(recv) => {
                    let tx = tx.clone();
                    streams.spawn(async move {
                        if let Ok(done) = drain(recv).await {
                            let _ = tx.send(done);
                        }
                    });
                }
                Err(_) => break,
            },
            Some((index, bytes)) = rx.recv() => {
                let mut ack = [0u8; 12];
                ack[..4].copy_from_slice(&index.to_be_bytes());
                ack[4..].copy_from_slice(&bytes.to_be_bytes());
                acks.write_all(&ack).await?;
            }
        }
    }
    Ok(())
}

/// Reads one file stream to its end, discarding the bytes.
async fn drain(mut recv: RecvStream) -> anyhow::Result<(u32, u64)> {
    let mut index = [0u8; 4];
    recv.read_exact(&mut index).await?;
    let mut bytes = 0u64;
    // As qchatd reads an upload: up to 32 chunks per lock of the connection.
    let mut chunks: [bytes::Bytes; 32] = Default::default();
    while let Some(n) = recv.read_chunks(&mut chunks).await? {
        for slot in &mut chunks[..n] {
            bytes += std::mem::take(slot).len() as u64;
        }
    }
    Ok((u32::from_be_bytes(index), bytes))
}

/// A connected sender: the connection and its acknowledgement stream.
pub(crate) struct Sender {
    endpoint: Endpoint,
    conn: Connection,
    acks: RecvStream,
    _hello: quinn::SendStream,
}

impl Sender {
    /// Connects to the sink at `addr` that presents `cert` (not timed, like
    /// the qchat client's login).
    pub(crate) async fn connect(
        addr: SocketAddr,
        cert: &CertificateDer<'static>,
    ) -> anyhow::Result<Self> {
        let endpoint = baseline::client(cert)?;
        let conn = endpoint.connect(addr, "localhost")?.await.context("baseline handshake")?;
        let (mut hello, acks) = conn.open_bi().await?;
        hello.write_all(&[0]).await?;
        Ok(Self { endpoint, conn, acks, _hello: hello })
    }

    /// Sends every file on its own stream at once; the time from the first
    /// stream opened to the last acknowledgement.
    pub(crate) async fn send(&mut self, files: &[(PathBuf, u64)]) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let mut senders = JoinSet::new();
        for (index, (path, _)) in files.iter().enumerate() {
            let conn = self.conn.clone();
            let path = path.clone();
            let index = u32::try_from(index)?;
            senders.spawn(async move { send_file(&conn, index, path).await });
        }
        let acks = async {
            let mut got = vec![None; files.len()];
            for _ in files {
                let mut ack = [0u8; 12];
                self.acks.read_exact(&mut ack).await?;
                let index = u32::from_be_bytes([ack[0], ack[1], ack[2], ack[3]]) as usize;
                let mut len = [0u8; 8];
                len.copy_from_slice(&ack[4..]);
                let slot = got.get_mut(index).context("acknowledged an unknown file")?;
                *slot = Some(u64::from_be_bytes(len));
            }
            anyhow::Ok(got)
        };
        let sent = async {
            while let Some(sent) = senders.join_next().await {
                sent??;
            }
            anyhow::Ok(())
        };
        let both = async { tokio::try_join!(acks, sent) };
        let (got, ()) =
            tokio::time::timeout(ROUND_LIMIT, both).await.context("baseline round timed out")??;
        let elapsed = started.elapsed();
        for ((_, size), got) in files.iter().zip(got) {
            ensure!(got == Some(*size), "sink got {got:?} of {size} bytes");
        }
        Ok(elapsed)
    }

    /// Closes the connection and waits for the close to go out.
    pub(crate) async fn close(self) {
        self.conn.close(0u32.into(), b"done");
        let _ = tokio::time::timeout(Duration::from_secs(2), self.endpoint.wait_idle()).await;
    }
}

/// One file on one unidirectional stream, read as the client library reads
/// it (with its [`FileChunks`]: 1 MiB at a time on the blocking pool,
/// straight into the `Bytes` handed to quinn with `write_chunk`, buffers
/// reused once quinn lets go), so both sides pay the same for the file.
async fn send_file(conn: &Connection, index: u32, path: PathBuf) -> anyhow::Result<()> {
    let file = tokio::task::spawn_blocking(move || std::fs::File::open(path)).await??;
    let mut chunks = FileChunks::new(file, None);
    let mut stream = conn.open_uni().await?;
    stream.write_all(&index.to_be_bytes()).await?;
    loop {
        let chunk = chunks.next(CHUNK).await?;
        if chunk.is_empty() {
            break;
        }
        stream.write_chunk(chunk).await?;
    }
    stream.finish()?;
    Ok(())
}

/// Checks that a tiny round moves every byte (not timed).
#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_byte_reaches_the_sink_and_is_acknowledged() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let mut files = Vec::new();
        for (i, len) in [0usize, 1, 300_000, 1 << 20].into_iter().enumerate() {
            let path = dir.path().join(format!("f{i}"));
            std::fs::write(&path, vec![7u8; len])?;
            files.push((path, len as u64));
        }
        // The sink's serving loop in this process (the worker process is
        // this loop behind `worker files-sink`, which a test binary lacks).
        let (endpoint, cert) = baseline::server(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        let addr = endpoint.local_addr()?;
        let stop = CancellationToken::new();
        let sink = tokio::spawn(serve(endpoint, stop.clone()));
        let mut sender = Sender::connect(addr, &cert).await?;
        sender.send(&files).await?;
        // A second round on the same connection works the same way.
        sender.send(&files[2..]).await?;
        sender.close().await;
        stop.cancel();
        tokio::time::timeout(Duration::from_secs(10), sink).await??;
        Ok(())
    }
}

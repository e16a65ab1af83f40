//! The [`Router`]: hands what arrives for transfers — server-opened
//! download streams, `upload.done` / `upload.failed` events, file messages
//! that complete an upload — to the task waiting for it.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use qchat_protocol::{
    DownloadHeader, ErrorBody, Event, FileInfo, Message, MessageKind, StreamCode,
};
use tokio::sync::{mpsc, oneshot};
use tracing::debug;

use crate::mutex::lock;

/// How long a server-opened stream may take to deliver its header frame.
const HEADER_WAIT: Duration = Duration::from_secs(10);

/// What the server said about an upload, from its event or its file message.
#[derive(Debug, Clone)]
pub(crate) enum UploadOutcome {
    /// Stored: the file and its message's seq.
    Done { file: FileInfo, seq: u64 },
    /// `upload.failed`.
    Failed(ErrorBody),
}

/// A server-opened stream with its header already read.
pub(crate) struct Incoming {
    pub(crate) header: DownloadHeader,
    pub(crate) stream: quinn::RecvStream,
}

/// Routes what arrives for transfers to the task waiting for it. Cheap to
/// clone; entries are removed by the guards the waiting tasks hold.
#[derive(Clone, Default)]
pub(crate) struct Router {
    inner: Arc<Mutex<RouterInner>>,
}

/// Downloads waiting for a stream, by `(file_id, offset)`, oldest first,
/// each with the token its guard removes it by.
type DownloadWaiters = HashMap<(u64, u64), Vec<(u64, oneshot::Sender<Incoming>)>>;

#[derive(Default)]
struct RouterInner {
    next_token: u64,
    uploads: HashMap<String, mpsc::Sender<UploadOutcome>>,
    downloads: DownloadWaiters,
    parts: HashSet<PathBuf>,
}

/// Receives the outcomes of one upload; unregisters on drop.
pub(crate) struct UploadWaiter {
    router: Router,
    upload_id: String,
    pub(crate) rx: mpsc::Receiver<UploadOutcome>,
}

impl Drop for UploadWaiter {
    fn drop(&mut self) {
        lock(&self.router.inner).uploads.remove(&self.upload_id);
    }
}

/// Receives the stream for one `file.get`; unregisters on drop.
pub(crate) struct DownloadWaiter {
    router: Router,
    key: (u64, u64),
    token: u64,
    pub(crate) rx: oneshot::Receiver<Incoming>,
}

impl Drop for DownloadWaiter {
    fn drop(&mut self) {
        let mut inner = lock(&self.router.inner);
        if let Some(list) = inner.downloads.get_mut(&self.key) {
            list.retain(|(t, _)| *t != self.token);
            if list.is_empty() {
                inner.downloads.remove(&self.key);
            }
        }
    }
}

/// A partial-download path in use by one download of this client.
pub(crate) struct PartClaim {
    router: Router,
    path: PathBuf,
}

impl Drop for PartClaim {
    fn drop(&mut self) {
        lock(&self.router.inner).parts.remove(&self.path);
    }
}

impl Router {
    /// Starts listening for the outcome of `upload_id`.
    pub(crate) fn watch_upload(&self, upload_id: &str) -> UploadWaiter {
        let (tx, rx) = mpsc::channel(8);
        lock(&self.inner).uploads.insert(upload_id.to_owned(), tx);
        UploadWaiter { router: self.clone(), upload_id: upload_id.to_owned(), rx }
    }

    /// Registers interest in the stream `file.get(file_id, offset)` will open.
    pub(crate) fn expect_download(&self, file_id: u64, offset: u64) -> DownloadWaiter {
        let (tx, rx) = oneshot::channel();
        let mut inner = lock(&self.inner);
        inner.next_token += 1;
        let token = inner.next_token;
        inner.downloads.entry((file_id, offset)).or_default().push((token, tx));
        DownloadWaiter { router: self.clone(), key: (file_id, offset), token, rx }
    }

    /// Claims a partial-download path; `None` when another download of this
    /// client writes it.
    pub(crate) fn claim_part(&self, path: &Path) -> Option<PartClaim> {
        let mut inner = lock(&self.inner);
        inner
            .parts
            .insert(path.to_path_buf())
            .then(|| PartClaim { router: self.clone(), path: path.to_path_buf() })
    }

    /// Hands an `upload.done` / `upload.failed` event to its upload. Returns
    /// the event back when it is not one of those.
    pub(crate) fn upload_event(&self, ev: Event) -> Option<Event> {
        let (id, outcome) = match ev {
            Event::UploadDone(d) => (d.upload_id, UploadOutcome::Done { file: d.file, seq: d.seq }),
            Event::UploadFailed(f) => {
                (f.upload_id, UploadOutcome::Failed(ErrorBody::new(f.code, f.message)))
            }
            other => return Some(other),
        };
        self.notify_upload(&id, outcome);
        None
    }

    /// A file message whose `client_msg_id` is `upload:<id>` also completes
    /// that upload: it is how an upload that finished while the connection
    /// was down learns so (the message comes with the sync after reconnect).
    pub(crate) fn file_message(&self, msg: &Message) {
        if msg.kind != MessageKind::File {
            return;
        }
        let (Some(id), Some(file)) =
            (msg.client_msg_id.as_deref().and_then(|c| c.strip_prefix("upload:")), &msg.file)
        else {
            return;
        };
        self.notify_upload(id, UploadOutcome::Done { file: file.clone(), seq: msg.seq });
    }

    fn notify_upload(&self, id: &str, outcome: UploadOutcome) {
        let tx = lock(&self.inner).uploads.get(id).cloned();
        match tx {
            // A full queue only holds duplicates of outcomes already queued.
            Some(tx) => drop(tx.try_send(outcome)),
            None => debug!(upload_id = id, "upload outcome for no upload in flight"),
        }
    }

    /// Reads the header of a server-opened stream and hands the stream to the
    /// download waiting for it; a stream nobody waits for is stopped.
    pub(crate) async fn route(self, mut stream: quinn::RecvStream) {
        let header = match tokio::time::timeout(HEADER_WAIT, read_header(&mut stream)).await {
            Ok(Ok(h)) => h,
            Ok(Err(why)) => {
                debug!(%why, "bad download stream header");
                let _ = stream.stop(StreamCode::BadHeader.code().into());
                return;
            }
            Err(_) => {
                let _ = stream.stop(StreamCode::BadHeader.code().into());
                return;
            }
        };
        let key = (header.file_id, header.offset);
        let mut incoming = Incoming { header, stream };
        loop {
            let waiter = {
                let mut inner = lock(&self.inner);
                let next = inner
                    .downloads
                    .get_mut(&key)
                    .and_then(|l| if l.is_empty() { None } else { Some(l.remove(0).1) });
                if inner.downloads.get(&key).is_some_and(Vec::is_empty) {
                    inner.downloads.remove(&key);
                }
                next
            };
            let Some(tx) = waiter else {
                debug!(file_id = key.0, offset = key.1, "download stream nobody waits for");
                let _ = incoming.stream.stop(StreamCode::Cancelled.code().into());
                return;
            };
            match tx.send(incoming) {
                Ok(()) => return,
                // That download gave up meanwhile; try the next one.
                Err(back) => incoming = back,
            }
        }
    }
}

async fn read_header(stream: &mut quinn::RecvStream) -> Result<DownloadHeader, String> {
    let mut prefix = [0u8; 4];
    stream.read_exact(&mut prefix).await.map_err(|e| e.to_string())?;
    let len = qchat_protocol::stream_header_len(prefix).map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; len];
    stream.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
    qchat_protocol::decode_stream_header(&buf).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_messages_complete_their_upload() {
        let router = Router::default();
        let mut waiter = router.watch_upload("abc");
        let file = FileInfo { id: 3, name: "x".into(), size: 1, hash: "00".repeat(32) };
        let mut msg = Message::text("r", 9, "ann", 0, "x");
        msg.kind = MessageKind::File;
        msg.client_msg_id = Some("upload:abc".into());
        msg.file = Some(file.clone());
        router.file_message(&msg);
        assert!(matches!(
            waiter.rx.try_recv(),
            Ok(UploadOutcome::Done { seq: 9, file: f }) if f == file
        ));
        drop(waiter);
        assert!(lock(&router.inner).uploads.is_empty());
    }
}

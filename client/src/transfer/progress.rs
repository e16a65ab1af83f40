//! What a transfer reports — its state ([`UploadState`], [`DownloadState`]),
//! progress snapshots and result — and the one handle, [`TransferHandle`],
//! an application holds for an upload or a download.

use std::path::PathBuf;

use qchat_protocol::FileInfo;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::TransferError;

/// Where an upload stands.
#[derive(Debug, Clone, PartialEq)]
pub enum UploadState {
    /// Reading the start of the file for `upload.begin`, or, when the
    /// server says the tenant may hold the content already, computing the
    /// whole file's BLAKE3 first (`done` counts bytes hashed).
    Hashing,
    /// Waiting for the connection (reconnecting) or a stream.
    Waiting,
    /// Sending bytes (`done` counts bytes the server holds or has in flight).
    Sending,
    /// Every byte is sent; the server is verifying and storing the file.
    Verifying,
    /// Stored and offered to the room.
    Done(Uploaded),
    /// Given up.
    Failed(TransferError),
}

/// A finished upload.
#[derive(Debug, Clone, PartialEq)]
pub struct Uploaded {
    /// The stored file (use its `id` with [`crate::Client::download`]).
    pub file: FileInfo,
    /// Seq of the file message in the room.
    pub seq: u64,
    /// File bytes written to upload streams, over every attempt (0 when the
    /// server already held the content).
    pub sent: u64,
    /// Offset the last stream started from (above 0 after a resume).
    pub resumed_from: u64,
    /// The tenant already stored this content; no bytes were sent.
    pub deduplicated: bool,
}

/// A snapshot of one upload.
#[derive(Debug, Clone, PartialEq)]
pub struct UploadProgress {
    /// Display name sent to the server (it may sanitize it further).
    pub name: String,
    /// Room the file is offered to.
    pub room: String,
    /// File size in bytes (0 until known).
    pub total: u64,
    /// Bytes hashed while [`UploadState::Hashing`], else bytes of the file
    /// accounted for: held by the server plus sent on the current stream.
    pub done: u64,
    /// File bytes written to upload streams so far, over every attempt.
    pub sent: u64,
    /// The state.
    pub state: UploadState,
}

impl UploadProgress {
    /// Whether the upload ended (done or failed).
    pub fn is_finished(&self) -> bool {
        matches!(self.state, UploadState::Done(_) | UploadState::Failed(_))
    }
}

/// Where a download stands.
#[derive(Debug, Clone, PartialEq)]
pub enum DownloadState {
    /// Asking the server (`file.get`) and waiting for its stream.
    Requesting,
    /// Waiting for the connection (reconnecting) or a download slot.
    Waiting,
    /// Receiving bytes.
    Receiving,
    /// Hashing the received file.
    Verifying,
    /// Verified and renamed into place.
    Done(Downloaded),
    /// Given up; the partial file is kept for a later resume unless it was
    /// found corrupt.
    Failed(TransferError),
}

/// A finished download.
#[derive(Debug, Clone, PartialEq)]
pub struct Downloaded {
    /// The file as the server describes it.
    pub file: FileInfo,
    /// Where it was written.
    pub path: PathBuf,
    /// Bytes received over the network, over every attempt.
    pub received: u64,
}

/// A snapshot of one download.
#[derive(Debug, Clone, PartialEq)]
pub struct DownloadProgress {
    /// The file (offer) id asked for.
    pub file_id: u64,
    /// The offer's display name (sanitized), empty until the server's first
    /// reply.
    pub name: String,
    /// File size (0 until known).
    pub total: u64,
    /// Bytes of the file on disk so far.
    pub done: u64,
    /// Bytes received over the network, over every attempt.
    pub received: u64,
    /// The state.
    pub state: DownloadState,
}

impl DownloadProgress {
    /// Whether the download ended (done or failed).
    pub fn is_finished(&self) -> bool {
        matches!(self.state, DownloadState::Done(_) | DownloadState::Failed(_))
    }
}

/// Handle to a file transfer: an upload ([`UploadHandle`]) or a download
/// ([`DownloadHandle`]). Clones watch the same transfer; dropping them does
/// not stop it (use [`Self::cancel`]).
#[derive(Debug, Clone)]
pub struct TransferHandle<P> {
    progress: watch::Receiver<P>,
    cancel: CancellationToken,
}

/// Handle to an upload started with [`crate::Client::upload`].
pub type UploadHandle = TransferHandle<UploadProgress>;

/// Handle to a download started with [`crate::Client::download`].
pub type DownloadHandle = TransferHandle<DownloadProgress>;

/// A transfer's progress snapshot, as its [`TransferHandle`] reads it:
/// [`UploadProgress`] or [`DownloadProgress`].
pub trait TransferProgress: Clone {
    /// What a finished transfer gives: [`Uploaded`] or [`Downloaded`].
    type Output;

    /// Whether the transfer ended (done or failed).
    fn is_finished(&self) -> bool;

    /// How the transfer ended; [`TransferError::Cancelled`] if it has not.
    ///
    /// # Errors
    /// Why it failed.
    fn outcome(self) -> Result<Self::Output, TransferError>;
}

impl TransferProgress for UploadProgress {
    type Output = Uploaded;

    fn is_finished(&self) -> bool {
        Self::is_finished(self)
    }

    fn outcome(self) -> Result<Uploaded, TransferError> {
        match self.state {
            UploadState::Done(u) => Ok(u),
            UploadState::Failed(e) => Err(e),
            _ => Err(TransferError::Cancelled),
        }
    }
}

impl TransferProgress for DownloadProgress {
    type Output = Downloaded;

    fn is_finished(&self) -> bool {
        Self::is_finished(self)
    }

    fn outcome(self) -> Result<Downloaded, TransferError> {
        match self.state {
            DownloadState::Done(d) => Ok(d),
            DownloadState::Failed(e) => Err(e),
            _ => Err(TransferError::Cancelled),
        }
    }
}

impl<P: TransferProgress> TransferHandle<P> {
    /// The handle of a transfer that reports to `progress` and stops when
    /// `cancel` fires.
    pub(crate) fn new(progress: watch::Receiver<P>, cancel: CancellationToken) -> Self {
        Self { progress, cancel }
    }

    /// A receiver of progress snapshots (`changed()` wakes on every update).
    pub fn progress(&self) -> watch::Receiver<P> {
        self.progress.clone()
    }

    /// The latest snapshot.
    pub fn snapshot(&self) -> P {
        self.progress.borrow().clone()
    }

    /// Stops the transfer. An upload's bytes stay on the server for a later
    /// `upload.begin` of the same file to resume; a download's partial file
    /// stays for a later resume.
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    /// Waits until the transfer ends.
    ///
    /// # Errors
    /// Why it failed; [`TransferError::Cancelled`] when cancelled or when the
    /// client stopped.
    pub async fn wait(&self) -> Result<P::Output, TransferError> {
        let mut rx = self.progress.clone();
        match rx.wait_for(P::is_finished).await {
            Ok(p) => (*p).clone().outcome(),
            Err(_) => Err(TransferError::Cancelled),
        }
    }
}

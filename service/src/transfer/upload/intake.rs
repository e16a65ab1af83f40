//! The receive side of an upload stream: its bytes off the stream, checked
//! against the declared size and the tenant's quota as they arrive, into
//! the partial file's writer; then a hash-later upload's trailer.

use bytes::Bytes;
use qchat_protocol::{StreamCode, TRAILER_LEN};
use quinn::RecvStream;
use tokio_util::sync::CancellationToken;

use super::{Failure, fail, internal};
use crate::db::Upload;
use crate::state::Shared;
use crate::transfer::writer::{Finished, HeadHasher, PartWriter};
use crate::transfer::{Claim, Reserve, TakenBy};

/// Chunks (a packet's worth of stream data each) taken off the stream per
/// read: one lock of the connection's state for all of them, where a read
/// per chunk took it once per packet.
const READ_CHUNKS: usize = 32;
/// Quota counted ahead of the bytes at once (see [`Intake`]).
const GRANT: u64 = 1024 * 1024;
/// Reads between looks at the stop signals while bytes keep coming.
const STOP_CHECK_EVERY: u32 = 64;

/// The trailer of a hash-later upload stream: the file's BLAKE3 digest.
pub(super) type Trailer = [u8; TRAILER_LEN];

/// Why the receive loop was told to stop.
#[derive(Debug, Clone, Copy)]
enum Stop {
    /// Another stream or request of the upload's owner takes it over.
    TakenOver(TakenBy),
    /// The connection's session ends.
    Closing,
    /// The uploader may no longer post in the room (kicked, banned, the
    /// room archived or deleted).
    Revoked,
}

impl Stop {
    /// A take-over and a closing connection keep what arrived for a
    /// resume; a revoked upload is gone.
    fn failure(self) -> Failure {
        match self {
            Self::TakenOver(by) => fail(StreamCode::Conflict, by.describe(), false),
            Self::Closing => fail(StreamCode::Unavailable, "the connection is closing", false),
            Self::Revoked => {
                fail(StreamCode::Forbidden, "you may no longer post in the upload's room", true)
            }
        }
    }
}

/// Receives the bytes after `held` into the partial file, hashing them on
/// into `hashers` (whole file, head), and fsyncs it; the hashers, the fsync
/// time and how the writes went, and the stream's trailer if the upload has
/// one.
pub(super) async fn receive_bytes(
    shared: &Shared,
    up: &Upload,
    held: u64,
    claim: &mut Claim,
    hashers: (blake3::Hasher, HeadHasher),
    recv: &mut RecvStream,
    closing: &CancellationToken,
) -> Result<(Finished, Option<Trailer>), Failure> {
    let path = shared.transfers.store.part_path(&up.id);
    let mut writer = PartWriter::open(path, hashers, shared.transfers.write_budget.clone())
        .await
        .map_err(|e| internal("opening partial upload", e))?;
    match receive_into(up, held, claim, &mut writer, recv, closing).await {
        Ok(trailer) => match writer.finish().await {
            Ok(finished) => Ok((finished, trailer)),
            Err(e) => Err(internal("writing partial upload", e)),
        },
        Err(f) => {
            // Other uploads may use the quota at once; whatever arrived is
            // in the file before the claim is let go, so a resume (or the
            // stream taking over) sees every byte.
            claim.release_in_flight();
            if let Err(e) = writer.close().await {
                tracing::warn!(upload_id = %up.id, cause = %e, "writing partial upload");
            }
            Err(f)
        }
    }
}

/// The receive loop: chunks from the stream, through the [`Intake`]'s
/// checks, to the writer.
async fn receive_into(
    up: &Upload,
    held: u64,
    claim: &mut Claim,
    writer: &mut PartWriter,
    recv: &mut RecvStream,
    closing: &CancellationToken,
) -> Result<Option<Trailer>, Failure> {
    // One waiter for the whole loop, not one registered per read.
    let stop = claim.stop_token();
    let taken_by = claim.taken_by();
    let revoked = claim.revoke_token();
    let stopped = async {
        tokio::select! {
            () = revoked.cancelled() => Stop::Revoked,
            () = stop.cancelled() => Stop::TakenOver(taken_by()),
            () = closing.cancelled() => Stop::Closing,
        }
    };
    tokio::pin!(stopped);
    let mut intake = Intake::new(up, held, claim);
    let mut chunks: [Bytes; READ_CHUNKS] = Default::default();
    let mut reads = 0u32;
    loop {
        reads = reads.wrapping_add(1);
        // Reads come first below, so a stream that always has bytes ready
        // would never let the select see a stop: look every so often.
        if reads.is_multiple_of(STOP_CHECK_EVERY)
            && (stop.is_cancelled() || closing.is_cancelled() || revoked.is_cancelled())
        {
            let why = if revoked.is_cancelled() {
                Stop::Revoked
            } else if stop.is_cancelled() {
                Stop::TakenOver(taken_by())
            } else {
                Stop::Closing
            };
            return Err(why.failure());
        }
        let read = tokio::select! {
            biased;
            r = recv.read_chunks(&mut chunks) => r,
            why = &mut stopped => return Err(why.failure()),
        };
        let count = match read {
            Ok(Some(count)) => count,
            Ok(None) => return intake.finish(),
            Err(e) => {
                // Connection lost or stream reset: keep what arrived for a resume.
                return Err(fail(
                    StreamCode::Unavailable,
                    format!("stream interrupted: {e}"),
                    false,
                ));
            }
        };
        for slot in &mut chunks[..count] {
            let data = intake.take(std::mem::take(slot))?;
            if !data.is_empty() {
                writer.write(data).await.map_err(|e| internal("writing partial upload", e))?;
            }
        }
    }
}

/// What the receive loop has taken so far, and the checks on the next
/// chunk: within the declared size (and, hash-later, the trailer after it)
/// and within the tenant's quota.
struct Intake<'a> {
    up: &'a Upload,
    claim: &'a mut Claim,
    /// File bytes taken, the held ones included.
    total: u64,
    /// Quota counted ahead, up to [`GRANT`] at a time, so the tenant-wide
    /// lock is taken once per grant rather than once per packet; never past
    /// the declared size, and given back with the claim.
    granted: u64,
    /// A hash-later upload's trailer, gathered once the file's bytes are in.
    trailer: Option<Vec<u8>>,
}

impl<'a> Intake<'a> {
    fn new(up: &'a Upload, held: u64, claim: &'a mut Claim) -> Self {
        let trailer = up.hash.is_none().then(|| Vec::with_capacity(TRAILER_LEN));
        Self { up, claim, total: held, granted: 0, trailer }
    }

    /// Takes the next chunk off the stream; gives back the part of it that
    /// is file bytes (empty when it was all trailer).
    fn take(&mut self, mut chunk: Bytes) -> Result<Bytes, Failure> {
        let size = self.up.size;
        if let Some(t) = &mut self.trailer
            && self.total + chunk.len() as u64 > size
        {
            // `total <= size` here: the rest of the chunk is trailer.
            let file_part = usize::try_from(size.saturating_sub(self.total)).unwrap_or(usize::MAX);
            let rest = chunk.split_off(file_part.min(chunk.len()));
            if t.len() + rest.len() > TRAILER_LEN {
                return Err(fail(
                    StreamCode::SizeMismatch,
                    format!("more than the declared {size} bytes and the trailer"),
                    true,
                ));
            }
            t.extend_from_slice(&rest);
        }
        let n = chunk.len() as u64;
        if self.total + n > size {
            return Err(fail(
                StreamCode::SizeMismatch,
                format!("more than the declared {size} bytes"),
                true,
            ));
        }
        if n > self.granted {
            // `total + n <= size`, so this never reaches past the size.
            let want = (n - self.granted).max(GRANT.min(size - self.total - self.granted));
            if self.claim.reserve(want) == Reserve::OverQuota {
                return Err(fail(
                    StreamCode::QuotaExceeded,
                    "the tenant's storage quota is used up",
                    true,
                ));
            }
            self.granted += want;
        }
        self.granted -= n;
        self.total += n;
        Ok(chunk)
    }

    /// The stream ended: every declared byte must be in, and a hash-later
    /// upload's whole trailer.
    fn finish(self) -> Result<Option<Trailer>, Failure> {
        if self.total != self.up.size {
            return Err(fail(
                StreamCode::SizeMismatch,
                format!("stream ended at {} of {} bytes", self.total, self.up.size),
                true,
            ));
        }
        match self.trailer {
            None => Ok(None),
            Some(t) => match Trailer::try_from(t.as_slice()) {
                Ok(digest) => Ok(Some(digest)),
                Err(_) => Err(fail(
                    StreamCode::HashMismatch,
                    format!("stream ended {} bytes into its {TRAILER_LEN}-byte trailer", t.len()),
                    true,
                )),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{RoomId, TenantId, UserId};

    fn upload(size: u64, hash_later: bool) -> Upload {
        Upload {
            id: "u".into(),
            tenant: TenantId(1),
            user: UserId(1),
            room: RoomId(1),
            room_label: crate::db::RoomLabel {
                name: "general".into(),
                id: "+0000000000000001".into(),
            },
            user_name: "ann".into(),
            name: "f".into(),
            size,
            hash: (!hash_later).then(|| "0".repeat(64)),
        }
    }

    /// A claim on upload "u" with `quota` bytes for the tenant, none stored.
    fn claim(dir: &tempfile::TempDir, quota: u64) -> Claim {
        let transfers = crate::transfer::tests::transfers(dir, quota);
        let mut claim = transfers.try_claim("u", TenantId(1)).expect("free");
        claim.set_stored(0, claim.stored_mark());
        claim
    }

    fn code<T>(r: Result<T, Failure>) -> Option<StreamCode> {
        r.err().map(|f| f.code)
    }

    #[test]
    fn file_bytes_and_a_trailer_split_anywhere_come_apart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut claim = claim(&dir, 1 << 20);
        let up = upload(10, true);
        let mut intake = Intake::new(&up, 2, &mut claim);
        // 2 bytes held; 8 more, the last 3 of them with the trailer's first 5.
        assert_eq!(
            intake.take(Bytes::from_static(b"abcde")).ok(),
            Some(Bytes::from_static(b"abcde"))
        );
        let mut straddling = b"fgh".to_vec();
        straddling.extend_from_slice(&[7; 5]);
        assert_eq!(intake.take(Bytes::from(straddling)).ok(), Some(Bytes::from_static(b"fgh")));
        // The rest of the trailer, in two chunks that are all trailer.
        assert_eq!(intake.take(Bytes::from(vec![7; 20])).ok(), Some(Bytes::new()));
        assert_eq!(intake.take(Bytes::from(vec![7; 7])).ok(), Some(Bytes::new()));
        assert_eq!(intake.finish().ok(), Some(Some([7; TRAILER_LEN])));
    }

    #[test]
    fn a_stream_longer_or_shorter_than_declared_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut claim = claim(&dir, 1 << 20);
        let (keyed, later) = (upload(4, false), upload(4, true));

        let mut intake = Intake::new(&keyed, 0, &mut claim);
        assert_eq!(code(intake.take(Bytes::from_static(b"abcde"))), Some(StreamCode::SizeMismatch));

        let mut intake = Intake::new(&keyed, 0, &mut claim);
        assert!(intake.take(Bytes::from_static(b"abc")).is_ok());
        assert_eq!(code(intake.finish()), Some(StreamCode::SizeMismatch), "one byte short");

        let mut intake = Intake::new(&later, 0, &mut claim);
        assert!(intake.take(Bytes::from(vec![1; 4 + TRAILER_LEN])).is_ok());
        let one_more = intake.take(Bytes::from_static(b"x"));
        assert_eq!(code(one_more), Some(StreamCode::SizeMismatch), "past the trailer");

        let mut intake = Intake::new(&later, 0, &mut claim);
        assert!(intake.take(Bytes::from(vec![1; 4 + TRAILER_LEN - 1])).is_ok());
        assert_eq!(code(intake.finish()), Some(StreamCode::HashMismatch), "a short trailer");
    }

    #[test]
    fn bytes_past_the_quota_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut claim = claim(&dir, 3 * GRANT);
        let up = upload(4 * GRANT, false);
        let mut intake = Intake::new(&up, 0, &mut claim);
        let mib = Bytes::from(vec![0; GRANT as usize]);
        for _ in 0..3 {
            assert!(intake.take(mib.clone()).is_ok(), "within the quota");
        }
        assert_eq!(code(intake.take(Bytes::from_static(b"x"))), Some(StreamCode::QuotaExceeded));
    }
}

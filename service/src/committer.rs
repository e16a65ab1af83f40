//! The single writer of messages. Sends queue here; the task takes whatever is
//! queued (up to `max_commit_batch`, [`DEFAULT_MAX_BATCH`] unless configured),
//! commits it in one transaction — one fsync for the whole group — then
//! answers each sender and fans each new message out, in seq order. A message
//! is acknowledged only after its commit. A batch of 1 is one transaction per
//! message (the durable-sends benchmark compares the two).

use std::sync::Arc;

use qchat_protocol::{ErrorCode, Event, FileInfo, Message, SendOk, encode_json};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::db::{self, AppendOutcome, Db, NewMessage};
use crate::error::{Error, Result, refuse};
use crate::hub::Hub;
use crate::metrics::Metrics;

/// Most messages committed in one transaction unless `max_commit_batch` says
/// otherwise.
pub(crate) const DEFAULT_MAX_BATCH: usize = 256;
/// Queue length in front of the writer; senders wait when it is full. Also
/// the largest useful batch: a batch never holds more than was queued.
pub(crate) const QUEUE: usize = 4096;

struct Job {
    msg: NewMessage,
    room_name: String,
    reply: oneshot::Sender<Result<Committed>>,
}

/// A committed message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Committed {
    pub(crate) seq: u64,
    pub(crate) ts: i64,
    /// `true` when the idempotency key had been committed before.
    pub(crate) duplicate: bool,
    /// For a file message: its offer's id (the wire's file id), also when
    /// it was committed before (a duplicate).
    pub(crate) offer: Option<u64>,
}

impl From<Committed> for SendOk {
    fn from(c: Committed) -> Self {
        Self { seq: c.seq, ts: c.ts, duplicate: c.duplicate }
    }
}

/// Handle for submitting messages; cheap to clone.
#[derive(Clone)]
pub(crate) struct Committer {
    tx: mpsc::Sender<Job>,
}

impl Committer {
    /// Starts the writer task, committing at most `max_batch` messages per
    /// transaction (at least 1). It runs until every `Committer` clone is
    /// dropped, then commits what is still queued and ends.
    ///
    /// The writer has a connection of its own, opened with `pool`'s options:
    /// taking one from the shared pool per batch made every commit queue
    /// behind the reads of busy sessions (membership checks, history).
    pub(crate) fn spawn(
        pool: Db,
        hub: Arc<Hub>,
        metrics: Arc<Metrics>,
        max_batch: usize,
    ) -> (Self, JoinHandle<()>) {
        let writer = pool.single();
        let (tx, rx) = mpsc::channel(QUEUE);
        let task = tokio::spawn(run(writer, hub, metrics, rx, max_batch.clamp(1, QUEUE)));
        (Self { tx }, task)
    }

    /// Commits `msg` and returns its seq once durable.
    ///
    /// # Errors
    /// `not_found` when the room vanished; internal errors from the database.
    pub(crate) async fn submit(&self, msg: NewMessage, room_name: String) -> Result<Committed> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Job { msg, room_name, reply })
            .await
            .map_err(|_| refuse(ErrorCode::Unavailable, "server shutting down"))?;
        rx.await.map_err(|_| Error::Internal("writer task ended".into()))?
    }
}

async fn run(
    pool: Db,
    hub: Arc<Hub>,
    metrics: Arc<Metrics>,
    mut rx: mpsc::Receiver<Job>,
    max_batch: usize,
) {
    let mut jobs = Vec::with_capacity(max_batch);
    while rx.recv_many(&mut jobs, max_batch).await > 0 {
        let started = std::time::Instant::now();
        let outcomes = commit_batch(&pool, &jobs).await;
        let new =
            outcomes.iter().filter(|o| matches!(o, Ok(Some(AppendOutcome::New { .. })))).count();
        metrics.committed(new as u64, started.elapsed());
        for (job, outcome) in jobs.drain(..).zip(outcomes) {
            let reply = match outcome {
                Ok(Some(AppendOutcome::New { seq, offer })) => {
                    publish(&hub, &job, seq, offer);
                    Ok(Committed { seq, ts: job.msg.ts, duplicate: false, offer })
                }
                Ok(Some(AppendOutcome::Duplicate { seq, ts, offer })) => {
                    Ok(Committed { seq, ts, duplicate: true, offer })
                }
                Ok(None) => Err(refuse(ErrorCode::NotFound, "no such room")),
                Err(e) => Err(e),
            };
            // The sender may have gone away; the message is committed anyway.
            let _ = job.reply.send(reply);
        }
    }
    pool.close().await;
    tracing::debug!("message writer stopped");
}

/// Commits the batch in one transaction. Text messages go in with a few
/// statements for the whole batch ([`db::messages::append_all`]); if that fails,
/// or the batch holds a file message, the batch is committed job by job
/// instead ([`commit_each`]), which isolates a failing job.
async fn commit_batch(pool: &Db, jobs: &[Job]) -> Vec<Result<Option<AppendOutcome>>> {
    if jobs.iter().all(|j| j.msg.file.is_none()) {
        match commit_grouped(pool, jobs).await {
            Ok(outcomes) => return outcomes.into_iter().map(Ok).collect(),
            Err(e) => tracing::warn!(
                cause = %e,
                batch = jobs.len(),
                "grouped append failed; committing the batch message by message"
            ),
        }
    }
    commit_each(pool, jobs).await
}

/// The whole batch with a handful of statements in one transaction; on any
/// error nothing of it is committed (the transaction rolls back when dropped).
async fn commit_grouped(
    pool: &Db,
    jobs: &[Job],
) -> std::result::Result<Vec<Option<AppendOutcome>>, sqlx::Error> {
    let started = std::time::Instant::now();
    let mut tx = pool.begin_write().await?;
    let msgs: Vec<&NewMessage> = jobs.iter().map(|j| &j.msg).collect();
    let outcomes = db::messages::append_all(&mut tx.conn(), &msgs).await?;
    tx.commit().await?;
    tracing::trace!(
        batch = jobs.len(),
        elapsed_us = started.elapsed().as_micros() as u64,
        "committed grouped"
    );
    Ok(outcomes)
}

/// Commits the batch in one transaction, each job in its own savepoint so a
/// failing job cannot leave a gap or take the others down. If the commit
/// itself fails, every job fails: nothing of the batch was acknowledged.
async fn commit_each(pool: &Db, jobs: &[Job]) -> Vec<Result<Option<AppendOutcome>>> {
    let started = std::time::Instant::now();
    let result: Result<Vec<Result<Option<AppendOutcome>>>> = async {
        let mut tx = pool.begin_write().await?;
        let mut outcomes = Vec::with_capacity(jobs.len());
        for job in jobs {
            let mut sp = tx.savepoint().await?;
            match db::messages::append(&mut sp.conn(), &job.msg).await {
                Ok(o) => {
                    sp.commit().await?;
                    outcomes.push(Ok(o));
                }
                Err(e) => {
                    sp.rollback().await?;
                    tracing::error!(cause = %e, "appending message");
                    outcomes.push(Err(Error::Db(e)));
                }
            }
        }
        tx.commit().await?;
        Ok(outcomes)
    }
    .await;
    tracing::trace!(
        batch = jobs.len(),
        elapsed_us = started.elapsed().as_micros() as u64,
        "committed"
    );
    match result {
        Ok(outcomes) => outcomes,
        // The database cannot be reached (PostgreSQL restarting, say): the
        // senders are told `unavailable` and retry with the same
        // client_msg_id, which is answered as a duplicate if the commit did
        // happen after all.
        Err(e) if e.is_unavailable() => {
            tracing::warn!(cause = %e, batch = jobs.len(), "database unavailable; batch refused");
            jobs.iter()
                .map(|_| Err(refuse(ErrorCode::Unavailable, "database unavailable, retry")))
                .collect()
        }
        Err(e) => {
            tracing::error!(cause = %e, batch = jobs.len(), "message batch commit failed");
            jobs.iter().map(|_| Err(Error::Internal("commit failed".into()))).collect()
        }
    }
}

fn publish(hub: &Hub, job: &Job, seq: u64, offer: Option<u64>) {
    let m = &job.msg;
    let ev = Event::Message(Message {
        room: job.room_name.clone(),
        seq,
        sender: m.sender_name.clone(),
        ts: m.ts,
        kind: m.kind,
        body: m.body.clone(),
        client_msg_id: m.client_msg_id.clone(),
        file: m.file.as_ref().zip(offer).map(|(f, id)| FileInfo {
            id,
            name: m.body.clone(),
            size: f.size,
            hash: f.hash.clone(),
        }),
    });
    match encode_json(&ev) {
        Ok(frame) => hub.publish(m.room, &job.room_name, &frame),
        Err(e) => tracing::error!(cause = %e, "encoding message event"),
    }
}

#[cfg(test)]
mod tests {
    use qchat_protocol::MessageKind;

    use super::*;

    const BACKENDS: [db::Backend; 2] = [db::Backend::Sqlite, db::Backend::Postgres];

    /// Submits `fresh` new messages all at once, then `again` of them a
    /// second time, through a writer with `max_batch`; returns the answers
    /// (fresh first) and the number of transactions it committed.
    async fn submit_all(
        backend: db::Backend,
        max_batch: usize,
        fresh: usize,
        again: usize,
    ) -> (Vec<Committed>, Vec<Committed>, u64) {
        let test_db = db::testing::fresh(backend).await;
        let pool = &test_db.db;
        let t = db::tenants::create(pool, "acme", false).await.expect("tenant");
        let u = db::users::create(pool, t, "ann", "x").await.expect("user");
        let r = db::rooms::create(pool, t, "general").await.expect("room");
        let metrics = Arc::new(Metrics::default());
        let (committer, task) =
            Committer::spawn(pool.clone(), Arc::new(Hub::default()), metrics.clone(), max_batch);
        let msg = |i: usize| NewMessage {
            tenant: t,
            room: r.id,
            sender: Some(u),
            sender_name: "ann".into(),
            client_msg_id: Some(format!("k-{i}")),
            kind: MessageKind::Text,
            body: format!("m {i}"),
            ts: i64::try_from(i).unwrap_or_default(),
            file: None,
        };
        // All submissions are queued before the writer runs again (this is a
        // current-thread runtime), so a large batch takes them in one go.
        let submit = |range: std::ops::Range<usize>| {
            let jobs: Vec<_> = range
                .map(|i| {
                    let c = committer.clone();
                    let m = msg(i);
                    tokio::spawn(async move { c.submit(m, "general".into()).await })
                })
                .collect();
            async move {
                let mut out = Vec::new();
                for j in jobs {
                    out.push(j.await.expect("join").expect("committed"));
                }
                out
            }
        };
        let first = submit(0..fresh).await;
        let second = submit(0..again).await;
        drop(committer);
        task.await.expect("writer ends when the last handle drops");
        let text = metrics.render();
        let commits = text
            .lines()
            .find_map(|l| l.strip_prefix("qchat_commit_seconds_count "))
            .and_then(|v| v.trim().parse().ok())
            .expect("commit count in metrics");
        (first, second, commits)
    }

    fn check(first: &[Committed], second: &[Committed]) {
        let seqs: Vec<u64> = first.iter().map(|c| c.seq).collect();
        let want: Vec<u64> = (1..=first.len() as u64).collect();
        assert_eq!(seqs, want, "every message acknowledged once, gap-free, in submit order");
        assert!(first.iter().all(|c| !c.duplicate));
        for (dup, orig) in second.iter().zip(first) {
            assert!(dup.duplicate, "a resend is recognised");
            assert_eq!((dup.seq, dup.ts), (orig.seq, orig.ts), "and answered with the original");
        }
    }

    #[tokio::test]
    async fn batch_of_one_commits_each_message_alone() {
        for backend in BACKENDS {
            let (first, second, commits) = submit_all(backend, 1, 60, 10).await;
            check(&first, &second);
            assert_eq!(commits, 70, "one transaction per message, duplicates included");
        }
    }

    #[tokio::test]
    async fn batches_group_what_is_queued_up_to_the_bound() {
        for backend in BACKENDS {
            let (first, second, commits) = submit_all(backend, DEFAULT_MAX_BATCH, 100, 10).await;
            check(&first, &second);
            assert!(commits <= 10, "100 queued messages grouped, got {commits} transactions");
            let (first, second, commits) = submit_all(backend, 7, 100, 0).await;
            check(&first, &second);
            assert!(commits >= 15, "never more than 7 per transaction, got {commits}");
        }
    }

    #[tokio::test]
    async fn a_failing_message_fails_alone_and_leaves_no_gap() {
        for test_db in db::testing::each().await {
            a_failing_message_fails_alone(&test_db.db).await;
        }
    }

    async fn a_failing_message_fails_alone(pool: &Db) {
        let t = db::tenants::create(pool, "acme", false).await.expect("tenant");
        let u = db::users::create(pool, t, "ann", "x").await.expect("user");
        let r = db::rooms::create(pool, t, "general").await.expect("room");
        let (committer, task) = Committer::spawn(
            pool.clone(),
            Arc::new(Hub::default()),
            Arc::new(Metrics::default()),
            DEFAULT_MAX_BATCH,
        );
        let jobs: Vec<_> = (0..6)
            .map(|i| {
                // Message 3 names a sender that does not exist: its insert
                // breaks a foreign key, which fails the grouped statement.
                let sender = if i == 3 { db::UserId(9999) } else { u };
                let m = NewMessage {
                    tenant: t,
                    room: r.id,
                    sender: Some(sender),
                    sender_name: "ann".into(),
                    client_msg_id: Some(format!("k-{i}")),
                    kind: MessageKind::Text,
                    body: format!("m {i}"),
                    ts: 1,
                    file: None,
                };
                let c = committer.clone();
                tokio::spawn(async move { c.submit(m, "general".into()).await })
            })
            .collect();
        let mut seqs = Vec::new();
        for (i, j) in jobs.into_iter().enumerate() {
            let out = j.await.expect("join");
            if i == 3 {
                assert!(out.is_err(), "the bad message fails");
            } else {
                seqs.push(out.expect("the others commit").seq);
            }
        }
        assert_eq!(seqs, vec![1, 2, 3, 4, 5], "gap-free without the failed one");
        drop(committer);
        task.await.expect("writer ends");
    }
}

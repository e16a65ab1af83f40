//! The single writer of messages. Sends queue here; the task takes whatever is
//! queued (up to `max_commit_batch`, [`DEFAULT_MAX_BATCH`](crate::config::DEFAULT_MAX_BATCH) unless configured),
//! commits it in one transaction — one fsync for the whole group — then
//! answers each sender and fans each new message out, in seq order. A message
//! is acknowledged only after its commit. A batch of 1 is one transaction per
//! message (the durable-sends benchmark compares the two).

mod mentions;

use std::sync::Arc;

use qchat_protocol::{
    ErrorCode, Event, FileInfo, MENTION_EVERYONE, Message, RoomEvent, RoomRemoved, SendOk,
    encode_json,
};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::access::{self, Need, Verdict};
use crate::changes::{self, Applied, ChangeJob, Cleanup, HubAction, Limits};
use crate::db::{self, AppendOutcome, Conn, Db, NewMessage, Room, RoomLabel};
use crate::error::{Error, Result, refuse};
use crate::hub::Hub;
use crate::metrics::Metrics;

// The batch bound's default and the queue length bound a setting, so they
// live with the settings (`config`), which the writer reads.
use crate::config::{COMMIT_QUEUE as QUEUE, Quotas};

/// What the writer is asked to commit.
enum Work {
    /// A message for the room called `room` on the wire.
    Message { msg: NewMessage, room: RoomLabel },
    /// A room change with its system message.
    Change(ChangeJob),
}

struct Job {
    work: Work,
    reply: oneshot::Sender<Result<Done>>,
}

enum Done {
    Message(Committed),
    Change(ChangeDone),
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
    /// When a new message's body says `@room`: whether it mentioned
    /// everyone ([`access::room_mention`]).
    pub(crate) room_mention: Option<bool>,
}

impl From<Committed> for SendOk {
    fn from(c: Committed) -> Self {
        Self { seq: c.seq, ts: c.ts, duplicate: c.duplicate, room_mention: c.room_mention }
    }
}

/// A committed room change.
#[derive(Debug, Clone)]
pub(crate) struct ChangeDone {
    /// Seq of the system message; `None` when nothing changed.
    pub(crate) seq: Option<u64>,
    /// The room after the change.
    pub(crate) room: Room,
    /// What the caller cleans up outside the database.
    pub(crate) cleanup: Cleanup,
    /// A join: the room as the new member sees it (see [`changes::Applied`]).
    pub(crate) joined: Option<Box<qchat_protocol::RoomInfo>>,
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
        quotas: Quotas,
        max_batch: usize,
    ) -> (Self, JoinHandle<()>) {
        let writer = pool.single();
        let (tx, rx) = mpsc::channel(QUEUE);
        let limits = Limits { quotas, metrics };
        let task = tokio::spawn(run(writer, hub, limits, rx, max_batch.clamp(1, QUEUE)));
        (Self { tx }, task)
    }

    async fn submit_work(&self, work: Work) -> Result<Done> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Job { work, reply })
            .await
            .map_err(|_| refuse(ErrorCode::Unavailable, "server shutting down"))?;
        rx.await.map_err(|_| Error::Internal("writer task ended".into()))?
    }

    /// Commits `msg` to the room called `room` on the wire and returns its
    /// seq once durable. The sender's right to post is checked in the same
    /// transaction, after every change committed before it.
    ///
    /// # Errors
    /// `not_found` when the room vanished; `forbidden` when the sender may
    /// no longer post there (kicked, banned, archived meanwhile); internal
    /// errors from the database.
    pub(crate) async fn submit(&self, msg: NewMessage, room: RoomLabel) -> Result<Committed> {
        match self.submit_work(Work::Message { msg, room }).await? {
            Done::Message(c) => Ok(c),
            Done::Change(_) => Err(Error::Internal("a message answered as a change".into())),
        }
    }

    /// Applies a room change, records it as a system message and updates
    /// the subscriptions, in commit order with the messages around it.
    ///
    /// # Errors
    /// The refusal for the actor (`not_found`, `forbidden`, `conflict`), or
    /// internal errors from the database.
    pub(crate) async fn submit_change(&self, job: ChangeJob) -> Result<ChangeDone> {
        match self.submit_work(Work::Change(job)).await? {
            Done::Change(c) => Ok(c),
            Done::Message(_) => Err(Error::Internal("a change answered as a message".into())),
        }
    }
}

/// The names a new message mentions, or `["@room"]` when it mentions
/// everyone (empty for any other outcome).
type Mentioned = Vec<String>;

/// What committing one job gave.
enum Outcome {
    Appended(Result<(Option<AppendOutcome>, Mentioned)>),
    Changed(Result<(Box<Applied>, Option<u64>)>),
}

async fn run(
    pool: Db,
    hub: Arc<Hub>,
    limits: Limits,
    mut rx: mpsc::Receiver<Job>,
    max_batch: usize,
) {
    let metrics = &limits.metrics;
    let mut jobs = Vec::with_capacity(max_batch);
    while rx.recv_many(&mut jobs, max_batch).await > 0 {
        let started = std::time::Instant::now();
        let outcomes = commit_batch(&pool, &jobs, &limits).await;
        let new = outcomes
            .iter()
            .filter(|o| matches!(o, Outcome::Appended(Ok((Some(AppendOutcome::New { .. }), _)))))
            .count();
        metrics.committed(new as u64, started.elapsed());
        for (job, outcome) in jobs.drain(..).zip(outcomes) {
            let reply = finish(&hub, &job.work, outcome);
            // The sender may have gone away; the work is committed anyway.
            let _ = job.reply.send(reply);
        }
    }
    pool.close().await;
    tracing::debug!("message writer stopped");
}

/// Publishes what a committed job produced and shapes its answer.
fn finish(hub: &Hub, work: &Work, outcome: Outcome) -> Result<Done> {
    match (work, outcome) {
        (Work::Message { msg, room }, Outcome::Appended(outcome)) => {
            let (outcome, mentioned) = outcome?;
            let committed = match outcome {
                Some(AppendOutcome::New { seq, offer }) => {
                    let says_room = msg.mentions.as_ref().is_some_and(|x| x.room);
                    let everyone = mentioned.first().is_some_and(|n| n == MENTION_EVERYONE);
                    publish(hub, msg, room, seq, offer, mentioned);
                    let room_mention = says_room.then_some(everyone);
                    Committed { seq, ts: msg.ts, duplicate: false, offer, room_mention }
                }
                Some(AppendOutcome::Duplicate { seq, ts, offer }) => {
                    Committed { seq, ts, duplicate: true, offer, room_mention: None }
                }
                Some(AppendOutcome::Refused) => {
                    return Err(refuse(
                        ErrorCode::Forbidden,
                        format!("{}: you may not post here (any more)", room.name),
                    ));
                }
                None => return Err(refuse(ErrorCode::NotFound, "no such room")),
            };
            Ok(Done::Message(committed))
        }
        (Work::Change(job), Outcome::Changed(outcome)) => {
            let (applied, seq) = outcome?;
            let label = applied.room.label();
            for action in &applied.before {
                act(hub, job, &label, action);
            }
            if let (Some(msg), Some(seq)) = (&applied.system, seq) {
                publish(hub, msg, &label, seq, None, Vec::new());
            }
            for action in &applied.after {
                act(hub, job, &label, action);
            }
            let Applied { room, cleanup, joined, .. } = *applied;
            Ok(Done::Change(ChangeDone { seq, room, cleanup, joined }))
        }
        _ => Err(Error::Internal("job and outcome of different kinds".into())),
    }
}

/// Carries out one hub action of a committed change.
fn act(hub: &Hub, job: &ChangeJob, label: &RoomLabel, action: &HubAction) {
    let encoded = |ev: &Event| match encode_json(ev) {
        Ok(frame) => Some(frame),
        Err(e) => {
            tracing::error!(cause = %e, "encoding room event");
            None
        }
    };
    let removed = |user, reason| {
        Event::RoomRemoved(RoomRemoved {
            room: label.name.clone(),
            room_id: label.id.clone(),
            reason,
            by: (user != Some(job.actor)).then(|| job.actor_name.clone()),
        })
    };
    match action {
        HubAction::Subscribe(user) => hub.subscribe_user(job.tenant, *user, job.room),
        HubAction::Unsubscribe(user) => hub.unsubscribe_user(job.tenant, *user, job.room),
        HubAction::Close => hub.close_room(job.room),
        HubAction::Room(user, info) => {
            // Sent before the change's own message, and as the room was
            // before it (`last_seq` one short), so a client tracking the
            // room from here is handed that message next.
            let room = info.clone();
            if let Some(frame) = encoded(&Event::Room(RoomEvent { room })) {
                hub.to_user(job.tenant, *user, label, &frame);
            }
        }
        HubAction::Removed(user, reason) => {
            if let Some(frame) = encoded(&removed(Some(*user), *reason)) {
                hub.to_user(job.tenant, *user, label, &frame);
            }
        }
        HubAction::RemovedAll(reason) => {
            if let Some(frame) = encoded(&removed(None, *reason)) {
                hub.publish(job.room, label, &frame);
            }
        }
        HubAction::Member(ev) => {
            if let Some(frame) = encoded(&Event::Member(ev.clone())) {
                hub.publish(job.room, label, &frame);
            }
        }
    }
}

fn is_text(job: &Job) -> bool {
    matches!(&job.work, Work::Message { msg, .. } if msg.file.is_none() && msg.reply_to.is_none())
}

/// Commits the batch in one transaction. Text messages go in with a few
/// statements for the whole batch ([`db::messages::append_all`]); if that fails,
/// or the batch holds a file message or a room change, the batch is
/// committed job by job instead ([`commit_each`]), which isolates a failing
/// job.
async fn commit_batch(pool: &Db, jobs: &[Job], limits: &Limits) -> Vec<Outcome> {
    if jobs.iter().all(is_text) {
        match commit_grouped(pool, jobs).await {
            Ok(outcomes) => {
                return outcomes.into_iter().map(|o| Outcome::Appended(Ok(o))).collect();
            }
            Err(e) => tracing::warn!(
                cause = %e,
                batch = jobs.len(),
                "grouped append failed; committing the batch message by message"
            ),
        }
    }
    commit_each(pool, jobs, limits).await
}

/// Whether each message's sender may post in its room, decided by
/// [`access`] on the state inside the transaction (so a message queued
/// before a ban but committed after it is refused). Messages without a
/// sender (system messages) may.
async fn may_post(
    conn: &mut Conn<'_>,
    msgs: &[&NewMessage],
) -> std::result::Result<Vec<bool>, sqlx::Error> {
    let triples: Vec<_> = msgs.iter().filter_map(|m| Some((m.tenant, m.room, m.sender?))).collect();
    let standings = db::members::standings_of(conn, &triples).await?;
    Ok(msgs
        .iter()
        .map(|m| match m.sender {
            None => true,
            Some(user) => standings
                .get(&(m.room, user))
                .is_some_and(|(room, s)| access::decide(room, s, Need::Post) == Verdict::Allowed),
        })
        .collect())
}

/// The whole batch with a handful of statements in one transaction; on any
/// error nothing of it is committed (the transaction rolls back when dropped).
async fn commit_grouped(
    pool: &Db,
    jobs: &[Job],
) -> std::result::Result<Vec<(Option<AppendOutcome>, Mentioned)>, sqlx::Error> {
    let started = std::time::Instant::now();
    let mut tx = pool.begin_write().await?;
    let msgs: Vec<&NewMessage> = jobs
        .iter()
        .filter_map(|j| match &j.work {
            Work::Message { msg, .. } => Some(msg),
            Work::Change(_) => None,
        })
        .collect();
    let mut conn = tx.conn();
    let allowed = may_post(&mut conn, &msgs).await?;
    let outcomes = db::messages::append_all(&mut conn, &msgs, &allowed).await?;
    let mentioned = mentions::record(&mut conn, &new_ones(&msgs, &outcomes)).await?;
    let mut mentioned = mentioned.into_iter();
    let outcomes = outcomes
        .into_iter()
        .map(|o| match o {
            Some(AppendOutcome::New { .. }) => (o, mentioned.next().unwrap_or_default()),
            _ => (o, Vec::new()),
        })
        .collect();
    tx.commit().await?;
    tracing::trace!(
        batch = jobs.len(),
        elapsed_us = started.elapsed().as_micros() as u64,
        "committed grouped"
    );
    Ok(outcomes)
}

/// The new messages among `msgs` (by `outcomes`), with their seqs, in order.
fn new_ones<'a>(
    msgs: &[&'a NewMessage],
    outcomes: &[Option<AppendOutcome>],
) -> Vec<(&'a NewMessage, u64)> {
    msgs.iter()
        .zip(outcomes)
        .filter_map(|(m, o)| match o {
            Some(AppendOutcome::New { seq, .. }) => Some((*m, *seq)),
            _ => None,
        })
        .collect()
}

/// One job inside its savepoint.
async fn commit_one(conn: &mut Conn<'_>, job: &Job, limits: &Limits) -> Outcome {
    match &job.work {
        Work::Message { msg, .. } => Outcome::Appended(
            async {
                let allowed = may_post(&mut *conn, &[msg]).await?;
                let allowed = allowed.first().copied().unwrap_or(false);
                let outcome = db::messages::append(&mut *conn, msg, allowed).await?;
                let mentioned = match outcome {
                    Some(AppendOutcome::New { seq, .. }) => {
                        mentions::record(conn, &[(msg, seq)]).await?.pop().unwrap_or_default()
                    }
                    _ => Vec::new(),
                };
                Ok::<_, sqlx::Error>((outcome, mentioned))
            }
            .await
            .map_err(Error::Db),
        ),
        Work::Change(change) => Outcome::Changed(
            async {
                let applied = changes::apply(&mut *conn, change, limits).await?;
                let seq = match &applied.system {
                    Some(msg) => match db::messages::append(&mut *conn, msg, true).await? {
                        Some(AppendOutcome::New { seq, .. }) => Some(seq),
                        other => {
                            return Err(Error::Internal(format!("system message: {other:?}")));
                        }
                    },
                    None => None,
                };
                Ok((Box::new(applied), seq))
            }
            .await,
        ),
    }
}

/// Commits the batch in one transaction, each job in its own savepoint so a
/// failing job cannot leave a gap or take the others down. If the commit
/// itself fails, every job fails: nothing of the batch was acknowledged.
async fn commit_each(pool: &Db, jobs: &[Job], limits: &Limits) -> Vec<Outcome> {
    let started = std::time::Instant::now();
    let result: std::result::Result<Vec<Outcome>, sqlx::Error> = async {
        let mut tx = pool.begin_write().await?;
        let mut outcomes = Vec::with_capacity(jobs.len());
        for job in jobs {
            let mut sp = tx.savepoint().await?;
            let outcome = commit_one(&mut sp.conn(), job, limits).await;
            let failed = match &outcome {
                Outcome::Appended(r) => r.as_ref().err(),
                Outcome::Changed(r) => r.as_ref().err(),
            };
            match failed {
                None => sp.commit().await?,
                Some(e) => {
                    if e.is_internal() {
                        tracing::error!(cause = %e, "writing a job");
                    }
                    sp.rollback().await?;
                }
            }
            outcomes.push(outcome);
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
    let failed = |e: &Error| match e {
        // The database cannot be reached (PostgreSQL restarting, say): the
        // senders are told `unavailable` and retry with the same
        // client_msg_id, which is answered as a duplicate if the commit did
        // happen after all (a change is retried by its actor).
        e if e.is_unavailable() => refuse(ErrorCode::Unavailable, "database unavailable, retry"),
        _ => Error::Internal("commit failed".into()),
    };
    match result.map_err(Error::Db) {
        Ok(outcomes) => outcomes,
        Err(e) => {
            if e.is_unavailable() {
                tracing::warn!(cause = %e, batch = jobs.len(), "database unavailable; batch refused");
            } else {
                tracing::error!(cause = %e, batch = jobs.len(), "batch commit failed");
            }
            jobs.iter()
                .map(|j| match j.work {
                    Work::Message { .. } => Outcome::Appended(Err(failed(&e))),
                    Work::Change(_) => Outcome::Changed(Err(failed(&e))),
                })
                .collect()
        }
    }
}

fn publish(
    hub: &Hub,
    m: &NewMessage,
    room: &RoomLabel,
    seq: u64,
    offer: Option<u64>,
    mentions: Mentioned,
) {
    let ev = Event::Message(Message {
        room: room.name.clone(),
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
        room_id: Some(room.id.clone()),
        change: m.change.clone(),
        edited: None,
        deleted: None,
        reply_to: m.reply_to.clone().map(Box::new),
        // `["@room"]` when it mentions everyone (`mentions::record`).
        mentions: (!mentions.is_empty()).then(|| Box::new(mentions)),
        reactions: Box::default(),
        replies: 0,
    });
    match encode_json(&ev) {
        Ok(frame) => hub.publish_message(m.tenant, m.room, seq, room, &frame),
        Err(e) => tracing::error!(cause = %e, "encoding message event"),
    }
}

#[cfg(test)]
mod tests {
    use qchat_protocol::{MessageKind, Role, RoomKind};

    use super::*;
    use crate::changes::RoomChange;
    use crate::config::DEFAULT_MAX_BATCH;
    use crate::db::{RoomId, TenantId, UserId};
    use crate::outbound::{self, Next};

    /// A fresh database on `backend` with a tenant and users `names`, all
    /// members of room `general` (the first as its owner).
    async fn setup(
        backend: db::Backend,
        names: &[&str],
    ) -> (db::testing::TestDb, TenantId, Vec<UserId>, Room) {
        let test_db = db::testing::fresh(backend).await;
        let pool = &test_db.db;
        let t = db::tenants::create(pool, "acme", false).await.expect("tenant");
        let r = db::rooms::create(pool, t, "general", RoomKind::Public, None).await.expect("room");
        let mut users = Vec::new();
        let mut pooled = pool.acquire().await.expect("conn");
        for (i, name) in names.iter().enumerate() {
            let u = db::users::create(pool, t, name, "x").await.expect("user");
            let role = if i == 0 { Role::Owner } else { Role::Member };
            db::rooms::join(pooled.conn(), t, r.id, u, role).await.expect("join");
            users.push(u);
        }
        drop(pooled);
        (test_db, t, users, r)
    }

    fn text(t: TenantId, room: RoomId, sender: UserId, name: &str, i: usize) -> NewMessage {
        NewMessage {
            tenant: t,
            room,
            sender: Some(sender),
            sender_name: name.into(),
            client_msg_id: Some(format!("{name}-{i}")),
            kind: MessageKind::Text,
            body: format!("m {i}"),
            ts: i64::try_from(i).unwrap_or_default(),
            file: None,
            change: None,
            reply_to: None,
            mentions: None,
        }
    }

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
        let (test_db, t, users, r) = setup(backend, &["ann"]).await;
        let pool = &test_db.db;
        let metrics = Arc::new(Metrics::default());
        let (committer, task) = Committer::spawn(
            pool.clone(),
            Arc::new(Hub::default()),
            metrics.clone(),
            Quotas::default(),
            max_batch,
        );
        // All submissions are queued before the writer runs again (this is a
        // current-thread runtime), so a large batch takes them in one go.
        let submit = |range: std::ops::Range<usize>| {
            let jobs: Vec<_> = range
                .map(|i| {
                    let c = committer.clone();
                    let m = text(t, r.id, users[0], "ann", i);
                    let label = r.label();
                    tokio::spawn(async move { c.submit(m, label).await })
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
        for backend in BACKENDS {
            a_failing_message_fails_alone(backend).await;
        }
    }

    async fn a_failing_message_fails_alone(backend: db::Backend) {
        let (test_db, t, users, r) = setup(backend, &["ann"]).await;
        let pool = &test_db.db;
        // Message 3's insert fails, which fails the grouped statement.
        let sql = match pool {
            Db::Sqlite(_) => {
                "create trigger boom before insert on messages when new.body = 'm 3'
                 begin select raise(abort, 'boom'); end"
            }
            Db::Postgres(_) => "alter table messages add constraint boom check (body <> 'm 3')",
        };
        db::on!(pool, |e| sqlx::query(sql).execute(e).await.map(|r| r.rows_affected()))
            .expect("boom");
        let (committer, task) = Committer::spawn(
            pool.clone(),
            Arc::new(Hub::default()),
            Arc::new(Metrics::default()),
            Quotas::default(),
            DEFAULT_MAX_BATCH,
        );
        let jobs: Vec<_> = (0..6)
            .map(|i| {
                let m = text(t, r.id, users[0], "ann", i);
                let (c, label) = (committer.clone(), r.label());
                tokio::spawn(async move { c.submit(m, label).await })
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

    /// Every frame queued for a connection so far, as JSON.
    async fn frames(rx: &mut outbound::OutboundRx) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        let mut frames = Vec::new();
        while let Ok(Some(Next::Frames)) =
            tokio::time::timeout(std::time::Duration::from_millis(50), rx.next(&mut frames)).await
        {
            for f in frames.drain(..) {
                out.push(serde_json::from_slice(&f[4..]).expect("json"));
            }
        }
        out
    }

    #[tokio::test]
    async fn a_ban_takes_effect_between_the_messages_around_it() {
        for backend in BACKENDS {
            a_ban_takes_effect_between_messages(backend).await;
        }
    }

    async fn a_ban_takes_effect_between_messages(backend: db::Backend) {
        let (test_db, t, users, r) = setup(backend, &["ann", "bob"]).await;
        let pool = &test_db.db;
        let (ann, bob) = (users[0], users[1]);
        let hub = Arc::new(Hub::default());
        let (ann_out, mut ann_rx) = outbound::channel(256);
        let (bob_out, mut bob_rx) = outbound::channel(256);
        hub.attach(1, t, ann, "ann", ann_out, &[r.id]);
        hub.attach(2, t, bob, "bob", bob_out, &[r.id]);
        let (committer, task) = Committer::spawn(
            pool.clone(),
            hub.clone(),
            Arc::new(Metrics::default()),
            Quotas::default(),
            64,
        );
        // Three of bob's sends, the ban, three more: queued at once, so they
        // share a batch.
        let mut handles = Vec::new();
        for i in 0..3 {
            let (c, m, label) = (committer.clone(), text(t, r.id, bob, "bob", i), r.label());
            handles.push(tokio::spawn(async move { c.submit(m, label).await.map(|c| c.seq) }));
        }
        let ban = ChangeJob {
            reference: "general".into(),
            tenant: t,
            room: r.id,
            actor: ann,
            actor_name: "ann".into(),
            change: RoomChange::Ban { user: "bob".into(), reason: Some("spam".into()) },
        };
        let c = committer.clone();
        let banned = tokio::spawn(async move { c.submit_change(ban).await.map(|d| d.seq) });
        for i in 3..6 {
            let (c, m, label) = (committer.clone(), text(t, r.id, bob, "bob", i), r.label());
            handles.push(tokio::spawn(async move { c.submit(m, label).await.map(|c| c.seq) }));
        }
        let mut got = Vec::new();
        for h in handles {
            got.push(h.await.expect("join").map_err(|e| e.to_body().code));
        }
        assert_eq!(got[..3], [Ok(1), Ok(2), Ok(3)], "before the ban: stored");
        assert_eq!(banned.await.expect("join").expect("ban"), Some(4));
        assert_eq!(got[3..], [Err(ErrorCode::Forbidden); 3], "after it: refused");

        let bob_saw = frames(&mut bob_rx).await;
        let seqs: Vec<_> = bob_saw.iter().filter_map(|f| f["seq"].as_u64()).collect();
        assert_eq!(seqs, [1, 2, 3, 4], "bob hears his ban, then nothing of the room");
        assert_eq!(bob_saw[3]["change"]["type"], "banned");
        assert_eq!(bob_saw[3]["body"], "ann banned bob: spam");
        let last = bob_saw.last().expect("frames");
        assert_eq!(
            (&last["ev"], &last["reason"], &last["by"]),
            (&"room.removed".into(), &"banned".into(), &"ann".into())
        );
        let ann_saw = frames(&mut ann_rx).await;
        assert!(ann_saw.iter().any(|f| f["seq"] == 4), "the owner sees the ban");

        // Bob may not rejoin; another message after the ban is refused too.
        let rejoin = ChangeJob {
            reference: "general".into(),
            tenant: t,
            room: r.id,
            actor: bob,
            actor_name: "bob".into(),
            change: RoomChange::Join,
        };
        let e = committer.submit_change(rejoin).await.expect_err("banned");
        assert_eq!(e.to_body().code, ErrorCode::Forbidden);
        let late = committer.submit(text(t, r.id, bob, "bob", 9), r.label()).await;
        assert_eq!(late.map_err(|e| e.to_body().code).err(), Some(ErrorCode::Forbidden));
        let stored: i64 = db::on!(pool, |e| sqlx::query_scalar(
            "select count(*) from messages where sender_id = $1"
        )
        .bind(bob.0)
        .fetch_one(e)
        .await)
        .expect("count");
        assert_eq!(stored, 3, "nothing bob sent after the ban is stored");
        drop(committer);
        task.await.expect("writer ends");
    }
}

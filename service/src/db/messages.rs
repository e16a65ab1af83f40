//! `messages` table: append with a gap-free seq, keyset pagination.

use std::collections::HashMap;

use futures_util::stream::BoxStream;
use futures_util::{StreamExt as _, TryStreamExt as _};
use qchat_protocol::{
    Change, ChangeKind, FileInfo, MAX_EXCERPT_CHARS, MENTION_EVERYONE, Mentions, Message,
    MessageKind, Reaction, ReplyTo, Tombstone,
};
// AssertSqlSafe: the dynamic statements below are built from constants and
// `$N` placeholders only; every value is bound.
use sqlx::AssertSqlSafe;

use super::rooms::RoomLabel;
use super::sql::{placeholders, to_u64};
use super::{Conn, Ex, RoomId, TenantId, UserId, on, on_conn};

/// A message query: the one column list and join that [`Row`] maps, with
/// the condition and order of one use. A macro, so that the result is one
/// literal ([`HISTORY_SQL`] is public). `$1` tenant, `$2` room, `$3` the
/// seq bound, `$4` the row limit, `$5` the reader (whose reactions are
/// `me`); a thread's query adds `$6`, the parent's seq.
///
/// Reactions come as one string, `EMOJI COUNT MINE` triples separated by
/// spaces (emoji hold no white space), in the order first given; the
/// members mentioned by name as one string too, names separated by spaces.
macro_rules! page_sql {
    ($cond:literal, $order:literal) => {
        concat!(
            "select m.seq, m.sender_name, m.client_msg_id, m.kind, m.body, m.ts,
                o.id as offer_id, f.size as file_size, f.hash as file_hash, m.change,
                m.edited, m.deleted_by, m.deleted_at, m.reply_to,
                p.sender_name as parent_sender, substr(p.body, 1, 200) as parent_body,
                p.deleted_at as parent_deleted,
                (select count(*) from messages c
                 where c.room_id = m.room_id and c.reply_to = m.seq) as replies,
                (select string_agg(x.emoji || ' ' || x.n || ' ' || x.mine, ' '
                        order by x.first, x.emoji)
                 from (select r.emoji, count(*) as n,
                              max(case when r.user_id = $5 then 1 else 0 end) as mine,
                              min(r.ts) as first
                       from reactions r where r.room_id = m.room_id and r.seq = m.seq
                       group by r.emoji) x) as reactions,
                (select string_agg(mu.name, ' ' order by mu.name)
                 from mentions mx join users mu
                      on mu.id = mx.user_id and mu.tenant_id = m.tenant_id
                 where mx.room_id = m.room_id and mx.seq = m.seq) as mentioned,
                m.mentions_room
         from messages m
         left join offers o on o.room_id = m.room_id and o.seq = m.seq
         left join files f on f.id = o.file_id and f.tenant_id = m.tenant_id
         left join messages p on p.room_id = m.room_id and p.seq = m.reply_to
         where m.tenant_id = $1 and m.room_id = $2 and ",
            $cond,
            " order by m.seq ",
            $order,
            " limit $4"
        )
    };
}

/// The keyset query behind the `history` op, exactly as the server runs it.
/// Parameters in order: tenant id, room id, `before_seq` (exclusive), limit
/// (the server asks for one more row than the page to learn whether older
/// ones exist), the reader's user id. Columns: seq, sender_name,
/// client_msg_id, kind, body, ts, offer_id, file_size, file_hash, change,
/// then the edit, deletion, reply and reaction columns. Public so the
/// history benchmark can run the same statement directly on the database.
pub const HISTORY_SQL: &str = page_sql!("m.seq < $3", "desc");

/// The keyset query behind the `sync` op: [`HISTORY_SQL`]'s parameters and
/// columns, with `after_seq` (exclusive) in ascending order.
const SYNC_SQL: &str = page_sql!("m.seq > $3", "asc");

/// The replies to message `$6` after seq `$3`, oldest first (`thread`).
const THREAD_SQL: &str = page_sql!("m.reply_to = $6 and m.seq > $3", "asc");

/// The message with seq `$3` (`thread`'s parent).
const ONE_SQL: &str = page_sql!("m.seq = $3", "asc");

/// The insert that stores a message, exactly as the writer runs it (after it
/// has taken `seq` from `rooms.last_seq`). Parameters in order: tenant id,
/// room id, seq, sender id, sender name, client_msg_id, kind (`text`, `file`
/// or `system`), body, ts (ms since the epoch), file id. Public so the
/// history benchmark can fill a room with rows the server would have written.
pub const INSERT_MESSAGE_SQL: &str = "insert into messages (tenant_id, room_id, seq, sender_id, sender_name, client_msg_id, kind, body, ts, file_id)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";

/// A message to append.
#[derive(Debug, Clone)]
pub(crate) struct NewMessage {
    pub(crate) tenant: TenantId,
    pub(crate) room: RoomId,
    pub(crate) sender: Option<UserId>,
    pub(crate) sender_name: String,
    pub(crate) client_msg_id: Option<String>,
    pub(crate) kind: MessageKind,
    pub(crate) body: String,
    pub(crate) ts: i64,
    /// For file messages: the content to record (and the upload it finishes).
    pub(crate) file: Option<FileAttach>,
    /// For system messages: what changed (stored as JSON beside the body).
    pub(crate) change: Option<Box<Change>>,
    /// For a reply: the message it answers (its seq is stored; the rest is
    /// for the live event).
    pub(crate) reply_to: Option<ReplyTo>,
    /// What the body mentions (text messages that mention anyone); the
    /// writer keeps the names of members ([`super::mentions`]).
    pub(crate) mentions: Option<Box<Mentions>>,
}

/// The file a file message offers; its row is inserted (once per tenant and
/// hash) in the same transaction as the message, and so is the offer (one per
/// file message: its id is the wire's file id).
#[derive(Debug, Clone)]
pub(crate) struct FileAttach {
    pub(crate) hash: String,
    pub(crate) size: u64,
    /// BLAKE3 of the first MiB, when the server just computed it (a new
    /// upload); recorded where the file row has none.
    pub(crate) head: Option<String>,
    /// The upload this message completes; its row is deleted in the same
    /// transaction.
    pub(crate) upload_id: Option<String>,
}

/// What [`append`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AppendOutcome {
    /// Stored with this seq (and, for a file message, this offer id).
    New { seq: u64, offer: Option<u64> },
    /// The same sender had already stored this `client_msg_id` in this room
    /// (with this offer id when that message was a file message).
    Duplicate { seq: u64, ts: i64, offer: Option<u64> },
    /// New, but the sender may not post in the room (any more): nothing
    /// stored.
    Refused,
}

/// Appends `m` inside the caller's transaction: finds an earlier copy by
/// idempotency key, else — when `allowed` (the sender may post there, as
/// the writer decided in this transaction) — takes `last_seq + 1` from the
/// room and inserts. The caller wraps each call in a savepoint so a failure
/// cannot leave a gap.
pub(crate) async fn append(
    conn: &mut Conn<'_>,
    m: &NewMessage,
    allowed: bool,
) -> Result<Option<AppendOutcome>, sqlx::Error> {
    if let (Some(sender), Some(cmid)) = (m.sender, &m.client_msg_id) {
        let prior: Option<(i64, i64, Option<i64>)> = on!(conn.re(), |e| sqlx::query_as(
            "select m.seq, m.ts, o.id from messages m
             left join offers o on o.room_id = m.room_id and o.seq = m.seq
             where m.tenant_id = $1 and m.room_id = $2 and m.sender_id = $3
                 and m.client_msg_id = $4",
        )
        .bind(m.tenant.0)
        .bind(m.room.0)
        .bind(sender.0)
        .bind(cmid)
        .fetch_optional(e)
        .await)?;
        if let Some((seq, ts, offer)) = prior {
            return Ok(Some(AppendOutcome::Duplicate {
                seq: to_u64(seq),
                ts,
                offer: offer.map(to_u64),
            }));
        }
    }
    if !allowed {
        return Ok(Some(AppendOutcome::Refused));
    }
    // The update locks the room's row until commit (PostgreSQL) or the
    // database is locked for writing (SQLite): no other transaction can take
    // a seq of this room until this one ends, so seqs are gap-free and in
    // commit order.
    let seq: Option<i64> = on!(conn.re(), |e| sqlx::query_scalar(
        "update rooms set last_seq = last_seq + 1 where tenant_id = $1 and id = $2
         returning last_seq",
    )
    .bind(m.tenant.0)
    .bind(m.room.0)
    .fetch_optional(e)
    .await)?;
    let Some(seq) = seq else {
        return Ok(None);
    };
    let file_id = match &m.file {
        Some(f) => {
            let id =
                super::files::insert_or_get(conn, m.tenant, &f.hash, f.size, f.head.as_deref())
                    .await?;
            if let Some(upload) = &f.upload_id {
                super::files::delete_upload(conn.re(), upload).await?;
            }
            Some(id)
        }
        None => None,
    };
    on!(conn.re(), |e| sqlx::query(INSERT_MESSAGE_SQL)
        .bind(m.tenant.0)
        .bind(m.room.0)
        .bind(seq)
        .bind(m.sender.map(|u| u.0))
        .bind(&m.sender_name)
        .bind(m.client_msg_id.as_deref())
        .bind(m.kind.as_str())
        .bind(&m.body)
        .bind(m.ts)
        .bind(file_id.map(|id| i64::try_from(id).unwrap_or(i64::MAX)))
        .execute(e)
        .await
        .map(|r| r.rows_affected()))?;
    let offer = match file_id {
        Some(file) => {
            Some(super::files::insert_offer(conn.re(), m.tenant, m.room, seq, file).await?)
        }
        None => None,
    };
    if m.change.is_some() || m.reply_to.is_some() {
        // Beside the insert rather than in it: the insert stays the one the
        // history benchmark replays, and system messages and replies are
        // the fewer.
        let json = match &m.change {
            Some(c) => {
                Some(serde_json::to_string(c).map_err(|e| sqlx::Error::Encode(Box::new(e)))?)
            }
            None => None,
        };
        let target = m.change.as_ref().and_then(|c| c.seq).map(clamp);
        on!(conn.re(), |e| sqlx::query(
            "update messages set change = $1, reply_to = $2, target_seq = $3
             where room_id = $4 and seq = $5"
        )
        .bind(json.as_deref())
        .bind(m.reply_to.as_ref().map(|r| clamp(r.seq)))
        .bind(target)
        .bind(m.room.0)
        .bind(seq)
        .execute(e)
        .await
        .map(|r| r.rows_affected()))?;
    }
    Ok(Some(AppendOutcome::New { seq: to_u64(seq), offer }))
}

/// Rows per multi-row statement in [`append_all`]: at 10 parameters a row
/// this stays far below SQLite's limit of 32,766 parameters per statement
/// (and PostgreSQL's of 65,535).
const ROWS_PER_STATEMENT: usize = 500;

/// `(tenant, room, sender, client_msg_id)`: what makes a send idempotent.
type Key<'a> = (i64, i64, i64, &'a str);

/// What [`append_all`] decided for one message before seqs are known.
#[derive(Clone, Copy)]
enum Plan {
    /// Stored earlier (before this call).
    Stored { seq: u64, ts: i64 },
    /// New: gets the next seq of its room.
    New,
    /// The same key as the new message at this index, earlier in the run.
    SameAs(usize),
    /// New, but its sender may not post there.
    Refused,
}

/// Appends text messages (no file) in order inside the caller's transaction,
/// with the same outcomes as [`append`] on each in turn, but a few statements
/// for the whole run instead of three per message: one lookup of earlier
/// copies by idempotency key, one seq reservation for all rooms at once
/// (`UPDATE rooms ... FROM (VALUES ...)`), one multi-row insert (each in
/// chunks of [`ROWS_PER_STATEMENT`]). Each statement is a round trip to
/// SQLite's worker thread (or to the PostgreSQL server), which is what a
/// message cost before.
///
/// On PostgreSQL the rooms' rows are locked first, in id order, so that
/// writers on several nodes committing to overlapping rooms queue instead
/// of deadlocking.
///
/// `allowed[i]` says whether message `i`'s sender may post in its room (as
/// the writer decided in this transaction); a new message that may not is
/// `Refused`, a repeat of a stored one is still its `Duplicate`.
///
/// On error the transaction holds part of the run: roll it back.
pub(crate) async fn append_all(
    conn: &mut Conn<'_>,
    msgs: &[&NewMessage],
    allowed: &[bool],
) -> Result<Vec<Option<AppendOutcome>>, sqlx::Error> {
    fn key(m: &NewMessage) -> Option<Key<'_>> {
        Some((m.tenant.0, m.room.0, m.sender?.0, m.client_msg_id.as_deref()?))
    }
    debug_assert!(
        msgs.iter().all(|m| m.file.is_none() && m.change.is_none() && m.reply_to.is_none()),
        "file and system messages and replies go through append"
    );
    let stored = stored_copies(conn, msgs).await?;
    // Decide in order, as one-by-one appends would: a key stored earlier is
    // a duplicate; a key repeated within the run is a duplicate of its first
    // occurrence; anything else takes a new seq.
    let mut first: HashMap<Key<'_>, usize> = HashMap::new();
    let mut plans = Vec::with_capacity(msgs.len());
    // (tenant, room) → new messages, in order of first appearance.
    let mut wanted: Vec<((i64, i64), i64)> = Vec::new();
    let mut slot: HashMap<(i64, i64), usize> = HashMap::new();
    for (i, m) in msgs.iter().enumerate() {
        let k = key(m);
        let plan = match (stored.get(&i), k.and_then(|k| first.get(&k))) {
            (Some(&(seq, ts)), _) => Plan::Stored { seq: to_u64(seq), ts },
            (None, Some(&j)) => Plan::SameAs(j),
            (None, None) if !allowed.get(i).copied().unwrap_or(false) => Plan::Refused,
            (None, None) => {
                if let Some(k) = k {
                    first.insert(k, i);
                }
                let room = (m.tenant.0, m.room.0);
                match slot.get(&room) {
                    Some(&w) => wanted[w].1 += 1,
                    None => {
                        slot.insert(room, wanted.len());
                        wanted.push((room, 1));
                    }
                }
                Plan::New
            }
        };
        plans.push(plan);
    }
    // Next free seq of every room that still exists; a vanished room's
    // messages get `None`, as in `append`.
    let mut next: HashMap<i64, i64> = HashMap::new();
    if let Conn::Postgres(e) = conn.re() {
        let mut ids: Vec<i64> = wanted.iter().map(|((_, room), _)| *room).collect();
        ids.sort_unstable();
        sqlx::query("select id from rooms where id = any($1) order by id for update")
            .bind(ids)
            .fetch_all(&mut *e)
            .await?;
    }
    for chunk in wanted.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "update rooms set last_seq = last_seq + k.column3
             from (values {}) as k
             where rooms.tenant_id = k.column1 and rooms.id = k.column2
             returning rooms.id, rooms.last_seq",
            placeholders(chunk.len(), 3)
        );
        let counts: HashMap<i64, i64> = chunk.iter().map(|((_, room), n)| (*room, *n)).collect();
        let rows: Vec<(i64, i64)> = on_conn!(conn, |e| {
            let mut q = sqlx::query_as(AssertSqlSafe(sql)).persistent(false);
            for ((tenant, room), n) in chunk {
                q = q.bind(tenant).bind(room).bind(n);
            }
            q.fetch_all(&mut *e).await?
        });
        for (room, last) in rows {
            next.insert(room, last - counts.get(&room).copied().unwrap_or(0) + 1);
        }
    }
    let mut outcomes: Vec<Option<AppendOutcome>> = Vec::with_capacity(msgs.len());
    let mut rows: Vec<(&NewMessage, i64)> = Vec::new();
    for (i, (m, plan)) in msgs.iter().zip(&plans).enumerate() {
        let outcome = match *plan {
            // Text messages: no offers (a key of a file message found
            // here would report none; `append` is what file messages use).
            Plan::Stored { seq, ts } => Some(AppendOutcome::Duplicate { seq, ts, offer: None }),
            Plan::Refused => Some(AppendOutcome::Refused),
            Plan::SameAs(j) => match outcomes[j] {
                Some(AppendOutcome::New { seq, .. }) => {
                    Some(AppendOutcome::Duplicate { seq, ts: msgs[j].ts, offer: None })
                }
                other => other,
            },
            Plan::New => next.get_mut(&m.room.0).map(|seq| {
                rows.push((m, *seq));
                *seq += 1;
                AppendOutcome::New { seq: to_u64(*seq - 1), offer: None }
            }),
        };
        debug_assert_eq!(outcomes.len(), i);
        outcomes.push(outcome);
    }
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "insert into messages ({MESSAGE_COLUMNS}) values {}",
            placeholders(chunk.len(), 10)
        );
        on_conn!(conn, |e| {
            let mut q = sqlx::query(AssertSqlSafe(sql)).persistent(false);
            for (m, seq) in chunk {
                q = q
                    .bind(m.tenant.0)
                    .bind(m.room.0)
                    .bind(*seq)
                    .bind(m.sender.map(|u| u.0))
                    .bind(&m.sender_name)
                    .bind(m.client_msg_id.as_deref())
                    .bind(m.kind.as_str())
                    .bind(&m.body)
                    .bind(m.ts)
                    .bind(None::<i64>);
            }
            q.execute(&mut *e).await?;
        });
    }
    Ok(outcomes)
}

/// The columns [`INSERT_MESSAGE_SQL`] fills, in its order.
const MESSAGE_COLUMNS: &str =
    "tenant_id, room_id, seq, sender_id, sender_name, client_msg_id, kind, body, ts, file_id";

/// Index in `msgs` → (seq, ts) of the copy stored before, for every message
/// whose idempotency key is already in the table.
async fn stored_copies(
    conn: &mut Conn<'_>,
    msgs: &[&NewMessage],
) -> Result<HashMap<usize, (i64, i64)>, sqlx::Error> {
    let keyed: Vec<(usize, i64, i64, i64, &str)> = msgs
        .iter()
        .enumerate()
        .filter_map(|(i, m)| {
            Some((i, m.tenant.0, m.room.0, m.sender?.0, m.client_msg_id.as_deref()?))
        })
        .collect();
    let mut found = HashMap::new();
    for chunk in keyed.chunks(ROWS_PER_STATEMENT) {
        // The join walks the VALUES rows and probes messages_idempotency
        // (room_id, sender_id, client_msg_id) for each.
        let sql = format!(
            "select k.column1, m.seq, m.ts from (values {}) as k
             join messages m on m.tenant_id = k.column2 and m.room_id = k.column3
                 and m.sender_id = k.column4 and m.client_msg_id = k.column5",
            placeholders(chunk.len(), 5)
        );
        let rows: Vec<(i64, i64, i64)> = on_conn!(conn, |e| {
            let mut q = sqlx::query_as(AssertSqlSafe(sql)).persistent(false);
            for &(i, tenant, room, sender, cmid) in chunk {
                q = q
                    .bind(i64::try_from(i).unwrap_or(i64::MAX))
                    .bind(tenant)
                    .bind(room)
                    .bind(sender)
                    .bind(cmid);
            }
            q.fetch_all(&mut *e).await?
        });
        for (i, seq, ts) in rows {
            if let Ok(i) = usize::try_from(i) {
                found.insert(i, (seq, ts));
            }
        }
    }
    Ok(found)
}

#[derive(sqlx::FromRow)]
struct Row {
    seq: i64,
    sender_name: String,
    client_msg_id: Option<String>,
    kind: String,
    body: String,
    ts: i64,
    offer_id: Option<i64>,
    file_size: Option<i64>,
    file_hash: Option<String>,
    change: Option<String>,
    edited: Option<i64>,
    deleted_by: Option<String>,
    deleted_at: Option<i64>,
    reply_to: Option<i64>,
    parent_sender: Option<String>,
    parent_body: Option<String>,
    parent_deleted: Option<i64>,
    replies: i64,
    reactions: Option<String>,
    mentioned: Option<String>,
    mentions_room: bool,
}

impl Row {
    fn into_message(self, room: &RoomLabel) -> Message {
        let file = match (self.offer_id, self.file_size, self.file_hash) {
            (Some(id), Some(size), Some(hash)) => {
                Some(FileInfo { id: to_u64(id), name: self.body.clone(), size: to_u64(size), hash })
            }
            _ => None,
        };
        Message {
            room: room.name.clone(),
            seq: to_u64(self.seq),
            sender: self.sender_name,
            ts: self.ts,
            kind: MessageKind::parse(&self.kind).unwrap_or(MessageKind::System),
            body: self.body,
            client_msg_id: self.client_msg_id,
            file,
            room_id: Some(room.id.clone()),
            // A change this binary cannot read is left out; the body says it.
            change: self.change.and_then(|c| serde_json::from_str(&c).ok()).map(Box::new),
            edited: self.edited,
            deleted: match (self.deleted_by, self.deleted_at) {
                (Some(by), Some(ts)) => Some(Box::new(Tombstone { by, ts })),
                _ => None,
            },
            // A parent that is gone (its room's history cut, say) shows as
            // deleted by nobody.
            reply_to: self.reply_to.map(|seq| {
                Box::new(ReplyTo {
                    seq: to_u64(seq),
                    sender: self.parent_sender.unwrap_or_default(),
                    excerpt: excerpt(self.parent_body.as_deref().unwrap_or("")),
                    deleted: self.parent_deleted.is_some(),
                })
            }),
            mentions: mentions(self.mentioned.as_deref(), self.mentions_room).map(Box::new),
            reactions: self.reactions.as_deref().map(parse_reactions).unwrap_or_default().into(),
            replies: u32::try_from(self.replies).unwrap_or(u32::MAX),
        }
    }
}

/// A message's `mentions`: `@room`, or the names mentioned (the
/// `mentioned` column: names separated by spaces), or nobody.
pub(crate) fn mentions(named: Option<&str>, room: bool) -> Option<Vec<String>> {
    if room {
        return Some(vec![MENTION_EVERYONE.to_owned()]);
    }
    let mut names: Vec<String> =
        named?.split(' ').filter(|n| !n.is_empty()).map(str::to_owned).collect();
    // Byte order, as the live event has them: the database's collation
    // (PostgreSQL's may be a locale's) does not decide it.
    names.sort_unstable();
    (!names.is_empty()).then_some(names)
}

/// The start of a body, as a reply quotes it: at most
/// [`MAX_EXCERPT_CHARS`] characters, on one line, `…` when cut.
pub(crate) fn excerpt(body: &str) -> String {
    let line: String = body.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let line = line.trim();
    if line.chars().count() <= MAX_EXCERPT_CHARS {
        return line.to_owned();
    }
    let mut cut: String = line.chars().take(MAX_EXCERPT_CHARS - 1).collect();
    cut.push('…');
    cut
}

/// `EMOJI COUNT MINE` triples (the reactions column of [`page_sql`]).
fn parse_reactions(s: &str) -> Vec<Reaction> {
    let words: Vec<&str> = s.split(' ').collect();
    words
        .chunks_exact(3)
        .map(|w| Reaction {
            emoji: w[0].to_owned(),
            count: w[1].parse().unwrap_or(0),
            me: w[2] == "1",
        })
        .collect()
}

fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Who reads a page, and in which room: `viewer`'s reactions are `me`.
#[derive(Debug, Clone)]
pub(crate) struct Reading {
    pub(crate) tenant: TenantId,
    pub(crate) room: RoomId,
    pub(crate) label: RoomLabel,
    pub(crate) viewer: UserId,
}

/// Messages with seq < `before`, newest first (the order a `history` page
/// is taken in), at most `limit + 1` of them: one more than the page, so
/// that whoever takes the page learns whether older ones exist.
pub(crate) fn before<'e>(
    db: impl Into<Ex<'e>>,
    r: &Reading,
    before: u64,
    limit: u32,
) -> BoxStream<'e, Result<Message, sqlx::Error>> {
    page(db, HISTORY_SQL, r, before, limit, None)
}

/// Messages with seq > `after`, oldest first (the order a `sync` page is
/// taken in), at most `limit + 1` of them (see [`before`]).
pub(crate) fn after<'e>(
    db: impl Into<Ex<'e>>,
    r: &Reading,
    after: u64,
    limit: u32,
) -> BoxStream<'e, Result<Message, sqlx::Error>> {
    page(db, SYNC_SQL, r, after, limit, None)
}

/// The replies to message `parent` with seq > `after`, oldest first, at
/// most `limit + 1` of them (see [`before`]).
pub(crate) fn replies<'e>(
    db: impl Into<Ex<'e>>,
    r: &Reading,
    parent: u64,
    after: u64,
    limit: u32,
) -> BoxStream<'e, Result<Message, sqlx::Error>> {
    page(db, THREAD_SQL, r, after, limit, Some(parent))
}

/// The message `seq` of the room, as history shows it.
pub(crate) async fn one(
    db: impl Into<Ex<'_>>,
    r: &Reading,
    seq: u64,
) -> Result<Option<Message>, sqlx::Error> {
    page(db, ONE_SQL, r, seq, 1, None).try_next().await
}

/// The rows of one page query (`sql`, from [`page_sql`]) from `seq` on, in
/// the query's order, at most `limit + 1`; read lazily, so whoever takes
/// the page (`paging::fill`) stops the query once the page is full.
fn page<'e>(
    db: impl Into<Ex<'e>>,
    sql: &'static str,
    r: &Reading,
    seq: u64,
    limit: u32,
    parent: Option<u64>,
) -> BoxStream<'e, Result<Message, sqlx::Error>> {
    let label = r.label.clone();
    on!(db, |e| {
        let mut q = sqlx::query_as::<_, Row>(sql)
            .bind(r.tenant.0)
            .bind(r.room.0)
            .bind(clamp(seq))
            .bind(i64::from(limit) + 1)
            .bind(r.viewer.0);
        if let Some(p) = parent {
            q = q.bind(clamp(p));
        }
        q.fetch(e).map_ok(move |r| r.into_message(&label)).boxed()
    })
}

/// What an edit, a deletion or a reaction needs to know of its message.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) sender: Option<UserId>,
    pub(crate) sender_name: String,
    pub(crate) kind: MessageKind,
    pub(crate) body: String,
    pub(crate) deleted: bool,
}

/// Message `seq` of the room, if there is one.
pub(crate) async fn target(
    conn: &mut Conn<'_>,
    tenant: TenantId,
    room: RoomId,
    seq: u64,
) -> Result<Option<Target>, sqlx::Error> {
    type TargetRow = (Option<i64>, String, String, String, Option<i64>);
    let row: Option<TargetRow> = on!(conn.re(), |e| sqlx::query_as(
        "select sender_id, sender_name, kind, body, deleted_at from messages
             where tenant_id = $1 and room_id = $2 and seq = $3"
    )
    .bind(tenant.0)
    .bind(room.0)
    .bind(clamp(seq))
    .fetch_optional(e)
    .await)?;
    Ok(row.map(|(sender, sender_name, kind, body, deleted)| Target {
        sender: sender.map(UserId),
        sender_name,
        kind: MessageKind::parse(&kind).unwrap_or(MessageKind::System),
        body,
        deleted: deleted.is_some(),
    }))
}

/// Replaces message `seq`'s body, marking it edited at `ts`.
pub(crate) async fn edit(
    conn: &mut Conn<'_>,
    tenant: TenantId,
    room: RoomId,
    seq: u64,
    body: &str,
    ts: i64,
) -> Result<(), sqlx::Error> {
    on!(conn.re(), |e| sqlx::query(
        "update messages set body = $1, edited = $2
         where tenant_id = $3 and room_id = $4 and seq = $5"
    )
    .bind(body)
    .bind(ts)
    .bind(tenant.0)
    .bind(room.0)
    .bind(clamp(seq))
    .execute(e)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Makes message `seq` a tombstone: its body (and every edit's copy of
/// it), its reactions and its offer go; who deleted it and when stay.
/// Returns the hash of the stored content no message offers any more (a
/// file message's, unless offered elsewhere too), for the caller to remove
/// from disk after the commit.
pub(crate) async fn tombstone(
    conn: &mut Conn<'_>,
    tenant: TenantId,
    room: RoomId,
    seq: u64,
    by: &str,
    ts: i64,
) -> Result<Option<String>, sqlx::Error> {
    let seq = clamp(seq);
    let file: Option<Option<i64>> = on!(conn.re(), |e| sqlx::query_scalar(
        "select file_id from messages where tenant_id = $1 and room_id = $2 and seq = $3"
    )
    .bind(tenant.0)
    .bind(room.0)
    .bind(seq)
    .fetch_optional(e)
    .await)?;
    on!(conn.re(), |e| sqlx::query(
        "delete from offers where tenant_id = $1 and room_id = $2 and seq = $3"
    )
    .bind(tenant.0)
    .bind(room.0)
    .bind(seq)
    .execute(e)
    .await
    .map(|r| r.rows_affected()))?;
    on!(conn.re(), |e| sqlx::query(
        "delete from reactions where tenant_id = $1 and room_id = $2 and seq = $3"
    )
    .bind(tenant.0)
    .bind(room.0)
    .bind(seq)
    .execute(e)
    .await
    .map(|r| r.rows_affected()))?;
    // A tombstone mentions nobody: its mentions stop counting.
    on!(conn.re(), |e| sqlx::query(
        "delete from mentions where tenant_id = $1 and room_id = $2 and seq = $3"
    )
    .bind(tenant.0)
    .bind(room.0)
    .bind(seq)
    .execute(e)
    .await
    .map(|r| r.rows_affected()))?;
    on!(conn.re(), |e| sqlx::query(
        "update messages set body = '', file_id = null, edited = null, deleted_by = $1,
             deleted_at = $2, mentions_room = false
         where tenant_id = $3 and room_id = $4 and seq = $5"
    )
    .bind(by)
    .bind(ts)
    .bind(tenant.0)
    .bind(room.0)
    .bind(seq)
    .execute(e)
    .await
    .map(|r| r.rows_affected()))?;
    // The edits' system messages carry the text they set: erase it.
    let edits: Vec<(i64, Option<String>)> = on!(conn.re(), |e| sqlx::query_as(
        "select seq, change from messages
         where tenant_id = $1 and room_id = $2 and target_seq = $3"
    )
    .bind(tenant.0)
    .bind(room.0)
    .bind(seq)
    .fetch_all(e)
    .await)?;
    for (edit_seq, change) in edits {
        let Some(mut c) = change.and_then(|c| serde_json::from_str::<Change>(&c).ok()) else {
            continue;
        };
        if c.kind != ChangeKind::Edited || c.body.is_none() {
            continue;
        }
        c.body = None;
        let json = serde_json::to_string(&c).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        on!(conn.re(), |e| sqlx::query(
            "update messages set change = $1 where tenant_id = $2 and room_id = $3 and seq = $4"
        )
        .bind(&json)
        .bind(tenant.0)
        .bind(room.0)
        .bind(edit_seq)
        .execute(e)
        .await
        .map(|r| r.rows_affected()))?;
    }
    let Some(Some(file)) = file else {
        return Ok(None);
    };
    let hash: Option<String> = on!(conn.re(), |e| sqlx::query_scalar(
        "select hash from files f where f.tenant_id = $1 and f.id = $2
           and not exists (select 1 from messages m where m.file_id = f.id)
           and not exists (select 1 from offers o where o.file_id = f.id)"
    )
    .bind(tenant.0)
    .bind(file)
    .fetch_optional(e)
    .await)?;
    if hash.is_some() {
        on!(conn.re(), |e| sqlx::query("delete from files where tenant_id = $1 and id = $2")
            .bind(tenant.0)
            .bind(file)
            .execute(e)
            .await
            .map(|r| r.rows_affected()))?;
    }
    Ok(hash)
}

/// Adds (`add`) or removes `user`'s reaction `emoji` to message `seq`;
/// `false` when that was so already.
pub(crate) async fn react(
    conn: &mut Conn<'_>,
    at: (TenantId, RoomId, u64),
    user: UserId,
    emoji: &str,
    add: bool,
    ts: i64,
) -> Result<bool, sqlx::Error> {
    let (tenant, room, seq) = (at.0, at.1, clamp(at.2));
    let changed = if add {
        on!(conn.re(), |e| sqlx::query(
            "insert into reactions (tenant_id, room_id, seq, user_id, emoji, ts)
             values ($1, $2, $3, $4, $5, $6) on conflict do nothing"
        )
        .bind(tenant.0)
        .bind(room.0)
        .bind(seq)
        .bind(user.0)
        .bind(emoji)
        .bind(ts)
        .execute(e)
        .await
        .map(|r| r.rows_affected()))?
    } else {
        on!(conn.re(), |e| sqlx::query(
            "delete from reactions
             where tenant_id = $1 and room_id = $2 and seq = $3 and user_id = $4 and emoji = $5"
        )
        .bind(tenant.0)
        .bind(room.0)
        .bind(seq)
        .bind(user.0)
        .bind(emoji)
        .execute(e)
        .await
        .map(|r| r.rows_affected()))?
    };
    Ok(changed > 0)
}

/// Whether message `seq` holds reaction `emoji` (from anyone).
pub(crate) async fn has_reaction(
    conn: &mut Conn<'_>,
    tenant: TenantId,
    room: RoomId,
    seq: u64,
    emoji: &str,
) -> Result<bool, sqlx::Error> {
    let n: i64 = on!(conn.re(), |e| sqlx::query_scalar(
        "select count(*) from reactions
         where tenant_id = $1 and room_id = $2 and seq = $3 and emoji = $4"
    )
    .bind(tenant.0)
    .bind(room.0)
    .bind(clamp(seq))
    .bind(emoji)
    .fetch_one(e)
    .await)?;
    Ok(n > 0)
}

/// How many different emoji message `seq` holds.
pub(crate) async fn reaction_kinds(
    conn: &mut Conn<'_>,
    tenant: TenantId,
    room: RoomId,
    seq: u64,
) -> Result<u64, sqlx::Error> {
    let n: i64 = on!(conn.re(), |e| sqlx::query_scalar(
        "select count(distinct emoji) from reactions
         where tenant_id = $1 and room_id = $2 and seq = $3"
    )
    .bind(tenant.0)
    .bind(room.0)
    .bind(clamp(seq))
    .fetch_one(e)
    .await)?;
    Ok(to_u64(n))
}

/// Writes a SQLite database's WAL back into its file and empties the WAL,
/// so that what a deletion overwrote (`secure_delete`) leaves no older copy
/// in the WAL either. Best effort: a reader in the way leaves it for the
/// next checkpoint. Nothing to do on PostgreSQL.
pub(crate) async fn checkpoint(db: &super::Db) {
    if let super::Db::Sqlite(pool) = db {
        let done: Result<(i64, i64, i64), sqlx::Error> =
            sqlx::query_as("pragma wal_checkpoint(truncate)").fetch_one(pool).await;
        match done {
            Ok((0, _, _)) => {}
            Ok(_) => tracing::debug!("checkpoint after a deletion was blocked by a reader"),
            Err(e) => tracing::warn!(cause = %e, "checkpoint after a deletion"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db;

    #[tokio::test]
    async fn append_is_gap_free_idempotent_and_pages() {
        for test_db in db::testing::each().await {
            append_is_gap_free_idempotent_and_pages_on(&test_db).await;
        }
    }

    async fn append_is_gap_free_idempotent_and_pages_on(pool: &db::Db) {
        let t = db::tenants::create(pool, "acme", false).await.expect("tenant");
        let u = db::users::create(pool, t, "ann", "x").await.expect("user");
        let r = db::rooms::create(pool, t, "general", qchat_protocol::RoomKind::Public, None)
            .await
            .expect("room");
        let mut pooled = pool.acquire().await.expect("conn");
        let mut conn = pooled.conn();
        let mk = |cmid: &str| NewMessage {
            tenant: t,
            room: r.id,
            sender: Some(u),
            sender_name: "ann".into(),
            client_msg_id: Some(cmid.into()),
            kind: MessageKind::Text,
            body: format!("body {cmid}"),
            ts: 1,
            file: None,
            change: None,
            reply_to: None,
            mentions: None,
        };
        for i in 0..10 {
            let out = append(&mut conn, &mk(&i.to_string()), true).await.expect("append");
            assert_eq!(out, Some(AppendOutcome::New { seq: i + 1, offer: None }));
        }
        let again = append(&mut conn, &mk("3"), true).await.expect("append");
        assert_eq!(again, Some(AppendOutcome::Duplicate { seq: 4, ts: 1, offer: None }));
        // A sender who may no longer post: a repeat is still recognised,
        // anything new is refused and takes no seq.
        let again = append(&mut conn, &mk("3"), false).await.expect("append");
        assert_eq!(again, Some(AppendOutcome::Duplicate { seq: 4, ts: 1, offer: None }));
        let refused = append(&mut conn, &mk("new"), false).await.expect("append");
        assert_eq!(refused, Some(AppendOutcome::Refused));
        let label = r.label();
        let reading = |tenant| Reading { tenant, room: r.id, label: label.clone(), viewer: u };
        let read = reading(t);

        let seqs = |rows: Vec<Message>| rows.iter().map(|m| m.seq).collect::<Vec<_>>();
        let rows = before(pool, &read, u64::MAX, 4);
        assert_eq!(seqs(rows.try_collect().await.expect("rows")), vec![10, 9, 8, 7, 6]);
        let rows = before(pool, &read, 3, 4);
        assert_eq!(seqs(rows.try_collect().await.expect("rows")), vec![2, 1]);
        let rows = after(pool, &read, 8, 5);
        assert_eq!(seqs(rows.try_collect().await.expect("rows")), vec![9, 10]);
        let rows = after(pool, &read, 2, 3);
        assert_eq!(seqs(rows.try_collect().await.expect("rows")), vec![3, 4, 5, 6]);

        // Another tenant's id for the same room sees nothing.
        let other = db::tenants::create(pool, "other", false).await.expect("tenant");
        let rows = before(pool, &reading(other), u64::MAX, 50);
        assert!(seqs(rows.try_collect().await.expect("rows")).is_empty());
    }

    #[test]
    fn the_published_insert_is_the_one_append_all_repeats() {
        let norm = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
        let built = format!(
            "insert into messages ({MESSAGE_COLUMNS}) values {}",
            placeholders(1, MESSAGE_COLUMNS.split(',').count())
        );
        assert_eq!(norm(INSERT_MESSAGE_SQL), norm(&built));
    }

    /// Everything stored in `messages`, in key order.
    async fn all_rows(
        pool: &db::Db,
    ) -> Vec<(i64, i64, i64, Option<i64>, String, Option<String>, String, String, i64)> {
        on!(pool, |e| sqlx::query_as(
            "select tenant_id, room_id, seq, sender_id, sender_name, client_msg_id, kind, body, ts
             from messages order by room_id, seq",
        )
        .fetch_all(e)
        .await)
        .expect("rows")
    }

    #[tokio::test]
    async fn append_all_does_what_append_does_one_by_one() {
        for backend in [db::Backend::Sqlite, db::Backend::Postgres] {
            append_all_does_what_append_does_on(backend).await;
        }
    }

    async fn append_all_does_what_append_does_on(backend: db::Backend) {
        // Two databases with the same tenant, users and rooms (same ids).
        let mut setups = Vec::new();
        for _ in 0..2 {
            let test_db = db::testing::fresh(backend).await;
            let pool = &test_db.db;
            let t = db::tenants::create(pool, "acme", false).await.expect("tenant");
            let ann = db::users::create(pool, t, "ann", "x").await.expect("user");
            let bob = db::users::create(pool, t, "bob", "x").await.expect("user");
            let public = qchat_protocol::RoomKind::Public;
            let a = db::rooms::create(pool, t, "a", public, None).await.expect("room");
            let b = db::rooms::create(pool, t, "b", public, None).await.expect("room");
            setups.push((test_db, t, ann, bob, a.id, b.id));
        }
        let (_, t, ann, bob, a, b) = setups[0];
        let mk = |room: RoomId, sender: Option<UserId>, cmid: Option<&str>, i: i64| NewMessage {
            tenant: t,
            room,
            sender,
            sender_name: if sender == Some(ann) { "ann".into() } else { "bob".into() },
            client_msg_id: cmid.map(str::to_owned),
            kind: if cmid.is_some() { MessageKind::Text } else { MessageKind::System },
            body: format!("body {i}"),
            ts: 1000 + i,
            file: None,
            change: None,
            reply_to: None,
            mentions: None,
        };
        // Stored before the run: ann's "k1" in room a.
        let before_run = [mk(a, Some(ann), Some("k1"), 0)];
        let mut run = vec![
            mk(a, Some(ann), Some("k1"), 1), // stored before: duplicate
            mk(a, Some(ann), Some("k2"), 2), // new
            mk(b, Some(ann), Some("k2"), 3), // same key, other room: new
            mk(a, Some(bob), Some("k2"), 4), // other sender: new
            mk(a, Some(ann), Some("k2"), 5), // repeated within the run
            mk(a, None, None, 6),            // system message, no key
            mk(RoomId(9999), Some(ann), Some("k3"), 7), // no such room
            mk(RoomId(9999), Some(ann), Some("k3"), 8), // ... repeated
            mk(b, Some(bob), Some("k4"), 9),
        ];
        // Enough to need several statements per step.
        for i in 0..1200 {
            let room = if i % 3 == 0 { b } else { a };
            run.push(mk(
                room,
                Some(if i % 2 == 0 { ann } else { bob }),
                Some(&format!("m{i}")),
                10 + i,
            ));
        }
        run.push(mk(b, Some(bob), Some("k4"), 5000)); // far repeat
        // Bob may no longer post in room a from here: his new messages there
        // are refused, his repeats still recognised.
        run.push(mk(a, Some(bob), Some("k2"), 5001)); // repeat of a stored one
        run.push(mk(a, Some(bob), Some("late"), 5002)); // refused
        run.push(mk(a, Some(bob), Some("late"), 5003)); // refused again
        run.push(mk(b, Some(bob), Some("late"), 5004)); // other room: new
        let refused_from = run.len() - 4;
        let allowed: Vec<bool> = run
            .iter()
            .enumerate()
            .map(|(i, m)| i < refused_from || !(m.room == a && m.sender == Some(bob)))
            .collect();

        let one_by_one = {
            let pool = &setups[0].0;
            let mut tx = pool.begin().await.expect("tx");
            for m in &before_run {
                append(&mut tx.conn(), m, true).await.expect("append");
            }
            let mut out = Vec::new();
            for (m, ok) in run.iter().zip(&allowed) {
                out.push(append(&mut tx.conn(), m, *ok).await.expect("append"));
            }
            tx.commit().await.expect("commit");
            out
        };
        let grouped = {
            let pool = &setups[1].0;
            let mut tx = pool.begin().await.expect("tx");
            append_all(&mut tx.conn(), &before_run.iter().collect::<Vec<_>>(), &[true])
                .await
                .expect("append_all");
            let out = append_all(&mut tx.conn(), &run.iter().collect::<Vec<_>>(), &allowed)
                .await
                .expect("append_all");
            tx.commit().await.expect("commit");
            out
        };
        assert_eq!(grouped, one_by_one);
        assert_eq!(grouped[0], Some(AppendOutcome::Duplicate { seq: 1, ts: 1000, offer: None }));
        assert_eq!(grouped[4], Some(AppendOutcome::Duplicate { seq: 2, ts: 1002, offer: None }));
        assert_eq!(grouped[6], None);
        assert_eq!(grouped[7], None);
        let n = run.len();
        assert!(matches!(grouped[n - 4], Some(AppendOutcome::Duplicate { .. })));
        assert_eq!(grouped[n - 3], Some(AppendOutcome::Refused));
        assert_eq!(grouped[n - 2], Some(AppendOutcome::Refused));
        assert!(matches!(grouped[n - 1], Some(AppendOutcome::New { .. })));
        assert_eq!(all_rows(&setups[0].0).await, all_rows(&setups[1].0).await);
        for (pool, ..) in &setups {
            let pool: &db::Db = pool;
            let last: Vec<i64> =
                on!(pool, |e| sqlx::query_scalar("select last_seq from rooms order by id")
                    .fetch_all(e)
                    .await)
                .expect("rooms");
            let counts: Vec<i64> = on!(pool, |e| sqlx::query_scalar(
                "select count(m.seq) from rooms r left join messages m on m.room_id = r.id
                 group by r.id order by r.id",
            )
            .fetch_all(e)
            .await)
            .expect("counts");
            assert_eq!(last, counts, "last_seq is each room's message count: gap-free");
        }
    }
}

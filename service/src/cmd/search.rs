//! `search`: full-text search over every room the caller may read now.

use futures_util::TryStreamExt as _;
use qchat_protocol::{
    DEFAULT_SEARCH_PAGE, ErrorCode, MAX_SEARCH_PAGE, MessageKind, SearchHit, SearchOk, SearchReq,
};
use serde::{Serialize, Serializer};
use serde_json::Value;

use super::{check_name, ok, who};
use crate::access::{self, Need};
use crate::db::{self, Room};
use crate::error::{Result, refuse};
use crate::paging;
use crate::search::{Cursor, Query, excerpt};
use crate::state::{Login, Shared};

/// A hit with its sort key; only the hit goes on the wire.
struct Keyed {
    key: Cursor,
    hit: SearchHit,
}

impl Serialize for Keyed {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.hit.serialize(s)
    }
}

pub(super) async fn search(s: &Shared, login: &Login, r: SearchReq) -> Result<Value> {
    let query = Query::parse(&r.query).map_err(|e| refuse(ErrorCode::BadRequest, e.to_string()))?;
    let limit = match r.limit {
        None => DEFAULT_SEARCH_PAGE,
        Some(n) if (1..=MAX_SEARCH_PAGE).contains(&n) => n,
        Some(_) => {
            return Err(refuse(
                ErrorCode::BadRequest,
                format!("limit must be 1 to {MAX_SEARCH_PAGE}"),
            ));
        }
    };
    let cursor = match &r.cursor {
        None => Cursor::START,
        Some(c) => Cursor::decode(c)
            .ok_or_else(|| refuse(ErrorCode::BadRequest, "cursor is not one this server made"))?,
    };
    if let Some(from) = &r.from {
        check_name("user", from)?;
    }
    // Only the rooms the caller may read now, decided where every request
    // is (access.rs): one named room, or all of them.
    let rooms: Vec<Room> = match &r.room {
        Some(reference) => {
            vec![access::resolve(&s.pool, who(login), reference, Need::Read).await?.room]
        }
        None => access::readable(&s.pool, who(login)).await?,
    };
    if rooms.is_empty() {
        return ok(&SearchOk { hits: Vec::new(), more: false, cursor: None });
    }
    let ids = rooms.iter().map(|room| room.id).collect();
    let labels: std::collections::HashMap<i64, Room> =
        rooms.into_iter().map(|room| (room.id.0, room)).collect();
    let q = db::search::Search {
        fts5: query.fts5(),
        tsquery: query.tsquery(),
        rooms: ids,
        from: r.from,
        after: r.after.unwrap_or(i64::MIN),
        before: r.before.unwrap_or(i64::MAX),
        has_file: r.has_file,
        cursor,
        limit: limit + 1,
    };
    let rows = db::search::hits(&s.pool, login.tenant, &q).map_ok(|row| {
        let (excerpt, marks) = excerpt(&row.body, &query);
        Keyed {
            key: Cursor { ts: row.ts, room: row.room_id, seq: row.seq },
            hit: SearchHit {
                room: labels.get(&row.room_id).map(|l| l.name.clone()).unwrap_or_default(),
                room_id: labels.get(&row.room_id).map(|l| l.handle.clone()).unwrap_or_default(),
                seq: u64::try_from(row.seq).unwrap_or_default(),
                sender: row.sender_name,
                ts: row.ts,
                kind: MessageKind::parse(&row.kind).unwrap_or(MessageKind::System),
                excerpt,
                marks,
            },
        }
    });
    let (hits, more) = paging::fill(rows, limit as usize).await?;
    let cursor = if more { hits.last().map(|k| k.key.encode()) } else { None };
    ok(&SearchOk { hits: hits.into_iter().map(|k| k.hit).collect(), more, cursor })
}

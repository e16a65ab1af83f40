//! Whom the new messages of a commit mention: of the names their bodies
//! give (`@ann`), those of the room's members ([`access::mentionable`]);
//! and `@room`, where the sender may mention everyone
//! ([`access::room_mention`]). Decided and stored in the writer's
//! transaction like the right to post. A name that is no member's, and an
//! `@room` that may not mention everyone, is plain text.

use std::collections::HashMap;

use qchat_protocol::Mentions;

use crate::access;
use crate::db::{self, Conn, NewMessage, RoomId, TenantId, UserId};

/// The names a message mentions, unless it mentions everyone (`wide`:
/// then none).
fn names(m: &NewMessage, wide: bool) -> &[String] {
    match m.mentions.as_deref() {
        Some(Mentions { names, .. }) if !wide => names.as_slice(),
        _ => &[],
    }
}

/// Whether each message of `new` mentions everyone: it says `@room` and
/// its sender may ([`access::room_mention`], on the sender's standing and
/// the room's size in this transaction).
async fn everyone(
    conn: &mut Conn<'_>,
    new: &[(&NewMessage, u64)],
) -> Result<Vec<bool>, sqlx::Error> {
    let says = |m: &NewMessage| m.mentions.as_ref().is_some_and(|x| x.room);
    let senders: Vec<_> = new
        .iter()
        .filter(|(m, _)| says(m))
        .filter_map(|(m, _)| Some((m.tenant, m.room, m.sender?)))
        .collect();
    if senders.is_empty() {
        return Ok(vec![false; new.len()]);
    }
    let standings = db::members::standings_of(conn, &senders).await?;
    let mut sizes: HashMap<RoomId, u64> = HashMap::new();
    let mut out = Vec::with_capacity(new.len());
    for (m, _) in new {
        let sender = m.sender.filter(|_| says(m));
        let Some((room, s)) = sender.and_then(|u| standings.get(&(m.room, u))) else {
            out.push(false);
            continue;
        };
        // Whoever may `@room` a room of any size needs no count; else the
        // count only has to tell whether the room is past the limit.
        if access::room_mention(room, s, u64::MAX) {
            out.push(true);
            continue;
        }
        let members = match sizes.get(&m.room) {
            Some(n) => *n,
            None => {
                let cap = access::ROOM_MENTION_MEMBERS + 1;
                let n = db::members::member_count(&mut *conn, m.tenant, m.room, cap).await?;
                *sizes.entry(m.room).or_insert(n)
            }
        };
        out.push(access::room_mention(room, s, members));
    }
    Ok(out)
}

/// Stores the mentions of `new` (each message with its new seq) and
/// returns, for each, the names it mentions (for its `message` event), or
/// `["@room"]`. A message whose `@room` mentions everyone is flagged, and
/// no name of it is stored besides (its names are within everyone); one
/// whose `@room` may not ([`everyone`]) mentions its names only.
pub(super) async fn record(
    conn: &mut Conn<'_>,
    new: &[(&NewMessage, u64)],
) -> Result<Vec<Vec<String>>, sqlx::Error> {
    let mut out = vec![Vec::new(); new.len()];
    if new.iter().all(|(m, _)| m.mentions.is_none()) {
        return Ok(out);
    }
    let wide = everyone(conn, new).await?;
    let mut wanted: HashMap<TenantId, Vec<String>> = HashMap::new();
    for ((m, _), wide) in new.iter().zip(&wide) {
        wanted.entry(m.tenant).or_default().extend(names(m, *wide).iter().cloned());
    }
    let mut ids: HashMap<(TenantId, String), UserId> = HashMap::new();
    for (tenant, mut names) in wanted {
        names.sort_unstable();
        names.dedup();
        // One parameter each: far below either engine's limit.
        for chunk in names.chunks(500) {
            for (id, name) in db::members::user_ids(&mut *conn, tenant, chunk).await? {
                ids.insert((tenant, name), id);
            }
        }
    }
    // The named users other than the sender, by message.
    let named = |m: &NewMessage, wide: bool| -> Vec<(String, UserId)> {
        let found = names(m, wide)
            .iter()
            .filter_map(|n| ids.get(&(m.tenant, n.clone())).map(|id| (n.clone(), *id)));
        found.filter(|(_, id)| Some(*id) != m.sender).collect()
    };
    let mut triples: Vec<_> = new
        .iter()
        .zip(&wide)
        .flat_map(|((m, _), w)| named(m, *w).into_iter().map(|(_, id)| (m.tenant, m.room, id)))
        .collect();
    triples.sort_unstable();
    triples.dedup();
    let standings = db::members::standings_of(conn, &triples).await?;
    let mut rows = Vec::new();
    let mut room_wide = Vec::new();
    for (((m, seq), names), wide) in new.iter().zip(&mut out).zip(&wide) {
        if *wide {
            room_wide.push((m.tenant, m.room, *seq));
            names.push(qchat_protocol::MENTION_EVERYONE.to_owned());
        }
        for (name, id) in named(m, *wide) {
            let member = standings.get(&(m.room, id));
            if member.is_some_and(|(room, s)| access::mentionable(room, s)) {
                rows.push((m.tenant, m.room, *seq, id));
                names.push(name);
            }
        }
    }
    db::mentions::record(conn, &rows, &room_wide).await?;
    // By name in byte order, as history reads them back.
    for names in &mut out {
        names.sort_unstable();
        names.dedup();
    }
    Ok(out)
}

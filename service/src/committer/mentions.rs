//! Whom the new messages of a commit mention: of the names their bodies
//! give (`@ann`), those of the room's members ([`access::mentionable`]),
//! decided and stored in the writer's transaction like the right to post;
//! and `@room`. A name that is no member's is plain text.

use std::collections::HashMap;

use qchat_protocol::Mentions;

use crate::access;
use crate::db::{self, Conn, NewMessage, TenantId, UserId};

/// The names a message mentions, unless it says `@room` (then none).
fn names(m: &NewMessage) -> &[String] {
    match m.mentions.as_deref() {
        Some(Mentions { room: false, names }) => names.as_slice(),
        _ => &[],
    }
}

/// Stores the mentions of `new` (each message with its new seq) and
/// returns, for each, the names it mentions (for its `message` event). A
/// message that says `@room` mentions everyone: it is flagged, and no
/// name of it is stored besides (its names are within everyone).
pub(super) async fn record(
    conn: &mut Conn<'_>,
    new: &[(&NewMessage, u64)],
) -> Result<Vec<Vec<String>>, sqlx::Error> {
    let mut out = vec![Vec::new(); new.len()];
    if new.iter().all(|(m, _)| m.mentions.is_none()) {
        return Ok(out);
    }
    let mut wanted: HashMap<TenantId, Vec<String>> = HashMap::new();
    for (m, _) in new {
        wanted.entry(m.tenant).or_default().extend(names(m).iter().cloned());
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
    let named = |m: &NewMessage| -> Vec<(String, UserId)> {
        let found = names(m)
            .iter()
            .filter_map(|n| ids.get(&(m.tenant, n.clone())).map(|id| (n.clone(), *id)));
        found.filter(|(_, id)| Some(*id) != m.sender).collect()
    };
    let mut triples: Vec<_> = new
        .iter()
        .flat_map(|(m, _)| named(m).into_iter().map(|(_, id)| (m.tenant, m.room, id)))
        .collect();
    triples.sort_unstable();
    triples.dedup();
    let standings = db::members::standings_of(conn, &triples).await?;
    let mut rows = Vec::new();
    let mut room_wide = Vec::new();
    for ((m, seq), names) in new.iter().zip(&mut out) {
        if m.mentions.as_ref().is_some_and(|x| x.room) {
            room_wide.push((m.tenant, m.room, *seq));
        }
        for (name, id) in named(m) {
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

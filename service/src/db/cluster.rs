//! What cluster mode reads besides the tables' own modules: where every
//! room's seq stands, the baseline a node's delivery order starts from.

use super::rooms::to_u64;
use super::{Ex, RoomId, RoomLabel, TenantId, on};

/// Every live room as `(room, tenant, label, last_seq)`.
///
/// # Errors
/// Database errors.
pub(crate) async fn room_positions(
    db: impl Into<Ex<'_>>,
) -> Result<Vec<(RoomId, TenantId, RoomLabel, u64)>, sqlx::Error> {
    let rows: Vec<(i64, i64, String, Option<String>, i64)> = on!(db, |e| sqlx::query_as(
        "select id, tenant_id, name, handle, last_seq from rooms where not disabled"
    )
    .fetch_all(e)
    .await)?;
    Ok(rows
        .into_iter()
        .map(|(id, tenant, name, handle, last)| {
            // A row without a handle is called by its name (as `Room`s are).
            let id_text = handle.unwrap_or_else(|| name.clone());
            (RoomId(id), TenantId(tenant), RoomLabel { name, id: id_text }, to_u64(last))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db;

    #[tokio::test]
    async fn positions_follow_the_rooms() {
        for test_db in db::testing::each().await {
            let pool = &test_db.db;
            let t = db::tenants::create(pool, "acme", false).await.expect("tenant");
            let kind = qchat_protocol::RoomKind::Public;
            let r = db::rooms::create(pool, t, "general", kind, None).await.expect("room");
            let got = room_positions(pool).await.expect("positions");
            assert_eq!(got, [(r.id, t, r.label(), 0)]);
        }
    }
}

//! Uploads in cluster mode (`qchat_tests::Cluster`): an upload's claim is
//! held in the database, so an upload resumes on any node.
//!
//! * a node killed with SIGKILL mid-upload: the upload resumes on another
//!   node from the bytes in the shared store, once the dead node's claim
//!   has run out, and exactly one file with the right hash is stored;
//! * a stream still open on a live node (its client moved away without
//!   closing it) is stopped when the upload resumes on another node, so the
//!   two never write one partial file.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, ensure};
use bytes::BytesMut;
use qchat_tests::{Cluster, RawConn, within};
use serde_json::{Value, json};
use sqlx::{Connection as _, PgConnection};

const PW: &str = "correct horse";
const SIZE: usize = 4 * 1024 * 1024;
const CHUNK: usize = 64 * 1024;

/// Deterministic bytes (xorshift64).
fn content(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

async fn setup(c: &Cluster) -> anyhow::Result<()> {
    let n = &c.nodes[0];
    n.tenant("acme", false).await?;
    n.user("acme", "ann", PW).await?;
    n.room("acme", "files").await?;
    Ok(())
}

/// Ann logged in on `node` (by password, or resuming `token`).
async fn ann(c: &Cluster, node: usize, token: Option<&str>) -> anyhow::Result<(RawConn, String)> {
    let mut raw = RawConn::connect(c.nodes[node].addr, &c.nodes[0].data_dir()).await?;
    let ok = match token {
        Some(t) => raw.ok("resume", json!({"token": t})).await?,
        None => raw.login("acme", "ann", PW).await?,
    };
    let token = ok["token"].as_str().context("token")?.to_owned();
    Ok((raw, token))
}

fn begin_req(hash: &str) -> Value {
    json!({"room": "files", "name": "big.bin", "size": SIZE, "hash": hash})
}

/// Opens an upload stream from `offset` and writes `bytes[offset..upto]`.
async fn stream_part(
    raw: &RawConn,
    id: &str,
    bytes: &[u8],
    offset: usize,
    upto: usize,
) -> anyhow::Result<quinn::SendStream> {
    let mut stream = raw.conn.open_uni().await?;
    let mut head = BytesMut::new();
    let header = serde_json::to_vec(&json!({"upload_id": id, "offset": offset}))?;
    qchat_protocol::encode_frame(&header, &mut head)?;
    stream.write_all(&head).await?;
    for chunk in bytes[offset..upto].chunks(CHUNK) {
        stream.write_all(chunk).await?;
    }
    Ok(stream)
}

/// Waits (bounded) for the upload event of `id`.
async fn upload_event(raw: &mut RawConn, id: &str) -> anyhow::Result<Value> {
    within("the upload's event", async {
        loop {
            let ev = raw.event().await?;
            if ev["upload_id"] == id {
                return Ok(ev);
            }
        }
    })
    .await
}

/// Waits (bounded) until the shared store holds at least `n` bytes of the
/// upload.
async fn held_at_least(c: &Cluster, id: &str, n: u64) -> anyhow::Result<u64> {
    let part: PathBuf = c.shared.path().join("files").join("uploads").join(format!("{id}.part"));
    within("bytes in the shared store", async {
        loop {
            let held = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
            if held >= n {
                return Ok(held);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
}

/// Exactly one file row and one file message for `hash`, and the stored
/// bytes hash to it.
async fn stored_once(c: &Cluster, hash: &str) -> anyhow::Result<()> {
    let mut pg = PgConnection::connect(&c.db.url).await?;
    let (files, tenant): (i64, Option<i64>) =
        sqlx::query_as("select count(*), min(tenant_id) from files where hash = $1")
            .bind(hash)
            .fetch_one(&mut pg)
            .await?;
    let (messages,): (i64,) = sqlx::query_as(
        "select count(*) from messages m join files f on f.id = m.file_id where f.hash = $1",
    )
    .bind(hash)
    .fetch_one(&mut pg)
    .await?;
    let (uploads,): (i64,) =
        sqlx::query_as("select count(*) from uploads").fetch_one(&mut pg).await?;
    let _ = pg.close().await;
    ensure!(files == 1, "{files} file rows for the content");
    ensure!(messages == 1, "{messages} file messages for the content");
    ensure!(uploads == 0, "{uploads} uploads left over");
    let tenant = tenant.context("tenant")?;
    let path = c
        .shared
        .path()
        .join("files")
        .join("files")
        .join(tenant.to_string())
        .join(&hash[..2])
        .join(hash);
    let on_disk = blake3::hash(&std::fs::read(&path).with_context(|| path.display().to_string())?);
    ensure!(on_disk.to_hex().as_str() == hash, "the stored bytes hash to {on_disk}");
    Ok(())
}

#[tokio::test]
async fn an_upload_resumes_on_another_node_after_a_sigkill() -> anyhow::Result<()> {
    let mut c = Cluster::start(2, &[]).await?;
    setup(&c).await?;
    let bytes = content(0x5eed, SIZE);
    let hash = blake3::hash(&bytes).to_hex().to_string();
    let (mut a, token) = ann(&c, 0, None).await?;
    a.ok("room.join", json!({"room": "files"})).await?;
    let begun = a.ok("upload.begin", begin_req(&hash)).await?;
    let id = begun["upload_id"].as_str().context("upload_id")?.to_owned();
    ensure!(begun["offset"] == 0, "{begun}");
    let _stream = stream_part(&a, &id, &bytes, 0, SIZE / 2).await?;
    held_at_least(&c, &id, SIZE as u64 / 4).await?;
    let status = c.nodes[0].kill().await?;
    ensure!(!status.success());
    drop(a);

    // Node 0's claim stays in the database until its lease runs out; the
    // begin on node 1 waits for that, then reads what the store holds.
    let (mut b, _) = ann(&c, 1, Some(&token)).await?;
    let again = b.ok("upload.begin", begin_req(&hash)).await?;
    ensure!(again["upload_id"] == id.as_str(), "another upload: {again}");
    let offset = again["offset"].as_u64().context("offset")? as usize;
    ensure!(offset > 0 && offset <= SIZE / 2, "resumed from {offset}");
    let mut rest = stream_part(&b, &id, &bytes, offset, SIZE).await?;
    rest.finish()?;
    let done = upload_event(&mut b, &id).await?;
    ensure!(done["ev"] == "upload.done", "{done}");
    ensure!(done["file"]["hash"] == hash.as_str(), "{done}");
    stored_once(&c, &hash).await
}

#[tokio::test]
async fn a_resume_on_another_node_stops_the_stale_stream() -> anyhow::Result<()> {
    let c = Cluster::start(2, &[]).await?;
    setup(&c).await?;
    let bytes = content(0xfeed, SIZE);
    let hash = blake3::hash(&bytes).to_hex().to_string();
    let (mut a, token) = ann(&c, 0, None).await?;
    a.ok("room.join", json!({"room": "files"})).await?;
    let begun = a.ok("upload.begin", begin_req(&hash)).await?;
    let id = begun["upload_id"].as_str().context("upload_id")?.to_owned();
    // A stream left open on node 0, as by a client that moved away.
    let mut stale = stream_part(&a, &id, &bytes, 0, SIZE / 4).await?;
    let held = held_at_least(&c, &id, SIZE as u64 / 4).await?;

    let (mut b, _) = ann(&c, 1, Some(&token)).await?;
    let again = b.ok("upload.begin", begin_req(&hash)).await?;
    ensure!(again["upload_id"] == id.as_str(), "another upload: {again}");
    let offset = again["offset"].as_u64().context("offset")?;
    ensure!(offset == held, "resumed from {offset}, the store holds {held}");
    let stopped = upload_event(&mut a, &id).await?;
    ensure!(stopped["ev"] == "upload.failed" && stopped["code"] == "conflict", "{stopped}");
    // What the stale stream still sends goes nowhere.
    let _ = stale.write_all(&bytes[SIZE / 4..SIZE / 2]).await;
    let mut rest = stream_part(&b, &id, &bytes, offset as usize, SIZE).await?;
    rest.finish()?;
    let done = upload_event(&mut b, &id).await?;
    ensure!(done["ev"] == "upload.done", "{done}");
    stored_once(&c, &hash).await
}

//! End-to-end file transfer (issue 4): a real qchatd on 127.0.0.1, real
//! clients (the library) and, for hostile input, the raw protocol.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use qchat_client::{
    Auth, Client, ClientConfig, ClientEvent, ErrorCode, Events, MessageKind, Trust, UploadHandle,
    UploadState,
};
use qchat_tests::{RawConn, TestServer, within};
use serde_json::json;

const PW: &str = "correct horse";
const MIB: usize = 1 << 20;
/// Bound for waits that move tens of MiB through debug builds.
const BIG: Duration = Duration::from_secs(180);

async fn server(extra: &[&str], users: &[&str]) -> anyhow::Result<TestServer> {
    let s = if extra.is_empty() {
        TestServer::start().await?
    } else {
        TestServer::start_with(extra).await?
    };
    s.tenant("acme", false).await?;
    for u in users {
        s.user("acme", u, PW).await?;
    }
    s.room("acme", "general").await?;
    Ok(s)
}

async fn client(s: &TestServer, user: &str) -> anyhow::Result<(Client, Events)> {
    client_via(s, s.addr, user).await
}

/// A client of `s` that connects to `addr` (the server, or a [`Relay`] to it).
async fn client_via(
    s: &TestServer,
    addr: SocketAddr,
    user: &str,
) -> anyhow::Result<(Client, Events)> {
    let cfg = ClientConfig::new(
        addr.to_string(),
        "acme",
        user,
        Auth::Password(PW.into()),
        Trust::Fingerprint(s.fingerprint.clone()),
    );
    let (c, ev) = within("connect", Client::connect(cfg)).await?;
    within("join", c.join_room("general")).await?;
    Ok((c, ev))
}

/// `len` pseudo-random bytes (BLAKE3 in XOF mode, keyed by `seed`) at `path`.
fn random_file(path: &Path, len: usize, seed: &str) -> anyhow::Result<String> {
    let mut data = vec![0u8; len];
    blake3::Hasher::new().update(seed.as_bytes()).finalize_xof().fill(&mut data);
    std::fs::write(path, &data)?;
    Ok(blake3::hash(&data).to_hex().to_string())
}

fn hash_of(path: &Path) -> anyhow::Result<String> {
    Ok(blake3::hash(&std::fs::read(path)?).to_hex().to_string())
}

async fn bounded<F: Future>(what: &str, f: F) -> F::Output {
    match tokio::time::timeout(BIG, f).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {BIG:?}: {what}"),
    }
}

/// Waits until the upload has `bytes` accounted for while sending.
async fn sending_past(h: &UploadHandle, bytes: u64) {
    let mut rx = h.progress();
    let r =
        rx.wait_for(|p| p.is_finished() || (p.state == UploadState::Sending && p.done >= bytes));
    let p = bounded("upload under way", r).await.map(|p| p.clone());
    let p = p.expect("upload task alive");
    assert!(!p.is_finished(), "finished before {bytes} bytes: {:?}", p.state);
}

/// The next `upload.*` event, skipping the others.
async fn upload_event(raw: &mut RawConn) -> anyhow::Result<serde_json::Value> {
    loop {
        let ev = raw.event().await?;
        if ev["ev"].as_str().is_some_and(|e| e.starts_with("upload.")) {
            return Ok(ev);
        }
    }
}

/// Sends `bytes` on a new upload stream from `offset`; the stop code the
/// server ends the stream with, or `None` when it took every byte.
///
/// With `finish` the stream is finished after the bytes, and `None` means
/// every byte was acknowledged with no stop — which QUIC may report before
/// the server has even read them, so a test expecting a refusal leaves the
/// stream open instead: then only the server's STOP_SENDING ends the wait.
async fn send_upload(
    conn: quinn::Connection,
    id: String,
    offset: u64,
    bytes: Vec<u8>,
    finish: bool,
) -> anyhow::Result<Option<u64>> {
    let header = json!({"upload_id": id, "offset": offset});
    send_stream(conn, header, bytes, finish).await
}

/// [`send_upload`] with any header (a hash-later one: `"trailer": true`).
async fn send_stream(
    conn: quinn::Connection,
    header: serde_json::Value,
    bytes: Vec<u8>,
    finish: bool,
) -> anyhow::Result<Option<u64>> {
    let mut s = conn.open_uni().await?;
    let header = serde_json::to_vec(&header)?;
    s.write_all(&RawConn::frame(&header)).await?;
    if let Err(e) = s.write_all(&bytes).await {
        return match e {
            quinn::WriteError::Stopped(code) => Ok(Some(code.into_inner())),
            other => Err(other.into()),
        };
    }
    if finish {
        s.finish()?;
    }
    Ok(s.stopped().await?.map(quinn::VarInt::into_inner))
}

/// A UDP relay in front of the server. [`Relay::cut`] silently drops every
/// flow it carries so far, both ways — a network path that died without a
/// word, so the server hears no close — while flows from new client ports (a
/// reconnect opens a new endpoint) are relayed as before. Its tasks end when
/// it is dropped.
struct Relay {
    addr: SocketAddr,
    flows: Arc<Mutex<Vec<Arc<AtomicBool>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    async fn start(server: SocketAddr) -> anyhow::Result<Self> {
        let front = Arc::new(tokio::net::UdpSocket::bind("127.0.0.1:0").await?);
        let addr = front.local_addr()?;
        let flows = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn(relay_front(front, server, flows.clone()));
        Ok(Self { addr, flows, task })
    }

    /// Kills every flow relayed so far.
    fn cut(&self) {
        for dead in self.flows.lock().map(|f| f.clone()).unwrap_or_default() {
            dead.store(true, Ordering::SeqCst);
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Client to server: one upstream socket per client address. The return
/// tasks live in a set owned by this task, so aborting it ends them too.
async fn relay_front(
    front: Arc<tokio::net::UdpSocket>,
    server: SocketAddr,
    registry: Arc<Mutex<Vec<Arc<AtomicBool>>>>,
) {
    type Flow = (Arc<tokio::net::UdpSocket>, Arc<AtomicBool>);
    let mut flows: HashMap<SocketAddr, Flow> = HashMap::new();
    let mut back = tokio::task::JoinSet::new();
    let mut buf = vec![0u8; 65536];
    while let Ok((n, from)) = front.recv_from(&mut buf).await {
        let (up, dead) = match flows.get(&from) {
            Some(f) => f.clone(),
            None => {
                let Ok(up) = tokio::net::UdpSocket::bind("127.0.0.1:0").await else { continue };
                if up.connect(server).await.is_err() {
                    continue;
                }
                let flow = (Arc::new(up), Arc::new(AtomicBool::new(false)));
                if let Ok(mut r) = registry.lock() {
                    r.push(flow.1.clone());
                }
                back.spawn(relay_back(flow.0.clone(), front.clone(), from, flow.1.clone()));
                flows.insert(from, flow.clone());
                flow
            }
        };
        if !dead.load(Ordering::SeqCst) {
            let _ = up.send(&buf[..n]).await;
        }
    }
}

/// Server to client for one flow.
async fn relay_back(
    up: Arc<tokio::net::UdpSocket>,
    front: Arc<tokio::net::UdpSocket>,
    client: SocketAddr,
    dead: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 65536];
    while let Ok(n) = up.recv(&mut buf).await {
        if !dead.load(Ordering::SeqCst) {
            let _ = front.send_to(&buf[..n], client).await;
        }
    }
}

/// Every file under `root`, relative to it.
fn walk(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(rel) = path.strip_prefix(root) {
                out.push(rel.to_path_buf());
            }
        }
    }
    out
}

#[tokio::test]
async fn parallel_uploads_beside_chat_then_everyone_downloads() -> anyhow::Result<()> {
    let started = Instant::now();
    let s = server(&[], &["ann", "bob", "cat"]).await?;
    let (ann, _ann_ev) = client(&s, "ann").await?;
    let (bob, mut bob_ev) = client(&s, "bob").await?;
    let (cat, _cat_ev) = client(&s, "cat").await?;

    let dir = tempfile::tempdir()?;
    let specs = [("empty.bin", 0), ("one.bin", MIB), ("big.bin", 64 * MIB)];
    let mut hashes = Vec::new();
    for (name, len) in specs {
        hashes.push(random_file(&dir.path().join(name), len, name)?);
    }
    let handles: Vec<UploadHandle> = specs
        .iter()
        .map(|(name, _)| ann.upload("general", &dir.path().join(name)))
        .collect::<Result<_, _>>()?;
    let big = &handles[2];
    sending_past(big, 1).await;

    // Chat while the big file is on its way.
    let sent = within("send", ann.send("general", "while uploading")).await?;
    let text = within("text reaches bob", async {
        loop {
            match bob_ev.recv().await {
                Some(ClientEvent::Message(m)) if m.body == "while uploading" => break m,
                Some(_) => {}
                None => panic!("bob's events ended"),
            }
        }
    })
    .await;
    assert_eq!(text.seq, sent.seq);
    assert!(!big.snapshot().is_finished(), "text delivered while the big upload is in progress");

    let mut files = Vec::new();
    for (h, hash) in handles.iter().zip(&hashes) {
        let up = bounded("upload", h.wait()).await?;
        assert_eq!(&up.file.hash, hash);
        assert!(!up.deduplicated);
        assert_eq!(up.sent, up.file.size, "a clean upload sends each byte once");
        files.push(up);
    }
    assert!(text.seq < files[2].seq, "the text was committed before the big file's message");
    eprintln!("uploads done after {:?}", started.elapsed());

    // Every other member downloads all three, in parallel.
    let mut downloads = Vec::new();
    let outs = [tempfile::tempdir()?, tempfile::tempdir()?];
    for (who, out) in [&bob, &cat].into_iter().zip(&outs) {
        for f in &files {
            downloads.push((f.file.clone(), who.download(f.file.id, out.path())?));
        }
    }
    for (file, h) in downloads {
        let d = bounded("download", h.wait()).await?;
        assert_eq!(d.path.file_name().and_then(|n| n.to_str()), Some(file.name.as_str()));
        assert_eq!(hash_of(&d.path)?, file.hash);
        assert_eq!(d.received, file.size);
    }
    for out in &outs {
        let names: Vec<_> = walk(out.path());
        assert_eq!(names.len(), 3, "no partial files left: {names:?}");
    }
    eprintln!("test done after {:?}", started.elapsed());
    Ok(())
}

#[tokio::test]
async fn cut_connections_resume_both_directions() -> anyhow::Result<()> {
    let s = server(&[], &["ann", "bob"]).await?;
    let (ann, _a) = client(&s, "ann").await?;
    let (bob, _b) = client(&s, "bob").await?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("resume.bin");
    let size = 32 * MIB;
    let hash = random_file(&path, size, "resume")?;

    let h = ann.upload("general", &path)?;
    sending_past(&h, 4 * MIB as u64).await;
    ann.force_disconnect();
    let up = bounded("resumed upload", h.wait()).await?;
    assert_eq!(up.file.hash, hash);
    assert!(up.resumed_from > 0, "resumed from the held offset");
    let last = up.file.size - up.resumed_from;
    assert!(last < up.file.size, "the resumed stream sends less than the whole file");
    // What went before the cut is lost at most a flow-control window or two:
    // no restart from scratch, no pile of refused streams.
    assert!(up.sent < up.file.size + 8 * MIB as u64, "sent {} in all", up.sent);
    eprintln!(
        "upload: size={} resumed_from={} sent_after_resume={last} sent_total={}",
        up.file.size, up.resumed_from, up.sent
    );
    // The client may learn of the stored file (its message in the room)
    // a moment before the server's log line is written.
    within("upload stored in the server log", async {
        while !s.log_text().contains("upload stored") {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;

    let out = tempfile::tempdir()?;
    let d = bob.download(up.file.id, out.path())?;
    let mut rx = d.progress();
    let r = rx.wait_for(|p| p.is_finished() || p.done >= 4 * MIB as u64);
    bounded("download under way", r).await?;
    bob.force_disconnect();
    let got = bounded("resumed download", d.wait()).await?;
    assert_eq!(hash_of(&got.path)?, hash);
    assert_eq!(got.received, up.file.size, "nothing received twice");
    eprintln!("download: size={} received={}", up.file.size, got.received);

    // The head the server recorded for the resumed upload (its first MiB
    // hashed from the partial file at the resume) matches the content: a
    // copy begun hash-later is asked for its hash and moves no bytes.
    let copy = dir.path().join("copy.bin");
    std::fs::copy(&path, &copy)?;
    let again = bounded("upload of a copy", bob.upload("general", &copy)?.wait()).await?;
    assert!(again.deduplicated, "the copy was matched by size and head");
    assert_eq!(again.sent, 0, "no file bytes moved");
    Ok(())
}

#[tokio::test]
async fn a_download_resumes_from_a_left_partial_file_and_restarts_from_a_wrong_one()
-> anyhow::Result<()> {
    let s = server(&[], &["ann", "bob"]).await?;
    let (ann, _a) = client(&s, "ann").await?;
    let (bob, _b) = client(&s, "bob").await?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("notes.bin");
    let size = 3 * MIB + 17;
    let hash = random_file(&path, size, "left partial")?;
    let up = bounded("upload", ann.upload("general", &path)?.wait()).await?;
    let content = std::fs::read(&path)?;
    let size = size as u64;

    // An earlier run left the file's first MiB (and stale bytes beyond it
    // would be cut off): only the rest comes over the network.
    let out = tempfile::tempdir()?;
    let part = out.path().join(".notes.bin.qchat-part");
    std::fs::write(&part, &content[..MIB])?;
    let got = bounded("resumed download", bob.download(up.file.id, out.path())?.wait()).await?;
    assert_eq!(hash_of(&got.path)?, hash);
    assert_eq!(got.received, size - MIB as u64, "the held MiB was not fetched again");
    assert!(!part.exists(), "the partial file became the download");

    // A leftover that is not this file's prefix fails the hash once, then
    // the download starts over from nothing.
    let out = tempfile::tempdir()?;
    let part = out.path().join(".notes.bin.qchat-part");
    std::fs::write(&part, vec![0u8; MIB])?;
    let got = bounded("restarted download", bob.download(up.file.id, out.path())?.wait()).await?;
    assert_eq!(hash_of(&got.path)?, hash);
    assert_eq!(got.received, (size - MIB as u64) + size, "the rest, then the whole file");
    Ok(())
}

#[tokio::test]
async fn content_the_tenant_holds_is_not_sent_again() -> anyhow::Result<()> {
    let s = server(&[], &["ann", "bob"]).await?;
    let (ann, _a) = client(&s, "ann").await?;
    let (bob, _b) = client(&s, "bob").await?;
    let dir = tempfile::tempdir()?;
    let first = dir.path().join("report.pdf");
    let hash = random_file(&first, 3 * MIB, "dedupe")?;
    let copy = dir.path().join("copy of report.pdf");
    std::fs::copy(&first, &copy)?;

    let a = bounded("first upload", ann.upload("general", &first)?.wait()).await?;
    assert_eq!(a.sent, 3 * MIB as u64);
    let b = bounded("second upload", bob.upload("general", &copy)?.wait()).await?;
    assert!(b.deduplicated);
    assert_eq!(b.sent, 0, "no file bytes moved");
    assert_eq!(b.file.hash, hash);
    assert_eq!(b.file.name, "copy of report.pdf");
    assert!(b.seq > a.seq, "a new file message was recorded");
    let stored: Vec<_> =
        walk(&s.data_dir().join("files")).into_iter().filter(|p| p.ends_with(&hash)).collect();
    assert_eq!(stored.len(), 1, "stored once");
    Ok(())
}

/// Three offers of the same content under three names (issue 16 §1.1):
/// each has an id of its own and downloads under the name it was offered
/// by — through the library, the `qchat download` CLI and the raw protocol
/// (reply and stream header) — while the bytes are stored once. An offer in
/// a room the caller is not in is refused although the same content is
/// offered in the caller's room.
#[tokio::test]
async fn each_offer_downloads_under_its_own_name() -> anyhow::Result<()> {
    let s = server(&[], &["ann", "bob"]).await?;
    s.room("acme", "board").await?;
    let (ann, _a) = client(&s, "ann").await?;
    let (bob, _b) = client(&s, "bob").await?;
    let dir = tempfile::tempdir()?;
    let hash = random_file(&dir.path().join("report-v1.pdf"), 100_000, "offers")?;
    for name in ["copy.pdf", "final.pdf"] {
        std::fs::copy(dir.path().join("report-v1.pdf"), dir.path().join(name))?;
    }
    let mut offers = Vec::new();
    for (who, name) in [(&ann, "report-v1.pdf"), (&bob, "copy.pdf"), (&ann, "final.pdf")] {
        let up = bounded("upload", who.upload("general", &dir.path().join(name))?.wait()).await?;
        assert_eq!((up.file.name.as_str(), up.file.hash.as_str()), (name, hash.as_str()));
        offers.push(up.file);
    }
    let ids: std::collections::HashSet<u64> = offers.iter().map(|f| f.id).collect();
    assert_eq!(ids.len(), 3, "one id per offer: {offers:?}");
    let stored: Vec<_> =
        walk(&s.data_dir().join("files")).into_iter().filter(|p| p.ends_with(&hash)).collect();
    assert_eq!(stored.len(), 1, "the content is stored once");

    // The library: oldest first (the oldest used to come down under the
    // newest offer's name).
    let out = tempfile::tempdir()?;
    for f in &offers {
        let got = bounded("download", bob.download(f.id, out.path())?.wait()).await?;
        assert_eq!(got.path, out.path().join(&f.name));
        assert_eq!(&got.file, f);
    }
    // The CLI.
    let cli_out = tempfile::tempdir()?;
    let run = tokio::process::Command::new(qchat_tests::bin_path("qchat"))
        .args(["--server", &s.addr.to_string(), "--tenant", "acme", "--user", "bob"])
        .args(["--fingerprint", &s.fingerprint, "download", &offers[0].id.to_string(), "--out"])
        .arg(cli_out.path())
        .env("QCHAT_PASSWORD", PW)
        .env("HOME", cli_out.path())
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let run = within("qchat download", run).await?;
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let printed = String::from_utf8_lossy(&run.stdout).trim().to_owned();
    assert_eq!(Path::new(&printed), cli_out.path().join("report-v1.pdf"));
    // The raw protocol: the reply and the stream header name the offer.
    let mut raw = RawConn::connect(s.addr, &s.data_dir()).await?;
    raw.login("acme", "bob", PW).await?;
    let got = raw.ok("file.get", json!({"file_id": offers[1].id})).await?;
    assert_eq!(got["file"]["name"], "copy.pdf", "{got}");
    let mut stream = within("download stream", raw.conn.accept_uni()).await?;
    let mut prefix = [0u8; 4];
    within("header", stream.read_exact(&mut prefix)).await?;
    let mut header = vec![0u8; u32::from_be_bytes(prefix) as usize];
    within("header", stream.read_exact(&mut header)).await?;
    let header: serde_json::Value = serde_json::from_slice(&header)?;
    assert_eq!(header["file_id"], offers[1].id);
    assert_eq!(header["name"], "copy.pdf", "{header}");

    // The same content offered in a room bob is not in: that offer is not
    // his to fetch, whatever else offers the bytes.
    within("join", ann.join_room("board")).await?;
    let elsewhere = dir.path().join("board.pdf");
    std::fs::copy(dir.path().join("report-v1.pdf"), &elsewhere)?;
    let up = bounded("upload", ann.upload("board", &elsewhere)?.wait()).await?;
    assert!(up.deduplicated);
    let r = raw.call("file.get", json!({"file_id": up.file.id})).await?;
    assert_eq!(r["err"]["code"], "forbidden", "{r}");
    Ok(())
}

/// Empty files (issue 16 §1.14, PROTOCOL.md §9.2): hash later, the stream
/// is the header, the 32-byte trailer and FIN; hash first, the header and
/// FIN. Both are stored and offered, deduplicated afterwards, and come down
/// as a header and FIN.
#[tokio::test]
async fn empty_files_go_up_and_down() -> anyhow::Result<()> {
    let s = server(&[], &["ann"]).await?;
    s.tenant("other", false).await?;
    s.user("other", "cat", PW).await?;
    s.room("other", "general").await?;
    let empty = blake3::hash(b"");
    let hex = empty.to_hex().to_string();
    let mut ann = RawConn::connect(s.addr, &s.data_dir()).await?;
    ann.login("acme", "ann", PW).await?;
    ann.ok("room.join", json!({"room": "general"})).await?;
    let mut cat = RawConn::connect(s.addr, &s.data_dir()).await?;
    cat.login("other", "cat", PW).await?;
    cat.ok("room.join", json!({"room": "general"})).await?;

    // Hash later: head = hash = BLAKE3 of nothing; header, trailer, FIN.
    let later = json!({"room": "general", "name": "empty.txt", "size": 0, "head": hex});
    let r = ann.ok("upload.begin", later.clone()).await?;
    assert_eq!((r["offset"].as_u64(), r["complete"].as_bool()), (Some(0), Some(false)), "{r}");
    let header = json!({"upload_id": r["upload_id"], "offset": 0, "trailer": true});
    let stream = send_stream(ann.conn.clone(), header, empty.as_bytes().to_vec(), true);
    assert_eq!(within("stream", stream).await?, None);
    let done = within("upload.done", upload_event(&mut ann)).await?;
    assert_eq!(done["ev"], "upload.done", "{done}");
    assert_eq!(done["file"]["size"], 0);
    assert_eq!(done["file"]["hash"], hex.as_str());
    // Stored now: a hash-first begin is complete at once, a hash-later one
    // must give the hash first.
    let first = json!({"room": "general", "name": "again.txt", "size": 0, "hash": hex});
    let r = ann.ok("upload.begin", first.clone()).await?;
    assert_eq!(r["complete"], true, "{r}");
    let r = ann.ok("upload.begin", later).await?;
    assert_eq!(r["hash_required"], true, "{r}");

    // Hash first in a tenant without it: header and FIN, no bytes.
    let r = cat.ok("upload.begin", first).await?;
    assert_eq!(r["complete"], false, "{r}");
    let header = json!({"upload_id": r["upload_id"], "offset": 0});
    assert_eq!(within("stream", send_stream(cat.conn.clone(), header, vec![], true)).await?, None);
    let done = within("upload.done", upload_event(&mut cat)).await?;
    assert_eq!(done["ev"], "upload.done", "{done}");

    // Down: the header, then FIN at once.
    let got = cat.ok("file.get", json!({"file_id": done["file"]["id"]})).await?;
    assert_eq!(got["file"]["size"], 0, "{got}");
    let mut stream = within("download stream", cat.conn.accept_uni()).await?;
    let rest = within("download", stream.read_to_end(4 + 4096)).await?;
    let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
    assert_eq!(rest.len(), 4 + len, "nothing after the header");
    let header: serde_json::Value = serde_json::from_slice(&rest[4..])?;
    assert_eq!((header["size"].as_u64(), header["offset"].as_u64()), (Some(0), Some(0)));
    Ok(())
}

/// Issue 16 §1.17: a stream taken over by its owner's `upload.status`,
/// `upload.begin` or newer stream is stopped with code 3, and its
/// `upload.failed` says which of the three took it.
#[tokio::test]
async fn a_taken_over_stream_is_told_what_took_it() -> anyhow::Result<()> {
    let s = server(&[], &["ann"]).await?;
    let mut old = RawConn::connect(s.addr, &s.data_dir()).await?;
    old.login("acme", "ann", PW).await?;
    old.ok("room.join", json!({"room": "general"})).await?;
    let mut new = RawConn::connect(s.addr, &s.data_dir()).await?;
    new.login("acme", "ann", PW).await?;
    let mut bytes = vec![0u8; 12 * MIB];
    blake3::Hasher::new().update(b"take over").finalize_xof().fill(&mut bytes);
    let hash = blake3::hash(&bytes).to_hex().to_string();
    let begin = json!({"room": "general", "name": "t.bin", "size": bytes.len(), "hash": hash,
        "client_key": "take-over"});
    let r = old.ok("upload.begin", begin.clone()).await?;
    let id = r["upload_id"].as_str().unwrap_or_default().to_owned();
    let mut held = 0usize;
    for taker in ["upload.status", "upload.begin", "stream"] {
        // The old connection holds the upload: 3 MiB written is more than
        // the stream's 2 MiB window, so the server has claimed it and is
        // reading when the write returns. The stream stays open.
        let mut st = old.conn.open_uni().await?;
        let header = json!({"upload_id": id, "offset": held});
        st.write_all(&RawConn::frame(&serde_json::to_vec(&header)?)).await?;
        within("old stream", st.write_all(&bytes[held..held + 3 * MIB])).await?;
        let says = match taker {
            "upload.status" => {
                new.ok(taker, json!({"upload_id": id})).await?;
                "upload.status"
            }
            "upload.begin" => {
                new.ok(taker, begin.clone()).await?;
                "upload.begin"
            }
            _ => {
                // A newer stream takes it over (and, with a stale offset,
                // is then refused itself).
                let header = json!({"upload_id": id, "offset": 0});
                let stale = send_stream(new.conn.clone(), header, Vec::new(), false);
                assert_eq!(within("newer stream", stale).await?, Some(3));
                let ev = within("upload.failed", upload_event(&mut new)).await?;
                assert_eq!(ev["code"], "conflict", "{ev}");
                "newer stream"
            }
        };
        let code = within("old stream stopped", st.stopped()).await?;
        assert_eq!(code.map(quinn::VarInt::into_inner), Some(3), "{taker}");
        let ev = within("upload.failed", upload_event(&mut old)).await?;
        assert_eq!(ev["code"], "conflict", "{ev}");
        let message = ev["message"].as_str().unwrap_or_default();
        assert!(message.starts_with("taken over by") && message.contains(says), "{taker}: {ev}");
        let r = new.ok("upload.status", json!({"upload_id": id})).await?;
        held = usize::try_from(r["offset"].as_u64().unwrap_or(0))?;
    }
    assert!(held > 0, "bytes kept for the resume");
    let rest = send_upload(new.conn.clone(), id.clone(), held as u64, bytes[held..].to_vec(), true);
    assert_eq!(bounded("rest", rest).await?, None);
    let done = within("upload.done", upload_event(&mut new)).await?;
    assert_eq!(done["ev"], "upload.done", "{done}");
    Ok(())
}

#[tokio::test]
async fn hostile_names_never_escape_the_store() -> anyhow::Result<()> {
    let s = server(&[], &["ann"]).await?;
    let (ann, _a) = client(&s, "ann").await?;
    let dir = tempfile::tempdir()?;
    let long = "y".repeat(4000);
    let names = ["../../etc/passwd", "/etc/qchat-test-x", "a\0b.txt", long.as_str(), "CON"];
    let mut handles = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let path = dir.path().join(format!("f{i}"));
        random_file(&path, 1000 + i, &format!("hostile{i}"))?;
        handles.push(ann.upload_named("general", &path, name)?);
    }
    let mut shown = Vec::new();
    for h in &handles {
        shown.push(within("upload", h.wait()).await?.file.name);
    }
    assert_eq!(shown[0], "passwd");
    assert_eq!(shown[1], "qchat-test-x");
    assert_eq!(shown[2], "a_b.txt");
    assert!(shown[3].len() <= 255 && shown[3].chars().all(|c| c == 'y'), "{}", shown[3].len());
    assert_eq!(shown[4], "_CON");
    assert!(!Path::new("/etc/qchat-test-x").exists());

    // History shows the same sanitized names.
    let page = within("history", ann.history("general", None, None)).await?;
    let in_history: Vec<_> = page
        .messages
        .iter()
        .filter(|m| m.kind == MessageKind::File)
        .filter_map(|m| m.file.as_ref().map(|f| f.name.clone()))
        .collect();
    let (mut in_history, mut expected) = (in_history, shown.clone());
    in_history.sort();
    expected.sort();
    assert_eq!(in_history, expected);

    // On disk: only content-addressed files under data/files/<tenant>/<xx>/<hash>.
    let root: Vec<_> = std::fs::read_dir(s.dir.path())?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let mut root_sorted = root.clone();
    root_sorted.sort();
    assert_eq!(root_sorted, ["data", "qchatd.log"], "nothing beside the data dir");
    let stored = walk(&s.data_dir().join("files"));
    assert_eq!(stored.len(), names.len());
    for p in &stored {
        let parts: Vec<_> = p.iter().map(|c| c.to_string_lossy().into_owned()).collect();
        assert_eq!(parts.len(), 3, "{p:?}");
        assert!(parts[0].chars().all(|c| c.is_ascii_digit()), "{p:?}");
        assert!(qchat_protocol::valid_hash(&parts[2]), "{p:?}");
        assert!(parts[2].starts_with(&parts[1]), "{p:?}");
    }
    assert!(walk(&s.data_dir().join("uploads")).is_empty(), "no partial uploads left");
    for p in walk(&s.data_dir()) {
        let s = p.to_string_lossy();
        assert!(!s.contains("passwd") && !s.contains("yyyy") && !s.contains("qchat-test-x"), "{s}");
    }
    Ok(())
}

#[tokio::test]
async fn quota_exceeded_mid_stream_leaves_no_partial_file() -> anyhow::Result<()> {
    let cfg_dir = tempfile::tempdir()?;
    let cfg = cfg_dir.path().join("qchatd.toml");
    std::fs::write(&cfg, format!("[files]\ntenant_quota = {}\n", 3 * MIB))?;
    let cfg = cfg.to_string_lossy().into_owned();
    let s = server(&["--config", &cfg, "--idle-timeout-secs", "4"], &["ann"]).await?;

    // Raw protocol, step by step, so the failure is surely mid-stream: both
    // uploads are announced (each fits), the first is stored, the second
    // runs over the quota while its bytes arrive.
    let mut raw = RawConn::connect(s.addr, &s.data_dir()).await?;
    raw.login("acme", "ann", PW).await?;
    raw.ok("room.join", json!({"room": "general"})).await?;
    let r = raw
        .call(
            "upload.begin",
            json!({"room": "general", "name": "huge", "size": 1u64 << 40, "hash": "0".repeat(64)}),
        )
        .await?;
    assert_eq!(r["err"]["code"], "too_large", "1 TiB declared: {r}");

    let mut data = Vec::new();
    let mut ids = Vec::new();
    for i in 0..2 {
        let mut bytes = vec![0u8; 2 * MIB];
        blake3::Hasher::new().update(&[i]).finalize_xof().fill(&mut bytes);
        let hash = blake3::hash(&bytes).to_hex().to_string();
        let ok = raw
            .ok(
                "upload.begin",
                json!({"room": "general", "name": format!("q{i}"), "size": bytes.len(), "hash": hash}),
            )
            .await?;
        assert_eq!(ok["complete"], false);
        ids.push(ok["upload_id"].as_str().unwrap_or_default().to_owned());
        data.push(bytes);
    }
    let send = |conn, id, bytes, finish| send_upload(conn, id, 0, bytes, finish);
    let first =
        within("first upload", send(raw.conn.clone(), ids[0].clone(), data[0].clone(), true));
    assert_eq!(first.await?, None);
    let ev = within("upload.done", upload_event(&mut raw)).await?;
    assert_eq!(ev["ev"], "upload.done", "{ev}");
    let second =
        within("second upload", send(raw.conn.clone(), ids[1].clone(), data[1].clone(), false));
    assert_eq!(second.await?, Some(6), "stopped with stream code 6 quota_exceeded");
    let ev = within("upload.failed", upload_event(&mut raw)).await?;
    assert_eq!(ev["ev"], "upload.failed", "{ev}");
    assert_eq!(ev["code"], "quota_exceeded");
    assert_eq!(ev["upload_id"], ids[1].as_str());
    assert!(!s.data_dir().join("uploads").join(format!("{}.part", ids[1])).exists());
    let r = raw.call("upload.status", json!({"upload_id": ids[1]})).await?;
    assert_eq!(r["err"]["code"], "not_found", "the failed upload is gone");
    raw.ok("ping", json!({})).await?;

    // Through the library: two parallel uploads of 2 MiB where 1 MiB is
    // left of the quota — neither fits, both are refused with the code.
    let (ann, _a) = client(&s, "ann").await?;
    let dir = tempfile::tempdir()?;
    let mut handles = Vec::new();
    for i in 0..2 {
        let path = dir.path().join(format!("lib{i}"));
        random_file(&path, 2 * MIB, &format!("lib{i}"))?;
        handles.push(ann.upload("general", &path)?);
    }
    for h in &handles {
        let err = within("refused upload", h.wait()).await.expect_err("over quota");
        assert_eq!(err.code(), Some(ErrorCode::QuotaExceeded), "{err}");
    }
    let parts = walk(&s.data_dir().join("uploads"));
    assert!(parts.is_empty(), "no partial upload left: {parts:?}");
    Ok(())
}

#[tokio::test]
async fn two_parallel_uploads_over_the_quota_one_fails() -> anyhow::Result<()> {
    let cfg_dir = tempfile::tempdir()?;
    let cfg = cfg_dir.path().join("qchatd.toml");
    std::fs::write(&cfg, format!("[files]\ntenant_quota = {}\n", 3 * MIB))?;
    let cfg = cfg.to_string_lossy().into_owned();
    let s = server(&["--config", &cfg, "--idle-timeout-secs", "4"], &["ann"]).await?;
    let (ann, _a) = client(&s, "ann").await?;
    let dir = tempfile::tempdir()?;
    let mut handles = Vec::new();
    for i in 0..2 {
        let path = dir.path().join(format!("p{i}"));
        random_file(&path, 2 * MIB, &format!("p{i}"))?;
        handles.push(ann.upload("general", &path)?);
    }
    let mut ok = 0;
    let mut quota = 0;
    for h in &handles {
        match within("upload", h.wait()).await {
            Ok(_) => ok += 1,
            Err(e) if e.code() == Some(ErrorCode::QuotaExceeded) => quota += 1,
            Err(e) => panic!("unexpected failure: {e}"),
        }
    }
    assert_eq!((ok, quota), (1, 1), "exactly one fits");
    let parts = walk(&s.data_dir().join("uploads"));
    assert!(parts.is_empty(), "no partial upload left: {parts:?}");
    Ok(())
}

#[tokio::test]
async fn resume_takes_over_from_a_dead_connection_at_once() -> anyhow::Result<()> {
    // A long idle timeout: without the take-over the resume would be refused
    // with `conflict` until the server gave the dead connection up.
    let idle = Duration::from_secs(60);
    let idle_secs = idle.as_secs().to_string();
    let s = server(&["--idle-timeout-secs", &idle_secs], &["ann", "bob"]).await?;
    let relay = Relay::start(s.addr).await?;
    let (ann, _a) = client_via(&s, relay.addr, "ann").await?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("takeover.bin");
    let hash = random_file(&path, 24 * MIB, "takeover")?;

    let h = ann.upload("general", &path)?;
    sending_past(&h, 4 * MIB as u64).await;
    // The path dies: from now on nothing reaches the server, not even a close.
    relay.cut();
    let cut_at = Instant::now();
    let uploads = s.data_dir().join("uploads");
    let id = within("partial upload on disk", async {
        loop {
            let parts = walk(&uploads);
            if let [part] = parts.as_slice()
                && let Some(id) = part.to_str().and_then(|p| p.strip_suffix(".part"))
            {
                break id.to_owned();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;

    // Another user can neither see the upload nor take it over.
    let mut bob = RawConn::connect(s.addr, &s.data_dir()).await?;
    bob.login("acme", "bob", PW).await?;
    let r = bob.call("upload.status", json!({"upload_id": id})).await?;
    assert_eq!(r["err"]["code"], "not_found", "{r}");
    let stopped =
        within("bob's stream", send_upload(bob.conn.clone(), id.clone(), 0, vec![7; 1000], false));
    assert_eq!(stopped.await?, Some(2), "stopped with stream code 2 not_found");
    assert!(!s.log_text().contains("taking an upload over"), "bob took nothing over");

    // The owner's client learns of the loss and reconnects on a new path at
    // once; its resume takes the upload over from the dead connection.
    ann.force_disconnect();
    let up = bounded("resumed upload", h.wait()).await?;
    let took = cut_at.elapsed();
    assert_eq!(up.file.hash, hash);
    assert!(up.resumed_from > 0, "resumed from the held offset");
    assert!(up.sent < up.file.size + 8 * MIB as u64, "sent {} in all", up.sent);
    assert!(took < idle / 2, "resumed after {took:?}, well before the {idle:?} idle timeout");
    assert!(s.log_text().contains("taking an upload over"), "the stale stream was stopped");
    assert!(walk(&uploads).is_empty(), "no partial upload left");
    eprintln!(
        "take-over: resumed_from={} sent={} done {took:?} after the cut",
        up.resumed_from, up.sent
    );
    Ok(())
}

#[tokio::test]
async fn a_repeated_begin_posts_one_message_a_new_share_another() -> anyhow::Result<()> {
    let s = server(&[], &["ann", "bob"]).await?;
    let mut ann = RawConn::connect(s.addr, &s.data_dir()).await?;
    ann.login("acme", "ann", PW).await?;
    ann.ok("room.join", json!({"room": "general"})).await?;
    let mut bytes = vec![0u8; MIB];
    blake3::Hasher::new().update(b"keyed").finalize_xof().fill(&mut bytes);
    let hash = blake3::hash(&bytes).to_hex().to_string();
    let begin = |key: &str| json!({"room": "general", "name": "k.bin", "size": bytes.len(), "hash": hash, "client_key": key});

    // A begin repeated before any byte moved: the same upload.
    let first = ann.ok("upload.begin", begin("share-1")).await?;
    assert_eq!(first["complete"], false, "{first}");
    let id = first["upload_id"].as_str().unwrap_or_default().to_owned();
    let again = ann.ok("upload.begin", begin("share-1")).await?;
    assert_eq!(again["upload_id"], id.as_str());
    assert_eq!(again["offset"], 0);
    let sent = within("upload", send_upload(ann.conn.clone(), id.clone(), 0, bytes.clone(), true));
    assert_eq!(sent.await?, None);
    let done = within("upload.done", upload_event(&mut ann)).await?;
    assert_eq!(done["ev"], "upload.done", "{done}");
    let (seq, file_id) = (done["seq"].clone(), done["file"]["id"].clone());

    // Repeated after the upload was stored (its reply lost, say): the content
    // is held, and the reply is the original message, not a new one.
    for _ in 0..2 {
        let r = ann.ok("upload.begin", begin("share-1")).await?;
        assert_eq!(r["complete"], true, "{r}");
        assert_eq!(r["seq"], seq);
        assert_eq!(r["file"]["id"], file_id);
    }
    // A new share of the same content (another key) is a new message, once.
    let second = ann.ok("upload.begin", begin("share-2")).await?;
    assert_eq!(second["complete"], true);
    assert!(second["seq"].as_u64() > seq.as_u64(), "{second}");
    let repeat = ann.ok("upload.begin", begin("share-2")).await?;
    assert_eq!(repeat["seq"], second["seq"]);
    // Keys are the user's own: bob's "share-1" is bob's share.
    let mut bob = RawConn::connect(s.addr, &s.data_dir()).await?;
    bob.login("acme", "bob", PW).await?;
    bob.ok("room.join", json!({"room": "general"})).await?;
    let third = bob.ok("upload.begin", begin("share-1")).await?;
    assert_eq!(third["complete"], true);
    assert!(third["seq"].as_u64() > second["seq"].as_u64(), "{third}");
    let r = bob.call("upload.begin", begin(&"k".repeat(65))).await?;
    assert_eq!(r["err"]["code"], "bad_request", "over-long key: {r}");

    let page = ann.ok("history", json!({"room": "general"})).await?;
    let file_seqs: Vec<_> = page["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["kind"] == "file")
        .map(|m| m["seq"].clone())
        .collect();
    assert_eq!(file_seqs, [seq, second["seq"].clone(), third["seq"].clone()], "three shares");
    Ok(())
}

/// Hash-later uploads (PROTOCOL.md §9): begun by size and head, their stream
/// ends with the digest; a wrong, short or long trailer fails the upload and
/// leaves nothing; a begin that might duplicate stored content must give the
/// hash first; exactly one of hash and head.
#[tokio::test]
async fn hash_later_streams_end_with_the_digest_checked() -> anyhow::Result<()> {
    let s = server(&[], &["ann", "bob"]).await?;
    let mut ann = RawConn::connect(s.addr, &s.data_dir()).await?;
    ann.login("acme", "ann", PW).await?;
    ann.ok("room.join", json!({"room": "general"})).await?;
    let mut bytes = vec![0u8; MIB + MIB / 2];
    blake3::Hasher::new().update(b"later").finalize_xof().fill(&mut bytes);
    let hash = blake3::hash(&bytes);
    let head = blake3::hash(&bytes[..MIB]).to_hex().to_string();
    let begin = json!({"room": "general", "name": "later.bin", "size": bytes.len(), "head": head});
    let with_trailer = |trailer: &[u8]| [bytes.as_slice(), trailer].concat();
    let uploads = s.data_dir().join("uploads");
    let parts =
        || walk(&uploads).into_iter().filter(|p| p.extension().is_some_and(|e| e == "part"));

    // Wrong digest, a short trailer, a long one: each fails and leaves nothing.
    let wrong = [0u8; 32];
    for (trailer, says) in [
        (&wrong[..], "differs"),
        (&hash.as_bytes()[..31], "trailer"),
        (&[7u8; 33][..], "more than"),
    ] {
        let r = ann.ok("upload.begin", begin.clone()).await?;
        assert_eq!(r["complete"], false, "{r}");
        assert!(r.get("hash_required").is_none(), "{r}");
        let id = r["upload_id"].as_str().unwrap_or_default().to_owned();
        let header = json!({"upload_id": id, "offset": 0, "trailer": true});
        within("stream", send_stream(ann.conn.clone(), header, with_trailer(trailer), true))
            .await?;
        let ev = within("upload.failed", upload_event(&mut ann)).await?;
        assert_eq!(ev["ev"], "upload.failed", "{ev}");
        assert_eq!(ev["code"], "bad_request", "{ev}");
        assert!(ev["message"].as_str().is_some_and(|m| m.contains(says)), "{says}: {ev}");
        assert_eq!(parts().count(), 0, "no partial file after {ev}");
    }
    // A head upload's stream must announce the trailer: stopped, kept.
    let r = ann.ok("upload.begin", begin.clone()).await?;
    let id = r["upload_id"].as_str().unwrap_or_default().to_owned();
    let plain = json!({"upload_id": id, "offset": 0});
    let stopped = within("stream", send_stream(ann.conn.clone(), plain, bytes.clone(), false));
    assert_eq!(stopped.await?, Some(1), "bad_header");
    // The right digest stores the file under the hash it names.
    let header = json!({"upload_id": id, "offset": 0, "trailer": true});
    let ok = send_stream(ann.conn.clone(), header, with_trailer(hash.as_bytes()), true);
    within("stream", ok).await?;
    let done = loop {
        let ev = within("upload.done", upload_event(&mut ann)).await?;
        if ev["ev"] == "upload.done" {
            break ev;
        }
    };
    assert_eq!(done["file"]["hash"], hash.to_hex().as_str(), "{done}");
    assert_eq!(done["file"]["size"], bytes.len());
    assert_eq!(parts().count(), 0);

    // Bob's hash-later begin of the same content must give the hash first,
    // and then moves nothing.
    let mut bob = RawConn::connect(s.addr, &s.data_dir()).await?;
    bob.login("acme", "bob", PW).await?;
    bob.ok("room.join", json!({"room": "general"})).await?;
    let r = bob.ok("upload.begin", begin.clone()).await?;
    assert_eq!(r["hash_required"], true, "{r}");
    assert_eq!(r["upload_id"], "", "{r}");
    let by_hash = json!({"room": "general", "name": "later.bin", "size": bytes.len(), "hash": hash.to_hex().as_str()});
    let r = bob.ok("upload.begin", by_hash).await?;
    assert_eq!(r["complete"], true, "{r}");
    // Same size and head, another tail: also asked for the hash, and sent.
    let mut edited = bytes.clone();
    edited[MIB + 5] ^= 1;
    let r = bob.ok("upload.begin", begin.clone()).await?;
    assert_eq!(r["hash_required"], true, "{r}");
    let edited_hash = blake3::hash(&edited).to_hex().to_string();
    let r = bob.ok("upload.begin", json!({"room": "general", "name": "edited.bin", "size": edited.len(), "hash": edited_hash})).await?;
    assert_eq!(r["complete"], false, "{r}");
    let id = r["upload_id"].as_str().unwrap_or_default().to_owned();
    within("stream", send_upload(bob.conn.clone(), id, 0, edited, true)).await?;
    let done = within("upload.done", upload_event(&mut bob)).await?;
    assert_eq!(done["file"]["hash"], edited_hash.as_str(), "{done}");

    // A keyed hash-later begin repeated finds its upload, and once that is
    // stored, its message: not `hash_required`, not a second message.
    let mut keyed_bytes = vec![0u8; 3 * MIB / 2];
    blake3::Hasher::new().update(b"keyed later").finalize_xof().fill(&mut keyed_bytes);
    let keyed_head = blake3::hash(&keyed_bytes[..MIB]).to_hex().to_string();
    let keyed = json!({"room": "general", "name": "k.bin", "size": keyed_bytes.len(), "head": keyed_head, "client_key": "later-1"});
    let first = bob.ok("upload.begin", keyed.clone()).await?;
    let again = bob.ok("upload.begin", keyed.clone()).await?;
    assert_eq!(again["upload_id"], first["upload_id"], "{again}");
    let id = first["upload_id"].as_str().unwrap_or_default().to_owned();
    let digest = blake3::hash(&keyed_bytes);
    let header = json!({"upload_id": id, "offset": 0, "trailer": true});
    let stream = [keyed_bytes.as_slice(), digest.as_bytes()].concat();
    within("stream", send_stream(bob.conn.clone(), header, stream, true)).await?;
    let done = within("upload.done", upload_event(&mut bob)).await?;
    assert_eq!(done["ev"], "upload.done", "{done}");
    let repeat = bob.ok("upload.begin", keyed).await?;
    assert_eq!(repeat["complete"], true, "{repeat}");
    assert_eq!(repeat["seq"], done["seq"], "the original message: {repeat}");
    assert_eq!(repeat["file"]["hash"], digest.to_hex().as_str());

    // Exactly one of hash and head.
    let both =
        json!({"room": "general", "name": "x", "size": 1, "head": head, "hash": edited_hash});
    let neither = json!({"room": "general", "name": "x", "size": 1});
    let bad_head = json!({"room": "general", "name": "x", "size": 1, "head": "00"});
    for req in [both, neither, bad_head] {
        let r = bob.call("upload.begin", req.clone()).await?;
        assert_eq!(r["err"]["code"], "bad_request", "{req}: {r}");
    }
    Ok(())
}

/// The client begins hash-later; a file that only looks like a stored one
/// (same size and first MiB) is hashed whole first and then sent in full.
#[tokio::test]
async fn a_file_like_a_stored_one_is_hashed_then_sent() -> anyhow::Result<()> {
    let s = server(&[], &["ann", "bob"]).await?;
    let (ann, _a) = client(&s, "ann").await?;
    let (bob, _b) = client(&s, "bob").await?;
    let dir = tempfile::tempdir()?;
    let first = dir.path().join("disk.img");
    random_file(&first, 2 * MIB, "image")?;
    let mut edited = std::fs::read(&first)?;
    edited[2 * MIB - 1] ^= 0xff;
    let second = dir.path().join("disk-edited.img");
    std::fs::write(&second, &edited)?;
    let second_hash = hash_of(&second)?;

    let a = bounded("first upload", ann.upload("general", &first)?.wait()).await?;
    assert_eq!(a.sent, 2 * MIB as u64);
    let b = bounded("look-alike upload", bob.upload("general", &second)?.wait()).await?;
    assert!(!b.deduplicated);
    assert_eq!(b.sent, 2 * MIB as u64, "every byte sent");
    assert_eq!(b.file.hash, second_hash);
    assert_ne!(b.file.id, a.file.id);
    Ok(())
}

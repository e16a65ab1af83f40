//! The writer's `max_commit_batch` knob against a real qchatd: with 1, every
//! message is its own transaction (counted on `/metrics`) and is still
//! acknowledged exactly once, gap-free, with retries recognised; the default
//! groups and gives the same guarantees; out-of-range values stop the server
//! at start naming the key.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use qchat_tests::{RawConn, TestServer, bin_path, within};
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const PW: &str = "correct horse";
const CONNS: usize = 8;
const SENDS: usize = 25;

async fn metrics_addr(s: &TestServer) -> anyhow::Result<SocketAddr> {
    within("metrics address logged", async {
        loop {
            let log = s.log_text();
            if let Some(a) = log.split("\"metrics\":\"").nth(1).and_then(|r| r.split('"').next()) {
                return Ok(a.parse::<SocketAddr>()?);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
}

/// `qchat_commit_seconds_count`: transactions the writer committed.
async fn commits(metrics: SocketAddr) -> anyhow::Result<u64> {
    let text = within("GET /metrics", async {
        let mut tcp = tokio::net::TcpStream::connect(metrics).await?;
        tcp.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await?;
        let mut body = String::new();
        tcp.read_to_string(&mut body).await?;
        Ok::<_, anyhow::Error>(body)
    })
    .await?;
    let count = text
        .lines()
        .find_map(|l| l.strip_prefix("qchat_commit_seconds_count "))
        .ok_or_else(|| anyhow::anyhow!("no commit count in {text}"))?;
    Ok(count.trim().parse()?)
}

/// Sends `CONNS * SENDS` messages from concurrent connections, then resends
/// the first message of every connection; checks every answer and returns
/// how many transactions the writer committed for them.
async fn sends_with(batch: &str) -> anyhow::Result<u64> {
    let s = TestServer::start_with(&[
        "--max-commit-batch",
        batch,
        "--metrics-listen",
        "127.0.0.1:0",
        "--log-format",
        "json",
    ])
    .await?;
    s.tenant("acme", false).await?;
    s.user("acme", "ann", PW).await?;
    s.room("acme", "general").await?;
    let metrics = metrics_addr(&s).await?;
    let mut conns = Vec::new();
    for _ in 0..CONNS {
        let mut c = RawConn::connect(s.addr, &s.data_dir()).await?;
        c.login("acme", "ann", PW).await?;
        c.ok("room.join", json!({"room": "general"})).await?;
        conns.push(c);
    }
    let before = commits(metrics).await?;
    let mut tasks = tokio::task::JoinSet::new();
    for (w, mut c) in conns.into_iter().enumerate() {
        tasks.spawn(async move {
            let mut acks = Vec::new();
            for i in 0..SENDS {
                let ok = c
                    .ok(
                        "send",
                        json!({"room": "general", "client_msg_id": format!("{w}-{i}"), "body": format!("m {w} {i}")}),
                    )
                    .await?;
                anyhow::ensure!(ok["duplicate"] == false, "fresh send marked duplicate: {ok}");
                acks.push(ok);
            }
            // A retry (same key) is answered with the original, not stored.
            let again = c
                .ok("send", json!({"room": "general", "client_msg_id": format!("{w}-0"), "body": format!("m {w} 0")}))
                .await?;
            anyhow::ensure!(again["duplicate"] == true, "retry not recognised: {again}");
            anyhow::ensure!(again["seq"] == acks[0]["seq"] && again["ts"] == acks[0]["ts"]);
            Ok::<_, anyhow::Error>(acks)
        });
    }
    let mut seqs = BTreeSet::new();
    while let Some(r) = within("sends", tasks.join_next()).await {
        for ack in r?? {
            let seq = ack["seq"].as_u64().ok_or_else(|| anyhow::anyhow!("no seq in {ack}"))?;
            assert!(seqs.insert(seq), "seq {seq} acknowledged twice");
        }
    }
    // Seq 1 is the system message of ann's (first) join.
    let total = (CONNS * SENDS) as u64;
    assert_eq!(seqs, (2..=total + 1).collect(), "every message once, gap-free");
    let mut a = RawConn::connect(s.addr, &s.data_dir()).await?;
    a.login("acme", "ann", PW).await?;
    let page = a.ok("history", json!({"room": "general", "limit": 1})).await?;
    assert_eq!(page["messages"][0]["seq"], total + 1, "nothing stored beyond the acknowledged");
    Ok(commits(metrics).await? - before)
}

#[tokio::test]
async fn batch_of_one_is_a_transaction_per_message_with_the_same_guarantees() -> anyhow::Result<()>
{
    let commits = sends_with("1").await?;
    assert_eq!(commits, (CONNS * (SENDS + 1)) as u64, "one transaction per send, retries included");
    Ok(())
}

#[tokio::test]
async fn the_default_batch_gives_the_same_guarantees() -> anyhow::Result<()> {
    let commits = sends_with("256").await?;
    assert!(commits <= (CONNS * (SENDS + 1)) as u64);
    Ok(())
}

#[tokio::test]
async fn out_of_range_batches_stop_the_server_naming_the_key() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    for (how, value) in [("flag", "0"), ("env", "4097")] {
        let mut cmd = tokio::process::Command::new(bin_path("qchatd"));
        cmd.arg("serve").arg("--data-dir").arg(dir.path()).arg("--listen").arg("127.0.0.1:0");
        if how == "flag" {
            cmd.arg("--max-commit-batch").arg(value);
        } else {
            cmd.env("QCHAT_MAX_COMMIT_BATCH", value);
        }
        let out = within(
            "qchatd refuses",
            cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).output(),
        )
        .await?;
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{how} {value} accepted");
        assert!(err.contains("max_commit_batch"), "{how} {value}: {err}");
    }
    Ok(())
}

//! Several server addresses (`--server a:4433,b:4433`, `QCHAT_SERVER` the
//! same): the client connects to the first that answers, moves to the next
//! when its node dies, and trusts each address by its own pin.
//!
//! The two servers here are independent single nodes (each on its own
//! SQLite file, each with its own self-signed certificate) that hold the same
//! account: what is checked is the client's side — the address list, the
//! order it is tried in, and trust on first use per address. Nodes that
//! share their data are `cluster.rs`'s.

use std::process::Stdio;
use std::time::Duration;

use qchat_client::{
    Auth, Client, ClientConfig, ClientError, ClientEvent, ConnState, Events, Trust,
};
use qchat_tests::{TestServer, bin_path, within};

const PW: &str = "correct horse";

async fn node() -> anyhow::Result<TestServer> {
    let s = TestServer::start().await?;
    s.tenant("acme", false).await?;
    s.user("acme", "ann", PW).await?;
    s.room("acme", "lobby").await?;
    Ok(s)
}

fn config(servers: &[&TestServer], trust: Trust) -> ClientConfig {
    let list: Vec<String> = servers.iter().map(|s| s.addr.to_string()).collect();
    ClientConfig::new(list.join(","), "acme", "ann", Auth::Password(PW.into()), trust)
}

/// The known-hosts file's pins as `(address, fingerprint)`, in file order.
fn pins(path: &std::path::Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(a, f)| (a.to_owned(), f.trim().to_owned()))
        .collect()
}

/// Waits (bounded) until the client is connected again after a loss, to
/// `want`.
async fn reconnected_to(client: &Client, events: &mut Events, want: &TestServer) {
    let mut lost = false;
    within("reconnect to the next address", async {
        loop {
            match events.recv().await {
                Some(ClientEvent::State(ConnState::Reconnecting { .. })) => lost = true,
                Some(ClientEvent::State(ConnState::Connected)) if lost => break,
                Some(ClientEvent::State(ConnState::Closed { reason })) => {
                    panic!("client closed instead of reconnecting: {reason}")
                }
                Some(_) => {}
                None => panic!("events ended"),
            }
        }
    })
    .await;
    assert_eq!(client.server_address(), want.addr.to_string());
    assert_eq!(client.server_fingerprint(), want.fingerprint);
}

#[tokio::test]
async fn a_dead_node_fails_over_to_the_next_address_pinned_on_its_own() -> anyhow::Result<()> {
    let (mut a, mut b) = (node().await?, node().await?);
    assert_ne!(a.fingerprint, b.fingerprint, "each node made its own certificate");
    let home = tempfile::tempdir()?;
    let kh = home.path().join("known_hosts");
    let trust = Trust::KnownHosts { path: kh.clone(), accept_new: true };
    let (client, mut events) = Client::connect(config(&[&a, &b], trust)).await?;
    assert_eq!(client.server_address(), a.addr.to_string(), "the first address first");
    client.join_room("lobby").await?;
    assert_eq!(pins(&kh), [(a.addr.to_string(), a.fingerprint.clone())]);

    // A crash: no close reaches the client, which notices at the idle
    // timeout (4 s on these servers) and tries the next address.
    a.kill().await?;
    reconnected_to(&client, &mut events, &b).await;
    // B's certificate pinned under B's address; A's pin untouched.
    assert_eq!(
        pins(&kh),
        [(a.addr.to_string(), a.fingerprint.clone()), (b.addr.to_string(), b.fingerprint.clone())]
    );
    // B is a server of its own here (cluster.rs has nodes that share rooms).
    within("join on b", client.join_room("lobby")).await?;
    let sent = within("send on b", client.send("lobby", "after the failover")).await?;
    let page = within("history on b", client.history("lobby", None, None)).await?;
    assert!(page.messages.iter().any(|m| m.seq == sent.seq));

    // Back to A (same certificate as before) when B dies in turn: the
    // reconnect to A is checked against A's pin, not B's.
    a.start_again().await?;
    b.kill().await?;
    reconnected_to(&client, &mut events, &a).await;
    within("a request on a", client.rooms()).await?;
    assert_eq!(pins(&kh).len(), 2, "nothing pinned twice");
    client.quit(None).await?;
    Ok(())
}

#[tokio::test]
async fn an_address_the_client_does_not_trust_is_skipped() -> anyhow::Result<()> {
    let (a, b) = (node().await?, node().await?);
    let home = tempfile::tempdir()?;
    let kh = home.path().join("known_hosts");
    // Only A is pinned, and unknown certificates are not accepted.
    std::fs::write(&kh, format!("{} {}\n", a.addr, a.fingerprint))?;
    let trust = Trust::KnownHosts { path: kh.clone(), accept_new: false };

    let (client, _events) = Client::connect(config(&[&b, &a], trust.clone())).await?;
    assert_eq!(client.server_address(), a.addr.to_string(), "b is skipped, a answers");
    client.quit(None).await?;

    // With b alone the refusal names b and its certificate.
    match Client::connect(config(&[&b], trust)).await {
        Err(ClientError::UnknownHost { server, fingerprint }) => {
            assert_eq!(server, b.addr.to_string());
            assert_eq!(fingerprint, b.fingerprint);
        }
        other => panic!("expected UnknownHost, got {:?}", other.map(|_| ())),
    }

    // The command line takes the list from QCHAT_SERVER the same way.
    let run = |servers: String| {
        let mut cmd = tokio::process::Command::new(bin_path("qchat"));
        cmd.args(["--tenant", "acme", "--user", "ann", "rooms"])
            .arg("--known-hosts")
            .arg(&kh)
            .env("QCHAT_SERVER", servers)
            .env("QCHAT_PASSWORD", PW)
            .env("HOME", home.path())
            .stdin(Stdio::null())
            .kill_on_drop(true);
        cmd
    };
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        run(format!("{},{}", b.addr, a.addr)).output(),
    )
    .await??;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("lobby"));
    let out =
        tokio::time::timeout(Duration::from_secs(30), run(b.addr.to_string()).output()).await??;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&b.fingerprint), "{err}");
    Ok(())
}

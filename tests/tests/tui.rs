//! End to end: the real `qchat` terminal UI, driven in tmux against a real
//! `qchatd`: log in, a message from a CLI client, resize, scroll back to the
//! first of 500 messages, two uploads at once, `/quit` with the terminal
//! restored and the log in the state directory. Skipped (with a note) when
//! tmux is not installed.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use qchat_client::{Auth, Client, ClientConfig, Trust};
use qchat_tests::{TestServer, bin_path};

/// Runs tmux with `args`, returning stdout.
fn tmux(args: &[&str]) -> String {
    let out = Command::new("tmux").args(args).output().expect("running tmux");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn pane(session: &str) -> String {
    tmux(&["capture-pane", "-p", "-t", session])
}

/// Polls the pane until `pred` holds (tmux has no notification to await).
fn wait_for(session: &str, what: &str, pred: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = pane(session);
        if pred(&text) {
            return text;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}; screen:\n{text}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn keys(session: &str, keys: &[&str]) {
    let mut args = vec!["send-keys", "-t", session];
    args.extend_from_slice(keys);
    tmux(&args);
}

/// Kills the tmux session even when the test fails.
struct Session(String);
impl Drop for Session {
    fn drop(&mut self) {
        tmux(&["kill-session", "-t", &self.0]);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tui_logs_in_scrolls_back_sends_files_and_quits() -> anyhow::Result<()> {
    if Command::new("tmux").arg("-V").output().is_err() {
        println!("skipped: tmux is not installed");
        return Ok(());
    }
    let server = TestServer::start().await?;
    server.tenant("acme", false).await?;
    server.user("acme", "ann", "ann-password").await?;
    server.user("acme", "bob", "bob-password").await?;
    server.room("acme", "general").await?;
    let addr = server.addr.to_string();

    // 500 messages of history from bob.
    let cfg = ClientConfig::new(
        &addr,
        "acme",
        "bob",
        Auth::Password("bob-password".into()),
        Trust::Fingerprint(server.fingerprint.clone()),
    );
    let (bob, _events) = Client::connect(cfg).await?;
    bob.join_room("general").await?;
    for i in 1..=500 {
        bob.send("general", &format!("msg {i}")).await?;
    }

    let dir = tempfile::tempdir()?;
    let state = dir.path().join("state");
    let qchat = bin_path("qchat");
    let session = Session(format!("qchat-e2e-{}", std::process::id()));
    let cmd = format!(
        "env QCHAT_STATE_DIR='{}' QCHAT_PASSWORD=ann-password '{}' --server {addr} --tenant acme --user ann --fingerprint {}; echo QCHAT-EXIT $?; sleep 600",
        state.display(),
        qchat.display(),
        server.fingerprint
    );
    tmux(&["new-session", "-d", "-s", &session.0, "-x", "100", "-y", "30", &cmd]);

    // Log in.
    wait_for(&session.0, "the log-in form", |s| s.contains("Password:"));
    keys(&session.0, &["Enter"]);
    wait_for(&session.0, "the main screen", |s| s.contains("connected"));
    keys(&session.0, &["/join general", "Enter"]);
    wait_for(&session.0, "the newest message", |s| s.contains("msg 500 "));

    // A message from a CLI client arrives.
    let out = Command::new(&qchat)
        .args([
            "send",
            "general",
            "hello ann from the cli",
            "--server",
            &addr,
            "--tenant",
            "acme",
            "--user",
            "bob",
            "--fingerprint",
            &server.fingerprint,
        ])
        .env("QCHAT_PASSWORD", "bob-password")
        .output()?;
    assert!(out.status.success(), "qchat send: {}", String::from_utf8_lossy(&out.stderr));
    wait_for(&session.0, "the CLI message", |s| s.contains("hello ann from the cli"));

    // Resize: the UI redraws at the new size, and back.
    for (w, h) in [(80, 24), (100, 30)] {
        tmux(&["resize-window", "-t", &session.0, "-x", &w.to_string(), "-y", &h.to_string()]);
        wait_for(&session.0, &format!("the redraw at {w}x{h}"), |s| {
            let top = s.lines().next().unwrap_or_default();
            top.chars().count() == w && top.ends_with('┐') && s.contains("hello ann from the cli")
        });
    }

    // Scroll back to the very first message (Home loads older pages).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        keys(&session.0, &["Home"]);
        std::thread::sleep(Duration::from_millis(300));
        let s = pane(&session.0);
        if s.contains("start of the room") && s.contains("msg 1 ") {
            break;
        }
        assert!(Instant::now() < deadline, "never reached the first message; screen:\n{s}");
    }
    keys(&session.0, &["End"]);

    // Two files at once, both to 100%.
    let a = dir.path().join("first file.bin");
    let b = dir.path().join("second.bin");
    std::fs::write(&a, vec![7u8; 1_500_000])?;
    std::fs::write(&b, vec![9u8; 700_000])?;
    let line = format!("/send \"{}\" {}", a.display(), b.display());
    keys(&session.0, &["-l", &line]);
    keys(&session.0, &["Enter"]);
    wait_for(&session.0, "both uploads done", |s| {
        s.matches("100%").count() >= 2 && s.contains("2 done")
    });

    // Quit, and the terminal is back to normal.
    keys(&session.0, &["/quit", "Enter"]);
    let s = wait_for(&session.0, "the exit", |s| s.contains("QCHAT-EXIT"));
    assert!(s.contains("QCHAT-EXIT 0"), "{s}");
    assert!(!s.contains("Rooms"), "the alternate screen was left:\n{s}");
    assert_eq!(tmux(&["display-message", "-p", "-t", &session.0, "#{alternate_on}"]).trim(), "0");
    assert!(Path::new(&state.join("sessions")).exists(), "the session token was saved");
    let log = std::fs::read_to_string(state.join("qchat.log"))?;
    assert!(log.contains("terminal UI closed"), "the log file in the state directory:\n{log}");
    bob.quit(None).await?;
    Ok(())
}

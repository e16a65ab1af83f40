//! End to end: the real `qchat` terminal UI, driven in tmux against a real
//! `qchatd` on 127.0.0.1: trust on first use with a fresh known-hosts file,
//! log in, a message from a CLI client (its time in the config file's
//! format), a `name:` mention and a direct message each ringing the bell
//! (BEL in the pane's raw output) with a desktop notification, Up
//! recalling the last line sent,
//! the server stopping (its reason shown) while a line typed meanwhile
//! shows as sending and then as delivered, a flag drawn as its letters in
//! tmux, the mouse wheel scrolling back and forth, resize, scroll back to the
//! first of 500 messages, two uploads at once, `/quit REASON` (the reason
//! reaching another user) with the terminal restored
//! (`stty -a` in the pane: `icanon` and `echo` back on) and the log in the
//! state directory; then a restart with no password and no identity options
//! that reaches the main screen on the saved session token (file mode 0600),
//! and a changed server certificate pinned with `/trust` and logged in on
//! without a restart.
//! The password never shows in the pane. Fails when tmux is missing unless
//! `QCHAT_SKIP_TMUX=1` says to skip.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// Ann's password: must never be shown.
const PASSWORD: &str = "ann-password";

use qchat_client::{Auth, Client, ClientConfig, ClientEvent, Trust};
use qchat_tests::{TestServer, bin_path};

/// Runs tmux with `args` on the server of `session` alone, returning
/// stdout. Each session gets its own tmux server (socket named after this
/// process and the session): on one shared server, a test killing the last
/// session made the server exit while another test's `new-session` was
/// connecting, and that test's pane came up empty.
fn tmux(session: &str, args: &[&str]) -> String {
    let socket = socket(session);
    let out =
        Command::new("tmux").arg("-S").arg(&socket).args(args).output().expect("running tmux");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The socket of `session`'s own tmux server, removed when the session is.
fn socket(session: &str) -> PathBuf {
    std::env::temp_dir().join(format!("qchat-tmux-{}-{session}", std::process::id()))
}

/// The pane's text (wrapped lines joined, some scroll-back); asserts the
/// password is nowhere on it.
fn pane(session: &str) -> String {
    let text = tmux(session, &["capture-pane", "-p", "-J", "-S", "-60", "-t", session]);
    assert!(!text.contains(PASSWORD), "the password is on the screen:\n{text}");
    text
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
    tmux(session, &args);
}

/// Kills the tmux session even when the test fails.
struct Session(String);
impl Drop for Session {
    fn drop(&mut self) {
        tmux(&self.0, &["kill-session", "-t", &self.0]);
        let _ = std::fs::remove_file(socket(&self.0));
    }
}

impl Session {
    /// Starts `cmd` in a new detached 100x30 session named `name`; after it
    /// exits the pane prints `QCHAT-EXIT <status>` and the terminal's
    /// settings (`stty -a`), then idles so they can be read.
    fn start(name: String, cmd: &str) -> Self {
        let cmd = format!("{cmd}; echo QCHAT-EXIT $?; stty -a; echo STTY-END; sleep 600");
        tmux(&name, &["new-session", "-d", "-s", &name, "-x", "100", "-y", "30", &cmd]);
        Self(name)
    }

    /// Sends `quit` (`/quit`, maybe with a reason), waits for the exit, and
    /// checks it was clean and the terminal was restored: the alternate
    /// screen left, mouse reporting off, and canonical mode and echo back on
    /// (raw mode turns both off).
    fn quit_and_check_restored(&self, quit: &str) {
        keys(&self.0, &["-l", quit]);
        keys(&self.0, &["Enter"]);
        let s = wait_for(&self.0, "the exit", |s| s.contains("STTY-END"));
        assert!(s.contains("QCHAT-EXIT 0"), "{s}");
        assert!(!s.contains("Rooms"), "the alternate screen was left:\n{s}");
        assert_eq!(
            tmux(&self.0, &["display-message", "-p", "-t", &self.0, "#{alternate_on}"]).trim(),
            "0"
        );
        let mouse = tmux(&self.0, &["display-message", "-p", "-t", &self.0, "#{mouse_any_flag}"]);
        assert_eq!(mouse.trim(), "0", "mouse reporting is off again");
        let stty = s.split("QCHAT-EXIT").last().unwrap_or_default();
        let flags: Vec<&str> = stty.split([' ', ';', '\n']).collect();
        for flag in ["icanon", "echo"] {
            assert!(flags.contains(&flag), "{flag} is not back on after the UI:\n{stty}");
            assert!(!flags.contains(&format!("-{flag}").as_str()), "{flag} still off:\n{stty}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tui_logs_in_scrolls_back_sends_files_and_quits() -> anyhow::Result<()> {
    if Command::new("tmux").arg("-V").output().is_err() {
        if std::env::var("QCHAT_SKIP_TMUX").as_deref() == Ok("1") {
            println!("skipped: tmux is not installed (QCHAT_SKIP_TMUX=1)");
            return Ok(());
        }
        panic!("tmux is not installed: install it, or set QCHAT_SKIP_TMUX=1 to skip this test");
    }
    let mut server = TestServer::start().await?;
    server.tenant("acme", false).await?;
    server.user("acme", "ann", PASSWORD).await?;
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
    let (bob, mut bob_events) = Client::connect(cfg).await?;
    bob.join_room("general").await?;
    for i in 1..=500 {
        bob.send("general", &format!("msg {i}")).await?;
    }

    let dir = tempfile::tempdir()?;
    let state = dir.path().join("state");
    let known_hosts = dir.path().join("known_hosts");
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "time_format = \"%H:%M:%S\"\n")?;
    let qchat = bin_path("qchat");
    let base = format!(
        "env -u QCHAT_PASSWORD -u QCHAT_SERVER -u QCHAT_TENANT -u QCHAT_USER QCHAT_STATE_DIR='{}' \
         QCHAT_TUI_CONFIG='{}'",
        state.display(),
        config.display()
    );
    let session = Session::start(
        format!("qchat-e2e-{}", std::process::id()),
        &format!(
            "{base} QCHAT_PASSWORD={PASSWORD} '{}' --server {addr} --tenant acme --user ann \
             --known-hosts '{}'",
            qchat.display(),
            known_hosts.display()
        ),
    );

    // Log in: the first contact asks to trust the certificate, showing it.
    wait_for(&session.0, "the log-in form", |s| s.contains("Password:"));
    keys(&session.0, &["Enter"]);
    let s = wait_for(&session.0, "the trust prompt", |s| s.contains("Trust it? (y/n)"));
    assert!(s.contains(&server.fingerprint[..32]), "the fingerprint is shown:\n{s}");
    assert!(!known_hosts.exists(), "nothing pinned before the user says yes");
    keys(&session.0, &["y"]);
    wait_for(&session.0, "the main screen", |s| s.contains("connected"));
    let pinned = std::fs::read_to_string(&known_hosts)?;
    assert!(pinned.contains(&server.fingerprint), "pinned in known_hosts:\n{pinned}");
    keys(&session.0, &["/join general", "Enter"]);
    wait_for(&session.0, "the newest message", |s| s.contains("msg 500 "));

    // A message from a CLI client arrives. The pane's raw output is kept
    // from here on, to see the bell.
    let raw = dir.path().join("pane.raw");
    tmux(
        &session.0,
        &["pipe-pane", "-o", "-t", &session.0, &format!("cat >> '{}'", raw.display())],
    );
    let fingerprint = server.fingerprint.clone();
    let bob_says = |text: &str| -> anyhow::Result<()> {
        let out = Command::new(&qchat)
            .args(["send", "general", text, "--server", &addr, "--tenant", "acme"])
            .args(["--user", "bob", "--fingerprint", &fingerprint])
            .env("QCHAT_PASSWORD", "bob-password")
            .output()?;
        assert!(out.status.success(), "qchat send: {}", String::from_utf8_lossy(&out.stderr));
        Ok(())
    };
    bob_says("hello ann from the cli")?;
    let s = wait_for(&session.0, "the CLI message", |s| s.contains("hello ann from the cli"));
    // Its time, as the config file says: HH:MM:SS.
    let row = s.lines().find(|l| l.contains("hello ann from the cli")).unwrap_or_default();
    let stamped = row.split('│').any(|cell| {
        let t: Vec<&str> = cell.split_whitespace().next().unwrap_or_default().split(':').collect();
        t.len() == 3 && t.iter().all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_digit()))
    });
    assert!(stamped, "a HH:MM:SS time before the message:\n{s}");

    // No bell for a plain message; `ann:` at the start of a line is a
    // mention: the bell rings (BEL in the pane's output; the notification
    // escape inside tmux is a passthrough ending in ESC \, no BEL).
    let bells = || std::fs::read(&raw).unwrap_or_default().iter().filter(|b| **b == 0x07).count();
    assert_eq!(bells(), 0, "a plain message rings no bell");
    bob_says("ann: are you there?")?;
    wait_for(&session.0, "the mention", |s| s.contains("ann: are you there?"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while bells() == 0 {
        assert!(Instant::now() < deadline, "no bell in the pane output");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(bells(), 1, "one bell for one mention");
    let out = std::fs::read(&raw)?;
    let passthrough = b"\x1bPtmux;\x1b\x1b]9;qchat: bob in general: ann: are you there?";
    assert!(out.windows(passthrough.len()).any(|w| w == passthrough), "the desktop notification");
    // A direct message rings it too, named by whose it is.
    let dm = bob.open_dm(&["ann"]).await?;
    bob.send(&dm.name, "psst, ann").await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while bells() < 2 {
        assert!(Instant::now() < deadline, "no bell for the direct message");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(bells(), 2, "one bell for one direct message");
    let out = std::fs::read(&raw)?;
    let passthrough = b"\x1b\x1b]9;qchat: bob in DM @bob: psst, ann";
    assert!(out.windows(passthrough.len()).any(|w| w == passthrough), "the DM's notification");

    // A line sent, then Up on the empty input brings it back to edit.
    keys(&session.0, &["-l", "the line to recall"]);
    keys(&session.0, &["Enter"]);
    wait_for(&session.0, "the line sent", |s| {
        s.contains("the line to recall") && s.lines().any(|l| l.trim_end() == ">")
    });
    keys(&session.0, &["Up"]);
    wait_for(&session.0, "the line recalled", |s| {
        s.lines().any(|l| l.trim_end() == "> the line to recall")
    });
    keys(&session.0, &["C-u"]);
    wait_for(&session.0, "the input cleared", |s| s.lines().any(|l| l.trim_end() == ">"));

    // The server stops: the UI says why. A line typed meanwhile shows as
    // sending, and as the message once the server is back, stored once.
    server.stop().await?;
    wait_for(&session.0, "the reason", |s| {
        s.contains("disconnected: server shutting down") && s.contains("reconnecting")
    });
    let offline = "typed while the server was away";
    keys(&session.0, &["-l", offline]);
    keys(&session.0, &["Enter"]);
    // (`⋯ sending` may wrap onto the next row.)
    wait_for(&session.0, "the line shown as sending", |s| {
        s.contains(offline) && s.contains("sending")
    });
    server.start_again().await?;
    wait_for(&session.0, "the line delivered", |s| {
        s.contains("⚡ connected again") && s.contains(offline) && !s.contains("sending")
    });
    let page =
        tokio::time::timeout(Duration::from_secs(30), bob.history("general", None, Some(10)))
            .await??;
    let stored = page.messages.iter().filter(|m| m.body == offline && m.sender == "ann").count();
    assert_eq!(stored, 1, "stored once: {:?}", page.messages);

    // A flag inside tmux is drawn as its letters (tmux 3.3 splits regional
    // indicator pairs and leaves stray halves behind).
    bob_says("flag 🇯🇵 here")?;
    let s = wait_for(&session.0, "the flag", |s| s.contains("flag [JP] here"));
    assert!(!s.contains('\u{1F1EF}') && !s.contains('\u{1F1F5}'), "no indicator drawn:\n{s}");

    // The mouse wheel (SGR mouse reports, as a terminal sends them) scrolls
    // the messages back, and forward again to the newest.
    let flag = |name: &str| {
        tmux(&session.0, &["display-message", "-p", "-t", &session.0, &format!("#{{{name}}}")])
    };
    assert_eq!(flag("mouse_sgr_flag").trim(), "1", "the UI asked for SGR mouse reports");
    assert_eq!(flag("mouse_any_flag").trim(), "1", "and for every mouse event");
    let wheel = |button: u8, notches: usize| {
        for _ in 0..notches {
            keys(&session.0, &["-l", &format!("\x1b[<{button};50;10M")]);
        }
    };
    wheel(64, 2);
    // Both notches (six rows up) put the newest out of view; the first
    // alone already shows the hint, so wait for the second too.
    let s = wait_for(&session.0, "scrolled back six rows by the wheel", |s| {
        s.contains("End for newest") && !s.contains("flag [JP] here")
    });
    assert!(s.lines().any(|l| l.trim_end() == ">"), "no mouse report typed into the input:\n{s}");
    wheel(65, 4);
    wait_for(&session.0, "back at the newest", |s| {
        !s.contains("End for newest") && s.contains("flag [JP] here")
    });

    // Search: the pane lists the hit; Enter opens it, loading the history
    // back to it (hundreds of messages before the page first loaded).
    keys(&session.0, &["/search msg 7", "Enter"]);
    let s = wait_for(&session.0, "the search pane", |s| s.contains("Search: msg 7"));
    assert!(s.contains("[msg] [7]"), "the hit, its words marked:\n{s}");
    keys(&session.0, &["Enter"]);
    let s = wait_for(&session.0, "the hit shown", |s| {
        !s.contains("Search: msg 7")
            && s.lines().any(|l| l.contains(" msg 7 ") || l.ends_with(" msg 7"))
    });
    assert!(s.contains("End for newest"), "scrolled back to the hit:\n{s}");
    keys(&session.0, &["End"]);
    wait_for(&session.0, "back at the newest", |s| {
        !s.contains("End for newest") && s.contains("flag [JP] here")
    });

    // Resize: the UI redraws at the new size, and back.
    for (w, h) in [(80, 24), (100, 30)] {
        tmux(
            &session.0,
            &["resize-window", "-t", &session.0, "-x", &w.to_string(), "-y", &h.to_string()],
        );
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

    // Quit with a reason, and the terminal is back to normal; bob hears
    // the reason.
    session.quit_and_check_restored("/quit back after lunch");
    // (Bob may also have seen her go offline as the server stopped.)
    let mut reasons = Vec::new();
    let heard = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(ev) = bob_events.recv().await {
            if let ClientEvent::Presence(p) = ev
                && p.user == "ann"
                && !p.online
            {
                if p.reason.as_deref() == Some("back after lunch") {
                    return true;
                }
                reasons.push(p.reason);
            }
        }
        false
    })
    .await;
    assert_eq!(heard, Ok(true), "the /quit reason never reached bob; he heard {reasons:?}");
    drop(session);
    let tokens = state.join("sessions");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&tokens)?.permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the session token file is private");
    }
    let log = std::fs::read_to_string(state.join("qchat.log"))?;
    assert!(log.contains("terminal UI closed"), "the log file in the state directory:\n{log}");
    for entry in std::fs::read_dir(&state)? {
        let path = entry?.path();
        let text = std::fs::read(&path)?;
        let found = text.windows(PASSWORD.len()).any(|w| w == PASSWORD.as_bytes());
        assert!(!found, "the password is in {}", path.display());
    }

    // Start again with no password and no identity: the form is prefilled
    // from the last log-in, and Enter resumes the saved session.
    let again = Session::start(
        format!("qchat-e2e-again-{}", std::process::id()),
        &format!("{base} '{}' --known-hosts '{}'", qchat.display(), known_hosts.display()),
    );
    let s = wait_for(&again.0, "the prefilled form", |s| s.contains("(saved session)"));
    assert!(s.contains(&addr) && s.contains("acme") && s.contains("ann"), "prefilled:\n{s}");
    keys(&again.0, &["Enter"]);
    wait_for(&again.0, "the main screen on the saved token", |s| {
        s.contains("connected") && s.contains("general")
    });

    // The server's certificate changes (the operator made a new one): the
    // UI says so and stays offline; `/reconnect` names the new certificate,
    // a wrong `/trust` pins nothing, and `/trust` with its first digits, as
    // the operator confirms them, pins it and logs in again, no restart.
    bob.quit(None).await?;
    let old_fingerprint = server.fingerprint.clone();
    server.stop().await?;
    std::fs::remove_dir_all(server.data_dir().join("tls"))?;
    server.start_again().await?;
    let new = server.fingerprint.clone();
    assert_ne!(new, old_fingerprint, "a new certificate");
    wait_for(&again.0, "the changed certificate refused", |s| s.contains("offline"));
    keys(&again.0, &["-l", "/reconnect"]);
    keys(&again.0, &["Enter"]);
    let s = wait_for(&again.0, "the changed certificate in full", |s| {
        s.contains("Server certificate changed") && s.contains(&format!("/trust {}", &new[..8]))
    });
    let flat: String = s.split_whitespace().collect();
    assert!(flat.contains(&new), "the new certificate in full:\n{s}");
    keys(&again.0, &["Escape"]);
    wait_for(&again.0, "the overlay closed", |s| !s.contains("Server certificate changed"));
    keys(&again.0, &["-l", "/trust 00000000"]);
    keys(&again.0, &["Enter"]);
    wait_for(&again.0, "a wrong fingerprint refused", |s| {
        s.contains("nothing pinned") && s.contains("Server certificate changed")
    });
    // (Waiting for the overlay to go: an ESC followed at once by `/` reads
    // as Alt-/.)
    keys(&again.0, &["Escape"]);
    wait_for(&again.0, "the overlay closed", |s| !s.contains("Server certificate changed"));
    keys(&again.0, &["-l", &format!("/trust {}", &new[..8])]);
    keys(&again.0, &["Enter"]);
    wait_for(&again.0, "logged in on the new certificate", |s| {
        let status = s.lines().rfind(|l| !l.trim().is_empty()).unwrap_or_default();
        status.trim_start().starts_with("connected")
    });
    let pinned = std::fs::read_to_string(&known_hosts)?;
    assert!(pinned.contains(&new), "the new certificate is pinned:\n{pinned}");
    assert!(!pinned.contains(&old_fingerprint), "the old pin is gone:\n{pinned}");
    again.quit_and_check_restored("/quit");
    Ok(())
}

/// Skips (with `QCHAT_SKIP_TMUX=1`) or fails when tmux is missing; `true`
/// when the test may run.
fn have_tmux() -> bool {
    if Command::new("tmux").arg("-V").output().is_ok() {
        return true;
    }
    if std::env::var("QCHAT_SKIP_TMUX").as_deref() == Ok("1") {
        println!("skipped: tmux is not installed (QCHAT_SKIP_TMUX=1)");
        return false;
    }
    panic!("tmux is not installed: install it, or set QCHAT_SKIP_TMUX=1 to skip this test");
}

/// The message view's text on a pane row: the cell between the second
/// and third borders (rooms │ messages │ members).
fn message_cells(s: &str) -> Vec<String> {
    s.lines().filter_map(|l| l.split('│').nth(3)).map(|c| c.trim().to_owned()).collect()
}

/// Issue 18 in the terminal UI: ann selects messages with the keyboard,
/// edits her own, reacts through the emoji picker, replies, and searches;
/// bob (the client library) sees each change, and his own edit, deletion
/// and typing reach her screen live.
#[tokio::test(flavor = "multi_thread")]
async fn tui_edits_reacts_replies_and_searches() -> anyhow::Result<()> {
    if !have_tmux() {
        return Ok(());
    }
    let server = TestServer::start().await?;
    server.tenant("acme", false).await?;
    server.user("acme", "ann", PASSWORD).await?;
    server.user("acme", "bob", "bob-password").await?;
    server.room("acme", "general").await?;
    server.room("acme", "random").await?;
    let addr = server.addr.to_string();
    let cfg = ClientConfig::new(
        &addr,
        "acme",
        "bob",
        Auth::Password("bob-password".into()),
        Trust::Fingerprint(server.fingerprint.clone()),
    );
    let (bob, mut bob_events) = Client::connect(cfg).await?;
    bob.join_room("random").await?;
    bob.join_room("general").await?;
    let lunch = bob.send("general", "lunch at noon?").await?.seq;
    let slides = bob.send("general", "bring the slides").await?.seq;
    let typo = bob.send("general", "a message with a typo").await?.seq;

    let dir = tempfile::tempdir()?;
    let qchat = bin_path("qchat");
    let session = Session::start(
        format!("qchat-e2e-msgs-{}", std::process::id()),
        &format!(
            "env -u QCHAT_SERVER -u QCHAT_TENANT -u QCHAT_USER QCHAT_STATE_DIR='{}' \
             QCHAT_TUI_CONFIG='{}' QCHAT_PASSWORD={PASSWORD} '{}' --server {addr} \
             --tenant acme --user ann --fingerprint {}",
            dir.path().join("state").display(),
            dir.path().join("none.toml").display(),
            qchat.display(),
            server.fingerprint
        ),
    );
    let s = &session.0;
    wait_for(s, "the log-in form", |t| t.contains("Password:"));
    keys(s, &["Enter"]);
    wait_for(s, "the main screen", |t| t.contains("connected"));
    keys(s, &["-l", "/join random"]);
    keys(s, &["Enter"]);
    wait_for(s, "random joined", |t| t.contains("* ann joined"));
    keys(s, &["-l", "/join general"]);
    keys(s, &["Enter"]);
    wait_for(s, "the room", |t| t.contains("a message with a typo"));

    // A mention in the other room: the rooms pane counts it (the server's
    // unread and mention counts, followed live).
    bob.send("random", "nothing for ann").await?;
    bob.send("random", "@ann are you coming?").await?;
    wait_for(s, "the counts", |t| {
        t.lines().any(|l| l.starts_with("│ random") && l.contains(" 2 @1│"))
    });

    // Her own message, selected (Ctrl-Up: the newest) and edited.
    keys(s, &["-l", "my frist message"]);
    keys(s, &["Enter"]);
    // (In the message view: the input line shows the text first.)
    wait_for(s, "her message", |t| {
        message_cells(t).iter().any(|c| c.ends_with(" my frist message"))
    });
    keys(s, &["C-Up"]);
    let t = wait_for(s, "the selection", |t| t.contains(": e edit · d delete"));
    let mine = bob.history("general", None, Some(1)).await?.messages[0].seq;
    assert!(t.contains(&format!("#{mine}: e edit")), "the newest is selected:\n{t}");
    keys(s, &["e"]);
    wait_for(s, "the edit", |t| t.contains(&format!("editing #{mine}")));
    keys(s, &["C-u"]);
    keys(s, &["-l", "my first message"]);
    keys(s, &["Enter"]);
    wait_for(s, "the edit shown", |t| {
        message_cells(t).iter().any(|c| c.contains("my first message (edited)"))
    });
    let page = bob.history("general", None, Some(10)).await?;
    let edited = page.messages.iter().find(|m| m.seq == mine).expect("her message");
    assert_eq!(edited.body, "my first message");
    assert!(edited.edited.is_some(), "{edited:?}");

    // A reaction through the picker: `thu` finds 👍.
    keys(s, &["C-Up", "C-Up", "C-Up"]);
    wait_for(s, "bob's message selected", |t| t.contains(&format!("#{slides}: e edit")));
    keys(s, &["-l", "+"]);
    wait_for(s, "the picker", |t| t.contains(&format!("React to #{slides}")));
    keys(s, &["-l", "thu"]);
    wait_for(s, "👍 found", |t| t.contains("search: :thu") && t.contains("▶ 👍  :thumbsup:"));
    keys(s, &["Enter"]);
    wait_for(s, "her reaction shown", |t| message_cells(t).iter().any(|c| c == "[👍 1]"));
    let page = bob.history("general", None, Some(10)).await?;
    let reacted = page.messages.iter().find(|m| m.seq == slides).expect("bob's message");
    assert_eq!(reacted.reactions.len(), 1, "{reacted:?}");
    assert_eq!((reacted.reactions[0].emoji.as_str(), reacted.reactions[0].count), ("👍", 1));

    // A reply: the input says to what; the reply shows its quote, and bob
    // gets it as a reply to his message.
    keys(s, &["C-Up", "C-Up", "C-Up", "C-Up"]);
    wait_for(s, "the first message selected", |t| t.contains(&format!("#{lunch}: e edit")));
    keys(s, &["r"]);
    wait_for(s, "replying", |t| t.contains("replying to bob: lunch at noon?"));
    keys(s, &["-l", "count me in"]);
    keys(s, &["Enter"]);
    wait_for(s, "the reply with its quote", |t| {
        let cells = message_cells(t);
        cells
            .iter()
            .position(|c| c.ends_with("↪ bob: lunch at noon?"))
            .is_some_and(|i| cells.get(i + 1).is_some_and(|n| n == "count me in"))
    });
    let reply = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(ev) = bob_events.recv().await {
            if let ClientEvent::Message(m) = ev
                && m.body == "count me in"
            {
                return Some(m);
            }
        }
        None
    })
    .await?
    .expect("bob gets the reply");
    assert_eq!(reply.sender, "ann");
    assert_eq!(reply.reply_to.as_ref().map(|q| (q.seq, q.sender.as_str())), Some((lunch, "bob")));

    // Bob edits and deletes his messages and types: her view follows live.
    bob.edit("general", slides, "bring the slides and the notes").await?;
    bob.delete_message("general", typo).await?;
    bob.typing("general").await?;
    wait_for(s, "bob's changes and typing", |t| {
        t.contains("bring the slides and the notes")
            && t.contains("message deleted by bob")
            && !t.contains("with a typo")
            && t.contains("bob is typing…")
    });

    // Search finds the edited text; Enter opens the room at it.
    keys(s, &["-l", "/search notes"]);
    keys(s, &["Enter"]);
    let t = wait_for(s, "the search pane", |t| t.contains("Search: notes"));
    assert!(t.contains(&format!("general #{slides} bob")), "the hit:\n{t}");
    assert!(t.contains("[notes]"), "the word marked:\n{t}");
    keys(s, &["Enter"]);
    wait_for(s, "the hit shown", |t| {
        !t.contains("Search: notes") && t.contains(&format!("general #{slides}"))
    });
    session.quit_and_check_restored("/quit");
    bob.quit(None).await?;
    Ok(())
}

//! The `qchat` command line without a server: usage errors are one line and a
//! non-zero exit. (Having an integration test here also makes `cargo test`
//! build the `qchat` binary that the end-to-end tests in `tests/` run.)

use std::process::Command;

fn qchat(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_qchat"))
        .args(args)
        .env_remove("QCHAT_PASSWORD")
        .env_remove("QCHAT_SERVER")
        .env_remove("QCHAT_TENANT")
        .env_remove("QCHAT_USER")
        .output()
        .expect("qchat runs")
}

#[test]
fn help_lists_the_subcommands() {
    let out = qchat(&["--help"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for sub in ["send", "history", "who", "rooms", "tail"] {
        assert!(text.contains(sub), "--help lacks {sub}: {text}");
    }
}

#[test]
fn missing_connection_details_fail_with_one_line() {
    let out = qchat(&["rooms"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.starts_with("qchat: "), "{err}");
}

#[test]
fn unreachable_server_fails_cleanly() {
    // A port on loopback where nothing listens: the handshake times out or is
    // refused; either way one line and a non-zero exit, no panic.
    let out = Command::new(env!("CARGO_BIN_EXE_qchat"))
        .args(["--server", "127.0.0.1:9", "--tenant", "t", "--user", "u", "--fingerprint"])
        .arg("0".repeat(64))
        .arg("rooms")
        .env("QCHAT_PASSWORD", "x")
        .output()
        .expect("qchat runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("qchat: ") && !err.contains("panicked"), "{err}");
}

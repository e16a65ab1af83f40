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

/// `qchat config defaults` prints a file `qchat config check` accepts; a bad
/// setting is named with a non-zero exit; `path` says where the file is read
/// from (the platform config dir, or `--config`).
#[test]
fn config_prints_its_defaults_checks_a_file_and_says_where_it_is() {
    let dir = tempfile::tempdir().expect("temp dir");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_qchat"))
            .args(args)
            .env_remove("QCHAT_TUI_CONFIG")
            .env("XDG_CONFIG_HOME", dir.path())
            .env("HOME", dir.path())
            .output()
            .expect("qchat runs")
    };
    let defaults = run(&["config", "defaults"]);
    assert!(defaults.status.success());
    let text = String::from_utf8_lossy(&defaults.stdout).into_owned();
    for setting in ["time_format", "download_dir", "[notifications]", "[colors]", "[keys]", "mouse"]
    {
        assert!(text.contains(setting), "the defaults lack {setting}:\n{text}");
    }

    let path = run(&["config", "path"]);
    assert!(path.status.success());
    let default = dir.path().join("qchat").join("config.toml");
    assert_eq!(String::from_utf8_lossy(&path.stdout).trim(), default.display().to_string());
    let none = run(&["config", "check"]);
    assert!(none.status.success());
    assert!(String::from_utf8_lossy(&none.stdout).contains("defaults apply"));

    std::fs::create_dir_all(dir.path().join("qchat")).expect("mkdir");
    std::fs::write(&default, &text).expect("write");
    let ok = run(&["config", "check"]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).contains(": ok"));

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[keys]\nteleport = \"f5\"\n").expect("write");
    let named = run(&["config", "path", "--config", bad.to_str().expect("utf-8")]);
    assert_eq!(String::from_utf8_lossy(&named.stdout).trim(), bad.display().to_string());
    let out = run(&["config", "check", "--config", bad.to_str().expect("utf-8")]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("qchat: ") && err.contains("teleport"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}

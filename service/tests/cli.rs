//! The `qchatd` command line: admin commands and start-up refusals. (Having
//! an integration test here also makes `cargo test` build the `qchatd`
//! binary that the end-to-end tests in `tests/` start.)

use std::process::{Command, Output};

fn qchatd(args: &[&str], dir: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_qchatd"))
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .env("QCHAT_PASSWORD", "correct horse")
        .output()
        .expect("qchatd runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn admin_commands_create_and_refuse_with_one_line_reasons() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let ok = qchatd(&["tenant", "create", "acme"], d);
    assert!(ok.status.success(), "{}", stderr(&ok));
    let dup = qchatd(&["tenant", "create", "acme"], d);
    assert!(!dup.status.success());
    assert_eq!(stderr(&dup).trim(), "qchatd: tenant acme exists");

    let bad = qchatd(&["tenant", "create", "../etc"], d);
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("invalid tenant name"), "{}", stderr(&bad));

    assert!(qchatd(&["user", "create", "--tenant", "acme", "ann"], d).status.success());
    let nobody = qchatd(&["user", "create", "--tenant", "nope", "ann"], d);
    assert_eq!(stderr(&nobody).trim(), "qchatd: no tenant named nope");
    assert!(qchatd(&["room", "create", "--tenant", "acme", "general"], d).status.success());
    let dup_room = qchatd(&["room", "create", "--tenant", "acme", "general"], d);
    assert_eq!(stderr(&dup_room).trim(), "qchatd: room general exists in acme");
}

#[test]
fn cert_show_is_stable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = qchatd(&["cert", "show"], dir.path());
    let b = qchatd(&["cert", "show"], dir.path());
    assert!(a.status.success(), "{}", stderr(&a));
    let line = String::from_utf8_lossy(&a.stdout).into_owned();
    assert!(line.starts_with("certificate sha256 ") && line.trim().len() == 19 + 64, "{line}");
    assert_eq!(a.stdout, b.stdout);
}

#[test]
fn cert_show_reads_the_configured_certificate() {
    let generated = tempfile::tempdir().expect("tempdir");
    let other = tempfile::tempdir().expect("tempdir");
    let a = qchatd(&["cert", "show"], generated.path());
    assert!(a.status.success(), "{}", stderr(&a));
    let cert = generated.path().join("tls/cert.pem");
    let key = generated.path().join("tls/key.pem");
    let args = ["cert", "show", "--tls-cert", path(&cert), "--tls-key", path(&key)];
    let b = qchatd(&args, other.path());
    assert!(b.status.success(), "{}", stderr(&b));
    assert_eq!(a.stdout, b.stdout, "the configured files, not a new pair");
    assert!(!other.path().join("tls").exists(), "nothing generated when files are configured");
    let half = qchatd(&["cert", "show", "--tls-cert", path(&cert)], other.path());
    assert!(stderr(&half).contains("tls_key"), "{}", stderr(&half));
}

fn path(p: &std::path::Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
}

#[test]
fn serve_refuses_a_config_with_an_unknown_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("qchatd.toml");
    std::fs::write(&cfg, "listen = \"127.0.0.1:0\"\nmax_conections = 5\n").expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_qchatd"))
        .args(["serve", "--config"])
        .arg(&cfg)
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert!(stderr(&out).contains("max_conections"), "{}", stderr(&out));
}

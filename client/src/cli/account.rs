//! `qchat profile`, `qchat passwd`, `qchat sessions`: the caller's own
//! account.

use std::io::BufRead as _;

use anyhow::{Context, bail};
use qchat_client::Client;

use super::SharedOpts;
use super::print::sanitize;
use super::search::time;

/// `qchat profile [USER] [--set NAME | --clear]`.
pub(super) async fn profile(
    client: &Client,
    user: Option<&str>,
    set: Option<&str>,
    clear: bool,
) -> anyhow::Result<()> {
    if set.is_some() || clear {
        client.set_display_name(set).await.context("setting the display name")?;
    }
    let p = client.profile(user).await.context("reading the profile")?;
    match p.display_name {
        Some(d) => println!("{} {}", p.user, sanitize(&d)),
        None => println!("{}", p.user),
    }
    Ok(())
}

/// `qchat passwd`: the old password is the one this command logged in
/// with; the new one comes from QCHAT_NEW_PASSWORD or, with
/// --password-stdin, the second line of standard input.
pub(super) async fn passwd(client: &Client, opts: &SharedOpts) -> anyhow::Result<()> {
    let old = opts.password_used()?;
    let new = new_password(opts)?;
    let ok = client.passwd(&old, &new).await.context("changing the password")?;
    println!("password changed; {} other session(s) revoked", ok.revoked);
    Ok(())
}

fn new_password(opts: &SharedOpts) -> anyhow::Result<String> {
    if opts.password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the new password from stdin")?;
        let password = line.trim_end_matches(['\n', '\r']).to_owned();
        if password.is_empty() {
            bail!("no new password on the second line of standard input");
        }
        return Ok(password);
    }
    match std::env::var("QCHAT_NEW_PASSWORD") {
        Ok(p) if !p.is_empty() => Ok(p),
        _ => bail!(
            "no new password: set QCHAT_NEW_PASSWORD or, with --password-stdin, give it on \
             the second line"
        ),
    }
}

/// `qchat sessions [--revoke ID]`: one line per session, `ID STATE CLIENT
/// ADDRESS LAST_SEEN` (STATE: `current`, `connected` or `-`).
pub(super) async fn sessions(client: &Client, revoke: Option<&str>) -> anyhow::Result<()> {
    if let Some(id) = revoke {
        client.revoke_session(id).await.with_context(|| format!("revoking session {id}"))?;
        println!("revoked {id}");
        return Ok(());
    }
    for s in client.sessions().await.context("listing sessions")? {
        let state = if s.current {
            "current"
        } else if s.connected {
            "connected"
        } else {
            "-"
        };
        let client_name = if s.client.is_empty() { "-".to_owned() } else { sanitize(&s.client) };
        println!("{} {state} {client_name} {} {}", s.id, s.address, time(s.last_seen));
    }
    Ok(())
}

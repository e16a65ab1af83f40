//! One function per subcommand. Each connects, does its work, and logs
//! out: the room sees the user leave and the session ends with it.

use anyhow::{Context, bail};
use qchat_client::{Client, ClientEvent, ConnState, Events, Message};
use tracing::info;

use super::print::print_message;
use super::rooms::{self, Moderation};
use super::{Command, SharedOpts, join_if_needed, joined};

/// How long a finished command waits for `logout` before it just leaves.
const LOGOUT_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Largest page the protocol hands out (`history`'s `limit`).
const MAX_PAGE: u32 = 500;

/// Runs one subcommand.
///
/// # Errors
/// Whatever stopped it.
pub(super) async fn run(opts: &SharedOpts, command: Command) -> anyhow::Result<()> {
    if matches!(command, Command::Config { .. }) {
        bail!("qchat config runs without connecting");
    }
    let (client, events) = opts.connect().await?;
    let result = match command {
        Command::Send { room, text } => send(&client, &room, &text).await,
        Command::History { room, limit, json } => history(&client, &room, limit, json).await,
        Command::Who { room } => who(&client, &room).await,
        Command::Rooms { json } => rooms::list(&client, json).await,
        Command::Tail { room, json, count } => tail(&client, events, &room, json, count).await,
        Command::Join { room } => join_if_needed(&client, &room).await,
        Command::Create { room, private } => rooms::create(&client, &room, private).await,
        Command::Dm { args } => rooms::dm(&client, &args).await,
        Command::Invite { room, users } => {
            rooms::moderate(&client, Moderation::Invite { room, users }).await
        }
        Command::Kick { room, target: user, reason } => {
            rooms::moderate(&client, Moderation::Kick { room, user, reason }).await
        }
        Command::Ban { room, target: user, reason } => {
            rooms::moderate(&client, Moderation::Ban { room, user, reason }).await
        }
        Command::Unban { room, target: user } => {
            rooms::moderate(&client, Moderation::Unban { room, user }).await
        }
        Command::Role { room, target: user, role } => {
            rooms::moderate(&client, Moderation::Role { room, user, role }).await
        }
        Command::Topic { room, text } => {
            rooms::moderate(&client, Moderation::Topic { room, text }).await
        }
        Command::Rename { room, name } => {
            rooms::moderate(&client, Moderation::Rename { room, name }).await
        }
        Command::Private { room, value } => {
            let on = value == "on";
            rooms::moderate(&client, Moderation::Private { room, on }).await
        }
        Command::Archive { room, undo } => {
            rooms::moderate(&client, Moderation::Archive { room, undo }).await
        }
        Command::Delete { room, seq: Some(seq), .. } => delete(&client, &room, seq).await,
        Command::Delete { room, seq: None, yes } => {
            rooms::moderate(&client, Moderation::Delete { room, yes }).await
        }
        Command::Edit { room, seq, text } => edit(&client, &room, seq, &text).await,
        Command::React { room, seq, emoji, remove } => {
            react(&client, &room, seq, &emoji, remove).await
        }
        Command::Reply { room, seq, text } => reply(&client, &room, seq, &text).await,
        Command::Thread { room, seq, json } => thread(&client, &room, seq, json).await,
        Command::Upload { room, files } => super::transfer::upload(&client, &room, &files).await,
        Command::Download { file_ids, out } => {
            super::transfer::download(&client, &file_ids, &out).await
        }
        Command::Search { query, room, from, after, before, has_file, limit, json } => {
            let s =
                super::search::Search { query, room, from, after, before, has_file, limit, json };
            super::search::search(&client, s).await
        }
        Command::Profile { user, set, clear } => {
            super::account::profile(&client, user.as_deref(), set.as_deref(), clear).await
        }
        Command::Passwd => super::account::passwd(&client, opts).await,
        Command::Sessions { revoke } => super::account::sessions(&client, revoke.as_deref()).await,
        Command::Config { .. } => Ok(()),
    };
    // Leave whatever happened, and end the session too: a one-shot command
    // has no later use for its token, and keeping it would fill `qchat
    // sessions` with one entry per command run. A failure here adds nothing
    // useful (an unanswered logout leaves a session that expires).
    if tokio::time::timeout(LOGOUT_WAIT, client.logout()).await.is_err() {
        let _ = client.quit(None).await;
    }
    result
}

async fn send(client: &Client, room: &str, text: &str) -> anyhow::Result<()> {
    join_if_needed(client, room).await?;
    let ok = client.send(room, text).await.with_context(|| format!("sending to {room}"))?;
    println!("{}", ok.seq);
    Ok(())
}

/// Prints the seq of the system message a change made, or `unchanged`.
fn print_change(seq: Option<u64>) {
    match seq {
        Some(seq) => println!("{seq}"),
        None => println!("unchanged"),
    }
}

async fn edit(client: &Client, room: &str, seq: u64, text: &str) -> anyhow::Result<()> {
    let done = client.edit(room, seq, text).await.with_context(|| format!("editing #{seq}"))?;
    print_change(done);
    Ok(())
}

async fn delete(client: &Client, room: &str, seq: u64) -> anyhow::Result<()> {
    let done =
        client.delete_message(room, seq).await.with_context(|| format!("deleting #{seq}"))?;
    print_change(done);
    Ok(())
}

async fn react(
    client: &Client,
    room: &str,
    seq: u64,
    emoji: &str,
    remove: bool,
) -> anyhow::Result<()> {
    let done = client
        .react(room, seq, emoji, remove)
        .await
        .with_context(|| format!("reacting to #{seq}"))?;
    print_change(done);
    Ok(())
}

async fn reply(client: &Client, room: &str, seq: u64, text: &str) -> anyhow::Result<()> {
    join_if_needed(client, room).await?;
    let ok = client
        .send_reply(room, text, Some(seq))
        .await
        .with_context(|| format!("replying to #{seq} in {room}"))?;
    println!("{}", ok.seq);
    Ok(())
}

/// The message and every page of its replies.
async fn thread(client: &Client, room: &str, seq: u64, json: bool) -> anyhow::Result<()> {
    let mut after = None;
    let mut first = true;
    // Each page holds at least one reply while `more`: bounded by the room.
    loop {
        let page = client
            .thread(room, seq, after, Some(MAX_PAGE))
            .await
            .with_context(|| format!("reading the thread of #{seq} in {room}"))?;
        if first {
            print_message(&page.message, json)?;
            first = false;
        }
        let next = page.messages.last().map(|m| m.seq);
        for m in &page.messages {
            print_message(m, json)?;
        }
        if !page.more || next.is_none() || next == after {
            return Ok(());
        }
        after = next;
    }
}

async fn history(client: &Client, room: &str, limit: u32, json: bool) -> anyhow::Result<()> {
    join_if_needed(client, room).await?;
    let messages = fetch_latest(client, room, limit).await?;
    for m in &messages {
        print_message(m, json)?;
    }
    Ok(())
}

/// The newest `limit` messages, oldest first, paging backwards as needed.
async fn fetch_latest(client: &Client, room: &str, limit: u32) -> anyhow::Result<Vec<Message>> {
    let mut pages: Vec<Vec<Message>> = Vec::new();
    let mut remaining = limit;
    let mut before = None;
    while remaining > 0 {
        let page = client
            .history(room, before, Some(remaining.min(MAX_PAGE)))
            .await
            .with_context(|| format!("reading the history of {room}"))?;
        let Some(first) = page.messages.first() else { break };
        before = Some(first.seq);
        remaining =
            remaining.saturating_sub(u32::try_from(page.messages.len()).unwrap_or(u32::MAX));
        let more = page.more;
        pages.push(page.messages);
        if !more {
            break;
        }
    }
    Ok(pages.into_iter().rev().flatten().collect())
}

async fn who(client: &Client, room: &str) -> anyhow::Result<()> {
    join_if_needed(client, room).await?;
    let members =
        client.members(room).await.with_context(|| format!("listing members of {room}"))?;
    for m in members {
        let online = if m.online { "online" } else { "offline" };
        match &m.display_name {
            Some(d) => println!("{} {online} {}", m.user, super::print::sanitize(d)),
            None => println!("{} {online}", m.user),
        }
    }
    Ok(())
}

async fn tail(
    client: &Client,
    mut events: Events,
    room: &str,
    json: bool,
    count: Option<u64>,
) -> anyhow::Result<()> {
    let key = joined(client, room).await?.key().to_owned();
    if count == Some(0) {
        return Ok(());
    }
    let mut seen = 0u64;
    loop {
        let event = tokio::select! {
            ev = events.recv() => ev,
            _ = tokio::signal::ctrl_c() => return Ok(()),
        };
        match event {
            Some(ClientEvent::Message(m)) if m.room_key() == key => {
                print_message(&m, json)?;
                seen += 1;
                if count.is_some_and(|n| seen >= n) {
                    return Ok(());
                }
            }
            Some(ClientEvent::State(ConnState::Reconnecting { attempt, last_error })) => {
                info!(attempt, %last_error, "reconnecting");
            }
            Some(ClientEvent::State(ConnState::Closed { reason })) => {
                bail!("connection closed: {reason}")
            }
            Some(_) => {}
            None => bail!("connection closed"),
        }
    }
}

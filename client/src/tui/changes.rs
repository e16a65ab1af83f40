//! Edits, deletions and reactions applied in place, pure. The server
//! records each as a `system` message of the room naming the message it
//! changes (PROTOCOL.md section 11); the UI applies it to that message
//! (and to the quotes of replies to it) instead of showing it as a line.

use crate::{ChangeKind, Message, Reaction, Tombstone};

/// The message `m` changes when it is an edit, a deletion or a reaction
/// (which the view applies instead of showing).
pub(crate) fn target(m: &Message) -> Option<u64> {
    let c = m.change.as_deref()?;
    match c.kind {
        ChangeKind::Edited | ChangeKind::Deleted | ChangeKind::Reacted | ChangeKind::Unreacted => {
            c.seq
        }
        _ => None,
    }
}

/// The start of `body` as a reply quotes it: at most [`EXCERPT`]
/// characters, `…` when cut (as the server makes `reply_to.excerpt`).
pub(crate) fn excerpt(body: &str) -> String {
    let mut chars = body.chars();
    let mut out: String = chars.by_ref().take(EXCERPT).collect();
    if chars.next().is_some() {
        out.pop();
        out.push('…');
    }
    out
}

/// Characters of a parent a reply quotes (`qchat_protocol::MAX_EXCERPT_CHARS`).
pub(crate) const EXCERPT: usize = qchat_protocol::MAX_EXCERPT_CHARS;

/// Applies `change` (a message [`target`] names `m`) to `m`; `me` is the
/// user, whose own reactions are marked.
pub(crate) fn apply(m: &mut Message, change: &Message, me: &str) {
    let Some(c) = change.change.as_deref() else { return };
    if m.deleted.is_some() {
        return;
    }
    match c.kind {
        ChangeKind::Edited => {
            if let Some(body) = &c.body {
                m.body.clone_from(body);
            }
            m.edited = Some(change.ts);
        }
        ChangeKind::Deleted => {
            m.body.clear();
            m.file = None;
            m.edited = None;
            m.reactions = Box::default();
            m.deleted = Some(Box::new(Tombstone { by: c.by.clone(), ts: change.ts }));
        }
        ChangeKind::Reacted | ChangeKind::Unreacted => {
            let Some(emoji) = c.emoji.as_deref() else { return };
            let mine = c.by == me;
            let mut list = std::mem::take(&mut m.reactions).into_vec();
            let at = list.iter().position(|r| r.emoji == emoji);
            match (c.kind, at) {
                (ChangeKind::Reacted, Some(i)) => {
                    list[i].count += 1;
                    list[i].me |= mine;
                }
                (ChangeKind::Reacted, None) => {
                    list.push(Reaction { emoji: emoji.to_owned(), count: 1, me: mine });
                }
                (_, Some(i)) => {
                    list[i].count = list[i].count.saturating_sub(1);
                    if mine {
                        list[i].me = false;
                    }
                    if list[i].count == 0 {
                        list.remove(i);
                    }
                }
                (_, None) => {}
            }
            m.reactions = list.into_boxed_slice();
        }
        _ => {}
    }
}

/// Brings `reply`'s quote of its parent up to date with `change` (an
/// edit or a deletion of the parent).
pub(crate) fn apply_to_quote(reply: &mut Message, change: &Message) {
    let (Some(q), Some(c)) = (reply.reply_to.as_deref_mut(), change.change.as_deref()) else {
        return;
    };
    if Some(q.seq) != c.seq {
        return;
    }
    match c.kind {
        ChangeKind::Edited => {
            if let Some(body) = &c.body {
                q.excerpt = excerpt(body);
            }
        }
        ChangeKind::Deleted => {
            q.excerpt.clear();
            q.deleted = true;
        }
        _ => {}
    }
}

/// The reactions of `m` as shown under it: `👍 2  [🎉 1]` (brackets: the
/// user gave it), and how many replies it has; `None` when neither.
pub(crate) fn reactions_line(m: &Message) -> Option<String> {
    let mut parts: Vec<String> = m
        .reactions
        .iter()
        .map(|r| {
            if r.me {
                format!("[{} {}]", r.emoji, r.count)
            } else {
                format!("{} {}", r.emoji, r.count)
            }
        })
        .collect();
    match m.replies {
        0 => {}
        1 => parts.push("· 1 reply".to_owned()),
        n => parts.push(format!("· {n} replies")),
    }
    (!parts.is_empty()).then(|| parts.join("  "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Change, MessageKind, ReplyTo};

    fn msg(seq: u64, sender: &str, body: &str) -> Message {
        Message::text("r", seq, sender, seq as i64 * 1000, body)
    }

    fn change(seq: u64, kind: ChangeKind, by: &str, of: u64) -> Message {
        let mut m = msg(seq, by, "");
        m.kind = MessageKind::System;
        m.change = Some(Box::new(Change { seq: Some(of), ..Change::new(kind, by) }));
        m
    }

    fn with(mut m: Message, f: impl FnOnce(&mut Change)) -> Message {
        if let Some(c) = m.change.as_deref_mut() {
            f(c);
        }
        m
    }

    #[test]
    fn reactions_count_and_mark_the_users_own() {
        let mut m = msg(1, "bob", "hi");
        let react =
            |seq, by: &str, kind| with(change(seq, kind, by, 1), |c| c.emoji = Some("👍".into()));
        apply(&mut m, &react(2, "ann", ChangeKind::Reacted), "ann");
        apply(&mut m, &react(3, "cy", ChangeKind::Reacted), "ann");
        assert_eq!(&*m.reactions, [Reaction { emoji: "👍".into(), count: 2, me: true }]);
        assert_eq!(reactions_line(&m).as_deref(), Some("[👍 2]"));
        apply(&mut m, &react(4, "ann", ChangeKind::Unreacted), "ann");
        assert_eq!(reactions_line(&m).as_deref(), Some("👍 1"));
        apply(&mut m, &react(5, "cy", ChangeKind::Unreacted), "ann");
        assert!(m.reactions.is_empty() && reactions_line(&m).is_none());
        assert_eq!(target(&react(6, "cy", ChangeKind::Reacted)), Some(1));
        assert_eq!(target(&msg(7, "bob", "plain")), None);
    }

    #[test]
    fn edits_and_deletions_reach_the_message_and_quotes() {
        let mut parent = msg(1, "ann", "lunch at noon?");
        let mut reply = msg(2, "bob", "yes");
        reply.reply_to = Some(Box::new(ReplyTo {
            seq: 1,
            sender: "ann".into(),
            excerpt: "lunch at noon?".into(),
            deleted: false,
        }));
        let edit = with(change(3, ChangeKind::Edited, "ann", 1), |c| {
            c.body = Some("lunch at one?".into())
        });
        apply(&mut parent, &edit, "bob");
        apply_to_quote(&mut reply, &edit);
        assert_eq!((parent.body.as_str(), parent.edited), ("lunch at one?", Some(3000)));
        assert_eq!(reply.reply_to.as_ref().map(|q| q.excerpt.as_str()), Some("lunch at one?"));
        let delete = change(4, ChangeKind::Deleted, "ann", 1);
        apply(&mut parent, &delete, "bob");
        apply_to_quote(&mut reply, &delete);
        assert!(parent.body.is_empty());
        assert_eq!(parent.deleted.as_deref().map(|t| t.by.as_str()), Some("ann"));
        assert!(reply.reply_to.as_ref().is_some_and(|q| q.deleted && q.excerpt.is_empty()));
        assert_eq!(excerpt(&"x".repeat(150)).chars().count(), EXCERPT);
        assert!(excerpt(&"x".repeat(150)).ends_with('…'));
    }
}

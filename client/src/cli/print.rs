//! How messages and lists look on standard output. Human lines are one per
//! item; `--json` prints the protocol's message object, one per line.

use qchat_client::{Message, MessageKind};

/// One message as a line: `#SEQ SENDER: BODY` (files and system messages are
/// marked). Control characters are escaped so a message cannot drive the
/// terminal.
pub(crate) fn message_line(m: &Message) -> String {
    let line = base_line(m);
    let mut out = match &m.reply_to {
        // `#8 bob [re #3 ann: the start of it]: agreed`
        Some(p) => {
            let quoted = if p.deleted {
                "(deleted)".to_owned()
            } else {
                format!("{}: {}", p.sender, sanitize(&p.excerpt))
            };
            let prefix = format!("#{} {}", m.seq, m.sender);
            match line.strip_prefix(&prefix) {
                Some(rest) => format!("{prefix} [re #{} {quoted}]{rest}", p.seq),
                None => line,
            }
        }
        None => line,
    };
    if m.edited.is_some() {
        out.push_str(" (edited)");
    }
    if !m.reactions.is_empty() {
        let list: Vec<String> = m
            .reactions
            .iter()
            .map(|r| format!("{}{} {}", if r.me { "*" } else { "" }, sanitize(&r.emoji), r.count))
            .collect();
        out.push_str(&format!("  [{}]", list.join(", ")));
    }
    if m.replies > 0 {
        out.push_str(&format!(
            "  ({} {})",
            m.replies,
            if m.replies == 1 { "reply" } else { "replies" }
        ));
    }
    out
}

fn base_line(m: &Message) -> String {
    let body = sanitize(&m.body);
    if let Some(t) = &m.deleted {
        return format!("#{} {}: (deleted by {})", m.seq, m.sender, t.by);
    }
    match m.kind {
        MessageKind::Text => format!("#{} {}: {}", m.seq, m.sender, body),
        MessageKind::File => match &m.file {
            Some(f) => format!(
                "#{} {} [file {}] {} ({} bytes)",
                m.seq,
                m.sender,
                f.id,
                sanitize(&f.name),
                f.size
            ),
            None => format!("#{} {} [file] {}", m.seq, m.sender, body),
        },
        MessageKind::System => format!("#{} * {}", m.seq, body),
    }
}

/// One message as a JSON line (the protocol's message object).
///
/// # Errors
/// Only if serialization fails, which it cannot for these types.
pub(crate) fn message_json(m: &Message) -> serde_json::Result<String> {
    serde_json::to_string(m)
}

/// Prints a message in the chosen format.
///
/// # Errors
/// JSON serialization failure.
pub(crate) fn print_message(m: &Message, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", message_json(m)?);
    } else {
        println!("{}", message_line(m));
    }
    Ok(())
}

/// `s` with control characters escaped, safe to print on a terminal.
pub(crate) fn sanitize(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            let escaped: Vec<char> =
                if c.is_control() { c.escape_default().collect() } else { vec![c] };
            escaped
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use qchat_client::FileInfo;

    fn msg(kind: MessageKind, body: &str) -> Message {
        let mut m = Message::text("general", 42, "ann", 1_764_000_000_000, body);
        m.kind = kind;
        m.client_msg_id = Some("k1".into());
        m
    }

    #[test]
    fn human_lines() {
        assert_eq!(message_line(&msg(MessageKind::Text, "hello")), "#42 ann: hello");
        assert_eq!(message_line(&msg(MessageKind::System, "ann joined")), "#42 * ann joined");
        assert_eq!(message_line(&msg(MessageKind::File, "a.pdf")), "#42 ann [file] a.pdf");
        let mut file = msg(MessageKind::File, "a.pdf");
        file.file =
            Some(FileInfo { id: 7, name: "a.pdf".into(), size: 1234, hash: "00".repeat(32) });
        assert_eq!(message_line(&file), "#42 ann [file 7] a.pdf (1234 bytes)");
    }

    #[test]
    fn edits_replies_reactions_and_tombstones_are_marked() {
        let mut m = msg(MessageKind::Text, "agreed");
        m.reply_to = Some(Box::new(qchat_client::ReplyTo {
            seq: 3,
            sender: "bob".into(),
            excerpt: "the plan".into(),
            deleted: false,
        }));
        m.edited = Some(1);
        m.reactions = vec![
            qchat_client::Reaction { emoji: "👍".into(), count: 2, me: true },
            qchat_client::Reaction { emoji: "🎉".into(), count: 1, me: false },
        ]
        .into();
        m.replies = 2;
        assert_eq!(
            message_line(&m),
            "#42 ann [re #3 bob: the plan]: agreed (edited)  [*👍 2, 🎉 1]  (2 replies)"
        );
        let mut gone = msg(MessageKind::Text, "");
        gone.deleted = Some(Box::new(qchat_client::Tombstone { by: "carol".into(), ts: 1 }));
        assert_eq!(message_line(&gone), "#42 ann: (deleted by carol)");
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(
            message_line(&msg(MessageKind::Text, "a\nb\x1b[2J")),
            "#42 ann: a\\nb\\u{1b}[2J"
        );
        assert_eq!(message_line(&msg(MessageKind::Text, "héllo 🎉")), "#42 ann: héllo 🎉");
    }

    #[test]
    fn json_is_the_protocol_object() {
        let json = message_json(&msg(MessageKind::Text, "hi")).expect("serializes");
        let back: Message = serde_json::from_str(&json).expect("parses");
        assert_eq!(back, msg(MessageKind::Text, "hi"));
        assert!(json.contains("\"client_msg_id\":\"k1\""));
    }
}

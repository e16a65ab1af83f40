//! The message view's layout, pure: a message becomes rows (day separator,
//! new-messages marker, wrapped text with time and a folded sender name),
//! and the visible window is computed from an [`Anchor`] by laying out only
//! the messages that touch the screen. The cost of a frame depends on the
//! terminal's height, never on how many messages are loaded.

use crate::{Message, MessageKind};

use super::clock::Zone;
use super::wrap;

/// Messages from the same sender closer than this share one name.
const FOLD_MS: i64 = 5 * 60 * 1000;

/// What a row of the message view shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Row {
    /// `── 2026-11-25 ──`: the first message of a (local) day follows.
    Day(String),
    /// `── new ──`: the first message after the read marker follows.
    NewMarker,
    /// A line of a message.
    Line(Line),
}

/// One line of a message with its prefix parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Line {
    /// `HH:MM` on a message's first line.
    pub(crate) time: Option<String>,
    /// The sender on the first line of a message that is not folded.
    pub(crate) sender: Option<String>,
    /// Columns of the time column (the time and a space).
    pub(crate) time_col: usize,
    /// Columns before the text (time and name columns).
    pub(crate) indent: usize,
    /// The text.
    pub(crate) text: String,
    /// How to style it.
    pub(crate) style: LineStyle,
}

/// The style class of a message line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LineStyle {
    /// Someone's text.
    Text,
    /// The user's own text.
    Own,
    /// Text that mentions the user.
    Mention,
    /// Server notices, `/me` actions.
    System,
    /// A file offer.
    File,
}

/// What the rows depend on besides the messages.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ctx<'a> {
    /// The user's name (own messages, mentions).
    pub(crate) me: &'a str,
    /// Messages after this seq are new (the marker goes before the first).
    pub(crate) marker_seq: u64,
    /// Width of the view in columns.
    pub(crate) width: usize,
    /// The zone dates and times are shown in.
    pub(crate) zone: &'a Zone,
}

impl Ctx<'_> {
    fn name_col(&self) -> usize {
        if self.width < 60 { 8 } else { 12 }
    }
}

/// Where the view is: following the newest message, or with its top row at
/// row `offset` of message `index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Anchor {
    /// Showing the newest rows; new messages scroll in.
    #[default]
    Bottom,
    /// Scrolled back; new messages do not move the view.
    Top {
        /// Index into the loaded messages.
        index: usize,
        /// Row within that message's rows.
        offset: usize,
    },
}

/// The rows on screen and where they lie in the whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Window {
    /// At most `height` rows, top first.
    pub(crate) rows: Vec<Row>,
    /// The first row shown is the first row of the first loaded message.
    pub(crate) at_top: bool,
    /// The last row shown is the last row of the last message.
    pub(crate) at_bottom: bool,
}

/// Whether `body` mentions `me`: `@me` anywhere, or `me:` / `me,` at the
/// start of a line (what Tab completion writes there, IRC style), never as
/// part of a longer name.
pub(crate) fn mentions(body: &str, me: &str) -> bool {
    if me.is_empty() {
        return false;
    }
    let name_goes_on =
        |after: &str| after.starts_with(|c: char| c.is_alphanumeric() || "_-.".contains(c));
    let needle = format!("@{me}");
    let at = body.match_indices(&needle).any(|(i, _)| {
        let before_ok = body[..i].chars().next_back().is_none_or(|c| !c.is_alphanumeric());
        before_ok && !name_goes_on(&body[i + needle.len()..])
    });
    at || body.lines().any(|line| {
        line.trim_start()
            .strip_prefix(me)
            .is_some_and(|rest| rest.starts_with([':', ',']) && !name_goes_on(rest))
    })
}

/// The rows of message `i` (with the separators before it).
pub(crate) fn rows_of(msgs: &[Message], i: usize, ctx: &Ctx<'_>) -> Vec<Row> {
    let Some(m) = msgs.get(i) else { return Vec::new() };
    let prev = i.checked_sub(1).and_then(|p| msgs.get(p));
    let mut rows = Vec::new();
    let day = ctx.zone.day_key(m.ts);
    let new_day = prev.is_none_or(|p| ctx.zone.day_key(p.ts) != day);
    if new_day {
        rows.push(Row::Day(ctx.zone.day_of(m.ts)));
    }
    let is_new = m.seq > ctx.marker_seq && prev.is_none_or(|p| p.seq <= ctx.marker_seq);
    if is_new && ctx.marker_seq > 0 {
        rows.push(Row::NewMarker);
    }
    let folded = !new_day
        && !is_new
        && prev.is_some_and(|p| {
            p.sender == m.sender
                && p.kind == MessageKind::Text
                && m.kind == MessageKind::Text
                && m.ts - p.ts < FOLD_MS
                && !p.body.starts_with("/me ")
        });
    let (text, style) = body_of(m, ctx.me);
    let show_sender = !folded && style != LineStyle::System;
    let time_col = ctx.zone.time_width() + 1;
    let name_col = if style == LineStyle::System { 2 } else { ctx.name_col() + 1 };
    let indent = time_col + name_col;
    let text_width = ctx.width.saturating_sub(indent).max(8);
    for (n, piece) in wrap::wrap(&text, text_width).into_iter().enumerate() {
        rows.push(Row::Line(Line {
            time: (n == 0).then(|| ctx.zone.time_of(m.ts)),
            sender: (n == 0 && show_sender).then(|| m.sender.clone()),
            time_col,
            indent,
            text: piece,
            style,
        }));
    }
    rows
}

fn body_of(m: &Message, me: &str) -> (String, LineStyle) {
    match m.kind {
        MessageKind::System => (format!("* {}", m.body), LineStyle::System),
        MessageKind::File => {
            let text = match &m.file {
                Some(f) => {
                    format!("[file {}] {} ({}) — /get {}", f.id, f.name, human_bytes(f.size), f.id)
                }
                None => format!("[file] {}", m.body),
            };
            (text, LineStyle::File)
        }
        MessageKind::Text => {
            if let Some(action) = m.body.strip_prefix("/me ") {
                (format!("* {} {action}", m.sender), LineStyle::System)
            } else if m.sender == me {
                (m.body.clone(), LineStyle::Own)
            } else if mentions(&m.body, me) {
                (m.body.clone(), LineStyle::Mention)
            } else {
                (m.body.clone(), LineStyle::Text)
            }
        }
    }
}

/// `1.5 KiB`, `12 MiB`, `900 B`.
pub(crate) fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else if v < 10.0 {
        format!("{v:.1} {}", UNITS[u])
    } else {
        format!("{v:.0} {}", UNITS[u])
    }
}

/// The rows visible at `anchor` in a view `height` rows tall.
pub(crate) fn window(msgs: &[Message], anchor: Anchor, height: usize, ctx: &Ctx<'_>) -> Window {
    if let Anchor::Top { index, offset } = anchor
        && index < msgs.len()
    {
        let mut rows = Vec::with_capacity(height);
        let mut i = index;
        let mut skip = offset;
        while i < msgs.len() && rows.len() < height {
            let r = rows_of(msgs, i, ctx);
            let take = r.len().saturating_sub(skip).min(height - rows.len());
            let last_of_item = skip + take == r.len();
            rows.extend(r.into_iter().skip(skip).take(take));
            skip = 0;
            if rows.len() == height {
                let at_bottom = i + 1 == msgs.len() && last_of_item;
                return Window { rows, at_top: index == 0 && offset == 0, at_bottom };
            }
            i += 1;
        }
        // The rest does not fill the view: show the end instead.
    }
    bottom_window(msgs, height, ctx)
}

fn bottom_window(msgs: &[Message], height: usize, ctx: &Ctx<'_>) -> Window {
    let mut chunks: Vec<Vec<Row>> = Vec::new();
    let mut total = 0;
    let mut i = msgs.len();
    while i > 0 && total < height {
        i -= 1;
        let r = rows_of(msgs, i, ctx);
        total += r.len();
        chunks.push(r);
    }
    let at_top = i == 0 && total <= height;
    let mut rows: Vec<Row> = chunks.into_iter().rev().flatten().collect();
    if rows.len() > height {
        rows.drain(..rows.len() - height);
    }
    Window { rows, at_top, at_bottom: true }
}

/// The top position of the bottom window, as an explicit anchor.
fn top_of_bottom(msgs: &[Message], height: usize, ctx: &Ctx<'_>) -> (usize, usize) {
    let mut total = 0;
    let mut i = msgs.len();
    while i > 0 {
        i -= 1;
        let n = rows_of(msgs, i, ctx).len();
        total += n;
        if total >= height {
            return (i, total - height);
        }
    }
    (0, 0)
}

/// Moves the view `delta` rows (negative: towards older messages).
pub(crate) fn scroll(
    msgs: &[Message],
    anchor: Anchor,
    delta: isize,
    height: usize,
    ctx: &Ctx<'_>,
) -> Anchor {
    if msgs.is_empty() {
        return Anchor::Bottom;
    }
    let (mut index, mut offset) = match anchor {
        Anchor::Top { index, offset } if index < msgs.len() => (index, offset),
        _ => {
            if delta >= 0 {
                return Anchor::Bottom;
            }
            top_of_bottom(msgs, height, ctx)
        }
    };
    let mut n = delta.unsigned_abs();
    if delta < 0 {
        while n > 0 {
            if offset > 0 {
                let take = offset.min(n);
                offset -= take;
                n -= take;
            } else if index > 0 {
                index -= 1;
                offset = rows_of(msgs, index, ctx).len().saturating_sub(1);
                n -= 1;
            } else {
                break;
            }
        }
    } else {
        let mut rows_here = rows_of(msgs, index, ctx).len();
        while n > 0 {
            if offset + 1 < rows_here {
                let take = (rows_here - 1 - offset).min(n);
                offset += take;
                n -= take;
            } else if index + 1 < msgs.len() {
                index += 1;
                offset = 0;
                rows_here = rows_of(msgs, index, ctx).len();
                n -= 1;
            } else {
                break;
            }
        }
    }
    let anchor = Anchor::Top { index, offset };
    if delta > 0 && window(msgs, anchor, height, ctx).at_bottom {
        return Anchor::Bottom;
    }
    anchor
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn msg(seq: u64, sender: &str, body: &str, ts: i64) -> Message {
        Message {
            room: "r".into(),
            seq,
            sender: sender.into(),
            ts,
            kind: MessageKind::Text,
            body: body.into(),
            client_msg_id: None,
            file: None,
        }
    }

    static UTC: std::sync::LazyLock<Zone> = std::sync::LazyLock::new(Zone::utc);

    fn ctx() -> Ctx<'static> {
        Ctx { me: "ann", marker_seq: 0, width: 40, zone: &UTC }
    }

    fn many(n: u64) -> Vec<Message> {
        (1..=n)
            .map(|s| {
                msg(
                    s,
                    if s % 2 == 0 { "bob" } else { "cy" },
                    &format!("message {s}"),
                    1_700_000_000_000 + s as i64 * 1000,
                )
            })
            .collect()
    }

    fn text_of(w: &Window) -> Vec<String> {
        w.rows
            .iter()
            .map(|r| match r {
                Row::Day(d) => format!("-- {d}"),
                Row::NewMarker => "-- new".into(),
                Row::Line(l) => l.text.clone(),
            })
            .collect()
    }

    #[test]
    fn mentions_whole_names_only() {
        assert!(mentions("hi @ann!", "ann"));
        assert!(mentions("@ann", "ann"));
        assert!(!mentions("hi @anna", "ann"));
        assert!(!mentions("hi @ann.b", "ann"), "a name may hold a dot");
        assert!(!mentions("mail bob@ann", "ann"), "not inside a word");
        assert!(!mentions("hi ann", "ann"));
    }

    #[test]
    fn name_colon_at_the_start_of_a_line_mentions() {
        assert!(mentions("ann: lunch?", "ann"));
        assert!(mentions("ann, lunch?", "ann"));
        assert!(mentions("so\n  ann: and you?", "ann"), "any line of the message");
        assert!(!mentions("anna: lunch?", "ann"));
        assert!(!mentions("ask ann: she knows", "ann"), "only at the start");
        assert!(!mentions("ann said", "ann"));
        assert!(!mentions("ann:", ""));
    }

    #[test]
    fn day_separator_and_folding() {
        let day = 86_400_000;
        let msgs = vec![
            msg(1, "bob", "one", day),
            msg(2, "bob", "two", day + 1000),
            msg(3, "bob", "three", 2 * day),
        ];
        let c = ctx();
        let r1 = rows_of(&msgs, 0, &c);
        assert_eq!(r1[0], Row::Day("1970-01-02".into()));
        let Row::Line(l) = &rows_of(&msgs, 1, &c)[0] else { panic!("a line") };
        assert_eq!(l.sender, None, "folded");
        let r3 = rows_of(&msgs, 2, &c);
        assert_eq!(r3[0], Row::Day("1970-01-03".into()));
        let Row::Line(l) = &r3[1] else { panic!("a line") };
        assert_eq!(l.sender.as_deref(), Some("bob"), "a new day shows the name again");
    }

    #[test]
    fn new_marker_before_first_unread() {
        let msgs = many(5);
        let c = Ctx { marker_seq: 3, ..ctx() };
        assert!(rows_of(&msgs, 3, &c).contains(&Row::NewMarker));
        assert!(!rows_of(&msgs, 4, &c).contains(&Row::NewMarker));
    }

    #[test]
    fn bottom_window_shows_the_newest() {
        let msgs = many(100);
        let w = window(&msgs, Anchor::Bottom, 5, &ctx());
        assert_eq!(text_of(&w).last().map(String::as_str), Some("message 100"));
        assert_eq!(w.rows.len(), 5);
        assert!(w.at_bottom && !w.at_top);
    }

    #[test]
    fn scrolling_up_to_the_top_and_back() {
        let msgs = many(50);
        let c = ctx();
        let mut a = Anchor::Bottom;
        for _ in 0..100 {
            a = scroll(&msgs, a, -5, 5, &c);
        }
        assert_eq!(a, Anchor::Top { index: 0, offset: 0 });
        let w = window(&msgs, a, 5, &c);
        assert!(w.at_top);
        assert_eq!(text_of(&w)[..2], ["-- 2023-11-14".to_owned(), "message 1".to_owned()]);
        for _ in 0..100 {
            a = scroll(&msgs, a, 5, 5, &c);
        }
        assert_eq!(a, Anchor::Bottom);
    }

    #[test]
    fn page_up_then_down_returns() {
        let msgs = many(50);
        let c = ctx();
        let up = scroll(&msgs, Anchor::Bottom, -10, 5, &c);
        let w = window(&msgs, up, 5, &c);
        assert!(!w.at_bottom);
        assert_eq!(scroll(&msgs, up, 10, 5, &c), Anchor::Bottom);
    }

    #[test]
    fn few_messages_fill_from_the_top() {
        let msgs = many(2);
        let w = window(&msgs, Anchor::Top { index: 1, offset: 0 }, 10, &ctx());
        assert!(w.at_top && w.at_bottom);
        assert_eq!(w.rows.len(), 3);
    }

    #[test]
    fn window_cost_does_not_depend_on_history_size() {
        // Not a timing test: the window only lays out what it shows.
        let msgs = many(100_000);
        let w = window(&msgs, Anchor::Top { index: 50_000, offset: 0 }, 20, &ctx());
        assert_eq!(text_of(&w)[0], "message 50001");
        assert_eq!(w.rows.len(), 20);
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human_bytes(900), "900 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(20 * 1024 * 1024), "20 MiB");
    }
}

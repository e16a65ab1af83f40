//! The message view's layout, pure: a timeline item becomes rows (day
//! separator, new-messages marker, wrapped text with time and a folded
//! sender name; `rows`), and the visible window is computed from an
//! [`Anchor`] by laying out only the items that touch the screen. The cost
//! of a frame depends on the terminal's height, never on how many messages
//! are loaded.

mod rows;

pub(crate) use rows::rows_of;

use super::clock::Zone;
use super::timeline::{EventsShown, Item};

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
    /// The file a file offer's line offers (a click downloads it).
    pub(crate) file: Option<u64>,
    /// The message the line belongs to (a click selects it).
    pub(crate) seq: Option<u64>,
    /// The line belongs to the selected message (drawn highlighted).
    pub(crate) selected: bool,
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
    /// The user's text on its way to the server.
    Pending,
    /// The user's text the server refused (or never got).
    Failed,
    /// The quote of the message a reply answers, above the reply.
    Quote,
    /// The reactions (and replies) under a message.
    Reactions,
    /// A deleted message's tombstone.
    Deleted,
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
    /// How join, leave and quit lines show.
    pub(crate) events: EventsShown,
    /// The keys that retry and edit a failed send (`Ctrl-R retry · Alt-R
    /// edit`).
    pub(crate) failed_hint: &'a str,
    /// The selected message's seq, drawn highlighted.
    pub(crate) selected: Option<u64>,
}

impl Ctx<'_> {
    fn name_col(&self) -> usize {
        if self.width < 60 { 8 } else { 12 }
    }
}

/// Where the view is: following the newest message, or with its top row at
/// row `offset` of item `index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Anchor {
    /// Showing the newest rows; new messages scroll in.
    #[default]
    Bottom,
    /// Scrolled back; new messages do not move the view.
    Top {
        /// Index into the room's items.
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
    /// The first row shown is the first row of the first item.
    pub(crate) at_top: bool,
    /// The last row shown is the last row of the last item.
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
pub(crate) fn window(msgs: &[Item], anchor: Anchor, height: usize, ctx: &Ctx<'_>) -> Window {
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
                // Items after that draw nothing (hidden lines) do not count.
                let at_bottom =
                    last_of_item && (i + 1..msgs.len()).all(|j| rows_of(msgs, j, ctx).is_empty());
                return Window { rows, at_top: index == 0 && offset == 0, at_bottom };
            }
            i += 1;
        }
        // The rest does not fill the view: show the end instead.
    }
    bottom_window(msgs, height, ctx)
}

fn bottom_window(msgs: &[Item], height: usize, ctx: &Ctx<'_>) -> Window {
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
fn top_of_bottom(msgs: &[Item], height: usize, ctx: &Ctx<'_>) -> (usize, usize) {
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
    msgs: &[Item],
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
    // Items that draw nothing (hidden event lines) take no row: passing
    // them costs nothing.
    let mut n = delta.unsigned_abs();
    if delta < 0 {
        while n > 0 {
            if offset > 0 {
                let take = offset.min(n);
                offset -= take;
                n -= take;
            } else if index > 0 {
                index -= 1;
                let len = rows_of(msgs, index, ctx).len();
                if len > 0 {
                    offset = len - 1;
                    n -= 1;
                }
            } else {
                break;
            }
        }
    } else {
        let mut rows_here = rows_of(msgs, index, ctx).len();
        while rows_here == 0 && index + 1 < msgs.len() {
            index += 1;
            offset = 0;
            rows_here = rows_of(msgs, index, ctx).len();
        }
        while n > 0 {
            if offset + 1 < rows_here {
                let take = (rows_here - 1 - offset).min(n);
                offset += take;
                n -= take;
            } else if index + 1 < msgs.len() {
                index += 1;
                offset = 0;
                rows_here = rows_of(msgs, index, ctx).len();
                if rows_here > 0 {
                    n -= 1;
                }
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

    use crate::Message;
    use crate::tui::timeline::{EventKind, EventLine};

    pub(crate) fn msg(seq: u64, sender: &str, body: &str, ts: i64) -> Message {
        Message::text("r", seq, sender, ts, body)
    }

    static UTC: std::sync::LazyLock<Zone> = std::sync::LazyLock::new(Zone::utc);

    fn ctx() -> Ctx<'static> {
        Ctx {
            me: "ann",
            marker_seq: 0,
            width: 40,
            zone: &UTC,
            events: EventsShown::Lines,
            failed_hint: "Ctrl-R retry",
            selected: None,
        }
    }

    fn items(msgs: Vec<Message>) -> Vec<Item> {
        msgs.into_iter().map(Item::Msg).collect()
    }

    fn many(n: u64) -> Vec<Item> {
        items(
            (1..=n)
                .map(|s| {
                    msg(
                        s,
                        if s % 2 == 0 { "bob" } else { "cy" },
                        &format!("message {s}"),
                        1_700_000_000_000 + s as i64 * 1000,
                    )
                })
                .collect(),
        )
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
        let msgs = items(vec![
            msg(1, "bob", "one", day),
            msg(2, "bob", "two", day + 1000),
            msg(3, "bob", "three", 2 * day),
        ]);
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

    fn event(after: u64, n: u64, user: &str) -> Item {
        let ts = 1_700_000_000_000 + after as i64 * 1000 + n as i64;
        Item::Event(EventLine { ts, after, n, what: EventKind::Joined(user.into()) })
    }

    /// Ten messages with a run of three joins after the fifth.
    fn with_joins() -> Vec<Item> {
        let mut v = many(10);
        v.splice(5..5, [event(5, 1, "dan"), event(5, 2, "eve"), event(5, 3, "fay")]);
        v
    }

    #[test]
    fn event_lines_show_one_each_folded_or_not_at_all() {
        let v = with_joins();
        let all = |c: &Ctx<'_>| text_of(&window(&v, Anchor::Top { index: 0, offset: 0 }, 100, c));
        let wide = || Ctx { width: 120, ..ctx() };
        let lines = all(&wide());
        assert!(
            lines.contains(&"→ dan joined".to_owned())
                && lines.contains(&"→ fay joined".to_owned())
        );
        let folded = all(&Ctx { events: EventsShown::Folded, ..wide() });
        assert_eq!(folded.len(), lines.len() - 2);
        assert!(
            folded.iter().any(|l| l == "→ dan joined · → eve joined · → fay joined"),
            "{folded:?}"
        );
        let hidden = all(&Ctx { events: EventsShown::Hidden, ..wide() });
        assert_eq!(hidden.len(), lines.len() - 3);
        assert!(!hidden.iter().any(|l| l.contains("joined")));
    }

    #[test]
    fn scrolling_passes_hidden_lines_at_no_cost() {
        let v = with_joins();
        for events in [EventsShown::Lines, EventsShown::Folded, EventsShown::Hidden] {
            let c = Ctx { events, ..ctx() };
            // Row by row from the top to the bottom and back: every row once.
            let total = window(&v, Anchor::Top { index: 0, offset: 0 }, 1000, &c).rows.len();
            let mut a = Anchor::Top { index: 0, offset: 0 };
            let mut seen = vec![text_of(&window(&v, a, 1, &c))];
            while a != Anchor::Bottom {
                a = scroll(&v, a, 1, 1, &c);
                seen.push(text_of(&window(&v, a, 1, &c)));
            }
            assert_eq!(seen.len(), total, "{events:?}: {seen:?}");
            let mut back = 0;
            while a != (Anchor::Top { index: 0, offset: 0 }) {
                a = scroll(&v, a, -1, 1, &c);
                back += 1;
                assert!(back <= total, "{events:?}: stuck at {a:?}");
            }
            assert_eq!(back, total - 1, "{events:?}");
        }
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human_bytes(900), "900 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(20 * 1024 * 1024), "20 MiB");
    }
}

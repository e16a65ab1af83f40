//! One timeline item as rows: the day separator and new-messages marker
//! before it, then its wrapped text with the time and (not folded) the
//! sender. Event lines are dim, one each, or a run of them on one line
//! (folded), or nothing (hidden); a send not acknowledged yet is the
//! user's line, dim, marked sending, or red with why it failed.

use crate::{Message, MessageKind};

use super::{Ctx, Line, LineStyle, Row, human_bytes, mentions};
use crate::tui::changes;
use crate::tui::timeline::{EventsShown, Item, Pending, SendState};
use crate::tui::wrap;

/// Messages from the same sender closer than this share one name.
const FOLD_MS: i64 = 5 * 60 * 1000;

/// Whether item `i` draws nothing: a hidden event line, one a folded run
/// shows on its first line, or an edit, deletion or reaction (shown on the
/// message it changes).
fn silent(items: &[Item], i: usize, ctx: &Ctx<'_>) -> bool {
    if items[i].msg().is_some_and(|m| changes::target(m).is_some()) {
        return true;
    }
    items[i].is_event()
        && match ctx.events {
            EventsShown::Hidden => true,
            EventsShown::Folded => i > 0 && items[i - 1].is_event(),
            EventsShown::Lines => false,
        }
}

/// The rows of item `i` (with the separators before it); none for an
/// item that draws nothing.
pub(crate) fn rows_of(items: &[Item], i: usize, ctx: &Ctx<'_>) -> Vec<Row> {
    let Some(item) = items.get(i) else { return Vec::new() };
    if silent(items, i, ctx) {
        return Vec::new();
    }
    // The day changes against what is shown before (hidden lines do not
    // count, or a day could lose its separator).
    let prev_shown = (0..i).rev().find(|&p| !silent(items, p, ctx)).map(|p| &items[p]);
    let mut rows = Vec::new();
    let day = ctx.zone.day_key(item.ts());
    let new_day = prev_shown.is_none_or(|p| ctx.zone.day_key(p.ts()) != day);
    if new_day {
        rows.push(Row::Day(ctx.zone.day_of(item.ts())));
    }
    // Folding and the new-messages marker look past edits and reactions
    // (drawn on the message they change), not past hidden event lines.
    let prev = (0..i)
        .rev()
        .find(|&p| items[p].msg().is_none_or(|m| changes::target(m).is_none()))
        .map(|p| &items[p]);
    let file = item.msg().and_then(|m| m.file.as_ref()).map(|f| f.id);
    let seq = item.msg().map(|m| m.seq);
    let selected = seq.is_some() && seq == ctx.selected;
    let mut quote = None;
    let mut under = None;
    let (text, style, sender, folded) = match item {
        Item::Msg(m) => {
            let is_new = m.seq > ctx.marker_seq && prev.is_none_or(|p| p.key().0 <= ctx.marker_seq);
            if is_new && ctx.marker_seq > 0 {
                rows.push(Row::NewMarker);
            }
            let folded = !new_day
                && !is_new
                && m.reply_to.is_none()
                && prev.and_then(Item::msg).is_some_and(|p| {
                    p.sender == m.sender
                        && p.kind == MessageKind::Text
                        && m.kind == MessageKind::Text
                        && m.ts - p.ts < FOLD_MS
                        && !p.body.starts_with("/me ")
                });
            quote = m.reply_to.as_deref().map(|q| {
                if q.deleted {
                    format!("↪ {}: (deleted)", q.sender)
                } else {
                    format!("↪ {}: {}", q.sender, q.excerpt.replace('\n', " "))
                }
            });
            under = changes::reactions_line(m);
            let (text, style) = body_of(m, ctx.me);
            (text, style, m.sender.as_str(), folded)
        }
        Item::Event(e) => {
            let text = if ctx.events == EventsShown::Folded {
                let run: Vec<String> = items[i..]
                    .iter()
                    .map_while(|it| match it {
                        Item::Event(e) => Some(e.what.text()),
                        _ => None,
                    })
                    .collect();
                run.join(" · ")
            } else {
                e.what.text()
            };
            (text, LineStyle::System, "", true)
        }
        Item::Pending(p) => {
            let (text, style) = pending_of(p, ctx);
            (text, style, ctx.me, false)
        }
    };
    let show_sender = !folded && style != LineStyle::System;
    let time_col = ctx.zone.time_width() + 1;
    let name_col = if style == LineStyle::System { 2 } else { ctx.name_col() + 1 };
    let indent = time_col + name_col;
    let text_width = ctx.width.saturating_sub(indent).max(8);
    let line = |n: usize, text: String, style: LineStyle| {
        Row::Line(Line {
            time: (n == 0).then(|| ctx.zone.time_of(item.ts())),
            sender: (n == 0 && show_sender).then(|| sender.to_owned()),
            time_col,
            indent,
            text,
            style,
            file,
            seq,
            selected,
        })
    };
    // A reply's first row quotes its parent, on one row.
    let mut n = 0;
    if let Some(q) = quote {
        rows.push(line(n, wrap::truncate(&q, text_width).into_owned(), LineStyle::Quote));
        n += 1;
    }
    for piece in wrap::wrap(&text, text_width) {
        rows.push(line(n, piece, style));
        n += 1;
    }
    if let Some(u) = under {
        for piece in wrap::wrap(&u, text_width) {
            rows.push(line(n, piece, LineStyle::Reactions));
            n += 1;
        }
    }
    rows
}

fn body_of(m: &Message, me: &str) -> (String, LineStyle) {
    if let Some(t) = &m.deleted {
        return (format!("message deleted by {}", t.by), LineStyle::Deleted);
    }
    let (text, style) = plain_body_of(m, me);
    match m.edited {
        Some(_) if style != LineStyle::System || m.body.starts_with("/me ") => {
            (format!("{text} (edited)"), style)
        }
        _ => (text, style),
    }
}

fn plain_body_of(m: &Message, me: &str) -> (String, LineStyle) {
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
            } else if m.mentions_user(me) || mentions(&m.body, me) {
                (m.body.clone(), LineStyle::Mention)
            } else {
                (m.body.clone(), LineStyle::Text)
            }
        }
    }
}

/// A send not acknowledged: the text and how it stands.
fn pending_of(p: &Pending, ctx: &Ctx<'_>) -> (String, LineStyle) {
    let body = match p.body.strip_prefix("/me ") {
        Some(action) => format!("* {} {action}", ctx.me),
        None => p.body.clone(),
    };
    match &p.state {
        SendState::Sending | SendState::Sent(_) => {
            (format!("{body}  ⋯ sending"), LineStyle::Pending)
        }
        SendState::Failed(why) => {
            (format!("{body}\n✗ not sent: {why} · {}", ctx.failed_hint), LineStyle::Failed)
        }
    }
}

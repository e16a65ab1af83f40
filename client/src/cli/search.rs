//! `qchat search`: full-text search over the rooms the user can read.

use anyhow::{Context, bail};
use qchat_client::{Client, SearchHit, SearchReq};

use super::print::sanitize;

/// Most hits one page asks for.
const PAGE: u32 = 100;

/// What `qchat search` was asked.
#[derive(Debug, Clone, Default)]
pub(super) struct Search {
    pub(super) query: String,
    pub(super) room: Option<String>,
    pub(super) from: Option<String>,
    pub(super) after: Option<String>,
    pub(super) before: Option<String>,
    pub(super) has_file: bool,
    pub(super) limit: u32,
    pub(super) json: bool,
}

/// Prints up to `limit` hits, newest first, one per line: `ROOM #SEQ
/// SENDER TIME: EXCERPT` (the words found in `[…]`), or with `--json` the
/// protocol's hit object.
pub(super) async fn search(client: &Client, s: Search) -> anyhow::Result<()> {
    let mut req = SearchReq {
        query: s.query,
        room: s.room,
        from: s.from,
        after: s.after.as_deref().map(parse_date).transpose()?,
        before: s.before.as_deref().map(parse_date).transpose()?,
        has_file: s.has_file,
        cursor: None,
        limit: None,
    };
    let mut left = s.limit;
    while left > 0 {
        req.limit = Some(left.min(PAGE));
        let page = client.search(req.clone()).await.context("searching")?;
        for hit in page.hits.iter().take(left as usize) {
            if s.json {
                println!("{}", serde_json::to_string(hit)?);
            } else {
                println!("{}", hit_line(hit));
            }
        }
        left = left.saturating_sub(u32::try_from(page.hits.len()).unwrap_or(u32::MAX));
        match page.cursor {
            Some(c) if page.more && !page.hits.is_empty() => req.cursor = Some(c),
            _ => break,
        }
    }
    Ok(())
}

/// A hit as a line, the words found in brackets, control characters
/// escaped.
pub(super) fn hit_line(hit: &SearchHit) -> String {
    let mut excerpt = String::new();
    let mut at = 0usize;
    for [start, end] in &hit.marks {
        let (start, end) = (*start as usize, *end as usize);
        match (hit.excerpt.get(at..start), hit.excerpt.get(start..end)) {
            (Some(before), Some(word)) => {
                excerpt.push_str(&sanitize(before));
                excerpt.push('[');
                excerpt.push_str(&sanitize(word));
                excerpt.push(']');
                at = end;
            }
            // Marks that do not fit the text: show it as it is.
            _ => break,
        }
    }
    excerpt.push_str(&sanitize(hit.excerpt.get(at..).unwrap_or_default()));
    let file = if hit.kind == qchat_client::MessageKind::File { " [file]" } else { "" };
    format!("{} #{} {} {}{file}: {excerpt}", hit.room, hit.seq, hit.sender, time(hit.ts))
}

/// A time (ms since the epoch) as `YYYY-MM-DDTHH:MM:SSZ`.
pub(super) fn time(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map_or_else(|_| ms.to_string(), |t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
}

/// A `--after`/`--before` value: `YYYY-MM-DD` (midnight UTC), an RFC 3339
/// time (`2026-12-05T09:30:00Z`), or milliseconds since the epoch.
pub(super) fn parse_date(text: &str) -> anyhow::Result<i64> {
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    if let Ok(t) = text.parse::<jiff::Timestamp>() {
        return Ok(t.as_millisecond());
    }
    if let Ok(d) = text.parse::<jiff::civil::Date>() {
        let t = d.to_zoned(jiff::tz::TimeZone::UTC).context("a date out of range")?;
        return Ok(t.timestamp().as_millisecond());
    }
    bail!("{text:?} is not a date: use YYYY-MM-DD, 2026-12-05T09:30:00Z or milliseconds")
}

#[cfg(test)]
mod tests {
    use super::*;
    use qchat_client::MessageKind;

    #[test]
    fn dates() {
        assert_eq!(parse_date("2026-12-05").expect("date"), 1_796_428_800_000);
        assert_eq!(parse_date("2026-12-05T00:00:01Z").expect("time"), 1_796_428_801_000);
        assert_eq!(parse_date("12").expect("ms"), 12);
        assert!(parse_date("yesterday").is_err());
    }

    #[test]
    fn hit_lines_bracket_the_words_found() {
        let hit = SearchHit {
            room: "general".into(),
            room_id: "+0123456789abcdef".into(),
            seq: 7,
            sender: "bob".into(),
            ts: 1_796_428_800_000,
            kind: MessageKind::Text,
            excerpt: "the deploy\u{1b} is Friday".into(),
            marks: vec![[4, 10], [15, 21]],
        };
        assert_eq!(
            hit_line(&hit),
            "general #7 bob 2026-12-05T00:00:00Z: the [deploy]\\u{1b} is [Friday]"
        );
    }
}

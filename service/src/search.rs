//! Full-text search, the parts that are not SQL: what a query means
//! ([`Query`]: its words, and the text each backend's full-text engine
//! takes for them), the page cursor ([`Cursor`]) and the excerpt of a hit
//! with its marks ([`excerpt`]). The index itself is the database's
//! (migration 0008: FTS5 on SQLite, a tsvector column on PostgreSQL); the
//! queries are in `db::search`, the request in `cmd::search`.

use qchat_protocol::{MAX_QUERY_LEN, MAX_QUERY_TERMS};

/// Characters of body an excerpt shows at most (ellipses aside).
pub(crate) const EXCERPT_CHARS: usize = 160;

/// Characters shown before the first word found, when the body is cut.
const EXCERPT_LEAD: usize = 40;

/// One word of a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Term {
    /// The word, lower-cased: letters and digits only.
    pub(crate) word: String,
    /// Written with a trailing `*`: matches every word it begins.
    pub(crate) prefix: bool,
}

/// Why a query cannot be searched for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum QueryError {
    /// Longer than [`MAX_QUERY_LEN`] bytes.
    #[error("a query is at most {MAX_QUERY_LEN} bytes")]
    TooLong,
    /// No letters or digits.
    #[error("a query needs at least one word")]
    Empty,
    /// More than [`MAX_QUERY_TERMS`] words.
    #[error("a query holds at most {MAX_QUERY_TERMS} words")]
    TooManyWords,
}

/// A parsed query: every word must occur in a message, in any order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Query {
    /// The words, in the order written, without repeats.
    pub(crate) terms: Vec<Term>,
}

impl Query {
    /// Reads a query: its words are the runs of letters and digits (what
    /// both engines' tokenizers take as words); a `*` right after a word
    /// makes it a prefix; everything else separates words, so no input
    /// reaches an engine's query syntax.
    ///
    /// # Errors
    /// A query too long, without words or with too many.
    pub(crate) fn parse(text: &str) -> Result<Self, QueryError> {
        if text.len() > MAX_QUERY_LEN {
            return Err(QueryError::TooLong);
        }
        let mut terms: Vec<Term> = Vec::new();
        let mut chars = text.char_indices().peekable();
        while let Some((start, c)) = chars.next() {
            if !c.is_alphanumeric() {
                continue;
            }
            let mut end = start + c.len_utf8();
            while let Some(&(i, c)) = chars.peek() {
                if !c.is_alphanumeric() {
                    break;
                }
                end = i + c.len_utf8();
                chars.next();
            }
            let prefix = chars.peek().is_some_and(|&(_, c)| c == '*');
            let term = Term { word: text[start..end].to_lowercase(), prefix };
            if !terms.contains(&term) {
                terms.push(term);
            }
        }
        if terms.is_empty() {
            return Err(QueryError::Empty);
        }
        if terms.len() > MAX_QUERY_TERMS {
            return Err(QueryError::TooManyWords);
        }
        Ok(Self { terms })
    }

    /// The FTS5 `MATCH` expression: each word quoted (a string of letters
    /// and digits holds no quote), `*` after a prefix; juxtaposed = AND.
    pub(crate) fn fts5(&self) -> String {
        let parts: Vec<String> = self
            .terms
            .iter()
            .map(|t| format!("\"{}\"{}", t.word, if t.prefix { "*" } else { "" }))
            .collect();
        parts.join(" ")
    }

    /// The PostgreSQL `to_tsquery('simple', …)` text: `word & word:*`.
    pub(crate) fn tsquery(&self) -> String {
        let parts: Vec<String> = self
            .terms
            .iter()
            .map(|t| format!("{}{}", t.word, if t.prefix { ":*" } else { "" }))
            .collect();
        parts.join(" & ")
    }

    /// Whether `word` (as written in a body) is one this query finds.
    fn finds(&self, word: &str) -> bool {
        let word = word.to_lowercase();
        self.terms.iter().any(|t| if t.prefix { word.starts_with(&t.word) } else { word == t.word })
    }
}

/// Where a page of hits starts: after the hit with this sort key (newest
/// first: commit time, then room, then seq, all descending). On the wire
/// it is opaque: `ts.room.seq` in decimal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cursor {
    /// Commit time of the last hit of the previous page.
    pub(crate) ts: i64,
    /// Its room's row id.
    pub(crate) room: i64,
    /// Its seq.
    pub(crate) seq: i64,
}

impl Cursor {
    /// Before every hit.
    pub(crate) const START: Self = Self { ts: i64::MAX, room: i64::MAX, seq: i64::MAX };

    /// The wire form.
    pub(crate) fn encode(self) -> String {
        format!("{}.{}.{}", self.ts, self.room, self.seq)
    }

    /// Reads the wire form; `None` when it is not one.
    pub(crate) fn decode(text: &str) -> Option<Self> {
        let mut parts = text.split('.');
        let ts = parts.next()?.parse().ok()?;
        let room = parts.next()?.parse().ok()?;
        let seq = parts.next()?.parse().ok()?;
        parts.next().is_none().then_some(Self { ts, room, seq })
    }
}

/// Up to [`EXCERPT_CHARS`] characters of `body` around the first word the
/// query finds (from the start when none is found, as when the engine
/// folded an accent this does not), `…` where it was cut, control
/// characters shown as spaces; with the `[start, end)` byte ranges of the
/// words found in it.
pub(crate) fn excerpt(body: &str, query: &Query) -> (String, Vec<[u32; 2]>) {
    let first = words(body).find(|&(s, e)| query.finds(&body[s..e])).map_or(0, |(s, _)| s);
    let total = body.chars().count();
    let (from, to) = if total <= EXCERPT_CHARS {
        (0, body.len())
    } else {
        // In characters: where the first word found starts, less the lead,
        // but never so late that the excerpt comes out short.
        let at = body[..first].chars().count();
        let start = at.saturating_sub(EXCERPT_LEAD).min(total - EXCERPT_CHARS);
        let byte = |n: usize| body.char_indices().nth(n).map_or(body.len(), |(i, _)| i);
        (byte(start), byte(start + EXCERPT_CHARS))
    };
    let mut text = String::with_capacity(to - from + 8);
    if from > 0 {
        text.push('…');
    }
    text.extend(body[from..to].chars().map(|c| if c.is_control() { ' ' } else { c }));
    if to < body.len() {
        text.push('…');
    }
    let marks = words(&text)
        .filter(|&(s, e)| query.finds(&text[s..e]))
        .map(|(s, e)| [u32::try_from(s).unwrap_or(u32::MAX), u32::try_from(e).unwrap_or(u32::MAX)])
        .collect();
    (text, marks)
}

/// The `[start, end)` byte ranges of the runs of letters and digits in
/// `text`.
fn words(text: &str) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut chars = text.char_indices().peekable();
    std::iter::from_fn(move || {
        loop {
            let (start, c) = chars.next()?;
            if !c.is_alphanumeric() {
                continue;
            }
            let mut end = start + c.len_utf8();
            while let Some(&(i, c)) = chars.peek() {
                if !c.is_alphanumeric() {
                    break;
                }
                end = i + c.len_utf8();
                chars.next();
            }
            return Some((start, end));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marked(text: &str, marks: &[[u32; 2]]) -> Vec<String> {
        marks.iter().map(|[s, e]| text[*s as usize..*e as usize].to_owned()).collect()
    }

    #[test]
    fn queries_are_words_and_never_syntax() {
        let q = Query::parse(r#"Deploy* "friday" OR NEAR(x) -café deploy*"#).expect("parses");
        let words: Vec<_> = q.terms.iter().map(|t| (t.word.as_str(), t.prefix)).collect();
        assert_eq!(
            words,
            [
                ("deploy", true),
                ("friday", false),
                ("or", false),
                ("near", false),
                ("x", false),
                ("café", false)
            ]
        );
        assert_eq!(q.fts5(), r#""deploy"* "friday" "or" "near" "x" "café""#);
        assert_eq!(q.tsquery(), "deploy:* & friday & or & near & x & café");
        assert_eq!(Query::parse(" *\"-()"), Err(QueryError::Empty));
        assert_eq!(Query::parse(&"a ".repeat(17)).map(|q| q.terms.len()), Ok(1));
        let many: String = (0..17).map(|i| format!("w{i} ")).collect();
        assert_eq!(Query::parse(&many), Err(QueryError::TooManyWords));
        assert_eq!(Query::parse(&"x".repeat(MAX_QUERY_LEN + 1)), Err(QueryError::TooLong));
    }

    #[test]
    fn excerpts_mark_the_words_found() {
        let q = Query::parse("deploy* friday").expect("parses");
        let (text, marks) = excerpt("We Deployed it on\nFriday, friday-ish.", &q);
        assert_eq!(text, "We Deployed it on Friday, friday-ish.");
        assert_eq!(marked(&text, &marks), ["Deployed", "Friday", "friday"]);

        let body = format!("{} the deploy happened {}", "x ".repeat(200), "é".repeat(300));
        let (text, marks) = excerpt(&body, &q);
        assert!(text.starts_with('…') && text.ends_with('…'), "{text}");
        assert_eq!(text.chars().count(), EXCERPT_CHARS + 2);
        assert_eq!(marked(&text, &marks), ["deploy"]);
        // The word sits after the lead, not at the very start.
        assert!(text.find("deploy").expect("shown") > EXCERPT_LEAD);

        // Near the end: the excerpt is still full length.
        let body = format!("{}deploy", "y ".repeat(300));
        let (text, marks) = excerpt(&body, &q);
        assert!(text.starts_with('…') && text.ends_with("deploy"));
        assert_eq!(text.chars().count(), EXCERPT_CHARS + 1);
        assert_eq!(marked(&text, &marks), ["deploy"]);
    }

    #[test]
    fn cursors_round_trip_and_reject_junk() {
        let c = Cursor { ts: 1_764_000_000_000, room: 3, seq: 42 };
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        for junk in ["", "1.2", "1.2.3.4", "a.b.c", "1.2.x"] {
            assert_eq!(Cursor::decode(junk), None, "{junk}");
        }
    }
}

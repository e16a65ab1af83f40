//! Wrapping text by display width, pure; the message view, the input line
//! and every padded column use it.
//!
//! Text is measured by grapheme cluster (so combining marks and emoji
//! sequences stay whole), with the width ratatui lays each cluster out with
//! ([`CellWidth`]: `unicode-width` over the whole cluster, so CJK and emoji
//! take two columns, and a ZWJ sequence, flag, keycap or VS16 sequence one
//! glyph of two). That is the rule terminals that draw grapheme clusters
//! use (kitty, WezTerm, foot, Ghostty, iTerm2, Windows Terminal), and being
//! ratatui's own it keeps every wrapped line exactly as wide on screen as
//! it was measured. Two cases are adjusted so the two agree:
//! - an emoji ZWJ sequence typed without its VS16 (`🏳‍🌈`, `❤‍🔥`: the
//!   "minimally qualified" forms) would be laid out as the sum of its parts
//!   (3 columns) although it draws as one emoji: it is shown in its fully
//!   qualified form (`🏳️‍🌈`, 2 columns);
//! - clusters that draw nothing (a lone ZWJ, VS16, zero-width space, soft
//!   hyphen or combining mark) are 0 columns and left out, as ratatui
//!   leaves them out;
//! - a regional indicator without its pair (`🇯` of a flag `🇯🇵` cut in
//!   two, or typed half) is drawn one column wide by some terminals and
//!   two by others, so whatever ratatui assumes leaves a stray half glyph
//!   in some of them: it is shown as its letter (`J`), as Unicode suggests
//!   for a region with no flag. A pair is one flag of two columns, or its
//!   letters (`[JP]`) where the terminal splits pairs (the config's
//!   `flags`; by default inside tmux, whose 3.3 loses the text after a
//!   flag).

use std::borrow::Cow;
use std::cell::Cell;

use tuirealm::ratatui::buffer::CellWidth as _;
use unicode_segmentation::UnicodeSegmentation;
use unicode_width::UnicodeWidthChar as _;

const ZWJ: char = '\u{200d}';
const VS16: char = '\u{fe0f}';

/// Display width of `s` in terminal columns.
pub(crate) fn width(s: &str) -> usize {
    s.graphemes(true).map(|g| cluster(g).1).sum()
}

/// The columns ratatui gives a cluster as it stands.
fn raw_width(g: &str) -> usize {
    if g.contains(char::is_control) { 0 } else { usize::from(g.cell_width()) }
}

/// The letter of a regional indicator symbol (`🇯` is `J`).
fn regional_letter(c: char) -> Option<char> {
    let off = u32::from(c).checked_sub(0x1F1E6).filter(|o| *o < 26)?;
    char::from_u32(u32::from(b'A') + off)
}

thread_local! {
    /// Whether flags are drawn as their letters (`[JP]`): set once at start
    /// from the config (`flags`), for terminals that break regional
    /// indicator pairs apart (tmux 3.3 does: it keeps the pair in one cell
    /// and loses the text after it, so ratatui's idea of the row and the
    /// screen part ways and stray halves stay behind). Per thread: the UI
    /// loop lays out and draws on the thread that set it (`run` does not
    /// await before the loop), and tests that draw in parallel each choose
    /// their own.
    static FLAGS_AS_LETTERS: Cell<bool> = const { Cell::new(false) };
}

/// Sets how flags are drawn on this thread, the UI's (see
/// [`FLAGS_AS_LETTERS`]).
pub(crate) fn set_flags_as_letters(letters: bool) {
    FLAGS_AS_LETTERS.with(|f| f.set(letters));
}

/// A cluster in the form it is drawn in, and its width.
fn cluster(g: &str) -> (Cow<'_, str>, usize) {
    cluster_with(g, FLAGS_AS_LETTERS.with(Cell::get))
}

/// [`cluster`], flags as letters or not.
fn cluster_with(g: &str, flag_letters: bool) -> (Cow<'_, str>, usize) {
    let mut chars = g.chars();
    match (chars.next(), chars.next(), chars.next()) {
        (Some(c), None, _) => {
            if let Some(letter) = regional_letter(c) {
                return (Cow::Owned(letter.to_string()), 1);
            }
        }
        (Some(a), Some(b), None) if flag_letters => {
            if let (Some(a), Some(b)) = (regional_letter(a), regional_letter(b)) {
                return (Cow::Owned(format!("[{a}{b}]")), 4);
            }
        }
        _ => {}
    }
    let w = raw_width(g);
    if w <= 2 || !g.contains(ZWJ) {
        return (Cow::Borrowed(g), w);
    }
    let q = qualify(g);
    let wq = raw_width(&q);
    if wq < w { (Cow::Owned(q), wq) } else { (Cow::Borrowed(g), w) }
}

/// Adds the VS16 an emoji ZWJ sequence's text-default parts lack (`🏳‍🌈`
/// becomes `🏳️‍🌈`).
fn qualify(g: &str) -> String {
    let chars: Vec<char> = g.chars().collect();
    let mut out = String::with_capacity(g.len() + 6);
    for (i, &c) in chars.iter().enumerate() {
        out.push(c);
        let next = chars.get(i + 1).copied();
        let joined = next == Some(ZWJ) || (i > 0 && chars[i - 1] == ZWJ);
        if joined && c != ZWJ && next != Some(VS16) && c.width() == Some(1) {
            out.push(VS16);
        }
    }
    out
}

/// Splits `text` into lines no wider than `width` columns. Breaks at the
/// last space when a line overflows, else inside the word; honours `\n`;
/// tabs become a space. An empty text is one empty line. `width` 0 is
/// treated as 1.
pub(crate) fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut out = Vec::new();
    for para in text.split('\n') {
        wrap_paragraph(para.trim_end_matches('\r'), width, &mut out);
    }
    out
}

fn wrap_paragraph(para: &str, width: usize, out: &mut Vec<String>) {
    let mut line = String::new();
    let mut line_w = 0;
    // Byte offset in `line` just after the last space, and the width before it.
    let mut last_space: Option<(usize, usize)> = None;
    for g in para.graphemes(true) {
        let (g, w) = if g == "\t" { (Cow::Borrowed(" "), 1) } else { cluster(g) };
        if w == 0 {
            continue;
        }
        let g = g.as_ref();
        if line_w + w > width && g == " " {
            // Overflowing on a space: break right here and drop it.
            out.push(line.trim_end().to_owned());
            line.clear();
            line_w = 0;
            last_space = None;
            continue;
        }
        if line_w + w > width {
            if let Some((at, w_before)) = last_space {
                let rest = line.split_off(at);
                out.push(line.trim_end().to_owned());
                line_w -= w_before;
                line = rest;
            }
            if line_w + w > width && !line.is_empty() {
                out.push(std::mem::take(&mut line));
                line_w = 0;
            }
            last_space = None;
        }
        line.push_str(g);
        line_w += w;
        if g == " " {
            last_space = Some((line.len(), line_w));
        }
    }
    out.push(line);
}

/// Bytes of the longest prefix of `s` at most `cols` columns wide, by
/// whole graphemes.
pub(crate) fn prefix_len(s: &str, cols: usize) -> usize {
    let mut w = 0;
    for (i, g) in s.grapheme_indices(true) {
        w += cluster(g).1;
        if w > cols {
            return i;
        }
    }
    s.len()
}

/// The longest prefix of `s` at most `max` columns wide, by whole
/// graphemes, in the form it is drawn in.
pub(crate) fn truncate(s: &str, max: usize) -> Cow<'_, str> {
    let mut w = 0;
    let mut out: Option<String> = None;
    for (i, g) in s.grapheme_indices(true) {
        let (shown, gw) = cluster(g);
        w += gw;
        if w > max {
            return out.map_or(Cow::Borrowed(&s[..i]), Cow::Owned);
        }
        match (&mut out, shown) {
            (Some(o), shown) => o.push_str(&shown),
            (None, Cow::Owned(q)) => out = Some(format!("{}{q}", &s[..i])),
            (None, Cow::Borrowed(_)) => {}
        }
    }
    out.map_or(Cow::Borrowed(s), Cow::Owned)
}

/// `s` padded with spaces (or cut) to exactly `cols` columns.
pub(crate) fn pad(s: &str, cols: usize) -> String {
    let cut = truncate(s, cols);
    let mut out = cut.to_string();
    out.extend(std::iter::repeat_n(' ', cols.saturating_sub(width(&cut))));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn widths(lines: &[String]) -> Vec<usize> {
        lines.iter().map(|l| width(l)).collect()
    }

    #[test]
    fn ascii_breaks_at_spaces() {
        assert_eq!(wrap("hello big world", 9), ["hello big", "world"]);
        assert_eq!(wrap("hello world", 5), ["hello", "world"]);
        assert_eq!(wrap("", 5), [""]);
    }

    #[test]
    fn long_words_break_inside() {
        assert_eq!(wrap("abcdefghij", 4), ["abcd", "efgh", "ij"]);
    }

    #[test]
    fn newlines_are_kept() {
        assert_eq!(wrap("a\nb\n\nc", 10), ["a", "b", "", "c"]);
    }

    #[test]
    fn cjk_counts_two_columns() {
        let lines = wrap("日本語のテキストです", 7);
        assert!(widths(&lines).iter().all(|&w| w <= 7), "{lines:?}");
        assert_eq!(lines.concat(), "日本語のテキストです");
        assert_eq!(lines[0], "日本語");
        assert_eq!(width("日本語"), 6);
    }

    #[test]
    fn emoji_and_combining_marks_stay_whole() {
        // Family emoji (ZWJ sequence) and e + combining acute accent.
        let family = "👨\u{200d}👩\u{200d}👧";
        assert_eq!(width(family), 2);
        assert_eq!(width("e\u{301}"), 1);
        let text = format!("{family}{family}{family}e\u{301}e\u{301}");
        let lines = wrap(&text, 3);
        assert_eq!(
            lines,
            [
                family.to_owned(),
                family.to_owned(),
                format!("{family}e\u{301}"),
                "e\u{301}".to_owned()
            ]
        );
    }

    /// Emoji ZWJ sequences, fully and minimally qualified.
    const FAMILY: &str = "👩\u{200d}👩\u{200d}👧";
    const RAINBOW: &str = "🏳\u{fe0f}\u{200d}🌈";
    const RAINBOW_MIN: &str = "🏳\u{200d}🌈";
    const HEART_FIRE_MIN: &str = "❤\u{200d}🔥";

    #[test]
    fn zwj_sequences_are_one_two_column_glyph() {
        for s in [
            FAMILY,
            RAINBOW,
            RAINBOW_MIN,
            HEART_FIRE_MIN,
            "🧑🏽\u{200d}💻",
            "🇩🇪",
            "1\u{fe0f}\u{20e3}",
        ] {
            assert_eq!(width(s), 2, "{s:?}");
        }
        // Shown fully qualified, so ratatui lays it out in two columns too.
        assert_eq!(wrap(RAINBOW_MIN, 10), [RAINBOW]);
        assert_eq!(wrap(HEART_FIRE_MIN, 10), ["❤\u{fe0f}\u{200d}🔥"]);
        assert_eq!(pad(RAINBOW_MIN, 3), format!("{RAINBOW} "));
        assert_eq!(truncate(&format!("a{RAINBOW_MIN}b"), 3), format!("a{RAINBOW}"));
        assert_eq!(prefix_len(&format!("a{RAINBOW_MIN}b"), 3), 1 + RAINBOW_MIN.len());
    }

    #[test]
    fn clusters_that_draw_nothing_take_no_column() {
        assert_eq!(width("a\u{200b}b"), 2, "zero-width space");
        assert_eq!(width("\u{200d}"), 0, "a lone ZWJ");
        assert_eq!(width("\u{301}x"), 1, "a lone combining mark");
        assert_eq!(wrap("a\u{200b}b", 5), ["ab"]);
    }

    /// The invariant the message view relies on: every wrapped line is as
    /// wide when ratatui draws it as it was measured, and fits.
    #[test]
    fn wrapped_lines_are_as_wide_on_screen_as_measured() {
        use tuirealm::ratatui::buffer::Buffer;
        use tuirealm::ratatui::layout::Rect;
        use tuirealm::ratatui::style::Style;
        let parts = [
            FAMILY,
            RAINBOW,
            RAINBOW_MIN,
            HEART_FIRE_MIN,
            "🧑🏽\u{200d}💻",
            "🇩🇪",
            "e\u{301}",
            "日本",
            "x",
            " ",
            "\u{200b}",
            "👍🏽",
            "❤\u{fe0f}",
            "한국어",
            "ﾊ\u{ff9e}",
        ];
        // Every part next to every other, so each lands on a line end somewhere.
        let mut text = String::new();
        for a in parts {
            for b in parts {
                text.push_str(a);
                text.push_str(b);
            }
        }
        for limit in 3..=13 {
            for line in wrap(&text, limit) {
                let mut buf = Buffer::empty(Rect::new(0, 0, 40, 1));
                let (x, _) = buf.set_stringn(0, 0, &line, 40, Style::default());
                assert_eq!(usize::from(x), width(&line), "{line:?}");
                assert!(width(&line) <= limit, "{line:?} wider than {limit}");
            }
        }
    }

    #[test]
    fn flags_are_two_columns_and_a_lone_half_is_its_letter() {
        assert_eq!(width("🇯🇵"), 2);
        assert_eq!(wrap("🇯🇵🇫🇷", 80), ["🇯🇵🇫🇷"]);
        // An odd one out (three indicators: a flag and a half).
        assert_eq!(width("🇯🇵🇫"), 3);
        assert_eq!(wrap("a🇯🇵🇫 b", 80), ["a🇯🇵F b"]);
        assert_eq!(truncate("🇯x", 5), "Jx");
        assert_eq!(pad("🇯", 3), "J  ");
    }

    #[test]
    fn flags_can_be_drawn_as_their_letters() {
        assert_eq!(cluster_with("🇯🇵", true), (Cow::Owned("[JP]".to_owned()), 4));
        assert_eq!(cluster_with("🇯🇵", false), (Cow::Borrowed("🇯🇵"), 2));
        assert_eq!(cluster_with("🇯", true), (Cow::Owned("J".to_owned()), 1));
        assert_eq!(cluster_with("é", true), (Cow::Borrowed("é"), 1), "not an indicator");
    }

    #[test]
    fn truncate_and_pad_by_columns() {
        assert_eq!(truncate("日本語", 5), "日本");
        assert_eq!(pad("日本語", 5), "日本 ");
        assert_eq!(pad("ab", 4), "ab  ");
    }
}

//! Wrapping text by display width: grapheme clusters (so combining marks
//! and emoji sequences stay whole) measured with `unicode-width` (so CJK and
//! emoji take two columns). Pure; the message view and the input line use it.

use unicode_segmentation::UnicodeSegmentation;
use unicode_width::UnicodeWidthStr;

/// Display width of `s` in terminal columns.
pub(crate) fn width(s: &str) -> usize {
    s.graphemes(true).map(grapheme_width).sum()
}

/// Width of one grapheme cluster: at least 1 for anything visible except
/// control characters, at most 2 (a cluster occupies one or two cells).
fn grapheme_width(g: &str) -> usize {
    if g.chars().all(char::is_control) {
        return 0;
    }
    UnicodeWidthStr::width(g).clamp(1, 2)
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
        let g = if g == "\t" { " " } else { g };
        let w = grapheme_width(g);
        if w == 0 {
            continue;
        }
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

/// The longest prefix of `s` at most `max` columns wide, by whole graphemes.
pub(crate) fn truncate(s: &str, max: usize) -> &str {
    let mut w = 0;
    for (i, g) in s.grapheme_indices(true) {
        w += grapheme_width(g);
        if w > max {
            return &s[..i];
        }
    }
    s
}

/// `s` padded with spaces (or cut) to exactly `cols` columns.
pub(crate) fn pad(s: &str, cols: usize) -> String {
    let cut = truncate(s, cols);
    let mut out = cut.to_owned();
    out.extend(std::iter::repeat_n(' ', cols.saturating_sub(width(cut))));
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

    #[test]
    fn truncate_and_pad_by_columns() {
        assert_eq!(truncate("日本語", 5), "日本");
        assert_eq!(pad("日本語", 5), "日本 ");
        assert_eq!(pad("ab", 4), "ab  ");
    }
}

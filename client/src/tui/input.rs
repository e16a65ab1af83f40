//! The input line's text and editing, pure: a cursor on a grapheme
//! boundary, word and line movement, the readline kills (Ctrl-W, Ctrl-U,
//! Ctrl-K, Alt-D) into a kill buffer that Ctrl-Y yanks back, and the
//! history of sent lines that Up and Down recall (weechat's way: Up recalls
//! when the line is empty or shows a recalled line, else it scrolls).

use unicode_segmentation::UnicodeSegmentation;

/// How many sent lines the history keeps.
const HISTORY: usize = 200;

/// The input line: text and a cursor on a grapheme boundary (byte index).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct InputLine {
    /// Text (may hold newlines).
    pub(crate) text: String,
    /// Byte index of the cursor.
    pub(crate) cursor: usize,
    /// What the last kill removed, for Ctrl-Y.
    pub(crate) killed: String,
    /// Lines sent, oldest first, without consecutive repeats.
    pub(crate) history: Vec<String>,
    /// The history entry shown, while Up/Down browse it.
    pub(crate) recall: Option<usize>,
}

/// Whether `g` (a grapheme) separates words.
fn is_space(g: &str) -> bool {
    g.chars().all(char::is_whitespace)
}

impl InputLine {
    /// Inserts at the cursor.
    pub(crate) fn insert(&mut self, c: char) {
        self.recall = None;
        self.text.insert(self.cursor, c);
        self.cursor += c.len_utf8();
    }

    /// Inserts a string at the cursor (a paste, a yank).
    pub(crate) fn insert_str(&mut self, s: &str) {
        self.recall = None;
        self.text.insert_str(self.cursor, s);
        self.cursor += s.len();
    }

    /// Deletes the grapheme left of the cursor.
    pub(crate) fn backspace(&mut self) {
        if let Some((i, _)) = self.text[..self.cursor].grapheme_indices(true).next_back() {
            self.recall = None;
            self.text.replace_range(i..self.cursor, "");
            self.cursor = i;
        }
    }

    /// Deletes the grapheme right of the cursor.
    pub(crate) fn delete(&mut self) {
        if let Some(g) = self.text[self.cursor..].graphemes(true).next() {
            self.recall = None;
            let end = self.cursor + g.len();
            self.text.replace_range(self.cursor..end, "");
        }
    }

    /// One grapheme left.
    pub(crate) fn left(&mut self) {
        if let Some((i, _)) = self.text[..self.cursor].grapheme_indices(true).next_back() {
            self.cursor = i;
        }
    }

    /// One grapheme right.
    pub(crate) fn right(&mut self) {
        if let Some(g) = self.text[self.cursor..].graphemes(true).next() {
            self.cursor += g.len();
        }
    }

    /// Where the word left of the cursor starts: back over spaces, then
    /// over the word (Alt-B, Ctrl-W).
    fn word_start(&self) -> usize {
        let mut at = self.cursor;
        let mut in_word = false;
        for (i, g) in self.text[..self.cursor].grapheme_indices(true).rev() {
            if is_space(g) {
                if in_word {
                    break;
                }
            } else {
                in_word = true;
            }
            at = i;
        }
        at
    }

    /// Where the word right of the cursor ends: over spaces, then over the
    /// word (Alt-F, Alt-D).
    fn word_end(&self) -> usize {
        let mut at = self.cursor;
        let mut in_word = false;
        for (i, g) in self.text[self.cursor..].grapheme_indices(true) {
            if is_space(g) {
                if in_word {
                    break;
                }
            } else {
                in_word = true;
            }
            at = self.cursor + i + g.len();
        }
        at
    }

    /// Where the cursor's line starts (after the previous newline).
    fn line_start(&self) -> usize {
        self.text[..self.cursor].rfind('\n').map_or(0, |i| i + 1)
    }

    /// Where the cursor's line ends (at the next newline).
    fn line_end(&self) -> usize {
        self.text[self.cursor..].find('\n').map_or(self.text.len(), |i| self.cursor + i)
    }

    /// To the start of the previous word.
    pub(crate) fn word_left(&mut self) {
        self.cursor = self.word_start();
    }

    /// To the end of the next word.
    pub(crate) fn word_right(&mut self) {
        self.cursor = self.word_end();
    }

    /// To the start of the line (Ctrl-A; of the cursor's line when the
    /// text has several).
    pub(crate) fn home(&mut self) {
        self.cursor = self.line_start();
    }

    /// To the end of the line (Ctrl-E).
    pub(crate) fn end(&mut self) {
        self.cursor = self.line_end();
    }

    /// Removes `from..to` into the kill buffer, cursor at `from`.
    fn kill(&mut self, from: usize, to: usize) {
        if from == to {
            return;
        }
        self.recall = None;
        self.killed = self.text[from..to].to_owned();
        self.text.replace_range(from..to, "");
        self.cursor = from;
    }

    /// Ctrl-W: kills the word left of the cursor (and the spaces after it).
    pub(crate) fn kill_word_left(&mut self) {
        self.kill(self.word_start(), self.cursor);
    }

    /// Alt-D: kills to the end of the next word.
    pub(crate) fn kill_word_right(&mut self) {
        self.kill(self.cursor, self.word_end());
    }

    /// Ctrl-U: kills from the start of the line to the cursor.
    pub(crate) fn kill_to_start(&mut self) {
        self.kill(self.line_start(), self.cursor);
    }

    /// Ctrl-K: kills from the cursor to the end of the line; at the end of
    /// a line, the newline (joining the next line).
    pub(crate) fn kill_to_end(&mut self) {
        let end = self.line_end();
        if end == self.cursor && end < self.text.len() {
            self.kill(self.cursor, end + 1);
        } else {
            self.kill(self.cursor, end);
        }
    }

    /// Ctrl-Y: inserts what the last kill removed.
    pub(crate) fn yank(&mut self) {
        let killed = self.killed.clone();
        self.insert_str(&killed);
    }

    /// Replaces the text, cursor at the end.
    pub(crate) fn set(&mut self, text: String) {
        self.recall = None;
        self.cursor = text.len();
        self.text = text;
    }

    /// Takes the text out.
    pub(crate) fn take(&mut self) -> String {
        self.recall = None;
        self.cursor = 0;
        std::mem::take(&mut self.text)
    }

    /// Remembers a sent line for Up.
    pub(crate) fn remember(&mut self, line: &str) {
        if line.trim().is_empty() || self.history.last().is_some_and(|l| l == line) {
            return;
        }
        if self.history.len() == HISTORY {
            self.history.remove(0);
        }
        self.history.push(line.to_owned());
    }

    /// Whether Up and Down browse the history now (rather than scroll):
    /// the line is empty or shows a recalled line unchanged, and there is
    /// a history.
    pub(crate) fn browsing(&self) -> bool {
        !self.history.is_empty() && (self.text.is_empty() || self.recall.is_some())
    }

    /// Up: the previous sent line (the newest first). Stays on the oldest.
    pub(crate) fn recall_older(&mut self) {
        let i = match self.recall {
            Some(i) => i.saturating_sub(1),
            None => match self.history.len().checked_sub(1) {
                Some(i) => i,
                None => return,
            },
        };
        self.show_recalled(i);
    }

    /// Down: the next newer sent line; past the newest, an empty line.
    pub(crate) fn recall_newer(&mut self) {
        match self.recall {
            Some(i) if i + 1 < self.history.len() => self.show_recalled(i + 1),
            Some(_) => {
                self.take();
            }
            None => {}
        }
    }

    fn show_recalled(&mut self, i: usize) {
        let Some(line) = self.history.get(i).cloned() else { return };
        self.set(line);
        self.recall = Some(i);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A line with the cursor where `|` is.
    fn at(s: &str) -> InputLine {
        let cursor = s.find('|').expect("a cursor mark");
        InputLine { text: s.replacen('|', "", 1), cursor, ..InputLine::default() }
    }

    /// The line with `|` at the cursor.
    fn shown(l: &InputLine) -> String {
        let mut s = l.text.clone();
        s.insert(l.cursor, '|');
        s
    }

    #[test]
    fn word_movement_skips_spaces_then_the_word() {
        let mut l = at("hello big  world|");
        l.word_left();
        assert_eq!(shown(&l), "hello big  |world");
        l.word_left();
        assert_eq!(shown(&l), "hello |big  world");
        l.word_left();
        l.word_left();
        assert_eq!(shown(&l), "|hello big  world", "stays at the start");
        l.word_right();
        assert_eq!(shown(&l), "hello| big  world");
        l.word_right();
        assert_eq!(shown(&l), "hello big|  world");
        l.word_right();
        l.word_right();
        assert_eq!(shown(&l), "hello big  world|", "stays at the end");
    }

    #[test]
    fn words_of_wide_and_combined_graphemes_move_whole() {
        let mut l = at("日本語 café 👨\u{200d}👩\u{200d}👧|");
        l.word_left();
        assert_eq!(shown(&l), "日本語 café |👨\u{200d}👩\u{200d}👧");
        l.kill_word_left();
        assert_eq!(shown(&l), "日本語 |👨\u{200d}👩\u{200d}👧");
        assert_eq!(l.killed, "café ");
    }

    #[test]
    fn ctrl_w_kills_the_word_left_and_ctrl_y_yanks_it() {
        let mut l = at("send the report|");
        l.kill_word_left();
        assert_eq!(shown(&l), "send the |");
        l.kill_word_left();
        assert_eq!(shown(&l), "send |");
        assert_eq!(l.killed, "the ");
        l.end();
        l.yank();
        assert_eq!(shown(&l), "send the |");
        let mut start = at("|abc");
        start.kill_word_left();
        assert_eq!(shown(&start), "|abc", "nothing left of the cursor");
    }

    #[test]
    fn alt_d_kills_the_word_right() {
        let mut l = at("one| two three");
        l.kill_word_right();
        assert_eq!(shown(&l), "one| three");
        assert_eq!(l.killed, " two");
    }

    #[test]
    fn ctrl_a_and_ctrl_e_work_on_the_cursors_line() {
        let mut l = at("first line\nsec|ond\nthird");
        l.home();
        assert_eq!(shown(&l), "first line\n|second\nthird");
        l.end();
        assert_eq!(shown(&l), "first line\nsecond|\nthird");
        let mut one = at("ab|cd");
        one.home();
        assert_eq!(one.cursor, 0);
        one.end();
        assert_eq!(one.cursor, 4);
    }

    #[test]
    fn ctrl_u_and_ctrl_k_kill_to_the_line_ends() {
        let mut l = at("hello |world");
        l.kill_to_end();
        assert_eq!(shown(&l), "hello |");
        assert_eq!(l.killed, "world");
        l.kill_to_start();
        assert_eq!(shown(&l), "|");
        assert_eq!(l.killed, "hello ");
        let mut multi = at("a|b\ncd");
        multi.kill_to_end();
        assert_eq!(shown(&multi), "a|\ncd");
        multi.kill_to_end();
        assert_eq!(shown(&multi), "a|cd", "at the end of a line it joins the next");
        let mut second = at("ab\ncd|");
        second.kill_to_start();
        assert_eq!(shown(&second), "ab\n|", "only the cursor's line");
    }

    #[test]
    fn backspace_and_delete_take_whole_graphemes() {
        let mut l = at("a🇯🇵|b");
        l.backspace();
        assert_eq!(shown(&l), "a|b", "a flag is one grapheme");
        let mut d = at("|é\u{301}x");
        d.delete();
        assert_eq!(shown(&d), "|x");
    }

    #[test]
    fn up_recalls_sent_lines_when_empty_and_down_comes_back() {
        let mut l = InputLine::default();
        assert!(!l.browsing(), "no history: Up scrolls");
        for line in ["first", "second", "second", "  "] {
            l.remember(line);
        }
        assert_eq!(l.history, ["first", "second"], "no repeats, no blanks");
        assert!(l.browsing());
        l.recall_older();
        assert_eq!(shown(&l), "second|");
        l.recall_older();
        assert_eq!(l.text, "first");
        l.recall_older();
        assert_eq!(l.text, "first", "stays on the oldest");
        l.recall_newer();
        assert_eq!(l.text, "second");
        l.recall_newer();
        assert_eq!(l.text, "", "past the newest: an empty line");
        assert!(l.recall.is_none());
        // Editing a recalled line ends browsing: Up scrolls again.
        l.recall_older();
        l.insert('!');
        assert_eq!(l.text, "second!");
        assert!(!l.browsing());
        // Typed text is not replaced by Up.
        let mut typed = InputLine::default();
        typed.remember("old");
        typed.insert('x');
        assert!(!typed.browsing());
    }

    #[test]
    fn the_history_is_bounded() {
        let mut l = InputLine::default();
        for i in 0..(HISTORY + 10) {
            l.remember(&format!("line {i}"));
        }
        assert_eq!(l.history.len(), HISTORY);
        assert_eq!(l.history[0], "line 10");
    }
}

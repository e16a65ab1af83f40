//! What acting on a selected message needs besides the room, pure: the
//! line being written as an edit or a reply ([`Compose`]), the emoji
//! picker ([`Picker`], searching shortcodes as one types), the question
//! before a deletion ([`Confirm`]) and the thread view ([`ThreadView`]).

use crate::Message;

use super::layout::Anchor;
use super::timeline::Item;

/// What the input line is writing besides a plain message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Compose {
    /// A new text for one's message `seq` of `room`; Enter saves it.
    Edit {
        /// Room.
        room: String,
        /// The message.
        seq: u64,
    },
    /// A reply to message `seq` of `room`.
    Reply {
        /// Room.
        room: String,
        /// The message.
        seq: u64,
        /// Its sender.
        sender: String,
        /// The start of its text.
        excerpt: String,
    },
}

/// A deletion waiting for the user's yes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Confirm {
    /// Room.
    pub(crate) room: String,
    /// The message.
    pub(crate) seq: u64,
    /// Its sender.
    pub(crate) sender: String,
}

/// Emoji the picker offers before anything is typed.
const QUICK: [&str; 8] = ["+1", "heart", "joy", "tada", "open_mouth", "cry", "pray", "eyes"];

/// At most this many emoji are listed.
pub(crate) const PICKS: usize = 8;

/// The emoji picker over the selected message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Picker {
    /// Room.
    pub(crate) room: String,
    /// The message reacted to.
    pub(crate) seq: u64,
    /// What was typed (a leading `:` is ignored).
    pub(crate) query: String,
    /// `(emoji, shortcode)` matching it, best first.
    pub(crate) matches: Vec<(String, String)>,
    /// The one Enter picks.
    pub(crate) selected: usize,
}

impl Picker {
    /// A picker for message `seq` of `room`, showing the usual emoji.
    pub(crate) fn new(room: String, seq: u64) -> Self {
        let mut p = Self { room, seq, query: String::new(), matches: Vec::new(), selected: 0 };
        p.search();
        p
    }

    /// Types `c` into the search.
    pub(crate) fn push(&mut self, c: char) {
        self.query.push(c);
        self.search();
    }

    /// Deletes the last character of the search.
    pub(crate) fn pop(&mut self) {
        self.query.pop();
        self.search();
    }

    /// Moves the choice by `delta`, within the matches.
    pub(crate) fn step(&mut self, delta: isize) {
        let last = self.matches.len().saturating_sub(1);
        self.selected = self.selected.saturating_add_signed(delta).min(last);
    }

    /// The emoji Enter gives: the one chosen, or what was typed when it
    /// is no shortcode (an emoji pasted, or a word such as `+1`).
    pub(crate) fn choice(&self) -> Option<String> {
        if let Some((e, _)) = self.matches.get(self.selected) {
            return Some(e.clone());
        }
        let typed = self.query.trim();
        (!typed.is_empty() && !typed.contains(char::is_whitespace)).then(|| typed.to_owned())
    }

    fn search(&mut self) {
        self.matches = search(&self.query);
        self.selected = 0;
    }
}

/// Emoji whose shortcode matches `query` (`:thu`, `tada`): the exact one,
/// then those starting with it, then those containing it; at most
/// [`PICKS`]. An empty query gives the usual ones.
pub(crate) fn search(query: &str) -> Vec<(String, String)> {
    let q = query.trim().trim_start_matches(':').trim_end_matches(':').to_lowercase();
    if q.is_empty() {
        return QUICK
            .iter()
            .filter_map(|c| {
                emojis::get_by_shortcode(c).map(|e| (e.as_str().to_owned(), (*c).to_owned()))
            })
            .collect();
    }
    let mut ranked: Vec<(u8, usize, String, String)> = Vec::new();
    for (n, e) in emojis::iter().enumerate() {
        // The best-ranked shortcode of each emoji.
        let best = e
            .shortcodes()
            .filter_map(|code| {
                let rank = if code == q {
                    0
                } else if code.starts_with(&q) {
                    1
                } else if code.contains(&q) && e.group() != emojis::Group::Flags {
                    // (Country names hold many words' middles.)
                    2
                } else {
                    return None;
                };
                Some((rank, code))
            })
            .min_by_key(|(rank, _)| *rank);
        if let Some((rank, code)) = best {
            ranked.push((rank, n, e.as_str().to_owned(), code.to_owned()));
        }
    }
    ranked.sort_by_key(|(rank, n, _, _)| (*rank, *n));
    ranked.into_iter().take(PICKS).map(|(_, _, e, code)| (e, code)).collect()
}

/// The thread view: a message and its replies, in place of the room's
/// messages until Esc.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ThreadView {
    /// Room.
    pub(crate) room: String,
    /// The message replied to.
    pub(crate) root: u64,
    /// It, then the replies loaded, oldest first.
    pub(crate) items: Vec<Item>,
    /// More replies on the server.
    pub(crate) more: bool,
    /// A page is being fetched.
    pub(crate) loading: bool,
    /// Where the view is.
    pub(crate) anchor: Anchor,
    /// The message selected in the thread (its seq).
    pub(crate) selected: Option<u64>,
}

impl ThreadView {
    /// The view of `root` with its first page of `replies`.
    pub(crate) fn new(room: String, root: Message, replies: Vec<Message>, more: bool) -> Self {
        let seq = root.seq;
        let mut v = Self {
            room,
            root: seq,
            items: vec![Item::Msg(root)],
            more,
            loading: false,
            anchor: Anchor::Top { index: 0, offset: 0 },
            selected: None,
        };
        v.add(replies);
        v
    }

    /// Adds replies (a page, or one arriving live), once each, in order;
    /// how many were new.
    pub(crate) fn add(&mut self, replies: Vec<Message>) -> usize {
        let mut added = 0;
        for mut m in replies {
            // The thread's message is on top: no quote of it each time.
            if m.reply_to.as_ref().is_some_and(|q| q.seq == self.root) {
                m.reply_to = None;
            }
            let key = (m.seq, 0);
            if let Err(at) = self.items.binary_search_by_key(&key, Item::key) {
                self.items.insert(at, Item::Msg(m));
                added += 1;
            }
        }
        added
    }

    /// The last seq loaded (where the next page starts).
    pub(crate) fn last(&self) -> u64 {
        self.items.last().map_or(self.root, |it| it.key().0)
    }

    /// The loaded message `seq`.
    pub(crate) fn message(&self, seq: u64) -> Option<&Message> {
        let at = self.items.binary_search_by_key(&(seq, 0), Item::key).ok()?;
        self.items[at].msg()
    }

    /// Moves the selection a message up (`back`) or down; from none, up
    /// selects the newest. Down past the newest selects none.
    pub(crate) fn select_step(&mut self, back: bool) {
        let seqs: Vec<u64> = self.items.iter().filter_map(|it| it.msg().map(|m| m.seq)).collect();
        self.selected = match (self.selected, back) {
            (None, true) => seqs.last().copied(),
            (None, false) => None,
            (Some(s), true) => seqs.iter().rev().find(|x| **x < s).copied().or(Some(s)),
            (Some(s), false) => seqs.iter().find(|x| **x > s).copied(),
        };
    }

    /// The messages, mutably (to apply edits and reactions).
    pub(crate) fn messages_mut(&mut self) -> impl Iterator<Item = &mut Message> {
        self.items.iter_mut().filter_map(|it| match it {
            Item::Msg(m) => Some(m),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_picker_finds_shortcodes_as_one_types() {
        let first = |q: &str| search(q).first().map(|(e, _)| e.clone());
        assert_eq!(first(":thu").as_deref(), Some("👍"));
        assert_eq!(first("tada").as_deref(), Some("🎉"));
        assert_eq!(first(":rocket:").as_deref(), Some("🚀"));
        assert!(search("zzzzqq").is_empty());
        assert_eq!(search("").len(), QUICK.len());
        assert!(search("a").len() <= PICKS);
        let mut p = Picker::new("general".into(), 3);
        assert_eq!(p.choice().as_deref(), Some("👍"));
        for c in ":heart".chars() {
            p.push(c);
        }
        assert_eq!(p.choice().as_deref(), Some("❤️"));
        p.step(1);
        assert_eq!(p.selected, 1);
        p.step(-5);
        assert_eq!(p.selected, 0);
        p.query = "+1".into();
        p.matches.clear();
        assert_eq!(p.choice().as_deref(), Some("+1"), "a word that is no shortcode");
    }
}

//! One module per scenario; each exposes `Args` (its flags) and
//! `run(Args) -> Report`, and measures its own baseline in the same run.

pub(crate) mod durable;
pub(crate) mod fanout;
pub(crate) mod files;
pub(crate) mod history;
pub(crate) mod idle;
pub(crate) mod login_storm;
pub(crate) mod search;
pub(crate) mod tui;

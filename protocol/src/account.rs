//! The caller's own account: display name (`profile`, `profile.set`),
//! password (`passwd`) and sessions (`sessions`, `session.revoke`).

use serde::{Deserialize, Serialize};

/// Longest display name, in bytes of UTF-8.
pub const MAX_DISPLAY_NAME_LEN: usize = 64;

/// Length of a session id (`SessionInfo::id`): 16 lower-case hex digits.
pub const SESSION_ID_LEN: usize = 16;

/// Checks a display name: 1..=[`MAX_DISPLAY_NAME_LEN`] bytes, no control
/// characters, not only white space, no white space at either end.
pub fn valid_display_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_DISPLAY_NAME_LEN
        && !name.chars().any(char::is_control)
        && name.trim() == name
}

/// Checks a session id: [`SESSION_ID_LEN`] lower-case hex digits.
pub fn valid_session_id(id: &str) -> bool {
    id.len() == SESSION_ID_LEN && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// `profile` fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileReq {
    /// Whose profile: a user of the caller's tenant; absent = the caller's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// `profile` reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileOk {
    /// User name.
    pub user: String,
    /// The name the user chose to be shown by; absent when none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

/// `profile.set` fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileSetReq {
    /// The new display name ([`valid_display_name`]); absent or null clears
    /// it.
    #[serde(default)]
    pub display_name: Option<String>,
}

/// `passwd` fields.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswdReq {
    /// The current password.
    pub old_password: String,
    /// The new one (8..=1024 bytes).
    pub new_password: String,
}

impl std::fmt::Debug for PasswdReq {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswdReq { <redacted> }")
    }
}

/// `passwd` reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswdOk {
    /// How many other sessions of the user were revoked.
    pub revoked: u64,
}

/// `sessions` fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionsReq {
    /// Only sessions whose id sorts after this one (the last id of the
    /// previous page); absent = from the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

/// One of the caller's sessions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// Names the session in `session.revoke`: 16 lower-case hex digits.
    pub id: String,
    /// The client name it logged in with (`client` of `login`, `register`,
    /// `resume` or an earlier `hello`); empty when none was given.
    pub client: String,
    /// The IP address it last logged in or resumed from.
    pub address: String,
    /// When it was created, ms since the Unix epoch.
    pub created: i64,
    /// When it last logged in (made or resumed), ms since the Unix epoch;
    /// `connected` says whether it is in use now.
    pub last_seen: i64,
    /// Whether a connection is logged in with it now.
    pub connected: bool,
    /// Whether it is the session of the connection that asked.
    pub current: bool,
}

/// `sessions` reply: one page of the caller's sessions, by id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionsOk {
    /// Sessions sorted by id.
    pub sessions: Vec<SessionInfo>,
    /// `true` when more follow: ask again with `after` = the last id.
    pub more: bool,
}

/// `session.revoke` fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRevokeReq {
    /// The session's id (from `sessions`; `id` is the request's own).
    pub session: String,
}

//! [`Client`] requests about the caller's own account and full-text search.

use qchat_protocol::{
    Op, PasswdOk, PasswdReq, ProfileOk, ProfileReq, ProfileSetReq, SearchOk, SearchReq,
    SessionInfo, SessionRevokeReq, SessionsOk, SessionsReq,
};

use super::Client;
use crate::error::ClientError;

impl Client {
    /// A user's profile (display name); `None` = the caller's own.
    ///
    /// # Errors
    /// `not_found` when the tenant has no such user.
    pub async fn profile(&self, user: Option<&str>) -> Result<ProfileOk, ClientError> {
        let op = Op::Profile(ProfileReq { user: user.map(str::to_owned) });
        self.call(op, true).await
    }

    /// Sets the caller's display name, or clears it with `None`.
    ///
    /// # Errors
    /// `bad_request` or `too_large` for a name the server does not take.
    pub async fn set_display_name(&self, name: Option<&str>) -> Result<(), ClientError> {
        let op = Op::ProfileSet(ProfileSetReq { display_name: name.map(str::to_owned) });
        self.call::<serde::de::IgnoredAny>(op, true).await.map(drop)
    }

    /// Changes the caller's password; the server revokes every other
    /// session of the user (their connections end) and says how many.
    ///
    /// # Errors
    /// `unauthorized` for a wrong old password, `bad_request` for a new one
    /// of the wrong length, `rate_limited` after too many wrong ones. Not
    /// retried across a reconnect: then [`ClientError::Disconnected`].
    pub async fn passwd(&self, old: &str, new: &str) -> Result<PasswdOk, ClientError> {
        let op =
            Op::Passwd(PasswdReq { old_password: old.to_owned(), new_password: new.to_owned() });
        self.call(op, false).await
    }

    /// Every session of the caller, by id (asked for page by page).
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn sessions(&self) -> Result<Vec<SessionInfo>, ClientError> {
        let mut sessions: Vec<SessionInfo> = Vec::new();
        loop {
            let after = sessions.last().map(|s| s.id.clone());
            let op = Op::Sessions(SessionsReq { after: after.clone() });
            let page = self.call::<SessionsOk>(op, true).await?;
            let advanced =
                page.sessions.last().is_some_and(|s| after.as_ref().is_none_or(|a| *a < s.id));
            sessions.extend(page.sessions);
            if !page.more {
                return Ok(sessions);
            }
            if !advanced {
                return Err(ClientError::Protocol(
                    "a sessions page with more did not advance".into(),
                ));
            }
        }
    }

    /// Revokes one of the caller's sessions (its connections end; revoking
    /// this client's own session ends this connection too).
    ///
    /// # Errors
    /// `not_found` when the caller has no session with this id.
    pub async fn revoke_session(&self, id: &str) -> Result<(), ClientError> {
        let op = Op::SessionRevoke(SessionRevokeReq { session: id.to_owned() });
        self.call::<serde::de::IgnoredAny>(op, true).await.map(drop)
    }

    /// One page of full-text search hits, newest first, over the rooms the
    /// caller may read; pass the reply's `cursor` back in `req.cursor` for
    /// the next page.
    ///
    /// # Errors
    /// `bad_request` for a query without words or a bad filter,
    /// `not_found` for a `room` the caller cannot read.
    pub async fn search(&self, req: SearchReq) -> Result<SearchOk, ClientError> {
        self.call(Op::Search(req), true).await
    }
}

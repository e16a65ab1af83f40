//! Logging in again by hand: `/reconnect`, `/trust` and what a failed
//! reconnect says.

use crate::tui::app::{ConnectError, Effect, Login};
use crate::tui::model::{Chat, FormStatus, PASSWORD, Screen};

impl Chat {
    /// `/reconnect`: a new connection and log-in on the saved session,
    /// after a certificate change was accepted (`fingerprint`) or to get
    /// out of an ended session.
    pub(super) fn reconnect(&mut self, fingerprint: Option<String>) {
        let [server, tenant, user] = self.identity();
        let login =
            Login { server, tenant, user, password: None, register: false, accept_new: false };
        self.notice = Some("reconnecting…".into());
        self.effects.push(match fingerprint {
            Some(fingerprint) => Effect::Repin { login, fingerprint },
            None => Effect::Connect(login),
        });
    }

    /// `/trust [FINGERPRINT]`: after a reconnect met a changed certificate,
    /// shows the new fingerprint; given (in full or its first 8 or more
    /// hex digits, as the operator confirmed it), pins it and reconnects.
    pub(super) fn trust(&mut self, confirm: Option<String>) {
        let Some(got) = self.changed_cert.clone() else {
            self.notice = Some("/trust: the server's certificate has not changed".into());
            return;
        };
        match confirm {
            Some(c) if c.len() >= 8 && got.starts_with(&c.to_ascii_lowercase()) => {
                self.reconnect(Some(got));
            }
            Some(c) => {
                self.notice = Some(format!(
                    "/trust: {c} is not (the start of) the certificate the server presents, \
                     sha256 {got}; nothing pinned"
                ));
            }
            None => {
                self.notice = Some(format!(
                    "the server presents sha256 {got}; once the operator confirms it, \
                     /trust {} pins it and reconnects",
                    &got[..got.len().min(8)]
                ));
            }
        }
    }

    /// A reconnect by hand failed: the main screen stays (the rooms and
    /// what was loaded are still worth reading), the status line says why.
    pub(super) fn reconnect_failed(&mut self, e: ConnectError) {
        self.notice = Some(match e {
            ConnectError::HostChanged { message, got } => {
                let hint = format!(
                    "{message}. Once the operator confirms the new certificate, /trust {} pins it",
                    &got[..got.len().min(8)]
                );
                self.changed_cert = Some(got);
                hint
            }
            ConnectError::TokenRefused => {
                // Only a password helps now: back to the form.
                self.screen = Screen::Login;
                let id = self.identity();
                self.sessions.retain(|s| *s != id);
                self.login.focus = PASSWORD;
                self.login.status = FormStatus::Error(
                    "the saved session was refused (expired or revoked): enter the password".into(),
                );
                return;
            }
            ConnectError::UnknownHost { fingerprint } => {
                format!("reconnect: the server's certificate is not pinned (sha256 {fingerprint})")
            }
            ConnectError::RegistrationClosed => "reconnect refused".to_owned(),
            ConnectError::Other(why) => {
                format!("reconnect failed: {why} (/reconnect to try again)")
            }
        });
    }
}

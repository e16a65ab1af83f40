//! Logging in again by hand: `/reconnect`, `/trust` and what a failed
//! reconnect says.

use crate::tui::app::{ConnectError, Effect, Login};
use crate::tui::model::{Chat, FormStatus, PASSWORD, Popup, Screen};

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
                    "/trust: {c} is not the start of the new certificate; nothing pinned"
                ));
                self.popup = Some(cert_popup(None, &got));
            }
            None => {
                self.notice = Some(format!(
                    "/trust {} pins the new certificate and reconnects, once the operator \
                     confirms it",
                    &got[..got.len().min(8)]
                ));
                self.popup = Some(cert_popup(None, &got));
            }
        }
    }

    /// A reconnect by hand failed: the main screen stays (the rooms and
    /// what was loaded are still worth reading), the status line says why.
    pub(super) fn reconnect_failed(&mut self, e: ConnectError) {
        self.notice = Some(match e {
            ConnectError::HostChanged { message, got } => {
                // The whole story does not fit the status line: an overlay
                // with all of it, and the status line starts with the way
                // out.
                let hint = format!(
                    "server certificate changed: /trust {} pins the new one once the operator \
                     confirms it",
                    &got[..got.len().min(8)]
                );
                self.popup = Some(cert_popup(Some(&message), &got));
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

/// The overlay about a changed certificate: why the connection was
/// refused (`why`), the new fingerprint in full, and how to pin it.
fn cert_popup(why: Option<&str>, got: &str) -> Popup {
    let mut lines = Vec::new();
    if let Some(why) = why {
        lines.push(why.to_owned());
        lines.push(String::new());
    }
    lines.push("The server now presents the certificate".to_owned());
    lines.push(format!("  sha256 {got}"));
    lines.push(String::new());
    lines.push(format!(
        "Check it with the operator. Once they confirm it, /trust {} (its first 8 or more \
         digits, or all of them) pins it and reconnects; nothing else is trusted meanwhile.",
        &got[..got.len().min(8)]
    ));
    Popup::new("Server certificate changed", lines)
}

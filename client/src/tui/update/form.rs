//! The log-in form's keys, the registration probe and the log-in it asks for.

use crate::tui::app::{Effect, FormMsg, Login};
use crate::tui::model::{Chat, FIELDS, FormStatus, PASSWORD, Registration};

impl Chat {
    pub(super) fn on_form(&mut self, m: FormMsg) {
        let f = &mut self.login;
        match (&f.status, m) {
            (FormStatus::Trust(_), FormMsg::Char('y' | 'Y')) => {
                let login = self.login_request(true);
                if let Some(login) = login {
                    self.login.status = FormStatus::Connecting;
                    self.effects.push(Effect::Connect(login));
                }
            }
            (FormStatus::Trust(_), FormMsg::Char('n' | 'N') | FormMsg::Cancel) => {
                f.status = FormStatus::Error("certificate not trusted; not connected".into());
            }
            (FormStatus::Repin(fp), FormMsg::Char('y' | 'Y')) => {
                let fingerprint = fp.clone();
                if let Some(login) = self.login_request(false) {
                    self.login.status = FormStatus::Connecting;
                    self.effects.push(Effect::Repin { login, fingerprint });
                }
            }
            (FormStatus::Repin(_), FormMsg::Char('n' | 'N') | FormMsg::Cancel) => {
                f.status =
                    FormStatus::Error("the pinned certificate is kept; not connected".into());
            }
            (FormStatus::HostChanged(_, got), FormMsg::TrustChanged) => {
                f.status = FormStatus::Repin(got.clone());
            }
            (FormStatus::Trust(_) | FormStatus::Repin(_) | FormStatus::Connecting, _) => {}
            (_, FormMsg::TrustChanged) => {}
            (_, FormMsg::Char(c)) => f.fields[f.focus].push(c),
            (_, FormMsg::Backspace) => {
                f.fields[f.focus].pop();
            }
            (_, FormMsg::ClearField) => f.fields[f.focus].clear(),
            (_, FormMsg::DeleteWord) => {
                let field = &mut f.fields[f.focus];
                let kept = field.trim_end().rfind(char::is_whitespace).map_or(0, |i| i + 1);
                field.truncate(kept);
            }
            (_, FormMsg::Next) => f.focus = (f.focus + 1) % FIELDS.len(),
            (_, FormMsg::Prev) => f.focus = (f.focus + FIELDS.len() - 1) % FIELDS.len(),
            (_, FormMsg::ToggleRegister) => {
                if !f.register && f.registration() == Registration::Closed {
                    f.status = FormStatus::Error(registration_closed(&f.fields[1]));
                } else {
                    f.register = !f.register;
                }
            }
            (_, FormMsg::Cancel) => {}
            (_, FormMsg::Submit) => {
                if let Some(login) = self.login_request(false) {
                    self.login.status = FormStatus::Connecting;
                    self.effects.push(Effect::Connect(login));
                }
            }
        }
        // Leaving the server or tenant field (Tab, Enter): ask the server
        // whether that tenant takes registrations, once per pair.
        if self.login.focus > 1 {
            self.probe_registration();
        }
    }

    /// Queues a `hello` about the form's tenant unless this server and
    /// tenant were asked about already (or are not filled in).
    pub(crate) fn probe_registration(&mut self) {
        let f = &mut self.login;
        let key = f.server_tenant();
        if key.iter().any(String::is_empty) || f.probed.as_ref() == Some(&key) {
            return;
        }
        f.probed = Some(key.clone());
        f.open_registration = Registration::Unknown;
        let [server, tenant] = key;
        self.effects.push(Effect::Probe { server, tenant });
    }

    pub(super) fn on_registration(&mut self, server: String, tenant: String, open: Option<bool>) {
        let f = &mut self.login;
        if f.probed.as_ref() != Some(&[server, tenant]) {
            return; // an answer about fields since changed
        }
        f.open_registration = match open {
            Some(true) => Registration::Open,
            Some(false) => Registration::Closed,
            None => Registration::Unknown,
        };
        if f.register && f.open_registration == Registration::Closed {
            f.register = false;
            if f.status != FormStatus::Connecting {
                f.status = FormStatus::Error(registration_closed(&f.fields[1]));
            }
        }
    }

    /// The log-in the form describes, or `None` (with the form saying why).
    pub(super) fn login_request(&mut self, accept_new: bool) -> Option<Login> {
        let f = &mut self.login;
        if let Some(i) = f.fields[..PASSWORD].iter().position(|v| v.trim().is_empty()) {
            f.status = FormStatus::Error(format!("{} is required", FIELDS[i]));
            f.focus = i;
            return None;
        }
        let have_token = self.have_token();
        let f = &mut self.login;
        let password = if f.fields[PASSWORD].is_empty() {
            if !have_token || f.register {
                f.status = FormStatus::Error("enter the password".into());
                f.focus = PASSWORD;
                return None;
            }
            None
        } else {
            Some(f.fields[PASSWORD].clone())
        };
        Some(Login {
            server: f.fields[0].trim().to_owned(),
            tenant: f.fields[1].trim().to_owned(),
            user: f.fields[2].trim().to_owned(),
            password,
            register: f.register,
            accept_new,
        })
    }
}

/// What the form says when the tenant takes no registrations.
pub(super) fn registration_closed(tenant: &str) -> String {
    format!(
        "tenant {} does not allow self-registration: log in, or ask an operator for an account",
        tenant.trim()
    )
}

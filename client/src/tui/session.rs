//! Files in the state directory: the saved session tokens (mode 0600), the
//! last identity logged in with (to prefill the form), and the log file.
//! `QCHAT_STATE_DIR` overrides the platform directory (tests).

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// The state directory: `$QCHAT_STATE_DIR`, else the platform's (e.g.
/// `~/.local/state/qchat`), else its local data directory.
pub(crate) fn state_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("QCHAT_STATE_DIR").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    let dirs = directories::ProjectDirs::from("", "", "qchat")?;
    Some(dirs.state_dir().unwrap_or_else(|| dirs.data_local_dir()).to_path_buf())
}

/// Session tokens, one `server TAB tenant TAB user TAB token` line each.
#[derive(Debug, Clone)]
pub(crate) struct TokenStore {
    path: PathBuf,
}

impl TokenStore {
    /// The store in `path`.
    pub(crate) fn new(path: PathBuf) -> Self {
        Self { path }
    }

    fn lines(&self) -> Vec<[String; 4]> {
        let Ok(text) = fs::read_to_string(&self.path) else { return Vec::new() };
        text.lines()
            .filter_map(|l| {
                let mut it = l.split('\t');
                Some([
                    it.next()?.to_owned(),
                    it.next()?.to_owned(),
                    it.next()?.to_owned(),
                    it.next()?.to_owned(),
                ])
            })
            .collect()
    }

    /// The token saved for this identity.
    pub(crate) fn load(&self, server: &str, tenant: &str, user: &str) -> Option<String> {
        self.lines()
            .into_iter()
            .find(|l| l[0] == server && l[1] == tenant && l[2] == user)
            .map(|[_, _, _, t]| t)
    }

    /// The identities (server, tenant, user) a token is saved for; not the
    /// tokens, so the UI state never holds a secret it does not need.
    pub(crate) fn identities(&self) -> Vec<[String; 3]> {
        self.lines().into_iter().map(|[s, t, u, _]| [s, t, u]).collect()
    }

    /// Saves (replaces) the token for this identity; `None` forgets it.
    ///
    /// # Errors
    /// Creating the directory or writing the file.
    pub(crate) fn store(
        &self,
        server: &str,
        tenant: &str,
        user: &str,
        token: Option<&str>,
    ) -> std::io::Result<()> {
        let mut lines: Vec<[String; 4]> = self
            .lines()
            .into_iter()
            .filter(|l| !(l[0] == server && l[1] == tenant && l[2] == user))
            .collect();
        if let Some(t) = token {
            lines.push([server.to_owned(), tenant.to_owned(), user.to_owned(), t.to_owned()]);
        }
        if let Some(dir) = self.path.parent() {
            fs::create_dir_all(dir)?;
        }
        let tmp = self.path.with_extension("tmp");
        let mut f = private_file(&tmp)?;
        for l in &lines {
            writeln!(f, "{}", l.join("\t"))?;
        }
        f.sync_all()?;
        fs::rename(&tmp, &self.path)
    }
}

/// The last identity a log-in succeeded with: one `server TAB tenant TAB
/// user` line, so a start without options can prefill the form.
#[derive(Debug, Clone)]
pub(crate) struct LastLogin {
    path: PathBuf,
}

impl LastLogin {
    /// The record in `path`.
    pub(crate) fn new(path: PathBuf) -> Self {
        Self { path }
    }

    /// Server, tenant and user of the last log-in, if recorded (and whole).
    pub(crate) fn load(&self) -> Option<[String; 3]> {
        let text = fs::read_to_string(&self.path).ok()?;
        let mut it = text.lines().next()?.split('\t').map(str::to_owned);
        let id = [it.next()?, it.next()?, it.next()?];
        id.iter().all(|f| !f.is_empty()).then_some(id)
    }

    /// Records this identity as the last one logged in with.
    ///
    /// # Errors
    /// Creating the directory or writing the file.
    pub(crate) fn store(&self, server: &str, tenant: &str, user: &str) -> std::io::Result<()> {
        if [server, tenant, user].iter().any(|f| f.contains(['\t', '\n', '\r'])) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "a tab or newline in the server, tenant or user",
            ));
        }
        if let Some(dir) = self.path.parent() {
            fs::create_dir_all(dir)?;
        }
        let tmp = self.path.with_extension("tmp");
        let mut f = private_file(&tmp)?;
        writeln!(f, "{server}\t{tenant}\t{user}")?;
        f.sync_all()?;
        fs::rename(&tmp, &self.path)
    }
}

/// The form's first three fields: each given option, and where none
/// contradicts the last log-in, the rest from it (a `--server` of another
/// host does not pick up the last tenant and user).
pub(crate) fn prefill(given: [Option<String>; 3], last: Option<[String; 3]>) -> [String; 3] {
    let agrees = last
        .as_ref()
        .is_some_and(|l| given.iter().zip(l).all(|(g, l)| g.as_deref().is_none_or(|g| g == l)));
    let last = last.filter(|_| agrees).unwrap_or_default();
    let [a, b, c] = given;
    let [la, lb, lc] = last;
    [a.unwrap_or(la), b.unwrap_or(lb), c.unwrap_or(lc)]
}

/// Creates (truncates) a file only the owner can read.
fn private_file(path: &Path) -> std::io::Result<fs::File> {
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
        opts.mode(0o600);
        let f = opts.open(path)?;
        f.set_permissions(fs::Permissions::from_mode(0o600))?;
        Ok(f)
    }
    #[cfg(not(unix))]
    opts.open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_privately() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = TokenStore::new(dir.path().join("sub/sessions"));
        assert_eq!(store.load("h:1", "t", "u"), None);
        store.store("h:1", "t", "u", Some("tok1")).expect("save");
        store.store("h:1", "t", "v", Some("tok2")).expect("save");
        store.store("h:1", "t", "u", Some("tok3")).expect("save");
        assert_eq!(store.load("h:1", "t", "u").as_deref(), Some("tok3"));
        assert_eq!(store.load("h:1", "t", "v").as_deref(), Some("tok2"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode =
                fs::metadata(dir.path().join("sub/sessions")).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(
            store.identities(),
            [["h:1", "t", "v"].map(String::from), ["h:1", "t", "u"].map(String::from)]
        );
        store.store("h:1", "t", "u", None).expect("forget");
        assert_eq!(store.load("h:1", "t", "u"), None);
    }

    #[test]
    fn last_login_round_trips() {
        let dir = tempfile::tempdir().expect("tempdir");
        let last = LastLogin::new(dir.path().join("s/last_login"));
        assert_eq!(last.load(), None);
        last.store("h:1", "acme", "ann").expect("save");
        last.store("h:2", "acme", "bob").expect("save");
        assert_eq!(last.load(), Some(["h:2", "acme", "bob"].map(String::from)));
        assert!(last.store("h:1", "a\tb", "ann").is_err(), "a tab would split the record");
        fs::write(dir.path().join("s/last_login"), "h:1\tacme\n").expect("write");
        assert_eq!(last.load(), None, "a torn record is ignored");
    }

    #[test]
    fn prefill_takes_the_last_login_unless_contradicted() {
        let last = Some(["h:1", "acme", "ann"].map(String::from));
        let none = [None, None, None];
        assert_eq!(prefill(none.clone(), last.clone()), ["h:1", "acme", "ann"]);
        let same_server = [Some("h:1".to_owned()), None, None];
        assert_eq!(prefill(same_server, last.clone()), ["h:1", "acme", "ann"]);
        let other_user = [None, None, Some("bob".to_owned())];
        assert_eq!(prefill(other_user, last.clone()), ["", "", "bob"]);
        assert_eq!(prefill(none, None), ["", "", ""]);
    }
}

//! Files in the state directory: the saved session tokens (mode 0600) and
//! the log file. `QCHAT_STATE_DIR` overrides the platform directory (tests).

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
        store.store("h:1", "t", "u", None).expect("forget");
        assert_eq!(store.load("h:1", "t", "u"), None);
    }
}

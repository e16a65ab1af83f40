//! The service's error type and its mapping to wire error codes. Database and
//! internal details are logged, never sent.

use qchat_protocol::{ErrorBody, ErrorCode};

use crate::db::DbError;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// Refused for a reason the client may see.
    #[error("{code}: {message}")]
    Refused {
        /// Wire code.
        code: ErrorCode,
        /// Explanation safe to show.
        message: String,
    },
    /// A database fault.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// Any other server-side fault.
    #[error("internal: {0}")]
    Internal(String),
}

/// Shorthand for refusing with `code`.
pub(crate) fn refuse(code: ErrorCode, message: impl Into<String>) -> Error {
    Error::Refused { code, message: message.into() }
}

impl From<DbError> for Error {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Conflict => refuse(ErrorCode::Conflict, "already exists"),
            DbError::Sqlx(e) => Self::Db(e),
        }
    }
}

impl Error {
    /// A file store fault (details logged, never sent).
    pub(crate) fn store(e: std::io::Error) -> Self {
        Self::Internal(format!("file store: {e}"))
    }

    /// The body to put on the wire. Internal details stay in the log.
    pub(crate) fn to_body(&self) -> ErrorBody {
        match self {
            Self::Refused { code, message } => ErrorBody::new(*code, message.clone()),
            Self::Db(e) if unreachable(e) => {
                ErrorBody::new(ErrorCode::Unavailable, "server busy, retry")
            }
            Self::Db(_) | Self::Internal(_) => {
                ErrorBody::new(ErrorCode::Internal, "internal error")
            }
        }
    }

    /// Whether the database could not be reached: the client is told
    /// `unavailable` and may retry.
    pub(crate) fn is_unavailable(&self) -> bool {
        matches!(self, Self::Db(e) if unreachable(e))
    }

    /// Whether this is a server fault worth logging at error level.
    pub(crate) fn is_internal(&self) -> bool {
        !matches!(self, Self::Refused { .. })
    }
}

/// Whether the database could not be reached (or is restarting), as
/// opposed to refusing the statement: the request may succeed if retried,
/// so the client is told `unavailable`. SQLite's pool times out when busy;
/// a PostgreSQL server that is down or restarting breaks connections (I/O
/// errors, SQLSTATE class 08) or shuts them (57P01-57P03).
fn unreachable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => true,
        sqlx::Error::Database(d) => d
            .code()
            .is_some_and(|c| c.starts_with("08") || matches!(&*c, "57P01" | "57P02" | "57P03")),
        _ => false,
    }
}

/// Result alias for request handlers.
pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

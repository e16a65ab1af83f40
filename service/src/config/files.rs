//! `[files]`: file-transfer limits.

use serde::Deserialize;

/// Bounds on file transfer. Defaults suit a small public host.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileLimits {
    /// Largest file accepted, in bytes.
    pub max_file_size: u64,
    /// Bytes each tenant may store (finished files plus bytes arriving).
    pub tenant_quota: u64,
    /// Downloads in flight per connection; more get `rate_limited`.
    pub max_downloads_per_connection: usize,
    /// Partial uploads untouched this long are deleted (also at start-up).
    pub upload_max_age_secs: u64,
}

impl Default for FileLimits {
    fn default() -> Self {
        Self {
            max_file_size: 4 << 30,
            tenant_quota: 50 << 30,
            max_downloads_per_connection: 16,
            upload_max_age_secs: 24 * 3600,
        }
    }
}

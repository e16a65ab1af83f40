//! The one way this crate takes a std mutex.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks a std mutex (never held across an await), ignoring poisoning: every
/// guarded value stays consistent between statements.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

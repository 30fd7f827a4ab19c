//! The one error type of this crate: which call failed, on what, and errno.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum SysError {
    /// A syscall of ours failed.
    #[error("{call} on {what} failed: {}", std::io::Error::from_raw_os_error(*.errno))]
    Call {
        call: &'static str,
        what: String,
        errno: i32,
    },
    /// A syscall we ran inside the target failed.
    #[error("remote {name} in tid {tid} failed: {}", std::io::Error::from_raw_os_error(*.errno))]
    Remote {
        name: &'static str,
        tid: i32,
        errno: i32,
    },
    /// The tracee did something we did not expect (died, stopped elsewhere).
    #[error("tid {tid}: {what}")]
    Tracee { tid: i32, what: String },
}

impl SysError {
    pub(crate) fn last(call: &'static str, what: impl Into<String>) -> Self {
        SysError::Call {
            call,
            what: what.into(),
            errno: crate::errno(),
        }
    }

    /// The errno, where the error carries one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            SysError::Call { errno, .. } | SysError::Remote { errno, .. } => Some(*errno),
            SysError::Tracee { .. } => None,
        }
    }
}

pub type Result<T> = std::result::Result<T, SysError>;

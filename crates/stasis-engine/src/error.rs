//! Typed errors of dump and restore. Every variant names the pid and, where
//! there is one, the fd, mapping or file, so one line tells the user what
//! failed.

use stasis_image::{ReadImageError, WriteImageError};
use stasis_proc::ProcError;
use stasis_sys::SysError;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum DumpError {
    /// State stasis cannot checkpoint (yet). The target was not changed.
    #[error("pid {pid} {what}")]
    Refused { pid: i32, what: String },
    #[error("no process with pid {0}")]
    NoSuchProcess(i32),
    #[error("cannot dump pid {pid}: {step}: {source}")]
    Sys {
        pid: i32,
        step: &'static str,
        source: SysError,
    },
    #[error("cannot dump pid {pid}: {source}")]
    Proc { pid: i32, source: ProcError },
    #[error("cannot dump pid {pid}: reading {path}: {source}")]
    Io {
        pid: i32,
        path: String,
        source: std::io::Error,
    },
    #[error("cannot create image directory {path}: {source}")]
    ImageDir {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Image(#[from] WriteImageError),
    #[error("fault injected at {0}")]
    Injected(&'static str),
}

#[derive(Debug, Error)]
pub enum RestoreError {
    #[error(transparent)]
    Image(#[from] ReadImageError),
    /// The image cannot be restored here; nothing was created.
    #[error("{0}")]
    Refused(String),
    /// A pid or tid the image needs is taken (by `holder`: the process with
    /// that pid, or one that has it as its group or session). Nothing was
    /// created; `--pidns` avoids it.
    #[error("{what}")]
    PidInUse { holder: u32, what: String },
    /// A file, lock or socket path the image needs is held by a live
    /// process. Nothing was created.
    #[error("{0}")]
    Held(String),
    #[error("pid {pid}: {step}: {source}")]
    Sys {
        pid: i32,
        step: String,
        source: SysError,
    },
    #[error("pid {pid}: {what}")]
    Failed { pid: i32, what: String },
    #[error("fault injected at {0}")]
    Injected(&'static str),
}

pub(crate) trait SysCtx<T> {
    fn dump_ctx(self, pid: i32, step: &'static str) -> Result<T, DumpError>;
    fn rst_ctx(self, pid: i32, step: impl Into<String>) -> Result<T, RestoreError>;
}

impl<T> SysCtx<T> for Result<T, SysError> {
    fn dump_ctx(self, pid: i32, step: &'static str) -> Result<T, DumpError> {
        self.map_err(|source| DumpError::Sys { pid, step, source })
    }
    fn rst_ctx(self, pid: i32, step: impl Into<String>) -> Result<T, RestoreError> {
        self.map_err(|source| RestoreError::Sys {
            pid,
            step: step.into(),
            source,
        })
    }
}

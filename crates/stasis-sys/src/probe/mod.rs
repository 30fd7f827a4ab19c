//! Probes behind `stasis check`: each function really calls one kernel
//! interface stasis relies on, on ourselves or on a throwaway child, and
//! reports what the kernel said.
//!
//! Nothing here panics on a kernel answer: every failure comes back as a
//! [`ProbeError`] naming the call and the errno. Children are forked only
//! from here; after `fork`/`clone3` a child makes nothing but raw syscalls
//! and `_exit`s, so forking from a multi-threaded process (the test
//! harness, the CLI with its progress thread) is sound. Each child is
//! reaped by pid, never with `waitpid(-1)`, so other code's children are
//! left alone.
//!
//! One file a probe group: `identity` (uname, capabilities), `ptrace`,
//! `clone3` (set_tid), `pidfd` (pidfd_getfd, process_vm_readv),
//! `prctl` (PR_SET_MM, timer ids, vDSO), `uffd` (userfaultfd,
//! PAGEMAP_SCAN) and `pipe`; `child` holds the fork-and-reap helpers
//! they share. Everything public is re-exported here, so callers name it
//! `probe::uname` and so on.

use std::fmt;

mod child;
mod clone3;
mod identity;
mod pidfd;
mod pipe;
mod prctl;
mod ptrace;
mod uffd;

pub use clone3::clone3_set_tid;
pub use identity::{effective_caps, euid, uname, Uname};
pub use pidfd::{pidfd_getfd_self, process_vm_readv_self};
pub use pipe::pipe_set_size;
pub use prctl::{
    map_vdso_errno, mm_map_size, set_mm_single_errno, timer_restore_ids_create,
    timer_restore_ids_get, PROBE_TIMER_ID,
};
pub use ptrace::{ptrace_child, PtraceReport};
pub use uffd::{
    pagemap_scan_present, uffd_feature_names, uffd_features, uffd_wp_dirty_tracking, UffdInfo,
    PAGE_IS_PRESENT, PAGE_IS_WRITTEN, UFFD_FEATURES, UFFD_FEATURE_WP_ASYNC,
    UFFD_FEATURE_WP_UNPOPULATED,
};

/// Why a probe failed: the call, and the errno where the kernel gave one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeError {
    pub call: &'static str,
    pub errno: Option<i32>,
    pub what: String,
}

impl ProbeError {
    fn last(call: &'static str) -> Self {
        Self::errno(call, crate::errno())
    }

    fn errno(call: &'static str, errno: i32) -> Self {
        // strerror's words, without io::Error's " (os error N)" suffix.
        let text = std::io::Error::from_raw_os_error(errno).to_string();
        let what = match text.rfind(" (os error ") {
            Some(i) => text[..i].to_string(),
            None => text,
        };
        ProbeError {
            call,
            errno: Some(errno),
            what,
        }
    }

    fn other(call: &'static str, what: impl Into<String>) -> Self {
        ProbeError {
            call,
            errno: None,
            what: what.into(),
        }
    }
}

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.call, self.what)
    }
}

impl std::error::Error for ProbeError {}

pub type Result<T> = std::result::Result<T, ProbeError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uname_names_linux() {
        assert_eq!(uname().unwrap().sysname, "Linux");
    }

    #[test]
    fn self_probes_work() {
        assert_eq!(process_vm_readv_self().unwrap(), 256 * 1024);
        assert!(pidfd_getfd_self().unwrap() >= 0);
        assert_eq!(pagemap_scan_present().unwrap(), vec![0, 2, 3]);
    }

    #[test]
    fn feature_names_follow_bits() {
        assert_eq!(
            uffd_feature_names(UFFD_FEATURE_WP_ASYNC | 1),
            vec!["PAGEFAULT_FLAG_WP", "WP_ASYNC"]
        );
    }
}

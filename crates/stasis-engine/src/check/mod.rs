//! `stasis check`: what this kernel supports, in plain words.
//!
//! Every probe exercises the interface it reports on (a real ptrace seize
//! of a throwaway child, a real clone3 with set_tid, a real PAGEMAP_SCAN,
//! ...) through [`stasis_sys::probe`]; none infers support from the kernel
//! version. A probe that fails reports the call and errno in its detail;
//! [`run`] never panics.
//!
//! `needed` marks what dump or restore cannot work without at all. The
//! rest either makes one kind of state restorable (POSIX timer ids), or
//! one mode possible (incremental pre-dump, lazy restore, cgroup freeze).
//!
//! The probes live in one file an area: `identity` (kernel, root,
//! capabilities), `process` (ptrace, clone3, pidfd, process_vm_readv,
//! prctl, vDSO), `memory` (userfaultfd, PAGEMAP_SCAN, dirty tracking),
//! `cgroup` (the v2 freezer), `ipc` (System V ids) and `limits` (time
//! namespace, sysctls). Each
//! returns what it found; [`run`] lists them in the order a user reads.

use std::fmt;
use std::fs;

use stasis_sys::probe::ProbeError;

mod cgroup;
mod files;
mod identity;
mod ipc;
mod limits;
mod memory;
mod process;

use cgroup::cgroup_freezer;
use identity::{
    cap_checkpoint_restore, cap_net_admin, cap_sys_admin, cap_sys_ptrace, cap_sys_resource, kernel,
    root,
};
use limits::{pid_max, pipe_max_size, time_namespace};
use memory::{dirty_tracking, pagemap_scan, soft_dirty, userfaultfd};
use process::{
    clone3_set_tid, pidfd_getfd, pr_set_mm_map, process_vm_readv, ptrace, timer_ids, vdso,
};

/// One line of `stasis check`.
#[derive(Debug, Clone)]
pub struct Feature {
    pub name: &'static str,
    /// The kernel has it (or, for a capability, we hold it).
    pub ok: bool,
    /// Dump/restore cannot work without it.
    pub needed: bool,
    /// Plain words: what was tried and what the kernel said.
    pub detail: String,
}

impl fmt::Display for Feature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = match (self.ok, self.needed) {
            (true, _) => "ok",
            (false, true) => "MISSING",
            (false, false) => "absent",
        };
        write!(f, "{status:<8}{:<24}{}", self.name, self.detail)
    }
}

/// What a probe found: whether the feature is there, and in what words.
type Probe = fn() -> Result<(bool, String), String>;

/// Every probe (name, needed, probe), in the order a user reads them.
const PROBES: &[(&str, bool, Probe)] = &[
    ("kernel", true, kernel),
    ("root", false, root),
    ("CAP_SYS_PTRACE", true, cap_sys_ptrace),
    ("CAP_CHECKPOINT_RESTORE", true, cap_checkpoint_restore),
    ("CAP_SYS_ADMIN", false, cap_sys_admin),
    ("CAP_NET_ADMIN", false, cap_net_admin),
    ("CAP_SYS_RESOURCE", false, cap_sys_resource),
    ("ptrace", true, ptrace),
    ("clone3 set_tid", true, clone3_set_tid),
    ("pidfd_getfd", true, pidfd_getfd),
    ("process_vm_readv", true, process_vm_readv),
    ("PR_SET_MM_MAP", true, pr_set_mm_map),
    ("POSIX timer ids", false, timer_ids),
    ("vDSO", false, vdso),
    ("userfaultfd", false, userfaultfd),
    ("PAGEMAP_SCAN", false, pagemap_scan),
    ("dirty tracking", false, dirty_tracking),
    ("soft-dirty", false, soft_dirty),
    ("time namespace", false, time_namespace),
    ("SysV IPC ids", false, ipc::sysv_ipc_ids),
    ("kcmp epoll target", false, files::kcmp_epoll),
    ("file handles", false, files::file_handles),
    ("pty peer open", false, files::pty_peer),
    ("io_uring NO_MMAP", false, files::uring_no_mmap),
    ("cgroup v2 freezer", false, cgroup_freezer),
    ("fs.pipe-max-size", false, pipe_max_size),
    ("pid_max", false, pid_max),
];

/// Runs every probe, in the order a user reads them.
pub fn run() -> Vec<Feature> {
    PROBES
        .iter()
        .map(|&(n, needed, p)| run_one(n, needed, p))
        .collect()
}

/// Runs the probe called `name` (a name `run` lists), if there is one.
pub fn probe(name: &str) -> Option<Feature> {
    PROBES
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|&(n, needed, p)| run_one(n, needed, p))
}

fn run_one(name: &'static str, needed: bool, probe: Probe) -> Feature {
    let (ok, detail) = match std::panic::catch_unwind(probe) {
        Ok(Ok(found)) => found,
        Ok(Err(e)) => (false, e),
        Err(_) => (false, "the probe itself failed (panicked)".to_string()),
    };
    Feature {
        name,
        ok,
        needed,
        detail,
    }
}

// ---------------------------------------------------------------------------
// Helpers the probes share.

fn errno_name(e: i32) -> String {
    let name = match e {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::EACCES => "EACCES",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::EINVAL => "EINVAL",
        libc::ENOSYS => "ENOSYS",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::ENOTTY => "ENOTTY",
        libc::EROFS => "EROFS",
        _ => return format!("errno {e}"),
    };
    name.to_string()
}

/// "call failed: EPERM (Operation not permitted)".
fn failed(e: &ProbeError) -> String {
    match e.errno {
        Some(n) => format!("{} failed: {} ({})", e.call, errno_name(n), e.what),
        None => format!("{} failed: {}", e.call, e.what),
    }
}

fn read_trimmed(path: &str) -> Result<String, String> {
    fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|e| format!("cannot read {path}: {e}"))
}

fn read_number(path: &str) -> Result<u64, String> {
    let s = read_trimmed(path)?;
    s.parse()
        .map_err(|_| format!("{path} holds {s:?}, not a number"))
}

fn human_bytes(n: u64) -> String {
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 10 && n.is_multiple_of(1 << 10) {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} bytes")
    }
}

fn page_list(pages: &[usize]) -> String {
    let v: Vec<String> = pages.iter().map(|p| p.to_string()).collect();
    format!("[{}]", v.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use stasis_sys::probe;

    fn find<'a>(features: &'a [Feature], name: &str) -> &'a Feature {
        features
            .iter()
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("no feature named {name}"))
    }

    #[test]
    fn run_reports_this_machine() {
        let features = run();
        for f in &features {
            println!("{f}");
        }
        let mut names: Vec<&str> = features.iter().map(|f| f.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), features.len(), "duplicate feature names");
        assert!(features.iter().all(|f| !f.detail.is_empty()));

        assert!(find(&features, "kernel").ok);
        if probe::euid() != 0 {
            println!("skipped the root-only assertions: not running as root");
            return;
        }
        for name in [
            "ptrace",
            "pidfd_getfd",
            "clone3 set_tid",
            "process_vm_readv",
        ] {
            let f = find(&features, name);
            assert!(f.ok, "{name} should work as root here: {}", f.detail);
            assert!(f.needed);
        }
    }

    #[test]
    fn display_marks_missing_needed_features() {
        let f = Feature {
            name: "ptrace",
            ok: false,
            needed: true,
            detail: "x".to_string(),
        };
        assert!(f.to_string().starts_with("MISSING"));
    }

    #[test]
    fn human_bytes_reads_naturally() {
        assert_eq!(human_bytes(1 << 20), "1 MiB");
        assert_eq!(human_bytes(16 * 1024), "16 KiB");
        assert_eq!(human_bytes(2432), "2432 bytes");
    }
}

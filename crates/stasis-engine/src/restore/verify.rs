//! `dump --verify` and `restore --check-only`: read an image back from
//! disk and run restore's own planner on it ([`super::plan::plan`] in
//! [`Mode::Verify`]), which creates no process of the tree and changes
//! nothing on the system. The kernel probes it adds fork throwaway
//! children, as `stasis check` does.
//!
//! What counts as a failure depends on when we ask:
//! * [`When::Now`] (`restore --check-only`): every problem is one, since
//!   restore would fail right now.
//! * [`When::AfterKill`] (a dump that killed the tree): pids still held by
//!   the tree's own zombies are not, since they are free once reaped.
//! * [`When::LeftRunning`] (a `--leave-running` dump): the original still
//!   holds its pids, FIFOs, locks and socket paths. Those conflicts are
//!   notes, not failures: the image is restorable with `--pidns` (for the
//!   pids) or once the original exits. A pid held by a process that is not
//!   the original's is still a failure.

use std::collections::BTreeSet;
use std::path::Path;

use stasis_image::{FdKind, Image};

use super::plan::{plan, Mode, Problems};
use super::RestoreOptions;
use crate::error::RestoreError;

/// When the image is verified, which decides what is a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// Restore would run now, on this system as it is.
    Now,
    /// Right after a dump that killed the tree.
    AfterKill,
    /// Right after a `--leave-running` dump: the original still runs.
    LeftRunning,
}

/// What verification found, one line each.
#[derive(Debug, Clone, Default)]
pub struct Verdict {
    /// What would make restore fail.
    pub failures: Vec<String>,
    /// Conflicts that go away by themselves, or with `--pidns`.
    pub notes: Vec<String>,
}

impl Verdict {
    pub fn restorable(&self) -> bool {
        self.failures.is_empty()
    }

    fn failed(what: String) -> Verdict {
        Verdict {
            failures: vec![what],
            notes: Vec::new(),
        }
    }
}

/// Reads the image in `dir` and plans its restore with `opts`.
pub fn verify(dir: &Path, opts: &RestoreOptions, when: When) -> Verdict {
    match stasis_image::read_core(dir) {
        Ok(image) => verify_image(&image, dir, opts, when),
        Err(e) => Verdict::failed(e.to_string()),
    }
}

/// Verifies the image a dump just wrote to `dir` (`left_running`: with
/// `--leave-running`), for the restore options it calls for: `--shell-job`
/// if it was dumped so, `--pidns` if its root is PID 1 of its namespace.
pub fn after_dump(dir: &Path, left_running: bool) -> Verdict {
    let image = match stasis_image::read_core(dir) {
        Ok(image) => image,
        Err(e) => return Verdict::failed(e.to_string()),
    };
    let opts = RestoreOptions {
        shell_job: image.inventory.shell_job,
        pidns: image.inventory.root_pid == 1,
        ..RestoreOptions::default()
    };
    let when = if left_running {
        When::LeftRunning
    } else {
        When::AfterKill
    };
    verify_image(&image, dir, &opts, when)
}

fn verify_image(image: &Image, dir: &Path, opts: &RestoreOptions, when: When) -> Verdict {
    match plan(image, Some(dir), opts, Mode::Verify) {
        Ok(_) => Verdict::default(),
        Err(Problems(found)) => judge(image, opts, when, found),
    }
}

/// Sorts the planner's problems into failures and notes.
fn judge(image: &Image, opts: &RestoreOptions, when: When, found: Vec<RestoreError>) -> Verdict {
    let ours: BTreeSet<u32> = image
        .processes
        .iter()
        .flat_map(|p| std::iter::once(p.pid).chain(p.threads.iter().map(|t| t.tid)))
        .collect();
    let mut v = Verdict::default();
    let mut by_original = BTreeSet::new();
    for e in found {
        match (&e, when) {
            (RestoreError::PidInUse { holder, .. }, When::AfterKill | When::LeftRunning)
                if ours.contains(holder) =>
            {
                by_original.insert(*holder);
            }
            (RestoreError::Held(what), When::LeftRunning) => v
                .notes
                .push(format!("restorable once the original exits: {what}")),
            // Two checks may name one taken pid (as a pid and as a group).
            _ if v.failures.contains(&e.to_string()) => {}
            _ => v.failures.push(e.to_string()),
        }
    }
    if by_original.is_empty() {
        return v;
    }
    let list = pid_list(&by_original);
    v.notes.push(match when {
        When::AfterKill => format!(
            "{list} of the image: still the dumped tree's zombies, free once reaped"
        ),
        _ if opts.shell_job || image.inventory.shell_job => format!(
            "restorable once the original exits: it still holds {list} (--pidns does not go with --shell-job)"
        ),
        _ => format!(
            "restorable with --pidns, or once the original exits: it still holds {list}"
        ),
    });
    v
}

/// "pid 1", "pids 1, 2, 3" or "pids 1, 2, 3, ... (12 in all)".
fn pid_list(pids: &BTreeSet<u32>) -> String {
    let shown: Vec<String> = pids.iter().take(8).map(u32::to_string).collect();
    let word = if pids.len() == 1 { "pid" } else { "pids" };
    if pids.len() > shown.len() {
        format!("{word} {}, ... ({} in all)", shown.join(", "), pids.len())
    } else {
        format!("{word} {}", shown.join(", "))
    }
}

/// The kernel features restoring `image` needs, probed as `stasis check`
/// does; one error for each that is missing, and for an FPU state size
/// other than the image's.
pub(super) fn kernel(image: &Image) -> Vec<RestoreError> {
    let has_fd = |k: FdKind| {
        image
            .processes
            .iter()
            .any(|p| p.fds.iter().any(|f| f.kind == k as i32))
    };
    let wanted = [
        ("clone3 set_tid", true),
        ("PR_SET_MM_MAP", true),
        (
            "POSIX timer ids",
            image.processes.iter().any(|p| !p.posix_timers.is_empty()),
        ),
        ("SysV IPC ids", image.inventory.ipc.is_some()),
        ("io_uring NO_MMAP", has_fd(FdKind::IoUring)),
        (
            "pty peer open",
            has_fd(FdKind::PtyMaster) || has_fd(FdKind::PtySlave),
        ),
    ];
    let mut out: Vec<RestoreError> = wanted
        .iter()
        .filter(|(_, needed)| *needed)
        .filter_map(|(name, _)| crate::check::probe(name))
        .filter(|f| !f.ok)
        .map(|f| {
            RestoreError::Refused(format!(
                "restore needs {} from the kernel, which does not work here: {}",
                f.name, f.detail
            ))
        })
        .collect();
    out.extend(xstate(image));
    out
}

/// This CPU's FPU state size (what restore checks once the root exists)
/// against every thread's in the image.
fn xstate(image: &Image) -> Option<RestoreError> {
    let size = match stasis_sys::probe::ptrace_child() {
        Ok(r) => r.xstate_size,
        Err(e) => {
            return Some(RestoreError::Refused(format!(
                "restore needs ptrace, which does not work here: {} failed: {}",
                e.call, e.what
            )))
        }
    };
    image.processes.iter().find_map(|p| {
        let th = p.threads.iter().find(|th| th.xstate.len() != size)?;
        Some(RestoreError::Refused(format!(
            "pid {}: the image's FPU state is {} bytes, this CPU's is {size}; restore on the same kind of CPU",
            p.pid,
            th.xstate.len()
        )))
    })
}

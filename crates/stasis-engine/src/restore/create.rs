//! Creating the tree: the root is forked with its pid (clone3 +
//! set_tid) and forks the rest ([`super::child`]); the restorer waits
//! until every process has reported its setup.

use std::collections::BTreeMap;
use std::os::fd::AsRawFd;

use stasis_image::Image;
use stasis_sys::{ptrace, util};

use super::child::{self, Common};
use super::table::TableGuard;
use super::RestoreOptions;
use crate::error::RestoreError;
use crate::mm::cow::CowPlan;
use crate::tree::Plan;

/// Kills every process created so far unless disarmed.
pub(super) struct KillGuard {
    pub pids: Vec<i32>,
    /// Processes we trace: their exits are reported to us first.
    pub seized: Vec<i32>,
    pub armed: bool,
}

impl Drop for KillGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let tids: Vec<(i32, Vec<i32>)> = self
            .seized
            .iter()
            .map(|p| (*p, crate::handle::frozen::list_tids(*p).unwrap_or_default()))
            .collect();
        for pid in &self.pids {
            let _ = util::kill(*pid, libc::SIGKILL);
        }
        // We trace every thread of a seized process: reap the others
        // first, or the leader's exit is never reported.
        for (pid, tids) in tids {
            for tid in tids.iter().filter(|t| **t != pid) {
                let _ = ptrace::wait(*tid);
            }
            let _ = ptrace::wait(pid);
        }
    }
}

/// The restorer's pid of each process (they differ inside a new PID
/// namespace).
pub(super) struct Hosts(BTreeMap<u32, i32>);

impl Hosts {
    /// Our pid of image pid `pid`.
    pub fn of(&self, pid: u32) -> i32 {
        self.0.get(&pid).copied().unwrap_or(pid as i32)
    }
}

/// Creates the tree and waits until it is set up: returns our child (the
/// root, or the new namespace's init), a guard that kills every process
/// of the tree unless disarmed, and our pids of the tree's. `ours`, the
/// restorer's copies of the table, is closed once the root is forked.
pub(super) fn create_tree(
    common: &Common<'_>,
    image: &Image,
    plan: &Plan,
    cow: &mut CowPlan,
    opts: &RestoreOptions,
    ours: TableGuard,
    status_r: &impl AsRawFd,
) -> Result<(i32, KillGuard, Hosts), RestoreError> {
    let (first, mut guard) = fork_root(common, image, plan, opts)?;
    drop(ours);
    let hosts = wait_ready(status_r, image, plan, cow, first, opts.pidns, &mut guard)?;
    Ok((first, guard, hosts))
}

/// Forks the root with its pid, which forks the rest of the tree. Returns
/// our child (the root, or the new namespace's init) and a guard that
/// kills every process of the tree unless disarmed.
fn fork_root(
    common: &Common<'_>,
    image: &Image,
    plan: &Plan,
    opts: &RestoreOptions,
) -> Result<(i32, KillGuard), RestoreError> {
    let root = &image.processes[plan.root];
    let root_pid = root.pid as i32;
    // With -d the root becomes a child of our caller (CLONE_PARENT), not
    // of this short-lived restorer: it is not reparented when we exit,
    // and its parent-death signal keeps its meaning.
    // SAFETY: stasis restore is single-threaded here (no progress thread
    // has been started; the CLI draws without a ticker), and the child
    // only runs `child::run`, which exits or is taken over.
    let forked = unsafe {
        if opts.pidns {
            stasis_sys::clone::fork_into_pidns(opts.detach)
        } else {
            stasis_sys::clone::fork_with_pid(root_pid, libc::SIGCHLD, opts.detach)
        }
    };
    let first = match forked {
        Ok(0) if opts.pidns && root_pid != 1 => child::run_init(common, plan.root),
        Ok(0) => child::run(common, plan.root),
        Ok(pid) => pid,
        Err(e) if e.errno() == Some(libc::EEXIST) => {
            return Err(RestoreError::Refused(format!(
                "pid {root_pid} is in use; stop that process or restore elsewhere"
            )))
        }
        Err(e) => {
            return Err(RestoreError::Sys {
                pid: root_pid,
                step: "clone3 with set_tid".into(),
                source: e,
            })
        }
    };
    // In a new namespace, killing its init kills everything in it.
    let guard = KillGuard {
        pids: if opts.pidns {
            vec![first]
        } else {
            image
                .processes
                .iter()
                .map(|p| p.pid as i32)
                .chain(plan.helpers.keys().map(|h| *h as i32))
                .collect()
        },
        seized: Vec::new(),
        armed: true,
    };
    Ok((first, guard))
}

/// Waits until every process (and group stand-in) has reported its setup,
/// takes their notes into `cow`, and finds our pids of them (`first`
/// being the new PID namespace's init, with `pidns`).
fn wait_ready(
    status_r: &impl AsRawFd,
    image: &Image,
    plan: &Plan,
    cow: &mut CowPlan,
    first: i32,
    pidns: bool,
    guard: &mut KillGuard,
) -> Result<Hosts, RestoreError> {
    let notes = wait_reports(status_r, image.processes.len() + plan.helpers.len())?;
    cow.apply_notes(&image.processes, &notes);
    // Inside a new namespace the tree's pids are not ours.
    let hosts = if pidns {
        ns_pids(first)?
    } else {
        BTreeMap::new()
    };
    guard.pids.extend(hosts.values());
    Ok(Hosts(hosts))
}

/// Inner pid -> our pid, for every process below `top` (the new PID
/// namespace's first process), from NSpid in /proc.
fn ns_pids(top: i32) -> Result<BTreeMap<u32, i32>, RestoreError> {
    let mut out = BTreeMap::new();
    let mut queue = vec![top];
    while let Some(pid) = queue.pop() {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| {
            RestoreError::Failed {
                pid,
                what: format!("cannot read its status: {e}"),
            }
        })?;
        if let Some(inner) = stasis_proc::parse_status(&status)
            .ok()
            .and_then(|s| s.ns_pid.last().copied())
        {
            out.insert(inner, pid);
        }
        queue.extend(
            crate::handle::frozen::children_of(pid)
                .unwrap_or_default()
                .into_iter()
                .map(|c| c as i32),
        );
    }
    Ok(out)
}

/// Reads status reports until `n` processes are ready; the first failure
/// (or every process gone) is an error.
/// Waits for `n` reports; returns the notes of those that had one, by pid.
/// Longest wait for the next process's setup report.
const REPORT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

fn wait_reports(status_r: &impl AsRawFd, n: usize) -> Result<BTreeMap<u32, String>, RestoreError> {
    let mut notes = BTreeMap::new();
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 4096];
    let mut ready = 0;
    while ready < n {
        // Each process reports once its own setup is done; a long silence
        // means one is stuck (a blocking open, say), which is an error,
        // never a hang.
        let fd = status_r.as_raw_fd();
        if !util::wait_readable(fd, REPORT_TIMEOUT).unwrap_or(true) {
            return Err(RestoreError::Failed {
                pid: 0,
                what: format!(
                    "the new processes stopped reporting: {ready} of {n} were set up after waiting {} s for the next",
                    REPORT_TIMEOUT.as_secs()
                ),
            });
        }
        let got = util::read_raw(fd, &mut chunk).unwrap_or(0);
        if got == 0 {
            return Err(RestoreError::Failed {
                pid: 0,
                what: format!(
                    "the new processes ended before they were set up ({ready} of {n} were ready)"
                ),
            });
        }
        buf.extend_from_slice(&chunk[..got]);
        let (reports, used) = child::parse_reports(&buf);
        buf.drain(..used);
        for (pid, r) in reports {
            match r {
                Ok(note) => {
                    ready += 1;
                    if !note.is_empty() {
                        notes.insert(pid, note);
                    }
                }
                Err(what) => {
                    return Err(RestoreError::Failed {
                        pid: pid as i32,
                        what,
                    })
                }
            }
        }
    }
    Ok(notes)
}

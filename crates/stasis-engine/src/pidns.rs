//! Trees that run in their own PID namespace (the container case): the
//! root is PID 1 of a namespace one level below ours, and every process
//! of the tree is in it.
//!
//! The dumper works with our (host) pids throughout: ptrace, /proc and
//! process_vm_* take them. The image, though, must hold the pids the
//! processes themselves see, because that is what restore recreates (with
//! `--pidns`) and what the processes have stored in their memory. So after
//! collection every pid field is rewritten from host to inner ids, read
//! from `NSpid`, `NSpgid` and `NSsid` in /proc/PID/status.

use std::collections::BTreeMap;

use stasis_image::{PageMap, Process};

use crate::error::DumpError;
use crate::procfs;

/// Host pid -> the tree's inner ids.
pub struct NsMap {
    /// Every task (thread) id of the tree.
    tid: BTreeMap<u32, u32>,
    /// Per process: inner (pgid, sid); 0 where outside the namespace.
    groups: BTreeMap<u32, (u32, u32)>,
}

/// Whether `pid` is PID 1 of a PID namespace that is a child of ours.
pub fn is_ns_init(pid: i32) -> Result<bool, DumpError> {
    let st = status(pid)?;
    let ours = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| stasis_proc::parse_status(&s).ok())
        .map(|s| s.ns_pid.len())
        .unwrap_or(1);
    Ok(st.ns_pid.len() == ours + 1 && st.ns_pid.last() == Some(&1))
}

/// What `restore --pidns` names its init (PID 1 of the new namespace,
/// when the tree's root was not PID 1 itself).
pub const INIT_NAME: &str = "stasis-init";

/// If `pid` is the child of such an init, one PID namespace below ours:
/// the init's pid. Its tree is dumped as a tree in a namespace of its own,
/// without the init (the next `restore --pidns` makes a new one).
pub fn stasis_init_of(pid: i32) -> Result<Option<i32>, DumpError> {
    let ours = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| stasis_proc::parse_status(&s).ok())
        .map(|s| s.ns_pid.len())
        .unwrap_or(1);
    let st = status(pid)?;
    if st.ns_pid.len() != ours + 1 {
        return Ok(None);
    }
    let parent = st.ppid as i32;
    let Ok(ps) = status(parent) else {
        return Ok(None);
    };
    let comm = std::fs::read_to_string(format!("/proc/{parent}/comm")).unwrap_or_default();
    let is_init = ps.ns_pid.len() == ours + 1 && ps.ns_pid.last() == Some(&1);
    Ok((is_init && comm.trim() == INIT_NAME).then_some(parent))
}

fn status(pid: i32) -> Result<stasis_proc::Status, DumpError> {
    procfs::parsed(
        pid,
        stasis_proc::parse_status(&procfs::read_string(pid, "status")?),
    )
}

impl NsMap {
    /// Reads the inner ids of processes `pids` (host pids, zombies too).
    pub fn read(pids: &[i32]) -> Result<NsMap, DumpError> {
        let mut m = NsMap {
            tid: BTreeMap::new(),
            groups: BTreeMap::new(),
        };
        for &pid in pids {
            let st = status(pid)?;
            m.tid.insert(pid as u32, st.inner_pid());
            m.groups.insert(
                pid as u32,
                (
                    st.ns_pgid.last().copied().unwrap_or(0),
                    st.ns_sid.last().copied().unwrap_or(0),
                ),
            );
            for tid in crate::handle::frozen::list_tids(pid).unwrap_or_default() {
                if let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/status")) {
                    if let Ok(ts) = stasis_proc::parse_status(&s) {
                        m.tid.insert(tid as u32, ts.inner_pid());
                    }
                }
            }
        }
        Ok(m)
    }

    fn inner(&self, host: u32) -> u32 {
        self.tid.get(&host).copied().unwrap_or(0)
    }

    /// The inner id of host id `host`.
    pub fn inner_of(&self, host: u32) -> u32 {
        self.inner(host)
    }

    /// Rewrites every pid field of the collected records to inner ids.
    pub fn apply(&self, procs: &mut [Process], pagemaps: &mut [PageMap], root_host: u32) {
        for p in procs.iter_mut() {
            let host = p.pid;
            let (pgid, sid) = self.groups.get(&host).copied().unwrap_or((0, 0));
            p.pid = self.inner(host);
            p.ppid = if host == root_host {
                0
            } else {
                self.inner(p.ppid)
            };
            p.pgid = pgid;
            p.sid = sid;
            if p.tty_fg_pgid != 0 {
                p.tty_fg_pgid = self.inner(p.tty_fg_pgid);
            }
            for th in &mut p.threads {
                th.tid = self.inner(th.tid);
            }
            for t in &mut p.posix_timers {
                if t.notify_tid != 0 {
                    t.notify_tid = self.inner(t.notify_tid);
                }
            }
            for fd in &mut p.fds {
                if fd.kind == stasis_image::FdKind::PidFd as i32 {
                    fd.pidfd_pid = self.inner(fd.pidfd_pid);
                }
            }
        }
        for m in pagemaps.iter_mut().filter(|m| m.pid != 0) {
            m.pid = self.inner(m.pid);
        }
    }
}

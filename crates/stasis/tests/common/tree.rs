//! Process trees: the before/after state of a workload's whole tree, and
//! finding every process of a workload so it can be killed and reaped.
//!
//! The tree of a workload is its root and everything reachable through
//! `/proc/PID/task/TID/children`, zombies included (a zombie is always a
//! leaf: its children were reparented when it exited). It is keyed by pid;
//! a restore must bring back the same pids, so before/after trees are
//! compared pid by pid.
//!
//! What is compared per process:
//! * the parent (`ppid`), except for the root, whose parent is outside the
//!   tree (the test process, a child subreaper, before and after);
//! * process group and session ids;
//! * zombie or not (running vs sleeping vs stopped is not compared), and for
//!   a zombie its exit status as `waitpid` would report it (stat field 52);
//! * for a live process, the whole per-process [`Snapshot`].
//!
//! Which processes belong to a workload (for [`Workload::kill`] and
//! [`Workload::wait_gone`]): every live process whose cwd is the workload's
//! unique directory, every process seen in an earlier walk of the tree
//! (identified by pid *and* start time, so a reused pid is never taken for
//! ours), the other members of those processes' sessions, and all their
//! descendants. The session alone is not enough: a child that called
//! setsid(2) leaves the root's session, and a session id can be taken over
//! by an unrelated session leader once the old session is gone (see
//! [`workload_procs`]). Zombies have no cwd; they are found through a known
//! pid, a parent, or their session.
//!
//! [`Workload::kill`]: super::Workload::kill
//! [`Workload::wait_gone`]: super::Workload::wait_gone

use super::snapshot::{status_field, Snapshot, StateDiff};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fs;
use std::path::Path;

/// The fields of /proc/PID/stat the tree cares about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    pub pid: i32,
    pub state: char,
    pub ppid: i32,
    pub pgid: i32,
    pub sid: i32,
    /// Clock ticks since boot at fork; with the pid, identifies a process.
    pub start: u64,
    /// Wait status of a zombie (0 while alive); field 52, root only.
    pub exit_code: i32,
}

impl ProcStat {
    pub fn is_zombie(&self) -> bool {
        matches!(self.state, 'Z' | 'X')
    }
}

/// Reads /proc/PID/stat; None when the pid is gone (or unreadable).
pub fn proc_stat(pid: i32) -> Option<ProcStat> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let f: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    // After ')': 0 state, 1 ppid, 2 pgrp, 3 session, ... 19 starttime
    // (field 22 of proc(5)), ... 49 exit_code (field 52).
    let num = |i: usize| f.get(i).and_then(|s| s.parse::<i64>().ok());
    Some(ProcStat {
        pid,
        state: f.first()?.chars().next()?,
        ppid: num(1)? as i32,
        pgid: num(2)? as i32,
        sid: num(3)? as i32,
        start: num(19)? as u64,
        exit_code: num(49).unwrap_or(0) as i32,
    })
}

/// Children of `pid`, over all its threads (each thread's children are
/// listed under that thread). Empty when the pid is gone.
pub fn proc_children(pid: i32) -> Vec<i32> {
    let mut v = BTreeSet::new();
    let Ok(rd) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    for t in rd.flatten() {
        if let Ok(s) = fs::read_to_string(t.path().join("children")) {
            v.extend(s.split_whitespace().filter_map(|c| c.parse::<i32>().ok()));
        }
    }
    v.into_iter().collect()
}

/// `roots` and all their descendants (breadth first, each pid once), with
/// their stat; pids that vanish during the walk are left out.
pub fn walk_tree(roots: &[i32]) -> Vec<ProcStat> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    let mut queue: VecDeque<i32> = roots.iter().copied().collect();
    while let Some(pid) = queue.pop_front() {
        if !seen.insert(pid) {
            continue;
        }
        let Some(st) = proc_stat(pid) else { continue };
        out.push(st);
        if !st.is_zombie() {
            queue.extend(proc_children(pid));
        }
    }
    out
}

/// One process of a [`TreeSnapshot`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeProc {
    pub pid: i32,
    /// None for the root (its parent is outside the tree).
    pub ppid: Option<i32>,
    pub pgid: i32,
    pub sid: i32,
    pub zombie: bool,
    /// Wait status of a zombie (as from waitpid); 0 for a live process.
    pub exit_status: i32,
    /// Per-process state of a live process; None for a zombie.
    pub snap: Option<Snapshot>,
    /// Start time (not compared: a restored process is a new process).
    pub start: u64,
}

impl TreeProc {
    fn summary(&self) -> String {
        let parent = self
            .ppid
            .map_or("root".to_string(), |p| format!("ppid {p}"));
        let z = if self.zombie {
            format!(" zombie (status {:#x})", self.exit_status)
        } else {
            String::new()
        };
        format!("{parent} pgid {} sid {}{z}", self.pgid, self.sid)
    }
}

/// The state of a whole process tree, compared before dump / after restore.
/// A single process is a tree of one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeSnapshot {
    pub root: i32,
    pub procs: BTreeMap<i32, TreeProc>,
}

impl TreeSnapshot {
    /// Reads the tree below `root` from /proc. Fails when the root is gone
    /// or a live process cannot be read (it may have exited meanwhile).
    pub fn take(root: i32) -> Result<TreeSnapshot, String> {
        let stats = walk_tree(&[root]);
        if stats.first().map(|s| s.pid) != Some(root) {
            return Err(format!("pid {root} is gone"));
        }
        let mut procs = BTreeMap::new();
        for st in stats {
            let zombie = st.is_zombie();
            let snap = if zombie {
                None
            } else {
                Some(Snapshot::take(st.pid).map_err(|e| format!("pid {}: {e}", st.pid))?)
            };
            procs.insert(
                st.pid,
                TreeProc {
                    pid: st.pid,
                    ppid: (st.pid != root).then_some(st.ppid),
                    pgid: st.pgid,
                    sid: st.sid,
                    zombie,
                    exit_status: if zombie { st.exit_code } else { 0 },
                    snap,
                    start: st.start,
                },
            );
        }
        Ok(TreeSnapshot { root, procs })
    }

    /// The root's per-process state. Panics if the root was a zombie.
    pub fn root(&self) -> &Snapshot {
        self.procs[&self.root]
            .snap
            .as_ref()
            .expect("the root of a tree snapshot is live")
    }

    /// Per-process state of `pid`, when it is a live member of the tree.
    pub fn get(&self, pid: i32) -> Option<&Snapshot> {
        self.procs.get(&pid)?.snap.as_ref()
    }

    pub fn pids(&self) -> Vec<i32> {
        self.procs.keys().copied().collect()
    }

    /// Pids of the zombies of the tree.
    pub fn zombies(&self) -> Vec<i32> {
        self.procs
            .values()
            .filter(|p| p.zombie)
            .map(|p| p.pid)
            .collect()
    }

    fn map_snaps(mut self, f: impl Fn(Snapshot) -> Snapshot) -> TreeSnapshot {
        for p in self.procs.values_mut() {
            p.snap = p.snap.take().map(&f);
        }
        self
    }

    /// [`Snapshot::without_pos`] for every process of the tree.
    pub fn without_pos(self, fds: &[i32]) -> TreeSnapshot {
        self.map_snaps(|s| s.without_pos(fds))
    }

    /// [`Snapshot::identity`] for every process of the tree.
    pub fn identity(&self) -> TreeSnapshot {
        self.clone().map_snaps(|s| s.identity())
    }

    /// Human-readable differences between `self` (before) and `other`
    /// (after); empty when they match. Lines of a single-process tree name
    /// the pid too, so messages look the same for trees and single
    /// processes.
    pub fn diff(&self, other: &TreeSnapshot) -> Vec<String> {
        let mut d = Vec::new();
        if self.root != other.root {
            d.push(format!("root pid: {} -> {}", self.root, other.root));
        }
        for (pid, a) in &self.procs {
            let Some(b) = other.procs.get(pid) else {
                d.push(format!(
                    "pid {pid}: missing after restore ({})",
                    a.summary()
                ));
                continue;
            };
            if a.ppid != b.ppid {
                d.push(format!("pid {pid}: parent {:?} -> {:?}", a.ppid, b.ppid));
            }
            if (a.pgid, a.sid) != (b.pgid, b.sid) {
                d.push(format!(
                    "pid {pid}: pgid/sid {}/{} -> {}/{}",
                    a.pgid, a.sid, b.pgid, b.sid
                ));
            }
            match (a.zombie, b.zombie) {
                (true, false) => d.push(format!("pid {pid}: zombie -> live")),
                (false, true) => d.push(format!(
                    "pid {pid}: live -> zombie (status {:#x})",
                    b.exit_status
                )),
                (true, true) if a.exit_status != b.exit_status => d.push(format!(
                    "pid {pid}: zombie exit status {:#x} -> {:#x}",
                    a.exit_status, b.exit_status
                )),
                _ => {}
            }
            if let (Some(sa), Some(sb)) = (&a.snap, &b.snap) {
                // pgid/sid were compared above, for zombies too.
                d.extend(
                    sa.diff(sb)
                        .into_iter()
                        .filter(|l| !l.starts_with("pgid/sid:"))
                        .map(|l| format!("pid {pid}: {l}")),
                );
            }
        }
        for (pid, b) in &other.procs {
            if !self.procs.contains_key(pid) {
                d.push(format!("pid {pid}: new after restore ({})", b.summary()));
            }
        }
        d
    }

    /// Live processes of the tree that are now stopped or traced (after a
    /// dump with `--leave-running` nothing may stay frozen or attached).
    pub fn stopped_or_traced(&self) -> Vec<String> {
        let mut v = Vec::new();
        for p in self.procs.values().filter(|p| !p.zombie) {
            let Some(st) = proc_stat(p.pid) else { continue };
            if matches!(st.state, 'T' | 't') {
                v.push(format!("pid {} is stopped (state {})", p.pid, st.state));
            }
            let status = fs::read_to_string(format!("/proc/{}/status", p.pid)).unwrap_or_default();
            match status_field(&status, "TracerPid").as_deref() {
                Some("0") | None => {}
                Some(t) => v.push(format!("pid {} is traced by {t}", p.pid)),
            }
        }
        v
    }
}

impl StateDiff for TreeSnapshot {
    fn state_diff(&self, after: &Self) -> Vec<String> {
        self.diff(after)
    }
}

/// Sum of the context switches of every live process of the tree below
/// `root` (see [`super::ctxt_switches`]): "is anything in it progressing".
pub fn tree_ctxt_switches(root: i32) -> u64 {
    walk_tree(&[root])
        .iter()
        .filter(|s| !s.is_zombie())
        .map(|s| super::ctxt_switches(s.pid))
        .sum()
}

/// Every process of a workload, found as described in the module doc:
/// live processes with cwd `dir`, processes of `known` (pid -> start time)
/// that still have that start time, members of their sessions, and all
/// their descendants.
///
/// `sessions` carries the workload's sessions from one call to the next
/// while they exist: a dump kills a tree at once, and its zombies (no cwd,
/// possibly forked after the last walk) are then recognised only by their
/// session, after the process that proved the session ours has been
/// reaped. A session id stays unused for a new session as long as any
/// process has it, so a session seen without a gap (callers poll every
/// few ms) is still the same session; one with no member left is
/// forgotten. The test process's own session is never taken (a tree
/// restored with `--shell-job` may join it).
pub(crate) fn workload_procs(
    dir: &Path,
    known: &BTreeMap<i32, u64>,
    sessions: &mut BTreeSet<i32>,
) -> Vec<ProcStat> {
    let in_dir = |pid: i32| {
        fs::read_link(format!("/proc/{pid}/cwd"))
            .map(|c| c == dir)
            .unwrap_or(false)
    };
    let Ok(rd) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let me = std::process::id() as i32;
    // SAFETY: getsid(0) has no preconditions.
    let my_sid = unsafe { libc::getsid(0) };
    let all: Vec<ProcStat> = rd
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<i32>().ok())
        .filter(|&pid| pid != me)
        .filter_map(proc_stat)
        .collect();
    let present: BTreeSet<i32> = all.iter().map(|p| p.sid).collect();
    sessions.retain(|s| present.contains(s));
    let mut seeds = Vec::new();
    for st in &all {
        let known_here = known.get(&st.pid) == Some(&st.start);
        if known_here || (!st.is_zombie() && in_dir(st.pid)) {
            seeds.push(st.pid);
            if st.sid != my_sid {
                sessions.insert(st.sid);
            }
        }
    }
    seeds.extend(
        all.iter()
            .filter(|p| sessions.contains(&p.sid))
            .map(|p| p.pid),
    );
    walk_tree(&seeds)
        .into_iter()
        .filter(|p| p.pid != me)
        .collect()
}

/// A process of a workload's session, from /proc/PID/stat.
#[derive(Debug, Clone, Copy)]
pub struct Member {
    pub pid: i32,
    pub ppid: i32,
    pub state: char,
}

/// All processes whose session id is `sid` (including zombies).
pub fn session_members(sid: i32) -> Vec<Member> {
    let mut v = Vec::new();
    let Ok(rd) = fs::read_dir("/proc") else {
        return v;
    };
    for e in rd.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(i) = stat.rfind(')') else { continue };
        let f: Vec<&str> = stat[i + 1..].split_whitespace().collect();
        // state ppid pgrp session
        let (Some(state), Some(ppid), Some(session)) = (
            f.first().and_then(|s| s.chars().next()),
            f.get(1).and_then(|s| s.parse().ok()),
            f.get(3).and_then(|s| s.parse::<i32>().ok()),
        ) else {
            continue;
        };
        if session == sid {
            v.push(Member { pid, ppid, state });
        }
    }
    v
}

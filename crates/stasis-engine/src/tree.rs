//! The shape of a process tree: who creates whom, and in what order, so
//! that every process gets back its parent, session and process group.
//!
//! Restore creates the tree top-down with clone3(`set_tid`): each process
//! forks its own children while it sets itself up. Sessions follow from
//! that order and setsid(2); process groups are set afterwards with
//! setpgid(2), leaders first.
//!
//! * A process that leads its session (sid == pid) calls setsid after it
//!   has forked the children that stay in its parent's session, and before
//!   it forks the children that belong to its own. So a child may be in its
//!   parent's session, or in the session its parent had before its own
//!   setsid; anything else (e.g. an orphan adopted by a subreaper of
//!   another session) is refused at dump, naming the process.
//! * A process group whose leader has exited still exists while members
//!   remain. Restore recreates its leader as a short-lived helper process
//!   with that pid, forked by the group's first member; the members join
//!   the group, then the helper is killed and reaped by that member, so
//!   nobody else ever sees it.
//! * With `--shell-job` the root's session and group belong to the shell
//!   outside the tree; they map to the restoring shell's.
//!
//! The same planner runs at dump, on the records just collected, so a tree
//! that restore could not recreate is refused before the image is written.

use std::collections::{BTreeMap, BTreeSet};

use stasis_image::Process;

/// Where a process's session or group comes from at restore.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// An id of the tree (a process of the image or a helper).
    Tree(u32),
    /// The shell's, outside the tree (`--shell-job`): the restorer's own.
    Outside,
}

/// How one process of the image is created.
#[derive(Debug, Clone, Default)]
pub struct Node {
    /// Index in `image.processes`.
    pub idx: usize,
    /// Children forked before this process's setsid (they keep the
    /// session it was created in), as indices.
    pub early: Vec<usize>,
    /// Calls setsid (it leads its own session).
    pub setsid: bool,
    /// Children forked after setsid (or all, without it).
    pub late: Vec<usize>,
    /// Dead-leader group helpers this process forks, by pid.
    pub helpers: Vec<u32>,
}

#[derive(Debug, Clone)]
pub struct Plan {
    /// One per process, same order as `image.processes`.
    pub nodes: Vec<Node>,
    pub root: usize,
    /// Helper pid -> index of the process that forks and reaps it.
    pub helpers: BTreeMap<u32, usize>,
    /// Target group of every process.
    pub pgid: Vec<Origin>,
}

/// Plans the creation of `procs` (root `root_pid`). `exists` tells
/// whether a pid outside the image is alive now (at dump: a group leader
/// outside the tree is refused; a dead one gets a helper).
pub fn plan(
    procs: &[Process],
    root_pid: u32,
    shell_job: bool,
    exists: &dyn Fn(u32) -> bool,
) -> Result<Plan, String> {
    let index: BTreeMap<u32, usize> = procs.iter().enumerate().map(|(i, p)| (p.pid, i)).collect();
    let root = *index
        .get(&root_pid)
        .ok_or_else(|| format!("the root pid {root_pid} is not in the image"))?;
    let mut nodes: Vec<Node> = (0..procs.len())
        .map(|idx| Node {
            idx,
            ..Node::default()
        })
        .collect();
    let rootp = &procs[root];
    if rootp.sid == rootp.pid {
        nodes[root].setsid = true;
    } else if !shell_job {
        return Err(format!(
            "pid {root_pid} is not a session leader; pass --shell-job to checkpoint a job of a shell"
        ));
    }
    plan_sessions(procs, root, shell_job, &mut nodes)?;
    let (helpers, pgid) = plan_groups(procs, &index, rootp, shell_job, exists)?;
    for (&h, &by) in &helpers {
        nodes[by].helpers.push(h);
    }
    Ok(Plan {
        nodes,
        root,
        helpers,
        pgid,
    })
}

/// The session `p` must end up in: the root's outside session for a
/// shell job, or its own.
fn sid_of(p: &Process, rootp: &Process, shell_job: bool) -> Origin {
    if shell_job && p.sid == rootp.sid && p.sid != rootp.pid {
        Origin::Outside
    } else {
        Origin::Tree(p.sid)
    }
}

/// Who forks whom, and before or after its own setsid, so that every
/// process gets its session; breadth-first from the root (`root`),
/// parents before children.
fn plan_sessions(
    procs: &[Process],
    root: usize,
    shell_job: bool,
    nodes: &mut [Node],
) -> Result<(), String> {
    let rootp = &procs[root];
    let sid_of = |p: &Process| sid_of(p, rootp, shell_job);
    // The session each process has right after its creation.
    let mut initial: Vec<Option<Origin>> = vec![None; procs.len()];
    initial[root] = Some(Origin::Outside);
    let mut children: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for (i, p) in procs.iter().enumerate() {
        if i != root {
            children.entry(p.ppid).or_default().push(i);
        }
    }
    let mut queue = std::collections::VecDeque::from([root]);
    let mut seen = BTreeSet::from([root]);
    while let Some(pi) = queue.pop_front() {
        let parent = &procs[pi];
        let Some(before) = initial[pi] else {
            return Err(format!(
                "pid {} was reached before its parent",
                procs[pi].pid
            ));
        };
        let after = sid_of(parent);
        for &ci in children.get(&parent.pid).map(Vec::as_slice).unwrap_or(&[]) {
            if !seen.insert(ci) {
                continue;
            }
            let c = &procs[ci];
            let want = sid_of(c);
            if c.sid == c.pid {
                nodes[ci].setsid = true;
                nodes[pi].late.push(ci);
                initial[ci] = Some(after);
            } else if want == after {
                nodes[pi].late.push(ci);
                initial[ci] = Some(after);
            } else if want == before {
                nodes[pi].early.push(ci);
                initial[ci] = Some(before);
            } else {
                return Err(format!(
                    "pid {} is in session {} but its parent {} is in session {}; stasis cannot recreate that session layout yet",
                    c.pid, c.sid, parent.pid, parent.sid
                ));
            }
            queue.push_back(ci);
        }
    }
    if let Some(p) = procs.iter().enumerate().find(|(i, _)| !seen.contains(i)) {
        return Err(format!(
            "pid {} has parent {}, which is not in the tree",
            p.1.pid, p.1.ppid
        ));
    }
    Ok(())
}

/// Every process's group, and a helper (forked by the group's first
/// member) in place of each exited leader: helper pid -> that member.
#[allow(clippy::type_complexity)]
fn plan_groups(
    procs: &[Process],
    index: &BTreeMap<u32, usize>,
    rootp: &Process,
    shell_job: bool,
    exists: &dyn Fn(u32) -> bool,
) -> Result<(BTreeMap<u32, usize>, Vec<Origin>), String> {
    let sid_of = |p: &Process| sid_of(p, rootp, shell_job);
    let mut helpers = BTreeMap::new();
    let mut pgid = Vec::with_capacity(procs.len());
    for (i, p) in procs.iter().enumerate() {
        let o = if index.contains_key(&p.pgid) {
            let leader = &procs[index[&p.pgid]];
            if leader.sid != p.sid {
                return Err(format!(
                    "pid {} is in process group {} of another session",
                    p.pid, p.pgid
                ));
            }
            Origin::Tree(p.pgid)
        } else if shell_job && p.pgid == rootp.pgid && sid_of(p) == Origin::Outside {
            Origin::Outside
        } else if exists(p.pgid) {
            return Err(format!(
                "pid {} is in process group {}, whose leader is outside the checkpointed tree",
                p.pid, p.pgid
            ));
        } else {
            // Leader gone: the first member forks a helper in its place.
            if sid_of(p) == Origin::Outside {
                return Err(format!(
                    "pid {} is in process group {} of the outside session, whose leader has exited",
                    p.pid, p.pgid
                ));
            }
            helpers.entry(p.pgid).or_insert(i);
            Origin::Tree(p.pgid)
        };
        pgid.push(o);
    }
    Ok((helpers, pgid))
}

/// Indices of `plan`'s processes in creation order (parents first).
pub fn creation_order(plan: &Plan) -> Vec<usize> {
    let mut out = vec![plan.root];
    let mut i = 0;
    while i < out.len() {
        let n = &plan.nodes[out[i]];
        out.extend(n.early.iter().chain(&n.late).copied());
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pid: u32, ppid: u32, pgid: u32, sid: u32) -> Process {
        Process {
            pid,
            ppid,
            pgid,
            sid,
            ..Default::default()
        }
    }

    #[test]
    fn sessions_and_groups() {
        let procs = vec![
            p(10, 1, 10, 10),
            p(11, 10, 11, 10),
            p(12, 11, 11, 10),
            p(13, 10, 13, 13),
            p(14, 13, 13, 13),
            p(15, 10, 99, 10), // dead leader 99
        ];
        let plan = plan(&procs, 10, false, &|_| false).unwrap();
        assert!(plan.nodes[0].setsid);
        assert_eq!(plan.nodes[0].late, vec![1, 3, 5]);
        assert!(plan.nodes[3].setsid);
        assert_eq!(plan.helpers.get(&99), Some(&5));
        assert_eq!(creation_order(&plan), vec![0, 1, 3, 5, 2, 4]);
    }

    #[test]
    fn child_keeps_parents_old_session() {
        // 11 forked 12, then called setsid.
        let procs = vec![p(10, 1, 10, 10), p(11, 10, 11, 11), p(12, 11, 10, 10)];
        let plan = plan(&procs, 10, false, &|_| false).unwrap();
        assert_eq!(plan.nodes[1].early, vec![2]);
    }

    #[test]
    fn refusals() {
        let procs = vec![p(10, 1, 10, 10), p(11, 10, 11, 11), p(12, 11, 12, 77)];
        assert!(plan(&procs, 10, false, &|_| false)
            .unwrap_err()
            .contains("session 77"));
        let procs = vec![p(10, 1, 10, 10), p(11, 10, 50, 10)];
        assert!(plan(&procs, 10, false, &|pid| pid == 50)
            .unwrap_err()
            .contains("outside"));
        let procs = vec![p(10, 1, 10, 5)];
        assert!(plan(&procs, 10, false, &|_| true).is_err());
        assert!(plan(&procs, 10, true, &|_| true).is_ok());
    }
}

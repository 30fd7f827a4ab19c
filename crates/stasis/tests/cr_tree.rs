//! Process trees: the `tree_*` C workloads, each run plainly (`plain_tree_*`,
//! no checkpoint: validates the workload, the shape the harness sees, and
//! that the harness finds and removes every process of the tree) and
//! through the C/R cycle in every mode (`cr_tree_*`), where the whole tree
//! is compared before/after (pids, parents, groups, sessions, zombies and
//! every live process's state) and the root's verdict covers every
//! process's own checks. Needs root for the C/R part.

mod common;

use common::{
    assert_same, cr_all_modes, dump, proc_stat, require_root, restore, wait_for, Spawn,
    TreeSnapshot, Workload,
};
use std::collections::BTreeSet;
use std::thread::sleep;
use std::time::{Duration, Instant};

/// What a workload's tree must look like at READY.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Shape {
    /// Processes, zombies included.
    procs: usize,
    zombies: usize,
    /// Distinct process groups and sessions.
    groups: usize,
    sessions: usize,
    /// Longest parent chain below the root (root alone: 0).
    depth: usize,
}

fn shape(t: &TreeSnapshot) -> Shape {
    let depth_of = |mut pid: i32| {
        let mut d = 0;
        while let Some(pp) = t.procs.get(&pid).and_then(|p| p.ppid) {
            d += 1;
            pid = pp;
            assert!(d <= t.procs.len(), "parent loop in {t:?}");
        }
        d
    };
    Shape {
        procs: t.procs.len(),
        zombies: t.zombies().len(),
        groups: t
            .procs
            .values()
            .map(|p| p.pgid)
            .collect::<BTreeSet<_>>()
            .len(),
        sessions: t
            .procs
            .values()
            .map(|p| p.sid)
            .collect::<BTreeSet<_>>()
            .len(),
        depth: t.pids().into_iter().map(depth_of).max().unwrap_or(0),
    }
}

/// Runs tree workload `name` without a checkpoint: its tree has `want`'s
/// shape and is stable, SIGTERM gives PASS, and afterwards no process of
/// the tree is left (the root reaped everything). Returns the snapshot.
fn plain_tree(name: &str, args: &[&str], want: Shape) -> TreeSnapshot {
    let w = Workload::spawn_c(
        name,
        Spawn {
            args: args.iter().map(|s| s.to_string()).collect(),
            ..Spawn::default()
        },
    );
    sleep(Duration::from_millis(50));
    let before = w.snapshot();
    assert_eq!(shape(&before), want, "{name}: tree at READY: {before:#?}");
    sleep(Duration::from_millis(250));
    assert_same(
        &before,
        &w.snapshot(),
        &format!("{name} (plain, no checkpoint)"),
    );
    if let Err(e) = w.terminate_and_verdict() {
        panic!("plain {name}: {e}");
    }
    w.wait_gone();
    assert_all_gone(&before, name);
    before
}

/// Every process of `t` is gone (its pid unused, or used by a process
/// started later).
fn assert_all_gone(t: &TreeSnapshot, what: &str) {
    let left: Vec<String> = t
        .procs
        .values()
        .filter_map(|p| {
            let st = proc_stat(p.pid)?;
            (st.start == p.start).then(|| format!("{} (state {})", p.pid, st.state))
        })
        .collect();
    assert!(
        left.is_empty(),
        "{what}: processes of the tree left: {left:?}"
    );
}

#[test]
fn plain_tree_chain() {
    plain_tree(
        "tree_chain",
        &[],
        Shape {
            procs: 6,
            zombies: 0,
            groups: 1,
            sessions: 1,
            depth: 5,
        },
    );
}

#[test]
fn plain_tree_fanout() {
    plain_tree(
        "tree_fanout",
        &[],
        Shape {
            procs: 17,
            zombies: 0,
            groups: 1,
            sessions: 1,
            depth: 1,
        },
    );
}

#[test]
fn plain_tree_pgroups() {
    // R, A, B, D (C has exited), E, F; groups R, A, C, E; sessions R, E.
    let t = plain_tree(
        "tree_pgroups",
        &[],
        Shape {
            procs: 6,
            zombies: 0,
            groups: 4,
            sessions: 2,
            depth: 2,
        },
    );
    // The group whose leader exited: its id is no pid of the tree.
    let pids: BTreeSet<i32> = t.pids().into_iter().collect();
    let orphan_groups: Vec<i32> = t
        .procs
        .values()
        .map(|p| p.pgid)
        .filter(|g| !pids.contains(g))
        .collect();
    assert_eq!(
        orphan_groups.len(),
        1,
        "one member of a leaderless group: {t:#?}"
    );
}

#[test]
fn plain_tree_zombie() {
    let t = plain_tree(
        "tree_zombie",
        &[],
        Shape {
            procs: 5,
            zombies: 3,
            groups: 1,
            sessions: 1,
            depth: 1,
        },
    );
    // The harness records zombies with their wait status: exit 3, exit 5,
    // killed by SIGUSR2.
    let mut statuses: Vec<i32> = t
        .procs
        .values()
        .filter(|p| p.zombie)
        .map(|p| p.exit_status)
        .collect();
    statuses.sort_unstable();
    assert_eq!(statuses, vec![libc::SIGUSR2, 3 << 8, 5 << 8], "{t:#?}");
}

#[test]
fn plain_tree_shmem() {
    plain_tree(
        "tree_shmem",
        &[],
        Shape {
            procs: 3,
            zombies: 0,
            groups: 1,
            sessions: 1,
            depth: 1,
        },
    );
}

#[test]
fn plain_tree_cow() {
    plain_tree(
        "tree_cow",
        &[],
        Shape {
            procs: 4,
            zombies: 0,
            groups: 1,
            sessions: 1,
            depth: 1,
        },
    );
}

#[test]
fn plain_tree_offsets() {
    plain_tree(
        "tree_offsets",
        &[],
        Shape {
            procs: 2,
            zombies: 0,
            groups: 1,
            sessions: 1,
            depth: 1,
        },
    );
}

#[test]
fn plain_tree_pipes() {
    plain_tree(
        "tree_pipes",
        &[],
        Shape {
            procs: 2,
            zombies: 0,
            groups: 1,
            sessions: 1,
            depth: 1,
        },
    );
}

#[test]
fn plain_tree_many() {
    plain_tree(
        "tree_many",
        &[],
        Shape {
            procs: 100,
            zombies: 0,
            groups: 1,
            sessions: 1,
            depth: 2,
        },
    );
}

const SERVER: Shape = Shape {
    procs: 5,
    zombies: 0,
    groups: 1,
    sessions: 1,
    depth: 1,
};

#[test]
fn plain_tree_server() {
    plain_tree("tree_server", &[], SERVER);
}

#[test]
fn plain_tree_server_progress() {
    plain_tree("tree_server", &["--progress"], SERVER);
}

/// The harness kills a whole tree, also processes that left the root's
/// session (setsid) or were orphaned into the test process, and reaps
/// what is ours: nothing of the tree is left afterwards.
#[test]
fn harness_kill_reaches_the_whole_tree() {
    let w = Workload::spawn_c("tree_pgroups", Spawn::default());
    let t = w.snapshot();
    let other_session: Vec<i32> = t
        .procs
        .values()
        .filter(|p| p.sid != w.pid)
        .map(|p| p.pid)
        .collect();
    assert_eq!(other_session.len(), 2, "E and F: {t:#?}");
    w.kill();
    assert_all_gone(&t, "after Workload::kill");
    assert!(!w.is_running());
}

/// The tree diff sees a process die (live -> zombie, with its status) and
/// its orphaned descendants leave the tree (reparented to the test
/// process, a subreaper); the harness still removes all of them.
#[test]
fn harness_tree_diff_sees_changes() {
    let w = Workload::spawn_c("tree_chain", Spawn::default());
    let before = w.snapshot();
    // Level 2: the grandchild of the root.
    let level = |n: usize| {
        let mut pid = w.pid;
        for _ in 0..n {
            pid = *before
                .procs
                .values()
                .find(|p| p.ppid == Some(pid))
                .map(|p| &p.pid)
                .expect("chain link");
        }
        pid
    };
    let (l2, deeper) = (level(2), [level(3), level(4), level(5)]);
    // SAFETY: kill has no memory-safety preconditions; l2 is a live member
    // of this workload's tree (its parent, level 1, does not reap it).
    assert_eq!(unsafe { libc::kill(l2, libc::SIGKILL) }, 0);
    let start = Instant::now();
    while proc_stat(l2).is_some_and(|s| !s.is_zombie()) && start.elapsed() < Duration::from_secs(5)
    {
        sleep(Duration::from_millis(10));
    }
    let d = before.diff(&w.snapshot());
    let want_zombie = format!("pid {l2}: live -> zombie (status {:#x})", libc::SIGKILL);
    assert!(d.contains(&want_zombie), "{want_zombie:?} not in {d:#?}");
    for p in deeper {
        assert!(
            d.iter()
                .any(|l| l.starts_with(&format!("pid {p}: missing after restore"))),
            "pid {p} not reported missing: {d:#?}"
        );
    }
    w.kill();
    assert_all_gone(&before, "after Workload::kill");
}

// ---------------------------------------------------------------------------
// Checkpoint/restore
// ---------------------------------------------------------------------------

#[test]
fn cr_tree_chain() {
    if !require_root() {
        return;
    }
    cr_all_modes("tree_chain", Spawn::default());
}

#[test]
fn cr_tree_fanout() {
    if !require_root() {
        return;
    }
    cr_all_modes("tree_fanout", Spawn::default());
}

#[test]
fn cr_tree_pgroups() {
    if !require_root() {
        return;
    }
    cr_all_modes("tree_pgroups", Spawn::default());
}

#[test]
fn cr_tree_zombie() {
    if !require_root() {
        return;
    }
    cr_all_modes("tree_zombie", Spawn::default());
}

#[test]
fn cr_tree_shmem() {
    if !require_root() {
        return;
    }
    cr_all_modes("tree_shmem", Spawn::default());
}

/// Private memory shared copy-on-write comes back shared (the workload
/// checks its Shared_Dirty), with each process's own changes.
#[test]
fn cr_tree_cow() {
    if !require_root() {
        return;
    }
    cr_all_modes("tree_cow", Spawn::default());
}

#[test]
fn cr_tree_offsets() {
    if !require_root() {
        return;
    }
    cr_all_modes("tree_offsets", Spawn::default());
}

#[test]
fn cr_tree_pipes() {
    if !require_root() {
        return;
    }
    cr_all_modes("tree_pipes", Spawn::default());
}

#[test]
fn cr_tree_many() {
    if !require_root() {
        return;
    }
    cr_all_modes("tree_many", Spawn::default());
}

#[test]
fn cr_tree_server() {
    if !require_root() {
        return;
    }
    cr_all_modes("tree_server", Spawn::default());
}

/// Parses "counter C S0 S1 S2 S3" lines of `tree_server --progress`.
fn counter_line(line: &str) -> Option<Vec<u64>> {
    let v: Option<Vec<u64>> = line
        .strip_prefix("counter ")?
        .split_whitespace()
        .map(|s| s.parse().ok())
        .collect();
    v.filter(|v| v.len() == 5)
}

/// The server watched from outside across a kill/restore: the shared
/// counter and every worker's slot continue from their dump-time values
/// (never back, never reset) and keep increasing.
#[test]
fn cr_tree_server_progress() {
    if !require_root() {
        return;
    }
    let w = Workload::spawn_c(
        "tree_server",
        Spawn {
            args: vec!["--progress".into()],
            ..Spawn::default()
        },
    );
    let last = |log: &str| log.lines().rev().find_map(counter_line);
    wait_for(&w, Duration::from_secs(10), "counter >= 100", || {
        last(&w.log()).filter(|c| c[0] >= 100)
    });
    let before = w.snapshot();
    let img = w.dir.join("img");
    dump(&w, &img, &[]);
    w.wait_gone();
    let at_dump = last(&w.log()).expect("counter lines before the dump");
    w.mark(&format!("restore from {}", img.display()));
    restore(&img, &[]);
    assert!(
        w.is_running(),
        "not running after restore: {}; log:\n{}",
        w.describe_exit(),
        w.log()
    );
    let diff = before.diff(&w.snapshot());
    let after = wait_for(
        &w,
        Duration::from_secs(10),
        "3 counter lines after restore",
        || {
            let log = w.log();
            let cut = log.rfind("#harness: restore")?;
            let v: Vec<Vec<u64>> = log[cut..].lines().filter_map(counter_line).collect();
            (v.len() >= 3).then_some(v)
        },
    );
    for (k, name) in ["counter", "slot 0", "slot 1", "slot 2", "slot 3"]
        .iter()
        .enumerate()
    {
        assert!(
            after[0][k] >= at_dump[k],
            "{name}: {} after restore < {} at dump (reset?)",
            after[0][k],
            at_dump[k]
        );
        assert!(
            after[2][k] > after[0][k],
            "{name}: not advancing after restore ({} -> {})",
            after[0][k],
            after[2][k]
        );
    }
    if let Err(e) = w.terminate_and_verdict() {
        panic!("tree_server --progress: {e}");
    }
    assert!(
        diff.is_empty(),
        "tree state differs after restore:\n  {}",
        diff.join("\n  ")
    );
}

#[test]
fn plain_tree_unlinked() {
    plain_tree(
        "tree_unlinked",
        &[],
        Shape {
            procs: 2,
            zombies: 0,
            groups: 1,
            sessions: 1,
            depth: 1,
        },
    );
}

#[test]
fn cr_tree_unlinked() {
    if !require_root() {
        return;
    }
    cr_all_modes("tree_unlinked", Spawn::default());
}

#[test]
fn plain_tree_clone() {
    plain_tree(
        "tree_clone",
        &[],
        Shape {
            procs: 4,
            zombies: 0,
            groups: 1,
            sessions: 1,
            depth: 1,
        },
    );
}

#[test]
fn cr_tree_clone() {
    if !require_root() {
        return;
    }
    cr_all_modes("tree_clone", Spawn::default());
}

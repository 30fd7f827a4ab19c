//! python3 `multiprocessing` through a kill/restore cycle: a producer and a
//! consumer process forked from the main one, connected by a bounded
//! `multiprocessing.Queue` (a pipe, three POSIX semaphores created with
//! sem_open, mapped from /dev/shm and unlinked at once, and a feeder thread
//! in each process that puts), the consumer reporting back to the main
//! process through a second queue. Needs root; skipped with a printed
//! reason when python3 is not installed.

mod common;

use common::*;
use std::cell::Cell;
use std::collections::BTreeSet;
use std::fs;
use std::time::Duration;

/// The queue's maxsize.
const MAXSIZE: i64 = 100;

/// The producer puts 0, 1, 2, ... on `q` (maxsize 100) with a 0.2 ms nap,
/// faster than the consumer takes them (1 ms nap each), so the queue stays
/// full: about 100 items in the pipe and the feeder thread's buffer, and
/// the producer mostly blocked in put(), in sem_wait on the queue's
/// semaphore, until the consumer's get() posts it. The consumer checks each
/// item is the next number; every 50 items (STEP) it writes
/// "N BACKLOG ok" (or "N BACKLOG BAD ...", for good, from the first item out
/// of order) to `status`, BACKLOG being q.qsize() (maxsize minus the
/// semaphore's value), and puts N on `res`. The main process takes the
/// reports from `res`, checks each is STEP more than the last, and writes
/// "M BACKLOG ok" / "M BACKLOG BAD ..." to `parent`. Status files are
/// replaced with rename, so a reader sees a whole line.
const SCRIPT: &str = r#"
import multiprocessing as mp, os, time

STEP = 50

def write_status(name, n, backlog, bad):
    with open(name + '.new', 'w') as f:
        f.write('%d %d %s\n' % (n, backlog, bad or 'ok'))
    os.rename(name + '.new', name)

def producer(q):
    i = 0
    while True:
        q.put(i)
        i += 1
        time.sleep(0.0002)

def consumer(q, res):
    n, bad = 0, ''
    while True:
        v = q.get()
        if v != n and not bad:
            bad = 'BAD got %d expected %d' % (v, n)
        n += 1
        if n % STEP == 0:
            write_status('status', n, q.qsize(), bad)
            res.put(n)
        time.sleep(0.001)

if __name__ == '__main__':
    ctx = mp.get_context('fork')
    q, res = ctx.Queue(maxsize=100), ctx.Queue()
    procs = [ctx.Process(target=producer, args=(q,), daemon=True),
             ctx.Process(target=consumer, args=(q, res), daemon=True)]
    for p in procs:
        p.start()
    m, bad = 0, ''
    while True:
        r = res.get()
        if r != m + STEP and not bad:
            bad = 'BAD got %d expected %d' % (r, m + STEP)
        m = r
        write_status('parent', m, res.qsize(), bad)
"#;

/// A status line: count, backlog, and "ok" or "BAD ...".
#[derive(Debug, Clone, PartialEq, Eq)]
struct Status {
    n: u64,
    backlog: i64,
    verdict: String,
}

fn read_status(w: &Workload, name: &str) -> Option<Status> {
    let s = fs::read_to_string(w.dir.join(name)).ok()?;
    let mut it = s.trim().splitn(3, ' ');
    Some(Status {
        n: it.next()?.parse().ok()?,
        backlog: it.next()?.parse().ok()?,
        verdict: it.next()?.to_string(),
    })
}

/// Both status lines, the consumer's and the main process's.
fn both(w: &Workload) -> Option<(Status, Status)> {
    Some((read_status(w, "status")?, read_status(w, "parent")?))
}

/// The live processes of the tree.
fn tree_pids(w: &Workload) -> Vec<i32> {
    walk_tree(&[w.pid])
        .iter()
        .filter(|p| !p.is_zombie())
        .map(|p| p.pid)
        .collect()
}

/// Threads of the live processes of the tree.
fn tree_threads(w: &Workload) -> usize {
    tree_pids(w)
        .iter()
        .map(|p| {
            fs::read_dir(format!("/proc/{p}/task"))
                .map(|d| d.count())
                .unwrap_or(0)
        })
        .sum()
}

/// The `dev inode` of every POSIX semaphore mapping of `pid`
/// ("/dev/shm/sem.NAME (deleted)", shared).
fn sem_maps(pid: i32) -> BTreeSet<String> {
    fs::read_to_string(format!("/proc/{pid}/maps"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("/dev/shm/sem.") && l.ends_with(" (deleted)"))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 6 && f[1].ends_with('s')).then(|| format!("{} {}", f[3], f[4]))
        })
        .collect()
}

/// Every process of the tree maps the same six semaphores (dev/inode;
/// three per queue: reader lock, writer lock, the bounded semaphore).
fn check_shared_sems(w: &Workload, when: &str) {
    let root = sem_maps(w.pid);
    assert_eq!(
        root.len(),
        6,
        "{when}: the main process maps {} semaphores, not 6: {root:?}",
        root.len()
    );
    for p in tree_pids(w) {
        assert_eq!(
            sem_maps(p),
            root,
            "{when}: pid {p} does not map the main process's semaphores"
        );
    }
}

/// The main process, producer and consumer run until the queue is full;
/// the dump catches them mid-stream (about 100 items in the pipe and the
/// feeder's buffer, the producer blocked on the shared semaphore, the
/// consumer napping or in get() holding the reader lock). After restore -d
/// the same three processes continue: the consumer's count goes on from
/// where it was, far beyond it, never drops (a restart would count from 0),
/// every item still arrives exactly once and in order, as does
/// every report to the main process, and the queue stays full and within
/// its bound (the semaphore's count matches what the pipe holds, and the
/// consumer's posts wake the producer).
#[test]
fn real_python_multiprocessing_queue() {
    if !require_root() {
        return;
    }
    let Some(py) = need("python3") else {
        return;
    };
    let w = Workload::spawn_cmd(
        py.to_str().expect("utf-8"),
        &["-c", SCRIPT],
        Spawn::default(),
        |w| {
            tree_pids(w).len() == 3
                && both(w).is_some_and(|(c, p)| c.n >= 500 && p.n >= 500 && c.backlog >= 50)
        },
    );
    let pids = tree_pids(&w);
    check_shared_sems(&w, "before the dump");
    // The three main threads and two feeder threads (the producer's for
    // `q`, the consumer's for `res`).
    assert_eq!(tree_threads(&w), 5, "threads of the tree {pids:?}");
    let before = w.snapshot().identity();
    let (pre_dump, _) = both(&w).expect("status files before the dump");

    kill_restore(&w);

    let after = w.snapshot().identity();
    assert_eq!(tree_pids(&w), pids, "processes after restore");
    assert_eq!(tree_threads(&w), 5, "threads after restore");
    check_shared_sems(&w, "after restore");
    // The last status written before the kill, or one just after.
    let (at_restore, parent_at_restore) = both(&w).expect("status files after restore");
    assert!(
        at_restore.n >= pre_dump.n,
        "status {at_restore:?} at the restore, {pre_dump:?} before the dump (restarted?)"
    );

    // Watch it run: counts never go back, the backlog stays within the
    // queue's bound, all stays ok.
    let target = at_restore.n + 2000;
    let last = Cell::new((at_restore.n, parent_at_restore.n));
    let (end, end_parent) = wait_for(
        &w,
        Duration::from_secs(30),
        "the consumer to get 2000 more items",
        || {
            let (c, p) = both(&w)?;
            let (prev, prev_parent) = last.get();
            let seen = format!(
                "restored at {at_restore:?} / {parent_at_restore:?}, \
                 now status {c:?}, parent {p:?}"
            );
            assert!(
                c.n >= prev && p.n >= prev_parent,
                "a count went back (restarted?): {seen}; log:\n{}",
                w.log()
            );
            assert!(
                c.verdict == "ok" && p.verdict == "ok",
                "items lost, repeated or out of order: {seen}; log:\n{}",
                w.log()
            );
            assert!(
                (0..=MAXSIZE).contains(&c.backlog) && (0..=MAXSIZE).contains(&p.backlog),
                "queue size out of bounds: {seen}; log:\n{}",
                w.log()
            );
            last.set((c.n, p.n));
            (c.n >= target && p.n >= target).then_some((c, p))
        },
    );
    eprintln!(
        "consumer {pre_dump:?} before the dump, {at_restore:?} at the restore, \
         {end:?} after; main process {parent_at_restore:?} at the restore, {end_parent:?} after"
    );
    // The producer still keeps the queue full.
    assert!(
        end.backlog >= MAXSIZE / 2,
        "the queue ran dry after the restore: {end:?}; log:\n{}",
        w.log()
    );
    assert_eq!(tree_pids(&w), pids, "processes after the run");
    let log = lines_after_restore(&w).join("\n");
    assert!(
        log.trim().is_empty(),
        "python wrote to stdout/stderr after restore:\n{log}"
    );
    let diff = before.diff(&after);
    w.kill();
    assert_no_diff(diff, "python multiprocessing");
}

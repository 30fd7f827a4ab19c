//! The process-tree workload ([`TreeWorkload`], C source `cr/treewl.c`):
//! a root and its children, each holding memory it checks on SIGUSR1.
//!
//! The shape is a fan: the root forks every other process, so each child's
//! parent is the root. All processes share the root's cwd, which is how
//! [`Workload::owns`] tells them from unrelated processes that might get a
//! recycled pid.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::process::{proc_ppid, wait_child};
use crate::workload::{Workload, WORKLOAD_TIMEOUT};

/// The tree workload's C source, compiled with `cc -O2` by `main`.
pub const TREE_WL_C: &str = include_str!("treewl.c");

/// How the processes' memory relates.
#[derive(Clone, Copy)]
pub enum Sharing {
    /// Each process maps and fills its own memory after the fork: no page
    /// is shared.
    Private,
    /// The root fills the memory before forking; the children only read
    /// it, so every process maps the same frames copy-on-write.
    Cow,
}

/// A running tree of `pids.len()` processes; SIGKILLed (every process) on
/// drop.
pub struct TreeWorkload {
    /// The root.
    pub w: Workload,
    /// Process `idx`'s pid; index 0 is the root.
    pub pids: Vec<i32>,
    verifies: u64,
    /// Set by [`TreeWorkload::finish`]: the tree is gone and reaped, and
    /// its pids may already belong to others.
    finished: bool,
}

/// Sum of a `/proc/PID/smaps_rollup` field over `pids`, in bytes.
fn smaps_sum(pids: &[i32], field: &str) -> u64 {
    pids.iter()
        .map(|p| {
            let path = format!("/proc/{p}/smaps_rollup");
            let s = fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
            let kib: u64 = s
                .lines()
                .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
                .unwrap_or_else(|| panic!("{path}: no {field} line"));
            kib * 1024
        })
        .sum()
}

impl TreeWorkload {
    /// Starts `n` processes of `bytes` each and waits until all of them
    /// are set up.
    pub fn start(bin: &Path, n: usize, bytes: u64, sharing: Sharing, dir: PathBuf) -> Self {
        let mode = match sharing {
            Sharing::Private => "private",
            Sharing::Cow => "cow",
        };
        let w = Workload::start(bin, &[&n.to_string(), &bytes.to_string(), mode], dir);
        let mut t = TreeWorkload {
            w,
            pids: vec![0; n],
            verifies: 0,
            finished: false,
        };
        let ready: Vec<(usize, i32, f64)> =
            t.w.wait_log(
                WORKLOAD_TIMEOUT,
                &format!("READY from {n} processes"),
                |log| {
                    if let Some(l) = log.lines().find(|l| l.starts_with("FAIL")) {
                        return Some(Err(l.to_string()));
                    }
                    let v: Vec<_> = log
                        .lines()
                        .filter_map(|l| {
                            let mut f = l.strip_prefix("READY ")?.split_whitespace();
                            Some((
                                f.next()?.parse().ok()?,
                                f.next()?.parse().ok()?,
                                f.next()?.parse().ok()?,
                            ))
                        })
                        .collect();
                    (v.len() >= n).then_some(Ok(v))
                },
            )
            .unwrap_or_else(|l| t.w.fail(&l));
        for &(idx, pid, _) in &ready {
            if idx >= n || t.pids[idx] != 0 {
                t.w.fail(&format!("bad or repeated READY index {idx}"));
            }
            t.pids[idx] = pid;
        }
        if t.pids[0] != t.w.pid {
            t.w.fail(&format!("READY 0 names pid {}", t.pids[0]));
        }
        t.check_shape("after start");
        for &p in &t.pids {
            t.w.assert_fds_of(p);
        }
        let fill: f64 = ready.iter().map(|r| r.2).sum();
        eprintln!(
            "  workload: {n} processes, root pid {}, filled in {fill:.0} ms in all",
            t.w.pid
        );
        t
    }

    fn root(&self) -> i32 {
        self.w.pid
    }

    /// The root's current children (empty once it is gone).
    fn children(&self) -> Vec<i32> {
        let r = self.root();
        fs::read_to_string(format!("/proc/{r}/task/{r}/children"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|s| s.parse().ok())
            .collect()
    }

    /// Every process runs, in our dir, and the root's children are
    /// exactly the other processes.
    fn check_shape(&self, when: &str) {
        for &p in &self.pids {
            if !self.w.owns(p) {
                self.w.fail(&format!("{when}: pid {p} is not running"));
            }
        }
        let want: BTreeSet<i32> = self.pids[1..].iter().copied().collect();
        let got: BTreeSet<i32> = self.children().into_iter().collect();
        if got != want {
            let missing: Vec<_> = want.difference(&got).collect();
            let extra: Vec<_> = got.difference(&want).collect();
            self.w.fail(&format!(
                "{when}: children of the root: missing {missing:?}, unexpected {extra:?}"
            ));
        }
    }

    /// SIGUSR1 to every process; each checks its pid, parent and memory.
    /// Requires `VERIFY k idx pid OK` from all of them; returns the slowest
    /// check's ms.
    pub fn verify(&mut self) -> f64 {
        self.verifies += 1;
        let k = self.verifies;
        let n = self.pids.len();
        for &p in &self.pids {
            self.w.signal_pid(p, libc::SIGUSR1);
        }
        let prefix = format!("VERIFY {k} ");
        let lines: Vec<String> =
            self.w
                .wait_log(WORKLOAD_TIMEOUT, &format!("VERIFY {k} from {n}"), |log| {
                    let v: Vec<String> = log
                        .lines()
                        .filter(|l| l.starts_with(&prefix))
                        .map(str::to_string)
                        .collect();
                    (v.len() >= n || v.iter().any(|l| !l.contains(" OK "))).then_some(v)
                });
        let mut seen = vec![false; n];
        let mut slowest = 0f64;
        for l in &lines {
            let f: Vec<&str> = l.split_whitespace().collect();
            let idx: usize = f.get(2).and_then(|s| s.parse().ok()).unwrap_or(usize::MAX);
            let pid: i32 = f.get(3).and_then(|s| s.parse().ok()).unwrap_or(0);
            if f.get(4) != Some(&"OK") {
                self.w.fail(&format!("memory check: {l}"));
            }
            if idx >= n || seen[idx] || self.pids[idx] != pid {
                self.w
                    .fail(&format!("unexpected or repeated check line: {l}"));
            }
            seen[idx] = true;
            slowest = slowest.max(f.get(5).and_then(|s| s.parse().ok()).unwrap_or(f64::NAN));
        }
        slowest
    }

    /// After a dump killed the tree: reaps every process (the root is our
    /// child; the others are reparented to us, the subreaper, when it
    /// dies) and waits until no pid of the tree is left in /proc.
    pub fn reap_after_dump(&self) {
        self.w.reap_after_dump();
        for &p in &self.pids[1..] {
            match wait_child(p, Duration::from_secs(30)) {
                Ok(st) if libc::WIFSIGNALED(st) && libc::WTERMSIG(st) == libc::SIGKILL => {}
                Ok(st) => self.w.fail(&format!(
                    "after dump: pid {p} exit status {}, want SIGKILL",
                    std::process::ExitStatus::from_raw(st)
                )),
                Err(e) => self.w.fail(&format!("after dump: {e}")),
            }
        }
        let start = Instant::now();
        for &p in &self.pids[1..] {
            while Path::new(&format!("/proc/{p}")).exists() {
                if start.elapsed() > Duration::from_secs(30) {
                    self.w
                        .fail(&format!("/proc/{p} still exists 30 s after the dump"));
                }
                sleep(Duration::from_millis(1));
            }
        }
    }

    /// After a restore: the root runs as our child, every other process
    /// with its old pid as the root's child.
    pub fn check_restored(&self) {
        self.w.check_restored();
        self.check_shape("after restore");
        for &p in &self.pids[1..] {
            if proc_ppid(p) != Some(self.root()) {
                self.w.fail(&format!(
                    "pid {p} restored with parent {:?}, want the root {}",
                    proc_ppid(p),
                    self.root()
                ));
            }
        }
    }

    /// (Rss, Pss) summed over the tree, in bytes.
    pub fn rss_pss(&self) -> (u64, u64) {
        (smaps_sum(&self.pids, "Rss"), smaps_sum(&self.pids, "Pss"))
    }

    /// SIGTERM to the root, which checks itself, stops and reaps every
    /// child (each checks itself and must exit 0) and must exit 0 with
    /// `PASS`.
    pub fn finish(&mut self) {
        self.w.signal(libc::SIGTERM);
        self.finished = true;
        match wait_child(self.root(), WORKLOAD_TIMEOUT) {
            Ok(st) if libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0 => {}
            Ok(st) => self.w.fail(&format!(
                "final check: exit status {}",
                std::process::ExitStatus::from_raw(st)
            )),
            Err(e) => self.w.fail(&format!("final check: {e}")),
        }
        let want = format!("PASS {} processes", self.pids.len());
        if !self.w.log().lines().any(|l| l.trim() == want) {
            self.w.fail(&format!("exited 0 without printing `{want}`"));
        }
    }
}

impl Drop for TreeWorkload {
    /// Kills whatever is left of the tree and reaps it: the root first,
    /// so that its children (and zombies) are reparented to us.
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let mut kids: Vec<i32> = self.children();
        kids.extend(self.pids[1..].iter().copied().filter(|&p| p > 0));
        kids.sort();
        kids.dedup();
        for &p in kids.iter().chain([&self.w.pid]) {
            if self.w.owns(p) {
                // SAFETY: kill has no memory-safety preconditions; `p` was
                // just checked to be one of this tree's processes.
                unsafe { libc::kill(p, libc::SIGKILL) };
            }
        }
        let _ = wait_child(self.w.pid, Duration::from_secs(10));
        for &p in &kids {
            let _ = wait_child(p, Duration::from_secs(5));
        }
    }
}

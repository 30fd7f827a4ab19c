//! Kill campaigns: stasis is sent SIGKILL at random moments of its run, and
//! its target must not notice.
//!
//! - Dumper death: whatever the moment, the target (the `guarded` workload:
//!   threads with masks of their own, a 20 ms interval timer, handlers)
//!   keeps running, untraced, and passes its own checks: timer ticking,
//!   masks, registers and FPU state, handlers, no mapping or fd left. A dump
//!   that finished before the kill is restored and checked instead.
//! - Restorer death: nothing half-restored is left. Either no process of
//!   the image exists, or the restore had finished and the tree passes its
//!   checks; a second restore of the same image then works.
//!
//! `STASIS_KILL_ROUNDS` sets the rounds per campaign (default 10, as CI
//! runs it; BENCHMARKS.md gives the figures for 100). Each round's moment
//! is drawn uniformly over 1.5x the duration of an uninterrupted run,
//! measured first; the seed is printed (`STASIS_KILL_SEED` replays it).
//! Needs root.

mod common;

use std::fs;
use std::path::Path;
use std::process::{Child, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::{proc_state, require_root, restore, status_field, Spawn, Workload};

fn rounds() -> usize {
    std::env::var("STASIS_KILL_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10)
}

/// xorshift64*, seeded from the clock unless `STASIS_KILL_SEED` is set.
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        let seed = std::env::var("STASIS_KILL_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
                    | 1
            });
        eprintln!("STASIS_KILL_SEED={seed}");
        Rng(seed)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1)
    }
}

/// A stasis run that may be killed; its stderr goes to a file, checked for
/// a panic once it is waited for (a killed run must not panic either).
struct Stasis {
    child: Child,
    err: std::path::PathBuf,
}

impl Stasis {
    fn kill(&mut self) -> std::io::Result<()> {
        self.child.kill()
    }

    fn wait(&mut self) -> std::io::Result<std::process::ExitStatus> {
        let st = self.child.wait()?;
        let text = fs::read(&self.err).unwrap_or_default();
        let _ = fs::remove_file(&self.err);
        common::assert_no_panic("stasis (kill campaign)", &text);
        Ok(st)
    }
}

fn spawn_stasis(args: &[&str]) -> Stasis {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let err = std::env::temp_dir().join(format!(
        "stasis-kill-{}-{}.err",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let f = fs::File::create(&err).expect("create stderr file");
    let child = common::stasis_cmd()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(f)
        .spawn()
        .expect("spawn stasis");
    Stasis { child, err }
}

fn guarded(tree: bool) -> Workload {
    Workload::spawn_c(
        "guarded",
        Spawn {
            args: if tree { vec!["tree".into()] } else { vec![] },
            ..Default::default()
        },
    )
}

fn dump_args<'a>(pid: &'a str, img: &'a Path, leave_running: bool) -> Vec<&'a str> {
    let mut a = vec!["dump", "-t", pid, "-D", img.to_str().expect("utf-8")];
    if leave_running {
        a.push("-R");
    }
    a
}

/// Every process of the tree is running on its own: not traced, not stopped.
fn untouched(w: &Workload) -> Result<(), String> {
    for p in w.processes() {
        if p.is_zombie() {
            continue;
        }
        let status = fs::read_to_string(format!("/proc/{}/status", p.pid)).unwrap_or_default();
        let tracer = status_field(&status, "TracerPid").unwrap_or_default();
        if tracer.trim() != "0" {
            return Err(format!("pid {} still traced by {tracer}", p.pid));
        }
        if matches!(proc_state(p.pid), Some('t' | 'T')) {
            return Err(format!("pid {} left stopped", p.pid));
        }
    }
    Ok(())
}

/// State, wait channel and syscall of every thread of the tree, for a
/// failure message.
fn thread_states(w: &Workload) -> String {
    let mut out = String::new();
    for p in w.processes() {
        let Ok(tasks) = fs::read_dir(format!("/proc/{}/task", p.pid)) else {
            continue;
        };
        for t in tasks.flatten() {
            let d = t.path();
            let read = |f: &str| fs::read_to_string(d.join(f)).unwrap_or_default();
            let status = read("status");
            out.push_str(&format!(
                "  {}/{}: {} blk {} pnd {} wchan {} syscall {}\n",
                p.pid,
                t.file_name().to_string_lossy(),
                status_field(&status, "State").unwrap_or_default().trim(),
                status_field(&status, "SigBlk").unwrap_or_default().trim(),
                status_field(&status, "SigPnd").unwrap_or_default().trim(),
                read("wchan"),
                read("syscall").trim(),
            ));
        }
    }
    out
}

/// How long an uninterrupted run takes (the fastest of 3).
fn calibrate(mut run: impl FnMut() -> Duration) -> Duration {
    (0..3).map(|_| run()).min().expect("3 runs")
}

fn dumper_campaign(tree: bool) {
    if !require_root() {
        return;
    }
    let full = calibrate(|| {
        let w = guarded(tree);
        let img = w.dir.join("img");
        let pid = w.pid.to_string();
        let t = Instant::now();
        let st = spawn_stasis(&dump_args(&pid, &img, true))
            .wait()
            .expect("wait stasis");
        let d = t.elapsed();
        assert!(st.success(), "uninterrupted dump failed: {st}");
        w.terminate_and_verdict()
            .expect("target after an uninterrupted dump");
        d
    });
    eprintln!("uninterrupted dump: {full:?}");
    let mut rng = Rng::new();
    let n = rounds();
    let (mut survived, mut finished) = (0, 0);
    for round in 0..n {
        let leave = round % 2 == 0;
        let w = guarded(tree);
        let img = w.dir.join("img");
        let pid = w.pid.to_string();
        let at = Duration::from_micros(rng.below(full.as_micros() as u64 * 3 / 2));
        let mut s = spawn_stasis(&dump_args(&pid, &img, leave));
        sleep(at);
        let _ = s.kill();
        let st = s.wait().expect("wait stasis");
        let what = format!(
            "round {round} (-R {leave}, kill at {at:?}, dump {})",
            if st.success() {
                "had finished"
            } else {
                "killed (finished if core.img is there and the tree gone)"
            }
        );
        // Killed after its image was committed, in the middle of killing
        // the tree as asked: the tree is gone and the image must restore.
        let committed = !st.success() && !leave && img.join("core.img").exists() && !w.is_running();
        if st.success() || committed {
            finished += 1;
            if !leave {
                w.wait_gone();
                restore(&img, &[]);
            }
        }
        sleep(Duration::from_millis(100));
        let threads = thread_states(&w);
        if let Err(e) = untouched(&w).and_then(|_| w.terminate_and_verdict()) {
            panic!("{what}: target harmed: {e}\nthreads before SIGTERM:\n{threads}");
        }
        survived += 1;
    }
    eprintln!(
        "dumper kills survived: {survived}/{n} ({finished} dumps had finished before the kill{})",
        if tree { ", process tree" } else { "" }
    );
}

#[test]
fn dumper_killed_at_random_moments() {
    dumper_campaign(false)
}

#[test]
fn dumper_killed_at_random_moments_tree() {
    dumper_campaign(true)
}

/// No process of the image exists (`pids` all free, or zombies of
/// someone else's).
fn none_left(pids: &[i32]) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        // Processes of a killed restore are our children (the root is made
        // with CLONE_PARENT, the rest reparented to this subreaper): their
        // zombies would hold the pids.
        for &p in pids {
            let mut st = 0;
            // SAFETY: waitpid with a valid out-pointer; WNOHANG never blocks.
            unsafe { libc::waitpid(p, &mut st, libc::WNOHANG | libc::__WALL) };
        }
        let alive: Vec<i32> = pids
            .iter()
            .copied()
            .filter(|p| matches!(proc_state(*p), Some(s) if s != 'Z' && s != 'X'))
            .collect();
        if alive.is_empty() {
            return true;
        }
        if Instant::now() > deadline {
            eprintln!("still there: {alive:?}");
            return false;
        }
        sleep(Duration::from_millis(10));
    }
}

fn restorer_campaign(tree: bool) {
    if !require_root() {
        return;
    }
    let w = guarded(tree);
    let img = w.dir.join("img");
    let pid = w.pid.to_string();
    let pids: Vec<i32> = w.processes().iter().map(|p| p.pid).collect();
    let st = spawn_stasis(&dump_args(&pid, &img, false))
        .wait()
        .expect("wait stasis");
    assert!(st.success(), "dump failed: {st}");
    w.wait_gone();
    let full = calibrate(|| {
        let t = Instant::now();
        let st = spawn_stasis(&["restore", "-D", img.to_str().unwrap(), "-d"])
            .wait()
            .expect("wait stasis");
        let d = t.elapsed();
        assert!(st.success(), "uninterrupted restore failed: {st}");
        w.kill();
        assert!(none_left(&pids), "restored tree did not go away");
        d
    });
    eprintln!("uninterrupted restore: {full:?}");
    let mut rng = Rng::new();
    let n = rounds();
    let (mut clean, mut finished) = (0, 0);
    for round in 0..n {
        let at = Duration::from_micros(rng.below(full.as_micros() as u64 * 3 / 2));
        let mut s = spawn_stasis(&["restore", "-D", img.to_str().unwrap(), "-d"]);
        sleep(at);
        let _ = s.kill();
        let st = s.wait().expect("wait stasis");
        let what = format!("round {round} (kill at {at:?})");
        if st.success() {
            finished += 1;
            if let Err(e) = untouched(&w).and_then(|_| w.terminate_and_verdict()) {
                panic!("{what}: restore finished but the tree is broken: {e}");
            }
        } else {
            // Killed part-way: nothing may be left. A process that is
            // there and works means the restore was already complete.
            let alive = !none_left(&pids);
            if alive {
                if let Err(e) = untouched(&w).and_then(|_| w.terminate_and_verdict()) {
                    panic!("{what}: a half-restored tree was left behind: {e}");
                }
            }
        }
        w.kill();
        assert!(none_left(&pids), "{what}: tree did not go away");
        clean += 1;
    }
    // The image is intact: one more restore works.
    restore(&img, &[]);
    w.terminate_and_verdict()
        .expect("restore after the campaign");
    let _ = fs::remove_dir_all(&img);
    eprintln!(
        "restorer kills that left nothing half-restored: {clean}/{n} ({finished} restores had finished before the kill{})",
        if tree { ", process tree" } else { "" }
    );
}

#[test]
fn restorer_killed_at_random_moments() {
    restorer_campaign(false)
}

#[test]
fn restorer_killed_at_random_moments_tree() {
    restorer_campaign(true)
}

//! Running the stasis binary, and the standard C/R cycle.

use super::snapshot::{assert_same, status_field};
use super::{
    ensure_subreaper, proc_stat, tmp_root, tree_ctxt_switches, wait_exit, walk_tree, Spawn,
    TreeSnapshot, Workload,
};
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// Upper bound for one `stasis` invocation, unless the environment
/// variable `STASIS_TEST_TIMEOUT` (seconds) says otherwise: a hang is a
/// failure, not a stuck CI.
pub fn stasis_timeout() -> Duration {
    let secs = std::env::var("STASIS_TEST_TIMEOUT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    Duration::from_secs(secs)
}

/// A command running the `stasis` binary with `RUST_BACKTRACE=1`, so that
/// a panic shows where; check what it wrote with [`assert_no_panic`] (or
/// use [`stasis`], or [`NoPanic::no_panic`] on `.output()`).
pub fn stasis_cmd() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_stasis"));
    c.env("RUST_BACKTRACE", "1");
    c
}

/// Fails the test if a stasis run panicked: a panic is a bug whatever the
/// exit status the test expected (its stderr, backtrace included, is
/// printed).
pub fn assert_no_panic(shown: &str, stderr: &[u8]) {
    let text = String::from_utf8_lossy(stderr);
    assert!(!text.contains("panicked"), "`{shown}` panicked:\n{text}");
}

/// `.output().no_panic()`: the output of a [`stasis_cmd`], checked with
/// [`assert_no_panic`].
pub trait NoPanic {
    fn no_panic(self) -> Self;
}

impl NoPanic for std::io::Result<Output> {
    fn no_panic(self) -> Self {
        if let Ok(o) = &self {
            assert_no_panic("stasis", &o.stderr);
        }
        self
    }
}

/// Runs the `stasis` binary with `args`, logging the command, status and
/// stderr to the test output. Output goes to files, not pipes, so that a
/// process that inherits them (a restored workload) cannot hang the test;
/// the run is killed after [`stasis_timeout`].
pub fn stasis(args: &[&str]) -> Output {
    static N: AtomicU64 = AtomicU64::new(0);
    ensure_subreaper();
    let n = N.fetch_add(1, Ordering::Relaxed);
    let out_dir = tmp_root().join(format!("stasis-out-{}", std::process::id()));
    fs::create_dir_all(&out_dir).expect("create stasis output dir");
    let out_p = out_dir.join(format!("{n}.out"));
    let err_p = out_dir.join(format!("{n}.err"));
    let out_f = fs::File::create(&out_p).expect("create stdout file");
    let err_f = fs::File::create(&err_p).expect("create stderr file");
    let bin = env!("CARGO_BIN_EXE_stasis");
    let shown = format!("stasis {}", args.join(" "));
    let timeout = stasis_timeout();
    let start = Instant::now();
    let mut child = stasis_cmd()
        .args(args)
        .stdin(Stdio::null())
        .stdout(out_f)
        .stderr(err_f)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {bin}: {e}"));
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if start.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("`{shown}` did not finish within {timeout:?}");
            }
            Ok(None) => sleep(Duration::from_millis(5)),
            Err(e) => panic!("wait for `{shown}`: {e}"),
        }
    };
    let stdout = fs::read(&out_p).unwrap_or_default();
    let stderr = fs::read(&err_p).unwrap_or_default();
    let _ = fs::remove_file(&out_p);
    let _ = fs::remove_file(&err_p);
    eprintln!(
        "$ {shown}  -> {status} in {:.0?}{}",
        start.elapsed(),
        if stderr.is_empty() {
            String::new()
        } else {
            format!("\n{}", String::from_utf8_lossy(&stderr).trim_end())
        }
    );
    assert_no_panic(&shown, &stderr);
    Output {
        status,
        stdout,
        stderr,
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// `stasis dump --verify -t PID -D DIR` + `extra`; asserts success, which
/// with `--verify` means that restore's own checks and planning pass on
/// the image read back from disk (see `stasis dump --help`). Creates `dir`
/// (CRIU convention: the image directory exists and is empty). The tree is
/// walked first, so that [`Workload::wait_gone`] can find its zombies once
/// the dump has killed it.
pub fn dump(w: &Workload, dir: &Path, extra: &[&str]) {
    fs::create_dir_all(dir).expect("create image dir");
    w.processes();
    let pid = w.pid.to_string();
    let mut args = vec!["dump", "--verify", "-t", &pid, "-D", path_str(dir)];
    args.extend_from_slice(extra);
    w.mark(&format!("stasis {}", args.join(" ")));
    let out = stasis(&args);
    assert!(
        out.status.success(),
        "dump of pid {} ({}) failed: {}\n{}\nworkload log:\n{}",
        w.pid,
        w.what,
        out.status,
        String::from_utf8_lossy(&out.stderr),
        w.log()
    );
}

/// `stasis restore -D DIR -d` + `extra`; asserts success.
pub fn restore(dir: &Path, extra: &[&str]) {
    let mut args = vec!["restore", "-D", path_str(dir), "-d"];
    args.extend_from_slice(extra);
    let out = stasis(&args);
    assert!(
        out.status.success(),
        "restore from {} failed: {}\n{}",
        dir.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---------------------------------------------------------------------------
// The standard C/R cycle
// ---------------------------------------------------------------------------

/// How a C/R cycle is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// dump (kills), restore, verify.
    KillRestore,
    /// dump --leave-running, check it still runs, dump again, restore, verify.
    LeaveRunning,
    /// dump, restore, verify; restore again from the same image, verify.
    RestoreTwice,
    /// dump --leave-running, restore --pidns while the original still
    /// holds every pid, check the copy sees the original pids and tree,
    /// verify the original, then the copy.
    PidNs,
}

pub const ALL_MODES: [Mode; 4] = [
    Mode::KillRestore,
    Mode::LeaveRunning,
    Mode::RestoreTwice,
    Mode::PidNs,
];

/// The tree below host pid `root` as its processes see it from inside
/// their PID namespace: inner pid -> (inner parent pid, zombie).
pub fn inner_tree(root: i32) -> BTreeMap<i32, (i32, bool)> {
    let inner = |pid: i32| -> i32 {
        fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| status_field(&s, "NSpid"))
            .and_then(|v| v.split_whitespace().last()?.parse().ok())
            .unwrap_or(-1)
    };
    walk_tree(&[root])
        .iter()
        .map(|p| {
            let parent = if p.pid == root { 0 } else { inner(p.ppid) };
            (inner(p.pid), (parent, p.is_zombie()))
        })
        .collect()
}

/// Compares the tree restored in a new namespace under host pid `host`
/// with `before` (pids, parents, zombies).
fn compare_inner(before: &TreeSnapshot, host: i32) -> Result<(), String> {
    let want: BTreeMap<i32, (i32, bool)> = before
        .procs
        .values()
        .map(|p| {
            let parent = if p.pid == before.root {
                0
            } else {
                p.ppid.unwrap_or(0)
            };
            (p.pid, (parent, p.zombie))
        })
        .collect();
    let got = inner_tree(host);
    if want == got {
        Ok(())
    } else {
        Err(format!(
            "tree in the new PID namespace differs:\n  before (pid: parent, zombie): {want:?}\n  restored: {got:?}"
        ))
    }
}

/// Problems found during one cycle. State differences are "soft": they are
/// recorded (and printed at once) and the cycle goes on, so that one run
/// also shows whether the workload's own verdict passes. Everything else
/// panics at once, listing what was recorded so far.
#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn soft(&mut self, what: &str, r: Result<(), String>) {
        if let Err(e) = r {
            eprintln!("{what}: {e}");
            self.0.push(format!("{what}: {e}"));
        }
    }

    fn hard(&self, msg: String) -> ! {
        if self.0.is_empty() {
            panic!("{msg}");
        }
        panic!("{msg}\nalso:\n{}", self.0.join("\n"));
    }

    fn check(&self, cond: bool, msg: impl FnOnce() -> String) {
        if !cond {
            self.hard(msg());
        }
    }

    fn finish(self) {
        assert!(self.0.is_empty(), "{}", self.0.join("\n"));
    }
}

fn compare(before: &TreeSnapshot, after: &TreeSnapshot) -> Result<(), String> {
    let d = before.diff(after);
    if d.is_empty() {
        Ok(())
    } else {
        Err(format!("process state differs:\n  {}", d.join("\n  ")))
    }
}

/// [`compare`] against snapshots of `w` taken until one matches or a second
/// has passed. A process that was frozen inside a wait such as
/// sigwaitinfo() returns EINTR when it resumes and re-enters the wait a
/// moment later; until then its blocked mask is the one outside the wait.
/// The last difference is the one reported.
fn compare_settled(w: &Workload, before: &TreeSnapshot) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let r = compare(before, &w.snapshot());
        if r.is_ok() || Instant::now() >= deadline {
            return r;
        }
        sleep(Duration::from_millis(20));
    }
}

impl Problems {
    /// Restores `img` for `w` and compares the restored process with `before`.
    fn restore_and_compare(&mut self, w: &Workload, img: &Path, before: &TreeSnapshot, what: &str) {
        w.mark(&format!("restore {what} from {}", img.display()));
        let r = std::panic::catch_unwind(|| restore(img, &[]));
        if let Err(e) = r {
            self.hard(panic_message(&*e));
        }
        self.check(w.is_running(), || {
            format!(
                "{what}: not running after restore -d: {}; log:\n{}",
                w.describe_exit(),
                w.log()
            )
        });
        self.soft(what, compare_settled(w, before));
    }

    fn verdict(&mut self, w: &Workload, what: &str) {
        let r = w.terminate_and_verdict();
        self.soft(&format!("{what}: verdict"), r);
    }
}

fn panic_message(e: &(dyn std::any::Any + Send)) -> String {
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "panic".into())
}

/// The standard C/R cycle for C workload `name` in one mode: spawn,
/// snapshot (of the whole tree), dump (+mode), wait until every process of
/// the tree is gone, restore with -d, compare the snapshot with the one
/// taken before the dump, then terminate_and_verdict. See [`Mode`].
pub fn cr_cycle(name: &str, opts: Spawn, mode: Mode) {
    let w = Workload::spawn_c(name, opts);
    let what = format!("{name} [{mode:?}]");
    let mut p = Problems::default();
    // Let the workload settle into its wait (its last syscalls after READY).
    sleep(Duration::from_millis(50));
    let before = w.snapshot();
    let img1 = w.dir.join("img1");
    match mode {
        Mode::KillRestore => {
            dump(&w, &img1, &[]);
            w.wait_gone();
            p.restore_and_compare(&w, &img1, &before, &what);
            p.verdict(&w, &what);
        }
        Mode::RestoreTwice => {
            dump(&w, &img1, &[]);
            w.wait_gone();
            let first = format!("{what} first restore");
            p.restore_and_compare(&w, &img1, &before, &first);
            p.verdict(&w, &first);
            w.kill(); // in case the verdict failed with the process still there
            w.wait_gone();
            let second = format!("{what} second restore");
            p.restore_and_compare(&w, &img1, &before, &second);
            p.verdict(&w, &second);
        }
        Mode::PidNs => {
            dump(&w, &img1, &["--leave-running"]);
            p.check(w.is_running(), || {
                format!("{what}: not running after dump --leave-running")
            });
            let pidfile = w.dir.join("restored.pid");
            w.mark(&format!("restore {what} into a new PID namespace"));
            let pf = pidfile.to_str().expect("utf-8");
            if let Err(e) =
                std::panic::catch_unwind(|| restore(&img1, &["--pidns", "--pidfile", pf]))
            {
                p.hard(panic_message(&*e));
            }
            let host: i32 = fs::read_to_string(&pidfile)
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or_else(|| p.hard(format!("{what}: no pid in {}", pidfile.display())));
            // The namespace's init, our child: reaped once the copy ends.
            let init = proc_stat(host).map(|s| s.ppid).unwrap_or(0);
            p.soft(&what, compare_inner(&before, host));
            p.verdict(&w, &format!("{what} original"));
            p.soft(
                &format!("{what} copy in the new namespace: verdict"),
                w.terminate_and_verdict_of(host),
            );
            if init > 0 {
                let _ = wait_exit(init, Duration::from_secs(10), false);
            }
        }
        Mode::LeaveRunning => {
            let window = Duration::from_millis(300);
            let c0 = tree_ctxt_switches(w.pid);
            sleep(window);
            let progressing = tree_ctxt_switches(w.pid) > c0;

            dump(&w, &img1, &["--leave-running"]);
            p.check(w.is_running(), || {
                format!(
                    "{what}: not running after dump --leave-running: {}; log:\n{}",
                    w.describe_exit(),
                    w.log()
                )
            });
            let after_dump = w.snapshot();
            let frozen = after_dump.stopped_or_traced();
            p.check(frozen.is_empty(), || {
                format!(
                    "{what}: left stopped or traced after dump --leave-running: {}",
                    frozen.join("; ")
                )
            });
            // The dump must leave nothing behind (parasite maps, fds, masks).
            p.soft(
                &format!("{what} after dump --leave-running"),
                compare(&before, &after_dump).or_else(|_| compare_settled(&w, &before)),
            );
            if progressing {
                let c1 = tree_ctxt_switches(w.pid);
                sleep(window);
                p.check(tree_ctxt_switches(w.pid) > c1, || {
                    format!("{what}: no progress after dump --leave-running")
                });
            }

            let img2 = w.dir.join("img2");
            dump(&w, &img2, &[]);
            w.wait_gone();
            p.restore_and_compare(&w, &img2, &before, &what);
            p.verdict(&w, &what);
        }
    }
    p.finish();
}

/// Runs C workload `name` without any checkpoint: READY, a stable snapshot
/// of its tree (the state the C/R cycle compares must not change on its
/// own), SIGTERM, PASS, and nothing of the tree left. Validates workloads
/// before the engine exists.
pub fn plain_run(name: &str, opts: Spawn) {
    let w = Workload::spawn_c(name, opts);
    sleep(Duration::from_millis(50));
    let before = w.snapshot();
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
}

/// [`cr_cycle`] in every mode of [`ALL_MODES`], each with a fresh workload.
/// All modes run even if one fails; the panic lists every failing mode.
pub fn cr_all_modes(name: &str, opts: Spawn) {
    cr_modes(name, opts, &ALL_MODES);
}

/// [`cr_cycle`] in each of `modes`, each with a fresh workload. All modes
/// run even if one fails; the panic lists every failing mode.
pub fn cr_modes(name: &str, opts: Spawn, modes: &[Mode]) {
    let mut failures = Vec::new();
    for &mode in modes {
        let o = opts.clone();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cr_cycle(name, o, mode)));
        if let Err(e) = r {
            let msg = panic_message(&*e);
            failures.push(format!("--- {name} in mode {mode:?}:\n{msg}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} modes failed:\n{}",
        failures.len(),
        modes.len(),
        failures.join("\n")
    );
}

/// C workload `name` is dumped with --leave-running and its copy is
/// restored into a new PID namespace while the original still runs: the
/// restore must be refused, before anything runs, with an error holding
/// every one of `expect`, and the original must pass afterwards. For
/// state the original still holds (a socket path, a FIFO, a lock).
pub fn copy_beside_original_is_refused(name: &str, expect: &[&str]) {
    let w = Workload::spawn_c(name, Spawn::default());
    let img = w.dir.join("img");
    let img = img.to_str().expect("utf-8");
    let pid = w.pid.to_string();
    let out = stasis(&["dump", "-t", &pid, "-D", img, "--leave-running", "--verify"]);
    assert!(out.status.success(), "dump: {out:?}");
    // What the original holds is a note of --verify, not a failure.
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("verify: note: restorable once the original exits"),
        "dump --verify should note what the original holds: {err}"
    );
    // Checked now, it would fail, with the error restore gives.
    let out = stasis(&["restore", "-D", img, "--check-only", "--pidns"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "check-only should fail: {err}");
    assert!(
        expect.iter().all(|e| err.contains(e)),
        "unclear check-only report (want {expect:?}): {err}"
    );
    let out = stasis(&["restore", "-D", img, "-d", "--pidns"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "restore should fail: {err}");
    assert!(
        expect.iter().all(|e| err.contains(e)),
        "unclear error (want {expect:?}): {err}"
    );
    if let Err(e) = w.terminate_and_verdict() {
        panic!("original after the refused restore: {e}");
    }
}

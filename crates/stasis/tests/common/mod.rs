//! C/R test harness shared by the integration tests (`mod common;`).
//!
//! Workload protocol (see DESIGN.md §4): a workload sets up one kind of
//! state, prints `READY`, waits; on SIGTERM it verifies the state and prints
//! `PASS` or `FAIL: <reason>`. C workloads live in `tests/workloads/NAME.c`
//! and are compiled once per test binary.
//!
//! Each workload runs in a fresh directory (its cwd, holding `log`), in a new
//! session, with stdin `/dev/null` and stdout/stderr appended to `log`. The
//! directory is unique per workload, so `/proc/PID/cwd == dir` is used as the
//! identity check before the harness ever signals a pid: tests run in
//! parallel threads and pids get reused.
//!
//! Restored processes are not our children: the stasis restorer forks them
//! and exits. The test process makes itself a child subreaper, so they are
//! reparented to it and `waitpid(pid)` still reports their exit status;
//! so are the orphans of a workload's tree. Only specific pids are ever
//! waited for: the workload's own pid, and zombies known to be of its tree
//! by pid and start time (see `tree.rs`), never whatever child exits next,
//! since other test threads have children of their own.
//!
//! A workload may be a process tree. Its snapshot ([`TreeSnapshot`]) covers
//! every process below the root, zombies included, and [`Workload::kill`] /
//! [`Workload::wait_gone`] cover every process of the tree, also those that
//! left the root's session with setsid(2).
//!
//! Workloads start clean: all signal dispositions default, empty signal
//! mask, only fds 0-2, whatever the test runner had. C workloads may use
//! `workloads/wl.h` (READY/PASS/FAIL protocol, CHECK, SYS) and
//! `workloads/procmaps.h` (/proc/self/maps and smaps lookups without malloc,
//! fault probes); tree workloads use `workloads/tree.h` (only the root
//! prints READY and the verdict; every other process checks itself on
//! SIGTERM and reports through its exit status).
//!
//! `STASIS_TEST_TIMEOUT` (seconds, default 60) bounds each stasis run.
//!
//! Layout: this file (environment, building, spawning, waiting),
//! `snapshot.rs` (generic /proc state of one process and its diff),
//! `tree.rs` (the same for a process tree, and finding a workload's
//! processes), `cycle.rs` (running stasis, and the standard C/R cycle in
//! each [`Mode`]).
#![allow(dead_code)] // every test binary uses a different subset

mod cycle;
mod real;
mod snapshot;
mod tree;

// Each test binary uses a different subset of these, too.
#[allow(unused_imports)]
pub use cycle::*;
#[allow(unused_imports)]
pub use real::*;
#[allow(unused_imports)]
pub use snapshot::*;
#[allow(unused_imports)]
pub use tree::*;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::CString;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, Once};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// How long a workload may take to print `READY`.
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a workload may take to print its verdict and exit after SIGTERM.
pub const VERDICT_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a pid may take to disappear after a dump killed it.
pub const GONE_TIMEOUT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------
// Environment
// ---------------------------------------------------------------------------

/// True when running as euid 0; otherwise prints `SKIP <why>` and returns false.
pub fn require_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if euid != 0 {
        eprintln!("SKIP C/R tests need root (euid is {euid})");
        return false;
    }
    true
}

/// Full path of an installed program, preferring the system copy
/// (`/usr/bin`, `/bin`) over shims such as pyenv's, which would make the
/// workload a shell script that execs something else.
pub fn find_program(name: &str) -> Option<PathBuf> {
    for dir in ["/usr/bin", "/bin", "/usr/local/bin"] {
        let p = Path::new(dir).join(name);
        if is_executable(&p) {
            return Some(p);
        }
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Root of everything the harness writes: `CARGO_TARGET_TMPDIR`, holding
/// `wl-build-PID/` (compiled workloads), `stasis-out-PID/` (captured stasis
/// output) and `runs/TEST-LABEL-PID-N/` (one workload's cwd, log and images;
/// kept when the test fails). Leftovers of test processes that no longer
/// exist are removed the first time this is called.
pub(crate) fn tmp_root() -> PathBuf {
    static CLEAN: Once = Once::new();
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    CLEAN.call_once(|| remove_stale(&root));
    root
}

/// Removes harness directories whose owning test process (the pid in their
/// name) is gone.
fn remove_stale(root: &Path) {
    let dead = |pid: Option<&str>| {
        pid.and_then(|p| p.parse::<u32>().ok())
            .is_some_and(|p| p != std::process::id() && !Path::new(&format!("/proc/{p}")).exists())
    };
    for (dir, name_pid) in [(root.to_path_buf(), true), (root.join("runs"), false)] {
        let Ok(rd) = fs::read_dir(&dir) else { continue };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let pid = if name_pid {
                name.strip_prefix("wl-build-")
                    .or_else(|| name.strip_prefix("stasis-out-"))
            } else {
                // TEST-LABEL-PID-N
                name.rsplit('-').nth(1)
            };
            if dead(pid) {
                let _ = fs::remove_dir_all(e.path());
            }
        }
    }
}

/// Makes this test process a child subreaper, once, so that restored
/// processes (orphaned when the restorer exits) are reparented to us.
pub(crate) fn ensure_subreaper() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: PR_SET_CHILD_SUBREAPER takes an integer flag and touches
        // only this process's attributes.
        let r = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        assert_eq!(
            r,
            0,
            "prctl(PR_SET_CHILD_SUBREAPER): {}",
            std::io::Error::last_os_error()
        );
    });
}

// ---------------------------------------------------------------------------
// Building C workloads
// ---------------------------------------------------------------------------

/// Path of the compiled workload `tests/workloads/NAME.c`. Each workload is
/// compiled once per test binary, into a build directory private to this run.
pub fn workload_bin(name: &str) -> PathBuf {
    static BUILT: Mutex<BTreeMap<String, PathBuf>> = Mutex::new(BTreeMap::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = built.get(name) {
        return p.clone();
    }
    let src_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/workloads");
    let src = src_dir.join(format!("{name}.c"));
    assert!(src.exists(), "no workload source {}", src.display());
    let build_dir = tmp_root().join(format!("wl-build-{}", std::process::id()));
    fs::create_dir_all(&build_dir).expect("create workload build dir");
    let out = build_dir.join(name);
    let res = Command::new("cc")
        .args(["-O1", "-g", "-pthread", "-Wall", "-o"])
        .arg(&out)
        .arg(&src)
        .current_dir(&src_dir)
        .output()
        .expect("run cc");
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(
        res.status.success(),
        "compiling {} failed:\n{stderr}",
        src.display()
    );
    if !stderr.trim().is_empty() {
        eprintln!("cc warnings for {name}.c:\n{stderr}");
    }
    built.insert(name.to_string(), out.clone());
    out
}

// ---------------------------------------------------------------------------
// Workloads
// ---------------------------------------------------------------------------

/// How to start a workload.
#[derive(Debug, Clone, Default)]
pub struct Spawn {
    /// Run as this uid (setresuid); the workload dir is chowned to it.
    pub uid: Option<u32>,
    /// Run as this gid (setresgid, and the only supplementary group).
    pub gid: Option<u32>,
    /// Extra argv after the program.
    pub args: Vec<String>,
    /// Extra environment variables (the test's environment is inherited).
    pub env: Vec<(String, String)>,
}

/// A running workload: a process, or the root of a process tree. Killed
/// (SIGKILL, the whole tree) on drop; its directory is removed on drop
/// unless the test is panicking, so failures leave images and logs behind
/// for inspection.
#[derive(Debug)]
pub struct Workload {
    pub pid: i32,
    /// The workload's cwd, unique per workload; holds `log`.
    pub dir: PathBuf,
    /// What was started, for messages.
    pub what: String,
    /// Every process ever seen in the workload's tree: pid -> start time
    /// (see `tree.rs`), so that its zombies and orphans can be found and
    /// reaped after the rest of the tree is gone.
    known: Mutex<BTreeMap<i32, u64>>,
}

pub fn fresh_dir(label: &str) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let thread = std::thread::current();
    let test: String = thread
        .name()
        .unwrap_or("test")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let label: String = label
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let dir = tmp_root()
        .join("runs")
        .join(format!("{test}-{label}-{}-{n}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("create workload dir");
    fs::canonicalize(&dir).expect("canonicalize workload dir")
}

/// Sets every signal's disposition to SIG_DFL and empties the signal mask.
/// Async-signal-safe: raw rt_sigaction/rt_sigprocmask syscalls only.
fn reset_signals() {
    /// The kernel's `struct sigaction` on x86_64.
    #[repr(C)]
    struct KernelSigaction {
        handler: usize,
        flags: u64,
        restorer: usize,
        mask: u64,
    }
    let dfl = KernelSigaction {
        handler: 0, // SIG_DFL
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: `dfl` is a valid kernel sigaction that outlives the call;
        // the old-action pointer is NULL; sigsetsize is 8 as on x86_64.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                &dfl as *const KernelSigaction,
                std::ptr::null_mut::<KernelSigaction>(),
                8usize,
            )
        };
    }
    let empty: u64 = 0;
    // SAFETY: `empty` is a valid 8-byte signal set; the old set is NULL.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &empty as *const u64,
            std::ptr::null_mut::<u64>(),
            8usize,
        )
    };
}

fn chown(path: &Path, uid: Option<u32>, gid: Option<u32>) {
    let c = CString::new(path.as_os_str().as_encoded_bytes()).expect("path has NUL");
    let u = uid.unwrap_or(u32::MAX); // (uid_t)-1: leave unchanged
    let g = gid.unwrap_or(u32::MAX);
    // SAFETY: `c` is a valid NUL-terminated path that outlives the call.
    let r = unsafe { libc::chown(c.as_ptr(), u, g) };
    assert_eq!(
        r,
        0,
        "chown {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
}

impl Workload {
    /// Starts the C workload `NAME` and waits for its `READY` line.
    pub fn spawn_c(name: &str, opts: Spawn) -> Workload {
        let bin = workload_bin(name);
        let bin = bin.to_str().expect("utf-8 path").to_string();
        let w = Self::start(&bin, &[], opts, name);
        w.wait_until(READY_TIMEOUT, "READY", |w| {
            w.log().lines().any(|l| l.trim() == "READY")
        });
        w
    }

    /// Starts a real program (`sleep`, `bash`, `python3`, ...) with the same
    /// environment as a C workload; returns once `ready` says so (polled).
    pub fn spawn_cmd(
        program: &str,
        args: &[&str],
        opts: Spawn,
        ready: impl Fn(&Workload) -> bool,
    ) -> Workload {
        let label = Path::new(program)
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| program.to_string());
        let w = Self::start(program, args, opts, &label);
        w.wait_until(READY_TIMEOUT, "ready", ready);
        w
    }

    fn start(program: &str, args: &[&str], opts: Spawn, label: &str) -> Workload {
        ensure_subreaper();
        let dir = fresh_dir(label);
        let log_path = dir.join("log");
        let log = fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o644)
            .open(&log_path)
            .expect("open log");
        if opts.uid.is_some() || opts.gid.is_some() {
            chown(&dir, opts.uid, opts.gid);
            chown(&log_path, opts.uid, opts.gid);
        }
        let mut cmd = Command::new(program);
        cmd.args(args)
            .args(&opts.args)
            .envs(opts.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log);
        let (uid, gid) = (opts.uid, opts.gid);
        // SAFETY: the closure runs between fork and exec and only calls
        // async-signal-safe functions (setsid, setgroups, setresgid,
        // setresuid) on values copied in before the fork.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setsid() < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The runner may ignore or block signals (ignored dispositions
                // survive exec); a workload starts from a clean slate, with
                // the raw syscalls because glibc refuses signals 32 and 33.
                reset_signals();
                // Only 0, 1, 2 may survive exec: the test process can hold
                // inherited fds (a runner's pipe) that would otherwise leak
                // into the workload and its image. CLOEXEC rather than close
                // keeps std's exec-error pipe working.
                if libc::syscall(
                    libc::SYS_close_range,
                    3u32,
                    u32::MAX,
                    libc::CLOSE_RANGE_CLOEXEC,
                ) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                if let Some(g) = gid {
                    let groups = [g];
                    if libc::setgroups(1, groups.as_ptr()) != 0 || libc::setresgid(g, g, g) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                if let Some(u) = uid {
                    if gid.is_none() && libc::setgroups(0, std::ptr::null()) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    if libc::setresuid(u, u, u) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {program}: {e}"));
        let pid = child.id() as i32;
        // The std handle is not needed: we wait with waitpid on the pid, which
        // also works after the process has been restored and reparented.
        drop(child);
        let what = std::iter::once(program)
            .chain(args.iter().copied())
            .chain(opts.args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ");
        eprintln!("spawned pid {pid}: {what} (dir {})", dir.display());
        let w = Workload {
            pid,
            dir,
            what,
            known: Mutex::new(BTreeMap::new()),
        };
        if let Some(st) = proc_stat(pid) {
            w.remember(&[st]);
        }
        w
    }

    fn wait_until(&self, timeout: Duration, what: &str, ready: impl Fn(&Workload) -> bool) {
        let start = Instant::now();
        loop {
            if ready(self) {
                return;
            }
            if !self.is_running() {
                panic!(
                    "pid {} ({}) exited before {what}; log:\n{}",
                    self.pid,
                    self.what,
                    self.log()
                );
            }
            if start.elapsed() > timeout {
                panic!(
                    "pid {} ({}) not {what} after {timeout:?}; log:\n{}",
                    self.pid,
                    self.what,
                    self.log()
                );
            }
            sleep(Duration::from_millis(20));
        }
    }

    /// Why the workload is not running, for messages: gone, or a zombie
    /// with its exit status (reaped here when it is our child), or the
    /// state and cwd of whatever holds the pid.
    pub fn describe_exit(&self) -> String {
        match proc_state(self.pid) {
            None => format!("pid {} is gone", self.pid),
            Some('Z') if proc_ppid(self.pid) == Some(std::process::id() as i32) => {
                let mut st = 0;
                // SAFETY: `st` is a valid out-pointer; waiting for one
                // specific pid, a zombie child of ours.
                let r = unsafe { libc::waitpid(self.pid, &mut st, libc::WNOHANG | libc::__WALL) };
                if r == self.pid {
                    format!(
                        "pid {} exited: {}",
                        self.pid,
                        std::process::ExitStatus::from_raw(st)
                    )
                } else {
                    format!("pid {} is a zombie", self.pid)
                }
            }
            Some(s) => format!(
                "pid {} is in state {s} with cwd {:?}",
                self.pid,
                fs::read_link(format!("/proc/{}/cwd", self.pid)).ok()
            ),
        }
    }

    /// Contents of `DIR/log` (workload stdout+stderr, and harness markers).
    pub fn log(&self) -> String {
        fs::read(self.dir.join("log"))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// Appends a `#harness: ...` marker line to the log, so that a reader of
    /// a failed test's log can see what happened when.
    pub fn mark(&self, what: &str) {
        if let Ok(mut f) = fs::OpenOptions::new()
            .append(true)
            .open(self.dir.join("log"))
        {
            let _ = writeln!(f, "#harness: {what}");
        }
    }

    /// True when `pid` is a live (non-zombie) process whose cwd is our dir,
    /// i.e. it is this workload (original or restored), not a reused pid.
    pub fn is_running(&self) -> bool {
        matches!(proc_state(self.pid), Some(s) if s != 'Z' && s != 'X') && self.is_ours()
    }

    fn is_ours(&self) -> bool {
        fs::read_link(format!("/proc/{}/cwd", self.pid))
            .map(|c| c == self.dir)
            .unwrap_or(false)
    }

    /// Generic state of the process tree (a single process is a tree of
    /// one), for before/after comparison. Take it while the workload is
    /// quiescent (after READY). The offsets of stdout/stderr (the
    /// workload's own log, which every process of it may append to after a
    /// restore) are not compared. Retried briefly when a process changes
    /// under the walk (exits or turns into a zombie).
    pub fn snapshot(&self) -> TreeSnapshot {
        let mut err = String::new();
        for _ in 0..3 {
            match TreeSnapshot::take(self.pid) {
                Ok(t) => {
                    let stats: Vec<ProcStat> = t.pids().into_iter().filter_map(proc_stat).collect();
                    self.remember(&stats);
                    return t.without_pos(&[1, 2]);
                }
                Err(e) => err = e,
            }
            sleep(Duration::from_millis(20));
        }
        panic!(
            "snapshot of the tree of pid {} ({}) failed: {err}; log:\n{}",
            self.pid,
            self.what,
            self.log()
        )
    }

    /// Records processes as part of this workload (pid and start time).
    fn remember(&self, procs: &[ProcStat]) {
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        for p in procs {
            known.insert(p.pid, p.start);
        }
    }

    /// Every process of the workload now, zombies included (see `tree.rs`:
    /// cwd, earlier walks, descendants), remembered for later calls.
    pub fn processes(&self) -> Vec<ProcStat> {
        self.scan(&mut BTreeSet::new())
    }

    /// [`Self::processes`], carrying the workload's sessions between polls
    /// (see `workload_procs`).
    fn scan(&self, sessions: &mut BTreeSet<i32>) -> Vec<ProcStat> {
        let known = self.known.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let procs = workload_procs(&self.dir, &known, sessions);
        self.remember(&procs);
        procs
    }

    /// Sends SIGTERM, waits for exit, then requires a `PASS` line printed in
    /// response (after the SIGTERM), no `FAIL` since the last `READY`, and —
    /// when the exit status is observable — exit code 0. `Err` holds the
    /// reason and the log.
    pub fn terminate_and_verdict(&self) -> Result<(), String> {
        self.terminate_and_verdict_of(self.pid)
    }

    /// [`Self::terminate_and_verdict`] for another process running this
    /// workload in the same directory: a copy restored into a new PID
    /// namespace, seen here under another pid.
    pub fn terminate_and_verdict_of(&self, pid: i32) -> Result<(), String> {
        let fail = |why: String| Err(format!("{why}; log of {}:\n{}", self.what, self.log()));
        let ours = fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|c| c == self.dir);
        if !(matches!(proc_state(pid), Some(s) if s != 'Z' && s != 'X') && ours) {
            return fail(format!("pid {pid} is not running"));
        }
        let log_len_before = self.log().len();
        // SAFETY: kill has no memory-safety preconditions; the pid was just
        // checked to be this workload.
        if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
            return fail(format!(
                "kill({}, SIGTERM): {}",
                pid,
                std::io::Error::last_os_error()
            ));
        }
        let exit = match wait_exit(pid, VERDICT_TIMEOUT, true) {
            Ok(e) => e,
            Err(e) => {
                self.kill();
                return fail(format!("pid {} after SIGTERM: {e}", pid));
            }
        };
        let log = self.log();
        let since_ready = match log.rfind("READY\n") {
            Some(i) => &log[i..],
            None => return fail("no READY line in log".into()),
        };
        if let Some(l) = since_ready.lines().find(|l| l.starts_with("FAIL")) {
            return fail(format!("workload reported {l:?}"));
        }
        let after_term = log.get(log_len_before..).unwrap_or("");
        if !after_term.lines().any(|l| l.trim() == "PASS") {
            return fail(format!("no PASS after SIGTERM (exit: {exit:?})"));
        }
        if let Exit::Status(st) = exit {
            if !(libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0) {
                return fail(format!(
                    "exit status {:?} despite PASS",
                    std::process::ExitStatus::from_raw(st)
                ));
            }
        }
        Ok(())
    }

    /// SIGKILL every process of the workload's tree (see [`Self::processes`];
    /// also those that left its session) and reap those that are our
    /// children. Idempotent; signals only processes known to be of this
    /// workload, so a reused pid is never hit.
    pub fn kill(&self) {
        if self.is_ours() {
            // SAFETY: kill has no memory-safety preconditions; the workload
            // leads its process group (setsid at spawn, kept by a restore),
            // checked to be ours above. One call stops the group from
            // forking further while the rest is found and killed.
            unsafe { libc::kill(-self.pid, libc::SIGKILL) };
        }
        let _ = self.reap_tree(Duration::from_secs(10), true);
    }

    /// Waits until no process of the workload's tree exists any more,
    /// reaping its zombies that are our children, e.g. after a dump without
    /// `--leave-running` killed it; its pids are then free for a restore.
    pub fn wait_gone(&self) {
        if let Err(e) = self.reap_tree(GONE_TIMEOUT, false) {
            panic!(
                "pid {} ({}): {e}; log:\n{}",
                self.pid,
                self.what,
                self.log()
            );
        }
    }

    fn reap_tree(&self, timeout: Duration, kill: bool) -> Result<(), String> {
        let me = std::process::id() as i32;
        let start = Instant::now();
        let mut sessions = BTreeSet::new();
        loop {
            let procs = self.scan(&mut sessions);
            if procs.is_empty() && proc_state(self.pid).is_none() {
                return Ok(());
            }
            for p in &procs {
                if kill && !p.is_zombie() {
                    // SAFETY: kill has no memory-safety preconditions; `p`
                    // was just found to be a process of this workload.
                    unsafe { libc::kill(p.pid, libc::SIGKILL) };
                }
                if p.is_zombie() && p.ppid == me {
                    let mut st = 0;
                    // SAFETY: `st` is a valid out-pointer; waiting for one
                    // specific pid, a zombie child of ours in the tree.
                    unsafe { libc::waitpid(p.pid, &mut st, libc::WNOHANG | libc::__WALL) };
                }
            }
            reap_if_zombie_child(self.pid);
            if start.elapsed() > timeout {
                let left: Vec<String> = procs
                    .iter()
                    .map(|p| format!("{} (state {}, ppid {})", p.pid, p.state, p.ppid))
                    .collect();
                return Err(format!(
                    "processes of the tree of {} still there after {timeout:?}: [{}]{}",
                    self.pid,
                    left.join(", "),
                    match proc_state(self.pid) {
                        Some(s) => format!("; pid {} is in state {s}", self.pid),
                        None => String::new(),
                    }
                ));
            }
            sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("kept workload dir {}", self.dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

// ---------------------------------------------------------------------------
// Waiting for pids
// ---------------------------------------------------------------------------

/// How a process ended.
#[derive(Debug, Clone, Copy)]
pub enum Exit {
    /// Raw wait status (it was our child, or reparented to us).
    Status(i32),
    /// It is gone (or a zombie, when allowed) but not our child.
    Gone,
}

/// Single-letter state from /proc/PID/stat, None when the pid is gone.
pub fn proc_state(pid: i32) -> Option<char> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.trim_start().chars().next()
}

fn proc_ppid(pid: i32) -> Option<i32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

fn reap_if_zombie_child(pid: i32) {
    if proc_state(pid) == Some('Z') && proc_ppid(pid) == Some(std::process::id() as i32) {
        let mut st = 0;
        // SAFETY: `st` is a valid out-pointer; waiting for one specific pid.
        unsafe { libc::waitpid(pid, &mut st, libc::WNOHANG | libc::__WALL) };
    }
}

/// Waits for `pid` to exit. Uses waitpid while it is our child (or
/// reparented to us); falls back to polling /proc on ECHILD. With
/// `zombie_ok`, a zombie that is not ours counts as exited; without it the
/// pid must vanish entirely (so that a restore can reuse it).
pub fn wait_exit(pid: i32, timeout: Duration, zombie_ok: bool) -> Result<Exit, String> {
    let start = Instant::now();
    loop {
        let mut st = 0;
        // SAFETY: `st` is a valid out-pointer; waiting for one specific pid.
        let r = unsafe { libc::waitpid(pid, &mut st, libc::WNOHANG | libc::__WALL) };
        if r == pid {
            return Ok(Exit::Status(st));
        }
        if r < 0 {
            let err = std::io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::ECHILD) => match proc_state(pid) {
                    None => return Ok(Exit::Gone),
                    Some('Z') | Some('X') if zombie_ok => return Ok(Exit::Gone),
                    _ => {}
                },
                _ => return Err(format!("waitpid({pid}): {err}")),
            }
        }
        if start.elapsed() > timeout {
            return Err(format!(
                "still there after {timeout:?} (state {:?})",
                proc_state(pid)
            ));
        }
        sleep(Duration::from_millis(10));
    }
}

//! The processes that get dumped and restored: any program in a clean
//! session ([`Workload`]), and the memory workload that checks its own
//! memory after every restore ([`MemWorkload`]).

use std::fs;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::host::path_str;
use crate::process::{proc_ppid, proc_state, wait_child};
use crate::report::human;

/// Upper bound for the workload's fill (first touch can be slow) and for
/// one verification pass.
pub const WORKLOAD_TIMEOUT: Duration = Duration::from_secs(300);

/// The memory workload's C source, compiled with `cc -O2` by `main`.
pub const WORKLOAD_C: &str = include_str!("memwl.c");

/// A process started by the benchmark: in a new session, cwd `dir`, stdin
/// /dev/null, stdout and stderr appended to `dir/log`, no other fds.
/// SIGKILLed on drop while it is still ours (same pid and cwd).
pub struct Workload {
    pub pid: i32,
    pub dir: PathBuf,
    pub what: String,
}

impl Workload {
    pub fn start(program: &Path, args: &[&str], dir: PathBuf) -> Workload {
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create workload dir");
        let dir = fs::canonicalize(&dir).expect("canonicalize workload dir");
        let log = fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(dir.join("log"))
            .expect("open workload log");
        let mut cmd = Command::new(program);
        cmd.args(args)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log);
        // SAFETY: the closure runs between fork and exec and calls only
        // async-signal-safe syscalls (setsid, close_range, rt_sigprocmask)
        // on constants.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // Every fd >= 3 goes away at exec: an inherited pipe (cargo's,
                // a CI runner's) shared with a process outside the dump makes
                // stasis refuse the dump. CLOSE_RANGE_CLOEXEC rather than an
                // immediate close keeps std's exec-error pipe working until
                // the exec itself; start() checks /proc/PID/fd afterwards.
                if libc::syscall(
                    libc::SYS_close_range,
                    3u32,
                    u32::MAX,
                    libc::CLOSE_RANGE_CLOEXEC,
                ) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                let empty: u64 = 0;
                // Start with an empty signal mask whatever the runner had.
                if libc::syscall(
                    libc::SYS_rt_sigprocmask,
                    libc::SIG_SETMASK,
                    &empty as *const u64,
                    std::ptr::null_mut::<u64>(),
                    8usize,
                ) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", program.display()));
        let pid = child.id() as i32;
        // Waited for with waitpid on the pid, which keeps working after the
        // process is restored and reparented to us (we are a subreaper).
        drop(child);
        let what = std::iter::once(path_str(program))
            .chain(args.iter().copied())
            .collect::<Vec<_>>()
            .join(" ");
        Workload { pid, dir, what }
    }

    pub fn log(&self) -> String {
        fs::read(self.dir.join("log"))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// True when `pid` is a live process whose cwd is our dir: this
    /// workload or (for a tree) one of its descendants.
    pub fn owns(&self, pid: i32) -> bool {
        matches!(proc_state(pid), Some(s) if s != 'Z' && s != 'X')
            && fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|c| c == self.dir)
    }

    /// True when our pid is a live process whose cwd is our dir.
    fn is_ours(&self) -> bool {
        self.owns(self.pid)
    }

    pub fn fail(&self, why: &str) -> ! {
        panic!(
            "FAILED: pid {} ({}): {why}\nworkload log:\n{}",
            self.pid,
            self.what,
            self.log()
        );
    }

    /// Polls until `f(log)` returns Some, failing when the process dies or
    /// `timeout` passes.
    pub fn wait_log<T>(&self, timeout: Duration, what: &str, f: impl Fn(&str) -> Option<T>) -> T {
        let start = Instant::now();
        loop {
            if let Some(v) = f(&self.log()) {
                return v;
            }
            if !self.is_ours() {
                self.fail(&format!("exited before {what}"));
            }
            if start.elapsed() > timeout {
                self.fail(&format!("no {what} after {timeout:?}"));
            }
            sleep(Duration::from_millis(5));
        }
    }

    /// Only fds 0, 1, 2 may be open: anything else would be inherited.
    pub fn assert_fds(&self) {
        self.assert_fds_of(self.pid);
    }

    /// [`Workload::assert_fds`] for `pid`, one of the workload's processes.
    pub fn assert_fds_of(&self, pid: i32) {
        let mut fds: Vec<i32> = fs::read_dir(format!("/proc/{pid}/fd"))
            .expect("list workload fds")
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .collect();
        fds.sort();
        if fds != [0, 1, 2] {
            self.fail(&format!("pid {pid} has fds {fds:?}, want [0, 1, 2]"));
        }
    }

    pub fn signal(&self, sig: i32) {
        self.signal_pid(self.pid, sig);
    }

    /// Sends `sig` to `pid`, which must be one of the workload's processes.
    pub fn signal_pid(&self, pid: i32, sig: i32) {
        if !self.owns(pid) {
            self.fail(&format!("pid {pid} is not running"));
        }
        // SAFETY: kill has no memory-safety preconditions; the pid was just
        // checked to be this workload's (live, with our cwd).
        if unsafe { libc::kill(pid, sig) } != 0 {
            self.fail(&format!("kill {pid}: {}", std::io::Error::last_os_error()));
        }
    }

    /// After a dump killed it: reaps it (our child, or reparented to us)
    /// and waits until /proc/PID is gone, so a restore can reuse the pid.
    pub fn reap_after_dump(&self) {
        match wait_child(self.pid, Duration::from_secs(30)) {
            Ok(st) if libc::WIFSIGNALED(st) && libc::WTERMSIG(st) == libc::SIGKILL => {}
            Ok(st) => self.fail(&format!(
                "after dump: exit status {}, want SIGKILL",
                std::process::ExitStatus::from_raw(st)
            )),
            Err(e) => self.fail(&format!("after dump: {e}")),
        }
        let start = Instant::now();
        while Path::new(&format!("/proc/{}", self.pid)).exists() {
            if start.elapsed() > Duration::from_secs(30) {
                self.fail("/proc/PID still exists 30 s after the dump");
            }
            sleep(Duration::from_millis(1));
        }
    }

    /// After a restore: the pid runs again, in our dir, as our child.
    pub fn check_restored(&self) {
        if !self.is_ours() {
            self.fail("not running after restore");
        }
        let me = std::process::id() as i32;
        if proc_ppid(self.pid) != Some(me) {
            self.fail(&format!(
                "restored with parent {:?}, not this (subreaper) process {me}",
                proc_ppid(self.pid)
            ));
        }
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        if self.is_ours() {
            // SAFETY: kill has no memory-safety preconditions; the pid is
            // still this workload (live, with our cwd).
            unsafe { libc::kill(self.pid, libc::SIGKILL) };
            let _ = wait_child(self.pid, Duration::from_secs(10));
        }
    }
}

/// The memory workload holding `bytes`, verified by SIGUSR1.
pub struct MemWorkload {
    pub w: Workload,
    pub verifies: u64,
}

impl MemWorkload {
    /// `memfd`: the memory is a memfd mapped shared (an unlinked file's
    /// contents in the image) instead of private anonymous memory.
    pub fn start(bin: &Path, bytes: u64, memfd: bool, dir: PathBuf) -> MemWorkload {
        let size = bytes.to_string();
        let args: &[&str] = if memfd { &[&size, "memfd"] } else { &[&size] };
        let w = Workload::start(bin, args, dir);
        let fill_ms: f64 = w
            .wait_log(WORKLOAD_TIMEOUT, "READY", |log| {
                if let Some(l) = log.lines().find(|l| l.starts_with("FAIL")) {
                    return Some(Err(l.to_string()));
                }
                let l = log.lines().find(|l| l.starts_with("READY"))?;
                let ms = l
                    .split_whitespace()
                    .find_map(|f| f.strip_prefix("fill_ms="))?;
                Some(Ok(ms.parse().unwrap_or(f64::NAN)))
            })
            .unwrap_or_else(|l| w.fail(&l));
        w.assert_fds();
        eprintln!(
            "  workload pid {} filled {} in {:.0} ms ({:.2} GB/s)",
            w.pid,
            human(bytes),
            fill_ms,
            bytes as f64 / fill_ms / 1e6
        );
        MemWorkload { w, verifies: 0 }
    }

    /// SIGUSR1, then requires `VERIFY k OK`; returns the check's ms.
    pub fn verify(&mut self) -> f64 {
        self.verifies += 1;
        let k = self.verifies;
        self.w.signal(libc::SIGUSR1);
        let prefix = format!("VERIFY {k} ");
        let line = self
            .w
            .wait_log(WORKLOAD_TIMEOUT, &format!("VERIFY {k}"), |log| {
                log.lines()
                    .find(|l| l.starts_with(&prefix))
                    .map(str::to_string)
            });
        if !line.starts_with(&format!("VERIFY {k} OK")) {
            self.w.fail(&format!("memory check after restore: {line}"));
        }
        line.split_whitespace()
            .rev()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(f64::NAN)
    }

    /// SIGTERM: the final check, which must print PASS and exit 0.
    pub fn finish(self) {
        self.w.signal(libc::SIGTERM);
        match wait_child(self.w.pid, WORKLOAD_TIMEOUT) {
            Ok(st) if libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0 => {}
            Ok(st) => self.w.fail(&format!(
                "final check: exit status {}",
                std::process::ExitStatus::from_raw(st)
            )),
            Err(e) => self.w.fail(&format!("final check: {e}")),
        }
        if !self.w.log().lines().any(|l| l.trim() == "PASS") {
            self.w.fail("exited 0 without printing PASS");
        }
    }
}

//! Checkpoint/restore throughput: `cargo bench -p stasis --bench cr`.
//!
//! A plain `main` (harness = false) that prints a table. It measures:
//!
//! - dump and restore of a process holding 1 GiB and 4 GiB of dirtied
//!   private anonymous memory, with the images on tmpfs (`/dev/shm`) and on
//!   ext4 (`/var/tmp`), each as a ratio to `cp` of a file of the same size
//!   into the same filesystem, timed in the same run;
//! - dump and restore latency of `sleep 1000`;
//! - a `memcpy` of the same size, as a reference for memory bandwidth.
//!
//! Times are wall times of the `stasis` commands (`dump` until it exits,
//! `restore -d` until it returns with the process running), as a user sees
//! them; the `--json` internal times are shown next to them. Each case does
//! one untimed warm-up cycle first (cp, dump, restore), so that guest RAM,
//! tmpfs pages and the page cache are warm: first touch of guest RAM in a VM
//! can be several times slower than reuse. For the same reason each timed
//! step is preceded by an untimed fault-in of as much memory as it will
//! allocate (see [`prefault`]; `STASIS_BENCH_NO_PREFAULT=1` turns it off).
//! `sync` runs before each timed step, so that earlier writeback does not
//! land in it; neither cp nor the drop of its destination is fsynced.
//!
//! The workload (C, compiled here with `cc -O2`) maps N bytes and writes a
//! seeded, position-dependent pattern into every 8-byte word, prints READY
//! and waits. On SIGUSR1 it checks every word and prints `VERIFY k OK` or
//! `VERIFY k FAIL ...`; on SIGTERM it checks again and exits 0 (`PASS`) or 1
//! (`FAIL`). The same process is dumped and restored over and over, and
//! verified after every restore: a restore that brings back wrong memory
//! fails the benchmark (exit status 1, `FAILED` in the table). After a
//! failed restore the case goes on timing cp and dump only, each of a
//! fresh workload, so that the table still shows them.
//!
//! Positional arguments select cases (default: all): `1g`, `4g`, `sleep`,
//! `memcpy`, `tmpfs`, `ext4`; e.g. `cargo bench -p stasis --bench cr -- 1g
//! tmpfs`. `STASIS_BENCH_RUNS=N` overrides every run count; `STASIS_BIN`
//! runs another stasis binary. Needs root; cases that do not fit in
//! MemAvailable are skipped with a printed reason.
//!
//! Files go under `/var/tmp/stasis-bench-PID` (compiled workload, logs,
//! ext4 images) and `/dev/shm/stasis-bench-PID` (tmpfs images, the cp
//! source); both are removed at the end, and kept when a check fails.

use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// Timed runs per case (after one warm-up cycle).
const RUNS_1G: usize = 7;
const RUNS_4G: usize = 3;
const RUNS_SLEEP: usize = 10;
const RUNS_MEMCPY: usize = 3;

/// Upper bound for one stasis or cp command.
const CMD_TIMEOUT: Duration = Duration::from_secs(300);
/// Upper bound for the workload's fill (first touch can be slow) and for
/// one verification pass.
const WORKLOAD_TIMEOUT: Duration = Duration::from_secs(300);

/// Target from the issue: dump and restore each within this factor of cp.
const TARGET_RATIO: f64 = 1.5;

const WORKLOAD_C: &str = r#"
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t got_usr1, got_term;
static uint64_t *mem;
static size_t nwords;
static uint64_t seed; /* random per run, in .bss: must survive restore too */

static void on_signal(int sig)
{
	if (sig == SIGUSR1)
		got_usr1 = 1;
	else
		got_term = 1;
}

/* Word i of the memory: depends on the seed and on the position. */
static inline uint64_t pat(size_t i)
{
	uint64_t x = seed ^ ((uint64_t)i * 0x9E3779B97F4A7C15ULL);

	return x ^ (x >> 31);
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Number of wrong words; *first is the index of the first one. */
static size_t check(size_t *first)
{
	size_t bad = 0;

	*first = 0;
	for (size_t i = 0; i < nwords; i++) {
		if (mem[i] != pat(i)) {
			if (!bad)
				*first = i;
			bad++;
		}
	}
	return bad;
}

int main(int argc, char **argv)
{
	struct timespec ts;
	struct sigaction sa;
	unsigned long k = 0;
	size_t bytes, first, bad;
	double t0, t1;

	if (argc != 2) {
		printf("FAIL: usage: %s BYTES\n", argv[0]);
		return 2;
	}
	bytes = strtoull(argv[1], NULL, 0);
	nwords = bytes / 8;
	clock_gettime(CLOCK_REALTIME, &ts);
	seed = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ ((uint64_t)getpid() << 44);
	mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		printf("FAIL: mmap %zu bytes: %m\n", bytes);
		return 1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal; /* no SA_RESTART: interrupts nanosleep */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	t0 = now_ms();
	for (size_t i = 0; i < nwords; i++)
		mem[i] = pat(i);
	t1 = now_ms();
	printf("READY bytes=%zu at=%p seed=%016llx fill_ms=%.0f\n", bytes, (void *)mem,
	       (unsigned long long)seed, t1 - t0);
	fflush(stdout);

	for (;;) {
		/* Polling sleep rather than pause(): no lost-wakeup window. */
		while (!got_usr1 && !got_term) {
			struct timespec d = { 0, 100 * 1000 * 1000 };

			nanosleep(&d, NULL);
		}
		if (got_usr1) {
			got_usr1 = 0;
			k++;
			t0 = now_ms();
			bad = check(&first);
			t1 = now_ms();
			if (bad)
				printf("VERIFY %lu FAIL %zu of %zu words wrong, first word %zu "
				       "(addr %p) is %016llx, want %016llx\n",
				       k, bad, nwords, first, (void *)&mem[first],
				       (unsigned long long)mem[first], (unsigned long long)pat(first));
			else
				printf("VERIFY %lu OK %zu bytes checked in %.0f ms\n", k, bytes, t1 - t0);
			fflush(stdout);
		}
		if (got_term) {
			bad = check(&first);
			if (bad) {
				printf("FAIL: %zu of %zu words wrong, first word %zu is %016llx, want %016llx\n",
				       bad, nwords, first, (unsigned long long)mem[first],
				       (unsigned long long)pat(first));
				fflush(stdout);
				_exit(1);
			}
			printf("PASS\n");
			fflush(stdout);
			return 0;
		}
	}
}
"#;

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

fn min_max(v: &[f64]) -> (f64, f64) {
    v.iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
            (a.min(x), b.max(x))
        })
}

/// `median [min-max]` of `v` times `scale`, or `-` when `v` is empty.
fn stat(v: &[f64], scale: f64, prec: usize, unit: &str) -> String {
    if v.is_empty() {
        return "-".into();
    }
    let (lo, hi) = min_max(v);
    format!(
        "{:.prec$}{unit} [{:.prec$}-{:.prec$}]",
        median(v) * scale,
        lo * scale,
        hi * scale
    )
}

/// `a / b` of two medians, and of the two minima, or `-` when either is
/// missing.
fn ratio(a: &[f64], b: &[f64]) -> String {
    if a.is_empty() || b.is_empty() {
        "-".into()
    } else {
        format!(
            "{:.2} ({:.2})",
            median(a) / median(b),
            min_max(a).0 / min_max(b).0
        )
    }
}

fn human(bytes: u64) -> String {
    if bytes >= GIB {
        format!("{:.2} GiB", bytes as f64 / GIB as f64)
    } else if bytes >= MIB {
        format!("{:.1} MiB", bytes as f64 / MIB as f64)
    } else {
        format!("{:.0} KiB", bytes as f64 / 1024.0)
    }
}

fn size_label(bytes: u64) -> String {
    format!("{} GiB", bytes / GIB)
}

/// A `/proc/meminfo` field, in bytes.
fn meminfo(field: &str) -> Option<u64> {
    let s = fs::read_to_string("/proc/meminfo").ok()?;
    s.lines().find_map(|l| {
        let rest = l.strip_prefix(field)?.strip_prefix(':')?;
        let kib: u64 = rest.split_whitespace().next()?.parse().ok()?;
        Some(kib * 1024)
    })
}

fn cmd_stdout(prog: &str, args: &[&str]) -> String {
    Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "?".into())
}

fn read_trim(path: &str) -> String {
    fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".into())
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Total size (apparent bytes, allocated bytes) of the files in `dir`.
fn dir_size(dir: &Path) -> (u64, u64) {
    let mut total = (0, 0);
    for e in fs::read_dir(dir).expect("read image dir").flatten() {
        let m = e.metadata().expect("stat image file");
        if m.is_file() {
            total.0 += m.len();
            total.1 += m.blocks() * 512;
        } else if m.is_dir() {
            let (a, b) = dir_size(&e.path());
            total.0 += a;
            total.1 += b;
        }
    }
    total
}

/// Filesystem of `path`: (`stat -f -c %T` output, fstype from mountinfo).
fn fs_type(path: &Path) -> (String, String) {
    let stat_f = cmd_stdout("stat", &["-f", "-c", "%T", path_str(path)]);
    let canon = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let mut best: Option<(usize, String)> = None;
    if let Ok(mi) = fs::read_to_string("/proc/self/mountinfo") {
        for line in mi.lines() {
            let Some((pre, post)) = line.split_once(" - ") else {
                continue;
            };
            let Some(mnt) = pre.split_whitespace().nth(4) else {
                continue;
            };
            let mnt = mnt.replace("\\040", " ");
            let Some(fstype) = post.split_whitespace().next() else {
                continue;
            };
            if canon.starts_with(&mnt) && best.as_ref().is_none_or(|(l, _)| mnt.len() >= *l) {
                best = Some((mnt.len(), fstype.to_string()));
            }
        }
    }
    (stat_f, best.map(|b| b.1).unwrap_or_else(|| "?".into()))
}

fn proc_state(pid: i32) -> Option<char> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.trim_start().chars().next()
}

fn proc_ppid(pid: i32) -> Option<i32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// Waits (blocking) until `pid`, a child of ours, has exited or `timeout`
/// passes; returns its raw wait status.
fn wait_child(pid: i32, timeout: Duration) -> Result<i32, String> {
    let start = Instant::now();
    loop {
        let mut st = 0;
        // SAFETY: `st` is a valid out-pointer; waiting for one specific pid
        // that this process started (or that was reparented to it).
        let r = unsafe { libc::waitpid(pid, &mut st, libc::WNOHANG | libc::__WALL) };
        if r == pid {
            return Ok(st);
        }
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EINTR) {
                return Err(format!("waitpid({pid}): {e}"));
            }
        }
        if start.elapsed() > timeout {
            return Err(format!(
                "pid {pid} still there after {timeout:?} (state {:?})",
                proc_state(pid)
            ));
        }
        sleep(Duration::from_millis(2));
    }
}

/// Blocks until the process behind `pidfd` exits, up to `timeout`.
/// Returns false on timeout.
fn pidfd_wait(pidfd: i32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let mut pfd = libc::pollfd {
            fd: pidfd,
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = left.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: `pfd` is one valid pollfd that outlives the call.
        let r = unsafe { libc::poll(&mut pfd, 1, ms.max(1)) };
        if r > 0 {
            return true;
        }
        if r < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return false;
        }
    }
}

// ---------------------------------------------------------------------------
// Running commands with precise wall time
// ---------------------------------------------------------------------------

/// What a timed command produced.
struct Ran {
    wall: Duration,
    stdout: String,
}

/// Runs `prog args`, timing it from spawn to exit (observed through a
/// pidfd, so without polling granularity). Output goes to files in `out_dir`
/// rather than pipes: a restored process must not be able to hold them open.
/// Panics, with stderr, when the command fails or exceeds [`CMD_TIMEOUT`].
fn run_timed(prog: &Path, args: &[&str], out_dir: &Path) -> Ran {
    let out_p = out_dir.join("cmd.out");
    let err_p = out_dir.join("cmd.err");
    let out_f = fs::File::create(&out_p).expect("create stdout file");
    let err_f = fs::File::create(&err_p).expect("create stderr file");
    let shown = format!("{} {}", prog.display(), args.join(" "));
    let start = Instant::now();
    let mut child = Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out_f)
        .stderr(err_f)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn `{shown}`: {e}"));
    let pid = child.id() as i32;
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as i32;
    let exited = if pidfd >= 0 {
        let ok = pidfd_wait(pidfd, CMD_TIMEOUT);
        // SAFETY: closing the fd pidfd_open returned, used nowhere else.
        unsafe { libc::close(pidfd) };
        ok
    } else {
        true // no pidfd: fall back to the blocking wait below
    };
    let wall = start.elapsed();
    if !exited {
        let _ = child.kill();
        let _ = child.wait();
        panic!("`{shown}` did not finish within {CMD_TIMEOUT:?}");
    }
    let status = child
        .wait()
        .unwrap_or_else(|e| panic!("wait `{shown}`: {e}"));
    let wall = if pidfd >= 0 { wall } else { start.elapsed() };
    let stdout = fs::read_to_string(&out_p).unwrap_or_default();
    let stderr = fs::read_to_string(&err_p).unwrap_or_default();
    assert!(
        status.success(),
        "`{shown}` failed: {status}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    Ran { wall, stdout }
}

/// The last line of `s` parsed as JSON.
fn json_line(s: &str, what: &str) -> serde_json::Value {
    let line = s.lines().rev().find(|l| l.trim_start().starts_with('{'));
    line.and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("{what}: no JSON line in output:\n{s}"))
}

fn json_f64(v: &serde_json::Value, key: &str) -> f64 {
    v.get(key).and_then(|x| x.as_f64()).unwrap_or(f64::NAN)
}

// ---------------------------------------------------------------------------
// Workloads
// ---------------------------------------------------------------------------

/// A process started by the benchmark: in a new session, cwd `dir`, stdin
/// /dev/null, stdout and stderr appended to `dir/log`, no other fds.
/// SIGKILLed on drop while it is still ours (same pid and cwd).
struct Workload {
    pid: i32,
    dir: PathBuf,
    what: String,
}

impl Workload {
    fn start(program: &Path, args: &[&str], dir: PathBuf) -> Workload {
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

    fn log(&self) -> String {
        fs::read(self.dir.join("log"))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// True when `pid` is a live process whose cwd is our dir.
    fn is_ours(&self) -> bool {
        matches!(proc_state(self.pid), Some(s) if s != 'Z' && s != 'X')
            && fs::read_link(format!("/proc/{}/cwd", self.pid)).is_ok_and(|c| c == self.dir)
    }

    fn fail(&self, why: &str) -> ! {
        panic!(
            "FAILED: pid {} ({}): {why}\nworkload log:\n{}",
            self.pid,
            self.what,
            self.log()
        );
    }

    /// Polls until `f(log)` returns Some, failing when the process dies or
    /// `timeout` passes.
    fn wait_log<T>(&self, timeout: Duration, what: &str, f: impl Fn(&str) -> Option<T>) -> T {
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
    fn assert_fds(&self) {
        let mut fds: Vec<i32> = fs::read_dir(format!("/proc/{}/fd", self.pid))
            .expect("list workload fds")
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .collect();
        fds.sort();
        if fds != [0, 1, 2] {
            self.fail(&format!("has fds {fds:?}, want [0, 1, 2]"));
        }
    }

    fn signal(&self, sig: i32) {
        if !self.is_ours() {
            self.fail("is not running");
        }
        // SAFETY: kill has no memory-safety preconditions; the pid was just
        // checked to be this workload (live, with our cwd).
        if unsafe { libc::kill(self.pid, sig) } != 0 {
            self.fail(&format!("kill: {}", std::io::Error::last_os_error()));
        }
    }

    /// After a dump killed it: reaps it (our child, or reparented to us)
    /// and waits until /proc/PID is gone, so a restore can reuse the pid.
    fn reap_after_dump(&self) {
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
    fn check_restored(&self) {
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
struct MemWorkload {
    w: Workload,
    verifies: u64,
}

impl MemWorkload {
    fn start(bin: &Path, bytes: u64, dir: PathBuf) -> MemWorkload {
        let w = Workload::start(bin, &[&bytes.to_string()], dir);
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
    fn verify(&mut self) -> f64 {
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
    fn finish(self) {
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

// ---------------------------------------------------------------------------
// The benchmark
// ---------------------------------------------------------------------------

/// Where images (and cp destinations) go.
struct Target {
    name: &'static str,
    root: PathBuf,
}

/// One measured case.
struct Row {
    what: String,
    fs: &'static str,
    bytes: u64,
    cp: Vec<f64>,
    dump: Vec<f64>,
    dump_json: Vec<f64>,
    frozen: Vec<f64>,
    restore: Vec<f64>,
    restore_json: Vec<f64>,
    image: (u64, u64),
    /// Wall times of the untimed warm-up dump and restore.
    warm: (Option<f64>, Option<f64>),
    /// Why the case stopped early (the panic message), if it did.
    failed: Option<String>,
}

impl Row {
    fn new(what: String, fs: &'static str, bytes: u64) -> Row {
        Row {
            what,
            fs,
            bytes,
            cp: Vec::new(),
            dump: Vec::new(),
            dump_json: Vec::new(),
            frozen: Vec::new(),
            restore: Vec::new(),
            restore_json: Vec::new(),
            image: (0, 0),
            warm: (None, None),
            failed: None,
        }
    }
}

struct Bench {
    stasis: PathBuf,
    cp: PathBuf,
    work: PathBuf,
    runs_override: Option<usize>,
    /// Fault in (and free) memory right before each timed step; see
    /// [`prefault`].
    prefault: bool,
}

impl Bench {
    fn runs(&self, default: usize) -> usize {
        self.runs_override.unwrap_or(default)
    }

    /// Makes `bytes` (+ 256 MiB) of guest RAM host-resident just before a
    /// timed step, when enabled; returns the rate in GB/s.
    fn warm(&self, bytes: u64) -> Option<f64> {
        self.prefault.then(|| prefault(bytes + 256 * MIB))
    }

    /// `stasis dump` of `pid` into `dir` (created empty), timed; records
    /// wall and --json times in `row`.
    fn dump(&self, pid: i32, dir: &Path, row: &mut Row, warm: bool) -> f64 {
        let _ = fs::remove_dir_all(dir);
        fs::create_dir_all(dir).expect("create image dir");
        let pid_s = pid.to_string();
        let r = run_timed(
            &self.stasis,
            &["dump", "-t", &pid_s, "-D", path_str(dir), "--json"],
            &self.work,
        );
        let j = json_line(&r.stdout, "stasis dump");
        let wall = r.wall.as_secs_f64();
        row.image = dir_size(dir);
        if warm {
            row.warm.0 = Some(wall);
        } else {
            row.dump.push(wall);
            row.dump_json.push(json_f64(&j, "total_ms") / 1e3);
            row.frozen.push(json_f64(&j, "frozen_ms") / 1e3);
        }
        wall
    }

    /// `stasis restore -D dir -d`, timed until it returns.
    fn restore(&self, dir: &Path, pid: i32, row: &mut Row, warm: bool) -> f64 {
        let r = run_timed(
            &self.stasis,
            &["restore", "-D", path_str(dir), "-d", "--json"],
            &self.work,
        );
        let j = json_line(&r.stdout, "stasis restore");
        let got = j.get("pid").and_then(|p| p.as_i64());
        assert_eq!(got, Some(pid as i64), "restore reported pid {got:?}");
        let wall = r.wall.as_secs_f64();
        if warm {
            row.warm.1 = Some(wall);
        } else {
            row.restore.push(wall);
            row.restore_json.push(json_f64(&j, "restore_ms") / 1e3);
        }
        wall
    }

    /// `cp src dst`, timed; dst removed afterwards (untimed).
    fn cp(&self, src: &Path, dst: &Path) -> f64 {
        let _ = fs::remove_file(dst);
        // SAFETY: sync has no preconditions; it flushes dirty data left by
        // earlier steps so that it does not land inside this timing.
        unsafe { libc::sync() };
        self.warm(fs::metadata(src).map(|m| m.len()).unwrap_or(0));
        let r = run_timed(&self.cp, &[path_str(src), path_str(dst)], &self.work);
        let len = fs::metadata(dst).map(|m| m.len()).unwrap_or(0);
        assert_eq!(
            len,
            fs::metadata(src).expect("stat cp source").len(),
            "cp copied {len} bytes"
        );
        fs::remove_file(dst).expect("remove cp destination");
        // SAFETY: as above; drops the (now unlinked) file's pending state.
        unsafe { libc::sync() };
        r.wall.as_secs_f64()
    }

    /// Dump + restore of the memory workload `bytes` with images on `t`;
    /// one untimed warm-up cycle, then `runs` timed ones, each followed by a
    /// full memory check. Results go into `row` as they come, so that a
    /// failure (a panic) keeps what was measured before it.
    fn mem_case(&self, bin: &Path, bytes: u64, src: &Path, t: &Target, runs: usize, row: &mut Row) {
        eprintln!(
            "{} anonymous memory, images on {} ({}):",
            size_label(bytes),
            t.name,
            t.root.display()
        );
        let wl_dir = self.work.join(format!("wl-{}g-{}", bytes / GIB, t.name));
        let mut wl = MemWorkload::start(bin, bytes, wl_dir.clone());
        let ms = wl.verify();
        eprintln!("  initial check: {ms:.0} ms");
        let images = t.root.join("images");
        let cp_dst = t.root.join("cp-dst.bin");
        for i in 0..=runs {
            let warm = i == 0;
            if warm {
                eprint!("  warm-up:");
            } else {
                eprint!("  run {i}:");
            }
            let pid = wl.w.pid;
            let cp = self.cp(src, &cp_dst);
            eprint!(" cp {cp:.3} s");
            // SAFETY: sync has no preconditions (see Bench::cp).
            unsafe { libc::sync() };
            self.warm(bytes);
            let d = self.dump(pid, &images, row, warm);
            eprint!("  dump {d:.3} s");
            wl.w.reap_after_dump();
            if !warm {
                row.cp.push(cp);
            }
            if row.failed.is_none() {
                let failed = catch(|| {
                    self.warm(bytes);
                    let r = self.restore(&images, pid, row, warm);
                    eprint!("  restore {r:.3} s");
                    wl.w.check_restored();
                    let check_ms = wl.verify();
                    eprintln!("  check OK ({check_ms:.0} ms)");
                });
                if let Some(why) = failed {
                    eprintln!(
                        "  restore or check FAILED: later runs time cp and dump only, \
                         each of a fresh workload"
                    );
                    row.failed = Some(why);
                    // A restored process is our child (or reparented to
                    // us): reap what is left of it.
                    let _ = wait_child(pid, Duration::from_secs(5));
                }
            } else {
                eprintln!("  (no restore)");
            }
            let _ = fs::remove_dir_all(&images);
            if row.failed.is_some() && i < runs {
                wl = MemWorkload::start(bin, bytes, wl_dir.clone());
            }
        }
        if row.failed.is_none() {
            wl.finish();
        }
        let _ = fs::remove_file(&cp_dst);
    }

    /// Dump + restore latency of `sleep 1000`.
    fn sleep_case(&self, t: &Target, runs: usize, row: &mut Row) {
        eprintln!("sleep 1000, images on {}:", t.name);
        let sleep_bin = ["/usr/bin/sleep", "/bin/sleep"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
            .expect("no sleep binary");
        let w = Workload::start(
            &sleep_bin,
            &["1000"],
            self.work.join(format!("sleep-{}", t.name)),
        );
        let pid = w.pid;
        let is_sleep = |_: &str| {
            let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
            (args.len() == 3 && args[0].ends_with(b"sleep") && args[1] == b"1000").then_some(())
        };
        w.wait_log(Duration::from_secs(10), "exec of sleep", is_sleep);
        w.assert_fds();
        let images = t.root.join("images-sleep");
        for i in 0..=runs {
            let warm = i == 0;
            self.dump(pid, &images, row, warm);
            w.reap_after_dump();
            self.restore(&images, pid, row, warm);
            w.check_restored();
            if is_sleep("").is_none() || proc_state(pid) != Some('S') {
                w.fail(&format!(
                    "after restore: state {:?}, cmdline not `sleep 1000`",
                    proc_state(pid)
                ));
            }
            let _ = fs::remove_dir_all(&images);
        }
        eprintln!(
            "  dump median {:.1} ms, restore median {:.1} ms",
            median(&row.dump) * 1e3,
            median(&row.restore) * 1e3
        );
        drop(w); // SIGKILL + reap
    }
}

/// Faults in `bytes` of anonymous memory (transparent huge pages where
/// possible) and frees it again; returns the rate in GB/s.
///
/// This VM reports freed guest pages to the host (virtio-balloon free page
/// reporting), which drops them: the next touch of such a page faults on
/// the host too, several times slower than reuse. Any step that allocates
/// GiBs (cp's destination, an image on tmpfs or in the page cache, the
/// restored memory) pays that or not depending on timing. Touching the
/// memory right before the step hands it recently freed, host-resident
/// pages instead, so that cp and stasis are both measured warm.
fn prefault(bytes: u64) -> f64 {
    let len = bytes as usize;
    let t = Instant::now();
    // SAFETY: a fresh private anonymous mapping; no existing memory is
    // affected, and the result is checked before use.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return f64::NAN;
    }
    // SAFETY: `p..p+len` is the mapping made above; madvise only changes
    // how it is backed. Failure (no THP, no POPULATE_WRITE) is fine.
    let populated = unsafe {
        libc::madvise(p, len, libc::MADV_HUGEPAGE);
        libc::madvise(p, len, libc::MADV_POPULATE_WRITE) == 0
    };
    if !populated {
        for off in (0..len).step_by(4096) {
            // SAFETY: `off < len`, inside the writable mapping made above,
            // which nothing else references.
            unsafe { std::ptr::write_volatile((p as *mut u8).add(off), 1) };
        }
    }
    // SAFETY: unmapping exactly the mapping made above, not used after.
    unsafe { libc::munmap(p, len) };
    bytes as f64 / t.elapsed().as_secs_f64() / 1e9
}

/// memcpy of `bytes` between two warm buffers; seconds per run.
fn memcpy_case(bytes: u64, runs: usize) -> Vec<f64> {
    let n = bytes as usize;
    let src = vec![0x5au8; n];
    let mut dst = vec![0xa5u8; n];
    let mut v = Vec::new();
    for i in 0..=runs {
        let t = Instant::now();
        dst.copy_from_slice(std::hint::black_box(&src));
        std::hint::black_box(&mut dst);
        if i > 0 {
            v.push(t.elapsed().as_secs_f64());
        }
    }
    v
}

fn main() {
    // cargo bench passes `--bench`; positional words select cases.
    let sel: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .map(|a| a.to_lowercase())
        .collect();
    let known = ["1g", "4g", "sleep", "memcpy", "tmpfs", "ext4"];
    if let Some(bad) = sel.iter().find(|a| !known.contains(&a.as_str())) {
        eprintln!("unknown case {bad:?}; known: {}", known.join(" "));
        std::process::exit(2);
    }
    let kinds = ["1g", "4g", "sleep", "memcpy"];
    let fss = ["tmpfs", "ext4"];
    let want = |k: &str| {
        let group = if kinds.contains(&k) {
            &kinds[..]
        } else {
            &fss[..]
        };
        !sel.iter().any(|s| group.contains(&s.as_str())) || sel.iter().any(|s| s == k)
    };

    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if euid != 0 {
        println!("SKIP: the C/R benchmark needs root (euid is {euid})");
        return;
    }
    // SAFETY: PR_SET_CHILD_SUBREAPER takes an integer flag and changes only
    // this process's attributes.
    let r = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    assert_eq!(
        r,
        0,
        "prctl(PR_SET_CHILD_SUBREAPER): {}",
        std::io::Error::last_os_error()
    );

    let stasis = std::env::var_os("STASIS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_stasis")));
    let cp = ["/usr/bin/cp", "/bin/cp"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists());
    let Some(cp) = cp else {
        println!("SKIP: no cp binary");
        return;
    };
    let runs_override = std::env::var("STASIS_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok());
    let prefault = std::env::var_os("STASIS_BENCH_NO_PREFAULT").is_none();

    let me = std::process::id();
    let ext4_root = PathBuf::from(format!("/var/tmp/stasis-bench-{me}"));
    let shm_root = PathBuf::from(format!("/dev/shm/stasis-bench-{me}"));
    let work = ext4_root.join("work");
    fs::create_dir_all(&work).expect("create work dir");
    fs::create_dir_all(&shm_root).expect("create /dev/shm dir");

    // The workload.
    let src_c = work.join("memwl.c");
    fs::write(&src_c, WORKLOAD_C).expect("write workload source");
    let bin = work.join("memwl");
    let out = Command::new("cc")
        .args(["-O2", "-Wall", "-o", path_str(&bin), path_str(&src_c)])
        .output();
    match out {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "cc -O2 memwl.c failed:\n{}",
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => {
            println!("SKIP: cannot run cc: {e}");
            return;
        }
    }

    // The machine.
    let mem_total = meminfo("MemTotal").unwrap_or(0);
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("model name")?
                    .split_once(':')
                    .map(|x| x.1.trim().to_string())
            })
        })
        .unwrap_or_else(|| "?".into());
    println!("stasis C/R benchmark");
    println!("  stasis:  {}", stasis.display());
    println!(
        "  machine: nproc {}, {cpu}, MemTotal {}, MemAvailable {}",
        cmd_stdout("nproc", &[]),
        human(mem_total),
        human(meminfo("MemAvailable").unwrap_or(0))
    );
    println!("  kernel:  {}", cmd_stdout("uname", &["-r"]));
    println!("  loadavg: {}", read_trim("/proc/loadavg"));
    println!(
        "  tree:    {}",
        cmd_stdout(
            "git",
            &[
                "-C",
                env!("CARGO_MANIFEST_DIR"),
                "describe",
                "--always",
                "--dirty"
            ]
        )
    );
    println!(
        "  THP:     enabled {}; vm.dirty_ratio {}, dirty_background_ratio {}",
        read_trim("/sys/kernel/mm/transparent_hugepage/enabled"),
        read_trim("/proc/sys/vm/dirty_ratio"),
        read_trim("/proc/sys/vm/dirty_background_ratio")
    );
    let reported_kib = || {
        fs::read_to_string("/sys/module/page_reporting/parameters/reported_kib")
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
    };
    let reported_at_start = reported_kib();
    println!(
        "  memory:  free page reporting to the host {}; prefault before each timed step: {}",
        if Path::new("/sys/module/page_reporting").exists() {
            "present"
        } else {
            "absent"
        },
        if prefault {
            "yes (STASIS_BENCH_NO_PREFAULT=1 to disable)"
        } else {
            "no"
        }
    );
    println!(
        "  cp:      {}",
        cmd_stdout(path_str(&cp), &["--version"])
            .lines()
            .next()
            .unwrap_or("?")
    );

    let mut targets = Vec::new();
    for (name, root, want_type) in [("tmpfs", &shm_root, "tmpfs"), ("ext4", &ext4_root, "ext4")] {
        let (stat_f, mount_type) = fs_type(root);
        println!(
            "  {name:5}    {}: `stat -f -c %T` says {stat_f}, mountinfo says {mount_type}",
            root.display()
        );
        if !want(name) {
            continue;
        }
        if mount_type != want_type {
            println!(
                "  SKIP {name} cases: {} is {mount_type}, not {want_type}",
                root.display()
            );
            continue;
        }
        targets.push(Target {
            name,
            root: root.clone(),
        });
    }
    println!();

    let bench = Bench {
        stasis,
        cp,
        work: work.clone(),
        runs_override,
        prefault,
    };
    let mut rows = Vec::new();
    let mut memcpy_rows = Vec::new();
    let mut skips = Vec::new();

    for (key, bytes, runs) in [("1g", GIB, RUNS_1G), ("4g", 4 * GIB, RUNS_4G)] {
        let label = size_label(bytes);
        // Peak use: the workload, the cp source on /dev/shm, and either
        // the image or the cp destination (page cache or tmpfs).
        let need = 3 * bytes + GIB;
        let avail = meminfo("MemAvailable").unwrap_or(0);
        if (want(key) || want("memcpy")) && avail < need {
            let why = format!(
                "SKIP {label} cases: MemAvailable {} < {} needed",
                human(avail),
                human(need)
            );
            println!("{why}");
            skips.push(why);
            continue;
        }
        if want("memcpy") {
            let v = memcpy_case(bytes, bench.runs(RUNS_MEMCPY));
            eprintln!("memcpy {label}: median {:.3} s", median(&v));
            memcpy_rows.push((bytes, v));
        }
        if !want(key) || targets.is_empty() {
            continue;
        }
        // The cp source: on /dev/shm, written once, untimed.
        let src = shm_root.join(format!("cp-src-{}g.bin", bytes / GIB));
        {
            let mut f = fs::File::create(&src).expect("create cp source");
            let mut buf = vec![0u8; 8 * MIB as usize];
            for chunk in 0..bytes / (8 * MIB) {
                for (i, w) in buf.chunks_exact_mut(8).enumerate() {
                    let x = (chunk << 20 | i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                    w.copy_from_slice(&x.to_le_bytes());
                }
                f.write_all(&buf).expect("write cp source");
            }
        }
        for t in &targets {
            let mut row = Row::new(format!("{label} anon"), t.name, bytes);
            if let Some(why) =
                catch(|| bench.mem_case(&bin, bytes, &src, t, bench.runs(runs), &mut row))
            {
                row.failed = Some(why);
            }
            rows.push(row);
        }
        fs::remove_file(&src).expect("remove cp source");
    }
    if want("sleep") {
        for t in &targets {
            let mut row = Row::new("sleep 1000".into(), t.name, 0);
            row.failed = catch(|| bench.sleep_case(t, bench.runs(RUNS_SLEEP), &mut row));
            rows.push(row);
        }
    }

    println!("  loadavg at end: {}", read_trim("/proc/loadavg"));
    if let (Some(a), Some(b)) = (reported_at_start, reported_kib()) {
        println!(
            "  guest memory reported free to the host during the run: {}",
            human(b.saturating_sub(a) * 1024)
        );
    }
    print_results(&rows, &memcpy_rows, &skips);

    if rows.iter().any(|r| r.failed.is_some()) {
        println!();
        println!(
            "FAILED: see above; logs and images kept in {} and {}",
            ext4_root.display(),
            shm_root.display()
        );
        std::process::exit(1);
    }
    let _ = fs::remove_dir_all(&shm_root);
    let _ = fs::remove_dir_all(&ext4_root);
}

/// Runs one case; a panic (a failed command or check, already printed by
/// the panic hook) is turned into its message so that the other cases
/// still run and the benchmark fails at the end.
fn catch(f: impl FnOnce()) -> Option<String> {
    let p = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).err()?;
    let msg = p
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "panic".into());
    eprintln!();
    Some(msg)
}

fn print_results(rows: &[Row], memcpy_rows: &[(u64, Vec<f64>)], skips: &[String]) {
    println!();
    println!(
        "Median [min-max] of the timed runs (after one warm-up): wall time of the stasis \
         command;\nd/cp, r/cp: median / median cp of the same bytes into the same fs \
         (in parentheses: fastest / fastest cp)."
    );
    println!();
    println!(
        "| {:<16} | {:<5} | {:>4} | {:>19} | {:>22} | {:>11} | {:>22} | {:>11} | {:>10} | {:>18} | {:>12} |",
        "case",
        "fs",
        "runs",
        "cp s",
        "dump s",
        "d/cp",
        "restore s",
        "r/cp",
        "image",
        "dump json/frozen",
        "restore json"
    );
    println!(
        "|{:-<18}|{:-<7}|{:->6}|{:->21}|{:->24}|{:->13}|{:->24}|{:->13}|{:->12}|{:->20}|{:->14}|",
        "", "", "", "", "", "", "", "", "", "", ""
    );
    let mut verdicts = Vec::new();
    for r in rows {
        let mem = r.bytes > 0;
        let (scale, prec, unit) = if mem { (1.0, 3, "") } else { (1e3, 1, " ms") };
        let json = |v: &[f64]| {
            if v.is_empty() {
                "-".to_string()
            } else {
                format!("{:.prec$}", median(v) * scale)
            }
        };
        println!(
            "| {:<16} | {:<5} | {:>4} | {:>19} | {:>22} | {:>11} | {:>22} | {:>11} | {:>10} | {:>18} | {:>12} |",
            if r.failed.is_some() {
                format!("{} FAILED", r.what)
            } else {
                r.what.clone()
            },
            r.fs,
            r.dump.len(),
            if mem { stat(&r.cp, 1.0, 3, "") } else { "-".into() },
            stat(&r.dump, scale, prec, unit),
            if mem { ratio(&r.dump, &r.cp) } else { "-".into() },
            stat(&r.restore, scale, prec, unit),
            if mem { ratio(&r.restore, &r.cp) } else { "-".into() },
            human(r.image.0),
            format!("{} / {}", json(&r.dump_json), json(&r.frozen)),
            json(&r.restore_json),
        );
        if mem {
            for (what, v) in [("dump", &r.dump), ("restore", &r.restore)] {
                let verdict = if v.is_empty() || r.cp.is_empty() {
                    "FAILED, no timed run".to_string()
                } else {
                    let x = median(v) / median(&r.cp);
                    let met = if x <= TARGET_RATIO { "met" } else { "NOT met" };
                    format!("{x:.2}x cp -> {met}")
                };
                verdicts.push(format!("  {} {} {what}: {verdict}", r.what, r.fs));
            }
        }
    }
    if !memcpy_rows.is_empty() {
        println!();
        println!("memcpy reference (in-process, warm buffers):");
        for (bytes, v) in memcpy_rows {
            let m = median(v);
            println!(
                "  {}: {m:.3} s median of {} ({:.2} GB/s)",
                size_label(*bytes),
                v.len(),
                *bytes as f64 / m / 1e9
            );
        }
    }
    if !verdicts.is_empty() {
        println!();
        println!("Target: dump and restore each within {TARGET_RATIO}x cp:");
        for v in &verdicts {
            println!("{v}");
        }
    }
    for s in skips {
        println!("{s}");
    }
    for r in rows {
        if let Some(why) = &r.failed {
            let first = why
                .lines()
                .find(|l| l.starts_with("error:"))
                .or_else(|| why.lines().next())
                .unwrap_or("");
            println!();
            println!(
                "FAILED {} {} after {} timed runs (warm-up dump {}, restore {}): {first}",
                r.what,
                r.fs,
                r.dump.len(),
                r.warm.0.map_or("-".into(), |t| format!("{t:.3} s")),
                r.warm.1.map_or("-".into(), |t| format!("{t:.3} s")),
            );
        }
    }
}

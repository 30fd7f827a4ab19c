//! Processes the benchmark starts: their /proc state, waiting for them,
//! and running a command with precise wall time.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// Upper bound for one stasis or cp command.
const CMD_TIMEOUT: Duration = Duration::from_secs(300);

pub fn proc_state(pid: i32) -> Option<char> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.trim_start().chars().next()
}

pub fn proc_ppid(pid: i32) -> Option<i32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// Waits (blocking) until `pid`, a child of ours, has exited or `timeout`
/// passes; returns its raw wait status.
pub fn wait_child(pid: i32, timeout: Duration) -> Result<i32, String> {
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

/// What a timed command produced.
pub struct Ran {
    pub wall: Duration,
    pub stdout: String,
}

/// Runs `prog args`, timing it from spawn to exit (observed through a
/// pidfd, so without polling granularity). Output goes to files in `out_dir`
/// rather than pipes: a restored process must not be able to hold them open.
/// Panics, with stderr, when the command fails or exceeds [`CMD_TIMEOUT`].
pub fn run_timed(prog: &Path, args: &[&str], out_dir: &Path) -> Ran {
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
pub fn json_line(s: &str, what: &str) -> serde_json::Value {
    let line = s.lines().rev().find(|l| l.trim_start().starts_with('{'));
    line.and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("{what}: no JSON line in output:\n{s}"))
}

pub fn json_f64(v: &serde_json::Value, key: &str) -> f64 {
    v.get(key).and_then(|x| x.as_f64()).unwrap_or(f64::NAN)
}

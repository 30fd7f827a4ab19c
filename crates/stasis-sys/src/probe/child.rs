//! Throwaway children: fork one, run raw syscalls in it, reap it by pid.

use super::{ProbeError, Result};

/// Waits for `pid` (our child, by pid only) to end; returns the raw status.
pub(super) fn reap(pid: i32) -> Result<i32> {
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes one int into `status`.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::__WALL) };
        if r == pid {
            if libc::WIFEXITED(status) || libc::WIFSIGNALED(status) {
                return Ok(status);
            }
            // A ptrace stop reported on the way out: keep waiting.
            continue;
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        return Err(ProbeError::last("waitpid"));
    }
}

/// Kills and reaps a child when dropped, so no probe leaves one behind.
pub(super) struct Child(pub(super) i32);

impl Drop for Child {
    fn drop(&mut self) {
        // SAFETY: `self.0` is a child we forked and have not reaped yet, so
        // the pid cannot have been reused for another process.
        unsafe { libc::kill(self.0, libc::SIGKILL) };
        let _ = reap(self.0);
    }
}

/// Runs `f` in a forked child and returns its exit code. `f` must only
/// make raw syscalls (no allocation, no locks): it runs after fork in a
/// possibly multi-threaded process. Its return value is the exit code.
pub(super) fn in_child(f: fn() -> i32) -> Result<i32> {
    // SAFETY: the child runs only `f`, which by this function's contract
    // makes only async-signal-safe raw syscalls, then `_exit`s without
    // running destructors or atexit handlers.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(ProbeError::last("fork"));
    }
    if pid == 0 {
        let code = f();
        // SAFETY: ends the child at once, as the contract above requires.
        unsafe { libc::_exit(code & 0xff) };
    }
    let status = reap(pid)?;
    if libc::WIFEXITED(status) {
        Ok(libc::WEXITSTATUS(status))
    } else {
        Err(ProbeError::other(
            "fork",
            format!("probe child killed by signal {}", libc::WTERMSIG(status)),
        ))
    }
}

/// The errno of the last call, for use inside a forked child (no alloc).
pub(super) fn child_errno() -> i32 {
    // SAFETY: __errno_location returns this thread's errno slot.
    unsafe { *libc::__errno_location() }
}

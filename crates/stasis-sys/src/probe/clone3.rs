//! clone3(2) with set_tid: a child with the pid we ask for.

use super::child::reap;
use super::{ProbeError, Result};
use crate::clone::CloneArgs;

/// Creates a child with clone3 whose pid is `pid` (set_tid); the child
/// exits at once and is reaped. Returns the pid the kernel gave it.
/// EEXIST means the pid was taken meanwhile.
pub fn clone3_set_tid(pid: i32) -> Result<i32> {
    let tids: [libc::pid_t; 1] = [pid];
    let args = CloneArgs {
        exit_signal: libc::SIGCHLD as u64,
        set_tid: tids.as_ptr() as u64,
        set_tid_size: 1,
        ..CloneArgs::default()
    };
    // SAFETY: a fork-like clone3 (no CLONE_VM, no new stack): the child gets
    // a copy of our memory and only calls `_exit` below. `args` and `tids`
    // outlive the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if r == 0 {
        // SAFETY: the child ends at once, touching nothing.
        unsafe { libc::_exit(0) };
    }
    if r < 0 {
        return Err(ProbeError::last("clone3"));
    }
    let got = r as i32;
    let status = reap(got)?;
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        return Err(ProbeError::other(
            "clone3",
            format!("child {got} ended with status {status:#x}"),
        ));
    }
    if got != pid {
        return Err(ProbeError::other(
            "clone3",
            format!("asked for pid {pid}, got {got}"),
        ));
    }
    Ok(got)
}

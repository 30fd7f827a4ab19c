//! pidfd_open(2) descriptors of processes inside the tree.
//!
//! Dump reads the process it refers to from fdinfo (`Pid:`); a pidfd of a
//! process outside the tree, or of one that has already been reaped, is
//! refused. Restore cannot open one in the restorer before the processes
//! exist, so each process makes its own, once the whole tree has been
//! created: a remote pidfd_open(2) in the process itself (so the pid is
//! read in its own PID namespace), moved to its number with dup3(2).
//!
//! Not kept: a pidfd description shared between two processes (fork)
//! becomes one description per process; pidfds are stateless apart from
//! O_NONBLOCK, so only a later fcntl(F_SETFL) by one of them would tell.

use stasis_image::{Fd, FdKind, Process};
use stasis_proc::FdInfo;

use crate::error::RestoreError;
use crate::handle::Target;

/// pidfd_open flags kept from the description's flags (PIDFD_NONBLOCK,
/// PIDFD_THREAD).
const PIDFD_FLAGS: u32 = (libc::O_NONBLOCK | libc::O_EXCL) as u32;

pub fn dump(fd: &mut Fd, info: &FdInfo) -> Result<(), String> {
    let pid: i64 = info
        .get("Pid")
        .and_then(|v| v.parse().ok())
        .ok_or("a pidfd without its fdinfo Pid")?;
    if pid <= 0 {
        return Err(
            "a pidfd of a process that has exited and been reaped, which stasis cannot recreate"
                .into(),
        );
    }
    fd.kind = FdKind::PidFd as i32;
    fd.path = String::new();
    fd.pidfd_pid = pid as u32;
    Ok(())
}

/// The first pidfd of `p` (fd, target pid) whose process is not in `tree`.
pub fn outside(p: &Process, tree: &[i32]) -> Option<(i32, u32)> {
    p.fds
        .iter()
        .filter(|f| f.kind == FdKind::PidFd as i32)
        .find(|f| !tree.contains(&(f.pidfd_pid as i32)))
        .map(|f| (f.fd, f.pidfd_pid))
}

/// Creates every pidfd of `p` inside it (see the module doc). Runs after
/// its other fds are in place, so the numbers pidfd_open picks are free.
pub fn install(t: &Target, p: &Process) -> Result<(), RestoreError> {
    for fd in p.fds.iter().filter(|f| f.kind == FdKind::PidFd as i32) {
        let flags = fd.flags & PIDFD_FLAGS;
        let got = t.lcall(
            "pidfd_open",
            libc::SYS_pidfd_open,
            &[fd.pidfd_pid as u64, flags as u64],
        )? as i32;
        t.place_fd(got, fd.fd, fd.cloexec)?;
    }
    Ok(())
}

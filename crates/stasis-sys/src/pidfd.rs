//! pidfd_open(2) and pidfd_getfd(2): our own handle on a target's fd.

use std::os::fd::{FromRawFd, OwnedFd};

use crate::error::{Result, SysError};
use crate::RemoteFd;

/// pidfd_open(2).
pub fn pidfd_open(pid: i32) -> Result<OwnedFd> {
    // SAFETY: plain syscall with integer arguments.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(SysError::last("pidfd_open", format!("pid {pid}")));
    }
    // SAFETY: the kernel returned a new descriptor that nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// pidfd_getfd(2): duplicates the target's `fd` into our fd table.
pub fn pidfd_getfd(pidfd: &OwnedFd, pid: i32, fd: RemoteFd) -> Result<OwnedFd> {
    use std::os::fd::AsRawFd;
    // SAFETY: plain syscall with integer arguments.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd.0, 0) };
    if r < 0 {
        return Err(SysError::last(
            "pidfd_getfd",
            format!("pid {pid} fd {}", fd.0),
        ));
    }
    // SAFETY: the kernel returned a new descriptor that nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(r as i32) })
}

/// A copy of fd `fd` of process `pid` in our table (pidfd_open(2), then
/// pidfd_getfd(2)): the same open file description, to read state through.
pub fn copy_of(pid: i32, fd: RemoteFd) -> Result<OwnedFd> {
    pidfd_getfd(&pidfd_open(pid)?, pid, fd)
}

//! Pipes: how large the kernel lets us make one (F_SETPIPE_SZ).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::{ProbeError, Result};

/// pipe2(O_CLOEXEC): the read end and the write end.
pub(super) fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two fds into `fds`.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(ProbeError::last("pipe2"));
    }
    // SAFETY: both fds were just created and are owned by nothing else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Makes a pipe and asks F_SETPIPE_SZ for `bytes`; returns the size the
/// kernel set. Above fs.pipe-max-size this needs CAP_SYS_RESOURCE (EPERM).
pub fn pipe_set_size(bytes: usize) -> Result<usize> {
    let (rd, _wr) = pipe()?;
    let arg = libc::c_int::try_from(bytes)
        .map_err(|_| ProbeError::other("F_SETPIPE_SZ", format!("{bytes} is too large")))?;
    // SAFETY: F_SETPIPE_SZ takes an int and changes only this pipe.
    let r = unsafe { libc::fcntl(rd.as_raw_fd(), libc::F_SETPIPE_SZ, arg) };
    if r < 0 {
        return Err(ProbeError::last("fcntl(F_SETPIPE_SZ)"));
    }
    Ok(r as usize)
}

//! How the dumper reaches into a target, tried on ourselves: pidfd_getfd(2)
//! for its descriptors and process_vm_readv(2) for its memory.

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;

use super::pipe::pipe;
use super::{ProbeError, Result};

fn getpid() -> i32 {
    // SAFETY: getpid has no preconditions.
    unsafe { libc::getpid() }
}

/// pidfd_open on ourselves, then pidfd_getfd of one of our own pipe fds;
/// checks the copy is the same open file (same device and inode).
/// Returns the number of the fd pidfd_getfd made.
pub fn pidfd_getfd_self() -> Result<i32> {
    let (rd, _wr) = pipe()?;

    // SAFETY: pidfd_open takes a pid and flags, and returns a new fd.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, getpid(), 0) };
    if pidfd < 0 {
        return Err(ProbeError::last("pidfd_open"));
    }
    // SAFETY: a fresh fd that nothing else owns.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd as i32) };

    // SAFETY: pidfd_getfd takes two fds and flags, and returns a new fd.
    let got = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), rd.as_raw_fd(), 0) };
    if got < 0 {
        return Err(ProbeError::last("pidfd_getfd"));
    }
    // SAFETY: a fresh fd that nothing else owns.
    let got = unsafe { OwnedFd::from_raw_fd(got as i32) };
    let n = got.as_raw_fd();

    let a = File::from(rd)
        .metadata()
        .map_err(|e| ProbeError::other("fstat", e.to_string()))?;
    let b = File::from(got)
        .metadata()
        .map_err(|e| ProbeError::other("fstat", e.to_string()))?;
    if (a.dev(), a.ino()) != (b.dev(), b.ino()) {
        return Err(ProbeError::other(
            "pidfd_getfd",
            "the fd it returned is not the pipe it was asked for",
        ));
    }
    Ok(n)
}

/// process_vm_readv from our own pid: copies a patterned buffer and checks
/// the copy. Returns the bytes read.
pub fn process_vm_readv_self() -> Result<usize> {
    let src: Vec<u8> = (0..256 * 1024).map(|i| (i * 7 + 3) as u8).collect();
    let mut dst = vec![0u8; src.len()];
    let local = libc::iovec {
        iov_base: dst.as_mut_ptr().cast(),
        iov_len: dst.len(),
    };
    let remote = libc::iovec {
        iov_base: src.as_ptr() as *mut libc::c_void,
        iov_len: src.len(),
    };
    // SAFETY: `local` describes `dst`, which is writable and as long as the
    // iovec says; `remote` is only read (it names our own `src`).
    let n = unsafe { libc::process_vm_readv(getpid(), &local, 1, &remote, 1, 0) };
    if n < 0 {
        return Err(ProbeError::last("process_vm_readv"));
    }
    if n as usize != src.len() || dst != src {
        return Err(ProbeError::other(
            "process_vm_readv",
            format!("short or wrong copy: {n} of {} bytes", src.len()),
        ));
    }
    Ok(n as usize)
}

//! POSIX message queues (mq_overview(7)) on raw descriptors: attributes,
//! non-blocking receive and send, create and unlink by name. A queue
//! descriptor is a file descriptor on Linux, so these take `RawFd`.

use std::ffi::CString;
use std::os::fd::RawFd;

use crate::error::{Result, SysError};

/// MQUEUE_MAGIC, the f_type statfs(2) reports for a queue.
pub const MQUEUE_MAGIC: i64 = 0x1980_0202;

/// (mq_flags, mq_maxmsg, mq_msgsize, mq_curmsgs) from mq_getattr(3).
pub fn attr(fd: RawFd) -> Result<(i64, i64, i64, i64)> {
    // SAFETY: mq_attr is plain integers; all zeros is valid.
    let mut a: libc::mq_attr = unsafe { std::mem::zeroed() };
    // SAFETY: mq_getattr writes one mq_attr into `a`.
    let r = unsafe { libc::mq_getattr(fd, &mut a) };
    if r < 0 {
        return Err(SysError::last("mq_getattr", format!("fd {fd}")));
    }
    Ok((a.mq_flags, a.mq_maxmsg, a.mq_msgsize, a.mq_curmsgs))
}

/// A timeout in the past: the timed calls then never wait.
fn past() -> libc::timespec {
    libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    }
}

/// The oldest message of the highest priority, without waiting: (data,
/// priority), or None when the queue is empty. `size` is mq_msgsize.
pub fn receive(fd: RawFd, size: usize) -> Result<Option<(Vec<u8>, u32)>> {
    let mut buf = vec![0u8; size.max(1)];
    let mut prio: libc::c_uint = 0;
    let t = past();
    // SAFETY: `buf` has room for `buf.len()` bytes, `prio` and `t` are
    // live locals.
    let n = unsafe { libc::mq_timedreceive(fd, buf.as_mut_ptr().cast(), buf.len(), &mut prio, &t) };
    if n < 0 {
        let e = crate::errno();
        if e == libc::ETIMEDOUT || e == libc::EAGAIN {
            return Ok(None);
        }
        return Err(SysError::last("mq_timedreceive", format!("fd {fd}")));
    }
    buf.truncate(n as usize);
    Ok(Some((buf, prio)))
}

/// Sends one message without waiting (a full queue is an error).
pub fn send(fd: RawFd, data: &[u8], prio: u32) -> Result<()> {
    let t = past();
    // SAFETY: `data` is a live slice of its length; `t` a live local.
    let r = unsafe { libc::mq_timedsend(fd, data.as_ptr().cast(), data.len(), prio, &t) };
    if r < 0 {
        return Err(SysError::last("mq_timedsend", format!("fd {fd}")));
    }
    Ok(())
}

/// mq_open(3) of `name` ("/NAME") with `flags`; with O_CREAT, `mode` and
/// the queue's limits (maxmsg, msgsize).
pub fn open(name: &str, flags: i32, mode: u32, limits: (i64, i64)) -> Result<RawFd> {
    let c = CString::new(name).map_err(|_| SysError::Call {
        call: "mq_open",
        what: format!("name {name:?}"),
        errno: libc::EINVAL,
    })?;
    // SAFETY: mq_attr is plain integers; all zeros is valid.
    let mut a: libc::mq_attr = unsafe { std::mem::zeroed() };
    a.mq_maxmsg = limits.0;
    a.mq_msgsize = limits.1;
    // SAFETY: `c` is NUL-terminated and `a` a live mq_attr; the variadic
    // mode and attr arguments are read only with O_CREAT.
    let fd = unsafe {
        libc::mq_open(
            c.as_ptr(),
            flags,
            mode as libc::mode_t,
            &a as *const libc::mq_attr,
        )
    };
    if fd < 0 {
        return Err(SysError::last("mq_open", name.to_string()));
    }
    Ok(fd)
}

/// mq_unlink(3).
pub fn unlink(name: &str) -> Result<()> {
    let c = CString::new(name).map_err(|_| SysError::Call {
        call: "mq_unlink",
        what: format!("name {name:?}"),
        errno: libc::EINVAL,
    })?;
    // SAFETY: `c` is NUL-terminated.
    let r = unsafe { libc::mq_unlink(c.as_ptr()) };
    if r < 0 {
        return Err(SysError::last("mq_unlink", name.to_string()));
    }
    Ok(())
}

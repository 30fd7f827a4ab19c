//! Event descriptors, created again at restore: eventfd(2), signalfd(2),
//! timerfd_create(2), epoll_create(2) and epoll_ctl(2). Each returns a raw
//! descriptor that the caller places (and owns) at once.

use std::os::fd::RawFd;

use crate::error::{Result, SysError};

fn check(r: libc::c_long, call: &'static str, what: impl Into<String>) -> Result<libc::c_long> {
    if r < 0 {
        Err(SysError::last(call, what))
    } else {
        Ok(r)
    }
}

/// eventfd(2) with counter `count` (set by a write, since eventfd's own
/// initial value is only 32 bits) and `flags` (EFD_SEMAPHORE, EFD_NONBLOCK).
pub fn eventfd(count: u64, flags: i32) -> Result<RawFd> {
    // SAFETY: integer arguments only.
    let fd = unsafe { libc::eventfd(0, flags) };
    check(fd as _, "eventfd", format!("flags {flags:#x}"))?;
    if count > 0 {
        let b = count.to_ne_bytes();
        // SAFETY: writes 8 bytes from a live local buffer.
        let r = unsafe { libc::write(fd, b.as_ptr().cast(), 8) };
        if r != 8 {
            let e = SysError::last("write", format!("eventfd counter {count}"));
            crate::util::close_raw(fd);
            return Err(e);
        }
    }
    Ok(fd)
}

/// signalfd(2) reading the signals in `mask` (bit n-1 = signal n).
pub fn signalfd(mask: u64, flags: i32) -> Result<RawFd> {
    // SAFETY: the kernel reads 8 bytes of sigset from a live local.
    let fd = unsafe { libc::syscall(libc::SYS_signalfd4, -1, &mask as *const u64, 8usize, flags) };
    check(fd, "signalfd", format!("mask {mask:#x}")).map(|f| f as RawFd)
}

/// timerfd_create(2) armed to expire in `value_ns` (0: disarmed), then
/// every `interval_ns`, with `ticks` expirations already pending
/// (TFD_IOC_SET_TICKS).
pub fn timerfd(
    clockid: i32,
    flags: i32,
    value_ns: u64,
    interval_ns: u64,
    ticks: u64,
) -> Result<RawFd> {
    // SAFETY: integer arguments only.
    let fd = unsafe { libc::timerfd_create(clockid, flags) };
    check(fd as _, "timerfd_create", format!("clock {clockid}"))?;
    let ts = |ns: u64| libc::timespec {
        tv_sec: (ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (ns % 1_000_000_000) as libc::c_long,
    };
    let spec = libc::itimerspec {
        it_interval: ts(interval_ns),
        it_value: ts(value_ns),
    };
    let r = (|| {
        // SAFETY: `spec` is a live local; no old value is asked for.
        let r = unsafe { libc::timerfd_settime(fd, 0, &spec, std::ptr::null_mut()) };
        check(r as _, "timerfd_settime", format!("fd {fd}"))?;
        if ticks > 0 {
            const TFD_IOC_SET_TICKS: libc::c_ulong = 0x4008_5400;
            // SAFETY: the kernel reads a u64 from a live local.
            let r = unsafe { libc::ioctl(fd, TFD_IOC_SET_TICKS, &ticks as *const u64) };
            check(r as _, "ioctl(TFD_IOC_SET_TICKS)", format!("fd {fd}"))?;
        }
        Ok(())
    })();
    match r {
        Ok(()) => Ok(fd),
        Err(e) => {
            crate::util::close_raw(fd);
            Err(e)
        }
    }
}

/// epoll_create1(2).
pub fn epoll_create(flags: i32) -> Result<RawFd> {
    // SAFETY: integer argument only.
    let fd = unsafe { libc::epoll_create1(flags) };
    check(fd as _, "epoll_create1", format!("flags {flags:#x}")).map(|f| f as RawFd)
}

/// epoll_ctl(EPOLL_CTL_ADD): watch `fd` for `events`, reporting `data`.
/// An fd already watched (EEXIST) is not an error.
pub fn epoll_add(epfd: RawFd, fd: RawFd, events: u32, data: u64) -> Result<()> {
    let mut ev = libc::epoll_event { events, u64: data };
    // SAFETY: `ev` is a live local the kernel reads.
    let r = unsafe { libc::epoll_ctl(epfd, libc::EPOLL_CTL_ADD, fd, &mut ev) };
    if r < 0 && crate::errno() == libc::EEXIST {
        return Ok(());
    }
    check(r as _, "epoll_ctl(ADD)", format!("fd {fd} in epoll {epfd}")).map(drop)
}

/// inotify_init1(2) with IN_NONBLOCK and IN_CLOEXEC.
pub fn inotify() -> Result<RawFd> {
    // SAFETY: integer arguments only.
    let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
    check(fd as _, "inotify_init1", "inotify").map(|f| f as RawFd)
}

/// inotify_add_watch(2): the watch descriptor.
pub fn inotify_add_watch(fd: RawFd, path: &str, mask: u32) -> Result<i32> {
    let c = std::ffi::CString::new(path).map_err(|_| SysError::Call {
        call: "inotify_add_watch",
        what: format!("path {path:?}"),
        errno: libc::EINVAL,
    })?;
    // SAFETY: `c` is a NUL-terminated path that outlives the call.
    let wd = unsafe { libc::inotify_add_watch(fd, c.as_ptr(), mask) };
    check(wd as _, "inotify_add_watch", path.to_string()).map(|w| w as i32)
}

/// inotify_rm_watch(2).
pub fn inotify_rm_watch(fd: RawFd, wd: i32) -> Result<()> {
    // SAFETY: integer arguments only.
    let r = unsafe { libc::inotify_rm_watch(fd, wd) };
    check(r as _, "inotify_rm_watch", format!("wd {wd}")).map(drop)
}

/// fanotify_init(2).
pub fn fanotify_init(flags: u32, event_flags: u32) -> Result<RawFd> {
    // SAFETY: integer arguments only.
    let fd = unsafe { libc::fanotify_init(flags, event_flags) };
    check(fd as _, "fanotify_init", format!("flags {flags:#x}")).map(|f| f as RawFd)
}

/// fanotify_mark(2) on `path` (relative to the cwd).
pub fn fanotify_mark(fd: RawFd, flags: u32, mask: u32, path: &str) -> Result<()> {
    let c = std::ffi::CString::new(path).map_err(|_| SysError::Call {
        call: "fanotify_mark",
        what: format!("path {path:?}"),
        errno: libc::EINVAL,
    })?;
    // SAFETY: `c` is a NUL-terminated path that outlives the call.
    let r = unsafe { libc::fanotify_mark(fd, flags, mask as u64, libc::AT_FDCWD, c.as_ptr()) };
    check(r as _, "fanotify_mark", path.to_string()).map(drop)
}

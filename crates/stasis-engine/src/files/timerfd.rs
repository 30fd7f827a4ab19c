//! timerfd_create(2): clock, time left, interval and the expirations not
//! yet read, from fdinfo. Restore arms a new timer with the time that was
//! left (relative, so time spent checkpointed does not count) and puts the
//! unread expirations back with TFD_IOC_SET_TICKS.

use std::os::fd::RawFd;

use stasis_image::{Fd, FdKind, TimerFdState};
use stasis_proc::FdInfo;

pub fn dump(fd: &mut Fd, info: &FdInfo) -> Result<(), String> {
    let t = info.timerfd.ok_or("a timerfd without its fdinfo state")?;
    let ns = |(s, n): (u64, u64)| s.saturating_mul(1_000_000_000).saturating_add(n);
    fd.kind = FdKind::TimerFd as i32;
    fd.path = String::new();
    fd.timerfd = Some(TimerFdState {
        clockid: t.clockid,
        value_ns: ns(t.it_value),
        interval_ns: ns(t.it_interval),
        ticks: t.ticks,
        settime_flags: t.settime_flags,
    });
    Ok(())
}

pub fn open(fd: &Fd) -> Result<RawFd, stasis_sys::SysError> {
    let t = fd.timerfd.clone().unwrap_or_default();
    // A timer that is armed but has no time left fires at once.
    let value = if t.value_ns == 0 && t.interval_ns != 0 {
        1
    } else {
        t.value_ns
    };
    stasis_sys::evfd::timerfd(t.clockid, 0, value, t.interval_ns, t.ticks)
}

//! Scheduling attributes of another thread: sched_getscheduler(2),
//! sched_setscheduler(2), getpriority(2)/setpriority(2),
//! sched_getaffinity(2)/sched_setaffinity(2). Root may read and set them
//! for any thread (CAP_SYS_NICE for real-time policies and lower nice).

use crate::error::{Result, SysError};

fn check(r: libc::c_long, call: &'static str, tid: i32) -> Result<libc::c_long> {
    if r < 0 {
        return Err(SysError::last(call, format!("tid {tid}")));
    }
    Ok(r)
}

/// Policy (with SCHED_RESET_ON_FORK) and real-time priority of `tid`.
pub fn get_scheduler(tid: i32) -> Result<(u32, u32)> {
    // SAFETY: integer argument only.
    let policy = check(
        unsafe { libc::sched_getscheduler(tid) } as _,
        "sched_getscheduler",
        tid,
    )?;
    let mut param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `param` is a valid out-pointer for the call.
    let r = unsafe { libc::sched_getparam(tid, &mut param) };
    check(r as _, "sched_getparam", tid)?;
    Ok((policy as u32, param.sched_priority as u32))
}

pub fn set_scheduler(tid: i32, policy: u32, rt_priority: u32) -> Result<()> {
    let param = libc::sched_param {
        sched_priority: rt_priority as i32,
    };
    // SAFETY: `param` is a valid sched_param that outlives the call.
    let r = unsafe { libc::sched_setscheduler(tid, policy as i32, &param) };
    check(r as _, "sched_setscheduler", tid).map(drop)
}

/// The nice value of thread `tid`.
pub fn get_nice(tid: i32) -> Result<i32> {
    // getpriority returns 20 - nice (the raw syscall), never negative.
    // SAFETY: integer arguments only.
    let r = unsafe { libc::syscall(libc::SYS_getpriority, libc::PRIO_PROCESS, tid) };
    check(r, "getpriority", tid).map(|v| 20 - v as i32)
}

pub fn set_nice(tid: i32, nice: i32) -> Result<()> {
    // SAFETY: integer arguments only.
    let r = unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, nice) };
    check(r as _, "setpriority", tid).map(drop)
}

/// The CPU affinity mask of `tid`, as the kernel's bytes.
pub fn get_affinity(tid: i32) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; 1024];
    // SAFETY: the raw syscall writes at most `buf.len()` bytes into `buf`.
    let r = unsafe {
        libc::syscall(
            libc::SYS_sched_getaffinity,
            tid,
            buf.len(),
            buf.as_mut_ptr(),
        )
    };
    let n = check(r, "sched_getaffinity", tid)? as usize;
    buf.truncate(n);
    Ok(buf)
}

pub fn set_affinity(tid: i32, mask: &[u8]) -> Result<()> {
    // SAFETY: the kernel reads `mask.len()` bytes from `mask`.
    let r = unsafe { libc::syscall(libc::SYS_sched_setaffinity, tid, mask.len(), mask.as_ptr()) };
    check(r, "sched_setaffinity", tid).map(drop)
}

//! Scheduling: each thread's policy (SCHED_OTHER, BATCH, IDLE, FIFO, RR,
//! with SCHED_RESET_ON_FORK), real-time priority, nice value, CPU affinity
//! and timer slack, and the process's PR_SET_THP_DISABLE.
//!
//! All but THP are read and set from outside, by thread id (root may). A
//! restored thread starts with the restorer's values, so only what differs
//! is set. An affinity mask that names no CPU of this machine (an image
//! from a bigger one) is left as it is, with a warning; SCHED_DEADLINE is
//! refused (its runtime, deadline and period need sched_getattr, and
//! admission control may refuse them elsewhere).

use stasis_image::{Process, Thread, ThreadSched};
use stasis_sys::sched;

use crate::error::{DumpError, RestoreError, SysCtx};
use crate::handle::{Frozen, Target};

const SCHED_DEADLINE: u32 = 6;
const SCHED_RESET_ON_FORK: u32 = 0x4000_0000;
const PR_SET_THP_DISABLE: u64 = 41;
const PR_GET_THP_DISABLE: u64 = 42;

fn timer_slack_path(tid: i32) -> String {
    format!("/proc/{tid}/timerslack_ns")
}

/// The scheduling attributes of thread `tid` of `pid`.
pub fn dump_thread(pid: i32, tid: i32) -> Result<ThreadSched, DumpError> {
    let (policy, rt_priority) = sched::get_scheduler(tid).dump_ctx(pid, "sched_getscheduler")?;
    if policy & !SCHED_RESET_ON_FORK == SCHED_DEADLINE {
        return Err(DumpError::Refused {
            pid,
            what: format!(
                "thread {tid} runs under SCHED_DEADLINE, which stasis cannot restore yet"
            ),
        });
    }
    let timer_slack_ns = std::fs::read_to_string(timer_slack_path(tid))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    Ok(ThreadSched {
        policy,
        rt_priority,
        nice: sched::get_nice(tid).dump_ctx(pid, "getpriority")?,
        affinity: sched::get_affinity(tid).dump_ctx(pid, "sched_getaffinity")?,
        timer_slack_ns,
    })
}

/// Whether PR_SET_THP_DISABLE is set for the process.
pub fn dump_thp_disable(frozen: &Frozen) -> Result<bool, DumpError> {
    let pid = frozen.pid;
    Ok(frozen.call(
        pid,
        "prctl(PR_GET_THP_DISABLE)",
        libc::SYS_prctl,
        &[PR_GET_THP_DISABLE],
    )? != 0)
}

pub fn restore_thp_disable(t: &Target, p: &Process) -> Result<(), RestoreError> {
    if p.thp_disable {
        t.lcall(
            "prctl(PR_SET_THP_DISABLE)",
            libc::SYS_prctl,
            &[PR_SET_THP_DISABLE, 1, 0, 0, 0],
        )?;
    }
    Ok(())
}

/// Sets what differs between `th`'s saved attributes and the new thread's.
pub fn restore_thread(t: &Target, th: &Thread) -> Result<(), RestoreError> {
    let Some(s) = &th.sched else {
        return Ok(());
    };
    let pid = t.pid;
    let tid = t.host(th.tid as i32);
    let step = |what: &str| format!("{what} of thread {}", th.tid);
    if sched::get_scheduler(tid).ok() != Some((s.policy, s.rt_priority)) {
        sched::set_scheduler(tid, s.policy, s.rt_priority)
            .rst_ctx(pid, step("scheduling policy"))?;
    }
    if sched::get_nice(tid).ok() != Some(s.nice) {
        sched::set_nice(tid, s.nice).rst_ctx(pid, step("nice value"))?;
    }
    if !s.affinity.is_empty() && sched::get_affinity(tid).ok().as_ref() != Some(&s.affinity) {
        if let Err(e) = sched::set_affinity(tid, &s.affinity) {
            if e.errno() != Some(libc::EINVAL) {
                return Err(e).rst_ctx(pid, step("CPU affinity"));
            }
            tracing::warn!(
                "pid {pid} thread {}: its CPU affinity names no CPU of this machine; left as it is",
                th.tid
            );
        }
    }
    let path = timer_slack_path(tid);
    let now: Option<u64> = std::fs::read_to_string(&path)
        .ok()
        .and_then(|v| v.trim().parse().ok());
    if s.timer_slack_ns != 0 && now != Some(s.timer_slack_ns) {
        std::fs::write(&path, s.timer_slack_ns.to_string()).map_err(|e| RestoreError::Failed {
            pid,
            what: format!(
                "cannot set the timer slack of thread {}: {path}: {e}",
                th.tid
            ),
        })?;
    }
    Ok(())
}

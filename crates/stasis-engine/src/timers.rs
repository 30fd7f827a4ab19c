//! Interval timers (setitimer) and POSIX timers (timer_create).
//!
//! POSIX timers keep their ids through PR_TIMER_CREATE_RESTORE_IDS
//! (Linux 6.15+), which makes timer_create() take the id from its
//! `timerid` argument. Remaining times are restored relative to the
//! restore moment; overrun counts are not kept.
//!
//! A periodic timer that expires while the process is frozen waits for
//! its signal to be taken. POSIX timers and ITIMER_VIRTUAL/ITIMER_PROF
//! still read as armed then (timer_gettime forwards an interval timer
//! whose signal is pending; CPU itimers re-arm as they fire), but an
//! ITIMER_REAL reads as value 0 with its interval: the kernel re-arms it
//! only when SIGALRM is dequeued (`dequeue_signal`). See
//! [`itimer_restore_value_us`].

use stasis_image::{ITimer, PosixTimer, Process};

use crate::error::{DumpError, RestoreError};
use crate::handle::{words, Frozen, Target};
use crate::procfs;

const PR_TIMER_CREATE_RESTORE_IDS: u64 = 77;

fn word(b: &[u8], i: usize) -> u64 {
    u64::from_ne_bytes(b[i * 8..i * 8 + 8].try_into().expect("8"))
}

pub fn dump_itimers(frozen: &Frozen) -> Result<Vec<ITimer>, DumpError> {
    let scratch = frozen.scratch().0;
    let mut out = Vec::new();
    for which in 0..3u32 {
        frozen.call(
            frozen.pid,
            "getitimer",
            libc::SYS_getitimer,
            &[which as u64, scratch],
        )?;
        let b = frozen.read_scratch(32)?;
        let interval_us = word(&b, 0) * 1_000_000 + word(&b, 1);
        let value_us = word(&b, 2) * 1_000_000 + word(&b, 3);
        if interval_us != 0 || value_us != 0 {
            out.push(ITimer {
                which,
                interval_us,
                value_us,
            });
        }
    }
    Ok(out)
}

pub fn dump_posix_timers(frozen: &Frozen) -> Result<Vec<PosixTimer>, DumpError> {
    let pid = frozen.pid;
    let infos = procfs::parsed(
        pid,
        stasis_proc::parse_timers(&procfs::read_string(pid, "timers")?),
    )?;
    let scratch = frozen.scratch().0;
    let mut out = Vec::new();
    for i in infos {
        let notify = i.sigev_notify().ok_or_else(|| DumpError::Refused {
            pid,
            what: format!(
                "POSIX timer {} has a notification stasis does not know ({:?})",
                i.id, i.notify
            ),
        })?;
        frozen.call(
            pid,
            "timer_gettime",
            libc::SYS_timer_gettime,
            &[i.id as u64, scratch],
        )?;
        let b = frozen.read_scratch(32)?;
        out.push(PosixTimer {
            id: i.id,
            clock_id: i.clock_id,
            notify,
            signo: i.signo,
            sigev_value: i.sigev_value,
            notify_tid: i.notify_tid,
            interval_ns: word(&b, 0) * 1_000_000_000 + word(&b, 1),
            value_ns: word(&b, 2) * 1_000_000_000 + word(&b, 3),
        });
    }
    out.sort_by_key(|t| t.id);
    Ok(out)
}

/// Whether a SIGALRM waits in `p`'s pending queues: the process's or a
/// thread's (a signal the freeze caught being delivered is among the
/// latter).
pub fn sigalrm_pending(p: &Process) -> bool {
    let alrm = |s: &stasis_image::SigInfo| s.signo == libc::SIGALRM as u32;
    p.shared_pending.iter().any(alrm) || p.threads.iter().any(|t| t.pending.iter().any(alrm))
}

/// The value (microseconds) to give setitimer(2) for `it`.
///
/// An ITIMER_REAL that expired while its SIGALRM waits reads as value 0
/// with its interval: the kernel re-arms it when the SIGALRM is dequeued,
/// if its interval (`it_real_incr`) is set. setitimer(2) with value 0
/// would clear that interval and disarm the timer for good, so such a
/// timer is armed to expire one interval after the restore instead; the
/// pending SIGALRM, queued again, is still delivered first. (Dequeuing it
/// then changes nothing: the timer is running.) With no SIGALRM pending
/// (it was ignored when the timer fired) the timer is dead, and stays so.
///
/// CPU itimers re-arm as they fire and read as value 0 only when
/// disarmed, which setitimer(2) with value 0 reproduces.
pub fn itimer_restore_value_us(it: &ITimer, sigalrm_pending: bool) -> u64 {
    let expired = it.value_us == 0 && it.interval_us != 0;
    if it.which == libc::ITIMER_REAL as u32 && expired && sigalrm_pending {
        it.interval_us
    } else {
        it.value_us
    }
}

/// Arms the interval timers; `sigalrm_pending` is [`sigalrm_pending`] of
/// the process (its signals are queued again later).
pub fn restore_itimers(
    t: &Target,
    timers: &[ITimer],
    sigalrm_pending: bool,
) -> Result<(), RestoreError> {
    for it in timers {
        let value_us = itimer_restore_value_us(it, sigalrm_pending);
        let v = words(&[
            it.interval_us / 1_000_000,
            it.interval_us % 1_000_000,
            value_us / 1_000_000,
            value_us % 1_000_000,
        ]);
        let at = t.put(0, &v)?;
        t.lcall("setitimer", libc::SYS_setitimer, &[it.which as u64, at, 0])?;
    }
    Ok(())
}

pub fn restore_posix_timers(t: &Target, timers: &[PosixTimer]) -> Result<(), RestoreError> {
    if timers.is_empty() {
        return Ok(());
    }
    t.lcall(
        "prctl(PR_TIMER_CREATE_RESTORE_IDS)",
        libc::SYS_prctl,
        &[PR_TIMER_CREATE_RESTORE_IDS, 1, 0, 0, 0],
    )?;
    for pt in timers {
        // struct sigevent: value, signo, notify, then the union (tid).
        let mut sev = vec![0u8; 64];
        sev[0..8].copy_from_slice(&pt.sigev_value.to_ne_bytes());
        sev[8..12].copy_from_slice(&pt.signo.to_ne_bytes());
        sev[12..16].copy_from_slice(&pt.notify.to_ne_bytes());
        sev[16..20].copy_from_slice(&(pt.notify_tid as i32).to_ne_bytes());
        let sev_at = t.put(0, &sev)?;
        let id_at = t.put(64, &pt.id.to_ne_bytes())?;
        t.lcall(
            "timer_create",
            libc::SYS_timer_create,
            &[pt.clock_id as i64 as u64, sev_at, id_at],
        )?;
        let mut got = [0u8; 4];
        stasis_sys::mem::read(t.pid, stasis_sys::RemoteAddr(id_at), &mut got).map_err(|e| {
            RestoreError::Sys {
                pid: t.pid,
                step: "read timer id".into(),
                source: e,
            }
        })?;
        if i32::from_ne_bytes(got) != pt.id {
            return Err(RestoreError::Failed {
                pid: t.pid,
                what: format!(
                    "POSIX timer {} came back as id {}",
                    pt.id,
                    i32::from_ne_bytes(got)
                ),
            });
        }
        if pt.value_ns != 0 {
            let its = words(&[
                pt.interval_ns / 1_000_000_000,
                pt.interval_ns % 1_000_000_000,
                pt.value_ns / 1_000_000_000,
                pt.value_ns % 1_000_000_000,
            ]);
            let its_at = t.put(128, &its)?;
            t.lcall(
                "timer_settime",
                libc::SYS_timer_settime,
                &[pt.id as u64, 0, its_at, 0],
            )?;
        }
    }
    t.lcall(
        "prctl(PR_TIMER_CREATE_RESTORE_IDS)",
        libc::SYS_prctl,
        &[PR_TIMER_CREATE_RESTORE_IDS, 0, 0, 0, 0],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const REAL: u32 = libc::ITIMER_REAL as u32;
    const VIRTUAL: u32 = libc::ITIMER_VIRTUAL as u32;
    const PROF: u32 = libc::ITIMER_PROF as u32;

    fn it(which: u32, value_us: u64, interval_us: u64) -> ITimer {
        ITimer {
            which,
            interval_us,
            value_us,
        }
    }

    #[test]
    fn expired_real_timer_with_sigalrm_pending_is_armed_one_interval_out() {
        assert_eq!(itimer_restore_value_us(&it(REAL, 0, 20_000), true), 20_000);
    }

    #[test]
    fn expired_real_timer_without_sigalrm_stays_dead() {
        assert_eq!(itimer_restore_value_us(&it(REAL, 0, 20_000), false), 0);
    }

    #[test]
    fn running_and_one_shot_timers_keep_their_value() {
        assert_eq!(itimer_restore_value_us(&it(REAL, 7, 20_000), true), 7);
        assert_eq!(itimer_restore_value_us(&it(REAL, 500, 0), true), 500);
        assert_eq!(itimer_restore_value_us(&it(REAL, 0, 0), true), 0);
    }

    #[test]
    fn cpu_timers_are_never_rearmed() {
        for which in [VIRTUAL, PROF] {
            assert_eq!(itimer_restore_value_us(&it(which, 0, 10_000), true), 0);
        }
    }

    #[test]
    fn sigalrm_is_found_in_process_and_thread_queues() {
        let alrm = stasis_image::SigInfo {
            signo: libc::SIGALRM as u32,
            raw: vec![0; 128],
        };
        let other = stasis_image::SigInfo {
            signo: libc::SIGUSR1 as u32,
            raw: vec![0; 128],
        };
        let mut p = Process {
            shared_pending: vec![other.clone()],
            threads: vec![stasis_image::Thread::default()],
            ..Default::default()
        };
        assert!(!sigalrm_pending(&p));
        p.threads[0].pending.push(alrm.clone());
        assert!(sigalrm_pending(&p));
        p.threads[0].pending.clear();
        p.shared_pending.push(alrm);
        assert!(sigalrm_pending(&p));
    }
}

//! Interval timers (setitimer) and POSIX timers (timer_create).
//!
//! POSIX timers keep their ids through PR_TIMER_CREATE_RESTORE_IDS
//! (Linux 6.15+), which makes timer_create() take the id from its
//! `timerid` argument. Remaining times are restored relative to the
//! restore moment; overrun counts are not kept.

use stasis_image::{ITimer, PosixTimer};

use crate::error::{DumpError, RestoreError};
use crate::freeze::Frozen;
use crate::procfs;
use crate::restore::target::{words, Target};

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

pub fn restore_itimers(t: &Target, timers: &[ITimer]) -> Result<(), RestoreError> {
    for it in timers {
        let v = words(&[
            it.interval_us / 1_000_000,
            it.interval_us % 1_000_000,
            it.value_us / 1_000_000,
            it.value_us % 1_000_000,
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

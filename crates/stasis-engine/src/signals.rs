//! Signal dispositions and process-wide pending signals.
//! (Per-thread masks, pending signals and alternate stacks are in
//! [`crate::threads`].)

use stasis_image::{SigAction, SigInfo};
use stasis_sys::ptrace;

use crate::error::{DumpError, RestoreError, SysCtx};
use crate::handle::{words, Frozen, Target};
use crate::threads::siginfo;

/// Every disposition that is not the default (SIG_DFL, no flags, no mask).
///
/// Only signals the process catches or ignores (SigCgt, SigIgn in
/// /proc/PID/status, read while it is frozen) are asked for, plus SIGCHLD,
/// whose SA_NOCLDWAIT/SA_NOCLDSTOP matter even with SIG_DFL: each ask is a
/// remote syscall, and most signals of most processes are SIG_DFL. (The
/// flags and mask of another SIG_DFL signal change nothing the process
/// does; a program that reads them back with sigaction(2) would see them
/// cleared.)
pub fn dump_sigactions(frozen: &Frozen) -> Result<Vec<SigAction>, DumpError> {
    let pid = frozen.pid;
    let status = crate::procfs::parsed(
        pid,
        stasis_proc::parse_status(&crate::procfs::read_string(pid, "status")?),
    )?;
    let mut wanted = status.sig_cgt | status.sig_ign;
    wanted |= 1 << (libc::SIGCHLD - 1);
    let scratch = frozen.scratch().0;
    let mut out = Vec::new();
    for sig in 1..=64u32 {
        if sig == libc::SIGKILL as u32 || sig == libc::SIGSTOP as u32 {
            continue;
        }
        if wanted & (1 << (sig - 1)) == 0 {
            continue;
        }
        frozen.call(
            frozen.pid,
            "rt_sigaction",
            libc::SYS_rt_sigaction,
            &[sig as u64, 0, scratch, 8],
        )?;
        let b = frozen.read_scratch(32)?;
        let w = |i: usize| u64::from_ne_bytes(b[i * 8..i * 8 + 8].try_into().expect("8"));
        let sa = SigAction {
            signo: sig,
            handler: w(0),
            flags: w(1),
            restorer: w(2),
            mask: w(3),
        };
        if sa.handler != 0 || sa.flags != 0 || sa.mask != 0 {
            out.push(sa);
        }
    }
    Ok(out)
}

pub fn dump_shared_pending(frozen: &Frozen) -> Result<Vec<SigInfo>, DumpError> {
    Ok(ptrace::peek_siginfo(frozen.pid, true)
        .dump_ctx(frozen.pid, "peek shared pending signals")?
        .iter()
        .map(siginfo)
        .collect())
}

pub fn restore_sigactions(t: &Target, actions: &[SigAction]) -> Result<(), RestoreError> {
    for a in actions {
        let at = t.put(0, &words(&[a.handler, a.flags, a.restorer, a.mask]))?;
        t.lcall(
            "rt_sigaction",
            libc::SYS_rt_sigaction,
            &[a.signo as u64, at, 0, 8],
        )?;
    }
    Ok(())
}

pub fn restore_shared_pending(t: &Target, pending: &[SigInfo]) -> Result<(), RestoreError> {
    for s in pending {
        if s.signo == libc::SIGKILL as u32 || s.signo == libc::SIGSTOP as u32 {
            continue;
        }
        let at = t.put(0, &s.raw)?;
        t.lcall(
            "rt_sigqueueinfo",
            libc::SYS_rt_sigqueueinfo,
            &[t.ns_pid as u64, s.signo as u64, at],
        )?;
    }
    Ok(())
}

/// Takes signals `sigs` off the process's pending queue, if there: the
/// exit signals that recreated zombie children sent while it was being
/// restored, which the original had not pending (if it had, they are in
/// the image and queued again after this).
pub fn drain(t: &Target, sigs: &[u32]) -> Result<(), RestoreError> {
    let mut set = 0u64;
    for s in sigs.iter().filter(|s| (1..=64).contains(*s)) {
        set |= 1 << (s - 1);
    }
    if set == 0 {
        return Ok(());
    }
    let set_at = t.put(0, &set.to_ne_bytes())?;
    let zero = t.put(8, &[0u8; 16])?;
    // At most one instance of each standard signal; a few tries suffice.
    for _ in 0..sigs.len() + 1 {
        let r = t
            .thread(t.ns_pid)
            .syscall_raw(libc::SYS_rt_sigtimedwait, &[set_at, 0, zero, 8])
            .rst_ctx(t.pid, "rt_sigtimedwait")?;
        if r < 0 {
            break; // EAGAIN: nothing left
        }
    }
    Ok(())
}

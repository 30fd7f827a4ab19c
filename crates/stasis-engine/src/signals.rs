//! Signal dispositions and process-wide pending signals.
//! (Per-thread masks, pending signals and alternate stacks are in
//! [`crate::threads`].)

use stasis_image::{SigAction, SigInfo};
use stasis_sys::ptrace;

use crate::error::{DumpError, RestoreError, SysCtx};
use crate::freeze::Frozen;
use crate::restore::target::{words, Target};
use crate::threads::siginfo;

/// Every disposition that is not the default (SIG_DFL, no flags, no mask).
pub fn dump_sigactions(frozen: &Frozen) -> Result<Vec<SigAction>, DumpError> {
    let scratch = frozen.scratch().0;
    let mut out = Vec::new();
    for sig in 1..=64u32 {
        if sig == libc::SIGKILL as u32 || sig == libc::SIGSTOP as u32 {
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
            &[t.pid as u64, s.signo as u64, at],
        )?;
    }
    Ok(())
}

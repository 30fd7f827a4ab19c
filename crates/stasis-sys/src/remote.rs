//! The remote-syscall engine: run one system call inside a stopped tracee.
//!
//! The thread's registers are saved, pointed at a `syscall` instruction
//! that exists in the tracee (in its vDSO at dump time, in the restorer's
//! trampoline page at restore time), run to the syscall's entry and exit
//! stops (PTRACE_SYSCALL), and put back. The exit stop comes before the
//! thread returns to user mode, so nothing after the instruction ever
//! runs, even if the syscall unmapped it.
//!
//! Not single-stepping matters: a single-step trap is a SIGTRAP the kernel
//! forces on the thread, and forcing a signal the thread blocks or ignores
//! resets its disposition to SIG_DFL. Every dump would have cleared a
//! program's SIGTRAP handler (bash installs one). Syscall stops are ptrace
//! reports and queue nothing.
//!
//! `orig_rax` is set to -1 while the injected syscall runs so that the
//! kernel's syscall-restart logic never touches the injected registers.
//! The caller must keep signals blocked in the tracee (see
//! [`crate::ptrace::set_sigmask`]): a signal delivered during the syscall
//! would be reported instead of its exit stop.
//!
//! At dump time the thread is *armed* ([`crate::sigframe`]): `syscall_at`
//! is a `syscall` whose next instructions only clear registers and `ret`,
//! and `ret_frame` is the address of a sigreturn frame whose first word
//! points at a `mov $15,%rax; syscall`. The syscall runs with `rsp` at the
//! frame, so should the tracer die before the exit stop, the thread returns
//! into rt_sigreturn and is back as it was.

use crate::error::{Result, SysError};
use crate::ptrace::{self, Regs, Stop};
use crate::RemoteAddr;

/// A stopped thread and the address of a `syscall` instruction it can run.
#[derive(Debug, Clone, Copy)]
pub struct RemoteThread {
    pub tid: i32,
    pub syscall_at: RemoteAddr,
    /// The stack pointer while the syscall runs (an armed thread's
    /// sigreturn frame), or `None` to keep the thread's own.
    pub ret_frame: Option<RemoteAddr>,
}

impl RemoteThread {
    /// Runs syscall `nr` with `args` in the thread and returns its raw
    /// return value (negative errno on failure).
    pub fn syscall_raw(&self, nr: i64, args: &[u64]) -> Result<i64> {
        let saved = ptrace::get_regs(self.tid)?;
        let r = self.syscall_with(&saved, nr, args);
        // The syscall's own failure (the thread was killed, say) says
        // more than the failure to put registers back that follows it.
        let back = ptrace::set_regs(self.tid, &saved);
        let r = r?;
        back?;
        Ok(r)
    }

    /// Like [`syscall_raw`], but maps a negative return to an error.
    pub fn syscall(&self, name: &'static str, nr: i64, args: &[u64]) -> Result<u64> {
        let r = self.syscall_raw(nr, args)?;
        if (-4095..0).contains(&r) {
            return Err(SysError::Remote {
                name,
                tid: self.tid,
                errno: -r as i32,
            });
        }
        Ok(r as u64)
    }

    /// Points the thread at syscall `nr` with `args`, with signal mask
    /// `sigmask`, and detaches it: it runs the syscall on its own. For
    /// syscalls that do not return (exit_group, a fatal kill of itself).
    pub fn launch_and_detach(&self, nr: i64, args: &[u64], sigmask: u64) -> Result<()> {
        let mut regs = ptrace::get_regs(self.tid)?;
        regs.rip = self.syscall_at.0;
        regs.rax = nr as u64;
        regs.orig_rax = u64::MAX;
        let a = |i: usize| args.get(i).copied().unwrap_or(0);
        regs.rdi = a(0);
        regs.rsi = a(1);
        regs.rdx = a(2);
        ptrace::set_regs(self.tid, &regs)?;
        ptrace::set_sigmask(self.tid, sigmask)?;
        ptrace::detach(self.tid, 0)
    }

    /// Runs a syscall starting from `base` registers and leaves the thread
    /// with the registers after it (the caller restores them if needed).
    /// Clone events (PTRACE_EVENT_CLONE) on the way are stepped over; the
    /// new thread is the caller's to wait for.
    pub fn syscall_with(&self, base: &Regs, nr: i64, args: &[u64]) -> Result<i64> {
        let mut regs = *base;
        regs.rip = self.syscall_at.0;
        regs.rax = nr as u64;
        regs.orig_rax = u64::MAX;
        let a = |i: usize| args.get(i).copied().unwrap_or(0);
        regs.rdi = a(0);
        regs.rsi = a(1);
        regs.rdx = a(2);
        regs.r10 = a(3);
        regs.r8 = a(4);
        regs.r9 = a(5);
        if let Some(f) = self.ret_frame {
            regs.rsp = f.0;
        }
        ptrace::set_regs(self.tid, &regs)?;
        ptrace::cont_syscall(self.tid)?;
        // The entry stop, then the exit stop.
        let mut stops = 0;
        loop {
            match ptrace::wait(self.tid)? {
                Stop::Stopped { sig, event: 0 } if sig & 0x7f == libc::SIGTRAP => {
                    stops += 1;
                    if stops == 2 {
                        break;
                    }
                    ptrace::cont_syscall(self.tid)?;
                }
                Stop::Stopped {
                    sig: libc::SIGTRAP,
                    event,
                } if event != 0 => {
                    // A ptrace event (clone) inside the syscall: go on.
                    ptrace::cont_syscall(self.tid)?;
                }
                Stop::Stopped { sig, .. } => {
                    return Err(SysError::Tracee {
                        tid: self.tid,
                        what: format!(
                            "got signal {sig} instead of a syscall stop in remote syscall {nr}"
                        ),
                    })
                }
                other => {
                    return Err(SysError::Tracee {
                        tid: self.tid,
                        what: match other {
                            Stop::Killed(libc::SIGKILL) => format!(
                                "was killed (SIGKILL) during remote syscall {nr}; out of memory? (the OOM killer or its cgroup's memory limit; see the kernel log)"
                            ),
                            _ => format!("ended during remote syscall {nr}: {other:?}"),
                        },
                    })
                }
            }
        }
        let after = ptrace::get_regs(self.tid)?;
        if after.rip != self.syscall_at.0 + 2 {
            return Err(SysError::Tracee {
                tid: self.tid,
                what: format!(
                    "remote syscall {nr} stopped at {:#x}, expected {:#x}",
                    after.rip,
                    self.syscall_at.0 + 2
                ),
            });
        }
        Ok(after.rax as i64)
    }
}

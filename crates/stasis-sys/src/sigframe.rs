//! x86_64 `rt_sigreturn` frames, built by hand (see sigreturn(2) and the
//! kernel's arch/x86/kernel/signal_64.c).
//!
//! The dumper uses one to make a frozen thread *self-healing*: the thread's
//! whole user context (registers, FPU/AVX state, signal mask) is written
//! below its stack pointer as the frame a signal handler would return
//! through, and while the dump runs the thread is parked on a syscall
//! instruction with `rax = rt_sigreturn`. If the dumper dies at any moment,
//! the kernel detaches the thread, it executes that syscall and the kernel
//! itself puts every register and the mask back: nothing of ours is left.
//!
//! Layout at the frame address `X` (what rt_sigreturn reads at `rsp - 8`):
//!
//! ```text
//! X + 0    pretcode (8)      where a `ret` into the frame goes (a
//!                            `mov $15,%rax; syscall` gadget)
//! X + 8    struct ucontext   uc_flags, uc_link, uc_stack, sigcontext,
//!                            uc_sigmask (304 bytes)
//! X + 312  siginfo (128)     unused, but inside the frame rt_sigreturn checks
//! F        XSAVE area        64-byte aligned, above the frame, followed by
//!                            FP_XSTATE_MAGIC2
//! ```
//!
//! The frame restores the registers *after* the kernel's no-handler restart
//! of an interrupted syscall (rip back over the `syscall`, rax = the
//! syscall number, or restart_syscall for ERESTART_RESTARTBLOCK), because
//! rt_sigreturn sets orig_rax to -1 and so disables the restart logic.

use crate::ptrace::Regs;

/// Size of `struct rt_sigframe` without the XSAVE area.
pub const FRAME_SIZE: u64 = 8 + UCONTEXT_SIZE + 128;
const UCONTEXT_SIZE: u64 = 304;
/// Bytes below the stack pointer the ABI lets leaf functions use.
pub const RED_ZONE: u64 = 128;

const UC_FP_XSTATE: u64 = 1;
const UC_SIGCONTEXT_SS: u64 = 2;
const UC_STRICT_RESTORE_SS: u64 = 4;
const FP_XSTATE_MAGIC1: u32 = 0x4650_5853;
const FP_XSTATE_MAGIC2: u32 = 0x4650_5845;
/// Offset of `struct _fpx_sw_bytes` in the legacy FXSAVE area.
const SW_BYTES_AT: usize = 464;
/// An `ss_flags` that do_sigaltstack rejects with EINVAL, which
/// rt_sigreturn ignores: the alternate stack is left as it is.
const SS_KEEP: u32 = 3;

/// The kernel's internal "restart me" return codes, as a frozen thread's
/// `rax` shows them while `orig_rax` holds the interrupted syscall.
pub const ERESTARTSYS: i64 = -512;
pub const ERESTARTNOINTR: i64 = -513;
pub const ERESTARTNOHAND: i64 = -514;
pub const ERESTART_RESTARTBLOCK: i64 = -516;
const NR_RESTART_SYSCALL: u64 = 219;

/// A frame ready to be written into the target.
pub struct Frame {
    /// Lowest address written; everything from here to `rsp - RED_ZONE`
    /// belongs to us while the thread is frozen.
    pub base: u64,
    /// The frame address `X` (its pretcode slot).
    pub at: u64,
    /// Bytes to write at `base`.
    pub bytes: Vec<u8>,
}

/// The registers a thread resumes with when nothing is done about a
/// pending syscall restart: what the kernel would do on a plain resume.
pub fn restarted(regs: &Regs) -> Regs {
    let mut r = *regs;
    if (regs.orig_rax as i64) >= 0 {
        match regs.rax as i64 {
            ERESTARTSYS | ERESTARTNOINTR | ERESTARTNOHAND => {
                r.rip -= 2;
                r.rax = regs.orig_rax;
            }
            ERESTART_RESTARTBLOCK => {
                r.rip -= 2;
                r.rax = NR_RESTART_SYSCALL;
            }
            _ => {}
        }
    }
    r.orig_rax = u64::MAX;
    r
}

/// Builds the frame that puts back `regs`, `xstate` (as from
/// NT_X86_XSTATE) and `sigmask`, placed below `regs.rsp` and its red zone.
/// `pretcode` is written in the pretcode slot. `extra` bytes below the
/// frame are reserved for the caller (scratch memory).
pub fn build(regs: &Regs, xstate: &[u8], sigmask: u64, pretcode: u64, extra: u64) -> Frame {
    let r = restarted(regs);
    let top = regs.rsp.saturating_sub(RED_ZONE);
    let xsave_len = xsave_size(xstate);
    let fp_at = (top - xsave_len as u64 - 4) & !63;
    let at = (fp_at - FRAME_SIZE) & !15;
    let base = (at - extra) & !63;
    let mut bytes = vec![0u8; (top - base) as usize];
    let off = |addr: u64| (addr - base) as usize;

    let mut w = Writer {
        buf: &mut bytes,
        pos: off(at),
    };
    w.u64(pretcode);
    // struct ucontext
    w.u64(UC_FP_XSTATE | UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS);
    w.u64(0); // uc_link
    w.u64(0); // uc_stack.ss_sp
    w.u32(SS_KEEP);
    w.u32(0);
    w.u64(0); // uc_stack.ss_size
              // struct sigcontext
    for v in [
        r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15, r.rdi, r.rsi, r.rbp, r.rbx, r.rdx,
        r.rax, r.rcx, r.rsp, r.rip, r.eflags,
    ] {
        w.u64(v);
    }
    w.u16(r.cs as u16);
    w.u16(r.gs as u16);
    w.u16(r.fs as u16);
    w.u16(r.ss as u16);
    w.u64(0); // err
    w.u64(0); // trapno
    w.u64(sigmask); // oldmask
    w.u64(0); // cr2
    w.u64(fp_at); // fpstate
    w.pos += 64; // reserved1
    w.u64(sigmask); // uc_sigmask

    let fp = off(fp_at);
    bytes[fp..fp + xsave_len].copy_from_slice(&xstate[..xsave_len]);
    if has_xsave_magic(xstate) {
        bytes[fp + xsave_len..fp + xsave_len + 4].copy_from_slice(&FP_XSTATE_MAGIC2.to_ne_bytes());
    }
    Frame { base, at, bytes }
}

/// How much of the XSAVE area goes into the frame: the size the kernel's
/// software-reserved bytes announce, or the legacy 512-byte FXSAVE area.
fn xsave_size(xstate: &[u8]) -> usize {
    if has_xsave_magic(xstate) {
        let size = u32::from_ne_bytes(
            xstate[SW_BYTES_AT + 16..SW_BYTES_AT + 20]
                .try_into()
                .unwrap_or([0; 4]),
        );
        (size as usize).min(xstate.len())
    } else {
        xstate.len().min(512)
    }
}

fn has_xsave_magic(xstate: &[u8]) -> bool {
    xstate.len() >= SW_BYTES_AT + 20
        && xstate[SW_BYTES_AT..SW_BYTES_AT + 4] == FP_XSTATE_MAGIC1.to_ne_bytes()
}

struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl Writer<'_> {
    fn put(&mut self, b: &[u8]) {
        self.buf[self.pos..self.pos + b.len()].copy_from_slice(b);
        self.pos += b.len();
    }
    fn u64(&mut self, v: u64) {
        self.put(&v.to_ne_bytes())
    }
    fn u32(&mut self, v: u32) {
        self.put(&v.to_ne_bytes())
    }
    fn u16(&mut self, v: u16) {
        self.put(&v.to_ne_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regs() -> Regs {
        let mut r = crate::ptrace::zero_regs();
        r.rsp = 0x7fff_0000_1008;
        r.rip = 0x40_1002;
        r.rax = ERESTARTSYS as u64;
        r.orig_rax = 0;
        r.rdi = 3;
        r
    }

    #[test]
    fn restart_is_applied() {
        let r = restarted(&regs());
        assert_eq!((r.rip, r.rax, r.orig_rax), (0x40_1000, 0, u64::MAX));
        let mut b = regs();
        b.rax = ERESTART_RESTARTBLOCK as u64;
        assert_eq!(restarted(&b).rax, NR_RESTART_SYSCALL);
        let mut c = regs();
        c.orig_rax = u64::MAX;
        assert_eq!(restarted(&c).rip, 0x40_1002);
    }

    #[test]
    fn layout_matches_the_kernel() {
        let mut xs = vec![0u8; 2432];
        xs[SW_BYTES_AT..SW_BYTES_AT + 4].copy_from_slice(&FP_XSTATE_MAGIC1.to_ne_bytes());
        xs[SW_BYTES_AT + 16..SW_BYTES_AT + 20].copy_from_slice(&2432u32.to_ne_bytes());
        let f = build(&regs(), &xs, 0x4000, 0xdead, 256);
        let rd = |addr: u64| {
            let o = (addr - f.base) as usize;
            u64::from_ne_bytes(f.bytes[o..o + 8].try_into().unwrap())
        };
        assert_eq!(rd(f.at), 0xdead);
        // sigcontext starts at uc + 40; rip is its 17th word.
        assert_eq!(rd(f.at + 8 + 40 + 16 * 8), 0x40_1000);
        assert_eq!(rd(f.at + 8 + 40 + 15 * 8), 0x7fff_0000_1008);
        // uc_sigmask right after the 256-byte sigcontext.
        assert_eq!(rd(f.at + 8 + 40 + 256), 0x4000);
        let fp = rd(f.at + 8 + 40 + 23 * 8);
        assert_eq!(fp % 64, 0);
        assert!(fp >= f.at + FRAME_SIZE);
        let o = (fp - f.base) as usize + 2432;
        assert_eq!(f.bytes[o..o + 4], FP_XSTATE_MAGIC2.to_ne_bytes());
        assert!(f.base + f.bytes.len() as u64 <= 0x7fff_0000_1008 - RED_ZONE);
        assert!(f.at - f.base >= 256);
    }
}

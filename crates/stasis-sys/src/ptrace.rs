//! ptrace(2) on one thread: seize, interrupt, registers, signal state.
//!
//! Registers are exchanged as the kernel's `user_regs_struct` through
//! PTRACE_GETREGSET/SETREGSET (NT_PRSTATUS), and FPU/SSE/AVX state as the
//! raw XSAVE area (NT_X86_XSTATE), whose size depends on the CPU.

use crate::error::{Result, SysError};

pub use libc::user_regs_struct as Regs;

const NT_PRSTATUS: libc::c_int = 1;
const NT_X86_XSTATE: libc::c_int = 0x202;
const PTRACE_GETSIGMASK: libc::c_uint = 0x420a;
const PTRACE_SETSIGMASK: libc::c_uint = 0x420b;
const PTRACE_PEEKSIGINFO: libc::c_uint = 0x4209;
const PTRACE_PEEKSIGINFO_SHARED: u32 = 1;
const PTRACE_GET_RSEQ_CONFIGURATION: libc::c_uint = 0x420f;

/// Largest XSAVE area we accept (AVX-512 with AMX tiles is ~11 KiB).
const XSTATE_MAX: usize = 16384;

/// How a wait on a tracee ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Stopped with this signal; `event` is the PTRACE_EVENT_* (0 if none).
    Stopped {
        sig: i32,
        event: i32,
    },
    Exited(i32),
    Killed(i32),
}

/// rseq registration of a thread (PTRACE_GET_RSEQ_CONFIGURATION).
#[derive(Debug, Clone, Copy, Default)]
pub struct RseqConfig {
    pub addr: u64,
    pub len: u32,
    pub flags: u32,
    pub sig: u32,
}

fn req(
    request: libc::c_uint,
    tid: i32,
    addr: usize,
    data: usize,
    call: &'static str,
) -> Result<libc::c_long> {
    // SAFETY: every caller passes `addr`/`data` that are either integers or
    // pointers to buffers of the size the request writes or reads.
    let r = unsafe { libc::ptrace(request, tid, addr, data) };
    if r < 0 {
        return Err(SysError::last(call, format!("tid {tid}")));
    }
    Ok(r)
}

/// PTRACE_SEIZE with `options` (PTRACE_O_*).
pub fn seize(tid: i32, options: i32) -> Result<()> {
    req(libc::PTRACE_SEIZE, tid, 0, options as usize, "PTRACE_SEIZE").map(drop)
}

pub fn interrupt(tid: i32) -> Result<()> {
    req(libc::PTRACE_INTERRUPT, tid, 0, 0, "PTRACE_INTERRUPT").map(drop)
}

pub fn set_options(tid: i32, options: i32) -> Result<()> {
    req(
        libc::PTRACE_SETOPTIONS,
        tid,
        0,
        options as usize,
        "PTRACE_SETOPTIONS",
    )
    .map(drop)
}

/// PTRACE_TRACEME, for a child that wants its parent as tracer.
pub fn traceme() -> Result<()> {
    req(libc::PTRACE_TRACEME, 0, 0, 0, "PTRACE_TRACEME").map(drop)
}

pub fn detach(tid: i32, sig: i32) -> Result<()> {
    req(libc::PTRACE_DETACH, tid, 0, sig as usize, "PTRACE_DETACH").map(drop)
}

pub fn cont(tid: i32, sig: i32) -> Result<()> {
    req(libc::PTRACE_CONT, tid, 0, sig as usize, "PTRACE_CONT").map(drop)
}

/// PTRACE_SYSCALL: resume until the next syscall entry or exit. These
/// stops are ptrace reports, not signals: nothing is queued to the thread.
pub fn cont_syscall(tid: i32) -> Result<()> {
    req(libc::PTRACE_SYSCALL, tid, 0, 0, "PTRACE_SYSCALL").map(drop)
}

/// waitpid(tid, __WALL), retried on EINTR.
pub fn wait(tid: i32) -> Result<Stop> {
    let mut status = 0;
    loop {
        // SAFETY: `status` is a valid out-pointer.
        let r = unsafe { libc::waitpid(tid, &mut status, libc::__WALL) };
        if r < 0 {
            if crate::errno() == libc::EINTR {
                continue;
            }
            return Err(SysError::last("waitpid", format!("tid {tid}")));
        }
        break;
    }
    Ok(decode_status(status))
}

fn decode_status(status: i32) -> Stop {
    if libc::WIFEXITED(status) {
        Stop::Exited(libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        Stop::Killed(libc::WTERMSIG(status))
    } else {
        Stop::Stopped {
            sig: libc::WSTOPSIG(status),
            event: (status >> 16) & 0xff,
        }
    }
}

pub fn get_regs(tid: i32) -> Result<Regs> {
    // SAFETY: user_regs_struct is plain integers; all-zero is valid.
    let mut regs: Regs = unsafe { std::mem::zeroed() };
    let mut iov = libc::iovec {
        iov_base: (&mut regs as *mut Regs).cast(),
        iov_len: std::mem::size_of::<Regs>(),
    };
    req(
        libc::PTRACE_GETREGSET,
        tid,
        NT_PRSTATUS as usize,
        &mut iov as *mut libc::iovec as usize,
        "PTRACE_GETREGSET(NT_PRSTATUS)",
    )?;
    Ok(regs)
}

pub fn set_regs(tid: i32, regs: &Regs) -> Result<()> {
    let mut iov = libc::iovec {
        iov_base: (regs as *const Regs as *mut Regs).cast(),
        iov_len: std::mem::size_of::<Regs>(),
    };
    req(
        libc::PTRACE_SETREGSET,
        tid,
        NT_PRSTATUS as usize,
        &mut iov as *mut libc::iovec as usize,
        "PTRACE_SETREGSET(NT_PRSTATUS)",
    )
    .map(drop)
}

/// The XSAVE area (FPU, SSE, AVX, AVX-512, PKRU) of a stopped thread.
pub fn get_xstate(tid: i32) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; XSTATE_MAX];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    req(
        libc::PTRACE_GETREGSET,
        tid,
        NT_X86_XSTATE as usize,
        &mut iov as *mut libc::iovec as usize,
        "PTRACE_GETREGSET(NT_X86_XSTATE)",
    )?;
    buf.truncate(iov.iov_len);
    Ok(buf)
}

pub fn set_xstate(tid: i32, xstate: &[u8]) -> Result<()> {
    let mut iov = libc::iovec {
        iov_base: xstate.as_ptr() as *mut libc::c_void,
        iov_len: xstate.len(),
    };
    req(
        libc::PTRACE_SETREGSET,
        tid,
        NT_X86_XSTATE as usize,
        &mut iov as *mut libc::iovec as usize,
        "PTRACE_SETREGSET(NT_X86_XSTATE)",
    )
    .map(drop)
}

pub fn get_sigmask(tid: i32) -> Result<u64> {
    let mut mask = 0u64;
    req(
        PTRACE_GETSIGMASK,
        tid,
        8,
        &mut mask as *mut u64 as usize,
        "PTRACE_GETSIGMASK",
    )?;
    Ok(mask)
}

pub fn set_sigmask(tid: i32, mask: u64) -> Result<()> {
    req(
        PTRACE_SETSIGMASK,
        tid,
        8,
        &mask as *const u64 as usize,
        "PTRACE_SETSIGMASK",
    )
    .map(drop)
}

#[repr(C)]
struct PeekSiginfoArgs {
    off: u64,
    flags: u32,
    nr: i32,
}

/// Every queued signal of the thread (`shared == false`) or of its thread
/// group (`shared == true`), oldest first, as raw 128-byte siginfo_t. The
/// signals stay queued.
pub fn peek_siginfo(tid: i32, shared: bool) -> Result<Vec<[u8; 128]>> {
    let mut out = Vec::new();
    let mut buf = vec![[0u8; 128]; 32];
    loop {
        let args = PeekSiginfoArgs {
            off: out.len() as u64,
            flags: if shared { PTRACE_PEEKSIGINFO_SHARED } else { 0 },
            nr: buf.len() as i32,
        };
        let n = req(
            PTRACE_PEEKSIGINFO,
            tid,
            &args as *const PeekSiginfoArgs as usize,
            buf.as_mut_ptr() as usize,
            "PTRACE_PEEKSIGINFO",
        )?;
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n as usize]);
    }
    Ok(out)
}

pub fn rseq_config(tid: i32) -> Result<RseqConfig> {
    #[repr(C)]
    #[derive(Default)]
    struct Conf {
        addr: u64,
        len: u32,
        sig: u32,
        flags: u32,
        pad: u32,
    }
    let mut c = Conf::default();
    req(
        PTRACE_GET_RSEQ_CONFIGURATION,
        tid,
        std::mem::size_of::<Conf>(),
        &mut c as *mut Conf as usize,
        "PTRACE_GET_RSEQ_CONFIGURATION",
    )?;
    Ok(RseqConfig {
        addr: c.addr,
        len: c.len,
        flags: c.flags,
        sig: c.sig,
    })
}

/// get_robust_list(2) of another thread: (head, len).
pub fn robust_list(tid: i32) -> Result<(u64, u64)> {
    let mut head = 0u64;
    let mut len = 0usize;
    // SAFETY: both out-pointers are valid for writes of their sizes.
    let r = unsafe {
        libc::syscall(
            libc::SYS_get_robust_list,
            tid,
            &mut head as *mut u64,
            &mut len as *mut usize,
        )
    };
    if r < 0 {
        return Err(SysError::last("get_robust_list", format!("tid {tid}")));
    }
    Ok((head, len as u64))
}

/// PTRACE_GETSIGINFO: the siginfo of the signal a thread is stopped for.
pub fn get_siginfo(tid: i32) -> Result<[u8; 128]> {
    let mut info = [0u8; 128];
    req(
        libc::PTRACE_GETSIGINFO,
        tid,
        0,
        info.as_mut_ptr() as usize,
        "PTRACE_GETSIGINFO",
    )?;
    Ok(info)
}

/// An all-zero register set.
pub fn zero_regs() -> Regs {
    // SAFETY: user_regs_struct is plain integers; all-zero is valid.
    unsafe { std::mem::zeroed() }
}

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

/// How long [`wait`] waits for a tracee's next stop before it gives up:
/// `STASIS_WAIT_TIMEOUT_MS`, or 5 s. A thread in an uninterruptible sleep
/// (a vfork parent, a hung NFS read) does not stop until it leaves it.
pub fn wait_timeout() -> std::time::Duration {
    static MS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let ms = *MS.get_or_init(|| {
        std::env::var("STASIS_WAIT_TIMEOUT_MS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(5000)
    });
    std::time::Duration::from_millis(ms)
}

/// waitpid(tid, __WALL), bounded by [`wait_timeout`].
pub fn wait(tid: i32) -> Result<Stop> {
    wait_for(tid, wait_timeout())
}

/// waitpid(tid, __WALL) for at most `limit`: polls with WNOHANG and sleeps
/// in sigtimedwait(SIGCHLD) between polls (the kernel sends the tracer a
/// SIGCHLD for every stop). SIGCHLD is blocked in the calling thread so it
/// is queued rather than discarded; each sleep is short anyway, in case
/// another thread took the signal.
pub fn wait_for(tid: i32, limit: std::time::Duration) -> Result<Stop> {
    let deadline = std::time::Instant::now() + limit;
    let chld = block_sigchld();
    loop {
        let mut status = 0;
        // SAFETY: `status` is a valid out-pointer.
        let r = unsafe { libc::waitpid(tid, &mut status, libc::__WALL | libc::WNOHANG) };
        if r > 0 {
            return Ok(decode_status(status));
        }
        if r < 0 && crate::errno() != libc::EINTR {
            return Err(SysError::last("waitpid", format!("tid {tid}")));
        }
        let now = std::time::Instant::now();
        if now >= deadline {
            return Err(SysError::Tracee {
                tid,
                what: format!(
                    "did not stop within {:.1} s (state {}); it may be in an uninterruptible sleep",
                    limit.as_secs_f64(),
                    thread_state(tid)
                ),
            });
        }
        let left = (deadline - now).min(std::time::Duration::from_millis(5));
        let ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: left.subsec_nanos() as libc::c_long,
        };
        // SAFETY: `chld` is an initialised signal set and `ts` a valid
        // timeout; the siginfo out-pointer may be NULL.
        unsafe { libc::sigtimedwait(&chld, std::ptr::null_mut(), &ts) };
    }
}

/// Blocks SIGCHLD in the calling thread; returns the set holding it.
fn block_sigchld() -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset initialise `set`; pthread_sigmask
    // only reads it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

/// The state letter of a thread, from /proc/TID/stat ("?" if unreadable).
fn thread_state(tid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{tid}/stat"))
        .ok()
        .and_then(|s| {
            let after = s.rsplit_once(") ")?.1.to_string();
            after.split_whitespace().next().map(str::to_string)
        })
        .unwrap_or_else(|| "?".into())
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

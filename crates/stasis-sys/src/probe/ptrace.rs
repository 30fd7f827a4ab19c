//! ptrace(2) on a throwaway child: seize, interrupt, rseq configuration
//! and the xstate regset.

use super::child::Child;
use super::{ProbeError, Result};

// x86_64 UAPI values, spelled out so we do not depend on which of them a
// given libc release exports.
const PTRACE_SEIZE: libc::c_uint = 0x4206;
const PTRACE_INTERRUPT: libc::c_uint = 0x4207;
const PTRACE_GETREGSET: libc::c_uint = 0x4204;
const PTRACE_GET_RSEQ_CONFIGURATION: libc::c_uint = 0x420f;
const PTRACE_EVENT_STOP: i32 = 128;
const NT_X86_XSTATE: usize = 0x202;

/// What the kernel reported about a seized child.
#[derive(Debug, Clone)]
pub struct PtraceReport {
    pub child: i32,
    /// rseq area address (0 when the child has none registered), its
    /// size, and the abort signature.
    pub rseq_abi_pointer: u64,
    pub rseq_abi_size: u32,
    pub rseq_signature: u32,
    /// Bytes of NT_X86_XSTATE (FPU/SSE/AVX/... state) for one thread.
    pub xstate_size: usize,
}

/// ptrace(2) with an integer `addr`.
///
/// # Safety
/// `data` must be null or point to memory valid for what `req` reads and
/// writes through it.
unsafe fn ptrace_call(
    req: libc::c_uint,
    pid: i32,
    addr: usize,
    data: *mut libc::c_void,
) -> libc::c_long {
    // SAFETY: the caller guarantees `data` fits `req`.
    unsafe { libc::ptrace(req, pid, addr as *mut libc::c_void, data) }
}

fn pause_forever() -> ! {
    // SAFETY: raw syscalls only; the child dies with its parent thread and
    // otherwise sleeps until SIGKILL.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
        loop {
            libc::pause();
        }
    }
}

/// Forks a child that sleeps, PTRACE_SEIZEs and PTRACE_INTERRUPTs it,
/// reads its rseq configuration and its NT_X86_XSTATE regset, then kills
/// and reaps it.
pub fn ptrace_child() -> Result<PtraceReport> {
    // SAFETY: the child only runs `pause_forever` (raw syscalls) and never
    // returns into our code.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(ProbeError::last("fork"));
    }
    if pid == 0 {
        pause_forever();
    }
    let child = Child(pid);

    // SAFETY: SEIZE with no options uses no data pointer.
    if unsafe { ptrace_call(PTRACE_SEIZE, pid, 0, std::ptr::null_mut()) } < 0 {
        return Err(ProbeError::last("PTRACE_SEIZE"));
    }
    // SAFETY: INTERRUPT uses no data pointer.
    if unsafe { ptrace_call(PTRACE_INTERRUPT, pid, 0, std::ptr::null_mut()) } < 0 {
        return Err(ProbeError::last("PTRACE_INTERRUPT"));
    }
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes one int into `status`.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::__WALL) };
        if r < 0 {
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(ProbeError::last("waitpid"));
        }
        if !libc::WIFSTOPPED(status) {
            return Err(ProbeError::other(
                "PTRACE_INTERRUPT",
                format!("child ended instead of stopping (status {status:#x})"),
            ));
        }
        if status >> 16 == PTRACE_EVENT_STOP {
            break;
        }
        // Some other stop (a stray signal): let it go, the interrupt
        // stays pending.
        // SAFETY: CONT with signal 0 uses no data pointer.
        unsafe { ptrace_call(libc::PTRACE_CONT, pid, 0, std::ptr::null_mut()) };
    }

    #[repr(C)]
    #[derive(Default)]
    struct RseqConf {
        rseq_abi_pointer: u64,
        rseq_abi_size: u32,
        signature: u32,
        flags: u32,
        pad: u32,
    }
    let mut rseq = RseqConf::default();
    // SAFETY: the kernel writes at most `addr` bytes (the struct's size)
    // into `rseq`.
    let r = unsafe {
        ptrace_call(
            PTRACE_GET_RSEQ_CONFIGURATION,
            pid,
            std::mem::size_of::<RseqConf>(),
            (&mut rseq as *mut RseqConf).cast(),
        )
    };
    if r < 0 {
        return Err(ProbeError::last("PTRACE_GET_RSEQ_CONFIGURATION"));
    }

    // Big enough for any xstate layout seen so far (AMX is ~11 KiB).
    let mut buf = vec![0u64; 64 * 1024 / 8];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len() * 8,
    };
    // SAFETY: GETREGSET writes at most `iov_len` bytes at `iov_base`
    // (inside `buf`) and updates `iov_len`.
    let r = unsafe {
        ptrace_call(
            PTRACE_GETREGSET,
            pid,
            NT_X86_XSTATE,
            (&mut iov as *mut libc::iovec).cast(),
        )
    };
    if r < 0 {
        return Err(ProbeError::last("PTRACE_GETREGSET NT_X86_XSTATE"));
    }

    drop(child);
    Ok(PtraceReport {
        child: pid,
        rseq_abi_pointer: rseq.rseq_abi_pointer,
        rseq_abi_size: rseq.rseq_abi_size,
        rseq_signature: rseq.signature,
        xstate_size: iov.iov_len,
    })
}

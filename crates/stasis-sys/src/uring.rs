//! io_uring(7) probes made by the dumper on its own copy of a ring fd
//! (pidfd_getfd). Setup flags are not shown anywhere; two of them change
//! what another task may do, which is what these calls test, without
//! submitting anything or changing the ring.

use std::os::fd::RawFd;

/// IORING_REGISTER_PROBE.
const REGISTER_PROBE: libc::c_long = 8;
/// IORING_ENTER_GETEVENTS.
const ENTER_GETEVENTS: libc::c_long = 1;

/// Whether io_uring_register(IORING_REGISTER_PROBE) from this task is
/// refused with EEXIST: the ring is IORING_SETUP_SINGLE_ISSUER and has its
/// submitter. (The probe only fills our buffer.)
pub fn single_issuer(fd: RawFd) -> bool {
    // struct io_uring_probe with room for 256 ops (16 + 256 * 8 bytes).
    let mut buf = vec![0u8; 16 + 256 * 8];
    // SAFETY: the kernel writes at most 16 + 256 * 8 bytes into `buf`.
    let r = unsafe {
        libc::syscall(
            libc::SYS_io_uring_register,
            fd,
            REGISTER_PROBE,
            buf.as_mut_ptr(),
            256,
        )
    };
    r < 0 && crate::errno() == libc::EEXIST
}

/// Whether io_uring_enter(GETEVENTS, min_complete 0) from this task is
/// refused with EEXIST: IORING_SETUP_DEFER_TASKRUN, whose completions only
/// the submitter may reap. Nothing is submitted or waited for.
pub fn defer_taskrun(fd: RawFd) -> bool {
    // SAFETY: integer arguments and a null signal mask.
    let r = unsafe {
        libc::syscall(
            libc::SYS_io_uring_enter,
            fd,
            0,
            0,
            ENTER_GETEVENTS,
            std::ptr::null::<libc::sigset_t>(),
            0,
        )
    };
    r < 0 && crate::errno() == libc::EEXIST
}

/// Whether io_uring_setup(2) accepts IORING_SETUP_NO_MMAP (rings in memory
/// the caller provides), which restore uses to put a ring's memory at its
/// old address. Sets up one small ring on our own memory and closes it.
pub fn no_mmap_supported() -> crate::error::Result<bool> {
    const NO_MMAP: u32 = 1 << 14;
    // SAFETY: a fresh private anonymous mapping of two pages, only used by
    // the kernel for the probe ring and unmapped below.
    let mem = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            8192,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if mem == libc::MAP_FAILED {
        return Err(crate::error::SysError::last("mmap", "probe ring memory"));
    }
    let mut params = [0u8; 120];
    params[8..12].copy_from_slice(&NO_MMAP.to_ne_bytes());
    params[72..80].copy_from_slice(&(mem as u64 + 4096).to_ne_bytes());
    params[112..120].copy_from_slice(&(mem as u64).to_ne_bytes());
    // SAFETY: `params` is a struct io_uring_params the kernel reads and
    // writes; the ring memory it names stays mapped until after close.
    let fd = unsafe { libc::syscall(libc::SYS_io_uring_setup, 4, params.as_mut_ptr()) };
    let ok = fd >= 0;
    if ok {
        crate::util::close_raw(fd as RawFd);
    }
    // SAFETY: unmapping the pages mapped above, no longer used.
    unsafe { libc::munmap(mem, 8192) };
    Ok(ok)
}

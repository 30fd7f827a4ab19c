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

//! prctl(2) and arch_prctl(2): PR_SET_MM, POSIX timer ids on restore, and
//! mapping the vDSO.

use super::child::{child_errno, in_child};
use super::{ProbeError, Result};

// x86_64 UAPI values, spelled out so we do not depend on which of them a
// given libc release exports.
const PR_SET_MM: libc::c_int = 35;
const PR_SET_MM_BRK: libc::c_ulong = 7;
const PR_SET_MM_MAP_SIZE: libc::c_ulong = 15;
const PR_TIMER_CREATE_RESTORE_IDS: libc::c_int = 77;
const PR_TIMER_CREATE_RESTORE_IDS_ON: libc::c_ulong = 1;
const PR_TIMER_CREATE_RESTORE_IDS_GET: libc::c_ulong = 2;

const ARCH_MAP_VDSO_64: libc::c_int = 0x2003;

/// prctl(PR_SET_MM, PR_SET_MM_MAP_SIZE): the size of struct prctl_mm_map
/// the kernel expects (104 on x86_64). Errors when PR_SET_MM_MAP is absent.
pub fn mm_map_size() -> Result<u32> {
    let mut size: u32 = 0;
    // SAFETY: PR_SET_MM_MAP_SIZE writes one u32 at the address given.
    let r = unsafe {
        libc::prctl(
            PR_SET_MM,
            PR_SET_MM_MAP_SIZE,
            &mut size as *mut u32 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    if r < 0 {
        return Err(ProbeError::last("prctl(PR_SET_MM, PR_SET_MM_MAP_SIZE)"));
    }
    Ok(size)
}

fn set_mm_brk_child() -> i32 {
    // SAFETY: raw syscalls in a throwaway child: brk(0) reads the current
    // break, and setting mm->brk to that same value changes nothing.
    unsafe {
        let brk = libc::syscall(libc::SYS_brk, 0 as libc::c_ulong);
        let r = libc::prctl(
            PR_SET_MM,
            PR_SET_MM_BRK,
            brk as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        );
        if r < 0 {
            child_errno()
        } else {
            0
        }
    }
}

/// The errno of a single PR_SET_MM_BRK (0 if it worked), tried in a
/// throwaway child with the current break. The single PR_SET_MM_* calls
/// need CAP_SYS_RESOURCE; EPERM shows it is missing.
pub fn set_mm_single_errno() -> Result<i32> {
    in_child(set_mm_brk_child)
}

/// prctl(PR_TIMER_CREATE_RESTORE_IDS, GET) on ourselves: 0 or 1. EINVAL
/// means the kernel (before 6.15) lacks it.
pub fn timer_restore_ids_get() -> Result<i32> {
    // SAFETY: the GET form only reads a flag of this process.
    let r = unsafe {
        libc::prctl(
            PR_TIMER_CREATE_RESTORE_IDS,
            PR_TIMER_CREATE_RESTORE_IDS_GET,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    if r < 0 {
        return Err(ProbeError::last("prctl(PR_TIMER_CREATE_RESTORE_IDS)"));
    }
    Ok(r)
}

/// Timer id requested in [`timer_restore_child`].
pub const PROBE_TIMER_ID: i32 = 4321;

fn timer_restore_child() -> i32 {
    // SAFETY: raw syscalls in a throwaway child. timer_create writes one
    // int (the kernel's timer_t) into `id`; a null sigevent is allowed.
    unsafe {
        if libc::prctl(
            PR_TIMER_CREATE_RESTORE_IDS,
            PR_TIMER_CREATE_RESTORE_IDS_ON,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        ) < 0
        {
            return child_errno();
        }
        let mut id: i32 = PROBE_TIMER_ID;
        let r = libc::syscall(
            libc::SYS_timer_create,
            libc::CLOCK_MONOTONIC,
            std::ptr::null_mut::<libc::sigevent>(),
            &mut id as *mut i32,
        );
        if r < 0 {
            return child_errno();
        }
        if id == PROBE_TIMER_ID {
            0
        } else {
            200
        }
    }
}

/// In a throwaway child, turns PR_TIMER_CREATE_RESTORE_IDS on and creates
/// a POSIX timer asking for id [`PROBE_TIMER_ID`]. Ok(()) when the kernel
/// honoured the id.
pub fn timer_restore_ids_create() -> Result<()> {
    match in_child(timer_restore_child)? {
        0 => Ok(()),
        200 => Err(ProbeError::other(
            "timer_create",
            format!("asked for timer id {PROBE_TIMER_ID}, got another"),
        )),
        e => Err(ProbeError::errno("prctl/timer_create", e)),
    }
}

fn map_vdso_child() -> i32 {
    // SAFETY: raw syscall in a throwaway child. With the vDSO already mapped
    // the kernel refuses (EEXIST) before mapping anything; if it did map one,
    // only this child, which exits at once, would see it.
    let r = unsafe {
        libc::syscall(
            libc::SYS_arch_prctl,
            ARCH_MAP_VDSO_64,
            0x1000_0000 as libc::c_ulong,
        )
    };
    if r < 0 {
        child_errno()
    } else {
        0
    }
}

/// The errno of arch_prctl(ARCH_MAP_VDSO_64) in a child that still has its
/// vDSO: EEXIST means the call exists (and would work once the vDSO is
/// unmapped); EINVAL means the kernel lacks it.
pub fn map_vdso_errno() -> Result<i32> {
    in_child(map_vdso_child)
}

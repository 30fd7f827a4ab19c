//! The restore trampoline: a small area, free in both the restorer's and
//! the target's layouts, holding a `syscall` instruction (page 0) and
//! scratch memory for syscall arguments (the rest). The restorer drives
//! the new process through it with remote syscalls, and unmaps it last.

use stasis_image::Vma;

use crate::error::RestoreError;

pub const TRAMP_SIZE: u64 = 64 * 1024;
pub const CODE_SIZE: u64 = 4096;
/// `syscall` followed by `int3` padding.
pub const CODE: [u8; 16] = [
    0x0f, 0x05, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc,
];
/// Distance kept from any mapping (covers stack guard gaps).
const MARGIN: u64 = 1 << 20;

/// Lowest address above 1 MiB where the trampoline fits between the
/// target's VMAs, the `also` ranges (regions inherited at restore) and our
/// own mappings.
pub fn find_hole(vmas: &[Vma], also: &[(u64, u64)]) -> Result<u64, RestoreError> {
    let mut busy: Vec<(u64, u64)> = vmas.iter().map(|v| (v.start, v.end)).collect();
    busy.extend_from_slice(also);
    let own = std::fs::read_to_string("/proc/self/maps")
        .map_err(|e| RestoreError::Refused(format!("cannot read /proc/self/maps: {e}")))?;
    let own = stasis_proc::parse_maps(&own)
        .map_err(|e| RestoreError::Refused(format!("cannot parse /proc/self/maps: {e}")))?;
    busy.extend(own.iter().map(|m| (m.start, m.end)));
    busy.sort();
    let mut addr = 1u64 << 20;
    for (s, e) in busy {
        if s >= addr + TRAMP_SIZE + MARGIN {
            return Ok(addr);
        }
        addr = addr.max(e + MARGIN);
    }
    if addr + TRAMP_SIZE < 0x7fff_ffff_0000 {
        return Ok(addr);
    }
    Err(RestoreError::Refused(
        "no free address range for the restore trampoline".into(),
    ))
}

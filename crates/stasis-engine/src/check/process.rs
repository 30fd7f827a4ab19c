//! The interfaces dump and restore use on a process: ptrace, clone3 with
//! set_tid, pidfd_getfd, process_vm_readv, PR_SET_MM_MAP, POSIX timer ids
//! and the vDSO.

use std::fs;
use std::path::Path;

use stasis_sys::probe;

use super::{errno_name, failed, human_bytes, read_number};

pub(super) fn ptrace() -> Result<(bool, String), String> {
    let r = probe::ptrace_child().map_err(|e| failed(&e))?;
    let rseq = if r.rseq_abi_pointer == 0 {
        "the child has no rseq area registered".to_string()
    } else {
        format!(
            "rseq area of {} bytes at {:#x}, signature {:#x}",
            r.rseq_abi_size, r.rseq_abi_pointer, r.rseq_signature
        )
    };
    Ok((
        true,
        format!(
            "PTRACE_SEIZE + PTRACE_INTERRUPT of a child (pid {}) worked; \
             PTRACE_GET_RSEQ_CONFIGURATION: {rseq}; NT_X86_XSTATE is {} bytes",
            r.child, r.xstate_size
        ),
    ))
}

/// A pid below pid_max, as high as possible, that /proc says is free.
fn free_pids(pid_max: u64, count: usize) -> Vec<i32> {
    (300..pid_max)
        .rev()
        .filter(|n| !Path::new(&format!("/proc/{n}")).exists())
        .filter_map(|n| i32::try_from(n).ok())
        .take(count)
        .collect()
}

pub(super) fn clone3_set_tid() -> Result<(bool, String), String> {
    let pid_max = read_number("/proc/sys/kernel/pid_max")?;
    let candidates = free_pids(pid_max, 5);
    if candidates.is_empty() {
        return Err(format!("found no free pid below pid_max {pid_max}"));
    }
    let mut last = String::new();
    for pid in candidates {
        match probe::clone3_set_tid(pid) {
            Ok(got) => {
                return Ok((
                    true,
                    format!("clone3 made a child with the pid asked for ({got}, set_tid); it exited and was reaped"),
                ))
            }
            // Taken between our look at /proc and the call: try the next.
            Err(e) if e.errno == Some(libc::EEXIST) => last = failed(&e),
            Err(e) => {
                let why = match e.errno {
                    Some(libc::EPERM) => {
                        "; set_tid needs CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN"
                    }
                    Some(libc::ENOSYS) | Some(libc::E2BIG) => "; clone3 set_tid needs Linux 5.5",
                    _ => "",
                };
                return Ok((false, format!("asked for pid {pid}: {}{why}", failed(&e))));
            }
        }
    }
    Ok((
        false,
        format!("every free pid tried was taken meanwhile: {last}"),
    ))
}

pub(super) fn pidfd_getfd() -> Result<(bool, String), String> {
    let fd = probe::pidfd_getfd_self().map_err(|e| failed(&e))?;
    Ok((
        true,
        format!(
            "pidfd_open on ourselves, then pidfd_getfd of one of our pipe fds \
             gave fd {fd}, the same pipe: the dumper can take every fd of a target"
        ),
    ))
}

pub(super) fn process_vm_readv() -> Result<(bool, String), String> {
    let n = probe::process_vm_readv_self().map_err(|e| failed(&e))?;
    Ok((
        true,
        format!(
            "read {} of our own memory and it matched",
            human_bytes(n as u64)
        ),
    ))
}

pub(super) fn pr_set_mm_map() -> Result<(bool, String), String> {
    match probe::mm_map_size() {
        Ok(size) => Ok((
            true,
            format!(
                "PR_SET_MM_MAP_SIZE says struct prctl_mm_map is {size} bytes: \
                 restore can set all mm fields (brk, stack, args, env, auxv, exe) in one call"
            ),
        )),
        Err(e) => Ok((
            false,
            format!("{}; the kernel needs CONFIG_CHECKPOINT_RESTORE", failed(&e)),
        )),
    }
}

pub(super) fn timer_ids() -> Result<(bool, String), String> {
    let state = match probe::timer_restore_ids_get() {
        Ok(v) => v,
        Err(e) if e.errno == Some(libc::EINVAL) => {
            return Ok((
                false,
                "prctl(PR_TIMER_CREATE_RESTORE_IDS) gave EINVAL (Linux 6.15+ has it): \
                 a process with POSIX timers cannot be restored with the same timer ids"
                    .to_string(),
            ))
        }
        Err(e) => return Err(failed(&e)),
    };
    match probe::timer_restore_ids_create() {
        Ok(()) => Ok((
            true,
            format!(
                "PR_TIMER_CREATE_RESTORE_IDS is there (currently {}); a child that \
                 turned it on got timer_create to use the id it asked for ({}): \
                 POSIX timers restore with their ids",
                if state == 1 { "on" } else { "off" },
                probe::PROBE_TIMER_ID
            ),
        )),
        Err(e) => Ok((
            false,
            format!(
                "PR_TIMER_CREATE_RESTORE_IDS answers, but timer_create with a chosen \
                 id did not work: {}",
                failed(&e)
            ),
        )),
    }
}

/// One special mapping from /proc/self/maps.
struct Special {
    name: String,
    start: u64,
    end: u64,
}

pub(super) fn vdso() -> Result<(bool, String), String> {
    let maps = fs::read_to_string("/proc/self/maps")
        .map_err(|e| format!("cannot read /proc/self/maps: {e}"))?;
    let mut specials: Vec<Special> = Vec::new();
    for line in maps.lines() {
        let mut fields = line.split_whitespace();
        let range = fields.next().unwrap_or("");
        let Some(name) = fields.nth(4) else { continue };
        if !(name.starts_with("[vvar") || name == "[vdso]") {
            continue;
        }
        let Some((a, b)) = range.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end)) = (u64::from_str_radix(a, 16), u64::from_str_radix(b, 16)) else {
            continue;
        };
        specials.push(Special {
            name: name.to_string(),
            start,
            end,
        });
    }
    specials.sort_by_key(|s| s.start);
    if !specials.iter().any(|s| s.name == "[vdso]") {
        return Ok((
            false,
            "no [vdso] in /proc/self/maps (booted with vdso=0?)".to_string(),
        ));
    }
    let layout: Vec<String> = specials
        .iter()
        .map(|s| format!("{} {}", s.name, human_bytes(s.end - s.start)))
        .collect();
    let adjacent = specials.windows(2).all(|w| w[0].end == w[1].start);
    let first = specials.first().map_or(0, |s| s.start);
    let last = specials.last().map_or(0, |s| s.end);
    let block = if adjacent {
        format!(
            "adjacent, one {} block at {first:#x}",
            human_bytes(last - first)
        )
    } else {
        "not adjacent".to_string()
    };
    let map_vdso = match probe::map_vdso_errno() {
        Ok(libc::EEXIST) => {
            "arch_prctl(ARCH_MAP_VDSO_64) is there (EEXIST in a child that still had its vDSO)"
                .to_string()
        }
        Ok(0) => "arch_prctl(ARCH_MAP_VDSO_64) mapped a second vDSO in a test child".to_string(),
        Ok(e) => format!(
            "arch_prctl(ARCH_MAP_VDSO_64) gave {}: restore must move the vDSO with mremap",
            errno_name(e)
        ),
        Err(e) => format!("arch_prctl(ARCH_MAP_VDSO_64) not tried: {}", failed(&e)),
    };
    Ok((true, format!("{} ({block}); {map_vdso}", layout.join(", "))))
}

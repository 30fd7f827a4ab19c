//! Restore half of [`crate::mm`]: the memory switch, run through remote
//! syscalls from the trampoline (see DESIGN §2, way (a)).
//!
//! Order: unmap everything the restorer's fork left in the new process
//! (but the trampoline), map every VMA at its address (writable while it
//! is filled), map the vDSO with arch_prctl(ARCH_MAP_VDSO_64), read the
//! pages straight from pages.img into place with preadv, put back the
//! final protections and madvise flags, then set the mm fields with one
//! PR_SET_MM_MAP.

use std::collections::BTreeMap;

use stasis_image::{self as img, PageRun, Process, Vma, VmaKind};

use crate::error::RestoreError;
use crate::handle::{words, Target};

const ARCH_MAP_VDSO_64: u64 = 0x2003;
const PR_SET_MM: u64 = 35;
const PR_SET_MM_MAP: u64 = 14;
const PR_SET_VMA: u64 = 0x53564d41;
const PR_SET_VMA_ANON_NAME: u64 = 0;
/// iovecs per preadv (IOV_MAX).
const IOV_BATCH: usize = 1024;
/// Bytes per preadv.
const MAX_BATCH: u64 = 1 << 30;
/// Where iovecs go in scratch memory.
const IOV_OFF: u64 = 4096;

/// Creates every shared anonymous memory object of the image in the
/// restorer, filled from `pages`, at descriptors `base` and up (inherited
/// by every new process, which maps them). Returns id -> descriptor.
pub fn create_shmem(
    pagemaps: &[stasis_image::PageMap],
    procs: &[Process],
    pages: &std::fs::File,
    base: i32,
) -> Result<BTreeMap<u64, i32>, RestoreError> {
    use std::os::fd::IntoRawFd;
    use std::os::unix::fs::FileExt;
    let mut out = BTreeMap::new();
    for m in pagemaps.iter().filter(|m| m.shmem_id != 0) {
        let fd: std::os::fd::OwnedFd = if m.deleted_path.is_empty() {
            stasis_sys::util::shmem_object(m.shmem_size, &mut |mem| {
                for r in &m.runs {
                    let (a, len) = (r.vaddr as usize, (r.nr_pages * super::PAGE) as usize);
                    pages.read_exact_at(&mut mem[a..a + len], r.offset)?;
                }
                Ok(())
            })
            .map_err(|e| RestoreError::Sys {
                pid: 0,
                step: format!("create shared memory object {}", m.shmem_id),
                source: e,
            })?
        } else {
            {
                let exe = procs.iter().any(|p| p.exe_object == m.shmem_id);
                crate::files::unlinked::create(m, pages, exe)?
            }
        };
        let at = base + out.len() as i32;
        stasis_sys::util::move_fd(fd.into_raw_fd(), at).map_err(|e| RestoreError::Sys {
            pid: 0,
            step: "place shared memory object".into(),
            source: e,
        })?;
        out.insert(m.shmem_id, at);
    }
    Ok(out)
}

/// Files the memory switch needs open in the new process: (path, write).
pub fn needed_files(p: &Process) -> Vec<(String, bool)> {
    let mut v: Vec<(String, bool)> = p
        .vmas
        .iter()
        .filter(|m| m.kind == VmaKind::File as i32 && m.shmem_id == 0)
        .map(|m| {
            let shared = m.flags & libc::MAP_SHARED as u32 != 0;
            let w = shared && m.prot & libc::PROT_WRITE as u32 != 0;
            (m.name.clone(), w)
        })
        .collect();
    if !p.exe_path.is_empty() {
        v.push((p.exe_path.clone(), false));
    }
    v.sort();
    v.dedup();
    v
}

fn has_pages(v: &Vma, runs: &[PageRun]) -> bool {
    let i = runs.partition_point(|r| r.vaddr + r.nr_pages * super::PAGE <= v.start);
    runs.get(i).is_some_and(|r| r.vaddr < v.end)
}

/// Everything from "unmap the old" to PR_SET_MM_MAP. `inherited` holds
/// the regions the process may have inherited copy-on-write, with the runs
/// they were filled with (see [`super::cow`]).
#[allow(clippy::too_many_arguments)]
pub fn switch_memory(
    t: &Target,
    p: &Process,
    runs: &[PageRun],
    pages_fd: i32,
    files: &BTreeMap<(String, bool), i32>,
    shmem: &BTreeMap<u64, i32>,
    tramp: (u64, u64),
    inherited: &BTreeMap<(u64, u64), &[PageRun]>,
) -> Result<(), RestoreError> {
    unregister_rseq(t)?;
    let (kept, keep) = unmap_restorer(t, p, tramp, inherited)?;
    let fixups = map_vmas(t, p, runs, files, shmem, &kept)?;
    restore_pages(t, runs, pages_fd, &kept, &keep)?;
    finish_vmas(t, p, fixups)
}

/// The fork inherited glibc's rseq registration of the restorer; the
/// kernel writes to that area on every return to user space, so it must
/// go before the memory it lives in.
fn unregister_rseq(t: &Target) -> Result<(), RestoreError> {
    let rseq = stasis_sys::ptrace::rseq_config(t.pid).map_err(|e| RestoreError::Sys {
        pid: t.pid,
        step: "get rseq".into(),
        source: e,
    })?;
    if rseq.addr != 0 {
        const RSEQ_FLAG_UNREGISTER: u64 = 1;
        t.lcall(
            "rseq(unregister)",
            libc::SYS_rseq,
            &[
                rseq.addr,
                rseq.len as u64,
                RSEQ_FLAG_UNREGISTER,
                rseq.sig as u64,
            ],
        )?;
    }
    Ok(())
}

/// Drops the restorer's mappings, all but the trampoline and the regions
/// inherited copy-on-write that the process keeps. Returns those regions
/// (with the runs they were filled with) and every range that stayed.
#[allow(clippy::type_complexity)]
fn unmap_restorer<'a>(
    t: &Target,
    p: &Process,
    tramp: (u64, u64),
    inherited: &BTreeMap<(u64, u64), &'a [PageRun]>,
) -> Result<(BTreeMap<(u64, u64), &'a [PageRun]>, Vec<(u64, u64)>), RestoreError> {
    let maps = std::fs::read_to_string(format!("/proc/{}/maps", t.pid)).map_err(|e| {
        RestoreError::Failed {
            pid: t.pid,
            what: format!("read maps: {e}"),
        }
    })?;
    let maps = stasis_proc::parse_maps(&maps).map_err(|e| RestoreError::Failed {
        pid: t.pid,
        what: e.to_string(),
    })?;
    // Regions inherited copy-on-write that this process has as a VMA of
    // its own stay. (The premap may have merged with a neighbour in maps;
    // munmap below cuts around it.)
    let kept: BTreeMap<(u64, u64), &[PageRun]> = inherited
        .iter()
        .filter(|((s, e), _)| {
            p.vmas
                .iter()
                .any(|v| v.start == *s && v.end == *e && super::cow::eligible(v))
        })
        .map(|(&k, &r)| (k, r))
        .collect();
    // Everything else goes, holes and all, in as few munmap calls as there
    // are gaps between what stays (each remote call costs ptrace stops).
    let mut keep: Vec<(u64, u64)> = kept.keys().copied().collect();
    keep.push(tramp);
    keep.sort();
    let top = maps
        .iter()
        .filter(|m| m.path != "[vsyscall]")
        .map(|m| m.end)
        .max()
        .unwrap_or(0);
    for (a, b) in super::cow::minus(0, top, &keep) {
        t.lcall("munmap", libc::SYS_munmap, &[a, b - a])?;
    }
    Ok((kept, keep))
}

/// Maps every VMA at its address (writable while its pages are filled),
/// the vDSO last. Returns the VMAs whose protection is set afterwards.
fn map_vmas<'p>(
    t: &Target,
    p: &'p Process,
    runs: &[PageRun],
    files: &BTreeMap<(String, bool), i32>,
    shmem: &BTreeMap<u64, i32>,
    kept: &BTreeMap<(u64, u64), &[PageRun]>,
) -> Result<Vec<&'p Vma>, RestoreError> {
    let mut fixups = Vec::new();
    let mut vdso = None;
    for v in &p.vmas {
        let kind = VmaKind::try_from(v.kind).unwrap_or(VmaKind::Anon);
        let shared = v.flags & libc::MAP_SHARED as u32 != 0;
        let keep = v.flags & (libc::MAP_SHARED | libc::MAP_PRIVATE | libc::MAP_GROWSDOWN) as u32;
        if kept.contains_key(&(v.start, v.end)) {
            if v.prot != (libc::PROT_READ | libc::PROT_WRITE) as u32 {
                fixups.push(v);
            }
            continue;
        }
        let mut prot = v.prot;
        if has_pages(v, runs)
            && (prot & libc::PROT_WRITE as u32 == 0 || prot & libc::PROT_READ as u32 == 0)
        {
            prot |= (libc::PROT_READ | libc::PROT_WRITE) as u32;
            fixups.push(v);
        }
        let (flags, fd, off) = match kind {
            VmaKind::Vsyscall => continue,
            VmaKind::SysvShm => {
                // shmat maps the whole segment at its first VMA; every
                // VMA then gets its own protection.
                crate::ipc::shm::attach(t, v)?;
                fixups.push(v);
                continue;
            }
            VmaKind::Vdso => {
                // ARCH_MAP_VDSO_64 takes the start of the whole block
                // ([vvar] comes first), not of the [vdso] text.
                vdso = Some(vdso.map_or(v.start, |s: u64| s.min(v.start)));
                continue;
            }
            // Shared anonymous memory and unlinked files: the object the
            // restorer made.
            VmaKind::Anon | VmaKind::File if v.shmem_id != 0 => {
                let fd = shmem.get(&v.shmem_id).ok_or_else(|| RestoreError::Failed {
                    pid: t.pid,
                    what: format!("no object {} for {:x}-{:x}", v.shmem_id, v.start, v.end),
                })?;
                (keep, *fd as u64, v.pgoff)
            }
            VmaKind::Anon => (keep | libc::MAP_ANONYMOUS as u32, u64::MAX, 0),
            // Mapped with its ring, after the switch (files::uring).
            VmaKind::IoUring => continue,
            VmaKind::File => {
                let w = shared && v.prot & libc::PROT_WRITE as u32 != 0;
                let fd = files
                    .get(&(v.name.clone(), w))
                    .ok_or_else(|| RestoreError::Failed {
                        pid: t.pid,
                        what: format!("no open file for mapping of {}", v.name),
                    })?;
                (keep, *fd as u64, v.pgoff)
            }
        };
        mmap_fixed(t, v, prot, flags, fd, off)?;
    }
    if let Some(at) = vdso {
        t.lcall(
            "arch_prctl(ARCH_MAP_VDSO_64)",
            libc::SYS_arch_prctl,
            &[ARCH_MAP_VDSO_64, at],
        )?;
    }
    Ok(fixups)
}

/// mmap(MAP_FIXED) of `v` with protection `prot`, from `fd` at `off`.
fn mmap_fixed(
    t: &Target,
    v: &Vma,
    prot: u32,
    flags: u32,
    fd: u64,
    off: u64,
) -> Result<(), RestoreError> {
    let len = v.end - v.start;
    tracing::debug!(
        "mmap {:x}-{:x} prot {prot:#x} flags {flags:#x} fd {fd} off {off:#x}",
        v.start,
        v.end
    );
    let got = t.lcall(
        "mmap",
        libc::SYS_mmap,
        &[
            v.start,
            len,
            prot as u64,
            (flags | libc::MAP_FIXED as u32) as u64,
            fd,
            off,
        ],
    )?;
    if got != v.start {
        return Err(RestoreError::Failed {
            pid: t.pid,
            what: format!("mapping {:x}-{:x} landed at {got:#x}", v.start, v.end),
        });
    }
    Ok(())
}

/// Pages, straight from the image file; in kept regions only those that
/// differ from the inherited ones.
fn restore_pages(
    t: &Target,
    runs: &[PageRun],
    pages_fd: i32,
    kept: &BTreeMap<(u64, u64), &[PageRun]>,
    keep: &[(u64, u64)],
) -> Result<(), RestoreError> {
    if kept.is_empty() {
        fill_pages(t, runs, pages_fd)?;
    } else {
        let mut fill = super::cow::outside(runs, keep);
        for (&(s, e), src) in kept {
            let f = super::cow::fixup(src, runs, s, e);
            for (a, b) in f.zero {
                t.lcall(
                    "madvise(MADV_DONTNEED)",
                    libc::SYS_madvise,
                    &[a, b - a, libc::MADV_DONTNEED as u64],
                )?;
            }
            fill.extend(f.fill);
        }
        fill.sort_by_key(|r| r.vaddr);
        fill_pages(t, &fill, pages_fd)?;
    }
    Ok(())
}

/// Final protections, advice and names.
fn finish_vmas(t: &Target, p: &Process, fixups: Vec<&Vma>) -> Result<(), RestoreError> {
    for v in fixups {
        t.lcall(
            "mprotect",
            libc::SYS_mprotect,
            &[v.start, v.end - v.start, v.prot as u64],
        )?;
    }
    for v in &p.vmas {
        if matches!(
            VmaKind::try_from(v.kind),
            Ok(VmaKind::Vdso | VmaKind::Vsyscall | VmaKind::IoUring)
        ) {
            continue;
        }
        apply_madvise(t, v)?;
        name_anon(t, v)?;
    }
    Ok(())
}

/// Names an anonymous VMA as PR_SET_VMA_ANON_NAME did (`[anon:NAME]`).
fn name_anon(t: &Target, v: &Vma) -> Result<(), RestoreError> {
    if let Some(name) = v
        .name
        .strip_prefix("[anon:")
        .and_then(|n| n.strip_suffix(']'))
    {
        let mut s = name.as_bytes().to_vec();
        s.push(0);
        let at = t.put(0, &s)?;
        t.lcall(
            "prctl(PR_SET_VMA_ANON_NAME)",
            libc::SYS_prctl,
            &[
                PR_SET_VMA,
                PR_SET_VMA_ANON_NAME,
                v.start,
                v.end - v.start,
                at,
            ],
        )?;
    }
    Ok(())
}

fn fill_pages(t: &Target, runs: &[PageRun], pages_fd: i32) -> Result<(), RestoreError> {
    let mut i = 0;
    while i < runs.len() {
        // A batch of runs that lie back to back in the file.
        let start = runs[i].offset;
        let mut end = start;
        let mut iov = Vec::new();
        // One read(2)-family call moves at most 2 GiB - 4 KiB: keep each
        // batch at or under 1 GiB.
        while i < runs.len()
            && iov.len() < IOV_BATCH
            && runs[i].offset == end
            && (iov.is_empty() || end - start + runs[i].nr_pages * super::PAGE <= MAX_BATCH)
        {
            let len = runs[i].nr_pages * super::PAGE;
            iov.push(runs[i].vaddr);
            iov.push(len);
            end += len;
            i += 1;
        }
        let at = t.put(IOV_OFF, &words(&iov))?;
        let n = t.lcall(
            "preadv",
            libc::SYS_preadv,
            &[pages_fd as u64, at, (iov.len() / 2) as u64, start, 0],
        )?;
        if n != end - start {
            return Err(RestoreError::Failed {
                pid: t.pid,
                what: format!(
                    "short read of pages.img at {start}: {n} of {} bytes",
                    end - start
                ),
            });
        }
    }
    Ok(())
}

fn apply_madvise(t: &Target, v: &Vma) -> Result<(), RestoreError> {
    for (bit, advice, strict) in [
        (img::MADV_BIT_DONTFORK, libc::MADV_DONTFORK, true),
        (img::MADV_BIT_WIPEONFORK, libc::MADV_WIPEONFORK, true),
        (img::MADV_BIT_DONTDUMP, libc::MADV_DONTDUMP, true),
        (img::MADV_BIT_HUGEPAGE, libc::MADV_HUGEPAGE, false),
        (img::MADV_BIT_NOHUGEPAGE, libc::MADV_NOHUGEPAGE, false),
        (img::MADV_BIT_MERGEABLE, libc::MADV_MERGEABLE, false),
        (img::MADV_BIT_SEQUENTIAL, libc::MADV_SEQUENTIAL, true),
        (img::MADV_BIT_RANDOM, libc::MADV_RANDOM, true),
    ] {
        if v.madv & bit == 0 {
            continue;
        }
        let r = t
            .thread(t.ns_pid)
            .syscall_raw(
                libc::SYS_madvise,
                &[v.start, v.end - v.start, advice as u64],
            )
            .map_err(|e| RestoreError::Sys {
                pid: t.pid,
                step: "madvise".into(),
                source: e,
            })?;
        if r < 0 && strict {
            return Err(RestoreError::Failed {
                pid: t.pid,
                what: format!(
                    "madvise({advice}) on {:x}-{:x} failed: errno {}",
                    v.start, v.end, -r
                ),
            });
        }
    }
    for g in v.guards.chunks_exact(2) {
        const MADV_GUARD_INSTALL: u64 = 102;
        t.lcall(
            "madvise(MADV_GUARD_INSTALL)",
            libc::SYS_madvise,
            &[g[0], g[1] - g[0], MADV_GUARD_INSTALL],
        )?;
    }
    Ok(())
}

/// PR_SET_MM_MAP with the image's mm fields, auxv and exe.
pub fn set_mm(t: &Target, p: &Process, exe_fd: i32) -> Result<(), RestoreError> {
    let mm = p.mm.as_ref().ok_or_else(|| RestoreError::Failed {
        pid: t.pid,
        what: "image has no mm fields".into(),
    })?;
    let auxv_at = t.put(1024, &mm.auxv)?;
    let mut b = words(&[
        mm.start_code,
        mm.end_code,
        mm.start_data,
        mm.end_data,
        mm.start_brk,
        mm.brk,
        mm.start_stack,
        mm.arg_start,
        mm.arg_end,
        mm.env_start,
        mm.env_end,
        auxv_at,
    ]);
    b.extend_from_slice(&(mm.auxv.len() as u32).to_ne_bytes());
    // The fork's exe is the restorer's. If that is already the image's
    // exe (restoring a stasis process, e.g. the demo), leave it: the
    // kernel refuses to replace an exe that is still mapped (EBUSY).
    let same_exe = match (
        nix::sys::stat::stat("/proc/self/exe"),
        nix::sys::stat::stat(p.exe_path.as_str()),
    ) {
        (Ok(a), Ok(b)) => a.st_dev == b.st_dev && a.st_ino == b.st_ino,
        _ => false,
    };
    let exe_fd = if same_exe { u32::MAX } else { exe_fd as u32 };
    b.extend_from_slice(&exe_fd.to_ne_bytes());
    let at = t.put(0, &b)?;
    t.lcall(
        "prctl(PR_SET_MM_MAP)",
        libc::SYS_prctl,
        &[PR_SET_MM, PR_SET_MM_MAP, at, b.len() as u64, 0],
    )?;
    Ok(())
}

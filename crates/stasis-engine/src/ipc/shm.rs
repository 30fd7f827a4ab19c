//! System V shared memory segments.
//!
//! **Dump**, in the tree's IPC namespace: every segment of
//! /proc/sysvipc/shm with IPC_STAT; its contents through a read-only
//! attachment of the dumping thread. Only pages that hold data are stored:
//! mincore(2) on the attachment tells which pages the segment has in memory
//! (whoever faulted them in), and pages of zeros are left out. When that
//! cannot be trusted (some of the segment is in swap, or mincore saw fewer
//! pages than the segment's `rss`), every page is read.
//!
//! A process's VMAs of a segment (`/SYSV%08x (deleted)` in maps, whose
//! inode number is the shmid) are kept as [`VmaKind::SysvShm`]. shmat(2)
//! always maps a whole segment, so the VMAs of one attachment must cover
//! it from offset 0 without a gap, as after mprotect(2) of a part; an
//! attachment partly unmapped is refused ([`check_attachments`]).
//!
//! **Restore**, in the new namespace, before the tree exists: each segment
//! is created with its id and key, filled from `pages.img`, given its owner
//! and mode back. A segment that had been removed (IPC_RMID, still
//! attached) is created first and removed at once, since a newer segment
//! may have its key by now; the restorer holds it attached (not across
//! fork: MADV_DONTFORK) until every process has attached it again. Each
//! process then attaches its segments at their addresses ([`attach`]),
//! read-only where the original attachment was, and gets each VMA's
//! protection back with mprotect.

use std::fs::File;
use std::os::fd::AsFd;

use stasis_image::{PageRun, PagesWriter, Process, SysvShm, Vma, VmaKind};
use stasis_sys::sysvipc::{self, IpcPerm, ShmAttach};

use super::common::{check_id, read_rows, rst_err, set_next_id, NEXT_ID};
use crate::error::{DumpError, RestoreError, SysCtx};
use crate::handle::Target;

/// `shm_perm.mode` bit of a segment removed while attached.
pub const SHM_DEST: u32 = 0o1000;
/// `shm_perm.mode` bit of a segment locked in memory (SHM_LOCK).
pub const SHM_LOCKED: u32 = 0o2000;
/// Bytes read from a segment at a time.
const BATCH: u64 = 8 << 20;
const PAGE: u64 = crate::mm::PAGE;

/// Dumps every segment of the caller's IPC namespace (the tree's).
/// `forced` is `kernel.shm_rmid_forced`.
pub fn dump(
    root: i32,
    procs: &[Process],
    pages: &mut PagesWriter,
    bytes: &mut u64,
    forced: bool,
) -> Result<Vec<SysvShm>, DumpError> {
    let rows = read_rows(root, "shm")?;
    let refuse = |what: String| DumpError::Refused { pid: root, what };
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let id = row.id;
        let st = sysvipc::shm_stat(id).dump_ctx(root, "shmctl(IPC_STAT)")?;
        let removed = st.perm.mode & SHM_DEST != 0;
        if forced && st.nattch == 0 {
            // Restore creates it in the restorer, which exits: with
            // shm_rmid_forced the kernel would then destroy it.
            return Err(refuse(format!(
                "has System V shared memory segment {id} attached nowhere in an IPC namespace with kernel.shm_rmid_forced=1; stasis cannot restore that"
            )));
        }
        let key = if removed {
            // The kernel forgot the key; the maps name keeps it.
            removed_key(procs, id)
        } else {
            st.perm.key
        };
        let runs = copy(root, id, st.size, &row, pages, bytes)?;
        out.push(SysvShm {
            id,
            key,
            mode: st.perm.mode,
            uid: st.perm.uid,
            gid: st.perm.gid,
            size: st.size,
            runs,
            removed,
        });
    }
    for p in procs.iter().filter(|p| !p.zombie) {
        check_attachments(&p.vmas, &out).map_err(|what| DumpError::Refused {
            pid: p.pid as i32,
            what,
        })?;
    }
    Ok(out)
}

/// The key of removed segment `id`, from the name of a VMA attaching it
/// (`/SYSV%08x`); 0 (IPC_PRIVATE) if none says.
fn removed_key(procs: &[Process], id: i32) -> i32 {
    procs
        .iter()
        .flat_map(|p| &p.vmas)
        .filter(|v| v.kind == VmaKind::SysvShm as i32 && v.sysv_shmid == id)
        .find_map(|v| u32::from_str_radix(v.name.strip_prefix("/SYSV")?, 16).ok())
        .map(|k| k as i32)
        .unwrap_or(0)
}

/// Copies the pages of segment `id` that hold data into `pages`.
fn copy(
    root: i32,
    id: i32,
    size: u64,
    row: &stasis_proc::SysvipcEntry,
    pages: &mut PagesWriter,
    bytes: &mut u64,
) -> Result<Vec<PageRun>, DumpError> {
    let att = ShmAttach::new(id, size, true).dump_ctx(root, "attach a segment to read it")?;
    let span = format!(
        "/proc/self/map_files/{:x}-{:x}",
        att.addr(),
        att.addr() + size.next_multiple_of(PAGE)
    );
    if nix::sys::statfs::statfs(span.as_str())
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::HUGETLBFS_MAGIC)
    {
        return Err(DumpError::Refused {
            pid: root,
            what: format!(
                "has System V shared memory segment {id} in huge pages (SHM_HUGETLB), which stasis cannot checkpoint yet"
            ),
        });
    }
    let resident = att.resident().dump_ctx(root, "mincore on a segment")?;
    let seen = resident.iter().filter(|r| **r).count() as u64 * PAGE;
    let every =
        row.field("swap").is_none_or(|s| s > 0) || row.field("rss").is_none_or(|rss| seen < rss);
    let wanted = |i: usize| every || resident[i];
    let mut runs = Vec::new();
    let mut buf = Vec::new();
    let npages = size.div_ceil(PAGE) as usize;
    let mut i = 0;
    while i < npages {
        if !wanted(i) {
            i += 1;
            continue;
        }
        let first = i;
        while i < npages && wanted(i) && ((i - first + 1) as u64) * PAGE <= BATCH {
            i += 1;
        }
        buf.resize((i - first) * PAGE as usize, 0);
        att.read(first as u64 * PAGE, &mut buf)
            .dump_ctx(root, "read a segment")?;
        // Pages of zeros read back as zeros from a new segment.
        let mut at = 0;
        let page_chunks: Vec<&[u8]> = buf.chunks(PAGE as usize).collect();
        for group in page_chunks.chunk_by(|a, b| is_zero(a) == is_zero(b)) {
            let len = group.len() * PAGE as usize;
            if !is_zero(group[0]) {
                let off = first as u64 * PAGE + at as u64;
                runs.push(pages.append(off, &buf[at..at + len])?);
                *bytes += len as u64;
            }
            at += len;
        }
    }
    Ok(runs)
}

fn is_zero(page: &[u8]) -> bool {
    page.iter().all(|b| *b == 0)
}

/// The VMAs of every attachment of a segment in `vmas` (sorted) cover it
/// from offset 0, back to back, as restore attaches it: one shmat(2) at
/// the first VMA's address.
pub fn check_attachments(vmas: &[Vma], segs: &[SysvShm]) -> Result<(), String> {
    // (segment id, address of offset 0, end of the segment's span, next
    // address expected)
    let mut open: Option<(i32, u64, u64, u64)> = None;
    let partial = |id: i32, at: u64| {
        format!(
            "maps System V shared memory segment {id} at {at:#x} only in part (partly unmapped?), which stasis cannot restore"
        )
    };
    for v in vmas {
        if v.kind != VmaKind::SysvShm as i32 {
            continue;
        }
        let id = v.sysv_shmid;
        let seg = segs
            .iter()
            .find(|s| s.id == id)
            .ok_or_else(|| format!("maps System V shared memory segment {id} at {:#x}, which its IPC namespace does not have", v.start))?;
        let span = seg.size.next_multiple_of(PAGE);
        match open {
            Some((oid, base, end, next)) if next < end => {
                if oid != id || v.start != next || v.pgoff != next - base {
                    return Err(partial(oid, base));
                }
            }
            _ if v.pgoff != 0 => return Err(partial(id, v.start)),
            _ => open = Some((id, v.start, v.start + span, v.start)),
        }
        if let Some(o) = open.as_mut() {
            o.3 = v.end;
            if o.3 > o.2 {
                return Err(partial(id, o.1));
            }
        }
    }
    match open {
        Some((id, base, end, next)) if next < end => Err(partial(id, base)),
        _ => Ok(()),
    }
}

/// Creates every segment with its id in the caller's (new) namespace and
/// fills it from `pages`. Returns the attachments that keep removed
/// segments alive.
pub fn create(segs: &[SysvShm], pages: &File) -> Result<Vec<ShmAttach>, RestoreError> {
    let mut held = Vec::new();
    let order = segs
        .iter()
        .filter(|s| s.removed)
        .chain(segs.iter().filter(|s| !s.removed));
    for s in order {
        let what = format!("System V shared memory segment {}", s.id);
        set_next_id(NEXT_ID[0], s.id)?;
        let flags = (s.mode & 0o777) as i32 | libc::IPC_CREAT | libc::IPC_EXCL;
        let id =
            sysvipc::shmget(s.key, s.size, flags).map_err(rst_err(format!("create {what}")))?;
        check_id("System V shared memory segment", s.id, id)?;
        let att = ShmAttach::new(id, s.size, false).map_err(rst_err(format!("attach {what}")))?;
        for r in &s.runs {
            att.pread(pages.as_fd(), r.vaddr, r.nr_pages * PAGE, r.offset)
                .map_err(rst_err(format!("fill {what}")))?;
        }
        let perm = IpcPerm {
            uid: s.uid,
            gid: s.gid,
            mode: s.mode,
            ..Default::default()
        };
        sysvipc::shm_set(id, &perm).map_err(rst_err(format!("set owner and mode of {what}")))?;
        if s.mode & SHM_LOCKED != 0 {
            sysvipc::shm_cmd(id, libc::SHM_LOCK).map_err(rst_err(format!("lock {what}")))?;
        }
        if s.removed {
            att.dont_fork().map_err(rst_err(format!("hold {what}")))?;
            sysvipc::shm_cmd(id, libc::IPC_RMID).map_err(rst_err(format!("remove {what}")))?;
            held.push(att);
        }
    }
    Ok(held)
}

/// Attaches the segment of SysV VMA `v` in the new process at its address,
/// if `v` is the first VMA of its attachment (offset 0; the others are
/// covered by it, see [`check_attachments`]). The caller then mprotects
/// every such VMA to its own protection.
pub fn attach(t: &Target, v: &Vma) -> Result<(), RestoreError> {
    if v.pgoff != 0 {
        return Ok(());
    }
    let mut flags = libc::SHM_REMAP as u32 | (v.flags & libc::SHM_RDONLY as u32);
    if v.prot & libc::PROT_EXEC as u32 != 0 {
        flags |= libc::SHM_EXEC as u32;
    }
    let got = t.lcall(
        "shmat",
        libc::SYS_shmat,
        &[v.sysv_shmid as u32 as u64, v.start, flags as u64],
    )?;
    if got != v.start {
        return Err(RestoreError::Failed {
            pid: t.pid,
            what: format!(
                "System V segment {} attached at {got:#x} instead of {:#x}",
                v.sysv_shmid, v.start
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(id: i32, pages: u64) -> SysvShm {
        SysvShm {
            id,
            size: pages * PAGE - 10,
            ..Default::default()
        }
    }

    fn vma(id: i32, start: u64, end: u64, pgoff: u64) -> Vma {
        Vma {
            start,
            end,
            pgoff,
            kind: VmaKind::SysvShm as i32,
            sysv_shmid: id,
            ..Default::default()
        }
    }

    #[test]
    fn attachments() {
        let segs = [seg(0, 3), seg(7, 1)];
        let ok = |v: &[Vma]| check_attachments(v, &segs);
        let anon = Vma {
            start: 0x9000,
            end: 0xa000,
            ..Default::default()
        };
        // Whole, split by mprotect, twice, next to other memory.
        ok(&[vma(0, 0x1000, 0x4000, 0)]).unwrap();
        ok(&[
            vma(0, 0x1000, 0x2000, 0),
            vma(0, 0x2000, 0x3000, PAGE),
            vma(0, 0x3000, 0x4000, 2 * PAGE),
            vma(7, 0x4000, 0x5000, 0),
            vma(0, 0x6000, 0x9000, 0),
            anon,
        ])
        .unwrap();
        // Partly unmapped: the end, the start, a hole in the middle.
        assert!(ok(&[vma(0, 0x1000, 0x3000, 0)]).is_err());
        assert!(ok(&[vma(0, 0x2000, 0x4000, PAGE)]).is_err());
        let e = ok(&[vma(0, 0x1000, 0x2000, 0), vma(0, 0x3000, 0x4000, 2 * PAGE)]).unwrap_err();
        assert!(e.contains("segment 0 at 0x1000 only in part"), "{e}");
        // Another segment before the first one is complete; too long.
        assert!(ok(&[vma(0, 0x1000, 0x2000, 0), vma(7, 0x2000, 0x3000, 0)]).is_err());
        assert!(ok(&[vma(7, 0x1000, 0x3000, 0)]).is_err());
        // A segment the namespace does not have.
        assert!(ok(&[vma(3, 0x1000, 0x2000, 0)])
            .unwrap_err()
            .contains("does not have"));
    }
}

//! Dump half of [`crate::mm`].

use std::fs::File;
use std::os::unix::fs::FileExt;

use stasis_image::{self as img, MmState, PageRun, PagesWriter, Vma, VmaKind};
use stasis_proc::{MapKind, PagemapEntry, SmapsEntry};
use stasis_sys::mem::{self, ProcMem};
use stasis_sys::RemoteAddr;

use super::dedup::PageDedup;
use super::PAGE;
use crate::error::{DumpError, SysCtx};
use crate::handle::Frozen;
use crate::procfs;
use crate::Progress;

/// Bytes read from the target per batch.
const BATCH: usize = 8 << 20;

/// Turns smaps into image VMAs, refusing what cannot be restored.
/// `own_ipc`: the tree has an IPC namespace of its own, whose System V
/// segments the dump takes along (see [`crate::ipc`]).
pub fn dump_vmas(pid: i32, smaps: &[SmapsEntry], own_ipc: bool) -> Result<Vec<Vma>, DumpError> {
    let mut out = Vec::with_capacity(smaps.len());
    for s in smaps {
        out.push(dump_vma(pid, s, own_ipc)?);
    }
    Ok(out)
}

/// One VMA, by what it maps: one arm per kind of mapping.
fn dump_vma(pid: i32, s: &SmapsEntry, own_ipc: bool) -> Result<Vma, DumpError> {
    let m = &s.map;
    let range = format!("{:x}-{:x}", m.start, m.end);
    let refuse = |why: String| DumpError::Refused {
        pid,
        what: format!("mapping {range} ({}) {why}", display_name(&m.path)),
    };
    let special = matches!(
        m.kind(),
        MapKind::Vdso | MapKind::Vvar | MapKind::VvarVclock | MapKind::Vsyscall
    );
    if let Some(why) = refused_flag(s).filter(|_| !special) {
        return Err(refuse(why.into()));
    }
    let mut vma = new_vma(s);
    match m.kind() {
        MapKind::Anonymous | MapKind::Heap | MapKind::Stack | MapKind::AnonNamed(_) => {
            if m.shared {
                return Err(refuse("is shared but has no backing object".into()));
            }
        }
        MapKind::AnonShmemNamed(_) => {
            let st = procfs::stat(pid, &format!("map_files/{range}"))?;
            vma.shmem_id = object_id(&st);
        }
        MapKind::Vdso | MapKind::Vvar | MapKind::VvarVclock => {
            vma.kind = VmaKind::Vdso as i32;
        }
        MapKind::Vsyscall => vma.kind = VmaKind::Vsyscall as i32,
        MapKind::File(path) => dump_file_vma(pid, s, path, &range, own_ipc, &mut vma, &refuse)?,
        MapKind::Other("anon_inode:[io_uring]") => {
            crate::files::uring::classify(&mut vma, pid, m.inode).map_err(refuse)?;
        }
        MapKind::Other(_) => {
            return Err(refuse("is a special mapping stasis does not know".into()));
        }
    }
    Ok(vma)
}

/// Why a VMA with one of the smaps flags stasis cannot handle is refused.
fn refused_flag(s: &SmapsEntry) -> Option<&'static str> {
    for (flag, why) in [
        (
            "io",
            "is a VM_IO device mapping, which stasis cannot checkpoint",
        ),
        ("pf", "is a raw PFN mapping, which stasis cannot checkpoint"),
        (
            "ht",
            "is hugetlbfs memory, which stasis cannot checkpoint yet",
        ),
        (
            "lo",
            "is mlock()ed, which stasis cannot restore yet; munlock it",
        ),
        (
            "sl",
            "is sealed with mseal(), which stasis cannot restore yet",
        ),
        ("ss", "is a shadow stack, which stasis cannot restore yet"),
    ] {
        if s.has_flag(flag) {
            return Some(why);
        }
    }
    None
}

/// The image record of a VMA: its range, protection and flags, as
/// anonymous memory until [`dump_vma`] says what it maps.
fn new_vma(s: &SmapsEntry) -> Vma {
    let m = &s.map;
    let mut prot = 0u32;
    if m.read {
        prot |= libc::PROT_READ as u32;
    }
    if m.write {
        prot |= libc::PROT_WRITE as u32;
    }
    if m.exec {
        prot |= libc::PROT_EXEC as u32;
    }
    let mut flags = if m.shared {
        libc::MAP_SHARED
    } else {
        libc::MAP_PRIVATE
    } as u32;
    if s.has_flag("gd") {
        flags |= libc::MAP_GROWSDOWN as u32;
    }
    Vma {
        start: m.start,
        end: m.end,
        prot,
        flags,
        kind: VmaKind::Anon as i32,
        name: m.path.clone(),
        pgoff: m.offset,
        file: None,
        madv: madv_bits(s),
        guards: Vec::new(),
        shmem_id: 0,
        io_uring_fd: 0,
        sysv_shmid: 0,
    }
}

/// A VMA of a file: shared anonymous memory, a System V segment, an
/// unlinked file (whose contents go into the image) or a file by path.
fn dump_file_vma(
    pid: i32,
    s: &SmapsEntry,
    path: &str,
    range: &str,
    own_ipc: bool,
    vma: &mut Vma,
    refuse: &dyn Fn(String) -> DumpError,
) -> Result<(), DumpError> {
    let m = &s.map;
    if m.is_shared_anon() {
        // MAP_SHARED|MAP_ANONYMOUS: one shmem object, which
        // other VMAs (other processes) may map too.
        vma.name = String::new();
        let st = procfs::stat(pid, &format!("map_files/{range}"))?;
        vma.shmem_id = object_id(&st);
    } else if is_sysv_shm(m) {
        if !own_ipc {
            return Err(refuse(
                "is System V shared memory of the IPC namespace stasis runs in, whose ids a restore could not get back; run the program in an IPC namespace of its own (e.g. `unshare --ipc`)".into(),
            ));
        }
        vma.kind = VmaKind::SysvShm as i32;
        vma.name = path.to_string();
        // The inode number of a segment's file is its shmid.
        vma.sysv_shmid = m.inode as i32;
        // Attached with SHM_RDONLY: it may never be writable.
        if !s.has_flag("mw") {
            vma.flags |= libc::SHM_RDONLY as u32;
        }
    } else if m.is_deleted() {
        // Unlinked but mapped (a POSIX semaphore, a temp file,
        // a memfd): its contents go into the image, once.
        let st = procfs::stat(pid, &format!("map_files/{range}"))?;
        if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            return Err(refuse(
                "maps a deleted special file, which stasis cannot checkpoint".into(),
            ));
        }
        vma.kind = VmaKind::File as i32;
        vma.name = path.to_string();
        vma.file = Some(procfs::file_id(&st));
        vma.shmem_id = object_id(&st);
    } else {
        let st = procfs::stat(pid, &format!("map_files/{range}"))?;
        if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            return Err(refuse(
                "maps a device or special file, which stasis cannot checkpoint".into(),
            ));
        }
        vma.kind = VmaKind::File as i32;
        vma.name = path.to_string();
        vma.file = Some(procfs::file_id(&st));
    }
    Ok(())
}

/// A System V shared memory segment: `/SYSV%08x (deleted)` (the key in
/// hex), shared, with the shmid as inode number.
fn is_sysv_shm(m: &stasis_proc::MapsEntry) -> bool {
    m.shared
        && m.is_deleted()
        && m.file_path()
            .and_then(|p| p.strip_prefix("/SYSV"))
            .is_some_and(|k| k.len() == 8 && k.bytes().all(|b| b.is_ascii_hexdigit()))
        && m.inode <= i32::MAX as u64
}

/// The image id of a memory object (shmem or unlinked file): its device
/// and inode, folded into one non-zero number.
use crate::files::unlinked::object_id;

fn display_name(path: &str) -> &str {
    if path.is_empty() {
        "anonymous"
    } else {
        path
    }
}

fn madv_bits(s: &SmapsEntry) -> u32 {
    let mut bits = 0;
    for (code, bit) in [
        ("dc", img::MADV_BIT_DONTFORK),
        ("wf", img::MADV_BIT_WIPEONFORK),
        ("dd", img::MADV_BIT_DONTDUMP),
        ("hg", img::MADV_BIT_HUGEPAGE),
        ("nh", img::MADV_BIT_NOHUGEPAGE),
        ("mg", img::MADV_BIT_MERGEABLE),
        ("sr", img::MADV_BIT_SEQUENTIAL),
        ("rr", img::MADV_BIT_RANDOM),
    ] {
        if s.has_flag(code) {
            bits |= bit;
        }
    }
    bits
}

/// The mm fields PR_SET_MM_MAP restores.
pub fn dump_mm(pid: i32, frozen: &Frozen) -> Result<MmState, DumpError> {
    let st = procfs::proc_stat(pid)?;
    let brk = frozen.call(pid, "brk", libc::SYS_brk, &[0])?;
    Ok(MmState {
        start_code: st.start_code,
        end_code: st.end_code,
        start_data: st.start_data,
        end_data: st.end_data,
        start_brk: st.start_brk,
        brk,
        start_stack: st.start_stack,
        arg_start: st.arg_start,
        arg_end: st.arg_end,
        env_start: st.env_start,
        env_end: st.env_end,
        auxv: procfs::read_bytes(pid, "auxv")?,
    })
}

/// Finds a `syscall` instruction (0f 05) in the target's vDSO, or in one
/// of its executable mappings, for the remote-syscall engine.
pub fn find_syscall_insn(pid: i32, vmas: &[Vma]) -> Result<(RemoteAddr, u64), DumpError> {
    let mut vdso_hash = 0;
    let mut candidates: Vec<&Vma> = vmas.iter().filter(|v| v.name == "[vdso]").collect();
    candidates.extend(vmas.iter().filter(|v| {
        v.prot & libc::PROT_EXEC as u32 != 0 && v.name != "[vdso]" && v.name != "[vsyscall]"
    }));
    for v in candidates {
        let len = (v.end - v.start).min(1 << 20) as usize;
        let mut buf = vec![0u8; len];
        if mem::read(pid, RemoteAddr(v.start), &mut buf).is_err() {
            continue;
        }
        if v.name == "[vdso]" {
            vdso_hash = xxhash_rust::xxh3::xxh3_64(&buf);
        }
        if let Some(i) = buf.windows(2).position(|w| w == [0x0f, 0x05]) {
            return Ok((RemoteAddr(v.start + i as u64), vdso_hash));
        }
    }
    Err(DumpError::Refused {
        pid,
        what: "has no syscall instruction stasis can use (no vDSO, no readable code)".into(),
    })
}

/// A range of target memory to copy into the image.
#[derive(Clone, Copy)]
struct Extent {
    vaddr: u64,
    len: u64,
    via: Via,
}

/// How an [`Extent`] is read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Via {
    /// process_vm_readv: the fast way, for pages mapped only here in a
    /// VMA with read access.
    VmReadv,
    /// `/proc/PID/mem` ([`ProcMem`]). For pages not known to be mapped
    /// only here (COW-shared with another process, or swapped), whose
    /// sharing process_vm_readv would break; and for pages of a VMA
    /// without read access (PROT_NONE or execute-only after mprotect),
    /// which process_vm_readv cannot read but `/proc/PID/mem` can
    /// (FOLL_FORCE).
    ProcMem,
}

/// Dumps every page that restore needs. Returns the runs and bytes written.
/// Shared anonymous objects not yet in `shmem` are dumped into it once.
pub fn dump_pages(
    pid: i32,
    vmas: &mut [Vma],
    pages: &mut PagesWriter,
    shmem: &mut Vec<img::PageMap>,
    dedup: &mut PageDedup,
    progress: &dyn Progress,
) -> Result<(Vec<PageRun>, u64), DumpError> {
    let zero = stasis_sys::util::zero_pfn();
    let pagemap_path = format!("/proc/{pid}/pagemap");
    let pagemap =
        File::open(&pagemap_path).map_err(|e| procfs::io_err(pid, pagemap_path.clone(), e))?;
    let mut private = Vec::new();
    let mut shared = Vec::new();
    let mut scan = Scan {
        dedup,
        dups: Vec::new(),
        new: Vec::new(),
    };
    for v in vmas.iter_mut() {
        let kind = VmaKind::try_from(v.kind).unwrap_or(VmaKind::Anon);
        let is_shared = v.flags & libc::MAP_SHARED as u32 != 0;
        match kind {
            // Each shmem object once, however many VMAs map it.
            VmaKind::Anon if is_shared && !shmem.iter().any(|m| m.shmem_id == v.shmem_id) => {
                shmem.push(img::PageMap {
                    shmem_id: v.shmem_id,
                    ..Default::default()
                });
                shared.push(v.clone());
            }
            VmaKind::Anon if is_shared => {}
            VmaKind::Anon => scan_pagemap(pid, &pagemap, v, false, zero, &mut private, &mut scan)?,
            VmaKind::File => {
                // An unlinked file: its contents, once.
                if v.shmem_id != 0 && !shmem.iter().any(|m| m.shmem_id == v.shmem_id) {
                    let range = format!("map_files/{:x}-{:x}", v.start, v.end);
                    let m = crate::files::unlinked::describe(pid, &range, &v.name)?;
                    if crate::files::unlinked::needs_contents(&m) {
                        shared.push(v.clone());
                    }
                    shmem.push(m);
                }
                if !is_shared {
                    scan_pagemap(pid, &pagemap, v, true, zero, &mut private, &mut scan)?
                }
            }
            _ => {}
        }
    }
    let total: u64 = private.iter().map(|e| e.len).sum();
    progress.phase("memory", total);
    let mut runs = Vec::new();
    let mut bytes = 0;
    copy_private(pid, &private, pages, progress, &mut runs, &mut bytes)?;
    runs.sort_by_key(|r| r.vaddr);
    scan.dedup.register(&scan.new, &runs);
    runs.extend(scan.dedup.dup_runs(pid, &scan.dups)?);
    for v in &shared {
        let m = shmem
            .iter_mut()
            .find(|m| m.shmem_id == v.shmem_id)
            .expect("added above");
        let path = format!("/proc/{pid}/map_files/{:x}-{:x}", v.start, v.end);
        copy_file(pid, &path, pages, m, &mut bytes)?;
    }
    runs.sort_by_key(|r| r.vaddr);
    Ok((runs, bytes))
}

/// Pages found by [`scan_pagemap`] besides the extents to copy.
struct Scan<'a> {
    dedup: &'a mut PageDedup,
    /// (vaddr, offset) of pages already stored for another process.
    dups: Vec<(u64, u64)>,
    /// (vaddr, pfn) of pages to copy, to register once written.
    new: Vec<(u64, u64)>,
}

/// Adds the extents of `v` whose pages are private (anonymous or COW).
fn scan_pagemap(
    pid: i32,
    pagemap: &File,
    v: &mut Vma,
    file_backed: bool,
    zero: Option<u64>,
    out: &mut Vec<Extent>,
    scan: &mut Scan<'_>,
) -> Result<(), DumpError> {
    const CHUNK: u64 = 65536;
    let readable = v.prot & libc::PROT_READ as u32 != 0;
    let npages = (v.end - v.start) / PAGE;
    let mut buf = vec![0u8; (CHUNK * 8) as usize];
    let mut i = 0;
    while i < npages {
        let n = (npages - i).min(CHUNK);
        let b = &mut buf[..(n * 8) as usize];
        pagemap
            .read_exact_at(b, (v.start / PAGE + i) * 8)
            .map_err(|e| procfs::io_err(pid, format!("/proc/{pid}/pagemap"), e))?;
        for (j, word) in b.chunks_exact(8).enumerate() {
            let e = PagemapEntry(u64::from_le_bytes(word.try_into().expect("8 bytes")));
            let addr = v.start + (i + j as u64) * PAGE;
            if e.guard() {
                // MADV_GUARD_INSTALL region (it also reads as swapped).
                match v.guards.last_mut() {
                    Some(end) if *end == addr => *end += PAGE,
                    _ => v.guards.extend([addr, addr + PAGE]),
                }
                continue;
            }
            let wanted = if e.swapped() {
                true
            } else if e.present() {
                {
                    // Anonymous, but not the shared zero page (a read of
                    // untouched memory): that stays untouched.
                    let zero_page = zero.is_some() && Some(e.pfn()) == zero && !file_backed;
                    !e.file_or_shared() && !zero_page
                }
            } else {
                false
            };
            if wanted && e.present() && e.pfn() != 0 {
                if let Some(off) = scan.dedup.offset_of(e.pfn()) {
                    scan.dups.push((addr, off));
                    continue;
                }
                scan.new.push((addr, e.pfn()));
            }
            if wanted {
                let via = if readable && e.present() && e.exclusive() {
                    Via::VmReadv
                } else {
                    Via::ProcMem
                };
                match out.last_mut() {
                    Some(last) if last.vaddr + last.len == addr && last.via == via => {
                        last.len += PAGE
                    }
                    _ => out.push(Extent {
                        vaddr: addr,
                        len: PAGE,
                        via,
                    }),
                }
            }
        }
        i += n;
    }
    Ok(())
}

/// Copies private extents with large process_vm_readv batches. A second
/// thread reads the next batch while this one writes the previous.
fn copy_private(
    pid: i32,
    extents: &[Extent],
    pages: &mut PagesWriter,
    progress: &dyn Progress,
    runs: &mut Vec<PageRun>,
    bytes: &mut u64,
) -> Result<(), DumpError> {
    // Split extents into batches of at most BATCH bytes.
    let mut batches: Vec<Vec<Extent>> = Vec::new();
    let mut cur: Vec<Extent> = Vec::new();
    let mut cur_len = 0u64;
    for e in extents {
        let mut e = *e;
        while e.len > 0 {
            let room = BATCH as u64 - cur_len;
            let take = e.len.min(room);
            cur.push(Extent {
                vaddr: e.vaddr,
                len: take,
                via: e.via,
            });
            cur_len += take;
            e.vaddr += take;
            e.len -= take;
            if cur_len == BATCH as u64 {
                batches.push(std::mem::take(&mut cur));
                cur_len = 0;
            }
        }
    }
    if !cur.is_empty() {
        batches.push(cur);
    }
    let (tx, rx) = std::sync::mpsc::sync_channel::<Result<(Vec<Extent>, Vec<u8>), DumpError>>(1);
    let (ret_tx, ret_rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let mut proc_mem = None;
    std::thread::scope(|s| {
        s.spawn(move || {
            for b in batches {
                let len: u64 = b.iter().map(|e| e.len).sum();
                let mut buf = ret_rx.try_recv().unwrap_or_default();
                buf.resize(len as usize, 0);
                let r = read_batch(pid, &b, &mut buf, &mut proc_mem).map(|_| (b, buf));
                let failed = r.is_err();
                if tx.send(r).is_err() || failed {
                    return;
                }
            }
        });
        for msg in rx {
            let (b, buf) = msg?;
            let mut off = 0usize;
            for e in &b {
                let data = &buf[off..off + e.len as usize];
                runs.push(pages.append(e.vaddr, data)?);
                off += e.len as usize;
            }
            *bytes += off as u64;
            progress.advance(off as u64);
            let _ = ret_tx.send(buf);
        }
        Ok(())
    })
}

/// Reads the extents of one batch back to back into `buf`: runs of
/// [`Via::VmReadv`] extents with one process_vm_readv, the others through
/// `/proc/PID/mem`.
fn read_batch(
    pid: i32,
    batch: &[Extent],
    buf: &mut [u8],
    proc_mem: &mut Option<ProcMem>,
) -> Result<(), DumpError> {
    let mut off = 0usize;
    for group in batch.chunk_by(|a, b| a.via == b.via) {
        let len: usize = group.iter().map(|e| e.len as usize).sum();
        let out = &mut buf[off..off + len];
        match group[0].via {
            Via::ProcMem => read_proc_mem(pid, group, out, proc_mem)?,
            Via::VmReadv => read_vm_readv(pid, group, out, proc_mem)?,
        }
        off += len;
    }
    Ok(())
}

/// Reads `group` through `/proc/PID/mem` (opened on first use).
fn read_proc_mem(
    pid: i32,
    group: &[Extent],
    out: &mut [u8],
    proc_mem: &mut Option<ProcMem>,
) -> Result<(), DumpError> {
    let m = match proc_mem {
        Some(m) => m,
        None => proc_mem.insert(ProcMem::open(pid).dump_ctx(pid, "open memory")?),
    };
    let mut at = 0usize;
    for e in group {
        m.read(RemoteAddr(e.vaddr), &mut out[at..at + e.len as usize])
            .dump_ctx(pid, "read memory through /proc/PID/mem")?;
        at += e.len as usize;
    }
    Ok(())
}

/// Reads `group` with process_vm_readv. A page it cannot read after all
/// (the VMA flags said readable) ends that call: the rest of its extent
/// is read through `/proc/PID/mem`, which can read any page the process
/// has, and process_vm_readv goes on with the next extent.
fn read_vm_readv(
    pid: i32,
    group: &[Extent],
    out: &mut [u8],
    proc_mem: &mut Option<ProcMem>,
) -> Result<(), DumpError> {
    let ranges: Vec<(RemoteAddr, usize)> = group
        .iter()
        .map(|e| (RemoteAddr(e.vaddr), e.len as usize))
        .collect();
    // Start of each extent in `out`.
    let starts: Vec<usize> = group
        .iter()
        .scan(0usize, |at, e| {
            let s = *at;
            *at += e.len as usize;
            Some(s)
        })
        .collect();
    let mut i = 0; // first extent not fully read
    let mut done = 0; // bytes of `out` read
    while i < group.len() {
        let n = mem::read_ranges_partial(pid, &ranges[i..], &mut out[done..])
            .dump_ctx(pid, "read memory")?;
        done += n;
        if done == out.len() {
            break;
        }
        // Extent holding the byte that could not be read.
        i = starts.partition_point(|&s| s <= done) - 1;
        let end = starts[i] + group[i].len as usize;
        let rest = Extent {
            vaddr: group[i].vaddr + (done - starts[i]) as u64,
            len: (end - done) as u64,
            via: Via::ProcMem,
        };
        tracing::debug!(
            pid,
            addr = rest.vaddr,
            "process_vm_readv cannot read this page; reading through /proc/PID/mem"
        );
        read_proc_mem(pid, &[rest], &mut out[done..end], proc_mem)?;
        done = end;
        i += 1;
    }
    Ok(())
}

/// Copies the populated parts of a file object (the shmem object behind a
/// shared anonymous mapping, an unlinked file, a memfd) through `path`
/// (/proc/PID/map_files/..., /proc/PID/fd/N), which reads all of it, also
/// parts no VMA maps, without faulting holes into it.
pub(crate) fn copy_file(
    pid: i32,
    path: &str,
    pages: &mut PagesWriter,
    obj: &mut img::PageMap,
    bytes: &mut u64,
) -> Result<(), DumpError> {
    use std::os::fd::AsFd;
    let f = File::open(path).map_err(|e| procfs::io_err(pid, path.to_string(), e))?;
    let exact = f
        .metadata()
        .map_err(|e| procfs::io_err(pid, path.to_string(), e))?
        .len();
    obj.shmem_size = exact;
    let size = exact.next_multiple_of(PAGE);
    let mut off = 0;
    let mut buf = Vec::new();
    while off < size {
        let Some(data) = stasis_sys::util::seek_data(f.as_fd(), off, false) else {
            break; // no more data
        };
        if data >= size {
            break;
        }
        // Whole pages: a file's data may end mid-page.
        let data = data / PAGE * PAGE;
        let hole = stasis_sys::util::seek_data(f.as_fd(), data, true)
            .unwrap_or(size)
            .next_multiple_of(PAGE)
            .min(size);
        let mut pos = data;
        while pos < hole {
            let n = (hole - pos).min(BATCH as u64);
            buf.clear();
            buf.resize(n as usize, 0);
            // A file's last page may be partly past its end: zeros there.
            let want = (exact.saturating_sub(pos)).min(n) as usize;
            f.read_exact_at(&mut buf[..want], pos)
                .map_err(|e| procfs::io_err(pid, path.to_string(), e))?;
            obj.runs.push(pages.append(pos, &buf)?);
            *bytes += n;
            pos += n;
        }
        off = hole;
    }
    Ok(())
}

//! Consistency checks on a decoded [`Image`], run by
//! [`decode_core`](crate::decode_core) after framing and by
//! [`write_core`](crate::write_core) before writing.
//!
//! Restore may rely on these invariants without checking them again:
//!
//! * the inventory has this [`FORMAT_MAJOR`] and [`PAGE_SIZE`];
//! * pids are unique, tids are unique across the image, every live process
//!   has at least one thread and its thread-group leader (tid == pid) comes
//!   first, and the inventory's `root_pid` is one of the processes; every
//!   other process's parent is in the image, and the root is not a zombie;
//! * each process's VMAs are page-aligned, non-empty, sorted and
//!   non-overlapping;
//! * each process's fd numbers are unique and non-negative, and every pipe
//!   fd names a [`Pipe`](crate::Pipe) record; pipe inodes are unique;
//! * every VMA with a `shmem_id` has the [`PageMap`](crate::PageMap) of
//!   that object, and lies within its size;
//! * every [`PageMap`](crate::PageMap) names a process, at most one per pid,
//!   or a shmem object (pid 0), at most one per object;
//!   its runs are non-empty, page-aligned, sorted by address,
//!   non-overlapping, and lie in `pages.img` after the header page and
//!   within [`Inventory::pages_file_size`](crate::Inventory::pages_file_size);
//! * the IPC namespace, if any (see [`crate::ipc`]): object ids are
//!   non-negative and unique per kind, keys (but `IPC_PRIVATE` and those of
//!   removed segments) unique per kind, segments non-empty with their runs
//!   in `pages.img` and within the segment, semaphore sets non-empty,
//!   message types positive, sysctls among [`IPC_SYSCTLS`](crate::IPC_SYSCTLS)
//!   and not repeated; every `SysvShm` VMA names a segment of it and lies
//!   within that segment;
//! * every record re-encodes within [`MAX_RECORD_LEN`], so
//!   [`encode_core`](crate::encode_core) of a valid image always decodes.
//!
//! All checks are O(n log n) or better in the image size: a hostile image
//! cannot make validation slow.

use std::collections::HashSet;

use prost::Message;

use crate::framing::{RecordKind, MAX_RECORD_LEN};
use crate::{DecodeError, FdKind, Image, PageRun, Process, FORMAT_MAJOR, PAGE_SIZE};

/// What makes a decoded image inconsistent. Shown after `core.img: `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidImage {
    /// The inventory names another major version.
    #[error("image format version {found}, this stasis reads version {ours}", ours = FORMAT_MAJOR)]
    FormatVersion {
        /// `Inventory::format_major`.
        found: u32,
    },
    /// The image was dumped with another page size.
    #[error("image was dumped with page size {found}, this stasis uses {ours}", ours = PAGE_SIZE)]
    PageSize {
        /// `Inventory::page_size`.
        found: u32,
    },
    /// The inventory names a pages file other than the two slots: never
    /// written by stasis, and it could name a path outside the directory.
    #[error("the pages file is named {name:?}, not pages.img or pages.alt.img")]
    PagesFile {
        /// `Inventory::pages_file`.
        name: String,
    },
    /// A record would not fit the framing.
    #[error("{kind} record {index} encodes to {len} bytes, more than the limit of {max}", max = MAX_RECORD_LEN)]
    RecordTooLarge {
        /// Its kind.
        kind: RecordKind,
        /// 0-based index among records of that kind.
        index: usize,
        /// Its encoded length.
        len: usize,
    },
    /// Two processes share a pid.
    #[error("two processes have pid {pid}")]
    DuplicatePid {
        /// The pid.
        pid: u32,
    },
    /// The inventory's root pid is not a process of the image.
    #[error("the root pid {pid} is not among the image's processes")]
    RootNotAProcess {
        /// `Inventory::root_pid`.
        pid: u32,
    },
    /// A process without threads.
    #[error("process {pid} has no threads")]
    NoThreads {
        /// The pid.
        pid: u32,
    },
    /// The first thread is not the thread-group leader.
    #[error("process {pid}: the first thread is {tid}, expected the thread-group leader {pid}")]
    LeaderNotFirst {
        /// The pid.
        pid: u32,
        /// The first thread's tid.
        tid: u32,
    },
    /// A tid appears twice in the image.
    #[error("process {pid}: tid {tid} appears twice in the image")]
    DuplicateTid {
        /// The process of the second occurrence.
        pid: u32,
        /// The tid.
        tid: u32,
    },
    /// A VMA that is empty or not page-aligned.
    #[error("process {pid}: VMA {start:#x}..{end:#x} is empty or not page-aligned")]
    BadVma {
        /// The pid.
        pid: u32,
        /// `Vma::start`.
        start: u64,
        /// `Vma::end`.
        end: u64,
    },
    /// A VMA that starts before the previous one ends.
    #[error("process {pid}: VMA {start:#x}..{end:#x} starts before the VMA before it ends ({prev_end:#x}): VMAs must be sorted and not overlap")]
    VmaOrder {
        /// The pid.
        pid: u32,
        /// `Vma::start`.
        start: u64,
        /// `Vma::end`.
        end: u64,
        /// End of the VMA before it.
        prev_end: u64,
    },
    /// An fd whose kind-specific state is out of range.
    #[error("process {pid}: fd {fd}: {why}")]
    BadFdState {
        /// The process.
        pid: u32,
        /// The fd number.
        fd: i32,
        /// What is wrong.
        why: &'static str,
    },
    /// A negative or repeated fd number.
    #[error("process {pid}: fd {fd} is negative or appears twice")]
    BadFd {
        /// The pid.
        pid: u32,
        /// The fd number.
        fd: i32,
    },
    /// A pipe fd whose pipe has no record.
    #[error("process {pid}: fd {fd} is a pipe end, but no Pipe record has inode {ino}")]
    MissingPipe {
        /// The pid.
        pid: u32,
        /// The fd number.
        fd: i32,
        /// `Fd::pipe_ino`.
        ino: u64,
    },
    /// Two Pipe records share an inode.
    #[error("two Pipe records have inode {ino}")]
    DuplicatePipe {
        /// The inode.
        ino: u64,
    },
    /// A process whose parent is not in the image (and is not the root).
    #[error("process {pid}: its parent {ppid} is not among the image's processes")]
    ParentNotInImage {
        /// The pid.
        pid: u32,
        /// Its `ppid`.
        ppid: u32,
    },
    /// The root process is a zombie.
    #[error("the root process {pid} is a zombie")]
    ZombieRoot {
        /// The pid.
        pid: u32,
    },
    /// A shared-memory VMA whose object has no PageMap, or lies outside it.
    #[error("process {pid}: VMA at {start:#x} maps shmem object {id}, which the image does not hold or is smaller than the mapping")]
    MissingShmem {
        /// The pid.
        pid: u32,
        /// `Vma::start`.
        start: u64,
        /// `Vma::shmem_id`.
        id: u64,
    },
    /// An unlinked-file fd or executable whose object has no PageMap.
    #[error("process {pid}: {what} is the unlinked file {id}, which the image does not hold")]
    MissingObject {
        /// The process.
        pid: u32,
        /// "fd N" or "its executable".
        what: String,
        /// `Fd::object_id` or `Process::exe_object`.
        id: u64,
    },
    /// A shmem PageMap with a pid, or a repeated shmem id.
    #[error("a PageMap for shmem object {id} is repeated or names pid {pid}")]
    BadShmemPageMap {
        /// `PageMap::shmem_id`.
        id: u64,
        /// `PageMap::pid`.
        pid: u32,
    },
    /// A PageMap for a pid that is not a process of the image.
    #[error("a PageMap names pid {pid}, which is not among the image's processes")]
    PageMapWithoutProcess {
        /// `PageMap::pid`.
        pid: u32,
    },
    /// Two PageMaps for one pid.
    #[error("two PageMaps for pid {pid}")]
    DuplicatePageMap {
        /// The pid.
        pid: u32,
    },
    /// A run that is empty, misaligned, overflows, or lies outside
    /// `pages.img`'s data area.
    #[error("pid {pid}: page run at {vaddr:#x} ({nr_pages} pages at offset {offset}) is empty, not page-aligned, or outside pages.img (data from {ps} to {pages_size})", ps = PAGE_SIZE)]
    BadRun {
        /// The pid.
        pid: u32,
        /// `PageRun::vaddr`.
        vaddr: u64,
        /// `PageRun::nr_pages`.
        nr_pages: u64,
        /// `PageRun::offset`.
        offset: u64,
        /// `Inventory::pages_file_size`.
        pages_size: u64,
    },
    /// A System V object restore could not recreate as it is.
    #[error("IPC namespace: {what} {id}: {why}")]
    BadIpcObject {
        /// "shared memory segment", "semaphore set" or "message queue".
        what: &'static str,
        /// Its id.
        id: i32,
        /// What is wrong.
        why: String,
    },
    /// A sysctl an image may not carry, or one repeated or without value.
    #[error("IPC namespace: sysctl {name:?} is unknown, repeated or has no value")]
    BadIpcSysctl {
        /// `IpcSysctl::name`.
        name: String,
    },
    /// A System V shared memory VMA whose segment the image does not hold,
    /// or that reaches past the segment's end.
    #[error("process {pid}: VMA at {start:#x} attaches System V shared memory segment {id}, which the image does not hold or is smaller than the mapping")]
    MissingSysvShm {
        /// The pid.
        pid: u32,
        /// `Vma::start`.
        start: u64,
        /// `Vma::sysv_shmid`.
        id: i32,
    },
    /// A run that starts before the previous one ends.
    #[error("pid {pid}: page run at {vaddr:#x} starts before the run before it ends ({prev_end:#x}): runs must be sorted and not overlap")]
    RunOrder {
        /// The pid.
        pid: u32,
        /// `PageRun::vaddr`.
        vaddr: u64,
        /// End of the run before it.
        prev_end: u64,
    },
}

/// Checks that a decoded image is consistent; see the module doc for the
/// list. Every error is a [`DecodeError::Invalid`].
pub fn validate(image: &Image) -> Result<(), DecodeError> {
    validate_inner(image).map_err(DecodeError::Invalid)
}

fn validate_inner(image: &Image) -> Result<(), InvalidImage> {
    let inv = &image.inventory;
    if inv.format_major != FORMAT_MAJOR {
        return Err(InvalidImage::FormatVersion {
            found: inv.format_major,
        });
    }
    if u64::from(inv.page_size) != PAGE_SIZE {
        return Err(InvalidImage::PageSize {
            found: inv.page_size,
        });
    }
    if !["", crate::PAGES_FILE, crate::PAGES_ALT_FILE].contains(&inv.pages_file.as_str()) {
        return Err(InvalidImage::PagesFile {
            name: inv.pages_file.clone(),
        });
    }
    check_sizes(image)?;

    let mut pids = HashSet::with_capacity(image.processes.len());
    for p in &image.processes {
        if !pids.insert(p.pid) {
            return Err(InvalidImage::DuplicatePid { pid: p.pid });
        }
    }
    if !image.processes.is_empty() && !pids.contains(&inv.root_pid) {
        return Err(InvalidImage::RootNotAProcess { pid: inv.root_pid });
    }

    let mut pipes = HashSet::with_capacity(image.pipes.len());
    for pipe in &image.pipes {
        if !pipes.insert(pipe.ino) {
            return Err(InvalidImage::DuplicatePipe { ino: pipe.ino });
        }
    }

    let mut shmem = std::collections::HashMap::new();
    for m in &image.pagemaps {
        if m.shmem_id != 0 && (m.pid != 0 || shmem.insert(m.shmem_id, m.shmem_size).is_some()) {
            return Err(InvalidImage::BadShmemPageMap {
                id: m.shmem_id,
                pid: m.pid,
            });
        }
    }

    let sysv_shm = match &inv.ipc {
        Some(ns) => check_ipc(ns, inv.pages_file_size)?,
        None => std::collections::HashMap::new(),
    };

    let mut tids = HashSet::new();
    for p in &image.processes {
        if p.pid != inv.root_pid && !pids.contains(&p.ppid) {
            return Err(InvalidImage::ParentNotInImage {
                pid: p.pid,
                ppid: p.ppid,
            });
        }
        if p.zombie {
            if p.pid == inv.root_pid {
                return Err(InvalidImage::ZombieRoot { pid: p.pid });
            }
            continue;
        }
        check_threads(p, &mut tids)?;
        check_vmas(p, &shmem)?;
        check_sysv_vmas(p, &sysv_shm)?;
        check_fds(p, &pipes, &shmem)?;
    }

    let mut mapped = HashSet::with_capacity(image.pagemaps.len());
    for m in &image.pagemaps {
        if m.shmem_id != 0 {
            check_runs(0, &m.runs, inv.pages_file_size)?;
            if let Some(last) = m.runs.last() {
                if last.vaddr + last.nr_pages * PAGE_SIZE > m.shmem_size.next_multiple_of(PAGE_SIZE)
                {
                    return Err(InvalidImage::BadShmemPageMap {
                        id: m.shmem_id,
                        pid: m.pid,
                    });
                }
            }
            continue;
        }
        if !pids.contains(&m.pid) {
            return Err(InvalidImage::PageMapWithoutProcess { pid: m.pid });
        }
        if !mapped.insert(m.pid) {
            return Err(InvalidImage::DuplicatePageMap { pid: m.pid });
        }
        check_runs(m.pid, &m.runs, inv.pages_file_size)?;
    }
    Ok(())
}

fn check_sizes(image: &Image) -> Result<(), InvalidImage> {
    fn check(kind: RecordKind, index: usize, len: usize) -> Result<(), InvalidImage> {
        if len > MAX_RECORD_LEN as usize {
            return Err(InvalidImage::RecordTooLarge { kind, index, len });
        }
        Ok(())
    }
    check(RecordKind::Inventory, 0, image.inventory.encoded_len())?;
    for (i, p) in image.processes.iter().enumerate() {
        check(RecordKind::Process, i, p.encoded_len())?;
    }
    for (i, m) in image.pagemaps.iter().enumerate() {
        check(RecordKind::PageMap, i, m.encoded_len())?;
    }
    for (i, p) in image.pipes.iter().enumerate() {
        check(RecordKind::Pipe, i, p.encoded_len())?;
    }
    Ok(())
}

fn check_threads(p: &Process, tids: &mut HashSet<u32>) -> Result<(), InvalidImage> {
    let pid = p.pid;
    let Some(leader) = p.threads.first() else {
        return Err(InvalidImage::NoThreads { pid });
    };
    if leader.tid != pid {
        return Err(InvalidImage::LeaderNotFirst {
            pid,
            tid: leader.tid,
        });
    }
    for t in &p.threads {
        if !tids.insert(t.tid) {
            return Err(InvalidImage::DuplicateTid { pid, tid: t.tid });
        }
    }
    Ok(())
}

fn check_vmas(
    p: &Process,
    shmem: &std::collections::HashMap<u64, u64>,
) -> Result<(), InvalidImage> {
    let mut prev_end = 0;
    for v in &p.vmas {
        if v.shmem_id != 0 {
            // A file may be mapped past its end (access there faults);
            // shared anonymous memory never is.
            let file = v.kind == crate::VmaKind::File as i32;
            let fits = shmem.get(&v.shmem_id).is_some_and(|size| {
                file || v
                    .end
                    .checked_sub(v.start)
                    .and_then(|l| l.checked_add(v.pgoff))
                    .is_some_and(|e| e <= *size)
            });
            if !fits {
                return Err(InvalidImage::MissingShmem {
                    pid: p.pid,
                    start: v.start,
                    id: v.shmem_id,
                });
            }
        }
        if v.start >= v.end
            || !v.start.is_multiple_of(PAGE_SIZE)
            || !v.end.is_multiple_of(PAGE_SIZE)
        {
            return Err(InvalidImage::BadVma {
                pid: p.pid,
                start: v.start,
                end: v.end,
            });
        }
        if v.start < prev_end {
            return Err(InvalidImage::VmaOrder {
                pid: p.pid,
                start: v.start,
                end: v.end,
                prev_end,
            });
        }
        prev_end = v.end;
    }
    Ok(())
}

/// Checks the IPC namespace; returns segment id -> size.
fn check_ipc(
    ns: &crate::IpcNamespace,
    pages_size: u64,
) -> Result<std::collections::HashMap<i32, u64>, InvalidImage> {
    fn unique(
        what: &'static str,
        objs: impl Iterator<Item = (i32, i32, bool)>,
    ) -> Result<(), InvalidImage> {
        let (mut ids, mut keys) = (HashSet::new(), HashSet::new());
        for (id, key, removed) in objs {
            let bad = |why: &str| InvalidImage::BadIpcObject {
                what,
                id,
                why: why.into(),
            };
            if id < 0 || !ids.insert(id) {
                return Err(bad("the id is negative or repeated"));
            }
            if key != 0 && !removed && !keys.insert(key) {
                return Err(bad("its key is repeated"));
            }
        }
        Ok(())
    }
    const SEG: &str = "shared memory segment";
    unique(SEG, ns.shm.iter().map(|s| (s.id, s.key, s.removed)))?;
    unique("semaphore set", ns.sem.iter().map(|s| (s.id, s.key, false)))?;
    unique("message queue", ns.msg.iter().map(|q| (q.id, q.key, false)))?;
    let mut sizes = std::collections::HashMap::with_capacity(ns.shm.len());
    for s in &ns.shm {
        let bad = |why: &str| InvalidImage::BadIpcObject {
            what: SEG,
            id: s.id,
            why: why.into(),
        };
        let Some(span) = s
            .size
            .checked_next_multiple_of(PAGE_SIZE)
            .filter(|l| *l > 0)
        else {
            return Err(bad("its size is 0 or too large"));
        };
        check_runs(0, &s.runs, pages_size)?;
        if s.runs
            .last()
            .is_some_and(|r| r.vaddr + r.nr_pages * PAGE_SIZE > span)
        {
            return Err(bad("a page run lies past its end"));
        }
        sizes.insert(s.id, span);
    }
    if let Some(s) = ns.sem.iter().find(|s| s.values.is_empty()) {
        return Err(InvalidImage::BadIpcObject {
            what: "semaphore set",
            id: s.id,
            why: "it has no semaphores".into(),
        });
    }
    if let Some(q) = ns
        .msg
        .iter()
        .find(|q| q.messages.iter().any(|m| m.mtype <= 0))
    {
        return Err(InvalidImage::BadIpcObject {
            what: "message queue",
            id: q.id,
            why: "a message type is not positive".into(),
        });
    }
    let mut names = HashSet::new();
    for c in &ns.sysctls {
        let known = crate::IPC_SYSCTLS.contains(&c.name.as_str());
        if !known || c.values.is_empty() || c.values.len() > 4 || !names.insert(&c.name) {
            return Err(InvalidImage::BadIpcSysctl {
                name: c.name.clone(),
            });
        }
    }
    Ok(sizes)
}

/// Every SysV shm VMA lies within a segment of the image.
fn check_sysv_vmas(
    p: &Process,
    segments: &std::collections::HashMap<i32, u64>,
) -> Result<(), InvalidImage> {
    for v in &p.vmas {
        if v.kind != crate::VmaKind::SysvShm as i32 {
            continue;
        }
        let fits = segments.get(&v.sysv_shmid).is_some_and(|span| {
            v.end
                .checked_sub(v.start)
                .and_then(|l| l.checked_add(v.pgoff))
                .is_some_and(|e| e <= *span)
        });
        if !fits {
            return Err(InvalidImage::MissingSysvShm {
                pid: p.pid,
                start: v.start,
                id: v.sysv_shmid,
            });
        }
    }
    Ok(())
}

fn check_fds(
    p: &Process,
    pipes: &HashSet<u64>,
    objects: &std::collections::HashMap<u64, u64>,
) -> Result<(), InvalidImage> {
    if p.exe_object != 0 && !objects.contains_key(&p.exe_object) {
        return Err(InvalidImage::MissingObject {
            pid: p.pid,
            what: "its executable".into(),
            id: p.exe_object,
        });
    }
    let mut fds = HashSet::with_capacity(p.fds.len());
    for fd in &p.fds {
        if fd.fd < 0 || !fds.insert(fd.fd) {
            return Err(InvalidImage::BadFd {
                pid: p.pid,
                fd: fd.fd,
            });
        }
        let piped = fd.kind == FdKind::Pipe as i32 || fd.kind == FdKind::Fifo as i32;
        if piped && !pipes.contains(&fd.pipe_ino) {
            return Err(InvalidImage::MissingPipe {
                pid: p.pid,
                fd: fd.fd,
                ino: fd.pipe_ino,
            });
        }
        if fd.kind == FdKind::Unlinked as i32 && !objects.contains_key(&fd.object_id) {
            return Err(InvalidImage::MissingObject {
                pid: p.pid,
                what: format!("fd {}", fd.fd),
                id: fd.object_id,
            });
        }
        if let Some(why) = bad_state(fd) {
            return Err(InvalidImage::BadFdState {
                pid: p.pid,
                fd: fd.fd,
                why,
            });
        }
    }
    Ok(())
}

/// What is wrong with the kind-specific state of `fd`, if anything that
/// restore relies on is out of range.
fn bad_state(fd: &crate::Fd) -> Option<&'static str> {
    if fd.kind == FdKind::IoUring as i32 {
        let Some(u) = &fd.io_uring else {
            return Some("an io_uring without its state");
        };
        let pow2 = |n: u32, max: u32| n.is_power_of_two() && n <= max;
        if !pow2(u.sq_entries, 1 << 15)
            || !pow2(u.cq_entries, 1 << 16)
            || u.cq_entries < u.sq_entries
        {
            return Some("io_uring ring sizes out of range");
        }
        if u.files.len() % 2 != 0 || u.bufs.len() % 2 != 0 || u.files_nr > 1 << 20 {
            return Some("io_uring registered files or buffers malformed");
        }
        if u.maps
            .iter()
            .any(|m| m.data.is_empty() || m.data.len() > 64 << 20 || m.start % PAGE_SIZE != 0)
        {
            return Some("io_uring mapping malformed");
        }
    }
    if fd.kind == FdKind::PtyMaster as i32 {
        if let Some(s) = &fd.pty {
            if !(s.winsize.is_empty() || s.winsize.len() == 4) {
                return Some("pty window size malformed");
            }
        }
    }
    if fd.kind == FdKind::InetSocket as i32 {
        let Some(s) = &fd.inet else {
            return Some("an inet socket without its state");
        };
        if bad_inet(s) {
            return Some("inet socket family, address or options out of range");
        }
    }
    if fd.kind == FdKind::Mqueue as i32 {
        let Some(q) = &fd.mqueue else {
            return Some("a message queue without its state");
        };
        if q.maxmsg <= 0 || q.msgsize <= 0 || !q.name.starts_with('/') {
            return Some("message queue limits or name out of range");
        }
    }
    None
}

/// An inet socket whose family, addresses or options restore could not
/// use: AF_INET (2) takes 4-byte addresses, AF_INET6 (10) 16-byte ones.
fn bad_inet(s: &crate::InetSocket) -> bool {
    let ip_len = match s.family {
        2 => 4,
        10 => 16,
        _ => return true,
    };
    let bad_addr = |a: &Option<crate::InetAddr>| {
        a.as_ref()
            .is_some_and(|a| a.ip.len() != ip_len || a.port > u32::from(u16::MAX))
    };
    bad_addr(&s.local)
        || bad_addr(&s.peer)
        || s.options.len() > 64
        || s.options.iter().any(|o| o.value.len() > 64)
        || s.queue.len() > 1 << 16
        || s.queue
            .iter()
            .any(|d| d.data.len() > usize::from(u16::MAX) || bad_addr(&d.from))
}

/// The byte length of a run, if it is non-empty and does not overflow.
pub(crate) fn run_len(run: &PageRun) -> Option<u64> {
    if run.nr_pages == 0 {
        return None;
    }
    run.nr_pages.checked_mul(PAGE_SIZE)
}

fn check_runs(pid: u32, runs: &[PageRun], pages_size: u64) -> Result<(), InvalidImage> {
    let mut prev_end = 0;
    for run in runs {
        let bad = || InvalidImage::BadRun {
            pid,
            vaddr: run.vaddr,
            nr_pages: run.nr_pages,
            offset: run.offset,
            pages_size,
        };
        let len = run_len(run).ok_or_else(bad)?;
        let end = run.vaddr.checked_add(len).ok_or_else(bad)?;
        let file_end = run.offset.checked_add(len).ok_or_else(bad)?;
        if !run.vaddr.is_multiple_of(PAGE_SIZE)
            || !run.offset.is_multiple_of(PAGE_SIZE)
            || run.offset < PAGE_SIZE
            || file_end > pages_size
        {
            return Err(bad());
        }
        if run.vaddr < prev_end {
            return Err(InvalidImage::RunOrder {
                pid,
                vaddr: run.vaddr,
                prev_end,
            });
        }
        prev_end = end;
    }
    Ok(())
}

//! io_uring instances that are idle: nothing queued, nothing in flight,
//! nothing left to reap. No other C/R tool restores io_uring; CRIU and
//! DMTCP refuse it. What is kept and what is not:
//!
//! **Kept**: the SQ and CQ sizes (IORING_SETUP_CQSIZE); SQPOLL and its CPU
//! (SQ_AFF); SINGLE_ISSUER and DEFER_TASKRUN, which the dumper detects by
//! what its own copy of the fd is refused (EEXIST) without submitting
//! anything; SQE128 and CQE32 when the mappings' sizes tell them apart
//! (at least 64 SQ and 256 CQ entries); the ring's position (head and tail
//! counters, which programs such as liburing mirror in their own memory);
//! the contents of the mapped rings and SQE array, at the same addresses;
//! registered files (slots matched to the process's fds by name) and
//! registered buffers (same addresses).
//!
//! **Refused at dump**, with the reason: SQEs queued and not submitted,
//! completions not reaped, requests in flight (more SQEs consumed than
//! completions posted; a program that skips completions with
//! IOSQE_CQE_SKIP_SUCCESS is refused too, as the counts cannot prove it
//! idle), overflowed completions, armed polls, personalities, a ring that
//! is not mapped (IORING_SETUP_NO_MMAP or unmapped), a registered file that
//! is not also an fd of the process, a position too far to reach (below).
//!
//! **Not kept** (not visible from outside the program): IOPOLL, COOP_TASKRUN,
//! TASKRUN_FLAG, SUBMIT_ALL, ATTACH_WQ sharing, sq_thread_idle (the kernel
//! default is used), a registered eventfd, restrictions, NAPI settings,
//! provided-buffer rings, registered ring fds, and which thread is the
//! SINGLE_ISSUER submitter (the process's main thread becomes it); SQE128
//! and CQE32 on rings too small to tell them apart are taken as unset.
//!
//! Restore: each process creates its ring itself (remote io_uring_setup,
//! so the ring's accounting and submitter are the process's), moved to
//! its fd number; the memory switch maps it at the old addresses; then the
//! ring is brought to its old position by submitting NOPs in batches and
//! reaping them, the saved ring memory is written back (except the
//! kernel-owned SQ flags), and files and buffers are registered again.

use std::os::fd::AsRawFd;

use stasis_image::{Fd, FdKind, IoUringMap, IoUringState, Process, Vma, VmaKind};
use stasis_sys::RemoteAddr;

use crate::error::RestoreError;
use crate::handle::Target;

const SETUP_SQPOLL: u32 = 1 << 1;
const SETUP_SQ_AFF: u32 = 1 << 2;
const SETUP_CQSIZE: u32 = 1 << 3;
const SETUP_SINGLE_ISSUER: u32 = 1 << 12;
const SETUP_DEFER_TASKRUN: u32 = 1 << 13;
const SETUP_SQE128: u32 = 1 << 10;
const SETUP_NO_MMAP: u32 = 1 << 14;
const SETUP_CQE32: u32 = 1 << 11;
const OFF_SQ_RING: u64 = 0;
const OFF_CQ_RING: u64 = 0x800_0000;
const OFF_SQES: u64 = 0x1000_0000;
const REGISTER_BUFFERS: u64 = 0;
const REGISTER_FILES: u64 = 2;
const ENTER_GETEVENTS: u64 = 1;
/// Furthest position restore will reach by submitting NOPs (each batch is
/// one remote io_uring_enter).
const MAX_POSITION: u32 = 1 << 24;
/// struct io_uring_params: 120 bytes.
const PARAMS_LEN: usize = 120;

fn page_up(n: u64) -> u64 {
    n.div_ceil(4096) * 4096
}

/// Dumps ring fd `fd` of `pid` (see the module doc for what is refused).
pub fn dump(pid: i32, fd: &mut Fd, ino: u64) -> Result<(), String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{}", fd.fd))
        .map_err(|e| format!("an io_uring instance whose fdinfo cannot be read: {e}"))?;
    let get = |k: &str| fdinfo_value(&text, k);
    let need =
        |k: &str| get(k).ok_or_else(|| format!("an io_uring instance without {k} in fdinfo"));
    let position = check_idle(&text, &need)?;
    let sq_entries = need("SqMask")? as u32 + 1;
    let cq_entries = need("CqMask")? as u32 + 1;
    let mut flags = 0;
    if cq_entries != 2 * sq_entries {
        flags |= SETUP_CQSIZE;
    }
    let sq_cpu = get("SqThreadCpu").unwrap_or(-1) as i32;
    if get("SqThread").unwrap_or(-1) >= 0 {
        flags |= SETUP_SQPOLL;
        // The thread's current CPU; bound only if the affinity says so.
    }
    flags |= issuer_flags(pid, fd.fd)?;
    let (maps, memfd_backed) = match ring_maps(pid, ino)? {
        m if !m.is_empty() => (m, false),
        _ => (restored_maps(pid, fd.fd)?, true),
    };
    if maps.is_empty() {
        return Err(
            "an io_uring instance that is not mapped (IORING_SETUP_NO_MMAP?), which stasis cannot restore"
                .into(),
        );
    }
    flags |= size_flags(&maps, sq_entries, cq_entries);
    let (files, files_nr) = registered_files(pid, &text)?;
    let bufs = registered_bufs(&text);
    fd.kind = FdKind::IoUring as i32;
    fd.path = String::new();
    fd.io_uring = Some(IoUringState {
        sq_entries,
        cq_entries,
        setup_flags: flags,
        sq_thread_cpu: if flags & SETUP_SQPOLL != 0 && cpu_bound(&text) {
            sq_cpu
        } else {
            -1
        },
        position,
        files,
        files_nr,
        bufs,
        maps,
        memfd_backed,
    });
    Ok(())
}

/// The value of field `k` of ring fdinfo `text` (decimal or 0x hex).
fn fdinfo_value(text: &str, k: &str) -> Option<i64> {
    text.lines().find_map(|l| {
        let (key, v) = l.split_once(':')?;
        (key.trim() == k).then(|| {
            let v = v.trim();
            match v.strip_prefix("0x") {
                Some(h) => i64::from_str_radix(h, 16).ok(),
                None => v.parse().ok(),
            }
        })?
    })
}

/// Refuses a ring that is not idle (requests queued, in flight or
/// unreaped, overflowed or polled), has personalities, or is past the
/// position restore can reach; returns its position.
fn check_idle(text: &str, need: &dyn Fn(&str) -> Result<i64, String>) -> Result<u32, String> {
    let (sq_head, sq_tail, cached_sq) = (need("SqHead")?, need("SqTail")?, need("CachedSqHead")?);
    let (cq_head, cq_tail, cached_cq) = (need("CqHead")?, need("CqTail")?, need("CachedCqTail")?);
    let refuse = |why: String| {
        Err(format!(
            "an io_uring instance that is not idle ({why}); stasis restores only idle rings"
        ))
    };
    if sq_head != sq_tail || cached_sq != sq_tail || need("SQEs")? != 0 {
        return refuse(format!("{} SQEs queued", sq_tail.wrapping_sub(sq_head)));
    }
    if cq_head != cq_tail || cached_cq != cq_tail || need("CQEs")? != 0 {
        return refuse(format!(
            "{} completions not reaped",
            cq_tail.wrapping_sub(cq_head)
        ));
    }
    if sq_head != cq_tail {
        return refuse(format!(
            "{sq_head} requests submitted, {cq_tail} completions posted: requests in flight"
        ));
    }
    for section in ["PollList:", "CqOverflowList:"] {
        let mut lines = text.lines().skip_while(|l| *l != section).skip(1);
        if lines.next().is_some_and(|l| l.starts_with(' ')) {
            return refuse(format!("entries in its {}", section.trim_end_matches(':')));
        }
    }
    if text.contains("Personalities:") {
        return Err(
            "an io_uring instance with registered personalities, which stasis cannot restore"
                .into(),
        );
    }
    let position = sq_head as u32;
    if position > MAX_POSITION {
        return Err(format!(
            "an io_uring instance at position {position}, past the {MAX_POSITION} that restore can reach"
        ));
    }
    Ok(position)
}

/// The single-issuer setup flags of ring fd `fd` of `pid`, probed on our
/// own copy of it.
fn issuer_flags(pid: i32, fd: i32) -> Result<u32, String> {
    let mut flags = 0;
    {
        let copy =
            stasis_sys::pidfd::copy_of(pid, stasis_sys::RemoteFd(fd)).map_err(|e| e.to_string())?;
        if stasis_sys::uring::defer_taskrun(copy.as_raw_fd()) {
            flags |= SETUP_SINGLE_ISSUER | SETUP_DEFER_TASKRUN;
        } else if stasis_sys::uring::single_issuer(copy.as_raw_fd()) {
            flags |= SETUP_SINGLE_ISSUER;
        }
    }
    Ok(flags)
}

/// The setup flags that the sizes of the ring's mappings reveal
/// (SQE128, CQE32).
fn size_flags(maps: &[IoUringMap], sq_entries: u32, cq_entries: u32) -> u32 {
    let mut flags = 0;
    let len_of = |off: u64| {
        maps.iter()
            .find(|m| m.pgoff == off)
            .map(|m| m.data.len() as u64)
    };
    if let Some(len) = len_of(OFF_SQES) {
        let (std, big) = (
            page_up(sq_entries as u64 * 64),
            page_up(sq_entries as u64 * 128),
        );
        if len >= big && big != std {
            flags |= SETUP_SQE128;
        }
    }
    if let Some(len) = len_of(OFF_CQ_RING).or(len_of(OFF_SQ_RING)) {
        // The rings region holds the CQEs after a small header (< 4 KiB)
        // and, normally, the SQ index array.
        let std = page_up(4096 + cq_entries as u64 * 16 + sq_entries as u64 * 4);
        if cq_entries >= 256 && len > std {
            flags |= SETUP_CQE32;
        }
    }
    flags
}

/// The memory of a ring that an earlier restore gave it (memfds named by
/// [`memfd_name`]), with contents.
fn restored_maps(pid: i32, fd: i32) -> Result<Vec<IoUringMap>, String> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for (name, pgoff) in [
        (memfd_name(fd, false), OFF_SQ_RING),
        (memfd_name(fd, true), OFF_SQES),
    ] {
        let want = format!("/memfd:{name} (deleted)");
        for l in maps.lines().filter(|l| l.ends_with(&want)) {
            let range = l.split_whitespace().next().unwrap_or("");
            let (s, e) = range.split_once('-').ok_or("bad maps line")?;
            let start = u64::from_str_radix(s, 16).map_err(|e| e.to_string())?;
            let end = u64::from_str_radix(e, 16).map_err(|e| e.to_string())?;
            let mut data = vec![0u8; (end - start) as usize];
            stasis_sys::mem::read(pid, RemoteAddr(start), &mut data)
                .map_err(|e| format!("cannot read its ring at {start:#x}: {e}"))?;
            out.push(IoUringMap { start, pgoff, data });
        }
    }
    Ok(out)
}

/// SqThreadCpu is where the thread runs; without SQ_AFF it may move, so
/// only a thread pinned to one CPU is taken as bound. fdinfo does not say:
/// treated as unbound.
fn cpu_bound(_text: &str) -> bool {
    false
}

/// The process's mappings of the ring whose inode is `ino`, with contents.
fn ring_maps(pid: i32, ino: u64) -> Result<Vec<IoUringMap>, String> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for l in maps
        .lines()
        .filter(|l| l.ends_with("anon_inode:[io_uring]"))
    {
        let f: Vec<&str> = l.split_whitespace().collect();
        let (Some(range), Some(off), Some(inode)) = (f.first(), f.get(2), f.get(4)) else {
            continue;
        };
        if inode.parse::<u64>().ok() != Some(ino) {
            continue;
        }
        let (s, e) = range.split_once('-').ok_or("bad maps line")?;
        let start = u64::from_str_radix(s, 16).map_err(|e| e.to_string())?;
        let end = u64::from_str_radix(e, 16).map_err(|e| e.to_string())?;
        let pgoff = u64::from_str_radix(off, 16).map_err(|e| e.to_string())?;
        let mut data = vec![0u8; (end - start) as usize];
        stasis_sys::mem::read(pid, RemoteAddr(start), &mut data)
            .map_err(|e| format!("cannot read its ring at {start:#x}: {e}"))?;
        out.push(IoUringMap { start, pgoff, data });
    }
    Ok(out)
}

/// Registered files as (slot, fd) pairs: each slot's file, by the name
/// fdinfo prints, must be an fd of the process too.
fn registered_files(pid: i32, text: &str) -> Result<(Vec<i32>, u32), String> {
    let nr = section_lines(text, "UserFiles:");
    let Some((count, lines)) = nr else {
        return Ok((Vec::new(), 0));
    };
    let mut links = Vec::new();
    if let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
        for e in rd.flatten() {
            let Some(n) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            if let Ok(l) = std::fs::read_link(e.path()) {
                links.push((n, l.to_string_lossy().into_owned()));
            }
        }
    }
    links.sort();
    let mut out = Vec::new();
    for l in lines {
        let (slot, name) = l
            .trim_start()
            .split_once(": ")
            .ok_or("bad UserFiles line")?;
        let slot: i32 = slot.trim().parse().map_err(|_| "bad UserFiles slot")?;
        if name == "<none>" {
            continue;
        }
        let same: Vec<i32> = links
            .iter()
            .filter(|(_, l)| l == name || l.rsplit('/').next() == Some(name))
            .map(|(n, _)| *n)
            .collect();
        let Some(&fd) = same.first() else {
            return Err(format!(
                "an io_uring instance with registered file {name} (slot {slot}) that is not an fd of the process, which stasis cannot restore"
            ));
        };
        // fdinfo names the file only: two open descriptions with that name
        // (the two ends of a pipe) cannot be told apart.
        if let Some(other) = same[1..]
            .iter()
            .find(|o| !stasis_sys::util::same_file(pid, fd, pid, **o).unwrap_or(false))
        {
            return Err(format!(
                "an io_uring instance with registered file {name} (slot {slot}), which fds {fd} and {other} both are; stasis cannot tell which one was registered"
            ));
        }
        out.extend([slot, fd]);
    }
    Ok((out, count))
}

/// Registered buffers as (address, length) pairs.
fn registered_bufs(text: &str) -> Vec<u64> {
    let Some((_, lines)) = section_lines(text, "UserBufs:") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for l in lines {
        let Some((_, v)) = l.trim_start().split_once(": ") else {
            continue;
        };
        let Some((addr, len)) = v.split_once('/') else {
            continue;
        };
        let addr = u64::from_str_radix(addr.trim_start_matches("0x"), 16).unwrap_or(0);
        out.extend([addr, len.trim().parse().unwrap_or(0)]);
    }
    out
}

/// "Key:\tN" and the indented lines after it.
fn section_lines<'a>(text: &'a str, key: &str) -> Option<(u32, Vec<&'a str>)> {
    let mut it = text.lines().skip_while(|l| !l.starts_with(key));
    let head = it.next()?;
    let count = head[key.len()..].trim().parse().ok()?;
    Some((count, it.take_while(|l| l.starts_with(' ')).collect()))
}

/// The ring VMA's fd: the mm dump classifies a mapping of a ring by the
/// fd of the same inode.
pub fn ring_fd(pid: i32, ino: u64) -> Option<i32> {
    let rd = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    for e in rd.flatten() {
        let Ok(l) = std::fs::read_link(e.path()) else {
            continue;
        };
        if l.to_str() != Some("anon_inode:[io_uring]") {
            continue;
        }
        if nix::sys::stat::stat(&e.path()).is_ok_and(|s| s.st_ino == ino) {
            return e.file_name().to_str()?.parse().ok();
        }
    }
    None
}

fn word(b: &[u8], off: usize) -> u32 {
    u32::from_ne_bytes(b[off..off + 4].try_into().expect("4 bytes"))
}

/// The memfd name of a restored ring's memory: `io_uring:FD:rings` or
/// `io_uring:FD:sqes` (what a later dump of the restored process finds).
fn memfd_name(fd: i32, sqes: bool) -> String {
    format!("io_uring:{fd}:{}", if sqes { "sqes" } else { "rings" })
}

/// Once memory is switched: gives each ring of `p` its memory back at the
/// old addresses, sets it up on that memory, brings it to its position,
/// writes the saved ring memory back and registers files and buffers.
pub fn restore(t: &Target, p: &Process) -> Result<(), RestoreError> {
    for fd in p.fds.iter().filter(|f| f.kind == FdKind::IoUring as i32) {
        let Some(s) = &fd.io_uring else { continue };
        restore_ring(t, fd, s)?;
    }
    Ok(())
}

/// Sets up ring fd `fd` (state `s`) again in the target, at its
/// position, with its memory and registrations.
fn restore_ring(t: &Target, fd: &Fd, s: &IoUringState) -> Result<(), RestoreError> {
    let fail = |what: String| RestoreError::Failed {
        pid: t.pid,
        what: format!("io_uring fd {}: {what}", fd.fd),
    };
    let put = |addr: u64, data: &[u8]| {
        stasis_sys::mem::write(t.pid, RemoteAddr(addr), data)
            .map_err(|e| fail(format!("write ring memory at {addr:#x}: {e}")))
    };
    let rings: Vec<&IoUringMap> = s.maps.iter().filter(|m| m.pgoff != OFF_SQES).collect();
    let sqes: Vec<&IoUringMap> = s.maps.iter().filter(|m| m.pgoff == OFF_SQES).collect();
    let (Some(ring0), Some(sqe0)) = (rings.first(), sqes.first()) else {
        return Err(fail("its rings or SQE array were not mapped".into()));
    };
    if !s.memfd_backed {
        // io_uring refuses any address for its own mmap, so the ring
        // lives in memory of ours (IORING_SETUP_NO_MMAP).
        for (group, is_sqes) in [(&rings, false), (&sqes, true)] {
            map_memfd(t, &memfd_name(fd.fd, is_sqes), group)?;
        }
    }
    // A fresh ring reads the counters in its memory: start from zero.
    for m in &s.maps {
        put(m.start, &vec![0u8; m.data.len()])?;
    }
    let params = setup_params(s, sqe0.start, ring0.start);
    let at = t.put(0, &params)?;
    let got = t.lcall(
        "io_uring_setup",
        libc::SYS_io_uring_setup,
        &[s.sq_entries as u64, at],
    )? as i32;
    t.place_fd(got, fd.fd, fd.cloexec)?;
    let mut out = [0u8; PARAMS_LEN];
    stasis_sys::mem::read(t.pid, RemoteAddr(at), &mut out)
        .map_err(|e| fail(format!("read params: {e}")))?;
    // struct io_sqring_offsets at 40, io_cqring_offsets at 80.
    let (sq_tail, sq_flags, sq_array) = (word(&out, 44), word(&out, 56), word(&out, 64));
    let cq_head = word(&out, 80);
    advance(
        t,
        fd,
        s,
        (ring0.start, sq_tail, sq_array, cq_head),
        &put,
        &fail,
    )?;
    // The saved memory, but the kernel-owned SQ flags.
    for m in &s.maps {
        let f = sq_flags as usize;
        if m.pgoff != OFF_SQES && f + 4 <= m.data.len() {
            put(m.start, &m.data[..f])?;
            put(m.start + f as u64 + 4, &m.data[f + 4..])?;
        } else {
            put(m.start, &m.data)?;
        }
    }
    register(t, fd.fd, s).map_err(|e| match e {
        RestoreError::Failed { what, .. } => fail(what),
        other => other,
    })?;
    Ok(())
}

/// The io_uring_params of a ring set up again with its memory at
/// `sqes_at` and `rings_at` (IORING_SETUP_NO_MMAP).
fn setup_params(s: &IoUringState, sqes_at: u64, rings_at: u64) -> [u8; PARAMS_LEN] {
    let mut params = [0u8; PARAMS_LEN];
    params[4..8].copy_from_slice(&s.cq_entries.to_ne_bytes());
    let mut flags = s.setup_flags | SETUP_NO_MMAP;
    if s.sq_thread_cpu >= 0 {
        flags |= SETUP_SQ_AFF;
        params[12..16].copy_from_slice(&(s.sq_thread_cpu as u32).to_ne_bytes());
    }
    params[8..12].copy_from_slice(&flags.to_ne_bytes());
    params[72..80].copy_from_slice(&sqes_at.to_ne_bytes());
    params[112..120].copy_from_slice(&rings_at.to_ne_bytes());
    params
}

/// Writes bytes into the target's memory at an address.
type PutFn<'a> = dyn Fn(u64, &[u8]) -> Result<(), RestoreError> + 'a;

/// Brings a fresh ring to the saved position: NOPs (all-zero SQEs) in
/// batches, each reaped at once. `at` holds the ring's address and the
/// offsets of its SQ tail, SQ index array and CQ head.
fn advance(
    t: &Target,
    fd: &Fd,
    s: &IoUringState,
    at: (u64, u32, u32, u32),
    put: &PutFn<'_>,
    fail: &dyn Fn(String) -> RestoreError,
) -> Result<(), RestoreError> {
    let (ring, sq_tail, sq_array, cq_head) = at;
    // Every slot a NOP, the index array the identity.
    if sq_array != 0 {
        let mask = s.sq_entries - 1;
        let ids: Vec<u8> = (0..s.sq_entries)
            .flat_map(|i| (i & mask).to_ne_bytes())
            .collect();
        put(ring + sq_array as u64, &ids)?;
    }
    let mut pos: u32 = 0;
    while pos != s.position {
        let n = (s.position - pos).min(s.sq_entries);
        put(ring + sq_tail as u64, &pos.wrapping_add(n).to_ne_bytes())?;
        let done = t.lcall(
            "io_uring_enter",
            libc::SYS_io_uring_enter,
            &[fd.fd as u64, n as u64, n as u64, ENTER_GETEVENTS, 0, 0],
        )?;
        if done != n as u64 {
            return Err(fail(format!("{done} of {n} NOPs submitted")));
        }
        pos = pos.wrapping_add(n);
        put(ring + cq_head as u64, &pos.to_ne_bytes())?;
    }
    Ok(())
}

/// Maps one memfd named `name` at every mapping of `group`, made in the
/// process (remote memfd_create), sized for the largest.
fn map_memfd(t: &Target, name: &str, group: &[&IoUringMap]) -> Result<(), RestoreError> {
    let size = group.iter().map(|m| m.data.len() as u64).max().unwrap_or(0);
    let mut c = name.as_bytes().to_vec();
    c.push(0);
    let at = t.put(0, &c)?;
    let mfd = t.lcall(
        "memfd_create",
        libc::SYS_memfd_create,
        &[at, libc::MFD_CLOEXEC as u64],
    )?;
    let result = (|| {
        t.lcall("ftruncate", libc::SYS_ftruncate, &[mfd, size])?;
        for m in group {
            let flags = libc::MAP_SHARED | libc::MAP_FIXED | libc::MAP_POPULATE;
            let got = t.lcall(
                "mmap",
                libc::SYS_mmap,
                &[
                    m.start,
                    m.data.len() as u64,
                    (libc::PROT_READ | libc::PROT_WRITE) as u64,
                    flags as u64,
                    mfd,
                    0,
                ],
            )?;
            if got != m.start {
                return Err(RestoreError::Failed {
                    pid: t.pid,
                    what: format!("ring memory landed at {got:#x}, not {:#x}", m.start),
                });
            }
        }
        Ok(())
    })();
    t.lcall("close", libc::SYS_close, &[mfd])?;
    result
}

/// Registers the ring's files and buffers again.
fn register(t: &Target, fd: i32, s: &IoUringState) -> Result<(), RestoreError> {
    let fail = |what: String| RestoreError::Failed { pid: t.pid, what };
    if s.files_nr > 0 {
        let mut table = vec![-1i32; s.files_nr as usize];
        for pair in s.files.chunks(2) {
            if let (Some(slot), Some(f)) = (table.get_mut(pair[0] as usize), pair.get(1)) {
                *slot = *f;
            }
        }
        let bytes: Vec<u8> = table.iter().flat_map(|v| v.to_ne_bytes()).collect();
        if bytes.len() as u64 > t.scratch_len {
            return Err(fail(format!(
                "{} registered file slots is too many",
                s.files_nr
            )));
        }
        let at = t.put(0, &bytes)?;
        t.lcall(
            "io_uring_register(FILES)",
            libc::SYS_io_uring_register,
            &[fd as u64, REGISTER_FILES, at, s.files_nr as u64],
        )?;
    }
    if !s.bufs.is_empty() {
        let bytes = crate::handle::words(&s.bufs);
        if bytes.len() as u64 > t.scratch_len {
            return Err(fail(format!(
                "{} registered buffers is too many",
                s.bufs.len() / 2
            )));
        }
        let at = t.put(0, &bytes)?;
        t.lcall(
            "io_uring_register(BUFFERS)",
            libc::SYS_io_uring_register,
            &[fd as u64, REGISTER_BUFFERS, at, (s.bufs.len() / 2) as u64],
        )?;
    }
    Ok(())
}

/// Marks the VMAs of `vmas` that map a ring of `pid` (see `ring_fd`).
pub fn classify(vma: &mut Vma, pid: i32, ino: u64) -> Result<(), String> {
    let fd = ring_fd(pid, ino).ok_or(
        "maps an io_uring instance that has no fd in the process, which stasis cannot restore",
    )?;
    vma.kind = VmaKind::IoUring as i32;
    vma.io_uring_fd = fd;
    Ok(())
}

//! Keeping a frozen target safe from its dumper's death.
//!
//! A dump changes two things in the target: the registers of a thread
//! while a remote syscall runs in it, and its signal mask (all blocked, so
//! that no signal interrupts those syscalls). If the dumper is killed, the
//! kernel detaches every thread and lets it run, and cleanup code of ours
//! never runs. So the undo is left to the kernel: each thread is *armed*
//! before anything is changed (see [`stasis_sys::sigframe`]).
//!
//! - Its original context (registers after the kernel's own syscall
//!   restart, FPU/AVX state, signal mask) is written as an rt_sigreturn
//!   frame below its stack pointer and red zone, in stack memory the ABI
//!   leaves free.
//! - Between remote syscalls it rests on a `syscall` instruction with
//!   `rax = rt_sigreturn` and `rsp` just above the frame. Released there,
//!   the thread's first act is rt_sigreturn: the kernel puts every
//!   register and the mask back, and the thread carries on (an interrupted
//!   syscall restarts).
//! - A remote syscall runs from a `syscall` followed only by register
//!   clears and `ret` (the vDSO's clock_getres fallback here), with `rsp`
//!   at the frame, whose first word points at a `mov $15,%rax; syscall`
//!   (libc's `__restore_rt`). Released in the middle of it, the thread
//!   finishes the syscall, returns into rt_sigreturn, and is back as well.
//! - Scratch memory for syscall results is the stack below the leader's
//!   frame, so no mapping is ever added to the target.
//!
//! A thread that cannot be armed (no gadgets: a static binary with no
//! signal trampoline; a stack with no room) falls back to the unguarded
//! way: signals blocked for the whole dump and a scratch page mapped. The
//! dump works, but a dumper killed part-way may leave that target with its
//! signals blocked; a warning says so.

use stasis_sys::ptrace::{self, Regs};
use stasis_sys::{mem, sigframe, RemoteAddr};

use crate::error::{DumpError, SysCtx};
use crate::procfs;

/// Bytes of scratch memory below the leader's frame.
pub const SCRATCH_LEN: u64 = 512;
const NR_RT_SIGRETURN: u64 = 15;
/// How much of one executable mapping is searched for gadgets.
const SCAN_LIMIT: u64 = 16 << 20;

/// The two instruction sequences arming needs, found in the target.
#[derive(Debug, Clone, Copy)]
pub struct Gadgets {
    /// `syscall`, then only register clears, then `ret`.
    pub syscall_ret: RemoteAddr,
    /// `mov $15,%rax; syscall` (or `mov $15,%eax; syscall`).
    pub sigreturn: RemoteAddr,
}

/// Looks for the gadgets in the target's executable mappings: the vDSO
/// first, then libc, then the rest. `None` if either is missing.
///
/// Mappings are read in chunks and the search stops at the first find, and
/// where a gadget was found is remembered per file (the same libc, the
/// same vDSO text): the processes of a tree cost one search, each later
/// one only a read of the few bytes that prove the gadget is still there.
pub fn find_gadgets(pid: i32) -> Result<Option<Gadgets>, DumpError> {
    let maps = procfs::parsed(
        pid,
        stasis_proc::parse_maps(&procfs::read_string(pid, "maps")?),
    )?;
    let mut exec: Vec<_> = maps
        .iter()
        .filter(|m| m.exec && m.read && m.path != "[vsyscall]")
        .collect();
    exec.sort_by_key(|m| match m.path.as_str() {
        "[vdso]" => 0,
        p if p.contains("/libc.so") || p.contains("/libc-") || p.contains("ld-musl") => 1,
        _ => 2,
    });
    let mut found = [None, None];
    for m in exec {
        for (kind, slot) in found.iter_mut().enumerate() {
            if slot.is_none() {
                *slot = find_in(pid, m, kind);
            }
        }
        if let [Some(s), Some(r)] = found {
            return Ok(Some(Gadgets {
                syscall_ret: s,
                sigreturn: r,
            }));
        }
    }
    Ok(None)
}

const SYSCALL_RET: usize = 0;
const CHUNK: usize = 256 << 10;
/// Longest gadget pattern, so a chunk overlaps the next by this much.
const LONGEST: usize = 24;

type MapKey = (String, u64, u64, u64);

/// Where gadget `kind` was found, by mapped file (path, inode, offset,
/// length) and offset into the mapping.
static KNOWN: std::sync::Mutex<std::collections::BTreeMap<(MapKey, usize), u64>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());

fn search(kind: usize, code: &[u8]) -> Option<usize> {
    if kind == SYSCALL_RET {
        find_syscall_ret(code)
    } else {
        find_sigreturn(code)
    }
}

/// Gadget `kind` in mapping `m` of `pid`, if it has one.
fn find_in(pid: i32, m: &stasis_proc::MapsEntry, kind: usize) -> Option<RemoteAddr> {
    let key = ((m.path.clone(), m.inode, m.offset, m.end - m.start), kind);
    let known = KNOWN.lock().ok().and_then(|k| k.get(&key).copied());
    if let Some(off) = known {
        let mut b = [0u8; LONGEST];
        let n = (LONGEST as u64).min(m.end - m.start - off) as usize;
        if mem::read(pid, RemoteAddr(m.start + off), &mut b[..n]).is_ok()
            && search(kind, &b[..n]) == Some(0)
        {
            return Some(RemoteAddr(m.start + off));
        }
    }
    let len = (m.end - m.start).min(SCAN_LIMIT) as usize;
    let mut buf = vec![0u8; CHUNK + LONGEST];
    let mut at = 0usize;
    while at < len {
        let n = (CHUNK + LONGEST).min(len - at);
        if mem::read(pid, RemoteAddr(m.start + at as u64), &mut buf[..n]).is_err() {
            return None;
        }
        if let Some(i) = search(kind, &buf[..n]) {
            let off = (at + i) as u64;
            if let Ok(mut k) = KNOWN.lock() {
                k.insert(key, off);
            }
            return Some(RemoteAddr(m.start + off));
        }
        at += CHUNK;
    }
    None
}

/// Offset of a `syscall` (0f 05) followed by nothing but 32-bit register
/// clears (`xor r,r`) and a `ret`.
fn find_syscall_ret(code: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(p) = code[i..].windows(2).position(|w| w == [0x0f, 0x05]) {
        let at = i + p;
        let mut j = at + 2;
        loop {
            match code.get(j..) {
                Some([0xc3, ..]) => return Some(at),
                Some([0x31, m, ..]) if is_self_xor(*m) => j += 2,
                Some([0x45, 0x31, m, ..]) if is_self_xor(*m) => j += 3,
                _ => break,
            }
        }
        i = at + 2;
    }
    None
}

/// A ModRM byte of register-direct form with the same register twice.
fn is_self_xor(modrm: u8) -> bool {
    modrm >> 6 == 3 && (modrm >> 3) & 7 == modrm & 7
}

fn find_sigreturn(code: &[u8]) -> Option<usize> {
    const LONG: [u8; 9] = [0x48, 0xc7, 0xc0, 0x0f, 0, 0, 0, 0x0f, 0x05];
    const SHORT: [u8; 7] = [0xb8, 0x0f, 0, 0, 0, 0x0f, 0x05];
    code.windows(LONG.len())
        .position(|w| w == LONG)
        .or_else(|| code.windows(SHORT.len()).position(|w| w == SHORT))
}

/// True if thread `tid` runs with a user shadow stack (CET), which an
/// rt_sigreturn through a frame of ours would not get past.
pub fn has_shadow_stack(pid: i32, tid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/status"))
        .map(|s| {
            s.lines()
                .filter(|l| l.starts_with("x86_Thread_features:"))
                .any(|l| l.split_whitespace().any(|w| w == "shstk"))
        })
        .unwrap_or(false)
}

/// One armed thread: where its frame is, and the scratch memory below it.
#[derive(Debug, Clone, Copy)]
pub struct Armed {
    pub frame: RemoteAddr,
    pub scratch: RemoteAddr,
}

/// Arms stopped thread `tid` whose registers at the stop are `regs` and
/// whose mask is `sigmask`: writes its frame, parks it on rt_sigreturn and
/// blocks every signal. Nothing is changed if the frame cannot be written.
pub fn arm(
    pid: i32,
    tid: i32,
    regs: &Regs,
    sigmask: u64,
    g: &Gadgets,
    scratch: u64,
) -> Result<Armed, DumpError> {
    let xstate = ptrace::get_xstate(tid).dump_ctx(pid, "get FPU state")?;
    let f = sigframe::build(regs, &xstate, sigmask, g.sigreturn.0, scratch);
    mem::write(pid, RemoteAddr(f.base), &f.bytes).dump_ctx(pid, "write sigreturn frame")?;
    let mut rest = *regs;
    rest.rip = g.syscall_ret.0;
    rest.rax = NR_RT_SIGRETURN;
    rest.orig_rax = u64::MAX;
    rest.rsp = f.at + 8;
    ptrace::set_regs(tid, &rest).dump_ctx(pid, "park thread on rt_sigreturn")?;
    ptrace::set_sigmask(tid, !0).dump_ctx(pid, "block signals")?;
    Ok(Armed {
        frame: RemoteAddr(f.at),
        scratch: RemoteAddr(f.base),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_vdso_fallback_and_plain_ret() {
        // clock_getres fallback of the 6.18 vDSO.
        let vdso = [
            0xb8, 0xe5, 0, 0, 0, 0x0f, 0x05, 0x31, 0xd2, 0x31, 0xc9, 0x31, 0xf6, 0x31, 0xff, 0x45,
            0x31, 0xdb, 0xc3,
        ];
        assert_eq!(find_syscall_ret(&vdso), Some(5));
        // A syscall followed by real work is not a gadget.
        assert_eq!(
            find_syscall_ret(&[0x0f, 0x05, 0xc9, 0x31, 0xd2, 0xc3]),
            None
        );
        assert_eq!(find_syscall_ret(&[0x0f, 0x05, 0x31, 0xd0, 0xc3]), None);
        assert_eq!(
            find_syscall_ret(&[0x90, 0x0f, 0x05, 0x0f, 0x05, 0xc3]),
            Some(3)
        );
    }

    #[test]
    fn finds_restore_rt() {
        let glibc = [0x90, 0x48, 0xc7, 0xc0, 0x0f, 0, 0, 0, 0x0f, 0x05];
        assert_eq!(find_sigreturn(&glibc), Some(1));
        assert_eq!(find_sigreturn(&[0xb8, 0x0f, 0, 0, 0, 0x0f, 0x05]), Some(0));
        assert_eq!(find_sigreturn(&[0xb8, 0x0e, 0, 0, 0, 0x0f, 0x05]), None);
    }
}

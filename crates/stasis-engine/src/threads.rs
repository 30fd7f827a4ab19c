//! Threads: registers, FPU/AVX state, signal mask, rseq, robust list,
//! clear_child_tid, alternate signal stack, name and pending signals.
//!
//! Interrupted syscalls: a thread frozen inside a syscall shows `orig_rax`
//! = the syscall and `rax` = -ERESTART*. At restore each thread is resumed
//! through the kernel's signal path (it is parked in a ptrace event stop
//! inside get_signal, and its registers are set there), so the kernel
//! itself decides: with no signal to handle, ERESTARTSYS, ERESTARTNOINTR
//! and ERESTARTNOHAND restart the syscall with the same arguments; if a
//! signal with a handler arrived meanwhile (a SIGTERM sent right after the
//! restore), the handler runs and the call returns EINTR (or restarts after
//! it, with SA_RESTART), exactly as for the original. (Restarting by hand
//! instead would go back into e.g. pause() after such a handler, and sleep
//! on.) ERESTART_RESTARTBLOCK (relative nanosleep, poll with a timeout)
//! depends on kernel state that does not survive, so the call returns
//! EINTR, as it would after a signal handler ran. nanosleep has already
//! written the remaining time to its `rem` argument at that point, so a
//! caller that loops on EINTR sleeps exactly the rest.

use stasis_image::{SigInfo, Thread, X86Regs};
use stasis_sys::ptrace::{self, Regs};

use crate::error::{DumpError, RestoreError, SysCtx};
use crate::handle::{Frozen, Target};
use crate::procfs;

use stasis_sys::sigframe::{ERESTARTNOHAND, ERESTARTNOINTR, ERESTARTSYS, ERESTART_RESTARTBLOCK};

const PR_GET_TID_ADDRESS: u64 = 40;
const SS_DISABLE: i32 = 2;
const SS_ONSTACK: i32 = 1;

pub fn dump_threads(frozen: &Frozen) -> Result<Vec<Thread>, DumpError> {
    let pid = frozen.pid;
    let scratch = frozen.scratch().0;
    let mut out = Vec::new();
    for t in &frozen.threads {
        let tid = t.tid;
        let xstate = ptrace::get_xstate(tid).dump_ctx(pid, "get FPU state")?;
        let rseq = ptrace::rseq_config(tid).dump_ctx(pid, "get rseq")?;
        let (robust, robust_len) = ptrace::robust_list(tid).dump_ctx(pid, "get robust list")?;
        frozen.call(tid, "sigaltstack", libc::SYS_sigaltstack, &[0, scratch])?;
        let ss = frozen.read_scratch(24)?;
        frozen.call(
            tid,
            "prctl(PR_GET_TID_ADDRESS)",
            libc::SYS_prctl,
            &[PR_GET_TID_ADDRESS, scratch],
        )?;
        let ctid = u64::from_ne_bytes(frozen.read_scratch(8)?[..8].try_into().expect("8"));
        let mut pending: Vec<SigInfo> = Vec::new();
        if let Some((sig, info)) = t.held_signal {
            pending.push(SigInfo {
                signo: sig as u32,
                raw: info.to_vec(),
            });
        }
        for info in ptrace::peek_siginfo(tid, false).dump_ctx(pid, "peek pending signals")? {
            pending.push(siginfo(&info));
        }
        let comm = procfs::read_string(pid, &format!("task/{tid}/comm"))?
            .trim_end_matches('\n')
            .to_string();
        out.push(Thread {
            tid: tid as u32,
            regs: Some(to_image(&t.regs)),
            xstate,
            sigmask: t.sigmask,
            rseq_addr: rseq.addr,
            rseq_len: rseq.len,
            rseq_sig: rseq.sig,
            robust_list: robust,
            robust_list_len: robust_len,
            clear_child_tid: ctid,
            comm,
            altstack_sp: u64::from_ne_bytes(ss[0..8].try_into().expect("8")),
            altstack_flags: i32::from_ne_bytes(ss[8..12].try_into().expect("4")),
            altstack_size: u64::from_ne_bytes(ss[16..24].try_into().expect("8")),
            pending,
            sched: Some(crate::sched::dump_thread(pid, tid)?),
        });
    }
    Ok(out)
}

pub fn siginfo(raw: &[u8; 128]) -> SigInfo {
    SigInfo {
        signo: i32::from_ne_bytes(raw[0..4].try_into().expect("4")) as u32,
        raw: raw.to_vec(),
    }
}

/// Creates every thread but the leader with its original tid, by clone3
/// with set_tid run inside the leader. Each new thread is left in its
/// first ptrace-stop.
pub fn create_threads(t: &Target, threads: &[Thread]) -> Result<(), RestoreError> {
    const FLAGS: u64 = (libc::CLONE_VM
        | libc::CLONE_FS
        | libc::CLONE_FILES
        | libc::CLONE_SIGHAND
        | libc::CLONE_THREAD
        | libc::CLONE_SYSVSEM) as u64;
    for th in threads.iter().skip(1) {
        let tid_at = t.put(512, &(th.tid as i32).to_ne_bytes())?;
        let args = stasis_sys::clone::thread_clone_args(FLAGS, tid_at);
        let args_at = t.put(0, &args)?;
        let new = t.lcall(
            "clone3 (thread)",
            libc::SYS_clone3,
            &[args_at, args.len() as u64],
        )?;
        if new as u32 != th.tid {
            return Err(RestoreError::Failed {
                pid: t.pid,
                what: format!("thread got tid {new}, wanted {}", th.tid),
            });
        }
        let host = new_host_tid(t, th.tid)?;
        match ptrace::wait(host).rst_ctx(t.pid, "wait for new thread")? {
            ptrace::Stop::Stopped { .. } => {}
            other => {
                return Err(RestoreError::Failed {
                    pid: t.pid,
                    what: format!("new thread {} did not stop: {other:?}", th.tid),
                })
            }
        }
    }
    Ok(())
}

/// Finds the host tid of the thread just created with image tid `tid`
/// (they differ inside a new PID namespace) and records it in `t`.
fn new_host_tid(t: &Target, tid: u32) -> Result<i32, RestoreError> {
    let task = format!("/proc/{}/task", t.pid);
    let known: Vec<i32> = t.tids.borrow().values().copied().collect();
    for e in std::fs::read_dir(&task)
        .map_err(|e| RestoreError::Failed {
            pid: t.pid,
            what: format!("{task}: {e}"),
        })?
        .flatten()
    {
        let Some(host) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if host == t.pid || known.contains(&host) {
            continue;
        }
        let status = std::fs::read_to_string(format!("{task}/{host}/status")).unwrap_or_default();
        let inner = stasis_proc::parse_status(&status)
            .ok()
            .and_then(|s| s.ns_pid.last().copied());
        if inner == Some(tid) {
            t.tids.borrow_mut().insert(tid as i32, host);
            return Ok(host);
        }
    }
    Err(RestoreError::Failed {
        pid: t.pid,
        what: format!("new thread {tid} not found in {task}"),
    })
}

/// Per-thread kernel state that must be set from inside the thread.
pub fn restore_thread_state(t: &Target, th: &Thread) -> Result<(), RestoreError> {
    let tid = th.tid as i32;
    // Always set (also to "none"): the leader inherited the restorer's.
    let robust_len = if th.robust_list_len == 0 {
        24
    } else {
        th.robust_list_len
    };
    t.call(
        tid,
        "set_robust_list",
        libc::SYS_set_robust_list,
        &[th.robust_list, robust_len],
    )?;
    t.call(
        tid,
        "set_tid_address",
        libc::SYS_set_tid_address,
        &[th.clear_child_tid],
    )?;
    if th.rseq_addr != 0 {
        t.call(
            tid,
            "rseq",
            libc::SYS_rseq,
            &[th.rseq_addr, th.rseq_len as u64, 0, th.rseq_sig as u64],
        )?;
    }
    // Always set (also to "disabled"): the leader inherited the
    // restorer's alternate stack.
    let mut ss = Vec::new();
    if th.altstack_flags & SS_DISABLE == 0 {
        ss.extend_from_slice(&th.altstack_sp.to_ne_bytes());
        ss.extend_from_slice(&(th.altstack_flags & !SS_ONSTACK).to_ne_bytes());
        ss.extend_from_slice(&0i32.to_ne_bytes());
        ss.extend_from_slice(&th.altstack_size.to_ne_bytes());
    } else {
        ss.extend_from_slice(&0u64.to_ne_bytes());
        ss.extend_from_slice(&SS_DISABLE.to_ne_bytes());
        ss.extend_from_slice(&0i32.to_ne_bytes());
        ss.extend_from_slice(&0u64.to_ne_bytes());
    }
    let at = t.put(0, &ss)?;
    t.call(tid, "sigaltstack", libc::SYS_sigaltstack, &[at, 0])?;
    let mut name = th.comm.as_bytes().to_vec();
    name.truncate(15);
    name.push(0);
    let at = t.put(0, &name)?;
    t.call(
        tid,
        "prctl(PR_SET_NAME)",
        libc::SYS_prctl,
        &[libc::PR_SET_NAME as u64, at],
    )?;
    // Thread-directed pending signals; all signals are blocked until the
    // final mask is set, so they stay queued.
    for s in &th.pending {
        if s.signo == libc::SIGKILL as u32 || s.signo == libc::SIGSTOP as u32 {
            continue;
        }
        let at = t.put(0, &s.raw)?;
        t.call(
            tid,
            "rt_tgsigqueueinfo",
            libc::SYS_rt_tgsigqueueinfo,
            &[t.ns_pid as u64, tid as u64, s.signo as u64, at],
        )?;
    }
    Ok(())
}

/// Puts the final registers, FPU state and signal mask on a thread.
pub fn finish_thread(t: &Target, th: &Thread) -> Result<(), RestoreError> {
    let pid = t.pid;
    let tid = t.host(th.tid as i32);
    let regs = th.regs.as_ref().ok_or_else(|| RestoreError::Failed {
        pid,
        what: format!("thread {tid} has no registers in the image"),
    })?;
    let mut r = from_image(regs);
    fix_restart_block(&mut r);
    park_in_signal_path(tid).rst_ctx(pid, format!("park thread {tid}"))?;
    ptrace::set_xstate(tid, &th.xstate).rst_ctx(pid, format!("set FPU state of thread {tid}"))?;
    ptrace::set_regs(tid, &r).rst_ctx(pid, format!("set registers of thread {tid}"))?;
    ptrace::set_sigmask(tid, th.sigmask)
        .rst_ctx(pid, format!("set signal mask of thread {tid}"))?;
    Ok(())
}

/// ERESTART_RESTARTBLOCK becomes EINTR (see the module doc); the other
/// restart codes are left for the kernel.
pub fn fix_restart_block(r: &mut Regs) {
    if (r.orig_rax as i64) >= 0 && r.rax as i64 == ERESTART_RESTARTBLOCK {
        r.rax = (-libc::EINTR) as i64 as u64;
        r.orig_rax = u64::MAX;
    }
    if !(r.orig_rax as i64 >= 0
        && matches!(r.rax as i64, ERESTARTSYS | ERESTARTNOINTR | ERESTARTNOHAND))
    {
        // Not inside a syscall the kernel should look at.
        r.orig_rax = u64::MAX;
    }
}

/// Moves a thread from wherever it stopped (the exit of a remote syscall)
/// into a ptrace event stop inside get_signal, where resuming it goes
/// through the kernel's signal delivery and syscall-restart code.
fn park_in_signal_path(tid: i32) -> stasis_sys::error::Result<()> {
    ptrace::interrupt(tid)?;
    ptrace::cont(tid, 0)?;
    match ptrace::wait(tid)? {
        ptrace::Stop::Stopped { event, .. } if event == libc::PTRACE_EVENT_STOP => Ok(()),
        // Every signal is blocked until the mask is set after this: a
        // signal stop here means something went wrong.
        ptrace::Stop::Stopped { sig, .. } => Err(stasis_sys::SysError::Tracee {
            tid,
            what: format!("got signal {sig} while being parked"),
        }),
        other => Err(stasis_sys::SysError::Tracee {
            tid,
            what: format!("ended while being parked: {other:?}"),
        }),
    }
}

pub fn to_image(r: &Regs) -> X86Regs {
    X86Regs {
        r15: r.r15,
        r14: r.r14,
        r13: r.r13,
        r12: r.r12,
        rbp: r.rbp,
        rbx: r.rbx,
        r11: r.r11,
        r10: r.r10,
        r9: r.r9,
        r8: r.r8,
        rax: r.rax,
        rcx: r.rcx,
        rdx: r.rdx,
        rsi: r.rsi,
        rdi: r.rdi,
        orig_rax: r.orig_rax,
        rip: r.rip,
        cs: r.cs,
        eflags: r.eflags,
        rsp: r.rsp,
        ss: r.ss,
        fs_base: r.fs_base,
        gs_base: r.gs_base,
        ds: r.ds,
        es: r.es,
        fs: r.fs,
        gs: r.gs,
    }
}

pub fn from_image(x: &X86Regs) -> Regs {
    Regs {
        r15: x.r15,
        r14: x.r14,
        r13: x.r13,
        r12: x.r12,
        rbp: x.rbp,
        rbx: x.rbx,
        r11: x.r11,
        r10: x.r10,
        r9: x.r9,
        r8: x.r8,
        rax: x.rax,
        rcx: x.rcx,
        rdx: x.rdx,
        rsi: x.rsi,
        rdi: x.rdi,
        orig_rax: x.orig_rax,
        rip: x.rip,
        cs: x.cs,
        eflags: x.eflags,
        rsp: x.rsp,
        ss: x.ss,
        fs_base: x.fs_base,
        gs_base: x.gs_base,
        ds: x.ds,
        es: x.es,
        fs: x.fs,
        gs: x.gs,
    }
}

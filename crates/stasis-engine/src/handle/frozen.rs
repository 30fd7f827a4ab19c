//! Freezing a target: PTRACE_SEIZE + PTRACE_INTERRUPT of every thread, and
//! the remote-syscall context used while it is frozen.
//!
//! Invariant: while a [`Frozen`] exists every thread of the target is in a
//! ptrace-stop and all its signals are blocked (the original masks are
//! saved and put back). Dropping it without [`Frozen::release`] puts back
//! every register, mask and held signal, unmaps the scratch page (if one
//! was needed) and detaches, so a failed dump leaves the target running as
//! it was. Should the dumper die instead, each armed thread puts itself
//! back through rt_sigreturn ([`super::guard`]).

use std::collections::BTreeMap;

use stasis_sys::ptrace::{self, Regs, Stop};
use stasis_sys::remote::RemoteThread;
use stasis_sys::{mem, RemoteAddr};

use super::guard::{self, Armed};
use crate::error::{DumpError, SysCtx};
use crate::procfs;

const PTRACE_EVENT_STOP: i32 = 128;
/// Size of the scratch mapping made in the target for syscall results.
pub const SCRATCH_SIZE: u64 = 4096;

/// One seized thread.
pub struct SeizedThread {
    pub tid: i32,
    /// Registers at the stop, put back on release.
    pub regs: Regs,
    /// Blocked-signal mask at the stop, put back on release.
    pub sigmask: u64,
    /// A signal that was being delivered when we stopped the thread. It was
    /// taken off the queue by the kernel; it is re-sent on release and
    /// stored as pending in the image.
    pub held_signal: Option<(i32, [u8; 128])>,
    /// Set once the thread is armed against the dumper's death.
    pub armed: Option<Armed>,
}

pub struct Frozen {
    pub pid: i32,
    /// Thread-group leader first.
    pub threads: Vec<SeizedThread>,
    pub syscall_at: RemoteAddr,
    /// xxh3 of the process's vDSO text (see `mm::dump::find_syscall_insn`).
    pub vdso_hash: u64,
    pub scratch: Option<RemoteAddr>,
    released: bool,
}

impl Frozen {
    /// Seizes and stops every thread of `pid`.
    pub fn seize(pid: i32) -> Result<Frozen, DumpError> {
        let mut frozen = Frozen {
            pid,
            threads: Vec::new(),
            syscall_at: RemoteAddr(0),
            vdso_hash: 0,
            scratch: None,
            released: false,
        };
        let mut seen = BTreeMap::new();
        loop {
            let tids = list_tids(pid)?;
            let new: Vec<i32> = tids.into_iter().filter(|t| !seen.contains_key(t)).collect();
            if new.is_empty() {
                break;
            }
            for tid in new {
                seen.insert(tid, ());
                // TRACESYSGOOD: a syscall stop's code becomes SIGTRAP|0x80,
                // which is not a signal. Should the dumper die while a
                // thread sits in one (between remote syscalls), the kernel
                // "continues it with" that code, and a plain SIGTRAP would
                // be sent to the thread and kill it.
                match ptrace::seize(tid, libc::PTRACE_O_TRACESYSGOOD) {
                    Ok(()) => {}
                    Err(e) if e.errno() == Some(libc::ESRCH) => continue,
                    Err(e) if e.errno() == Some(libc::EPERM) => {
                        return Err(DumpError::Refused {
                            pid,
                            what: format!(
                                "thread {tid} cannot be traced ({e}); is it already traced by a debugger?"
                            ),
                        })
                    }
                    Err(e) => return Err(e).dump_ctx(pid, "seize"),
                }
                // From here on Drop detaches this thread.
                frozen.threads.push(SeizedThread {
                    tid,
                    regs: zero_regs(),
                    sigmask: 0,
                    held_signal: None,
                    armed: None,
                });
                ptrace::interrupt(tid).dump_ctx(pid, "interrupt")?;
                let idx = frozen.threads.len() - 1;
                if !wait_interrupted(pid, &mut frozen.threads[idx])? {
                    // A thread that ended on its way to the stop is no
                    // longer part of the process.
                    frozen.threads.pop();
                }
            }
        }
        // Leader first.
        frozen.threads.sort_by_key(|t| (t.tid != pid, t.tid));
        if frozen.threads.first().map(|t| t.tid) != Some(pid) {
            return Err(DumpError::NoSuchProcess(pid));
        }
        for t in &mut frozen.threads {
            t.regs = ptrace::get_regs(t.tid).dump_ctx(pid, "get registers")?;
            t.sigmask = ptrace::get_sigmask(t.tid).dump_ctx(pid, "get signal mask")?;
        }
        frozen.arm()?;
        Ok(frozen)
    }

    /// Arms every thread (see [`super::guard`]), or falls back to blocking
    /// their signals unguarded. Signals held while seizing go back into
    /// their threads' queues, so a dumper death cannot lose them either.
    fn arm(&mut self) -> Result<(), DumpError> {
        let pid = self.pid;
        let gadgets = guard::find_gadgets(pid)?;
        for t in &mut self.threads {
            let armed = match &gadgets {
                // rt_sigreturn would look for a token on a shadow stack,
                // which our frame has not (shadow stacks are refused later).
                Some(_) if guard::has_shadow_stack(pid, t.tid) => None,
                Some(g) => {
                    let extra = if t.tid == pid { guard::SCRATCH_LEN } else { 0 };
                    match guard::arm(pid, t.tid, &t.regs, t.sigmask, g, extra) {
                        Ok(a) => Some(a),
                        Err(e) => {
                            tracing::debug!("pid {pid} thread {}: not armed: {e}", t.tid);
                            None
                        }
                    }
                }
                None => None,
            };
            if armed.is_none() {
                // Block everything while we run syscalls in it.
                ptrace::set_sigmask(t.tid, !0).dump_ctx(pid, "block signals")?;
            }
            t.armed = armed;
        }
        let g = match gadgets {
            Some(g) if self.is_armed() => g,
            _ => {
                tracing::warn!(
                    "pid {pid}: no room or gadgets to guard its threads; if stasis is killed during this dump, the process may be left with its signals blocked"
                );
                return Ok(());
            }
        };
        self.syscall_at = g.syscall_ret;
        self.scratch = self.threads[0].armed.map(|a| a.scratch);
        self.requeue_held()
    }

    /// True when every thread is armed and scratch memory is on the stack.
    pub fn is_armed(&self) -> bool {
        self.threads.iter().all(|t| t.armed.is_some())
    }

    /// Puts signals taken off a queue while seizing back into it: the
    /// leader sends each to its thread (rt_tgsigqueueinfo from the same
    /// process may carry the kernel's siginfo). A signal that cannot be
    /// queued again stays held and is delivered at release.
    fn requeue_held(&mut self) -> Result<(), DumpError> {
        let scratch = self.scratch();
        for i in 0..self.threads.len() {
            let Some((sig, info)) = self.threads[i].held_signal else {
                continue;
            };
            let tid = self.threads[i].tid;
            mem::write(self.pid, scratch, &info).dump_ctx(self.pid, "write siginfo")?;
            let r = self.leader().syscall_raw(
                libc::SYS_rt_tgsigqueueinfo,
                &[self.pid as u64, tid as u64, sig as u64, scratch.0],
            );
            match r {
                Ok(0) => self.threads[i].held_signal = None,
                Ok(e) => tracing::debug!("pid {}: signal {sig} not queued again: {e}", self.pid),
                Err(e) => return Err(e).dump_ctx(self.pid, "queue held signal again"),
            }
        }
        Ok(())
    }

    /// The leader as a remote-syscall runner.
    pub fn leader(&self) -> RemoteThread {
        self.thread(self.pid)
    }

    pub fn thread(&self, tid: i32) -> RemoteThread {
        let ret_frame = self
            .threads
            .iter()
            .find(|t| t.tid == tid)
            .and_then(|t| t.armed)
            .map(|a| a.frame);
        RemoteThread {
            tid,
            syscall_at: self.syscall_at,
            ret_frame,
        }
    }

    /// Maps a one-page scratch area in the target for syscall out-params.
    /// It is shared anonymous memory so it never merges with the target's
    /// own private mappings.
    pub fn map_scratch(&mut self) -> Result<RemoteAddr, DumpError> {
        let r = self
            .leader()
            .syscall(
                "mmap",
                libc::SYS_mmap,
                &[
                    0,
                    SCRATCH_SIZE,
                    (libc::PROT_READ | libc::PROT_WRITE) as u64,
                    (libc::MAP_SHARED | libc::MAP_ANONYMOUS) as u64,
                    u64::MAX,
                    0,
                ],
            )
            .dump_ctx(self.pid, "map scratch page")?;
        self.scratch = Some(RemoteAddr(r));
        Ok(RemoteAddr(r))
    }

    pub fn scratch(&self) -> RemoteAddr {
        self.scratch.expect("scratch mapped")
    }

    /// Runs a syscall in `tid` and returns its value.
    pub fn call(
        &self,
        tid: i32,
        name: &'static str,
        nr: i64,
        args: &[u64],
    ) -> Result<u64, DumpError> {
        self.thread(tid)
            .syscall(name, nr, args)
            .dump_ctx(self.pid, name)
    }

    /// Reads `len` bytes of the scratch page.
    pub fn read_scratch(&self, len: usize) -> Result<Vec<u8>, DumpError> {
        let mut buf = vec![0u8; len];
        mem::read(self.pid, self.scratch(), &mut buf).dump_ctx(self.pid, "read scratch")?;
        Ok(buf)
    }

    /// Unmaps the scratch page and puts every thread back as it was.
    /// With `kill`, the process is then killed; otherwise it runs on.
    pub fn release(mut self, kill: bool) -> Result<(), DumpError> {
        if kill {
            self.send_kill();
            self.reap();
            return Ok(());
        }
        self.released = true;
        self.restore_threads()?;
        for t in &self.threads {
            let sig = t.held_signal.map(|h| h.0).unwrap_or(0);
            ptrace::detach(t.tid, sig).dump_ctx(self.pid, "detach")?;
        }
        Ok(())
    }

    /// SIGKILL, without waiting: it ends the process from any stop.
    fn send_kill(&self) {
        let _ = stasis_sys::util::kill(self.pid, libc::SIGKILL);
    }

    /// Waits for a killed process's threads to go.
    fn reap(mut self) {
        self.released = true;
        // Reap the traced threads before the leader: the leader's exit is
        // not reported while other threads of its group remain.
        for t in self.threads.iter().rev() {
            let _ = ptrace::wait(t.tid);
        }
    }

    fn restore_threads(&mut self) -> Result<(), DumpError> {
        let mut first_err = None;
        let mapped = self.scratch.take().filter(|_| !self.is_armed());
        if let Some(s) = mapped {
            if let Err(e) = self
                .leader()
                .syscall("munmap", libc::SYS_munmap, &[s.0, SCRATCH_SIZE])
            {
                first_err.get_or_insert(DumpError::Sys {
                    pid: self.pid,
                    step: "unmap scratch page",
                    source: e,
                });
            }
        }
        for t in &self.threads {
            // Mask first: released in between, an armed thread still
            // returns through its frame.
            let r = ptrace::set_sigmask(t.tid, t.sigmask)
                .and_then(|_| ptrace::set_regs(t.tid, &t.regs));
            if let Err(e) = r {
                first_err.get_or_insert(DumpError::Sys {
                    pid: self.pid,
                    step: "restore registers",
                    source: e,
                });
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        if self.threads.iter().all(|t| t.regs.rip != 0) {
            let _ = self.restore_threads();
        }
        for t in &self.threads {
            let sig = t.held_signal.map(|h| h.0).unwrap_or(0);
            let _ = ptrace::detach(t.tid, sig);
        }
    }
}

fn zero_regs() -> Regs {
    ptrace::zero_regs()
}

/// Thread ids of `pid` from /proc/PID/task.
pub fn list_tids(pid: i32) -> Result<Vec<i32>, DumpError> {
    let path = format!("/proc/{pid}/task");
    let rd = std::fs::read_dir(&path).map_err(|e| procfs::io_err(pid, path.clone(), e))?;
    let mut tids: Vec<i32> = rd
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    tids.sort();
    Ok(tids)
}

/// Waits for the stop that PTRACE_INTERRUPT causes. A signal-delivery stop
/// can come first; its signal is held so it is not lost. False if a thread
/// other than the leader exited instead of stopping.
fn wait_interrupted(pid: i32, t: &mut SeizedThread) -> Result<bool, DumpError> {
    loop {
        match ptrace::wait(t.tid).dump_ctx(pid, "wait for stop")? {
            Stop::Stopped {
                event: PTRACE_EVENT_STOP,
                sig,
            } => {
                if sig != libc::SIGTRAP {
                    return Err(DumpError::Refused {
                        pid,
                        what: format!(
                            "thread {} is stopped by job control (signal {sig}); continue it with SIGCONT first",
                            t.tid
                        ),
                    });
                }
                return Ok(true);
            }
            Stop::Stopped { sig, event: 0 } => {
                // Signal-delivery stop: keep the signal, then ask again.
                let info = ptrace::get_siginfo(t.tid).dump_ctx(pid, "get siginfo")?;
                if t.held_signal.is_some() {
                    return Err(DumpError::Refused {
                        pid,
                        what: format!(
                            "thread {} keeps receiving signals while being frozen",
                            t.tid
                        ),
                    });
                }
                t.held_signal = Some((sig, info));
                // The INTERRUPT is still pending; resume without the signal
                // and the interrupt stop follows at once.
                ptrace::cont(t.tid, 0).dump_ctx(pid, "resume to interrupt")?;
            }
            Stop::Stopped { .. } => {
                ptrace::cont(t.tid, 0).dump_ctx(pid, "resume to interrupt")?;
            }
            Stop::Exited(_) | Stop::Killed(_) if t.tid != pid && t.held_signal.is_none() => {
                return Ok(false)
            }
            Stop::Exited(_) | Stop::Killed(_) => {
                return Err(DumpError::Refused {
                    pid,
                    what: format!("thread {} exited while being frozen", t.tid),
                })
            }
        }
    }
}

/// A process of the tree that had already exited (a zombie): it cannot
/// be traced, and only its /proc/PID/stat is left.
pub struct Zombie {
    pub stat: stasis_proc::Stat,
}

/// Every process of a tree, frozen (or recorded as a zombie).
///
/// Invariant: processes are in breadth-first order from the root, parents
/// before children; dropping the tree detaches them all (see [`Frozen`]).
pub struct FrozenTree {
    pub procs: Vec<Frozen>,
    pub zombies: Vec<Zombie>,
}

impl FrozenTree {
    /// Freezes `root` and every descendant. `check` runs on each live
    /// process before it is seized and may refuse it. A process is frozen
    /// before its children are listed, so none can appear unseen.
    pub fn seize(
        root: i32,
        check: &mut dyn FnMut(i32) -> Result<(), DumpError>,
    ) -> Result<FrozenTree, DumpError> {
        let mut tree = FrozenTree {
            procs: Vec::new(),
            zombies: Vec::new(),
        };
        let mut queue = std::collections::VecDeque::from([root]);
        let mut seen = std::collections::BTreeSet::from([root]);
        while let Some(pid) = queue.pop_front() {
            let stat = read_stat(pid)?;
            if matches!(stat.state, 'Z' | 'X') {
                if pid == root {
                    return Err(DumpError::Refused {
                        pid,
                        what: "is a zombie".into(),
                    });
                }
                tree.zombies.push(Zombie { stat });
                continue;
            }
            check(pid)?;
            match Frozen::seize(pid) {
                Ok(f) => tree.procs.push(f),
                Err(e) => {
                    // It may have exited just now: then it is a zombie.
                    match read_stat(pid) {
                        Ok(s) if pid != root && matches!(s.state, 'Z' | 'X') => {
                            tree.zombies.push(Zombie { stat: s });
                            continue;
                        }
                        _ => return Err(e),
                    }
                }
            }
            for c in children_of(pid)? {
                if seen.insert(c as i32) {
                    queue.push_back(c as i32);
                }
            }
        }
        Ok(tree)
    }

    /// Every pid of the tree, zombies included.
    pub fn pids(&self) -> Vec<i32> {
        self.procs
            .iter()
            .map(|f| f.pid)
            .chain(self.zombies.iter().map(|z| z.stat.pid as i32))
            .collect()
    }

    /// Puts every process back as it was (or kills them all, with `kill`).
    /// Every process is released even if one fails; the first error is
    /// returned.
    pub fn release(self, kill: bool) -> Result<(), DumpError> {
        if kill {
            // Every process gets its SIGKILL before any is waited for, so
            // a dumper that dies meanwhile cannot leave half a tree alive.
            for f in &self.procs {
                f.send_kill();
            }
            for f in self.procs.into_iter().rev() {
                f.reap();
            }
            return Ok(());
        }
        // Children first: a parent stays stopped while its children go, so
        // it never sees them die.
        let mut first = None;
        for f in self.procs.into_iter().rev() {
            if let Err(e) = f.release(kill) {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }
}

fn read_stat(pid: i32) -> Result<stasis_proc::Stat, DumpError> {
    procfs::proc_stat(pid)
}

/// Children of every thread of `pid`.
pub fn children_of(pid: i32) -> Result<Vec<u32>, DumpError> {
    let mut out = Vec::new();
    for tid in list_tids(pid)? {
        if let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/children")) {
            out.extend(stasis_proc::parse_children(&s));
        }
    }
    Ok(out)
}

//! The restore driver.
//!
//! 1. Plan ([`plan`]): the image decodes (version, checksums,
//!    completeness), the pages hash right, the kernel and CPU match, every
//!    pid is free, every file is there and unchanged ([`checks`]), the
//!    tree's sessions and groups can be rebuilt ([`crate::tree`]), and the
//!    memory plan is made. Nothing is created before this passes, and
//!    `dump --verify` runs the same planner ([`verify`]).
//! 2. If the tree had an IPC namespace of its own, make a new one for the
//!    restorer, which every process it forks inherits, and create its
//!    System V objects there with their ids ([`crate::ipc`]). Open every
//!    open file description and create every shared memory object once,
//!    in the restorer, at fixed descriptor numbers above anything the tree
//!    uses (the *table*).
//! 3. Fork the root with its pid (clone3 + set_tid); every process forks
//!    its own children the same way and sets up its descriptors and
//!    identity in Rust ([`child`]), then reports and blocks.
//! 4. Seize them all. Put every process in its group (leaders first), let
//!    group stand-ins and zombies go, then drive each live process with
//!    remote syscalls from its trampoline: memory switch, signals, timers,
//!    threads, credentials.
//! 5. Set every thread's final registers and detach them all together, so
//!    no process of the tree runs before all are restored.
//!
//! Any failure after the first fork kills every process created so far
//! (ptrace EXITKILL and an explicit SIGKILL), so nothing half-restored is
//! left behind.

pub mod checks;
pub mod child;
pub mod plan;
pub mod verify;

use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};

use stasis_image::{self as img, Image, PageRun, Process};
use stasis_sys::{ptrace, util};

use crate::error::{RestoreError, SysCtx};
use crate::handle::Target;
use crate::tree::{self, Origin, Plan};
use crate::{fault_point, files, identity, mm, signals, threads, timers, trampoline, Progress};
pub use checks::validate;
pub use plan::{Mode, Problems, RestorePlan};

#[derive(Debug, Clone, Default)]
pub struct RestoreOptions {
    /// Return once the tree runs (`-d`); otherwise wait for the root and
    /// report its exit status.
    pub detach: bool,
    pub shell_job: bool,
    pub pidfile: Option<PathBuf>,
    /// Restore into a new PID namespace, where the image's pids are free
    /// whatever runs on the host. Required when the tree's root was PID 1.
    pub pidns: bool,
}

#[derive(Debug, Clone)]
pub struct Restored {
    pub pid: i32,
    /// Processes restored, zombies included.
    pub processes: usize,
    /// Exit status when the restore waited for the root.
    pub exit_code: Option<i32>,
    pub total_ms: f64,
}

/// Kills every process created so far unless disarmed.
struct KillGuard {
    pids: Vec<i32>,
    /// Processes we trace: their exits are reported to us first.
    seized: Vec<i32>,
    armed: bool,
}

impl Drop for KillGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let tids: Vec<(i32, Vec<i32>)> = self
            .seized
            .iter()
            .map(|p| (*p, crate::handle::frozen::list_tids(*p).unwrap_or_default()))
            .collect();
        for pid in &self.pids {
            let _ = util::kill(*pid, libc::SIGKILL);
        }
        // We trace every thread of a seized process: reap the others
        // first, or the leader's exit is never reported.
        for (pid, tids) in tids {
            for tid in tids.iter().filter(|t| **t != pid) {
                let _ = ptrace::wait(*tid);
            }
            let _ = ptrace::wait(pid);
        }
    }
}

/// A seized process of the new tree.
struct Live<'a> {
    p: &'a Process,
    t: Target,
    /// Its per-process files (pages file, mapped files).
    helper_base: RawFd,
    file_fds: BTreeMap<(String, bool), RawFd>,
    tramp: u64,
    /// Regions it inherited copy-on-write (see [`mm::cow`]).
    inherited: BTreeMap<(u64, u64), &'a [PageRun]>,
}

/// Restores the image in `dir`. With the image of a tree that had an IPC
/// namespace of its own, the calling thread moves to a new IPC namespace
/// for good (see [`crate::ipc`]).
pub fn restore(
    dir: &Path,
    opts: &RestoreOptions,
    progress: &dyn Progress,
) -> Result<Restored, RestoreError> {
    let t0 = std::time::Instant::now();
    progress.phase("validating", 0);
    let image = img::read_core(dir)?;
    let RestorePlan {
        tree: plan,
        cow,
        needed,
        pages,
    } = plan::plan(&image, Some(dir), opts, Mode::Restore).map_err(Problems::first)?;
    let pages = pages.ok_or_else(|| RestoreError::Refused("the plan has no page store".into()))?;
    let inv = &image.inventory;
    if fault_point("restore-before-fork") {
        return Err(RestoreError::Injected("restore-before-fork"));
    }
    if let Ok((_, hard)) = util::getrlimit(libc::RLIMIT_NOFILE) {
        let _ = util::setrlimit(libc::RLIMIT_NOFILE, hard, hard);
    }
    let tty = if opts.shell_job {
        checks::own_tty()
    } else {
        None
    };
    // The tree's own IPC namespace: made here, before the first fork, so
    // that every process of the tree inherits it.
    let ipc = match &inv.ipc {
        Some(ns) => {
            progress.phase("System V IPC", 0);
            Some(crate::ipc::restore(ns, pages.file())?)
        }
        None => None,
    };

    // The table: status and block pipes, shmem and file objects (which
    // some descriptions reopen), descriptions.
    let max_fd = image
        .processes
        .iter()
        .flat_map(|p| p.fds.iter().map(|f| f.fd))
        .max()
        .unwrap_or(2)
        .max(2);
    let (status_r, status_w) = util::pipe().rst_ctx(0, "pipe")?;
    let (block_r, block_w) = util::pipe().rst_ctx(0, "pipe")?;
    let base = max_fd.max(util::highest_fd()) + 1;
    let (status_fd, block_fd) = (base, base + 1);
    util::dup_to(status_w.as_raw_fd(), status_fd, false).rst_ctx(0, "dup")?;
    util::dup_to(block_r.as_raw_fd(), block_fd, false).rst_ctx(0, "dup")?;
    drop((status_w, block_r));
    let mut table = TableGuard(base, base + 2);
    let shmem =
        mm::restore::create_shmem(&image.pagemaps, &image.processes, pages.file(), base + 2)?;
    table.1 = base + 2 + shmem.len() as RawFd;
    let descs = files::Descriptions::open(
        &image.processes,
        &image.pipes,
        &shmem,
        tty.as_deref(),
        table.1,
    )?;
    let helper_base = descs.end;
    table.1 = helper_base;

    // Opened again by path in each child, never through a link (see
    // stasis_image::store).
    let pages_path = dir.join(img::pages_file_name(inv)).display().to_string();
    // Per-process plans.
    let premaps = cow.premaps.clone();
    tracing::debug!(
        "copy-on-write regions to premap: {:?}",
        cow.premaps
            .iter()
            .flatten()
            .map(|m| (m.start, m.end, m.runs.len()))
            .collect::<Vec<_>>()
    );
    let mut plans = Vec::with_capacity(image.processes.len());
    let mut file_fds = Vec::with_capacity(image.processes.len());
    for (i, p) in image.processes.iter().enumerate() {
        let mut helpers: Vec<(String, i32)> =
            vec![(pages_path.clone(), libc::O_RDONLY | libc::O_NOFOLLOW)];
        let mut fds = BTreeMap::new();
        if !p.zombie {
            for (path, w) in needed[i].iter().cloned() {
                fds.insert((path.clone(), w), helper_base + helpers.len() as RawFd);
                helpers.push((path, if w { libc::O_RDWR } else { libc::O_RDONLY }));
            }
        } else {
            helpers.clear();
        }
        file_fds.push(fds);
        plans.push(child::ChildPlan {
            process: p,
            node: &plan.nodes[i],
            is_root: i == plan.root,
            helpers,
            helper_base,
            // Placed again here, not taken from the plan: the restorer's
            // own memory (IPC attachments) changed since, and the child
            // inherits it.
            tramp_addr: trampoline::find_hole(
                &p.vmas,
                &cow.visible[i].keys().copied().collect::<Vec<_>>(),
            )?,
            premaps: &premaps[i],
        });
    }
    let common = child::Common {
        plans: &plans,
        slot: &descs.slot,
        table_base: base,
        status_fd,
        block_fd,
        pages: &pages_path,
    };

    progress.phase("creating processes", 0);
    let root = &image.processes[plan.root];
    let root_pid = root.pid as i32;
    // With -d the root becomes a child of our caller (CLONE_PARENT), not
    // of this short-lived restorer: it is not reparented when we exit,
    // and its parent-death signal keeps its meaning.
    // SAFETY: stasis restore is single-threaded here (no progress thread
    // has been started; the CLI draws without a ticker), and the child
    // only runs `child::run`, which exits or is taken over.
    let forked = unsafe {
        if opts.pidns {
            stasis_sys::clone::fork_into_pidns(opts.detach)
        } else {
            stasis_sys::clone::fork_with_pid(root_pid, libc::SIGCHLD, opts.detach)
        }
    };
    let first = match forked {
        Ok(0) if opts.pidns && root_pid != 1 => child::run_init(&common, plan.root),
        Ok(0) => child::run(&common, plan.root),
        Ok(pid) => pid,
        Err(e) if e.errno() == Some(libc::EEXIST) => {
            return Err(RestoreError::Refused(format!(
                "pid {root_pid} is in use; stop that process or restore elsewhere"
            )))
        }
        Err(e) => {
            return Err(RestoreError::Sys {
                pid: root_pid,
                step: "clone3 with set_tid".into(),
                source: e,
            })
        }
    };
    // In a new namespace, killing its init kills everything in it.
    let mut guard = KillGuard {
        pids: if opts.pidns {
            vec![first]
        } else {
            image
                .processes
                .iter()
                .map(|p| p.pid as i32)
                .chain(plan.helpers.keys().map(|h| *h as i32))
                .collect()
        },
        seized: Vec::new(),
        armed: true,
    };
    // Our copies of the table are not needed any more.
    drop(table);
    let notes = wait_reports(&status_r, image.processes.len() + plan.helpers.len())?;
    let mut cow = cow;
    cow.apply_notes(&image.processes, &notes);
    // Inside a new namespace the tree's pids are not ours.
    let hosts = if opts.pidns {
        ns_pids(first)?
    } else {
        BTreeMap::new()
    };
    let host = |pid: u32| hosts.get(&pid).copied().unwrap_or(pid as i32);
    guard.pids.extend(hosts.values());

    // Seize everything but the group stand-ins.
    let order = tree::creation_order(&plan);
    let mut targets: BTreeMap<usize, Target> = BTreeMap::new();
    for &i in &order {
        let p = &image.processes[i];
        let pid = host(p.pid);
        ptrace::seize(pid, libc::PTRACE_O_TRACECLONE | libc::PTRACE_O_EXITKILL)
            .rst_ctx(pid, "seize the new process")?;
        guard.seized.push(pid);
        ptrace::interrupt(pid).rst_ctx(pid, "interrupt the new process")?;
        match ptrace::wait(pid).rst_ctx(pid, "wait for the new process")? {
            ptrace::Stop::Stopped { .. } => {}
            other => {
                return Err(RestoreError::Failed {
                    pid,
                    what: format!("the new process ended early: {other:?}"),
                })
            }
        }
        let tramp = plans[i].tramp_addr;
        targets.insert(
            i,
            Target {
                pid,
                ns_pid: p.pid as i32,
                syscall_at: stasis_sys::RemoteAddr(tramp),
                scratch: stasis_sys::RemoteAddr(tramp + trampoline::CODE_SIZE),
                scratch_len: trampoline::TRAMP_SIZE - trampoline::CODE_SIZE,
                tids: Default::default(),
            },
        );
    }
    let root_host = host(inv.root_pid);
    check_xstate(root_host, &image)?;
    progress.phase("process groups", 0);
    set_groups(&image.processes, &plan, &targets)?;
    set_foreground(&image.processes, &targets)?;
    end_helpers(&plan, &targets, &host)?;
    end_zombies(&image.processes, &targets)?;
    guard.seized.retain(|pid| {
        image
            .processes
            .iter()
            .any(|p| host(p.pid) == *pid && !p.zombie)
    });

    let runs_of = |pid: u32| -> &[PageRun] {
        image
            .pagemaps
            .iter()
            .find(|m| m.pid == pid && m.shmem_id == 0)
            .map(|m| m.runs.as_slice())
            .unwrap_or(&[])
    };
    let mut live = Vec::new();
    for &i in &order {
        let p = &image.processes[i];
        if p.zombie {
            continue;
        }
        let l = Live {
            p,
            t: targets.remove(&i).expect("seized"),
            helper_base,
            file_fds: std::mem::take(&mut file_fds[i]),
            tramp: plans[i].tramp_addr,
            inherited: cow.inherited(i),
        };
        progress.phase("memory", 0);
        restore_process(&l, runs_of(p.pid), &shmem, &image.processes)?;
        live.push(l);
    }
    for l in &live {
        finish_process(l, base)?;
    }
    // Every process has attached its segments again: removed ones need
    // the restorer's attachments no longer.
    if let Some(ipc) = ipc {
        ipc.finish();
    }
    if fault_point("restore-before-resume") {
        return Err(RestoreError::Injected("restore-before-resume"));
    }
    for l in &live {
        for th in &l.p.threads {
            threads::finish_thread(&l.t, th)?;
        }
    }
    if let Some(f) = &opts.pidfile {
        std::fs::write(f, format!("{root_host}\n")).map_err(|e| RestoreError::Failed {
            pid: root_host,
            what: format!("cannot write pidfile {}: {e}", f.display()),
        })?;
    }
    // Resume everything together.
    for l in &live {
        for th in &l.p.threads {
            ptrace::detach(l.t.host(th.tid as i32), 0).rst_ctx(l.t.pid, "detach")?;
        }
    }
    guard.armed = false;
    drop(block_w);
    // Full-screen programs on a pty of the tree redraw on SIGWINCH (as
    // screen did after a reattach); the default action ignores it.
    for p in image.processes.iter().filter(|p| p.ctty_pty != 0) {
        if p.tty_fg_pgid != 0 {
            let _ = util::kill(-host(p.tty_fg_pgid), libc::SIGWINCH);
        }
    }
    let total_ms = t0.elapsed().as_secs_f64() * 1e3;
    let exit_code = if opts.detach {
        None
    } else {
        // The root, or the namespace's init, which ends as the root does.
        Some(util::wait_exit(first).rst_ctx(root_host, "wait for exit")?)
    };
    Ok(Restored {
        pid: root_host,
        processes: image.processes.len(),
        exit_code,
        total_ms,
    })
}

/// The restorer's copy of the table (descriptor numbers `.0..​.1`), closed
/// once the processes have theirs, or on error.
struct TableGuard(RawFd, RawFd);

impl Drop for TableGuard {
    fn drop(&mut self) {
        if self.1 > self.0 {
            let _ = util::close_range(self.0 as u32, (self.1 - 1) as u32);
        }
    }
}

/// Inner pid -> our pid, for every process below `top` (the new PID
/// namespace's first process), from NSpid in /proc.
fn ns_pids(top: i32) -> Result<BTreeMap<u32, i32>, RestoreError> {
    let mut out = BTreeMap::new();
    let mut queue = vec![top];
    while let Some(pid) = queue.pop() {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| {
            RestoreError::Failed {
                pid,
                what: format!("cannot read its status: {e}"),
            }
        })?;
        if let Some(inner) = stasis_proc::parse_status(&status)
            .ok()
            .and_then(|s| s.ns_pid.last().copied())
        {
            out.insert(inner, pid);
        }
        queue.extend(
            crate::handle::frozen::children_of(pid)
                .unwrap_or_default()
                .into_iter()
                .map(|c| c as i32),
        );
    }
    Ok(out)
}

/// Reads status reports until `n` processes are ready; the first failure
/// (or every process gone) is an error.
/// Waits for `n` reports; returns the notes of those that had one, by pid.
/// Longest wait for the next process's setup report.
const REPORT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

fn wait_reports(status_r: &impl AsRawFd, n: usize) -> Result<BTreeMap<u32, String>, RestoreError> {
    let mut notes = BTreeMap::new();
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 4096];
    let mut ready = 0;
    while ready < n {
        // Each process reports once its own setup is done; a long silence
        // means one is stuck (a blocking open, say), which is an error,
        // never a hang.
        let fd = status_r.as_raw_fd();
        if !util::wait_readable(fd, REPORT_TIMEOUT).unwrap_or(true) {
            return Err(RestoreError::Failed {
                pid: 0,
                what: format!(
                    "the new processes stopped reporting: {ready} of {n} were set up after waiting {} s for the next",
                    REPORT_TIMEOUT.as_secs()
                ),
            });
        }
        let got = util::read_raw(fd, &mut chunk).unwrap_or(0);
        if got == 0 {
            return Err(RestoreError::Failed {
                pid: 0,
                what: format!(
                    "the new processes ended before they were set up ({ready} of {n} were ready)"
                ),
            });
        }
        buf.extend_from_slice(&chunk[..got]);
        let (reports, used) = child::parse_reports(&buf);
        buf.drain(..used);
        for (pid, r) in reports {
            match r {
                Ok(note) => {
                    ready += 1;
                    if !note.is_empty() {
                        notes.insert(pid, note);
                    }
                }
                Err(what) => {
                    return Err(RestoreError::Failed {
                        pid: pid as i32,
                        what,
                    })
                }
            }
        }
    }
    Ok(notes)
}

fn check_xstate(pid: i32, image: &Image) -> Result<(), RestoreError> {
    let xs = ptrace::get_xstate(pid)
        .rst_ctx(pid, "probe FPU state size")?
        .len();
    for p in &image.processes {
        if let Some(th) = p.threads.iter().find(|th| th.xstate.len() != xs) {
            return Err(RestoreError::Refused(format!(
                "pid {}: the image's FPU state is {} bytes, this CPU's is {xs}; restore on the same kind of CPU",
                p.pid,
                th.xstate.len()
            )));
        }
    }
    Ok(())
}

/// Puts every process in its process group: group leaders first, so that
/// each group exists before its members join it.
fn set_groups(
    procs: &[Process],
    plan: &Plan,
    targets: &BTreeMap<usize, Target>,
) -> Result<(), RestoreError> {
    let ours = nix::unistd::getpgrp().as_raw() as u32;
    let mut order: Vec<usize> = targets.keys().copied().collect();
    order.sort_by_key(|&i| procs[i].pgid != procs[i].pid);
    for i in order {
        let p = &procs[i];
        let want = match plan.pgid[i] {
            Origin::Tree(g) => g,
            Origin::Outside => ours,
        };
        let t = &targets[&i];
        // The group as the process sees it (NSpgid), not as /proc/stat
        // shows it from here.
        let now = stasis_proc::parse_status(
            &std::fs::read_to_string(format!("/proc/{}/status", t.pid)).unwrap_or_default(),
        )
        .ok()
        .and_then(|s| s.ns_pgid.last().copied())
        .unwrap_or(0);
        if now == want || (plan.nodes[i].setsid && want == p.pid) {
            continue;
        }
        t.lcall("setpgid", libc::SYS_setpgid, &[0, want as u64])?;
    }
    Ok(())
}

/// Puts back the foreground process group of each session's terminal.
fn set_foreground(
    procs: &[Process],
    targets: &BTreeMap<usize, Target>,
) -> Result<(), RestoreError> {
    for (&i, t) in targets {
        let p = &procs[i];
        if p.tty_fg_pgid == 0 {
            continue;
        }
        let Some(fd) = child::tty_fd(p) else { continue };
        let at = t.put(0, &(p.tty_fg_pgid as i32).to_ne_bytes())?;
        t.lcall(
            "ioctl(TIOCSPGRP)",
            libc::SYS_ioctl,
            &[fd as u64, libc::TIOCSPGRP, at],
        )?;
    }
    Ok(())
}

/// Kills the stand-ins of exited group leaders and has the process that
/// forked each reap it, so nobody ever sees them.
fn end_helpers(
    plan: &Plan,
    targets: &BTreeMap<usize, Target>,
    host: &dyn Fn(u32) -> i32,
) -> Result<(), RestoreError> {
    for (&h, &by) in &plan.helpers {
        util::kill(host(h), libc::SIGKILL).rst_ctx(host(h), "kill group helper")?;
        let t = &targets[&by];
        t.lcall(
            "wait4",
            libc::SYS_wait4,
            &[h as u64, 0, libc::__WALL as u64, 0],
        )?;
    }
    Ok(())
}

/// Lets every zombie exit with its status, and waits until it is one.
fn end_zombies(procs: &[Process], targets: &BTreeMap<usize, Target>) -> Result<(), RestoreError> {
    for (&i, t) in targets {
        let p = &procs[i];
        if !p.zombie {
            continue;
        }
        let st = p.exit_status;
        let (nr, args) = if libc::WIFSIGNALED(st) {
            // Core dumps are off in the new process; the status loses
            // its core-dumped bit at worst.
            (
                libc::SYS_kill,
                vec![p.pid as u64, libc::WTERMSIG(st) as u64],
            )
        } else {
            (libc::SYS_exit_group, vec![libc::WEXITSTATUS(st) as u64])
        };
        if libc::WIFSIGNALED(st) {
            let lim = t.put(0, &[0u8; 16])?;
            t.lcall(
                "prlimit64(RLIMIT_CORE)",
                libc::SYS_prlimit64,
                &[0, libc::RLIMIT_CORE as u64, lim, 0],
            )?;
        }
        t.thread(t.pid)
            .launch_and_detach(nr, &args, 0)
            .rst_ctx(t.pid, "let the zombie exit")?;
        let start = std::time::Instant::now();
        loop {
            let s = std::fs::read_to_string(format!("/proc/{}/stat", t.pid)).unwrap_or_default();
            let state = stasis_proc::parse_stat(&s).map(|s| s.state).unwrap_or('X');
            if matches!(state, 'Z' | 'X') {
                break;
            }
            if start.elapsed() > std::time::Duration::from_secs(10) {
                return Err(RestoreError::Failed {
                    pid: t.pid,
                    what: "the zombie did not exit".into(),
                });
            }
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
    }
    Ok(())
}

/// Memory switch, signals, timers and threads of one live process.
fn restore_process(
    l: &Live<'_>,
    runs: &[PageRun],
    shmem: &BTreeMap<u64, RawFd>,
    procs: &[Process],
) -> Result<(), RestoreError> {
    let (p, t, tramp) = (l.p, &l.t, l.tramp);
    let exe_fd = match shmem.get(&p.exe_object) {
        Some(fd) => *fd,
        None => l.file_fds[&(p.exe_path.clone(), false)],
    };
    mm::restore::switch_memory(
        t,
        p,
        runs,
        l.helper_base,
        &l.file_fds,
        shmem,
        (tramp, tramp + trampoline::TRAMP_SIZE),
        &l.inherited,
    )?;
    mm::restore::set_mm(t, p, exe_fd)?;
    files::uring::restore(t, p)?;
    signals::restore_sigactions(t, &p.sigactions)?;
    timers::restore_itimers(t, &p.itimers, timers::sigalrm_pending(p))?;
    threads::create_threads(t, &p.threads)?;
    // After the threads: a timer may notify one of them (SIGEV_THREAD_ID).
    timers::restore_posix_timers(t, &p.posix_timers)?;
    for th in &p.threads {
        threads::restore_thread_state(t, th)?;
    }
    // Exit signals of zombie children, sent while we restored.
    let sigs: Vec<u32> = procs
        .iter()
        .filter(|c| c.zombie && c.ppid == p.pid)
        .map(|c| c.exit_signal)
        .collect();
    signals::drain(t, &sigs)?;
    signals::restore_shared_pending(t, &p.shared_pending)?;
    // Every process of the tree exists by now.
    files::pidfd::install(t, p)?;
    Ok(())
}

/// Closes the table, sets credentials and prctls, drops the trampoline.
fn finish_process(l: &Live<'_>, base: RawFd) -> Result<(), RestoreError> {
    let (p, t, tramp) = (l.p, &l.t, l.tramp);
    t.lcall(
        "close_range",
        libc::SYS_close_range,
        &[base as u64, u32::MAX as u64, 0],
    )?;
    // After the close: closing any fd of a file drops the process's POSIX
    // locks on it, and the table held the same files.
    files::locks::take_posix(t, p)?;
    if let Some(c) = &p.creds {
        for th in &p.threads {
            identity::restore_creds(t, th.tid as i32, c, p.no_new_privs)?;
        }
    }
    identity::restore_prctls(t, p)?;
    // Last remote syscall: drop the trampoline.
    t.lcall("munmap", libc::SYS_munmap, &[tramp, trampoline::TRAMP_SIZE])?;
    Ok(())
}

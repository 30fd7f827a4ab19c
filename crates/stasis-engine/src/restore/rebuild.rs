//! Rebuilding each live process with remote syscalls from its
//! trampoline, one resource after another: memory switch, io_uring,
//! signals, timers, threads, pidfds; then, once every process has its
//! memory, the table is closed and locks, credentials and prctls set.

use std::collections::BTreeMap;
use std::os::fd::RawFd;

use stasis_image::{Image, PageRun, Process};

use super::child::ChildPlan;
use crate::error::RestoreError;
use crate::handle::Target;
use crate::mm::cow::CowPlan;
use crate::{files, identity, mm, signals, threads, timers, trampoline, Progress};

/// A seized process of the new tree.
pub(super) struct Live<'a> {
    pub p: &'a Process,
    pub t: Target,
    /// Its per-process files (pages file, mapped files).
    helper_base: RawFd,
    file_fds: BTreeMap<(String, bool), RawFd>,
    tramp: u64,
    /// Regions it inherited copy-on-write (see [`mm::cow`]).
    inherited: BTreeMap<(u64, u64), &'a [PageRun]>,
}

/// The live processes in `order`, each with its target handle and the
/// files and regions its rebuild uses.
pub(super) fn live_processes<'a>(
    image: &'a Image,
    order: &[usize],
    mut targets: BTreeMap<usize, Target>,
    plans: &[ChildPlan<'_>],
    mut file_fds: Vec<BTreeMap<(String, bool), RawFd>>,
    cow: &'a CowPlan,
    helper_base: RawFd,
) -> Result<Vec<Live<'a>>, RestoreError> {
    let mut live = Vec::new();
    for &i in order {
        let p = &image.processes[i];
        if p.zombie {
            continue;
        }
        let t = targets.remove(&i).ok_or_else(|| RestoreError::Failed {
            pid: p.pid as i32,
            what: "was not seized".into(),
        })?;
        live.push(Live {
            p,
            t,
            helper_base,
            file_fds: std::mem::take(&mut file_fds[i]),
            tramp: plans[i].tramp_addr,
            inherited: cow.inherited(i),
        });
    }
    Ok(live)
}

/// Rebuilds every resource of every live process, then finishes each
/// (`base`: the table's first number).
pub(super) fn rebuild(
    live: &[Live<'_>],
    image: &Image,
    shmem: &BTreeMap<u64, RawFd>,
    base: RawFd,
    progress: &dyn Progress,
) -> Result<(), RestoreError> {
    let runs_of = |pid: u32| -> &[PageRun] {
        image
            .pagemaps
            .iter()
            .find(|m| m.pid == pid && m.shmem_id == 0)
            .map(|m| m.runs.as_slice())
            .unwrap_or(&[])
    };
    for l in live {
        progress.phase("memory", 0);
        restore_process(l, runs_of(l.p.pid), shmem, &image.processes)?;
    }
    for l in live {
        finish_process(l, base)?;
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

//! The restore driver. [`restore`] reads as its phases:
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
//!    uses (the *table*, `table`).
//! 3. Fork the root with its pid (clone3 + set_tid); every process forks
//!    its own children the same way and sets up its descriptors and
//!    identity in Rust ([`child`]), then reports and blocks (`create`).
//! 4. Seize them all. Put every process in its group (leaders first), let
//!    group stand-ins and zombies go, then drive each live process with
//!    remote syscalls from its trampoline: memory switch, signals, timers,
//!    threads, credentials (`seize`, then `rebuild`).
//! 5. Resume: set every thread's final registers and detach them all
//!    together, so no process of the tree runs before all are restored.
//!
//! Any failure after the first fork kills every process created so far
//! (ptrace EXITKILL and an explicit SIGKILL), so nothing half-restored is
//! left behind.

pub mod checks;
pub mod child;
mod create;
pub mod plan;
mod rebuild;
mod seize;
mod table;
pub mod verify;

use std::path::{Path, PathBuf};

use stasis_image::{self as img, Image, PagesReader};
use stasis_sys::{ptrace, util};

use crate::error::{RestoreError, SysCtx};
use crate::ipc::IpcRestore;
use crate::{fault_point, threads, tree, Progress};
pub use checks::validate;
use create::Hosts;
pub use plan::{Mode, Problems, RestorePlan};
use rebuild::Live;

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
        mut cow,
        needed,
        pages,
    } = plan::plan(&image, Some(dir), opts, Mode::Restore).map_err(Problems::first)?;
    let pages = pages.ok_or_else(|| RestoreError::Refused("the plan has no page store".into()))?;
    let (tty, ipc) = prepare_restorer(&image, &pages, opts, progress)?;
    let (table, ours) = table::open(&image, pages.file(), tty.as_deref())?;
    // Opened again by path in each child, never through a link (see
    // stasis_image::store).
    let pages_path = dir
        .join(img::pages_file_name(&image.inventory))
        .display()
        .to_string();
    let premaps = cow.premaps.clone();
    let (plans, file_fds) = table::child_plans(
        &image,
        &plan,
        &cow,
        &needed,
        &premaps,
        &pages_path,
        table.helper_base,
    )?;
    let common = table.common(&plans, &pages_path);

    progress.phase("creating processes", 0);
    let (first, mut guard, hosts) = create::create_tree(
        &common,
        &image,
        &plan,
        &mut cow,
        opts,
        ours,
        &table.status_r,
    )?;
    let order = tree::creation_order(&plan);
    let targets = seize::seize_all(&image, &order, &plans, &hosts, &mut guard)?;
    seize::settle(&image, &plan, &targets, &hosts, &mut guard, progress)?;
    let live = rebuild::live_processes(
        &image,
        &order,
        targets,
        &plans,
        file_fds,
        &cow,
        table.helper_base,
    )?;
    rebuild::rebuild(&live, &image, &table.shmem, table.base, progress)?;
    // Every process has attached its segments again: removed ones need
    // the restorer's attachments no longer.
    if let Some(ipc) = ipc {
        ipc.finish();
    }
    if fault_point("restore-before-resume") {
        return Err(RestoreError::Injected("restore-before-resume"));
    }
    let root_host = hosts.of(image.inventory.root_pid);
    resume(&live, opts, root_host)?;
    guard.armed = false;
    drop(table.block_w);
    redraw_terminals(&image, &hosts);
    let total_ms = t0.elapsed().as_secs_f64() * 1e3;
    Ok(Restored {
        pid: root_host,
        processes: image.processes.len(),
        exit_code: wait_root(opts, first, root_host)?,
        total_ms,
    })
}

/// Without `-d`, waits for the root (or the namespace's init, `first`,
/// which ends as the root does) and returns its exit status.
fn wait_root(
    opts: &RestoreOptions,
    first: i32,
    root_host: i32,
) -> Result<Option<i32>, RestoreError> {
    if opts.detach {
        return Ok(None);
    }
    Ok(Some(
        util::wait_exit(first).rst_ctx(root_host, "wait for exit")?,
    ))
}

/// Readies the restorer itself (the last point where a test can make
/// restore fail before anything exists): the highest fd limit, the terminal a
/// shell job gets, and the tree's own IPC namespace (made here, before the
/// first fork, so that every process of the tree inherits it).
fn prepare_restorer(
    image: &Image,
    pages: &PagesReader,
    opts: &RestoreOptions,
    progress: &dyn Progress,
) -> Result<(Option<String>, Option<IpcRestore>), RestoreError> {
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
    let ipc = match &image.inventory.ipc {
        Some(ns) => {
            progress.phase("System V IPC", 0);
            Some(crate::ipc::restore(ns, pages.file())?)
        }
        None => None,
    };
    Ok((tty, ipc))
}

/// Sets every thread's final registers, writes the pidfile, and resumes
/// everything together.
fn resume(live: &[Live<'_>], opts: &RestoreOptions, root_host: i32) -> Result<(), RestoreError> {
    for l in live {
        for th in &l.p.threads {
            threads::finish_thread(&l.t, th)?;
        }
    }
    // Last, once nothing is run in the threads any more: a thread under
    // SCHED_IDLE or pinned to a busy CPU would slow every step after.
    for l in live {
        for th in &l.p.threads {
            crate::sched::restore_thread(&l.t, th)?;
        }
    }
    if let Some(f) = &opts.pidfile {
        std::fs::write(f, format!("{root_host}\n")).map_err(|e| RestoreError::Failed {
            pid: root_host,
            what: format!("cannot write pidfile {}: {e}", f.display()),
        })?;
    }
    // Resume everything together. Every process is complete now, so a
    // restorer that dies from here on must leave them all running: first
    // EXITKILL goes (one cheap PTRACE_SETOPTIONS per thread, no wakeup,
    // so the moment in which a death would leave some killed and some
    // running is a few microseconds), then the threads are let go.
    for l in live {
        for th in &l.p.threads {
            ptrace::set_options(l.t.host(th.tid as i32), libc::PTRACE_O_TRACECLONE)
                .rst_ctx(l.t.pid, "clear PTRACE_O_EXITKILL")?;
        }
    }
    for l in live {
        for th in &l.p.threads {
            ptrace::detach(l.t.host(th.tid as i32), 0).rst_ctx(l.t.pid, "detach")?;
        }
    }
    Ok(())
}

/// Full-screen programs on a pty of the tree redraw on SIGWINCH (as
/// screen did after a reattach); the default action ignores it.
fn redraw_terminals(image: &Image, hosts: &Hosts) {
    for p in image.processes.iter().filter(|p| p.ctty_pty != 0) {
        if p.tty_fg_pgid != 0 {
            let _ = util::kill(-hosts.of(p.tty_fg_pgid), libc::SIGWINCH);
        }
    }
}

//! The dump driver. [`dump`] reads as its phases:
//!
//! 1. **check** the root (`check`): it exists, the image directory can be
//!    made, and nothing about it is refused; find the namespaces the tree
//!    takes along.
//! 2. **freeze** the whole tree ([`FrozenTree::seize`]), checking each
//!    process the same way before it is seized.
//! 3. **collect** every [`Resource`](crate::Resource) of every process, then what the tree
//!    holds together (`collect`).
//! 4. **check the tree**: no pidfd points outside it, its pids are
//!    translated into its own PID namespace, and restore can rebuild its
//!    sessions and groups.
//! 5. **write** the image (`write`).
//! 6. **release**: kill the tree, or let it run.
//!
//! Nothing is changed in the target before the image is complete; any
//! error detaches and leaves it running as it was (see [`Frozen`](crate::handle::Frozen)).

mod check;
mod collect;
mod write;

use std::path::Path;
use std::time::Instant;

use stasis_image::{Image, IpcNamespace, PageMap, PagesWriter, Pipe, Process};

use crate::error::DumpError;
use crate::handle::FrozenTree;
use crate::ipc::TreeIpc;
use crate::{files, Progress};
use check::OwnNs;

#[derive(Debug, Clone, Default)]
pub struct DumpOptions {
    /// Let the target run on after the dump (default: kill it).
    pub leave_running: bool,
    /// The target is a job of a shell: it may use the terminal and need
    /// not lead its session.
    pub shell_job: bool,
    /// A unix socket connected to a socket outside the tree is recorded by
    /// its peer's name and connected there again at restore (CRIU's
    /// --ext-unix-sk), instead of refused.
    pub ext_unix_sk: bool,
}

#[derive(Debug, Clone)]
pub struct DumpReport {
    pub pid: i32,
    /// Processes in the tree, zombies included.
    pub processes: usize,
    pub threads: usize,
    pub vmas: usize,
    pub fds: usize,
    /// Bytes of page data written.
    pub pages_bytes: u64,
    /// Time the target was frozen, in milliseconds.
    pub frozen_ms: f64,
    pub total_ms: f64,
}

/// What the checks found out about the tree before it is frozen.
struct Scope {
    root: i32,
    own: OwnNs,
    ipc: TreeIpc,
}

/// Everything collected from the frozen tree, not yet committed.
struct Collected {
    pages: PagesWriter,
    /// Bytes of page data written to `pages`.
    pages_bytes: u64,
    processes: Vec<Process>,
    pagemaps: Vec<PageMap>,
    pipes: Vec<Pipe>,
    ipc: Option<IpcNamespace>,
}

/// Checkpoints the process tree rooted at `pid` into `dir`.
pub fn dump(
    pid: i32,
    dir: &Path,
    opts: &DumpOptions,
    progress: &dyn Progress,
) -> Result<DumpReport, DumpError> {
    let t0 = Instant::now();
    let scope = check(pid, dir, opts)?;
    progress.phase("freezing", 0);
    let mut tree = freeze(&scope, opts)?;
    let t_frozen = Instant::now();
    let mut c = collect::collect(&mut tree, dir, opts, &scope, progress)?;
    let root_pid = check_tree(&tree, opts, &scope, &mut c)?;
    let vdso_hash = tree.procs[0].vdso_hash;
    let (image, pages_bytes) = write::write(dir, c, root_pid, opts.shell_job, vdso_hash)?;
    let report = report(pid, &image, pages_bytes);
    tree.release(!opts.leave_running)?;
    Ok(DumpReport {
        frozen_ms: t_frozen.elapsed().as_secs_f64() * 1e3,
        total_ms: t0.elapsed().as_secs_f64() * 1e3,
        ..report
    })
}

/// Checks the root `pid` before anything is touched and makes the image
/// directory.
fn check(pid: i32, dir: &Path, opts: &DumpOptions) -> Result<Scope, DumpError> {
    if !Path::new(&format!("/proc/{pid}")).exists() {
        return Err(DumpError::NoSuchProcess(pid));
    }
    check::create_image_dir(dir)?;
    let own = check::own_namespaces(pid)?;
    let ipc = TreeIpc::of(pid)?;
    check::precheck(pid, true, opts, &own, &ipc)?;
    Ok(Scope {
        root: pid,
        own,
        ipc,
    })
}

/// Freezes the whole tree, checking every process before it is seized.
fn freeze(scope: &Scope, opts: &DumpOptions) -> Result<FrozenTree, DumpError> {
    let root = scope.root;
    FrozenTree::seize(root, &mut |p| {
        if p == root {
            Ok(())
        } else {
            check::precheck(p, false, opts, &scope.own, &scope.ipc)
        }
    })
}

/// The checks that need the whole collected tree; translates its pids into
/// its own PID namespace if it has one. Returns the root's pid as the tree
/// sees it.
fn check_tree(
    tree: &FrozenTree,
    opts: &DumpOptions,
    scope: &Scope,
    c: &mut Collected,
) -> Result<u32, DumpError> {
    let pid = scope.root;
    for p in &c.processes {
        if let Some((fd, target)) = files::pidfd::outside(p, &tree.pids()) {
            return Err(DumpError::Refused {
                pid: p.pid as i32,
                what: format!(
                    "fd {fd} is a pidfd of pid {target}, which is outside the checkpointed tree"
                ),
            });
        }
    }
    let mut root_pid = pid as u32;
    if scope.own.pid.is_some() {
        let map = crate::pidns::NsMap::read(&tree.pids())?;
        map.apply(&mut c.processes, &mut c.pagemaps, root_pid);
        root_pid = map.inner_of(root_pid);
    }
    // Would restore be able to rebuild this tree's sessions and groups?
    // (Inside its own namespace, a group without a live leader in the
    // tree has none at all.)
    let exists = |p: u32| scope.own.pid.is_none() && Path::new(&format!("/proc/{p}")).exists();
    crate::tree::plan(&c.processes, root_pid, opts.shell_job, &exists).map_err(|what| {
        DumpError::Refused {
            pid,
            what: format!("cannot be checkpointed: {what}"),
        }
    })?;
    Ok(root_pid)
}

/// What the CLI prints about a written image (times are set by [`dump`]).
fn report(pid: i32, image: &Image, pages_bytes: u64) -> DumpReport {
    let live: Vec<&Process> = image.processes.iter().filter(|p| !p.zombie).collect();
    DumpReport {
        pid,
        processes: image.processes.len(),
        threads: live.iter().map(|p| p.threads.len()).sum(),
        vmas: live.iter().map(|p| p.vmas.len()).sum(),
        fds: live.iter().map(|p| p.fds.len()).sum(),
        pages_bytes,
        frozen_ms: 0.0,
        total_ms: 0.0,
    }
}

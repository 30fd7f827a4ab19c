//! The dump driver: check, freeze the whole tree, collect every
//! [`Resource`] of every process, write the image, then kill the tree or
//! let it run.
//!
//! Nothing is changed in the target before the image is complete; any
//! error detaches and leaves it running as it was (see [`Frozen`]).

use std::path::Path;
use std::time::Instant;

use stasis_image::{self as img, Image, Inventory, PageMap, PagesWriter, Process};

use crate::error::DumpError;
use crate::handle::{Frozen, FrozenTree};
use crate::{
    fault_point, files, identity, mm, procfs, signals, threads, timers, Progress, Resource,
};

/// The namespaces a tree has of its own (see [`precheck`]).
#[derive(Default)]
struct OwnNs {
    pid: Option<String>,
    mnt: Option<String>,
}

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

/// Checks made on each process before it is touched at all. `own` holds
/// the PID namespace of a tree that has one (its root is its init, or the
/// child of a `restore --pidns` init) and, in the second case, the mount
/// namespace that init made; `ipc` is the tree's IPC namespace (its
/// root's).
fn precheck(
    pid: i32,
    root: bool,
    opts: &DumpOptions,
    own: &OwnNs,
    ipc: &crate::ipc::TreeIpc,
) -> Result<(), DumpError> {
    let own_pidns = own.pid.as_deref();
    let status = procfs::parsed(
        pid,
        stasis_proc::parse_status(&procfs::read_string(pid, "status")?),
    )?;
    let stat = procfs::parsed(
        pid,
        stasis_proc::parse_stat(&procfs::read_string(pid, "stat")?),
    )?;
    let refuse = |what: String| Err(DumpError::Refused { pid, what });
    if status.tgid != pid as u32 {
        return refuse(format!(
            "is a thread of process {}; dump the process",
            status.tgid
        ));
    }
    if pid as u32 == std::process::id() {
        return refuse("is stasis itself".into());
    }
    if status.tracer_pid != 0 {
        return refuse(format!(
            "is being traced by pid {}; detach the debugger first",
            status.tracer_pid
        ));
    }
    if status.seccomp != 0 {
        return refuse("uses seccomp, which stasis cannot restore yet".into());
    }
    if !status.x86_thread_features.trim().is_empty() {
        return refuse(format!(
            "uses x86 thread features ({}), which stasis cannot restore yet",
            status.x86_thread_features.trim()
        ));
    }
    for ns in ["pid", "mnt", "net", "ipc", "uts", "user", "cgroup", "time"] {
        let theirs = procfs::read_link(pid, &format!("ns/{ns}"))?;
        let ours = match (ns, own_pidns) {
            ("pid", Some(tree_ns)) => tree_ns.to_string(),
            // A tree may have an IPC namespace of its own (see crate::ipc),
            // shared by all its processes.
            ("ipc", _) => ipc.ns.clone(),
            ("mnt", _) if own.mnt.is_some() => own.mnt.clone().unwrap_or_default(),
            _ => std::fs::read_link(format!("/proc/self/ns/{ns}"))
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default(),
        };
        if ns == "pid" && theirs != ours && own_pidns.is_none() {
            return refuse(format!(
                "is in another PID namespace ({theirs}) than the tree's root; dump that namespace's PID 1 on its own"
            ));
        }
        if ns == "ipc" && theirs != ours {
            return refuse(format!(
                "is in another IPC namespace ({theirs}) than the tree's root ({ours}); stasis can only checkpoint a tree that shares one IPC namespace"
            ));
        }
        if theirs != ours {
            return refuse(format!(
                "is in another {ns} namespace ({theirs}), which stasis cannot checkpoint yet"
            ));
        }
    }
    // A parent inside vfork(2) sleeps until its child execs or exits and
    // would never reach the freeze; its child borrows its memory.
    for c in crate::handle::frozen::children_of(pid)? {
        if stasis_sys::util::kcmp_same(pid, c as i32, stasis_sys::util::KCMP_VM).unwrap_or(false) {
            return refuse(format!(
                "is waiting in vfork for its child {c} to exec or exit (they share memory); checkpoint it after that"
            ));
        }
    }
    if !opts.shell_job {
        if root && stat.session != pid as u32 {
            return refuse(format!(
                "is not a session leader (its session {} is outside the dump); pass --shell-job to checkpoint a job of a shell",
                stat.session
            ));
        }
        // A pty of the tree's own is checked once all fds are known.
        if stat.tty_nr != 0 && files::pty::pts_index(stat.tty_nr as u64).is_none() {
            return refuse("has a controlling terminal; pass --shell-job".into());
        }
    }
    Ok(())
}

/// What processes of the tree share with their parent: memory (a CLONE_VM
/// child: refused), the fd table (CLONE_FILES) and cwd/root/umask
/// (CLONE_FS), which restore recreates by cloning with the same flags.
/// Returns pid -> (files shared, fs shared).
fn check_sharing(
    tree: &FrozenTree,
) -> Result<std::collections::BTreeMap<i32, (bool, bool)>, DumpError> {
    use stasis_sys::util::{kcmp_same, KCMP_FILES, KCMP_FS, KCMP_VM};
    let pids: std::collections::BTreeSet<i32> = tree.procs.iter().map(|f| f.pid).collect();
    let mut out = std::collections::BTreeMap::new();
    for f in &tree.procs {
        let ppid = procfs::parsed(
            f.pid,
            stasis_proc::parse_stat(&procfs::read_string(f.pid, "stat")?),
        )?
        .ppid as i32;
        if !pids.contains(&ppid) {
            continue;
        }
        if kcmp_same(f.pid, ppid, KCMP_VM).unwrap_or(false) {
            return Err(DumpError::Refused {
                pid: f.pid,
                what: format!(
                    "shares its memory with its parent {ppid} (CLONE_VM); stasis cannot checkpoint that yet"
                ),
            });
        }
        out.insert(
            f.pid,
            (
                kcmp_same(f.pid, ppid, KCMP_FILES).unwrap_or(false),
                kcmp_same(f.pid, ppid, KCMP_FS).unwrap_or(false),
            ),
        );
    }
    Ok(out)
}

/// Checkpoints the process tree rooted at `pid` into `dir`.
pub fn dump(
    pid: i32,
    dir: &Path,
    opts: &DumpOptions,
    progress: &dyn Progress,
) -> Result<DumpReport, DumpError> {
    let t0 = Instant::now();
    if !Path::new(&format!("/proc/{pid}")).exists() {
        return Err(DumpError::NoSuchProcess(pid));
    }
    create_image_dir(dir)?;
    // A root that is PID 1 of its own namespace takes the namespace along;
    // so does the root of a tree an earlier `restore --pidns` made (its
    // parent is that restore's init, which is not dumped).
    let own = if crate::pidns::is_ns_init(pid)? {
        OwnNs {
            pid: Some(procfs::read_link(pid, "ns/pid")?),
            mnt: None,
        }
    } else if let Some(init) = crate::pidns::stasis_init_of(pid)? {
        OwnNs {
            pid: Some(procfs::read_link(pid, "ns/pid")?),
            mnt: Some(procfs::read_link(init, "ns/mnt")?),
        }
    } else {
        OwnNs::default()
    };
    let own_pidns = own.pid.clone();
    let ipc = crate::ipc::TreeIpc::of(pid)?;
    precheck(pid, true, opts, &own, &ipc)?;
    progress.phase("freezing", 0);
    let tree = FrozenTree::seize(pid, &mut |p| {
        if p == pid {
            Ok(())
        } else {
            precheck(p, false, opts, &own, &ipc)
        }
    })?;
    let t_frozen = Instant::now();
    let sharing = check_sharing(&tree)?;

    let mut pages = PagesWriter::create(dir)?;
    let mut files = files::FileTable::default();
    let mut shmem = Vec::new();
    let mut dedup = mm::dedup::PageDedup::default();
    let mut processes = Vec::new();
    let mut pagemaps = Vec::new();
    let mut pages_bytes = 0;
    let mut tree = tree;
    for frozen in &mut tree.procs {
        let (p, runs, b) = dump_process(
            frozen,
            opts,
            ipc.own,
            &mut pages,
            (&mut files, &mut shmem, &mut dedup),
            progress,
        )?;
        pagemaps.push(PageMap {
            pid: p.pid,
            runs,
            ..Default::default()
        });
        pages_bytes += b;
        let mut p = p;
        (p.files_shared_with_parent, p.fs_shared_with_parent) =
            sharing.get(&(p.pid as i32)).copied().unwrap_or_default();
        processes.push(p);
    }
    for z in &tree.zombies {
        processes.push(Process {
            pid: z.stat.pid,
            ppid: z.stat.ppid,
            pgid: z.stat.pgrp,
            sid: z.stat.session,
            exit_signal: z.stat.exit_signal as u32,
            zombie: true,
            exit_status: z.stat.exit_code,
            ..Default::default()
        });
    }
    // Unlinked files reached only through fds (or an executable).
    for (_, (opid, rel, mut m)) in std::mem::take(&mut files.objects).0 {
        if shmem.iter().any(|s: &PageMap| s.shmem_id == m.shmem_id) {
            continue;
        }
        if files::unlinked::needs_contents(&m) {
            let path = format!("/proc/{opid}/{rel}");
            mm::dump::copy_file(opid, &path, &mut pages, &mut m, &mut pages_bytes)?;
        }
        shmem.push(m);
    }
    pagemaps.extend(shmem);
    let ipc_ns = if ipc.own {
        progress.phase("System V IPC", 0);
        Some(crate::ipc::dump(
            pid,
            &ipc,
            &tree.pids(),
            &processes,
            &mut pages,
            &mut pages_bytes,
        )?)
    } else {
        None
    };
    let pipes = files.finish(&tree.pids(), &mut processes, opts.ext_unix_sk)?;
    files::pty::resolve(&mut processes, opts.shell_job)?;
    for p in &processes {
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
    if own_pidns.is_some() {
        let map = crate::pidns::NsMap::read(&tree.pids())?;
        map.apply(&mut processes, &mut pagemaps, root_pid);
        root_pid = map.inner_of(root_pid);
    }
    // Would restore be able to rebuild this tree's sessions and groups?
    // (Inside its own namespace, a group without a live leader in the
    // tree has none at all.)
    let exists = |p: u32| own_pidns.is_none() && Path::new(&format!("/proc/{p}")).exists();
    crate::tree::plan(&processes, root_pid, opts.shell_job, &exists).map_err(|what| {
        DumpError::Refused {
            pid,
            what: format!("cannot be checkpointed: {what}"),
        }
    })?;
    if fault_point("dump-before-write") {
        return Err(DumpError::Injected("dump-before-write"));
    }
    let pages_file = pages.name();
    let pages_size = pages.finish()?;
    let xstate_size = processes[0]
        .threads
        .first()
        .map(|t| t.xstate.len() as u32)
        .unwrap_or(0);
    let vdso_hash = tree.procs[0].vdso_hash;
    let image = Image {
        inventory: Inventory {
            format_major: img::FORMAT_MAJOR,
            tool_version: env!("CARGO_PKG_VERSION").into(),
            kernel_release: kernel_release(),
            arch: std::env::consts::ARCH.into(),
            root_pid,
            shell_job: opts.shell_job,
            page_size: mm::PAGE as u32,
            created_unix_ns: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0),
            xstate_size,
            vdso_hash,
            pids: processes.iter().map(|p| p.pid).collect(),
            pages_file_size: pages_size,
            xcr0: 0,
            ipc: ipc_ns,
            pages_file: pages_file.into(),
        },
        pagemaps,
        processes,
        pipes,
    };
    commit_image(dir, &image)?;
    let live: Vec<&Process> = image.processes.iter().filter(|p| !p.zombie).collect();
    let report = DumpReport {
        pid,
        processes: image.processes.len(),
        threads: live.iter().map(|p| p.threads.len()).sum(),
        vmas: live.iter().map(|p| p.vmas.len()).sum(),
        fds: live.iter().map(|p| p.fds.len()).sum(),
        pages_bytes,
        frozen_ms: 0.0,
        total_ms: 0.0,
    };
    tree.release(!opts.leave_running)?;
    Ok(DumpReport {
        frozen_ms: t_frozen.elapsed().as_secs_f64() * 1e3,
        total_ms: t0.elapsed().as_secs_f64() * 1e3,
        ..report
    })
}

/// Creates the image directory `dir` with mode 0700 if it does not exist
/// (its parents with the usual mode): an image holds the tree's memory.
/// An existing directory is used as it is, as CRIU does.
fn create_image_dir(dir: &Path) -> Result<(), DumpError> {
    use std::os::unix::fs::DirBuilderExt;
    let err = |source| DumpError::ImageDir {
        path: dir.display().to_string(),
        source,
    };
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(err)?;
    }
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        r => r.map_err(err),
    }
}

/// Writes `core.img`, the commit point (see `stasis_image::store`): until
/// it is renamed into place, the directory still holds its previous image
/// whole. On failure the pages file just written for `image` is removed,
/// unless a `core.img` that names it did make it into place (only its
/// directory's fsync failed).
fn commit_image(dir: &Path, image: &Image) -> Result<(), DumpError> {
    let written = if fault_point("dump-before-core") {
        Err(DumpError::Injected("dump-before-core"))
    } else {
        img::write_core(dir, image).map_err(DumpError::from)
    };
    if written.is_err() {
        let ours = img::pages_file_name(&image.inventory);
        let committed = img::read_core(dir).is_ok_and(|i| {
            img::pages_file_name(&i.inventory) == ours
                && i.inventory.created_unix_ns == image.inventory.created_unix_ns
        });
        if !committed {
            // Best effort: nothing refers to it, and the error that
            // matters is the one returned.
            let _ = std::fs::remove_file(dir.join(ours));
        }
    }
    written
}

/// Collects every [`Resource`] of one frozen process.
fn dump_process(
    frozen: &mut Frozen,
    opts: &DumpOptions,
    own_ipc: bool,
    pages: &mut PagesWriter,
    shared: (
        &mut files::FileTable,
        &mut Vec<PageMap>,
        &mut mm::dedup::PageDedup,
    ),
    progress: &dyn Progress,
) -> Result<(Process, Vec<img::PageRun>, u64), DumpError> {
    let (files, shmem, dedup) = shared;
    let pid = frozen.pid;
    let status = procfs::parsed(
        pid,
        stasis_proc::parse_status(&procfs::read_string(pid, "status")?),
    )?;
    let stat = procfs::parsed(
        pid,
        stasis_proc::parse_stat(&procfs::read_string(pid, "stat")?),
    )?;
    let smaps = procfs::parsed(
        pid,
        stasis_proc::parse_smaps(&procfs::read_string(pid, "smaps")?),
    )?;
    let mut vmas = mm::dump::dump_vmas(pid, &smaps, own_ipc)?;
    let (syscall_at, vdso_hash) = mm::dump::find_syscall_insn(pid, &vmas)?;
    frozen.vdso_hash = vdso_hash;
    if !frozen.is_armed() {
        frozen.syscall_at = syscall_at;
        frozen.map_scratch()?;
    }

    let mut p = Process {
        pid: pid as u32,
        ppid: stat.ppid,
        pgid: stat.pgrp,
        sid: stat.session,
        exit_signal: stat.exit_signal as u32,
        tty_fg_pgid: if stat.session == pid as u32 && stat.tty_nr != 0 && stat.tpgid > 0 {
            stat.tpgid as u32
        } else {
            0
        },
        ctty_pty: files::pty::pts_index(stat.tty_nr as u64).map_or(0, |i| i + 1),
        ..Default::default()
    };
    let mut runs = Vec::new();
    let mut pages_bytes = 0;
    for r in Resource::ALL {
        progress.phase(r.name(), 0);
        match r {
            Resource::Identity => identity::dump_identity(frozen, &status, &mut p)?,
            Resource::Files => {
                p.fds = files.dump_fds(pid, opts.shell_job)?;
                let exe = procfs::read_link(pid, "exe")?;
                if exe.ends_with(stasis_proc::maps::DELETED_SUFFIX) {
                    // Deleted or replaced since it was started.
                    p.exe_object = files.objects.add(pid, "exe", &exe, 0)?;
                } else {
                    p.exe_path = exe;
                    p.exe_id = Some(procfs::file_id(&procfs::stat(pid, "exe")?));
                }
            }
            Resource::Memory => {
                p.mm = Some(mm::dump::dump_mm(pid, frozen)?);
                let (r, b) = mm::dump::dump_pages(pid, &mut vmas, pages, shmem, dedup, progress)?;
                runs = r;
                pages_bytes = b;
                p.vmas = vmas.clone();
            }
            Resource::Signals => {
                p.sigactions = signals::dump_sigactions(frozen)?;
                p.shared_pending = signals::dump_shared_pending(frozen)?;
            }
            Resource::Timers => {
                p.itimers = timers::dump_itimers(frozen)?;
                p.posix_timers = timers::dump_posix_timers(frozen)?;
            }
            Resource::Threads => p.threads = threads::dump_threads(frozen)?,
        }
    }
    Ok((p, runs, pages_bytes))
}

pub fn kernel_release() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

//! The collect phase: every [`Resource`] of each frozen process, then
//! what the tree holds together (zombies, unlinked files, System V IPC,
//! the descriptions and ptys that processes share).

use std::collections::BTreeMap;
use std::path::Path;

use stasis_image::{self as img, PageMap, PagesWriter, Process};

use crate::error::DumpError;
use crate::handle::frozen::Zombie;
use crate::handle::{Frozen, FrozenTree};
use crate::{files, identity, mm, procfs, signals, threads, timers, Progress, Resource};

use super::check::check_sharing;
use super::{Collected, DumpOptions, Scope};

/// Collects the whole frozen tree, with its pages written to `dir`.
pub(super) fn collect(
    tree: &mut FrozenTree,
    dir: &Path,
    opts: &DumpOptions,
    scope: &Scope,
    progress: &dyn Progress,
) -> Result<Collected, DumpError> {
    let sharing = check_sharing(tree)?;
    let mut c = Collected {
        pages: PagesWriter::create(dir)?,
        pages_bytes: 0,
        processes: Vec::new(),
        pagemaps: Vec::new(),
        pipes: Vec::new(),
        ipc: None,
    };
    let mut files = files::FileTable::default();
    let mut shmem = Vec::new();
    collect_processes(
        tree,
        opts,
        scope,
        &sharing,
        &mut c,
        (&mut files, &mut shmem),
        progress,
    )?;
    c.processes.extend(tree.zombies.iter().map(zombie_record));
    collect_unlinked(&mut files, &mut shmem, &mut c)?;
    c.pagemaps.extend(shmem);
    if scope.ipc.own {
        progress.phase("System V IPC", 0);
        c.ipc = Some(crate::ipc::dump(
            scope.root,
            &scope.ipc,
            &tree.pids(),
            &c.processes,
            &mut c.pages,
            &mut c.pages_bytes,
        )?);
    }
    c.pipes = files.finish(&tree.pids(), &mut c.processes, opts.ext_unix_sk)?;
    files::pty::resolve(&mut c.processes, opts.shell_job)?;
    Ok(c)
}

/// Collects every live process of the tree, in order, with its pages.
fn collect_processes(
    tree: &mut FrozenTree,
    opts: &DumpOptions,
    scope: &Scope,
    sharing: &BTreeMap<i32, (bool, bool)>,
    c: &mut Collected,
    shared: (&mut files::FileTable, &mut Vec<PageMap>),
    progress: &dyn Progress,
) -> Result<(), DumpError> {
    let (files, shmem) = shared;
    let mut dedup = mm::dedup::PageDedup::default();
    for frozen in &mut tree.procs {
        let (mut p, runs, b) = dump_process(
            frozen,
            opts,
            scope.ipc.own,
            &mut c.pages,
            (&mut *files, &mut *shmem, &mut dedup),
            progress,
        )?;
        c.pagemaps.push(PageMap {
            pid: p.pid,
            runs,
            ..Default::default()
        });
        c.pages_bytes += b;
        (p.files_shared_with_parent, p.fs_shared_with_parent) =
            sharing.get(&(p.pid as i32)).copied().unwrap_or_default();
        c.processes.push(p);
    }
    Ok(())
}

/// The record of a zombie: what /proc still shows of it.
fn zombie_record(z: &Zombie) -> Process {
    Process {
        pid: z.stat.pid,
        ppid: z.stat.ppid,
        pgid: z.stat.pgrp,
        sid: z.stat.session,
        exit_signal: z.stat.exit_signal as u32,
        zombie: true,
        exit_status: z.stat.exit_code,
        ..Default::default()
    }
}

/// Unlinked files reached only through fds (or an executable): each is
/// one object, its contents copied into the pages file where needed.
fn collect_unlinked(
    files: &mut files::FileTable,
    shmem: &mut Vec<PageMap>,
    c: &mut Collected,
) -> Result<(), DumpError> {
    for (_, (opid, rel, mut m)) in std::mem::take(&mut files.objects).0 {
        if shmem.iter().any(|s: &PageMap| s.shmem_id == m.shmem_id) {
            continue;
        }
        if files::unlinked::needs_contents(&m) {
            let path = format!("/proc/{opid}/{rel}");
            mm::dump::copy_file(opid, &path, &mut c.pages, &mut m, &mut c.pages_bytes)?;
        }
        shmem.push(m);
    }
    Ok(())
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
    let status = procfs::status(pid)?;
    let stat = procfs::proc_stat(pid)?;
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

    let mut p = process_record(pid, &stat);
    let mut runs = Vec::new();
    let mut pages_bytes = 0;
    for r in Resource::ALL {
        progress.phase(r.name(), 0);
        match r {
            Resource::Identity => identity::dump_identity(frozen, &status, &mut p)?,
            Resource::Files => {
                p.fds = files.dump_fds(pid, opts.shell_job)?;
                dump_exe(files, pid, &mut p)?;
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

/// The record of process `pid` with its place in the tree (from `stat`),
/// before any [`Resource`] is collected.
fn process_record(pid: i32, stat: &stasis_proc::Stat) -> Process {
    Process {
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
    }
}

/// Its executable: by path, or as an object when it was deleted or
/// replaced since it was started.
fn dump_exe(files: &mut files::FileTable, pid: i32, p: &mut Process) -> Result<(), DumpError> {
    let exe = procfs::read_link(pid, "exe")?;
    if exe.ends_with(stasis_proc::maps::DELETED_SUFFIX) {
        p.exe_object = files.objects.add(pid, "exe", &exe, 0)?;
    } else {
        p.exe_path = exe;
        p.exe_id = Some(procfs::file_id(&procfs::stat(pid, "exe")?));
    }
    Ok(())
}

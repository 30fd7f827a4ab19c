//! The dump driver: check, freeze, collect every [`Resource`], write the
//! image, then kill the target or let it run.
//!
//! Nothing is changed in the target before the image is complete; any
//! error detaches and leaves it running as it was (see [`Frozen`]).

use std::path::Path;
use std::time::Instant;

use stasis_image::{self as img, Image, Inventory, PageMap, PagesWriter, Process};

use crate::error::DumpError;
use crate::freeze::Frozen;
use crate::{
    fault_point, files, identity, mm, procfs, signals, threads, timers, Progress, Resource,
};

#[derive(Debug, Clone, Default)]
pub struct DumpOptions {
    /// Let the target run on after the dump (default: kill it).
    pub leave_running: bool,
    /// The target is a job of a shell: it may use the terminal and need
    /// not lead its session.
    pub shell_job: bool,
}

#[derive(Debug, Clone)]
pub struct DumpReport {
    pub pid: i32,
    pub threads: usize,
    pub vmas: usize,
    pub fds: usize,
    /// Bytes of page data written.
    pub pages_bytes: u64,
    /// Time the target was frozen, in milliseconds.
    pub frozen_ms: f64,
    pub total_ms: f64,
}

/// Checks made before the target is touched at all.
fn precheck(
    pid: i32,
    opts: &DumpOptions,
) -> Result<(stasis_proc::Status, stasis_proc::Stat), DumpError> {
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
    if matches!(stat.state, 'Z' | 'X') {
        return refuse("is a zombie".into());
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
    if status.ns_pid.len() > 1 {
        return refuse("runs in a nested PID namespace, which stasis cannot checkpoint yet".into());
    }
    for ns in ["pid", "mnt", "net", "ipc", "uts", "user", "cgroup", "time"] {
        let theirs = procfs::read_link(pid, &format!("ns/{ns}"))?;
        let ours = std::fs::read_link(format!("/proc/self/ns/{ns}"))
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        if theirs != ours {
            return refuse(format!(
                "is in another {ns} namespace ({theirs}), which stasis cannot checkpoint yet"
            ));
        }
    }
    let children = children_of(pid)?;
    if !children.is_empty() {
        return refuse(format!(
            "has child processes ({}); process trees are not supported yet",
            children
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if !opts.shell_job {
        if stat.session != pid as u32 {
            return refuse(format!(
                "is not a session leader (its session {} is outside the dump); pass --shell-job to checkpoint a job of a shell",
                stat.session
            ));
        }
        if stat.tty_nr != 0 {
            return refuse("has a controlling terminal; pass --shell-job".into());
        }
    }
    Ok((status, stat))
}

fn children_of(pid: i32) -> Result<Vec<u32>, DumpError> {
    let mut out = Vec::new();
    for tid in crate::freeze::list_tids(pid)? {
        if let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/children")) {
            out.extend(stasis_proc::parse_children(&s));
        }
    }
    Ok(out)
}

/// Checkpoints process `pid` into `dir`.
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
    std::fs::create_dir_all(dir).map_err(|source| DumpError::Io {
        pid,
        path: dir.display().to_string(),
        source,
    })?;
    let (status, stat) = precheck(pid, opts)?;
    progress.phase("freezing", 0);
    let mut frozen = Frozen::seize(pid)?;
    let t_frozen = Instant::now();
    // The seized state may differ from the pre-check (a fork just before
    // the freeze); check the tree again now that nothing runs.
    if !children_of(pid)?.is_empty() {
        return Err(DumpError::Refused {
            pid,
            what: "started a child process; process trees are not supported yet".into(),
        });
    }
    let smaps = procfs::parsed(
        pid,
        stasis_proc::parse_smaps(&procfs::read_string(pid, "smaps")?),
    )?;
    let mut vmas = mm::dump::dump_vmas(pid, &smaps)?;
    let (syscall_at, vdso_hash) = mm::dump::find_syscall_insn(pid, &vmas)?;
    frozen.syscall_at = syscall_at;
    frozen.map_scratch()?;

    let mut p = Process {
        pid: pid as u32,
        ppid: stat.ppid,
        pgid: stat.pgrp,
        sid: stat.session,
        exit_signal: stat.exit_signal as u32,
        ..Default::default()
    };
    let mut pipes = Vec::new();
    let mut pages = PagesWriter::create(dir)?;
    let mut runs = Vec::new();
    let mut pages_bytes = 0;
    for r in Resource::ALL {
        progress.phase(r.name(), 0);
        match r {
            Resource::Identity => identity::dump_identity(&frozen, &status, &mut p)?,
            Resource::Files => {
                let (fds, ps) = files::dump_fds(pid, opts.shell_job)?;
                p.fds = fds;
                pipes = ps;
                p.exe_path = procfs::read_link(pid, "exe")?;
                p.exe_id = Some(procfs::file_id(&procfs::stat(pid, "exe")?));
            }
            Resource::Memory => {
                p.mm = Some(mm::dump::dump_mm(pid, &frozen)?);
                let (r, b) = mm::dump::dump_pages(pid, &mut vmas, &mut pages, progress)?;
                runs = r;
                pages_bytes = b;
                p.vmas = vmas.clone();
            }
            Resource::Signals => {
                p.sigactions = signals::dump_sigactions(&frozen)?;
                p.shared_pending = signals::dump_shared_pending(&frozen)?;
            }
            Resource::Timers => {
                p.itimers = timers::dump_itimers(&frozen)?;
                p.posix_timers = timers::dump_posix_timers(&frozen)?;
            }
            Resource::Threads => p.threads = threads::dump_threads(&frozen)?,
        }
    }
    if fault_point("dump-before-write") {
        return Err(DumpError::Injected("dump-before-write"));
    }
    let pages_size = pages.finish()?;
    let xstate_size = p
        .threads
        .first()
        .map(|t| t.xstate.len() as u32)
        .unwrap_or(0);
    let image = Image {
        inventory: Inventory {
            format_major: img::FORMAT_MAJOR,
            tool_version: env!("CARGO_PKG_VERSION").into(),
            kernel_release: kernel_release(),
            arch: std::env::consts::ARCH.into(),
            root_pid: pid as u32,
            shell_job: opts.shell_job,
            page_size: mm::PAGE as u32,
            created_unix_ns: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0),
            xstate_size,
            vdso_hash,
            pids: vec![pid as u32],
            pages_file_size: pages_size,
            xcr0: 0,
        },
        pagemaps: vec![PageMap {
            pid: pid as u32,
            runs,
        }],
        processes: vec![p],
        pipes,
    };
    img::write_core(dir, &image)?;
    let report = DumpReport {
        pid,
        threads: image.processes[0].threads.len(),
        vmas: image.processes[0].vmas.len(),
        fds: image.processes[0].fds.len(),
        pages_bytes,
        frozen_ms: 0.0,
        total_ms: 0.0,
    };
    frozen.release(!opts.leave_running)?;
    Ok(DumpReport {
        frozen_ms: t_frozen.elapsed().as_secs_f64() * 1e3,
        total_ms: t0.elapsed().as_secs_f64() * 1e3,
        ..report
    })
}

pub fn kernel_release() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

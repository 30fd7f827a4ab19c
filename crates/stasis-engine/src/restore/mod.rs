//! The restore driver.
//!
//! 1. Validate: the image decodes (version, checksums, completeness), the
//!    pages hash right, the kernel and CPU match, every pid is free, every
//!    file is there and unchanged. Nothing is created before this passes.
//! 2. Fork the process with its pid (clone3 + set_tid); the child sets up
//!    its descriptors and identity in Rust ([`child`]) and stops.
//! 3. Drive it with remote syscalls from the trampoline: memory switch,
//!    signals, timers, threads, credentials; then set every thread's final
//!    registers and detach them all together.
//!
//! Any failure after the fork kills the new process (ptrace EXITKILL and
//! an explicit SIGKILL), so nothing half-restored is left behind.

pub mod child;
pub mod target;

use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};

use stasis_image::{self as img, Image, PagesReader, VmaKind};
use stasis_sys::{ptrace, util};

use crate::error::{RestoreError, SysCtx};
use crate::{fault_point, files, identity, mm, signals, threads, timers, trampoline, Progress};
use target::Target;

#[derive(Debug, Clone, Default)]
pub struct RestoreOptions {
    /// Return once the process runs (`-d`); otherwise wait for it and
    /// report its exit status.
    pub detach: bool,
    pub shell_job: bool,
    pub pidfile: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct Restored {
    pub pid: i32,
    /// Exit status when the restore waited for the process.
    pub exit_code: Option<i32>,
    pub total_ms: f64,
}

/// Kills the new process unless disarmed.
struct KillGuard(Option<i32>);

impl Drop for KillGuard {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            let tids = crate::freeze::list_tids(pid).unwrap_or_default();
            let _ = util::kill(pid, libc::SIGKILL);
            // We trace every thread: reap the others first, or the
            // leader's exit is never reported.
            for tid in tids.iter().filter(|t| **t != pid) {
                let _ = ptrace::wait(*tid);
            }
            let _ = ptrace::wait(pid);
        }
    }
}

pub fn restore(
    dir: &Path,
    opts: &RestoreOptions,
    progress: &dyn Progress,
) -> Result<Restored, RestoreError> {
    let t0 = std::time::Instant::now();
    progress.phase("validating", 0);
    let image = img::read_core(dir)?;
    validate(&image, opts)?;
    let pages = PagesReader::open(dir, image.inventory.pages_file_size)?;
    for pm in &image.pagemaps {
        pages.verify(&pm.runs)?;
    }
    if fault_point("restore-before-fork") {
        return Err(RestoreError::Injected("restore-before-fork"));
    }
    let p = &image.processes[0];
    let pid = p.pid as i32;
    let runs = image
        .pagemaps
        .iter()
        .find(|m| m.pid == p.pid)
        .map(|m| m.runs.as_slice())
        .unwrap_or(&[]);

    // Plan the descriptors of the new process.
    if let Ok((_, hard)) = util::getrlimit(libc::RLIMIT_NOFILE) {
        let _ = util::setrlimit(libc::RLIMIT_NOFILE, hard, hard);
    }
    let max_fd = p.fds.iter().map(|f| f.fd).max().unwrap_or(2).max(2);
    let helper_base: RawFd = max_fd + 1;
    let mut helpers: Vec<(String, i32)> = vec![(
        dir.join(img::PAGES_FILE).display().to_string(),
        libc::O_RDONLY,
    )];
    let mut file_fds = BTreeMap::new();
    for (path, w) in mm::restore::needed_files(p) {
        file_fds.insert((path.clone(), w), helper_base + helpers.len() as RawFd);
        helpers.push((path, if w { libc::O_RDWR } else { libc::O_RDONLY }));
    }
    let exe_fd = *file_fds
        .get(&(p.exe_path.clone(), false))
        .ok_or_else(|| RestoreError::Refused(format!("pid {pid}: image has no executable")))?;
    let tramp = trampoline::find_hole(&p.vmas)?;
    let tty = if opts.shell_job { own_tty() } else { None };
    let (err_r, err_w) = util::pipe().rst_ctx(pid, "pipe")?;
    let (block_r, block_w) = util::pipe().rst_ctx(pid, "pipe")?;
    let plan = child::ChildPlan {
        process: p,
        pipes: &image.pipes,
        shell_job: opts.shell_job,
        tty,
        helpers,
        helper_base,
        err_fd: err_w.as_raw_fd(),
        block_fd: block_r.as_raw_fd(),
        tramp_addr: tramp,
    };

    progress.phase("creating process", 0);
    // SAFETY: stasis restore is single-threaded here (no progress thread
    // has been started; the CLI draws without a ticker), and the child
    // only runs `child::run`, which exits or is taken over.
    // With -d the process becomes a child of our caller (CLONE_PARENT),
    // not of this short-lived restorer: it is not reparented when we exit,
    // and its parent-death signal keeps its meaning.
    let forked = unsafe_fork(pid, opts.detach)?;
    if forked == 0 {
        child::run(&plan);
    }
    drop(err_w);
    drop(block_r);
    let mut guard = KillGuard(Some(pid));
    let mut buf = vec![0u8; 4096];
    let n = util::read_raw(err_r.as_raw_fd(), &mut buf).unwrap_or(0);
    if n != 1 || buf[0] != 0 {
        return Err(RestoreError::Failed {
            pid,
            what: if n > 0 {
                String::from_utf8_lossy(&buf[..n]).into_owned()
            } else {
                "the new process ended before it was set up".into()
            },
        });
    }
    ptrace::seize(pid, libc::PTRACE_O_TRACECLONE | libc::PTRACE_O_EXITKILL)
        .rst_ctx(pid, "seize the new process")?;
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
    let xs = ptrace::get_xstate(pid)
        .rst_ctx(pid, "probe FPU state size")?
        .len();
    if let Some(th) = p.threads.iter().find(|th| th.xstate.len() != xs) {
        return Err(RestoreError::Refused(format!(
            "pid {pid}: the image's FPU state is {} bytes, this CPU's is {xs}; restore on the same kind of CPU",
            th.xstate.len()
        )));
    }
    let t = Target {
        pid,
        syscall_at: stasis_sys::RemoteAddr(tramp),
        scratch: stasis_sys::RemoteAddr(tramp + trampoline::CODE_SIZE),
        scratch_len: trampoline::TRAMP_SIZE - trampoline::CODE_SIZE,
    };
    progress.phase("memory", 0);
    mm::restore::switch_memory(
        &t,
        p,
        runs,
        helper_base,
        &file_fds,
        (tramp, tramp + trampoline::TRAMP_SIZE),
    )?;
    mm::restore::set_mm(&t, p, exe_fd)?;
    progress.phase("signals and timers", 0);
    signals::restore_sigactions(&t, &p.sigactions)?;
    timers::restore_itimers(&t, &p.itimers)?;
    progress.phase("threads", 0);
    threads::create_threads(&t, &p.threads)?;
    // After the threads: a timer may notify one of them (SIGEV_THREAD_ID).
    timers::restore_posix_timers(&t, &p.posix_timers)?;
    for th in &p.threads {
        threads::restore_thread_state(&t, th)?;
    }
    signals::restore_shared_pending(&t, &p.shared_pending)?;
    t.lcall(
        "close_range",
        libc::SYS_close_range,
        &[helper_base as u64, u32::MAX as u64, 0],
    )?;
    if let Some(c) = &p.creds {
        for th in &p.threads {
            identity::restore_creds(&t, th.tid as i32, c, p.no_new_privs)?;
        }
    }
    identity::restore_prctls(&t, p)?;
    if fault_point("restore-before-resume") {
        return Err(RestoreError::Injected("restore-before-resume"));
    }
    // Last remote syscall: drop the trampoline.
    t.lcall("munmap", libc::SYS_munmap, &[tramp, trampoline::TRAMP_SIZE])?;
    for th in &p.threads {
        threads::finish_thread(pid, th)?;
    }
    if let Some(f) = &opts.pidfile {
        std::fs::write(f, format!("{pid}\n")).map_err(|e| RestoreError::Failed {
            pid,
            what: format!("cannot write pidfile {}: {e}", f.display()),
        })?;
    }
    for th in &p.threads {
        ptrace::detach(th.tid as i32, 0).rst_ctx(pid, "detach")?;
    }
    guard.0 = None;
    drop(block_w);
    let total_ms = t0.elapsed().as_secs_f64() * 1e3;
    let exit_code = if opts.detach {
        None
    } else {
        Some(util::wait_exit(pid).rst_ctx(pid, "wait for exit")?)
    };
    Ok(Restored {
        pid,
        exit_code,
        total_ms,
    })
}

fn unsafe_fork(pid: i32, sibling: bool) -> Result<i32, RestoreError> {
    // SAFETY: see the caller: single-threaded, and the child runs only
    // code that is fine after fork.
    let r = unsafe { stasis_sys::clone::fork_with_pid(pid, libc::SIGCHLD, sibling) };
    r.map_err(|e| {
        if e.errno() == Some(libc::EEXIST) {
            RestoreError::Refused(format!(
                "pid {pid} is in use; stop that process or restore elsewhere"
            ))
        } else {
            RestoreError::Sys {
                pid,
                step: "clone3 with set_tid".into(),
                source: e,
            }
        }
    })
}

/// Our terminal, for --shell-job.
fn own_tty() -> Option<String> {
    (0..3).find(|fd| util::isatty(*fd)).and_then(|fd| {
        std::fs::read_link(format!("/proc/self/fd/{fd}"))
            .ok()
            .map(|p| p.display().to_string())
    })
}

/// Everything that can be checked before a process is created.
pub fn validate(image: &Image, opts: &RestoreOptions) -> Result<(), RestoreError> {
    let inv = &image.inventory;
    let refuse = |s: String| Err(RestoreError::Refused(s));
    if inv.arch != std::env::consts::ARCH {
        return refuse(format!(
            "image is for {}, this machine is {}",
            inv.arch,
            std::env::consts::ARCH
        ));
    }
    if image.processes.len() != 1 {
        return refuse(format!(
            "image holds {} processes; this stasis restores one",
            image.processes.len()
        ));
    }
    if inv.shell_job && !opts.shell_job {
        return refuse("image was dumped with --shell-job; restore it with --shell-job".into());
    }
    let ours = own_vdso()?;
    for p in &image.processes {
        let pid = p.pid as i32;
        if std::path::Path::new(&format!("/proc/{pid}")).exists() {
            return refuse(format!(
                "pid {pid} is in use; stop that process or restore elsewhere"
            ));
        }
        for th in &p.threads {
            if std::path::Path::new(&format!("/proc/{}", th.tid)).exists() {
                return refuse(format!("tid {} of pid {pid} is in use", th.tid));
            }
        }
        // vDSO: same code and same layout, or refuse.
        let vd: Vec<_> = p
            .vmas
            .iter()
            .filter(|v| v.kind == VmaKind::Vdso as i32)
            .collect();
        if !vd.is_empty() {
            let base = vd
                .iter()
                .find(|v| v.name == "[vdso]")
                .map(|v| v.start)
                .unwrap_or(0);
            let layout: Vec<(String, i64, u64)> = vd
                .iter()
                .map(|v| {
                    (
                        v.name.clone(),
                        v.start as i64 - base as i64,
                        v.end - v.start,
                    )
                })
                .collect();
            if layout != ours.0 || inv.vdso_hash != ours.1 {
                return refuse(format!(
                    "pid {pid}: the image's vDSO differs from this kernel's (dumped on {}, this is {}); restore on the same kernel",
                    inv.kernel_release,
                    crate::dump::kernel_release()
                ));
            }
        }
        files::check_files(p)?;
        for v in &p.vmas {
            if v.kind != VmaKind::File as i32 {
                continue;
            }
            // A shared writable mapping writes its file: it may have
            // changed (through this very process); it must only exist.
            let writes_file =
                v.flags & libc::MAP_SHARED as u32 != 0 && v.prot & libc::PROT_WRITE as u32 != 0;
            check_same_file(
                pid,
                &v.name,
                if writes_file { None } else { v.file.as_ref() },
            )?;
        }
        check_same_file(pid, &p.exe_path, p.exe_id.as_ref())?;
        if let Some(c) = &p.creds {
            // SAFETY-free: getuid via nix.
            if !nix::unistd::geteuid().is_root()
                && (c.uid != nix::unistd::getuid().as_raw() || c.cap_eff != 0)
            {
                return refuse(format!(
                    "pid {pid} ran as uid {} with capabilities {:#x}; only root may restore credentials it does not hold",
                    c.uid, c.cap_eff
                ));
            }
        }
    }
    Ok(())
}

fn check_same_file(pid: i32, path: &str, id: Option<&img::FileId>) -> Result<(), RestoreError> {
    let st = nix::sys::stat::stat(path)
        .map_err(|e| RestoreError::Refused(format!("pid {pid}: {path} is gone ({e})")))?;
    if let Some(id) = id {
        let mtime = st.st_mtime * 1_000_000_000 + st.st_mtime_nsec;
        if st.st_size as u64 != id.size || mtime != id.mtime_ns {
            return Err(RestoreError::Refused(format!(
                "pid {pid}: mapped file {path} changed since the dump; restoring it would run different code or data"
            )));
        }
    }
    Ok(())
}

/// Layout of our own vDSO block relative to [vdso], and its code hash.
#[allow(clippy::type_complexity)]
fn own_vdso() -> Result<(Vec<(String, i64, u64)>, u64), RestoreError> {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    let maps = stasis_proc::parse_maps(&maps).unwrap_or_default();
    let vd: Vec<_> = maps
        .iter()
        .filter(|m| matches!(m.path.as_str(), "[vdso]" | "[vvar]" | "[vvar_vclock]"))
        .collect();
    let Some(v) = vd.iter().find(|m| m.path == "[vdso]") else {
        return Ok((Vec::new(), 0));
    };
    let mut buf = vec![0u8; (v.end - v.start) as usize];
    stasis_sys::mem::read(
        std::process::id() as i32,
        stasis_sys::RemoteAddr(v.start),
        &mut buf,
    )
    .rst_ctx(0, "read own vDSO")?;
    let layout = vd
        .iter()
        .map(|m| {
            (
                m.path.clone(),
                m.start as i64 - v.start as i64,
                m.end - m.start,
            )
        })
        .collect();
    Ok((layout, xxhash_rust::xxh3::xxh3_64(&buf)))
}

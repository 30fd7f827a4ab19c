//! Code that runs inside the freshly cloned process, in ordinary Rust,
//! before the restorer takes it over with ptrace. It only touches the new
//! process: session, descriptors, cwd/root, umask, personality, rlimits,
//! and the trampoline page. On failure it writes the reason to the error
//! pipe and exits; on success it stops itself for the tracer and never
//! runs again as this code (the restorer replaces its registers).

use std::os::fd::RawFd;

use stasis_image::{Pipe, Process};
use stasis_sys::{ptrace, util};

use crate::{files, identity, trampoline};

/// Everything the child needs, prepared by the parent before the fork.
pub struct ChildPlan<'a> {
    pub process: &'a Process,
    pub pipes: &'a [Pipe],
    pub shell_job: bool,
    pub tty: Option<String>,
    /// Helper files: (path, open flags), placed at `helper_base + index`.
    pub helpers: Vec<(String, i32)>,
    pub helper_base: RawFd,
    pub err_fd: RawFd,
    pub tramp_addr: u64,
}

/// Runs in the child; never returns.
pub fn run(plan: &ChildPlan<'_>) -> ! {
    // Die with the restorer until it has attached (EXITKILL then holds).
    util::set_pdeathsig(libc::SIGKILL);
    util::block_all_signals();
    util::reset_signal_dispositions();
    match setup(plan) {
        Ok(()) => util::exit_now(3),
        Err(msg) => {
            let _ = util::write_all_raw(
                plan.helper_base + plan.helpers.len() as RawFd,
                msg.as_bytes(),
            );
            let _ = util::write_all_raw(plan.err_fd, msg.as_bytes());
            util::exit_now(1)
        }
    }
}

fn setup(plan: &ChildPlan<'_>) -> Result<(), String> {
    let p = plan.process;
    if !plan.shell_job {
        util::setsid().map_err(|e| format!("setsid: {e}"))?;
    }
    // The error pipe goes right after the helpers.
    let err_at = plan.helper_base + plan.helpers.len() as RawFd;
    util::dup_to(plan.err_fd, err_at, true).map_err(|e| e.to_string())?;
    let err_fd = err_at;
    for (i, (path, flags)) in plan.helpers.iter().enumerate() {
        let fd = util::open_raw(path, *flags | libc::O_CLOEXEC)
            .map_err(|e| format!("cannot open {path}: {e}"))?;
        util::dup_to(fd, plan.helper_base + i as RawFd, true).map_err(|e| e.to_string())?;
        if fd != plan.helper_base + i as RawFd {
            util::close_raw(fd);
        }
    }
    let scratch_base = err_fd + 1;
    files::restore_in_child(p, plan.pipes, plan.tty.as_deref(), scratch_base)?;
    // Close whatever the restorer's fork left below the helpers.
    let mut keep: Vec<RawFd> = p.fds.iter().map(|f| f.fd).collect();
    keep.sort();
    let mut lo = 0;
    for k in keep.iter().copied().chain([plan.helper_base]) {
        if k > lo {
            util::close_range(lo as u32, (k - 1) as u32).map_err(|e| e.to_string())?;
        }
        lo = k + 1;
    }
    util::chdir(&p.cwd).map_err(|e| format!("cwd: {e}"))?;
    if p.root != "/" {
        util::chroot(&p.root).map_err(|e| format!("root: {e}"))?;
    }
    identity::apply_in_child(p)?;
    util::map_trampoline(plan.tramp_addr, trampoline::TRAMP_SIZE, &trampoline::CODE)
        .map_err(|e| e.to_string())?;
    ptrace::traceme().map_err(|e| e.to_string())?;
    util::stop_self();
    Err("the restorer did not take over the new process".into())
}

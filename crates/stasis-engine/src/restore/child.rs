//! Code that runs inside the freshly cloned process, in ordinary Rust,
//! before the restorer takes it over with ptrace. It only touches the new
//! process: session, descriptors, cwd/root, umask, personality, rlimits,
//! and the trampoline page. On failure it writes the reason to the error
//! pipe and exits; on success it writes one zero byte there and blocks on
//! a pipe until the restorer seizes it with ptrace and replaces its
//! registers, so it never runs as this code again. If the restorer dies
//! first, the pipe reads EOF and the child exits.

use std::os::fd::RawFd;

use stasis_image::{Pipe, Process};
use stasis_sys::util;

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
    /// Read end of a pipe the restorer never writes: the child blocks on
    /// it until the restorer seizes it, and sees EOF if the restorer dies.
    pub block_fd: RawFd,
    pub tramp_addr: u64,
}

/// Runs in the child; never returns.
pub fn run(plan: &ChildPlan<'_>) -> ! {
    util::block_all_signals();
    util::reset_signal_dispositions();
    match setup(plan) {
        Ok(()) => util::exit_now(3), // the restorer is gone
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
    let block_at = err_at + 1;
    util::dup_to(plan.block_fd, block_at, true).map_err(|e| e.to_string())?;
    for (i, (path, flags)) in plan.helpers.iter().enumerate() {
        let fd = util::open_raw(path, *flags | libc::O_CLOEXEC)
            .map_err(|e| format!("cannot open {path}: {e}"))?;
        util::dup_to(fd, plan.helper_base + i as RawFd, true).map_err(|e| e.to_string())?;
        if fd != plan.helper_base + i as RawFd {
            util::close_raw(fd);
        }
    }
    let scratch_base = block_at + 1;
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
    util::write_all_raw(err_fd, &[0]).map_err(|e| e.to_string())?;
    let mut b = [0u8; 1];
    let _ = util::read_raw(block_at, &mut b);
    // Reached only if the restorer went away without taking us over.
    Ok(())
}

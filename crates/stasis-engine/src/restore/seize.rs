//! Seizing the new tree: every process is traced (with EXITKILL) and
//! interrupted on its trampoline; then the restorer puts every process in
//! its group, sets each terminal's foreground group, and lets group
//! stand-ins and zombies go.

use std::collections::BTreeMap;

use stasis_image::{Image, Process};
use stasis_sys::{ptrace, util};

use super::child::{self, ChildPlan};
use super::create::{Hosts, KillGuard};
use crate::error::{RestoreError, SysCtx};
use crate::handle::Target;
use crate::tree::{Origin, Plan};
use crate::{trampoline, Progress};

/// Seizes every process in `order` (all but the group stand-ins), each
/// stopped on its trampoline.
pub(super) fn seize_all(
    image: &Image,
    order: &[usize],
    plans: &[ChildPlan<'_>],
    hosts: &Hosts,
    guard: &mut KillGuard,
) -> Result<BTreeMap<usize, Target>, RestoreError> {
    let mut targets: BTreeMap<usize, Target> = BTreeMap::new();
    for &i in order {
        let p = &image.processes[i];
        let pid = hosts.of(p.pid);
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
    Ok(targets)
}

/// Checks the FPU state size, sets process groups and foreground groups,
/// and ends the group stand-ins and zombies; from then on only live
/// processes are traced.
pub(super) fn settle(
    image: &Image,
    plan: &Plan,
    targets: &BTreeMap<usize, Target>,
    hosts: &Hosts,
    guard: &mut KillGuard,
    progress: &dyn Progress,
) -> Result<(), RestoreError> {
    check_xstate(hosts.of(image.inventory.root_pid), image)?;
    progress.phase("process groups", 0);
    set_groups(&image.processes, plan, targets)?;
    set_foreground(&image.processes, targets)?;
    end_helpers(plan, targets, &|p| hosts.of(p))?;
    end_zombies(&image.processes, targets)?;
    guard.seized.retain(|pid| {
        image
            .processes
            .iter()
            .any(|p| hosts.of(p.pid) == *pid && !p.zombie)
    });
    Ok(())
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

//! Code that runs inside the freshly cloned processes, in ordinary Rust,
//! before the restorer takes them over with ptrace.
//!
//! Each new process first forks its own children (clone3 with their pids),
//! before and after its setsid as [`crate::tree`] planned, so parents,
//! sessions and exit signals come out right. Then it sets up what only it
//! can: its descriptors (dup'd from the description table every process
//! inherited from the restorer), cwd/root, umask, personality, rlimits,
//! and the trampoline page. It reports on the shared status pipe and
//! blocks on a pipe the restorer never writes, until the restorer seizes
//! it and replaces its registers, so it never runs as this code again. If
//! the restorer dies first, that pipe reads EOF and the process exits.
//!
//! A status report is one write (atomic on a pipe): pid as the image has
//! it (u32), ok (u8), message length (u16), message.
//!
//! With `--pidns` the tree lives in a new PID namespace, whose
//! [`run_init`] holds PID 1 when the tree's root is not PID 1; the init
//! also gives the tree a mount namespace with its own /proc, so that
//! /proc/self and /proc/PID name the pids the tree sees.

use std::collections::BTreeMap;
use std::os::fd::RawFd;

use stasis_image::Process;
use stasis_sys::util;

use crate::mm::cow::{self, Premap};
use crate::tree::Node;
use crate::{files, identity, trampoline};

/// What one new process needs, prepared by the restorer before the fork.
pub struct ChildPlan<'a> {
    pub process: &'a Process,
    pub node: &'a Node,
    pub is_root: bool,
    /// Files the memory switch needs: (path, open flags), placed at
    /// `helper_base + index`.
    pub helpers: Vec<(String, i32)>,
    pub helper_base: RawFd,
    pub tramp_addr: u64,
    /// Regions it maps and fills before forking its children, which
    /// inherit them copy-on-write (see [`crate::mm::cow`]).
    pub premaps: &'a [Premap],
}

/// What every new process shares.
pub struct Common<'a> {
    pub plans: &'a [ChildPlan<'a>],
    /// (pid, fd) -> number of its description, inherited from the restorer.
    pub slot: &'a BTreeMap<(u32, i32), RawFd>,
    /// First number of the inherited table (the status and block pipes,
    /// then the descriptions and shared memory objects); below it only
    /// the process's own fds stay open.
    pub table_base: RawFd,
    /// Write end of the status pipe (in the table).
    pub status_fd: RawFd,
    /// Read end of a pipe the restorer never writes (in the table).
    pub block_fd: RawFd,
    /// Path of the image's pages file.
    pub pages: &'a str,
}

/// Length of a status report header.
pub const REPORT_HEADER: usize = 7;
const MAX_MSG: usize = 480;

fn report(fd: RawFd, pid: u32, result: &Result<String, String>) {
    let mut msg = match result {
        Ok(m) | Err(m) => m.as_str(),
    };
    if msg.len() > MAX_MSG {
        msg = &msg[..msg.floor_char_boundary(MAX_MSG)];
    }
    let mut buf = Vec::with_capacity(REPORT_HEADER + msg.len());
    buf.extend_from_slice(&pid.to_ne_bytes());
    buf.push(u8::from(result.is_ok()));
    buf.extend_from_slice(&(msg.len() as u16).to_ne_bytes());
    buf.extend_from_slice(msg.as_bytes());
    let _ = util::write_all_raw(fd, &buf);
}

/// One status report: the image pid and the outcome, Ok with a note
/// (see [`premap`]) or Err with the reason.
pub type Report = (u32, Result<String, String>);

/// Parses the reports in `buf`; returns them and the bytes consumed.
pub fn parse_reports(buf: &[u8]) -> (Vec<Report>, usize) {
    let mut out = Vec::new();
    let mut at = 0;
    while buf.len() - at >= REPORT_HEADER {
        let h = &buf[at..at + REPORT_HEADER];
        let pid = u32::from_ne_bytes(h[..4].try_into().expect("4"));
        let ok = h[4] == 1;
        let len = u16::from_ne_bytes(h[5..7].try_into().expect("2")) as usize;
        if buf.len() - at - REPORT_HEADER < len {
            break;
        }
        let msg = &buf[at + REPORT_HEADER..at + REPORT_HEADER + len];
        out.push((
            pid,
            if ok {
                Ok(String::from_utf8_lossy(msg).into_owned())
            } else {
                Err(String::from_utf8_lossy(msg).into_owned())
            },
        ));
        at += REPORT_HEADER + len;
    }
    (out, at)
}

/// Runs in new process `idx`; never returns.
pub fn run(c: &Common<'_>, idx: usize) -> ! {
    util::block_all_signals();
    util::reset_signal_dispositions();
    let plan = &c.plans[idx];
    let r = setup(c, plan);
    report(c.status_fd, plan.process.pid, &r);
    if r.is_err() {
        util::exit_now(1);
    }
    let mut b = [0u8; 1];
    let _ = util::read_raw(c.block_fd, &mut b);
    // Reached only if the restorer went away without taking us over.
    util::exit_now(3)
}

/// PID 1 of a new PID namespace whose tree root is not PID 1: forks the
/// root (`idx`), drops every descriptor, then reaps orphans until the
/// root ends, and ends the same way (which ends the namespace). Never
/// returns.
pub fn run_init(c: &Common<'_>, idx: usize) -> ! {
    util::block_all_signals();
    // Named so that a later dump of the tree knows it for ours.
    let _ = util::set_comm(crate::pidns::INIT_NAME);
    let root = c.plans[idx].process.pid;
    // The tree saw its pids in /proc before; it must see them there now.
    if let Err(e) = util::mount_own_proc() {
        report(
            c.status_fd,
            root,
            &Err(format!("cannot mount /proc for the new PID namespace: {e}")),
        );
        util::exit_now(1);
    }
    if let Err(e) = fork_child(c, idx) {
        report(c.status_fd, root, &Err(e));
        util::exit_now(1);
    }
    let _ = util::close_range(0, u32::MAX);
    loop {
        match util::wait_any() {
            Ok((pid, st)) if pid == root as i32 => {
                if libc::WIFSIGNALED(st) {
                    util::exit_now(128 + libc::WTERMSIG(st));
                }
                util::exit_now(libc::WEXITSTATUS(st));
            }
            Ok(_) => {}
            Err(_) => util::exit_now(0),
        }
    }
}

/// Forks process `idx` of the plan; the child runs [`run`].
fn fork_child(c: &Common<'_>, idx: usize) -> Result<(), String> {
    let p = c.plans[idx].process;
    let mut share = 0;
    if p.files_shared_with_parent {
        share |= libc::CLONE_FILES as u64;
    }
    if p.fs_shared_with_parent {
        share |= libc::CLONE_FS as u64;
    }
    // SAFETY: the new processes are single-threaded, and the child only
    // runs `run`, which exits or is taken over. With CLONE_FILES/CLONE_FS
    // both sides set up the same fds and cwd, which converge.
    match unsafe {
        stasis_sys::clone::fork_sharing(p.pid as i32, p.exit_signal as i32, false, share)
    } {
        Ok(0) => run(c, idx),
        Ok(_) => Ok(()),
        Err(e) => Err(format!("cannot create pid {}: {e}", p.pid)),
    }
}

/// Forks the stand-in leader `pid` of a process group whose leader had
/// exited. It makes the group, reports, and waits to be killed.
fn fork_group_helper(c: &Common<'_>, pid: u32) -> Result<(), String> {
    // SAFETY: as in `fork_child`; the helper only makes syscalls and exits.
    match unsafe { stasis_sys::clone::fork_with_pid(pid as i32, 0, false) } {
        Ok(0) => {
            // Hold nothing of the restorer's below the table (its end of
            // the block pipe above all), so the restorer's death is seen.
            let _ = util::close_range(0, (c.table_base - 1) as u32);
            let r = util::setpgid_self()
                .map(|()| String::new())
                .map_err(|e| format!("group helper {pid}: {e}"));
            report(c.status_fd, pid, &r);
            let mut b = [0u8; 1];
            let _ = util::read_raw(c.block_fd, &mut b);
            util::exit_now(3)
        }
        Ok(_) => Ok(()),
        Err(e) => Err(format!("cannot create group helper {pid}: {e}")),
    }
}

/// Sets the process up; Ok holds the note of [`premap`].
fn setup(c: &Common<'_>, plan: &ChildPlan<'_>) -> Result<String, String> {
    let p = plan.process;
    let note = premap(c.pages, plan.premaps);
    for &ci in &plan.node.early {
        fork_child(c, ci)?;
    }
    if plan.node.setsid {
        util::setsid().map_err(|e| format!("setsid: {e}"))?;
    }
    for &ci in &plan.node.late {
        fork_child(c, ci)?;
    }
    for &h in &plan.node.helpers {
        fork_group_helper(c, h)?;
    }
    // A child sharing its parent's fd table (CLONE_FILES) leaves the
    // table to the process that owns it: two setting it up at once would
    // close each other's temporaries.
    let owns_table = !p.zombie && !p.files_shared_with_parent;
    if owns_table {
        for (i, (path, flags)) in plan.helpers.iter().enumerate() {
            let fd = util::open_raw(path, *flags | libc::O_CLOEXEC)
                .map_err(|e| format!("cannot open {path}: {e}"))?;
            util::dup_to(fd, plan.helper_base + i as RawFd, true).map_err(|e| e.to_string())?;
            if fd != plan.helper_base + i as RawFd {
                util::close_raw(fd);
            }
        }
        files::install_in_child(p, c.slot)?;
        files::epoll::install_in_child(p)?;
        if (p.tty_fg_pgid != 0 || p.ctty_pty != 0) && plan.node.setsid {
            let fd = tty_fd(p).ok_or("it led a session with a terminal, but has no terminal fd")?;
            util::set_ctty(fd).map_err(|e| {
                format!("cannot make fd {fd} its controlling terminal again ({e}); is the terminal still another session's?")
            })?;
        }
    }
    if !p.files_shared_with_parent {
        close_below_table(p, c.table_base)?;
    }
    if !p.zombie {
        util::chdir(&p.cwd).map_err(|e| format!("cwd: {e}"))?;
        if p.root != "/" {
            util::chroot(&p.root).map_err(|e| format!("root: {e}"))?;
        }
        identity::apply_in_child(p)?;
    }
    util::map_trampoline(plan.tramp_addr, trampoline::TRAMP_SIZE, &trampoline::CODE)
        .map_err(|e| e.to_string())?;
    Ok(note)
}

/// Maps and fills `premaps` (before the children are forked). A region
/// that cannot be placed (it collides with the restorer's own memory) or
/// filled is left out: the memory switch then restores it the ordinary
/// way, in every process that has it. Returns the note for the status
/// report, [`cow::failed_note`] of the regions left out.
fn premap(pages: &str, premaps: &[Premap]) -> String {
    if premaps.is_empty() {
        return String::new();
    }
    let Ok(fd) = util::open_raw(pages, libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW) else {
        return cow::failed_note(&(0..premaps.len()).collect::<Vec<_>>());
    };
    let mut failed = Vec::new();
    let mut placed = Vec::new();
    for (i, m) in premaps.iter().enumerate() {
        let len = m.end - m.start;
        if util::map_anon_at(m.start, len).is_err() {
            failed.push(i);
            continue;
        }
        let filled = m
            .runs
            .iter()
            .all(|r| util::pread_into(fd, r.vaddr, r.nr_pages * crate::mm::PAGE, r.offset).is_ok());
        if filled {
            placed.push(i);
        } else {
            util::unmap(m.start, len);
            failed.push(i);
        }
    }
    util::close_raw(fd);
    let note = cow::failed_note(&failed);
    if note.len() > MAX_MSG {
        // Too many to list: leave them all out.
        for i in placed {
            util::unmap(premaps[i].start, premaps[i].end - premaps[i].start);
        }
        return cow::failed_note(&(0..premaps.len()).collect::<Vec<_>>());
    }
    note
}

/// The fd of the process's controlling terminal: the slave of its pty
/// pair, or (a shell job) its first terminal fd.
pub fn tty_fd(p: &Process) -> Option<RawFd> {
    if p.ctty_pty != 0 {
        return files::pty::slave_fd(p);
    }
    p.fds
        .iter()
        .find(|f| f.kind == stasis_image::FdKind::Tty as i32)
        .map(|f| f.fd)
}

/// Closes what the restorer left below the table, keeping `p`'s own fds.
fn close_below_table(p: &Process, table_base: RawFd) -> Result<(), String> {
    let mut keep: Vec<RawFd> = p.fds.iter().map(|f| f.fd).collect();
    keep.sort();
    let mut lo = 0;
    for k in keep
        .iter()
        .copied()
        .filter(|k| *k < table_base)
        .chain([table_base])
    {
        if k > lo {
            util::close_range(lo as u32, (k - 1) as u32).map_err(|e| e.to_string())?;
        }
        lo = k + 1;
    }
    Ok(())
}

//! The restore side of [`super`]: every open file description of the
//! image opened once by the restorer, at fixed numbers, and installed in
//! each new process at its fd numbers.

use std::collections::{BTreeMap, BTreeSet};
use std::os::fd::RawFd;

use stasis_image::{Fd, FdKind, Pipe, Process};
use stasis_sys::util;

use super::{
    epoll, eventfd, fanotify, fifo, inet, inotify, locks, mqueue, pipe, pty, signalfd, timerfd,
    unix, unlinked, OPEN_FLAGS, SETFL_FLAGS,
};
use crate::error::{RestoreError, SysCtx};

/// Every open file description of the image, opened once by the restorer
/// before the first fork, at fixed numbers from `base` up. Every new
/// process inherits them all and dups its own to their numbers, so fds
/// that shared a description (dup, fork) share one again: one offset, one
/// set of status flags, one pipe.
pub struct Descriptions {
    /// (pid, fd) -> number of the description in the restorer.
    pub slot: BTreeMap<(u32, i32), RawFd>,
    /// First number after the table.
    pub end: RawFd,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    Desc(u32),
    Own(u32, i32),
}

impl Descriptions {
    /// Opens the descriptions of every live process of `procs`, at `base`
    /// and up; `tty` is the terminal given to `Tty` fds (--shell-job).
    pub fn open(
        procs: &[Process],
        pipes: &[Pipe],
        objects: &BTreeMap<u64, RawFd>,
        tty: Option<&str>,
        base: RawFd,
    ) -> Result<Descriptions, RestoreError> {
        // Pass 1: which fds share which description.
        let mut keys: BTreeMap<Key, (RawFd, u32, &Fd)> = BTreeMap::new();
        let mut slot = BTreeMap::new();
        for p in procs.iter().filter(|p| !p.zombie) {
            let mut own: BTreeMap<i32, Key> = BTreeMap::new();
            for (i, fd) in p.fds.iter().enumerate() {
                if made_in_process(fd) {
                    continue; // made by the process itself (pidfd.rs, uring.rs)
                }
                let key = if fd.desc != 0 {
                    Key::Desc(fd.desc)
                } else if let Some(k) = fd.dup_of.and_then(|o| own.get(&o)) {
                    *k
                } else {
                    Key::Own(p.pid, fd.fd)
                };
                own.insert(fd.fd, key);
                let next = base + keys.len() as RawFd;
                let (at, _, _) = *keys.entry(key).or_insert((next, p.pid, fd));
                slot.insert((p.pid, fd.fd), at);
                let _ = i;
            }
        }
        // Descriptions in flight in unix sockets: opened like the others,
        // sent along their messages, held by no process.
        let mut inflight = Vec::new();
        for p in procs.iter().filter(|p| !p.zombie) {
            for fd in &p.fds {
                unix::collect_inflight(fd, &mut inflight);
            }
        }
        for fd in &inflight {
            let next = base + keys.len() as RawFd;
            keys.entry(Key::Desc(fd.desc)).or_insert((next, 0, fd));
        }
        let desc_at: BTreeMap<u32, RawFd> = keys
            .iter()
            .filter_map(|(k, (at, _, _))| match k {
                Key::Desc(d) => Some((*d, *at)),
                Key::Own(..) => None,
            })
            .collect();
        let end = base + keys.len() as RawFd;
        // Temporaries live above the table, out of its way.
        let lift = |fd: RawFd| -> Result<RawFd, RestoreError> {
            let up = util::dup_above(fd, end).rst_ctx(0, "dup")?;
            util::close_raw(fd);
            Ok(up)
        };
        // Pass 2: open each description once.
        let mut pipes_made = pipe::Pipes::default();
        let mut opened = Vec::new();
        let mut socks = unix::Sockets::new(procs, &inflight, end);
        let mut sock_at: BTreeMap<u64, RawFd> = BTreeMap::new();
        let mut tmp_used = BTreeSet::new();
        let mut fifos = fifo::Fifos::default();
        let mut ptys = pty::Ptys::default();
        let mut queues = mqueue::Queues::default();
        let result = (|| {
            for p in pipes.iter().filter(|p| !p.fifo) {
                let lift = |fd| lift(fd).map_err(|e| e.to_string());
                pipes_made
                    .create(p, lift)
                    .map_err(|e| RestoreError::Failed {
                        pid: 0,
                        what: format!("pipe:[{}]: {e}", p.ino),
                    })?;
            }
            ptys.open_all(procs, end)
                .map_err(|what| RestoreError::Failed { pid: 0, what })?;
            for (at, pid, fd) in keys.values() {
                let fd: &Fd = fd;
                let what = |e: stasis_sys::SysError| RestoreError::Failed {
                    pid: *pid as i32,
                    what: format!("fd {} ({}): {e}", fd.fd, fd.path),
                };
                let kind = FdKind::try_from(fd.kind).unwrap_or(FdKind::Regular);
                let src = match kind {
                    FdKind::Pipe => pipes_made.open(fd, end).map_err(|e| RestoreError::Failed {
                        pid: *pid as i32,
                        what: format!("fd {}: {e}", fd.fd),
                    })?,
                    FdKind::Tty => {
                        let path = tty.ok_or_else(|| RestoreError::Refused(format!(
                            "pid {pid} fd {} was the terminal {}; restore has no terminal to give it (run from a terminal with --shell-job)",
                            fd.fd, fd.path
                        )))?;
                        util::open_raw(path, (fd.flags as i32 & OPEN_FLAGS) | libc::O_NOCTTY)
                            .map_err(what)?
                    }
                    FdKind::EventFd => eventfd::open(fd).map_err(what)?,
                    FdKind::SignalFd => signalfd::open(fd).map_err(what)?,
                    FdKind::TimerFd => timerfd::open(fd).map_err(what)?,
                    FdKind::Epoll => epoll::open(fd).map_err(what)?,
                    FdKind::PidFd | FdKind::IoUring => {
                        // Only in flight: the process makes its own.
                        return Err(RestoreError::Failed {
                            pid: *pid as i32,
                            what: format!(
                                "fd {}: a {kind:?} in flight in a unix socket, which the image cannot hold",
                                fd.fd
                            ),
                        });
                    }
                    FdKind::Fanotify => fanotify::open(fd).map_err(|e| RestoreError::Failed {
                        pid: *pid as i32,
                        what: format!("fd {} (fanotify): {e}", fd.fd),
                    })?,
                    FdKind::Inotify => inotify::open(fd).map_err(|e| RestoreError::Failed {
                        pid: *pid as i32,
                        what: format!("fd {} (inotify): {e}", fd.fd),
                    })?,
                    FdKind::PtyMaster | FdKind::PtySlave => {
                        ptys.open(fd).map_err(|e| RestoreError::Failed {
                            pid: *pid as i32,
                            what: format!("fd {} (pty {}): {e}", fd.fd, fd.pty_index),
                        })?
                    }
                    FdKind::Mqueue => queues.open(fd, end).map_err(|e| RestoreError::Failed {
                        pid: *pid as i32,
                        what: format!("fd {} (message queue {}): {e}", fd.fd, fd.path),
                    })?,
                    FdKind::Fifo => {
                        fifos
                            .open(fd, pipes, end)
                            .map_err(|e| RestoreError::Failed {
                                pid: *pid as i32,
                                what: format!("fd {} (FIFO {}): {e}", fd.fd, fd.path),
                            })?
                    }
                    FdKind::Unlinked => {
                        let obj =
                            objects
                                .get(&fd.object_id)
                                .ok_or_else(|| RestoreError::Failed {
                                    pid: *pid as i32,
                                    what: format!(
                                        "fd {}: object {} not created",
                                        fd.fd, fd.object_id
                                    ),
                                })?;
                        if unlinked::is_tmpfile_open(fd.flags, *obj)
                            && !tmp_used.contains(&fd.object_id)
                        {
                            tmp_used.insert(fd.object_id);
                            util::dup_above(*obj, end).map_err(what)?
                        } else {
                            // An O_TMPFILE file keeps O_DIRECTORY in its flags.
                            util::open_raw(
                                &format!("/proc/self/fd/{obj}"),
                                (fd.flags as i32 & OPEN_FLAGS & !libc::O_DIRECTORY)
                                    | libc::O_NOCTTY,
                            )
                            .map_err(what)?
                        }
                    }
                    FdKind::UnixSocket => {
                        let s = socks.open(fd).map_err(what)?;
                        if let Some(u) = &fd.unix {
                            sock_at.insert(u.ino, *at);
                        }
                        lift(s)?
                    }
                    FdKind::InetSocket => {
                        lift(inet::open(fd).map_err(|e| RestoreError::Failed {
                            pid: *pid as i32,
                            what: format!("fd {} ({}): {e}", fd.fd, fd.path),
                        })?)?
                    }
                    FdKind::Regular | FdKind::Directory | FdKind::CharDev => {
                        util::open_raw(&fd.path, (fd.flags as i32 & OPEN_FLAGS) | libc::O_NOCTTY)
                            .map_err(what)?
                    }
                };
                util::move_fd(src, *at).map_err(what)?;
                opened.push(*at);
                locks::take_shared(fd, *at).map_err(what)?;
                util::set_status_flags(*at, fd.flags as i32 & SETFL_FLAGS).map_err(what)?;
                if matches!(kind, FdKind::Regular | FdKind::Directory | FdKind::Unlinked)
                    && fd.flags as i32 & libc::O_PATH == 0
                {
                    util::seek_to(*at, fd.pos).map_err(what)?;
                }
            }
            socks
                .finish(&sock_at, &desc_at)
                .map_err(|e| RestoreError::Failed {
                    pid: 0,
                    what: format!("unix sockets: {e}"),
                })
        })();
        socks.close_pending();
        fifos.close();
        queues.close();
        ptys.close(procs);
        // The restorer's own pipe ends (a pipe whose reader had gone
        // stays without one).
        pipes_made.close();
        if let Err(e) = result {
            for fd in opened {
                util::close_raw(fd);
            }
            return Err(e);
        }
        Ok(Descriptions { slot, end })
    }

    /// Closes the table in the restorer once every process has its copy.
    pub fn close(&self, base: RawFd) {
        let _ = util::close_range(base as u32, (self.end - 1).max(base) as u32);
    }
}

/// Inside the new process: puts each fd of `p` at its number, from the
/// description table inherited from the restorer.
pub fn install_in_child(p: &Process, slot: &BTreeMap<(u32, i32), RawFd>) -> Result<(), String> {
    for fd in p.fds.iter().filter(|f| !made_in_process(f)) {
        let from = slot
            .get(&(p.pid, fd.fd))
            .ok_or_else(|| format!("fd {}: no description planned", fd.fd))?;
        util::dup_to(*from, fd.fd, fd.cloexec)
            .map_err(|e| format!("fd {} ({}): {e}", fd.fd, fd.path))?;
    }
    Ok(())
}

/// Descriptors each process makes itself once it exists (a pidfd needs
/// the whole tree; a ring belongs to the process that set it up), left out
/// of the restorer's table.
fn made_in_process(fd: &Fd) -> bool {
    fd.kind == FdKind::PidFd as i32 || fd.kind == FdKind::IoUring as i32
}

//! The restore side of [`super`]: every open file description of the
//! image opened once by the restorer, at fixed numbers, and installed in
//! each new process at its fd numbers.

use std::collections::{BTreeMap, BTreeSet};
use std::os::fd::RawFd;

use stasis_image::{Fd, FdKind, Pipe, Process};
use stasis_sys::util;

use super::kinds::{self, Open};
use super::{fifo, locks, mqueue, pipe, pty, unix, unlinked, OPEN_FLAGS, SETFL_FLAGS};
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

/// Which description each fd of the tree uses: (pid, fd) -> (its number
/// from `base` up, the pid and fd that open it), and the descriptions in
/// flight in unix sockets, which no process holds.
type Keys<'a> = BTreeMap<Key, (RawFd, u32, &'a Fd)>;

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
        let (mut keys, slot) = share(procs, base);
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
        let mut o = Openers {
            pipes,
            objects,
            tty,
            end,
            pipes_made: pipe::Pipes::default(),
            socks: unix::Sockets::new(procs, &inflight, end),
            sock_at: BTreeMap::new(),
            tmp_used: BTreeSet::new(),
            fifos: fifo::Fifos::default(),
            ptys: pty::Ptys::default(),
            queues: mqueue::Queues::default(),
        };
        let mut opened = Vec::new();
        let result = o.open_all(procs, &keys, &desc_at, &mut opened);
        o.close(procs);
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

/// Pass 1: which fds share which description, numbered from `base` up.
fn share(procs: &[Process], base: RawFd) -> (Keys<'_>, BTreeMap<(u32, i32), RawFd>) {
    let mut keys: Keys<'_> = BTreeMap::new();
    let mut slot = BTreeMap::new();
    for p in procs.iter().filter(|p| !p.zombie) {
        let mut own: BTreeMap<i32, Key> = BTreeMap::new();
        for fd in &p.fds {
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
        }
    }
    (keys, slot)
}

/// Moves temporary `fd` above the table (`end` and up), out of its way.
fn lift(fd: RawFd, end: RawFd) -> Result<RawFd, RestoreError> {
    let up = util::dup_above(fd, end).rst_ctx(0, "dup")?;
    util::close_raw(fd);
    Ok(up)
}

/// Pass 2: what opens each kind of description, and what it keeps
/// between descriptions (the two ends of a pipe, a socket's peer).
struct Openers<'a> {
    pipes: &'a [Pipe],
    objects: &'a BTreeMap<u64, RawFd>,
    tty: Option<&'a str>,
    /// First number after the table.
    end: RawFd,
    pipes_made: pipe::Pipes,
    socks: unix::Sockets<'a>,
    sock_at: BTreeMap<u64, RawFd>,
    tmp_used: BTreeSet<u64>,
    fifos: fifo::Fifos,
    ptys: pty::Ptys,
    queues: mqueue::Queues,
}

impl Openers<'_> {
    /// Opens every description in `keys` at its number (each recorded in
    /// `opened`), then connects the unix sockets.
    fn open_all(
        &mut self,
        procs: &[Process],
        keys: &Keys<'_>,
        desc_at: &BTreeMap<u32, RawFd>,
        opened: &mut Vec<RawFd>,
    ) -> Result<(), RestoreError> {
        let end = self.end;
        for p in self.pipes.iter().filter(|p| !p.fifo) {
            let lift = |fd| lift(fd, end).map_err(|e| e.to_string());
            self.pipes_made
                .create(p, lift)
                .map_err(|e| RestoreError::Failed {
                    pid: 0,
                    what: format!("pipe:[{}]: {e}", p.ino),
                })?;
        }
        self.ptys
            .open_all(procs, end)
            .map_err(|what| RestoreError::Failed { pid: 0, what })?;
        for (at, pid, fd) in keys.values() {
            let fd: &Fd = fd;
            let what = |e: stasis_sys::SysError| RestoreError::Failed {
                pid: *pid as i32,
                what: format!("fd {} ({}): {e}", fd.fd, fd.path),
            };
            let kind = FdKind::try_from(fd.kind).unwrap_or(FdKind::Regular);
            let src = self.open(kind, *at, *pid, fd)?;
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
        self.socks
            .finish(&self.sock_at, desc_at)
            .map_err(|e| RestoreError::Failed {
                pid: 0,
                what: format!("unix sockets: {e}"),
            })
    }

    /// Opens description `fd` (of kind `kind`, to go at `at`, opened for
    /// `pid`) somewhere above the table, the way [`kinds::kind`] says.
    fn open(&mut self, kind: FdKind, at: RawFd, pid: u32, fd: &Fd) -> Result<RawFd, RestoreError> {
        let end = self.end;
        let failed = |what: String| RestoreError::Failed {
            pid: pid as i32,
            what,
        };
        let what = |e: stasis_sys::SysError| failed(format!("fd {} ({}): {e}", fd.fd, fd.path));
        Ok(match kinds::kind(kind).open {
            Open::Pipe => self
                .pipes_made
                .open(fd, end)
                .map_err(|e| failed(format!("fd {}: {e}", fd.fd)))?,
            Open::Tty => {
                let path = self.tty.ok_or_else(|| RestoreError::Refused(format!(
                    "pid {pid} fd {} was the terminal {}; restore has no terminal to give it (run from a terminal with --shell-job)",
                    fd.fd, fd.path
                )))?;
                util::open_raw(path, (fd.flags as i32 & OPEN_FLAGS) | libc::O_NOCTTY)
                    .map_err(what)?
            }
            Open::Own(open, label) => open(fd).map_err(|e| {
                failed(format!("fd {} ({}): {e}", fd.fd, label.unwrap_or(&fd.path)))
            })?,
            Open::InProcess => {
                // Only in flight: the process makes its own.
                return Err(failed(format!(
                    "fd {}: a {kind:?} in flight in a unix socket, which the image cannot hold",
                    fd.fd
                )));
            }
            Open::Pty => self
                .ptys
                .open(fd)
                .map_err(|e| failed(format!("fd {} (pty {}): {e}", fd.fd, fd.pty_index)))?,
            Open::Mqueue => self
                .queues
                .open(fd, end)
                .map_err(|e| failed(format!("fd {} (message queue {}): {e}", fd.fd, fd.path)))?,
            Open::Fifo => self
                .fifos
                .open(fd, self.pipes, end)
                .map_err(|e| failed(format!("fd {} (FIFO {}): {e}", fd.fd, fd.path)))?,
            Open::Unlinked => self.open_unlinked(pid, fd)?,
            Open::UnixSocket => {
                let s = self.socks.open(fd).map_err(what)?;
                if let Some(u) = &fd.unix {
                    self.sock_at.insert(u.ino, at);
                }
                lift(s, end)?
            }
            Open::Path => util::open_raw(&fd.path, (fd.flags as i32 & OPEN_FLAGS) | libc::O_NOCTTY)
                .map_err(what)?,
        })
    }

    /// An unlinked file: its object, reopened (or, the first time for an
    /// O_TMPFILE open, the object itself).
    fn open_unlinked(&mut self, pid: u32, fd: &Fd) -> Result<RawFd, RestoreError> {
        let what = |e: stasis_sys::SysError| RestoreError::Failed {
            pid: pid as i32,
            what: format!("fd {} ({}): {e}", fd.fd, fd.path),
        };
        let obj = self
            .objects
            .get(&fd.object_id)
            .ok_or_else(|| RestoreError::Failed {
                pid: pid as i32,
                what: format!("fd {}: object {} not created", fd.fd, fd.object_id),
            })?;
        if unlinked::is_tmpfile_open(fd.flags, *obj) && !self.tmp_used.contains(&fd.object_id) {
            self.tmp_used.insert(fd.object_id);
            util::dup_above(*obj, self.end).map_err(what)
        } else {
            // An O_TMPFILE file keeps O_DIRECTORY in its flags.
            util::open_raw(
                &format!("/proc/self/fd/{obj}"),
                (fd.flags as i32 & OPEN_FLAGS & !libc::O_DIRECTORY) | libc::O_NOCTTY,
            )
            .map_err(what)
        }
    }

    /// Closes what the restorer kept while opening: sockets not yet
    /// connected, FIFO and queue helpers, pty masters, and its own pipe
    /// ends (a pipe whose reader had gone stays without one).
    fn close(mut self, procs: &[Process]) {
        let s = &mut self;
        s.socks.close_pending();
        s.fifos.close();
        s.queues.close();
        s.ptys.close(procs);
        s.pipes_made.close();
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
    kinds::made_in_process(fd.kind)
}

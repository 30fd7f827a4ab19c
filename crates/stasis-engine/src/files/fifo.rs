//! FIFOs (named pipes): the path, each description's access mode, and the
//! bytes buffered in the pipe, copied once per FIFO with tee(2) (never
//! consumed) into a [`Pipe`] record whose `ino` is the FIFO's object id.
//!
//! The buffered bytes live in the kernel's pipe, which exists while anyone
//! has the FIFO open. So a FIFO that a process outside the tree also has
//! open is refused at dump (its pipe would be split in two), and at
//! restore a FIFO that someone holds open is refused before anything
//! runs: filling it would add bytes to a live pipe of another program.
//!
//! Restore opens the FIFO read-write first (that never blocks and keeps a
//! reader and a writer), writes the buffered bytes back, opens each
//! description non-blocking with its own access mode (its status flags
//! are set after), and drops that first descriptor once all are open, so
//! readers see EOF exactly when the tree's last writer closes.
//!
//! A FIFO whose name was unlinked while open (`Pipe::unlinked`) is made
//! again at restore: at its old name when that is free (so /proc/PID/fd
//! reads "NAME (deleted)" as before), else at a free name beside it, else
//! as a plain pipe (same behaviour, another link text). The read-write
//! descriptor is opened at once, the name unlinked, and every description
//! opened through `/proc/self/fd` of it. Nothing is checked by name before
//! restore, and nobody else can hold it.
//!
//! Every open here is non-blocking (a FIFO opened for reading or writing
//! alone would wait for the other side) and every copy uses tee(2) with
//! SPLICE_F_NONBLOCK, so no step waits on another program.

use std::collections::BTreeMap;
use std::os::fd::RawFd;

use stasis_image::{Fd, FdKind, Pipe, Process};
use stasis_sys::util;

use crate::error::RestoreError;

/// The record of FIFO fd `fd` (path already in `fd.path`) whose object id
/// is `id`.
pub fn describe(fd: &mut Fd, id: u64) {
    fd.kind = FdKind::Fifo as i32;
    fd.pipe_ino = id;
}

/// A process other than ourselves that has `path`'s FIFO open.
fn holder(path: &str) -> Option<i32> {
    let st = nix::sys::stat::stat(path).ok()?;
    let me = std::process::id() as i32;
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for f in fds.flatten() {
            if let Ok(s) = nix::sys::stat::stat(&f.path()) {
                if s.st_ino == st.st_ino && s.st_dev == st.st_dev {
                    return Some(pid);
                }
            }
        }
    }
    None
}

/// Before anything is created: the FIFO is there, is a FIFO, and nobody
/// holds it open (an unlinked one is made again; see the module doc).
pub fn check(p: &Process, fd: &Fd, pipes: &[Pipe]) -> Result<(), RestoreError> {
    if record(pipes, fd).is_some_and(|r| r.unlinked) {
        return Ok(());
    }
    let refuse = |what: String| {
        RestoreError::Refused(format!(
            "pid {} fd {}: the FIFO {} {what}",
            p.pid, fd.fd, fd.path
        ))
    };
    let st =
        nix::sys::stat::stat(fd.path.as_str()).map_err(|e| refuse(format!("is gone ({e})")))?;
    if st.st_mode & libc::S_IFMT != libc::S_IFIFO {
        return Err(refuse("is no longer a FIFO".into()));
    }
    if let Some(other) = holder(&fd.path) {
        return Err(RestoreError::Held(format!(
            "pid {} fd {}: the FIFO {} is open in pid {other}; restoring its buffered data would mix with that program's pipe",
            p.pid, fd.fd, fd.path
        )));
    }
    Ok(())
}

/// The `Pipe` record of FIFO fd `fd`.
fn record<'a>(pipes: &'a [Pipe], fd: &Fd) -> Option<&'a Pipe> {
    pipes.iter().find(|p| p.fifo && p.ino == fd.pipe_ino)
}

/// The FIFOs being opened by one restore: object id -> the read-write
/// descriptor that holds each open until [`Fifos::close`], and whether
/// descriptions open it through /proc/self/fd (an unlinked FIFO).
#[derive(Default)]
pub struct Fifos(BTreeMap<u64, (RawFd, bool)>);

impl Fifos {
    /// Opens one description of FIFO fd `fd`, filling the FIFO from its
    /// record in `pipes` the first time; `above` is where temporaries go.
    pub fn open(&mut self, fd: &Fd, pipes: &[Pipe], above: RawFd) -> Result<RawFd, String> {
        let rec = record(pipes, fd);
        let unlinked = rec.is_some_and(|r| r.unlinked);
        let (keep, _) = match self.0.entry(fd.pipe_ino) {
            std::collections::btree_map::Entry::Occupied(e) => *e.get(),
            std::collections::btree_map::Entry::Vacant(e) => {
                let keep = match rec.filter(|_| unlinked) {
                    Some(r) => make_unlinked(&fd.path, r.mode)?,
                    None => util::open_raw(&fd.path, libc::O_RDWR | libc::O_NONBLOCK)
                        .map_err(|e| e.to_string())?,
                };
                let keep_up = util::dup_above(keep, above).map_err(|e| e.to_string());
                util::close_raw(keep);
                let keep = e.insert((keep_up?, unlinked)).0;
                if let Some(pipe) = rec {
                    if pipe.capacity != 0 {
                        util::set_pipe_size(keep, pipe.capacity).map_err(|e| e.to_string())?;
                    }
                    util::write_all_raw(keep, &pipe.data).map_err(|e| e.to_string())?;
                }
                (keep, unlinked)
            }
        };
        let path = if unlinked {
            format!("/proc/self/fd/{keep}")
        } else {
            fd.path.clone()
        };
        let mode = fd.flags as i32 & libc::O_ACCMODE;
        util::open_raw(&path, mode | libc::O_NONBLOCK | libc::O_NOCTTY).map_err(|e| e.to_string())
    }

    /// Drops the read-write descriptors.
    pub fn close(&mut self) {
        for (fd, _) in std::mem::take(&mut self.0).into_values() {
            util::close_raw(fd);
        }
    }
}

/// A new FIFO in place of the unlinked one that was at `path`, with
/// permission bits `mode`, opened read-write (non-blocking) and unlinked
/// again; see the module doc for where it is made.
fn make_unlinked(path: &str, mode: u32) -> Result<RawFd, String> {
    let perm = nix::sys::stat::Mode::from_bits_truncate(mode & 0o7777);
    let beside = format!("{path}.stasis-{}", std::process::id());
    let mut why = String::new();
    for name in [path, beside.as_str()] {
        match nix::unistd::mkfifo(name, perm) {
            Ok(()) => {}
            Err(e) => {
                why = format!("{name}: {e}");
                if e == nix::errno::Errno::EEXIST {
                    continue;
                }
                break;
            }
        }
        if name != path {
            tracing::warn!("{path} is taken; the unlinked FIFO that was there is made as {name}");
        }
        let fd = util::open_raw(name, libc::O_RDWR | libc::O_NONBLOCK);
        let _ = std::fs::remove_file(name);
        let fd = fd.map_err(|e| format!("cannot open the FIFO made at {name}: {e}"))?;
        // mkfifo's bits went through our umask.
        use std::os::unix::fs::PermissionsExt;
        let perms = std::fs::Permissions::from_mode(mode & 0o7777);
        if let Err(e) = std::fs::set_permissions(format!("/proc/self/fd/{fd}"), perms) {
            util::close_raw(fd);
            return Err(format!(
                "cannot set the mode of the FIFO made at {name}: {e}"
            ));
        }
        return Ok(fd);
    }
    // Both names taken, or no directory: a pipe behaves the same.
    tracing::warn!("cannot make the unlinked FIFO {path} again ({why}); a pipe takes its place");
    let (r, w) = util::pipe_raw().map_err(|e| e.to_string())?;
    let rw = util::open_raw(
        &format!("/proc/self/fd/{r}"),
        libc::O_RDWR | libc::O_NONBLOCK,
    );
    util::close_raw(r);
    util::close_raw(w);
    rw.map_err(|e| format!("cannot make a pipe in place of the FIFO {path}: {e}"))
}

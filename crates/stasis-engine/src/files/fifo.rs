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
/// holds it open.
pub fn check(p: &Process, fd: &Fd) -> Result<(), RestoreError> {
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
        return Err(refuse(format!(
            "is open in pid {other}; restoring its buffered data would mix with that program's pipe"
        )));
    }
    Ok(())
}

/// The FIFOs being opened by one restore: object id -> the read-write
/// descriptor that holds each open until [`Fifos::close`].
#[derive(Default)]
pub struct Fifos(BTreeMap<u64, RawFd>);

impl Fifos {
    /// Opens one description of FIFO fd `fd`, filling the FIFO from its
    /// record in `pipes` the first time; `above` is where temporaries go.
    pub fn open(&mut self, fd: &Fd, pipes: &[Pipe], above: RawFd) -> Result<RawFd, String> {
        if let std::collections::btree_map::Entry::Vacant(e) = self.0.entry(fd.pipe_ino) {
            let keep = util::open_raw(&fd.path, libc::O_RDWR | libc::O_NONBLOCK)
                .map_err(|e| e.to_string())?;
            let keep_up = util::dup_above(keep, above).map_err(|e| e.to_string());
            util::close_raw(keep);
            let keep = *e.insert(keep_up?);
            if let Some(pipe) = pipes.iter().find(|p| p.ino == fd.pipe_ino) {
                if pipe.capacity != 0 {
                    util::set_pipe_size(keep, pipe.capacity).map_err(|e| e.to_string())?;
                }
                util::write_all_raw(keep, &pipe.data).map_err(|e| e.to_string())?;
            }
        }
        let mode = fd.flags as i32 & libc::O_ACCMODE;
        util::open_raw(&fd.path, mode | libc::O_NONBLOCK | libc::O_NOCTTY)
            .map_err(|e| e.to_string())
    }

    /// Drops the read-write descriptors.
    pub fn close(&mut self) {
        for fd in std::mem::take(&mut self.0).into_values() {
            util::close_raw(fd);
        }
    }
}

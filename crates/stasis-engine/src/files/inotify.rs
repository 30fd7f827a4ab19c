//! inotify(7) instances: every watch with its descriptor number and mask.
//!
//! Dump reads the watches from fdinfo (`inotify wd:...`), each with the
//! watched inode's file handle, and turns the handle into a path on the
//! filesystem's mount (open_by_handle_at(2), then the link in
//! /proc/self/fd), so the image names what is watched and can be restored
//! on another machine with the same paths.
//!
//! Restore adds each watch again by path with its mask. The kernel hands
//! out watch descriptors in increasing order, and programs keep tables keyed
//! by them, so each one must come back with the same number: a watch that
//! gets a lower number is removed and added again until the numbers match;
//! the IN_IGNORED events those removals queue are read and dropped before
//! any process runs.
//!
//! Not kept: events that were queued and not yet read at dump time. They
//! cannot be read without consuming them from the running program (and
//! the kernel has no call to queue an event), so they are lost, as in
//! CRIU; a program that dumps with a non-empty queue gets a warning.

use std::os::fd::RawFd;

use stasis_image::{Fd, FdKind, InotifyWatchRec};
use stasis_proc::FdInfo;
use stasis_sys::evfd;

/// Highest watch descriptor restore will count up to.
const MAX_WD: i32 = 1 << 20;

pub fn dump(pid: i32, fd: &mut Fd, info: &FdInfo) -> Result<(), String> {
    fd.kind = FdKind::Inotify as i32;
    fd.path = String::new();
    for w in &info.inotify {
        let path = resolve(w).map_err(|e| {
            format!(
                "an inotify instance watching inode {} (wd {}) whose path stasis cannot find: {e}",
                w.ino, w.wd
            )
        })?;
        fd.inotify.push(InotifyWatchRec {
            wd: w.wd,
            mask: w.mask,
            path,
        });
    }
    super::watch::warn_unread(pid, fd.fd, "inotify");
    Ok(())
}

/// The path of a watched inode, from its handle and device.
fn resolve(w: &stasis_proc::InotifyWatch) -> Result<String, String> {
    let handle_type = w.fhandle_type.ok_or("no file handle in fdinfo")?;
    super::watch::path_of_handle(w.sdev, handle_type, &w.fhandle)
}

/// Creates the instance with every watch at its number (module doc).
pub fn open(fd: &Fd) -> Result<RawFd, String> {
    let ifd = evfd::inotify().map_err(|e| e.to_string())?;
    let fail = |e: String| {
        stasis_sys::util::close_raw(ifd);
        e
    };
    let mut watches = fd.inotify.clone();
    watches.sort_by_key(|w| w.wd);
    for w in &watches {
        loop {
            let got = evfd::inotify_add_watch(ifd, &w.path, w.mask)
                .map_err(|e| fail(format!("watch {} (wd {}): {e}", w.path, w.wd)))?;
            if got == w.wd {
                break;
            }
            if got > w.wd || got > MAX_WD {
                return Err(fail(format!(
                    "watch {} came back as wd {got}, not {} (is it watched twice?)",
                    w.path, w.wd
                )));
            }
            evfd::inotify_rm_watch(ifd, got).map_err(|e| fail(e.to_string()))?;
        }
    }
    // The IN_IGNORED events of the removals.
    let mut buf = [0u8; 4096];
    while stasis_sys::util::read_raw(ifd, &mut buf).is_ok_and(|n| n > 0) {}
    Ok(ifd)
}

/// Before anything is created: every watched path is still there.
pub fn check(p: &stasis_image::Process, fd: &Fd) -> Result<(), crate::error::RestoreError> {
    for w in &fd.inotify {
        if std::fs::symlink_metadata(&w.path).is_err() {
            return Err(crate::error::RestoreError::Refused(format!(
                "pid {} fd {}: the inotify watch {} (wd {}) names a path that is gone",
                p.pid, fd.fd, w.path, w.wd
            )));
        }
    }
    Ok(())
}

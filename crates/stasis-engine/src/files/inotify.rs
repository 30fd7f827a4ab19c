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

use std::os::fd::{AsFd, AsRawFd, RawFd};

use stasis_image::{Fd, FdKind, InotifyWatchRec};
use stasis_proc::FdInfo;
use stasis_sys::evfd;
use stasis_sys::file::{self as sysfile, FileHandle};

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
    if let Ok(n) = queued(pid, fd.fd) {
        if n > 0 {
            tracing::warn!(
                "pid {pid} fd {}: {n} bytes of unread inotify events are not kept",
                fd.fd
            );
        }
    }
    Ok(())
}

/// Bytes of events waiting in the target's inotify fd (FIONREAD on a copy,
/// which reads nothing).
fn queued(pid: i32, fd: i32) -> Result<i32, stasis_sys::SysError> {
    let pfd = stasis_sys::pidfd::pidfd_open(pid)?;
    let ours = stasis_sys::pidfd::pidfd_getfd(&pfd, pid, stasis_sys::RemoteFd(fd))?;
    stasis_sys::util::fionread(ours.as_raw_fd())
}

/// The path of a watched inode, from its handle and device.
fn resolve(w: &stasis_proc::InotifyWatch) -> Result<String, String> {
    let handle_type = w.fhandle_type.ok_or("no file handle in fdinfo")?;
    path_of_handle(w.sdev, handle_type, &w.fhandle)
}

/// The mount points of the device `sdev` (kernel encoding, as fdinfo
/// prints it), those showing the filesystem's root first.
pub(crate) fn mounts_of(sdev: u32) -> Result<Vec<String>, String> {
    let dev = format!("{}:{}", sdev >> 20, sdev & 0xfffff);
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").map_err(|e| e.to_string())?;
    let mut points: Vec<(bool, String)> = mounts
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (f.get(2) == Some(&dev.as_str())).then(|| (f[3] != "/", unescape(f[4])))
        })
        .collect();
    points.sort();
    Ok(points.into_iter().map(|(_, p)| p).collect())
}

/// The mount point of mount `id` (as in /proc/self/mountinfo).
pub(crate) fn mount_point(id: u32) -> Option<String> {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    mounts.lines().find_map(|l| {
        let f: Vec<&str> = l.split(' ').collect();
        (f.first()?.parse::<u32>().ok()? == id).then(|| unescape(f[4]))
    })
}

/// The path of the inode a file handle names on device `sdev`.
pub(crate) fn path_of_handle(sdev: u32, handle_type: i32, bytes: &[u8]) -> Result<String, String> {
    let h = FileHandle {
        handle_type,
        bytes: bytes.to_vec(),
    };
    let dev = format!("{}:{}", sdev >> 20, sdev & 0xfffff);
    let mut last = format!("no mount of device {dev}");
    for point in mounts_of(sdev)? {
        let Ok(mount) = std::fs::File::open(&point) else {
            continue;
        };
        match sysfile::open_by_handle(mount.as_fd(), &h, libc::O_PATH) {
            Ok(f) => {
                let link = std::fs::read_link(format!("/proc/self/fd/{}", f.as_raw_fd()))
                    .map_err(|e| e.to_string())?;
                let path = link.to_string_lossy().into_owned();
                if path.ends_with(" (deleted)") || !path.starts_with('/') {
                    return Err(format!("it is {path}"));
                }
                return Ok(path);
            }
            Err(e) => last = e.to_string(),
        }
    }
    Err(last)
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(u8::is_ascii_digit) {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
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

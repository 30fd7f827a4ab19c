//! What inotify and fanotify share: turning the inodes, mounts and
//! filesystems they name in fdinfo (a file handle and a device, a mount id)
//! into paths, and the warning about events that are not kept.

use std::os::fd::{AsFd, AsRawFd};

use stasis_sys::file::{self as sysfile, FileHandle};

/// Warns when `what` fd `fd` of `pid` has events queued: they cannot be
/// read without consuming them (FIONREAD on a copy reads nothing), so they
/// are not kept.
pub fn warn_unread(pid: i32, fd: i32, what: &str) {
    let n = stasis_sys::pidfd::copy_of(pid, stasis_sys::RemoteFd(fd))
        .and_then(|c| stasis_sys::util::fionread(c.as_raw_fd()));
    if let Some(n) = n.ok().filter(|n| *n > 0) {
        tracing::warn!("pid {pid} fd {fd}: {n} bytes of unread {what} events are not kept");
    }
}

/// The mount points of the device `sdev` (kernel encoding, as fdinfo
/// prints it), those showing the filesystem's root first.
pub fn mounts_of(sdev: u32) -> Result<Vec<String>, String> {
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
pub fn mount_point(id: u32) -> Option<String> {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    mounts.lines().find_map(|l| {
        let f: Vec<&str> = l.split(' ').collect();
        (f.first()?.parse::<u32>().ok()? == id).then(|| unescape(f[4]))
    })
}

/// The path of the inode a file handle names on device `sdev`.
pub fn path_of_handle(sdev: u32, handle_type: i32, bytes: &[u8]) -> Result<String, String> {
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

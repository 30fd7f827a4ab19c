//! fanotify(7) groups: their init flags, the flags of the event fds they
//! hand out, and every mark (on an inode, a mount or a whole filesystem)
//! with its mask, ignored mask and mark flags, from fdinfo.
//!
//! Dump turns an inode mark's file handle into a path, a mount mark's
//! mount id into the mount point and a filesystem mark's device into one
//! of its mounts (see `inotify` for how). Restore makes the group with
//! fanotify_init(2) and adds each mark again by path with fanotify_mark(2)
//! (the ignored mask with FAN_MARK_IGNORED_MASK).
//!
//! Not kept: events queued and not yet read (they cannot be read without
//! consuming them; the dump warns), and permission events read but not yet
//! answered (the kernel allows them once the original group is gone).

use std::os::fd::RawFd;

use stasis_image::{FanotifyMark, FanotifyState, Fd, FdKind};

use super::watch::{mount_point, mounts_of, path_of_handle};

const FAN_MARK_ADD: u32 = 0x1;
const FAN_MARK_MOUNT: u32 = 0x10;
const FAN_MARK_IGNORED_MASK: u32 = 0x20;
const FAN_MARK_FILESYSTEM: u32 = 0x100;

/// "k:v" fields of one fdinfo line, numbers in hex as fdinfo prints them.
fn field(line: &str, key: &str) -> Option<u64> {
    line.split_whitespace().find_map(|w| {
        let (k, v) = w.split_once(':')?;
        (k == key).then(|| u64::from_str_radix(v, 16).ok())?
    })
}

pub fn dump(pid: i32, fd: &mut Fd) -> Result<(), String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{}", fd.fd))
        .map_err(|e| format!("a fanotify group whose fdinfo cannot be read: {e}"))?;
    let mut state = FanotifyState::default();
    for l in text.lines().filter_map(|l| l.strip_prefix("fanotify ")) {
        if l.starts_with("flags:") {
            state.init_flags = field(l, "flags").unwrap_or(0) as u32;
            state.event_flags = field(l, "event-flags").unwrap_or(0) as u32;
            continue;
        }
        let mark = |kind: u32, path: String| FanotifyMark {
            kind,
            path,
            mflags: field(l, "mflags").unwrap_or(0) as u32,
            mask: field(l, "mask").unwrap_or(0) as u32,
            ignored_mask: field(l, "ignored_mask").unwrap_or(0) as u32,
        };
        let sdev = field(l, "sdev").map(|v| v as u32);
        let m = if let Some(id) = field(l, "mnt_id") {
            let path = mount_point(id as u32).ok_or_else(|| {
                format!("a fanotify mark on mount {id}, which stasis cannot find")
            })?;
            mark(FAN_MARK_MOUNT, path)
        } else if l.starts_with("ino:") {
            let (Some(sdev), Some(ty)) = (sdev, field(l, "fhandle-type")) else {
                return Err(format!("a fanotify mark without a file handle: {l}"));
            };
            let bytes = l
                .split_whitespace()
                .find_map(|w| w.strip_prefix("f_handle:"))
                .and_then(hex)
                .ok_or("a fanotify mark with a bad file handle")?;
            let path = path_of_handle(sdev, ty as i32, &bytes).map_err(|e| {
                format!("a fanotify mark on an inode whose path stasis cannot find: {e}")
            })?;
            mark(0, path)
        } else if let Some(sdev) = sdev {
            let path = mounts_of(sdev)?
                .into_iter()
                .next()
                .ok_or("a fanotify mark on a filesystem that is not mounted here")?;
            mark(FAN_MARK_FILESYSTEM, path)
        } else {
            return Err(format!("a fanotify mark stasis does not understand: {l}"));
        };
        state.marks.push(m);
    }
    super::watch::warn_unread(pid, fd.fd, "fanotify");
    fd.kind = FdKind::Fanotify as i32;
    fd.path = String::new();
    fd.fanotify = Some(state);
    Ok(())
}

fn hex(s: &str) -> Option<Vec<u8>> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Makes the group with its marks.
pub fn open(fd: &Fd) -> Result<RawFd, String> {
    let s = fd.fanotify.clone().unwrap_or_default();
    let g =
        stasis_sys::evfd::fanotify_init(s.init_flags, s.event_flags).map_err(|e| e.to_string())?;
    // fdinfo lists the newest mark first: add them oldest first.
    for m in s.marks.iter().rev() {
        let add = |flags: u32, mask: u32| {
            stasis_sys::evfd::fanotify_mark(
                g,
                FAN_MARK_ADD | m.kind | m.mflags | flags,
                mask,
                &m.path,
            )
            .map_err(|e| format!("fanotify mark on {}: {e}", m.path))
        };
        let r = (|| {
            if m.mask != 0 {
                add(0, m.mask)?;
            }
            if m.ignored_mask != 0 {
                add(FAN_MARK_IGNORED_MASK, m.ignored_mask)?;
            }
            Ok::<(), String>(())
        })();
        if let Err(e) = r {
            stasis_sys::util::close_raw(g);
            return Err(e);
        }
    }
    Ok(g)
}

/// Before anything is created: every marked path is there.
pub fn check(p: &stasis_image::Process, fd: &Fd) -> Result<(), crate::error::RestoreError> {
    for m in fd.fanotify.iter().flat_map(|s| &s.marks) {
        if std::fs::symlink_metadata(&m.path).is_err() {
            return Err(crate::error::RestoreError::Refused(format!(
                "pid {} fd {}: the fanotify mark on {} names a path that is gone",
                p.pid, fd.fd, m.path
            )));
        }
    }
    Ok(())
}

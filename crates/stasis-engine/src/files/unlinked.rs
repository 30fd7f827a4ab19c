//! Files without a name: unlinked files still open or mapped, O_TMPFILE
//! files and memfds, the executable of a process whose binary was
//! deleted or replaced.
//!
//! Each such file is one object of the image, a [`PageMap`] with a
//! `shmem_id` (shared with the shmem objects of `mm`), however many fds,
//! mappings and processes use it:
//!
//! * **No name left** (link count 0): the contents go into `pages.img`,
//!   holes skipped, with no size limit. Restore creates the file again:
//!   a memfd of the same name with its seals put back after filling, or
//!   the old path if free (then unlinked, so `/proc/PID/fd` reads the
//!   same), else an O_TMPFILE file in the same directory, else a memfd.
//! * **Another name left** (a hard link): no contents; restore opens the
//!   same inode by file handle (open_by_handle_at(2)), so writes through
//!   one name are seen through the other. Only on the same filesystem
//!   (the same machine); elsewhere restore fails with the reason.
//!
//! Each fd then reopens the object through `/proc/self/fd` with its own
//! flags and offset, as a new open file description (fds that shared one
//! still share it; see [`super::Descriptions`]).

use std::collections::BTreeMap;
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

use stasis_image::PageMap;
use stasis_proc::maps::DELETED_SUFFIX;
use stasis_sys::file::{self as sysfile, FileHandle};

use crate::error::{DumpError, RestoreError};
use crate::procfs;

/// The id of the object behind an inode, unique in one dump.
pub fn object_id(st: &libc::stat) -> u64 {
    (st.st_ino ^ (st.st_dev << 40)).max(1)
}

/// Describes the unlinked file that `/proc/PID/{rel}` leads to (an fd,
/// `exe` or a `map_files` entry) whose name was `link`: its object, with
/// no contents yet (see [`needs_contents`]).
pub fn describe(pid: i32, rel: &str, link: &str) -> Result<PageMap, DumpError> {
    let path = format!("/proc/{pid}/{rel}");
    let name = link.strip_suffix(DELETED_SUFFIX).unwrap_or(link);
    // Checked before opening: an open of a special file can wait (a FIFO
    // for its writer, a device for its carrier).
    if procfs::stat(pid, rel)?.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err(DumpError::Refused {
            pid,
            what: format!(
                "{rel} is the deleted special file {name}, which stasis cannot checkpoint"
            ),
        });
    }
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&path)
        .map_err(|e| procfs::io_err(pid, path.clone(), e))?;
    let st = nix::sys::stat::fstat(std::os::fd::AsRawFd::as_raw_fd(&f))
        .map_err(|e| procfs::io_err(pid, path.clone(), e.into()))?;
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err(DumpError::Refused {
            pid,
            what: format!("{rel} ({name}) changed into a special file while being dumped"),
        });
    }
    let mut m = PageMap {
        shmem_id: object_id(&st),
        shmem_size: st.st_size as u64,
        deleted_path: name.to_string(),
        file_mode: st.st_mode & 0o7777,
        ..Default::default()
    };
    if name.starts_with("/memfd:") {
        m.seals = sysfile::seals(f.as_fd())
            .map_err(|source| DumpError::Sys {
                pid,
                step: "memfd seals",
                source,
            })?
            .unwrap_or(0);
    } else if st.st_nlink > 0 {
        // Still linked elsewhere; a filesystem without handles falls back
        // to a copy (writes then no longer reach the other name).
        match sysfile::name_to_handle(f.as_fd()) {
            Ok((h, _)) => {
                m.handle = h.bytes;
                m.handle_type = h.handle_type;
            }
            Err(e) => tracing::warn!(
                "pid {pid} {rel}: {name} is unlinked but has {} other name(s), and its filesystem gives no handle ({e}); its contents are copied instead",
                st.st_nlink
            ),
        }
    }
    Ok(m)
}

/// Whether the object's contents go into the image.
pub fn needs_contents(m: &PageMap) -> bool {
    m.handle.is_empty()
}

/// Objects of fds and executables, collected while the tree's fds are
/// dumped: id -> (pid, path under /proc/PID to read it from, object).
#[derive(Default)]
pub struct Objects(pub BTreeMap<u64, (i32, String, PageMap)>);

impl Objects {
    /// Records the object of `/proc/PID/{rel}` (once), opened with open
    /// flags `flags`, and returns its id.
    pub fn add(&mut self, pid: i32, rel: &str, link: &str, flags: u32) -> Result<u64, DumpError> {
        let m = describe(pid, rel, link)?;
        let id = m.shmem_id;
        let e = self.0.entry(id).or_insert((pid, rel.to_string(), m));
        e.2.tmpfile |= flags & O_TMPFILE_BIT != 0;
        Ok(id)
    }
}

/// __O_TMPFILE: the bit of O_TMPFILE that f_flags keeps.
pub const O_TMPFILE_BIT: u32 = (libc::O_TMPFILE & !libc::O_DIRECTORY) as u32;

/// For an fd with `flags` of the object at `obj`: whether it is the
/// object's own O_TMPFILE description, to be shared (dup) rather than
/// reopened, so its flags read back with O_TMPFILE.
pub fn is_tmpfile_open(flags: u32, obj: std::os::fd::RawFd) -> bool {
    flags & O_TMPFILE_BIT != 0
        && stasis_sys::util::status_flags(obj).is_ok_and(|f| {
            f as u32 & O_TMPFILE_BIT != 0 && f & libc::O_ACCMODE == flags as i32 & libc::O_ACCMODE
        })
}

/// Creates the object `m` again, filled from `pages` (see the module doc).
/// `exe`: it is a process's executable, which the kernel takes only if no
/// descriptor has it open for writing; the object is then read-only.
pub fn create(m: &PageMap, pages: &File, exe: bool) -> Result<OwnedFd, RestoreError> {
    let fd = create_rw(m, pages)?;
    if !exe {
        return Ok(fd);
    }
    use std::os::fd::AsRawFd;
    File::open(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .map(OwnedFd::from)
        .map_err(|e| RestoreError::Failed {
            pid: 0,
            what: format!(
                "cannot reopen the executable {} read-only: {e}",
                m.deleted_path
            ),
        })
}

fn create_rw(m: &PageMap, pages: &File) -> Result<OwnedFd, RestoreError> {
    let fail = |what: String| RestoreError::Failed { pid: 0, what };
    if !m.handle.is_empty() {
        return open_linked(m).map_err(fail);
    }
    let memfd = |name: &str| {
        sysfile::memfd_sealable(name)
            .map(File::from)
            .map_err(|e| std::io::Error::from_raw_os_error(e.errno().unwrap_or(libc::EIO)))
    };
    let path = Path::new(&m.deleted_path);
    let mode = m.file_mode & 0o7777;
    let mut named = false;
    let in_dir = |flags: i32| {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(flags)
            .mode(mode)
            .open(path.parent().unwrap_or(Path::new("/")))
    };
    let f = if let Some(name) = m.deleted_path.strip_prefix("/memfd:") {
        memfd(name)
    } else if m.tmpfile {
        // Its name is its inode number ("#123"), which cannot be kept.
        in_dir(libc::O_TMPFILE)
    } else {
        let by_name = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(path);
        named = by_name.is_ok();
        by_name
            .or_else(|_| in_dir(libc::O_TMPFILE | libc::O_EXCL))
            .or_else(|_| {
                memfd(
                    path.file_name()
                        .and_then(|n| n.to_str())
                        .unwrap_or("unlinked"),
                )
            })
    }
    .map_err(|e| {
        fail(format!(
            "cannot recreate the deleted file {}: {e}",
            m.deleted_path
        ))
    })?;
    if named {
        let _ = std::fs::remove_file(path);
    }
    for r in &m.runs {
        let len = ((r.nr_pages * crate::mm::PAGE) as usize)
            .min(m.shmem_size.saturating_sub(r.vaddr) as usize);
        copy_range(pages, r.offset, &f, r.vaddr, len).map_err(|e| {
            fail(format!(
                "cannot fill the deleted file {}: {e}",
                m.deleted_path
            ))
        })?;
    }
    f.set_len(m.shmem_size)
        .and_then(|()| {
            use std::os::unix::fs::PermissionsExt;
            f.set_permissions(std::fs::Permissions::from_mode(mode))
        })
        .map_err(|e| {
            fail(format!(
                "cannot size the deleted file {}: {e}",
                m.deleted_path
            ))
        })?;
    if m.seals != 0 {
        sysfile::add_seals(f.as_fd(), m.seals)
            .map_err(|e| fail(format!("cannot seal the memfd {}: {e}", m.deleted_path)))?;
    }
    Ok(f.into())
}

/// Copies `len` bytes at `from_off` of `from` to `to_off` of `to`: in the
/// kernel (copy_file_range(2)) where the filesystems allow it, else through
/// a buffer.
fn copy_range(
    from: &File,
    from_off: u64,
    to: &File,
    to_off: u64,
    len: usize,
) -> std::io::Result<()> {
    let (mut a, mut b) = (from_off as i64, to_off as i64);
    let mut left = len;
    while left > 0 {
        match nix::fcntl::copy_file_range(from, Some(&mut a), to, Some(&mut b), left) {
            Ok(0) => break,
            Ok(n) => left -= n,
            Err(_) => break,
        }
    }
    if left == 0 {
        return Ok(());
    }
    let done = len - left;
    let mut buf = vec![0u8; left];
    from.read_exact_at(&mut buf, from_off + done as u64)?;
    to.write_all_at(&buf, to_off + done as u64)
}

/// Opens an unlinked file that kept another name, by its handle, on the
/// filesystem of the nearest existing ancestor of its old path.
fn open_linked(m: &PageMap) -> Result<OwnedFd, String> {
    let h = FileHandle {
        handle_type: m.handle_type,
        bytes: m.handle.clone(),
    };
    let mut dir = Path::new(&m.deleted_path).parent();
    while let Some(d) = dir {
        if let Ok(mount) = File::open(d) {
            let fd = sysfile::open_by_handle(mount.as_fd(), &h, libc::O_RDWR)
                .or_else(|_| sysfile::open_by_handle(mount.as_fd(), &h, libc::O_RDONLY))
                .map_err(|e| {
                    format!(
                        "the unlinked file {} (which had another name) is not on the filesystem of {} any more: {e}; it can only be restored on the machine and filesystem it was dumped on",
                        m.deleted_path,
                        d.display()
                    )
                })?;
            return Ok(under_old_name(fd, &m.deleted_path));
        }
        dir = d.parent();
    }
    Err(format!(
        "no directory of {} exists to find its filesystem",
        m.deleted_path
    ))
}

/// The same inode as `fd`, opened through its old name `path` (linked
/// there for a moment and unlinked again), so /proc/PID/fd and maps name
/// it as before: "PATH (deleted)". `fd` itself if the name is taken.
fn under_old_name(fd: OwnedFd, path: &str) -> OwnedFd {
    use std::os::fd::AsRawFd;
    let from = format!("/proc/self/fd/{}", fd.as_raw_fd());
    if nix::unistd::linkat(
        None,
        from.as_str(),
        None,
        path,
        nix::fcntl::AtFlags::AT_SYMLINK_FOLLOW,
    )
    .is_err()
    {
        return fd;
    }
    let again = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .or_else(|_| File::open(path));
    let _ = std::fs::remove_file(path);
    match again {
        Ok(f) => f.into(),
        Err(_) => fd,
    }
}

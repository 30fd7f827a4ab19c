//! File identity beyond paths: memfd seals (memfd_create(2), fcntl(2)
//! F_GET_SEALS/F_ADD_SEALS) and file handles (name_to_handle_at(2),
//! open_by_handle_at(2)), which reach an inode whose name was unlinked.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use crate::error::{Result, SysError};

/// Largest handle the kernel hands out (MAX_HANDLE_SZ).
const MAX_HANDLE_SZ: usize = 128;

/// memfd_create(2) with MFD_CLOEXEC and MFD_ALLOW_SEALING, so any seal
/// set can be put back (a memfd made without sealing reads back as
/// sealed with F_SEAL_SEAL, which [`add_seals`] restores the same way).
pub fn memfd_sealable(name: &str) -> Result<OwnedFd> {
    let c = std::ffi::CString::new(name).map_err(|_| SysError::Call {
        call: "memfd_create",
        what: format!("name {name:?}"),
        errno: libc::EINVAL,
    })?;
    // SAFETY: `c` is a NUL-terminated string that outlives the call.
    let fd = unsafe { libc::memfd_create(c.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    if fd < 0 {
        return Err(SysError::last("memfd_create", name.to_string()));
    }
    // SAFETY: the descriptor was just created and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// fcntl(F_GET_SEALS): the seals of a memfd; `None` for a file that
/// cannot be sealed (EINVAL).
pub fn seals(fd: BorrowedFd<'_>) -> Result<Option<u32>> {
    // SAFETY: F_GET_SEALS takes no argument and only reads the inode.
    let r = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS) };
    if r < 0 {
        return match crate::errno() {
            libc::EINVAL => Ok(None),
            _ => Err(SysError::last("fcntl(F_GET_SEALS)", "memfd")),
        };
    }
    Ok(Some(r as u32))
}

/// fcntl(F_ADD_SEALS).
pub fn add_seals(fd: BorrowedFd<'_>, seals: u32) -> Result<()> {
    // SAFETY: F_ADD_SEALS takes an int and only changes the inode's seals.
    let r = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals as libc::c_int) };
    if r < 0 {
        return Err(SysError::last("fcntl(F_ADD_SEALS)", format!("{seals:#x}")));
    }
    Ok(())
}

/// An opaque file handle: the filesystem's own name for an inode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileHandle {
    pub handle_type: i32,
    pub bytes: Vec<u8>,
}

#[repr(C)]
struct RawHandle {
    handle_bytes: u32,
    handle_type: i32,
    f_handle: [u8; MAX_HANDLE_SZ],
}

/// name_to_handle_at(2) with AT_EMPTY_PATH: the handle of the file `fd`
/// is open on, and the id of its mount.
pub fn name_to_handle(fd: BorrowedFd<'_>) -> Result<(FileHandle, i32)> {
    let mut h = RawHandle {
        handle_bytes: MAX_HANDLE_SZ as u32,
        handle_type: 0,
        f_handle: [0; MAX_HANDLE_SZ],
    };
    let mut mnt_id: libc::c_int = 0;
    // SAFETY: `h` is a struct file_handle with room for MAX_HANDLE_SZ
    // bytes, as handle_bytes says; the empty path is NUL-terminated.
    let r = unsafe {
        libc::name_to_handle_at(
            fd.as_raw_fd(),
            c"".as_ptr(),
            (&mut h as *mut RawHandle).cast(),
            &mut mnt_id,
            libc::AT_EMPTY_PATH,
        )
    };
    if r < 0 {
        return Err(SysError::last("name_to_handle_at", "open file"));
    }
    let n = (h.handle_bytes as usize).min(MAX_HANDLE_SZ);
    Ok((
        FileHandle {
            handle_type: h.handle_type,
            bytes: h.f_handle[..n].to_vec(),
        },
        mnt_id,
    ))
}

/// open_by_handle_at(2): opens the inode `handle` names on the filesystem
/// that `mount` is on, with `flags` (O_CLOEXEC added). Needs
/// CAP_DAC_READ_SEARCH.
pub fn open_by_handle(mount: BorrowedFd<'_>, handle: &FileHandle, flags: i32) -> Result<OwnedFd> {
    if handle.bytes.len() > MAX_HANDLE_SZ {
        return Err(SysError::Call {
            call: "open_by_handle_at",
            what: format!("a handle of {} bytes", handle.bytes.len()),
            errno: libc::EINVAL,
        });
    }
    let mut h = RawHandle {
        handle_bytes: handle.bytes.len() as u32,
        handle_type: handle.handle_type,
        f_handle: [0; MAX_HANDLE_SZ],
    };
    h.f_handle[..handle.bytes.len()].copy_from_slice(&handle.bytes);
    // SAFETY: `h` is a valid struct file_handle whose handle_bytes fit
    // its buffer; the kernel only reads it.
    let fd = unsafe {
        libc::open_by_handle_at(
            mount.as_raw_fd(),
            (&mut h as *mut RawHandle).cast(),
            flags | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(SysError::last("open_by_handle_at", "file handle"));
    }
    // SAFETY: the descriptor was just opened and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// flock(2).
pub fn flock(fd: std::os::fd::RawFd, op: i32) -> Result<()> {
    // SAFETY: flock on a descriptor of our own; no memory is passed.
    let r = unsafe { libc::flock(fd, op) };
    if r < 0 {
        return Err(SysError::last("flock", format!("fd {fd} op {op:#x}")));
    }
    Ok(())
}

/// fcntl(F_OFD_SETLK): takes `l` for the open file description `fd`.
pub fn ofd_setlk(fd: std::os::fd::RawFd, l: &libc::flock) -> Result<()> {
    let mut l = *l;
    l.l_pid = 0;
    // SAFETY: F_OFD_SETLK reads one struct flock, which `l` is.
    let r = unsafe { libc::fcntl(fd, libc::F_OFD_SETLK, &l as *const libc::flock) };
    if r < 0 {
        return Err(SysError::last("fcntl(F_OFD_SETLK)", format!("fd {fd}")));
    }
    Ok(())
}

/// fcntl(F_OFD_GETLK): the first lock that would conflict with `l` on
/// `fd`'s file (`l_type` F_UNLCK when none does).
pub fn ofd_getlk(fd: std::os::fd::RawFd, l: &libc::flock) -> Result<libc::flock> {
    let mut l = *l;
    l.l_pid = 0;
    // SAFETY: F_OFD_GETLK reads and overwrites one struct flock, `l`.
    let r = unsafe { libc::fcntl(fd, libc::F_OFD_GETLK, &mut l as *mut libc::flock) };
    if r < 0 {
        return Err(SysError::last("fcntl(F_OFD_GETLK)", format!("fd {fd}")));
    }
    Ok(l)
}

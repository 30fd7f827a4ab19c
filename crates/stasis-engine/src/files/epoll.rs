//! epoll(7): the instance is created by the restorer like any other
//! description; its registrations are added inside each process that holds
//! it, once that process's fds are at their numbers, because epoll keys a
//! registration by (fd number, file) and a later EPOLL_CTL_MOD or DEL by
//! the program names the fd number.
//!
//! A registration whose fd number no longer refers to the watched file in
//! any holder (the program closed it after adding) is refused at dump.

use std::os::fd::RawFd;

use stasis_image::{EpollEntry, Fd, FdKind, Process};
use stasis_proc::FdInfo;

pub fn dump(pid: i32, fd: &mut Fd, info: &FdInfo) -> Result<(), String> {
    fd.kind = FdKind::Epoll as i32;
    fd.path = String::new();
    for t in &info.epoll {
        // The watched fd must still be that file in this process.
        let same = std::fs::metadata(format!("/proc/{pid}/fd/{}", t.tfd))
            .map(|m| std::os::unix::fs::MetadataExt::ino(&m) == t.ino)
            .unwrap_or(false);
        if !same {
            return Err(format!(
                "an epoll instance watching fd {}, which was closed or replaced since; stasis cannot restore that yet",
                t.tfd
            ));
        }
        fd.epoll.push(EpollEntry {
            tfd: t.tfd,
            events: t.events,
            data: t.data,
        });
    }
    Ok(())
}

pub fn open(_fd: &Fd) -> Result<RawFd, stasis_sys::SysError> {
    stasis_sys::evfd::epoll_create(0)
}

/// Inside the new process, after its fds are in place: registers what
/// each of its epoll instances watched.
pub fn install_in_child(p: &Process) -> Result<(), String> {
    for fd in p.fds.iter().filter(|f| f.kind == FdKind::Epoll as i32) {
        // Only what this process can name (another holder of the same
        // instance may have registered the rest).
        for e in fd
            .epoll
            .iter()
            .filter(|e| p.fds.iter().any(|f| f.fd == e.tfd))
        {
            stasis_sys::evfd::epoll_add(fd.fd, e.tfd, e.events, e.data)
                .map_err(|err| format!("epoll fd {} watching fd {}: {err}", fd.fd, e.tfd))?;
        }
    }
    Ok(())
}

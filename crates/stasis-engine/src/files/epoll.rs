//! epoll(7): the instance is created by the restorer like any other
//! description; its registrations are added inside each process that holds
//! it, once that process's fds are at their numbers, because epoll keys a
//! registration by (fd number, file) and a later EPOLL_CTL_MOD or DEL by
//! the program names the fd number.
//!
//! A registration outlives close(2) of its fd while the file is open
//! elsewhere, and the number may then hold another file (which may be
//! registered too: two registrations under one number). kcmp(2)
//! KCMP_EPOLL_TFD tells which fd of the process is each registration's
//! file; one under a number that is no longer its file is restored by
//! putting that file at the number for a moment (see [`install_in_child`]).
//! A registration whose file no fd of the process holds is refused.

use std::os::fd::RawFd;

use stasis_image::{EpollEntry, Fd, FdKind, Process};
use stasis_proc::FdInfo;
use stasis_sys::util;

pub fn dump(pid: i32, fd: &mut Fd, info: &FdInfo) -> Result<(), String> {
    fd.kind = FdKind::Epoll as i32;
    fd.path = String::new();
    let open: Vec<i32> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    for (i, t) in info.epoll.iter().enumerate() {
        // Which registration under this number it is, for kcmp.
        let toff = info.epoll[..i].iter().filter(|o| o.tfd == t.tfd).count() as u32;
        let is = |n: i32| util::epoll_target_is(pid, fd.fd, t.tfd, toff, n).unwrap_or(false);
        let via_fd = if open.contains(&t.tfd) && is(t.tfd) {
            None
        } else {
            Some(open.iter().copied().find(|n| *n != fd.fd && is(*n)).ok_or_else(|| {
                format!(
                    "an epoll instance watching a file (registered as fd {}) that no fd of the process holds any more, which stasis cannot restore",
                    t.tfd
                )
            })?)
        };
        fd.epoll.push(EpollEntry {
            tfd: t.tfd,
            events: t.events,
            data: t.data,
            via_fd,
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
        for e in fd.epoll.iter() {
            let what = |err: stasis_sys::SysError| {
                format!("epoll fd {} watching fd {}: {err}", fd.fd, e.tfd)
            };
            match e.via_fd {
                None if p.fds.iter().any(|f| f.fd == e.tfd) => {
                    stasis_sys::evfd::epoll_add(fd.fd, e.tfd, e.events, e.data).map_err(what)?
                }
                None => {}
                Some(via) => add_under(p, fd.fd, e, via).map_err(what)?,
            }
        }
    }
    Ok(())
}

/// Registers file `via` under the number `e.tfd`: the number's own file
/// (if any) steps aside, `via` is put there, added, and the number is put
/// back as it was.
fn add_under(
    p: &Process,
    epfd: RawFd,
    e: &EpollEntry,
    via: RawFd,
) -> Result<(), stasis_sys::SysError> {
    let own = p.fds.iter().find(|f| f.fd == e.tfd);
    let aside = match own {
        Some(_) => Some(util::dup_above(e.tfd, 0)?),
        None => None,
    };
    util::dup_to(via, e.tfd, true)?;
    let added = stasis_sys::evfd::epoll_add(epfd, e.tfd, e.events, e.data);
    match (aside, own) {
        (Some(a), Some(f)) => {
            util::dup_to(a, e.tfd, f.cloexec)?;
            util::close_raw(a);
        }
        _ => util::close_raw(e.tfd),
    }
    added
}

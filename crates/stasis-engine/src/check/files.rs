//! Kernel interfaces some kinds of file need (see [`crate::files`]): without
//! them those kinds are refused at dump or fail at restore.

use std::os::fd::AsFd;

use stasis_sys::{evfd, file, tty, util};

/// kcmp(2) KCMP_EPOLL_TFD, which tells which file an epoll registration
/// under a closed or reused fd number watches.
pub(super) fn kcmp_epoll() -> Result<(bool, String), String> {
    let ep = evfd::epoll_create(0).map_err(|e| e.to_string())?;
    let ev = evfd::eventfd(0, 0).map_err(|e| e.to_string());
    let r = ev.and_then(|ev| {
        let r = evfd::epoll_add(ep, ev, libc::EPOLLIN as u32, 1)
            .and_then(|()| util::epoll_target_is(std::process::id() as i32, ep, ev, 0, ev))
            .map_err(|e| e.to_string());
        util::close_raw(ev);
        r
    });
    util::close_raw(ep);
    Ok(match r {
        Ok(true) => (true, "kcmp finds an epoll registration's file".into()),
        Ok(false) => (
            false,
            "kcmp did not match an epoll registration's file".into(),
        ),
        Err(e) => (
            false,
            format!("{e}; epoll registrations under closed fds are refused"),
        ),
    })
}

/// open_by_handle_at(2), which reopens an unlinked file that still has
/// another name, and names inotify/fanotify watches.
pub(super) fn file_handles() -> Result<(bool, String), String> {
    let f = std::fs::File::open("/proc/self/exe").map_err(|e| e.to_string())?;
    let r = file::name_to_handle(f.as_fd()).and_then(|(h, _)| {
        let root = std::fs::File::open("/").map_err(|e| stasis_sys::SysError::Call {
            call: "open",
            what: "/".into(),
            errno: e.raw_os_error().unwrap_or(libc::EIO),
        })?;
        file::open_by_handle(root.as_fd(), &h, libc::O_PATH)
    });
    Ok(match r {
        Ok(_) => (true, "a file handle reopens our executable".into()),
        Err(e) => (
            false,
            format!("{e}; hard-linked unlinked files and inotify/fanotify watches are refused"),
        ),
    })
}

/// TIOCGPTPEER, which opens a pty slave with the flags its program used.
pub(super) fn pty_peer() -> Result<(bool, String), String> {
    let m = util::open_raw("/dev/ptmx", libc::O_RDWR | libc::O_NOCTTY)
        .map_err(|e| format!("{e}; ptys cannot be restored"))?;
    let r = tty::set_pty_locked(m, false)
        .and_then(|()| tty::open_peer(m, libc::O_RDWR | libc::O_NOCTTY));
    util::close_raw(m);
    Ok(match r {
        Ok(s) => {
            util::close_raw(s);
            (true, "a new pty and its slave through the master".into())
        }
        Err(e) => (false, format!("{e}; ptys cannot be restored")),
    })
}

/// io_uring with IORING_SETUP_NO_MMAP, which restore needs to put a ring's
/// memory back at its address.
pub(super) fn uring_no_mmap() -> Result<(bool, String), String> {
    Ok(match stasis_sys::uring::no_mmap_supported() {
        Ok(true) => (true, "a ring set up on memory of our own".into()),
        Ok(false) => (
            false,
            "io_uring_setup refused NO_MMAP; io_uring instances cannot be restored".into(),
        ),
        Err(e) => (false, e.to_string()),
    })
}

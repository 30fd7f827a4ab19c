//! Terminal and pseudo-terminal ioctls (ioctl_tty(2), pty(7)). On a pty
//! master, the termios and window-size calls act on its slave.

use std::os::fd::RawFd;

use crate::error::{Result, SysError};

fn check(r: libc::c_int, call: &'static str, fd: RawFd) -> Result<()> {
    if r < 0 {
        Err(SysError::last(call, format!("fd {fd}")))
    } else {
        Ok(())
    }
}

/// An ioctl that reads one int.
fn get_int(fd: RawFd, req: libc::c_ulong, call: &'static str) -> Result<i32> {
    let mut v: libc::c_int = 0;
    // SAFETY: the request writes one int into `v`.
    let r = unsafe { libc::ioctl(fd, req, &mut v as *mut libc::c_int) };
    check(r, call, fd)?;
    Ok(v)
}

/// An ioctl that takes a pointer to one int.
fn set_int(fd: RawFd, req: libc::c_ulong, v: i32, call: &'static str) -> Result<()> {
    // SAFETY: the request reads one int from `v`.
    let r = unsafe { libc::ioctl(fd, req, &v as *const libc::c_int) };
    check(r, call, fd)
}

/// TCGETS: the termios, as its raw bytes (`struct termios`).
pub fn get_termios(fd: RawFd) -> Result<Vec<u8>> {
    // SAFETY: an all-zero termios is a valid value of the plain C struct.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: tcgetattr writes one struct termios into `t`.
    let r = unsafe { libc::tcgetattr(fd, &mut t) };
    check(r, "tcgetattr", fd)?;
    // SAFETY: `t` is a plain struct of integers; its bytes are initialised.
    let bytes = unsafe {
        std::slice::from_raw_parts(
            (&t as *const libc::termios).cast::<u8>(),
            std::mem::size_of::<libc::termios>(),
        )
    };
    Ok(bytes.to_vec())
}

/// TCSETS (TCSANOW) from the raw bytes [`get_termios`] returned.
pub fn set_termios(fd: RawFd, raw: &[u8]) -> Result<()> {
    let t = termios_from(raw).ok_or(SysError::Call {
        call: "tcsetattr",
        what: format!("a termios of {} bytes", raw.len()),
        errno: libc::EINVAL,
    })?;
    // SAFETY: tcsetattr reads one struct termios.
    let r = unsafe { libc::tcsetattr(fd, libc::TCSANOW, &t) };
    check(r, "tcsetattr", fd)
}

fn termios_from(raw: &[u8]) -> Option<libc::termios> {
    if raw.len() != std::mem::size_of::<libc::termios>() {
        return None;
    }
    // SAFETY: an all-zero termios is valid, and any bytes are valid for its
    // integer fields; exactly size_of::<termios>() bytes are copied.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        std::ptr::copy_nonoverlapping(
            raw.as_ptr(),
            (&mut t as *mut libc::termios).cast::<u8>(),
            raw.len(),
        );
        Some(t)
    }
}

/// Changes flags of a raw termios: clears `oflag_off` from c_oflag and
/// `lflag_off` from c_lflag. None if `raw` is not a termios.
pub fn termios_without(raw: &[u8], oflag_off: u32, lflag_off: u32) -> Option<Vec<u8>> {
    let mut t = termios_from(raw)?;
    t.c_oflag &= !oflag_off;
    t.c_lflag &= !lflag_off;
    // SAFETY: `t` is a plain struct of integers; its bytes are initialised.
    let bytes = unsafe {
        std::slice::from_raw_parts(
            (&t as *const libc::termios).cast::<u8>(),
            std::mem::size_of::<libc::termios>(),
        )
    };
    Some(bytes.to_vec())
}

/// TIOCGWINSZ: (rows, cols, xpixel, ypixel).
pub fn get_winsize(fd: RawFd) -> Result<[u16; 4]> {
    let mut w = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one struct winsize into `w`.
    let r = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut w as *mut libc::winsize) };
    check(r, "ioctl(TIOCGWINSZ)", fd)?;
    Ok([w.ws_row, w.ws_col, w.ws_xpixel, w.ws_ypixel])
}

/// TIOCSWINSZ.
pub fn set_winsize(fd: RawFd, s: [u16; 4]) -> Result<()> {
    let w = libc::winsize {
        ws_row: s[0],
        ws_col: s[1],
        ws_xpixel: s[2],
        ws_ypixel: s[3],
    };
    // SAFETY: TIOCSWINSZ reads one struct winsize.
    let r = unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &w as *const libc::winsize) };
    check(r, "ioctl(TIOCSWINSZ)", fd)
}

/// TIOCGPTN: the index of a pty master's slave (/dev/pts/N).
pub fn pty_index(fd: RawFd) -> Result<u32> {
    get_int(fd, libc::TIOCGPTN, "ioctl(TIOCGPTN)").map(|n| n as u32)
}

/// TIOCGPTLCK: whether the slave is locked (before unlockpt).
pub fn pty_locked(fd: RawFd) -> Result<bool> {
    get_int(fd, libc::TIOCGPTLCK, "ioctl(TIOCGPTLCK)").map(|v| v != 0)
}

/// TIOCSPTLCK.
pub fn set_pty_locked(fd: RawFd, locked: bool) -> Result<()> {
    set_int(fd, libc::TIOCSPTLCK, locked as i32, "ioctl(TIOCSPTLCK)")
}

/// TIOCGPKT: whether packet mode is on (master).
pub fn packet_mode(fd: RawFd) -> Result<bool> {
    get_int(fd, libc::TIOCGPKT, "ioctl(TIOCGPKT)").map(|v| v != 0)
}

/// TIOCPKT.
pub fn set_packet_mode(fd: RawFd, on: bool) -> Result<()> {
    set_int(fd, libc::TIOCPKT, on as i32, "ioctl(TIOCPKT)")
}

/// TIOCGEXCL: whether the terminal is in exclusive mode.
pub fn exclusive(fd: RawFd) -> Result<bool> {
    get_int(fd, libc::TIOCGEXCL, "ioctl(TIOCGEXCL)").map(|v| v != 0)
}

/// TIOCEXCL.
pub fn set_exclusive(fd: RawFd) -> Result<()> {
    // SAFETY: TIOCEXCL takes no argument.
    let r = unsafe { libc::ioctl(fd, libc::TIOCEXCL) };
    check(r, "ioctl(TIOCEXCL)", fd)
}

/// TIOCGPGRP: the foreground process group (0 if none).
pub fn foreground(fd: RawFd) -> Result<i32> {
    get_int(fd, libc::TIOCGPGRP, "ioctl(TIOCGPGRP)")
}

/// TIOCGPTPEER: a new descriptor of a master's slave, opened with `flags`
/// (unlike an open of /dev/pts/N, which always adds O_LARGEFILE).
pub fn open_peer(master: RawFd, flags: i32) -> Result<RawFd> {
    // SAFETY: TIOCGPTPEER takes the open flags as its integer argument.
    let r = unsafe { libc::ioctl(master, libc::TIOCGPTPEER, flags) };
    check(r, "ioctl(TIOCGPTPEER)", master)?;
    Ok(r)
}

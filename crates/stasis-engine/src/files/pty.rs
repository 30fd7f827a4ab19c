//! Pseudo-terminals made inside the tree (pty(7)): tmux, screen, script,
//! an ssh server. The master (/dev/ptmx) and slave (/dev/pts/N) ends, the
//! slave's termios and window size, packet mode, the lock, bytes queued in
//! either direction, and each session's controlling terminal with its
//! foreground group.
//!
//! Dump reads the state through a copy of the master (pidfd_getfd): on a
//! master, termios and window-size calls act on the slave. Queued bytes
//! cannot be peeked, so they are read and written straight back while the
//! tree is frozen, bypassing what would change them: output (written to
//! the slave, not yet read from the master) is read from the master and
//! written back to the slave with OPOST off; input (written to the master,
//! not yet read from the slave) is read from a fresh open of the slave and
//! written back to the master with ECHO and ISIG off, so nothing is
//! echoed or signalled twice. In canonical mode only complete lines can be
//! read: a line being typed (no Enter yet) stays in the original and is
//! not in the image. With packet mode on, queued output is not copied.
//!
//! Restore opens a new pair (/dev/ptmx). The kernel picks its number, so
//! the slave may be /dev/pts/M instead of /dev/pts/N. The state and the
//! queued bytes go back before any process runs; each session leader whose
//! controlling terminal was the pair makes its slave fd its controlling
//! terminal again (TIOCSCTTY), and the foreground group is set as for
//! --shell-job. A slave whose master is outside the tree is the terminal of
//! a shell job (--shell-job) or refused.

use std::collections::{BTreeMap, BTreeSet};
use std::os::fd::{AsRawFd, RawFd};

use stasis_image::{Fd, FdKind, Process, PtyState};
use stasis_proc::FdInfo;
use stasis_sys::{tty, util, RemoteFd};

use crate::error::DumpError;

/// O_LARGEFILE as the kernel shows it in f_flags on x86_64 (libc's
/// constant is 0 there: the flag is implied for 64-bit programs).
const O_LARGEFILE_BIT: u32 = 0o100000;

/// Majors of /dev/pts/N (UNIX98_PTY_SLAVE_MAJOR and the 7 after it).
const PTS_MAJORS: std::ops::RangeInclusive<u64> = 136..=143;

/// The pts index of a slave device number, if it is one.
pub fn pts_index(rdev: u64) -> Option<u32> {
    let major = libc::major(rdev) as u64;
    PTS_MAJORS
        .contains(&major)
        .then(|| ((major - 136) * 256 + libc::minor(rdev) as u64) as u32)
}

/// Whether `link` is a pty master.
pub fn is_master(link: &str) -> bool {
    link == "/dev/ptmx" || link == "/dev/pts/ptmx"
}

/// Describes master fd `fd` of `pid`, copying the pair's state.
pub fn dump_master(pid: i32, fd: &mut Fd, info: &FdInfo) -> Result<(), String> {
    let m = stasis_sys::pidfd::copy_of(pid, RemoteFd(fd.fd)).map_err(|e| e.to_string())?;
    let m = m.as_raw_fd();
    let index = match info.get("tty-index").and_then(|v| v.parse().ok()) {
        Some(i) => i,
        None => tty::pty_index(m).map_err(|e| e.to_string())?,
    };
    let e = |e: stasis_sys::SysError| format!("pty master of /dev/pts/{index}: {e}");
    let termios = tty::get_termios(m).map_err(e)?;
    let packet_mode = tty::packet_mode(m).map_err(e)?;
    let mut state = PtyState {
        winsize: tty::get_winsize(m).map_err(e)?.map(u32::from).to_vec(),
        packet_mode,
        locked: tty::pty_locked(m).map_err(e)?,
        ..Default::default()
    };
    if !state.locked {
        let slave = format!("/dev/pts/{index}");
        let s =
            util::open_raw(&slave, libc::O_RDWR | libc::O_NOCTTY | libc::O_NONBLOCK).map_err(e)?;
        let copied = copy_queues(m, s, &termios, packet_mode, &mut state).map_err(e);
        util::close_raw(s);
        copied?;
    }
    state.termios = termios;
    fd.kind = FdKind::PtyMaster as i32;
    fd.pty_index = index;
    fd.pty = Some(state);
    Ok(())
}

/// Reads the bytes queued in both directions and writes them straight
/// back (module doc); `m` is the master, `s` a fresh slave descriptor.
fn copy_queues(
    m: RawFd,
    s: RawFd,
    termios: &[u8],
    packet_mode: bool,
    state: &mut PtyState,
) -> Result<(), stasis_sys::SysError> {
    if !packet_mode {
        state.output = read_queued(m)?;
        if !state.output.is_empty() {
            let raw = tty::termios_without(termios, libc::OPOST, 0).unwrap_or_default();
            tty::set_termios(s, &raw)?;
            let put = util::write_all_raw(s, &state.output);
            tty::set_termios(s, termios)?;
            put?;
        }
    }
    state.input = read_queued(s)?;
    put_input(m, s, termios, &state.input)
}

/// Writes `input` to master `m` with echo and signals off, waits until the
/// line discipline has taken it in (the kernel hands it over from a work
/// queue, so changing termios back at once would echo it after all), and
/// puts `termios` back; `s` is a slave descriptor to watch.
fn put_input(m: RawFd, s: RawFd, termios: &[u8], input: &[u8]) -> Result<(), stasis_sys::SysError> {
    if input.is_empty() {
        return Ok(());
    }
    let quiet = libc::ECHO | libc::ECHONL | libc::ISIG | libc::IEXTEN;
    let raw = tty::termios_without(termios, 0, quiet).unwrap_or_default();
    tty::set_termios(m, &raw)?;
    let put = util::write_all_raw(m, input);
    if put.is_ok() {
        // Whole lines in canonical mode, all of it otherwise: what
        // read_queued read, so the count comes back to its length.
        for _ in 0..1000 {
            if util::fionread(s).is_ok_and(|n| n as usize >= input.len()) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
    tty::set_termios(m, termios)?;
    put
}

/// Reads what FIONREAD says is waiting (whole lines in canonical mode).
fn read_queued(fd: RawFd) -> Result<Vec<u8>, stasis_sys::SysError> {
    let n = util::fionread(fd)?.max(0) as usize;
    let mut data = vec![0u8; n];
    let mut got = 0;
    while got < n {
        match util::read_raw(fd, &mut data[got..]) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) if e.errno() == Some(libc::EAGAIN) => break,
            Err(e) => return Err(e),
        }
    }
    data.truncate(got);
    Ok(data)
}

/// After every process is dumped: slaves and controlling terminals whose
/// master is in the tree stay pty ends; the others are the terminal of a
/// shell job (with --shell-job) or refused.
pub fn resolve(procs: &mut [Process], shell_job: bool) -> Result<(), DumpError> {
    let masters: BTreeSet<u32> = procs
        .iter()
        .flat_map(|p| &p.fds)
        .filter(|f| f.kind == FdKind::PtyMaster as i32)
        .map(|f| f.pty_index)
        .collect();
    for p in procs.iter_mut() {
        let pid = p.pid as i32;
        let outside = |what: String| {
            DumpError::Refused {
            pid,
            what: format!(
                "{what}, whose master is outside the checkpointed tree; pass --shell-job to checkpoint a job of a shell"
            ),
        }
        };
        for f in p.fds.iter_mut() {
            if f.kind == FdKind::PtySlave as i32 && !masters.contains(&f.pty_index) {
                if !shell_job {
                    return Err(outside(format!("fd {} is the terminal {}", f.fd, f.path)));
                }
                f.kind = FdKind::Tty as i32;
            }
        }
        if p.ctty_pty != 0 && !masters.contains(&(p.ctty_pty - 1)) {
            if !shell_job {
                return Err(outside(format!(
                    "its controlling terminal is /dev/pts/{}",
                    p.ctty_pty - 1
                )));
            }
            p.ctty_pty = 0;
        }
        if p.ctty_pty != 0 && p.sid == p.pid && slave_fd(p).is_none() {
            return Err(DumpError::Refused {
                pid,
                what: format!(
                    "leads a session whose terminal is /dev/pts/{} but holds no fd of it, which stasis cannot restore yet",
                    p.ctty_pty - 1
                ),
            });
        }
    }
    Ok(())
}

/// The fd of `p` that is the slave of its controlling terminal's pair.
pub fn slave_fd(p: &Process) -> Option<RawFd> {
    p.fds
        .iter()
        .find(|f| f.kind == FdKind::PtySlave as i32 && f.pty_index + 1 == p.ctty_pty)
        .map(|f| f.fd)
}

/// The pairs being restored: old index -> (master descriptor kept by the
/// restorer, new slave path).
#[derive(Default)]
pub struct Ptys(BTreeMap<u32, (RawFd, String)>);

impl Ptys {
    /// Opens a new pair for every master of `procs` and puts its state
    /// back; descriptors go above `above`.
    pub fn open_all(&mut self, procs: &[Process], above: RawFd) -> Result<(), String> {
        let masters = procs
            .iter()
            .filter(|p| !p.zombie)
            .flat_map(|p| &p.fds)
            .filter(|f| f.kind == FdKind::PtyMaster as i32);
        for f in masters {
            if self.0.contains_key(&f.pty_index) {
                continue;
            }
            let m = util::open_raw("/dev/ptmx", libc::O_RDWR | libc::O_NOCTTY)
                .and_then(|m| {
                    let up = util::dup_above(m, above);
                    util::close_raw(m);
                    up
                })
                .map_err(|e| e.to_string())?;
            let path = tty::set_pty_locked(m, false)
                .and_then(|()| tty::pty_index(m))
                .map(|i| format!("/dev/pts/{i}"));
            let path = match path {
                Ok(p) => p,
                Err(e) => {
                    util::close_raw(m);
                    return Err(e.to_string());
                }
            };
            self.0.insert(f.pty_index, (m, path.clone()));
            if let Some(state) = &f.pty {
                put_state(m, &path, state)
                    .map_err(|e| format!("pty /dev/pts/{} (now {path}): {e}", f.pty_index))?;
            }
        }
        Ok(())
    }

    /// A new description of the end `fd` names.
    pub fn open(&self, fd: &Fd) -> Result<RawFd, String> {
        let (m, path) = self
            .0
            .get(&fd.pty_index)
            .ok_or_else(|| format!("pty {} has no master in the image", fd.pty_index))?;
        if fd.kind == FdKind::PtyMaster as i32 {
            return util::dup_above(*m, 0).map_err(|e| e.to_string());
        }
        let flags = (fd.flags as i32 & (libc::O_ACCMODE | libc::O_NONBLOCK)) | libc::O_NOCTTY;
        // Opened by path, the kernel adds O_LARGEFILE; through the master
        // (forkpty, openpty) it does not. Do as the program did.
        if fd.flags & O_LARGEFILE_BIT != 0 {
            util::open_raw(path, flags).map_err(|e| e.to_string())
        } else {
            tty::open_peer(*m, flags).map_err(|e| e.to_string())
        }
    }

    /// Locks the pairs that were locked, and drops the restorer's masters.
    pub fn close(&mut self, procs: &[Process]) {
        for (index, (m, _)) in std::mem::take(&mut self.0) {
            let locked = procs
                .iter()
                .flat_map(|p| &p.fds)
                .find(|f| f.kind == FdKind::PtyMaster as i32 && f.pty_index == index)
                .and_then(|f| f.pty.as_ref())
                .is_some_and(|s| s.locked);
            if locked {
                let _ = tty::set_pty_locked(m, true);
            }
            util::close_raw(m);
        }
    }
}

/// Puts a pair's termios, window size, packet mode and queued bytes back.
fn put_state(m: RawFd, slave: &str, s: &PtyState) -> Result<(), stasis_sys::SysError> {
    if s.winsize.len() == 4 {
        let w = [0, 1, 2, 3].map(|i| s.winsize[i].min(u16::MAX as u32) as u16);
        tty::set_winsize(m, w)?;
    }
    tty::set_termios(m, &s.termios)?;
    if !s.output.is_empty() || !s.input.is_empty() {
        let sl = util::open_raw(slave, libc::O_RDWR | libc::O_NOCTTY)?;
        let raw = tty::termios_without(&s.termios, libc::OPOST, 0).unwrap_or_default();
        let put = tty::set_termios(sl, &raw)
            .and_then(|()| util::write_all_raw(sl, &s.output))
            .and_then(|()| tty::set_termios(sl, &s.termios))
            .and_then(|()| put_input(m, sl, &s.termios, &s.input));
        util::close_raw(sl);
        put?;
    }
    if s.packet_mode {
        tty::set_packet_mode(m, true)?;
    }
    Ok(())
}

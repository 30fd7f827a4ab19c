//! File locks: flock(2), POSIX record locks (fcntl F_SETLK) and open file
//! description locks (F_OFD_SETLK), with their type and byte range.
//!
//! Dump reads the `lock:` lines of each fd's fdinfo, which list the locks
//! held through that open file description (for POSIX locks, only those of
//! the process shown). Leases, delegations and mandatory locks are refused.
//!
//! Restore, before anything runs, tests every lock against the locks now
//! held by others and refuses a restore that would have to wait. Then
//! flock and OFD locks, which belong to the open file description, are
//! taken by the restorer on the description it opens (every process that
//! shares it inherits the lock); POSIX locks, which belong to the process,
//! are taken by each restored process itself with a remote fcntl(F_SETLK).

use std::os::fd::{AsRawFd, RawFd};

use stasis_image::{Fd, FdKind, FileLock, LockKind, Process};
use stasis_proc::FdInfo;
use stasis_sys::file as sysfile;

use crate::error::RestoreError;
use crate::handle::Target;

/// The locks held through one fd, from its fdinfo.
pub fn dump(info: &FdInfo) -> Result<Vec<FileLock>, String> {
    let mut out = Vec::new();
    for (_, v) in info.lines.iter().filter(|(k, _)| k == "lock") {
        out.push(parse(v).ok_or_else(|| format!("holds a lock stasis cannot read: {v:?}"))??);
    }
    Ok(out)
}

/// One `lock:` value: "1: POSIX  ADVISORY  WRITE 1234 08:01:5678 0 EOF".
fn parse(v: &str) -> Option<Result<FileLock, String>> {
    let f: Vec<&str> = v.split_whitespace().collect();
    let (class, mode, ty, start, end) = (f.get(1)?, f.get(2)?, f.get(3)?, f.get(6)?, f.get(7)?);
    let kind = match *class {
        "FLOCK" => LockKind::Flock,
        "POSIX" => LockKind::Posix,
        "OFDLCK" => LockKind::Ofd,
        other => {
            return Some(Err(format!(
                "holds a {other} lock, which stasis cannot checkpoint"
            )))
        }
    };
    if *mode != "ADVISORY" {
        return Some(Err(format!(
            "holds a {mode} lock, which stasis cannot checkpoint"
        )));
    }
    let write = match *ty {
        "WRITE" => true,
        "READ" => false,
        other => return Some(Err(format!("holds a lock of type {other}"))),
    };
    let start: u64 = start.parse().ok()?;
    let len = if *end == "EOF" {
        0
    } else {
        end.parse::<u64>().ok()?.checked_sub(start)? + 1
    };
    Some(Ok(FileLock {
        kind: kind as i32,
        write,
        start,
        len,
    }))
}

fn kind(l: &FileLock) -> LockKind {
    LockKind::try_from(l.kind).unwrap_or(LockKind::Posix)
}

fn flock_struct(l: &FileLock) -> libc::flock {
    libc::flock {
        l_type: if l.write {
            libc::F_WRLCK
        } else {
            libc::F_RDLCK
        } as i16,
        l_whence: libc::SEEK_SET as i16,
        l_start: l.start as i64,
        l_len: l.len as i64,
        l_pid: 0,
    }
}

/// Before anything is created: nobody else holds a lock that conflicts
/// with one of `p`'s (tested on a fresh open of the file, so nothing of
/// ours is held afterwards).
pub fn check(p: &Process) -> Result<(), RestoreError> {
    for fd in p.fds.iter().filter(|f| !f.locks.is_empty()) {
        let text = |what: String| {
            format!(
                "pid {} fd {}: {} {what}; restoring would have to wait for it",
                p.pid, fd.fd, fd.path
            )
        };
        let refuse = |what: String| RestoreError::Refused(text(what));
        // Held by someone now, free once that process lets go.
        let held = |what: String| RestoreError::Held(text(what));
        let Ok(f) = std::fs::File::open(&fd.path)
            .or_else(|_| std::fs::OpenOptions::new().write(true).open(&fd.path))
        else {
            continue; // check_files reports a missing file
        };
        for l in &fd.locks {
            match kind(l) {
                LockKind::Flock => {
                    let op = if l.write {
                        libc::LOCK_EX
                    } else {
                        libc::LOCK_SH
                    };
                    if sysfile::flock(f.as_raw_fd(), op | libc::LOCK_NB).is_err() {
                        return Err(held("is locked (flock) by another process".into()));
                    }
                    let _ = sysfile::flock(f.as_raw_fd(), libc::LOCK_UN);
                }
                LockKind::Posix | LockKind::Ofd => {
                    let got = sysfile::ofd_getlk(f.as_raw_fd(), &flock_struct(l))
                        .map_err(|e| refuse(format!("cannot be tested for locks ({e})")))?;
                    if got.l_type != libc::F_UNLCK as i16 {
                        let by = if got.l_pid > 0 {
                            format!("pid {}", got.l_pid)
                        } else {
                            "another open file description".into()
                        };
                        return Err(held(format!(
                            "bytes {}..{} are locked by {by}",
                            l.start,
                            if l.len == 0 {
                                "EOF".into()
                            } else {
                                (l.start + l.len).to_string()
                            }
                        )));
                    }
                }
            }
        }
    }
    Ok(())
}

/// Takes the flock and OFD locks of the description `fd` describes, on
/// `at` (in the restorer).
pub fn take_shared(fd: &Fd, at: RawFd) -> Result<(), stasis_sys::SysError> {
    for l in &fd.locks {
        match kind(l) {
            LockKind::Flock => {
                let op = if l.write {
                    libc::LOCK_EX
                } else {
                    libc::LOCK_SH
                };
                sysfile::flock(at, op | libc::LOCK_NB)?;
            }
            LockKind::Ofd => sysfile::ofd_setlk(at, &flock_struct(l))?,
            LockKind::Posix => {}
        }
    }
    Ok(())
}

/// Takes the POSIX locks of `p`, in `p` itself (see the module doc), once
/// the restorer's table is closed in it (closing any fd of a file drops
/// the POSIX locks of the process on that file).
pub fn take_posix(t: &Target, p: &Process) -> Result<(), RestoreError> {
    let lockable = |fd: &&Fd| {
        matches!(
            FdKind::try_from(fd.kind),
            Ok(FdKind::Regular | FdKind::Unlinked)
        )
    };
    for fd in p.fds.iter().filter(lockable) {
        for l in fd.locks.iter().filter(|l| kind(l) == LockKind::Posix) {
            let s = flock_struct(l);
            let mut bytes = [0u8; 32];
            bytes[0..2].copy_from_slice(&s.l_type.to_ne_bytes());
            bytes[2..4].copy_from_slice(&s.l_whence.to_ne_bytes());
            bytes[8..16].copy_from_slice(&s.l_start.to_ne_bytes());
            bytes[16..24].copy_from_slice(&s.l_len.to_ne_bytes());
            let at = t.put(0, &bytes)?;
            t.lcall(
                "fcntl(F_SETLK)",
                libc::SYS_fcntl,
                &[fd.fd as u64, libc::F_SETLK as u64, at],
            )?;
        }
    }
    Ok(())
}

//! Descriptors: regular files, directories, character devices, the
//! terminal (with --shell-job) and pipes.
//!
//! Dump reads each fd's target, fdinfo (flags, position) and identity.
//! Pipe contents are copied with tee(2) through a handle from
//! pidfd_getfd(2), so the target's data is never consumed.
//!
//! Restore runs inside the new process before its memory is switched:
//! every fd is opened and moved to its number with its flags and offset.
//!
//! Changed files: a file open read-only whose size or mtime changed since
//! the dump is refused at restore (the process may have cached what it
//! read). A writable file may have been written by an earlier restore of
//! the same image; only a file now shorter than the saved offset is
//! refused.

use std::collections::{BTreeMap, BTreeSet};
use std::os::fd::{AsRawFd, RawFd};

use stasis_image::{Fd, FdKind, Pipe, Process};
use stasis_sys::{pidfd, util, RemoteFd};

use crate::error::{DumpError, RestoreError, SysCtx};
use crate::procfs;

/// Character devices that are reopened by path.
const SIMPLE_DEVICES: [&str; 6] = [
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
    "/dev/tty",
];

/// Flags that open(2) takes back; the rest of f_flags is set by fcntl.
const OPEN_FLAGS: i32 = libc::O_ACCMODE
    | libc::O_APPEND
    | libc::O_NONBLOCK
    | libc::O_DIRECT
    | libc::O_NOATIME
    | libc::O_SYNC
    | libc::O_DSYNC
    | libc::O_PATH
    | libc::O_DIRECTORY
    | libc::O_LARGEFILE;
const SETFL_FLAGS: i32 =
    libc::O_APPEND | libc::O_NONBLOCK | libc::O_ASYNC | libc::O_DIRECT | libc::O_NOATIME;

fn is_tty_rdev(rdev: u64) -> bool {
    let major = libc::major(rdev);
    // 136-143: pts; 4: tty/console vt; 5: /dev/tty, /dev/console, ptmx.
    (136..=143).contains(&major) || major == 4 || (major == 5 && libc::minor(rdev) != 2)
}

/// Dumps the fd table. Returns the fds and the pipes they use.
pub fn dump_fds(pid: i32, shell_job: bool) -> Result<(Vec<Fd>, Vec<Pipe>), DumpError> {
    let dir = format!("/proc/{pid}/fd");
    let rd = std::fs::read_dir(&dir).map_err(|e| procfs::io_err(pid, dir.clone(), e))?;
    let mut nums: Vec<i32> = rd
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    nums.sort();
    let mut fds = Vec::new();
    let mut pipes: BTreeMap<u64, Pipe> = BTreeMap::new();
    let mut pipe_modes: BTreeMap<u64, BTreeSet<i32>> = BTreeMap::new();
    let mut seen_ino: BTreeMap<i32, u64> = BTreeMap::new();
    for n in nums {
        let link = procfs::read_link(pid, &format!("fd/{n}"))?;
        let info = procfs::parsed(
            pid,
            stasis_proc::parse_fdinfo(&procfs::read_string(pid, &format!("fdinfo/{n}"))?),
        )?;
        let refuse = |what: &str| DumpError::Refused {
            pid,
            what: format!("fd {n} is {what}"),
        };
        let cloexec = info.flags & libc::O_CLOEXEC as u32 != 0;
        let mut fd = Fd {
            fd: n,
            kind: FdKind::Regular as i32,
            path: link.clone(),
            flags: info.flags & !(libc::O_CLOEXEC as u32),
            pos: info.pos,
            cloexec,
            file: None,
            pipe_ino: 0,
            dup_of: None,
        };
        // A dup of an earlier fd: same description, restored by dup.
        let ino = info.ino;
        if let Some(orig) = fds.iter().find(|f: &&Fd| {
            seen_ino.get(&f.fd) == Some(&ino) && util::same_file(pid, f.fd, pid, n).unwrap_or(false)
        }) {
            fd.dup_of = Some(orig.fd);
            fd.kind = orig.kind;
            fd.path = orig.path.clone();
            fd.file = orig.file.clone();
            fd.pipe_ino = orig.pipe_ino;
            seen_ino.insert(n, ino);
            fds.push(fd);
            continue;
        }
        seen_ino.insert(n, ino);
        if let Some(rest) = link.strip_prefix("pipe:[") {
            let ino: u64 = rest.trim_end_matches(']').parse().unwrap_or(0);
            fd.kind = FdKind::Pipe as i32;
            fd.path = String::new();
            fd.pipe_ino = ino;
            let mode = fd.flags as i32 & libc::O_ACCMODE;
            if mode == libc::O_RDWR {
                return Err(refuse(
                    "a pipe opened read-write, which stasis cannot restore yet",
                ));
            }
            pipe_modes.entry(ino).or_default().insert(mode);
            if let std::collections::btree_map::Entry::Vacant(e) = pipes.entry(ino) {
                e.insert(dump_pipe(pid, n, mode, ino)?);
            }
            fds.push(fd);
            continue;
        }
        if link.starts_with("socket:[") {
            return Err(refuse("a socket, which stasis cannot checkpoint yet"));
        }
        if link == "anon_inode:[io_uring]" {
            return Err(refuse(
                "an io_uring instance, which stasis cannot checkpoint yet; close it or exclude the process",
            ));
        }
        if let Some(kind) = link.strip_prefix("anon_inode:") {
            return Err(refuse(&format!(
                "a {kind} descriptor, which stasis cannot checkpoint yet"
            )));
        }
        if link.starts_with("/memfd:") {
            return Err(refuse("a memfd, which stasis cannot checkpoint yet"));
        }
        if link.ends_with(" (deleted)") {
            return Err(refuse(&format!(
                "the deleted file {link}, which stasis cannot checkpoint yet"
            )));
        }
        if !link.starts_with('/') {
            return Err(refuse(&format!(
                "{link}, which stasis cannot checkpoint yet"
            )));
        }
        let st = procfs::stat(pid, &format!("fd/{n}"))?;
        fd.file = Some(procfs::file_id(&st));
        match st.st_mode & libc::S_IFMT {
            libc::S_IFREG => fd.kind = FdKind::Regular as i32,
            libc::S_IFDIR => fd.kind = FdKind::Directory as i32,
            libc::S_IFCHR if is_tty_rdev(st.st_rdev) => {
                if !shell_job {
                    return Err(refuse(&format!(
                        "the terminal {link}; pass --shell-job to checkpoint a job of a shell"
                    )));
                }
                fd.kind = FdKind::Tty as i32;
            }
            libc::S_IFCHR if SIMPLE_DEVICES.contains(&link.as_str()) => {
                fd.kind = FdKind::CharDev as i32;
            }
            libc::S_IFCHR => {
                return Err(refuse(&format!(
                    "the device {link}, which stasis cannot checkpoint yet"
                )))
            }
            libc::S_IFIFO => {
                return Err(refuse(&format!(
                    "the FIFO {link}, which stasis cannot checkpoint yet"
                )))
            }
            _ => {
                return Err(refuse(&format!(
                    "{link}, a file type stasis cannot checkpoint yet"
                )))
            }
        }
        fds.push(fd);
    }
    // A pipe with one end here: the other end must not be held elsewhere.
    for (ino, modes) in &pipe_modes {
        if modes.len() < 2 {
            if let Some(other) = find_pipe_holder(pid, *ino) {
                return Err(DumpError::Refused {
                    pid,
                    what: format!(
                        "shares pipe:[{ino}] with pid {other}, which is outside the checkpointed tree"
                    ),
                });
            }
        }
    }
    Ok((fds, pipes.into_values().collect()))
}

/// Copies a pipe's buffered bytes without consuming them.
fn dump_pipe(pid: i32, fd: i32, mode: i32, ino: u64) -> Result<Pipe, DumpError> {
    let pfd = pidfd::pidfd_open(pid).dump_ctx(pid, "pidfd_open")?;
    let ours = if mode == libc::O_RDONLY {
        pidfd::pidfd_getfd(&pfd, pid, RemoteFd(fd)).dump_ctx(pid, "pidfd_getfd")?
    } else {
        // Only the write end is here: open a read end of the same pipe.
        let path = format!("/proc/{pid}/fd/{fd}");
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&path)
            .map_err(|e| procfs::io_err(pid, path, e))?
            .into()
    };
    let capacity = util::pipe_size(ours.as_raw_fd()).dump_ctx(pid, "pipe size")?;
    let (r, w) = util::pipe().dump_ctx(pid, "pipe")?;
    util::set_pipe_size(w.as_raw_fd(), capacity).map_err(|e| DumpError::Refused {
        pid,
        what: format!(
            "fd {fd} is a pipe of {capacity} bytes, larger than stasis can copy ({e}); raise fs.pipe-max-size"
        ),
    })?;
    let n =
        util::tee(ours.as_raw_fd(), w.as_raw_fd(), capacity as usize).dump_ctx(pid, "tee pipe")?;
    let mut data = vec![0u8; n];
    let mut got = 0;
    while got < n {
        got += util::read_raw(r.as_raw_fd(), &mut data[got..]).dump_ctx(pid, "read pipe copy")?;
    }
    Ok(Pipe {
        ino,
        capacity,
        data,
    })
}

use std::os::unix::fs::OpenOptionsExt;

/// A process other than `pid` holding pipe `ino`, if any.
fn find_pipe_holder(pid: i32, ino: u64) -> Option<i32> {
    let want = format!("pipe:[{ino}]");
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(other) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if other == pid {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(format!("/proc/{other}/fd")) else {
            continue;
        };
        for f in fds.flatten() {
            if std::fs::read_link(f.path()).is_ok_and(|l| l.as_os_str() == want.as_str()) {
                return Some(other);
            }
        }
    }
    None
}

/// Checks, before anything is created, that every file an fd needs is
/// there and unchanged (see the module doc).
pub fn check_files(p: &Process) -> Result<(), RestoreError> {
    for fd in &p.fds {
        let kind = FdKind::try_from(fd.kind).unwrap_or(FdKind::Regular);
        if !matches!(kind, FdKind::Regular | FdKind::Directory | FdKind::CharDev) {
            continue;
        }
        let st = nix::sys::stat::stat(fd.path.as_str()).map_err(|e| {
            RestoreError::Refused(format!(
                "pid {} fd {}: {} is gone ({e})",
                p.pid, fd.fd, fd.path
            ))
        })?;
        let Some(id) = &fd.file else { continue };
        if kind != FdKind::Regular {
            continue;
        }
        let size = st.st_size as u64;
        let mtime = st.st_mtime * 1_000_000_000 + st.st_mtime_nsec;
        let writable = fd.flags as i32 & libc::O_ACCMODE != libc::O_RDONLY;
        let changed = size != id.size || mtime != id.mtime_ns;
        if !writable && changed {
            return Err(RestoreError::Refused(format!(
                "pid {} fd {}: {} changed since the dump (size {} -> {}); restoring would read different data",
                p.pid, fd.fd, fd.path, id.size, size
            )));
        }
        let append = fd.flags as i32 & libc::O_APPEND != 0;
        if writable && !append && size < fd.pos {
            return Err(RestoreError::Refused(format!(
                "pid {} fd {}: {} is now {size} bytes, shorter than the saved offset {}",
                p.pid, fd.fd, fd.path, fd.pos
            )));
        }
    }
    Ok(())
}

/// Inside the new process: opens every fd of `p` at its number. Numbers
/// at or above `scratch_base` are free for temporaries and closed after.
pub fn restore_in_child(
    p: &Process,
    pipes: &[Pipe],
    tty: Option<&str>,
    scratch_base: RawFd,
) -> Result<(), String> {
    // Pipes first, with their ends moved out of the way.
    let mut ends: BTreeMap<u64, (RawFd, RawFd)> = BTreeMap::new();
    for pipe in pipes {
        let (r, w) = util::pipe_raw().map_err(|e| e.to_string())?;
        let r2 = util::dup_above(r, scratch_base).map_err(|e| e.to_string())?;
        let w2 = util::dup_above(w, scratch_base).map_err(|e| e.to_string())?;
        util::close_raw(r);
        util::close_raw(w);
        if pipe.capacity != 0 {
            util::set_pipe_size(w2, pipe.capacity)
                .map_err(|e| format!("pipe:[{}]: {e}", pipe.ino))?;
        }
        util::write_all_raw(w2, &pipe.data).map_err(|e| format!("pipe:[{}]: {e}", pipe.ino))?;
        ends.insert(pipe.ino, (r2, w2));
    }
    for fd in &p.fds {
        let kind = FdKind::try_from(fd.kind).unwrap_or(FdKind::Regular);
        let what = |e: stasis_sys::SysError| format!("fd {} ({}): {e}", fd.fd, fd.path);
        if let Some(orig) = fd.dup_of {
            util::dup_to(orig, fd.fd, fd.cloexec).map_err(what)?;
            continue;
        }
        let src = match kind {
            FdKind::Pipe => {
                let (r, w) = ends.get(&fd.pipe_ino).ok_or_else(|| {
                    format!(
                        "fd {}: pipe:[{}] missing from the image",
                        fd.fd, fd.pipe_ino
                    )
                })?;
                let end = if fd.flags as i32 & libc::O_ACCMODE == libc::O_RDONLY {
                    *r
                } else {
                    *w
                };
                util::dup_above(end, scratch_base).map_err(what)?
            }
            FdKind::Tty => {
                let path = tty.ok_or_else(|| {
                    format!("fd {} was the terminal {}; restore has no terminal to give it (run from a terminal with --shell-job)", fd.fd, fd.path)
                })?;
                util::open_raw(path, (fd.flags as i32 & OPEN_FLAGS) | libc::O_NOCTTY)
                    .map_err(what)?
            }
            _ => util::open_raw(&fd.path, (fd.flags as i32 & OPEN_FLAGS) | libc::O_NOCTTY)
                .map_err(what)?,
        };
        if src != fd.fd {
            util::dup_to(src, fd.fd, fd.cloexec).map_err(what)?;
            util::close_raw(src);
        } else {
            util::set_cloexec(fd.fd, fd.cloexec).map_err(what)?;
        }
        util::set_status_flags(fd.fd, fd.flags as i32 & SETFL_FLAGS).map_err(what)?;
        if matches!(kind, FdKind::Regular | FdKind::Directory)
            && fd.flags as i32 & libc::O_PATH == 0
        {
            util::seek_to(fd.fd, fd.pos).map_err(what)?;
        }
    }
    util::close_range(scratch_base as u32, u32::MAX).map_err(|e| e.to_string())?;
    Ok(())
}

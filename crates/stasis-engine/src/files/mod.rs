//! Descriptors: regular files, directories, character devices, the
//! terminal (with --shell-job) and pipes.
//!
//! Dump reads each fd's target, fdinfo (flags, position) and identity.
//! Pipe contents are copied with tee(2) through a handle from
//! pidfd_getfd(2), so the target's data is never consumed.
//!
//! Restore opens every open file description once, in the restorer, with
//! its flags and offset ([`Descriptions`]); each new process, before its
//! memory is switched, dups the ones it had to their numbers.
//!
//! Changed files: a file open read-only whose size or mtime changed since
//! the dump is refused at restore (the process may have cached what it
//! read). A writable file may have been written by an earlier restore of
//! the same image; only a file now shorter than the saved offset is
//! refused.

use std::collections::{BTreeMap, BTreeSet};
use std::os::fd::AsRawFd;

use stasis_image::{Fd, FdKind, Pipe, Process};
use stasis_sys::util;

use crate::error::{DumpError, RestoreError};
use crate::procfs;

pub mod epoll;
pub mod eventfd;
pub mod fanotify;
pub mod fifo;
pub mod inet;
pub mod inotify;
mod kinds;
pub mod locks;
pub mod mqueue;
pub mod pidfd;
pub mod pipe;
pub mod pty;
pub mod signalfd;
mod table;
pub mod timerfd;
pub mod unix;
pub mod unlinked;
pub mod uring;
mod watch;

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

/// The descriptors of a whole tree, as they are dumped process by process:
/// open file descriptions shared between fds (dup) and between processes
/// (fork, SCM_RIGHTS) get one `desc` id, found with kcmp(KCMP_FILE); each
/// pipe's buffered bytes are copied once.
#[derive(Default)]
pub struct FileTable {
    pipes: BTreeMap<u64, Pipe>,
    /// Pipe inode -> access modes of its ends held in the tree.
    pipe_modes: BTreeMap<u64, BTreeSet<i32>>,
    /// Inode -> descriptions seen with it: (pid, fd, record).
    by_ino: BTreeMap<u64, Vec<(i32, Fd)>>,
    next_desc: u32,
    /// Unix sockets of our network namespace (sock_diag), read once.
    unix_diag: Option<std::collections::HashMap<u32, stasis_sys::sockdiag::UnixDiag>>,
    /// Unix sockets of the tree: inode -> (pid, fd, record).
    unix: BTreeMap<u64, (i32, i32, stasis_image::UnixSocket)>,
    /// Sockets whose queue is being read (a socket in flight in its own
    /// queue would recurse).
    peeking: BTreeSet<u64>,
    /// Our copies of descriptors in flight, kept open while the tree is
    /// dumped (kcmp compares other fds with them).
    inflight_keep: Vec<std::os::fd::OwnedFd>,
    /// Clients of connections not yet accepted: inode -> name connected to.
    connecting: BTreeMap<u64, Vec<u8>>,
    /// FIFO path -> object id, to look for holders outside the tree.
    fifos: BTreeMap<String, u64>,
    /// Unlinked files and memfds that fds (and executables) lead to; the
    /// dump adds those no mapping brought in, with their contents.
    pub objects: unlinked::Objects,
}

impl FileTable {
    /// Dumps the fd table of `pid`.
    pub fn dump_fds(&mut self, pid: i32, shell_job: bool) -> Result<Vec<Fd>, DumpError> {
        let dir = format!("/proc/{pid}/fd");
        let rd = std::fs::read_dir(&dir).map_err(|e| procfs::io_err(pid, dir.clone(), e))?;
        let mut nums: Vec<i32> = rd
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect();
        nums.sort();
        let mut fds = Vec::with_capacity(nums.len());
        for n in nums {
            let link = procfs::read_link(pid, &format!("fd/{n}"))?;
            let info = procfs::parsed(
                pid,
                stasis_proc::parse_fdinfo(&procfs::read_string(pid, &format!("fdinfo/{n}"))?),
            )?;
            let cloexec = info.flags & libc::O_CLOEXEC as u32 != 0;
            let held = locks::dump(&info).map_err(|what| DumpError::Refused {
                pid,
                what: format!("fd {n} ({link}) {what}"),
            })?;
            if let Some(orig) = self.seen(pid, n, info.ino) {
                fds.push(Fd {
                    fd: n,
                    cloexec,
                    locks: held,
                    ..orig
                });
                continue;
            }
            let mut fd = Fd {
                fd: n,
                kind: FdKind::Regular as i32,
                path: link.clone(),
                flags: info.flags & !(libc::O_CLOEXEC as u32),
                pos: info.pos,
                cloexec,
                file: None,
                ..Default::default()
            };
            self.describe(pid, &mut fd, &link, &info, shell_job)?;
            fd.locks = held;
            self.next_desc += 1;
            fd.desc = self.next_desc;
            self.by_ino
                .entry(info.ino)
                .or_default()
                .push((pid, fd.clone()));
            fds.push(fd);
        }
        Ok(fds)
    }

    /// The record of the description fd `n` of `pid` (inode `ino`) shares
    /// with an fd seen before, here or in another process of the tree (or
    /// in flight), if any: kcmp(KCMP_FILE) tells.
    fn seen(&self, pid: i32, n: i32, ino: u64) -> Option<Fd> {
        let (_, orig) = self
            .by_ino
            .get(&ino)?
            .iter()
            .find(|(p2, f)| util::same_file(*p2, f.fd, pid, n).unwrap_or(false))?;
        let mut shared = orig.clone();
        // A registration through another fd is the first holder's to make:
        // that fd number means another file here.
        shared.epoll.retain(|e| e.via_fd.is_none());
        Some(shared)
    }

    /// The record of a descriptor in flight that peeking put in our table
    /// as `f`: the same description as a tree fd shares its `desc`.
    fn describe_inflight(
        &mut self,
        f: std::os::fd::OwnedFd,
        shell_job: bool,
    ) -> Result<Fd, DumpError> {
        let me = std::process::id() as i32;
        let n = f.as_raw_fd();
        self.inflight_keep.push(f);
        let link = procfs::read_link(me, &format!("fd/{n}"))?;
        let info = procfs::parsed(
            me,
            stasis_proc::parse_fdinfo(&procfs::read_string(me, &format!("fdinfo/{n}"))?),
        )?;
        if let Some(shared) = self.seen(me, n, info.ino) {
            return Ok(shared);
        }
        let mut fd = Fd {
            fd: n,
            kind: FdKind::Regular as i32,
            path: link.clone(),
            flags: info.flags & !(libc::O_CLOEXEC as u32),
            pos: info.pos,
            ..Default::default()
        };
        if matches!(
            link.as_str(),
            "anon_inode:[pidfd]" | "anon_inode:[io_uring]"
        ) {
            return Err(DumpError::Refused {
                pid: me,
                what: format!(
                    "a {link} is in flight in a unix socket, which stasis cannot restore"
                ),
            });
        }
        self.describe(me, &mut fd, &link, &info, shell_job)?;
        fd.locks = locks::dump(&info).unwrap_or_default();
        self.next_desc += 1;
        fd.desc = self.next_desc;
        self.by_ino
            .entry(info.ino)
            .or_default()
            .push((me, fd.clone()));
        Ok(fd)
    }

    /// Fills in what kind of file `fd` is, or refuses it.
    fn describe(
        &mut self,
        pid: i32,
        fd: &mut Fd,
        link: &str,
        info: &stasis_proc::FdInfo,
        shell_job: bool,
    ) -> Result<(), DumpError> {
        let n = fd.fd;
        let refuse = |what: &str| DumpError::Refused {
            pid,
            what: format!("fd {n} is {what}"),
        };
        if let Some(rest) = link.strip_prefix("pipe:[") {
            let ino: u64 = rest.trim_end_matches(']').parse().unwrap_or(0);
            return self.describe_pipe(pid, fd, ino);
        }
        if let Some(rest) = link.strip_prefix("socket:[") {
            let ino: u64 = rest.trim_end_matches(']').parse().unwrap_or(0);
            if let Some(r) = inet::dump(pid, fd) {
                return r.map_err(|what| refuse(&what));
            }
            return self.describe_socket(pid, fd, ino, shell_job);
        }
        // A kind told by its link alone (see [`kinds`]).
        if let Some(dump) = kinds::dump_by_link(link) {
            return dump(pid, fd, info).map_err(|what| refuse(&what));
        }
        if let Some(kind) = link.strip_prefix("anon_inode:") {
            return Err(refuse(&format!(
                "a {kind} descriptor, which stasis cannot checkpoint yet"
            )));
        }
        // A queue's link is its name ("/NAME"), like a path.
        if link.starts_with('/') && mqueue::is_mqueue(pid, n) {
            let st = procfs::stat(pid, &format!("fd/{n}"))?;
            return mqueue::dump(pid, fd, link, &st).map_err(|what| refuse(&what));
        }
        if link.starts_with("/memfd:") || link.ends_with(stasis_proc::maps::DELETED_SUFFIX) {
            // An unlinked FIFO has a pipe, not contents: never open it as
            // a file (an open for reading waits for a writer).
            let st = procfs::stat(pid, &format!("fd/{n}"))?;
            if st.st_mode & libc::S_IFMT == libc::S_IFIFO {
                return self.describe_fifo(pid, fd, link, &st);
            }
            fd.kind = FdKind::Unlinked as i32;
            fd.object_id = self.objects.add(pid, &format!("fd/{n}"), link, fd.flags)?;
            fd.path = link
                .strip_suffix(stasis_proc::maps::DELETED_SUFFIX)
                .unwrap_or(link)
                .to_string();
            return Ok(());
        }
        if !link.starts_with('/') {
            return Err(refuse(&format!(
                "{link}, which stasis cannot checkpoint yet"
            )));
        }
        self.describe_path(pid, fd, link, info, shell_job)
    }

    /// Fills in pipe fd `fd` of `pid` (inode `ino`) and copies its
    /// buffered bytes the first time.
    fn describe_pipe(&mut self, pid: i32, fd: &mut Fd, ino: u64) -> Result<(), DumpError> {
        let n = fd.fd;
        fd.kind = FdKind::Pipe as i32;
        fd.path = String::new();
        fd.pipe_ino = ino;
        let mode = fd.flags as i32 & libc::O_ACCMODE;
        // A read-write description (an open of /proc/PID/fd/N) is
        // both a reader and a writer.
        let modes = self.pipe_modes.entry(ino).or_default();
        match mode {
            libc::O_RDWR => modes.extend([libc::O_RDONLY, libc::O_WRONLY]),
            m => _ = modes.insert(m),
        }
        if let std::collections::btree_map::Entry::Vacant(e) = self.pipes.entry(ino) {
            e.insert(pipe::dump(pid, n, mode, ino)?);
        }
        Ok(())
    }

    /// Fills in unix socket fd `fd` of `pid` (inode `ino`), with the
    /// descriptors in flight in its queue, or refuses it.
    fn describe_socket(
        &mut self,
        pid: i32,
        fd: &mut Fd,
        ino: u64,
        shell_job: bool,
    ) -> Result<(), DumpError> {
        let n = fd.fd;
        let refuse = |what: &str| DumpError::Refused {
            pid,
            what: format!("fd {n} is {what}"),
        };
        if self.unix_diag.is_none() {
            let d = stasis_sys::sockdiag::unix_sockets()
                .map_err(|e| refuse(&format!("a socket, and sock_diag failed: {e}")))?;
            self.unix_diag = Some(d);
        }
        let diag = self.unix_diag.as_ref().expect("read above");
        if !self.peeking.insert(ino) {
            return Err(refuse(
                "a unix socket in flight inside its own queue (a reference cycle), which stasis cannot restore",
            ));
        }
        let dumped = unix::dump(pid, fd, ino, diag).map_err(|what| refuse(&what));
        let dumped = dumped.and_then(|d| {
            if let Some(name) = d.connecting {
                self.connecting.insert(ino, name);
            }
            let mut all = Vec::new();
            for (msg, fds) in d.inflight {
                let mut recs = Vec::new();
                for f in fds {
                    recs.push(self.describe_inflight(f, shell_job)?);
                }
                all.push(stasis_image::InflightFds { msg, fds: recs });
            }
            Ok(all)
        });
        self.peeking.remove(&ino);
        let inflight = dumped?;
        if let Some(u) = fd.unix.as_mut() {
            u.inflight = inflight;
        }
        if let Some(u) = &fd.unix {
            self.unix.insert(ino, (pid, n, u.clone()));
        }
        Ok(())
    }

    /// Fills in fd `fd` of `pid` whose link is the path `link`: a regular
    /// file, directory, device, terminal, pty end or FIFO, or refuses it.
    fn describe_path(
        &mut self,
        pid: i32,
        fd: &mut Fd,
        link: &str,
        info: &stasis_proc::FdInfo,
        shell_job: bool,
    ) -> Result<(), DumpError> {
        let n = fd.fd;
        let refuse = |what: &str| DumpError::Refused {
            pid,
            what: format!("fd {n} is {what}"),
        };
        let st = procfs::stat(pid, &format!("fd/{n}"))?;
        fd.file = Some(procfs::file_id(&st));
        if st.st_mode & libc::S_IFMT == libc::S_IFCHR {
            if pty::is_master(link) {
                return pty::dump_master(pid, fd, info).map_err(|what| refuse(&what));
            }
            if let Some(index) = pty::pts_index(st.st_rdev) {
                // A pty end whose master may be in the tree (pty::resolve).
                fd.kind = FdKind::PtySlave as i32;
                fd.pty_index = index;
                return Ok(());
            }
        }
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
            libc::S_IFCHR if SIMPLE_DEVICES.contains(&link) => {
                fd.kind = FdKind::CharDev as i32;
            }
            libc::S_IFCHR => {
                return Err(refuse(&format!(
                    "the device {link}, which stasis cannot checkpoint yet"
                )))
            }
            libc::S_IFIFO => return self.describe_fifo(pid, fd, link, &st),
            _ => {
                return Err(refuse(&format!(
                    "{link}, a file type stasis cannot checkpoint yet"
                )))
            }
        }
        Ok(())
    }

    /// Fills in FIFO fd `fd` of `pid`, whose link is `link` and inode
    /// `st`, and copies its buffered bytes the first time.
    fn describe_fifo(
        &mut self,
        pid: i32,
        fd: &mut Fd,
        link: &str,
        st: &libc::stat,
    ) -> Result<(), DumpError> {
        let n = fd.fd;
        let name = link.strip_suffix(stasis_proc::maps::DELETED_SUFFIX);
        if name.is_some() && st.st_nlink > 0 {
            return Err(DumpError::Refused {
                pid,
                what: format!(
                    "fd {n} is the FIFO {link}, unlinked but still linked under another name, which stasis cannot restore"
                ),
            });
        }
        fd.path = name.unwrap_or(link).to_string();
        fd.file = Some(procfs::file_id(st));
        let id = unlinked::object_id(st);
        fifo::describe(fd, id);
        if let std::collections::btree_map::Entry::Vacant(e) = self.pipes.entry(id) {
            let mode = fd.flags as i32 & libc::O_ACCMODE;
            e.insert(Pipe {
                fifo: true,
                unlinked: name.is_some(),
                mode: st.st_mode & 0o7777,
                ..pipe::dump(pid, n, mode, id)?
            });
        }
        self.fifos.insert(link.to_string(), id);
        Ok(())
    }

    /// The pipes of the tree, after checking that no process outside the
    /// tree (`tree` lists its pids) holds an end of a pipe of which the
    /// tree holds only the other end.
    pub fn finish(
        mut self,
        tree: &[i32],
        procs: &mut [Process],
        ext_unix_sk: bool,
    ) -> Result<Vec<Pipe>, DumpError> {
        let half: BTreeMap<String, u64> = self
            .pipe_modes
            .iter()
            .filter(|(_, m)| m.len() < 2)
            .map(|(ino, _)| (format!("pipe:[{ino}]"), *ino))
            .collect();
        if !half.is_empty() {
            if let Some((other, ino)) = find_outside_holder(tree, &half) {
                let holder = self.by_ino.get(&ino).and_then(|v| v.first());
                return Err(DumpError::Refused {
                    pid: holder.map(|h| h.0).unwrap_or(tree[0]),
                    what: format!(
                        "shares pipe:[{ino}] (fd {}) with pid {other}, which is outside the checkpointed tree",
                        holder.map(|h| h.1.fd).unwrap_or(-1)
                    ),
                });
            }
        }
        if let Some((other, id)) = find_outside_holder(tree, &self.fifos) {
            let (path, holder) = self
                .by_ino
                .values()
                .flatten()
                .find(|(_, f)| f.kind == FdKind::Fifo as i32 && f.pipe_ino == id)
                .map(|(p, f)| (f.path.clone(), (*p, f.fd)))
                .unwrap_or_default();
            return Err(DumpError::Refused {
                pid: holder.0,
                what: format!(
                    "fd {} is the FIFO {path}, which pid {other} outside the checkpointed tree also has open; its buffered data cannot be split",
                    holder.1
                ),
            });
        }
        if let Some(diag) = &self.unix_diag {
            unix::match_pending(&mut self.unix, &self.connecting, diag, procs, ext_unix_sk)
                .map_err(|(pid, what)| DumpError::Refused { pid, what })?;
        }
        while let Err((pid, what, peer)) = unix::check_peers(&self.unix) {
            if ext_unix_sk && peer != 0 {
                if let Some(name) = self.external_name(peer) {
                    self.connect_outside(procs, peer, name)?;
                    continue;
                }
            }
            let holder = (peer != 0)
                .then(|| {
                    let want = BTreeMap::from([(format!("socket:[{peer}]"), peer)]);
                    find_outside_holder(tree, &want)
                })
                .flatten();
            let whose = match holder {
                Some((other, _)) => {
                    format!(", held by pid {other}, which is outside the checkpointed tree")
                }
                None if peer != 0 => ", which no process of the tree holds".into(),
                None => String::new(),
            };
            return Err(DumpError::Refused {
                pid,
                what: format!("{what}{whose}; stasis cannot restore that connection"),
            });
        }
        Ok(self.pipes.into_values().collect())
    }

    /// The name a socket outside the tree can be reached at: its own (a
    /// bound datagram socket) or its listener's (an accepted connection).
    fn external_name(&self, peer: u64) -> Option<Vec<u8>> {
        let d = self.unix_diag.as_ref()?.get(&(peer as u32))?;
        d.name.clone().filter(|n| !n.is_empty())
    }

    /// --ext-unix-sk: records that the sockets of the tree connected to
    /// `peer` (outside it) connect to `name` again at restore.
    fn connect_outside(
        &mut self,
        procs: &mut [Process],
        peer: u64,
        name: Vec<u8>,
    ) -> Result<(), DumpError> {
        for (pid, fd, u) in self
            .unix
            .values_mut()
            .filter(|(_, _, u)| u.peer_ino == peer)
        {
            if !u.queue.is_empty() {
                return Err(DumpError::Refused {
                    pid: *pid,
                    what: format!(
                        "fd {fd} is a unix socket connected outside the tree with unread data, which only its peer could send again"
                    ),
                });
            }
            u.external = name.clone();
            let ino = u.ino;
            for f in procs.iter_mut().flat_map(|p| p.fds.iter_mut()) {
                if let Some(x) = f.unix.as_mut().filter(|x| x.ino == ino) {
                    x.external = name.clone();
                }
            }
        }
        Ok(())
    }
}

/// A process outside `tree` holding one of the pipes `want` (link text ->
/// inode), if any.
fn find_outside_holder(tree: &[i32], want: &BTreeMap<String, u64>) -> Option<(i32, u64)> {
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(other) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if tree.contains(&other) || other == std::process::id() as i32 {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(format!("/proc/{other}/fd")) else {
            continue;
        };
        for f in fds.flatten() {
            if let Ok(l) = std::fs::read_link(f.path()) {
                if let Some(ino) = l.to_str().and_then(|l| want.get(l)) {
                    return Some((other, *ino));
                }
            }
        }
    }
    None
}

/// Checks, before anything is created, that every file an fd needs is
/// there and unchanged (see the module doc). `dry` changes nothing (a stale
/// socket file restore would remove stays).
pub fn check_files(p: &Process, pipes: &[Pipe], dry: bool) -> Result<(), RestoreError> {
    unix::check_paths(p, dry)?;
    inet::check_ports(p)?;
    locks::check(p)?;
    for fd in &p.fds {
        let kind = FdKind::try_from(fd.kind).unwrap_or(FdKind::Regular);
        if let Some(check) = kinds::kind(kind).check {
            check(p, fd, pipes)?;
        }
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

pub use table::{install_in_child, Descriptions};

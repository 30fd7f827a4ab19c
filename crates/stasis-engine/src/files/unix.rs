//! Unix domain sockets: stream, datagram and seqpacket.
//!
//! Dump reads each socket through a handle from pidfd_getfd(2) and
//! sock_diag(7): its type, the name it bound itself to, its peer, listen
//! state and backlog, shutdown bits, SO_PASSCRED and buffer sizes, and
//! its receive queue, copied with MSG_PEEK (walking it with SO_PEEK_OFF,
//! put back afterwards), so the target loses nothing. Both ends of a
//! connection must be in the tree, except with --ext-unix-sk, where a
//! socket connected outside is connected to its peer's name again (its
//! unread data must be empty: only the peer could send it again). A
//! listener's connections not yet accepted come back when their clients
//! (in the tree) connect again, in the same order; a client that already
//! sent data on such a connection is refused. A connection whose other end
//! was closed keeps its unread data, then end of file.
//!
//! Descriptors in flight (SCM_RIGHTS): peeking puts copies of them in the
//! dumper's own table; each is described like any fd (sharing its `desc`
//! when a process of the tree holds the same description) and stored with
//! the message it travels with. Restore opens them with the rest of the
//! table and sends each message again with its descriptors, once all are
//! open. On a stream, descriptors go back with the bytes the peek returned
//! them with (a stream keeps no boundaries, and the kernel does not show
//! where in a run of bytes they were sent). Refused: a socket in flight in
//! its own queue (a reference cycle), pidfds and io_uring in flight.
//!
//! Restore makes each connected pair with socketpair(2) and refills each
//! end's queue from the other end, message by message; a listener is bound
//! to its path again (a stale socket file left by the dumped process is
//! replaced) and listens; a datagram socket connected to a bound one is
//! connected to that name once every socket exists, and a bound datagram
//! socket's queue is refilled by sending to its name.
//!
//! Not kept: the sender address and credentials of queued datagrams (the
//! restorer sends them), and the name a connected stream socket got from
//! its listener when it was accepted.

use std::collections::{BTreeMap, HashMap};
use std::os::fd::{AsRawFd, RawFd};

use stasis_image::{Fd, FdKind, Process, UnixSocket};
use stasis_sys::sockdiag::UnixDiag;
use stasis_sys::unixsock as us;
use stasis_sys::{pidfd, RemoteFd, SysError};

use crate::error::RestoreError;

/// Largest receive queue copied, per socket.
const MAX_QUEUE: usize = 64 << 20;
const TCP_LISTEN: u8 = 10;

fn family_name(f: i32) -> String {
    match f {
        libc::AF_NETLINK => "a netlink socket".into(),
        libc::AF_PACKET => "a packet socket".into(),
        f => format!("a socket of address family {f}"),
    }
}

/// A path name without the NUL the kernel keeps after it (sock_diag
/// shows it, getpeername does not); abstract names as they are.
fn trim_name(name: &[u8]) -> Vec<u8> {
    match name.first() {
        Some(0) | None => name.to_vec(),
        _ => name.split(|b| *b == 0).next().unwrap_or(&[]).to_vec(),
    }
}

fn display(name: &[u8]) -> String {
    match name.split_first() {
        Some((0, rest)) => format!("@{}", String::from_utf8_lossy(rest)),
        _ => String::from_utf8_lossy(name).into_owned(),
    }
}

/// Fills `fd` (link `socket:[ino]`) of `pid`, or says why it cannot be
/// checkpointed. `diag` lists the unix sockets of our network namespace.
pub fn dump(
    pid: i32,
    fd: &mut Fd,
    ino: u64,
    diag: &HashMap<u32, UnixDiag>,
) -> Result<Dumped, String> {
    let h = pidfd::copy_of(pid, RemoteFd(fd.fd)).map_err(|e| e.to_string())?;
    let h = h.as_raw_fd();
    let family = us::get_int(h, libc::SOL_SOCKET, libc::SO_DOMAIN).map_err(|e| e.to_string())?;
    if family != libc::AF_UNIX {
        return Err(format!(
            "{}, which stasis cannot checkpoint yet",
            family_name(family)
        ));
    }
    let d = diag.get(&(ino as u32)).ok_or_else(|| {
        format!(
            "unix socket:[{ino}], which sock_diag does not list (in another network namespace?)"
        )
    })?;
    let listening = d.state == TCP_LISTEN;
    const TCP_ESTABLISHED: u8 = 1;
    // (A datagram socket others connected to is "established" too, with
    // no peer of its own: that is fine.)
    let connection = i32::from(d.sock_type) != libc::SOCK_DGRAM;
    let sock_type = i32::from(d.sock_type);
    // A connected socket whose peer has no inode: the peer was closed (it
    // shut this end down both ways), or is a connection its listener has
    // not accepted yet (the client of it: found by the name it is
    // connected to, matched to a listener once all sockets are known).
    let peerless = connection && d.state == TCP_ESTABLISHED && d.peer == 0;
    let peer_closed = peerless && d.shutdown == 3;
    let mut connecting = None;
    if peerless && !peer_closed {
        if d.wqueue > 0 {
            return Err(format!(
                "a unix socket that sent {} bytes on a connection its listener has not accepted yet, which stasis cannot restore",
                d.wqueue
            ));
        }
        connecting = Some(us::peer_name(h).map_err(|e| e.to_string())?);
    }
    let mut u = UnixSocket {
        ino,
        sock_type,
        listening,
        backlog: if listening { d.wqueue } else { 0 },
        peer_ino: u64::from(d.peer),
        shutdown: u32::from(d.shutdown),
        peer_closed,
        ..Default::default()
    };
    if let Some(name) = d.name.as_ref().filter(|n| !n.is_empty()) {
        bound_name(pid, &mut u, name, d, diag)?;
    }
    let opt = |o: i32| us::get_int(h, libc::SOL_SOCKET, o).map_err(|e| e.to_string());
    u.passcred = opt(libc::SO_PASSCRED)? != 0;
    u.sndbuf = opt(libc::SO_SNDBUF)? as u32;
    u.rcvbuf = opt(libc::SO_RCVBUF)? as u32;
    let inflight = if listening {
        Vec::new()
    } else {
        copy_queue(h, ino, sock_type == libc::SOCK_STREAM, &mut u)?
    };
    fd.kind = FdKind::UnixSocket as i32;
    fd.path = format!("socket:[{ino}]");
    fd.unix = Some(u);
    Ok(Dumped {
        connecting,
        inflight,
    })
}

/// Copies the queue of socket `h` (inode `ino`) into `u` without taking
/// it out; returns the descriptors in flight, per message index.
fn copy_queue(
    h: RawFd,
    ino: u64,
    stream: bool,
    u: &mut UnixSocket,
) -> Result<Vec<(u32, Vec<std::os::fd::OwnedFd>)>, String> {
    let mut inflight = Vec::new();
    let peeked = us::peek_queue(h, stream, MAX_QUEUE)
        .map_err(|e| format!("a unix socket whose queue cannot be copied: {e}"))?;
    tracing::debug!(
        "socket:[{ino}] queue: {:?}",
        peeked
            .iter()
            .map(|p| (String::from_utf8_lossy(&p.data).into_owned(), p.fds.len()))
            .collect::<Vec<_>>()
    );
    for (i, p) in peeked.into_iter().enumerate() {
        u.queue.push(p.data);
        if !p.fds.is_empty() {
            inflight.push((i as u32, p.fds));
        }
    }
    Ok(inflight)
}

/// What [`dump`] found besides the record.
pub struct Dumped {
    /// The client of a connection not yet accepted: the name it connected
    /// to.
    pub connecting: Option<Vec<u8>>,
    /// Descriptors in flight, per message index: copies in our own table
    /// (peeking installed them), for the caller to describe.
    pub inflight: Vec<(u32, Vec<std::os::fd::OwnedFd>)>,
}

/// Gives each listener of the tree its clients whose connections it has
/// not accepted (`connecting`: client inode -> the name it connected to),
/// oldest (lowest inode) first, in `socks` and in the processes' records.
/// Every pending connection of a listener must have its client in the
/// tree. Returns the refusal (pid, what) otherwise.
pub fn match_pending(
    socks: &mut BTreeMap<u64, (i32, i32, UnixSocket)>,
    connecting: &BTreeMap<u64, Vec<u8>>,
    diag: &HashMap<u32, UnixDiag>,
    procs: &mut [Process],
    ext_unix_sk: bool,
) -> Result<(), (i32, String)> {
    let listeners: Vec<u64> = socks
        .values()
        .filter(|(_, _, u)| u.listening)
        .map(|(_, _, u)| u.ino)
        .collect();
    for l in listeners {
        let d = &diag[&(l as u32)];
        let raw = trim_name(&d.name.clone().unwrap_or_default());
        // Sorted by inode: the order the clients were made in.
        let clients: Vec<u64> = connecting
            .iter()
            .filter(|(_, n)| !raw.is_empty() && trim_name(n) == raw)
            .map(|(c, _)| *c)
            .collect();
        let (pid, fd, _) = &socks[&l];
        if clients.len() != d.rqueue as usize {
            return Err((
                *pid,
                format!(
                    "fd {fd} is a listening unix socket with {} connection(s) not yet accepted, {} of them from clients in the tree; stasis cannot restore the others",
                    d.rqueue,
                    clients.len()
                ),
            ));
        }
        if let Some(e) = socks.get_mut(&l) {
            e.2.pending = clients.clone();
        }
        for f in procs.iter_mut().flat_map(|p| p.fds.iter_mut()) {
            if let Some(x) = f.unix.as_mut().filter(|x| x.ino == l) {
                x.pending = clients.clone();
            }
        }
    }
    for (c, name) in connecting {
        let served = socks.values().any(|(_, _, u)| u.pending.contains(c));
        if !served && ext_unix_sk && !name.is_empty() {
            // --ext-unix-sk: connect to that listener again.
            if let Some(e) = socks.get_mut(c) {
                e.2.external = name.clone();
            }
            for f in procs.iter_mut().flat_map(|p| p.fds.iter_mut()) {
                if let Some(x) = f.unix.as_mut().filter(|x| x.ino == *c) {
                    x.external = name.clone();
                }
            }
            continue;
        }
        if !served {
            let (pid, fd, _) = &socks[c];
            return Err((
                *pid,
                format!(
                    "fd {fd} is a unix socket whose connection to {} was not yet accepted by a listener outside the tree; stasis cannot restore it",
                    display(name)
                ),
            ));
        }
    }
    Ok(())
}

/// Records the name the socket bound itself to (not one it got by being
/// accepted from a bound listener), with its socket file's mode and owner.
fn bound_name(
    pid: i32,
    u: &mut UnixSocket,
    name: &[u8],
    d: &UnixDiag,
    diag: &HashMap<u32, UnixDiag>,
) -> Result<(), String> {
    // A connection accepted from a listener carries the listener's name
    // (and, for a path, its file).
    let accepted = !u.listening
        && u.sock_type != libc::SOCK_DGRAM
        && diag
            .values()
            .any(|o| o.state == TCP_LISTEN && o.name.as_deref() == Some(name));
    if accepted {
        return Ok(());
    }
    if name[0] == 0 {
        u.name = name.to_vec();
        return Ok(());
    }
    let Some((_, vfs_ino)) = d.vfs else {
        return Ok(());
    };
    let path = String::from_utf8_lossy(name.split(|b| *b == 0).next().unwrap_or(b"")).into_owned();
    let abs = if path.starts_with('/') {
        path.clone()
    } else {
        let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).map_err(|e| e.to_string())?;
        cwd.join(&path).display().to_string()
    };
    let st = nix::sys::stat::lstat(abs.as_str())
        .ok()
        .filter(|st| st.st_ino as u32 == vfs_ino);
    let Some(st) = st else {
        return Err(format!(
            "a unix socket bound to {path}, whose socket file is gone or was replaced, which stasis cannot restore yet"
        ));
    };
    u.name = abs.into_bytes();
    u.file_mode = st.st_mode & 0o7777;
    u.uid = st.st_uid;
    u.gid = st.st_gid;
    Ok(())
}

/// Checks the connections of the tree's sockets (`socks`: inode -> pid,
/// fd, record): a peer must be in the tree, and a datagram socket's
/// one-way peer must have a name to connect to again. Returns the peer
/// that is not, with the socket that names it.
pub fn check_peers(
    socks: &BTreeMap<u64, (i32, i32, UnixSocket)>,
) -> Result<(), (i32, String, u64)> {
    for (pid, fd, u) in socks.values() {
        if u.peer_ino == 0 || !u.external.is_empty() {
            continue;
        }
        let Some((_, _, peer)) = socks.get(&u.peer_ino) else {
            return Err((
                *pid,
                format!(
                    "fd {fd} is a unix socket connected to socket:[{}]",
                    u.peer_ino
                ),
                u.peer_ino,
            ));
        };
        if peer.peer_ino != u.ino && peer.name.is_empty() {
            return Err((
                *pid,
                format!(
                    "fd {fd} is a unix datagram socket connected to socket:[{}], which has no name to connect to again",
                    u.peer_ino
                ),
                0,
            ));
        }
    }
    Ok(())
}

/// Before anything is created: the path a socket binds to again must be
/// free. A socket file nobody listens on (left by the dumped process) is
/// removed (unless `dry`); anything else there is refused, as is a missing
/// directory.
pub fn check_paths(p: &Process, dry: bool) -> Result<(), RestoreError> {
    for fd in &p.fds {
        let Some(u) = fd
            .unix
            .as_ref()
            .filter(|u| u.name.first().is_some_and(|b| *b != 0))
        else {
            continue;
        };
        let path = String::from_utf8_lossy(&u.name).into_owned();
        let refuse = |why: String| {
            RestoreError::Refused(format!(
                "pid {} fd {}: unix socket path {path} {why}",
                p.pid, fd.fd
            ))
        };
        let parent = std::path::Path::new(&path)
            .parent()
            .unwrap_or(std::path::Path::new("/"));
        if !parent.is_dir() {
            return Err(refuse(format!(
                "cannot be bound: its directory {} is missing",
                parent.display()
            )));
        }
        let Ok(st) = nix::sys::stat::lstat(path.as_str()) else {
            continue; // free
        };
        if st.st_mode & libc::S_IFMT != libc::S_IFSOCK {
            return Err(refuse("is taken by a file that is not a socket".into()));
        }
        // Live if a socket of ours owns that file (asked of sock_diag, not
        // by connecting, which would queue a connection at a live
        // listener).
        let diag = stasis_sys::sockdiag::unix_sockets().map_err(|e| refuse(e.to_string()))?;
        let live = diag
            .values()
            .any(|d| d.vfs.is_some_and(|(_, ino)| ino == st.st_ino as u32));
        if live {
            return Err(RestoreError::Held(format!(
                "pid {} fd {}: unix socket path {path} is in use by another socket",
                p.pid, fd.fd
            )));
        }
        if dry {
            continue; // restore would remove it
        }
        std::fs::remove_file(&path)
            .map_err(|e| refuse(format!("holds a stale socket that cannot be removed: {e}")))?;
    }
    Ok(())
}

/// Adds the records of the descriptions in flight in `fd`'s queue (and in
/// theirs) to `out`.
pub fn collect_inflight<'a>(fd: &'a Fd, out: &mut Vec<&'a Fd>) {
    let Some(u) = &fd.unix else { return };
    for m in &u.inflight {
        for f in &m.fds {
            out.push(f);
            collect_inflight(f, out);
        }
    }
}

/// Whether any message of `u` carries descriptors.
fn has_rights(u: &UnixSocket) -> bool {
    u.inflight.iter().any(|m| !m.fds.is_empty())
}

/// Restore side: creates the sockets of the image, pairs together.
#[derive(Default)]
pub struct Sockets<'a> {
    by_ino: BTreeMap<u64, &'a UnixSocket>,
    /// The other end of a pair already made: inode -> its descriptor.
    pending: BTreeMap<u64, RawFd>,
    /// Sockets whose queue carries descriptors: filled in `finish`, once
    /// every description (those in flight too) is open.
    deferred: Vec<u64>,
    /// The sending end of a connection whose peer closed, kept until its
    /// deferred queue is sent: inode of the receiving socket -> it.
    closing: BTreeMap<u64, RawFd>,
    /// Pending ends are kept at or above this number (out of the way of
    /// the description table being filled).
    min_fd: RawFd,
}

impl<'a> Sockets<'a> {
    pub fn new(procs: &'a [Process], inflight: &[&'a Fd], min_fd: RawFd) -> Self {
        let by_ino = procs
            .iter()
            .flat_map(|p| p.fds.iter())
            .chain(inflight.iter().copied())
            .filter_map(|f| f.unix.as_ref())
            .map(|u| (u.ino, u))
            .collect();
        Sockets {
            by_ino,
            min_fd,
            ..Default::default()
        }
    }

    /// The socket of `fd`, made (with its pair, if any), named, filled and
    /// set up. Datagram connections to a bound socket and the queues of
    /// bound datagram sockets wait for [`Self::finish`].
    pub fn open(&mut self, fd: &Fd) -> Result<RawFd, SysError> {
        let u = fd.unix.as_ref().ok_or_else(|| missing(fd))?;
        if let Some(s) = self.pending.remove(&u.ino) {
            return Ok(s);
        }
        let mutual = self
            .by_ino
            .get(&u.peer_ino)
            .filter(|p| p.peer_ino == u.ino)
            .copied();
        if u.peer_closed {
            // The other end is made only to send the queue, then closed.
            let (a, b) = us::socketpair(u.sock_type)?;
            if has_rights(u) {
                let up = stasis_sys::util::dup_above(b, self.min_fd);
                stasis_sys::util::close_raw(b);
                self.closing.insert(u.ino, up?);
                self.deferred.push(u.ino);
                return set_up(a, u).map(|()| a);
            }
            let filled =
                set_up(a, u).and_then(|()| u.queue.iter().try_for_each(|m| us::send(b, m, None)));
            stasis_sys::util::close_raw(b);
            filled
                .and_then(|()| shut(a, u))
                .inspect_err(|_| stasis_sys::util::close_raw(a))?;
            return Ok(a);
        }
        if let Some(peer) = mutual {
            let (a, b) = us::socketpair(u.sock_type)?;
            set_up(a, u)?;
            set_up(b, peer)?;
            if has_rights(u) || has_rights(peer) {
                self.deferred.extend([u.ino, peer.ino]);
            } else {
                for (me, other) in [(u, b), (peer, a)] {
                    // My queue holds what the other end sent.
                    for m in &me.queue {
                        us::send(other, m, None)?;
                    }
                }
                for (s, me) in [(a, u), (b, peer)] {
                    shut(s, me)?;
                }
            }
            let up = stasis_sys::util::dup_above(b, self.min_fd);
            stasis_sys::util::close_raw(b);
            self.pending.insert(peer.ino, up?);
            return Ok(a);
        }
        let s = us::socket(u.sock_type)?;
        set_up(s, u)?;
        if u.listening {
            us::listen(s, u.backlog as i32)?;
        }
        Ok(s)
    }

    /// Once every socket exists (`at`: inode -> its descriptor): connects
    /// one-way datagram sockets and refills the queues of unpaired
    /// sockets, then applies their shutdown bits.
    pub fn finish(
        &self,
        at: &BTreeMap<u64, RawFd>,
        desc_at: &BTreeMap<u32, RawFd>,
    ) -> Result<(), SysError> {
        // Queues with descriptors in flight: each message with its own.
        for ino in &self.deferred {
            let me = self.by_ino[ino];
            let from = match self.closing.get(ino) {
                Some(b) => *b,
                None => *at.get(&me.peer_ino).ok_or_else(|| missing_peer(me))?,
            };
            for (i, m) in me.queue.iter().enumerate() {
                us::send_rights(from, m, None, &rights_of(me, i, desc_at)?)?;
            }
            if let Some(s) = at.get(ino) {
                shut(*s, me)?;
            }
        }
        // Connections not yet accepted, in each listener's order.
        for l in self.by_ino.values().filter(|l| !l.pending.is_empty()) {
            for c in &l.pending {
                if let Some(s) = at.get(c) {
                    us::connect(*s, &l.name)?;
                }
            }
        }
        for (ino, &s) in at {
            let Some(u) = self.by_ino.get(ino) else {
                continue;
            };
            let paired = self
                .by_ino
                .get(&u.peer_ino)
                .is_some_and(|p| p.peer_ino == u.ino);
            if paired || u.peer_closed {
                continue;
            }
            if !u.external.is_empty() {
                us::connect(s, &u.external)?;
            } else if let Some(peer) = self.by_ino.get(&u.peer_ino) {
                us::connect(s, &peer.name)?;
            }
            if !u.queue.is_empty() {
                if u.name.is_empty() {
                    return Err(SysError::Call {
                        call: "send",
                        what: format!(
                            "socket:[{ino}] has queued messages but no name to send them to"
                        ),
                        errno: libc::EDESTADDRREQ,
                    });
                }
                let tmp = us::socket(libc::SOCK_DGRAM)?;
                let r = u.queue.iter().enumerate().try_for_each(|(i, m)| {
                    us::send_rights(tmp, m, Some(&u.name), &rights_of(u, i, desc_at)?)
                });
                stasis_sys::util::close_raw(tmp);
                r?;
            }
            shut(s, u)?;
        }
        Ok(())
    }

    /// Closes pair ends no fd took (there are none in a consistent image)
    /// and the sending ends of closed connections.
    pub fn close_pending(&mut self) {
        for (_, s) in std::mem::take(&mut self.pending) {
            stasis_sys::util::close_raw(s);
        }
        for (_, s) in std::mem::take(&mut self.closing) {
            stasis_sys::util::close_raw(s);
        }
    }
}

/// The restorer's descriptors of what message `i` of `u` carries.
fn rights_of(
    u: &UnixSocket,
    i: usize,
    desc_at: &BTreeMap<u32, RawFd>,
) -> Result<Vec<RawFd>, SysError> {
    let Some(m) = u.inflight.iter().find(|m| m.msg as usize == i) else {
        return Ok(Vec::new());
    };
    m.fds
        .iter()
        .map(|f| {
            desc_at.get(&f.desc).copied().ok_or_else(|| SysError::Call {
                call: "sendmsg(SCM_RIGHTS)",
                what: format!("socket:[{}]: a descriptor in flight was not opened", u.ino),
                errno: libc::EBADF,
            })
        })
        .collect()
}

fn missing_peer(u: &UnixSocket) -> SysError {
    SysError::Call {
        call: "send",
        what: format!(
            "socket:[{}]: its peer socket:[{}] was not made",
            u.ino, u.peer_ino
        ),
        errno: libc::ENOTCONN,
    }
}

fn missing(fd: &Fd) -> SysError {
    SysError::Call {
        call: "socket",
        what: format!("fd {}: no socket state in the image", fd.fd),
        errno: libc::EINVAL,
    }
}

/// Options and name of a new socket (before its queue is filled).
fn set_up(s: RawFd, u: &UnixSocket) -> Result<(), SysError> {
    if u.sndbuf != 0 {
        // getsockopt reports twice what was set.
        us::set_int(
            s,
            libc::SOL_SOCKET,
            libc::SO_SNDBUFFORCE,
            (u.sndbuf / 2) as i32,
        )?;
    }
    if u.rcvbuf != 0 {
        us::set_int(
            s,
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (u.rcvbuf / 2) as i32,
        )?;
    }
    if u.passcred {
        us::set_int(s, libc::SOL_SOCKET, libc::SO_PASSCRED, 1)?;
    }
    if !u.name.is_empty() {
        us::bind(s, &u.name)?;
        if u.name[0] != 0 {
            use std::os::unix::fs::PermissionsExt;
            let path = String::from_utf8_lossy(&u.name).into_owned();
            let fail = |e: std::io::Error| SysError::Call {
                call: "chmod/chown",
                what: display(&u.name),
                errno: e.raw_os_error().unwrap_or(libc::EIO),
            };
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(u.file_mode))
                .map_err(fail)?;
            std::os::unix::fs::lchown(&path, Some(u.uid), Some(u.gid)).map_err(fail)?;
        }
    }
    Ok(())
}

/// Shuts down what was shut down: bit 1 receive, bit 2 send.
fn shut(s: RawFd, u: &UnixSocket) -> Result<(), SysError> {
    let how = match u.shutdown & 3 {
        1 => libc::SHUT_RD,
        2 => libc::SHUT_WR,
        3 => libc::SHUT_RDWR,
        _ => return Ok(()),
    };
    us::shutdown(s, how)
}

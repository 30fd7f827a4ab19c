//! sock_diag(7) for unix sockets: one NLM_F_DUMP request lists every unix
//! socket of our network namespace with its name, whether it owns a path,
//! its peer, the connections waiting on a listener, queue lengths and
//! shutdown state, none of which the socket calls of a non-owner can see.
//!
//! The request and its answer are a few fixed structs and attributes, so
//! they are read by hand here.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::error::{Result, SysError};

const NETLINK_SOCK_DIAG: i32 = 4;
const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;

const UDIAG_SHOW_NAME: u32 = 0x01;
const UDIAG_SHOW_VFS: u32 = 0x02;
const UDIAG_SHOW_PEER: u32 = 0x04;
const UDIAG_SHOW_ICONS: u32 = 0x08;
const UDIAG_SHOW_RQLEN: u32 = 0x10;

const UNIX_DIAG_NAME: u16 = 0;
const UNIX_DIAG_VFS: u16 = 1;
const UNIX_DIAG_PEER: u16 = 2;
const UNIX_DIAG_ICONS: u16 = 3;
const UNIX_DIAG_RQLEN: u16 = 4;
const UNIX_DIAG_SHUTDOWN: u16 = 6;

/// What sock_diag says about one unix socket.
#[derive(Debug, Clone, Default)]
pub struct UnixDiag {
    pub ino: u32,
    pub sock_type: u8,
    /// TCP_* state: 1 established, 7 unconnected, 10 listening.
    pub state: u8,
    /// The bound address (sun_path bytes, abstract names start with NUL),
    /// also set on sockets accepted from a bound listener.
    pub name: Option<Vec<u8>>,
    /// Set when this socket itself owns a path: (device, inode) of the file.
    pub vfs: Option<(u32, u32)>,
    /// Inode of the peer, 0 if none.
    pub peer: u32,
    /// For a listener: inodes of the connections not yet accepted.
    pub icons: Vec<u32>,
    /// Bytes in the receive queue (for a listener: pending connections).
    pub rqueue: u32,
    /// Bytes in the send queue (for a listener: the backlog limit).
    pub wqueue: u32,
    /// 1: receive shut down, 2: send shut down.
    pub shutdown: u8,
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes(b[at..at + 2].try_into().expect("2 bytes"))
}

fn bad(what: &str) -> SysError {
    SysError::Call {
        call: "sock_diag",
        what: what.into(),
        errno: libc::EPROTO,
    }
}

/// Every unix socket of our network namespace, by inode.
pub fn unix_sockets() -> Result<HashMap<u32, UnixDiag>> {
    // SAFETY: plain socket(2); the result is checked and owned below.
    let raw = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            NETLINK_SOCK_DIAG,
        )
    };
    if raw < 0 {
        return Err(SysError::last("socket", "AF_NETLINK/NETLINK_SOCK_DIAG"));
    }
    // SAFETY: `raw` is a new descriptor nothing else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(raw) };
    let mut req = Vec::with_capacity(40);
    req.extend_from_slice(&40u32.to_ne_bytes()); // nlmsg_len
    req.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    req.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    req.extend_from_slice(&1u32.to_ne_bytes()); // seq
    req.extend_from_slice(&0u32.to_ne_bytes()); // pid
    req.push(libc::AF_UNIX as u8); // sdiag_family
    req.push(0); // sdiag_protocol
    req.extend_from_slice(&0u16.to_ne_bytes()); // pad
    req.extend_from_slice(&u32::MAX.to_ne_bytes()); // udiag_states: all
    req.extend_from_slice(&0u32.to_ne_bytes()); // udiag_ino
    let show =
        UDIAG_SHOW_NAME | UDIAG_SHOW_VFS | UDIAG_SHOW_PEER | UDIAG_SHOW_ICONS | UDIAG_SHOW_RQLEN;
    req.extend_from_slice(&show.to_ne_bytes());
    req.extend_from_slice(&[0xff; 8]); // udiag_cookie: none
                                       // SAFETY: `req` is a valid buffer of its length.
    let n = unsafe { libc::send(sock.as_raw_fd(), req.as_ptr().cast(), req.len(), 0) };
    if n != req.len() as isize {
        return Err(SysError::last("send", "sock_diag request"));
    }
    let mut out = HashMap::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        // SAFETY: `buf` is writable for its length.
        let n = unsafe { libc::recv(sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            return Err(SysError::last("recv", "sock_diag answer"));
        }
        let b = &buf[..n as usize];
        let mut at = 0;
        while at + 16 <= b.len() {
            let len = u32_at(b, at) as usize;
            let kind = u16_at(b, at + 4);
            if len < 16 || at + len > b.len() {
                return Err(bad("truncated message"));
            }
            match kind {
                NLMSG_DONE => return Ok(out),
                NLMSG_ERROR => {
                    let errno = -(u32_at(b, at + 16) as i32);
                    return Err(SysError::Call {
                        call: "sock_diag",
                        what: "unix sockets".into(),
                        errno,
                    });
                }
                SOCK_DIAG_BY_FAMILY => {
                    let d = parse_one(&b[at + 16..at + len])?;
                    out.insert(d.ino, d);
                }
                _ => {}
            }
            at += len.next_multiple_of(4);
        }
    }
}

/// One unix_diag_msg and its attributes.
fn parse_one(m: &[u8]) -> Result<UnixDiag> {
    if m.len() < 16 {
        return Err(bad("short unix_diag_msg"));
    }
    let mut d = UnixDiag {
        sock_type: m[1],
        state: m[2],
        ino: u32_at(m, 4),
        ..Default::default()
    };
    let mut at = 16;
    while at + 4 <= m.len() {
        let len = u16_at(m, at) as usize;
        let kind = u16_at(m, at + 2);
        if len < 4 || at + len > m.len() {
            return Err(bad("truncated attribute"));
        }
        let v = &m[at + 4..at + len];
        match kind {
            UNIX_DIAG_NAME => d.name = Some(v.to_vec()),
            // struct unix_diag_vfs: inode first, then device.
            UNIX_DIAG_VFS if v.len() >= 8 => d.vfs = Some((u32_at(v, 4), u32_at(v, 0))),
            UNIX_DIAG_PEER if v.len() >= 4 => d.peer = u32_at(v, 0),
            UNIX_DIAG_ICONS => d.icons = v.chunks_exact(4).map(|c| u32_at(c, 0)).collect(),
            UNIX_DIAG_RQLEN if v.len() >= 8 => {
                d.rqueue = u32_at(v, 0);
                d.wqueue = u32_at(v, 4);
            }
            UNIX_DIAG_SHUTDOWN if !v.is_empty() => d.shutdown = v[0],
            _ => {}
        }
        at += len.next_multiple_of(4);
    }
    Ok(d)
}

//! TCP and UDP socket calls on raw descriptors (socket(7), ip(7), ipv6(7),
//! tcp(7), udp(7)): options read and written as raw bytes, addresses as
//! [`SocketAddr`], and the state a non-owner can see of a socket.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::error::{Result, SysError};

fn check(r: libc::c_int, call: &'static str, what: impl FnOnce() -> String) -> Result<libc::c_int> {
    if r < 0 {
        Err(SysError::last(call, what()))
    } else {
        Ok(r)
    }
}

/// getsockopt(2) of option `opt` at `level`, at most `max` bytes.
pub fn get_raw(fd: RawFd, level: i32, opt: i32, max: usize) -> Result<Vec<u8>> {
    let mut v = vec![0u8; max];
    let mut len = max as libc::socklen_t;
    // SAFETY: `v` has room for `len` bytes, which the kernel updates.
    let r = unsafe { libc::getsockopt(fd, level, opt, v.as_mut_ptr().cast(), &mut len) };
    check(r, "getsockopt", || {
        format!("fd {fd} level {level} option {opt}")
    })?;
    v.truncate(len as usize);
    Ok(v)
}

/// setsockopt(2) of option `opt` at `level` to the bytes `v`.
pub fn set_raw(fd: RawFd, level: i32, opt: i32, v: &[u8]) -> Result<()> {
    // SAFETY: `v` is valid for its length across the call.
    let r = unsafe { libc::setsockopt(fd, level, opt, v.as_ptr().cast(), v.len() as _) };
    check(r, "setsockopt", || {
        format!("fd {fd} level {level} option {opt} ({} bytes)", v.len())
    })
    .map(drop)
}

/// socket(2) of `family` (AF_INET or AF_INET6), `ty` and `protocol`, with
/// SOCK_CLOEXEC.
pub fn socket(family: i32, ty: i32, protocol: i32) -> Result<OwnedFd> {
    // SAFETY: plain socket(2); the result is checked and owned below.
    let r = unsafe { libc::socket(family, ty | libc::SOCK_CLOEXEC, protocol) };
    check(r, "socket", || {
        format!("family {family} type {ty} protocol {protocol}")
    })?;
    // SAFETY: `r` is a new descriptor nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(r) })
}

/// A sockaddr_in6 big enough for either family, and its length.
fn raw_addr(a: &SocketAddr) -> (libc::sockaddr_in6, libc::socklen_t) {
    // SAFETY: sockaddr_in6 is plain old data; all zeros is valid.
    let mut s: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
    match a {
        SocketAddr::V4(v4) => {
            // SAFETY: sockaddr_in is smaller than sockaddr_in6 and has no
            // stricter alignment; the storage is zeroed.
            let s4 =
                unsafe { &mut *(&mut s as *mut libc::sockaddr_in6).cast::<libc::sockaddr_in>() };
            s4.sin_family = libc::AF_INET as libc::sa_family_t;
            s4.sin_port = v4.port().to_be();
            s4.sin_addr.s_addr = u32::from_ne_bytes(v4.ip().octets());
            (
                s,
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        }
        SocketAddr::V6(v6) => {
            s.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            s.sin6_port = v6.port().to_be();
            s.sin6_addr.s6_addr = v6.ip().octets();
            s.sin6_flowinfo = v6.flowinfo();
            s.sin6_scope_id = v6.scope_id();
            (
                s,
                std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
            )
        }
    }
}

fn from_raw(s: &libc::sockaddr_in6) -> Option<SocketAddr> {
    match i32::from(s.sin6_family) {
        libc::AF_INET => {
            // SAFETY: the kernel wrote a sockaddr_in at the start of `s`.
            let s4 = unsafe { &*(s as *const libc::sockaddr_in6).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(s4.sin_addr.s_addr.to_ne_bytes());
            Some(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(s4.sin_port),
            )))
        }
        libc::AF_INET6 => Some(SocketAddr::V6(SocketAddrV6::new(
            Ipv6Addr::from(s.sin6_addr.s6_addr),
            u16::from_be(s.sin6_port),
            s.sin6_flowinfo,
            s.sin6_scope_id,
        ))),
        _ => None,
    }
}

/// getsockname or getpeername: both fill a sockaddr of at most `*len`
/// bytes for a descriptor, which is all [`name_of`] relies on.
type NameCall =
    unsafe extern "C" fn(libc::c_int, *mut libc::sockaddr, *mut libc::socklen_t) -> libc::c_int;

fn name_of(fd: RawFd, call: NameCall, what: &'static str) -> Result<SocketAddr> {
    // SAFETY: sockaddr_in6 is plain old data; all zeros is valid.
    let mut s: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t;
    // SAFETY: `s` has room for `len` bytes, which the kernel updates.
    let r = unsafe { call(fd, (&mut s as *mut libc::sockaddr_in6).cast(), &mut len) };
    check(r, what, || format!("fd {fd}"))?;
    from_raw(&s).ok_or_else(|| SysError::Call {
        call: what,
        what: format!("fd {fd}: not an inet address"),
        errno: libc::EAFNOSUPPORT,
    })
}

/// getsockname(2).
pub fn local_addr(fd: RawFd) -> Result<SocketAddr> {
    name_of(fd, libc::getsockname, "getsockname")
}

/// getpeername(2); None when not connected.
pub fn peer_addr(fd: RawFd) -> Result<Option<SocketAddr>> {
    match name_of(fd, libc::getpeername, "getpeername") {
        Err(SysError::Call {
            errno: libc::ENOTCONN,
            ..
        }) => Ok(None),
        r => r.map(Some),
    }
}

/// bind(2) to `a`.
pub fn bind(fd: RawFd, a: &SocketAddr) -> Result<()> {
    let (s, len) = raw_addr(a);
    // SAFETY: `s` holds a valid address of `len` bytes.
    let r = unsafe { libc::bind(fd, (&s as *const libc::sockaddr_in6).cast(), len) };
    check(r, "bind", || a.to_string()).map(drop)
}

/// connect(2) to `a` (for UDP: sets the default peer; for AF_UNSPEC use
/// is not offered).
pub fn connect(fd: RawFd, a: &SocketAddr) -> Result<()> {
    let (s, len) = raw_addr(a);
    // SAFETY: `s` holds a valid address of `len` bytes.
    let r = unsafe { libc::connect(fd, (&s as *const libc::sockaddr_in6).cast(), len) };
    check(r, "connect", || a.to_string()).map(drop)
}

/// listen(2).
pub fn listen(fd: RawFd, backlog: i32) -> Result<()> {
    // SAFETY: integer arguments only.
    let r = unsafe { libc::listen(fd, backlog) };
    check(r, "listen", || format!("fd {fd}")).map(drop)
}

/// What TCP_INFO (tcp(7)) shows of a TCP socket.
#[derive(Debug, Clone, Copy)]
pub struct TcpState {
    /// TCP_* state: 1 established ... 7 close, 10 listen.
    pub state: u8,
    /// For a listener: connections waiting to be accepted.
    pub accept_queue: u32,
    /// For a listener: the backlog limit listen(2) set.
    pub backlog: u32,
}

/// TCP_INFO of `fd`: its state and, for a listener, its queue.
pub fn tcp_state(fd: RawFd) -> Result<TcpState> {
    // SAFETY: tcp_info is plain old data; all zeros is valid.
    let mut t: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: `t` has room for `len` bytes, which the kernel updates.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut t as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    check(r, "getsockopt", || format!("fd {fd} TCP_INFO"))?;
    // Listeners alias tcpi_unacked (accept queue) and tcpi_sacked
    // (backlog), see tcp_get_info() in net/ipv4/tcp.c.
    Ok(TcpState {
        state: t.tcpi_state,
        accept_queue: t.tcpi_unacked,
        backlog: t.tcpi_sacked,
    })
}

const SIOCGSKNS: libc::c_ulong = 0x894C;

/// Whether the socket `fd` belongs to the network namespace of the
/// calling thread (ioctl SIOCGSKNS, compared with /proc/thread-self/ns/net).
pub fn in_our_netns(fd: RawFd) -> Result<bool> {
    // SAFETY: SIOCGSKNS takes no argument and returns a new descriptor.
    let r = unsafe { libc::ioctl(fd, SIOCGSKNS as _) };
    check(r, "ioctl(SIOCGSKNS)", || format!("fd {fd}"))?;
    // SAFETY: `r` is a new descriptor nothing else owns.
    let ns = unsafe { OwnedFd::from_raw_fd(r) };
    let theirs = nix::sys::stat::fstat(ns.as_raw_fd())
        .map_err(|e| SysError::Call {
            call: "fstat",
            what: "socket's network namespace".into(),
            errno: e as i32,
        })?
        .st_ino;
    let ours = nix::sys::stat::stat("/proc/thread-self/ns/net")
        .map_err(|e| SysError::Call {
            call: "stat",
            what: "/proc/thread-self/ns/net".into(),
            errno: e as i32,
        })?
        .st_ino;
    Ok(theirs == ours)
}

/// The unspecified address of `family` with port 0 (what getsockname
/// returns for a socket that never bound).
pub fn unspecified(family: i32) -> SocketAddr {
    let ip = if family == libc::AF_INET6 {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    };
    SocketAddr::new(ip, 0)
}

/// A datagram read from a UDP socket's queue, and who sent it.
#[derive(Debug, Clone)]
pub struct Datagram {
    pub data: Vec<u8>,
    pub from: Option<SocketAddr>,
}

/// Copies the datagrams queued on UDP socket `fd`, oldest first, without
/// taking them (MSG_PEEK, walked with SO_PEEK_OFF, which is put back
/// afterwards). At most `limit` bytes; a zero-length datagram (which the
/// peek offset cannot get past) is an error with errno ENOMSG.
pub fn peek_datagrams(fd: RawFd, limit: usize) -> Result<Vec<Datagram>> {
    let int = |v: &[u8]| i32::from_ne_bytes(v.try_into().unwrap_or([0xff; 4]));
    let old = int(&get_raw(fd, libc::SOL_SOCKET, libc::SO_PEEK_OFF, 4)?);
    set_raw(fd, libc::SOL_SOCKET, libc::SO_PEEK_OFF, &0i32.to_ne_bytes())?;
    let r = peek_all(fd, limit);
    let back = set_raw(fd, libc::SOL_SOCKET, libc::SO_PEEK_OFF, &old.to_ne_bytes());
    let out = r?;
    back?;
    Ok(out)
}

fn peek_all(fd: RawFd, limit: usize) -> Result<Vec<Datagram>> {
    let mut out = Vec::new();
    let mut total = 0usize;
    // Larger than any UDP datagram.
    let mut buf = vec![0u8; 1 << 16];
    let too = |what: &str| SysError::Call {
        call: "recvfrom(MSG_PEEK)",
        what: format!("fd {fd}: {what}"),
        errno: libc::EMSGSIZE,
    };
    loop {
        // SAFETY: sockaddr_in6 is plain old data; all zeros is valid.
        let mut s: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t;
        // SAFETY: `buf` is writable for its length and `s` for `len`
        // bytes, which the kernel updates.
        let n = unsafe {
            libc::recvfrom(
                fd,
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_PEEK | libc::MSG_DONTWAIT,
                (&mut s as *mut libc::sockaddr_in6).cast(),
                &mut len,
            )
        };
        if n < 0 {
            return match crate::errno() {
                libc::EAGAIN => Ok(out),
                _ => Err(SysError::last("recvfrom(MSG_PEEK)", format!("fd {fd}"))),
            };
        }
        if n == 0 {
            // The peek offset cannot get past it.
            return Err(SysError::Call {
                call: "recvfrom(MSG_PEEK)",
                what: format!("fd {fd}: a zero-length datagram"),
                errno: libc::ENOMSG,
            });
        }
        total += n as usize;
        if total > limit {
            return Err(too(&format!("more than {limit} bytes queued")));
        }
        out.push(Datagram {
            data: buf[..n as usize].to_vec(),
            from: (len > 0).then(|| from_raw(&s)).flatten(),
        });
    }
}

/// sendto(2) of one datagram, never blocking.
pub fn send_to(fd: RawFd, data: &[u8], to: &SocketAddr) -> Result<()> {
    let (s, len) = raw_addr(to);
    // SAFETY: `data` and `s` are valid for their lengths across the call.
    let n = unsafe {
        libc::sendto(
            fd,
            data.as_ptr().cast(),
            data.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            (&s as *const libc::sockaddr_in6).cast(),
            len,
        )
    };
    if n < 0 || n as usize != data.len() {
        return Err(SysError::last(
            "sendto",
            format!("{} bytes to {to}", data.len()),
        ));
    }
    Ok(())
}

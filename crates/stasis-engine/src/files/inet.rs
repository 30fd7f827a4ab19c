//! TCP and UDP sockets over IPv4 and IPv6 that hold no connection: TCP
//! listeners with an empty accept queue, TCP sockets that are unbound or
//! only bound, and UDP sockets (unbound, bound or connected) with the
//! datagrams waiting in their receive queue.
//!
//! Dump reads each socket through a handle from pidfd_getfd(2): its
//! family, type and protocol, its state (TCP_INFO, which for a listener
//! also gives the accept queue and the backlog), its addresses, the
//! options of [`OPTIONS`] as raw getsockopt(2) values, and a UDP socket's
//! queue with each sender's address (MSG_PEEK walked with SO_PEEK_OFF, so
//! nothing is taken). Anything that would need TCP_REPAIR (an established
//! or half-open connection, a listener with connections not yet accepted)
//! is refused with one line naming the socket, as are a zero-length
//! datagram in a queue (a peek cannot get past it), raw, ping, UDP-Lite,
//! SCTP and MPTCP sockets and sockets of another network namespace.
//!
//! Restore makes a new socket, sets each option that differs from the new
//! socket's own value (in table order: SO_RCVBUF after SO_RCVLOWAT, which
//! may grow it; a buffer size is set to half the value read, which the
//! kernel doubles), binds it to the same address and port, then listens
//! with the same backlog or connects a UDP socket to its peer. A UDP
//! socket's queue is sent again before it connects, each datagram from a
//! socket bound to its sender's address when that address is free (else
//! from one the kernel picks: the program then sees another sender), and
//! restore checks that every datagram arrived. Before
//! anything is created, [`check_ports`] makes and drops the same socket,
//! so a port another socket holds is refused up front ("port 127.0.0.1:5000
//! is in use"); with SO_REUSEPORT on both, sharing the port is allowed.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd, RawFd};

use stasis_image::{Fd, FdKind, InetAddr, InetDatagram, InetSocket, Process, SockOpt};
use stasis_sys::inetsock as is;
use stasis_sys::{pidfd, RemoteFd, SysError};

use crate::error::RestoreError;

const TCP_ESTABLISHED: u8 = 1;
const TCP_CLOSE: u8 = 7;
const TCP_LISTEN: u8 = 10;
const IPV6_FREEBIND: i32 = 78;
const IPPROTO_MPTCP: i32 = 262;
/// Largest receive queue copied, per UDP socket.
const MAX_QUEUE: usize = 16 << 20;

/// Which sockets an option applies to.
#[derive(Clone, Copy, PartialEq)]
enum Scope {
    Any,
    Tcp,
    V4,
    V6,
}

/// The options kept, in the order restore sets them: `len` is the size of
/// the value; `half` marks buffer sizes the kernel doubles when set.
struct Opt {
    level: i32,
    name: i32,
    len: usize,
    scope: Scope,
    half: bool,
}

const fn opt(level: i32, name: i32, len: usize, scope: Scope) -> Opt {
    Opt {
        level,
        name,
        len,
        scope,
        half: false,
    }
}

const INT: usize = 4;
const OPTIONS: [Opt; 25] = [
    opt(libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, INT, Scope::V6),
    opt(libc::IPPROTO_IPV6, libc::IPV6_TCLASS, INT, Scope::V6),
    opt(libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS, INT, Scope::V6),
    opt(libc::IPPROTO_IPV6, IPV6_FREEBIND, INT, Scope::V6),
    // Also on IPv6 sockets, for their IPv4-mapped traffic.
    opt(libc::IPPROTO_IP, libc::IP_TOS, INT, Scope::Any),
    opt(libc::IPPROTO_IP, libc::IP_TTL, INT, Scope::Any),
    opt(libc::IPPROTO_IP, libc::IP_FREEBIND, INT, Scope::V4),
    opt(libc::IPPROTO_TCP, libc::TCP_NODELAY, INT, Scope::Tcp),
    opt(libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, INT, Scope::Tcp),
    opt(libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, INT, Scope::Tcp),
    opt(libc::IPPROTO_TCP, libc::TCP_KEEPCNT, INT, Scope::Tcp),
    opt(libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT, INT, Scope::Tcp),
    opt(libc::IPPROTO_TCP, libc::TCP_CONGESTION, 16, Scope::Tcp),
    opt(libc::SOL_SOCKET, libc::SO_REUSEADDR, INT, Scope::Any),
    opt(libc::SOL_SOCKET, libc::SO_REUSEPORT, INT, Scope::Any),
    opt(libc::SOL_SOCKET, libc::SO_KEEPALIVE, INT, Scope::Any),
    opt(libc::SOL_SOCKET, libc::SO_BROADCAST, INT, Scope::Any),
    // struct linger, struct timeval.
    opt(libc::SOL_SOCKET, libc::SO_LINGER, 8, Scope::Any),
    opt(libc::SOL_SOCKET, libc::SO_RCVTIMEO, 16, Scope::Any),
    opt(libc::SOL_SOCKET, libc::SO_SNDTIMEO, 16, Scope::Any),
    opt(libc::SOL_SOCKET, libc::SO_MARK, INT, Scope::Any),
    opt(libc::SOL_SOCKET, libc::SO_PRIORITY, INT, Scope::Any),
    opt(libc::SOL_SOCKET, libc::SO_RCVLOWAT, INT, Scope::Any),
    Opt {
        half: true,
        ..opt(libc::SOL_SOCKET, libc::SO_RCVBUF, INT, Scope::Any)
    },
    Opt {
        half: true,
        ..opt(libc::SOL_SOCKET, libc::SO_SNDBUF, INT, Scope::Any)
    },
];

fn applies(o: &Opt, family: i32, tcp: bool) -> bool {
    match o.scope {
        Scope::Any => true,
        Scope::Tcp => tcp,
        Scope::V4 => family == libc::AF_INET,
        Scope::V6 => family == libc::AF_INET6,
    }
}

fn family_name(family: i32) -> &'static str {
    if family == libc::AF_INET6 {
        "AF_INET6"
    } else {
        "AF_INET"
    }
}

fn tcp_state_name(s: u8) -> &'static str {
    match s {
        1 => "ESTABLISHED",
        2 => "SYN_SENT",
        3 => "SYN_RECV",
        4 => "FIN_WAIT1",
        5 => "FIN_WAIT2",
        6 => "TIME_WAIT",
        8 => "CLOSE_WAIT",
        9 => "LAST_ACK",
        11 => "CLOSING",
        _ => "an unknown state",
    }
}

/// Fills `fd` of `pid` if it is an AF_INET or AF_INET6 socket, or says why
/// it cannot be checkpointed; None for sockets of other families.
pub fn dump(pid: i32, fd: &mut Fd) -> Option<Result<(), String>> {
    let h = match pidfd::copy_of(pid, RemoteFd(fd.fd)) {
        Ok(h) => h,
        Err(e) => return Some(Err(e.to_string())),
    };
    let int = |level, name| -> Result<i32, String> {
        let v = is::get_raw(h.as_raw_fd(), level, name, INT).map_err(|e| e.to_string())?;
        Ok(i32::from_ne_bytes(v.try_into().unwrap_or_default()))
    };
    let family = match int(libc::SOL_SOCKET, libc::SO_DOMAIN) {
        Ok(f) if f == libc::AF_INET || f == libc::AF_INET6 => f,
        Ok(_) => return None,
        Err(e) => return Some(Err(e)),
    };
    Some(dump_inet(fd, &h, family, int))
}

fn dump_inet(
    fd: &mut Fd,
    h: &OwnedFd,
    family: i32,
    int: impl Fn(i32, i32) -> Result<i32, String>,
) -> Result<(), String> {
    let raw = h.as_raw_fd();
    let fam = family_name(family);
    let err = |e: SysError| e.to_string();
    // Without CAP_NET_ADMIN the socket's namespace cannot be asked; the
    // tree's own namespace was checked with its processes.
    match is::in_our_netns(raw) {
        Ok(true) => {}
        Err(e) if e.errno() == Some(libc::EPERM) => {}
        Ok(false) => {
            return Err(format!(
                "an {fam} socket of another network namespace, which stasis cannot checkpoint"
            ))
        }
        Err(e) => return Err(err(e)),
    }
    let ty = int(libc::SOL_SOCKET, libc::SO_TYPE)?;
    let protocol = int(libc::SOL_SOCKET, libc::SO_PROTOCOL)?;
    let local = is::local_addr(raw).map_err(err)?;
    let tcp = ty == libc::SOCK_STREAM && protocol == libc::IPPROTO_TCP;
    let udp = ty == libc::SOCK_DGRAM && protocol == libc::IPPROTO_UDP;
    let mut s = InetSocket {
        family,
        sock_type: ty,
        protocol,
        bound: local.port() != 0 || !local.ip().is_unspecified(),
        local: Some(to_image(&local)),
        ..Default::default()
    };
    if tcp {
        dump_tcp(raw, &local, &mut s)?;
    } else if udp {
        dump_udp(raw, &local, &mut s)?;
    } else {
        return Err(format!(
            "{}, which stasis cannot checkpoint yet",
            other_kind(fam, ty, protocol)
        ));
    }
    s.options = read_options(raw, family, tcp)?;
    fd.kind = FdKind::InetSocket as i32;
    fd.path = describe(&s);
    fd.inet = Some(s);
    Ok(())
}

/// The state of a TCP socket: a listener's backlog, or nothing for one
/// that is not connected; anything with a connection is refused.
fn dump_tcp(raw: RawFd, local: &SocketAddr, s: &mut InetSocket) -> Result<(), String> {
    let t = is::tcp_state(raw).map_err(|e| e.to_string())?;
    let conn = match is::peer_addr(raw).ok().flatten() {
        Some(p) => format!(" ({local} -> {p})"),
        None => format!(" ({local})"),
    };
    match t.state {
        TCP_LISTEN if t.accept_queue > 0 => {
            return Err(format!(
                "a TCP listener on {local} with {} connections not yet accepted; stasis cannot checkpoint connections yet (needs TCP_REPAIR)",
                t.accept_queue
            ))
        }
        TCP_LISTEN => s.backlog = t.backlog,
        TCP_CLOSE => {}
        TCP_ESTABLISHED => {
            return Err(format!(
                "an established TCP connection{conn}; stasis cannot checkpoint connections yet (needs TCP_REPAIR)"
            ))
        }
        st => {
            return Err(format!(
                "a TCP connection in state {}{conn}; stasis cannot checkpoint connections yet (needs TCP_REPAIR)",
                tcp_state_name(st)
            ))
        }
    }
    s.state = u32::from(t.state);
    Ok(())
}

/// The queue and peer of a UDP socket.
fn dump_udp(raw: RawFd, local: &SocketAddr, s: &mut InetSocket) -> Result<(), String> {
    s.queue = is::peek_datagrams(raw, MAX_QUEUE)
        .map_err(|e| match e.errno() {
            Some(libc::ENOMSG) => format!(
                "a UDP socket on {local} with a zero-length datagram queued, which stasis cannot copy (a peek cannot get past it)"
            ),
            _ => format!("a UDP socket on {local} whose queue cannot be copied: {e}"),
        })?
        .into_iter()
        .map(|d| InetDatagram {
            data: d.data,
            from: d.from.as_ref().map(to_image),
        })
        .collect();
    let peer = is::peer_addr(raw).map_err(|e| e.to_string())?;
    s.state = u32::from(if peer.is_some() {
        TCP_ESTABLISHED
    } else {
        TCP_CLOSE
    });
    s.peer = peer.as_ref().map(to_image);
    Ok(())
}

/// Names a socket of `fam` that is neither TCP nor UDP.
fn other_kind(fam: &str, ty: i32, protocol: i32) -> String {
    match (ty, protocol) {
        (libc::SOCK_RAW, p) => format!("a raw {fam} socket (protocol {p})"),
        (libc::SOCK_DGRAM, libc::IPPROTO_ICMP | libc::IPPROTO_ICMPV6) => {
            format!("an {fam} ping socket")
        }
        (_, libc::IPPROTO_UDPLITE) => format!("an {fam} UDP-Lite socket"),
        (_, libc::IPPROTO_SCTP) => format!("an {fam} SCTP socket"),
        (_, IPPROTO_MPTCP) => format!("an {fam} MPTCP socket"),
        (t, p) => format!("an {fam} socket of type {t}, protocol {p}"),
    }
}

/// The options of [`OPTIONS`] that apply to this socket; one the kernel
/// does not have for it is left out.
fn read_options(raw: RawFd, family: i32, tcp: bool) -> Result<Vec<SockOpt>, String> {
    let mut out = Vec::new();
    for o in OPTIONS.iter().filter(|o| applies(o, family, tcp)) {
        match is::get_raw(raw, o.level, o.name, o.len) {
            Ok(value) => out.push(SockOpt {
                level: o.level,
                name: o.name,
                value,
            }),
            Err(e) if matches!(e.errno(), Some(libc::ENOPROTOOPT | libc::EOPNOTSUPP)) => {}
            Err(e) => return Err(format!("a socket whose options cannot be read: {e}")),
        }
    }
    Ok(out)
}

/// "TCP 127.0.0.1:5000 listening", for fd paths and `stasis inspect`.
fn describe(s: &InetSocket) -> String {
    let proto = if s.sock_type == libc::SOCK_STREAM {
        "TCP"
    } else {
        "UDP"
    };
    let local = s.local.as_ref().and_then(|a| from_image(s.family, a));
    let mut d = match local.filter(|_| s.bound) {
        Some(a) => format!("{proto} {a}"),
        None => format!("{proto} {} unbound", family_name(s.family)),
    };
    if s.state == u32::from(TCP_LISTEN) {
        d.push_str(" listening");
    }
    if let Some(p) = s.peer.as_ref().and_then(|a| from_image(s.family, a)) {
        d.push_str(&format!(" -> {p}"));
    }
    d
}

fn to_image(a: &SocketAddr) -> InetAddr {
    match a {
        SocketAddr::V4(v) => InetAddr {
            ip: v.ip().octets().to_vec(),
            port: u32::from(v.port()),
            scope_id: 0,
        },
        SocketAddr::V6(v) => InetAddr {
            ip: v.ip().octets().to_vec(),
            port: u32::from(v.port()),
            scope_id: v.scope_id(),
        },
    }
}

fn from_image(family: i32, a: &InetAddr) -> Option<SocketAddr> {
    let port = u16::try_from(a.port).ok()?;
    if family == libc::AF_INET6 {
        let b: [u8; 16] = a.ip.as_slice().try_into().ok()?;
        let ip = Ipv6Addr::from(b);
        Some(SocketAddr::V6(SocketAddrV6::new(ip, port, 0, a.scope_id)))
    } else {
        let b: [u8; 4] = a.ip.as_slice().try_into().ok()?;
        Some(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(b), port)))
    }
}

/// Why [`make`] failed: the address is taken, or anything else.
enum MakeError {
    InUse(String),
    Other(String),
}

impl From<String> for MakeError {
    fn from(s: String) -> Self {
        MakeError::Other(s)
    }
}

impl From<MakeError> for String {
    fn from(e: MakeError) -> Self {
        match e {
            MakeError::InUse(s) | MakeError::Other(s) => s,
        }
    }
}

fn state_of(fd: &Fd) -> Result<&InetSocket, String> {
    fd.inet
        .as_ref()
        .ok_or_else(|| "an inet socket without its state".to_string())
}

/// A new socket like the one of `fd`, with its options set and bound to
/// its address (not yet listening or connected).
fn make(fd: &Fd) -> Result<OwnedFd, MakeError> {
    let s = state_of(fd)?;
    let sock = is::socket(s.family, s.sock_type, s.protocol).map_err(|e| e.to_string())?;
    let raw = sock.as_raw_fd();
    let tcp = s.sock_type == libc::SOCK_STREAM;
    for o in &s.options {
        let known = OPTIONS
            .iter()
            .find(|k| k.level == o.level && k.name == o.name && applies(k, s.family, tcp))
            .ok_or_else(|| {
                format!(
                    "socket option {}/{} is not one stasis restores",
                    o.level, o.name
                )
            })?;
        set_option(raw, known, &o.value)?;
    }
    if s.bound {
        let a = s
            .local
            .as_ref()
            .and_then(|a| from_image(s.family, a))
            .ok_or_else(|| "a bound socket without a valid address".to_string())?;
        is::bind(raw, &a).map_err(|e| match e.errno() {
            Some(libc::EADDRINUSE) => MakeError::InUse(format!("port {a} is in use")),
            _ => MakeError::Other(e.to_string()),
        })?;
    }
    Ok(sock)
}

/// Sets option `o` to `value` unless the new socket already has it.
fn set_option(raw: RawFd, o: &Opt, value: &[u8]) -> Result<(), String> {
    let now = is::get_raw(raw, o.level, o.name, o.len).map_err(|e| e.to_string())?;
    if now == value {
        return Ok(());
    }
    let mut v = value.to_vec();
    if o.half {
        let n = i32::from_ne_bytes(value.try_into().map_err(|_| "bad buffer size")?);
        v = (n / 2).to_ne_bytes().to_vec();
    }
    if o.name == libc::TCP_CONGESTION && o.level == libc::IPPROTO_TCP {
        v = value.split(|b| *b == 0).next().unwrap_or(&[]).to_vec();
    }
    is::set_raw(raw, o.level, o.name, &v).map_err(|e| e.to_string())
}

/// Opens the socket of `fd` as it was: bound, then listening or connected.
pub fn open(fd: &Fd) -> Result<RawFd, String> {
    let s = state_of(fd)?;
    let sock = make(fd)?;
    let raw = sock.as_raw_fd();
    if s.state == u32::from(TCP_LISTEN) {
        let backlog = i32::try_from(s.backlog).unwrap_or(i32::MAX);
        is::listen(raw, backlog).map_err(|e| e.to_string())?;
    }
    // Before connecting: a connected socket takes datagrams from its peer
    // only, and the peer's address may be taken by now.
    refill(raw, s)?;
    if let Some(p) = s.peer.as_ref() {
        let p = from_image(s.family, p).ok_or("a peer without a valid address")?;
        is::connect(raw, &p).map_err(|e| e.to_string())?;
    }
    Ok(sock.into_raw_fd())
}

/// Checks, before anything is created, that every address a socket of `p`
/// binds to is free (by making the same socket, options and all, and
/// dropping it).
pub fn check_ports(p: &Process) -> Result<(), RestoreError> {
    for fd in p.fds.iter().filter(|f| f.kind == FdKind::InetSocket as i32) {
        if !fd.inet.as_ref().is_some_and(|s| s.bound) {
            continue;
        }
        let what = |why: String| format!("pid {} fd {} ({}): {why}", p.pid, fd.fd, fd.path);
        match make(fd) {
            Ok(_) => {}
            Err(MakeError::InUse(why)) => return Err(RestoreError::Held(what(why))),
            Err(MakeError::Other(why)) => return Err(RestoreError::Refused(what(why))),
        }
    }
    Ok(())
}

/// Sends the queued datagrams of `s` again to the new socket `raw`, each
/// from its sender's address if that can be bound (else from an address
/// the kernel picks), and checks they all arrived.
fn refill(raw: RawFd, s: &InetSocket) -> Result<(), String> {
    if s.queue.is_empty() {
        return Ok(());
    }
    let local = is::local_addr(raw).map_err(|e| e.to_string())?;
    for d in &s.queue {
        let from = d.from.as_ref().and_then(|a| from_image(s.family, a));
        let to = SocketAddr::new(reachable(local.ip(), from), local.port());
        let sender =
            is::socket(s.family, libc::SOCK_DGRAM, libc::IPPROTO_UDP).map_err(|e| e.to_string())?;
        if let Some(f) = from {
            if let Err(e) = is::bind(sender.as_raw_fd(), &f) {
                tracing::debug!("queued datagram sent from another address than {f}: {e}");
            }
        }
        is::send_to(sender.as_raw_fd(), &d.data, &to).map_err(|e| e.to_string())?;
    }
    // Loopback delivery may finish in a softirq just after sendto returns.
    for _ in 0..50 {
        let got = is::peek_datagrams(raw, MAX_QUEUE).map_err(|e| e.to_string())?;
        if got.len() >= s.queue.len() {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    Err(format!(
        "not all of the {} queued datagrams arrived again (receive buffer too small?)",
        s.queue.len()
    ))
}

/// Where a socket bound to `ip` is reached from a sender at `from`: the
/// loopback address (IPv4-mapped for an IPv4 sender to a dual-stack
/// socket) for the wildcard, else `ip` itself.
fn reachable(ip: std::net::IpAddr, from: Option<SocketAddr>) -> std::net::IpAddr {
    if !ip.is_unspecified() {
        return ip;
    }
    let mapped = matches!(from, Some(SocketAddr::V6(f)) if f.ip().to_ipv4_mapped().is_some());
    match ip {
        std::net::IpAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
        std::net::IpAddr::V6(_) if mapped => Ipv4Addr::LOCALHOST.to_ipv6_mapped().into(),
        std::net::IpAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
    }
}

//! Unix domain socket calls on raw descriptors: the options, addresses and
//! queue reads that checkpointing a unix socket needs, and the calls that
//! rebuild one.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use crate::error::{Result, SysError};

fn check(r: libc::c_int, call: &'static str, what: impl FnOnce() -> String) -> Result<libc::c_int> {
    if r < 0 {
        Err(SysError::last(call, what()))
    } else {
        Ok(r)
    }
}

/// getsockopt(2) of an int option.
pub fn get_int(fd: RawFd, level: i32, opt: i32) -> Result<i32> {
    let mut v: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `v` and `len` are valid for the kernel to write.
    let r = unsafe {
        libc::getsockopt(
            fd,
            level,
            opt,
            (&mut v as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    check(r, "getsockopt", || format!("fd {fd} option {opt}"))?;
    Ok(v)
}

/// setsockopt(2) of an int option.
pub fn set_int(fd: RawFd, level: i32, opt: i32, v: i32) -> Result<()> {
    // SAFETY: `v` lives across the call; the length matches.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            opt,
            (&v as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    check(r, "setsockopt", || format!("fd {fd} option {opt} = {v}")).map(drop)
}

/// A sockaddr_un for `name` (sun_path bytes; abstract if it starts with
/// NUL) and its length.
fn addr(name: &[u8]) -> Result<(libc::sockaddr_un, libc::socklen_t)> {
    // SAFETY: sockaddr_un is plain old data; all zeros is valid.
    let mut a: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    if name.len() >= a.sun_path.len() {
        return Err(SysError::Call {
            call: "bind",
            what: format!("socket name of {} bytes", name.len()),
            errno: libc::ENAMETOOLONG,
        });
    }
    a.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (d, s) in a.sun_path.iter_mut().zip(name) {
        *d = *s as libc::c_char;
    }
    // A path name counts its terminating NUL; an abstract one is exact.
    let extra = usize::from(name.first() != Some(&0));
    let len = std::mem::size_of::<libc::sa_family_t>() + name.len() + extra;
    Ok((a, len as libc::socklen_t))
}

fn display(name: &[u8]) -> String {
    match name.split_first() {
        Some((0, rest)) => format!("@{}", String::from_utf8_lossy(rest)),
        _ => String::from_utf8_lossy(name).into_owned(),
    }
}

/// socket(AF_UNIX, `ty` | SOCK_CLOEXEC).
pub fn socket(ty: i32) -> Result<RawFd> {
    // SAFETY: plain socket(2).
    let r = unsafe { libc::socket(libc::AF_UNIX, ty | libc::SOCK_CLOEXEC, 0) };
    check(r, "socket", || format!("AF_UNIX type {ty}"))
}

/// socketpair(AF_UNIX, `ty` | SOCK_CLOEXEC).
pub fn socketpair(ty: i32) -> Result<(RawFd, RawFd)> {
    let mut fds = [0; 2];
    let fl = ty | libc::SOCK_CLOEXEC;
    // SAFETY: `fds` has room for the two descriptors.
    let r = unsafe { libc::socketpair(libc::AF_UNIX, fl, 0, fds.as_mut_ptr()) };
    check(r, "socketpair", || format!("AF_UNIX type {ty}"))?;
    Ok((fds[0], fds[1]))
}

/// bind(2) to `name`.
pub fn bind(fd: RawFd, name: &[u8]) -> Result<()> {
    let (a, len) = addr(name)?;
    // SAFETY: `a` is a valid sockaddr_un of `len` bytes.
    let r = unsafe { libc::bind(fd, (&a as *const libc::sockaddr_un).cast(), len) };
    check(r, "bind", || display(name)).map(drop)
}

/// connect(2) to `name`.
pub fn connect(fd: RawFd, name: &[u8]) -> Result<()> {
    let (a, len) = addr(name)?;
    // SAFETY: `a` is a valid sockaddr_un of `len` bytes.
    let r = unsafe { libc::connect(fd, (&a as *const libc::sockaddr_un).cast(), len) };
    check(r, "connect", || display(name)).map(drop)
}

/// getpeername(2): the address of the socket `fd` is connected to
/// (sun_path bytes; empty for an unnamed peer).
pub fn peer_name(fd: RawFd) -> Result<Vec<u8>> {
    // SAFETY: sockaddr_un is plain old data; all zeros is valid.
    let mut a: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
    // SAFETY: `a` has room for `len` bytes, which the kernel updates.
    let r = unsafe { libc::getpeername(fd, (&mut a as *mut libc::sockaddr_un).cast(), &mut len) };
    check(r, "getpeername", || format!("fd {fd}"))?;
    let n = (len as usize).saturating_sub(std::mem::size_of::<libc::sa_family_t>());
    let bytes: Vec<u8> = a.sun_path[..n.min(a.sun_path.len())]
        .iter()
        .map(|c| *c as u8)
        .collect();
    // A path name comes with its NUL; an abstract one is exact.
    Ok(match bytes.first() {
        Some(0) => bytes,
        _ => bytes.split(|b| *b == 0).next().unwrap_or(&[]).to_vec(),
    })
}

/// listen(2).
pub fn listen(fd: RawFd, backlog: i32) -> Result<()> {
    // SAFETY: integer arguments only.
    let r = unsafe { libc::listen(fd, backlog) };
    check(r, "listen", || format!("fd {fd}")).map(drop)
}

/// shutdown(2).
pub fn shutdown(fd: RawFd, how: i32) -> Result<()> {
    // SAFETY: integer arguments only.
    let r = unsafe { libc::shutdown(fd, how) };
    check(r, "shutdown", || format!("fd {fd}")).map(drop)
}

/// Sends `data` as one message (or, on a stream, all of it), to `to` if
/// given. Never blocks: a full queue is an error.
pub fn send(fd: RawFd, data: &[u8], to: Option<&[u8]>) -> Result<()> {
    send_rights(fd, data, to, &[])
}

/// Like [`send`], with descriptors `fds` passed along the first bytes
/// (SCM_RIGHTS), to `to` if given.
pub fn send_rights(fd: RawFd, data: &[u8], to: Option<&[u8]>, fds: &[RawFd]) -> Result<()> {
    if fds.is_empty() {
        return send_plain(fd, data, to);
    }
    let name = to.map(addr).transpose()?;
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    // SAFETY: CMSG_SPACE only computes a size.
    let space = unsafe { libc::CMSG_SPACE(std::mem::size_of_val(fds) as u32) } as usize;
    let mut ctl = vec![0u64; space.div_ceil(8)];
    // SAFETY: msghdr is plain old data; all zeros is valid.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = ctl.as_mut_ptr().cast();
    msg.msg_controllen = space;
    if let Some((a, len)) = &name {
        msg.msg_name = (a as *const libc::sockaddr_un) as *mut libc::c_void;
        msg.msg_namelen = *len;
    }
    // SAFETY: the control buffer has room for one SCM_RIGHTS header and
    // `fds`; CMSG_FIRSTHDR/DATA point inside it.
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(std::mem::size_of_val(fds) as u32) as usize;
        std::ptr::copy_nonoverlapping(
            fds.as_ptr().cast::<u8>(),
            libc::CMSG_DATA(c),
            std::mem::size_of_val(fds),
        );
    }
    // SAFETY: every pointer in `msg` refers to live buffers of the given
    // lengths.
    let n = unsafe { libc::sendmsg(fd, &msg, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) };
    if n < 0 {
        return Err(SysError::last(
            "sendmsg(SCM_RIGHTS)",
            format!("{} bytes and {} fds on fd {fd}", data.len(), fds.len()),
        ));
    }
    if (n as usize) < data.len() {
        return send_plain(fd, &data[n as usize..], to);
    }
    Ok(())
}

fn send_plain(fd: RawFd, data: &[u8], to: Option<&[u8]>) -> Result<()> {
    let mut done = 0;
    loop {
        let rest = &data[done..];
        let n = match to {
            Some(name) => {
                let (a, len) = addr(name)?;
                // SAFETY: `rest` and `a` are valid for the call.
                unsafe {
                    libc::sendto(
                        fd,
                        rest.as_ptr().cast(),
                        rest.len(),
                        libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                        (&a as *const libc::sockaddr_un).cast(),
                        len,
                    )
                }
            }
            // SAFETY: `rest` is valid for reads of its length.
            None => unsafe {
                libc::send(
                    fd,
                    rest.as_ptr().cast(),
                    rest.len(),
                    libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                )
            },
        };
        if n < 0 {
            return Err(SysError::last(
                "send",
                format!("{} bytes on fd {fd}", rest.len()),
            ));
        }
        done += n as usize;
        if done >= data.len() {
            return Ok(());
        }
    }
}

/// One message (or, on a stream, one run of bytes) of a receive queue,
/// with the descriptors in flight with it: peeking installed copies of
/// them in our own table.
#[derive(Debug)]
pub struct Peeked {
    pub data: Vec<u8>,
    pub fds: Vec<OwnedFd>,
}

/// Copies the receive queue of `fd` without consuming it: for a stream
/// socket the bytes as one chunk, else each message. Uses SO_PEEK_OFF,
/// restored to its old value (`-1`, off, unless the owner uses it)
/// before returning. `limit` bounds the bytes read.
pub fn peek_queue(fd: RawFd, stream: bool, limit: usize) -> Result<Vec<Peeked>> {
    let old = get_int(fd, libc::SOL_SOCKET, libc::SO_PEEK_OFF)?;
    set_int(fd, libc::SOL_SOCKET, libc::SO_PEEK_OFF, 0)?;
    let r = peek_all(fd, stream, limit);
    let back = set_int(fd, libc::SOL_SOCKET, libc::SO_PEEK_OFF, old);
    let out = r?;
    back?;
    Ok(out)
}

fn peek_all(fd: RawFd, stream: bool, limit: usize) -> Result<Vec<Peeked>> {
    let mut out: Vec<Peeked> = Vec::new();
    let mut total = 0usize;
    let mut buf = vec![0u8; 256 * 1024];
    // Room for a few SCM_RIGHTS descriptors and credentials.
    let mut ctl = [0u64; 64];
    loop {
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: msghdr is plain old data; all zeros is valid.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = ctl.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&ctl);
        // SAFETY: every pointer in `msg` refers to live buffers of the
        // given lengths.
        let n = unsafe {
            libc::recvmsg(
                fd,
                &mut msg,
                libc::MSG_PEEK | libc::MSG_DONTWAIT | libc::MSG_CMSG_CLOEXEC | libc::MSG_TRUNC,
            )
        };
        if n < 0 {
            let e = crate::errno();
            if e == libc::EAGAIN || e == libc::EWOULDBLOCK {
                return Ok(out);
            }
            return Err(SysError::last("recvmsg(MSG_PEEK)", format!("fd {fd}")));
        }
        let fds = rights_in(&msg);
        if msg.msg_flags & libc::MSG_CTRUNC != 0 {
            return Err(SysError::Call {
                call: "recvmsg(MSG_PEEK)",
                what: format!("fd {fd}: a message carries more descriptors than stasis reads"),
                errno: libc::EMSGSIZE,
            });
        }
        let n = n as usize;
        if n > buf.len() {
            // A datagram larger than the buffer: start again with room.
            buf.resize(n, 0);
            set_int(fd, libc::SOL_SOCKET, libc::SO_PEEK_OFF, 0)?;
            out.clear();
            total = 0;
            continue;
        }
        if n == 0 {
            // Stream: the end. Seqpacket: the end of file after the peer
            // closed, or a zero-length record, which peeking cannot get
            // past (the peek offset stays): whatever follows it would be
            // lost, so bytes left unpeeked are an error. (A datagram
            // socket's zero-length datagram ends the copy the same way.)
            if !stream {
                let left = crate::util::fionread(fd)?;
                if left as usize > total {
                    return Err(SysError::Call {
                        call: "recvmsg(MSG_PEEK)",
                        what: format!(
                            "fd {fd}: a zero-length message is queued before other messages"
                        ),
                        errno: libc::ENOTSUP,
                    });
                }
            }
            return Ok(out);
        }
        total += n;
        if total > limit {
            return Err(SysError::Call {
                call: "recvmsg(MSG_PEEK)",
                what: format!("fd {fd}: more than {limit} bytes queued"),
                errno: libc::EFBIG,
            });
        }
        // On a stream, bytes run together, except where descriptors came
        // with them: they go back with the bytes of that read. (Where in
        // those bytes they were sent cannot be seen: a peek that reaches
        // plain bytes followed by bytes with descriptors reports the
        // descriptors with all of them, however short it is.)
        let joins =
            stream && fds.is_empty() && out.last().is_some_and(|p: &Peeked| p.fds.is_empty());
        match out.last_mut() {
            Some(last) if joins => last.data.extend_from_slice(&buf[..n]),
            _ => out.push(Peeked {
                data: buf[..n].to_vec(),
                fds,
            }),
        }
    }
}

/// The descriptors an SCM_RIGHTS message brought into our table.
fn rights_in(msg: &libc::msghdr) -> Vec<OwnedFd> {
    let mut out = Vec::new();
    // SAFETY: CMSG_* walk the control buffer the kernel filled, within
    // msg_controllen; each descriptor in it was just installed in our
    // table for us and is owned by nobody else.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(c) as *const RawFd;
                let n = ((*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize) / 4;
                for i in 0..n {
                    out.push(OwnedFd::from_raw_fd(data.add(i).read_unaligned()));
                }
            }
            c = libc::CMSG_NXTHDR(msg, c);
        }
    }
    out
}

//! Small process-local syscalls that std and nix do not cover in the form
//! stasis needs. Each is a thin wrapper named after its man page.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use crate::error::{Result, SysError};

fn check(r: libc::c_long, call: &'static str, what: impl Into<String>) -> Result<libc::c_long> {
    if r < 0 {
        Err(SysError::last(call, what))
    } else {
        Ok(r)
    }
}

/// getrlimit(2): (soft, hard).
pub fn getrlimit(resource: u32) -> Result<(u64, u64)> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one struct rlimit into `r`.
    let rc = unsafe { libc::getrlimit(resource as _, &mut r) };
    check(rc as _, "getrlimit", format!("resource {resource}"))?;
    Ok((r.rlim_cur, r.rlim_max))
}

/// setrlimit(2) on ourselves.
pub fn setrlimit(resource: u32, soft: u64, hard: u64) -> Result<()> {
    let r = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: setrlimit reads one struct rlimit.
    let rc = unsafe { libc::setrlimit(resource as _, &r) };
    check(rc as _, "setrlimit", format!("resource {resource}")).map(drop)
}

/// umask(2).
pub fn umask(mask: u32) {
    // SAFETY: umask only changes this process's file creation mask.
    unsafe { libc::umask(mask as libc::mode_t) };
}

/// personality(2).
pub fn personality(p: u32) -> Result<()> {
    // SAFETY: changes only this process's execution domain.
    let rc = unsafe { libc::personality(p as libc::c_ulong) };
    check(rc as _, "personality", format!("{p:#x}")).map(drop)
}

/// The page frame number of the shared zero page, from our own pagemap.
pub fn zero_pfn() -> Option<u64> {
    use std::os::unix::fs::FileExt;
    // SAFETY: a private anonymous page of our own, unmapped below.
    let addr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if addr == libc::MAP_FAILED {
        return None;
    }
    // SAFETY: the page is mapped readable; reading maps the zero page.
    let _ = unsafe { std::ptr::read_volatile(addr as *const u8) };
    let mut e = [0u8; 8];
    let ok = std::fs::File::open("/proc/self/pagemap")
        .and_then(|f| f.read_exact_at(&mut e, addr as u64 / 4096 * 8));
    // SAFETY: unmapping the page mapped above.
    unsafe { libc::munmap(addr, 4096) };
    ok.ok()?;
    let v = u64::from_le_bytes(e);
    let present = v >> 63 & 1 == 1;
    let pfn = v & ((1 << 55) - 1);
    (present && pfn != 0).then_some(pfn)
}

/// lseek(2) with SEEK_DATA / SEEK_HOLE; None when there is no more data.
pub fn seek_data(fd: BorrowedFd<'_>, off: u64, hole: bool) -> Option<u64> {
    let whence = if hole {
        libc::SEEK_HOLE
    } else {
        libc::SEEK_DATA
    };
    // SAFETY: lseek on a borrowed, open descriptor.
    let r = unsafe { libc::lseek(fd.as_raw_fd(), off as i64, whence) };
    (r >= 0).then_some(r as u64)
}

/// close_range(2) from `lo` to `hi` inclusive.
pub fn close_range(lo: u32, hi: u32) -> Result<()> {
    // SAFETY: closing descriptors of our own; callers make sure nothing
    // in the range is still owned by a Rust object that will close it.
    let r = unsafe { libc::syscall(libc::SYS_close_range, lo, hi, 0) };
    check(r, "close_range", format!("{lo}..={hi}")).map(drop)
}

/// dup3(2) onto an exact number, with or without O_CLOEXEC. The new
/// descriptor is not owned by any Rust object.
pub fn dup_to(fd: RawFd, to: RawFd, cloexec: bool) -> Result<()> {
    if fd == to {
        return set_cloexec(to, cloexec);
    }
    let flags = if cloexec { libc::O_CLOEXEC } else { 0 };
    // SAFETY: dup3 on descriptors of our own.
    let r = unsafe { libc::dup3(fd, to, flags) };
    check(r as _, "dup3", format!("fd {fd} to {to}")).map(drop)
}

/// Sets or clears FD_CLOEXEC.
pub fn set_cloexec(fd: RawFd, on: bool) -> Result<()> {
    let v = if on { libc::FD_CLOEXEC } else { 0 };
    // SAFETY: fcntl on a descriptor of our own.
    let r = unsafe { libc::fcntl(fd, libc::F_SETFD, v) };
    check(r as _, "fcntl(F_SETFD)", format!("fd {fd}")).map(drop)
}

/// ioctl(FIONREAD): bytes ready to read.
pub fn fionread(fd: RawFd) -> Result<i32> {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int into `n`.
    let r = unsafe { libc::ioctl(fd, libc::FIONREAD, &mut n as *mut libc::c_int) };
    check(r as _, "ioctl(FIONREAD)", format!("fd {fd}"))?;
    Ok(n)
}

/// fcntl(F_GETFL).
pub fn status_flags(fd: RawFd) -> Result<i32> {
    // SAFETY: fcntl on a descriptor of our own.
    let r = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    check(r as _, "fcntl(F_GETFL)", format!("fd {fd}")).map(|r| r as i32)
}

/// fcntl(F_SETFL).
pub fn set_status_flags(fd: RawFd, flags: i32) -> Result<()> {
    // SAFETY: fcntl on a descriptor of our own.
    let r = unsafe { libc::fcntl(fd, libc::F_SETFL, flags) };
    check(r as _, "fcntl(F_SETFL)", format!("fd {fd}")).map(drop)
}

/// fcntl(F_DUPFD) to the lowest free number >= `min`.
pub fn dup_above(fd: RawFd, min: RawFd) -> Result<RawFd> {
    // SAFETY: fcntl on a descriptor of our own.
    let r = unsafe { libc::fcntl(fd, libc::F_DUPFD, min) };
    check(r as _, "fcntl(F_DUPFD)", format!("fd {fd}")).map(|r| r as RawFd)
}

/// lseek(2) SEEK_SET on a raw descriptor.
pub fn seek_to(fd: RawFd, pos: u64) -> Result<()> {
    // SAFETY: lseek on a descriptor of our own.
    let r = unsafe { libc::lseek(fd, pos as i64, libc::SEEK_SET) };
    check(r as _, "lseek", format!("fd {fd}")).map(drop)
}

/// open(2) returning a raw number that the caller manages (used in the
/// restore child, where descriptors are moved to exact numbers).
pub fn open_raw(path: &str, flags: i32) -> Result<RawFd> {
    let c = std::ffi::CString::new(path).map_err(|_| SysError::Call {
        call: "open",
        what: path.into(),
        errno: libc::EINVAL,
    })?;
    // SAFETY: `c` is a valid NUL-terminated path.
    let r = unsafe { libc::open(c.as_ptr(), flags, 0o600) };
    check(r as _, "open", path.to_string()).map(|r| r as RawFd)
}

/// close(2) of a raw number the caller manages.
pub fn close_raw(fd: RawFd) {
    // SAFETY: the caller owns `fd` and does not use it afterwards.
    unsafe { libc::close(fd) };
}

/// pipe2(2), as raw numbers the caller manages: (read, write).
pub fn pipe_raw() -> Result<(RawFd, RawFd)> {
    let mut p = [0; 2];
    // SAFETY: pipe2 writes two descriptors into `p`.
    let r = unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC) };
    check(r as _, "pipe2", "new pipe")?;
    Ok((p[0], p[1]))
}

/// pipe2(2) returning owned ends: (read, write).
pub fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    let (r, w) = pipe_raw()?;
    // SAFETY: both descriptors were just created and are owned by nobody.
    Ok(unsafe { (OwnedFd::from_raw_fd(r), OwnedFd::from_raw_fd(w)) })
}

/// F_GETPIPE_SZ.
pub fn pipe_size(fd: RawFd) -> Result<u32> {
    // SAFETY: fcntl on a descriptor of ours.
    let r = unsafe { libc::fcntl(fd, libc::F_GETPIPE_SZ) };
    check(r as _, "fcntl(F_GETPIPE_SZ)", format!("fd {fd}")).map(|r| r as u32)
}

/// F_SETPIPE_SZ.
pub fn set_pipe_size(fd: RawFd, size: u32) -> Result<()> {
    // SAFETY: fcntl on a descriptor of ours.
    let r = unsafe { libc::fcntl(fd, libc::F_SETPIPE_SZ, size as libc::c_int) };
    check(r as _, "fcntl(F_SETPIPE_SZ)", format!("fd {fd} to {size}")).map(drop)
}

/// tee(2) without blocking: copies up to `len` bytes from pipe `from` to
/// pipe `to` without consuming them. Returns 0 when `from` is empty.
pub fn tee(from: RawFd, to: RawFd, len: usize) -> Result<usize> {
    // SAFETY: tee on two pipe descriptors of ours.
    let r = unsafe { libc::tee(from, to, len, libc::SPLICE_F_NONBLOCK) };
    if r < 0 && crate::errno() == libc::EAGAIN {
        return Ok(0);
    }
    check(r as _, "tee", format!("fd {from} to {to}")).map(|r| r as usize)
}

/// write(2) of all of `data` to a raw descriptor.
pub fn write_all_raw(fd: RawFd, mut data: &[u8]) -> Result<()> {
    while !data.is_empty() {
        // SAFETY: `data` is valid for reads of its length.
        let r = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
        if r < 0 && crate::errno() == libc::EINTR {
            continue;
        }
        check(r as _, "write", format!("fd {fd}"))?;
        data = &data[r as usize..];
    }
    Ok(())
}

/// read(2) into `buf` from a raw descriptor; returns bytes read.
pub fn read_raw(fd: RawFd, buf: &mut [u8]) -> Result<usize> {
    // SAFETY: `buf` is valid for writes of its length.
    let r = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    check(r as _, "read", format!("fd {fd}")).map(|r| r as usize)
}

/// poll(2) for `fd` to become readable (or hung up) within `limit`;
/// false on timeout.
pub fn wait_readable(fd: RawFd, limit: std::time::Duration) -> Result<bool> {
    let deadline = std::time::Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: `p` is one valid pollfd for the duration of the call.
        let r = unsafe { libc::poll(&mut p, 1, left.as_millis().min(i32::MAX as u128) as i32) };
        if r < 0 && crate::errno() == libc::EINTR {
            continue;
        }
        return check(r as _, "poll", format!("fd {fd}")).map(|r| r > 0);
    }
}

/// setsid(2).
pub fn setsid() -> Result<()> {
    // SAFETY: no arguments; affects only the caller.
    let r = unsafe { libc::setsid() };
    check(r as _, "setsid", "self").map(drop)
}

/// setpgid(0, 0): become a process-group leader.
pub fn setpgid_self() -> Result<()> {
    // SAFETY: integer arguments only.
    let r = unsafe { libc::setpgid(0, 0) };
    check(r as _, "setpgid", "self").map(drop)
}

/// kill(2).
pub fn kill(pid: i32, sig: i32) -> Result<()> {
    // SAFETY: integer arguments only.
    let r = unsafe { libc::kill(pid, sig) };
    check(r as _, "kill", format!("pid {pid}")).map(drop)
}

/// Blocks every signal in the calling thread, glibc's internal ones (32
/// and 33, which its sigprocmask leaves out) included: a POSIX timer made
/// with SIGEV_THREAD fires signal 32 at its helper thread.
pub fn block_all_signals() {
    let all: u64 = !0;
    // SAFETY: `all` is a valid 8-byte signal set that outlives the call;
    // the old-set pointer is NULL; 8 is the kernel's sigset size.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &all as *const u64,
            std::ptr::null_mut::<u64>(),
            8usize,
        )
    };
}

/// prctl(PR_SET_PDEATHSIG).
pub fn set_pdeathsig(sig: i32) {
    // SAFETY: integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong, 0, 0, 0) };
}

/// prctl(PR_SET_CHILD_SUBREAPER).
pub fn set_child_subreaper(on: bool) {
    // SAFETY: integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, on as libc::c_ulong, 0, 0, 0) };
}

/// raise(SIGSTOP): stop ourselves for the tracer.
pub fn stop_self() {
    // SAFETY: integer argument only.
    unsafe { libc::raise(libc::SIGSTOP) };
}

/// _exit(2): leave at once, running no destructors (after a fork).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and touches no Rust state.
    unsafe { libc::_exit(code) }
}

/// chdir(2).
pub fn chdir(path: &str) -> Result<()> {
    nix::unistd::chdir(path).map_err(|e| SysError::Call {
        call: "chdir",
        what: path.into(),
        errno: e as i32,
    })
}

/// chroot(2).
pub fn chroot(path: &str) -> Result<()> {
    nix::unistd::chroot(path).map_err(|e| SysError::Call {
        call: "chroot",
        what: path.into(),
        errno: e as i32,
    })
}

/// mmap(2) of an anonymous read-write-execute area at exactly `addr`,
/// failing if anything is there (MAP_FIXED_NOREPLACE). Used for the
/// restore trampoline, whose code the restorer writes.
pub fn map_trampoline(addr: u64, len: u64, code: &[u8]) -> Result<()> {
    // SAFETY: MAP_FIXED_NOREPLACE never replaces an existing mapping, so
    // no Rust object loses its memory.
    let r = unsafe {
        libc::mmap(
            addr as *mut libc::c_void,
            len as usize,
            libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE,
            -1,
            0,
        )
    };
    if r == libc::MAP_FAILED || r as u64 != addr {
        return Err(SysError::last("mmap", format!("trampoline at {addr:#x}")));
    }
    // SAFETY: the area was just mapped writable and is `len` >= code.len()
    // bytes long; nothing else refers to it.
    unsafe { std::ptr::copy_nonoverlapping(code.as_ptr(), r as *mut u8, code.len()) };
    Ok(())
}

/// Maps fresh private anonymous memory at exactly `addr` (never over an
/// existing mapping), readable and writable. The caller owns the area and
/// fills it through raw addresses only.
pub fn map_anon_at(addr: u64, len: u64) -> Result<()> {
    // SAFETY: MAP_FIXED_NOREPLACE never replaces an existing mapping, so
    // no Rust object loses its memory.
    let r = unsafe {
        libc::mmap(
            addr as *mut libc::c_void,
            len as usize,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE,
            -1,
            0,
        )
    };
    if r == libc::MAP_FAILED || r as u64 != addr {
        return Err(SysError::last("mmap", format!("{len} bytes at {addr:#x}")));
    }
    Ok(())
}

/// munmap(2) of an area mapped by [`map_anon_at`].
pub fn unmap(addr: u64, len: u64) {
    // SAFETY: the caller mapped the area itself and no Rust object lives
    // in it.
    unsafe { libc::munmap(addr as *mut libc::c_void, len as usize) };
}

/// Reads `len` bytes at `offset` of `fd` into raw memory at `addr`, an
/// area the caller mapped with [`map_anon_at`].
pub fn pread_into(fd: RawFd, addr: u64, len: u64, offset: u64) -> Result<()> {
    let mut done = 0u64;
    while done < len {
        // SAFETY: [addr, addr + len) is a writable mapping the caller owns
        // and no Rust object lives in.
        let n = unsafe {
            libc::pread(
                fd,
                (addr + done) as *mut libc::c_void,
                (len - done).min(1 << 30) as usize,
                (offset + done) as i64,
            )
        };
        if n <= 0 {
            let what = format!("fd {fd} at {}", offset + done);
            return Err(if n == 0 {
                SysError::Call {
                    call: "pread",
                    what,
                    errno: libc::EIO,
                }
            } else {
                SysError::last("pread", what)
            });
        }
        done += n as u64;
    }
    Ok(())
}

/// isatty(3).
pub fn isatty(fd: RawFd) -> bool {
    // SAFETY: integer argument only.
    unsafe { libc::isatty(fd) == 1 }
}

/// waitpid(pid, 0) for a child's exit status: Ok(code) or Ok(128+signal).
pub fn wait_exit(pid: i32) -> Result<i32> {
    loop {
        let mut status = 0;
        // SAFETY: `status` is a valid out-pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r < 0 {
            if crate::errno() == libc::EINTR {
                continue;
            }
            return Err(SysError::last("waitpid", format!("pid {pid}")));
        }
        if libc::WIFEXITED(status) {
            return Ok(libc::WEXITSTATUS(status));
        }
        if libc::WIFSIGNALED(status) {
            return Ok(128 + libc::WTERMSIG(status));
        }
    }
}

/// Sets every signal's disposition to SIG_DFL with no flags, so nothing
/// of the caller's handlers survives into a restored process.
pub fn reset_signal_dispositions() {
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // The kernel's struct sigaction: handler, flags, restorer, mask.
        // Raw rt_sigaction, because glibc's wrapper refuses its internal
        // signals 32 and 33.
        let sa = [0u64; 4];
        // SAFETY: `sa` is SIG_DFL with no flags and an empty mask; the
        // kernel only reads it. Invalid numbers fail harmlessly.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                sa.as_ptr(),
                std::ptr::null_mut::<u64>(),
                8,
            );
        }
    }
}

/// kcmp(2) KCMP_FILE: whether fd `a` of `pid1` and fd `b` of `pid2` are the
/// same open file description.
pub fn same_file(pid1: i32, a: i32, pid2: i32, b: i32) -> Result<bool> {
    const KCMP_FILE: i32 = 0;
    // SAFETY: integer arguments only.
    let r = unsafe { libc::syscall(libc::SYS_kcmp, pid1, pid2, KCMP_FILE, a, b) };
    check(r, "kcmp", format!("pid {pid1} fd {a} / pid {pid2} fd {b}")).map(|r| r == 0)
}

/// kcmp(2) KCMP_EPOLL_TFD: whether fd `fd` of `pid` is the file that the
/// `toff`-th registration under fd number `tfd` of epoll `epfd` (also of
/// `pid`) watches.
pub fn epoll_target_is(pid: i32, epfd: i32, tfd: i32, toff: u32, fd: i32) -> Result<bool> {
    const KCMP_EPOLL_TFD: i32 = 7;
    let slot: [u32; 3] = [epfd as u32, tfd as u32, toff];
    // SAFETY: the kernel reads one struct kcmp_epoll_slot (three u32s).
    let r = unsafe { libc::syscall(libc::SYS_kcmp, pid, pid, KCMP_EPOLL_TFD, fd, slot.as_ptr()) };
    check(
        r,
        "kcmp(KCMP_EPOLL_TFD)",
        format!("pid {pid} epoll {epfd} tfd {tfd}"),
    )
    .map(|r| r == 0)
}

/// kcmp(2) types.
pub const KCMP_VM: i32 = 1;
pub const KCMP_FILES: i32 = 2;
pub const KCMP_FS: i32 = 3;

/// kcmp(2): whether processes `a` and `b` share the resource `kind`
/// (KCMP_VM, KCMP_FILES, KCMP_FS).
pub fn kcmp_same(a: i32, b: i32, kind: i32) -> Result<bool> {
    // SAFETY: integer arguments only.
    let r = unsafe { libc::syscall(libc::SYS_kcmp, a, b, kind, 0, 0) };
    check(r, "kcmp", format!("pid {a} / pid {b}")).map(|r| r == 0)
}

/// Makes a shared anonymous memory object of `size` bytes (what
/// mmap(MAP_SHARED|MAP_ANONYMOUS) creates), lets `fill` write its initial
/// contents, and returns a descriptor of it from /proc/self/map_files.
/// Mappings of that descriptor are the same object, shown in maps as
/// `/dev/zero (deleted)` like the original.
pub fn shmem_object(
    size: u64,
    fill: &mut dyn FnMut(&mut [u8]) -> std::io::Result<()>,
) -> Result<OwnedFd> {
    // SAFETY: a fresh mapping chosen by the kernel; nothing else uses it.
    let at = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            size as usize,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if at == libc::MAP_FAILED {
        return Err(SysError::last(
            "mmap",
            format!("shared memory of {size} bytes"),
        ));
    }
    // SAFETY: the mapping is `size` bytes, readable and writable, and only
    // this slice refers to it until the munmap below.
    let mem = unsafe { std::slice::from_raw_parts_mut(at as *mut u8, size as usize) };
    let filled = fill(mem).map_err(|e| SysError::Call {
        call: "fill",
        what: format!("shared memory of {size} bytes"),
        errno: e.raw_os_error().unwrap_or(libc::EIO),
    });
    let path = format!(
        "/proc/self/map_files/{:x}-{:x}",
        at as u64,
        at as u64 + size
    );
    let fd = filled.and_then(|()| {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map(OwnedFd::from)
            .map_err(|e| SysError::Call {
                call: "open",
                what: path.clone(),
                errno: e.raw_os_error().unwrap_or(libc::EIO),
            })
    });
    // SAFETY: unmaps exactly the mapping made above; `mem` is not used
    // after this point.
    unsafe { libc::munmap(at, size as usize) };
    fd
}

/// The highest descriptor number open in this process, or -1.
pub fn highest_fd() -> RawFd {
    std::fs::read_dir("/proc/self/fd")
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<RawFd>().ok())
                .max()
                .unwrap_or(-1)
        })
        .unwrap_or(-1)
}

/// Moves descriptor `fd` to number `to` (dup3 + close), without O_CLOEXEC.
pub fn move_fd(fd: RawFd, to: RawFd) -> Result<()> {
    dup_to(fd, to, false)?;
    if fd != to {
        close_raw(fd);
    }
    Ok(())
}

/// wait4(-1, __WALL): the next child to end, as (pid, raw status).
pub fn wait_any() -> Result<(i32, i32)> {
    loop {
        let mut st = 0;
        // SAFETY: `st` is a valid out-pointer.
        let r = unsafe { libc::waitpid(-1, &mut st, libc::__WALL) };
        if r < 0 && crate::errno() == libc::EINTR {
            continue;
        }
        return check(r as _, "waitpid", "any child").map(|r| (r as i32, st));
    }
}

/// Enters a new mount namespace (private propagation) and mounts a fresh
/// procfs on /proc there, for our PID namespace: what `unshare --pid
/// --fork --mount-proc` does.
pub fn mount_own_proc() -> Result<()> {
    // SAFETY: integer argument only.
    let r = unsafe { libc::unshare(libc::CLONE_NEWNS) };
    check(r as _, "unshare", "CLONE_NEWNS")?;
    // SAFETY: null-terminated static strings; no data argument.
    let r = unsafe {
        libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        )
    };
    check(r as _, "mount", "/ private")?;
    // SAFETY: as above.
    let r = unsafe {
        libc::mount(
            c"proc".as_ptr(),
            c"/proc".as_ptr(),
            c"proc".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            std::ptr::null(),
        )
    };
    check(r as _, "mount", "proc on /proc").map(drop)
}

/// ioctl(TIOCSCTTY) without stealing: makes terminal `fd` the controlling
/// terminal of our session (we must lead it and have none).
pub fn set_ctty(fd: RawFd) -> Result<()> {
    // SAFETY: integer arguments only.
    let r = unsafe { libc::ioctl(fd, libc::TIOCSCTTY, 0) };
    check(r as _, "ioctl(TIOCSCTTY)", format!("fd {fd}")).map(drop)
}

/// memfd_create(2) with MFD_CLOEXEC: an anonymous file named `name` (shown
/// as `/memfd:NAME` in maps).
pub fn memfd_create(name: &str) -> Result<OwnedFd> {
    let c = std::ffi::CString::new(name).map_err(|_| SysError::Call {
        call: "memfd_create",
        what: format!("name {name:?}"),
        errno: libc::EINVAL,
    })?;
    // SAFETY: `c` is a valid NUL-terminated string for the call.
    let fd = unsafe { libc::memfd_create(c.as_ptr(), libc::MFD_CLOEXEC) };
    check(fd as _, "memfd_create", name.to_string())?;
    // SAFETY: the descriptor was just created and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// prctl(PR_SET_NAME): the calling thread's name (comm), at most 15 bytes.
pub fn set_comm(name: &str) -> Result<()> {
    let c = std::ffi::CString::new(name).map_err(|_| SysError::Call {
        call: "prctl(PR_SET_NAME)",
        what: format!("name {name:?}"),
        errno: libc::EINVAL,
    })?;
    // SAFETY: PR_SET_NAME reads a NUL-terminated string that outlives the
    // call.
    let r = unsafe { libc::prctl(libc::PR_SET_NAME, c.as_ptr()) };
    check(r as _, "prctl(PR_SET_NAME)", name.to_string()).map(drop)
}

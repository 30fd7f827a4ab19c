//! Probes behind `stasis check`: each function really calls one kernel
//! interface stasis relies on, on ourselves or on a throwaway child, and
//! reports what the kernel said.
//!
//! Nothing here panics on a kernel answer: every failure comes back as a
//! [`ProbeError`] naming the call and the errno. Children are forked only
//! from here; after `fork`/`clone3` a child makes nothing but raw syscalls
//! and `_exit`s, so forking from a multi-threaded process (the test
//! harness, the CLI with its progress thread) is sound. Each child is
//! reaped by pid, never with `waitpid(-1)`, so other code's children are
//! left alone.

use std::fmt;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;

/// Why a probe failed: the call, and the errno where the kernel gave one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeError {
    pub call: &'static str,
    pub errno: Option<i32>,
    pub what: String,
}

impl ProbeError {
    fn last(call: &'static str) -> Self {
        Self::errno(call, crate::errno())
    }

    fn errno(call: &'static str, errno: i32) -> Self {
        // strerror's words, without io::Error's " (os error N)" suffix.
        let text = std::io::Error::from_raw_os_error(errno).to_string();
        let what = match text.rfind(" (os error ") {
            Some(i) => text[..i].to_string(),
            None => text,
        };
        ProbeError {
            call,
            errno: Some(errno),
            what,
        }
    }

    fn other(call: &'static str, what: impl Into<String>) -> Self {
        ProbeError {
            call,
            errno: None,
            what: what.into(),
        }
    }
}

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.call, self.what)
    }
}

impl std::error::Error for ProbeError {}

pub type Result<T> = std::result::Result<T, ProbeError>;

// ---------------------------------------------------------------------------
// Kernel constants (x86_64 UAPI), spelled out so we do not depend on which
// of them a given libc release exports.

const PTRACE_SEIZE: libc::c_uint = 0x4206;
const PTRACE_INTERRUPT: libc::c_uint = 0x4207;
const PTRACE_GETREGSET: libc::c_uint = 0x4204;
const PTRACE_GET_RSEQ_CONFIGURATION: libc::c_uint = 0x420f;
const PTRACE_EVENT_STOP: i32 = 128;
const NT_X86_XSTATE: usize = 0x202;

const PR_SET_MM: libc::c_int = 35;
const PR_SET_MM_BRK: libc::c_ulong = 7;
const PR_SET_MM_MAP_SIZE: libc::c_ulong = 15;
const PR_TIMER_CREATE_RESTORE_IDS: libc::c_int = 77;
const PR_TIMER_CREATE_RESTORE_IDS_ON: libc::c_ulong = 1;
const PR_TIMER_CREATE_RESTORE_IDS_GET: libc::c_ulong = 2;

const ARCH_MAP_VDSO_64: libc::c_int = 0x2003;

const UFFD_USER_MODE_ONLY: libc::c_int = 1;
const UFFD_API: u64 = 0xAA;
/// `_IOWR(0xAA, 0x3F, struct uffdio_api)`.
const UFFDIO_API: libc::c_ulong = 0xC018_AA3F;
/// `_IOWR(0xAA, 0x00, struct uffdio_register)`.
const UFFDIO_REGISTER: libc::c_ulong = 0xC020_AA00;
const UFFDIO_REGISTER_MODE_WP: u64 = 1 << 1;

/// Every userfaultfd feature bit the kernel may report, by name.
pub const UFFD_FEATURES: [(u64, &str); 17] = [
    (1 << 0, "PAGEFAULT_FLAG_WP"),
    (1 << 1, "EVENT_FORK"),
    (1 << 2, "EVENT_REMAP"),
    (1 << 3, "EVENT_REMOVE"),
    (1 << 4, "MISSING_HUGETLBFS"),
    (1 << 5, "MISSING_SHMEM"),
    (1 << 6, "EVENT_UNMAP"),
    (1 << 7, "SIGBUS"),
    (1 << 8, "THREAD_ID"),
    (1 << 9, "MINOR_HUGETLBFS"),
    (1 << 10, "MINOR_SHMEM"),
    (1 << 11, "EXACT_ADDRESS"),
    (1 << 12, "WP_HUGETLBFS_SHMEM"),
    (1 << 13, "WP_UNPOPULATED"),
    (1 << 14, "POISON"),
    (1 << 15, "WP_ASYNC"),
    (1 << 16, "MOVE"),
];
pub const UFFD_FEATURE_WP_UNPOPULATED: u64 = 1 << 13;
pub const UFFD_FEATURE_WP_ASYNC: u64 = 1 << 15;

/// `_IOWR('f', 16, struct pm_scan_arg)`.
const PAGEMAP_SCAN: libc::c_ulong = 0xC060_6610;
const PM_SCAN_WP_MATCHING: u64 = 1 << 0;
const PM_SCAN_CHECK_WPASYNC: u64 = 1 << 1;
pub const PAGE_IS_WRITTEN: u64 = 1 << 1;
pub const PAGE_IS_PRESENT: u64 = 1 << 3;

const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

// ---------------------------------------------------------------------------
// Small helpers.

fn page_size() -> usize {
    // SAFETY: sysconf only reads a constant of the running system.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 {
        n as usize
    } else {
        4096
    }
}

fn getpid() -> i32 {
    // SAFETY: getpid has no preconditions.
    unsafe { libc::getpid() }
}

/// Turns a NUL-terminated `c_char` array into a String.
fn cstr_field(field: &[libc::c_char]) -> String {
    let bytes: Vec<u8> = field
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Waits for `pid` (our child, by pid only) to end; returns the raw status.
fn reap(pid: i32) -> Result<i32> {
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes one int into `status`.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::__WALL) };
        if r == pid {
            if libc::WIFEXITED(status) || libc::WIFSIGNALED(status) {
                return Ok(status);
            }
            // A ptrace stop reported on the way out: keep waiting.
            continue;
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        return Err(ProbeError::last("waitpid"));
    }
}

/// Kills and reaps a child when dropped, so no probe leaves one behind.
struct Child(i32);

impl Drop for Child {
    fn drop(&mut self) {
        // SAFETY: `self.0` is a child we forked and have not reaped yet, so
        // the pid cannot have been reused for another process.
        unsafe { libc::kill(self.0, libc::SIGKILL) };
        let _ = reap(self.0);
    }
}

/// Runs `f` in a forked child and returns its exit code. `f` must only
/// make raw syscalls (no allocation, no locks): it runs after fork in a
/// possibly multi-threaded process. Its return value is the exit code.
fn in_child(f: fn() -> i32) -> Result<i32> {
    // SAFETY: the child runs only `f`, which by this function's contract
    // makes only async-signal-safe raw syscalls, then `_exit`s without
    // running destructors or atexit handlers.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(ProbeError::last("fork"));
    }
    if pid == 0 {
        let code = f();
        // SAFETY: ends the child at once, as the contract above requires.
        unsafe { libc::_exit(code & 0xff) };
    }
    let status = reap(pid)?;
    if libc::WIFEXITED(status) {
        Ok(libc::WEXITSTATUS(status))
    } else {
        Err(ProbeError::other(
            "fork",
            format!("probe child killed by signal {}", libc::WTERMSIG(status)),
        ))
    }
}

/// The errno of the last call, for use inside a forked child (no alloc).
fn child_errno() -> i32 {
    // SAFETY: __errno_location returns this thread's errno slot.
    unsafe { *libc::__errno_location() }
}

/// An anonymous private mapping of our own, unmapped on drop.
struct Anon {
    addr: *mut u8,
    len: usize,
}

impl Anon {
    fn new(pages: usize) -> Result<Anon> {
        let len = pages * page_size();
        // SAFETY: a fresh private anonymous mapping at an address the kernel
        // picks; it overlaps nothing of ours.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(ProbeError::last("mmap"));
        }
        // No (m)THP: a fault must populate exactly the page touched.
        // SAFETY: advice on the mapping we just made; it changes no data.
        unsafe { libc::madvise(addr, len, libc::MADV_NOHUGEPAGE) };
        Ok(Anon {
            addr: addr.cast(),
            len,
        })
    }

    fn start(&self) -> u64 {
        self.addr as u64
    }

    /// Writes one byte into page `i`, faulting it in.
    fn touch(&self, i: usize) {
        assert!(i * page_size() < self.len);
        // SAFETY: the offset is inside the mapping (checked above), which is
        // readable and writable and owned by this struct.
        unsafe { std::ptr::write_volatile(self.addr.add(i * page_size()), 0x5a) };
    }
}

impl Drop for Anon {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `new`; no reference into
        // it outlives `self`.
        unsafe { libc::munmap(self.addr.cast(), self.len) };
    }
}

// ---------------------------------------------------------------------------
// Identity.

/// What uname(2) says.
#[derive(Debug, Clone)]
pub struct Uname {
    pub sysname: String,
    pub release: String,
    pub version: String,
    pub machine: String,
}

/// uname(2).
pub fn uname() -> Result<Uname> {
    // SAFETY: utsname is arrays of c_char, for which all-zero is valid.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: uname fills the struct we pass.
    if unsafe { libc::uname(&mut u) } < 0 {
        return Err(ProbeError::last("uname"));
    }
    Ok(Uname {
        sysname: cstr_field(&u.sysname),
        release: cstr_field(&u.release),
        version: cstr_field(&u.version),
        machine: cstr_field(&u.machine),
    })
}

/// Our effective uid.
pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() }
}

/// Our effective capability set from capget(2), as a 64-bit mask
/// (bit N = capability N).
pub fn effective_caps() -> Result<u64> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let mut hdr = Header {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: version 3 capget writes two `Data` structs, which is what
    // `data` holds, and reads the header.
    let r = unsafe { libc::syscall(libc::SYS_capget, &mut hdr, data.as_mut_ptr()) };
    if r < 0 {
        return Err(ProbeError::last("capget"));
    }
    Ok(u64::from(data[0].effective) | (u64::from(data[1].effective) << 32))
}

// ---------------------------------------------------------------------------
// ptrace.

/// What the kernel reported about a seized child.
#[derive(Debug, Clone)]
pub struct PtraceReport {
    pub child: i32,
    /// rseq area address (0 when the child has none registered), its
    /// size, and the abort signature.
    pub rseq_abi_pointer: u64,
    pub rseq_abi_size: u32,
    pub rseq_signature: u32,
    /// Bytes of NT_X86_XSTATE (FPU/SSE/AVX/... state) for one thread.
    pub xstate_size: usize,
}

/// ptrace(2) with an integer `addr`.
///
/// # Safety
/// `data` must be null or point to memory valid for what `req` reads and
/// writes through it.
unsafe fn ptrace_call(
    req: libc::c_uint,
    pid: i32,
    addr: usize,
    data: *mut libc::c_void,
) -> libc::c_long {
    // SAFETY: the caller guarantees `data` fits `req`.
    unsafe { libc::ptrace(req, pid, addr as *mut libc::c_void, data) }
}

fn pause_forever() -> ! {
    // SAFETY: raw syscalls only; the child dies with its parent thread and
    // otherwise sleeps until SIGKILL.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
        loop {
            libc::pause();
        }
    }
}

/// Forks a child that sleeps, PTRACE_SEIZEs and PTRACE_INTERRUPTs it,
/// reads its rseq configuration and its NT_X86_XSTATE regset, then kills
/// and reaps it.
pub fn ptrace_child() -> Result<PtraceReport> {
    // SAFETY: the child only runs `pause_forever` (raw syscalls) and never
    // returns into our code.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(ProbeError::last("fork"));
    }
    if pid == 0 {
        pause_forever();
    }
    let child = Child(pid);

    // SAFETY: SEIZE with no options uses no data pointer.
    if unsafe { ptrace_call(PTRACE_SEIZE, pid, 0, std::ptr::null_mut()) } < 0 {
        return Err(ProbeError::last("PTRACE_SEIZE"));
    }
    // SAFETY: INTERRUPT uses no data pointer.
    if unsafe { ptrace_call(PTRACE_INTERRUPT, pid, 0, std::ptr::null_mut()) } < 0 {
        return Err(ProbeError::last("PTRACE_INTERRUPT"));
    }
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes one int into `status`.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::__WALL) };
        if r < 0 {
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(ProbeError::last("waitpid"));
        }
        if !libc::WIFSTOPPED(status) {
            return Err(ProbeError::other(
                "PTRACE_INTERRUPT",
                format!("child ended instead of stopping (status {status:#x})"),
            ));
        }
        if status >> 16 == PTRACE_EVENT_STOP {
            break;
        }
        // Some other stop (a stray signal): let it go, the interrupt
        // stays pending.
        // SAFETY: CONT with signal 0 uses no data pointer.
        unsafe { ptrace_call(libc::PTRACE_CONT, pid, 0, std::ptr::null_mut()) };
    }

    #[repr(C)]
    #[derive(Default)]
    struct RseqConf {
        rseq_abi_pointer: u64,
        rseq_abi_size: u32,
        signature: u32,
        flags: u32,
        pad: u32,
    }
    let mut rseq = RseqConf::default();
    // SAFETY: the kernel writes at most `addr` bytes (the struct's size)
    // into `rseq`.
    let r = unsafe {
        ptrace_call(
            PTRACE_GET_RSEQ_CONFIGURATION,
            pid,
            std::mem::size_of::<RseqConf>(),
            (&mut rseq as *mut RseqConf).cast(),
        )
    };
    if r < 0 {
        return Err(ProbeError::last("PTRACE_GET_RSEQ_CONFIGURATION"));
    }

    // Big enough for any xstate layout seen so far (AMX is ~11 KiB).
    let mut buf = vec![0u64; 64 * 1024 / 8];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len() * 8,
    };
    // SAFETY: GETREGSET writes at most `iov_len` bytes at `iov_base`
    // (inside `buf`) and updates `iov_len`.
    let r = unsafe {
        ptrace_call(
            PTRACE_GETREGSET,
            pid,
            NT_X86_XSTATE,
            (&mut iov as *mut libc::iovec).cast(),
        )
    };
    if r < 0 {
        return Err(ProbeError::last("PTRACE_GETREGSET NT_X86_XSTATE"));
    }

    drop(child);
    Ok(PtraceReport {
        child: pid,
        rseq_abi_pointer: rseq.rseq_abi_pointer,
        rseq_abi_size: rseq.rseq_abi_size,
        rseq_signature: rseq.signature,
        xstate_size: iov.iov_len,
    })
}

// ---------------------------------------------------------------------------
// clone3 with set_tid.

use crate::clone::CloneArgs;

/// Creates a child with clone3 whose pid is `pid` (set_tid); the child
/// exits at once and is reaped. Returns the pid the kernel gave it.
/// EEXIST means the pid was taken meanwhile.
pub fn clone3_set_tid(pid: i32) -> Result<i32> {
    let tids: [libc::pid_t; 1] = [pid];
    let args = CloneArgs {
        exit_signal: libc::SIGCHLD as u64,
        set_tid: tids.as_ptr() as u64,
        set_tid_size: 1,
        ..CloneArgs::default()
    };
    // SAFETY: a fork-like clone3 (no CLONE_VM, no new stack): the child gets
    // a copy of our memory and only calls `_exit` below. `args` and `tids`
    // outlive the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if r == 0 {
        // SAFETY: the child ends at once, touching nothing.
        unsafe { libc::_exit(0) };
    }
    if r < 0 {
        return Err(ProbeError::last("clone3"));
    }
    let got = r as i32;
    let status = reap(got)?;
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        return Err(ProbeError::other(
            "clone3",
            format!("child {got} ended with status {status:#x}"),
        ));
    }
    if got != pid {
        return Err(ProbeError::other(
            "clone3",
            format!("asked for pid {pid}, got {got}"),
        ));
    }
    Ok(got)
}

// ---------------------------------------------------------------------------
// pidfd, process_vm_readv.

/// pidfd_open on ourselves, then pidfd_getfd of one of our own pipe fds;
/// checks the copy is the same open file (same device and inode).
/// Returns the number of the fd pidfd_getfd made.
pub fn pidfd_getfd_self() -> Result<i32> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two fds into `fds`.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(ProbeError::last("pipe2"));
    }
    // SAFETY: both fds were just created and are owned by nothing else.
    let (rd, _wr) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };

    // SAFETY: pidfd_open takes a pid and flags, and returns a new fd.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, getpid(), 0) };
    if pidfd < 0 {
        return Err(ProbeError::last("pidfd_open"));
    }
    // SAFETY: a fresh fd that nothing else owns.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd as i32) };

    // SAFETY: pidfd_getfd takes two fds and flags, and returns a new fd.
    let got = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), rd.as_raw_fd(), 0) };
    if got < 0 {
        return Err(ProbeError::last("pidfd_getfd"));
    }
    // SAFETY: a fresh fd that nothing else owns.
    let got = unsafe { OwnedFd::from_raw_fd(got as i32) };
    let n = got.as_raw_fd();

    let a = File::from(rd)
        .metadata()
        .map_err(|e| ProbeError::other("fstat", e.to_string()))?;
    let b = File::from(got)
        .metadata()
        .map_err(|e| ProbeError::other("fstat", e.to_string()))?;
    if (a.dev(), a.ino()) != (b.dev(), b.ino()) {
        return Err(ProbeError::other(
            "pidfd_getfd",
            "the fd it returned is not the pipe it was asked for",
        ));
    }
    Ok(n)
}

/// process_vm_readv from our own pid: copies a patterned buffer and checks
/// the copy. Returns the bytes read.
pub fn process_vm_readv_self() -> Result<usize> {
    let src: Vec<u8> = (0..256 * 1024).map(|i| (i * 7 + 3) as u8).collect();
    let mut dst = vec![0u8; src.len()];
    let local = libc::iovec {
        iov_base: dst.as_mut_ptr().cast(),
        iov_len: dst.len(),
    };
    let remote = libc::iovec {
        iov_base: src.as_ptr() as *mut libc::c_void,
        iov_len: src.len(),
    };
    // SAFETY: `local` describes `dst`, which is writable and as long as the
    // iovec says; `remote` is only read (it names our own `src`).
    let n = unsafe { libc::process_vm_readv(getpid(), &local, 1, &remote, 1, 0) };
    if n < 0 {
        return Err(ProbeError::last("process_vm_readv"));
    }
    if n as usize != src.len() || dst != src {
        return Err(ProbeError::other(
            "process_vm_readv",
            format!("short or wrong copy: {n} of {} bytes", src.len()),
        ));
    }
    Ok(n as usize)
}

// ---------------------------------------------------------------------------
// prctl.

/// prctl(PR_SET_MM, PR_SET_MM_MAP_SIZE): the size of struct prctl_mm_map
/// the kernel expects (104 on x86_64). Errors when PR_SET_MM_MAP is absent.
pub fn mm_map_size() -> Result<u32> {
    let mut size: u32 = 0;
    // SAFETY: PR_SET_MM_MAP_SIZE writes one u32 at the address given.
    let r = unsafe {
        libc::prctl(
            PR_SET_MM,
            PR_SET_MM_MAP_SIZE,
            &mut size as *mut u32 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    if r < 0 {
        return Err(ProbeError::last("prctl(PR_SET_MM, PR_SET_MM_MAP_SIZE)"));
    }
    Ok(size)
}

fn set_mm_brk_child() -> i32 {
    // SAFETY: raw syscalls in a throwaway child: brk(0) reads the current
    // break, and setting mm->brk to that same value changes nothing.
    unsafe {
        let brk = libc::syscall(libc::SYS_brk, 0 as libc::c_ulong);
        let r = libc::prctl(
            PR_SET_MM,
            PR_SET_MM_BRK,
            brk as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        );
        if r < 0 {
            child_errno()
        } else {
            0
        }
    }
}

/// The errno of a single PR_SET_MM_BRK (0 if it worked), tried in a
/// throwaway child with the current break. The single PR_SET_MM_* calls
/// need CAP_SYS_RESOURCE; EPERM shows it is missing.
pub fn set_mm_single_errno() -> Result<i32> {
    in_child(set_mm_brk_child)
}

/// prctl(PR_TIMER_CREATE_RESTORE_IDS, GET) on ourselves: 0 or 1. EINVAL
/// means the kernel (before 6.15) lacks it.
pub fn timer_restore_ids_get() -> Result<i32> {
    // SAFETY: the GET form only reads a flag of this process.
    let r = unsafe {
        libc::prctl(
            PR_TIMER_CREATE_RESTORE_IDS,
            PR_TIMER_CREATE_RESTORE_IDS_GET,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    if r < 0 {
        return Err(ProbeError::last("prctl(PR_TIMER_CREATE_RESTORE_IDS)"));
    }
    Ok(r)
}

/// Timer id requested in [`timer_restore_child`].
pub const PROBE_TIMER_ID: i32 = 4321;

fn timer_restore_child() -> i32 {
    // SAFETY: raw syscalls in a throwaway child. timer_create writes one
    // int (the kernel's timer_t) into `id`; a null sigevent is allowed.
    unsafe {
        if libc::prctl(
            PR_TIMER_CREATE_RESTORE_IDS,
            PR_TIMER_CREATE_RESTORE_IDS_ON,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        ) < 0
        {
            return child_errno();
        }
        let mut id: i32 = PROBE_TIMER_ID;
        let r = libc::syscall(
            libc::SYS_timer_create,
            libc::CLOCK_MONOTONIC,
            std::ptr::null_mut::<libc::sigevent>(),
            &mut id as *mut i32,
        );
        if r < 0 {
            return child_errno();
        }
        if id == PROBE_TIMER_ID {
            0
        } else {
            200
        }
    }
}

/// In a throwaway child, turns PR_TIMER_CREATE_RESTORE_IDS on and creates
/// a POSIX timer asking for id [`PROBE_TIMER_ID`]. Ok(()) when the kernel
/// honoured the id.
pub fn timer_restore_ids_create() -> Result<()> {
    match in_child(timer_restore_child)? {
        0 => Ok(()),
        200 => Err(ProbeError::other(
            "timer_create",
            format!("asked for timer id {PROBE_TIMER_ID}, got another"),
        )),
        e => Err(ProbeError::errno("prctl/timer_create", e)),
    }
}

fn map_vdso_child() -> i32 {
    // SAFETY: raw syscall in a throwaway child. With the vDSO already mapped
    // the kernel refuses (EEXIST) before mapping anything; if it did map one,
    // only this child, which exits at once, would see it.
    let r = unsafe {
        libc::syscall(
            libc::SYS_arch_prctl,
            ARCH_MAP_VDSO_64,
            0x1000_0000 as libc::c_ulong,
        )
    };
    if r < 0 {
        child_errno()
    } else {
        0
    }
}

/// The errno of arch_prctl(ARCH_MAP_VDSO_64) in a child that still has its
/// vDSO: EEXIST means the call exists (and would work once the vDSO is
/// unmapped); EINVAL means the kernel lacks it.
pub fn map_vdso_errno() -> Result<i32> {
    in_child(map_vdso_child)
}

// ---------------------------------------------------------------------------
// userfaultfd and PAGEMAP_SCAN.

#[repr(C)]
#[derive(Default)]
struct UffdioApi {
    api: u64,
    features: u64,
    ioctls: u64,
}

#[repr(C)]
#[derive(Default)]
struct UffdioRegister {
    start: u64,
    len: u64,
    mode: u64,
    ioctls: u64,
}

#[repr(C)]
#[derive(Default)]
struct PmScanArg {
    size: u64,
    flags: u64,
    start: u64,
    end: u64,
    walk_end: u64,
    vec: u64,
    vec_len: u64,
    max_pages: u64,
    category_inverted: u64,
    category_mask: u64,
    category_anyof_mask: u64,
    return_mask: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
struct PageRegion {
    start: u64,
    end: u64,
    categories: u64,
}

fn userfaultfd() -> Result<OwnedFd> {
    // SAFETY: userfaultfd takes flags and returns a new fd.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_userfaultfd,
            libc::O_CLOEXEC | libc::O_NONBLOCK | UFFD_USER_MODE_ONLY,
        )
    };
    if fd < 0 {
        return Err(ProbeError::last("userfaultfd"));
    }
    // SAFETY: a fresh fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn uffdio_api(fd: &OwnedFd, features: u64) -> Result<UffdioApi> {
    let mut api = UffdioApi {
        api: UFFD_API,
        features,
        ioctls: 0,
    };
    // SAFETY: UFFDIO_API reads and writes one struct uffdio_api.
    if unsafe { libc::ioctl(fd.as_raw_fd(), UFFDIO_API, &mut api) } < 0 {
        return Err(ProbeError::last("UFFDIO_API"));
    }
    Ok(api)
}

/// What userfaultfd offers: the feature bits of a UFFDIO_API handshake
/// made with features=0, and the ioctl mask.
#[derive(Debug, Clone, Copy)]
pub struct UffdInfo {
    pub features: u64,
    pub ioctls: u64,
}

/// userfaultfd(O_CLOEXEC|UFFD_USER_MODE_ONLY) + UFFDIO_API(features=0).
pub fn uffd_features() -> Result<UffdInfo> {
    let fd = userfaultfd()?;
    let api = uffdio_api(&fd, 0)?;
    Ok(UffdInfo {
        features: api.features,
        ioctls: api.ioctls,
    })
}

/// Names of the feature bits set in `features`.
pub fn uffd_feature_names(features: u64) -> Vec<&'static str> {
    UFFD_FEATURES
        .iter()
        .filter(|(bit, _)| features & bit != 0)
        .map(|&(_, name)| name)
        .collect()
}

/// One PAGEMAP_SCAN call over `[start, end)`; returns the regions found.
fn pagemap_scan(
    pagemap: &File,
    start: u64,
    end: u64,
    flags: u64,
    category_mask: u64,
    return_mask: u64,
) -> Result<Vec<PageRegion>> {
    let mut out = [PageRegion::default(); 16];
    let mut arg = PmScanArg {
        size: std::mem::size_of::<PmScanArg>() as u64,
        flags,
        start,
        end,
        vec: out.as_mut_ptr() as u64,
        vec_len: out.len() as u64,
        category_mask,
        return_mask,
        ..PmScanArg::default()
    };
    // SAFETY: PAGEMAP_SCAN reads `arg`, writes at most `vec_len` regions
    // into `out` (which has that many), and updates `arg.walk_end`.
    let n = unsafe { libc::ioctl(pagemap.as_raw_fd(), PAGEMAP_SCAN, &mut arg) };
    if n < 0 {
        return Err(ProbeError::last("PAGEMAP_SCAN"));
    }
    Ok(out[..n as usize].to_vec())
}

/// Turns regions into sorted page indices relative to `base`.
fn pages_of(regions: &[PageRegion], base: u64) -> Vec<usize> {
    let ps = page_size() as u64;
    let mut pages = Vec::new();
    for r in regions {
        let mut a = r.start;
        while a < r.end {
            pages.push(((a - base) / ps) as usize);
            a += ps;
        }
    }
    pages
}

/// PAGEMAP_SCAN on /proc/self/pagemap over 8 fresh anonymous pages of
/// which 0, 2 and 3 were written. Returns the page indices it reported
/// present; the right answer is `[0, 2, 3]`.
pub fn pagemap_scan_present() -> Result<Vec<usize>> {
    let pagemap = File::open("/proc/self/pagemap")
        .map_err(|e| ProbeError::other("open pagemap", e.to_string()))?;
    let m = Anon::new(8)?;
    for i in [0, 2, 3] {
        m.touch(i);
    }
    let regions = pagemap_scan(
        &pagemap,
        m.start(),
        m.start() + m.len as u64,
        0,
        PAGE_IS_PRESENT,
        PAGE_IS_PRESENT,
    )?;
    Ok(pages_of(&regions, m.start()))
}

/// The dirty tracking stasis uses instead of soft-dirty, end to end on 8
/// pages of our own: a userfaultfd with WP_ASYNC|WP_UNPOPULATED, the range
/// registered for write-protect, a PAGEMAP_SCAN with PM_SCAN_WP_MATCHING
/// that protects every page, then writes to page 2 (populated before) and
/// page 7 (never touched). Returns the pages a second scan reports
/// written; the right answer is `[2, 7]`.
pub fn uffd_wp_dirty_tracking() -> Result<Vec<usize>> {
    let pagemap = File::open("/proc/self/pagemap")
        .map_err(|e| ProbeError::other("open pagemap", e.to_string()))?;
    let m = Anon::new(8)?;
    for i in 0..6 {
        m.touch(i);
    }
    let uffd = userfaultfd()?;
    uffdio_api(&uffd, UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED)?;
    let mut reg = UffdioRegister {
        start: m.start(),
        len: m.len as u64,
        mode: UFFDIO_REGISTER_MODE_WP,
        ioctls: 0,
    };
    // SAFETY: UFFDIO_REGISTER reads and writes one struct uffdio_register;
    // the range is our own mapping, which outlives the uffd (dropped first).
    if unsafe { libc::ioctl(uffd.as_raw_fd(), UFFDIO_REGISTER, &mut reg) } < 0 {
        return Err(ProbeError::last("UFFDIO_REGISTER(WP)"));
    }
    let (start, end) = (m.start(), m.start() + m.len as u64);
    // Round 1: report what was written so far and write-protect it.
    pagemap_scan(
        &pagemap,
        start,
        end,
        PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
        PAGE_IS_WRITTEN,
        PAGE_IS_WRITTEN,
    )?;
    m.touch(2);
    m.touch(7);
    // Round 2: only what was written since round 1.
    let regions = pagemap_scan(
        &pagemap,
        start,
        end,
        PM_SCAN_CHECK_WPASYNC,
        PAGE_IS_WRITTEN,
        PAGE_IS_WRITTEN,
    )?;
    drop(uffd);
    Ok(pages_of(&regions, start))
}

// ---------------------------------------------------------------------------
// Pipes.

/// Makes a pipe and asks F_SETPIPE_SZ for `bytes`; returns the size the
/// kernel set. Above fs.pipe-max-size this needs CAP_SYS_RESOURCE (EPERM).
pub fn pipe_set_size(bytes: usize) -> Result<usize> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two fds into `fds`.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(ProbeError::last("pipe2"));
    }
    // SAFETY: both fds were just created and are owned by nothing else.
    let (rd, _wr) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let arg = libc::c_int::try_from(bytes)
        .map_err(|_| ProbeError::other("F_SETPIPE_SZ", format!("{bytes} is too large")))?;
    // SAFETY: F_SETPIPE_SZ takes an int and changes only this pipe.
    let r = unsafe { libc::fcntl(rd.as_raw_fd(), libc::F_SETPIPE_SZ, arg) };
    if r < 0 {
        return Err(ProbeError::last("fcntl(F_SETPIPE_SZ)"));
    }
    Ok(r as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uname_names_linux() {
        assert_eq!(uname().unwrap().sysname, "Linux");
    }

    #[test]
    fn self_probes_work() {
        assert_eq!(process_vm_readv_self().unwrap(), 256 * 1024);
        assert!(pidfd_getfd_self().unwrap() >= 0);
        assert_eq!(pagemap_scan_present().unwrap(), vec![0, 2, 3]);
    }

    #[test]
    fn feature_names_follow_bits() {
        assert_eq!(
            uffd_feature_names(UFFD_FEATURE_WP_ASYNC | 1),
            vec!["PAGEFAULT_FLAG_WP", "WP_ASYNC"]
        );
    }
}

//! The records of an image, as protobuf messages (prost derive, no .proto
//! compiler needed).
//!
//! Compatibility policy (same as CRIU's): a field number is never reused and
//! never changes type. New state is added as new optional fields; a reader
//! that does not know a field skips it. A change that an old reader would
//! misinterpret bumps `FORMAT_MAJOR` in `lib.rs` instead.
//!
//! Values that were addresses or descriptors in the *target* are plain
//! integers here: the image never holds a handle of the dumper.

mod fds;
pub use fds::*;

/// The first record of `core.img`: what the image is and where it came from.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Inventory {
    /// `FORMAT_MAJOR` of the writer.
    #[prost(uint32, tag = "1")]
    pub format_major: u32,
    #[prost(string, tag = "2")]
    pub tool_version: String,
    /// `uname -r` of the dumping kernel.
    #[prost(string, tag = "3")]
    pub kernel_release: String,
    /// `uname -m`, e.g. "x86_64".
    #[prost(string, tag = "4")]
    pub arch: String,
    #[prost(uint32, tag = "5")]
    pub root_pid: u32,
    #[prost(bool, tag = "6")]
    pub shell_job: bool,
    #[prost(uint32, tag = "7")]
    pub page_size: u32,
    #[prost(uint64, tag = "8")]
    pub created_unix_ns: u64,
    /// Size in bytes of NT_X86_XSTATE on the dumping CPU.
    #[prost(uint32, tag = "9")]
    pub xstate_size: u32,
    /// xxh3-64 of the dumping kernel's vDSO text, so restore can tell
    /// whether its own vDSO is the same code.
    #[prost(uint64, tag = "10")]
    pub vdso_hash: u64,
    /// Every pid in the image, in the order processes are restored.
    #[prost(uint32, repeated, tag = "11")]
    pub pids: Vec<u32>,
    /// Size of `pages.img` in bytes, including its header page.
    #[prost(uint64, tag = "12")]
    pub pages_file_size: u64,
    /// CPU feature mask of the dumping CPU (XCR0), for restore checks.
    #[prost(uint64, tag = "13")]
    pub xcr0: u64,
    /// The tree's own IPC namespace and every System V object in it; only
    /// present when the tree ran in an IPC namespace of its own (restore
    /// then makes a new one). See [`crate::ipc`].
    #[prost(message, optional, tag = "14")]
    pub ipc: Option<crate::ipc::IpcNamespace>,
    /// Name of the pages file in the image directory: [`PAGES_FILE`] or
    /// [`PAGES_ALT_FILE`]; empty (images written before this field) means
    /// [`PAGES_FILE`]. A dump into a directory that holds an image writes
    /// the slot that image does not use, so the old image stays whole until
    /// the new `core.img` replaces it (see [`crate::store`]).
    ///
    /// [`PAGES_FILE`]: crate::PAGES_FILE
    /// [`PAGES_ALT_FILE`]: crate::PAGES_ALT_FILE
    #[prost(string, tag = "15")]
    pub pages_file: String,
}

/// One process: identity, memory layout, threads, signals, timers, files.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Process {
    #[prost(uint32, tag = "1")]
    pub pid: u32,
    #[prost(uint32, tag = "2")]
    pub ppid: u32,
    #[prost(uint32, tag = "3")]
    pub pgid: u32,
    #[prost(uint32, tag = "4")]
    pub sid: u32,
    #[prost(message, optional, tag = "5")]
    pub creds: Option<Creds>,
    #[prost(message, repeated, tag = "6")]
    pub rlimits: Vec<Rlimit>,
    #[prost(uint32, tag = "7")]
    pub umask: u32,
    #[prost(string, tag = "8")]
    pub cwd: String,
    #[prost(string, tag = "9")]
    pub root: String,
    #[prost(uint32, tag = "10")]
    pub personality: u32,
    #[prost(message, optional, tag = "11")]
    pub mm: Option<MmState>,
    #[prost(message, repeated, tag = "12")]
    pub vmas: Vec<Vma>,
    /// The thread-group leader comes first.
    #[prost(message, repeated, tag = "13")]
    pub threads: Vec<Thread>,
    /// Only signals whose disposition is not SIG_DFL with no flags.
    #[prost(message, repeated, tag = "14")]
    pub sigactions: Vec<SigAction>,
    #[prost(message, repeated, tag = "15")]
    pub itimers: Vec<ITimer>,
    #[prost(message, repeated, tag = "16")]
    pub posix_timers: Vec<PosixTimer>,
    #[prost(message, repeated, tag = "17")]
    pub fds: Vec<Fd>,
    /// Process-wide (shared) pending signals, oldest first.
    #[prost(message, repeated, tag = "18")]
    pub shared_pending: Vec<SigInfo>,
    #[prost(string, tag = "19")]
    pub exe_path: String,
    #[prost(message, optional, tag = "20")]
    pub exe_id: Option<FileId>,
    #[prost(uint32, tag = "21")]
    pub pdeathsig: u32,
    #[prost(bool, tag = "22")]
    pub child_subreaper: bool,
    #[prost(bool, tag = "23")]
    pub no_new_privs: bool,
    #[prost(uint32, tag = "24")]
    pub dumpable: u32,
    /// Signal the parent gets when this process exits (usually SIGCHLD).
    #[prost(uint32, tag = "25")]
    pub exit_signal: u32,
    /// The process had exited and was not yet reaped: only `pid`, `ppid`,
    /// `pgid`, `sid`, `exit_signal` and `exit_status` are meaningful, and
    /// restore recreates it as a zombie its parent can wait for.
    #[prost(bool, tag = "26")]
    pub zombie: bool,
    /// For a zombie: the raw wait(2) status its parent will read.
    #[prost(int32, tag = "27")]
    pub exit_status: i32,
    /// A session leader with a controlling terminal (`--shell-job`): the
    /// terminal's foreground process group; 0 otherwise. Restore makes the
    /// restoring terminal its controlling terminal again, with that group
    /// in the foreground.
    #[prost(uint32, tag = "28")]
    pub tty_fg_pgid: u32,
    /// Shares its fd table with its parent (clone with CLONE_FILES).
    #[prost(bool, tag = "29")]
    pub files_shared_with_parent: bool,
    /// Shares cwd, root and umask with its parent (CLONE_FS).
    #[prost(bool, tag = "30")]
    pub fs_shared_with_parent: bool,
    /// Non-zero: the executable had been deleted (or replaced); it is the
    /// unlinked-file object with this `shmem_id`, and `exe_path` is empty.
    #[prost(uint64, tag = "31")]
    pub exe_object: u64,
    /// Non-zero: its controlling terminal is the pty pair of the image with
    /// index `ctty_pty - 1` (a session made inside the tree, e.g. by tmux).
    #[prost(uint32, tag = "32")]
    pub ctty_pty: u32,
    /// prctl(PR_SET_THP_DISABLE) was set.
    #[prost(bool, tag = "33")]
    pub thp_disable: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Creds {
    #[prost(uint32, tag = "1")]
    pub uid: u32,
    #[prost(uint32, tag = "2")]
    pub euid: u32,
    #[prost(uint32, tag = "3")]
    pub suid: u32,
    #[prost(uint32, tag = "4")]
    pub fsuid: u32,
    #[prost(uint32, tag = "5")]
    pub gid: u32,
    #[prost(uint32, tag = "6")]
    pub egid: u32,
    #[prost(uint32, tag = "7")]
    pub sgid: u32,
    #[prost(uint32, tag = "8")]
    pub fsgid: u32,
    #[prost(uint32, repeated, tag = "9")]
    pub groups: Vec<u32>,
    #[prost(uint64, tag = "10")]
    pub cap_inh: u64,
    #[prost(uint64, tag = "11")]
    pub cap_prm: u64,
    #[prost(uint64, tag = "12")]
    pub cap_eff: u64,
    #[prost(uint64, tag = "13")]
    pub cap_bnd: u64,
    #[prost(uint64, tag = "14")]
    pub cap_amb: u64,
    #[prost(uint32, tag = "15")]
    pub securebits: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Rlimit {
    /// RLIMIT_* number.
    #[prost(uint32, tag = "1")]
    pub resource: u32,
    /// u64::MAX is RLIM_INFINITY.
    #[prost(uint64, tag = "2")]
    pub cur: u64,
    #[prost(uint64, tag = "3")]
    pub max: u64,
}

/// The fields PR_SET_MM_MAP restores (see prctl(2)).
#[derive(Clone, PartialEq, prost::Message)]
pub struct MmState {
    #[prost(uint64, tag = "1")]
    pub start_code: u64,
    #[prost(uint64, tag = "2")]
    pub end_code: u64,
    #[prost(uint64, tag = "3")]
    pub start_data: u64,
    #[prost(uint64, tag = "4")]
    pub end_data: u64,
    #[prost(uint64, tag = "5")]
    pub start_brk: u64,
    #[prost(uint64, tag = "6")]
    pub brk: u64,
    #[prost(uint64, tag = "7")]
    pub start_stack: u64,
    #[prost(uint64, tag = "8")]
    pub arg_start: u64,
    #[prost(uint64, tag = "9")]
    pub arg_end: u64,
    #[prost(uint64, tag = "10")]
    pub env_start: u64,
    #[prost(uint64, tag = "11")]
    pub env_end: u64,
    /// Raw /proc/PID/auxv (pairs of u64).
    #[prost(bytes = "vec", tag = "12")]
    pub auxv: Vec<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum VmaKind {
    /// Private or shared anonymous memory (heap and stack included).
    Anon = 0,
    /// A regular file mapped private or shared.
    File = 1,
    /// The `[vvar]`, `[vvar_vclock]` and `[vdso]` block; restored as one.
    Vdso = 2,
    /// `[vsyscall]`: fixed by the kernel, nothing to restore.
    Vsyscall = 3,
    /// An attached System V shared memory segment (`/SYSV%08x (deleted)`
    /// in maps), the one `Vma::sysv_shmid` names in `Inventory::ipc`.
    SysvShm = 4,
    /// A mapping of an io_uring instance's rings (anon_inode:[io_uring]);
    /// the ring is the process's fd `Vma::io_uring_fd`, contents in its
    /// `IoUringState`.
    IoUring = 5,
}

/// One VMA, as /proc/PID/maps and smaps show it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Vma {
    #[prost(uint64, tag = "1")]
    pub start: u64,
    #[prost(uint64, tag = "2")]
    pub end: u64,
    /// PROT_* bits.
    #[prost(uint32, tag = "3")]
    pub prot: u32,
    /// MAP_SHARED or MAP_PRIVATE, plus MAP_GROWSDOWN. For `SysvShm`:
    /// MAP_SHARED, plus SHM_RDONLY (0o10000) when the segment was attached
    /// read-only (the VMA may never become writable).
    #[prost(uint32, tag = "4")]
    pub flags: u32,
    #[prost(enumeration = "VmaKind", tag = "5")]
    pub kind: i32,
    /// Path for File mappings; the bracketed name (`[heap]`, `[stack]`,
    /// `[vdso]`, `[anon:NAME]`) otherwise.
    #[prost(string, tag = "6")]
    pub name: String,
    /// File offset in bytes for File mappings.
    #[prost(uint64, tag = "7")]
    pub pgoff: u64,
    #[prost(message, optional, tag = "8")]
    pub file: Option<FileId>,
    /// MADV_* advice to re-apply, as `MADV_BIT_*` bits.
    #[prost(uint32, tag = "9")]
    pub madv: u32,
    /// Page-aligned ranges with MADV_GUARD_INSTALL guards, as (start, end)
    /// pairs flattened.
    #[prost(uint64, repeated, tag = "10")]
    pub guards: Vec<u64>,
    /// For shared anonymous memory (MAP_SHARED|MAP_ANONYMOUS, inherited
    /// over fork) and mappings of unlinked files: the object's id (from its
    /// device and inode at dump). VMAs with the same id, in any process,
    /// map one object; its contents are in the [`PageMap`] with this
    /// `shmem_id`, at object offsets.
    #[prost(uint64, tag = "11")]
    pub shmem_id: u64,
    /// For `SysvShm`: the id of the segment (a [`crate::SysvShm`] of the
    /// image's IPC namespace); `pgoff` is the offset in it. Meaningless
    /// for other kinds (0 is a valid segment id).
    #[prost(int32, tag = "12")]
    pub sysv_shmid: i32,
    /// For `IoUring`: the fd of the ring in the process.
    #[prost(int32, tag = "13")]
    pub io_uring_fd: i32,
}

pub const MADV_BIT_DONTFORK: u32 = 1 << 0;
pub const MADV_BIT_WIPEONFORK: u32 = 1 << 1;
pub const MADV_BIT_DONTDUMP: u32 = 1 << 2;
pub const MADV_BIT_HUGEPAGE: u32 = 1 << 3;
pub const MADV_BIT_NOHUGEPAGE: u32 = 1 << 4;
pub const MADV_BIT_MERGEABLE: u32 = 1 << 5;
pub const MADV_BIT_SEQUENTIAL: u32 = 1 << 6;
pub const MADV_BIT_RANDOM: u32 = 1 << 7;

/// Identity of a file at dump time, to detect a changed file at restore.
#[derive(Clone, PartialEq, prost::Message)]
pub struct FileId {
    #[prost(uint64, tag = "1")]
    pub dev: u64,
    #[prost(uint64, tag = "2")]
    pub ino: u64,
    #[prost(uint64, tag = "3")]
    pub size: u64,
    #[prost(int64, tag = "4")]
    pub mtime_ns: i64,
    /// st_mode (type and permission bits).
    #[prost(uint32, tag = "5")]
    pub mode: u32,
    /// st_rdev for device nodes.
    #[prost(uint64, tag = "6")]
    pub rdev: u64,
}

/// x86_64 `struct user_regs_struct`, field for field.
#[derive(Clone, PartialEq, prost::Message)]
pub struct X86Regs {
    #[prost(uint64, tag = "1")]
    pub r15: u64,
    #[prost(uint64, tag = "2")]
    pub r14: u64,
    #[prost(uint64, tag = "3")]
    pub r13: u64,
    #[prost(uint64, tag = "4")]
    pub r12: u64,
    #[prost(uint64, tag = "5")]
    pub rbp: u64,
    #[prost(uint64, tag = "6")]
    pub rbx: u64,
    #[prost(uint64, tag = "7")]
    pub r11: u64,
    #[prost(uint64, tag = "8")]
    pub r10: u64,
    #[prost(uint64, tag = "9")]
    pub r9: u64,
    #[prost(uint64, tag = "10")]
    pub r8: u64,
    #[prost(uint64, tag = "11")]
    pub rax: u64,
    #[prost(uint64, tag = "12")]
    pub rcx: u64,
    #[prost(uint64, tag = "13")]
    pub rdx: u64,
    #[prost(uint64, tag = "14")]
    pub rsi: u64,
    #[prost(uint64, tag = "15")]
    pub rdi: u64,
    #[prost(uint64, tag = "16")]
    pub orig_rax: u64,
    #[prost(uint64, tag = "17")]
    pub rip: u64,
    #[prost(uint64, tag = "18")]
    pub cs: u64,
    #[prost(uint64, tag = "19")]
    pub eflags: u64,
    #[prost(uint64, tag = "20")]
    pub rsp: u64,
    #[prost(uint64, tag = "21")]
    pub ss: u64,
    #[prost(uint64, tag = "22")]
    pub fs_base: u64,
    #[prost(uint64, tag = "23")]
    pub gs_base: u64,
    #[prost(uint64, tag = "24")]
    pub ds: u64,
    #[prost(uint64, tag = "25")]
    pub es: u64,
    #[prost(uint64, tag = "26")]
    pub fs: u64,
    #[prost(uint64, tag = "27")]
    pub gs: u64,
}

/// One thread's CPU and kernel-side state.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Thread {
    #[prost(uint32, tag = "1")]
    pub tid: u32,
    #[prost(message, optional, tag = "2")]
    pub regs: Option<X86Regs>,
    /// Raw NT_X86_XSTATE (FPU, SSE, AVX, AVX-512, PKRU).
    #[prost(bytes = "vec", tag = "3")]
    pub xstate: Vec<u8>,
    #[prost(uint64, tag = "4")]
    pub sigmask: u64,
    #[prost(uint64, tag = "5")]
    pub rseq_addr: u64,
    #[prost(uint32, tag = "6")]
    pub rseq_len: u32,
    #[prost(uint32, tag = "7")]
    pub rseq_sig: u32,
    #[prost(uint64, tag = "8")]
    pub robust_list: u64,
    #[prost(uint64, tag = "9")]
    pub robust_list_len: u64,
    #[prost(uint64, tag = "10")]
    pub clear_child_tid: u64,
    #[prost(string, tag = "11")]
    pub comm: String,
    #[prost(uint64, tag = "12")]
    pub altstack_sp: u64,
    #[prost(uint64, tag = "13")]
    pub altstack_size: u64,
    #[prost(int32, tag = "14")]
    pub altstack_flags: i32,
    /// Signals pending on this thread only, oldest first.
    #[prost(message, repeated, tag = "15")]
    pub pending: Vec<SigInfo>,
    /// Scheduling: policy, priorities, CPU affinity, timer slack (absent
    /// in older images: left as the restorer's).
    #[prost(message, optional, tag = "16")]
    pub sched: Option<ThreadSched>,
}

/// A thread's scheduling attributes.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ThreadSched {
    /// sched_getscheduler(2), SCHED_RESET_ON_FORK included.
    #[prost(uint32, tag = "1")]
    pub policy: u32,
    /// Real-time priority (sched_param), 0 for the normal policies.
    #[prost(uint32, tag = "2")]
    pub rt_priority: u32,
    /// Nice value, -20..=19.
    #[prost(sint32, tag = "3")]
    pub nice: i32,
    /// CPU affinity mask, sched_getaffinity(2) bytes.
    #[prost(bytes = "vec", tag = "4")]
    pub affinity: Vec<u8>,
    /// /proc/TID/timerslack_ns.
    #[prost(uint64, tag = "5")]
    pub timer_slack_ns: u64,
}

/// A queued signal: the raw 128-byte `siginfo_t`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SigInfo {
    #[prost(uint32, tag = "1")]
    pub signo: u32,
    #[prost(bytes = "vec", tag = "2")]
    pub raw: Vec<u8>,
}

/// The kernel's `struct sigaction` for rt_sigaction(2).
#[derive(Clone, PartialEq, prost::Message)]
pub struct SigAction {
    #[prost(uint32, tag = "1")]
    pub signo: u32,
    #[prost(uint64, tag = "2")]
    pub handler: u64,
    #[prost(uint64, tag = "3")]
    pub flags: u64,
    #[prost(uint64, tag = "4")]
    pub restorer: u64,
    #[prost(uint64, tag = "5")]
    pub mask: u64,
}

/// setitimer(2) state; times in microseconds as the syscall has them.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ITimer {
    /// ITIMER_REAL, ITIMER_VIRTUAL or ITIMER_PROF.
    #[prost(uint32, tag = "1")]
    pub which: u32,
    #[prost(uint64, tag = "2")]
    pub interval_us: u64,
    #[prost(uint64, tag = "3")]
    pub value_us: u64,
}

/// A POSIX timer (timer_create(2)); times in nanoseconds.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PosixTimer {
    #[prost(int32, tag = "1")]
    pub id: i32,
    #[prost(int32, tag = "2")]
    pub clock_id: i32,
    /// SIGEV_SIGNAL, SIGEV_NONE, SIGEV_THREAD_ID...
    #[prost(int32, tag = "3")]
    pub notify: i32,
    #[prost(int32, tag = "4")]
    pub signo: i32,
    #[prost(uint64, tag = "5")]
    pub sigev_value: u64,
    #[prost(uint32, tag = "6")]
    pub notify_tid: u32,
    #[prost(uint64, tag = "7")]
    pub interval_ns: u64,
    #[prost(uint64, tag = "8")]
    pub value_ns: u64,
}

/// Where one process's dumped pages live in `pages.img`, or one shared
/// anonymous memory object's.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PageMap {
    /// The process; 0 for a shmem object.
    #[prost(uint32, tag = "1")]
    pub pid: u32,
    /// Sorted by `vaddr`, non-overlapping. For a shmem object `vaddr` is
    /// the byte offset in the object.
    #[prost(message, repeated, tag = "2")]
    pub runs: Vec<PageRun>,
    /// Non-zero: the pages of the shmem object `Vma::shmem_id`, whose size
    /// in bytes is `shmem_size`.
    #[prost(uint64, tag = "3")]
    pub shmem_id: u64,
    #[prost(uint64, tag = "4")]
    pub shmem_size: u64,
    /// Non-empty: the object is a file that had been unlinked (e.g. a
    /// POSIX semaphore in /dev/shm) and was still mapped. Restore creates
    /// it again at this path (or unnamed in its directory if the name is
    /// taken), fills it, and unlinks it.
    #[prost(string, tag = "5")]
    pub deleted_path: String,
    /// st_mode permission bits of that file.
    #[prost(uint32, tag = "6")]
    pub file_mode: u32,
    /// For a memfd (`deleted_path` starts with `/memfd:`): its seals
    /// (F_SEAL_*), put back once it is filled.
    #[prost(uint32, tag = "7")]
    pub seals: u32,
    /// Non-empty: the file was unlinked but another name (a hard link) still
    /// reaches it. No contents are stored; restore opens the very inode with
    /// open_by_handle_at(2) (type `handle_type`), on the filesystem of the
    /// nearest existing ancestor of `deleted_path`, so writes through either
    /// name stay visible through the other.
    #[prost(bytes = "vec", tag = "8")]
    pub handle: Vec<u8>,
    #[prost(int32, tag = "9")]
    pub handle_type: i32,
    /// The file was made with O_TMPFILE (an fd of it has that flag): it is
    /// made that way again, so linkat(2) can still give it a name.
    #[prost(bool, tag = "10")]
    pub tmpfile: bool,
}

/// `nr_pages` pages at `vaddr` in the target, stored contiguously at
/// `offset` in `pages.img`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PageRun {
    #[prost(uint64, tag = "1")]
    pub vaddr: u64,
    #[prost(uint64, tag = "2")]
    pub nr_pages: u64,
    /// Byte offset in pages.img; a multiple of the page size.
    #[prost(uint64, tag = "3")]
    pub offset: u64,
    /// xxh3-64 of the run's bytes.
    #[prost(uint64, tag = "4")]
    pub hash: u64,
}

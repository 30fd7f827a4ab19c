//! Descriptor records: an [`Fd`] of a process and the state of each kind
//! of file it can be (see [`FdKind`]). Same compatibility rules as the
//! rest of [`super`].

use super::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum FdKind {
    Regular = 0,
    Directory = 1,
    /// A character device reopened by path (/dev/null, /dev/zero, ...).
    CharDev = 2,
    /// A terminal; needs --shell-job.
    Tty = 3,
    /// An open file description of a pipe (either end, or both: O_RDWR);
    /// `pipe_ino` names the `Pipe` record.
    Pipe = 4,
    /// eventfd(2); state in `Fd::eventfd`.
    EventFd = 5,
    /// signalfd(2); mask in `Fd::signalfd_mask`.
    SignalFd = 6,
    /// timerfd_create(2); state in `Fd::timerfd`.
    TimerFd = 7,
    /// epoll_create(2); registrations in `Fd::epoll`.
    Epoll = 8,
    /// A unix domain socket; state in `Fd::unix`.
    UnixSocket = 9,
    /// A file whose name was unlinked (or never existed: a memfd or an
    /// O_TMPFILE file); the file is the object `Fd::object_id` names (a
    /// [`PageMap`] with that `shmem_id`), reopened with the fd's flags.
    Unlinked = 10,
    /// A FIFO at `path`; `pipe_ino` names the `Pipe` record (with `fifo`
    /// set) holding its buffered bytes (and whether the name was unlinked).
    Fifo = 11,
    /// pidfd_open(2) of the process `Fd::pidfd_pid` (a pid of the image).
    PidFd = 12,
    /// inotify_init1(2); watches in `Fd::inotify`.
    Inotify = 13,
    /// The master of a pseudo-terminal pair made inside the tree
    /// (/dev/ptmx); `Fd::pty_index` names the pair, `Fd::pty` its state.
    PtyMaster = 14,
    /// The slave of such a pair (/dev/pts/N at dump; the number may differ
    /// after restore).
    PtySlave = 15,
    /// An idle io_uring instance; state in `Fd::io_uring`.
    IoUring = 16,
    /// A POSIX message queue; state in `Fd::mqueue`.
    Mqueue = 17,
    /// A fanotify group; state in `Fd::fanotify`.
    Fanotify = 18,
    /// A TCP or UDP socket (IPv4 or IPv6) that is not a connection:
    /// unbound, bound, listening, or (UDP) connected; state in `Fd::inet`.
    InetSocket = 19,
}

/// A TCP or UDP socket of AF_INET or AF_INET6 that holds no connection
/// state: restore makes a new socket, sets its options, binds it to
/// `local` (if `bound`), then listens or connects.
#[derive(Clone, PartialEq, prost::Message)]
pub struct InetSocket {
    /// AF_INET or AF_INET6.
    #[prost(int32, tag = "1")]
    pub family: i32,
    /// SOCK_STREAM (TCP) or SOCK_DGRAM (UDP).
    #[prost(int32, tag = "2")]
    pub sock_type: i32,
    /// IPPROTO_TCP or IPPROTO_UDP.
    #[prost(int32, tag = "3")]
    pub protocol: i32,
    /// TCP_LISTEN (10) for a listener; TCP_CLOSE (7) for a TCP socket
    /// that is not one and for an unconnected UDP socket; TCP_ESTABLISHED
    /// (1) for a connected UDP socket.
    #[prost(uint32, tag = "4")]
    pub state: u32,
    /// The listener's backlog limit (as the kernel clamped it).
    #[prost(uint32, tag = "5")]
    pub backlog: u32,
    /// The socket has a local address (bind(2), or one the kernel picked
    /// on listen or connect).
    #[prost(bool, tag = "6")]
    pub bound: bool,
    #[prost(message, optional, tag = "7")]
    pub local: Option<InetAddr>,
    /// A connected UDP socket's peer.
    #[prost(message, optional, tag = "8")]
    pub peer: Option<InetAddr>,
    /// Options as getsockopt(2) returned them, in the order restore sets
    /// them; restore only sets options it knows (files/inet.rs), and only
    /// those that differ from a new socket's.
    #[prost(message, repeated, tag = "9")]
    pub options: Vec<SockOpt>,
    /// A UDP socket's unread datagrams, oldest first.
    #[prost(message, repeated, tag = "10")]
    pub queue: Vec<InetDatagram>,
}

/// A datagram waiting in a UDP socket's queue, and its sender's address
/// (restore sends it again from there if it can bind it, else from any).
#[derive(Clone, PartialEq, prost::Message)]
pub struct InetDatagram {
    #[prost(bytes = "vec", tag = "1")]
    pub data: Vec<u8>,
    #[prost(message, optional, tag = "2")]
    pub from: Option<InetAddr>,
}

/// An address of an [`InetSocket`]: 4 or 16 bytes, port, and for IPv6 the
/// scope (interface) id.
#[derive(Clone, PartialEq, prost::Message)]
pub struct InetAddr {
    #[prost(bytes = "vec", tag = "1")]
    pub ip: Vec<u8>,
    #[prost(uint32, tag = "2")]
    pub port: u32,
    #[prost(uint32, tag = "3")]
    pub scope_id: u32,
}

/// One socket option: level, name and the raw value getsockopt returned.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SockOpt {
    #[prost(int32, tag = "1")]
    pub level: i32,
    #[prost(int32, tag = "2")]
    pub name: i32,
    #[prost(bytes = "vec", tag = "3")]
    pub value: Vec<u8>,
}

/// A fanotify group: fanotify_init(2) flags and its marks.
#[derive(Clone, PartialEq, prost::Message)]
pub struct FanotifyState {
    #[prost(uint32, tag = "1")]
    pub init_flags: u32,
    /// Open flags of the event fds it hands out.
    #[prost(uint32, tag = "2")]
    pub event_flags: u32,
    #[prost(message, repeated, tag = "3")]
    pub marks: Vec<FanotifyMark>,
}

/// One mark: on an inode (`kind` 0), a mount (FAN_MARK_MOUNT) or a
/// filesystem (FAN_MARK_FILESYSTEM), named by a path.
#[derive(Clone, PartialEq, prost::Message)]
pub struct FanotifyMark {
    #[prost(uint32, tag = "1")]
    pub kind: u32,
    #[prost(string, tag = "2")]
    pub path: String,
    /// FAN_MARK_* flags the mark keeps (IGNORED_SURV_MODIFY, EVICTABLE,
    /// IGNORE).
    #[prost(uint32, tag = "3")]
    pub mflags: u32,
    #[prost(uint32, tag = "4")]
    pub mask: u32,
    #[prost(uint32, tag = "5")]
    pub ignored_mask: u32,
}

/// A POSIX message queue: its name, limits, owner and messages.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MqueueState {
    /// "/NAME" in the IPC namespace's queue filesystem.
    #[prost(string, tag = "1")]
    pub name: String,
    /// mq_unlink(3) was called: only open descriptors reach it.
    #[prost(bool, tag = "2")]
    pub unlinked: bool,
    #[prost(uint32, tag = "3")]
    pub mode: u32,
    #[prost(uint32, tag = "4")]
    pub uid: u32,
    #[prost(uint32, tag = "5")]
    pub gid: u32,
    #[prost(int64, tag = "6")]
    pub maxmsg: i64,
    #[prost(int64, tag = "7")]
    pub msgsize: i64,
    /// Messages in the order mq_receive returns them (highest priority
    /// first, oldest first within one priority).
    #[prost(message, repeated, tag = "8")]
    pub messages: Vec<MqMessage>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct MqMessage {
    #[prost(uint32, tag = "1")]
    pub prio: u32,
    #[prost(bytes = "vec", tag = "2")]
    pub data: Vec<u8>,
}

/// An idle io_uring instance (no request queued, in flight or unreaped).
#[derive(Clone, PartialEq, prost::Message)]
pub struct IoUringState {
    #[prost(uint32, tag = "1")]
    pub sq_entries: u32,
    #[prost(uint32, tag = "2")]
    pub cq_entries: u32,
    /// IORING_SETUP_* flags restore passes to io_uring_setup.
    #[prost(uint32, tag = "3")]
    pub setup_flags: u32,
    /// SQPOLL thread CPU (-1: not bound).
    #[prost(int32, tag = "4")]
    pub sq_thread_cpu: i32,
    /// The ring's position: submission head = tail = completion head =
    /// tail, all equal when idle.
    #[prost(uint32, tag = "5")]
    pub position: u32,
    /// Registered files: (slot, fd number in the process) pairs flattened;
    /// `files_nr` slots in all, the others empty.
    #[prost(int32, repeated, tag = "6")]
    pub files: Vec<i32>,
    #[prost(uint32, tag = "7")]
    pub files_nr: u32,
    /// Registered buffers: (address, length) pairs flattened.
    #[prost(uint64, repeated, tag = "8")]
    pub bufs: Vec<u64>,
    /// The process's mappings of the ring, with their contents.
    #[prost(message, repeated, tag = "9")]
    pub maps: Vec<IoUringMap>,
    /// The ring memory is ordinary memory of the process (a memfd an
    /// earlier restore mapped), restored with the rest of its memory.
    #[prost(bool, tag = "10")]
    pub memfd_backed: bool,
}

/// One mapping of a ring: `pgoff` is IORING_OFF_SQ_RING, _CQ_RING or _SQES.
#[derive(Clone, PartialEq, prost::Message)]
pub struct IoUringMap {
    #[prost(uint64, tag = "1")]
    pub start: u64,
    #[prost(uint64, tag = "2")]
    pub pgoff: u64,
    #[prost(bytes = "vec", tag = "3")]
    pub data: Vec<u8>,
}

/// A pseudo-terminal pair's state, kept with (the first record of) its
/// master.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PtyState {
    /// The slave's `struct termios`, raw.
    #[prost(bytes = "vec", tag = "1")]
    pub termios: Vec<u8>,
    /// rows, cols, xpixel, ypixel.
    #[prost(uint32, repeated, tag = "2")]
    pub winsize: Vec<u32>,
    #[prost(bool, tag = "3")]
    pub packet_mode: bool,
    /// The slave was still locked (no unlockpt).
    #[prost(bool, tag = "4")]
    pub locked: bool,
    /// Written to the master, not yet read from the slave (input).
    #[prost(bytes = "vec", tag = "5")]
    pub input: Vec<u8>,
    /// Written to the slave, not yet read from the master (output).
    #[prost(bytes = "vec", tag = "6")]
    pub output: Vec<u8>,
}

/// One inotify watch: its descriptor number, mask and the watched path.
#[derive(Clone, PartialEq, prost::Message)]
pub struct InotifyWatchRec {
    #[prost(int32, tag = "1")]
    pub wd: i32,
    #[prost(uint32, tag = "2")]
    pub mask: u32,
    #[prost(string, tag = "3")]
    pub path: String,
}

/// A unix domain socket: its kind, name, connection, options and the
/// messages waiting in its receive queue.
#[derive(Clone, PartialEq, prost::Message)]
pub struct UnixSocket {
    /// The socket's inode number (`socket:[INO]`), unique in the image.
    #[prost(uint64, tag = "1")]
    pub ino: u64,
    /// SOCK_STREAM, SOCK_DGRAM or SOCK_SEQPACKET.
    #[prost(int32, tag = "2")]
    pub sock_type: i32,
    /// listen(2) was called; `backlog` is its limit.
    #[prost(bool, tag = "3")]
    pub listening: bool,
    #[prost(uint32, tag = "4")]
    pub backlog: u32,
    /// The address it bound itself to (sun_path bytes; a leading NUL is an
    /// abstract name); empty when it did not bind.
    #[prost(bytes = "vec", tag = "5")]
    pub name: Vec<u8>,
    /// The inode of the socket it is connected to (0: none). Both ends of a
    /// pair name each other; a datagram socket may name a bound one that
    /// does not name it back.
    #[prost(uint64, tag = "6")]
    pub peer_ino: u64,
    /// Unread messages, oldest first (for SOCK_STREAM, one chunk of bytes).
    #[prost(bytes = "vec", repeated, tag = "7")]
    pub queue: Vec<Vec<u8>>,
    /// Shutdown bits as sock_diag shows them: 1 receive, 2 send.
    #[prost(uint32, tag = "8")]
    pub shutdown: u32,
    #[prost(bool, tag = "9")]
    pub passcred: bool,
    /// SO_SNDBUF and SO_RCVBUF as getsockopt returns them.
    #[prost(uint32, tag = "10")]
    pub sndbuf: u32,
    #[prost(uint32, tag = "11")]
    pub rcvbuf: u32,
    /// Mode, owner and group of the socket file of a path name.
    #[prost(uint32, tag = "12")]
    pub file_mode: u32,
    #[prost(uint32, tag = "13")]
    pub uid: u32,
    #[prost(uint32, tag = "14")]
    pub gid: u32,
    /// For a listener: the connections made to it and not yet accepted,
    /// oldest first (the inodes their clients name as peer). Restore
    /// connects each client again, in this order.
    #[prost(uint64, repeated, tag = "15")]
    pub pending: Vec<u64>,
    /// Connected to a socket outside the tree (--ext-unix-sk): the name to
    /// connect to again at restore.
    #[prost(bytes = "vec", tag = "16")]
    pub external: Vec<u8>,
    /// A connection whose other end was closed: reads give the queue, then
    /// end of file.
    #[prost(bool, tag = "17")]
    pub peer_closed: bool,
    /// Descriptors in flight (SCM_RIGHTS) with messages of `queue`.
    #[prost(message, repeated, tag = "18")]
    pub inflight: Vec<InflightFds>,
}

/// The open file descriptions passed along message `msg` of a queue. Each
/// is a full record (its `fd` number means nothing); `desc` ties it to the
/// same description held elsewhere in the tree, if any.
#[derive(Clone, PartialEq, prost::Message)]
pub struct InflightFds {
    #[prost(uint32, tag = "1")]
    pub msg: u32,
    #[prost(message, repeated, tag = "2")]
    pub fds: Vec<Fd>,
}

/// An eventfd's counter and mode.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EventFdState {
    #[prost(uint64, tag = "1")]
    pub count: u64,
    #[prost(bool, tag = "2")]
    pub semaphore: bool,
}

/// A timerfd: its clock, arming and expirations not yet read.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimerFdState {
    #[prost(int32, tag = "1")]
    pub clockid: i32,
    /// Time left until the next expiration, in ns (0: disarmed).
    #[prost(uint64, tag = "2")]
    pub value_ns: u64,
    #[prost(uint64, tag = "3")]
    pub interval_ns: u64,
    /// Expirations that happened and were not read yet.
    #[prost(uint64, tag = "4")]
    pub ticks: u64,
    /// timerfd_settime flags it was armed with (TFD_TIMER_ABSTIME...).
    #[prost(uint32, tag = "5")]
    pub settime_flags: u32,
}

/// One registration of an epoll instance: fd number `tfd` (in the
/// registering process) with its event mask and user data.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EpollEntry {
    #[prost(int32, tag = "1")]
    pub tfd: i32,
    #[prost(uint32, tag = "2")]
    pub events: u32,
    #[prost(uint64, tag = "3")]
    pub data: u64,
    /// The watched file is no longer (or not only) at `tfd`: the program
    /// closed that fd after adding it, or the number now holds another
    /// file. This fd of the same process is the watched file; restore
    /// registers it under the number `tfd` for a moment.
    #[prost(int32, optional, tag = "4")]
    pub via_fd: Option<i32>,
}

/// An open descriptor.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Fd {
    #[prost(int32, tag = "1")]
    pub fd: i32,
    #[prost(enumeration = "FdKind", tag = "2")]
    pub kind: i32,
    #[prost(string, tag = "3")]
    pub path: String,
    /// O_* status flags as fdinfo shows them (without O_CLOEXEC).
    #[prost(uint32, tag = "4")]
    pub flags: u32,
    #[prost(uint64, tag = "5")]
    pub pos: u64,
    #[prost(bool, tag = "6")]
    pub cloexec: bool,
    #[prost(message, optional, tag = "7")]
    pub file: Option<FileId>,
    /// For `Pipe`: the pipe's inode number, shared by both ends.
    #[prost(uint64, tag = "8")]
    pub pipe_ino: u64,
    /// This fd shares its open file description (offset, flags) with the
    /// lower-numbered fd given here (dup(2)); restored by duplicating it.
    #[prost(int32, optional, tag = "9")]
    pub dup_of: Option<i32>,
    /// Open file description id, unique in the image: every fd, in any
    /// process, with the same non-zero `desc` shares one description
    /// (offset, status flags), as after dup(2) or fork(2). The first such
    /// fd in image order carries the description's state. 0: unshared
    /// (or shared through `dup_of` only, in older images).
    #[prost(uint32, tag = "10")]
    pub desc: u32,
    #[prost(message, optional, tag = "11")]
    pub eventfd: Option<EventFdState>,
    /// For `SignalFd`: the signals it reads.
    #[prost(uint64, tag = "12")]
    pub signalfd_mask: u64,
    #[prost(message, optional, tag = "13")]
    pub timerfd: Option<TimerFdState>,
    /// For `Epoll`: what it watches.
    #[prost(message, repeated, tag = "14")]
    pub epoll: Vec<EpollEntry>,
    #[prost(message, optional, tag = "15")]
    pub unix: Option<UnixSocket>,
    /// For `Unlinked`: the `shmem_id` of the file's [`PageMap`].
    #[prost(uint64, tag = "16")]
    pub object_id: u64,
    /// For `PidFd`: the process it refers to.
    #[prost(uint32, tag = "17")]
    pub pidfd_pid: u32,
    /// Locks held through this fd: flock and OFD locks of its open file
    /// description, POSIX locks of this process on its file.
    #[prost(message, repeated, tag = "18")]
    pub locks: Vec<FileLock>,
    /// For `Inotify`: its watches.
    #[prost(message, repeated, tag = "19")]
    pub inotify: Vec<InotifyWatchRec>,
    /// For `PtyMaster`/`PtySlave`: the pair's index at dump (N of /dev/pts/N).
    #[prost(uint32, tag = "20")]
    pub pty_index: u32,
    #[prost(message, optional, tag = "21")]
    pub pty: Option<PtyState>,
    #[prost(message, optional, tag = "22")]
    pub io_uring: Option<IoUringState>,
    #[prost(message, optional, tag = "23")]
    pub mqueue: Option<MqueueState>,
    #[prost(message, optional, tag = "24")]
    pub fanotify: Option<FanotifyState>,
    #[prost(message, optional, tag = "25")]
    pub inet: Option<InetSocket>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum LockKind {
    /// flock(2): the open file description's, whole file.
    Flock = 0,
    /// fcntl(F_SETLK): the process's, a byte range.
    Posix = 1,
    /// fcntl(F_OFD_SETLK): the open file description's, a byte range.
    Ofd = 2,
}

/// One file lock.
#[derive(Clone, PartialEq, prost::Message)]
pub struct FileLock {
    #[prost(enumeration = "LockKind", tag = "1")]
    pub kind: i32,
    /// Exclusive (write) or shared (read).
    #[prost(bool, tag = "2")]
    pub write: bool,
    #[prost(uint64, tag = "3")]
    pub start: u64,
    /// Bytes locked from `start`; 0: to the end of the file, however long.
    #[prost(uint64, tag = "4")]
    pub len: u64,
}

/// A pipe and the bytes buffered in it at dump time.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Pipe {
    #[prost(uint64, tag = "1")]
    pub ino: u64,
    /// F_GETPIPE_SZ.
    #[prost(uint32, tag = "2")]
    pub capacity: u32,
    /// Unread bytes, oldest first (copied with tee(2), not consumed).
    #[prost(bytes = "vec", tag = "3")]
    pub data: Vec<u8>,
    /// The pipe of a FIFO (a named pipe): `ino` is the FIFO's object id,
    /// and restore reopens the FIFO by path instead of creating a pipe.
    #[prost(bool, tag = "4")]
    pub fifo: bool,
    /// For a FIFO: its name was unlinked while it was open (the fds' `path`
    /// is the old name). Restore makes a FIFO there again, opens it and
    /// unlinks the name.
    #[prost(bool, tag = "5")]
    pub unlinked: bool,
    /// For an unlinked FIFO: its permission bits.
    #[prost(uint32, tag = "6")]
    pub mode: u32,
}

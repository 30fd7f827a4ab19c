//! Records of a System V IPC namespace: [`Inventory::ipc`](crate::Inventory::ipc).
//!
//! Present only when the dumped tree had an IPC namespace of its own (for
//! example under `unshare --ipc`, or in a container). Every object of that
//! namespace is recorded with its id, so restore can make a new namespace
//! and recreate each object under the same id; on the host's namespace the
//! ids could already be taken, which is why stasis does not record objects
//! there.
//!
//! Same compatibility policy as [`crate::records`]: field numbers are never
//! reused and never change type.
//!
//! Not recorded, because no interface can set them again: the creator's
//! uid/gid (`cuid`/`cgid`), the pids of the creator and of the last
//! operation, the access/change times, and SEM_UNDO adjustments (the
//! kernel does not show them anywhere).

use crate::PageRun;

/// The `kernel.*` sysctls of an IPC namespace that an image may carry
/// (all are per namespace). Any other name makes the image invalid.
pub const IPC_SYSCTLS: [&str; 8] = [
    "shmmax",
    "shmall",
    "shmmni",
    "shm_rmid_forced",
    "msgmax",
    "msgmnb",
    "msgmni",
    "sem",
];

/// An IPC namespace: its limits and its objects.
#[derive(Clone, PartialEq, prost::Message)]
pub struct IpcNamespace {
    /// Shared memory segments, also those already removed (IPC_RMID) but
    /// still attached.
    #[prost(message, repeated, tag = "1")]
    pub shm: Vec<SysvShm>,
    #[prost(message, repeated, tag = "2")]
    pub sem: Vec<SysvSem>,
    #[prost(message, repeated, tag = "3")]
    pub msg: Vec<SysvMsgQueue>,
    /// The namespace's limits, as `/proc/sys/kernel/NAME` read there.
    #[prost(message, repeated, tag = "4")]
    pub sysctls: Vec<IpcSysctl>,
}

/// One sysctl of [`IPC_SYSCTLS`] and its whitespace-separated numbers
/// (`sem` has four).
#[derive(Clone, PartialEq, prost::Message)]
pub struct IpcSysctl {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(uint64, repeated, tag = "2")]
    pub values: Vec<u64>,
}

/// A shared memory segment (shmget(2)).
#[derive(Clone, PartialEq, prost::Message)]
pub struct SysvShm {
    /// The shmid, as returned by shmget(2).
    #[prost(int32, tag = "1")]
    pub id: i32,
    /// Its key; for a removed segment, the key it was created with (the
    /// kernel forgets it, the `/SYSV%08x` name in maps keeps it).
    #[prost(int32, tag = "2")]
    pub key: i32,
    /// `shm_perm.mode`: permission bits, plus SHM_DEST (0o1000) and
    /// SHM_LOCKED (0o2000).
    #[prost(uint32, tag = "3")]
    pub mode: u32,
    /// Owner (`shm_perm.uid`/`gid`).
    #[prost(uint32, tag = "4")]
    pub uid: u32,
    #[prost(uint32, tag = "5")]
    pub gid: u32,
    /// Size in bytes (`shm_segsz`).
    #[prost(uint64, tag = "6")]
    pub size: u64,
    /// The pages that hold data, in `pages.img`; `vaddr` is the byte
    /// offset in the segment. Pages not in a run read as zero.
    #[prost(message, repeated, tag = "7")]
    pub runs: Vec<PageRun>,
    /// Removed with IPC_RMID while still attached: it goes away with the
    /// last detach, and no key finds it.
    #[prost(bool, tag = "8")]
    pub removed: bool,
}

/// A semaphore set (semget(2)).
#[derive(Clone, PartialEq, prost::Message)]
pub struct SysvSem {
    #[prost(int32, tag = "1")]
    pub id: i32,
    #[prost(int32, tag = "2")]
    pub key: i32,
    /// `sem_perm.mode`.
    #[prost(uint32, tag = "3")]
    pub mode: u32,
    #[prost(uint32, tag = "4")]
    pub uid: u32,
    #[prost(uint32, tag = "5")]
    pub gid: u32,
    /// semval of every semaphore of the set, in order (GETALL).
    #[prost(uint32, repeated, tag = "6")]
    pub values: Vec<u32>,
    /// semop(2) was used on the set (`sem_otime` is not 0). Programs test
    /// that to know the set's creator has initialized it.
    #[prost(bool, tag = "7")]
    pub operated: bool,
}

/// A message queue (msgget(2)) and the messages in it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SysvMsgQueue {
    #[prost(int32, tag = "1")]
    pub id: i32,
    #[prost(int32, tag = "2")]
    pub key: i32,
    /// `msg_perm.mode`.
    #[prost(uint32, tag = "3")]
    pub mode: u32,
    #[prost(uint32, tag = "4")]
    pub uid: u32,
    #[prost(uint32, tag = "5")]
    pub gid: u32,
    /// `msg_qbytes`: the most bytes the queue holds.
    #[prost(uint64, tag = "6")]
    pub qbytes: u64,
    /// Oldest first.
    #[prost(message, repeated, tag = "7")]
    pub messages: Vec<SysvMsg>,
}

/// One queued message.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SysvMsg {
    /// Its type; always positive.
    #[prost(int64, tag = "1")]
    pub mtype: i64,
    #[prost(bytes = "vec", tag = "2")]
    pub text: Vec<u8>,
}

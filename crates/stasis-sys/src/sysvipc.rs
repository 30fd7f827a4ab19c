//! System V IPC of the calling thread's IPC namespace: shared memory
//! (shmget(2), shmat(2), shmctl(2)), semaphores (semget(2), semctl(2)) and
//! message queues (msgget(2), msgctl(2), msgrcv(2), msgsnd(2)), plus
//! setns(2)/unshare(2) to choose that namespace.
//!
//! The IPC namespace is per task (nsproxy), not per process: a thread that
//! enters another namespace with [`setns`] sees that namespace's objects
//! (also in /proc/sysvipc) while the other threads keep theirs.

use std::os::fd::{AsRawFd, BorrowedFd};

use crate::error::{Result, SysError};

fn check(r: i64, call: &'static str, what: impl FnOnce() -> String) -> Result<i64> {
    if r < 0 {
        Err(SysError::last(call, what()))
    } else {
        Ok(r)
    }
}

/// setns(2): moves the calling *thread* into the namespace `fd` refers to
/// (`nstype` is CLONE_NEW*).
pub fn setns(fd: BorrowedFd<'_>, nstype: i32) -> Result<()> {
    // SAFETY: integer arguments; the descriptor is open (borrowed).
    let r = unsafe { libc::setns(fd.as_raw_fd(), nstype) };
    check(r as i64, "setns", || format!("namespace type {nstype:#x}")).map(drop)
}

/// unshare(2) with CLONE_NEWIPC: the calling thread, and every process it
/// forks afterwards, gets a new, empty IPC namespace.
pub fn unshare_ipc() -> Result<()> {
    // SAFETY: integer argument only; affects only our own task.
    let r = unsafe { libc::unshare(libc::CLONE_NEWIPC) };
    check(r as i64, "unshare", || "CLONE_NEWIPC".into()).map(drop)
}

/// The `ipc_perm` fields of an object, as IPC_STAT reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IpcPerm {
    pub key: i32,
    pub uid: u32,
    pub gid: u32,
    pub cuid: u32,
    pub cgid: u32,
    /// Permission bits and, for segments, SHM_DEST/SHM_LOCKED.
    pub mode: u32,
}

impl IpcPerm {
    fn from_libc(p: &libc::ipc_perm) -> IpcPerm {
        IpcPerm {
            key: p.__key,
            uid: p.uid,
            gid: p.gid,
            cuid: p.cuid,
            cgid: p.cgid,
            mode: p.mode as u32,
        }
    }

    fn set_into(&self, p: &mut libc::ipc_perm) {
        p.uid = self.uid;
        p.gid = self.gid;
        p.mode = (self.mode & 0o777) as libc::c_ushort;
    }
}

// ---------------------------------------------------------------------------
// Shared memory
// ---------------------------------------------------------------------------

/// shmget(2).
pub fn shmget(key: i32, size: u64, flags: i32) -> Result<i32> {
    // SAFETY: integer arguments only.
    let r = unsafe { libc::shmget(key, size as usize, flags) };
    check(r as i64, "shmget", || format!("key {key:#x}, {size} bytes")).map(|r| r as i32)
}

/// What shmctl(2) IPC_STAT says about a segment.
#[derive(Debug, Clone, Copy)]
pub struct ShmStat {
    pub perm: IpcPerm,
    pub size: u64,
    pub nattch: u64,
}

fn shm_ds(id: i32) -> Result<libc::shmid_ds> {
    // SAFETY: shmid_ds is plain data; all-zero is a valid value.
    let mut ds: libc::shmid_ds = unsafe { std::mem::zeroed() };
    // SAFETY: IPC_STAT writes one shmid_ds into `ds`.
    let r = unsafe { libc::shmctl(id, libc::IPC_STAT, &mut ds) };
    check(r as i64, "shmctl(IPC_STAT)", || format!("segment {id}"))?;
    Ok(ds)
}

/// shmctl(2) IPC_STAT.
pub fn shm_stat(id: i32) -> Result<ShmStat> {
    let ds = shm_ds(id)?;
    Ok(ShmStat {
        perm: IpcPerm::from_libc(&ds.shm_perm),
        size: ds.shm_segsz as u64,
        nattch: ds.shm_nattch,
    })
}

/// shmctl(2) IPC_SET of owner, group and the permission bits of `perm`.
pub fn shm_set(id: i32, perm: &IpcPerm) -> Result<()> {
    let mut ds = shm_ds(id)?;
    perm.set_into(&mut ds.shm_perm);
    // SAFETY: IPC_SET reads one shmid_ds.
    let r = unsafe { libc::shmctl(id, libc::IPC_SET, &mut ds) };
    check(r as i64, "shmctl(IPC_SET)", || format!("segment {id}")).map(drop)
}

/// shmctl(2) with a command that takes no buffer (IPC_RMID, SHM_LOCK).
pub fn shm_cmd(id: i32, cmd: i32) -> Result<()> {
    // SAFETY: these commands ignore the buffer argument.
    let r = unsafe { libc::shmctl(id, cmd, std::ptr::null_mut()) };
    check(r as i64, "shmctl", || {
        format!("command {cmd} on segment {id}")
    })
    .map(drop)
}

/// A segment attached to our own address space with shmat(2), detached
/// (shmdt(2)) on drop.
///
/// The memory is shared with whoever else has the segment attached, so it
/// is only ever copied in and out ([`ShmAttach::read`], [`ShmAttach::pread`]),
/// never lent out as a Rust slice another process could change under it.
pub struct ShmAttach {
    addr: *mut libc::c_void,
    len: usize,
    id: i32,
}

impl ShmAttach {
    /// shmat(2) at an address the kernel chooses. `len` is the segment's
    /// size; `read_only` attaches with SHM_RDONLY.
    pub fn new(id: i32, len: u64, read_only: bool) -> Result<ShmAttach> {
        let flags = if read_only { libc::SHM_RDONLY } else { 0 };
        // SAFETY: a null address lets the kernel pick a free range, so no
        // mapping of ours is replaced.
        let addr = unsafe { libc::shmat(id, std::ptr::null(), flags) };
        if addr as isize == -1 {
            return Err(SysError::last("shmat", format!("segment {id}")));
        }
        Ok(ShmAttach {
            addr,
            len: len as usize,
            id,
        })
    }

    /// Where it is attached.
    pub fn addr(&self) -> u64 {
        self.addr as u64
    }

    /// madvise(2) MADV_DONTFORK: children forked from now on do not get
    /// this attachment.
    pub fn dont_fork(&self) -> Result<()> {
        let len = self.len.next_multiple_of(4096);
        // SAFETY: advice on our own attachment, which stays mapped.
        let r = unsafe { libc::madvise(self.addr, len, libc::MADV_DONTFORK) };
        check(r as i64, "madvise(MADV_DONTFORK)", || {
            format!("segment {}", self.id)
        })
        .map(drop)
    }

    /// Copies `buf.len()` bytes at offset `off` of the segment into `buf`.
    pub fn read(&self, off: u64, buf: &mut [u8]) -> Result<()> {
        self.range(off, buf.len())?;
        // SAFETY: the range lies within the attachment (checked above),
        // which stays mapped readable while `self` lives; `buf` is ours
        // and cannot overlap it.
        unsafe {
            std::ptr::copy_nonoverlapping(
                (self.addr as *const u8).add(off as usize),
                buf.as_mut_ptr(),
                buf.len(),
            )
        };
        Ok(())
    }

    /// pread(2) of `len` bytes at `file_off` of `fd` straight into the
    /// segment at offset `off` (attached writable).
    pub fn pread(&self, fd: BorrowedFd<'_>, off: u64, len: u64, file_off: u64) -> Result<()> {
        self.range(off, len as usize)?;
        let mut done = 0u64;
        while done < len {
            // SAFETY: the destination lies within the attachment (checked
            // above); the kernel writes into it, no Rust reference exists.
            let r = unsafe {
                libc::pread(
                    fd.as_raw_fd(),
                    (self.addr as *mut u8).add((off + done) as usize) as *mut libc::c_void,
                    (len - done) as usize,
                    (file_off + done) as i64,
                )
            };
            let n = check(r as i64, "pread", || format!("into segment {}", self.id))?;
            if n == 0 {
                return Err(SysError::Call {
                    call: "pread",
                    what: format!("into segment {}: end of file", self.id),
                    errno: libc::EIO,
                });
            }
            done += n as u64;
        }
        Ok(())
    }

    /// mincore(2): one flag per page, true when the page is in memory (for
    /// a segment: in its page cache, whoever faulted it in).
    pub fn resident(&self) -> Result<Vec<bool>> {
        let pages = self.len.div_ceil(4096);
        let mut v = vec![0u8; pages];
        // SAFETY: the attachment covers `pages` pages; `v` has one byte
        // per page.
        let r = unsafe { libc::mincore(self.addr, pages * 4096, v.as_mut_ptr()) };
        check(r as i64, "mincore", || format!("segment {}", self.id))?;
        Ok(v.into_iter().map(|b| b & 1 != 0).collect())
    }

    fn range(&self, off: u64, len: usize) -> Result<()> {
        let end = off.checked_add(len as u64);
        if end.is_none_or(|e| e > self.len.next_multiple_of(4096) as u64) {
            return Err(SysError::Call {
                call: "shm access",
                what: format!("{len} bytes at {off} of segment {}", self.id),
                errno: libc::EINVAL,
            });
        }
        Ok(())
    }
}

impl Drop for ShmAttach {
    fn drop(&mut self) {
        // SAFETY: detaches exactly the attachment made in `new`; nothing
        // refers to its memory any more.
        unsafe { libc::shmdt(self.addr) };
    }
}

// ---------------------------------------------------------------------------
// Semaphores
// ---------------------------------------------------------------------------

/// semget(2).
pub fn semget(key: i32, nsems: usize, flags: i32) -> Result<i32> {
    // SAFETY: integer arguments only.
    let r = unsafe { libc::semget(key, nsems as i32, flags) };
    check(r as i64, "semget", || {
        format!("key {key:#x}, {nsems} semaphores")
    })
    .map(|r| r as i32)
}

fn sem_ds(id: i32) -> Result<libc::semid_ds> {
    // SAFETY: semid_ds is plain data; all-zero is a valid value.
    let mut ds: libc::semid_ds = unsafe { std::mem::zeroed() };
    // SAFETY: IPC_STAT writes one semid_ds through the pointer, passed as
    // the `union semun` argument (pointer-sized).
    let r = unsafe { libc::semctl(id, 0, libc::IPC_STAT, &mut ds as *mut libc::semid_ds) };
    check(r as i64, "semctl(IPC_STAT)", || {
        format!("semaphore set {id}")
    })?;
    Ok(ds)
}

/// What semctl(2) IPC_STAT says about a set.
#[derive(Debug, Clone, Copy)]
pub struct SemStat {
    pub perm: IpcPerm,
    /// Semaphores in the set.
    pub nsems: usize,
    /// Time of the last semop(2), 0 if there was none.
    pub otime: i64,
}

/// semctl(2) IPC_STAT.
pub fn sem_stat(id: i32) -> Result<SemStat> {
    let ds = sem_ds(id)?;
    Ok(SemStat {
        perm: IpcPerm::from_libc(&ds.sem_perm),
        nsems: ds.sem_nsems as usize,
        otime: ds.sem_otime,
    })
}

/// semctl(2) GETALL for a set of `n` semaphores.
pub fn sem_getall(id: i32, n: usize) -> Result<Vec<u16>> {
    let mut v = vec![0u16; n];
    // SAFETY: GETALL writes semval of each of the set's `n` semaphores
    // into the array, passed as the `union semun` argument.
    let r = unsafe { libc::semctl(id, 0, libc::GETALL, v.as_mut_ptr()) };
    check(r as i64, "semctl(GETALL)", || format!("semaphore set {id}"))?;
    Ok(v)
}

/// semctl(2) SETALL; `values` has one entry per semaphore of the set.
pub fn sem_setall(id: i32, values: &[u16]) -> Result<()> {
    // SAFETY: SETALL reads one value per semaphore of the set from the
    // array (the caller passes exactly that many), which outlives the call.
    let r = unsafe { libc::semctl(id, 0, libc::SETALL, values.as_ptr()) };
    check(r as i64, "semctl(SETALL)", || format!("semaphore set {id}")).map(drop)
}

/// semop(2) with IPC_NOWAIT: the operations `ops` (semaphore number, value
/// to add) on set `id`, all or none.
pub fn semop(id: i32, ops: &[(u16, i16)]) -> Result<()> {
    let mut buf: Vec<libc::sembuf> = ops
        .iter()
        .map(|&(sem_num, sem_op)| libc::sembuf {
            sem_num,
            sem_op,
            sem_flg: libc::IPC_NOWAIT as i16,
        })
        .collect();
    // SAFETY: the kernel reads `buf.len()` sembufs from the array.
    let r = unsafe { libc::semop(id, buf.as_mut_ptr(), buf.len()) };
    check(r as i64, "semop", || format!("semaphore set {id}")).map(drop)
}

/// semctl(2) IPC_SET of owner, group and permission bits.
pub fn sem_set(id: i32, perm: &IpcPerm) -> Result<()> {
    let mut ds = sem_ds(id)?;
    perm.set_into(&mut ds.sem_perm);
    // SAFETY: IPC_SET reads one semid_ds through the pointer.
    let r = unsafe { libc::semctl(id, 0, libc::IPC_SET, &mut ds as *mut libc::semid_ds) };
    check(r as i64, "semctl(IPC_SET)", || {
        format!("semaphore set {id}")
    })
    .map(drop)
}

// ---------------------------------------------------------------------------
// Message queues
// ---------------------------------------------------------------------------

/// msgget(2).
pub fn msgget(key: i32, flags: i32) -> Result<i32> {
    // SAFETY: integer arguments only.
    let r = unsafe { libc::msgget(key, flags) };
    check(r as i64, "msgget", || format!("key {key:#x}")).map(|r| r as i32)
}

/// What msgctl(2) IPC_STAT says about a queue.
#[derive(Debug, Clone, Copy)]
pub struct MsgStat {
    pub perm: IpcPerm,
    /// Messages in the queue.
    pub qnum: u64,
    /// Bytes in the queue.
    pub cbytes: u64,
    /// Most bytes it may hold.
    pub qbytes: u64,
}

fn msg_ds(id: i32) -> Result<libc::msqid_ds> {
    // SAFETY: msqid_ds is plain data; all-zero is a valid value.
    let mut ds: libc::msqid_ds = unsafe { std::mem::zeroed() };
    // SAFETY: IPC_STAT writes one msqid_ds into `ds`.
    let r = unsafe { libc::msgctl(id, libc::IPC_STAT, &mut ds) };
    check(r as i64, "msgctl(IPC_STAT)", || {
        format!("message queue {id}")
    })?;
    Ok(ds)
}

/// msgctl(2) IPC_STAT.
pub fn msg_stat(id: i32) -> Result<MsgStat> {
    let ds = msg_ds(id)?;
    Ok(MsgStat {
        perm: IpcPerm::from_libc(&ds.msg_perm),
        qnum: ds.msg_qnum,
        cbytes: ds.__msg_cbytes,
        qbytes: ds.msg_qbytes,
    })
}

/// msgctl(2) IPC_SET of owner, group, permission bits and `qbytes`.
/// Raising `qbytes` above the namespace's `msgmnb` needs
/// CAP_SYS_RESOURCE.
pub fn msg_set(id: i32, perm: &IpcPerm, qbytes: u64) -> Result<()> {
    let mut ds = msg_ds(id)?;
    perm.set_into(&mut ds.msg_perm);
    ds.msg_qbytes = qbytes;
    // SAFETY: IPC_SET reads one msqid_ds.
    let r = unsafe { libc::msgctl(id, libc::IPC_SET, &mut ds) };
    check(r as i64, "msgctl(IPC_SET)", || {
        format!("message queue {id}")
    })
    .map(drop)
}

/// msgrcv(2) with MSG_COPY | IPC_NOWAIT: a copy of the message at
/// position `index` (0 is the oldest) of queue `id`, which stays queued.
/// `buf` receives its type (the first 8 bytes) and text; a text longer
/// than `buf.len() - 8` fails with E2BIG. Returns (mtype, text length):
/// the text is `buf[8..8 + len]`. One buffer serves a whole queue.
pub fn msg_copy(id: i32, index: u64, buf: &mut [u8]) -> Result<(i64, usize)> {
    let max = buf.len().checked_sub(8).ok_or(SysError::Call {
        call: "msgrcv(MSG_COPY)",
        what: "a buffer shorter than the message type".into(),
        errno: libc::EINVAL,
    })?;
    // SAFETY: the buffer holds a long (mtype) followed by `max` bytes,
    // the size passed; the kernel writes at most that.
    let r = unsafe {
        libc::msgrcv(
            id,
            buf.as_mut_ptr() as *mut libc::c_void,
            max,
            index as libc::c_long,
            libc::MSG_COPY | libc::IPC_NOWAIT,
        )
    };
    let n = check(r as i64, "msgrcv(MSG_COPY)", || {
        format!("message {index} of queue {id}")
    })? as usize;
    let mtype = i64::from_ne_bytes(buf[..8].try_into().expect("8 bytes"));
    Ok((mtype, n))
}

/// msgsnd(2) with IPC_NOWAIT: a full queue is an error (EAGAIN).
pub fn msgsnd(id: i32, mtype: i64, text: &[u8]) -> Result<()> {
    let mut buf = Vec::with_capacity(8 + text.len());
    buf.extend_from_slice(&mtype.to_ne_bytes());
    buf.extend_from_slice(text);
    // SAFETY: the buffer holds a long (mtype) followed by `text.len()`
    // bytes, the size passed; the kernel only reads it.
    let r = unsafe {
        libc::msgsnd(
            id,
            buf.as_ptr() as *const libc::c_void,
            text.len(),
            libc::IPC_NOWAIT,
        )
    };
    check(r as i64, "msgsnd", || {
        format!("{} bytes of type {mtype} to queue {id}", text.len())
    })
    .map(drop)
}

//! clone3(2) with `set_tid`: create a process with a chosen PID.

use crate::error::{Result, SysError};

/// `struct clone_args` of clone3(2).
#[repr(C)]
#[derive(Default)]
pub(crate) struct CloneArgs {
    pub flags: u64,
    pub pidfd: u64,
    pub child_tid: u64,
    pub parent_tid: u64,
    pub exit_signal: u64,
    pub stack: u64,
    pub stack_size: u64,
    pub tls: u64,
    pub set_tid: u64,
    pub set_tid_size: u64,
    pub cgroup: u64,
}

/// Size of `struct clone_args` (CLONE_ARGS_SIZE_VER2).
pub const CLONE_ARGS_SIZE: usize = std::mem::size_of::<CloneArgs>();

/// Forks the calling process so that the child gets exactly `pid` in our
/// PID namespace. Returns 0 in the child and the child's pid in the parent,
/// like fork(2). With `sibling`, the child is created as a child of our
/// own parent (CLONE_PARENT), so it outlives us without being reparented.
///
/// # Safety
/// Like fork(2): the caller must be single-threaded, because the child gets
/// a copy of only the calling thread, and must only do what is safe after a
/// fork in the child.
pub unsafe fn fork_with_pid(pid: i32, exit_signal: i32, sibling: bool) -> Result<i32> {
    // SAFETY: the caller's obligations are those of fork_sharing.
    unsafe { fork_sharing(pid, exit_signal, sibling, 0) }
}

/// [`fork_with_pid`], also sharing what `share` (CLONE_FILES, CLONE_FS)
/// names with the child.
///
/// # Safety
/// As [`fork_with_pid`].
pub unsafe fn fork_sharing(pid: i32, exit_signal: i32, sibling: bool, share: u64) -> Result<i32> {
    let tids = [pid];
    let args = CloneArgs {
        // CLONE_PARENT: the child becomes our sibling (a child of our
        // parent), which then also gets its exit signal.
        flags: share
            | if sibling {
                libc::CLONE_PARENT as u64
            } else {
                0
            },
        exit_signal: if sibling { 0 } else { exit_signal as u64 },
        set_tid: tids.as_ptr() as u64,
        set_tid_size: 1,
        ..Default::default()
    };
    // SAFETY: `args` and `tids` outlive the call; without CLONE_VM the
    // child gets its own copy of memory, so this behaves like fork(2),
    // whose other obligations the caller took on.
    let r = unsafe { libc::syscall(libc::SYS_clone3, &args as *const CloneArgs, CLONE_ARGS_SIZE) };
    if r < 0 {
        return Err(SysError::last("clone3", format!("pid {pid}")));
    }
    Ok(r as i32)
}

/// The bytes of a `struct clone_args` creating a thread with tid
/// `*set_tid_ptr`, for a clone3 run inside a target. `set_tid_ptr` is the
/// target address of a u32/i32 array of length 1 holding the tid.
pub fn thread_clone_args(flags: u64, set_tid_ptr: u64) -> Vec<u8> {
    let a = CloneArgs {
        flags,
        set_tid: set_tid_ptr,
        set_tid_size: 1,
        ..Default::default()
    };
    let words = [
        a.flags,
        a.pidfd,
        a.child_tid,
        a.parent_tid,
        a.exit_signal,
        a.stack,
        a.stack_size,
        a.tls,
        a.set_tid,
        a.set_tid_size,
        a.cgroup,
    ];
    words.iter().flat_map(|w| w.to_ne_bytes()).collect()
}

/// Forks the calling process into a new PID namespace (CLONE_NEWPID): the
/// child is its PID 1 (its init). Returns 0 in the child and the child's
/// pid in our namespace in the parent. With `sibling`, as in
/// [`fork_with_pid`].
///
/// # Safety
/// As [`fork_with_pid`].
pub unsafe fn fork_into_pidns(sibling: bool) -> Result<i32> {
    let mut flags = libc::CLONE_NEWPID as u64;
    if sibling {
        flags |= libc::CLONE_PARENT as u64;
    }
    let args = CloneArgs {
        flags,
        exit_signal: if sibling { 0 } else { libc::SIGCHLD as u64 },
        ..Default::default()
    };
    // SAFETY: `args` outlives the call; without CLONE_VM this behaves like
    // fork(2), whose other obligations the caller took on.
    let r = unsafe { libc::syscall(libc::SYS_clone3, &args as *const CloneArgs, CLONE_ARGS_SIZE) };
    if r < 0 {
        return Err(SysError::last("clone3", "CLONE_NEWPID"));
    }
    Ok(r as i32)
}

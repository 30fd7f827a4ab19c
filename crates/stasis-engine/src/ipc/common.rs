//! What the System V kinds (`msg`, `sem`, `shm`) and the sysctls share:
//! reading /proc/sysvipc, the `*_next_id` files that choose the id of the
//! next object, and the errors of [`super::restore`]. It uses none of its
//! siblings, so they depend on it and not on each other.

use stasis_image::SysvMsgQueue;

use crate::error::{DumpError, RestoreError};

/// `kernel.shm_next_id`, `sem_next_id`, `msg_next_id`.
pub const NEXT_ID: [&str; 3] = [
    "/proc/sys/kernel/shm_next_id",
    "/proc/sys/kernel/sem_next_id",
    "/proc/sys/kernel/msg_next_id",
];

/// The rows of /proc/sysvipc/`kind` (of the caller's namespace).
pub fn read_rows(root: i32, kind: &str) -> Result<Vec<stasis_proc::SysvipcEntry>, DumpError> {
    let path = format!("/proc/sysvipc/{kind}");
    let text = std::fs::read_to_string(&path).map_err(|source| DumpError::Io {
        pid: root,
        path,
        source,
    })?;
    crate::procfs::parsed(root, stasis_proc::parse_sysvipc(&text))
}

/// The `msg_qbytes` a queue is filled with: its own, or more if it holds
/// more bytes, or more messages (each also counts against it).
pub fn fill_qbytes(q: &SysvMsgQueue) -> u64 {
    let bytes: u64 = q.messages.iter().map(|m| m.text.len() as u64).sum();
    q.qbytes.max(bytes).max(q.messages.len() as u64)
}

/// Every failure of [`super::restore`] happens before the tree's first process
/// exists (and the new namespace goes away with the restorer): the image
/// cannot be restored here.
pub fn failed(what: impl std::fmt::Display) -> RestoreError {
    RestoreError::Refused(format!("cannot restore the IPC namespace: {what}"))
}

/// Writes `id` to the `kernel.*_next_id` sysctl `file`, so the next object
/// of that kind gets exactly that id.
pub fn set_next_id(file: &str, id: i32) -> Result<(), RestoreError> {
    std::fs::write(file, id.to_string())
        .map_err(|e| failed(format_args!("cannot write {id} to {file}: {e}")))
}

/// After creating an object meant to get `want`: the kernel hands out the
/// next free index if that one is taken, which must not happen in a new
/// namespace.
pub fn check_id(what: &str, want: i32, got: i32) -> Result<(), RestoreError> {
    if want != got {
        return Err(failed(format_args!(
            "{what} {want} was created with id {got} instead"
        )));
    }
    Ok(())
}

/// A failed IPC syscall of the restorer, naming the step and object.
pub fn rst_err(what: String) -> impl FnOnce(stasis_sys::SysError) -> RestoreError {
    move |source| failed(format_args!("{what}: {source}"))
}

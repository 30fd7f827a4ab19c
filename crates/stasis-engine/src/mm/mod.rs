//! Memory: VMAs, their pages, the mm fields and the vDSO.
//!
//! What is dumped: private anonymous pages that are present or swapped
//! (never the shared zero page, so untouched or only-read memory stays
//! untouched after restore); the anonymous (COW) copies inside private
//! file mappings; and the populated extents of shared anonymous memory.
//! Clean file pages are never dumped: files are mapped again at restore.
//! Pages of a VMA without read access (PROT_NONE or execute-only after an
//! mprotect) hold data all the same: they are dumped too, read through
//! `/proc/PID/mem` (process_vm_readv cannot read them), and restore
//! fills them before it sets the final protections.
//!
//! System V shared memory segments are attached again with shmat(2) at
//! their addresses (their contents belong to [`crate::ipc`], which keeps
//! them only for a tree in an IPC namespace of its own; elsewhere a
//! mapping of one is refused).
//!
//! What is refused at dump: device and hugetlbfs mappings, VM_IO/VM_PFNMAP
//! areas, mlocked or sealed memory, shadow stacks, SysV segments of a
//! shared IPC namespace, and anything else restore could not rebuild.

pub mod cow;
pub mod dedup;
pub mod dump;
pub mod restore;

/// Page size of x86_64.
pub const PAGE: u64 = 4096;

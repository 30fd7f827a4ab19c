//! Dump and restore orchestration.
//!
//! One module per kind of resource ([`mm`], [`threads`], [`signals`],
//! [`timers`], [`files`], [`identity`]). Each has a `dump_*` half that
//! reads a frozen target into image records and a `restore_*` half that
//! rebuilds it in a new process. [`Resource`] lists the kinds; the dump
//! driver matches on it exhaustively, so a kind that is added but not
//! wired in is a compile error rather than silently skipped state.
//!
//! Resource modules see a process only through the two handles of
//! [`handle`] (the frozen process at dump, the process being rebuilt at
//! restore) and never import the drivers ([`dump`](mod@dump),
//! [`restore`](mod@restore)), which sit on top. ARCHITECTURE.md at the
//! root of the repository draws the layers and the phases.
//!
//! [`ipc`] is not per process: a tree with an IPC namespace of its own
//! takes the namespace's System V objects along, dumped once for the tree
//! and recreated before its first process.

pub mod check;
pub mod dump;
pub mod error;
pub mod files;
pub mod handle;
pub mod identity;
pub mod ipc;
pub mod mm;
pub mod pidns;
pub mod procfs;
pub mod restore;
pub mod sched;
pub mod signals;
pub mod threads;
pub mod timers;
mod trampoline;
pub mod tree;

pub use dump::{dump, DumpOptions, DumpReport};
pub use error::{DumpError, RestoreError};
pub use restore::{restore, RestoreOptions, Restored};

/// Every kind of state a process image holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resource {
    /// Credentials, rlimits, cwd/root, umask, personality, prctl bits.
    Identity,
    /// Descriptors: files, directories, devices, terminals, pipes.
    Files,
    /// VMAs and their pages, the mm fields, the vDSO.
    Memory,
    /// Signal dispositions and process-wide pending signals.
    Signals,
    /// Interval timers and POSIX timers.
    Timers,
    /// Per-thread registers, FPU state, masks, rseq, robust list, names.
    Threads,
}

impl Resource {
    /// All kinds, in dump order.
    pub const ALL: [Resource; 6] = [
        Resource::Identity,
        Resource::Files,
        Resource::Memory,
        Resource::Signals,
        Resource::Timers,
        Resource::Threads,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Resource::Identity => "identity",
            Resource::Files => "files",
            Resource::Memory => "memory",
            Resource::Signals => "signals",
            Resource::Timers => "timers",
            Resource::Threads => "threads",
        }
    }
}

/// Receives progress from long operations (the CLI draws a bar).
pub trait Progress {
    /// A new phase with `total` units (bytes for memory), or 0 if unknown.
    fn phase(&self, name: &str, total: u64);
    fn advance(&self, units: u64);
}

/// A [`Progress`] that shows nothing.
pub struct NoProgress;

impl Progress for NoProgress {
    fn phase(&self, _: &str, _: u64) {}
    fn advance(&self, _: u64) {}
}

/// Fault injection for tests: `STASIS_FAIL_AT=<point>` makes the named
/// point fail, so tests can check that a failure leaves the target running
/// or kills a half-restored tree.
pub(crate) fn fault_point(point: &str) -> bool {
    std::env::var("STASIS_FAIL_AT").is_ok_and(|v| v.split(',').any(|p| p == point))
}

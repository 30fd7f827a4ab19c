//! The two handles through which a resource module sees a process.
//!
//! - [`Frozen`] ([`frozen`]): the dump side. A seized, interrupted process
//!   whose state a resource module reads (/proc, registers) and in which it
//!   runs remote syscalls. Every thread is armed against the dumper's death
//!   first ([`guard`]), so a dump that dies leaves the target as it was.
//! - [`Target`] ([`target`]): the restore side. A half-restored process,
//!   ptrace-stopped on its trampoline, into which a resource module writes
//!   memory and in which it runs remote syscalls.
//!
//! This module sits at the bottom of the engine: every resource module
//! (`mm`, `files`, `threads`, ...) may use it, and it uses none of them. The
//! drivers (`dump`, `restore`) sit on top and make the
//! handles; no resource module imports a driver.

pub mod frozen;
pub mod guard;
pub mod target;

pub use frozen::{Frozen, FrozenTree};
pub use target::{words, Target};

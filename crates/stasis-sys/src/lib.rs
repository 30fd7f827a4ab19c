//! Thin, typed wrappers over the kernel interfaces stasis needs.
//!
//! This is the only crate that calls syscalls through `unsafe`. Every block
//! says why it is sound. Values that live in the *target* process have their
//! own types ([`RemoteAddr`], [`RemoteFd`]) so they are never mistaken for
//! the dumper's own addresses or descriptors.

pub mod clone;
pub mod error;
pub mod evfd;
pub mod file;
pub mod inetsock;
pub mod mem;
pub mod mqueue;
pub mod pidfd;
pub mod probe;
pub mod ptrace;
pub mod remote;
pub mod sched;
pub mod sigframe;
pub mod sockdiag;
pub mod sysvipc;
pub mod tty;
pub mod unixsock;
pub mod uring;
pub mod util;

pub use error::SysError;

/// An address in the target's address space.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RemoteAddr(pub u64);

impl RemoteAddr {
    pub fn offset(self, by: u64) -> RemoteAddr {
        RemoteAddr(self.0 + by)
    }
}

impl std::fmt::LowerHex for RemoteAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::LowerHex::fmt(&self.0, f)
    }
}

/// A descriptor number in the target's fd table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RemoteFd(pub i32);

/// Returns the errno of the last failed libc call.
pub(crate) fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

//! A half-restored process seen from the restorer: its threads are
//! ptrace-stopped and run syscalls from the trampoline page, whose second
//! half is scratch memory for syscall arguments.

use stasis_sys::remote::RemoteThread;
use stasis_sys::{mem, RemoteAddr};

use crate::error::{RestoreError, SysCtx};

pub struct Target {
    pub pid: i32,
    /// Address of the trampoline's `syscall` instruction.
    pub syscall_at: RemoteAddr,
    pub scratch: RemoteAddr,
    pub scratch_len: u64,
}

impl Target {
    pub fn thread(&self, tid: i32) -> RemoteThread {
        RemoteThread {
            tid,
            syscall_at: self.syscall_at,
        }
    }

    /// Runs a syscall in `tid`; a failure names the step.
    pub fn call(
        &self,
        tid: i32,
        name: &'static str,
        nr: i64,
        args: &[u64],
    ) -> Result<u64, RestoreError> {
        self.thread(tid)
            .syscall(name, nr, args)
            .rst_ctx(self.pid, name)
    }

    /// Like [`call`] in the leader.
    pub fn lcall(&self, name: &'static str, nr: i64, args: &[u64]) -> Result<u64, RestoreError> {
        self.call(self.pid, name, nr, args)
    }

    /// Copies `data` into scratch memory at `off` and returns its address.
    pub fn put(&self, off: u64, data: &[u8]) -> Result<u64, RestoreError> {
        assert!(
            off + data.len() as u64 <= self.scratch_len,
            "scratch overflow"
        );
        let at = self.scratch.offset(off);
        mem::write(self.pid, at, data).rst_ctx(self.pid, "write scratch")?;
        Ok(at.0)
    }
}

/// Serialises u64 words to bytes in native order.
pub fn words(w: &[u64]) -> Vec<u8> {
    w.iter().flat_map(|x| x.to_ne_bytes()).collect()
}

//! A half-restored process seen from the restorer: its threads are
//! ptrace-stopped and run syscalls from the trampoline page, whose second
//! half is scratch memory for syscall arguments.
//!
//! Two kinds of ids meet here. The image's pids and tids are the ones the
//! process sees (inside its PID namespace, with `--pidns`); they go into
//! syscall arguments. ptrace, process_vm_* and /proc take the restorer's
//! (host) ids. [`Target::pid`] is the host pid, [`Target::ns_pid`] the
//! image's, and every `tid` parameter below is an image tid, translated
//! with [`Target::host`].

use std::cell::RefCell;
use std::collections::BTreeMap;

use stasis_sys::remote::RemoteThread;
use stasis_sys::{mem, RemoteAddr};

use crate::error::{RestoreError, SysCtx};

pub struct Target {
    /// Host pid: for ptrace, process_vm_* and /proc.
    pub pid: i32,
    /// The pid the process sees (the image's).
    pub ns_pid: i32,
    /// Address of the trampoline's `syscall` instruction.
    pub syscall_at: RemoteAddr,
    pub scratch: RemoteAddr,
    pub scratch_len: u64,
    /// Image tid -> host tid, where they differ.
    pub tids: RefCell<BTreeMap<i32, i32>>,
}

impl Target {
    /// The host tid of image tid `tid`.
    pub fn host(&self, tid: i32) -> i32 {
        if tid == self.ns_pid {
            return self.pid;
        }
        self.tids.borrow().get(&tid).copied().unwrap_or(tid)
    }

    /// Image tid `tid` as a remote-syscall runner.
    pub fn thread(&self, tid: i32) -> RemoteThread {
        RemoteThread {
            tid: self.host(tid),
            syscall_at: self.syscall_at,
            ret_frame: None,
        }
    }

    /// Runs a syscall in image tid `tid`; a failure names the step.
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
        self.call(self.ns_pid, name, nr, args)
    }

    /// Moves descriptor `got`, which a remote syscall just made in the
    /// leader (with O_CLOEXEC, as pidfd_open and io_uring_setup do), to
    /// number `want` with the close-on-exec bit `cloexec`.
    pub fn place_fd(&self, got: i32, want: i32, cloexec: bool) -> Result<(), RestoreError> {
        if got != want {
            let flags = if cloexec { libc::O_CLOEXEC } else { 0 };
            self.lcall(
                "dup3",
                libc::SYS_dup3,
                &[got as u64, want as u64, flags as u64],
            )?;
            self.lcall("close", libc::SYS_close, &[got as u64])?;
        } else if !cloexec {
            self.lcall(
                "fcntl(F_SETFD)",
                libc::SYS_fcntl,
                &[got as u64, libc::F_SETFD as u64, 0],
            )?;
        }
        Ok(())
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

//! Bulk access to another process's memory: process_vm_readv(2) and
//! process_vm_writev(2).

use crate::error::{Result, SysError};
use crate::RemoteAddr;

/// Largest iovec count one call takes (IOV_MAX).
const IOV_MAX: usize = 1024;

/// Reads the remote ranges `(addr, len)` back to back into `buf`, whose
/// length must be the sum of the lengths. Short reads are an error: the
/// caller asked for pages it knows are mapped.
pub fn read_ranges(pid: i32, ranges: &[(RemoteAddr, usize)], buf: &mut [u8]) -> Result<()> {
    let total: usize = ranges.iter().map(|r| r.1).sum();
    assert_eq!(total, buf.len(), "buffer must match the ranges");
    let mut done = 0usize;
    for chunk in ranges.chunks(IOV_MAX) {
        let len: usize = chunk.iter().map(|r| r.1).sum();
        let remote: Vec<libc::iovec> = chunk
            .iter()
            .map(|(a, l)| libc::iovec {
                iov_base: a.0 as *mut libc::c_void,
                iov_len: *l,
            })
            .collect();
        let mut got = 0usize;
        while got < len {
            // Recompute the remote iovecs past what was already read.
            let (rv, _) = skip_iov(&remote, got);
            let local = libc::iovec {
                iov_base: buf[done + got..].as_mut_ptr().cast(),
                iov_len: len - got,
            };
            let nr = rv.len() as u64;
            // SAFETY: `local` points into `buf`, which is valid for writes of
            // `len - got` bytes; the remote iovecs are only read by the kernel
            // and describe the other process's memory, never ours.
            let n = unsafe { libc::process_vm_readv(pid, &local, 1, rv.as_ptr(), nr, 0) };
            if n < 0 {
                return Err(SysError::last(
                    "process_vm_readv",
                    format!("pid {pid} at {:#x}", chunk[0].0 .0),
                ));
            }
            if n == 0 {
                return Err(SysError::Tracee {
                    tid: pid,
                    what: format!("short read of memory near {:#x}", chunk[0].0 .0),
                });
            }
            got += n as usize;
        }
        done += len;
    }
    Ok(())
}

/// Reads `buf.len()` bytes at `addr`.
pub fn read(pid: i32, addr: RemoteAddr, buf: &mut [u8]) -> Result<()> {
    let len = buf.len();
    read_ranges(pid, &[(addr, len)], buf)
}

/// Writes `data` at `addr` in the other process.
pub fn write(pid: i32, addr: RemoteAddr, data: &[u8]) -> Result<()> {
    let mut done = 0usize;
    while done < data.len() {
        let local = libc::iovec {
            iov_base: data[done..].as_ptr() as *mut libc::c_void,
            iov_len: data.len() - done,
        };
        let remote = libc::iovec {
            iov_base: (addr.0 + done as u64) as *mut libc::c_void,
            iov_len: data.len() - done,
        };
        // SAFETY: the kernel only reads from `local`, which points into
        // `data`; `remote` describes the other process's memory.
        let n = unsafe { libc::process_vm_writev(pid, &local, 1, &remote, 1, 0) };
        if n <= 0 {
            return Err(SysError::last(
                "process_vm_writev",
                format!("pid {pid} at {:#x}", addr.0),
            ));
        }
        done += n as usize;
    }
    Ok(())
}

/// The remote iovecs that remain after skipping `skip` bytes.
fn skip_iov(iov: &[libc::iovec], mut skip: usize) -> (Vec<libc::iovec>, usize) {
    let mut out = Vec::with_capacity(iov.len());
    for v in iov {
        if skip >= v.iov_len {
            skip -= v.iov_len;
            continue;
        }
        out.push(libc::iovec {
            iov_base: (v.iov_base as usize + skip) as *mut libc::c_void,
            iov_len: v.iov_len - skip,
        });
        skip = 0;
    }
    let n = out.len();
    (out, n)
}

/// Reads of another process's memory through `/proc/PID/mem`.
///
/// process_vm_readv pins the pages it reads (FOLL_PIN), and the kernel
/// (since 5.19) unshares an anonymous page that is still shared
/// copy-on-write with another process before pinning it: every reader gets
/// its own copy, so reading a tree's COW memory that way would multiply it.
/// `/proc/PID/mem` takes plain references and leaves the sharing as it is,
/// at some cost in speed; use it for pages mapped more than once.
pub struct ProcMem {
    pid: i32,
    file: std::fs::File,
}

impl ProcMem {
    /// Opens `/proc/PID/mem` for reading (the caller must be allowed to
    /// ptrace `pid`).
    pub fn open(pid: i32) -> Result<Self> {
        let path = format!("/proc/{pid}/mem");
        let file = std::fs::File::open(&path).map_err(|e| SysError::Call {
            call: "open",
            what: path,
            errno: e.raw_os_error().unwrap_or(libc::EIO),
        })?;
        Ok(ProcMem { pid, file })
    }

    /// Reads `buf.len()` bytes at `addr`. Short reads are an error.
    pub fn read(&self, addr: RemoteAddr, buf: &mut [u8]) -> Result<()> {
        use std::os::unix::fs::FileExt;
        self.file
            .read_exact_at(buf, addr.0)
            .map_err(|e| SysError::Call {
                call: "pread",
                what: format!("/proc/{}/mem at {:#x}", self.pid, addr.0),
                errno: e.raw_os_error().unwrap_or(libc::EIO),
            })
    }
}

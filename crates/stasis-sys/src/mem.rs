//! Bulk access to another process's memory: process_vm_readv(2) and
//! process_vm_writev(2).

use crate::error::{Result, SysError};
use crate::RemoteAddr;

/// Largest iovec count one call takes (IOV_MAX).
const IOV_MAX: usize = 1024;

/// Reads the remote ranges `(addr, len)` back to back into `buf`, whose
/// length must be the sum of the lengths. Short reads are an error, which
/// names the first address that could not be read: the caller asked for
/// pages it knows are mapped and readable.
pub fn read_ranges(pid: i32, ranges: &[(RemoteAddr, usize)], buf: &mut [u8]) -> Result<()> {
    let n = read_ranges_partial(pid, ranges, buf)?;
    if n == buf.len() {
        return Ok(());
    }
    let at = addr_at(ranges, n).map_or(0, |a| a.0);
    Err(SysError::Call {
        call: "process_vm_readv",
        what: format!("pid {pid} at {at:#x} (not mapped, or not readable)"),
        errno: libc::EFAULT,
    })
}

/// Like [`read_ranges`], but a page that cannot be read ends the read
/// instead of failing it: returns how many bytes were read, which is less
/// than `buf.len()` only if the byte after them could not be read (not
/// mapped, or mapped without read access, such as PROT_NONE). Other
/// failures (the process is gone, no permission) are errors.
///
/// process_vm_readv(2) stops at the first page it cannot read and returns
/// a short count (inside an iovec, despite what the man page says), or
/// EFAULT if it read nothing at all.
pub fn read_ranges_partial(
    pid: i32,
    ranges: &[(RemoteAddr, usize)],
    buf: &mut [u8],
) -> Result<usize> {
    let total: usize = ranges.iter().map(|r| r.1).sum();
    if total != buf.len() {
        return Err(SysError::Call {
            call: "process_vm_readv",
            what: format!(
                "pid {pid}: {total} bytes of ranges into a buffer of {}",
                buf.len()
            ),
            errno: libc::EINVAL,
        });
    }
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
            if (n < 0 && crate::errno() == libc::EFAULT) || n == 0 {
                // `local` is ours and valid: the remote page at `got` is
                // the one that cannot be read.
                return Ok(done + got);
            }
            if n < 0 {
                let at = addr_at(chunk, got).map_or(0, |a| a.0);
                return Err(SysError::last(
                    "process_vm_readv",
                    format!("pid {pid} at {at:#x}"),
                ));
            }
            got += n as usize;
        }
        done += len;
    }
    Ok(done)
}

/// The remote address `off` bytes into the ranges laid back to back.
fn addr_at(ranges: &[(RemoteAddr, usize)], mut off: usize) -> Option<RemoteAddr> {
    for &(a, l) in ranges {
        if off < l {
            return Some(RemoteAddr(a.0 + off as u64));
        }
        off -= l;
    }
    None
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Three pages of our own, all written with 0xab, then the middle one
    /// made PROT_NONE. Unmapped on drop.
    struct Holed(*mut libc::c_void);

    impl Holed {
        fn new() -> Holed {
            // SAFETY: a fresh private anonymous mapping; nothing else uses it.
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    3 * 4096,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            assert_ne!(p, libc::MAP_FAILED);
            // SAFETY: `p` maps 3 writable pages.
            unsafe { std::ptr::write_bytes(p.cast::<u8>(), 0xab, 3 * 4096) };
            // SAFETY: the middle page of our mapping, which nothing borrows.
            let r = unsafe { libc::mprotect(p.cast::<u8>().add(4096).cast(), 4096, 0) };
            assert_eq!(r, 0);
            Holed(p)
        }

        fn addr(&self, page: u64) -> RemoteAddr {
            RemoteAddr(self.0 as u64 + page * 4096)
        }
    }

    impl Drop for Holed {
        fn drop(&mut self) {
            // SAFETY: unmaps the mapping made in `new`, no longer used.
            unsafe { libc::munmap(self.0, 3 * 4096) };
        }
    }

    #[test]
    fn partial_read_stops_at_the_unreadable_page() {
        let h = Holed::new();
        let me = std::process::id() as i32;
        let mut buf = vec![0u8; 3 * 4096];
        let n = read_ranges_partial(me, &[(h.addr(0), 3 * 4096)], &mut buf).unwrap();
        assert_eq!(n, 4096);
        assert!(buf[..4096].iter().all(|&b| b == 0xab));
        // Starting on the hole reads nothing.
        let n = read_ranges_partial(me, &[(h.addr(1), 2 * 4096)], &mut buf[..8192]).unwrap();
        assert_eq!(n, 0);
        // Across iovecs: the first is read, the second stops at once.
        let ranges = [(h.addr(2), 4096), (h.addr(1), 4096)];
        let n = read_ranges_partial(me, &ranges, &mut buf[..8192]).unwrap();
        assert_eq!(n, 4096);
    }

    #[test]
    fn short_read_names_the_unreadable_address() {
        let h = Holed::new();
        let me = std::process::id() as i32;
        let mut buf = vec![0u8; 3 * 4096];
        let e = read_ranges(me, &[(h.addr(0), 3 * 4096)], &mut buf).unwrap_err();
        assert_eq!(e.errno(), Some(libc::EFAULT));
        let want = format!("{:#x}", h.addr(1).0);
        assert!(e.to_string().contains(&want), "{e}");
    }

    #[test]
    fn mismatched_buffer_is_an_error() {
        let me = std::process::id() as i32;
        let mut buf = [0u8; 8];
        let x = 0u64;
        let r = read_ranges(me, &[(RemoteAddr(&x as *const u64 as u64), 4)], &mut buf);
        assert_eq!(r.unwrap_err().errno(), Some(libc::EINVAL));
    }

    #[test]
    fn proc_mem_reads_prot_none_pages() {
        let h = Holed::new();
        let m = ProcMem::open(std::process::id() as i32).unwrap();
        let mut buf = vec![0u8; 3 * 4096];
        m.read(h.addr(0), &mut buf).unwrap();
        assert!(buf.iter().all(|&b| b == 0xab));
    }
}

//! userfaultfd(2) and the PAGEMAP_SCAN ioctl: the dirty-page tracking
//! stasis uses for pre-dumps, tried end to end on our own memory.

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::{ProbeError, Result};

// x86_64 UAPI values, spelled out so we do not depend on which of them a
// given libc release exports.
const UFFD_USER_MODE_ONLY: libc::c_int = 1;
const UFFD_API: u64 = 0xAA;
/// `_IOWR(0xAA, 0x3F, struct uffdio_api)`.
const UFFDIO_API: libc::c_ulong = 0xC018_AA3F;
/// `_IOWR(0xAA, 0x00, struct uffdio_register)`.
const UFFDIO_REGISTER: libc::c_ulong = 0xC020_AA00;
const UFFDIO_REGISTER_MODE_WP: u64 = 1 << 1;

/// Every userfaultfd feature bit the kernel may report, by name.
pub const UFFD_FEATURES: [(u64, &str); 17] = [
    (1 << 0, "PAGEFAULT_FLAG_WP"),
    (1 << 1, "EVENT_FORK"),
    (1 << 2, "EVENT_REMAP"),
    (1 << 3, "EVENT_REMOVE"),
    (1 << 4, "MISSING_HUGETLBFS"),
    (1 << 5, "MISSING_SHMEM"),
    (1 << 6, "EVENT_UNMAP"),
    (1 << 7, "SIGBUS"),
    (1 << 8, "THREAD_ID"),
    (1 << 9, "MINOR_HUGETLBFS"),
    (1 << 10, "MINOR_SHMEM"),
    (1 << 11, "EXACT_ADDRESS"),
    (1 << 12, "WP_HUGETLBFS_SHMEM"),
    (1 << 13, "WP_UNPOPULATED"),
    (1 << 14, "POISON"),
    (1 << 15, "WP_ASYNC"),
    (1 << 16, "MOVE"),
];
pub const UFFD_FEATURE_WP_UNPOPULATED: u64 = 1 << 13;
pub const UFFD_FEATURE_WP_ASYNC: u64 = 1 << 15;

/// `_IOWR('f', 16, struct pm_scan_arg)`.
const PAGEMAP_SCAN: libc::c_ulong = 0xC060_6610;
const PM_SCAN_WP_MATCHING: u64 = 1 << 0;
const PM_SCAN_CHECK_WPASYNC: u64 = 1 << 1;
pub const PAGE_IS_WRITTEN: u64 = 1 << 1;
pub const PAGE_IS_PRESENT: u64 = 1 << 3;

fn page_size() -> usize {
    // SAFETY: sysconf only reads a constant of the running system.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 {
        n as usize
    } else {
        4096
    }
}

/// An anonymous private mapping of our own, unmapped on drop.
struct Anon {
    addr: *mut u8,
    len: usize,
}

impl Anon {
    fn new(pages: usize) -> Result<Anon> {
        let len = pages * page_size();
        // SAFETY: a fresh private anonymous mapping at an address the kernel
        // picks; it overlaps nothing of ours.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(ProbeError::last("mmap"));
        }
        // No (m)THP: a fault must populate exactly the page touched.
        // SAFETY: advice on the mapping we just made; it changes no data.
        unsafe { libc::madvise(addr, len, libc::MADV_NOHUGEPAGE) };
        Ok(Anon {
            addr: addr.cast(),
            len,
        })
    }

    fn start(&self) -> u64 {
        self.addr as u64
    }

    /// Writes one byte into page `i`, faulting it in.
    fn touch(&self, i: usize) {
        assert!(i * page_size() < self.len);
        // SAFETY: the offset is inside the mapping (checked above), which is
        // readable and writable and owned by this struct.
        unsafe { std::ptr::write_volatile(self.addr.add(i * page_size()), 0x5a) };
    }
}

impl Drop for Anon {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `new`; no reference into
        // it outlives `self`.
        unsafe { libc::munmap(self.addr.cast(), self.len) };
    }
}

#[repr(C)]
#[derive(Default)]
struct UffdioApi {
    api: u64,
    features: u64,
    ioctls: u64,
}

#[repr(C)]
#[derive(Default)]
struct UffdioRegister {
    start: u64,
    len: u64,
    mode: u64,
    ioctls: u64,
}

#[repr(C)]
#[derive(Default)]
struct PmScanArg {
    size: u64,
    flags: u64,
    start: u64,
    end: u64,
    walk_end: u64,
    vec: u64,
    vec_len: u64,
    max_pages: u64,
    category_inverted: u64,
    category_mask: u64,
    category_anyof_mask: u64,
    return_mask: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
struct PageRegion {
    start: u64,
    end: u64,
    categories: u64,
}

fn userfaultfd() -> Result<OwnedFd> {
    // SAFETY: userfaultfd takes flags and returns a new fd.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_userfaultfd,
            libc::O_CLOEXEC | libc::O_NONBLOCK | UFFD_USER_MODE_ONLY,
        )
    };
    if fd < 0 {
        return Err(ProbeError::last("userfaultfd"));
    }
    // SAFETY: a fresh fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn uffdio_api(fd: &OwnedFd, features: u64) -> Result<UffdioApi> {
    let mut api = UffdioApi {
        api: UFFD_API,
        features,
        ioctls: 0,
    };
    // SAFETY: UFFDIO_API reads and writes one struct uffdio_api.
    if unsafe { libc::ioctl(fd.as_raw_fd(), UFFDIO_API, &mut api) } < 0 {
        return Err(ProbeError::last("UFFDIO_API"));
    }
    Ok(api)
}

/// What userfaultfd offers: the feature bits of a UFFDIO_API handshake
/// made with features=0, and the ioctl mask.
#[derive(Debug, Clone, Copy)]
pub struct UffdInfo {
    pub features: u64,
    pub ioctls: u64,
}

/// userfaultfd(O_CLOEXEC|UFFD_USER_MODE_ONLY) + UFFDIO_API(features=0).
pub fn uffd_features() -> Result<UffdInfo> {
    let fd = userfaultfd()?;
    let api = uffdio_api(&fd, 0)?;
    Ok(UffdInfo {
        features: api.features,
        ioctls: api.ioctls,
    })
}

/// Names of the feature bits set in `features`.
pub fn uffd_feature_names(features: u64) -> Vec<&'static str> {
    UFFD_FEATURES
        .iter()
        .filter(|(bit, _)| features & bit != 0)
        .map(|&(_, name)| name)
        .collect()
}

/// One PAGEMAP_SCAN call over `[start, end)`; returns the regions found.
fn pagemap_scan(
    pagemap: &File,
    start: u64,
    end: u64,
    flags: u64,
    category_mask: u64,
    return_mask: u64,
) -> Result<Vec<PageRegion>> {
    let mut out = [PageRegion::default(); 16];
    let mut arg = PmScanArg {
        size: std::mem::size_of::<PmScanArg>() as u64,
        flags,
        start,
        end,
        vec: out.as_mut_ptr() as u64,
        vec_len: out.len() as u64,
        category_mask,
        return_mask,
        ..PmScanArg::default()
    };
    // SAFETY: PAGEMAP_SCAN reads `arg`, writes at most `vec_len` regions
    // into `out` (which has that many), and updates `arg.walk_end`.
    let n = unsafe { libc::ioctl(pagemap.as_raw_fd(), PAGEMAP_SCAN, &mut arg) };
    if n < 0 {
        return Err(ProbeError::last("PAGEMAP_SCAN"));
    }
    Ok(out[..n as usize].to_vec())
}

/// Turns regions into sorted page indices relative to `base`.
fn pages_of(regions: &[PageRegion], base: u64) -> Vec<usize> {
    let ps = page_size() as u64;
    let mut pages = Vec::new();
    for r in regions {
        let mut a = r.start;
        while a < r.end {
            pages.push(((a - base) / ps) as usize);
            a += ps;
        }
    }
    pages
}

/// PAGEMAP_SCAN on /proc/self/pagemap over 8 fresh anonymous pages of
/// which 0, 2 and 3 were written. Returns the page indices it reported
/// present; the right answer is `[0, 2, 3]`.
pub fn pagemap_scan_present() -> Result<Vec<usize>> {
    let pagemap = File::open("/proc/self/pagemap")
        .map_err(|e| ProbeError::other("open pagemap", e.to_string()))?;
    let m = Anon::new(8)?;
    for i in [0, 2, 3] {
        m.touch(i);
    }
    let regions = pagemap_scan(
        &pagemap,
        m.start(),
        m.start() + m.len as u64,
        0,
        PAGE_IS_PRESENT,
        PAGE_IS_PRESENT,
    )?;
    Ok(pages_of(&regions, m.start()))
}

/// The dirty tracking stasis uses instead of soft-dirty, end to end on 8
/// pages of our own: a userfaultfd with WP_ASYNC|WP_UNPOPULATED, the range
/// registered for write-protect, a PAGEMAP_SCAN with PM_SCAN_WP_MATCHING
/// that protects every page, then writes to page 2 (populated before) and
/// page 7 (never touched). Returns the pages a second scan reports
/// written; the right answer is `[2, 7]`.
pub fn uffd_wp_dirty_tracking() -> Result<Vec<usize>> {
    let pagemap = File::open("/proc/self/pagemap")
        .map_err(|e| ProbeError::other("open pagemap", e.to_string()))?;
    let m = Anon::new(8)?;
    for i in 0..6 {
        m.touch(i);
    }
    let uffd = userfaultfd()?;
    uffdio_api(&uffd, UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED)?;
    let mut reg = UffdioRegister {
        start: m.start(),
        len: m.len as u64,
        mode: UFFDIO_REGISTER_MODE_WP,
        ioctls: 0,
    };
    // SAFETY: UFFDIO_REGISTER reads and writes one struct uffdio_register;
    // the range is our own mapping, which outlives the uffd (dropped first).
    if unsafe { libc::ioctl(uffd.as_raw_fd(), UFFDIO_REGISTER, &mut reg) } < 0 {
        return Err(ProbeError::last("UFFDIO_REGISTER(WP)"));
    }
    let (start, end) = (m.start(), m.start() + m.len as u64);
    // Round 1: report what was written so far and write-protect it.
    pagemap_scan(
        &pagemap,
        start,
        end,
        PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
        PAGE_IS_WRITTEN,
        PAGE_IS_WRITTEN,
    )?;
    m.touch(2);
    m.touch(7);
    // Round 2: only what was written since round 1.
    let regions = pagemap_scan(
        &pagemap,
        start,
        end,
        PM_SCAN_CHECK_WPASYNC,
        PAGE_IS_WRITTEN,
        PAGE_IS_WRITTEN,
    )?;
    drop(uffd);
    Ok(pages_of(&regions, start))
}

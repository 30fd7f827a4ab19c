//! The machine under test: /proc and /sys readings, filesystems, and
//! warming guest RAM before a timed step.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

/// A `/proc/meminfo` field, in bytes.
pub fn meminfo(field: &str) -> Option<u64> {
    let s = fs::read_to_string("/proc/meminfo").ok()?;
    s.lines().find_map(|l| {
        let rest = l.strip_prefix(field)?.strip_prefix(':')?;
        let kib: u64 = rest.split_whitespace().next()?.parse().ok()?;
        Some(kib * 1024)
    })
}

pub fn cmd_stdout(prog: &str, args: &[&str]) -> String {
    Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "?".into())
}

pub fn read_trim(path: &str) -> String {
    fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".into())
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Total size (apparent bytes, allocated bytes) of the files in `dir`.
pub fn dir_size(dir: &Path) -> (u64, u64) {
    let mut total = (0, 0);
    for e in fs::read_dir(dir).expect("read image dir").flatten() {
        let m = e.metadata().expect("stat image file");
        if m.is_file() {
            total.0 += m.len();
            total.1 += m.blocks() * 512;
        } else if m.is_dir() {
            let (a, b) = dir_size(&e.path());
            total.0 += a;
            total.1 += b;
        }
    }
    total
}

/// Filesystem of `path`: (`stat -f -c %T` output, fstype from mountinfo).
pub fn fs_type(path: &Path) -> (String, String) {
    let stat_f = cmd_stdout("stat", &["-f", "-c", "%T", path_str(path)]);
    let canon = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let mut best: Option<(usize, String)> = None;
    if let Ok(mi) = fs::read_to_string("/proc/self/mountinfo") {
        for line in mi.lines() {
            let Some((pre, post)) = line.split_once(" - ") else {
                continue;
            };
            let Some(mnt) = pre.split_whitespace().nth(4) else {
                continue;
            };
            let mnt = mnt.replace("\\040", " ");
            let Some(fstype) = post.split_whitespace().next() else {
                continue;
            };
            if canon.starts_with(&mnt) && best.as_ref().is_none_or(|(l, _)| mnt.len() >= *l) {
                best = Some((mnt.len(), fstype.to_string()));
            }
        }
    }
    (stat_f, best.map(|b| b.1).unwrap_or_else(|| "?".into()))
}

/// Faults in `bytes` of anonymous memory (transparent huge pages where
/// possible) and frees it again; returns the rate in GB/s.
///
/// This VM reports freed guest pages to the host (virtio-balloon free page
/// reporting), which drops them: the next touch of such a page faults on
/// the host too, several times slower than reuse. Any step that allocates
/// GiBs (cp's destination, an image on tmpfs or in the page cache, the
/// restored memory) pays that or not depending on timing. Touching the
/// memory right before the step hands it recently freed, host-resident
/// pages instead, so that cp and stasis are both measured warm.
pub fn prefault(bytes: u64) -> f64 {
    let len = bytes as usize;
    let t = Instant::now();
    // SAFETY: a fresh private anonymous mapping; no existing memory is
    // affected, and the result is checked before use.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return f64::NAN;
    }
    // SAFETY: `p..p+len` is the mapping made above; madvise only changes
    // how it is backed. Failure (no THP, no POPULATE_WRITE) is fine.
    let populated = unsafe {
        libc::madvise(p, len, libc::MADV_HUGEPAGE);
        libc::madvise(p, len, libc::MADV_POPULATE_WRITE) == 0
    };
    if !populated {
        for off in (0..len).step_by(4096) {
            // SAFETY: `off < len`, inside the writable mapping made above,
            // which nothing else references.
            unsafe { std::ptr::write_volatile((p as *mut u8).add(off), 1) };
        }
    }
    // SAFETY: unmapping exactly the mapping made above, not used after.
    unsafe { libc::munmap(p, len) };
    bytes as f64 / t.elapsed().as_secs_f64() / 1e9
}

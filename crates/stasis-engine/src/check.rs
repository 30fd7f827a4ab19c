//! `stasis check`: what this kernel supports, in plain words.
//!
//! Every probe exercises the interface it reports on (a real ptrace seize
//! of a throwaway child, a real clone3 with set_tid, a real PAGEMAP_SCAN,
//! ...) through [`stasis_sys::probe`]; none infers support from the kernel
//! version. A probe that fails reports the call and errno in its detail;
//! [`run`] never panics.
//!
//! `needed` marks what dump or restore cannot work without at all. The
//! rest either makes one kind of state restorable (POSIX timer ids), or
//! one mode possible (incremental pre-dump, lazy restore, cgroup freeze).

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use stasis_sys::probe::{self, ProbeError};

/// One line of `stasis check`.
#[derive(Debug, Clone)]
pub struct Feature {
    pub name: &'static str,
    /// The kernel has it (or, for a capability, we hold it).
    pub ok: bool,
    /// Dump/restore cannot work without it.
    pub needed: bool,
    /// Plain words: what was tried and what the kernel said.
    pub detail: String,
}

impl fmt::Display for Feature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = match (self.ok, self.needed) {
            (true, _) => "ok",
            (false, true) => "MISSING",
            (false, false) => "absent",
        };
        write!(f, "{status:<8}{:<24}{}", self.name, self.detail)
    }
}

/// What a probe found: whether the feature is there, and in what words.
type Probe = fn() -> Result<(bool, String), String>;

/// Runs every probe, in the order a user reads them.
pub fn run() -> Vec<Feature> {
    const PROBES: &[(&str, bool, Probe)] = &[
        ("kernel", true, kernel),
        ("root", false, root),
        ("CAP_SYS_PTRACE", true, cap_sys_ptrace),
        ("CAP_CHECKPOINT_RESTORE", true, cap_checkpoint_restore),
        ("CAP_SYS_ADMIN", false, cap_sys_admin),
        ("CAP_NET_ADMIN", false, cap_net_admin),
        ("CAP_SYS_RESOURCE", false, cap_sys_resource),
        ("ptrace", true, ptrace),
        ("clone3 set_tid", true, clone3_set_tid),
        ("pidfd_getfd", true, pidfd_getfd),
        ("process_vm_readv", true, process_vm_readv),
        ("PR_SET_MM_MAP", true, pr_set_mm_map),
        ("POSIX timer ids", false, timer_ids),
        ("vDSO", false, vdso),
        ("userfaultfd", false, userfaultfd),
        ("PAGEMAP_SCAN", false, pagemap_scan),
        ("dirty tracking", false, dirty_tracking),
        ("soft-dirty", false, soft_dirty),
        ("time namespace", false, time_namespace),
        ("cgroup v2 freezer", false, cgroup_freezer),
        ("fs.pipe-max-size", false, pipe_max_size),
        ("pid_max", false, pid_max),
    ];
    PROBES
        .iter()
        .map(|&(name, needed, probe)| {
            let (ok, detail) = match std::panic::catch_unwind(probe) {
                Ok(Ok(found)) => found,
                Ok(Err(e)) => (false, e),
                Err(_) => (false, "the probe itself failed (panicked)".to_string()),
            };
            Feature {
                name,
                ok,
                needed,
                detail,
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Helpers.

fn errno_name(e: i32) -> String {
    let name = match e {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::EACCES => "EACCES",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::EINVAL => "EINVAL",
        libc::ENOSYS => "ENOSYS",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::ENOTTY => "ENOTTY",
        libc::EROFS => "EROFS",
        _ => return format!("errno {e}"),
    };
    name.to_string()
}

/// "call failed: EPERM (Operation not permitted)".
fn failed(e: &ProbeError) -> String {
    match e.errno {
        Some(n) => format!("{} failed: {} ({})", e.call, errno_name(n), e.what),
        None => format!("{} failed: {}", e.call, e.what),
    }
}

fn read_trimmed(path: &str) -> Result<String, String> {
    fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|e| format!("cannot read {path}: {e}"))
}

fn read_number(path: &str) -> Result<u64, String> {
    let s = read_trimmed(path)?;
    s.parse()
        .map_err(|_| format!("{path} holds {s:?}, not a number"))
}

fn human_bytes(n: u64) -> String {
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 10 && n.is_multiple_of(1 << 10) {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} bytes")
    }
}

fn page_list(pages: &[usize]) -> String {
    let v: Vec<String> = pages.iter().map(|p| p.to_string()).collect();
    format!("[{}]", v.join(", "))
}

// ---------------------------------------------------------------------------
// Identity and capabilities.

fn kernel() -> Result<(bool, String), String> {
    let u = probe::uname().map_err(|e| failed(&e))?;
    let ok = u.machine == "x86_64";
    let mut detail = format!(
        "{} {} on {} ({})",
        u.sysname, u.release, u.machine, u.version
    );
    if !ok {
        detail.push_str("; stasis supports only x86_64 so far");
    }
    Ok((ok, detail))
}

fn root() -> Result<(bool, String), String> {
    let uid = probe::euid();
    if uid == 0 {
        Ok((true, "running as root (euid 0)".to_string()))
    } else {
        Ok((
            false,
            format!(
                "running as euid {uid}: stasis needs the capabilities below, \
                 which root normally has"
            ),
        ))
    }
}

const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_PTRACE: u32 = 19;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_SYS_RESOURCE: u32 = 24;
const CAP_CHECKPOINT_RESTORE: u32 = 40;

fn has_cap(cap: u32) -> Result<bool, String> {
    let caps = probe::effective_caps().map_err(|e| failed(&e))?;
    Ok(caps & (1u64 << cap) != 0)
}

fn cap_line(cap: u32, what: &str) -> Result<(bool, String), String> {
    let ok = has_cap(cap)?;
    let state = if ok { "present" } else { "absent" };
    Ok((ok, format!("{state} in the effective set (capget): {what}")))
}

fn cap_sys_ptrace() -> Result<(bool, String), String> {
    cap_line(
        CAP_SYS_PTRACE,
        "lets stasis seize and inspect processes it did not start",
    )
}

fn cap_checkpoint_restore() -> Result<(bool, String), String> {
    const WHAT: &str = "clone3 set_tid, PR_SET_MM_MAP, /proc/PID/map_files";
    if has_cap(CAP_CHECKPOINT_RESTORE)? {
        return Ok((
            true,
            format!("present in the effective set (capget): {WHAT}"),
        ));
    }
    if has_cap(CAP_SYS_ADMIN)? {
        return Ok((
            true,
            format!("absent, but CAP_SYS_ADMIN grants the same ({WHAT})"),
        ));
    }
    Ok((
        false,
        format!("absent, and so is CAP_SYS_ADMIN: restore cannot use {WHAT}"),
    ))
}

fn cap_sys_admin() -> Result<(bool, String), String> {
    cap_line(
        CAP_SYS_ADMIN,
        "namespaces, mounts, and stands in for CAP_CHECKPOINT_RESTORE",
    )
}

fn cap_net_admin() -> Result<(bool, String), String> {
    cap_line(
        CAP_NET_ADMIN,
        "TCP_REPAIR, for dumping and restoring established TCP connections",
    )
}

fn cap_sys_resource() -> Result<(bool, String), String> {
    let ok = has_cap(CAP_SYS_RESOURCE)?;
    let single = match probe::set_mm_single_errno() {
        Ok(0) => "a single PR_SET_MM_BRK worked".to_string(),
        Ok(e) => format!("a single PR_SET_MM_BRK gave {}", errno_name(e)),
        Err(e) => format!("a single PR_SET_MM_BRK could not be tried: {}", failed(&e)),
    };
    let detail = if ok {
        format!("present, though not needed ({single})")
    } else {
        format!(
            "absent, not needed: {single}, so stasis sets every mm field in one \
             PR_SET_MM_MAP call, which CAP_CHECKPOINT_RESTORE allows; pipes \
             stay within fs.pipe-max-size"
        )
    };
    Ok((ok, detail))
}

// ---------------------------------------------------------------------------
// Process interfaces.

fn ptrace() -> Result<(bool, String), String> {
    let r = probe::ptrace_child().map_err(|e| failed(&e))?;
    let rseq = if r.rseq_abi_pointer == 0 {
        "the child has no rseq area registered".to_string()
    } else {
        format!(
            "rseq area of {} bytes at {:#x}, signature {:#x}",
            r.rseq_abi_size, r.rseq_abi_pointer, r.rseq_signature
        )
    };
    Ok((
        true,
        format!(
            "PTRACE_SEIZE + PTRACE_INTERRUPT of a child (pid {}) worked; \
             PTRACE_GET_RSEQ_CONFIGURATION: {rseq}; NT_X86_XSTATE is {} bytes",
            r.child, r.xstate_size
        ),
    ))
}

/// A pid below pid_max, as high as possible, that /proc says is free.
fn free_pids(pid_max: u64, count: usize) -> Vec<i32> {
    (300..pid_max)
        .rev()
        .filter(|n| !Path::new(&format!("/proc/{n}")).exists())
        .filter_map(|n| i32::try_from(n).ok())
        .take(count)
        .collect()
}

fn clone3_set_tid() -> Result<(bool, String), String> {
    let pid_max = read_number("/proc/sys/kernel/pid_max")?;
    let candidates = free_pids(pid_max, 5);
    if candidates.is_empty() {
        return Err(format!("found no free pid below pid_max {pid_max}"));
    }
    let mut last = String::new();
    for pid in candidates {
        match probe::clone3_set_tid(pid) {
            Ok(got) => {
                return Ok((
                    true,
                    format!("clone3 made a child with the pid asked for ({got}, set_tid); it exited and was reaped"),
                ))
            }
            // Taken between our look at /proc and the call: try the next.
            Err(e) if e.errno == Some(libc::EEXIST) => last = failed(&e),
            Err(e) => {
                let why = match e.errno {
                    Some(libc::EPERM) => {
                        "; set_tid needs CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN"
                    }
                    Some(libc::ENOSYS) | Some(libc::E2BIG) => "; clone3 set_tid needs Linux 5.5",
                    _ => "",
                };
                return Ok((false, format!("asked for pid {pid}: {}{why}", failed(&e))));
            }
        }
    }
    Ok((
        false,
        format!("every free pid tried was taken meanwhile: {last}"),
    ))
}

fn pidfd_getfd() -> Result<(bool, String), String> {
    let fd = probe::pidfd_getfd_self().map_err(|e| failed(&e))?;
    Ok((
        true,
        format!(
            "pidfd_open on ourselves, then pidfd_getfd of one of our pipe fds \
             gave fd {fd}, the same pipe: the dumper can take every fd of a target"
        ),
    ))
}

fn process_vm_readv() -> Result<(bool, String), String> {
    let n = probe::process_vm_readv_self().map_err(|e| failed(&e))?;
    Ok((
        true,
        format!(
            "read {} of our own memory and it matched",
            human_bytes(n as u64)
        ),
    ))
}

fn pr_set_mm_map() -> Result<(bool, String), String> {
    match probe::mm_map_size() {
        Ok(size) => Ok((
            true,
            format!(
                "PR_SET_MM_MAP_SIZE says struct prctl_mm_map is {size} bytes: \
                 restore can set all mm fields (brk, stack, args, env, auxv, exe) in one call"
            ),
        )),
        Err(e) => Ok((
            false,
            format!("{}; the kernel needs CONFIG_CHECKPOINT_RESTORE", failed(&e)),
        )),
    }
}

fn timer_ids() -> Result<(bool, String), String> {
    let state = match probe::timer_restore_ids_get() {
        Ok(v) => v,
        Err(e) if e.errno == Some(libc::EINVAL) => {
            return Ok((
                false,
                "prctl(PR_TIMER_CREATE_RESTORE_IDS) gave EINVAL (Linux 6.15+ has it): \
                 a process with POSIX timers cannot be restored with the same timer ids"
                    .to_string(),
            ))
        }
        Err(e) => return Err(failed(&e)),
    };
    match probe::timer_restore_ids_create() {
        Ok(()) => Ok((
            true,
            format!(
                "PR_TIMER_CREATE_RESTORE_IDS is there (currently {}); a child that \
                 turned it on got timer_create to use the id it asked for ({}): \
                 POSIX timers restore with their ids",
                if state == 1 { "on" } else { "off" },
                probe::PROBE_TIMER_ID
            ),
        )),
        Err(e) => Ok((
            false,
            format!(
                "PR_TIMER_CREATE_RESTORE_IDS answers, but timer_create with a chosen \
                 id did not work: {}",
                failed(&e)
            ),
        )),
    }
}

/// One special mapping from /proc/self/maps.
struct Special {
    name: String,
    start: u64,
    end: u64,
}

fn vdso() -> Result<(bool, String), String> {
    let maps = fs::read_to_string("/proc/self/maps")
        .map_err(|e| format!("cannot read /proc/self/maps: {e}"))?;
    let mut specials: Vec<Special> = Vec::new();
    for line in maps.lines() {
        let mut fields = line.split_whitespace();
        let range = fields.next().unwrap_or("");
        let Some(name) = fields.nth(4) else { continue };
        if !(name.starts_with("[vvar") || name == "[vdso]") {
            continue;
        }
        let Some((a, b)) = range.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end)) = (u64::from_str_radix(a, 16), u64::from_str_radix(b, 16)) else {
            continue;
        };
        specials.push(Special {
            name: name.to_string(),
            start,
            end,
        });
    }
    specials.sort_by_key(|s| s.start);
    if !specials.iter().any(|s| s.name == "[vdso]") {
        return Ok((
            false,
            "no [vdso] in /proc/self/maps (booted with vdso=0?)".to_string(),
        ));
    }
    let layout: Vec<String> = specials
        .iter()
        .map(|s| format!("{} {}", s.name, human_bytes(s.end - s.start)))
        .collect();
    let adjacent = specials.windows(2).all(|w| w[0].end == w[1].start);
    let first = specials.first().map_or(0, |s| s.start);
    let last = specials.last().map_or(0, |s| s.end);
    let block = if adjacent {
        format!(
            "adjacent, one {} block at {first:#x}",
            human_bytes(last - first)
        )
    } else {
        "not adjacent".to_string()
    };
    let map_vdso = match probe::map_vdso_errno() {
        Ok(libc::EEXIST) => {
            "arch_prctl(ARCH_MAP_VDSO_64) is there (EEXIST in a child that still had its vDSO)"
                .to_string()
        }
        Ok(0) => "arch_prctl(ARCH_MAP_VDSO_64) mapped a second vDSO in a test child".to_string(),
        Ok(e) => format!(
            "arch_prctl(ARCH_MAP_VDSO_64) gave {}: restore must move the vDSO with mremap",
            errno_name(e)
        ),
        Err(e) => format!("arch_prctl(ARCH_MAP_VDSO_64) not tried: {}", failed(&e)),
    };
    Ok((true, format!("{} ({block}); {map_vdso}", layout.join(", "))))
}

// ---------------------------------------------------------------------------
// Memory tracking.

fn userfaultfd() -> Result<(bool, String), String> {
    let info = probe::uffd_features().map_err(|e| failed(&e))?;
    let names = probe::uffd_feature_names(info.features);
    let has = |bit: u64| {
        if info.features & bit != 0 {
            "present"
        } else {
            "missing"
        }
    };
    let unknown = info.features & !probe::UFFD_FEATURES.iter().fold(0, |m, (b, _)| m | b);
    let mut detail = format!(
        "userfaultfd with {} feature bits (WP_ASYNC {}, WP_UNPOPULATED {}): {}",
        info.features.count_ones(),
        has(probe::UFFD_FEATURE_WP_ASYNC),
        has(probe::UFFD_FEATURE_WP_UNPOPULATED),
        names.join(" ")
    );
    if unknown != 0 {
        detail.push_str(&format!(" and unnamed bits {unknown:#x}"));
    }
    Ok((true, detail))
}

fn pagemap_scan() -> Result<(bool, String), String> {
    let pages = probe::pagemap_scan_present().map_err(|e| failed(&e))?;
    if pages == [0, 2, 3] {
        Ok((
            true,
            "the PAGEMAP_SCAN ioctl on /proc/self/pagemap found exactly the pages \
             we wrote (0, 2, 3 of 8)"
                .to_string(),
        ))
    } else {
        Ok((
            false,
            format!(
                "PAGEMAP_SCAN answered, but reported pages {} present where we wrote [0, 2, 3]",
                page_list(&pages)
            ),
        ))
    }
}

fn dirty_tracking() -> Result<(bool, String), String> {
    match probe::uffd_wp_dirty_tracking() {
        Ok(pages) if pages == [2, 7] => Ok((
            true,
            "uffd write-protect (WP_ASYNC) + PAGEMAP_SCAN with PM_SCAN_WP_MATCHING: \
             after protecting 8 pages, exactly the two written since (2, 7) came back: \
             pre-dump can copy only what changed"
                .to_string(),
        )),
        Ok(pages) => Ok((
            false,
            format!(
                "uffd-wp + PAGEMAP_SCAN answered, but reported pages {} written where \
                 we wrote [2, 7]: pre-dumps would copy everything",
                page_list(&pages)
            ),
        )),
        Err(e) => Ok((
            false,
            format!("{}: pre-dumps would copy everything each time", failed(&e)),
        )),
    }
}

fn soft_dirty() -> Result<(bool, String), String> {
    let smaps = fs::read_to_string("/proc/self/smaps")
        .map_err(|e| format!("cannot read /proc/self/smaps: {e}"))?;
    let sd = smaps
        .lines()
        .filter_map(|l| l.strip_prefix("VmFlags:"))
        .any(|flags| flags.split_whitespace().any(|f| f == "sd"));
    if sd {
        Ok((
            true,
            "\"sd\" appears in /proc/self/smaps VmFlags; stasis still tracks dirty \
             pages with uffd-wp + PAGEMAP_SCAN"
                .to_string(),
        ))
    } else {
        Ok((
            false,
            "no \"sd\" in /proc/self/smaps VmFlags: the kernel was built without \
             CONFIG_MEM_SOFT_DIRTY; not needed: stasis tracks dirty pages with uffd-wp + PAGEMAP_SCAN instead"
                .to_string(),
        ))
    }
}

// ---------------------------------------------------------------------------
// Namespaces, cgroups, limits.

fn time_namespace() -> Result<(bool, String), String> {
    match fs::read_link("/proc/self/ns/time") {
        Ok(target) => {
            let offsets = fs::read_to_string("/proc/self/timens_offsets")
                .map(|s| {
                    s.lines()
                        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_else(|e| format!("timens_offsets unreadable: {e}"));
            Ok((
                true,
                format!(
                    "/proc/self/ns/time is {}; offsets: {offsets}",
                    target.display()
                ),
            ))
        }
        Err(e) => Ok((
            false,
            format!("/proc/self/ns/time: {e}; monotonic clocks cannot be kept across a restore"),
        )),
    }
}

/// cgroup v2 mount points, from /proc/self/mounts.
fn cgroup2_mounts() -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = fs::read_to_string("/proc/self/mounts")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() > 2 && f[2] == "cgroup2").then(|| PathBuf::from(f[1]))
        })
        .collect();
    for p in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] {
        let p = PathBuf::from(p);
        if !found.contains(&p) && p.join("cgroup.controllers").exists() {
            found.push(p);
        }
    }
    found
}

/// Our own cgroup v2 path ("0::/path" in /proc/self/cgroup).
fn own_cgroup2_path() -> String {
    fs::read_to_string("/proc/self/cgroup")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("0::").map(str::to_string))
        .unwrap_or_else(|| "/".to_string())
}

/// Removes the probe's cgroup however the probe ends.
struct TempCgroup(PathBuf);

impl Drop for TempCgroup {
    fn drop(&mut self) {
        let _ = fs::write(self.0.join("cgroup.freeze"), "0");
        let _ = fs::remove_dir(&self.0);
    }
}

/// Makes an empty child cgroup of `parent`, freezes and thaws it.
fn try_freeze(parent: &Path) -> Result<(), String> {
    let dir = parent.join(format!("stasis-check-{}", std::process::id()));
    fs::create_dir(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
    let cg = TempCgroup(dir);
    let freeze = cg.0.join("cgroup.freeze");
    let events = cg.0.join("cgroup.events");
    if !freeze.exists() {
        return Err(format!("{} has no cgroup.freeze", cg.0.display()));
    }
    fs::write(&freeze, "1").map_err(|e| format!("write {}: {e}", freeze.display()))?;
    let mut frozen = false;
    for _ in 0..50 {
        let ev =
            fs::read_to_string(&events).map_err(|e| format!("read {}: {e}", events.display()))?;
        if ev.lines().any(|l| l.trim() == "frozen 1") {
            frozen = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    if !frozen {
        return Err(format!("{} never said \"frozen 1\"", events.display()));
    }
    fs::write(&freeze, "0").map_err(|e| format!("write {}: {e}", freeze.display()))?;
    Ok(())
}

fn cgroup_freezer() -> Result<(bool, String), String> {
    let mounts = cgroup2_mounts();
    if mounts.is_empty() {
        let v1 = Path::new("/sys/fs/cgroup/freezer").exists();
        return Ok((
            false,
            format!(
                "no cgroup v2 mount{}; stasis freezes with ptrace alone",
                if v1 {
                    " (a v1 freezer is at /sys/fs/cgroup/freezer)"
                } else {
                    ""
                }
            ),
        ));
    }
    let own = own_cgroup2_path();
    let mut tried = Vec::new();
    for m in &mounts {
        let rel = own.trim_matches('/');
        let parent = if rel.is_empty() {
            m.clone()
        } else {
            m.join(rel)
        };
        let parent = if parent.is_dir() { parent } else { m.clone() };
        match try_freeze(&parent) {
            Ok(()) => {
                return Ok((
                    true,
                    format!(
                        "cgroup v2 at {}: a fresh child cgroup of {} froze and thawed \
                         through cgroup.freeze",
                        m.display(),
                        parent.display()
                    ),
                ))
            }
            Err(e) => tried.push(e),
        }
    }
    // Could not make a cgroup of our own: say whether the file is there.
    let present = mounts.iter().any(|m| {
        fs::read_dir(m)
            .map(|rd| {
                rd.flatten()
                    .any(|d| d.path().join("cgroup.freeze").exists())
            })
            .unwrap_or(false)
            || m.join(own.trim_start_matches('/'))
                .join("cgroup.freeze")
                .exists()
    });
    Ok((
        present,
        format!(
            "cgroup.freeze {} under {}; freezing a test cgroup failed: {}",
            if present { "exists" } else { "not found" },
            mounts
                .iter()
                .map(|m| m.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            tried.join("; ")
        ),
    ))
}

fn pipe_max_size() -> Result<(bool, String), String> {
    let max = read_number("/proc/sys/fs/pipe-max-size")?;
    let set = probe::pipe_set_size(max as usize).map_err(|e| failed(&e))?;
    let above = match probe::pipe_set_size(max as usize * 2) {
        Ok(n) => format!("{} was allowed too", human_bytes(n as u64)),
        Err(e) => match e.errno {
            Some(libc::EPERM) => format!(
                "{} was refused (EPERM): pipes holding more than {} at dump time \
                 need the sysctl raised before restore",
                human_bytes(max * 2),
                human_bytes(max)
            ),
            _ => format!("{} failed: {}", human_bytes(max * 2), failed(&e)),
        },
    };
    Ok((
        true,
        format!(
            "{max} ({}); F_SETPIPE_SZ to it gave a {} pipe; {above}",
            human_bytes(max),
            human_bytes(set as u64)
        ),
    ))
}

fn pid_max() -> Result<(bool, String), String> {
    let n = read_number("/proc/sys/kernel/pid_max")?;
    Ok((
        true,
        format!("{n}: restoring a process whose pid is {n} or higher needs it raised"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find<'a>(features: &'a [Feature], name: &str) -> &'a Feature {
        features
            .iter()
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("no feature named {name}"))
    }

    #[test]
    fn run_reports_this_machine() {
        let features = run();
        for f in &features {
            println!("{f}");
        }
        let mut names: Vec<&str> = features.iter().map(|f| f.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), features.len(), "duplicate feature names");
        assert!(features.iter().all(|f| !f.detail.is_empty()));

        assert!(find(&features, "kernel").ok);
        if probe::euid() != 0 {
            println!("skipped the root-only assertions: not running as root");
            return;
        }
        for name in [
            "ptrace",
            "pidfd_getfd",
            "clone3 set_tid",
            "process_vm_readv",
        ] {
            let f = find(&features, name);
            assert!(f.ok, "{name} should work as root here: {}", f.detail);
            assert!(f.needed);
        }
    }

    #[test]
    fn display_marks_missing_needed_features() {
        let f = Feature {
            name: "ptrace",
            ok: false,
            needed: true,
            detail: "x".to_string(),
        };
        assert!(f.to_string().starts_with("MISSING"));
    }

    #[test]
    fn human_bytes_reads_naturally() {
        assert_eq!(human_bytes(1 << 20), "1 MiB");
        assert_eq!(human_bytes(16 * 1024), "16 KiB");
        assert_eq!(human_bytes(2432), "2432 bytes");
    }
}

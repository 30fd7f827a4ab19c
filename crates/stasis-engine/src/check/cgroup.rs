//! The cgroup v2 freezer, tried on a fresh child cgroup of our own.

use std::fs;
use std::path::{Path, PathBuf};

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

pub(super) fn cgroup_freezer() -> Result<(bool, String), String> {
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

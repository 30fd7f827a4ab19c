//! The kernel and who we are: architecture, root, and the capabilities
//! dump and restore need.

use stasis_sys::probe;

use super::{errno_name, failed};

pub(super) fn kernel() -> Result<(bool, String), String> {
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

pub(super) fn root() -> Result<(bool, String), String> {
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

pub(super) fn cap_sys_ptrace() -> Result<(bool, String), String> {
    cap_line(
        CAP_SYS_PTRACE,
        "lets stasis seize and inspect processes it did not start",
    )
}

pub(super) fn cap_checkpoint_restore() -> Result<(bool, String), String> {
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

pub(super) fn cap_sys_admin() -> Result<(bool, String), String> {
    cap_line(
        CAP_SYS_ADMIN,
        "namespaces, mounts, and stands in for CAP_CHECKPOINT_RESTORE",
    )
}

pub(super) fn cap_net_admin() -> Result<(bool, String), String> {
    cap_line(
        CAP_NET_ADMIN,
        "TCP_REPAIR, for dumping and restoring established TCP connections",
    )
}

pub(super) fn cap_sys_resource() -> Result<(bool, String), String> {
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

//! Who a process is and how it is limited: credentials, capabilities,
//! securebits, rlimits, umask, cwd, root, personality and prctl bits.
//!
//! Credentials are per thread in Linux, so they are set from inside every
//! thread, last of all (later steps need the restorer's privileges). The
//! dumper refuses rlimits whose hard limit is above its own: without
//! CAP_SYS_RESOURCE restore could not raise them back.

use stasis_image::{Creds, Process, Rlimit};
use stasis_proc::Status;

use crate::error::{DumpError, RestoreError};
use crate::handle::{Frozen, Target};
use crate::procfs;

const PR_GET_PDEATHSIG: u64 = 2;
const PR_SET_PDEATHSIG: u64 = 1;
const PR_GET_DUMPABLE: u64 = 3;
const PR_SET_DUMPABLE: u64 = 4;
const PR_SET_KEEPCAPS: u64 = 8;
const PR_CAPBSET_DROP: u64 = 24;
const PR_GET_SECUREBITS: u64 = 27;
const PR_SET_SECUREBITS: u64 = 28;
const PR_SET_CHILD_SUBREAPER: u64 = 36;
const PR_GET_CHILD_SUBREAPER: u64 = 37;
const PR_SET_NO_NEW_PRIVS: u64 = 38;
const PR_CAP_AMBIENT: u64 = 47;
const PR_CAP_AMBIENT_RAISE: u64 = 2;
const SECBIT_KEEP_CAPS: u64 = 1 << 4;
const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// Fills the identity fields of `p`.
pub fn dump_identity(frozen: &Frozen, status: &Status, p: &mut Process) -> Result<(), DumpError> {
    let pid = frozen.pid;
    let scratch = frozen.scratch().0;
    let securebits = frozen.call(
        pid,
        "prctl(PR_GET_SECUREBITS)",
        libc::SYS_prctl,
        &[PR_GET_SECUREBITS],
    )?;
    p.creds = Some(Creds {
        uid: status.uid[0],
        euid: status.uid[1],
        suid: status.uid[2],
        fsuid: status.uid[3],
        gid: status.gid[0],
        egid: status.gid[1],
        sgid: status.gid[2],
        fsgid: status.gid[3],
        groups: status.groups.clone(),
        cap_inh: status.cap_inh,
        cap_prm: status.cap_prm,
        cap_eff: status.cap_eff,
        cap_bnd: status.cap_bnd,
        cap_amb: status.cap_amb,
        securebits: securebits as u32,
    });
    p.rlimits.extend(dump_rlimits(pid)?);
    p.umask = status.umask.unwrap_or(0o022);
    p.cwd = procfs::read_link(pid, "cwd")?;
    p.root = procfs::read_link(pid, "root")?;
    p.personality = frozen.call(pid, "personality", libc::SYS_personality, &[0xffff_ffff])? as u32;
    frozen.call(
        pid,
        "prctl(PR_GET_PDEATHSIG)",
        libc::SYS_prctl,
        &[PR_GET_PDEATHSIG, scratch],
    )?;
    p.pdeathsig = u32::from_ne_bytes(frozen.read_scratch(4)?[..4].try_into().expect("4"));
    frozen.call(
        pid,
        "prctl(PR_GET_CHILD_SUBREAPER)",
        libc::SYS_prctl,
        &[PR_GET_CHILD_SUBREAPER, scratch],
    )?;
    p.child_subreaper =
        u32::from_ne_bytes(frozen.read_scratch(4)?[..4].try_into().expect("4")) != 0;
    p.dumpable = frozen.call(
        pid,
        "prctl(PR_GET_DUMPABLE)",
        libc::SYS_prctl,
        &[PR_GET_DUMPABLE],
    )? as u32;
    p.no_new_privs = status.no_new_privs;
    p.thp_disable = crate::sched::dump_thp_disable(frozen)?;
    for path in [&p.cwd, &p.root] {
        if path.ends_with(" (deleted)") {
            return Err(DumpError::Refused {
                pid,
                what: format!("has a deleted directory {path} as cwd or root"),
            });
        }
    }
    Ok(())
}

/// Its resource limits; a hard limit above ours is refused, since
/// restore could not set it.
fn dump_rlimits(pid: i32) -> Result<Vec<Rlimit>, DumpError> {
    let mut out = Vec::new();
    let limits = procfs::parsed(
        pid,
        stasis_proc::parse_limits(&procfs::read_string(pid, "limits")?),
    )?;
    for l in &limits {
        let (_, our_max) = stasis_sys::util::getrlimit(l.resource).unwrap_or((0, u64::MAX));
        if l.hard > our_max {
            return Err(DumpError::Refused {
                pid,
                what: format!(
                    "has hard limit {} for {} above stasis's own ({}); restore could not set it without CAP_SYS_RESOURCE",
                    l.hard,
                    stasis_proc::rlimit_name(l.resource).unwrap_or("?"),
                    our_max
                ),
            });
        }
        out.push(Rlimit {
            resource: l.resource,
            cur: l.soft,
            max: l.hard,
        });
    }
    Ok(out)
}

/// Highest capability number this kernel knows.
fn cap_last_cap() -> u64 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

/// Sets credentials inside one thread. Runs after everything that needs
/// the restorer's privileges.
pub fn restore_creds(t: &Target, tid: i32, c: &Creds, nnp: bool) -> Result<(), RestoreError> {
    let last = cap_last_cap();
    for cap in 0..=last {
        if c.cap_bnd & (1 << cap) == 0 {
            t.call(
                tid,
                "prctl(PR_CAPBSET_DROP)",
                libc::SYS_prctl,
                &[PR_CAPBSET_DROP, cap],
            )?;
        }
    }
    t.call(
        tid,
        "prctl(PR_SET_SECUREBITS)",
        libc::SYS_prctl,
        &[PR_SET_SECUREBITS, c.securebits as u64 | SECBIT_KEEP_CAPS],
    )?;
    let groups: Vec<u8> = c.groups.iter().flat_map(|g| g.to_ne_bytes()).collect();
    let at = t.put(0, &groups)?;
    t.call(
        tid,
        "setgroups",
        libc::SYS_setgroups,
        &[c.groups.len() as u64, at],
    )?;
    t.call(
        tid,
        "setresgid",
        libc::SYS_setresgid,
        &[c.gid as u64, c.egid as u64, c.sgid as u64],
    )?;
    t.call(tid, "setfsgid", libc::SYS_setfsgid, &[c.fsgid as u64])?;
    t.call(
        tid,
        "setresuid",
        libc::SYS_setresuid,
        &[c.uid as u64, c.euid as u64, c.suid as u64],
    )?;
    t.call(tid, "setfsuid", libc::SYS_setfsuid, &[c.fsuid as u64])?;
    // capset v3: header {version, pid}, then two {effective, permitted,
    // inheritable} u32 triples (low and high words).
    let mut data = Vec::new();
    data.extend_from_slice(&LINUX_CAPABILITY_VERSION_3.to_ne_bytes());
    data.extend_from_slice(&0i32.to_ne_bytes());
    for shift in [0, 32] {
        for v in [c.cap_eff, c.cap_prm, c.cap_inh] {
            data.extend_from_slice(&((v >> shift) as u32).to_ne_bytes());
        }
    }
    let hdr = t.put(0, &data[..8])?;
    let body = t.put(8, &data[8..])?;
    t.call(tid, "capset", libc::SYS_capset, &[hdr, body])?;
    for cap in 0..=last {
        if c.cap_amb & (1 << cap) != 0 {
            t.call(
                tid,
                "prctl(PR_CAP_AMBIENT_RAISE)",
                libc::SYS_prctl,
                &[PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0],
            )?;
        }
    }
    let keep = u64::from(c.securebits as u64 & SECBIT_KEEP_CAPS != 0);
    t.call(
        tid,
        "prctl(PR_SET_KEEPCAPS)",
        libc::SYS_prctl,
        &[PR_SET_KEEPCAPS, keep],
    )?;
    if nnp {
        t.call(
            tid,
            "prctl(PR_SET_NO_NEW_PRIVS)",
            libc::SYS_prctl,
            &[PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0],
        )?;
    }
    Ok(())
}

/// Process-wide prctl state, set after the credentials (a uid change
/// resets dumpable and the parent-death signal).
pub fn restore_prctls(t: &Target, p: &Process) -> Result<(), RestoreError> {
    t.lcall(
        "prctl(PR_SET_DUMPABLE)",
        libc::SYS_prctl,
        &[PR_SET_DUMPABLE, p.dumpable as u64],
    )?;
    if p.child_subreaper {
        t.lcall(
            "prctl(PR_SET_CHILD_SUBREAPER)",
            libc::SYS_prctl,
            &[PR_SET_CHILD_SUBREAPER, 1],
        )?;
    }
    t.lcall(
        "prctl(PR_SET_PDEATHSIG)",
        libc::SYS_prctl,
        &[PR_SET_PDEATHSIG, p.pdeathsig as u64],
    )?;
    crate::sched::restore_thp_disable(t, p)
}

/// The part of identity set in ordinary Rust inside the new process,
/// before the memory switch: umask, personality, rlimits. (cwd and root
/// are set by the file restore, after files are opened.)
pub fn apply_in_child(p: &Process) -> Result<(), String> {
    stasis_sys::util::umask(p.umask);
    stasis_sys::util::personality(p.personality).map_err(|e| e.to_string())?;
    for l in &p.rlimits {
        stasis_sys::util::setrlimit(l.resource, l.cur, l.max).map_err(|e| {
            format!(
                "cannot set {} to {}/{}: {e}",
                stasis_proc::rlimit_name(l.resource).unwrap_or("?"),
                l.cur,
                l.max
            )
        })?;
    }
    Ok(())
}

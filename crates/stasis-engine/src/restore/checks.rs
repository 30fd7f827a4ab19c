//! The checks that ask the host, before a process is created: the image
//! fits this machine and kernel, every pid is free, every file is there and
//! unchanged. [`super::plan`] runs them; none of them changes anything
//! unless `dry` is false (a stale socket file is then removed, as restore
//! would do anyway before binding).

use std::path::Path;

use stasis_image::{self as img, Image, Process, VmaKind};
use stasis_sys::util;

use super::plan::{Problems, Sink};
use super::RestoreOptions;
use crate::error::{RestoreError, SysCtx};
use crate::files;

/// Our terminal, for --shell-job.
pub fn own_tty() -> Option<String> {
    (0..3).find(|fd| util::isatty(*fd)).and_then(|fd| {
        std::fs::read_link(format!("/proc/self/fd/{fd}"))
            .ok()
            .map(|p| p.display().to_string())
    })
}

/// Everything that can be checked before a process is created; stops at
/// the first problem. Restore runs the same checks through
/// [`super::plan::plan`].
pub fn validate(image: &Image, opts: &RestoreOptions) -> Result<(), RestoreError> {
    let mut sink = Sink::new(false);
    host(image, opts, false, &mut sink)
        .and_then(|()| sink.finish(()))
        .map_err(Problems::first)
}

/// The host checks, each failure into `sink`; `dry` leaves the system
/// untouched.
pub(super) fn host(
    image: &Image,
    opts: &RestoreOptions,
    dry: bool,
    sink: &mut Sink,
) -> Result<(), Problems> {
    let inv = &image.inventory;
    let refuse = |s: String| Err(RestoreError::Refused(s));
    if inv.arch != std::env::consts::ARCH {
        sink.check(refuse(format!(
            "image is for {}, this machine is {}",
            inv.arch,
            std::env::consts::ARCH
        )))?;
    }
    if inv.shell_job && !opts.shell_job {
        sink.check(refuse(
            "image was dumped with --shell-job; restore it with --shell-job".into(),
        ))?;
    }
    sink.check(crate::ipc::check_image(image))?;
    sink.check(check_pid_max(image))?;
    let ours = sink.must(own_vdso())?;
    for p in &image.processes {
        let pid = p.pid as i32;
        if !opts.pidns {
            sink.check(pids_free(p))?;
        }
        if p.zombie {
            continue;
        }
        sink.check(check_vdso(image, p, &ours))?;
        sink.check(files::check_files(p, &image.pipes, dry))?;
        sink.check(check_mapped(p))?;
        if p.exe_object == 0 {
            sink.check(check_same_file(pid, &p.exe_path, p.exe_id.as_ref()))?;
        }
        sink.check(check_creds(p))?;
    }
    if !opts.pidns {
        sink.check(check_ids_free(image))?;
    }
    Ok(())
}

/// The error for a pid (or tid) that is taken.
pub(super) fn in_use(holder: u32, what: String) -> RestoreError {
    RestoreError::PidInUse { holder, what }
}

fn pids_free(p: &Process) -> Result<(), RestoreError> {
    let pid = p.pid;
    if Path::new(&format!("/proc/{pid}")).exists() {
        return Err(in_use(pid, format!(
            "pid {pid} is in use; stop that process, restore elsewhere, or restore into a new PID namespace with --pidns"
        )));
    }
    if p.zombie {
        return Ok(());
    }
    for th in &p.threads {
        if Path::new(&format!("/proc/{}", th.tid)).exists() {
            return Err(in_use(
                th.tid,
                format!("tid {} of pid {pid} is in use", th.tid),
            ));
        }
    }
    Ok(())
}

/// vDSO: same code and same layout, or refuse.
fn check_vdso(image: &Image, p: &Process, ours: &Vdso) -> Result<(), RestoreError> {
    let inv = &image.inventory;
    let vd: Vec<_> = p
        .vmas
        .iter()
        .filter(|v| v.kind == VmaKind::Vdso as i32)
        .collect();
    if vd.is_empty() {
        return Ok(());
    }
    let base = vd
        .iter()
        .find(|v| v.name == "[vdso]")
        .map(|v| v.start)
        .unwrap_or(0);
    let layout: Vec<(String, i64, u64)> = vd
        .iter()
        .map(|v| {
            (
                v.name.clone(),
                (v.start as i64).wrapping_sub(base as i64),
                v.end.wrapping_sub(v.start),
            )
        })
        .collect();
    if layout != ours.0 || inv.vdso_hash != ours.1 {
        return Err(RestoreError::Refused(format!(
            "pid {}: the image's vDSO differs from this kernel's (dumped on {}, this is {}); restore on the same kernel",
            p.pid,
            inv.kernel_release,
            crate::procfs::kernel_release()
        )));
    }
    Ok(())
}

/// Every file the process maps is there and unchanged.
fn check_mapped(p: &Process) -> Result<(), RestoreError> {
    for v in &p.vmas {
        // Unlinked files come from the image.
        if v.kind != VmaKind::File as i32 || v.shmem_id != 0 {
            continue;
        }
        // A shared writable mapping writes its file: it may have
        // changed (through this very process); it must only exist.
        let writes_file =
            v.flags & libc::MAP_SHARED as u32 != 0 && v.prot & libc::PROT_WRITE as u32 != 0;
        check_same_file(
            p.pid as i32,
            &v.name,
            if writes_file { None } else { v.file.as_ref() },
        )?;
    }
    Ok(())
}

fn check_creds(p: &Process) -> Result<(), RestoreError> {
    let Some(c) = &p.creds else { return Ok(()) };
    if !nix::unistd::geteuid().is_root()
        && (c.uid != nix::unistd::getuid().as_raw() || c.cap_eff != 0)
    {
        return Err(RestoreError::Refused(format!(
            "pid {} ran as uid {} with capabilities {:#x}; only root may restore credentials it does not hold",
            p.pid, c.uid, c.cap_eff
        )));
    }
    Ok(())
}

/// clone3 cannot make a pid at or above `kernel.pid_max`: it fails with a
/// bare EINVAL once processes exist. Say so first, naming the pid. A new
/// PID namespace starts with the same limit, so this holds with --pidns
/// too.
fn check_pid_max(image: &Image) -> Result<(), RestoreError> {
    const PID_MAX: &str = "/proc/sys/kernel/pid_max";
    let max: u64 = std::fs::read_to_string(PID_MAX)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| RestoreError::Refused(format!("cannot read {PID_MAX}")))?;
    for p in &image.processes {
        let tids = p.threads.iter().map(|t| t.tid);
        let ids = [p.pid, p.pgid, p.sid].into_iter().chain(tids);
        if let Some(id) = ids.filter(|&id| u64::from(id) >= max).max() {
            let what = if id == p.pid {
                format!("pid {id}")
            } else {
                format!("pid {} needs id {id}, which", p.pid)
            };
            return Err(RestoreError::Refused(format!(
                "{what} is not below kernel.pid_max ({max}); raise it (sysctl -w kernel.pid_max={}) and restore again",
                id + 1
            )));
        }
    }
    Ok(())
}

/// A pid that no process has may still be taken as the process group or
/// session id of processes left over from the dumped tree; clone3 then
/// fails with EEXIST. Name them.
fn check_ids_free(image: &Image) -> Result<(), RestoreError> {
    let pids: std::collections::BTreeSet<u32> = image
        .processes
        .iter()
        .flat_map(|p| std::iter::once(p.pid).chain(p.threads.iter().map(|t| t.tid)))
        .collect();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Ok(());
    };
    for e in rd.flatten() {
        let Some(other) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pids.contains(&other) {
            return Err(in_use(other, format!(
                "pid {other} is in use; stop that process, restore elsewhere, or restore into a new PID namespace with --pidns"
            )));
        }
        let Ok(text) = std::fs::read_to_string(format!("/proc/{other}/stat")) else {
            continue;
        };
        let Ok(st) = stasis_proc::parse_stat(&text) else {
            continue;
        };
        for (id, what) in [(st.pgrp, "process group"), (st.session, "session")] {
            if pids.contains(&id) {
                return Err(in_use(other, format!(
                    "pid {id} is in use as the {what} of pid {other}, which is not part of the image; stop it, or restore into a new PID namespace with --pidns"
                )));
            }
        }
    }
    Ok(())
}

fn check_same_file(pid: i32, path: &str, id: Option<&img::FileId>) -> Result<(), RestoreError> {
    let st = nix::sys::stat::stat(path)
        .map_err(|e| RestoreError::Refused(format!("pid {pid}: {path} is gone ({e})")))?;
    if let Some(id) = id {
        let mtime = st.st_mtime * 1_000_000_000 + st.st_mtime_nsec;
        if st.st_size as u64 != id.size || mtime != id.mtime_ns {
            return Err(RestoreError::Refused(format!(
                "pid {pid}: mapped file {path} changed since the dump; restoring it would run different code or data"
            )));
        }
    }
    Ok(())
}

/// Layout of a vDSO block relative to its [vdso] (name, offset, size),
/// and the hash of its code.
type Vdso = (Vec<(String, i64, u64)>, u64);

/// Layout of our own vDSO block relative to [vdso], and its code hash.
fn own_vdso() -> Result<Vdso, RestoreError> {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    let maps = stasis_proc::parse_maps(&maps).unwrap_or_default();
    let vd: Vec<_> = maps
        .iter()
        .filter(|m| matches!(m.path.as_str(), "[vdso]" | "[vvar]" | "[vvar_vclock]"))
        .collect();
    let Some(v) = vd.iter().find(|m| m.path == "[vdso]") else {
        return Ok((Vec::new(), 0));
    };
    let mut buf = vec![0u8; (v.end - v.start) as usize];
    stasis_sys::mem::read(
        std::process::id() as i32,
        stasis_sys::RemoteAddr(v.start),
        &mut buf,
    )
    .rst_ctx(0, "read own vDSO")?;
    let layout = vd
        .iter()
        .map(|m| {
            (
                m.path.clone(),
                m.start as i64 - v.start as i64,
                m.end - m.start,
            )
        })
        .collect();
    Ok((layout, xxhash_rust::xxh3::xxh3_64(&buf)))
}

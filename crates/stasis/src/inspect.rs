//! `stasis inspect`: what an image holds, as text or JSON (like CRIU's crit).

use std::path::Path;

use anyhow::Result;
use serde_json::{json, Value};
use stasis_image::{FdKind, Image, VmaKind};

pub fn human(bytes: u64) -> String {
    const U: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1024.0 && i < U.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", U[i])
    }
}

pub fn run(dir: &Path, json: bool, full: bool) -> Result<()> {
    let image = stasis_image::read_core(dir)?;
    // An image is only complete with its pages file (header and size
    // checked; the runs' hashes are restore's job).
    stasis_image::PagesReader::open_image(dir, &image.inventory)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&to_json(&image, full))?);
        return Ok(());
    }
    let inv = &image.inventory;
    println!(
        "image format {} from stasis {}, kernel {} ({}), root pid {}{}",
        inv.format_major,
        inv.tool_version,
        inv.kernel_release,
        inv.arch,
        inv.root_pid,
        if inv.shell_job { ", shell job" } else { "" }
    );
    for p in &image.processes {
        let pages: u64 = image
            .pagemaps
            .iter()
            .filter(|m| m.pid == p.pid)
            .flat_map(|m| &m.runs)
            .map(|r| r.nr_pages * 4096)
            .sum();
        if p.zombie {
            println!(
                "pid {} ppid {} pgid {} sid {} zombie, exit status {:#x}",
                p.pid, p.ppid, p.pgid, p.sid, p.exit_status
            );
            continue;
        }
        let c = p.creds.clone().unwrap_or_default();
        println!(
            "pid {} ppid {} pgid {} sid {} uid {} gid {} exe {}",
            p.pid, p.ppid, p.pgid, p.sid, c.uid, c.gid, p.exe_path
        );
        println!(
            "  {} threads, {} mappings, {} fds, {} of pages, {} signal handlers, {} POSIX timers, {} interval timers",
            p.threads.len(),
            p.vmas.len(),
            p.fds.len(),
            human(pages),
            p.sigactions.len(),
            p.posix_timers.len(),
            p.itimers.len()
        );
        for t in &p.threads {
            let rip = t.regs.as_ref().map(|r| r.rip).unwrap_or(0);
            println!(
                "  thread {} '{}' rip {rip:#x} {} pending signals",
                t.tid,
                t.comm,
                t.pending.len()
            );
        }
        if full {
            for v in &p.vmas {
                println!(
                    "  vma {:x}-{:x} prot {} flags {:#x} {:?} {}",
                    v.start,
                    v.end,
                    v.prot,
                    v.flags,
                    VmaKind::try_from(v.kind).unwrap_or(VmaKind::Anon),
                    v.name
                );
            }
        }
        for f in &p.fds {
            println!(
                "  fd {} {:?} {} flags {:#o} pos {}",
                f.fd,
                FdKind::try_from(f.kind).unwrap_or(FdKind::Regular),
                if f.kind == FdKind::Pipe as i32 {
                    format!("pipe:[{}]", f.pipe_ino)
                } else {
                    f.path.clone()
                },
                f.flags,
                f.pos
            );
        }
    }
    for m in image.pagemaps.iter().filter(|m| m.shmem_id != 0) {
        let bytes: u64 = m.runs.iter().map(|r| r.nr_pages * 4096).sum();
        println!(
            "shared memory object {} of {}, {} of pages",
            m.shmem_id,
            human(m.shmem_size),
            human(bytes)
        );
    }
    if let Some(ns) = &inv.ipc {
        print_ipc(ns);
    }
    Ok(())
}

/// The tree's own IPC namespace and its System V objects.
fn print_ipc(ns: &stasis_image::IpcNamespace) {
    println!(
        "IPC namespace of its own: {} shared memory segments, {} semaphore sets, {} message queues",
        ns.shm.len(),
        ns.sem.len(),
        ns.msg.len()
    );
    for s in &ns.shm {
        let bytes: u64 = s.runs.iter().map(|r| r.nr_pages * 4096).sum();
        println!(
            "  shm {} key {:#010x} mode {:o} uid {} gid {}: {}, {} of pages{}",
            s.id,
            s.key,
            s.mode,
            s.uid,
            s.gid,
            human(s.size),
            human(bytes),
            if s.removed { ", removed" } else { "" }
        );
    }
    for s in &ns.sem {
        println!(
            "  sem {} key {:#010x} mode {:o} uid {} gid {}: values {:?}",
            s.id, s.key, s.mode, s.uid, s.gid, s.values
        );
    }
    for q in &ns.msg {
        println!(
            "  msg {} key {:#010x} mode {:o} uid {} gid {}: {} messages, {} bytes, qbytes {}",
            q.id,
            q.key,
            q.mode,
            q.uid,
            q.gid,
            q.messages.len(),
            q.messages.iter().map(|m| m.text.len()).sum::<usize>(),
            q.qbytes
        );
    }
}

fn to_json(image: &Image, full: bool) -> Value {
    let inv = &image.inventory;
    let procs: Vec<Value> = image
        .processes
        .iter()
        .map(|p| {
            let runs: Vec<_> = image.pagemaps.iter().filter(|m| m.pid == p.pid).flat_map(|m| &m.runs).collect();
            let mut v = json!({
                "pid": p.pid, "ppid": p.ppid, "pgid": p.pgid, "sid": p.sid,
                "zombie": p.zombie, "exit_status": p.exit_status, "exit_signal": p.exit_signal,
                "exe": p.exe_path, "cwd": p.cwd, "root": p.root, "umask": p.umask,
                "creds": p.creds.as_ref().map(|c| json!({
                    "uid": [c.uid, c.euid, c.suid, c.fsuid], "gid": [c.gid, c.egid, c.sgid, c.fsgid],
                    "groups": c.groups, "cap_eff": format!("{:#x}", c.cap_eff), "cap_prm": format!("{:#x}", c.cap_prm),
                })),
                "threads": p.threads.iter().map(|t| json!({
                    "tid": t.tid, "comm": t.comm, "rip": t.regs.as_ref().map(|r| r.rip),
                    "sigmask": format!("{:#x}", t.sigmask), "pending": t.pending.iter().map(|s| s.signo).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
                "fds": p.fds.iter().map(|f| json!({
                    "fd": f.fd, "kind": format!("{:?}", FdKind::try_from(f.kind).unwrap_or(FdKind::Regular)),
                    "path": f.path, "flags": f.flags, "pos": f.pos, "cloexec": f.cloexec, "desc": f.desc,
                })).collect::<Vec<_>>(),
                "sigactions": p.sigactions.iter().map(|a| json!({"signo": a.signo, "handler": format!("{:#x}", a.handler), "flags": format!("{:#x}", a.flags)})).collect::<Vec<_>>(),
                "posix_timers": p.posix_timers.iter().map(|t| json!({"id": t.id, "clock": t.clock_id, "signo": t.signo, "value_ns": t.value_ns, "interval_ns": t.interval_ns})).collect::<Vec<_>>(),
                "itimers": p.itimers.iter().map(|t| json!({"which": t.which, "value_us": t.value_us, "interval_us": t.interval_us})).collect::<Vec<_>>(),
                "vmas": p.vmas.len(),
                "page_runs": runs.len(),
                "pages_bytes": runs.iter().map(|r| r.nr_pages * 4096).sum::<u64>(),
            });
            if full {
                v["vmas"] = Value::Array(
                    p.vmas
                        .iter()
                        .map(|m| json!({"start": format!("{:#x}", m.start), "end": format!("{:#x}", m.end), "prot": m.prot, "flags": m.flags, "name": m.name}))
                        .collect(),
                );
            }
            v
        })
        .collect();
    json!({
        "format": inv.format_major, "tool_version": inv.tool_version, "kernel": inv.kernel_release,
        "arch": inv.arch, "root_pid": inv.root_pid, "shell_job": inv.shell_job,
        "pages_file_size": inv.pages_file_size, "processes": procs,
        "shmem": image.pagemaps.iter().filter(|m| m.shmem_id != 0).map(|m| json!({"id": m.shmem_id, "size": m.shmem_size, "page_runs": m.runs.len()})).collect::<Vec<_>>(),
        "pipes": image.pipes.iter().map(|p| json!({"ino": p.ino, "capacity": p.capacity, "bytes": p.data.len()})).collect::<Vec<_>>(),
        "ipc": inv.ipc.as_ref().map(|ns| json!({
            "shm": ns.shm.iter().map(|s| json!({"id": s.id, "key": s.key, "mode": s.mode, "uid": s.uid, "gid": s.gid, "size": s.size, "page_runs": s.runs.len(), "removed": s.removed})).collect::<Vec<_>>(),
            "sem": ns.sem.iter().map(|s| json!({"id": s.id, "key": s.key, "mode": s.mode, "uid": s.uid, "gid": s.gid, "values": s.values})).collect::<Vec<_>>(),
            "msg": ns.msg.iter().map(|q| json!({"id": q.id, "key": q.key, "mode": q.mode, "uid": q.uid, "gid": q.gid, "qbytes": q.qbytes, "messages": q.messages.iter().map(|m| json!({"mtype": m.mtype, "bytes": m.text.len()})).collect::<Vec<_>>()})).collect::<Vec<_>>(),
            "sysctls": ns.sysctls.iter().map(|c| (c.name.clone(), json!(c.values))).collect::<serde_json::Map<_, _>>(),
        })),
    })
}

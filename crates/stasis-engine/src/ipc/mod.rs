//! System V IPC: shared memory segments ([`shm`]), semaphore sets
//! ([`sem`]) and message queues ([`msg`]), restored in an IPC namespace of
//! their own.
//!
//! # Why a namespace
//!
//! Programs name SysV objects by id (shmid, semid, msqid), and ids are
//! handed out by the kernel per IPC namespace. On the host, the ids of a
//! dumped tree may be taken by the time it is restored, so stasis only
//! checkpoints SysV objects of a tree that has an **IPC namespace of its
//! own** (started under `unshare --ipc`, or in a container): every process
//! of the tree must be in the root's IPC namespace, and no process outside
//! the tree may be in it. Restore makes a new IPC namespace, in which every
//! id is free, and creates each object there with its id (the
//! `kernel.{shm,sem,msg}_next_id` sysctls, CONFIG_CHECKPOINT_RESTORE)
//! before any process of the tree exists; the tree inherits it.
//!
//! A tree in the host's IPC namespace that has a SysV segment attached is
//! refused (see `mm::dump`), with a hint to run it under `unshare --ipc`.
//! Semaphores and message queues of the host's namespace are not the
//! tree's: they stay on the host, whatever happens to the tree, and are
//! not part of the image.
//!
//! # What is kept
//!
//! Every object with its id, key, owner, group and permission bits; the
//! contents of every segment (pages that hold data), also of a segment
//! removed with IPC_RMID while still attached (restored attached and
//! removed again) and SHM_LOCK; every semaphore's value, and whether the
//! set was ever operated on (`sem_otime` not 0); every queued
//! message, in order, with its type, and each queue's `msg_qbytes`; the
//! namespace's limits (`kernel.shmmax`, `shmall`, `shmmni`,
//! `shm_rmid_forced`, `msgmax`, `msgmnb`, `msgmni`, `sem`). Each process
//! attaches its segments at their addresses with their protections (see
//! [`shm::attach`]).
//!
//! # What is not kept
//!
//! * **SEM_UNDO adjustments.** The kernel keeps them per process but shows
//!   them nowhere, so they are lost: a restored process that exits does
//!   not undo the semaphore operations it made with SEM_UNDO before the
//!   dump.
//! * The creator's uid/gid (`cuid`/`cgid`: the restorer creates every
//!   object, as root), the pids of the creator and of the last operation,
//!   and the attach/detach/send/receive/change times (a non-zero
//!   `sem_otime` comes back as the time of the restore): no interface sets
//!   them.
//!
//! # How the dump reads a namespace that is not its own
//!
//! The IPC namespace is per task: a short-lived thread of the dumper enters
//! the tree's namespace with setns(2) and does all the work there, while
//! the other threads stay where they are. /proc/sysvipc lists the objects
//! of the reading task's namespace; IPC_STAT, GETALL and msgrcv(2) with
//! MSG_COPY (a copy, the message stays queued) read them; a segment's
//! contents are read through a read-only attachment of the thread's own.
//! Nothing of the tree's state changes, but a segment's attach/detach
//! times and last pid.

mod common;
pub mod msg;
pub mod sem;
pub mod shm;
mod sysctl;

use std::collections::BTreeSet;
use std::fs::File;
use std::os::fd::AsFd;

use stasis_image::{IpcNamespace, PagesWriter, Process};
use stasis_sys::sysvipc;

use crate::error::{DumpError, RestoreError, SysCtx};
use crate::procfs;
use common::rst_err;

/// `kernel.shm_next_id`, which chooses the id of the next segment.
pub const NEXT_SHM_ID: &str = common::NEXT_ID[0];

/// The IPC namespace of a tree: its root's.
#[derive(Debug, Clone)]
pub struct TreeIpc {
    /// `readlink /proc/ROOT/ns/ipc`, e.g. `ipc:[4026532281]`.
    pub ns: String,
    /// The tree has a namespace of its own (not the dumper's).
    pub own: bool,
}

impl TreeIpc {
    pub fn of(root: i32) -> Result<TreeIpc, DumpError> {
        let ns = procfs::read_link(root, "ns/ipc")?;
        let ours = std::fs::read_link("/proc/self/ns/ipc")
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(TreeIpc {
            own: ns != ours,
            ns,
        })
    }
}

/// Reads the tree's whole IPC namespace into the image; the contents of
/// its segments go into `pages`. `tree` holds every pid of the (frozen)
/// tree, `procs` their dumped records.
pub fn dump(
    root: i32,
    ipc: &TreeIpc,
    tree: &[i32],
    procs: &[Process],
    pages: &mut PagesWriter,
    bytes: &mut u64,
) -> Result<IpcNamespace, DumpError> {
    check_users(root, ipc, tree)?;
    let path = format!("/proc/{root}/ns/ipc");
    let nsfile = File::open(&path).map_err(|e| procfs::io_err(root, path, e))?;
    std::thread::scope(|s| {
        s.spawn(|| {
            sysvipc::setns(nsfile.as_fd(), libc::CLONE_NEWIPC)
                .dump_ctx(root, "enter the tree's IPC namespace")?;
            let sysctls = sysctl::read_all().map_err(|what| DumpError::Refused {
                pid: root,
                what: format!("IPC namespace: {what}"),
            })?;
            let forced = sysctl::value(&sysctls, "shm_rmid_forced") != 0;
            let msgmax = sysctl::value(&sysctls, "msgmax");
            let shm = shm::dump(root, procs, pages, bytes, forced)?;
            let sem = sem::dump(root)?;
            let msg = msg::dump(root, msgmax)?;
            Ok(IpcNamespace {
                shm,
                sem,
                msg,
                sysctls,
            })
        })
        .join()
        .unwrap_or_else(|_| {
            Err(DumpError::Refused {
                pid: root,
                what: "IPC namespace: the reading thread panicked".into(),
            })
        })
    })
}

/// Every thread of the tree is in its IPC namespace, and no process
/// outside it is: objects shared with an outside process could not be
/// split between that process and a restored copy.
fn check_users(root: i32, ipc: &TreeIpc, tree: &[i32]) -> Result<(), DumpError> {
    let tree: BTreeSet<i32> = tree.iter().copied().collect();
    for &pid in &tree {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            continue; // a zombie has none
        };
        for t in tasks.flatten() {
            let link = std::fs::read_link(t.path().join("ns/ipc"));
            if let Ok(link) = link.map(|l| l.to_string_lossy().into_owned()) {
                if link != ipc.ns {
                    return Err(DumpError::Refused {
                        pid,
                        what: format!(
                            "has thread {} in another IPC namespace ({link}) than the tree's root ({})",
                            t.file_name().to_string_lossy(),
                            ipc.ns
                        ),
                    });
                }
            }
        }
    }
    let Ok(all) = std::fs::read_dir("/proc") else {
        return Ok(());
    };
    for e in all.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if tree.contains(&pid) {
            continue;
        }
        let link = std::fs::read_link(e.path().join("ns/ipc"));
        if link.is_ok_and(|l| l.to_string_lossy() == ipc.ns) {
            return Err(DumpError::Refused {
                pid: root,
                what: format!(
                    "has its own IPC namespace ({}), but pid {pid} outside the tree is in it too; checkpoint the tree of the namespace's first process",
                    ipc.ns
                ),
            });
        }
    }
    Ok(())
}

/// Checks an image's IPC state before anything is created (what
/// [`stasis_image::validate`] cannot know: how VMAs attach segments).
pub fn check_image(image: &stasis_image::Image) -> Result<(), RestoreError> {
    let Some(ns) = &image.inventory.ipc else {
        return Ok(());
    };
    for p in image.processes.iter().filter(|p| !p.zombie) {
        shm::check_attachments(&p.vmas, &ns.shm)
            .map_err(|what| RestoreError::Refused(format!("pid {}: {what}", p.pid)))?;
    }
    if !std::path::Path::new(common::NEXT_ID[0]).exists() {
        return Err(RestoreError::Refused(format!(
            "the image holds an IPC namespace, but this kernel has no {} to create System V objects with their ids (CONFIG_CHECKPOINT_RESTORE)",
            common::NEXT_ID[0]
        )));
    }
    Ok(())
}

/// The restored namespace, in the restorer: the attachments that keep
/// removed segments alive until every process has attached them again.
pub struct IpcRestore {
    held: Vec<sysvipc::ShmAttach>,
}

impl IpcRestore {
    /// Drops the restorer's attachments; call once every process of the
    /// tree has its segments attached.
    pub fn finish(self) {
        drop(self.held);
    }
}

/// Makes a new IPC namespace for the restorer (and so for every process
/// it forks from now on) and creates every object of `ns` in it, filled
/// from `pages`. The restorer must not have forked any process of the tree
/// yet.
pub fn restore(ns: &IpcNamespace, pages: &File) -> Result<IpcRestore, RestoreError> {
    sysvipc::unshare_ipc().map_err(rst_err("make a new one".into()))?;
    let mut limits = sysctl::Limits::read()?;
    limits.raise_for(ns);
    limits.write()?;
    let held = shm::create(&ns.shm, pages)?;
    sem::create(&ns.sem)?;
    msg::create(&ns.msg)?;
    // The namespace's own limits last: they may be lower than what its
    // objects needed when they were made.
    sysctl::write_exact(&ns.sysctls)?;
    Ok(IpcRestore { held })
}

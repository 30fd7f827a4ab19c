//! The dump's checks: what is refused before a process is touched, and
//! what processes of the tree share with their parent.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::error::DumpError;
use crate::handle::FrozenTree;
use crate::ipc::TreeIpc;
use crate::{files, procfs};

use super::DumpOptions;

/// The namespaces a tree has of its own (see [`precheck`]).
#[derive(Default)]
pub(super) struct OwnNs {
    pub pid: Option<String>,
    pub mnt: Option<String>,
}

/// Checks made on each process before it is touched at all. `own` holds
/// the PID namespace of a tree that has one (its root is its init, or the
/// child of a `restore --pidns` init) and, in the second case, the mount
/// namespace that init made; `ipc` is the tree's IPC namespace (its
/// root's).
pub(super) fn precheck(
    pid: i32,
    root: bool,
    opts: &DumpOptions,
    own: &OwnNs,
    ipc: &TreeIpc,
) -> Result<(), DumpError> {
    let status = procfs::status(pid)?;
    let stat = procfs::proc_stat(pid)?;
    let refuse = |what: String| Err(DumpError::Refused { pid, what });
    if status.tgid != pid as u32 {
        return refuse(format!(
            "is a thread of process {}; dump the process",
            status.tgid
        ));
    }
    if pid as u32 == std::process::id() {
        return refuse("is stasis itself".into());
    }
    if status.tracer_pid != 0 {
        return refuse(format!(
            "is being traced by pid {}; detach the debugger first",
            status.tracer_pid
        ));
    }
    if status.seccomp != 0 {
        return refuse("uses seccomp, which stasis cannot restore yet".into());
    }
    if !status.x86_thread_features.trim().is_empty() {
        return refuse(format!(
            "uses x86 thread features ({}), which stasis cannot restore yet",
            status.x86_thread_features.trim()
        ));
    }
    check_namespaces(pid, own, ipc)?;
    check_vfork(pid)?;
    if !opts.shell_job {
        if root && stat.session != pid as u32 {
            return refuse(format!(
                "is not a session leader (its session {} is outside the dump); pass --shell-job to checkpoint a job of a shell",
                stat.session
            ));
        }
        // A pty of the tree's own is checked once all fds are known.
        if stat.tty_nr != 0 && files::pty::pts_index(stat.tty_nr as u64).is_none() {
            return refuse("has a controlling terminal; pass --shell-job".into());
        }
    }
    Ok(())
}

/// Every namespace of process `pid` must be the dumper's, except the PID
/// (and then mount) namespace of a tree that has its own, and the IPC
/// namespace, which the whole tree shares.
fn check_namespaces(pid: i32, own: &OwnNs, ipc: &TreeIpc) -> Result<(), DumpError> {
    let own_pidns = own.pid.as_deref();
    let refuse = |what: String| Err(DumpError::Refused { pid, what });
    for ns in ["pid", "mnt", "net", "ipc", "uts", "user", "cgroup", "time"] {
        let theirs = procfs::read_link(pid, &format!("ns/{ns}"))?;
        let ours = match (ns, own_pidns) {
            ("pid", Some(tree_ns)) => tree_ns.to_string(),
            // A tree may have an IPC namespace of its own (see crate::ipc),
            // shared by all its processes.
            ("ipc", _) => ipc.ns.clone(),
            ("mnt", _) if own.mnt.is_some() => own.mnt.clone().unwrap_or_default(),
            _ => std::fs::read_link(format!("/proc/self/ns/{ns}"))
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default(),
        };
        if ns == "pid" && theirs != ours && own_pidns.is_none() {
            return refuse(format!(
                "is in another PID namespace ({theirs}) than the tree's root; dump that namespace's PID 1 on its own"
            ));
        }
        if ns == "ipc" && theirs != ours {
            return refuse(format!(
                "is in another IPC namespace ({theirs}) than the tree's root ({ours}); stasis can only checkpoint a tree that shares one IPC namespace"
            ));
        }
        if theirs != ours {
            return refuse(format!(
                "is in another {ns} namespace ({theirs}), which stasis cannot checkpoint yet"
            ));
        }
    }
    Ok(())
}

/// A parent inside vfork(2) sleeps until its child execs or exits and
/// would never reach the freeze; its child borrows its memory.
fn check_vfork(pid: i32) -> Result<(), DumpError> {
    let refuse = |what: String| Err(DumpError::Refused { pid, what });
    for c in crate::handle::frozen::children_of(pid)? {
        if stasis_sys::util::kcmp_same(pid, c as i32, stasis_sys::util::KCMP_VM).unwrap_or(false) {
            return refuse(format!(
                "is waiting in vfork for its child {c} to exec or exit (they share memory); checkpoint it after that"
            ));
        }
    }
    Ok(())
}

/// What processes of the tree share with their parent: memory (a CLONE_VM
/// child: refused), the fd table (CLONE_FILES) and cwd/root/umask
/// (CLONE_FS), which restore recreates by cloning with the same flags.
/// Returns pid -> (files shared, fs shared).
pub(super) fn check_sharing(tree: &FrozenTree) -> Result<BTreeMap<i32, (bool, bool)>, DumpError> {
    use stasis_sys::util::{kcmp_same, KCMP_FILES, KCMP_FS, KCMP_VM};
    let pids: BTreeSet<i32> = tree.procs.iter().map(|f| f.pid).collect();
    let mut out = BTreeMap::new();
    for f in &tree.procs {
        let ppid = procfs::parsed(
            f.pid,
            stasis_proc::parse_stat(&procfs::read_string(f.pid, "stat")?),
        )?
        .ppid as i32;
        if !pids.contains(&ppid) {
            continue;
        }
        if kcmp_same(f.pid, ppid, KCMP_VM).unwrap_or(false) {
            return Err(DumpError::Refused {
                pid: f.pid,
                what: format!(
                    "shares its memory with its parent {ppid} (CLONE_VM); stasis cannot checkpoint that yet"
                ),
            });
        }
        out.insert(
            f.pid,
            (
                kcmp_same(f.pid, ppid, KCMP_FILES).unwrap_or(false),
                kcmp_same(f.pid, ppid, KCMP_FS).unwrap_or(false),
            ),
        );
    }
    Ok(out)
}

/// Creates the image directory `dir` with mode 0700 if it does not exist
/// (its parents with the usual mode): an image holds the tree's memory.
/// An existing directory is used as it is, as CRIU does.
pub(super) fn create_image_dir(dir: &Path) -> Result<(), DumpError> {
    use std::os::unix::fs::DirBuilderExt;
    let err = |source| DumpError::ImageDir {
        path: dir.display().to_string(),
        source,
    };
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(err)?;
    }
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        r => r.map_err(err),
    }
}

/// The namespaces the tree rooted at `pid` takes along. A root that is
/// PID 1 of its own namespace takes the namespace along; so does the root
/// of a tree an earlier `restore --pidns` made (its parent is that
/// restore's init, which is not dumped).
pub(super) fn own_namespaces(pid: i32) -> Result<OwnNs, DumpError> {
    Ok(if crate::pidns::is_ns_init(pid)? {
        OwnNs {
            pid: Some(procfs::read_link(pid, "ns/pid")?),
            mnt: None,
        }
    } else if let Some(init) = crate::pidns::stasis_init_of(pid)? {
        OwnNs {
            pid: Some(procfs::read_link(pid, "ns/pid")?),
            mnt: Some(procfs::read_link(init, "ns/mnt")?),
        }
    } else {
        OwnNs::default()
    })
}

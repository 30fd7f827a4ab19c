//! System V IPC (shared memory, semaphores, message queues) of a tree in
//! an IPC namespace of its own, and what is refused (see
//! workloads/tree_sysvipc.c and workloads/refuse_sysv.c).

mod common;

use common::NoPanic;

use common::*;

#[test]
fn plain_tree_sysvipc() {
    if !require_root() {
        return;
    }
    plain_run("tree_sysvipc", Spawn::default());
}

/// Segments (one removed while attached, one attached twice and split by
/// mprotect), semaphore sets and a message queue, with their ids, in every
/// mode. In PidNs mode the copy gets an IPC namespace of its own while the
/// original keeps its.
#[test]
fn cr_tree_sysvipc() {
    if !require_root() {
        return;
    }
    cr_all_modes("tree_sysvipc", Spawn::default());
}

/// Runs `refuse_sysv KIND`, whose dump must fail naming the root's pid (or
/// its child's, with `child`) and saying `expect`, leaving no image and
/// the workload as it was.
fn refused(kind: &str, child: bool, expect: &str) {
    if !require_root() {
        return;
    }
    let w = Workload::spawn_c(
        "refuse_sysv",
        Spawn {
            args: vec![kind.to_string()],
            ..Default::default()
        },
    );
    let before = w.snapshot();
    let pid = if child {
        *before
            .procs
            .keys()
            .find(|p| **p != w.pid)
            .expect("the child")
    } else {
        w.pid
    };
    let img = w.dir.join("img");
    let out = stasis(&[
        "dump",
        "-t",
        &w.pid.to_string(),
        "-D",
        img.to_str().expect("utf-8"),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the dump must fail: {err}");
    let line = err
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_default();
    assert!(
        line.contains(&format!("pid {pid} ")) && line.contains(expect),
        "the error must name pid {pid} and say {expect:?}: {err}"
    );
    assert!(
        !img.join("core.img").exists(),
        "a refused dump left an image"
    );
    assert!(w.is_running(), "the target must keep running");
    let diff = before.diff(&w.snapshot());
    assert!(
        diff.is_empty(),
        "target changed by a refused dump: {diff:?}"
    );
    w.terminate_and_verdict()
        .expect("target works after a refused dump");
}

/// A segment attached in the IPC namespace stasis runs in: its id could
/// not be promised at restore.
#[test]
fn refuse_sysv_shm_in_shared_namespace() {
    refused("host", false, "IPC namespace");
}

/// A process of the tree in another IPC namespace than the root's.
#[test]
fn refuse_child_in_other_ipc_namespace() {
    refused("child-ns", true, "another IPC namespace");
}

/// A segment partly unmapped: shmat maps whole segments only.
#[test]
fn refuse_partly_unmapped_segment() {
    refused("partial", false, "only in part");
}

/// `ipcs` inside the IPC namespace of `pid`.
fn ipcs_in(pid: i32) -> String {
    let out = std::process::Command::new("nsenter")
        .arg(format!("--ipc=/proc/{pid}/ns/ipc"))
        .arg("ipcs")
        .output()
        .expect("run nsenter");
    assert!(out.status.success(), "nsenter ipcs: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Real programs: objects made with util-linux's ipcmk in a namespace
/// made by `unshare --ipc`, then `sleep`, which attaches none of them.
/// After a kill and restore, `ipcs` in the restored namespace lists the
/// same objects with the same ids, keys, owners, modes and sizes.
#[test]
fn real_unshare_ipcmk() {
    if !require_root() {
        return;
    }
    let (Some(unshare), Some(_), Some(_), Some(_)) = (
        need("unshare"),
        need("ipcmk"),
        need("ipcs"),
        need("nsenter"),
    ) else {
        return;
    };
    let script = "ipcmk -M 65536 -p 0640 && ipcmk -S 3 -p 0600 && ipcmk -Q && \
                  ipcmk -M 4096 && exec sleep 1000";
    let w = Workload::spawn_cmd(
        unshare.to_str().expect("utf-8"),
        &["--ipc", "sh", "-c", script],
        Spawn::default(),
        |w| {
            std::fs::read(format!("/proc/{}/cmdline", w.pid))
                .is_ok_and(|c| c.starts_with(b"sleep\0"))
        },
    );
    let before = ipcs_in(w.pid);
    assert!(
        before.contains("65536") && before.contains("0x"),
        "ipcs before: {before}"
    );
    let ours = std::fs::read_link("/proc/self/ns/ipc").expect("our ipc ns");
    kill_restore(&w);
    let theirs = std::fs::read_link(format!("/proc/{}/ns/ipc", w.pid)).expect("its ipc ns");
    assert_ne!(theirs, ours, "restored into our own IPC namespace");
    assert_eq!(ipcs_in(w.pid), before, "ipcs after the restore");
    w.kill();
}

/// A restore that fails after the namespace was made and every process
/// attached its segments leaves nothing behind, and the same image then
/// restores (the failed restorer's namespace went away with it).
#[test]
fn failed_restore_of_sysvipc_leaves_nothing() {
    if !require_root() {
        return;
    }
    let w = Workload::spawn_c("tree_sysvipc", Spawn::default());
    std::thread::sleep(std::time::Duration::from_millis(50));
    let pids = w.snapshot().pids();
    let img = w.dir.join("img");
    dump(&w, &img, &[]);
    w.wait_gone();
    let out = stasis_cmd()
        .args(["restore", "-D", img.to_str().expect("utf-8"), "-d"])
        .env("STASIS_FAIL_AT", "restore-before-resume")
        .output()
        .no_panic()
        .expect("run stasis");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("restore-before-resume"),
        "{err}"
    );
    for pid in &pids {
        wait_exit(*pid, std::time::Duration::from_secs(10), false)
            .unwrap_or_else(|e| panic!("half-restored pid {pid} left behind: {e}"));
    }
    restore(&img, &[]);
    w.terminate_and_verdict()
        .expect("restore after a failed restore");
}

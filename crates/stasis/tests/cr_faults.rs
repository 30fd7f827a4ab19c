//! Refusals and injected failures. A refused or failed dump must leave the
//! target running and unchanged; a restore that fails after creating the
//! process must leave nothing behind (the pid is free again, so a second
//! restore of the same image works). Needs root.

mod common;

use common::NoPanic;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use common::{require_root, restore, wait_exit, Spawn, Workload};

/// Runs stasis with `STASIS_FAIL_AT=point`.
fn stasis_failing_at(point: &str, args: &[&str]) -> Output {
    let out = common::stasis_cmd()
        .args(args)
        .env("STASIS_FAIL_AT", point)
        .output()
        .no_panic()
        .expect("run stasis");
    eprintln!(
        "$ STASIS_FAIL_AT={point} stasis {} -> {}\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn refused_dump_leaves_target_alone(kind: &str, expect: &str) {
    refused_dump_with_args(&[kind], expect)
}

fn refused_dump_with_args(args: &[&str], expect: &str) {
    if !require_root() {
        return;
    }
    let kind = args[0];
    let w = Workload::spawn_c(
        "refuse",
        Spawn {
            args: args.iter().map(|a| a.to_string()).collect(),
            ..Default::default()
        },
    );
    let before = w.snapshot();
    let img = w.dir.join("img");
    let out = common::stasis_cmd()
        .args([
            "dump",
            "-t",
            &w.pid.to_string(),
            "-D",
            img.to_str().unwrap(),
        ])
        .output()
        .no_panic()
        .expect("run stasis");
    let err = stderr(&out);
    assert!(!out.status.success(), "dump of a {kind} holder must fail");
    let line = err
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_default();
    assert!(
        line.contains(&format!("pid {}", w.pid)) && line.contains(expect),
        "error must name the pid and say '{expect}': {err}"
    );
    assert!(
        !img.join("core.img").exists(),
        "a refused dump must not leave an image"
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

#[test]
fn refuse_socket() {
    refused_dump_leaves_target_alone("socket", "AF_INET");
}

/// A unix socket connected to a listener outside the tree (here, this
/// test's own) is refused, naming the holder.
#[test]
fn refuse_unix_peer_outside() {
    use std::os::linux::net::SocketAddrExt;
    let name = format!("stasis-outside-{}", std::process::id());
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).expect("name");
    let listener = std::os::unix::net::UnixListener::bind_addr(&addr).expect("listen");
    // Accept the workload's connection (it connects before READY) while
    // the dump runs, so its peer is held here.
    let t = std::thread::spawn(move || listener.accept().map(|c| (c, listener)));
    refused_dump_with_args(
        &["unix-outside", &name],
        &format!("held by pid {}", std::process::id()),
    );
    let _ = t.join();
}

/// A pidfd of a process outside the tree (the harness) is refused.
#[test]
fn refuse_pidfd_outside() {
    refused_dump_leaves_target_alone(
        "pidfd-outside",
        &format!("pidfd of pid {}", std::process::id()),
    );
}

/// A FIFO that a process outside the tree (the harness) also has open is
/// refused: its buffered bytes cannot be split between the two.
#[test]
fn refuse_fifo_shared_outside() {
    use std::os::unix::fs::OpenOptionsExt;
    let path = std::env::temp_dir().join(format!("stasis-fifo-{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let made = std::process::Command::new("mkfifo")
        .arg(&path)
        .status()
        .expect("run mkfifo");
    assert!(made.success(), "mkfifo {}", path.display());
    let reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&path)
        .expect("open the FIFO");
    refused_dump_with_args(
        &["fifo-outside", path.to_str().expect("utf-8")],
        &format!("pid {} outside the checkpointed tree", std::process::id()),
    );
    drop(reader);
    let _ = std::fs::remove_file(&path);
}

#[test]
fn refuse_userfaultfd() {
    refused_dump_leaves_target_alone("userfaultfd", "userfaultfd");
}

#[test]
fn refuse_io_uring() {
    refused_dump_leaves_target_alone("io_uring", "io_uring");
}

/// A dump that fails after everything was collected (just before the image
/// is written) leaves the target running and correct.
#[test]
fn dump_failure_leaves_target_running() {
    if !require_root() {
        return;
    }
    let w = Workload::spawn_c("threads", Spawn::default());
    let before = w.snapshot();
    let img = w.dir.join("img");
    let out = stasis_failing_at(
        "dump-before-write",
        &[
            "dump",
            "-t",
            &w.pid.to_string(),
            "-D",
            img.to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("dump-before-write"),
        "{}",
        stderr(&out)
    );
    assert!(!img.join("core.img").exists());
    assert!(w.is_running());
    let diff = before.diff(&w.snapshot());
    assert!(diff.is_empty(), "target changed by a failed dump: {diff:?}");
    w.terminate_and_verdict()
        .expect("target works after a failed dump");
}

fn restore_failure_leaves_nothing(point: &str) {
    restore_failure_leaves_nothing_of("threads", point);
}

/// A restore of workload `name` that fails at `point` must leave no
/// process of the tree behind (zombies are reaped by us at most).
fn restore_failure_leaves_nothing_of(name: &str, point: &str) {
    if !require_root() {
        return;
    }
    let w = Workload::spawn_c(name, Spawn::default());
    std::thread::sleep(Duration::from_millis(50));
    let pids = w.snapshot().pids();
    let img = w.dir.join("img");
    common::dump(&w, &img, &[]);
    w.wait_gone();
    let out = stasis_failing_at(point, &["restore", "-D", img.to_str().unwrap(), "-d"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains(point), "{}", stderr(&out));
    // The half-restored processes were killed (zombies of ours at most).
    for pid in &pids {
        wait_exit(*pid, Duration::from_secs(10), false)
            .unwrap_or_else(|e| panic!("half-restored pid {pid} left behind: {e}"));
        assert!(!Path::new(&format!("/proc/{pid}")).exists());
    }
    // Nothing was left behind: the same image restores.
    restore(&img, &[]);
    w.terminate_and_verdict()
        .expect("restore after a failed restore");
}

#[test]
fn restore_failure_before_fork() {
    restore_failure_leaves_nothing("restore-before-fork");
}

#[test]
fn restore_failure_before_resume() {
    restore_failure_leaves_nothing("restore-before-resume");
}

#[test]
fn restore_failure_of_a_tree_before_resume() {
    restore_failure_leaves_nothing_of("tree_pgroups", "restore-before-resume");
}

/// Like [`refused_dump_leaves_target_alone`] for `tree_refuse`: the error
/// names the process at fault (not always the root) and the reason.
fn refused_tree(kind: &str, expect: &str) {
    if !require_root() {
        return;
    }
    let w = Workload::spawn_c(
        "tree_refuse",
        Spawn {
            args: vec![kind.into()],
            ..Default::default()
        },
    );
    std::thread::sleep(Duration::from_millis(100));
    let img = w.dir.join("img");
    let out = common::stasis_cmd()
        .args([
            "dump",
            "-t",
            &w.pid.to_string(),
            "-D",
            img.to_str().unwrap(),
        ])
        .output()
        .no_panic()
        .expect("run stasis");
    let err = stderr(&out);
    assert!(
        !out.status.success(),
        "dump of a tree with {kind} must fail"
    );
    let line = err
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_default();
    assert!(
        line.contains("pid ") && line.contains(expect),
        "error must name a pid and say '{expect}': {err}"
    );
    assert!(!img.join("core.img").exists(), "no image after a refusal");
    assert!(w.is_running(), "the root must keep running");
    w.terminate_and_verdict()
        .expect("the tree works after a refused dump");
}

#[test]
fn refuse_socket_in_a_child() {
    refused_tree("child-socket", "AF_INET");
}

#[test]
fn refuse_parent_in_vfork() {
    refused_tree("vfork", "vfork");
}

#[test]
fn refuse_pipe_shared_outside_the_tree() {
    refused_tree("outside-pipe", "outside the checkpointed tree");
}

//! Options and behaviours around the core cycle: --shell-job with a
//! terminal, restore without -d (waits, exits with the process's status),
//! --pidfile, and refusing a file that changed since the dump. Needs root.

mod common;

use common::NoPanic;

use std::fs;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{dump, find_program, proc_state, require_root, wait_exit, Spawn, Workload};

/// A pseudo-terminal pair: (master, slave path, slave fd).
fn openpty() -> (OwnedFd, String, OwnedFd) {
    let (mut m, mut s) = (0, 0);
    // SAFETY: openpty writes two descriptors; the other pointers may be null.
    let r = unsafe {
        libc::openpty(
            &mut m,
            &mut s,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(r, 0, "openpty");
    // SAFETY: both descriptors were just created and are owned by nobody.
    let (m, s) = unsafe { (OwnedFd::from_raw_fd(m), OwnedFd::from_raw_fd(s)) };
    let path = fs::read_link(format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&s)
    ))
    .unwrap()
    .display()
    .to_string();
    (m, path, s)
}

#[test]
fn shell_job_with_a_terminal() {
    if !require_root() {
        return;
    }
    let Some(sleep) = find_program("sleep") else {
        eprintln!("SKIP sleep is not installed");
        return;
    };
    let (_master, slave_path, slave) = openpty();
    let dir = std::env::temp_dir().join(format!("stasis-shelljob-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    // A job of a "shell": its own process group, not a session leader,
    // with the terminal on fds 0-2.
    let mut cmd = Command::new(&sleep);
    cmd.arg("1000")
        .stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave.try_clone().unwrap()))
        .process_group(0);
    // SAFETY: close_range is async-signal-safe; it drops fds the runner
    // leaked to us.
    unsafe {
        cmd.pre_exec(|| {
            libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    let pid = child.id() as i32;
    let t = Instant::now();
    while proc_state(pid) != Some('S') && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let img = dir.join("img");
    let img_s = img.to_str().unwrap();
    let out = common::stasis_cmd()
        .args(["dump", "-t", &pid.to_string(), "-D", img_s])
        .output()
        .no_panic()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a job of a shell needs --shell-job");
    assert!(err.contains("--shell-job"), "{err}");
    assert_eq!(proc_state(pid), Some('S'), "refused dump left it running");

    let out = common::stasis_cmd()
        .args(["dump", "-t", &pid.to_string(), "-D", img_s, "--shell-job"])
        .output()
        .no_panic()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = child.wait();
    wait_exit(pid, Duration::from_secs(5), false).unwrap();

    // Restore from "the shell": our terminal is the same pty.
    let out = common::stasis_cmd()
        .args(["restore", "-D", img_s, "-d", "--shell-job"])
        .stdin(Stdio::from(slave.try_clone().unwrap()))
        .output()
        .no_panic()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Just resumed, it may still be on its way back into its sleep.
    let t = Instant::now();
    while proc_state(pid) != Some('S') && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(proc_state(pid), Some('S'));
    for fd in 0..3 {
        let target = fs::read_link(format!("/proc/{pid}/fd/{fd}")).unwrap();
        assert_eq!(
            target.display().to_string(),
            slave_path,
            "fd {fd} is the terminal again"
        );
    }
    // SAFETY: killing the pid we restored.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let _ = wait_exit(pid, Duration::from_secs(5), true);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn restore_without_detach_waits_and_returns_the_status() {
    if !require_root() {
        return;
    }
    let w = Workload::spawn_c("noop", Spawn::default());
    let img = w.dir.join("img");
    dump(&w, &img, &[]);
    w.wait_gone();
    let pidfile = w.dir.join("pidfile");
    let mut r = common::stasis_cmd()
        .args([
            "restore",
            "-D",
            img.to_str().unwrap(),
            "--pidfile",
            pidfile.to_str().unwrap(),
        ])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while !pidfile.exists() && t.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let written: i32 = fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(written, w.pid, "--pidfile holds the restored pid");
    assert_eq!(r.try_wait().unwrap(), None, "restore waits for the process");
    // SAFETY: signalling the pid we restored.
    unsafe { libc::kill(w.pid, libc::SIGTERM) };
    let status = r.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(0),
        "restore exits with the workload's status"
    );
    assert!(w.log().lines().any(|l| l == "PASS"), "{}", w.log());
}

#[test]
fn changed_file_is_refused_before_anything_runs() {
    if !require_root() {
        return;
    }
    let w = Workload::spawn_c("fds", Spawn::default());
    let img = w.dir.join("img");
    dump(&w, &img, &[]);
    w.wait_gone();
    // fds.c keeps ro.txt open read-only.
    let mut data = fs::read(w.dir.join("ro.txt")).unwrap();
    data.extend_from_slice(b"grown after the dump\n");
    fs::write(w.dir.join("ro.txt"), &data).unwrap();
    let out = common::stasis_cmd()
        .args(["restore", "-D", img.to_str().unwrap(), "-d"])
        .output()
        .no_panic()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("ro.txt") && err.contains("changed"), "{err}");
    assert!(proc_state(w.pid).is_none(), "nothing may be created");
}

//! An interactive `bash -i` on a pseudo-terminal, with a background job
//! and a foreground job, checkpointed with --shell-job and restored from
//! the same terminal: job control must still work (the foreground job
//! gets the input, Ctrl-Z stops it, `jobs`, `kill %N`). Needs root.

mod common;

use common::NoPanic;

use std::fs;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{find_program, require_root, wait_exit};

/// A pseudo-terminal: (master, slave).
fn openpty() -> (fs::File, OwnedFd) {
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
    unsafe { (fs::File::from_raw_fd(m), OwnedFd::from_raw_fd(s)) }
}

/// Reads what the terminal shows until `want` appears (or 5 s pass).
fn expect(master: &mut fs::File, seen: &mut String, want: &str) {
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    while !seen.contains(want) {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "terminal never showed {want:?}; it showed:\n{seen}"
        );
        // The master is non-blocking.
        match master.read(&mut buf) {
            Ok(n) if n > 0 => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
            _ => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

fn type_in(master: &mut fs::File, s: &str) {
    master.write_all(s.as_bytes()).unwrap();
}

#[test]
fn interactive_bash_job_control() {
    if !require_root() {
        return;
    }
    let Some(bash) = find_program("bash") else {
        eprintln!("SKIP bash is not installed");
        return;
    };
    let (mut master, slave) = openpty();
    // SAFETY: fcntl on our own descriptor.
    unsafe { libc::fcntl(master.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) };
    let dir = std::env::temp_dir().join(format!("stasis-bash-i-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    // bash leads its own session on the terminal, like in a terminal
    // emulator.
    let mut cmd = Command::new(&bash);
    cmd.args(["--norc", "--noprofile", "-i"])
        .env("PS1", "$ ")
        .env("TERM", "dumb")
        .stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave.try_clone().unwrap()));
    // SAFETY: setsid, ioctl and close_range are async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            libc::ioctl(0, libc::TIOCSCTTY, 0);
            libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    let pid = child.id() as i32;
    let mut seen = String::new();
    type_in(
        &mut master,
        "bind 'set enable-bracketed-paste off'; sleep 1000 &\n",
    );
    expect(&mut master, &mut seen, "[1] ");
    type_in(&mut master, "echo ready-$((40+2))\n");
    expect(&mut master, &mut seen, "ready-42");
    type_in(&mut master, "cat\n");
    std::thread::sleep(Duration::from_millis(300));

    let img = dir.join("img");
    let img_s = img.to_str().unwrap();
    let out = common::stasis_cmd()
        .args([
            "dump",
            "--verify",
            "-t",
            &pid.to_string(),
            "-D",
            img_s,
            "--shell-job",
        ])
        .output()
        .no_panic()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = child.wait();
    // Every process of the tree must be gone before the restore.
    let inspect = common::stasis_cmd()
        .args(["inspect", img_s, "--json"])
        .output()
        .no_panic()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    let pids: Vec<i32> = v["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pid"].as_i64().unwrap() as i32)
        .collect();
    assert_eq!(pids.len(), 3, "bash, sleep and cat: {pids:?}");
    for p in &pids {
        wait_exit(*p, Duration::from_secs(10), false).unwrap();
    }

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
    // cat is in the foreground and gets what we type.
    let mut seen = String::new();
    type_in(&mut master, "hello cat\n");
    expect(&mut master, &mut seen, "hello cat\r\nhello cat\r\n");
    // Ctrl-Z stops it: job control works.
    type_in(&mut master, "\x1a");
    expect(&mut master, &mut seen, "Stopped");
    type_in(&mut master, "jobs\n");
    expect(
        &mut master,
        &mut seen,
        "Running                 sleep 1000 &",
    );
    type_in(&mut master, "kill -9 %1 %2; echo done-$((6*7))\n");
    expect(&mut master, &mut seen, "done-42");
    type_in(&mut master, "exit\n");
    wait_exit(pid, Duration::from_secs(10), true).unwrap();
    let _ = fs::remove_dir_all(&dir);
}

//! Regressions of the reliability issue: states that made a dump or a
//! restore fail, hang or panic. Needs root.

mod common;

use common::NoPanic;

use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{
    dump, proc_children, proc_state, require_root, restore, stasis, status_field, wait_for, Spawn,
    Workload,
};

/// Timers firing every millisecond at a glibc SIGEV_THREAD helper (signal
/// 32) and at a worker (SIGEV_THREAD_ID): restore blocked every signal but
/// glibc's own two, so signal 32 interrupted its remote syscalls about
/// every other run. glibc starts a thread for each expiry of the first
/// timer, so the process's threads and maps change all the time: the
/// generic before/after comparison does not apply, the workload's own
/// checks do.
#[test]
fn plain_timers_fast() {
    if !require_root() {
        return;
    }
    // Not `plain_run`: its threads come and go, so no two snapshots match.
    let w = Workload::spawn_c("timers_fast", Spawn::default());
    std::thread::sleep(Duration::from_millis(100));
    w.terminate_and_verdict()
        .expect("timers_fast without a checkpoint");
}

#[test]
fn cr_timers_fast() {
    if !require_root() {
        return;
    }
    for round in 0..6 {
        let w = Workload::spawn_c("timers_fast", Spawn::default());
        let img = w.dir.join(format!("img{round}"));
        if round % 2 == 0 {
            dump(&w, &img, &[]);
            w.wait_gone();
            restore(&img, &[]);
        } else {
            dump(&w, &img, &["-R"]);
        }
        if let Err(e) = w.terminate_and_verdict() {
            panic!("round {round}: {e}");
        }
    }
}

/// A process that never reaches a ptrace stop (waiting in vfork for a
/// child that does not exec): the dump gives up after its wait bound with
/// an error naming the pid and the step, instead of hanging, and the
/// process carries on untraced once its child goes.
#[test]
fn dump_of_a_process_that_does_not_stop_is_a_clear_error() {
    if !require_root() {
        return;
    }
    let w = Workload::spawn_c("vforked", Spawn::default());
    let child = wait_for(&w, Duration::from_secs(10), "vfork child", || {
        proc_children(w.pid).first().copied()
    });
    // The parent is in its vfork sleep once the child runs.
    wait_for(&w, Duration::from_secs(10), "parent in vfork", || {
        (proc_state(w.pid) == Some('D')).then_some(())
    });
    let img = w.dir.join("img");
    let t = Instant::now();
    let out = common::stasis_cmd()
        .args([
            "dump",
            "-t",
            &w.pid.to_string(),
            "-D",
            img.to_str().unwrap(),
        ])
        .env("STASIS_WAIT_TIMEOUT_MS", "1000")
        .output()
        .no_panic()
        .expect("run stasis");
    let took = t.elapsed();
    let err = String::from_utf8_lossy(&out.stderr);
    eprintln!("dump -> {} in {took:?}: {err}", out.status);
    assert!(!out.status.success(), "the dump must fail");
    assert!(took < Duration::from_secs(5), "the dump took {took:?}");
    assert!(
        err.contains(&format!("pid {}", w.pid)) && err.contains("did not stop"),
        "error must name the pid and say it did not stop: {err}"
    );
    assert!(!img.join("core.img").exists(), "no image may be left");
    let status = fs::read_to_string(format!("/proc/{}/status", w.pid)).unwrap_or_default();
    assert_eq!(
        status_field(&status, "TracerPid").as_deref().map(str::trim),
        Some("0"),
        "the target must not stay traced"
    );
    // SAFETY: kill has no memory-safety preconditions; `child` is the
    // workload's vfork child, found above.
    unsafe { libc::kill(child, libc::SIGKILL) };
    wait_for(&w, Duration::from_secs(10), "vfork to return", || {
        w.log().contains("vfork returned").then_some(())
    });
    w.terminate_and_verdict()
        .expect("the target after the failed dump");
}

/// A target that keeps changing (`churn MODE`): each dump either takes a
/// consistent picture, which restores and passes the workload's checks, or
/// is refused with one clear line; the original is never harmed.
fn churn(mode: &str) {
    if !require_root() {
        return;
    }
    let (mut dumped, mut refused) = (0, 0);
    for round in 0..8 {
        let w = Workload::spawn_c(
            "churn",
            Spawn {
                args: vec![mode.into()],
                ..Default::default()
            },
        );
        let leave = round % 2 == 1;
        let img = w.dir.join("img");
        w.processes();
        let pid = w.pid.to_string();
        let mut args = vec!["dump", "-t", &pid, "-D", img.to_str().unwrap()];
        if leave {
            args.push("-R");
        }
        let out = stasis(&args);
        if out.status.success() {
            dumped += 1;
            if !leave {
                w.wait_gone();
                restore(&img, &[]);
            }
        } else {
            refused += 1;
            let err = String::from_utf8_lossy(&out.stderr);
            let line = err.lines().find(|l| l.starts_with("error:")).unwrap_or("");
            assert!(
                line.contains(&format!("pid {}", w.pid)) || line.contains("pid "),
                "round {round}: a refusal must name the process: {err}"
            );
        }
        if let Err(e) = w.terminate_and_verdict() {
            panic!("round {round} ({mode}, -R {leave}): {e}");
        }
    }
    eprintln!("churn {mode}: {dumped} dumped and restored, {refused} refused, 0 harmed");
}

#[test]
fn churn_fork() {
    churn("fork")
}

#[test]
fn churn_threads() {
    churn("threads")
}

#[test]
fn churn_exec() {
    churn("exec")
}

#[test]
fn churn_mmap() {
    churn("mmap")
}

/// Restore into a memory cgroup too small for the image: the kernel's OOM
/// killer takes the new process while its memory is filled. The restore
/// fails with a line that says so, leaves nothing behind, and a restore
/// outside the cgroup then works. Needs the cgroup v1 memory controller
/// (as on these machines); skipped with a message otherwise.
#[test]
fn restore_out_of_memory_is_a_clear_error() {
    if !require_root() {
        return;
    }
    let root = std::path::Path::new("/sys/fs/cgroup/memory");
    if !root.join("memory.limit_in_bytes").exists() {
        eprintln!("SKIP no cgroup v1 memory controller at {}", root.display());
        return;
    }
    let w = Workload::spawn_c(
        "bigmem",
        Spawn {
            args: vec!["96".into()],
            ..Default::default()
        },
    );
    let img = w.dir.join("img");
    dump(&w, &img, &[]);
    w.wait_gone();
    let cg = root.join(format!("stasis-oom-{}", std::process::id()));
    fs::create_dir_all(&cg).expect("make cgroup");
    struct Rm(std::path::PathBuf);
    impl Drop for Rm {
        fn drop(&mut self) {
            let _ = fs::remove_dir(&self.0);
        }
    }
    let _rm = Rm(cg.clone());
    fs::write(cg.join("memory.limit_in_bytes"), "48M").expect("set limit");
    let script = format!(
        "echo $$ > {}/cgroup.procs && exec {} restore -D {} -d",
        cg.display(),
        env!("CARGO_BIN_EXE_stasis"),
        img.display()
    );
    let out = Command::new("bash")
        .args(["-c", &script])
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("run stasis in the cgroup");
    let err = String::from_utf8_lossy(&out.stderr);
    eprintln!("restore in a 48M cgroup -> {}: {err}", out.status);
    assert!(!err.contains("panicked"), "stasis panicked: {err}");
    assert!(
        !out.status.success(),
        "the restore must fail in a 48M cgroup"
    );
    // The OOM killer picks the biggest process of the cgroup, the new one
    // as its memory fills; should it pick the restorer instead, there is
    // no one left to print anything, and EXITKILL takes the new process.
    if out.status.signal() != Some(libc::SIGKILL) {
        assert!(
            err.contains(&format!("pid {}", w.pid)) && err.contains("out of memory"),
            "the error must name the pid and the likely cause: {err}"
        );
    }
    w.wait_gone();
    restore(&img, &[]);
    w.terminate_and_verdict()
        .expect("restore outside the cgroup");
}

/// Scheduling attributes per thread (policy, nice, affinity, timer slack)
/// and PR_SET_THP_DISABLE come back (the completeness issue listed them as
/// lost).
#[test]
fn plain_sched() {
    common::plain_run("sched", Spawn::default());
}

#[test]
fn cr_sched() {
    common::cr_all_modes("sched", Spawn::default());
}

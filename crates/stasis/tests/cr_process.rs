//! Process-level state across checkpoint/restore: threads blocked in
//! interrupted syscalls, signal state, timers, identity/attributes.
//!
//! `plain_*` run each workload without a checkpoint (READY -> SIGTERM) and
//! validate the workload itself; `cr_*` run the standard C/R cycle in every
//! mode (see `common::cr_all_modes`).

mod common;

use common::*;
use std::time::Duration;

/// Runs `name` without a checkpoint: READY, its generic state is stable for
/// a moment (so before/after snapshots in the C/R cycle are meaningful), and
/// SIGTERM gives PASS.
fn plain(name: &str, opts: Spawn) {
    let w = Workload::spawn_c(name, opts);
    std::thread::sleep(Duration::from_millis(50));
    let before = w.snapshot();
    std::thread::sleep(Duration::from_millis(300));
    assert_same(&before, &w.snapshot(), &format!("plain {name}"));
    if let Err(e) = w.terminate_and_verdict() {
        panic!("plain {name}: {e}");
    }
}

fn nonroot() -> Spawn {
    Spawn {
        uid: Some(65534),
        gid: Some(65534),
        ..Default::default()
    }
}

fn held() -> Spawn {
    Spawn {
        args: vec!["held".to_string()],
        ..Default::default()
    }
}

fn nnp() -> Spawn {
    Spawn {
        args: vec!["nnp".to_string()],
        ..Default::default()
    }
}

// ---------------------------------------------------------------------------
// Without checkpoint
// ---------------------------------------------------------------------------

#[test]
fn plain_syscalls() {
    plain("syscalls", Spawn::default());
}

#[test]
fn plain_signals() {
    plain("signals", Spawn::default());
}

#[test]
fn plain_timers() {
    plain("timers", Spawn::default());
}

#[test]
fn plain_timers_fire() {
    plain("timers_fire", Spawn::default());
}

#[test]
fn plain_timers_fire_held() {
    plain("timers_fire", held());
}

#[test]
fn plain_identity() {
    plain("identity", Spawn::default());
}

#[test]
fn plain_identity_nonroot() {
    // Dropping to uid 65534 needs root.
    if !require_root() {
        return;
    }
    plain("identity", nonroot());
}

#[test]
fn plain_identity_nnp() {
    plain("identity", nnp());
}

// ---------------------------------------------------------------------------
// Checkpoint/restore
// ---------------------------------------------------------------------------

#[test]
fn cr_syscalls() {
    if !require_root() {
        return;
    }
    cr_all_modes("syscalls", Spawn::default());
}

#[test]
fn cr_signals() {
    if !require_root() {
        return;
    }
    cr_all_modes("signals", Spawn::default());
}

#[test]
fn cr_timers() {
    if !require_root() {
        return;
    }
    cr_all_modes("timers", Spawn::default());
}

/// Periodic timers (ITIMER_REAL, POSIX, timerfd: 20 ms) expire while the
/// dump holds the process frozen: they must keep firing after restore,
/// and in the original after `--leave-running`.
#[test]
fn cr_timers_fire() {
    if !require_root() {
        return;
    }
    cr_all_modes("timers_fire", Spawn::default());
}

/// [`cr_timers_fire`] with SIGALRM and SIGRTMIN+1 blocked by the process
/// itself since before READY: the timers have certainly expired, their
/// signals pending, when the dump starts.
#[test]
fn cr_timers_fire_held() {
    if !require_root() {
        return;
    }
    cr_all_modes("timers_fire", held());
}

#[test]
fn cr_identity() {
    if !require_root() {
        return;
    }
    cr_all_modes("identity", Spawn::default());
}

#[test]
fn cr_identity_nonroot() {
    if !require_root() {
        return;
    }
    cr_all_modes("identity", nonroot());
}

#[test]
fn cr_identity_nnp() {
    if !require_root() {
        return;
    }
    cr_all_modes("identity", nnp());
}

#[test]
fn plain_events() {
    plain_run("events", Spawn::default());
}

#[test]
fn cr_events() {
    if !require_root() {
        return;
    }
    cr_all_modes("events", Spawn::default());
}

#[test]
fn plain_unix() {
    plain_run("unix", Spawn::default());
}

/// Unix sockets of every type, paired, listening and bound, with queued
/// data, shutdown and options (see workloads/unix.c).
#[test]
fn cr_unix() {
    if !require_root() {
        return;
    }
    // Not PidNs: that mode restores a copy while the original runs, and
    // the copy's listener path is the original's (see the next test).
    cr_modes(
        "unix",
        Spawn::default(),
        &[Mode::KillRestore, Mode::LeaveRunning, Mode::RestoreTwice],
    );
}

/// A restore whose listener path is held by a live socket (the original,
/// left running) is refused before anything runs, naming the path; the
/// original is untouched.
#[test]
fn unix_path_in_use_is_refused() {
    if !require_root() {
        return;
    }
    copy_beside_original_is_refused("unix", &["l.sock", "in use"]);
}

#[test]
fn plain_unlinked() {
    plain_run("unlinked", Spawn::default());
}

/// Unlinked files, an O_TMPFILE file, a file unlinked while a hard link
/// remains, and memfds with seals, held by fds (see workloads/unlinked.c).
#[test]
fn cr_unlinked() {
    if !require_root() {
        return;
    }
    cr_all_modes("unlinked", Spawn::default());
}

//! Regressions of the reliability issue: states that made a dump or a
//! restore fail, hang or panic. Needs root.

mod common;

use common::{dump, plain_run, require_root, restore, Spawn, Workload};

/// Timers firing every millisecond at a glibc SIGEV_THREAD helper (signal
/// 32) and at a worker (SIGEV_THREAD_ID): restore blocked every signal but
/// glibc's own two, so signal 32 interrupted its remote syscalls about
/// every other run. glibc starts a thread for each expiry of the first
/// timer, so the process's threads and maps change all the time: the
/// generic before/after comparison does not apply, the workload's own
/// checks do.
#[test]
fn plain_timers_fast() {
    plain_run("timers_fast", Spawn::default());
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

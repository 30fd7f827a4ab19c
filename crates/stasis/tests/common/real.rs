//! Helpers for tests of real programs (not our workloads).

use super::*;
use std::path::PathBuf;
use std::thread::sleep;
use std::time::{Duration, Instant};

/// The path of `program`, or None after printing why the test is skipped.
pub fn need(program: &str) -> Option<PathBuf> {
    let p = find_program(program);
    if p.is_none() {
        eprintln!("SKIP {program} is not installed");
    }
    p
}

/// Polls `f` every 20 ms until it returns Some, or panics after `timeout`.
pub fn wait_for<T>(w: &Workload, timeout: Duration, what: &str, f: impl Fn() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}; log:\n{}",
            w.log()
        );
        sleep(Duration::from_millis(20));
    }
}

/// Log lines written after the last harness `restore` marker.
pub fn lines_after_restore(w: &Workload) -> Vec<String> {
    let log = w.log();
    let start = log
        .rfind("#harness: restore")
        .map(|i| log[i..].find('\n').map_or(log.len(), |j| i + j + 1))
        .unwrap_or(0);
    log[start..].lines().map(str::to_string).collect()
}

/// Differences between snapshots are checked last, so that a test also
/// shows whether the program itself behaves after the restore.
pub fn assert_no_diff(diff: Vec<String>, what: &str) {
    assert!(
        diff.is_empty(),
        "{what}: process state differs:\n  {}",
        diff.join("\n  ")
    );
}

/// dump (kills), wait until the session is gone, restore -d.
pub fn kill_restore(w: &Workload) {
    let img = w.dir.join("img");
    dump(w, &img, &[]);
    w.wait_gone();
    w.mark(&format!("restore from {}", img.display()));
    restore(&img, &[]);
    assert!(
        w.is_running(),
        "not running after restore: {}; log:\n{}",
        w.describe_exit(),
        w.log()
    );
}

//! Real programs through a kill/restore cycle: `sleep`, a `bash` loop, a
//! `python3` program, and the C pthreads workload watched from outside.
//! Each checks, from outside, that the restored program continues where it
//! was at dump time instead of starting over. Needs root; programs that are
//! not installed are skipped with a printed reason.

mod common;

use common::*;
use std::fs;
use std::thread::sleep;
use std::time::Duration;

#[test]
fn real_sleep() {
    if !require_root() {
        return;
    }
    let Some(sleep_bin) = need("sleep") else {
        return;
    };
    let w = Workload::spawn_cmd(
        sleep_bin.to_str().unwrap(),
        &["1000"],
        Spawn::default(),
        |w| proc_state(w.pid) == Some('S'),
    );
    let before = w.snapshot();
    kill_restore(&w);
    let state = wait_for(&w, Duration::from_secs(5), "state S", || {
        proc_state(w.pid).filter(|s| *s == 'S')
    });
    assert_eq!(state, 'S');
    let after = w.snapshot();
    assert!(
        before.root().cmdline.ends_with(b"sleep\x001000\x00"),
        "{:?}",
        before.root().cmdline
    );
    assert_eq!(
        after.root().cmdline,
        before.root().cmdline,
        "cmdline changed"
    );
    w.kill();
    assert_no_diff(before.diff(&after), "sleep 1000");
}

#[test]
fn real_bash_loop() {
    if !require_root() {
        return;
    }
    let Some(bash) = need("bash") else {
        return;
    };
    // Builtins only: an external `sleep` would make bash fork, and process
    // trees are the next issue. The inner loop paces the counter instead.
    let script =
        "i=0; while true; do i=$((i+1)); echo $i > counter; for ((j=0;j<20000;j++)); do :; done; done";
    let counter = |w: &Workload| -> Option<u64> {
        fs::read_to_string(w.dir.join("counter"))
            .ok()?
            .trim()
            .parse()
            .ok()
    };
    let w = Workload::spawn_cmd(
        bash.to_str().unwrap(),
        &["-c", script],
        Spawn::default(),
        |w| counter(w).is_some_and(|c| c >= 5),
    );
    let before = w.snapshot().identity();
    let pre_dump = counter(&w);
    let img = w.dir.join("img");
    dump(&w, &img, &[]);
    w.wait_gone();
    // Empty only if the dump caught bash between truncating and writing.
    let raw = || fs::read(w.dir.join("counter")).unwrap_or_default();
    let file_at_dump = raw();
    let at_dump = counter(&w).or(pre_dump).expect("counter file after dump");
    assert!(at_dump >= 5, "counter {at_dump} at dump");
    // Nothing runs now: the file must stay as it is (empty, too) until
    // the restore.
    sleep(Duration::from_millis(300));
    assert_eq!(raw(), file_at_dump, "counter file changed while dumped");
    w.mark(&format!("restore from {}", img.display()));
    restore(&img, &[]);
    assert!(
        w.is_running(),
        "bash not running after restore: {}",
        w.describe_exit()
    );
    let diff = before.diff(&w.snapshot().identity());
    // The loop continues from its in-memory i: the next values are
    // at_dump (+1, +2 ...), never a restart from 1.
    let next = wait_for(
        &w,
        Duration::from_secs(10),
        "the counter to advance",
        || counter(&w).filter(|c| *c != at_dump),
    );
    assert!(
        next > at_dump && next <= at_dump + 3,
        "counter after restore is {next}, was {at_dump} at dump (restarted?)"
    );
    let later = wait_for(
        &w,
        Duration::from_secs(10),
        "the counter to keep going",
        || counter(&w).filter(|c| *c >= next + 2),
    );
    assert!(later >= next + 2);
    w.kill();
    assert_no_diff(diff, "bash loop");
}

/// Parses "progress N SUM" lines.
fn progress(line: &str) -> Option<(u64, u64)> {
    let mut it = line.strip_prefix("progress ")?.split_whitespace();
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

#[test]
fn real_python() {
    if !require_root() {
        return;
    }
    let Some(python) = need("python3") else {
        return;
    };
    // State lives only in memory: n, and a dict whose sum is checkable.
    let script = r#"
import sys, time
n = 0
squares = {}
while True:
    n += 1
    squares[n] = n * n
    print(f"progress {n} {sum(squares.values())}", flush=True)
    time.sleep(0.05)
"#;
    let last = |w: &Workload| -> Option<(u64, u64)> { w.log().lines().rev().find_map(progress) };
    let w = Workload::spawn_cmd(
        python.to_str().unwrap(),
        &["-c", script],
        Spawn::default(),
        |w| last(w).is_some_and(|(n, _)| n >= 10),
    );
    let before = w.snapshot().identity();
    kill_restore(&w);
    let diff = before.diff(&w.snapshot().identity());
    let at_dump = {
        let log = w.log();
        let cut = log.rfind("#harness: restore").unwrap();
        log[..cut].lines().rev().find_map(progress).unwrap().0
    };
    let after = wait_for(
        &w,
        Duration::from_secs(10),
        "5 progress lines after restore",
        || {
            let v: Vec<(u64, u64)> = lines_after_restore(&w)
                .iter()
                .filter_map(|l| progress(l))
                .collect();
            (v.len() >= 5).then_some(v)
        },
    );
    assert_eq!(
        after[0].0,
        at_dump + 1,
        "first progress after restore is {}, last before was {at_dump}",
        after[0].0
    );
    for (i, &(n, sum)) in after.iter().enumerate() {
        assert_eq!(
            n,
            at_dump + 1 + i as u64,
            "progress numbers not consecutive"
        );
        assert_eq!(
            sum,
            n * (n + 1) * (2 * n + 1) / 6,
            "dict sum wrong at n={n}"
        );
    }
    w.kill();
    assert_no_diff(diff, "python3");
}

fn counters(line: &str) -> Option<Vec<u64>> {
    let v: Option<Vec<u64>> = line
        .strip_prefix("counters ")?
        .split_whitespace()
        .map(|s| s.parse().ok())
        .collect();
    v.filter(|v| v.len() == 8)
}

#[test]
fn real_threads_counters() {
    if !require_root() {
        return;
    }
    let opts = Spawn {
        args: vec!["--progress".into()],
        ..Spawn::default()
    };
    let w = Workload::spawn_c("threads", opts);
    wait_for(&w, Duration::from_secs(10), "counters >= 50", || {
        let log = w.log();
        let c = log.lines().rev().find_map(counters)?;
        c.iter().all(|&x| x >= 50).then_some(())
    });
    let before = w.snapshot().without_pos(&[1, 2]);
    kill_restore(&w);
    let diff = before.diff(&w.snapshot().without_pos(&[1, 2]));
    let at_dump = {
        let log = w.log();
        let cut = log.rfind("#harness: restore").unwrap();
        log[..cut].lines().rev().find_map(counters).unwrap()
    };
    let after = wait_for(
        &w,
        Duration::from_secs(10),
        "2 counter lines after restore",
        || {
            let v: Vec<Vec<u64>> = lines_after_restore(&w)
                .iter()
                .filter_map(|l| counters(l))
                .collect();
            (v.len() >= 2).then_some(v)
        },
    );
    for t in 0..8 {
        assert!(
            after[0][t] >= at_dump[t],
            "thread {t}: counter {} after restore < {} at dump (reset?)",
            after[0][t],
            at_dump[t]
        );
        assert!(
            after[1][t] > after[0][t],
            "thread {t}: counter not advancing after restore ({} -> {})",
            after[0][t],
            after[1][t]
        );
    }
    if let Err(e) = w.terminate_and_verdict() {
        panic!("threads --progress: {e}");
    }
    assert_no_diff(diff, "threads --progress");
}

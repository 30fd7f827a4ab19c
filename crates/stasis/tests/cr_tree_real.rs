//! Real programs that run as process trees, through a kill/restore cycle
//! in the middle of their work: a `bash` pipeline streaming 50 MB through
//! pipes into `sha256sum`, and a `python3` multiprocessing pool. Each must
//! finish after the restore with exactly the result an undisturbed run
//! gives. (The C "server" tree, `tree_server`, is in `cr_tree.rs`.) Needs
//! root; programs that are not installed are skipped with a printed reason.

mod common;

use common::{
    dump, find_program, require_root, restore, wait_exit, walk_tree, Exit, Snapshot, Spawn,
    Workload,
};
use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// How long a restored tree may take to finish its work.
const FINISH_TIMEOUT: Duration = Duration::from_secs(60);

/// The installed programs, or None after printing why the test is skipped.
fn need(programs: &[&str]) -> Option<Vec<PathBuf>> {
    let mut v = Vec::new();
    for p in programs {
        match find_program(p) {
            Some(path) => v.push(path),
            None => {
                eprintln!("SKIP {p} is not installed");
                return None;
            }
        }
    }
    Some(v)
}

/// Number of processes in the workload's tree, zombies included.
fn tree_size(w: &Workload) -> usize {
    walk_tree(&[w.pid]).len()
}

/// The root's identity (pid, cmdline, exe, cwd, credentials, pgid/sid).
/// Only the root: the rest of these trees changes all the time.
fn root_identity(w: &Workload) -> Snapshot {
    Snapshot::take(w.pid)
        .unwrap_or_else(|e| panic!("snapshot of {}: {e}; log:\n{}", w.what, w.log()))
        .identity()
}

/// dump (kills the tree), wait until all of it is gone, check `mid_work`
/// (the work was not finished at dump time), restore -d, compare the
/// root's identity, and wait for the root to exit 0.
fn kill_restore_finish(w: &Workload, mid_work: impl Fn() -> Result<(), String>) {
    let img = w.dir.join("img");
    let procs = tree_size(w);
    let before = root_identity(w);
    dump(w, &img, &[]);
    w.wait_gone();
    if let Err(e) = mid_work() {
        panic!(
            "the work was done before the dump ({e}), so the test proves nothing; log:\n{}",
            w.log()
        );
    }
    w.mark(&format!(
        "restore from {} ({procs} processes)",
        img.display()
    ));
    restore(&img, &[]);
    let diff = before.diff(&root_identity(w));
    assert!(
        diff.is_empty(),
        "root differs after restore:\n  {}",
        diff.join("\n  ")
    );
    // The restored root is reparented to us (a subreaper): its exit status
    // is ours to collect.
    match wait_exit(w.pid, FINISH_TIMEOUT, false) {
        Ok(Exit::Status(st)) => {
            let st = std::process::ExitStatus::from_raw(st);
            assert!(
                st.success(),
                "{} exited with {st} after restore; log:\n{}",
                w.what,
                w.log()
            );
        }
        Ok(Exit::Gone) => panic!("{}: exit status lost after restore", w.what),
        Err(e) => panic!("{} after restore: {e}; log:\n{}", w.what, w.log()),
    }
    w.wait_gone();
}

#[test]
fn real_tree_bash_pipeline() {
    if !require_root() {
        return;
    }
    let Some(p) = need(&["bash", "yes", "head", "seq", "sleep", "sha256sum"]) else {
        return;
    };
    // 50 MB of "stasis\n" through four pipes, paced by a loop that passes
    // 100 chunks of 500 kB with a 20 ms nap each (about 2.5 s in all), so
    // the dump catches every stage mid-stream, with full pipes.
    const BYTES: u64 = 50_000_000;
    const CHUNKS: u64 = 100;
    let script = format!(
        "yes stasis | head -c {BYTES} | \
         for i in $(seq {CHUNKS}); do head -c {}; sleep 0.02; done | \
         sha256sum > sum.out",
        BYTES / CHUNKS
    );
    let expected = {
        let out = Command::new(&p[0])
            .args(["-c", &format!("yes stasis | head -c {BYTES} | sha256sum")])
            .output()
            .expect("run the reference pipeline");
        assert!(out.status.success(), "reference pipeline: {out:?}");
        String::from_utf8(out.stdout).expect("utf-8 checksum")
    };
    let t0 = Instant::now();
    let w = Workload::spawn_cmd(
        p[0].to_str().unwrap(),
        &["-c", &script],
        Spawn::default(),
        |w| {
            // bash, yes, head, the loop's subshell, sha256sum, and some way in.
            t0.elapsed() > Duration::from_millis(400) && tree_size(w) >= 5
        },
    );
    let sum_file = w.dir.join("sum.out");
    kill_restore_finish(&w, || match fs::read(&sum_file) {
        Ok(b) if b.is_empty() => Ok(()),
        Ok(b) => Err(format!("sum.out holds {:?}", String::from_utf8_lossy(&b))),
        Err(e) => Err(format!("sum.out: {e}")),
    });
    let got = fs::read_to_string(&sum_file).expect("sum.out after the restored run");
    assert_eq!(
        got,
        expected,
        "checksum of the restored pipeline's output; log:\n{}",
        w.log()
    );
}

/// Parses "progress N TOTAL" lines.
fn progress(line: &str) -> Option<(u64, u64)> {
    let mut it = line.strip_prefix("progress ")?.split_whitespace();
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

/// Sum of i*i for i in 0..n.
fn sum_squares(n: u64) -> u64 {
    n.saturating_sub(1) * n * (2 * n).saturating_sub(1) / 6
}

#[test]
fn real_tree_python_pool() {
    if !require_root() {
        return;
    }
    let Some(p) = need(&["python3"]) else {
        return;
    };
    // A pool of 4 forked workers sums squares over 120 chunks of 10000
    // numbers, each chunk taking at least 50 ms, so the dump lands in the
    // middle: workers blocked on the task queue or sleeping, results in
    // flight, the parent's pool threads waiting.
    const CHUNK: u64 = 10_000;
    const CHUNKS: u64 = 120;
    let script = format!(
        r#"
import multiprocessing as mp, os, time
CHUNK = {CHUNK}
def work(c):
    time.sleep(0.05)
    return sum(i * i for i in range(c * CHUNK, (c + 1) * CHUNK))
if __name__ == "__main__":
    mp.set_start_method("fork")
    total = 0
    with mp.Pool(4) as pool:
        for n, r in enumerate(pool.imap(work, range({CHUNKS}))):
            total += r
            print(f"progress {{n}} {{total}}", flush=True)
    with open("result.tmp", "w") as f:
        f.write(f"{{total}}\n")
    os.rename("result.tmp", "result")
"#
    );
    let w = Workload::spawn_cmd(
        p[0].to_str().unwrap(),
        &["-c", &script],
        Spawn::default(),
        |w| w.log().lines().filter_map(progress).count() >= 5 && tree_size(w) >= 5,
    );
    let result = w.dir.join("result");
    kill_restore_finish(&w, || match fs::read_to_string(&result) {
        Err(_) => Ok(()),
        Ok(s) => Err(format!("result file holds {s:?}")),
    });
    let log = w.log();
    let cut = log.rfind("#harness: restore").expect("restore marker");
    let before: Vec<(u64, u64)> = log[..cut].lines().filter_map(progress).collect();
    let after: Vec<(u64, u64)> = log[cut..].lines().filter_map(progress).collect();
    let at_dump = before.last().expect("progress before the dump").0;
    assert!(
        !after.is_empty() && after[0].0 == at_dump + 1,
        "progress after restore starts at {:?}, last before the dump was {at_dump} (restarted?); log:\n{log}",
        after.first()
    );
    for (i, &(n, total)) in before.iter().chain(&after).enumerate() {
        assert_eq!(n, i as u64, "progress lines not consecutive; log:\n{log}");
        assert_eq!(
            total,
            sum_squares((n + 1) * CHUNK),
            "running total wrong at chunk {n}; log:\n{log}"
        );
    }
    assert_eq!(after.last().map(|l| l.0), Some(CHUNKS - 1), "log:\n{log}");
    let got = fs::read_to_string(&result).expect("result file after the restored run");
    assert_eq!(
        got.trim(),
        sum_squares(CHUNKS * CHUNK).to_string(),
        "result of the restored pool; log:\n{log}"
    );
}

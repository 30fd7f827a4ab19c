//! Real programs holding files without a name through a kill/restore
//! cycle: a python3 program writing to an unlinked temporary file, and a
//! bash whose binary was replaced and whose library was deleted while it
//! ran (as after a package upgrade). Needs root; programs that are not
//! installed are skipped with a printed reason.

mod common;

use common::*;
use std::fs;
use std::path::Path;
use std::time::Duration;

/// Targets of the fds of `pid` that name deleted files.
fn deleted_fds(pid: i32) -> Vec<String> {
    fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| fs::read_link(e.path()).ok())
                .map(|l| l.to_string_lossy().into_owned())
                .filter(|l| l.ends_with(" (deleted)"))
                .collect()
        })
        .unwrap_or_default()
}

/// "N ok" lines the python program writes to `status`.
fn status(w: &Workload) -> Option<(u64, String)> {
    let s = fs::read_to_string(w.dir.join("status")).ok()?;
    let (n, ok) = s.trim().split_once(' ')?;
    Some((n.parse().ok()?, ok.to_string()))
}

/// python3 appends numbered lines to a `tempfile.TemporaryFile` (an
/// O_TMPFILE file, never named) and rereads all of it every 50 lines. After
/// the restore it continues from the line it was at, and every reread
/// still finds each line exactly once, in order.
#[test]
fn real_python_tempfile() {
    if !require_root() {
        return;
    }
    let Some(py) = need("python3") else {
        return;
    };
    let script = r#"
import tempfile, time
f = tempfile.TemporaryFile(dir='.')
i = 0
while True:
    f.write(b'%d\n' % i)
    f.flush()
    i += 1
    if i % 50 == 0:
        f.seek(0)
        lines = f.read().split(b'\n')[:-1]
        ok = len(lines) == i and all(int(l) == k for k, l in enumerate(lines))
        with open('status.new', 'w') as s:
            s.write('%d %s\n' % (i, 'ok' if ok else 'BAD'))
        import os
        os.rename('status.new', 'status')
        f.seek(0, 2)
    time.sleep(0.001)
"#;
    let w = Workload::spawn_cmd(
        py.to_str().expect("utf-8"),
        &["-c", script],
        Spawn::default(),
        |w| status(w).is_some_and(|(n, _)| n >= 200),
    );
    let held = deleted_fds(w.pid);
    assert!(
        held.iter().any(|l| l.contains("/#")),
        "python holds no O_TMPFILE file: {held:?}"
    );
    let before = w.snapshot().identity();
    kill_restore(&w);
    let (at_restore, _) = status(&w).expect("status after restore");
    let diff = before.diff(&w.snapshot().identity());
    let (later, ok) = wait_for(&w, Duration::from_secs(10), "more lines", || {
        status(&w).filter(|(n, _)| *n >= at_restore + 200)
    });
    assert_eq!(
        ok, "ok",
        "after the restore, the temporary file lost or repeated lines (at {later})"
    );
    assert!(
        later < at_restore + 2000,
        "line count {later} jumped (was {at_restore}): restarted?"
    );
    let held_after = deleted_fds(w.pid);
    assert_eq!(
        held_after.len(),
        held.len(),
        "deleted files held: {held:?} -> {held_after:?}"
    );
    w.kill();
    assert_no_diff(diff, "python tempfile");
}

/// The library `name` that `program` loads, from ldd.
fn library_of(program: &Path, name: &str) -> Option<std::path::PathBuf> {
    let out = std::process::Command::new("ldd")
        .arg(program)
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).lines().find_map(|l| {
        let (lib, rest) = l.trim().split_once(" => ")?;
        (lib == name).then(|| rest.split(" (").next().unwrap_or("").into())
    })
}

/// bash runs from a copy of itself in a directory of its own, loading a
/// copy of libtinfo from there (LD_LIBRARY_PATH). While it runs, the
/// binary is replaced by another file of the same name and the library is
/// deleted. After the kill/restore the loop continues where it was, the
/// executable is a deleted file with bash's bytes, the library mapping
/// still names the deleted library, and the replacement is untouched.
#[test]
fn real_replaced_binary_and_library() {
    if !require_root() {
        return;
    }
    let Some(bash) = need("bash") else {
        return;
    };
    let Some(tinfo) = library_of(&bash, "libtinfo.so.6") else {
        eprintln!("SKIP bash does not load libtinfo.so.6 here (ldd)");
        return;
    };
    let bin = fresh_dir("replaced-bin");
    let (exe, lib) = (bin.join("bash"), bin.join("libtinfo.so.6"));
    fs::copy(&bash, &exe).expect("copy bash");
    fs::copy(&tinfo, &lib).expect("copy libtinfo");
    let script =
        "i=0; while true; do i=$((i+1)); echo $i > counter; for ((j=0;j<20000;j++)); do :; done; done";
    let counter = |w: &Workload| -> Option<u64> {
        fs::read_to_string(w.dir.join("counter"))
            .ok()?
            .trim()
            .parse()
            .ok()
    };
    let opts = Spawn {
        env: vec![("LD_LIBRARY_PATH".into(), bin.display().to_string())],
        ..Default::default()
    };
    let w = Workload::spawn_cmd(exe.to_str().expect("utf-8"), &["-c", script], opts, |w| {
        counter(w).is_some_and(|c| c >= 5)
    });
    let maps = || fs::read_to_string(format!("/proc/{}/maps", w.pid)).unwrap_or_default();
    assert!(
        maps().contains(lib.to_str().expect("utf-8")),
        "bash did not load the copied library"
    );
    // The upgrade: a new file renamed over the binary, the library removed.
    let replacement = b"#!/bin/sh\necho replacement\n";
    let new = bin.join("bash.new");
    fs::write(&new, replacement).expect("write replacement");
    fs::rename(&new, &exe).expect("replace the binary");
    fs::remove_file(&lib).expect("delete the library");
    let exe_link = fs::read_link(format!("/proc/{}/exe", w.pid)).expect("exe link");
    assert!(
        exe_link.to_string_lossy().ends_with(" (deleted)"),
        "{exe_link:?}"
    );
    let before = w.snapshot().identity();

    let pre_dump = counter(&w).unwrap_or(5);
    kill_restore(&w);
    // The file is empty for a moment each turn; the value is never lower
    // than before the dump (a restart would count from 1 again).
    let next = wait_for(
        &w,
        Duration::from_secs(10),
        "the counter to advance",
        || counter(&w).filter(|c| *c > pre_dump),
    );
    assert!(
        next <= pre_dump + 50,
        "counter after restore is {next}, was {pre_dump} before the dump"
    );
    let exe_bytes = fs::read(format!("/proc/{}/exe", w.pid)).expect("read restored exe");
    assert!(
        exe_bytes == fs::read(&bash).expect("read bash"),
        "the restored executable is not bash's bytes ({} bytes)",
        exe_bytes.len()
    );
    // The old name is taken by the replacement: the executable is an
    // unnamed file of the same directory now ("#INODE (deleted)").
    let exe_after = fs::read_link(format!("/proc/{}/exe", w.pid)).expect("exe link");
    assert!(
        exe_after.parent() == Some(&bin) && exe_after.to_string_lossy().ends_with(" (deleted)"),
        "restored exe is {exe_after:?}"
    );
    let deleted_lib = format!("{} (deleted)", lib.display());
    assert!(
        maps().contains(&deleted_lib),
        "maps do not name {deleted_lib}:\n{}",
        maps()
    );
    assert_eq!(
        fs::read(&exe).expect("read replacement"),
        replacement,
        "restore touched the replacement binary"
    );
    assert!(!lib.exists(), "restore left the deleted library behind");
    let mut after = w.snapshot().identity();
    for p in after.procs.values_mut().filter_map(|p| p.snap.as_mut()) {
        p.exe = before.root().exe.clone();
    }
    let diff = before.diff(&after);
    w.kill();
    let _ = fs::remove_dir_all(&bin);
    assert_no_diff(diff, "replaced bash");
}

//! Image directories under stress: a full disk, a dump that fails while
//! another image is in the directory, planted symbolic links, file modes,
//! and pids above `pid_max` at restore. A failed dump must say what failed
//! in one line, leave its target running unharmed and leave no image that
//! looks complete; a previous image in the directory stays restorable until
//! the new one is complete. Needs root.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{dump, find_program, proc_state, require_root, restore, stasis, Spawn, Workload};

/// A tmpfs of `size` mounted on a fresh directory; unmounted on drop (also
/// when the test fails), before the workload's directory is removed.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: PathBuf, size: &str) -> Tmpfs {
        fs::create_dir_all(&dir).expect("create tmpfs mountpoint");
        let st = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(&dir)
            .status()
            .expect("run mount");
        assert!(st.success(), "mount tmpfs on {}: {st}", dir.display());
        Tmpfs(dir)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let st = Command::new("umount").arg(&self.0).status();
        if !st.is_ok_and(|s| s.success()) {
            // Lazily, so a busy mount cannot outlive the test run.
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

fn spawn_sleep() -> Option<Workload> {
    let Some(bin) = find_program("sleep") else {
        eprintln!("SKIP sleep is not installed");
        return None;
    };
    Some(Workload::spawn_cmd(
        bin.to_str().unwrap(),
        &["1000"],
        Spawn::default(),
        |w| proc_state(w.pid) == Some('S'),
    ))
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The single `error:` line of a failed run, lower-cased.
fn error_line(o: &Output) -> String {
    assert!(!o.status.success(), "stasis succeeded: {}", stderr(o));
    let err = stderr(o);
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(lines.len(), 1, "want exactly one error line:\n{err}");
    lines[0].to_lowercase()
}

fn dump_out(w: &Workload, dir: &Path, env: &[(&str, &str)]) -> Output {
    w.processes();
    let pid = w.pid.to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_stasis"))
        .args(["dump", "-t", &pid, "-D", dir.to_str().unwrap()])
        .envs(env.iter().copied())
        .output()
        .expect("run stasis");
    eprintln!(
        "$ stasis dump -t {pid} -D {} -> {}\n{}",
        dir.display(),
        out.status,
        stderr(&out)
    );
    out
}

/// Restore and inspect of `dir` both say it holds no complete image.
fn assert_no_complete_image(dir: &Path) {
    let d = dir.to_str().unwrap();
    for args in [vec!["restore", "-D", d, "-d"], vec!["inspect", d]] {
        let line = error_line(&stasis(&args));
        assert!(
            line.contains("no complete image"),
            "`stasis {}` must say there is no complete image: {line}",
            args[0]
        );
    }
}

/// Names in `dir`.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Restores `dir` and checks that it brought back `w` (by pid and cwd).
fn restore_gives(dir: &Path, w: &Workload) {
    restore(dir, &[]);
    assert!(
        w.is_running(),
        "restore of {} did not bring back pid {} ({})",
        dir.display(),
        w.pid,
        w.what
    );
}

#[test]
fn dump_onto_full_disk_fails_clearly_and_target_lives() {
    if !require_root() {
        return;
    }
    let w = Workload::spawn_c("mem", Spawn::default());
    let fs = Tmpfs::mount(w.dir.join("small"), "1m");
    let img = fs.0.join("img");
    let before = w.snapshot();
    let line = error_line(&dump_out(&w, &img, &[]));
    assert!(
        line.contains("no space left on device") && line.contains("pages.img"),
        "the error must name the image file and the full disk: {line}"
    );
    assert!(w.is_running(), "a failed dump must not kill the target");
    let diff = before.diff(&w.snapshot());
    assert!(diff.is_empty(), "target changed by a failed dump: {diff:?}");
    assert_eq!(names(&img), Vec::<String>::new(), "leftovers in {img:?}");
    assert_no_complete_image(&img);
    w.terminate_and_verdict().unwrap();
}

#[test]
fn failed_dump_keeps_previous_image() {
    if !require_root() {
        return;
    }
    let Some(a) = spawn_sleep() else { return };
    let fs = Tmpfs::mount(a.dir.join("small"), "1m");
    let img = fs.0.join("img");
    dump(&a, &img, &[]);
    a.wait_gone();
    // Runs out of space while writing its pages.
    let b = Workload::spawn_c("mem", Spawn::default());
    let line = error_line(&dump_out(&b, &img, &[]));
    assert!(line.contains("no space left on device"), "{line}");
    assert!(b.is_running(), "a failed dump must not kill the target");
    // Fails once every page is written, before the image is complete.
    let Some(c) = spawn_sleep() else { return };
    let out = dump_out(&c, &img, &[("STASIS_FAIL_AT", "dump-before-core")]);
    assert!(error_line(&out).contains("dump-before-core"));
    assert!(c.is_running(), "a failed dump must not kill the target");
    restore_gives(&img, &a);
    a.kill();
    b.terminate_and_verdict().unwrap();
}

#[test]
fn dump_replaces_image_in_directory() {
    let Some(a) = spawn_sleep().filter(|_| require_root()) else {
        return;
    };
    let img = a.dir.join("img");
    dump(&a, &img, &[]);
    a.wait_gone();
    let Some(b) = spawn_sleep() else { return };
    dump(&b, &img, &[]);
    b.wait_gone();
    restore_gives(&img, &b);
    assert!(proc_state(a.pid).is_none(), "image A came back, not B");
    b.kill();
    let Some(c) = spawn_sleep() else { return };
    // Dump again over B, to the other pages slot, and fail there too.
    let out = dump_out(&c, &img, &[("STASIS_FAIL_AT", "dump-before-core")]);
    assert!(error_line(&out).contains("dump-before-core"));
    restore_gives(&img, &b);
    b.kill();
    dump(&c, &img, &[]);
    c.wait_gone();
    restore_gives(&img, &c);
    let files = names(&img);
    assert_eq!(files.len(), 2, "old pages left beside the image: {files:?}");
}

#[test]
fn dump_creates_private_files() {
    let Some(w) = spawn_sleep().filter(|_| require_root()) else {
        return;
    };
    let img = w.dir.join("new/img");
    w.processes();
    let out = stasis(&[
        "dump",
        "-t",
        &w.pid.to_string(),
        "-D",
        img.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mode = |p: &Path| fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(&img), 0o700, "a directory the dump creates is 0700");
    for f in names(&img) {
        assert_eq!(mode(&img.join(&f)), 0o600, "{f} must be mode 0600");
    }
    w.wait_gone();
}

/// Victim files that planted links point at: (path, contents, mtime).
fn victims(dir: &Path, n: usize) -> Vec<(PathBuf, Vec<u8>, i64)> {
    (0..n)
        .map(|i| {
            let p = dir.join(format!("victim{i}"));
            fs::write(&p, format!("victim {i}\n")).unwrap();
            let m = fs::metadata(&p).unwrap().mtime_nsec();
            (p, format!("victim {i}\n").into_bytes(), m)
        })
        .collect()
}

#[test]
fn dump_never_writes_through_planted_symlinks() {
    let Some(w) = spawn_sleep().filter(|_| require_root()) else {
        return;
    };
    let img = w.dir.join("img");
    fs::create_dir(&img).unwrap();
    let planted = [
        "core.img",
        "pages.img",
        "pages.alt.img",
        "core.img.tmp",
        "pages.img.tmp",
        "pages.alt.img.tmp",
    ];
    let vs = victims(&w.dir, planted.len());
    for (name, (victim, _, _)) in planted.iter().zip(&vs) {
        std::os::unix::fs::symlink(victim, img.join(name)).unwrap();
    }
    dump(&w, &img, &[]);
    w.wait_gone();
    for (victim, contents, mtime) in &vs {
        assert_eq!(&fs::read(victim).unwrap(), contents, "{victim:?} written");
        assert_eq!(fs::metadata(victim).unwrap().mtime_nsec(), *mtime);
    }
    for f in names(&img) {
        let m = fs::symlink_metadata(img.join(&f)).unwrap();
        assert!(m.is_file(), "{f} is not a regular file after the dump");
    }
    restore_gives(&img, &w);
}

#[test]
fn restore_refuses_symlinked_image_files() {
    let Some(w) = spawn_sleep().filter(|_| require_root()) else {
        return;
    };
    let img = w.dir.join("img");
    dump(&w, &img, &[]);
    w.wait_gone();
    let real = w.dir.join("real");
    fs::rename(&img, &real).unwrap();
    let files = names(&real);
    for link in &files {
        // A copy where `link` is a symlink to a good file of the same name.
        let bad = w.dir.join(format!("bad-{link}"));
        fs::create_dir(&bad).unwrap();
        for f in &files {
            if f == link {
                std::os::unix::fs::symlink(real.join(f), bad.join(f)).unwrap();
            } else {
                fs::copy(real.join(f), bad.join(f)).unwrap();
            }
        }
        let d = bad.to_str().unwrap();
        for args in [vec!["restore", "-D", d, "-d"], vec!["inspect", d]] {
            let line = error_line(&stasis(&args));
            assert!(
                line.contains("symbolic link") && line.contains(link.as_str()),
                "`stasis {}` must refuse {link} as a symbolic link: {line}",
                args[0]
            );
        }
        assert!(
            proc_state(w.pid).is_none(),
            "a refused restore made pid {}",
            w.pid
        );
    }
    restore_gives(&real, &w);
}

/// Sets `/proc/sys/kernel/pid_max` and puts the old value back on drop,
/// also when the test fails.
struct PidMax(String);

const PID_MAX: &str = "/proc/sys/kernel/pid_max";

impl PidMax {
    fn set(v: u64) -> PidMax {
        let old = fs::read_to_string(PID_MAX).unwrap();
        fs::write(PID_MAX, v.to_string()).unwrap();
        PidMax(old.trim().to_string())
    }
}

impl Drop for PidMax {
    fn drop(&mut self) {
        if let Err(e) = fs::write(PID_MAX, &self.0) {
            eprintln!("cannot put pid_max back to {}: {e}", self.0);
        }
    }
}

#[test]
fn restore_above_pid_max_is_refused() {
    let Some(mut w) = spawn_sleep().filter(|_| require_root()) else {
        return;
    };
    if w.pid <= 1000 {
        // Pids just wrapped: move the allocator on (harmless: the next
        // fork anywhere takes the next free pid above it) and try again.
        let max: u64 = fs::read_to_string(PID_MAX).unwrap().trim().parse().unwrap();
        fs::write("/proc/sys/kernel/ns_last_pid", (max / 2).to_string()).unwrap();
        let Some(again) = spawn_sleep() else { return };
        w = again;
    }
    if w.pid <= 1000 {
        eprintln!("SKIP pid {} is too low to lower pid_max below it", w.pid);
        return;
    }
    let img = w.dir.join("img");
    dump(&w, &img, &[]);
    w.wait_gone();
    let out = {
        // As short as possible: every process on the machine sees it.
        let _low = PidMax::set(w.pid as u64);
        stasis(&["restore", "-D", img.to_str().unwrap(), "-d"])
    };
    let line = error_line(&out);
    assert!(
        line.contains("pid_max") && line.contains(&format!("pid {}", w.pid)),
        "the error must name the pid and pid_max: {line}"
    );
    assert!(
        proc_state(w.pid).is_none(),
        "a refused restore made pid {}",
        w.pid
    );
    restore_gives(&img, &w);
}

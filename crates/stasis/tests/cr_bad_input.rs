//! Bad input: restoring damaged images, or into a busy pid, must fail with
//! one clear `error:` line naming the cause, exit non-zero, and leave no
//! process behind. Each test dumps its own `sleep 1000`, damages a copy of
//! the image, and restores that copy. Needs root.

mod common;

use common::{
    dump, find_program, proc_state, require_root, session_members, stasis, Spawn, Workload,
};
use std::fs;
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::Duration;

/// A `sleep 1000` that was dumped (and so killed); `img` is its image.
struct Dumped {
    w: Workload,
    img: PathBuf,
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

fn dumped_sleep() -> Option<Dumped> {
    if !require_root() {
        return None;
    }
    let w = spawn_sleep()?;
    let img = w.dir.join("img");
    dump(&w, &img, &[]);
    w.wait_gone();
    Some(Dumped { w, img })
}

fn copy_dir(src: &Path, dst: &Path) {
    fs::create_dir_all(dst).unwrap();
    for e in fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let to = dst.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to);
        } else {
            fs::copy(e.path(), &to).unwrap();
        }
    }
}

impl Dumped {
    /// A copy of the image, to be damaged, and the path of `file` in it.
    fn copy_with(&self, file: &str) -> (PathBuf, PathBuf) {
        let bad = self.w.dir.join("bad");
        copy_dir(&self.img, &bad);
        let p = bad.join(file);
        assert!(
            p.is_file(),
            "the image has no {file}; it holds: {:?}",
            fs::read_dir(&self.img)
                .map(|rd| rd.flatten().map(|e| e.file_name()).collect::<Vec<_>>())
                .unwrap_or_default()
        );
        (bad, p)
    }
}

/// Pids of live processes whose cwd is `dir` (workload dirs are unique).
fn pids_in_dir(dir: &Path) -> Vec<i32> {
    let mut v = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|c| c == dir) {
            v.push(pid);
        }
    }
    v
}

/// Runs `restore -D img -d`, expects failure with an `error:` line that
/// mentions one word of every group in `words` (lower case), and returns
/// that line.
fn restore_fails(img: &Path, words: &[&[&str]]) -> String {
    let out = stasis(&["restore", "-D", img.to_str().unwrap(), "-d"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "restore of a bad image succeeded; stderr:\n{stderr}"
    );
    let line = stderr
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_else(|| panic!("no `error:` line on stderr:\n{stderr}"))
        .to_string();
    let lower = line.to_lowercase();
    for group in words {
        assert!(
            group.iter().any(|w| lower.contains(w)),
            "error line does not mention any of {group:?}: {line:?}"
        );
    }
    line
}

/// Nothing may be left of a failed restore: the pid is free and no process
/// sits in the workload's dir or session.
fn assert_nothing_left(d: &Dumped) {
    for _ in 0..2 {
        let pid = d.w.pid;
        assert!(
            proc_state(pid).is_none(),
            "pid {pid} exists after a failed restore (state {:?}, cmdline {:?})",
            proc_state(pid),
            fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
                .unwrap_or_default()
        );
        assert_eq!(
            pids_in_dir(&d.w.dir),
            Vec::<i32>::new(),
            "processes left behind"
        );
        assert!(
            session_members(pid).is_empty(),
            "session {pid} has processes: {:?}",
            session_members(pid)
        );
        // And again a little later, in case something was still exiting.
        sleep(Duration::from_millis(200));
    }
}

const CHECKSUM: &[&str] = &["checksum", "crc", "corrupt"];

#[test]
fn bad_truncated_core() {
    let Some(d) = dumped_sleep() else { return };
    let (bad, core) = d.copy_with("core.img");
    let len = fs::metadata(&core).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&core)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    restore_fails(&bad, &[&["truncat", "short", "unexpected end", "eof"]]);
    assert_nothing_left(&d);
}

fn flip_bit(path: &Path, offset: u64) {
    let mut data = fs::read(path).unwrap();
    data[offset as usize] ^= 0x10;
    fs::write(path, data).unwrap();
}

#[test]
fn bad_bitflip_core() {
    let Some(d) = dumped_sleep() else { return };
    let (bad, core) = d.copy_with("core.img");
    let len = fs::metadata(&core).unwrap().len();
    flip_bit(&core, len / 2);
    restore_fails(&bad, &[CHECKSUM]);
    assert_nothing_left(&d);
}

#[test]
fn bad_bitflip_pages() {
    let Some(d) = dumped_sleep() else { return };
    let (bad, pages) = d.copy_with("pages.img");
    let len = fs::metadata(&pages).unwrap().len();
    // Past the header page, into page data.
    let off = if len > 4096 {
        4096 + (len - 4096) / 2
    } else {
        len / 2
    };
    flip_bit(&pages, off);
    restore_fails(&bad, &[CHECKSUM]);
    assert_nothing_left(&d);
}

/// CRC-32C (Castagnoli), bitwise; for re-sealing a patched header.
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn bad_version() {
    let Some(d) = dumped_sleep() else { return };
    let (bad, core) = d.copy_with("core.img");
    let mut data = fs::read(&core).unwrap();
    assert!(data.len() >= 16, "core.img is only {} bytes", data.len());
    // The u32 after the 8-byte magic is the format version. When the header
    // is sealed by a CRC-32C of bytes 0..12 at byte 12, re-seal it: this is a
    // well-formed image from another version, not a corrupt one.
    let sealed = crc32c(&data[..12]).to_le_bytes() == data[12..16];
    data[8..12].copy_from_slice(&0xEEEE_EEEEu32.to_le_bytes());
    if sealed {
        let crc = crc32c(&data[..12]);
        data[12..16].copy_from_slice(&crc.to_le_bytes());
    }
    fs::write(&core, data).unwrap();
    restore_fails(&bad, &[&["version"]]);
    assert_nothing_left(&d);
}

#[test]
fn bad_missing_pages() {
    let Some(d) = dumped_sleep() else { return };
    let (bad, pages) = d.copy_with("pages.img");
    fs::remove_file(&pages).unwrap();
    restore_fails(
        &bad,
        &[
            &["pages.img"],
            &["missing", "no such file", "not found", "has no"],
        ],
    );
    assert_nothing_left(&d);
}

fn start_time(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    // After ')': field 3 is state, so starttime (field 22) is index 19.
    rest.split_whitespace().nth(19)?.parse().ok()
}

#[test]
fn bad_pid_busy() {
    if !require_root() {
        return;
    }
    let Some(w) = spawn_sleep() else { return };
    let img = w.dir.join("img");
    let started = start_time(w.pid);
    dump(&w, &img, &["--leave-running"]);
    assert!(w.is_running(), "sleep died in dump --leave-running");
    let line = restore_fails(
        &img,
        &[
            &["pid"],
            &[
                "busy", "in use", "exist", "taken", "occupied", "not free", "running",
            ],
        ],
    );
    assert!(
        line.contains(&w.pid.to_string()),
        "error line does not name pid {}: {line:?}",
        w.pid
    );
    sleep(Duration::from_millis(200));
    // The original is untouched and alone.
    assert!(w.is_running(), "original died");
    assert_eq!(
        start_time(w.pid),
        started,
        "pid {} is a different process now",
        w.pid
    );
    assert_eq!(proc_state(w.pid), Some('S'), "original not sleeping");
    assert_eq!(pids_in_dir(&w.dir), vec![w.pid], "extra processes");
    w.kill();
}

#[test]
fn crc32c_known_value() {
    assert_eq!(crc32c(b"123456789"), 0xE306_9283);
}

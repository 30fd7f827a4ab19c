//! tmux through a kill/restore cycle: a tmux server (in the foreground,
//! `-D`, so that it is the workload process itself) with a session whose
//! pane runs bash. The server holds its listening unix socket and the
//! pane's pty master; bash is its child, in a session of its own with the
//! pane's pty slave as controlling terminal. Every tmux client has exited
//! before the dump. After the restore the same server answers new clients,
//! the pane still shows what it showed, and keys sent to it reach the same
//! bash, with its variables, its terminal size and job control. Needs
//! root; skipped with a printed reason when tmux is not installed.

mod common;

use common::*;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// How long one tmux client may take.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the pane may take to show the output of a command line.
const SCREEN_TIMEOUT: Duration = Duration::from_secs(10);

/// The server's socket, in the workload's directory.
fn sock(dir: &Path) -> PathBuf {
    dir.join("sock")
}

/// Runs the client `tmux -S SOCK -f /dev/null ARGS` in `dir`, as a
/// short-lived process of its own (never part of the workload's tree), and
/// returns its stdout; Err with its status and stderr when it failed, and
/// after [`CLIENT_TIMEOUT`] (killed).
fn client(tmux: &Path, dir: &Path, args: &[&str]) -> Result<String, String> {
    let mut child = Command::new(tmux)
        .arg("-S")
        .arg(sock(dir))
        .args(["-f", "/dev/null"])
        .args(args)
        .env_remove("TMUX")
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn {}: {e}", tmux.display()))?;
    // Small outputs (a screen at most) fit in the pipes: read at the end.
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if start.elapsed() > CLIENT_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("tmux {args:?}: no answer after {CLIENT_TIMEOUT:?}"));
            }
            Ok(None) => sleep(Duration::from_millis(5)),
            Err(e) => return Err(format!("wait for tmux {args:?}: {e}")),
        }
    };
    let (mut out, mut err) = (String::new(), String::new());
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_string(&mut out);
    }
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    if status.success() && err.trim().is_empty() {
        Ok(out)
    } else {
        Err(format!("tmux {args:?}: {status}; stderr: {}", err.trim()))
    }
}

/// Number of sockets among the fds of `pid`.
fn sockets(pid: i32) -> usize {
    fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| fs::read_link(e.path()).ok())
                .filter(|l| l.to_string_lossy().starts_with("socket:"))
                .count()
        })
        .unwrap_or(0)
}

/// Fields of /proc/PID/stat after the command: (state, ppid, pgrp,
/// session, tty_nr, tpgid).
fn stat_fields(pid: i32) -> Option<(char, i32, i32, i32, i32, i32)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let f: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    let num = |i: usize| f.get(i).and_then(|s| s.parse::<i32>().ok());
    Some((
        f.first()?.chars().next()?,
        num(1)?,
        num(2)?,
        num(3)?,
        num(4)?,
        num(5)?,
    ))
}

/// The device number (as in stat's tty_nr) of the terminal `path`.
fn rdev(path: &str) -> Option<i32> {
    use std::os::unix::fs::MetadataExt;
    let d = fs::metadata(path).ok()?.rdev();
    // tty_nr: minor bits 31..20 and 7..0, major 15..8.
    let (major, minor) = (libc::major(d), libc::minor(d));
    Some(((minor & 0xfff00) << 12 | (major & 0xfff) << 8 | (minor & 0xff)) as i32)
}

/// Differences between `before` and the tree now, from snapshots taken
/// until one matches or a second has passed (a process frozen inside a
/// wait with a temporary signal mask, as bash's pselect, re-enters it a
/// moment after the restore). The last differences are returned.
fn settled_diff(w: &Workload, before: &TreeSnapshot) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let d = before.diff(&w.snapshot());
        if d.is_empty() || Instant::now() >= deadline {
            return d;
        }
        sleep(Duration::from_millis(20));
    }
}

/// tmux runs bash in a 120x40 pane; keys sent to it set an exported and a
/// plain variable and print a marker. After a kill/restore (every client
/// gone): the server and the pane's bash are the same processes with the
/// same state (the pty may have another number), bash still leads its
/// session with the pane's pty as controlling terminal and foreground
/// group, `list-sessions` answers, `capture-pane` shows the screen of
/// before the dump, keys sent with `send-keys` reach the same bash (its
/// variables are there, `tty` and `stty size` run in the foreground and see
/// the pane's pty at 40x120), `resize-window` reaches bash (SIGWINCH,
/// `stty size`, `$COLUMNS`), and a foreground job runs to its end.
#[test]
fn real_tmux() {
    if !require_root() {
        return;
    }
    let Some(tmux) = need("tmux") else {
        return;
    };
    let Some(bash) = need("bash") else {
        return;
    };
    let Some(sh) = need("sh") else {
        return;
    };
    let tmux_s = tmux.to_str().expect("utf-8").to_string();
    // sh, started in the workload's directory, execs the server with the
    // socket's absolute path: the workload is the tmux server itself, in
    // the foreground (-D: no fork, no daemon(3)), a session leader without
    // a terminal, stdin /dev/null, its log on stdout/stderr.
    let script = r#"exec "$0" -D -S "$PWD/sock" -f /dev/null"#;
    let t = tmux.clone();
    let w = Workload::spawn_cmd(
        sh.to_str().expect("utf-8"),
        &["-c", script, &tmux_s],
        Spawn::default(),
        // A command that never starts a server of its own answers.
        move |w| sock(&w.dir).exists() && client(&t, &w.dir, &["list-sessions"]).is_ok(),
    );
    let run = |args: &[&str]| -> String {
        client(&tmux, &w.dir, args)
            .unwrap_or_else(|e| panic!("{e}; log of {}:\n{}", w.what, w.log()))
            .trim_end_matches('\n')
            .to_string()
    };
    let screen = || -> Vec<String> {
        run(&["capture-pane", "-p", "-t", "t"])
            .lines()
            .map(|l| l.trim_end().to_string())
            .collect()
    };
    // Waits until the pane shows a line equal to `want` followed by a
    // prompt, `$` (bash is reading its next command line); returns the
    // screen.
    let wait_line = |want: &str| -> Vec<String> {
        let start = Instant::now();
        loop {
            let s = screen();
            let i = s.iter().rposition(|l| l == want);
            if i.is_some_and(|i| s.get(i + 1).is_some_and(|l| l.starts_with('$'))) {
                return s;
            }
            assert!(
                start.elapsed() < SCREEN_TIMEOUT,
                "the pane did not show {want:?} after {SCREEN_TIMEOUT:?}; it shows:\n{}\nlog:\n{}",
                s.join("\n"),
                w.log()
            );
            sleep(Duration::from_millis(20));
        }
    };
    let type_line = |line: &str| {
        run(&["send-keys", "-t", "t", "-l", line]);
        run(&["send-keys", "-t", "t", "Enter"]);
    };

    let server = fs::canonicalize(&tmux).expect("canonicalize tmux");
    assert_eq!(
        fs::read_link(format!("/proc/{}/exe", w.pid)).ok().as_ref(),
        Some(&server),
        "the workload is not tmux itself"
    );
    // The shell as separate arguments: tmux runs it directly, no sh -c.
    run(&[
        "new-session",
        "-d",
        "-s",
        "t",
        "-x",
        "120",
        "-y",
        "40",
        "-e",
        "PS1=$ ",
        bash.to_str().expect("utf-8"),
        "--norc",
        "--noprofile",
    ]);
    assert_eq!(
        run(&["display", "-p", "-t", "t", "#{pid}"]),
        w.pid.to_string(),
        "tmux server pid"
    );
    let pane_pid: i32 = run(&["display", "-p", "-t", "t", "#{pane_pid}"])
        .parse()
        .expect("pane_pid");
    // An exported and a plain shell variable, and a line to find again.
    type_line("export X=before; Y=plain; echo marker-$X");
    let before_screen = wait_line("marker-before");
    type_line("echo tty=$(tty) size=$(stty size)");
    let tty_before = run(&["display", "-p", "-t", "t", "#{pane_tty}"]);
    wait_line(&format!("tty={tty_before} size=40 120"));
    assert_eq!(
        run(&["display", "-p", "-t", "t", "#{pane_width}x#{pane_height}"]),
        "120x40"
    );

    // The pane's bash: the server's child, leading a session of its own
    // whose controlling terminal is the pane's pty, and its foreground
    // process group.
    let (_, ppid, pgrp, sid, tty_nr, tpgid) = stat_fields(pane_pid).expect("stat of the pane");
    assert_eq!(
        (ppid, pgrp, sid, tpgid),
        (w.pid, pane_pid, pane_pid, pane_pid),
        "pane bash: ppid, pgrp, session, foreground group"
    );
    assert_eq!(
        Some(tty_nr),
        rdev(&tty_before),
        "pane bash's controlling terminal is not {tty_before}"
    );

    // Every client has exited; wait until the server has dropped its side
    // of their connections too: only the listener remains.
    wait_for(&w, CLIENT_TIMEOUT, "client connections closed", || {
        (sockets(w.pid) == 1).then_some(())
    });
    // Both are idle (the server in poll, bash in readline's pselect) and
    // stay so until the next client: their whole state is compared.
    let before = w.snapshot();
    let mut pids = vec![w.pid, pane_pid];
    pids.sort();
    assert_eq!(
        before.pids(),
        pids,
        "the tree is not the server and the pane's bash"
    );

    kill_restore(&w);

    // Before any client talks to the server again.
    let diff = settled_diff(&w, &before);
    let (state, ppid, pgrp, sid, tty_nr, tpgid) =
        stat_fields(pane_pid).expect("the pane's bash is gone after restore");
    assert!(state != 'Z', "the pane's bash is a zombie after restore");
    assert_eq!(
        run(&["list-sessions", "-F", "#{session_name}"]),
        "t",
        "list-sessions after restore"
    );
    assert_eq!(
        run(&["display", "-p", "-t", "t", "#{pid} #{pane_pid}"]),
        format!("{} {pane_pid}", w.pid),
        "server and pane pids after restore"
    );
    let tty_after = run(&["display", "-p", "-t", "t", "#{pane_tty}"]);
    assert_eq!(
        (ppid, pgrp, sid, tpgid),
        (w.pid, pane_pid, pane_pid, pane_pid),
        "pane bash after restore: ppid, pgrp, session, foreground group"
    );
    assert_eq!(
        Some(tty_nr),
        rdev(&tty_after),
        "pane bash's controlling terminal is not {tty_after} after restore"
    );
    let fd0 = fs::read_link(format!("/proc/{pane_pid}/fd/0"))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    assert_eq!(fd0, tty_after, "pane bash's stdin after restore");

    // What the pane showed before the dump is still there.
    let shown = screen();
    for l in before_screen.iter().filter(|l| !l.is_empty()) {
        assert!(
            shown.contains(l),
            "the pane lost {l:?} after restore; it shows:\n{}",
            shown.join("\n")
        );
    }
    assert_eq!(
        run(&["display", "-p", "-t", "t", "#{pane_width}x#{pane_height}"]),
        "120x40",
        "pane size after restore"
    );

    // The same bash reads new keys: its variables, its terminal (programs
    // that ask it its name and size), its size.
    type_line("echo after-$X-$Y");
    wait_line("after-before-plain");
    type_line("echo tty=$(tty) size=$(stty size)");
    wait_line(&format!("tty={tty_after} size=40 120"));
    // A resize reaches bash through the restored master.
    run(&["resize-window", "-t", "t", "-x", "100", "-y", "30"]);
    assert_eq!(
        run(&["display", "-p", "-t", "t", "#{pane_width}x#{pane_height}"]),
        "100x30",
        "pane size after resize-window"
    );
    type_line("echo size=$(stty size) cols=$COLUMNS");
    wait_line("size=30 100 cols=100");
    // Job control: a command run by the restored bash leads a process
    // group of its own, which is the terminal's foreground group.
    type_line(
        r#"sh -c 'set -- $(cut -d")" -f2 /proc/$$/stat); test $3 = $$ -a $6 = $$ && echo fg-job-$X'"#,
    );
    let last = wait_line("fg-job-before");
    let errors: Vec<&String> = last
        .iter()
        .filter(|l| l.starts_with("bash:") || l.contains("terminal process group"))
        .collect();
    assert!(
        errors.is_empty(),
        "bash complained after restore: {errors:?}; the pane shows:\n{}",
        last.join("\n")
    );
    assert!(w.is_running(), "tmux exited: {}", w.describe_exit());
    let log = lines_after_restore(&w).join("\n");
    assert!(
        log.trim().is_empty(),
        "tmux wrote to its log after restore:\n{log}"
    );

    w.kill();
    assert_no_diff(diff, "tmux");
}

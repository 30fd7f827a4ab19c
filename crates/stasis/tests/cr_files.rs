//! Named and shared kernel objects across checkpoint/restore: FIFOs and
//! their buffered data (see the workloads for what each checks).

mod common;

use common::*;

#[test]
fn plain_tree_fifo() {
    plain_run("tree_fifo", Spawn::default());
}

/// FIFOs with unread data, held by two processes through several
/// descriptions (see workloads/tree_fifo.c).
#[test]
fn cr_tree_fifo() {
    if !require_root() {
        return;
    }
    // Not PidNs: that mode restores a copy while the original still has
    // the FIFOs open, which is refused (next test).
    cr_modes(
        "tree_fifo",
        Spawn::default(),
        &[Mode::KillRestore, Mode::LeaveRunning, Mode::RestoreTwice],
    );
}

/// A restore of FIFOs that another program (here the original, left
/// running) has open is refused before anything runs, naming the FIFO and
/// the holder; the original keeps its data.
#[test]
fn fifo_in_use_is_refused() {
    if !require_root() {
        return;
    }
    copy_beside_original_is_refused("tree_fifo", &[".fifo", "is open in pid"]);
}

#[test]
fn plain_fifo_unlinked() {
    plain_run("fifo_unlinked", Spawn::default());
}

/// FIFOs whose names were unlinked while open, with unread data: one with
/// a reader, a writer and a dup, one held read-write (see
/// workloads/fifo_unlinked.c). The dump used to hang.
#[test]
fn cr_fifo_unlinked() {
    if !require_root() {
        return;
    }
    cr_all_modes("fifo_unlinked", Spawn::default());
}

#[test]
fn plain_pipe_reopen() {
    plain_run("pipe_reopen", Spawn::default());
}

/// Pipes with several open file descriptions per end, made by opening
/// /proc/self/fd/N, beside dups, and a pipe held only read-write (see
/// workloads/pipe_reopen.c). The restore used to panic.
#[test]
fn cr_pipe_reopen() {
    if !require_root() {
        return;
    }
    cr_all_modes("pipe_reopen", Spawn::default());
}

/// The same without the read-write pipe: the image on which restore
/// panicked ("pipe end") while the dump had succeeded.
#[test]
fn cr_pipe_reopen_no_rdwr() {
    if !require_root() {
        return;
    }
    let opts = Spawn {
        args: vec!["no-rdwr".into()],
        ..Default::default()
    };
    cr_modes(
        "pipe_reopen",
        opts,
        &[Mode::KillRestore, Mode::RestoreTwice],
    );
}

#[test]
fn plain_tree_pidfd() {
    plain_run("tree_pidfd", Spawn::default());
}

/// pidfds of a child, of the parent and of the process itself (see
/// workloads/tree_pidfd.c).
#[test]
fn cr_tree_pidfd() {
    if !require_root() {
        return;
    }
    cr_all_modes("tree_pidfd", Spawn::default());
}

#[test]
fn plain_tree_locks() {
    plain_run("tree_locks", Spawn::default());
}

/// flock, POSIX and OFD locks held by a parent and its child (see
/// workloads/tree_locks.c).
#[test]
fn cr_tree_locks() {
    if !require_root() {
        return;
    }
    // Not PidNs: the original, still running, holds the locks (next test).
    cr_modes(
        "tree_locks",
        Spawn::default(),
        &[Mode::KillRestore, Mode::LeaveRunning, Mode::RestoreTwice],
    );
}

/// A restore whose locks another process holds (the original, left
/// running) is refused before anything runs, naming the file.
#[test]
fn locks_held_elsewhere_are_refused() {
    if !require_root() {
        return;
    }
    copy_beside_original_is_refused("tree_locks", &[".lk", "locked"]);
}

#[test]
fn plain_inotify() {
    plain_run("inotify", Spawn::default());
}

/// inotify watches with their numbers and masks (see workloads/inotify.c).
#[test]
fn cr_inotify() {
    if !require_root() {
        return;
    }
    cr_all_modes("inotify", Spawn::default());
}

#[test]
fn plain_tree_pty() {
    plain_run("tree_pty", Spawn::default());
}

/// A pty pair made inside the tree, a session with it as controlling
/// terminal, a foreground group, termios, window size and bytes queued both
/// ways (see workloads/tree_pty.c).
#[test]
fn cr_tree_pty() {
    if !require_root() {
        return;
    }
    cr_all_modes("tree_pty", Spawn::default());
}

#[test]
fn plain_uring() {
    plain_run("uring", Spawn::default());
}

/// Idle io_uring instances: position, mappings, registered files and
/// buffers, SINGLE_ISSUER|DEFER_TASKRUN (see workloads/uring.c).
#[test]
fn cr_uring() {
    if !require_root() {
        return;
    }
    cr_all_modes("uring", Spawn::default());
}

#[test]
fn plain_epoll_ghost() {
    plain_run("epoll_ghost", Spawn::default());
}

/// epoll registrations for fds closed after being added and two
/// registrations under one number (see workloads/epoll_ghost.c).
#[test]
fn cr_epoll_ghost() {
    if !require_root() {
        return;
    }
    cr_all_modes("epoll_ghost", Spawn::default());
}

#[test]
fn plain_unix_more() {
    plain_run("unix_more", Spawn::default());
}

/// Connections not yet accepted and connections whose peer closed (see
/// workloads/unix_more.c).
#[test]
fn cr_unix_more() {
    if !require_root() {
        return;
    }
    // Not PidNs: the original still holds the listener's path.
    cr_modes(
        "unix_more",
        Spawn::default(),
        &[Mode::KillRestore, Mode::LeaveRunning, Mode::RestoreTwice],
    );
}

/// --ext-unix-sk: a socket connected to a listener outside the tree (this
/// test's) is dumped, and the restored program is connected to the same
/// listener again: the test accepts a second connection, and what the
/// program sends after the restore arrives on it.
#[test]
fn ext_unix_sk_reconnects() {
    use std::io::Read;
    use std::os::linux::net::SocketAddrExt;
    if !require_root() {
        return;
    }
    let name = format!("stasis-ext-{}", std::process::id());
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).expect("name");
    let listener = std::os::unix::net::UnixListener::bind_addr(&addr).expect("listen");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for c in listener.incoming().take(2) {
            let Ok(mut c) = c else { return };
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut got = Vec::new();
                let _ = c.read_to_end(&mut got);
                let _ = tx.send(got);
            });
        }
    });
    let w = Workload::spawn_c(
        "refuse",
        Spawn {
            args: vec!["unix-outside".into(), name.clone()],
            ..Default::default()
        },
    );
    let img = w.dir.join("img");
    dump(&w, &img, &["--ext-unix-sk"]);
    w.wait_gone();
    // The original connection ends with the original process.
    let first = rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("the first connection ends");
    assert!(first.is_empty(), "the first connection got {first:?}");
    w.mark(&format!("restore from {}", img.display()));
    restore(&img, &[]);
    if let Err(e) = w.terminate_and_verdict() {
        panic!("restored with --ext-unix-sk: {e}");
    }
    let second = rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("a second connection, from the restored program");
    assert_eq!(second, b"x", "the restored program's message");
}

#[test]
fn plain_mqueue() {
    plain_run("mqueue", Spawn::default());
}

/// POSIX message queues, named and unlinked, with messages of several
/// priorities, in the workload's own IPC namespace (see
/// workloads/mqueue.c).
#[test]
fn cr_mqueue() {
    if !require_root() {
        return;
    }
    cr_all_modes("mqueue", Spawn::default());
}

#[test]
fn plain_unix_rights() {
    plain_run("unix_rights", Spawn::default());
}

/// Descriptors in flight in unix socket queues (SCM_RIGHTS): pipe ends,
/// files with offsets, sockets, eventfds (see workloads/unix_rights.c).
#[test]
fn cr_unix_rights() {
    if !require_root() {
        return;
    }
    cr_all_modes("unix_rights", Spawn::default());
}

#[test]
fn plain_fanotify() {
    plain_run("fanotify", Spawn::default());
}

/// A fanotify group with an inode mark and an ignored mask (see
/// workloads/fanotify.c).
#[test]
fn cr_fanotify() {
    if !require_root() {
        return;
    }
    cr_all_modes("fanotify", Spawn::default());
}

/// A restore whose listening socket's directory is gone fails before
/// anything runs, naming the path; no process is left.
#[test]
fn unix_path_dir_missing_is_refused() {
    if !require_root() {
        return;
    }
    let Some(py) = need("python3") else {
        return;
    };
    let script = "import socket, os, time\nos.mkdir('sub')\ns = socket.socket(socket.AF_UNIX)\ns.bind('sub/l.sock')\ns.listen(1)\nopen('ready', 'w').close()\nwhile True: time.sleep(1)\n";
    let w = Workload::spawn_cmd(
        py.to_str().expect("utf-8"),
        &["-c", script],
        Spawn::default(),
        |w| w.dir.join("ready").exists(),
    );
    let img = w.dir.join("img");
    dump(&w, &img, &[]);
    w.wait_gone();
    std::fs::remove_dir_all(w.dir.join("sub")).expect("remove the socket's directory");
    let out = stasis(&["restore", "-D", img.to_str().expect("utf-8"), "-d"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "restore should fail: {err}");
    assert!(
        err.contains("sub/l.sock") && err.contains("directory") && err.contains("missing"),
        "unclear error: {err}"
    );
    assert!(
        !std::path::Path::new(&format!("/proc/{}", w.pid)).exists(),
        "a process was left after the refused restore"
    );
}

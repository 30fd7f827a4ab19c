//! TCP and UDP sockets across checkpoint/restore: listeners, bound and
//! unbound sockets, UDP sockets with their options (workloads/inet.c), a
//! real HTTP server, and the sockets still refused (workloads/inet_refuse.c).

mod common;

use common::*;
use std::io::{Read, Write};
use std::time::Duration;

#[test]
fn plain_inet() {
    plain_run("inet", Spawn::default());
}

#[test]
fn cr_inet() {
    if !require_root() {
        return;
    }
    // Not PidNs: the original still holds the ports (see below).
    cr_modes(
        "inet",
        Spawn::default(),
        &[Mode::KillRestore, Mode::LeaveRunning, Mode::RestoreTwice],
    );
}

#[test]
fn plain_inet_prefork() {
    plain_run("inet_prefork", Spawn::default());
}

/// A listener shared by a root and its workers (pre-fork server) is one
/// socket again after restore, and each worker accepts from it.
#[test]
fn cr_inet_prefork() {
    if !require_root() {
        return;
    }
    cr_modes(
        "inet_prefork",
        Spawn::default(),
        &[Mode::KillRestore, Mode::LeaveRunning, Mode::RestoreTwice],
    );
}

/// A copy restored beside the original, which still holds its ports, is
/// refused before anything is created, naming the port.
#[test]
fn inet_copy_beside_original_is_refused() {
    if !require_root() {
        return;
    }
    copy_beside_original_is_refused("inet", &["port 127.0.0.1:", "is in use"]);
}

/// The dump of a process holding `kind` (see workloads/inet_refuse.c)
/// fails with one line naming the pid and saying `expect`, and leaves the
/// process working.
fn refused(kind: &str, expect: &str) {
    let w = Workload::spawn_c(
        "inet_refuse",
        Spawn {
            args: vec![kind.into()],
            ..Default::default()
        },
    );
    let img = w.dir.join("img");
    let out = stasis(&[
        "dump",
        "-t",
        &w.pid.to_string(),
        "-D",
        img.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "dump of {kind} must fail");
    let line = err
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_default();
    assert!(
        line.contains(&format!("pid {}", w.pid)) && line.contains(expect),
        "error must name the pid and say '{expect}': {err}"
    );
    assert!(w.is_running(), "the target must keep running");
    w.terminate_and_verdict()
        .expect("target works after a refused dump");
}

#[test]
fn refuse_tcp_established() {
    if require_root() {
        refused("established", "an established TCP connection (127.0.0.1:");
    }
}

#[test]
fn refuse_tcp_listener_with_pending_connection() {
    if require_root() {
        refused("pending", "with 1 connections not yet accepted");
    }
}

#[test]
fn refuse_udp_with_zero_length_datagram() {
    if require_root() {
        refused("udp-empty", "a zero-length datagram");
    }
}

#[test]
fn refuse_udplite() {
    if require_root() {
        refused("udplite", "UDP-Lite socket");
    }
}

/// A free TCP port on 127.0.0.1 (free when asked; the server binds it
/// right after).
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// GET / from 127.0.0.1:`port`: the status line.
fn http_get(port: u16) -> Option<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
    let mut got = String::new();
    s.read_to_string(&mut got).ok()?;
    got.lines().next().map(str::to_string)
}

/// `python3 -m http.server` restored keeps listening on its port and
/// answers a GET.
#[test]
fn real_python_http_server() {
    if !require_root() {
        return;
    }
    let Some(py) = need("python3") else {
        return;
    };
    let port = free_port();
    let ps = port.to_string();
    let w = Workload::spawn_cmd(
        py.to_str().unwrap(),
        &["-m", "http.server", "--bind", "127.0.0.1", &ps],
        Spawn::default(),
        |_| http_get(port).is_some(),
    );
    kill_restore(&w);
    let line = wait_for(&w, Duration::from_secs(5), "an HTTP answer", || {
        http_get(port)
    });
    assert!(line.contains("200"), "after restore: {line}");
    w.kill();
}

/// A port taken by another program after the dump: restore is refused
/// before anything is created, naming the port; once it is free again the
/// same image restores.
#[test]
fn restore_refused_while_port_taken() {
    if !require_root() {
        return;
    }
    let w = Workload::spawn_c("inet", Spawn::default());
    let port: u16 = w
        .log()
        .split("ports: l4 ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .expect("the workload prints its ports");
    let img = w.dir.join("img");
    dump(&w, &img, &[]);
    w.wait_gone();
    let taken = std::net::TcpListener::bind(("127.0.0.1", port)).expect("take the port");
    let out = stasis(&["restore", "-D", img.to_str().unwrap(), "-d"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "restore should fail: {err}");
    let want = format!("port 127.0.0.1:{port} is in use");
    assert!(err.contains(&want), "want '{want}': {err}");
    assert!(!w.is_running(), "nothing restored");
    drop(taken);
    w.mark(&format!("restore from {}", img.display()));
    restore(&img, &[]);
    w.terminate_and_verdict()
        .expect("restored once the port is free");
}

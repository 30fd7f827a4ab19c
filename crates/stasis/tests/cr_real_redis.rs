//! redis-server through a kill/restore cycle: a real multi-threaded
//! server (main thread, bio threads, jemalloc's background thread) that
//! listens on a unix socket only, waits in epoll_wait, and keeps its whole
//! data set in memory (no RDB, no AOF), so anything it knows after the
//! restore came through the image. Needs root; skipped with a printed
//! reason when redis-server or redis-cli is not installed.

mod common;

use common::*;
use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Keys `key:0` .. `key:{KEYS-1}` written before the dump.
const KEYS: usize = 1000;
/// Elements of the list `list`.
const LIST_LEN: usize = 200;
/// Fields of the hash `hash`.
const HASH_LEN: usize = 100;
/// What `counter` is incremented to before the dump.
const COUNTER: u64 = 4242;

fn value(i: usize) -> String {
    // Varied lengths and a space; no newline (redis-cli --raw prints one
    // value a line).
    format!("value {i} {}.", "x".repeat(i % 97))
}

/// The socket redis listens on, in the workload's directory.
fn sock(w: &Workload) -> PathBuf {
    w.dir.join("redis.sock")
}

/// Runs `redis-cli -s SOCK --raw ARGS` with `stdin` as its input, as a
/// short-lived process of its own (never part of the workload's tree), and
/// returns its stdout; None if it failed or printed an error.
fn cli(redis_cli: &Path, sock: &Path, args: &[&str], stdin: &[u8]) -> Option<String> {
    let mut child = Command::new(redis_cli)
        .arg("-s")
        .arg(sock)
        .arg("--raw")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    let mut input = child.stdin.take()?;
    // Written from a thread of its own, so that a large input cannot
    // deadlock against output redis-cli cannot get rid of.
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().ok()?;
    let _ = writer.join();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let failed = !out.status.success()
        || !out.stderr.is_empty()
        || stdout.starts_with("ERR")
        || stdout.contains("Could not connect");
    if failed {
        eprintln!(
            "redis-cli {args:?}: {}\nstdout: {stdout}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    Some(stdout)
}

/// One command in the redis protocol (RESP), as `redis-cli --pipe` reads.
fn resp(out: &mut String, args: &[&str]) {
    let _ = write!(out, "*{}\r\n", args.len());
    for a in args {
        let _ = write!(out, "${}\r\n{a}\r\n", a.len());
    }
}

/// Number of sockets among the fds of `pid` (the listener, plus one per
/// connected client).
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

/// Thread names of `pid`, by tid.
fn threads(pid: i32) -> Vec<(i32, String)> {
    let mut v: Vec<(i32, String)> = fs::read_dir(format!("/proc/{pid}/task"))
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| {
                    let tid = e.file_name().to_str()?.parse().ok()?;
                    let comm = fs::read_to_string(e.path().join("comm")).ok()?;
                    Some((tid, comm.trim().to_string()))
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The value of `field` in the output of `INFO`.
fn info_field(info: &str, field: &str) -> Option<String> {
    info.lines()
        .find_map(|l| l.trim().strip_prefix(&format!("{field}:")))
        .map(str::to_string)
}

/// redis-server, started in the foreground with its configuration on the
/// command line and a unix socket as its only listener, gets 1000 string
/// keys, a list, a hash and a counter from a client that then exits. After
/// a kill/restore, new clients read every key back with its value, DBSIZE,
/// the list and the hash are unchanged, INCR continues from the dumped
/// counter, the server is the same instance (run_id, pid, threads) and it
/// keeps accepting connections and writes.
#[test]
fn real_redis_unix_socket() {
    if !require_root() {
        return;
    }
    let Some(server) = need("redis-server") else {
        return;
    };
    let Some(redis_cli) = need("redis-cli") else {
        return;
    };
    let Some(sh) = need("sh") else {
        return;
    };
    // The socket and data directory are absolute paths in the workload's
    // directory, which only exists once it is spawned: sh, started there,
    // execs redis-server with $PWD filled in, so the workload is
    // redis-server itself.
    let script = r#"exec "$0" --port 0 --unixsocket "$PWD/redis.sock" --unixsocketperm 700 --save "" --appendonly no --daemonize no --dir "$PWD""#;
    let rc = redis_cli.clone();
    let w = Workload::spawn_cmd(
        sh.to_str().expect("utf-8"),
        &["-c", script, server.to_str().expect("utf-8")],
        Spawn::default(),
        move |w| {
            sock(w).exists()
                && cli(&rc, &sock(w), &["PING"], b"").is_some_and(|o| o.trim() == "PONG")
        },
    );
    let sock = sock(&w);
    let run = |args: &[&str]| -> String {
        cli(&redis_cli, &sock, args, b"")
            .unwrap_or_else(|| panic!("redis-cli {args:?} failed; log:\n{}", w.log()))
            .trim_end_matches('\n')
            .to_string()
    };
    // Debian's redis-server is a symlink to redis-check-rdb.
    let exe = fs::canonicalize(&server).expect("canonicalize redis-server");
    assert_eq!(
        fs::read_link(format!("/proc/{}/exe", w.pid)).ok().as_ref(),
        Some(&exe),
        "the workload is not redis-server itself"
    );

    // The data set, written through --pipe by a client that then exits.
    let mut input = String::new();
    for i in 0..KEYS {
        resp(&mut input, &["SET", &format!("key:{i}"), &value(i)]);
    }
    for i in 0..LIST_LEN {
        resp(&mut input, &["RPUSH", "list", &format!("item-{i}")]);
    }
    for i in 0..HASH_LEN {
        resp(&mut input, &["HSET", "hash", &format!("f{i}"), &value(i)]);
    }
    resp(&mut input, &["SET", "counter", "0"]);
    resp(&mut input, &["INCRBY", "counter", &COUNTER.to_string()]);
    let piped = cli(&redis_cli, &sock, &["--pipe"], input.as_bytes())
        .unwrap_or_else(|| panic!("redis-cli --pipe failed; log:\n{}", w.log()));
    assert!(
        piped.contains("errors: 0"),
        "redis-cli --pipe reported errors:\n{piped}"
    );
    let dbsize = KEYS + 3;
    assert_eq!(
        run(&["DBSIZE"]),
        dbsize.to_string(),
        "DBSIZE before the dump"
    );
    let info = run(&["INFO", "server"]);
    let run_id = info_field(&info, "run_id").expect("run_id in INFO");
    assert_eq!(
        info_field(&info, "process_id").as_deref(),
        Some(w.pid.to_string().as_str()),
        "INFO process_id"
    );

    // Every client has exited; wait until redis has closed its side of
    // each connection too, or the dump would find a socket whose peer no
    // process holds. Only the listener remains.
    wait_for(&w, Duration::from_secs(10), "clients closed", || {
        (sockets(w.pid) == 1).then_some(())
    });
    let tasks = threads(w.pid);
    assert!(tasks.len() > 1, "redis runs one thread only: {tasks:?}");
    let before = w.snapshot().identity();

    kill_restore(&w);

    assert_eq!(run(&["PING"]), "PONG", "PING after restore");
    assert_eq!(threads(w.pid), tasks, "threads after restore");
    let info = run(&["INFO", "server"]);
    assert_eq!(
        info_field(&info, "run_id").as_deref(),
        Some(run_id.as_str()),
        "a different redis instance after restore (restarted?)"
    );
    assert_eq!(run(&["DBSIZE"]), dbsize.to_string(), "DBSIZE after restore");
    let keys: Vec<String> = (0..KEYS).map(|i| format!("key:{i}")).collect();
    let mut mget = vec!["MGET"];
    mget.extend(keys.iter().map(String::as_str));
    let got = run(&mget);
    let got: Vec<&str> = got.lines().collect();
    assert_eq!(got.len(), KEYS, "MGET returned {} values", got.len());
    for (i, v) in got.iter().enumerate() {
        assert_eq!(*v, value(i), "key:{i} after restore");
    }
    let list = run(&["LRANGE", "list", "0", "-1"]);
    let want: Vec<String> = (0..LIST_LEN).map(|i| format!("item-{i}")).collect();
    assert_eq!(list.lines().collect::<Vec<_>>(), want, "list after restore");
    assert_eq!(run(&["HLEN", "hash"]), HASH_LEN.to_string(), "HLEN");
    for i in [0, 1, HASH_LEN / 2, HASH_LEN - 1] {
        assert_eq!(run(&["HGET", "hash", &format!("f{i}")]), value(i), "f{i}");
    }
    assert_eq!(
        run(&["INCR", "counter"]),
        (COUNTER + 1).to_string(),
        "INCR after restore"
    );

    // New connections and writes, one client after another and a batch.
    for i in 0..20 {
        assert_eq!(run(&["SET", &format!("after:{i}"), &value(i)]), "OK");
        assert_eq!(run(&["GET", &format!("after:{i}")]), value(i));
    }
    let mut more = String::new();
    for i in 0..KEYS {
        resp(&mut more, &["SET", &format!("more:{i}"), &value(i)]);
    }
    let piped = cli(&redis_cli, &sock, &["--pipe"], more.as_bytes())
        .unwrap_or_else(|| panic!("redis-cli --pipe after restore failed; log:\n{}", w.log()));
    assert!(
        piped.contains("errors: 0"),
        "redis-cli --pipe after restore reported errors:\n{piped}"
    );
    assert_eq!(
        run(&["DBSIZE"]),
        (dbsize + 20 + KEYS).to_string(),
        "DBSIZE after the new writes"
    );
    assert_eq!(run(&["INCR", "counter"]), (COUNTER + 2).to_string());
    assert!(w.is_running(), "redis exited: {}", w.describe_exit());
    let log = lines_after_restore(&w).join("\n");
    assert!(
        !log.to_lowercase().contains("error"),
        "redis logged errors after restore:\n{log}"
    );

    let diff = before.diff(&w.snapshot().identity());
    w.kill();
    assert_no_diff(diff, "redis-server");
}

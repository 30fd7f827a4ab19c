//! The CLI verbs other than dump/restore: demo, inspect, check. Needs root.

mod common;

use common::NoPanic;

use common::{dump, require_root, Spawn, Workload};

fn stasis(args: &[&str]) -> (bool, String, String) {
    let o = common::stasis_cmd()
        .args(args)
        .output()
        .no_panic()
        .expect("run stasis");
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn demo_continues_with_same_pid_and_count() {
    if !require_root() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("stasis-demo-test-{}", std::process::id()));
    let (ok, out, err) = stasis(&["demo", "--dir", dir.to_str().unwrap()]);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(ok, "demo failed:\n{out}\n{err}");
    assert!(
        out.contains("continued from the same count with the same pid"),
        "{out}"
    );
}

#[test]
fn inspect_shows_the_image() {
    if !require_root() {
        return;
    }
    let w = Workload::spawn_c("threads", Spawn::default());
    let img = w.dir.join("img");
    dump(&w, &img, &["--leave-running"]);
    let (ok, out, err) = stasis(&["inspect", img.to_str().unwrap(), "--json", "--full"]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("inspect --json is JSON");
    assert_eq!(v["root_pid"], w.pid);
    let p = &v["processes"][0];
    assert_eq!(p["pid"], w.pid);
    let threads = p["threads"].as_array().expect("threads");
    let want = std::fs::read_dir(format!("/proc/{}/task", w.pid))
        .unwrap()
        .count();
    assert_eq!(threads.len(), want, "one entry per thread");
    assert!(p["vmas"].as_array().is_some_and(|v| v.len() > 5));
    assert!(p["pages_bytes"].as_u64().is_some_and(|b| b > 0));
    let (ok, text, _) = stasis(&["inspect", img.to_str().unwrap()]);
    assert!(ok && text.contains(&format!("pid {}", w.pid)), "{text}");
    w.terminate_and_verdict()
        .expect("still fine after --leave-running");
}

#[test]
fn inspect_rejects_a_non_image() {
    let dir = std::env::temp_dir().join(format!("stasis-noimg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("core.img"), b"hello, not an image").unwrap();
    let (ok, _, err) = stasis(&["inspect", dir.to_str().unwrap()]);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!ok);
    assert!(
        err.starts_with("error:") && err.contains("core.img"),
        "{err}"
    );
}

#[test]
fn check_reports_what_is_needed() {
    if !require_root() {
        return;
    }
    let (ok, out, err) = stasis(&["check", "--json"]);
    assert!(ok, "check says something needed is missing:\n{out}\n{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("check --json is JSON");
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    for n in ["ptrace", "clone3 set_tid", "pidfd_getfd", "PR_SET_MM_MAP"] {
        assert!(names.contains(&n), "check lists {n}: {names:?}");
    }
}

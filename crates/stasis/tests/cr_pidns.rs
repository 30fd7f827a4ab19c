//! The container case: a tree that runs in its own PID namespace, its
//! root being that namespace's PID 1 (started here with `unshare --pid
//! --fork`). Dump must record the pids the processes see, restore must
//! refuse without `--pidns` and, with it, bring the tree back as PID 1 and
//! its descendants in a new namespace. Needs root and util-linux's
//! unshare.

mod common;

use common::NoPanic;

use std::fs;
use std::time::Duration;

use common::{
    find_program, inner_tree, proc_children, require_root, stasis, wait_exit, workload_bin, Spawn,
    Workload,
};

fn container_cycle(workload: &str) {
    if !require_root() {
        return;
    }
    let Some(unshare) = find_program("unshare") else {
        eprintln!("SKIP unshare (util-linux) is not installed");
        return;
    };
    let bin = workload_bin(workload);
    // setsid(1) makes PID 1 lead its own session, as a container's init
    // does (it is not a group leader, so setsid does not fork).
    let w = Workload::spawn_cmd(
        unshare.to_str().unwrap(),
        &["--pid", "--fork", "setsid", bin.to_str().unwrap()],
        Spawn::default(),
        |w| w.log().contains("READY"),
    );
    // Let the tree settle into its wait.
    std::thread::sleep(Duration::from_millis(100));
    let init = *proc_children(w.pid)
        .first()
        .expect("unshare has forked the namespace's init");
    let before = inner_tree(init);
    assert_eq!(
        before.get(&1).map(|p| p.0),
        Some(0),
        "the workload is PID 1 of its namespace: {before:?}"
    );

    // Dumping unshare itself is refused: its child is in another
    // namespace and is not the root.
    let img = w.dir.join("img");
    let out = common::stasis_cmd()
        .args(["dump", "-t", &w.pid.to_string(), "-D"])
        .arg(w.dir.join("img0"))
        .output()
        .no_panic()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("PID namespace"),
        "{err}"
    );

    // Dump the namespace's init: the whole namespace.
    w.mark("dump the namespace's init");
    let out = stasis(&[
        "dump",
        "--verify",
        "-t",
        &init.to_string(),
        "-D",
        img.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        w.log()
    );
    w.wait_gone();

    let out = common::stasis_cmd()
        .args(["restore", "-d", "-D"])
        .arg(&img)
        .output()
        .no_panic()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("--pidns"), "{err}");

    let pidfile = w.dir.join("restored.pid");
    common::restore(&img, &["--pidns", "--pidfile", pidfile.to_str().unwrap()]);
    let host: i32 = fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(
        inner_tree(host),
        before,
        "the tree as seen inside the new namespace"
    );
    let r = w.terminate_and_verdict_of(host);
    let _ = wait_exit(host, Duration::from_secs(10), true);
    r.unwrap();
}

#[test]
fn container_single_process() {
    container_cycle("mem");
}

#[test]
fn container_tree() {
    container_cycle("tree_pgroups");
}

/// A tree restored with `--pidns` (under the restore's init) is dumped
/// again and restored again, as a migration twice would: the second dump
/// takes the tree's namespace along without the init, and the workload
/// passes after the second restore. Both a single process and a tree.
#[test]
fn pidns_restored_tree_dumps_again() {
    if !require_root() {
        return;
    }
    for workload in ["mem", "tree_pgroups"] {
        let w = Workload::spawn_c(workload, Spawn::default());
        let img = w.dir.join("img1");
        common::dump(&w, &img, &[]);
        w.wait_gone();
        let pidfile = w.dir.join("first.pid");
        common::restore(&img, &["--pidns", "--pidfile", pidfile.to_str().unwrap()]);
        let host: i32 = fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let img2 = w.dir.join("img2");
        w.mark("dump the restored tree again");
        let out = stasis(&[
            "dump",
            "--verify",
            "-t",
            &host.to_string(),
            "-D",
            img2.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "{workload}: second dump: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let _ = wait_exit(host, Duration::from_secs(10), false);
        let pidfile2 = w.dir.join("second.pid");
        common::restore(&img2, &["--pidns", "--pidfile", pidfile2.to_str().unwrap()]);
        let host2: i32 = fs::read_to_string(&pidfile2)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let r = w.terminate_and_verdict_of(host2);
        let _ = wait_exit(host2, Duration::from_secs(10), true);
        if let Err(e) = r {
            panic!("{workload} after the second restore: {e}");
        }
    }
}

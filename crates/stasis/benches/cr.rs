//! Checkpoint/restore throughput: `cargo bench -p stasis --bench cr`.
//!
//! A plain `main` (harness = false) that prints a table. It measures:
//!
//! - dump and restore of a process holding 1 GiB and 4 GiB of dirtied
//!   private anonymous memory, with the images on tmpfs (`/dev/shm`) and on
//!   ext4 (`/var/tmp`), each as a ratio to `cp` of a file of the same size
//!   into the same filesystem, timed in the same run;
//! - dump and restore latency of `sleep 1000`;
//! - a `memcpy` of the same size, as a reference for memory bandwidth;
//! - process trees (`cr/tree_cases.rs`): `tree100`, 100 processes of 4 MiB
//!   private memory each against one such process (fixed per-process
//!   cost), and `cow8`, 8 processes sharing 1 GiB copy-on-write (image
//!   size, restored Pss).
//!
//! Times are wall times of the `stasis` commands (`dump` until it exits,
//! `restore -d` until it returns with the process running), as a user sees
//! them; the `--json` internal times are shown next to them. Each case does
//! one untimed warm-up cycle first (cp, dump, restore), so that guest RAM,
//! tmpfs pages and the page cache are warm: first touch of guest RAM in a VM
//! can be several times slower than reuse. For the same reason each timed
//! step is preceded by an untimed fault-in of as much memory as it will
//! allocate (see [`host::prefault`]; `STASIS_BENCH_NO_PREFAULT=1` turns it
//! off).
//! `sync` runs before each timed step, so that earlier writeback does not
//! land in it; neither cp nor the drop of its destination is fsynced.
//!
//! The workload (C, compiled here with `cc -O2`) maps N bytes and writes a
//! seeded, position-dependent pattern into every 8-byte word, prints READY
//! and waits. On SIGUSR1 it checks every word and prints `VERIFY k OK` or
//! `VERIFY k FAIL ...`; on SIGTERM it checks again and exits 0 (`PASS`) or 1
//! (`FAIL`). The same process is dumped and restored over and over, and
//! verified after every restore: a restore that brings back wrong memory
//! fails the benchmark (exit status 1, `FAILED` in the table). After a
//! failed restore the case goes on timing cp and dump only, each of a
//! fresh workload, so that the table still shows them.
//!
//! Positional arguments select cases (default: all): `1g`, `4g`, `sleep`,
//! `memcpy`, `tree100`, `cow8`, and filesystems `tmpfs`, `ext4`; e.g.
//! `cargo bench -p stasis --bench cr -- 1g tree100 tmpfs`. `STASIS_BENCH_RUNS=N` overrides every run count; `STASIS_BIN`
//! runs another stasis binary. Needs root; cases that do not fit in
//! MemAvailable are skipped with a printed reason.
//!
//! Files go under `/var/tmp/stasis-bench-PID` (compiled workload, logs,
//! ext4 images) and `/dev/shm/stasis-bench-PID` (tmpfs images, the cp
//! source); both are removed at the end, and kept when a check fails.
//!
//! Layout: this file holds `main` (setup, case selection, the machine
//! description); `cr/workload.rs` the workloads (`cr/memwl.c` is the C
//! one); `cr/runner.rs` the timed cases; `cr/tree.rs` the process-tree
//! workload (`cr/treewl.c`) and `cr/tree_cases.rs` its cases and their
//! output; `cr/process.rs` running and waiting for commands; `cr/host.rs`
//! the machine and its filesystems; `cr/report.rs` the statistics and the
//! table.

// A bench target's modules live under `benches/cr/`, named by path: a
// plain `mod` would look for `benches/*.rs`, which cargo would take for
// bench targets of their own.
#[path = "cr/host.rs"]
mod host;
#[path = "cr/process.rs"]
mod process;
#[path = "cr/report.rs"]
mod report;
#[path = "cr/runner.rs"]
mod runner;
#[path = "cr/tree.rs"]
mod tree;
#[path = "cr/tree_cases.rs"]
mod tree_cases;
#[path = "cr/workload.rs"]
mod workload;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use host::{cmd_stdout, fs_type, meminfo, path_str, read_trim};
use report::{human, median, print_results, size_label};
use runner::{catch, memcpy_case, Bench, Row, Target};
use tree::TREE_WL_C;
use tree_cases::{print_cow_rows, print_tree_rows, CowRow, Cycles, TreeRow};
use tree_cases::{COW_BYTES, COW_PROCS};
use workload::WORKLOAD_C;

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// Timed runs per case (after one warm-up cycle).
const RUNS_1G: usize = 7;
const RUNS_4G: usize = 3;
const RUNS_SLEEP: usize = 10;
const RUNS_MEMCPY: usize = 3;
/// tree100: the single process, the tree of 100.
const RUNS_TREE_SINGLE: usize = 15;
const RUNS_TREE: usize = 5;
const RUNS_COW: usize = 3;

fn main() {
    // cargo bench passes `--bench`; positional words select cases.
    let sel: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .map(|a| a.to_lowercase())
        .collect();
    let known = [
        "1g", "4g", "memfd", "sleep", "memcpy", "tree100", "cow8", "tmpfs", "ext4",
    ];
    if let Some(bad) = sel.iter().find(|a| !known.contains(&a.as_str())) {
        eprintln!("unknown case {bad:?}; known: {}", known.join(" "));
        std::process::exit(2);
    }
    let kinds = ["1g", "4g", "memfd", "sleep", "memcpy", "tree100", "cow8"];
    let fss = ["tmpfs", "ext4"];
    let want = |k: &str| {
        let group = if kinds.contains(&k) {
            &kinds[..]
        } else {
            &fss[..]
        };
        !sel.iter().any(|s| group.contains(&s.as_str())) || sel.iter().any(|s| s == k)
    };

    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if euid != 0 {
        println!("SKIP: the C/R benchmark needs root (euid is {euid})");
        return;
    }
    // SAFETY: PR_SET_CHILD_SUBREAPER takes an integer flag and changes only
    // this process's attributes.
    let r = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    assert_eq!(
        r,
        0,
        "prctl(PR_SET_CHILD_SUBREAPER): {}",
        std::io::Error::last_os_error()
    );

    let stasis = std::env::var_os("STASIS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_stasis")));
    let cp = ["/usr/bin/cp", "/bin/cp"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists());
    let Some(cp) = cp else {
        println!("SKIP: no cp binary");
        return;
    };
    let runs_override = std::env::var("STASIS_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok());
    let prefault = std::env::var_os("STASIS_BENCH_NO_PREFAULT").is_none();

    let me = std::process::id();
    let ext4_root = PathBuf::from(format!("/var/tmp/stasis-bench-{me}"));
    let shm_root = PathBuf::from(format!("/dev/shm/stasis-bench-{me}"));
    let work = ext4_root.join("work");
    fs::create_dir_all(&work).expect("create work dir");
    fs::create_dir_all(&shm_root).expect("create /dev/shm dir");

    // The workloads.
    let mut bins = Vec::new();
    for (name, src) in [("memwl", WORKLOAD_C), ("treewl", TREE_WL_C)] {
        let src_c = work.join(format!("{name}.c"));
        fs::write(&src_c, src).expect("write workload source");
        let bin = work.join(name);
        let out = Command::new("cc")
            .args(["-O2", "-Wall", "-o", path_str(&bin), path_str(&src_c)])
            .output();
        match out {
            Ok(o) if o.status.success() => {}
            Ok(o) => panic!(
                "cc -O2 {name}.c failed:\n{}",
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => {
                println!("SKIP: cannot run cc: {e}");
                return;
            }
        }
        bins.push(bin);
    }
    let (bin, tree_bin) = (&bins[0], &bins[1]);

    // The machine.
    let mem_total = meminfo("MemTotal").unwrap_or(0);
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("model name")?
                    .split_once(':')
                    .map(|x| x.1.trim().to_string())
            })
        })
        .unwrap_or_else(|| "?".into());
    println!("stasis C/R benchmark");
    println!("  stasis:  {}", stasis.display());
    println!(
        "  machine: nproc {}, {cpu}, MemTotal {}, MemAvailable {}",
        cmd_stdout("nproc", &[]),
        human(mem_total),
        human(meminfo("MemAvailable").unwrap_or(0))
    );
    println!("  kernel:  {}", cmd_stdout("uname", &["-r"]));
    println!("  loadavg: {}", read_trim("/proc/loadavg"));
    println!(
        "  tree:    {}",
        cmd_stdout(
            "git",
            &[
                "-C",
                env!("CARGO_MANIFEST_DIR"),
                "describe",
                "--always",
                "--dirty"
            ]
        )
    );
    println!(
        "  THP:     enabled {}; vm.dirty_ratio {}, dirty_background_ratio {}",
        read_trim("/sys/kernel/mm/transparent_hugepage/enabled"),
        read_trim("/proc/sys/vm/dirty_ratio"),
        read_trim("/proc/sys/vm/dirty_background_ratio")
    );
    let reported_kib = || {
        fs::read_to_string("/sys/module/page_reporting/parameters/reported_kib")
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
    };
    let reported_at_start = reported_kib();
    println!(
        "  memory:  free page reporting to the host {}; prefault before each timed step: {}",
        if Path::new("/sys/module/page_reporting").exists() {
            "present"
        } else {
            "absent"
        },
        if prefault {
            "yes (STASIS_BENCH_NO_PREFAULT=1 to disable)"
        } else {
            "no"
        }
    );
    println!(
        "  cp:      {}",
        cmd_stdout(path_str(&cp), &["--version"])
            .lines()
            .next()
            .unwrap_or("?")
    );

    let mut targets = Vec::new();
    for (name, root, want_type) in [("tmpfs", &shm_root, "tmpfs"), ("ext4", &ext4_root, "ext4")] {
        let (stat_f, mount_type) = fs_type(root);
        println!(
            "  {name:5}    {}: `stat -f -c %T` says {stat_f}, mountinfo says {mount_type}",
            root.display()
        );
        if !want(name) {
            continue;
        }
        if mount_type != want_type {
            println!(
                "  SKIP {name} cases: {} is {mount_type}, not {want_type}",
                root.display()
            );
            continue;
        }
        targets.push(Target {
            name,
            root: root.clone(),
        });
    }
    println!();

    let bench = Bench {
        stasis,
        cp,
        work: work.clone(),
        runs_override,
        prefault,
    };
    let mut rows = Vec::new();
    let mut memcpy_rows = Vec::new();
    let mut skips = Vec::new();

    for (key, bytes, runs) in [
        ("1g", GIB, RUNS_1G),
        ("memfd", GIB, RUNS_1G),
        ("4g", 4 * GIB, RUNS_4G),
    ] {
        let memfd = key == "memfd";
        let label = size_label(bytes);
        // Peak use: the workload, the cp source on /dev/shm, and either
        // the image or the cp destination (page cache or tmpfs).
        let need = 3 * bytes + GIB;
        let avail = meminfo("MemAvailable").unwrap_or(0);
        if (want(key) || want("memcpy")) && avail < need {
            let why = format!(
                "SKIP {label} cases: MemAvailable {} < {} needed",
                human(avail),
                human(need)
            );
            println!("{why}");
            skips.push(why);
            continue;
        }
        if want("memcpy") && !memfd {
            let v = memcpy_case(bytes, bench.runs(RUNS_MEMCPY));
            eprintln!("memcpy {label}: median {:.3} s", median(&v));
            memcpy_rows.push((bytes, v));
        }
        if !want(key) || targets.is_empty() {
            continue;
        }
        // The cp source: on /dev/shm, written once, untimed.
        let src = shm_root.join(format!("cp-src-{}g.bin", bytes / GIB));
        {
            let mut f = fs::File::create(&src).expect("create cp source");
            let mut buf = vec![0u8; 8 * MIB as usize];
            for chunk in 0..bytes / (8 * MIB) {
                for (i, w) in buf.chunks_exact_mut(8).enumerate() {
                    let x = (chunk << 20 | i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                    w.copy_from_slice(&x.to_le_bytes());
                }
                f.write_all(&buf).expect("write cp source");
            }
        }
        for t in &targets {
            let what = if memfd { "memfd" } else { "anon" };
            let mut row = Row::new(format!("{label} {what}"), t.name, bytes);
            if let Some(why) =
                catch(|| bench.mem_case(bin, bytes, memfd, &src, t, bench.runs(runs), &mut row))
            {
                row.failed = Some(why);
            }
            rows.push(row);
        }
        fs::remove_file(&src).expect("remove cp source");
    }
    if want("sleep") {
        for t in &targets {
            let mut row = Row::new("sleep 1000".into(), t.name, 0);
            row.failed = catch(|| bench.sleep_case(t, bench.runs(RUNS_SLEEP), &mut row));
            rows.push(row);
        }
    }

    let mut tree_rows = Vec::new();
    if want("tree100") {
        for t in &targets {
            let mut row = TreeRow {
                fs: t.name,
                single: Cycles::default(),
                tree: Cycles::default(),
                failed: None,
            };
            let runs = (bench.runs(RUNS_TREE_SINGLE), bench.runs(RUNS_TREE));
            row.failed = catch(|| bench.tree_case(tree_bin, t, runs, &mut row));
            tree_rows.push(row);
        }
    }
    let mut cow_rows = Vec::new();
    // Peak use: the tree, the image and the cp destination, and the 8
    // restored copies (or the prefault of as much).
    let cow_need = (COW_PROCS as u64 + 3) * COW_BYTES;
    let avail = meminfo("MemAvailable").unwrap_or(0);
    if want("cow8") && !targets.is_empty() && avail < cow_need {
        let why = format!(
            "SKIP cow8: MemAvailable {} < {} needed",
            human(avail),
            human(cow_need)
        );
        println!("{why}");
        skips.push(why);
    } else if want("cow8") {
        for t in &targets {
            let mut row = CowRow {
                fs: t.name,
                cp: Vec::new(),
                c: Cycles::default(),
                before: Vec::new(),
                after: Vec::new(),
                failed: None,
            };
            row.failed = catch(|| bench.cow_case(tree_bin, t, bench.runs(RUNS_COW), &mut row));
            cow_rows.push(row);
        }
    }

    println!("  loadavg at end: {}", read_trim("/proc/loadavg"));
    if let (Some(a), Some(b)) = (reported_at_start, reported_kib()) {
        println!(
            "  guest memory reported free to the host during the run: {}",
            human(b.saturating_sub(a) * 1024)
        );
    }
    print_results(&rows, &memcpy_rows, &skips);
    print_tree_rows(&tree_rows);
    print_cow_rows(&cow_rows);
    let failures: Vec<String> = tree_rows
        .iter()
        .filter_map(|r| Some(format!("tree100 {}: {}", r.fs, r.failed.as_ref()?)))
        .chain(
            cow_rows
                .iter()
                .filter_map(|r| Some(format!("cow8 {}: {}", r.fs, r.failed.as_ref()?))),
        )
        .collect();
    for f in &failures {
        let head = f.lines().next().unwrap_or("");
        let error = f.lines().find(|l| l.starts_with("error:")).unwrap_or("");
        println!();
        println!("FAILED {head} {error}");
    }

    if rows.iter().any(|r| r.failed.is_some()) || !failures.is_empty() {
        println!();
        println!(
            "FAILED: see above; logs and images kept in {} and {}",
            ext4_root.display(),
            shm_root.display()
        );
        std::process::exit(1);
    }
    let _ = fs::remove_dir_all(&shm_root);
    let _ = fs::remove_dir_all(&ext4_root);
}

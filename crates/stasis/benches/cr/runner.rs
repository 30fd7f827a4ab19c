//! Running the cases: dump, restore and cp of one workload, timed, with
//! the results collected per case.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::host::{dir_size, path_str, prefault};
use crate::process::{json_f64, json_line, proc_state, run_timed, wait_child};
use crate::report::{median, size_label};
use crate::workload::{MemWorkload, Workload};
use crate::{GIB, MIB};

/// Where images (and cp destinations) go.
pub struct Target {
    pub name: &'static str,
    pub root: PathBuf,
}

/// One measured case.
pub struct Row {
    pub what: String,
    pub fs: &'static str,
    pub bytes: u64,
    pub cp: Vec<f64>,
    pub dump: Vec<f64>,
    pub dump_json: Vec<f64>,
    pub frozen: Vec<f64>,
    pub restore: Vec<f64>,
    pub restore_json: Vec<f64>,
    pub image: (u64, u64),
    /// Wall times of the untimed warm-up dump and restore.
    pub warm: (Option<f64>, Option<f64>),
    /// Why the case stopped early (the panic message), if it did.
    pub failed: Option<String>,
}

impl Row {
    pub fn new(what: String, fs: &'static str, bytes: u64) -> Row {
        Row {
            what,
            fs,
            bytes,
            cp: Vec::new(),
            dump: Vec::new(),
            dump_json: Vec::new(),
            frozen: Vec::new(),
            restore: Vec::new(),
            restore_json: Vec::new(),
            image: (0, 0),
            warm: (None, None),
            failed: None,
        }
    }
}

pub struct Bench {
    pub stasis: PathBuf,
    pub cp: PathBuf,
    pub work: PathBuf,
    pub runs_override: Option<usize>,
    /// Fault in (and free) memory right before each timed step; see
    /// [`prefault`].
    pub prefault: bool,
}

impl Bench {
    pub fn runs(&self, default: usize) -> usize {
        self.runs_override.unwrap_or(default)
    }

    /// Makes `bytes` (+ 256 MiB) of guest RAM host-resident just before a
    /// timed step, when enabled; returns the rate in GB/s.
    pub fn warm(&self, bytes: u64) -> Option<f64> {
        self.prefault.then(|| prefault(bytes + 256 * MIB))
    }

    /// `stasis dump -t pid -D dir --json` into `dir` (created empty), timed:
    /// the wall time and the JSON line it printed.
    pub fn dump_cmd(&self, pid: i32, dir: &Path) -> (f64, serde_json::Value) {
        let _ = fs::remove_dir_all(dir);
        fs::create_dir_all(dir).expect("create image dir");
        let pid_s = pid.to_string();
        let r = run_timed(
            &self.stasis,
            &["dump", "-t", &pid_s, "-D", path_str(dir), "--json"],
            &self.work,
        );
        (r.wall.as_secs_f64(), json_line(&r.stdout, "stasis dump"))
    }

    /// `stasis restore -D dir -d --json`, timed until it returns; checks
    /// that it restored the tree rooted at `pid`.
    pub fn restore_cmd(&self, dir: &Path, pid: i32) -> (f64, serde_json::Value) {
        let r = run_timed(
            &self.stasis,
            &["restore", "-D", path_str(dir), "-d", "--json"],
            &self.work,
        );
        let j = json_line(&r.stdout, "stasis restore");
        let got = j.get("pid").and_then(|p| p.as_i64());
        assert_eq!(got, Some(pid as i64), "restore reported pid {got:?}");
        (r.wall.as_secs_f64(), j)
    }

    /// [`Bench::dump_cmd`], recording wall and --json times in `row`.
    fn dump(&self, pid: i32, dir: &Path, row: &mut Row, warm: bool) -> f64 {
        let (wall, j) = self.dump_cmd(pid, dir);
        row.image = dir_size(dir);
        if warm {
            row.warm.0 = Some(wall);
        } else {
            row.dump.push(wall);
            row.dump_json.push(json_f64(&j, "total_ms") / 1e3);
            row.frozen.push(json_f64(&j, "frozen_ms") / 1e3);
        }
        wall
    }

    /// [`Bench::restore_cmd`], recording wall and --json times in `row`.
    fn restore(&self, dir: &Path, pid: i32, row: &mut Row, warm: bool) -> f64 {
        let (wall, j) = self.restore_cmd(dir, pid);
        if warm {
            row.warm.1 = Some(wall);
        } else {
            row.restore.push(wall);
            row.restore_json.push(json_f64(&j, "restore_ms") / 1e3);
        }
        wall
    }

    /// `cp src dst`, timed; dst removed afterwards (untimed).
    pub fn cp(&self, src: &Path, dst: &Path) -> f64 {
        let _ = fs::remove_file(dst);
        // SAFETY: sync has no preconditions; it flushes dirty data left by
        // earlier steps so that it does not land inside this timing.
        unsafe { libc::sync() };
        self.warm(fs::metadata(src).map(|m| m.len()).unwrap_or(0));
        let r = run_timed(&self.cp, &[path_str(src), path_str(dst)], &self.work);
        let len = fs::metadata(dst).map(|m| m.len()).unwrap_or(0);
        assert_eq!(
            len,
            fs::metadata(src).expect("stat cp source").len(),
            "cp copied {len} bytes"
        );
        fs::remove_file(dst).expect("remove cp destination");
        // SAFETY: as above; drops the (now unlinked) file's pending state.
        unsafe { libc::sync() };
        r.wall.as_secs_f64()
    }

    /// Dump + restore of the memory workload `bytes` with images on `t`;
    /// one untimed warm-up cycle, then `runs` timed ones, each followed by a
    /// full memory check. Results go into `row` as they come, so that a
    /// failure (a panic) keeps what was measured before it.
    #[allow(clippy::too_many_arguments)]
    pub fn mem_case(
        &self,
        bin: &Path,
        bytes: u64,
        memfd: bool,
        src: &Path,
        t: &Target,
        runs: usize,
        row: &mut Row,
    ) {
        eprintln!(
            "{} {}, images on {} ({}):",
            size_label(bytes),
            if memfd {
                "memfd (shared, unnamed)"
            } else {
                "anonymous memory"
            },
            t.name,
            t.root.display()
        );
        let kind = if memfd { "memfd" } else { "anon" };
        let wl_dir = self
            .work
            .join(format!("wl-{}g-{kind}-{}", bytes / GIB, t.name));
        let mut wl = MemWorkload::start(bin, bytes, memfd, wl_dir.clone());
        let ms = wl.verify();
        eprintln!("  initial check: {ms:.0} ms");
        let images = t.root.join("images");
        let cp_dst = t.root.join("cp-dst.bin");
        for i in 0..=runs {
            let warm = i == 0;
            if warm {
                eprint!("  warm-up:");
            } else {
                eprint!("  run {i}:");
            }
            let pid = wl.w.pid;
            let cp = self.cp(src, &cp_dst);
            eprint!(" cp {cp:.3} s");
            // SAFETY: sync has no preconditions (see Bench::cp).
            unsafe { libc::sync() };
            self.warm(bytes);
            let d = self.dump(pid, &images, row, warm);
            eprint!("  dump {d:.3} s");
            wl.w.reap_after_dump();
            if !warm {
                row.cp.push(cp);
            }
            if row.failed.is_none() {
                let failed = catch(|| {
                    self.warm(bytes);
                    let r = self.restore(&images, pid, row, warm);
                    eprint!("  restore {r:.3} s");
                    wl.w.check_restored();
                    let check_ms = wl.verify();
                    eprintln!("  check OK ({check_ms:.0} ms)");
                });
                if let Some(why) = failed {
                    eprintln!(
                        "  restore or check FAILED: later runs time cp and dump only, \
                         each of a fresh workload"
                    );
                    row.failed = Some(why);
                    // A restored process is our child (or reparented to
                    // us): reap what is left of it.
                    let _ = wait_child(pid, Duration::from_secs(5));
                }
            } else {
                eprintln!("  (no restore)");
            }
            let _ = fs::remove_dir_all(&images);
            if row.failed.is_some() && i < runs {
                wl = MemWorkload::start(bin, bytes, memfd, wl_dir.clone());
            }
        }
        if row.failed.is_none() {
            wl.finish();
        }
        let _ = fs::remove_file(&cp_dst);
    }

    /// Dump + restore latency of `sleep 1000`.
    pub fn sleep_case(&self, t: &Target, runs: usize, row: &mut Row) {
        eprintln!("sleep 1000, images on {}:", t.name);
        let sleep_bin = ["/usr/bin/sleep", "/bin/sleep"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
            .expect("no sleep binary");
        let w = Workload::start(
            &sleep_bin,
            &["1000"],
            self.work.join(format!("sleep-{}", t.name)),
        );
        let pid = w.pid;
        let is_sleep = |_: &str| {
            let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
            (args.len() == 3 && args[0].ends_with(b"sleep") && args[1] == b"1000").then_some(())
        };
        w.wait_log(Duration::from_secs(10), "exec of sleep", is_sleep);
        w.assert_fds();
        let images = t.root.join("images-sleep");
        for i in 0..=runs {
            let warm = i == 0;
            self.dump(pid, &images, row, warm);
            w.reap_after_dump();
            self.restore(&images, pid, row, warm);
            w.check_restored();
            if is_sleep("").is_none() || proc_state(pid) != Some('S') {
                w.fail(&format!(
                    "after restore: state {:?}, cmdline not `sleep 1000`",
                    proc_state(pid)
                ));
            }
            let _ = fs::remove_dir_all(&images);
        }
        eprintln!(
            "  dump median {:.1} ms, restore median {:.1} ms",
            median(&row.dump) * 1e3,
            median(&row.restore) * 1e3
        );
        drop(w); // SIGKILL + reap
    }
}

/// memcpy of `bytes` between two warm buffers; seconds per run.
pub fn memcpy_case(bytes: u64, runs: usize) -> Vec<f64> {
    let n = bytes as usize;
    let src = vec![0x5au8; n];
    let mut dst = vec![0xa5u8; n];
    let mut v = Vec::new();
    for i in 0..=runs {
        let t = Instant::now();
        dst.copy_from_slice(std::hint::black_box(&src));
        std::hint::black_box(&mut dst);
        if i > 0 {
            v.push(t.elapsed().as_secs_f64());
        }
    }
    v
}

/// Runs one case; a panic (a failed command or check, already printed by
/// the panic hook) is turned into its message so that the other cases
/// still run and the benchmark fails at the end.
pub fn catch(f: impl FnOnce()) -> Option<String> {
    let p = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).err()?;
    let msg = p
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "panic".into());
    eprintln!();
    Some(msg)
}

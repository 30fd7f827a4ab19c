//! The process-tree cases, on [`TreeWorkload`]s:
//!
//! - `tree100`: 100 processes (the root and 99 children) of 4 MiB private
//!   memory each, against one process of 4 MiB (the same program with one
//!   process) timed in the same run. The figure of merit is
//!   tree time / (100 × single time): fixed per-process cost shows as a
//!   ratio above 1.
//! - `cow8`: 8 processes sharing one 1 GiB region copy-on-write. The image
//!   must hold the region once (`pages.img` < 1.1 GiB, a hard check); the
//!   reference is `cp` of that `pages.img` into the same filesystem. Rss
//!   and Pss of the 8 processes (sums over `/proc/PID/smaps_rollup`) are
//!   taken before the dump and after the restore: restore currently gives
//!   each process a private copy, so Pss grows 8×, and the table says so.
//!
//! Each run of tree100 dumps and restores the same tree again (its memory
//! is private, so a restored tree is like the original); each run of cow8
//! starts a fresh tree, because a restored one no longer shares its pages.
//! After every restore each process checks its pid, its parent and every
//! word of its memory (`VERIFY`), and at the end of a tree the root
//! collects every child's final check (`PASS`).

use std::fs;
use std::path::Path;

use crate::process::json_f64;
use crate::report::{human, median, stat};
use crate::runner::{Bench, Target};
use crate::tree::{Sharing, TreeWorkload};
use crate::{GIB, MIB};

/// tree100: processes and private bytes per process.
pub const TREE_PROCS: usize = 100;
pub const TREE_BYTES: u64 = 4 * MIB;
/// cow8: processes and the shared region's size.
pub const COW_PROCS: usize = 8;
pub const COW_BYTES: u64 = GIB;
/// cow8 fails when `pages.img` exceeds this share of the region.
const COW_MAX_IMAGE: f64 = 1.1;

/// Timed runs of one dump + restore cycle.
#[derive(Default)]
pub struct Cycles {
    pub dump: Vec<f64>,
    pub dump_json: Vec<f64>,
    pub restore: Vec<f64>,
    pub restore_json: Vec<f64>,
    /// `pages.img` and all image files, bytes (of the last dump).
    pub pages_img: u64,
    pub image: u64,
}

/// tree100 on one filesystem.
pub struct TreeRow {
    pub fs: &'static str,
    pub single: Cycles,
    pub tree: Cycles,
    pub failed: Option<String>,
}

/// cow8 on one filesystem.
pub struct CowRow {
    pub fs: &'static str,
    pub cp: Vec<f64>,
    pub c: Cycles,
    /// (Rss, Pss) summed over the tree: before the dump, after the restore.
    pub before: Vec<(u64, u64)>,
    pub after: Vec<(u64, u64)>,
    pub failed: Option<String>,
}

impl Bench {
    /// Dumps `t` into `images` (timed, after faulting in `warm` bytes, see
    /// [`Bench::warm`]) and reaps it; returns seconds.
    fn tree_dump(
        &self,
        t: &TreeWorkload,
        images: &Path,
        warm: u64,
        c: &mut Cycles,
        timed: bool,
    ) -> f64 {
        let n = t.pids.len() as i64;
        // SAFETY: sync has no preconditions; it keeps earlier writeback out
        // of the timed step.
        unsafe { libc::sync() };
        self.warm(warm);
        let (d, j) = self.dump_cmd(t.w.pid, images);
        if j.get("processes").and_then(|v| v.as_i64()) != Some(n) {
            t.w.fail(&format!("dump of {n} processes reported {j}"));
        }
        c.pages_img = fs::metadata(images.join("pages.img"))
            .map(|m| m.len())
            .unwrap_or_else(|e| t.w.fail(&format!("pages.img: {e}")));
        c.image = crate::host::dir_size(images).0;
        t.reap_after_dump();
        if timed {
            c.dump.push(d);
            c.dump_json.push(json_f64(&j, "total_ms") / 1e3);
        }
        d
    }

    /// Restores `t` from `images` (timed, after faulting in `warm` bytes)
    /// and checks the tree's shape; returns seconds.
    fn tree_restore(
        &self,
        t: &TreeWorkload,
        images: &Path,
        warm: u64,
        c: &mut Cycles,
        timed: bool,
    ) -> f64 {
        let n = t.pids.len() as i64;
        self.warm(warm);
        let (r, j) = self.restore_cmd(images, t.w.pid);
        if j.get("processes").and_then(|v| v.as_i64()) != Some(n) {
            t.w.fail(&format!("restore of {n} processes reported {j}"));
        }
        t.check_restored();
        if timed {
            c.restore.push(r);
            c.restore_json.push(json_f64(&j, "restore_ms") / 1e3);
        }
        r
    }

    /// `n` processes of TREE_BYTES each: one warm-up cycle and `runs`
    /// timed ones of the same tree, each verified.
    fn tree_runs(&self, bin: &Path, n: usize, t: &Target, runs: usize, c: &mut Cycles) {
        eprintln!(
            "{n} x {} private, images on {} ({}):",
            human(TREE_BYTES),
            t.name,
            t.root.display()
        );
        let dir = self.work.join(format!("tree{n}-{}", t.name));
        let mut wl = TreeWorkload::start(bin, n, TREE_BYTES, Sharing::Private, dir);
        wl.verify();
        let images = t.root.join(format!("images-tree{n}"));
        let bytes = n as u64 * TREE_BYTES;
        for i in 0..=runs {
            let d = self.tree_dump(&wl, &images, bytes, c, i > 0);
            let r = self.tree_restore(&wl, &images, bytes, c, i > 0);
            let ms = wl.verify();
            eprintln!(
                "  {}: dump {:.1} ms  restore {:.1} ms  check OK (slowest {ms:.1} ms)",
                if i == 0 {
                    "warm-up".into()
                } else {
                    format!("run {i}")
                },
                d * 1e3,
                r * 1e3
            );
            let _ = fs::remove_dir_all(&images);
        }
        wl.finish();
    }

    /// tree100: the single process, then the tree.
    pub fn tree_case(&self, bin: &Path, t: &Target, runs: (usize, usize), row: &mut TreeRow) {
        self.tree_runs(bin, 1, t, runs.0, &mut row.single);
        self.tree_runs(bin, TREE_PROCS, t, runs.1, &mut row.tree);
    }

    /// cow8: a fresh tree per cycle (one warm-up, `runs` timed).
    pub fn cow_case(&self, bin: &Path, t: &Target, runs: usize, row: &mut CowRow) {
        eprintln!(
            "{COW_PROCS} processes sharing {} copy-on-write, images on {} ({}):",
            human(COW_BYTES),
            t.name,
            t.root.display()
        );
        let images = t.root.join("images-cow");
        let cp_dst = t.root.join("cp-dst.bin");
        for i in 0..=runs {
            let timed = i > 0;
            let dir = self.work.join(format!("cow{COW_PROCS}-{}", t.name));
            let mut wl = TreeWorkload::start(bin, COW_PROCS, COW_BYTES, Sharing::Cow, dir);
            wl.verify();
            let before = wl.rss_pss();
            // The dump allocates the image (the region once).
            let d = self.tree_dump(&wl, &images, COW_BYTES, &mut row.c, timed);
            let pages = row.c.pages_img;
            if pages as f64 > COW_MAX_IMAGE * COW_BYTES as f64 {
                wl.w.fail(&format!(
                    "pages.img is {} for {COW_PROCS} processes sharing {}: shared pages \
                     stored more than once",
                    human(pages),
                    human(COW_BYTES)
                ));
            }
            // The reference: cp of the image's pages into the same fs.
            let cp = self.cp(&images.join("pages.img"), &cp_dst);
            // The restore maps the region once, plus each process's own.
            let r = self.tree_restore(&wl, &images, 2 * COW_BYTES, &mut row.c, timed);
            let after = wl.rss_pss();
            if after.1 as f64 > COW_MAX_IMAGE * COW_BYTES as f64 {
                wl.w.fail(&format!(
                    "restored Pss is {} for {COW_PROCS} processes sharing {}: the \
                     restore did not keep the memory shared",
                    human(after.1),
                    human(COW_BYTES)
                ));
            }
            let ms = wl.verify();
            eprintln!(
                "  {}: dump {d:.3} s  pages.img {}  cp {cp:.3} s  restore {r:.3} s  \
                 Pss {} -> {}  check OK (slowest {ms:.0} ms)",
                if timed {
                    format!("run {i}")
                } else {
                    "warm-up".into()
                },
                human(pages),
                human(before.1),
                human(after.1),
            );
            if timed {
                row.cp.push(cp);
                row.before.push(before);
                row.after.push(after);
            }
            wl.finish();
            let _ = fs::remove_dir_all(&images);
        }
    }
}

fn ms(v: &[f64]) -> String {
    stat(v, 1e3, 1, " ms")
}

fn secs(v: &[f64]) -> String {
    stat(v, 1.0, 3, " s")
}

/// `a / (k × b)` of the medians, and of the fastest runs.
fn scaled_ratio(a: &[f64], b: &[f64], k: f64) -> String {
    if a.is_empty() || b.is_empty() {
        return "-".into();
    }
    let min = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    format!(
        "{:.2} (fastest {:.2})",
        median(a) / (k * median(b)),
        min(a) / (k * min(b))
    )
}

pub fn print_tree_rows(rows: &[TreeRow]) {
    for r in rows {
        let n = TREE_PROCS as f64;
        println!();
        println!(
            "tree100 on {}: {TREE_PROCS} processes (root + {} children) x {} private, \
             against 1 process x {}{}",
            r.fs,
            TREE_PROCS - 1,
            human(TREE_BYTES),
            human(TREE_BYTES),
            if r.failed.is_some() { "  FAILED" } else { "" }
        );
        println!(
            "| {:<9} | {:>4} | {:>24} | {:>9} | {:>24} | {:>9} | {:>10} |",
            "processes", "runs", "dump", "dump json", "restore", "rest json", "pages.img"
        );
        println!(
            "|{:-<11}|{:->6}|{:->26}|{:->11}|{:->26}|{:->11}|{:->12}|",
            "", "", "", "", "", "", ""
        );
        for (k, c) in [(1, &r.single), (TREE_PROCS, &r.tree)] {
            println!(
                "| {:<9} | {:>4} | {:>24} | {:>9} | {:>24} | {:>9} | {:>10} |",
                k,
                c.dump.len(),
                ms(&c.dump),
                format!("{:.1}", median(&c.dump_json) * 1e3),
                ms(&c.restore),
                format!("{:.1}", median(&c.restore_json) * 1e3),
                human(c.pages_img),
            );
        }
        for (what, tree, single) in [
            ("dump", &r.tree.dump, &r.single.dump),
            ("restore", &r.tree.restore, &r.single.restore),
        ] {
            if tree.is_empty() || single.is_empty() {
                continue;
            }
            let (t, s) = (median(tree), median(single));
            println!(
                "  {what:7}: tree / ({TREE_PROCS} x single) = {}; per process: tree / {TREE_PROCS} \
                 = {:.2} ms, marginal (tree - single) / {} = {:.2} ms, excess (tree - \
                 {TREE_PROCS} x single) / {TREE_PROCS} = {:+.2} ms (single {:.2} ms)",
                scaled_ratio(tree, single, n),
                t / n * 1e3,
                TREE_PROCS - 1,
                (t - s) / (n - 1.0) * 1e3,
                (t - n * s) / n * 1e3,
                s * 1e3,
            );
        }
    }
}

pub fn print_cow_rows(rows: &[CowRow]) {
    for r in rows {
        let c = &r.c;
        let k = COW_PROCS as f64;
        println!();
        println!(
            "cow8 on {}: {COW_PROCS} processes sharing {} copy-on-write, {} timed runs{}",
            r.fs,
            human(COW_BYTES),
            c.dump.len(),
            if r.failed.is_some() { "  FAILED" } else { "" }
        );
        println!("  cp of pages.img  {}", secs(&r.cp));
        println!(
            "  dump             {}  dump/cp {}  (json total {:.3} s)",
            secs(&c.dump),
            scaled_ratio(&c.dump, &r.cp, 1.0),
            median(&c.dump_json)
        );
        println!(
            "  restore          {}  restore/cp {}, restore/({COW_PROCS} x cp) {}  \
             (json {:.3} s)",
            secs(&c.restore),
            scaled_ratio(&c.restore, &r.cp, 1.0),
            scaled_ratio(&c.restore, &r.cp, k),
            median(&c.restore_json)
        );
        println!(
            "  pages.img        {} ({} bytes; all image files {}) = {:.3} of {COW_PROCS} x {} \
             (limit {COW_MAX_IMAGE} x {})",
            human(c.pages_img),
            c.pages_img,
            human(c.image),
            c.pages_img as f64 / (k * COW_BYTES as f64),
            human(COW_BYTES),
            human(COW_BYTES)
        );
        let med = |v: &[(u64, u64)], f: fn(&(u64, u64)) -> u64| {
            median(&v.iter().map(|x| f(x) as f64).collect::<Vec<_>>())
        };
        let (pb, pa) = (med(&r.before, |x| x.1), med(&r.after, |x| x.1));
        let (rb, ra) = (med(&r.before, |x| x.0), med(&r.after, |x| x.0));
        println!(
            "  sum of Pss       before dump {}, after restore {} ({:.2}x); Rss {} -> {}",
            human(pb as u64),
            human(pa as u64),
            pa / pb,
            human(rb as u64),
            human(ra as u64)
        );
    }
}

//! Statistics over the timed runs, and the table they are printed as.

use crate::runner::Row;
use crate::{GIB, MIB};

/// Target from the issue: dump and restore each within this factor of cp.
const TARGET_RATIO: f64 = 1.5;

pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

fn min_max(v: &[f64]) -> (f64, f64) {
    v.iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
            (a.min(x), b.max(x))
        })
}

/// `median [min-max]` of `v` times `scale`, or `-` when `v` is empty.
pub fn stat(v: &[f64], scale: f64, prec: usize, unit: &str) -> String {
    if v.is_empty() {
        return "-".into();
    }
    let (lo, hi) = min_max(v);
    format!(
        "{:.prec$}{unit} [{:.prec$}-{:.prec$}]",
        median(v) * scale,
        lo * scale,
        hi * scale
    )
}

/// `a / b` of two medians, and of the two minima, or `-` when either is
/// missing.
pub fn ratio(a: &[f64], b: &[f64]) -> String {
    if a.is_empty() || b.is_empty() {
        "-".into()
    } else {
        format!(
            "{:.2} ({:.2})",
            median(a) / median(b),
            min_max(a).0 / min_max(b).0
        )
    }
}

pub fn human(bytes: u64) -> String {
    if bytes >= GIB {
        format!("{:.2} GiB", bytes as f64 / GIB as f64)
    } else if bytes >= MIB {
        format!("{:.1} MiB", bytes as f64 / MIB as f64)
    } else {
        format!("{:.0} KiB", bytes as f64 / 1024.0)
    }
}

pub fn size_label(bytes: u64) -> String {
    format!("{} GiB", bytes / GIB)
}

pub fn print_results(rows: &[Row], memcpy_rows: &[(u64, Vec<f64>)], skips: &[String]) {
    for s in skips {
        println!("{s}");
    }
    if rows.is_empty() && memcpy_rows.is_empty() {
        return;
    }
    println!();
    println!(
        "Median [min-max] of the timed runs (after one warm-up): wall time of the stasis \
         command;\nd/cp, r/cp: median / median cp of the same bytes into the same fs \
         (in parentheses: fastest / fastest cp)."
    );
    println!();
    println!(
        "| {:<16} | {:<5} | {:>4} | {:>19} | {:>22} | {:>11} | {:>22} | {:>11} | {:>10} | {:>18} | {:>12} |",
        "case",
        "fs",
        "runs",
        "cp s",
        "dump s",
        "d/cp",
        "restore s",
        "r/cp",
        "image",
        "dump json/frozen",
        "restore json"
    );
    println!(
        "|{:-<18}|{:-<7}|{:->6}|{:->21}|{:->24}|{:->13}|{:->24}|{:->13}|{:->12}|{:->20}|{:->14}|",
        "", "", "", "", "", "", "", "", "", "", ""
    );
    let mut verdicts = Vec::new();
    for r in rows {
        let mem = r.bytes > 0;
        let (scale, prec, unit) = if mem { (1.0, 3, "") } else { (1e3, 1, " ms") };
        let json = |v: &[f64]| {
            if v.is_empty() {
                "-".to_string()
            } else {
                format!("{:.prec$}", median(v) * scale)
            }
        };
        println!(
            "| {:<16} | {:<5} | {:>4} | {:>19} | {:>22} | {:>11} | {:>22} | {:>11} | {:>10} | {:>18} | {:>12} |",
            if r.failed.is_some() {
                format!("{} FAILED", r.what)
            } else {
                r.what.clone()
            },
            r.fs,
            r.dump.len(),
            if mem { stat(&r.cp, 1.0, 3, "") } else { "-".into() },
            stat(&r.dump, scale, prec, unit),
            if mem { ratio(&r.dump, &r.cp) } else { "-".into() },
            stat(&r.restore, scale, prec, unit),
            if mem { ratio(&r.restore, &r.cp) } else { "-".into() },
            human(r.image.0),
            format!("{} / {}", json(&r.dump_json), json(&r.frozen)),
            json(&r.restore_json),
        );
        if mem {
            for (what, v) in [("dump", &r.dump), ("restore", &r.restore)] {
                let verdict = if v.is_empty() || r.cp.is_empty() {
                    "FAILED, no timed run".to_string()
                } else {
                    let x = median(v) / median(&r.cp);
                    let met = if x <= TARGET_RATIO { "met" } else { "NOT met" };
                    format!("{x:.2}x cp -> {met}")
                };
                verdicts.push(format!("  {} {} {what}: {verdict}", r.what, r.fs));
            }
        }
    }
    if !memcpy_rows.is_empty() {
        println!();
        println!("memcpy reference (in-process, warm buffers):");
        for (bytes, v) in memcpy_rows {
            let m = median(v);
            println!(
                "  {}: {m:.3} s median of {} ({:.2} GB/s)",
                size_label(*bytes),
                v.len(),
                *bytes as f64 / m / 1e9
            );
        }
    }
    if !verdicts.is_empty() {
        println!();
        println!("Target: dump and restore each within {TARGET_RATIO}x cp:");
        for v in &verdicts {
            println!("{v}");
        }
    }
    for r in rows {
        if let Some(why) = &r.failed {
            let first = why
                .lines()
                .find(|l| l.starts_with("error:"))
                .or_else(|| why.lines().next())
                .unwrap_or("");
            println!();
            println!(
                "FAILED {} {} after {} timed runs (warm-up dump {}, restore {}): {first}",
                r.what,
                r.fs,
                r.dump.len(),
                r.warm.0.map_or("-".into(), |t| format!("{t:.3} s")),
                r.warm.1.map_or("-".into(), |t| format!("{t:.3} s")),
            );
        }
    }
}

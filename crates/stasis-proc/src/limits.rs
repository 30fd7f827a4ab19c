//! `/proc/PID/limits`: resource limits as a fixed-width table.
//!
//! Kernel format (`proc_pid_limits` in `fs/proc/base.c`):
//!
//! ```text
//! Limit                     Soft Limit           Hard Limit           Units
//! Max cpu time              unlimited            unlimited            seconds
//! Max nice priority         0                    0
//! ```
//!
//! Names are left-justified to 25 columns and contain spaces, so each line is
//! matched against the known names, which map to `RLIMIT_*` numbers by their
//! position in the kernel's table. `unlimited` is `RLIM_INFINITY`
//! (`u64::MAX`); the optional units column is ignored.

use crate::error::{dec_u64, ProcError};

const FILE: &str = "/proc/PID/limits";

/// The value `unlimited` stands for.
pub const RLIM_INFINITY: u64 = u64::MAX;

/// Limit names in `RLIMIT_*` order (index = resource number).
const NAMES: [&str; 16] = [
    "Max cpu time",
    "Max file size",
    "Max data size",
    "Max stack size",
    "Max core file size",
    "Max resident set",
    "Max processes",
    "Max open files",
    "Max locked memory",
    "Max address space",
    "Max file locks",
    "Max pending signals",
    "Max msgqueue size",
    "Max nice priority",
    "Max realtime priority",
    "Max realtime timeout",
];

/// One resource limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// `RLIMIT_*` number (0 = `RLIMIT_CPU` .. 15 = `RLIMIT_RTTIME`).
    pub resource: u32,
    /// Soft limit; [`RLIM_INFINITY`] for `unlimited`.
    pub soft: u64,
    /// Hard limit; [`RLIM_INFINITY`] for `unlimited`.
    pub hard: u64,
}

/// The `/proc/PID/limits` name of an `RLIMIT_*` number, e.g. 7 → `"Max open files"`.
pub fn rlimit_name(resource: u32) -> Option<&'static str> {
    NAMES.get(resource as usize).copied()
}

fn value(s: &str) -> Option<u64> {
    if s == "unlimited" {
        Some(RLIM_INFINITY)
    } else {
        dec_u64(s)
    }
}

/// Parses `/proc/PID/limits`, returning limits in file order.
///
/// The header line is optional; an unknown limit name is an error, as is a
/// duplicated one.
pub fn parse_limits(text: &str) -> Result<Vec<Limit>, ProcError> {
    let mut out: Vec<Limit> = Vec::with_capacity(NAMES.len());
    for (idx, line) in text.lines().enumerate() {
        let bad = |reason: &str| ProcError::bad_line(FILE, idx + 1, line, reason);
        if line.trim().is_empty() || (idx == 0 && line.starts_with("Limit ")) {
            continue;
        }
        // Names are unique and none is a prefix of another followed by a
        // space, so the first name the line starts with (plus a space) wins.
        let (resource, rest) = NAMES
            .iter()
            .enumerate()
            .find_map(|(i, n)| {
                line.strip_prefix(n)
                    .filter(|r| r.starts_with(' '))
                    .map(|r| (i as u32, r))
            })
            .ok_or_else(|| bad("unknown limit name"))?;
        let mut cols = rest.split_ascii_whitespace();
        let soft = cols
            .next()
            .and_then(value)
            .ok_or_else(|| bad("bad soft limit"))?;
        let hard = cols
            .next()
            .and_then(value)
            .ok_or_else(|| bad("bad hard limit"))?;
        if cols.nth(1).is_some() {
            return Err(bad("too many columns"));
        }
        if out.iter().any(|l| l.resource == resource) {
            return Err(bad("duplicate limit"));
        }
        out.push(Limit {
            resource,
            soft,
            hard,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(rlimit_name(0), Some("Max cpu time"));
        assert_eq!(rlimit_name(7), Some("Max open files"));
        assert_eq!(rlimit_name(15), Some("Max realtime timeout"));
        assert_eq!(rlimit_name(16), None);
    }

    #[test]
    fn without_header_and_units() {
        let v = parse_limits(
            "Max nice priority         0                    0                    \n\
             Max file locks            unlimited            12                   locks     \n",
        )
        .unwrap();
        assert_eq!(
            v,
            [
                Limit {
                    resource: 13,
                    soft: 0,
                    hard: 0
                },
                Limit {
                    resource: 10,
                    soft: RLIM_INFINITY,
                    hard: 12
                },
            ]
        );
    }

    #[test]
    fn malformed() {
        for (t, line) in [
            ("Max bogus size  1 1\n", 1),
            ("Max cpu time  1\n", 1),
            ("Max cpu time  -1 1 seconds\n", 1),
            ("Max cpu time  1 infinite seconds\n", 1),
            ("Max cpu time  1 1 seconds extra\n", 1),
            ("Max cpu time  1 1\nMax cpu time  2 2\n", 2),
            ("Max cpu timeout 1 1\n", 1),
        ] {
            let e = parse_limits(t).unwrap_err();
            assert_eq!((e.file(), e.line()), (FILE, Some(line)), "{t}");
        }
    }
}

//! `/proc/PID/timers`: the POSIX timers (`timer_create`) of a process.
//!
//! Kernel format (`show_timer` in `fs/proc/base.c`), four lines per timer:
//!
//! ```text
//! ID: 0
//! signal: 36/0000deadbeefcafe
//! notify: signal/pid.3598
//! ClockID: 1
//! ```
//!
//! * `signal` is `si_signo/sival_ptr`, the pointer printed with `%px`
//!   (raw hex, no `0x`);
//! * `notify` is `KIND/TARGET.ID` where `KIND` is `signal`, `none` or
//!   `thread` (the `SIGEV_*` value without `SIGEV_THREAD_ID`), `TARGET` is
//!   `tid` when `SIGEV_THREAD_ID` is set and `pid` otherwise, and `ID` is the
//!   pid/tid in the reader's pid namespace;
//! * `ClockID` is the `clockid_t`, negative for CPU-time clocks
//!   (e.g. -6 for `CLOCK_PROCESS_CPUTIME_ID` of the owner).
//!
//! glibc implements `SIGEV_THREAD` in user space with a helper thread, so
//! such timers appear as `signal/tid.HELPER` with glibc's internal signal.

use crate::error::{dec_i32, dec_u32, hex_u64, split_key, ProcError};

const FILE: &str = "/proc/PID/timers";

/// `SIGEV_SIGNAL`.
pub const SIGEV_SIGNAL: i32 = 0;
/// `SIGEV_NONE`.
pub const SIGEV_NONE: i32 = 1;
/// `SIGEV_THREAD`.
pub const SIGEV_THREAD: i32 = 2;
/// `SIGEV_THREAD_ID`.
pub const SIGEV_THREAD_ID: i32 = 4;

/// The notification kind printed before `/` on the `notify:` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimerNotify {
    /// `signal`: `SIGEV_SIGNAL`.
    Signal,
    /// `none`: `SIGEV_NONE`.
    None,
    /// `thread`: `SIGEV_THREAD` as seen by the kernel.
    Thread,
    /// Anything else, verbatim (future kernels; `(null)` for bad indices).
    Other(String),
}

impl TimerNotify {
    fn from_raw(s: &str) -> Self {
        match s {
            "signal" => TimerNotify::Signal,
            "none" => TimerNotify::None,
            "thread" => TimerNotify::Thread,
            other => TimerNotify::Other(other.to_string()),
        }
    }

    /// The kind as printed by the kernel.
    pub fn as_str(&self) -> &str {
        match self {
            TimerNotify::Signal => "signal",
            TimerNotify::None => "none",
            TimerNotify::Thread => "thread",
            TimerNotify::Other(s) => s,
        }
    }
}

/// One POSIX timer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PosixTimerInfo {
    /// Timer id (`timer_t` value seen by the process).
    pub id: i32,
    /// Signal number (`sigev_signo`; 0 for `SIGEV_NONE`).
    pub signo: i32,
    /// `sigev_value` (the `sival_ptr` bits).
    pub sigev_value: u64,
    /// Notification kind.
    pub notify: TimerNotify,
    /// True if `SIGEV_THREAD_ID` is set (`tid` target rather than `pid`).
    pub notify_thread_id: bool,
    /// The pid or tid notified (see [`Self::notify_thread_id`]).
    pub notify_tid: u32,
    /// `clockid_t` the timer was created on.
    pub clock_id: i32,
}

impl PosixTimerInfo {
    /// The `sigev_notify` value to pass to `timer_create` on restore, or
    /// `None` if the kind is unknown.
    pub fn sigev_notify(&self) -> Option<i32> {
        let base = match self.notify {
            TimerNotify::Signal => SIGEV_SIGNAL,
            TimerNotify::None => SIGEV_NONE,
            TimerNotify::Thread => SIGEV_THREAD,
            TimerNotify::Other(_) => return None,
        };
        Some(if self.notify_thread_id {
            base | SIGEV_THREAD_ID
        } else {
            base
        })
    }
}

/// Parses the fields of one timer; `at` is the 1-based line of `ID:`.
fn parse_one(lines: &[&str], at: usize) -> Result<PosixTimerInfo, ProcError> {
    let expect = |off: usize, key: &str| -> Result<&str, ProcError> {
        let line = lines.get(off).copied().unwrap_or("");
        let bad = |r: String| ProcError::bad_line(FILE, at + off, line, r);
        match split_key(line) {
            Some((k, v)) if k == key => Ok(v),
            _ if off >= lines.len() => Err(bad(format!("truncated timer, expected {key:?}"))),
            _ => Err(bad(format!("expected {key:?}"))),
        }
    };
    let bad = |off: usize, r: &str| {
        ProcError::bad_line(FILE, at + off, lines.get(off).copied().unwrap_or(""), r)
    };

    let id = dec_i32(expect(0, "ID")?).ok_or_else(|| bad(0, "bad timer id"))?;

    let (signo, value) = expect(1, "signal")?
        .split_once('/')
        .ok_or_else(|| bad(1, "signal must be SIGNO/VALUE"))?;
    let signo = dec_i32(signo).ok_or_else(|| bad(1, "bad signal number"))?;
    let sigev_value = hex_u64(value).ok_or_else(|| bad(1, "bad sigev value"))?;

    let (kind, target) = expect(2, "notify")?
        .split_once('/')
        .ok_or_else(|| bad(2, "notify must be KIND/TARGET.ID"))?;
    let (target, tid) = target
        .split_once('.')
        .ok_or_else(|| bad(2, "notify must be KIND/TARGET.ID"))?;
    let notify_thread_id = match target {
        "tid" => true,
        "pid" => false,
        _ => return Err(bad(2, "notify target must be pid or tid")),
    };
    let notify_tid = dec_u32(tid).ok_or_else(|| bad(2, "bad notify id"))?;

    let clock_id = dec_i32(expect(3, "ClockID")?).ok_or_else(|| bad(3, "bad clock id"))?;

    Ok(PosixTimerInfo {
        id,
        signo,
        sigev_value,
        notify: TimerNotify::from_raw(kind),
        notify_thread_id,
        notify_tid,
        clock_id,
    })
}

/// Parses `/proc/PID/timers`, returning timers in file order (the kernel
/// lists the most recently created first).
pub fn parse_timers(text: &str) -> Result<Vec<PosixTimerInfo>, ProcError> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim().is_empty() {
            i += 1;
            continue;
        }
        let end = (i + 4).min(lines.len());
        out.push(parse_one(&lines[i..end], i + 1)?);
        i += 4;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        let t = "ID: 5\nsignal: 14/0000000000000000\nnotify: thread/pid.77\nClockID: 0\n\
ID: 6\nsignal: 14/0000000000000000\nnotify: bogus/pid.77\nClockID: 0\n";
        let v = parse_timers(t).unwrap();
        assert_eq!(v[0].notify, TimerNotify::Thread);
        assert_eq!(v[0].sigev_notify(), Some(SIGEV_THREAD));
        assert_eq!(v[1].notify, TimerNotify::Other("bogus".into()));
        assert_eq!(v[1].notify.as_str(), "bogus");
        assert_eq!(v[1].sigev_notify(), None);
        assert!(parse_timers("").unwrap().is_empty());
    }

    #[test]
    fn malformed() {
        let good = [
            "ID: 0",
            "signal: 36/0000deadbeefcafe",
            "notify: signal/pid.3598",
            "ClockID: 1",
        ];
        let mutations: [(usize, &str); 10] = [
            (0, "ID: x"),
            (0, "Id: 0"),
            (1, "signal: 36"),
            (1, "signal: x/0"),
            (1, "signal: 36/zz"),
            (2, "notify: signal"),
            (2, "notify: signal/pid"),
            (2, "notify: signal/gid.1"),
            (2, "notify: signal/pid.-1"),
            (3, "ClockID: "),
        ];
        for (idx, repl) in mutations {
            let mut l = good;
            l[idx] = repl;
            let text = format!("{}\n{}\n", good.join("\n"), l.join("\n"));
            let e = parse_timers(&text).unwrap_err();
            assert_eq!((e.file(), e.line()), (FILE, Some(5 + idx)), "{repl}");
        }
        let e = parse_timers("ID: 0\nsignal: 1/0\n").unwrap_err();
        assert_eq!(e.line(), Some(3));
    }
}

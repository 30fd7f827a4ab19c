//! `/proc/PID/stat` and `/proc/PID/task/TID/stat`.
//!
//! Kernel format (`do_task_stat` in `fs/proc/array.c`): one line,
//! `pid (comm) state ppid ...`, 52 space-separated fields in total (see
//! `proc_pid_stat(5)`). `comm` is printed raw and may contain spaces and
//! parentheses, so it is delimited by the first `(` and the **last** `)`.
//! Fields after `comm` are parsed by position; extra trailing fields from
//! future kernels are ignored.

use crate::error::{dec_i32, dec_i64, dec_u32, dec_u64, ProcError};

const FILE: &str = "/proc/PID/stat";

/// Number of fields after `comm` that must be present (fields 3..=52).
const FIELDS_AFTER_COMM: usize = 50;

/// Parsed `/proc/PID/stat`. Field numbers refer to `proc_pid_stat(5)`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Stat {
    /// (1) Thread id.
    pub pid: u32,
    /// (2) Command name, without the parentheses.
    pub comm: String,
    /// (3) State character.
    pub state: char,
    /// (4) Parent pid.
    pub ppid: u32,
    /// (5) Process group id.
    pub pgrp: u32,
    /// (6) Session id.
    pub session: u32,
    /// (7) Controlling terminal device number.
    pub tty_nr: u32,
    /// (8) Foreground process group of the terminal, -1 if none.
    pub tpgid: i32,
    /// (9) `PF_*` flags.
    pub flags: u32,
    /// (10) Minor faults.
    pub minflt: u64,
    /// (12) Major faults.
    pub majflt: u64,
    /// (14) User time in clock ticks.
    pub utime: u64,
    /// (15) System time in clock ticks.
    pub stime: u64,
    /// (18) Kernel priority value.
    pub priority: i64,
    /// (19) Nice value.
    pub nice: i64,
    /// (20) Number of threads.
    pub num_threads: u32,
    /// (22) Start time after boot, in clock ticks.
    pub start_time: u64,
    /// (23) Virtual memory size in bytes.
    pub vsize: u64,
    /// (24) Resident set size in pages.
    pub rss: u64,
    /// (25) Soft RSS limit in bytes.
    pub rsslim: u64,
    /// (26) Start of the text segment.
    pub start_code: u64,
    /// (27) End of the text segment.
    pub end_code: u64,
    /// (28) Start (bottom) of the stack.
    pub start_stack: u64,
    /// (38) Signal sent to the parent on exit.
    pub exit_signal: i32,
    /// (39) CPU last run on.
    pub processor: u32,
    /// (40) Real-time priority.
    pub rt_priority: u32,
    /// (41) Scheduling policy.
    pub policy: u32,
    /// (42) Aggregated block I/O delay in ticks.
    pub delayacct_blkio_ticks: u64,
    /// (45) Start of the data segment.
    pub start_data: u64,
    /// (46) End of the data segment.
    pub end_data: u64,
    /// (47) Start of the heap (`brk` base).
    pub start_brk: u64,
    /// (48) Start of argv.
    pub arg_start: u64,
    /// (49) End of argv.
    pub arg_end: u64,
    /// (50) Start of the environment.
    pub env_start: u64,
    /// (51) End of the environment.
    pub env_end: u64,
    /// (52) Exit status as for `waitpid`.
    pub exit_code: i32,
}

/// Parses `/proc/PID/stat` (a single line; a trailing newline is allowed).
pub fn parse_stat(text: &str) -> Result<Stat, ProcError> {
    let line = text.strip_suffix('\n').unwrap_or(text);
    let bad = |reason: String| ProcError::bad_line(FILE, 1, line, reason);
    let open = line
        .find(" (")
        .ok_or_else(|| bad("missing '(' before comm".into()))?;
    let close = line
        .rfind(')')
        .filter(|&c| c > open)
        .ok_or_else(|| bad("missing ')' after comm".into()))?;
    let pid = dec_u32(&line[..open]).ok_or_else(|| bad("bad pid".into()))?;
    let comm = line[open + 2..close].to_string();
    let rest = line[close + 1..]
        .strip_prefix(' ')
        .ok_or_else(|| bad("missing fields after comm".into()))?;
    // A newline may only appear inside comm.
    if rest.contains('\n') {
        return Err(bad("more than one line".into()));
    }
    let f: Vec<&str> = rest.split(' ').collect();
    if f.len() < FIELDS_AFTER_COMM {
        return Err(bad(format!(
            "expected at least {FIELDS_AFTER_COMM} fields after comm, found {}",
            f.len()
        )));
    }
    // `n` is the 1-based field number from proc_pid_stat(5).
    let get = |n: usize| f[n - 3];
    let u64_ = |n: usize| dec_u64(get(n)).ok_or_else(|| bad(format!("bad field {n}")));
    let u32_ = |n: usize| dec_u32(get(n)).ok_or_else(|| bad(format!("bad field {n}")));
    let i64_ = |n: usize| dec_i64(get(n)).ok_or_else(|| bad(format!("bad field {n}")));
    let i32_ = |n: usize| dec_i32(get(n)).ok_or_else(|| bad(format!("bad field {n}")));

    let mut sc = get(3).chars();
    let state = match (sc.next(), sc.next()) {
        (Some(c), None) if c.is_ascii_alphabetic() => c,
        _ => return Err(bad("bad state (field 3)".into())),
    };
    // tty_nr is printed with %d but is a dev_t; keep the bit pattern.
    let tty_nr = i32_(7)? as u32;
    Ok(Stat {
        pid,
        comm,
        state,
        ppid: u32_(4)?,
        pgrp: u32_(5)?,
        session: u32_(6)?,
        tty_nr,
        tpgid: i32_(8)?,
        flags: u32_(9)?,
        minflt: u64_(10)?,
        majflt: u64_(12)?,
        utime: u64_(14)?,
        stime: u64_(15)?,
        priority: i64_(18)?,
        nice: i64_(19)?,
        num_threads: u32_(20)?,
        start_time: u64_(22)?,
        vsize: u64_(23)?,
        rss: u64_(24)?,
        rsslim: u64_(25)?,
        start_code: u64_(26)?,
        end_code: u64_(27)?,
        start_stack: u64_(28)?,
        exit_signal: i32_(38)?,
        processor: u32_(39)?,
        rt_priority: u32_(40)?,
        policy: u32_(41)?,
        delayacct_blkio_ticks: u64_(42)?,
        start_data: u64_(45)?,
        end_data: u64_(46)?,
        start_brk: u64_(47)?,
        arg_start: u64_(48)?,
        arg_end: u64_(49)?,
        env_start: u64_(50)?,
        env_end: u64_(51)?,
        exit_code: i32_(52)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TAIL: &str = "R 3568 3568 3141 0 -1 4194304 100 0 0 0 0 0 0 0 20 0 1 0 55491 \
3133440 393 18446744073709551615 94516378095616 94516378115497 140732702587360 0 0 0 0 0 \
0 0 0 0 17 1 0 0 0 0 0 94516378131504 94516378133120 94516725280768 140732702591516 \
140732702591536 140732702591536 140732702593003 0\n";

    #[test]
    fn plain() {
        let s = parse_stat(&format!("3572 (cat) {TAIL}")).unwrap();
        assert_eq!(s.pid, 3572);
        assert_eq!(s.comm, "cat");
        assert_eq!(s.state, 'R');
        assert_eq!((s.ppid, s.pgrp, s.session), (3568, 3568, 3141));
        assert_eq!((s.tty_nr, s.tpgid), (0, -1));
        assert_eq!(s.flags, 4194304);
        assert_eq!(s.minflt, 100);
        assert_eq!((s.priority, s.nice), (20, 0));
        assert_eq!(s.num_threads, 1);
        assert_eq!(s.start_time, 55491);
        assert_eq!(s.vsize, 3133440);
        assert_eq!(s.rss, 393);
        assert_eq!(s.rsslim, u64::MAX);
        assert_eq!(s.start_code, 94516378095616);
        assert_eq!(s.end_code, 94516378115497);
        assert_eq!(s.start_stack, 140732702587360);
        assert_eq!((s.exit_signal, s.processor), (17, 1));
        assert_eq!(s.start_data, 94516378131504);
        assert_eq!(s.end_data, 94516378133120);
        assert_eq!(s.start_brk, 94516725280768);
        assert_eq!((s.arg_start, s.arg_end), (140732702591516, 140732702591536));
        assert_eq!((s.env_start, s.env_end), (140732702591536, 140732702593003));
        assert_eq!(s.exit_code, 0);
    }

    #[test]
    fn nasty_comm() {
        for comm in ["a) b (c", ") ) )", "(", "", "x y z", "R 1 2)", "new\nline"] {
            let s = parse_stat(&format!("7 ({comm}) {TAIL}")).unwrap();
            assert_eq!(s.comm, comm);
            assert_eq!(s.pid, 7);
            assert_eq!(s.ppid, 3568);
        }
    }

    #[test]
    fn extra_trailing_fields_ignored() {
        let t = format!("7 (x) {} 99 100\n", TAIL.trim_end());
        assert_eq!(parse_stat(&t).unwrap().exit_code, 0);
    }

    #[test]
    fn malformed() {
        let short = "7 (x) R 1 2 3\n".to_string();
        let cases = [
            String::new(),
            "garbage".into(),
            format!("7 x) {TAIL}"),
            format!("7 (x {TAIL}"),
            format!("x (x) {TAIL}"),
            format!("7 (x){TAIL}"),
            format!("7 (x) {}", TAIL.replacen("R", "RR", 1)),
            format!("7 (x) {}", TAIL.replacen("3568", "-3568", 1)),
            format!("7 (x) {}", TAIL.replacen("4194304", "0x10", 1)),
            format!(
                "7 (x) {}",
                TAIL.replacen("  ", " ", 1).replacen(" 0 ", "  ", 1)
            ),
            short,
        ];
        for c in cases {
            let e = parse_stat(&c).unwrap_err();
            assert_eq!((e.file(), e.line()), (FILE, Some(1)), "{c:?}");
        }
    }
}

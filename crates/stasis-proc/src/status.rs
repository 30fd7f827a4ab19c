//! `/proc/PID/status` and `/proc/PID/task/TID/status`.
//!
//! Kernel format (`proc_pid_status` in `fs/proc/array.c`): one `Key:\tvalue`
//! per line. Notable details:
//!
//! * `Name` is the comm with only `\n` and `\` escaped (as `\n`, `\\`);
//!   exactly one tab follows the colon and the name may end in spaces, so it
//!   is not trimmed.
//! * `Umask` is octal; `Sig*` and `Cap*` are 16 hex digits; `Uid`/`Gid` hold
//!   real, effective, saved and filesystem ids separated by tabs.
//! * `NStgid`, `NSpid`, `NSpgid`, `NSsid` list the id in each pid namespace
//!   from the reader's namespace down to the task's own.
//! * `x86_Thread_features` (6.6+, shadow-stack kernels) lists feature words
//!   such as `shstk wrss`.
//!
//! Fields that older kernels or configurations omit get defaults (`CapAmb`
//! included, 0); the identity, signal and other capability fields are
//! required.

use crate::error::{dec_u32, dec_u64, hex_u64, oct_u32, ProcError};

const FILE: &str = "/proc/PID/status";

/// Parsed `/proc/PID/status`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Status {
    /// `Name` (comm), unescaped.
    pub name: String,
    /// `Umask` (absent before 4.7).
    pub umask: Option<u32>,
    /// First character of `State`, e.g. `'S'`.
    pub state: char,
    /// `Tgid`.
    pub tgid: u32,
    /// `Ngid` (NUMA group id; 0 if absent).
    pub ngid: u32,
    /// `Pid` (thread id).
    pub pid: u32,
    /// `PPid`.
    pub ppid: u32,
    /// `TracerPid`.
    pub tracer_pid: u32,
    /// `Uid`: real, effective, saved, filesystem.
    pub uid: [u32; 4],
    /// `Gid`: real, effective, saved, filesystem.
    pub gid: [u32; 4],
    /// `FDSize` (0 if absent).
    pub fd_size: u32,
    /// `Groups` (supplementary groups).
    pub groups: Vec<u32>,
    /// `NStgid`, outermost namespace first.
    pub ns_tgid: Vec<u32>,
    /// `NSpid`, outermost namespace first.
    pub ns_pid: Vec<u32>,
    /// `NSpgid`, outermost namespace first.
    pub ns_pgid: Vec<u32>,
    /// `NSsid`, outermost namespace first.
    pub ns_sid: Vec<u32>,
    /// `Kthread` (6.x+), if printed.
    pub kthread: Option<bool>,
    /// `Threads`.
    pub threads: u32,
    /// `SigQ`: (queued signals, `RLIMIT_SIGPENDING` limit); (0, 0) if absent.
    pub sig_q: (u64, u64),
    /// `SigPnd`: thread-private pending signals.
    pub sig_pnd: u64,
    /// `ShdPnd`: process-shared pending signals.
    pub shd_pnd: u64,
    /// `SigBlk`: blocked mask.
    pub sig_blk: u64,
    /// `SigIgn`: ignored mask.
    pub sig_ign: u64,
    /// `SigCgt`: caught mask.
    pub sig_cgt: u64,
    /// `CapInh`.
    pub cap_inh: u64,
    /// `CapPrm`.
    pub cap_prm: u64,
    /// `CapEff`.
    pub cap_eff: u64,
    /// `CapBnd`.
    pub cap_bnd: u64,
    /// `CapAmb`.
    pub cap_amb: u64,
    /// `NoNewPrivs` (false if absent).
    pub no_new_privs: bool,
    /// `Seccomp` mode: 0 disabled, 1 strict, 2 filter (0 if absent).
    pub seccomp: u32,
    /// `Seccomp_filters` (0 if absent).
    pub seccomp_filters: u32,
    /// `x86_Thread_features`, trimmed (`""` if absent or empty).
    pub x86_thread_features: String,
    /// `x86_Thread_features_locked`, trimmed (`""` if absent or empty).
    pub x86_thread_features_locked: String,
    /// `CoreDumping` (false if absent).
    pub core_dumping: bool,
    /// `Cpus_allowed_list`, verbatim (`""` if absent).
    pub cpus_allowed_list: String,
    /// `VmRSS` in KiB, if printed (absent for kernel threads and zombies).
    pub vm_rss_kb: Option<u64>,
    /// Every line as a raw (key, trimmed value) pair, in file order.
    pub raw: Vec<(String, String)>,
}

impl Status {
    /// Looks up a raw field by key, e.g. `"Speculation_Store_Bypass"`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.raw
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The id of this task in its own (innermost) pid namespace.
    pub fn inner_pid(&self) -> u32 {
        self.ns_pid.last().copied().unwrap_or(self.pid)
    }
}

/// Reverses the kernel's escaping of `\n` and `\\` in comm.
fn unescape_name(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.clone().next() {
            Some('n') => {
                it.next();
                out.push('\n');
            }
            Some('\\') => {
                it.next();
                out.push('\\');
            }
            _ => out.push('\\'),
        }
    }
    out
}

fn id_list(v: &str) -> Option<Vec<u32>> {
    v.split_ascii_whitespace().map(dec_u32).collect()
}

/// Required fields, in the order they are checked.
const REQUIRED: [&str; 18] = [
    "Name",
    "State",
    "Tgid",
    "Pid",
    "PPid",
    "TracerPid",
    "Uid",
    "Gid",
    "Threads",
    "SigPnd",
    "ShdPnd",
    "SigBlk",
    "SigIgn",
    "SigCgt",
    "CapInh",
    "CapPrm",
    "CapEff",
    "CapBnd",
];

/// Parses `/proc/PID/status` or `/proc/PID/task/TID/status`.
pub fn parse_status(text: &str) -> Result<Status, ProcError> {
    let mut st = Status::default();
    let mut seen = [false; REQUIRED.len()];
    for (idx, line) in text.lines().enumerate() {
        if line.is_empty() {
            continue;
        }
        let bad = |reason: &str| ProcError::bad_line(FILE, idx + 1, line, reason);
        let (key, raw_value) = line.split_once(':').ok_or_else(|| bad("missing ':'"))?;
        let v = raw_value.trim();
        if let Some(i) = REQUIRED.iter().position(|r| *r == key) {
            seen[i] = true;
        }
        let dec = || dec_u32(v).ok_or_else(|| bad("bad decimal number"));
        let hex = || hex_u64(v).ok_or_else(|| bad("bad hex mask"));
        let flag = || match v {
            "0" => Ok(false),
            "1" => Ok(true),
            _ => Err(bad("expected 0 or 1")),
        };
        let ids = || -> Result<[u32; 4], ProcError> {
            let l = id_list(v).ok_or_else(|| bad("bad id"))?;
            l.try_into().map_err(|_| bad("expected four ids"))
        };
        let list = || id_list(v).ok_or_else(|| bad("bad id list"));
        match key {
            "Name" => {
                let n = raw_value.strip_prefix('\t').unwrap_or(raw_value);
                st.name = unescape_name(n);
            }
            "Umask" => st.umask = Some(oct_u32(v).ok_or_else(|| bad("bad octal umask"))?),
            "State" => {
                let mut cs = v.chars();
                st.state = cs.next().ok_or_else(|| bad("empty state"))?;
                if !st.state.is_ascii_alphabetic() || cs.next().is_some_and(|c| c != ' ') {
                    return Err(bad("bad state"));
                }
            }
            "Tgid" => st.tgid = dec()?,
            "Ngid" => st.ngid = dec()?,
            "Pid" => st.pid = dec()?,
            "PPid" => st.ppid = dec()?,
            "TracerPid" => st.tracer_pid = dec()?,
            "Uid" => st.uid = ids()?,
            "Gid" => st.gid = ids()?,
            "FDSize" => st.fd_size = dec()?,
            "Groups" => st.groups = list()?,
            "NStgid" => st.ns_tgid = list()?,
            "NSpid" => st.ns_pid = list()?,
            "NSpgid" => st.ns_pgid = list()?,
            "NSsid" => st.ns_sid = list()?,
            "Kthread" => st.kthread = Some(flag()?),
            "Threads" => st.threads = dec()?,
            "SigQ" => {
                let (a, b) = v.split_once('/').ok_or_else(|| bad("SigQ must be N/M"))?;
                let p = |s| dec_u64(s).ok_or_else(|| bad("bad SigQ number"));
                st.sig_q = (p(a)?, p(b)?);
            }
            "SigPnd" => st.sig_pnd = hex()?,
            "ShdPnd" => st.shd_pnd = hex()?,
            "SigBlk" => st.sig_blk = hex()?,
            "SigIgn" => st.sig_ign = hex()?,
            "SigCgt" => st.sig_cgt = hex()?,
            "CapInh" => st.cap_inh = hex()?,
            "CapPrm" => st.cap_prm = hex()?,
            "CapEff" => st.cap_eff = hex()?,
            "CapBnd" => st.cap_bnd = hex()?,
            "CapAmb" => st.cap_amb = hex()?,
            "NoNewPrivs" => st.no_new_privs = flag()?,
            "Seccomp" => st.seccomp = dec()?,
            "Seccomp_filters" => st.seccomp_filters = dec()?,
            "x86_Thread_features" => st.x86_thread_features = v.to_string(),
            "x86_Thread_features_locked" => st.x86_thread_features_locked = v.to_string(),
            "CoreDumping" => st.core_dumping = flag()?,
            "Cpus_allowed_list" => st.cpus_allowed_list = v.to_string(),
            "VmRSS" => {
                let n = v.strip_suffix(" kB").ok_or_else(|| bad("expected kB"))?;
                st.vm_rss_kb = Some(dec_u64(n.trim()).ok_or_else(|| bad("bad size"))?);
            }
            _ => {}
        }
        st.raw.push((key.to_string(), v.to_string()));
    }
    if let Some(i) = seen.iter().position(|s| !s) {
        return Err(ProcError::Missing {
            file: FILE,
            field: REQUIRED[i],
        });
    }
    Ok(st)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "Name:\tx\nState:\tS (sleeping)\nTgid:\t1\nPid:\t1\nPPid:\t0\n\
TracerPid:\t0\nUid:\t1\t2\t3\t4\nGid:\t5\t6\t7\t8\nThreads:\t1\nSigPnd:\t0\nShdPnd:\t0\n\
SigBlk:\t0\nSigIgn:\t0\nSigCgt:\t0\nCapInh:\t0\nCapPrm:\t0\nCapEff:\t0\nCapBnd:\t0\n";

    #[test]
    fn minimal_defaults() {
        let s = parse_status(MINIMAL).unwrap();
        assert_eq!(s.name, "x");
        assert_eq!(s.state, 'S');
        assert_eq!(s.uid, [1, 2, 3, 4]);
        assert_eq!(s.gid, [5, 6, 7, 8]);
        assert_eq!(s.umask, None);
        assert!(!s.no_new_privs && !s.core_dumping);
        assert_eq!((s.seccomp, s.seccomp_filters), (0, 0));
        assert_eq!(s.x86_thread_features, "");
        assert!(s.groups.is_empty() && s.ns_pid.is_empty());
        assert_eq!(s.inner_pid(), 1);
    }

    #[test]
    fn name_escapes_and_trailing_space() {
        let t = MINIMAL.replace("Name:\tx\n", "Name:\ta\\nb\\\\c: d \n");
        let s = parse_status(&t).unwrap();
        assert_eq!(s.name, "a\nb\\c: d ");
    }

    #[test]
    fn optional_fields() {
        let t = format!(
            "{MINIMAL}Umask:\t0077\nGroups:\t4 24 27 \nNStgid:\t100\t1\nNSpid:\t101\t2\n\
NoNewPrivs:\t1\nSeccomp:\t2\nSeccomp_filters:\t3\nCoreDumping:\t1\n\
x86_Thread_features:\tshstk wrss \nx86_Thread_features_locked:\tshstk \n\
SigQ:\t4/96365\nKthread:\t0\nVmRSS:\t    1736 kB\n"
        );
        let s = parse_status(&t).unwrap();
        assert_eq!(s.umask, Some(0o77));
        assert_eq!(s.groups, [4, 24, 27]);
        assert_eq!(s.ns_tgid, [100, 1]);
        assert_eq!(s.inner_pid(), 2);
        assert!(s.no_new_privs && s.core_dumping);
        assert_eq!((s.seccomp, s.seccomp_filters), (2, 3));
        assert_eq!(s.x86_thread_features, "shstk wrss");
        assert_eq!(s.x86_thread_features_locked, "shstk");
        assert_eq!(s.sig_q, (4, 96365));
        assert_eq!(s.kthread, Some(false));
        assert_eq!(s.vm_rss_kb, Some(1736));
        assert_eq!(s.get("Seccomp"), Some("2"));
    }

    #[test]
    fn missing_and_malformed() {
        let t = MINIMAL.replace("SigBlk:\t0\n", "");
        assert_eq!(
            parse_status(&t).unwrap_err(),
            ProcError::Missing {
                file: FILE,
                field: "SigBlk"
            }
        );
        assert!(matches!(
            parse_status(""),
            Err(ProcError::Missing { field: "Name", .. })
        ));
        for (from, to) in [
            ("Uid:\t1\t2\t3\t4", "Uid:\t1\t2\t3"),
            ("Uid:\t1\t2\t3\t4", "Uid:\t1\t2\t3\tx"),
            ("Tgid:\t1", "Tgid:\t-1"),
            ("SigBlk:\t0", "SigBlk:\tzz"),
            ("State:\tS (sleeping)", "State:\t"),
            ("State:\tS (sleeping)", "State:\tSS"),
            ("Pid:\t1", "Pid 1"),
        ] {
            let t = MINIMAL.replace(from, to);
            let e = parse_status(&t).unwrap_err();
            assert_eq!(e.file(), FILE);
            assert!(e.line().is_some(), "{to}");
        }
    }
}

//! Generic process state read from /proc, compared before a dump and after
//! a restore: maps, the fd table, credentials and signal masks, threads,
//! cmdline/environ/exe/cwd, rlimits, process group and session.

use std::collections::{BTreeMap, HashSet};
use std::fs;

/// Status fields compared before/after.
const STATUS_FIELDS: &[&str] = &[
    "Umask",
    "Uid",
    "Gid",
    "Groups",
    "CapInh",
    "CapPrm",
    "CapEff",
    "CapBnd",
    "CapAmb",
    "SigBlk",
    "SigIgn",
    "SigCgt",
    "Threads",
    "NoNewPrivs",
    "Seccomp",
];

/// One fd as seen in /proc.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FdInfo {
    /// readlink of /proc/PID/fd/N, with `type:[inode]` normalised to `type:[*]`.
    pub target: String,
    pub flags: String,
    pub pos: String,
}

/// One thread: tid, comm and blocked-signal mask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskInfo {
    pub tid: i32,
    pub comm: String,
    pub sigblk: String,
}

/// Generic process state compared before dump / after restore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub pid: i32,
    /// Normalised /proc/PID/maps lines: `start-end perms offset [dev inode] path`
    /// (dev/inode only for real files, which must be the same file after restore).
    pub maps: Vec<String>,
    pub fds: BTreeMap<i32, FdInfo>,
    pub status: BTreeMap<String, String>,
    pub tasks: Vec<TaskInfo>,
    pub cmdline: Vec<u8>,
    pub environ: Vec<u8>,
    pub exe: String,
    pub cwd: String,
    /// /proc/PID/limits text.
    pub limits: String,
    /// Process group and session ids (from /proc/PID/stat).
    pub pgid: i32,
    pub sid: i32,
}

fn normalize_map_line(line: &str) -> String {
    // start-end perms offset dev inode [path]
    let mut it = line.splitn(6, ' ');
    let range = it.next().unwrap_or("");
    let perms = it.next().unwrap_or("");
    let offset = it.next().unwrap_or("");
    let dev = it.next().unwrap_or("");
    let inode = it.next().unwrap_or("");
    let path = it.next().unwrap_or("").trim_start();
    // An io_uring's rings come back in memory of the process's own (the
    // kernel refuses to place its mapping at an address; files/uring.rs).
    if path == "anon_inode:[io_uring]" || path.starts_with("/memfd:io_uring:") {
        return format!("{range} {perms} io_uring ring memory");
    }
    // Real files keep their identity; anonymous, shmem and deleted objects
    // are recreated by a restore and get new dev/inode numbers.
    let real_file = path.starts_with('/') && !path.ends_with(" (deleted)");
    if real_file {
        format!("{range} {perms} {offset} {dev} {inode} {path}")
    } else {
        format!("{range} {perms} {offset} {path}")
    }
}

fn normalize_fd_target(t: &str) -> String {
    // "pipe:[1234]", "socket:[1234]" -> "pipe:[*]"; "anon_inode:[eventfd]" stays.
    // A pty made by the tree gets the number the kernel picks at restore.
    if let Some(n) = t.strip_prefix("/dev/pts/") {
        if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) {
            return "/dev/pts/*".into();
        }
    }
    // An O_TMPFILE file's name is its inode number: "/dir/#1234 (deleted)"
    // -> "/dir/#* (deleted)".
    if let Some(stem) = t.strip_suffix(" (deleted)") {
        if let Some((dir, name)) = stem.rsplit_once("/#") {
            if !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit()) {
                return format!("{dir}/#* (deleted)");
            }
        }
    }
    if let (Some(open), true) = (t.find(":["), t.ends_with(']')) {
        let inner = &t[open + 2..t.len() - 1];
        if !inner.is_empty() && inner.bytes().all(|b| b.is_ascii_digit()) {
            return format!("{}:[*]", &t[..open]);
        }
    }
    t.to_string()
}

fn read_str(p: String) -> Result<String, String> {
    fs::read_to_string(&p).map_err(|e| format!("{p}: {e}"))
}

fn read_link_str(p: String) -> Result<String, String> {
    fs::read_link(&p)
        .map(|t| t.to_string_lossy().into_owned())
        .map_err(|e| format!("{p}: {e}"))
}

pub(crate) fn status_field(status: &str, key: &str) -> Option<String> {
    status.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k == key).then(|| v.split_whitespace().collect::<Vec<_>>().join(" "))
    })
}

impl Snapshot {
    /// Reads the state of `pid` from /proc.
    pub fn take(pid: i32) -> Result<Snapshot, String> {
        let base = format!("/proc/{pid}");
        let maps = read_str(format!("{base}/maps"))?
            .lines()
            .map(normalize_map_line)
            .collect();

        let mut fds = BTreeMap::new();
        let rd = fs::read_dir(format!("{base}/fd")).map_err(|e| format!("{base}/fd: {e}"))?;
        for ent in rd {
            let ent = ent.map_err(|e| format!("{base}/fd: {e}"))?;
            let Ok(fd) = ent.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let target = normalize_fd_target(&read_link_str(format!("{base}/fd/{fd}"))?);
            let info = read_str(format!("{base}/fdinfo/{fd}"))?;
            let field = |k: &str| status_field(&info, k).unwrap_or_default();
            fds.insert(
                fd,
                FdInfo {
                    target,
                    flags: field("flags"),
                    pos: field("pos"),
                },
            );
        }

        let st = read_str(format!("{base}/status"))?;
        let mut status = BTreeMap::new();
        for k in STATUS_FIELDS {
            status.insert(k.to_string(), status_field(&st, k).unwrap_or_default());
        }

        let mut tids: Vec<i32> = fs::read_dir(format!("{base}/task"))
            .map_err(|e| format!("{base}/task: {e}"))?
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect();
        tids.sort_unstable();
        let mut tasks = Vec::new();
        for tid in tids {
            let tb = format!("{base}/task/{tid}");
            let comm = read_str(format!("{tb}/comm"))?.trim_end().to_string();
            let tst = read_str(format!("{tb}/status"))?;
            tasks.push(TaskInfo {
                tid,
                comm,
                sigblk: status_field(&tst, "SigBlk").unwrap_or_default(),
            });
        }

        let stat = read_str(format!("{base}/stat"))?;
        let after = stat.rfind(')').map(|i| &stat[i + 1..]).ok_or("bad stat")?;
        let f: Vec<&str> = after.split_whitespace().collect();
        // after ')' : state ppid pgrp session ...
        let pgid = f.get(2).and_then(|s| s.parse().ok()).unwrap_or(-1);
        let sid = f.get(3).and_then(|s| s.parse().ok()).unwrap_or(-1);

        Ok(Snapshot {
            pid,
            maps,
            fds,
            status,
            tasks,
            cmdline: fs::read(format!("{base}/cmdline")).map_err(|e| e.to_string())?,
            environ: fs::read(format!("{base}/environ")).map_err(|e| e.to_string())?,
            exe: read_link_str(format!("{base}/exe"))?,
            cwd: read_link_str(format!("{base}/cwd"))?,
            limits: read_str(format!("{base}/limits"))?,
            pgid,
            sid,
        })
    }

    /// Human-readable differences between `self` (before) and `other`
    /// (after); empty when they match.
    pub fn diff(&self, other: &Snapshot) -> Vec<String> {
        let mut d = Vec::new();
        if self.pid != other.pid {
            d.push(format!("pid: {} -> {}", self.pid, other.pid));
        }
        if self.maps != other.maps {
            let after: HashSet<&String> = other.maps.iter().collect();
            let before: HashSet<&String> = self.maps.iter().collect();
            for m in &self.maps {
                if !after.contains(m) {
                    d.push(format!("maps: lost     {m}"));
                }
            }
            for m in &other.maps {
                if !before.contains(m) {
                    d.push(format!("maps: new      {m}"));
                }
            }
            if d.iter().all(|l| !l.starts_with("maps:")) {
                d.push("maps: same lines, different order".into());
            }
        }
        for (fd, a) in &self.fds {
            match other.fds.get(fd) {
                None => d.push(format!("fd {fd}: missing after restore ({})", a.target)),
                Some(b) if a != b => d.push(format!("fd {fd}: {a:?} -> {b:?}")),
                _ => {}
            }
        }
        for (fd, b) in &other.fds {
            if !self.fds.contains_key(fd) {
                d.push(format!("fd {fd}: new after restore ({})", b.target));
            }
        }
        for (k, a) in &self.status {
            let b = other.status.get(k).cloned().unwrap_or_default();
            if *a != b {
                d.push(format!("status {k}: {a:?} -> {b:?}"));
            }
        }
        if self.tasks != other.tasks {
            d.push(format!("tasks: {:?} -> {:?}", self.tasks, other.tasks));
        }
        let lossy = |b: &[u8]| String::from_utf8_lossy(b).replace('\0', " ");
        if self.cmdline != other.cmdline {
            d.push(format!(
                "cmdline: {:?} -> {:?}",
                lossy(&self.cmdline),
                lossy(&other.cmdline)
            ));
        }
        if self.environ != other.environ {
            d.push(format!(
                "environ: {:?} -> {:?}",
                lossy(&self.environ),
                lossy(&other.environ)
            ));
        }
        if self.exe != other.exe {
            d.push(format!("exe: {:?} -> {:?}", self.exe, other.exe));
        }
        if self.cwd != other.cwd {
            d.push(format!("cwd: {:?} -> {:?}", self.cwd, other.cwd));
        }
        if self.limits != other.limits {
            d.push(format!(
                "limits:\n{}\n->\n{}",
                self.limits.trim_end(),
                other.limits.trim_end()
            ));
        }
        if (self.pgid, self.sid) != (other.pgid, other.sid) {
            d.push(format!(
                "pgid/sid: {}/{} -> {}/{}",
                self.pgid, self.sid, other.pgid, other.sid
            ));
        }
        d
    }
}

impl Snapshot {
    /// Forgets the offsets of `fds`, for fds a running program keeps writing
    /// to (its log on stdout/stderr).
    pub fn without_pos(mut self, fds: &[i32]) -> Snapshot {
        for fd in fds {
            if let Some(f) = self.fds.get_mut(fd) {
                f.pos.clear();
            }
        }
        self
    }

    /// Only what identifies the process and its credentials: pid, cmdline,
    /// environ, exe, cwd, uids/gids/groups/capabilities, pgid/sid. For busy
    /// real programs whose maps and fds change on their own.
    pub fn identity(&self) -> Snapshot {
        const KEEP: &[&str] = &[
            "Uid", "Gid", "Groups", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb",
        ];
        Snapshot {
            maps: Vec::new(),
            fds: BTreeMap::new(),
            status: self
                .status
                .iter()
                .filter(|(k, _)| KEEP.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            tasks: Vec::new(),
            limits: String::new(),
            ..self.clone()
        }
    }
}

/// State that is compared before a dump and after a restore: one process
/// ([`Snapshot`]) or a whole tree ([`super::TreeSnapshot`]).
pub trait StateDiff {
    /// Human-readable differences from `self` (before) to `after`.
    fn state_diff(&self, after: &Self) -> Vec<String>;
}

impl StateDiff for Snapshot {
    fn state_diff(&self, after: &Self) -> Vec<String> {
        self.diff(after)
    }
}

/// Panics with the differences when `after` does not match `before`.
pub fn assert_same<S: StateDiff>(before: &S, after: &S, what: &str) {
    let d = before.state_diff(after);
    assert!(
        d.is_empty(),
        "{what}: process state differs:\n  {}",
        d.join("\n  ")
    );
}

/// Sum of voluntary and involuntary context switches over all threads; a
/// cheap, generic "is it making progress" counter.
pub fn ctxt_switches(pid: i32) -> u64 {
    let Ok(rd) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    let mut sum = 0;
    for e in rd.flatten() {
        let p = e.path().join("status");
        if let Ok(s) = fs::read_to_string(p) {
            for k in ["voluntary_ctxt_switches", "nonvoluntary_ctxt_switches"] {
                sum += status_field(&s, k)
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
    }
    sum
}

/// Pids of processes whose NUL-separated cmdline contains `needle`.
pub fn pids_with_cmdline(needle: &str) -> Vec<i32> {
    let mut v = Vec::new();
    if let Ok(rd) = fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            if let Ok(c) = fs::read(format!("/proc/{pid}/cmdline")) {
                if String::from_utf8_lossy(&c)
                    .replace('\0', " ")
                    .contains(needle)
                {
                    v.push(pid);
                }
            }
        }
    }
    v.sort_unstable();
    v
}

//! `/proc/PID/fdinfo/FD`: per-descriptor position, flags and type details.
//!
//! Every file starts with (`seq_show` in `fs/proc/fd.c`):
//!
//! ```text
//! pos:    0
//! flags:  02004002        <- octal, includes O_CLOEXEC from the fd table
//! mnt_id: 17
//! ino:    1038            <- since 5.14
//! ```
//!
//! followed by lines specific to the file type. This module decodes the ones
//! a checkpointer needs and keeps every line as a raw `(key, value)` pair
//! (key = text before the first `:`, value trimmed):
//!
//! * eventfd (`fs/eventfd.c`): `eventfd-count: %16llx` (hex),
//!   `eventfd-id: %d`, `eventfd-semaphore: %d`;
//! * epoll (`fs/eventpoll.c`), one per watched fd:
//!   `tfd: %8d events: %8x data: %16llx  pos:%lli ino:%lx sdev:%x`;
//! * inotify (`fs/notify/fdinfo.c`), one per watch:
//!   `inotify wd:%x ino:%lx sdev:%x mask:%x ignored_mask:%x
//!   [fhandle-bytes:%x fhandle-type:%x f_handle:HEX]`;
//! * timerfd (`fs/timerfd.c`): `clockid: %d`, `ticks: %llu`,
//!   `settime flags: 0%o`, `it_value: (%llu, %llu)`,
//!   `it_interval: (%llu, %llu)`;
//! * signalfd (`fs/signalfd.c`): `sigmask:\t%016llx`.
//!
//! Other lines (fanotify, pidfd, file locks, ...) are only kept raw.

use crate::error::{dec_i32, dec_u32, dec_u64, hex_u32, hex_u64, oct_u32, ProcError};

const FILE: &str = "/proc/PID/fdinfo/FD";

/// eventfd state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventfdInfo {
    /// Current counter (`eventfd-count`, printed in hex).
    pub count: u64,
    /// `eventfd-id`, if printed.
    pub id: Option<u32>,
    /// `eventfd-semaphore`, if printed.
    pub semaphore: Option<bool>,
}

/// One fd watched by an epoll instance (a `tfd:` line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpollTarget {
    /// Target fd number in the owner's table at `EPOLL_CTL_ADD` time.
    pub tfd: i32,
    /// Event mask (`EPOLLIN`, `EPOLLET`, ...).
    pub events: u32,
    /// User data.
    pub data: u64,
    /// File position of the target.
    pub pos: u64,
    /// Target inode number.
    pub ino: u64,
    /// Target superblock device, kernel encoding (`MAJOR << 20 | MINOR`).
    pub sdev: u32,
}

/// One inotify watch (an `inotify` line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InotifyWatch {
    /// Watch descriptor.
    pub wd: i32,
    /// Watched inode number.
    pub ino: u64,
    /// Watched superblock device, kernel encoding (`MAJOR << 20 | MINOR`).
    pub sdev: u32,
    /// Event mask (`IN_*`).
    pub mask: u32,
    /// Ignored mask.
    pub ignored_mask: u32,
    /// `fhandle-type`, when a file handle was printed.
    pub fhandle_type: Option<i32>,
    /// The file handle bytes (`f_handle`), empty if not printed.
    pub fhandle: Vec<u8>,
}

/// timerfd state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerfdInfo {
    /// Clock id.
    pub clockid: i32,
    /// Expirations not yet read.
    pub ticks: u64,
    /// `timerfd_settime` flags (printed in octal).
    pub settime_flags: u32,
    /// Time to next expiry, (seconds, nanoseconds).
    pub it_value: (u64, u64),
    /// Interval, (seconds, nanoseconds).
    pub it_interval: (u64, u64),
}

/// Parsed `/proc/PID/fdinfo/FD`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FdInfo {
    /// File position (`pos`).
    pub pos: u64,
    /// Open flags (`flags`, printed in octal).
    pub flags: u32,
    /// Mount id (`mnt_id`).
    pub mnt_id: u32,
    /// Inode number (`ino`; 0 before 5.14).
    pub ino: u64,
    /// Every line as a raw (key, trimmed value) pair, in file order.
    pub lines: Vec<(String, String)>,
    /// eventfd details, if this is an eventfd.
    pub eventfd: Option<EventfdInfo>,
    /// epoll targets, in file order (empty if not epoll or nothing watched).
    pub epoll: Vec<EpollTarget>,
    /// inotify watches, in file order.
    pub inotify: Vec<InotifyWatch>,
    /// timerfd details, if this is a timerfd.
    pub timerfd: Option<TimerfdInfo>,
    /// signalfd mask, if this is a signalfd.
    pub signalfd_sigmask: Option<u64>,
}

impl FdInfo {
    /// The first raw value for `key`, e.g. `get("tfd")`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.lines
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// All raw values for `key`, in file order.
    pub fn get_all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.lines
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Splits `a: 1 b:2 c: 3` into `[(a,1),(b,2),(c,3)]`.
fn kv_tokens(s: &str) -> Option<Vec<(&str, &str)>> {
    let mut out = Vec::new();
    let mut it = s.split_ascii_whitespace();
    while let Some(tok) = it.next() {
        let (k, v) = tok.split_once(':')?;
        let v = if v.is_empty() { it.next()? } else { v };
        out.push((k, v));
    }
    Some(out)
}

fn find<'a>(kv: &[(&str, &'a str)], key: &str) -> Option<&'a str> {
    kv.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

fn hex_bytes(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
        .collect()
}

fn parse_epoll(v: &str) -> Option<EpollTarget> {
    let line = format!("tfd: {v}");
    let kv = kv_tokens(&line)?;
    Some(EpollTarget {
        tfd: dec_i32(find(&kv, "tfd")?)?,
        events: hex_u32(find(&kv, "events")?)?,
        data: hex_u64(find(&kv, "data")?)?,
        pos: dec_u64(find(&kv, "pos")?)?,
        ino: hex_u64(find(&kv, "ino")?)?,
        sdev: hex_u32(find(&kv, "sdev")?)?,
    })
}

fn parse_inotify(rest: &str) -> Option<InotifyWatch> {
    let kv = kv_tokens(rest)?;
    let fhandle_type = match find(&kv, "fhandle-type") {
        Some(t) => Some(hex_u32(t)? as i32),
        None => None,
    };
    let fhandle = match find(&kv, "f_handle") {
        Some(h) => hex_bytes(h)?,
        None => Vec::new(),
    };
    Some(InotifyWatch {
        wd: hex_u32(find(&kv, "wd")?)? as i32,
        ino: hex_u64(find(&kv, "ino")?)?,
        sdev: hex_u32(find(&kv, "sdev")?)?,
        mask: hex_u32(find(&kv, "mask")?)?,
        ignored_mask: hex_u32(find(&kv, "ignored_mask")?)?,
        fhandle_type,
        fhandle,
    })
}

/// Parses `(sec, nsec)`.
fn pair(v: &str) -> Option<(u64, u64)> {
    let (a, b) = v.strip_prefix('(')?.strip_suffix(')')?.split_once(',')?;
    Some((dec_u64(a.trim())?, dec_u64(b.trim())?))
}

#[derive(Default)]
struct TimerfdParts {
    clockid: Option<i32>,
    ticks: Option<u64>,
    settime_flags: Option<u32>,
    it_value: Option<(u64, u64)>,
    it_interval: Option<(u64, u64)>,
}

/// Parses the text of one `/proc/PID/fdinfo/FD`.
///
/// `pos`, `flags` and `mnt_id` are required. A recognised type-specific line
/// that does not match the kernel format is an error naming the line.
pub fn parse_fdinfo(text: &str) -> Result<FdInfo, ProcError> {
    let mut fi = FdInfo::default();
    let (mut pos, mut flags, mut mnt_id) = (false, false, false);
    let mut tfd = TimerfdParts::default();
    let mut is_timerfd = false;
    let mut efd_count = None;
    let (mut efd_id, mut efd_sem) = (None, None);
    for (idx, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |reason: &str| ProcError::bad_line(FILE, idx + 1, line, reason);
        // Indented lines continue a list (io_uring's PollList entries are
        // "  op=N, task_works=N"); the kind's own reader parses them.
        if line.starts_with(' ') && !line.contains(':') {
            continue;
        }
        let (key, v) = line.split_once(':').ok_or_else(|| bad("missing ':'"))?;
        let v = v.trim();
        match key {
            "pos" => {
                fi.pos = dec_u64(v).ok_or_else(|| bad("bad pos"))?;
                pos = true;
            }
            "flags" => {
                fi.flags = oct_u32(v).ok_or_else(|| bad("bad octal flags"))?;
                flags = true;
            }
            "mnt_id" => {
                fi.mnt_id = dec_u32(v).ok_or_else(|| bad("bad mnt_id"))?;
                mnt_id = true;
            }
            "ino" => fi.ino = dec_u64(v).ok_or_else(|| bad("bad ino"))?,
            "eventfd-count" => {
                efd_count = Some(hex_u64(v).ok_or_else(|| bad("bad eventfd-count"))?);
            }
            "eventfd-id" => efd_id = Some(dec_u32(v).ok_or_else(|| bad("bad eventfd-id"))?),
            "eventfd-semaphore" => {
                efd_sem = Some(match v {
                    "0" => false,
                    "1" => true,
                    _ => return Err(bad("bad eventfd-semaphore")),
                });
            }
            "tfd" => fi
                .epoll
                .push(parse_epoll(v).ok_or_else(|| bad("bad epoll tfd line"))?),
            "inotify wd" => {
                let rest = line.strip_prefix("inotify ").unwrap_or(line);
                fi.inotify
                    .push(parse_inotify(rest).ok_or_else(|| bad("bad inotify line"))?);
            }
            "sigmask" => {
                fi.signalfd_sigmask = Some(hex_u64(v).ok_or_else(|| bad("bad sigmask"))?);
            }
            "clockid" => {
                is_timerfd = true;
                tfd.clockid = Some(dec_i32(v).ok_or_else(|| bad("bad clockid"))?);
            }
            "ticks" => tfd.ticks = Some(dec_u64(v).ok_or_else(|| bad("bad ticks"))?),
            "settime flags" => {
                tfd.settime_flags = Some(oct_u32(v).ok_or_else(|| bad("bad settime flags"))?);
            }
            "it_value" => tfd.it_value = Some(pair(v).ok_or_else(|| bad("bad it_value"))?),
            "it_interval" => {
                tfd.it_interval = Some(pair(v).ok_or_else(|| bad("bad it_interval"))?);
            }
            _ => {}
        }
        fi.lines.push((key.to_string(), v.to_string()));
    }
    for (seen, field) in [(pos, "pos"), (flags, "flags"), (mnt_id, "mnt_id")] {
        if !seen {
            return Err(ProcError::Missing { file: FILE, field });
        }
    }
    if let Some(count) = efd_count {
        fi.eventfd = Some(EventfdInfo {
            count,
            id: efd_id,
            semaphore: efd_sem,
        });
    }
    if is_timerfd {
        let missing = |field| ProcError::Missing { file: FILE, field };
        fi.timerfd = Some(TimerfdInfo {
            clockid: tfd.clockid.ok_or_else(|| missing("clockid"))?,
            ticks: tfd.ticks.ok_or_else(|| missing("ticks"))?,
            settime_flags: tfd.settime_flags.ok_or_else(|| missing("settime flags"))?,
            it_value: tfd.it_value.ok_or_else(|| missing("it_value"))?,
            it_interval: tfd.it_interval.ok_or_else(|| missing("it_interval"))?,
        });
    }
    Ok(fi)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HDR: &str = "pos:\t0\nflags:\t02\nmnt_id:\t17\nino:\t1038\n";

    #[test]
    fn header_only() {
        let f = parse_fdinfo("pos:\t12\nflags:\t0100002\nmnt_id:\t3\n").unwrap();
        assert_eq!((f.pos, f.flags, f.mnt_id, f.ino), (12, 0o100002, 3, 0));
        assert_eq!(f.lines.len(), 3);
        assert!(f.eventfd.is_none() && f.timerfd.is_none() && f.epoll.is_empty());
    }

    #[test]
    fn eventfd_count_is_hex() {
        let f = parse_fdinfo(&format!(
            "{HDR}eventfd-count:               1a\neventfd-id: 3\neventfd-semaphore: 1\n"
        ))
        .unwrap();
        assert_eq!(
            f.eventfd,
            Some(EventfdInfo {
                count: 0x1a,
                id: Some(3),
                semaphore: Some(true)
            })
        );
        let f = parse_fdinfo(&format!("{HDR}eventfd-count: 0\n")).unwrap();
        assert_eq!(f.eventfd.unwrap().id, None);
    }

    #[test]
    fn epoll_lines() {
        let f = parse_fdinfo(&format!(
            "{HDR}tfd:        4 events: 80000019 data:             1234  pos:0 ino:40e sdev:10\n\
             tfd:       10 events:       19 data: ffffffffffffffff  pos:77 ino:1 sdev:fe00000\n\
             lock:\t1: FLOCK  ADVISORY  WRITE 1 fe:00:12 0 EOF\n"
        ))
        .unwrap();
        assert_eq!(
            f.epoll,
            [
                EpollTarget {
                    tfd: 4,
                    events: 0x80000019,
                    data: 0x1234,
                    pos: 0,
                    ino: 0x40e,
                    sdev: 0x10
                },
                EpollTarget {
                    tfd: 10,
                    events: 0x19,
                    data: u64::MAX,
                    pos: 77,
                    ino: 1,
                    sdev: 0xfe00000
                },
            ]
        );
        assert_eq!(f.get_all("tfd").count(), 2);
        assert_eq!(
            f.get("lock"),
            Some("1: FLOCK  ADVISORY  WRITE 1 fe:00:12 0 EOF")
        );
    }

    #[test]
    fn inotify_without_fhandle() {
        let f = parse_fdinfo(&format!(
            "{HDR}inotify wd:1f ino:3c4a7 sdev:fe00000 mask:300 ignored_mask:0 \n"
        ))
        .unwrap();
        assert_eq!(f.inotify[0].wd, 0x1f);
        assert_eq!(f.inotify[0].fhandle_type, None);
        assert!(f.inotify[0].fhandle.is_empty());
    }

    #[test]
    fn malformed() {
        for (body, line) in [
            ("no colon here\n", 5),
            ("tfd: x events: 1 data: 1 pos:0 ino:1 sdev:1\n", 5),
            ("tfd: 4 events: 1 data: 1 pos:0 ino:1\n", 5),
            ("inotify wd:1 ino:zz sdev:0 mask:0 ignored_mask:0\n", 5),
            (
                "inotify wd:1 ino:1 sdev:0 mask:0 ignored_mask:0 f_handle:abc\n",
                5,
            ),
            ("eventfd-count: xyz\n", 5),
            ("sigmask:\tnope\n", 5),
            ("it_value: (1 2)\n", 5),
            ("settime flags: 09\n", 5),
        ] {
            let e = parse_fdinfo(&format!("{HDR}{body}")).unwrap_err();
            assert_eq!((e.file(), e.line()), (FILE, Some(line)), "{body}");
        }
        let e = parse_fdinfo("pos:\t0\nflags:\t9\n").unwrap_err();
        assert_eq!(e.line(), Some(2));
        assert_eq!(
            parse_fdinfo("pos:\t0\nflags:\t0\n").unwrap_err(),
            ProcError::Missing {
                file: FILE,
                field: "mnt_id"
            }
        );
        assert!(matches!(
            parse_fdinfo(&format!("{HDR}clockid: 1\nticks: 0\n")),
            Err(ProcError::Missing {
                field: "settime flags",
                ..
            })
        ));
    }
}

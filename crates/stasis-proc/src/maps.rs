//! `/proc/PID/maps`: one line per virtual memory area.
//!
//! Kernel format (`show_map_vma` in `fs/proc/task_mmu.c`):
//!
//! ```text
//! start-end perms offset major:minor inode[ padding name]
//! 7f3d05a22000-7f3d05b78000 r-xp 00026000 fe:00 326279     /usr/lib/x86_64-linux-gnu/libc.so.6
//! ```
//!
//! `start`, `end`, `offset`, `major` and `minor` are hex; `inode` is decimal.
//! The inode is always followed by one space; when the VMA has a name the
//! line is then padded with spaces and the name follows verbatim up to the
//! newline. Names are `[heap]`, `[stack]`, `[vdso]`, `[vvar]`,
//! `[vvar_vclock]`, `[vsyscall]`, `[uprobes]`, `[anon:NAME]`,
//! `[anon_shmem:NAME]` or a path, which may contain spaces, may end in
//! spaces, and gets a `" (deleted)"` suffix once unlinked. The kernel escapes
//! only `\n` in paths (as `\012`); the path is kept exactly as printed.

use crate::error::{dec_u64, hex_u32, hex_u64, ProcError};

const FILE: &str = "/proc/PID/maps";

/// Suffix the kernel appends to the path of an unlinked file.
pub const DELETED_SUFFIX: &str = " (deleted)";

/// One line of `/proc/PID/maps`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MapsEntry {
    /// First address of the area.
    pub start: u64,
    /// One past the last address of the area.
    pub end: u64,
    /// `r` permission.
    pub read: bool,
    /// `w` permission.
    pub write: bool,
    /// `x` permission.
    pub exec: bool,
    /// `s` (shared) rather than `p` (private).
    pub shared: bool,
    /// File offset in bytes (for anonymous areas: `vm_pgoff << PAGE_SHIFT`).
    pub offset: u64,
    /// Device major number (hex in the file).
    pub dev_major: u32,
    /// Device minor number (hex in the file).
    pub dev_minor: u32,
    /// Inode number (0 for anonymous areas).
    pub inode: u64,
    /// Name column exactly as printed; `""` for unnamed anonymous areas.
    pub path: String,
}

/// Classification of a mapping by its name column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapKind<'a> {
    /// No name: plain anonymous memory.
    Anonymous,
    /// `[heap]`.
    Heap,
    /// `[stack]`.
    Stack,
    /// `[vdso]`.
    Vdso,
    /// `[vvar]`.
    Vvar,
    /// `[vvar_vclock]` (split out of `[vvar]` in 6.13).
    VvarVclock,
    /// `[vsyscall]`.
    Vsyscall,
    /// `[anon:NAME]`, named with `PR_SET_VMA_ANON_NAME`; holds `NAME`.
    AnonNamed(&'a str),
    /// `[anon_shmem:NAME]`; holds `NAME`.
    AnonShmemNamed(&'a str),
    /// A path starting with `/`; holds it without the `" (deleted)"` suffix.
    File(&'a str),
    /// Any other name (e.g. `[uprobes]`, `anon_inode:...`).
    Other(&'a str),
}

impl MapsEntry {
    /// Size of the area in bytes.
    pub fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    /// True if the area is empty (never the case for real entries).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True if the name column ends with `" (deleted)"`.
    ///
    /// A file whose real name ends in `" (deleted)"` is indistinguishable;
    /// callers that care must compare with `stat` of `/proc/PID/map_files`.
    pub fn is_deleted(&self) -> bool {
        self.path.starts_with('/') && self.path.ends_with(DELETED_SUFFIX)
    }

    /// The file path without the `" (deleted)"` suffix, for file mappings
    /// (names starting with `/`, which includes `/memfd:...`,
    /// `/dev/zero (deleted)` for shared anonymous memory and `/SYSV...`).
    pub fn file_path(&self) -> Option<&str> {
        if !self.path.starts_with('/') {
            return None;
        }
        Some(self.path.strip_suffix(DELETED_SUFFIX).unwrap_or(&self.path))
    }

    /// Classifies the mapping by its name column.
    pub fn kind(&self) -> MapKind<'_> {
        let p = self.path.as_str();
        match p {
            "" => MapKind::Anonymous,
            "[heap]" => MapKind::Heap,
            "[stack]" => MapKind::Stack,
            "[vdso]" => MapKind::Vdso,
            "[vvar]" => MapKind::Vvar,
            "[vvar_vclock]" => MapKind::VvarVclock,
            "[vsyscall]" => MapKind::Vsyscall,
            _ => {
                if let Some(f) = self.file_path() {
                    MapKind::File(f)
                } else if let Some(n) = bracketed(p, "[anon:") {
                    MapKind::AnonNamed(n)
                } else if let Some(n) = bracketed(p, "[anon_shmem:") {
                    MapKind::AnonShmemNamed(n)
                } else {
                    MapKind::Other(p)
                }
            }
        }
    }

    /// True for a `memfd_create` mapping (`/memfd:NAME (deleted)`).
    pub fn is_memfd(&self) -> bool {
        self.path.starts_with("/memfd:")
    }

    /// True for shared anonymous memory: `MAP_SHARED|MAP_ANONYMOUS` shows up
    /// as `/dev/zero (deleted)` (or `[anon_shmem:NAME]`) with inode on the
    /// internal shmem mount.
    pub fn is_shared_anon(&self) -> bool {
        self.shared && (self.path == "/dev/zero (deleted)" || self.path.starts_with("[anon_shmem:"))
    }

    /// Permissions as the four characters the kernel prints, e.g. `"r-xp"`.
    pub fn perms(&self) -> String {
        let mut s = String::with_capacity(4);
        s.push(if self.read { 'r' } else { '-' });
        s.push(if self.write { 'w' } else { '-' });
        s.push(if self.exec { 'x' } else { '-' });
        s.push(if self.shared { 's' } else { 'p' });
        s
    }
}

fn bracketed<'a>(p: &'a str, prefix: &str) -> Option<&'a str> {
    p.strip_prefix(prefix)?.strip_suffix(']')
}

/// Splits off the next space-terminated token of `s`.
fn token(s: &str) -> Option<(&str, &str)> {
    let (tok, rest) = s.split_once(' ')?;
    (!tok.is_empty()).then_some((tok, rest))
}

/// Parses one maps line (without its trailing newline).
///
/// `file` and `lineno` are only used for error reports; `smaps` reuses this
/// for its header lines.
pub(crate) fn parse_maps_line(
    line: &str,
    file: &'static str,
    lineno: usize,
) -> Result<MapsEntry, ProcError> {
    let bad = |reason: &str| ProcError::bad_line(file, lineno, line, reason);
    let (range, rest) = token(line).ok_or_else(|| bad("missing address range"))?;
    let (perms, rest) = token(rest).ok_or_else(|| bad("missing permissions"))?;
    let (offset, rest) = token(rest).ok_or_else(|| bad("missing offset"))?;
    let (dev, rest) = token(rest).ok_or_else(|| bad("missing device"))?;
    // The inode is followed by one space even when there is no name, but be
    // lenient about a stripped trailing space.
    let (inode, rest) = match rest.split_once(' ') {
        Some((i, r)) => (i, r),
        None => (rest, ""),
    };

    let (start, end) = range
        .split_once('-')
        .ok_or_else(|| bad("bad address range"))?;
    let start = hex_u64(start).ok_or_else(|| bad("bad start address"))?;
    let end = hex_u64(end).ok_or_else(|| bad("bad end address"))?;
    if end < start {
        return Err(bad("end address below start"));
    }

    let p = perms.as_bytes();
    if p.len() != 4 {
        return Err(bad("permissions must be 4 characters"));
    }
    let flag = |i: usize, set: u8| match p[i] {
        c if c == set => Ok(true),
        b'-' => Ok(false),
        _ => Err(bad("bad permission character")),
    };
    let read = flag(0, b'r')?;
    let write = flag(1, b'w')?;
    let exec = flag(2, b'x')?;
    let shared = match p[3] {
        b's' => true,
        b'p' => false,
        _ => return Err(bad("sharing flag must be 's' or 'p'")),
    };

    let offset = hex_u64(offset).ok_or_else(|| bad("bad offset"))?;
    let (maj, min) = dev.split_once(':').ok_or_else(|| bad("bad device"))?;
    let dev_major = hex_u32(maj).ok_or_else(|| bad("bad device major"))?;
    let dev_minor = hex_u32(min).ok_or_else(|| bad("bad device minor"))?;
    let inode = dec_u64(inode).ok_or_else(|| bad("bad inode"))?;
    let path = rest.trim_start_matches(' ').to_string();

    Ok(MapsEntry {
        start,
        end,
        read,
        write,
        exec,
        shared,
        offset,
        dev_major,
        dev_minor,
        inode,
        path,
    })
}

/// Parses the whole text of `/proc/PID/maps` (or `/proc/PID/task/TID/maps`).
///
/// Empty lines are ignored; any malformed line is an error naming the line.
pub fn parse_maps(text: &str) -> Result<Vec<MapsEntry>, ProcError> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.is_empty())
        .map(|(i, l)| parse_maps_line(l, FILE, i + 1))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(line: &str) -> MapsEntry {
        let v = parse_maps(line).unwrap();
        assert_eq!(v.len(), 1);
        v.into_iter().next().unwrap()
    }

    #[test]
    fn file_mapping() {
        let e = one("7f3d05a22000-7f3d05b78000 r-xp 00026000 fe:00 326279                     /usr/lib/x86_64-linux-gnu/libc.so.6\n");
        assert_eq!(e.start, 0x7f3d05a22000);
        assert_eq!(e.end, 0x7f3d05b78000);
        assert_eq!(e.len(), 0x156000);
        assert!(e.read && !e.write && e.exec && !e.shared);
        assert_eq!(e.offset, 0x26000);
        assert_eq!((e.dev_major, e.dev_minor), (0xfe, 0));
        assert_eq!(e.inode, 326279);
        assert_eq!(e.path, "/usr/lib/x86_64-linux-gnu/libc.so.6");
        assert_eq!(e.file_path(), Some("/usr/lib/x86_64-linux-gnu/libc.so.6"));
        assert!(!e.is_deleted());
        assert_eq!(e.perms(), "r-xp");
    }

    #[test]
    fn anonymous_with_trailing_space_and_without() {
        for l in [
            "7f3d05977000-7f3d05999000 rw-p 00000000 00:00 0 ",
            "7f3d05977000-7f3d05999000 rw-p 00000000 00:00 0",
        ] {
            let e = one(l);
            assert_eq!(e.path, "");
            assert_eq!(e.kind(), MapKind::Anonymous);
            assert_eq!(e.file_path(), None);
        }
    }

    #[test]
    fn spaces_in_path_deleted_and_trailing_space() {
        let e = one("7fe862d63000-7fe862d67000 rw-s 00001000 fe:00 10010650                   /tmp/a b/  c d (deleted)");
        assert_eq!(e.path, "/tmp/a b/  c d (deleted)");
        assert!(e.is_deleted());
        assert_eq!(e.file_path(), Some("/tmp/a b/  c d"));
        assert_eq!(e.kind(), MapKind::File("/tmp/a b/  c d"));
        let e = one("1000-2000 r--p 00000000 fe:00 5 /tmp/trailing ");
        assert_eq!(e.path, "/tmp/trailing ");
        assert!(!e.is_deleted());
    }

    #[test]
    fn named_and_special() {
        let text = "\
7f3d05bed000-7f3d05bef000 r--p 00000000 00:00 0                          [vvar_vclock]
7f3d05be9000-7f3d05bed000 r--p 00000000 00:00 0                          [vvar]
7f0000000000-7f0000001000 rw-p 00000000 00:00 0                          [anon:my buf]
7f0000001000-7f0000002000 rw-s 00000000 00:01 77                         [anon_shmem:ring]
7f0000002000-7f0000003000 r--p 00000000 00:00 0                          [uprobes]
ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]
7f0000003000-7f0000004000 rw-s 00000000 00:01 25                         /dev/zero (deleted)
";
        let v = parse_maps(text).unwrap();
        assert_eq!(v[0].kind(), MapKind::VvarVclock);
        assert_eq!(v[1].kind(), MapKind::Vvar);
        assert_eq!(v[2].kind(), MapKind::AnonNamed("my buf"));
        assert_eq!(v[3].kind(), MapKind::AnonShmemNamed("ring"));
        assert!(v[3].is_shared_anon());
        assert_eq!(v[4].kind(), MapKind::Other("[uprobes]"));
        assert_eq!(v[5].kind(), MapKind::Vsyscall);
        assert_eq!(v[5].start, 0xffffffffff600000);
        assert!(!v[5].read && v[5].exec);
        assert!(v[6].is_shared_anon());
        assert!(v[6].is_deleted());
    }

    #[test]
    fn wide_device_numbers() {
        let e = one("1000-2000 r--p 00000000 103:1f 9 /x");
        assert_eq!((e.dev_major, e.dev_minor), (0x103, 0x1f));
    }

    #[test]
    fn malformed_lines_are_errors() {
        let cases = [
            "garbage",
            "1000 r--p 00000000 00:00 0 ",
            "1000-zz r--p 00000000 00:00 0 ",
            "2000-1000 r--p 00000000 00:00 0 ",
            "1000-2000 r--q 00000000 00:00 0 ",
            "1000-2000 r-- 00000000 00:00 0 ",
            "1000-2000 rwxpp 00000000 00:00 0 ",
            "1000-2000 x--p 00000000 00:00 0 ",
            "1000-2000 r--p 0000g000 00:00 0 ",
            "1000-2000 r--p 00000000 0000 0 ",
            "1000-2000 r--p 00000000 00:00 -1 ",
            "1000-2000 r--p 00000000 00:00",
            "1000-2000  r--p 00000000 00:00 0 ",
            "99999999999999999-1 r--p 00000000 00:00 0 ",
        ];
        for c in cases {
            let err = parse_maps(c).unwrap_err();
            assert_eq!(err.file(), FILE, "{c}");
            assert_eq!(err.line(), Some(1), "{c}");
        }
        let err = parse_maps("1000-2000 r--p 00000000 00:00 0 \nbad\n").unwrap_err();
        assert_eq!(err.line(), Some(2));
    }

    #[test]
    fn empty_text() {
        assert!(parse_maps("").unwrap().is_empty());
        assert!(parse_maps("\n").unwrap().is_empty());
    }
}

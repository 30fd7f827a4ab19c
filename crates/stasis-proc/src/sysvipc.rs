//! `/proc/sysvipc/{shm,sem,msg}`: the System V IPC objects of the reading
//! task's IPC namespace.
//!
//! Format (`sysvipc_{shm,sem,msg}_proc_show` in `ipc/`): a header line of
//! column names, then one line per object, columns separated by spaces:
//!
//! ```text
//!        key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  cgid      atime      dtime      ctime                   rss                  swap
//!   12345678      32768  1640               3145728  4242  4243      2     0     0     0     0 1700000000 0 1700000000               3145728                     0
//! ```
//!
//! `key` is a signed decimal, `perms` octal, everything else unsigned
//! decimal. The id column is `shmid`, `semid` or `msqid`. Columns are
//! found by their header name, so added columns do not break the parser.

use crate::error::{dec_i32, dec_u64, oct_u32, ProcError};

const FILE: &str = "/proc/sysvipc/*";

/// One object (line) of a `/proc/sysvipc` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SysvipcEntry {
    /// `key` (IPC_PRIVATE is 0; a removed segment shows 0 too).
    pub key: i32,
    /// The id (`shmid`, `semid` or `msqid`).
    pub id: i32,
    /// `perms`, with SHM_DEST/SHM_LOCKED for segments.
    pub perms: u32,
    /// Every other numeric column: (header name, value).
    pub fields: Vec<(String, u64)>,
}

impl SysvipcEntry {
    /// The value of column `name` (e.g. `"size"`, `"rss"`, `"swap"`).
    pub fn field(&self, name: &str) -> Option<u64> {
        self.fields.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }
}

/// Parses one of `/proc/sysvipc/{shm,sem,msg}`.
pub fn parse_sysvipc(text: &str) -> Result<Vec<SysvipcEntry>, ProcError> {
    let mut lines = text.lines();
    let header: Vec<&str> = lines
        .next()
        .ok_or(ProcError::Missing {
            file: FILE,
            field: "header",
        })?
        .split_whitespace()
        .collect();
    let col = |name: &'static str| {
        header
            .iter()
            .position(|h| *h == name)
            .ok_or(ProcError::Missing {
                file: FILE,
                field: name,
            })
    };
    let key_col = col("key")?;
    let perms_col = col("perms")?;
    let id_col = ["shmid", "semid", "msqid"]
        .iter()
        .find_map(|n| header.iter().position(|h| h == n))
        .ok_or(ProcError::Missing {
            file: FILE,
            field: "shmid/semid/msqid",
        })?;
    let mut out = Vec::new();
    for (i, line) in lines.enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |why: &str| ProcError::bad_line(FILE, i + 2, line, why);
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() != header.len() {
            return Err(bad("column count differs from the header"));
        }
        let mut fields = Vec::with_capacity(cols.len());
        for (j, c) in cols.iter().enumerate() {
            if j == key_col || j == perms_col || j == id_col {
                continue;
            }
            fields.push((
                header[j].to_string(),
                dec_u64(c).ok_or_else(|| bad("not a number"))?,
            ));
        }
        out.push(SysvipcEntry {
            key: dec_i32(cols[key_col]).ok_or_else(|| bad("bad key"))?,
            id: dec_i32(cols[id_col]).ok_or_else(|| bad("bad id"))?,
            perms: oct_u32(cols[perms_col]).ok_or_else(|| bad("bad perms"))?,
            fields,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHM: &str = "       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  cgid      atime      dtime      ctime                   rss                  swap
1364631553      32768   640               3145728   812   812      3     0     0     0     0 1700000001          0 1700000000               3145728                     0
         0      32769  1600                 65536   812   812      2  1000   100     0     0 1700000001          0 1700000002                  4096                  8192
";

    #[test]
    fn shm() {
        let v = parse_sysvipc(SHM).unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].key, 0x5156_a001);
        assert_eq!(v[0].id, 32768);
        assert_eq!(v[0].perms, 0o640);
        assert_eq!(v[0].field("size"), Some(3 << 20));
        assert_eq!(v[0].field("nattch"), Some(3));
        assert_eq!(v[1].perms, 0o1600);
        assert_eq!(v[1].field("uid"), Some(1000));
        assert_eq!(v[1].field("rss"), Some(4096));
        assert_eq!(v[1].field("swap"), Some(8192));
        assert_eq!(v[1].field("nope"), None);
    }

    #[test]
    fn sem_and_msg() {
        let sem =
            "       key      semid perms      nsems   uid   gid  cuid  cgid      otime      ctime
        -5          0   600          4     0     0     0     0          0 1700000000
";
        let v = parse_sysvipc(sem).unwrap();
        assert_eq!((v[0].key, v[0].id, v[0].field("nsems")), (-5, 0, Some(4)));
        let msg = "       key      msqid perms      cbytes       qnum lspid lrpid   uid   gid  cuid  cgid      stime      rtime      ctime
 123456789         65   666       11006          5   812     0     0     0     0     0 1700000000          0 1700000000
";
        let v = parse_sysvipc(msg).unwrap();
        assert_eq!(v[0].id, 65);
        assert_eq!(v[0].field("qnum"), Some(5));
        // Just the header: no objects.
        assert!(parse_sysvipc(msg.lines().next().unwrap())
            .unwrap()
            .is_empty());
    }

    #[test]
    fn malformed() {
        assert!(parse_sysvipc("").is_err());
        assert!(parse_sysvipc("key perms size\n").is_err());
        let short = "key shmid perms size\n1 2 600\n";
        assert_eq!(parse_sysvipc(short).unwrap_err().line(), Some(2));
        let bad_perm = "key shmid perms size\n1 2 689 4\n";
        assert!(parse_sysvipc(bad_perm).is_err());
    }
}

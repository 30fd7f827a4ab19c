//! `/proc/PID/smaps`: maps header lines, each followed by per-VMA counters.
//!
//! Kernel format (`show_smap` in `fs/proc/task_mmu.c`): a header line
//! identical to a `/proc/PID/maps` line, then lines of the form
//!
//! ```text
//! Rss:                  12 kB
//! THPeligible:           0
//! ProtectionKey:         0
//! VmFlags: rd wr mr mw me ac
//! ```
//!
//! Sizes are decimal kibibytes with a ` kB` unit. `VmFlags` holds two-letter
//! mnemonics (always exactly two characters, see `show_smap_vma_flags`).
//! Counters this parser does not know are kept in [`SmapsEntry::other`].

use crate::error::{dec_u32, dec_u64, ProcError};
use crate::maps::{parse_maps_line, MapsEntry};

const FILE: &str = "/proc/PID/smaps";

/// One VMA of `/proc/PID/smaps`. Sizes are in KiB.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SmapsEntry {
    /// The header line.
    pub map: MapsEntry,
    /// `VmFlags` mnemonics in printed order, e.g. `*b"rd"`.
    pub vm_flags: Vec<[u8; 2]>,
    /// `Size`.
    pub size_kb: u64,
    /// `KernelPageSize`.
    pub kernel_page_size_kb: u64,
    /// `MMUPageSize`.
    pub mmu_page_size_kb: u64,
    /// `Rss`.
    pub rss_kb: u64,
    /// `Pss`.
    pub pss_kb: u64,
    /// `Shared_Clean`.
    pub shared_clean_kb: u64,
    /// `Shared_Dirty`.
    pub shared_dirty_kb: u64,
    /// `Private_Clean`.
    pub private_clean_kb: u64,
    /// `Private_Dirty`.
    pub private_dirty_kb: u64,
    /// `Referenced`.
    pub referenced_kb: u64,
    /// `Anonymous`.
    pub anonymous_kb: u64,
    /// `LazyFree`.
    pub lazy_free_kb: u64,
    /// `AnonHugePages`.
    pub anon_huge_pages_kb: u64,
    /// `ShmemPmdMapped`.
    pub shmem_pmd_mapped_kb: u64,
    /// `Shared_Hugetlb`.
    pub shared_hugetlb_kb: u64,
    /// `Private_Hugetlb`.
    pub private_hugetlb_kb: u64,
    /// `Swap`.
    pub swap_kb: u64,
    /// `SwapPss`.
    pub swap_pss_kb: u64,
    /// `Locked`.
    pub locked_kb: u64,
    /// `THPeligible`, if printed.
    pub thp_eligible: Option<bool>,
    /// `ProtectionKey`, if printed (only with memory protection keys).
    pub protection_key: Option<u32>,
    /// Every other `Key: value` line, key without the colon, value trimmed
    /// (e.g. `("Pss_Dirty", "10 kB")`, `("KSM", "0 kB")`).
    pub other: Vec<(String, String)>,
}

impl SmapsEntry {
    /// True if `VmFlags` contains the two-letter mnemonic `code`
    /// (e.g. `"gd"` grows-down, `"lo"` locked, `"dd"` do-not-dump).
    pub fn has_flag(&self, code: &str) -> bool {
        let c = code.as_bytes();
        self.vm_flags.iter().any(|f| f.as_slice() == c)
    }

    /// `VmFlags` mnemonics as strings, in printed order.
    pub fn flag_strs(&self) -> impl Iterator<Item = &str> {
        self.vm_flags
            .iter()
            .map(|f| std::str::from_utf8(f).unwrap_or("??"))
    }

    /// Looks up an unrecognised counter by key, e.g. `"Pss_Dirty"`.
    pub fn other(&self, key: &str) -> Option<&str> {
        self.other
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// True if `line` looks like a `Key: ...` field rather than a VMA header.
fn is_field_line(line: &str) -> bool {
    line.split(' ')
        .next()
        .is_some_and(|t| t.ends_with(':') && t.len() > 1)
}

/// Parses the whole text of `/proc/PID/smaps`.
pub fn parse_smaps(text: &str) -> Result<Vec<SmapsEntry>, ProcError> {
    let mut out: Vec<SmapsEntry> = Vec::new();
    for (idx, line) in text.lines().enumerate() {
        let lineno = idx + 1;
        if line.is_empty() {
            continue;
        }
        if !is_field_line(line) {
            out.push(SmapsEntry {
                map: parse_maps_line(line, FILE, lineno)?,
                ..SmapsEntry::default()
            });
            continue;
        }
        let bad = |reason: &str| ProcError::bad_line(FILE, lineno, line, reason);
        let cur = out
            .last_mut()
            .ok_or_else(|| bad("field before the first mapping header"))?;
        let (key, value) = line.split_once(':').ok_or_else(|| bad("missing ':'"))?;
        let value = value.trim();
        let kb = || -> Result<u64, ProcError> {
            let n = value
                .strip_suffix(" kB")
                .ok_or_else(|| bad("expected a size in kB"))?;
            dec_u64(n.trim()).ok_or_else(|| bad("bad size"))
        };
        match key {
            "VmFlags" => {
                for f in value.split_ascii_whitespace() {
                    let b: [u8; 2] = f
                        .as_bytes()
                        .try_into()
                        .map_err(|_| bad("VmFlags mnemonic is not two characters"))?;
                    cur.vm_flags.push(b);
                }
            }
            "THPeligible" => {
                cur.thp_eligible = Some(match value {
                    "0" => false,
                    "1" => true,
                    _ => return Err(bad("THPeligible must be 0 or 1")),
                });
            }
            "ProtectionKey" => {
                cur.protection_key = Some(dec_u32(value).ok_or_else(|| bad("bad ProtectionKey"))?);
            }
            "Size" => cur.size_kb = kb()?,
            "KernelPageSize" => cur.kernel_page_size_kb = kb()?,
            "MMUPageSize" => cur.mmu_page_size_kb = kb()?,
            "Rss" => cur.rss_kb = kb()?,
            "Pss" => cur.pss_kb = kb()?,
            "Shared_Clean" => cur.shared_clean_kb = kb()?,
            "Shared_Dirty" => cur.shared_dirty_kb = kb()?,
            "Private_Clean" => cur.private_clean_kb = kb()?,
            "Private_Dirty" => cur.private_dirty_kb = kb()?,
            "Referenced" => cur.referenced_kb = kb()?,
            "Anonymous" => cur.anonymous_kb = kb()?,
            "LazyFree" => cur.lazy_free_kb = kb()?,
            "AnonHugePages" => cur.anon_huge_pages_kb = kb()?,
            "ShmemPmdMapped" => cur.shmem_pmd_mapped_kb = kb()?,
            "Shared_Hugetlb" => cur.shared_hugetlb_kb = kb()?,
            "Private_Hugetlb" => cur.private_hugetlb_kb = kb()?,
            "Swap" => cur.swap_kb = kb()?,
            "SwapPss" => cur.swap_pss_kb = kb()?,
            "Locked" => cur.locked_kb = kb()?,
            _ => cur.other.push((key.to_string(), value.to_string())),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
7ffc6eb06000-7ffc6eb27000 rw-p 00000000 00:00 0                          [stack]
Size:                132 kB
KernelPageSize:        4 kB
MMUPageSize:           4 kB
Rss:                  16 kB
Pss:                  16 kB
Pss_Dirty:            16 kB
Anonymous:            16 kB
Swap:                  8 kB
Locked:                0 kB
THPeligible:           1
ProtectionKey:         0
VmFlags: rd wr mr mw me gd ac 
7f0000000000-7f0000001000 rw-p 00000000 00:00 0 
Size:                  4 kB
VmFlags: rd wr mr mw me lo ac dd 
";

    #[test]
    fn sample() {
        let v = parse_smaps(SAMPLE).unwrap();
        assert_eq!(v.len(), 2);
        let s = &v[0];
        assert_eq!(s.map.path, "[stack]");
        assert_eq!(s.size_kb, 132);
        assert_eq!(s.rss_kb, 16);
        assert_eq!(s.anonymous_kb, 16);
        assert_eq!(s.swap_kb, 8);
        assert_eq!(s.thp_eligible, Some(true));
        assert_eq!(s.protection_key, Some(0));
        assert_eq!(s.other("Pss_Dirty"), Some("16 kB"));
        assert!(s.has_flag("gd"));
        assert!(!s.has_flag("lo"));
        assert!(!s.has_flag("g"));
        assert_eq!(
            s.flag_strs().collect::<Vec<_>>(),
            ["rd", "wr", "mr", "mw", "me", "gd", "ac"]
        );
        assert_eq!(v[1].map.path, "");
        assert!(v[1].has_flag("lo") && v[1].has_flag("dd"));
        assert_eq!(v[1].thp_eligible, None);
    }

    #[test]
    fn malformed() {
        let e = parse_smaps("Rss: 4 kB\n").unwrap_err();
        assert_eq!((e.file(), e.line()), (FILE, Some(1)));
        let hdr = "1000-2000 rw-p 00000000 00:00 0 \n";
        for (body, line) in [
            ("Rss: x kB\n", 2),
            ("Rss: 4\n", 2),
            ("Rss: -4 kB\n", 2),
            ("THPeligible: 2\n", 2),
            ("VmFlags: rd wrx\n", 2),
            ("Size: 4 kB\nnot a header\n", 3),
        ] {
            let e = parse_smaps(&format!("{hdr}{body}")).unwrap_err();
            assert_eq!(e.line(), Some(line), "{body}");
            assert_eq!(e.file(), FILE);
        }
    }
}

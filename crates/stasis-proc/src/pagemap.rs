//! `/proc/PID/pagemap`: one little-endian `u64` per virtual page.
//!
//! Bit layout (`Documentation/admin-guide/mm/pagemap.rst`):
//!
//! | bits  | meaning                                                    |
//! |-------|------------------------------------------------------------|
//! | 0-54  | PFN if present (zero without `CAP_SYS_ADMIN`)              |
//! | 0-4   | swap type if swapped                                       |
//! | 5-54  | swap offset if swapped                                     |
//! | 55    | PTE is soft-dirty                                          |
//! | 56    | page exclusively mapped                                    |
//! | 57    | PTE is uffd-wp write-protected                             |
//! | 58    | PTE is a guard region (6.14+)                              |
//! | 61    | page is file-page or shared-anon                           |
//! | 62    | page swapped (guard markers also set this)                 |
//! | 63    | page present                                               |
//!
//! Reading the file is the caller's business; this module only decodes.

/// Decoded view of one pagemap entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PagemapEntry(pub u64);

impl PagemapEntry {
    /// Bit 63: page present in RAM.
    pub const PRESENT: u64 = 1 << 63;
    /// Bit 62: page swapped out.
    pub const SWAPPED: u64 = 1 << 62;
    /// Bit 61: file page or shared anonymous page.
    pub const FILE_OR_SHARED: u64 = 1 << 61;
    /// Bit 58: guard region (`MADV_GUARD_INSTALL`).
    pub const GUARD: u64 = 1 << 58;
    /// Bit 57: userfaultfd write-protected.
    pub const UFFD_WP: u64 = 1 << 57;
    /// Bit 56: exclusively mapped.
    pub const EXCLUSIVE: u64 = 1 << 56;
    /// Bit 55: soft-dirty.
    pub const SOFT_DIRTY: u64 = 1 << 55;
    /// Bits 0-54: PFN.
    pub const PFN_MASK: u64 = (1 << 55) - 1;

    /// Page present in RAM.
    pub fn present(&self) -> bool {
        self.0 & Self::PRESENT != 0
    }
    /// Page swapped out (also set for guard-region markers).
    pub fn swapped(&self) -> bool {
        self.0 & Self::SWAPPED != 0
    }
    /// File-backed page or shared anonymous page.
    pub fn file_or_shared(&self) -> bool {
        self.0 & Self::FILE_OR_SHARED != 0
    }
    /// Page mapped by exactly one process.
    pub fn exclusive(&self) -> bool {
        self.0 & Self::EXCLUSIVE != 0
    }
    /// Guard region installed with `MADV_GUARD_INSTALL`.
    pub fn guard(&self) -> bool {
        self.0 & Self::GUARD != 0
    }
    /// userfaultfd write-protected.
    pub fn uffd_wp(&self) -> bool {
        self.0 & Self::UFFD_WP != 0
    }
    /// Soft-dirty (written since the last clear of `soft-dirty` bits).
    pub fn soft_dirty(&self) -> bool {
        self.0 & Self::SOFT_DIRTY != 0
    }
    /// Page frame number (bits 0-54); only meaningful when present.
    pub fn pfn(&self) -> u64 {
        self.0 & Self::PFN_MASK
    }
    /// Swap type (bits 0-4), if swapped and not a guard marker.
    pub fn swap_type(&self) -> Option<u64> {
        (self.swapped() && !self.guard()).then_some(self.0 & 0x1f)
    }
    /// Swap offset (bits 5-54), if swapped and not a guard marker.
    pub fn swap_offset(&self) -> Option<u64> {
        (self.swapped() && !self.guard()).then_some((self.0 & Self::PFN_MASK) >> 5)
    }
}

/// Byte offset in `/proc/PID/pagemap` of the entry for virtual address `addr`.
///
/// # Panics
///
/// Panics if `page_size` is zero.
pub fn pagemap_offset(addr: u64, page_size: u64) -> u64 {
    addr / page_size * 8
}

/// Splits raw pagemap bytes into entries (native endian; trailing partial
/// entries are ignored).
pub fn parse_pagemap(bytes: &[u8]) -> Vec<PagemapEntry> {
    bytes
        .chunks_exact(8)
        .map(|c| {
            let mut b = [0u8; 8];
            b.copy_from_slice(c);
            PagemapEntry(u64::from_ne_bytes(b))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits() {
        let e = PagemapEntry(PagemapEntry::PRESENT | PagemapEntry::EXCLUSIVE | 0x135c87);
        assert!(e.present() && e.exclusive());
        assert!(!e.swapped() && !e.file_or_shared() && !e.guard() && !e.uffd_wp());
        assert_eq!(e.pfn(), 0x135c87);
        assert_eq!(e.swap_type(), None);
        let s = PagemapEntry(PagemapEntry::SWAPPED | PagemapEntry::UFFD_WP | (1234 << 5) | 3);
        assert!(s.swapped() && s.uffd_wp() && !s.present());
        assert_eq!((s.swap_type(), s.swap_offset()), (Some(3), Some(1234)));
        assert!(PagemapEntry(1 << 55).soft_dirty());
        assert_eq!(PagemapEntry(u64::MAX).pfn(), (1 << 55) - 1);
    }

    #[test]
    fn offsets_and_bytes() {
        assert_eq!(pagemap_offset(0x7fe862b71000, 4096), 0x7fe862b71 * 8);
        let mut raw = Vec::new();
        raw.extend_from_slice(&0x8000_0000_0000_0001u64.to_ne_bytes());
        raw.extend_from_slice(&7u64.to_ne_bytes());
        raw.extend_from_slice(&[1, 2, 3]);
        assert_eq!(
            parse_pagemap(&raw),
            [PagemapEntry(0x8000_0000_0000_0001), PagemapEntry(7)]
        );
    }
}

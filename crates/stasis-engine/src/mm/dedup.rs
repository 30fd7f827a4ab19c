//! Pages shared copy-on-write between processes of the tree (memory
//! written before a fork and not since) are stored in the image once.
//!
//! /proc/PID/pagemap gives each present page's frame number (PFN) to a
//! dumper with CAP_SYS_ADMIN. A private page whose frame was already
//! written to `pages.img` for another process is the same physical page,
//! so its bytes are the same: its run points at the stored copy instead.
//! Dup runs still carry their own hash (of the bytes read from the target)
//! so restore verifies them like any other.

use std::collections::HashMap;

use stasis_image::PageRun;
use stasis_sys::{mem, RemoteAddr};

use super::PAGE;
use crate::error::{DumpError, SysCtx};

/// Frames already in `pages.img`, and where.
#[derive(Default)]
pub struct PageDedup {
    known: HashMap<u64, u64>,
}

impl PageDedup {
    /// Where frame `pfn` is stored, if it is.
    pub fn offset_of(&self, pfn: u64) -> Option<u64> {
        self.known.get(&pfn).copied()
    }

    /// Records the frames of pages just written: `new` holds (vaddr, pfn)
    /// pairs, `runs` the runs they were written in (sorted by vaddr).
    pub fn register(&mut self, new: &[(u64, u64)], runs: &[PageRun]) {
        for &(vaddr, pfn) in new {
            let i = runs.partition_point(|r| r.vaddr + r.nr_pages * PAGE <= vaddr);
            if let Some(r) = runs.get(i).filter(|r| r.vaddr <= vaddr) {
                self.known.insert(pfn, r.offset + (vaddr - r.vaddr));
            }
        }
    }

    /// Runs for pages already stored: `dups` holds (vaddr, offset) pairs
    /// sorted by vaddr. Pages contiguous in both become one run; each run
    /// is hashed from the target's memory.
    pub fn dup_runs(pid: i32, dups: &[(u64, u64)]) -> Result<Vec<PageRun>, DumpError> {
        const MAX_RUN: u64 = 8 << 20;
        let mut runs: Vec<PageRun> = Vec::new();
        for &(vaddr, offset) in dups {
            match runs.last_mut() {
                Some(r)
                    if r.vaddr + r.nr_pages * PAGE == vaddr
                        && r.offset + r.nr_pages * PAGE == offset
                        && r.nr_pages * PAGE < MAX_RUN =>
                {
                    r.nr_pages += 1
                }
                _ => runs.push(PageRun {
                    vaddr,
                    nr_pages: 1,
                    offset,
                    hash: 0,
                }),
            }
        }
        let mut buf = Vec::new();
        for r in &mut runs {
            buf.resize((r.nr_pages * PAGE) as usize, 0);
            mem::read(pid, RemoteAddr(r.vaddr), &mut buf).dump_ctx(pid, "read shared pages")?;
            r.hash = xxhash_rust::xxh3::xxh3_64(&buf);
        }
        Ok(runs)
    }
}

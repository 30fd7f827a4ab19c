//! Pages shared copy-on-write between processes of the tree (memory
//! written before a fork and not since) are stored in the image once.
//!
//! /proc/PID/pagemap gives each present page's frame number (PFN) to a
//! dumper with CAP_SYS_ADMIN. A private page whose frame was already
//! written to `pages.img` for another process is the same physical page,
//! so its bytes are the same: its run points at the stored copy instead.
//!
//! Dup runs carry a hash like any other run, so restore verifies them
//! (once per stored range). They are cut where the stored runs are cut, so
//! that a dup run covering a whole stored run takes its hash without
//! reading anything; only partial overlaps are read, through
//! `/proc/PID/mem`, which (unlike process_vm_readv) leaves the pages shared.

use std::collections::{BTreeMap, HashMap};

use stasis_image::PageRun;
use stasis_sys::{mem::ProcMem, RemoteAddr};

use super::PAGE;
use crate::error::{DumpError, SysCtx};

/// A run in `pages.img`: its offset, pages and hash.
type Stored = (u64, u64, u64);

/// Frames already in `pages.img`, and where.
#[derive(Default)]
pub struct PageDedup {
    /// pfn -> offset in `pages.img`.
    known: HashMap<u64, u64>,
    /// Stored runs: offset -> (pages, hash).
    stored: BTreeMap<u64, (u64, u64)>,
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
                self.stored.insert(r.offset, (r.nr_pages, r.hash));
            }
        }
    }

    /// The stored run holding `offset`.
    fn stored_run(&self, offset: u64) -> Option<Stored> {
        let (&start, &(pages, hash)) = self.stored.range(..=offset).next_back()?;
        (offset < start + pages * PAGE).then_some((start, pages, hash))
    }

    /// Runs for pages already stored: `dups` holds (vaddr, offset) pairs
    /// sorted by vaddr. Pages contiguous in both, within one stored run,
    /// become one run.
    pub fn dup_runs(&self, pid: i32, dups: &[(u64, u64)]) -> Result<Vec<PageRun>, DumpError> {
        let mut runs: Vec<(PageRun, Option<Stored>)> = Vec::new();
        for &(vaddr, offset) in dups {
            let stored = self.stored_run(offset);
            match runs.last_mut() {
                Some((r, s))
                    if r.vaddr + r.nr_pages * PAGE == vaddr
                        && r.offset + r.nr_pages * PAGE == offset
                        && *s == stored =>
                {
                    r.nr_pages += 1
                }
                _ => runs.push((
                    PageRun {
                        vaddr,
                        nr_pages: 1,
                        offset,
                        hash: 0,
                    },
                    stored,
                )),
            }
        }
        let mut proc_mem = None;
        let mut buf = Vec::new();
        let mut out = Vec::with_capacity(runs.len());
        for (mut r, stored) in runs {
            match stored {
                Some((start, pages, hash)) if start == r.offset && pages == r.nr_pages => {
                    r.hash = hash
                }
                _ => {
                    if proc_mem.is_none() {
                        proc_mem = Some(ProcMem::open(pid).dump_ctx(pid, "open memory")?);
                    }
                    let m = proc_mem.as_ref().expect("opened above");
                    buf.resize((r.nr_pages * PAGE) as usize, 0);
                    m.read(RemoteAddr(r.vaddr), &mut buf)
                        .dump_ctx(pid, "read shared pages")?;
                    r.hash = xxhash_rust::xxh3::xxh3_64(&buf);
                }
            }
            out.push(r);
        }
        Ok(out)
    }
}

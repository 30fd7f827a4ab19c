//! Private memory still shared copy-on-write between a parent and its
//! children comes back shared, instead of once per process.
//!
//! At dump such pages are stored once ([`super::dedup`]): the child's runs
//! point at the parent's bytes. At restore the parent's process, still
//! running the restorer's code, maps each such region at its address
//! ("premaps" it), fills it with its own pages from the image and only then
//! forks its children, which inherit the region copy-on-write, as the
//! originals did. Each process's memory switch then keeps the inherited
//! region instead of mapping it afresh: it writes only the pages whose
//! contents differ from the premapping ancestor's (which copies just those)
//! and drops the pages the ancestor had that it has not (MADV_DONTNEED:
//! zero again, as they were).
//!
//! A region is premapped by the topmost process that shares it with a
//! child; its descendants inherit it through every fork below. A premap
//! that collides with the restorer's own memory is left out, and the
//! process says so in its status report ([`failed_note`]): that region is
//! then restored the ordinary way in every process that would have
//! inherited it.

use std::collections::BTreeMap;

use stasis_image::{self as img, PageMap, PageRun, Process, Vma, VmaKind};

use super::PAGE;
use crate::tree::Plan;

/// Prefix of the status-report note listing the premaps left out.
const FAILED: &str = "premaps left out:";

/// A region one process maps and fills before forking its children.
#[derive(Debug, Clone)]
pub struct Premap {
    pub start: u64,
    pub end: u64,
    /// The premapping process's runs inside the region, clipped to it.
    pub runs: Vec<PageRun>,
}

/// Which regions each process makes and which it may have inherited.
#[derive(Debug, Default)]
pub struct CowPlan {
    /// Per process index: the regions it premaps.
    pub premaps: Vec<Vec<Premap>>,
    /// Per process index: every region present in it at its memory switch
    /// if its premap succeeded, its own or inherited, by (start, end), with
    /// the index of the process that premapped it and the premap's index
    /// there.
    pub visible: Vec<BTreeMap<(u64, u64), (usize, usize)>>,
}

impl CowPlan {
    /// Drops the regions the processes reported left out (`notes`: image
    /// pid -> report note), from them and from everything below them.
    pub fn apply_notes(&mut self, procs: &[Process], notes: &BTreeMap<u32, String>) {
        for (i, p) in procs.iter().enumerate() {
            let Some(failed) = notes.get(&p.pid).and_then(|n| parse_failed(n)) else {
                continue;
            };
            for v in &mut self.visible {
                v.retain(|_, &mut (src, k)| !(src == i && failed.contains(&k)));
            }
        }
    }

    /// The regions process `i` has inherited (or premapped), with the runs
    /// they were filled with.
    pub fn inherited(&self, i: usize) -> BTreeMap<(u64, u64), &[PageRun]> {
        self.visible[i]
            .iter()
            .map(|(&k, &(src, n))| (k, self.premaps[src][n].runs.as_slice()))
            .collect()
    }
}

/// The status-report note for premaps `failed` (indices) left out: empty
/// when none was.
pub fn failed_note(failed: &[usize]) -> String {
    if failed.is_empty() {
        return String::new();
    }
    let list: Vec<String> = failed.iter().map(|i| i.to_string()).collect();
    format!("{FAILED}{}", list.join(","))
}

/// The indices in a note made by [`failed_note`].
fn parse_failed(note: &str) -> Option<Vec<usize>> {
    let list = note.strip_prefix(FAILED)?;
    Some(list.split(',').filter_map(|x| x.parse().ok()).collect())
}

/// A private anonymous VMA a region can be made of: inherited across fork
/// as it is (no MADV_DONTFORK/WIPEONFORK), not a stack.
pub fn eligible(v: &Vma) -> bool {
    v.kind == VmaKind::Anon as i32
        && v.shmem_id == 0
        && v.flags & libc::MAP_PRIVATE as u32 != 0
        && v.flags & libc::MAP_GROWSDOWN as u32 == 0
        && v.madv & (img::MADV_BIT_DONTFORK | img::MADV_BIT_WIPEONFORK) == 0
        && v.guards.is_empty()
}

/// The runs of `runs` (sorted by vaddr) clipped to `[start, end)`.
fn clip(runs: &[PageRun], start: u64, end: u64) -> Vec<PageRun> {
    let i = runs.partition_point(|r| r.vaddr + r.nr_pages * PAGE <= start);
    runs[i..]
        .iter()
        .take_while(|r| r.vaddr < end)
        .map(|r| {
            let a = r.vaddr.max(start);
            let b = (r.vaddr + r.nr_pages * PAGE).min(end);
            PageRun {
                vaddr: a,
                nr_pages: (b - a) / PAGE,
                offset: r.offset + (a - r.vaddr),
                hash: 0,
            }
        })
        .collect()
}

/// Offset of a run's pages relative to their addresses: two runs hold the
/// same stored page at an address iff they overlap there with equal deltas.
fn delta(r: &PageRun) -> i128 {
    r.offset as i128 - r.vaddr as i128
}

/// True if some page of `a` is the same stored page as in `b` at the same
/// address.
fn shares(a: &[PageRun], b: &[PageRun]) -> bool {
    a.iter().any(|r| {
        let end = r.vaddr + r.nr_pages * PAGE;
        let i = b.partition_point(|s| s.vaddr + s.nr_pages * PAGE <= r.vaddr);
        b[i..]
            .iter()
            .take_while(|s| s.vaddr < end)
            .any(|s| delta(s) == delta(r))
    })
}

/// Plans the regions: for each process (in the planner's fork order), each
/// eligible VMA not already inherited that some child it forks has too,
/// with at least one page in common.
pub fn plan(procs: &[Process], pagemaps: &[PageMap], tree: &Plan) -> CowPlan {
    let runs_of = |pid: u32| -> &[PageRun] {
        pagemaps
            .iter()
            .find(|m| m.pid == pid && m.shmem_id == 0)
            .map(|m| m.runs.as_slice())
            .unwrap_or(&[])
    };
    let n = procs.len();
    let mut out = CowPlan {
        premaps: vec![Vec::new(); n],
        visible: vec![BTreeMap::new(); n],
    };
    let mut stack = vec![tree.root];
    while let Some(i) = stack.pop() {
        let p = &procs[i];
        let node = &tree.nodes[i];
        let children: Vec<usize> = node.early.iter().chain(&node.late).copied().collect();
        if !p.zombie {
            let mine = runs_of(p.pid);
            for v in p.vmas.iter().filter(|v| eligible(v)) {
                let inherited = out.visible[i]
                    .range(..(v.end, 0))
                    .any(|(&(s, e), _)| s < v.end && e > v.start);
                if inherited {
                    continue;
                }
                let ours = clip(mine, v.start, v.end);
                if ours.is_empty() {
                    continue;
                }
                let shared = children.iter().any(|&c| {
                    let cp = &procs[c];
                    !cp.zombie
                        && cp
                            .vmas
                            .iter()
                            .any(|w| w.start == v.start && w.end == v.end && eligible(w))
                        && shares(&clip(runs_of(cp.pid), v.start, v.end), &ours)
                });
                if shared {
                    let k = out.premaps[i].len();
                    out.visible[i].insert((v.start, v.end), (i, k));
                    out.premaps[i].push(Premap {
                        start: v.start,
                        end: v.end,
                        runs: ours,
                    });
                }
            }
        }
        for &c in &children {
            out.visible[c] = out.visible[i].clone();
            stack.push(c);
        }
    }
    out
}

/// What the memory switch does in one kept region.
#[derive(Debug, Default, PartialEq)]
pub struct Fixup {
    /// Pieces of the process's own runs whose pages differ from the
    /// inherited ones: to read from the image.
    pub fill: Vec<PageRun>,
    /// Ranges the inherited region has pages in and the process has none:
    /// to drop.
    pub zero: Vec<(u64, u64)>,
}

/// The fixup of a region `[start, end)` inherited with `src` runs, for a
/// process whose runs are `runs` (both sorted by vaddr).
pub fn fixup(src: &[PageRun], runs: &[PageRun], start: u64, end: u64) -> Fixup {
    let own = clip(runs, start, end);
    let mut out = Fixup::default();
    let end_of = |r: &PageRun| r.vaddr + r.nr_pages * PAGE;
    let piece = |r: &PageRun, a: u64, b: u64| PageRun {
        vaddr: a,
        nr_pages: (b - a) / PAGE,
        offset: r.offset + (a - r.vaddr),
        hash: 0,
    };
    for r in &own {
        let mut at = r.vaddr;
        let i = src.partition_point(|s| end_of(s) <= r.vaddr);
        for s in src[i..].iter().take_while(|s| s.vaddr < end_of(r)) {
            if delta(s) != delta(r) {
                continue;
            }
            if s.vaddr > at {
                out.fill.push(piece(r, at, s.vaddr));
            }
            at = at.max(end_of(s).min(end_of(r)));
        }
        if at < end_of(r) {
            out.fill.push(piece(r, at, end_of(r)));
        }
    }
    for s in src {
        let mut at = s.vaddr;
        let i = own.partition_point(|r| end_of(r) <= s.vaddr);
        for r in own[i..].iter().take_while(|r| r.vaddr < end_of(s)) {
            if r.vaddr > at {
                out.zero.push((at, r.vaddr));
            }
            at = at.max(end_of(r).min(end_of(s)));
        }
        if at < end_of(s) {
            out.zero.push((at, end_of(s)));
        }
    }
    out
}

/// The parts of `[start, end)` outside every range of `kept` (sorted,
/// disjoint).
pub fn minus(start: u64, end: u64, kept: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut at = start;
    let i = kept.partition_point(|&(_, e)| e <= start);
    for &(s, e) in kept[i..].iter().take_while(|&&(s, _)| s < end) {
        if s > at {
            out.push((at, s));
        }
        at = at.max(e.min(end));
    }
    if at < end {
        out.push((at, end));
    }
    out
}

/// The parts of `runs` outside every range of `kept` (sorted, disjoint).
pub fn outside(runs: &[PageRun], kept: &[(u64, u64)]) -> Vec<PageRun> {
    let mut out = Vec::with_capacity(runs.len());
    for r in runs {
        for (a, b) in minus(r.vaddr, r.vaddr + r.nr_pages * PAGE, kept) {
            out.push(PageRun {
                vaddr: a,
                nr_pages: (b - a) / PAGE,
                offset: r.offset + (a - r.vaddr),
                hash: 0,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_notes_round_trip() {
        assert_eq!(failed_note(&[]), "");
        assert_eq!(
            parse_failed(&failed_note(&[0, 3, 12])),
            Some(vec![0, 3, 12])
        );
        assert_eq!(parse_failed("something else"), None);
    }

    fn run(vaddr: u64, pages: u64, offset: u64) -> PageRun {
        PageRun {
            vaddr: vaddr * PAGE,
            nr_pages: pages,
            offset: offset * PAGE,
            hash: 0,
        }
    }

    #[test]
    fn identical_pages_are_neither_filled_nor_dropped() {
        let src = [run(10, 10, 100)];
        assert_eq!(fixup(&src, &src, 10 * PAGE, 20 * PAGE), Fixup::default());
    }

    #[test]
    fn changed_missing_and_extra_pages() {
        // Source: pages 10..20 at offsets 100..110.
        let src = [run(10, 10, 100)];
        // Ours: 10..12 same, 12..14 our own copy, 14..16 missing, 16..20
        // same, 20..22 extra (outside the source's pages).
        let ours = [
            run(10, 2, 100),
            run(12, 2, 500),
            run(16, 4, 106),
            run(20, 2, 600),
        ];
        let f = fixup(&src, &ours, 0, 64 * PAGE);
        assert_eq!(f.fill, vec![run(12, 2, 500), run(20, 2, 600)]);
        assert_eq!(f.zero, vec![(14 * PAGE, 16 * PAGE)]);
    }

    #[test]
    fn runs_cut_differently_still_match() {
        let src = [run(0, 4, 10), run(4, 4, 14)];
        let ours = [run(0, 8, 10)];
        assert_eq!(fixup(&src, &ours, 0, 8 * PAGE), Fixup::default());
        let ours = [run(0, 8, 50)];
        let f = fixup(&src, &ours, 0, 8 * PAGE);
        assert_eq!(f.fill, vec![run(0, 8, 50)]);
        assert!(f.zero.is_empty());
    }

    #[test]
    fn runs_across_a_kept_region_keep_their_outer_parts() {
        let runs = [run(0, 10, 100), run(20, 2, 200)];
        let kept = [(4 * PAGE, 6 * PAGE), (20 * PAGE, 30 * PAGE)];
        assert_eq!(outside(&runs, &kept), vec![run(0, 4, 100), run(6, 4, 106)]);
    }
}

//! Structured mutations of decoded images, for the restore planner.
//!
//! Shared by the stable test `plan_mutations.rs` and the cargo-fuzz target
//! `fuzz/fuzz_targets/plan_restore.rs` (which includes this file by path).
//! The input bytes are choices: which seed, then a list of edits to the
//! tree, memory, fds and page maps. Mutating the decoded image, not its
//! bytes, gets every mutant past the checksums and the protobuf decoder;
//! [`stasis_image::validate`] then keeps only what restore could read (a
//! `core.img` on disk goes through the same validation), and the planner
//! must answer every such image with a plan or an error, never a panic.

#![allow(dead_code)] // each user takes a different subset

use stasis_image::{decode_core, FdKind, Image, PageRun, VmaKind};

/// The fuzz seeds of the image decoder, decoded.
pub fn seeds() -> Vec<Image> {
    const SEEDS: &[&[u8]] = &[
        include_bytes!("../../../../fuzz/seeds/decode_core/sample.img"),
        include_bytes!("../../../../fuzz/seeds/decode_core/epoll_ghost.img"),
        include_bytes!("../../../../fuzz/seeds/decode_core/fanotify.img"),
        include_bytes!("../../../../fuzz/seeds/decode_core/inet.img"),
        include_bytes!("../../../../fuzz/seeds/decode_core/inotify.img"),
        include_bytes!("../../../../fuzz/seeds/decode_core/mqueue.img"),
        include_bytes!("../../../../fuzz/seeds/decode_core/tree_fifo.img"),
        include_bytes!("../../../../fuzz/seeds/decode_core/tree_locks.img"),
        include_bytes!("../../../../fuzz/seeds/decode_core/tree_pidfd.img"),
        include_bytes!("../../../../fuzz/seeds/decode_core/tree_pty.img"),
        include_bytes!("../../../../fuzz/seeds/decode_core/unix_more.img"),
        include_bytes!("../../../../fuzz/seeds/decode_core/unix_rights.img"),
        include_bytes!("../../../../fuzz/seeds/decode_core/unlinked.img"),
        include_bytes!("../../../../fuzz/seeds/decode_core/uring.img"),
    ];
    SEEDS.iter().filter_map(|b| decode_core(b).ok()).collect()
}

/// Reads choices from the input; zeros once it runs out.
pub struct Choices<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Choices<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Choices { data, pos: 0 }
    }

    pub fn done(&self) -> bool {
        self.pos >= self.data.len()
    }

    pub fn byte(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }

    pub fn word(&mut self) -> u64 {
        (0..8).fold(0u64, |acc, _| (acc << 8) | self.byte() as u64)
    }

    /// 0..n (0 when n is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (((self.byte() as usize) << 8) | self.byte() as usize) % n
        }
    }

    fn flip(&mut self) -> bool {
        self.byte() & 1 == 1
    }
}

/// A pid worth trying: one of the image's, or an edge value.
fn pid(image: &Image, c: &mut Choices) -> u32 {
    let edges = [0, 1, 2, 300, i32::MAX as u32, 0x8000_0000, u32::MAX];
    let n = image.processes.len();
    let k = c.below(n + edges.len() + 1);
    match k {
        k if k < n => image.processes[k].pid,
        k if k < n + edges.len() => edges[k - n],
        _ => c.word() as u32,
    }
}

/// An address worth trying: near one of the process's VMA bounds, or an
/// edge value.
fn addr(image: &Image, p: usize, c: &mut Choices) -> u64 {
    let edges = [0, 0x1000, 0x10_0000, 0x7fff_ffff_f000, 1 << 47, u64::MAX];
    let vmas = &image.processes[p].vmas;
    match c.below(3) {
        0 if !vmas.is_empty() => {
            let v = &vmas[c.below(vmas.len())];
            let base = if c.flip() { v.start } else { v.end };
            base.wrapping_add((c.byte() as i8 as i64 * 0x1000) as u64)
        }
        1 => edges[c.below(edges.len())],
        _ => c.word(),
    }
}

/// Applies up to 8 edits chosen by `c` to `image`.
pub fn mutate(image: &mut Image, c: &mut Choices) {
    let edits = 1 + c.below(8);
    for _ in 0..edits {
        if c.done() || image.processes.is_empty() {
            return;
        }
        match c.below(4) {
            0 => tree_edit(image, c),
            1 => memory_edit(image, c),
            2 => fd_edit(image, c),
            _ => pages_edit(image, c),
        }
    }
}

fn tree_edit(image: &mut Image, c: &mut Choices) {
    let n = image.processes.len();
    let i = c.below(n);
    let v = pid(image, c);
    match c.below(10) {
        0 => image.processes[i].pid = v,
        1 => image.processes[i].ppid = v,
        2 => image.processes[i].sid = v,
        3 => image.processes[i].pgid = v,
        4 => image.processes[i].zombie ^= true,
        5 => image.processes[i].files_shared_with_parent ^= true,
        6 => image.inventory.root_pid = v,
        7 => image.inventory.shell_job ^= true,
        8 => {
            image.processes.remove(i);
        }
        _ => {
            let mut copy = image.processes[i].clone();
            copy.pid = v;
            if let Some(t) = copy.threads.first_mut() {
                t.tid = v;
            }
            image.processes.push(copy);
        }
    }
}

fn memory_edit(image: &mut Image, c: &mut Choices) {
    let i = c.below(image.processes.len());
    let a = addr(image, i, c);
    let p = &mut image.processes[i];
    if p.vmas.is_empty() {
        return;
    }
    let j = c.below(p.vmas.len());
    match c.below(8) {
        0 => p.vmas[j].start = a,
        1 => p.vmas[j].end = a,
        2 => {
            p.vmas.remove(j);
        }
        3 => p.vmas[j].kind = c.below(8) as i32,
        4 => p.vmas[j].flags ^= 1 << c.below(32),
        5 => p.vmas[j].shmem_id = c.word() % 4,
        6 => {
            p.exe_object = c.word() % 3;
            if c.flip() {
                p.exe_path = p.vmas[j].name.clone();
            }
        }
        _ => {
            let mut v = p.vmas[j].clone();
            v.start = a;
            v.end = a.wrapping_add(0x1000 << c.below(8));
            v.kind = VmaKind::Anon as i32;
            p.vmas.push(v);
        }
    }
}

fn fd_edit(image: &mut Image, c: &mut Choices) {
    let i = c.below(image.processes.len());
    let p = &mut image.processes[i];
    if p.fds.is_empty() {
        return;
    }
    let j = c.below(p.fds.len());
    let fd = &mut p.fds[j];
    match c.below(6) {
        0 => fd.fd = [0, 1, 2, 3, 1023, 65535, i32::MAX, -1][c.below(8)],
        1 => fd.kind = c.below(FdKind::InetSocket as usize + 2) as i32,
        2 => fd.desc = c.byte() as u32 % 8,
        3 => {
            fd.dup_of = if c.flip() {
                None
            } else {
                Some(c.below(8) as i32)
            }
        }
        4 => fd.pipe_ino = c.word() % 4,
        _ => {
            p.fds.remove(j);
        }
    }
}

fn pages_edit(image: &mut Image, c: &mut Choices) {
    if image.pagemaps.is_empty() {
        return;
    }
    let m = c.below(image.pagemaps.len());
    let newpid = pid(image, c);
    let proc_idx = c.below(image.processes.len());
    let a = addr(image, proc_idx, c);
    let pm = &mut image.pagemaps[m];
    match c.below(5) {
        0 => pm.pid = newpid,
        1 => pm.shmem_id = c.word() % 4,
        2 if !pm.runs.is_empty() => {
            let r = c.below(pm.runs.len());
            pm.runs[r].vaddr = a & !0xfff;
        }
        3 if !pm.runs.is_empty() => {
            let r = c.below(pm.runs.len());
            pm.runs[r].nr_pages = [0, 1, 2, 255, 1 << 20, u64::MAX][c.below(6)];
        }
        _ => {
            let run = PageRun {
                vaddr: a & !0xfff,
                nr_pages: 1 + c.below(4) as u64,
                ..pm.runs.first().cloned().unwrap_or_default()
            };
            pm.runs.push(run);
        }
    }
}

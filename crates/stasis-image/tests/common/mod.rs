//! Helpers shared by the integration tests: a small valid image, a
//! self-removing temporary directory, a deterministic PRNG, and `reseal`,
//! which recomputes every checksum of a (mutated) `core.img` so mutations
//! reach the payload decoder and the validator.

#![allow(dead_code)] // each test file uses a different subset

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use stasis_image::*;

/// A small image with two processes, a page map and a pipe.
pub fn sample_image() -> Image {
    let thread = |tid: u32| Thread {
        tid,
        regs: Some(X86Regs {
            rip: 0x40_1000,
            rsp: 0x7ffc_0000_1000,
            ..Default::default()
        }),
        xstate: vec![0xaa; 64],
        sigmask: 1 << 9,
        comm: "worker".into(),
        ..Default::default()
    };
    let vma = |start: u64, end: u64, kind: VmaKind, name: &str| Vma {
        start,
        end,
        prot: 3,
        flags: 2,
        kind: kind as i32,
        name: name.into(),
        ..Default::default()
    };
    let parent = Process {
        pid: 100,
        ppid: 1,
        pgid: 100,
        sid: 100,
        creds: Some(Creds {
            uid: 1000,
            groups: vec![1000, 27],
            ..Default::default()
        }),
        cwd: "/home/u".into(),
        root: "/".into(),
        vmas: vec![
            vma(0x40_0000, 0x40_2000, VmaKind::File, "/usr/bin/sleep"),
            vma(0x60_0000, 0x60_4000, VmaKind::Anon, "[heap]"),
            vma(0x7ffc_0000_0000, 0x7ffc_0002_0000, VmaKind::Anon, "[stack]"),
        ],
        threads: vec![thread(100), thread(102)],
        fds: vec![
            Fd {
                fd: 0,
                kind: FdKind::CharDev as i32,
                path: "/dev/null".into(),
                ..Default::default()
            },
            Fd {
                fd: 3,
                kind: FdKind::Pipe as i32,
                pipe_ino: 777,
                ..Default::default()
            },
        ],
        exe_path: "/usr/bin/sleep".into(),
        ..Default::default()
    };
    let child = Process {
        pid: 101,
        ppid: 100,
        threads: vec![thread(101)],
        vmas: vec![
            vma(0x1000, 0x3000, VmaKind::Anon, ""),
            Vma {
                flags: libc_map_shared(),
                shmem_id: 9,
                ..vma(0x4000, 0x6000, VmaKind::Anon, "")
            },
        ],
        fds: vec![Fd {
            fd: 4,
            kind: FdKind::Pipe as i32,
            pipe_ino: 777,
            desc: 1,
            ..Default::default()
        }],
        ..Default::default()
    };
    let zombie = Process {
        pid: 102,
        ppid: 100,
        pgid: 100,
        sid: 100,
        zombie: true,
        exit_status: 3 << 8,
        ..Default::default()
    };
    Image {
        inventory: Inventory {
            format_major: FORMAT_MAJOR,
            tool_version: "0.1.0".into(),
            kernel_release: "6.18.0".into(),
            arch: "x86_64".into(),
            root_pid: 100,
            page_size: PAGE_SIZE as u32,
            pids: vec![100, 101, 102],
            pages_file_size: 4 * PAGE_SIZE,
            ..Default::default()
        },
        processes: vec![parent, child, zombie],
        pagemaps: vec![
            PageMap {
                pid: 100,
                runs: vec![
                    PageRun {
                        vaddr: 0x60_0000,
                        nr_pages: 2,
                        offset: PAGE_SIZE,
                        hash: 1,
                    },
                    PageRun {
                        vaddr: 0x7ffc_0001_f000,
                        nr_pages: 1,
                        offset: 3 * PAGE_SIZE,
                        hash: 2,
                    },
                ],
                ..Default::default()
            },
            PageMap {
                pid: 0,
                shmem_id: 9,
                shmem_size: 2 * PAGE_SIZE,
                runs: vec![PageRun {
                    vaddr: PAGE_SIZE,
                    nr_pages: 1,
                    offset: PAGE_SIZE,
                    hash: 3,
                }],
                ..Default::default()
            },
        ],
        pipes: vec![Pipe {
            ino: 777,
            capacity: 65536,
            data: b"hello".to_vec(),
            ..Default::default()
        }],
    }
}

/// MAP_SHARED (no libc dependency in these tests).
fn libc_map_shared() -> u32 {
    1
}

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("stasis-image-test-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// xorshift64*: deterministic, so a failure reproduces.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform-ish in `0..n`; `n > 0`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

/// Recomputes the header crc, every record crc that can be reached, and the
/// End record's count and file crc, following the layout in `framing.rs`.
pub fn reseal(bytes: &mut [u8]) {
    if bytes.len() < CORE_HEADER_LEN {
        return;
    }
    let crc = crc32c::crc32c(&bytes[..12]);
    bytes[12..16].copy_from_slice(&crc.to_le_bytes());
    let mut pos = CORE_HEADER_LEN;
    let mut count = 0u64;
    while pos + RECORD_HEADER_LEN <= bytes.len() {
        let kind = u32_at(bytes, pos);
        let len = u32_at(bytes, pos + 4) as usize;
        let Some(end) = (pos + RECORD_HEADER_LEN).checked_add(len) else {
            return;
        };
        if end > bytes.len() {
            return;
        }
        if kind == 0xFFFF_FFFF && len == 12 {
            let file_crc = crc32c::crc32c(&bytes[..pos]);
            bytes[pos + 12..pos + 20].copy_from_slice(&count.to_le_bytes());
            bytes[pos + 20..pos + 24].copy_from_slice(&file_crc.to_le_bytes());
        }
        let crc =
            crc32c::crc32c_append(crc32c::crc32c(&bytes[pos..pos + 8]), &bytes[pos + 12..end]);
        bytes[pos + 8..pos + 12].copy_from_slice(&crc.to_le_bytes());
        pos = end;
        count += 1;
    }
}

/// Frames raw records as `core.img` with correct checksums and End record.
pub fn frame(records: &[(u32, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&CORE_MAGIC);
    out.extend_from_slice(&FORMAT_MAJOR.to_le_bytes());
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    let push = |out: &mut Vec<u8>, kind: u32, payload: &[u8]| {
        let start = out.len();
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        let crc = crc32c::crc32c_append(crc32c::crc32c(&out[start..]), payload);
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(payload);
    };
    for (kind, payload) in records {
        push(&mut out, *kind, payload);
    }
    let mut end = (records.len() as u64).to_le_bytes().to_vec();
    end.extend_from_slice(&crc32c::crc32c(&out).to_le_bytes());
    push(&mut out, 0xFFFF_FFFF, &end);
    out
}

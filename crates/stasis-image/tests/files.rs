//! Image directory I/O: `write_core`/`read_core` and the page store.

mod common;

use std::fs;
use std::os::unix::fs::{FileExt, PermissionsExt};

use common::{sample_image, Rng, TempDir};
use stasis_image::*;

fn mode(path: &std::path::Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn pages(seed: u64, n: usize) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    (0..n * PAGE_SIZE as usize)
        .map(|_| rng.next() as u8)
        .collect()
}

#[test]
fn core_round_trip_and_mode() {
    let dir = TempDir::new();
    let image = sample_image();
    write_core(dir.path(), &image).unwrap();
    assert_eq!(read_core(dir.path()).unwrap(), image);
    assert_eq!(mode(&dir.path().join(CORE_FILE)), 0o600);
    assert!(!dir.path().join("core.img.tmp").exists());
}

#[test]
fn core_replaces_stale_tmp_and_old_file() {
    let dir = TempDir::new();
    let tmp = dir.path().join("core.img.tmp");
    fs::write(&tmp, b"left over by a dump that died").unwrap();
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o644)).unwrap();
    write_core(dir.path(), &sample_image()).unwrap();
    let mut second = sample_image();
    second.inventory.tool_version = "0.2.0".into();
    write_core(dir.path(), &second).unwrap();
    assert_eq!(read_core(dir.path()).unwrap(), second);
    assert_eq!(mode(&dir.path().join(CORE_FILE)), 0o600);
    assert!(!tmp.exists());
}

#[test]
fn write_core_refuses_invalid_image() {
    let dir = TempDir::new();
    let mut image = sample_image();
    image.processes[0].threads.clear();
    let err = write_core(dir.path(), &image).unwrap_err();
    assert!(matches!(err, WriteImageError::Invalid(_)), "{err}");
    assert_eq!(
        err.to_string(),
        "refusing to write an invalid image: core.img: process 100 has no threads"
    );
    assert!(fs::read_dir(dir.path()).unwrap().next().is_none());
}

#[test]
fn read_core_errors() {
    let dir = TempDir::new();
    let err = read_core(dir.path()).unwrap_err();
    assert!(matches!(
        err,
        ReadImageError::Missing {
            file: "core.img",
            ..
        }
    ));
    assert_eq!(
        err.to_string(),
        format!(
            "image directory {} holds no complete image (it has no core.img)",
            dir.path().display()
        )
    );

    let bytes = encode_core(&sample_image());
    fs::write(dir.path().join(CORE_FILE), &bytes[..bytes.len() - 3]).unwrap();
    let err = read_core(dir.path()).unwrap_err();
    assert!(
        matches!(
            &err,
            ReadImageError::Core {
                source: DecodeError::TruncatedRecord { .. },
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("core.img: truncated at byte"),
        "{err}"
    );

    // Over the cap: refused from the size alone (a sparse file, no I/O).
    let f = fs::File::create(dir.path().join(CORE_FILE)).unwrap();
    f.set_len(MAX_CORE_FILE_SIZE + 1).unwrap();
    assert!(matches!(
        read_core(dir.path()).unwrap_err(),
        ReadImageError::TooLarge { .. }
    ));
}

/// Writes a pages file with three runs; returns (runs, total size).
fn write_pages(dir: &std::path::Path) -> (Vec<PageRun>, u64) {
    let mut w = PagesWriter::create(dir).unwrap();
    assert_eq!(w.offset(), PAGE_SIZE);
    let mut runs = Vec::new();
    for (i, (vaddr, n)) in [(0x60_0000u64, 2usize), (0x7f00_0000, 3), (0x7f10_0000, 1)]
        .into_iter()
        .enumerate()
    {
        let before = w.offset();
        let run = w.append(vaddr, &pages(i as u64 + 1, n)).unwrap();
        assert_eq!(run.offset, before);
        assert_eq!(run.offset % PAGE_SIZE, 0);
        assert_eq!(run.nr_pages, n as u64);
        assert_eq!(run.vaddr, vaddr);
        runs.push(run);
    }
    let size = w.finish().unwrap();
    assert_eq!(size, 7 * PAGE_SIZE);
    (runs, size)
}

#[test]
fn pages_round_trip_and_mode() {
    let dir = TempDir::new();
    let (runs, size) = write_pages(dir.path());
    let path = dir.path().join(PAGES_FILE);
    assert_eq!(fs::metadata(&path).unwrap().len(), size);
    assert_eq!(mode(&path), 0o600);
    assert!(!dir.path().join("pages.img.tmp").exists());

    let r = PagesReader::open(dir.path(), size).unwrap();
    assert_eq!(r.size(), size);
    r.verify(&runs).unwrap();
    // Any order, any subset.
    r.verify(&[runs[2].clone(), runs[0].clone()]).unwrap();
    r.verify(&[]).unwrap();
    // The bytes are where the run says.
    let mut buf = vec![0u8; 3 * PAGE_SIZE as usize];
    r.file().read_exact_at(&mut buf, runs[1].offset).unwrap();
    assert_eq!(buf, pages(2, 3));
    assert_eq!(runs[1].hash, xxhash_rust::xxh3::xxh3_64(&buf));
}

#[test]
fn pages_header() {
    let dir = TempDir::new();
    let (_, size) = write_pages(dir.path());
    let bytes = fs::read(dir.path().join(PAGES_FILE)).unwrap();
    assert_eq!(&bytes[..8], b"STASISPG");
    assert_eq!(
        u32::from_le_bytes(bytes[8..12].try_into().unwrap()),
        FORMAT_MAJOR
    );
    assert!(bytes[20..PAGE_SIZE as usize].iter().all(|&b| b == 0));

    let tamper = |at: usize, val: &[u8]| {
        let mut b = bytes.clone();
        b[at..at + val.len()].copy_from_slice(val);
        fs::write(dir.path().join(PAGES_FILE), &b).unwrap();
        PagesReader::open(dir.path(), size).unwrap_err()
    };
    let e = tamper(0, b"X");
    assert!(matches!(e, ReadImageError::PagesBadMagic), "{e}");
    assert_eq!(
        e.to_string(),
        "pages.img: not a stasis pages file (bad magic)"
    );
    assert!(matches!(
        tamper(8, &[2]),
        ReadImageError::PagesHeaderChecksum
    ));

    // A consistent header of another version.
    let mut hdr = bytes[..16].to_vec();
    hdr[8..12].copy_from_slice(&2u32.to_le_bytes());
    let crc = crc32c::crc32c(&hdr);
    hdr.extend_from_slice(&crc.to_le_bytes());
    let e = tamper(0, &hdr);
    assert!(
        matches!(e, ReadImageError::PagesVersion { found: 2 }),
        "{e}"
    );
    assert_eq!(
        e.to_string(),
        "pages.img: image format version 2, this stasis reads version 1"
    );
}

#[test]
fn pages_missing() {
    let dir = TempDir::new();
    let err = PagesReader::open(dir.path(), 8192).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "image directory {} holds no complete image (it has no pages.img)",
            dir.path().display()
        )
    );
}

#[test]
fn corrupted_page_detected() {
    let dir = TempDir::new();
    let (runs, size) = write_pages(dir.path());
    let path = dir.path().join(PAGES_FILE);
    let mut bytes = fs::read(&path).unwrap();
    // One bit in the last page of the second run.
    let at = (runs[1].offset + 2 * PAGE_SIZE + 100) as usize;
    bytes[at] ^= 0x10;
    fs::write(&path, &bytes).unwrap();
    let r = PagesReader::open(dir.path(), size).unwrap();
    r.verify(&runs[..1]).unwrap();
    let err = r.verify(&runs).unwrap_err();
    assert!(matches!(
        err,
        ReadImageError::RunCorrupt {
            vaddr: 0x7f00_0000,
            ..
        }
    ));
    assert_eq!(
        err.to_string(),
        "pages.img: run at 0x7f000000..0x7f003000 (offset 12288, 3 pages) is corrupt: checksum mismatch"
    );
}

#[test]
fn truncated_pages_detected() {
    let dir = TempDir::new();
    let (runs, size) = write_pages(dir.path());
    let path = dir.path().join(PAGES_FILE);
    let bytes = fs::read(&path).unwrap();
    for cut in [0, 100, PAGE_SIZE, size - 1] {
        fs::write(&path, &bytes[..cut as usize]).unwrap();
        let err = PagesReader::open(dir.path(), size).unwrap_err();
        assert!(matches!(err, ReadImageError::PagesSize { .. }), "{err}");
    }
    let err = PagesReader::open(dir.path(), size).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "pages.img: size is {} bytes, the image expects {size} (truncated?)",
            size - 1
        )
    );
    let err = PagesReader::open(dir.path(), 4 * PAGE_SIZE).unwrap_err();
    assert!(
        err.to_string().ends_with("(written by another dump?)"),
        "{err}"
    );
    // A run past the end of a (consistently) shorter file.
    let r = PagesReader::open(dir.path(), size - 1).unwrap();
    assert!(matches!(
        r.verify(&runs).unwrap_err(),
        ReadImageError::RunOutOfBounds { .. }
    ));
}

#[test]
fn bad_runs_rejected() {
    let dir = TempDir::new();
    let (runs, size) = write_pages(dir.path());
    let r = PagesReader::open(dir.path(), size).unwrap();
    let edits: [&dyn Fn(&mut PageRun); 5] = [
        &|run| run.offset = 0,
        &|run| run.offset += 1,
        &|run| run.nr_pages = 0,
        &|run| run.nr_pages = u64::MAX,
        &|run| run.offset = u64::MAX - 4095,
    ];
    for edit in edits {
        let mut run = runs[0].clone();
        edit(&mut run);
        let err = r.verify(&[run]).unwrap_err();
        assert!(
            matches!(err, ReadImageError::RunOutOfBounds { .. }),
            "{err}"
        );
    }
}

#[test]
fn append_must_be_whole_pages() {
    let dir = TempDir::new();
    let mut w = PagesWriter::create(dir.path()).unwrap();
    for (vaddr, len) in [(0x1000, 0), (0x1000, 100), (0x1001, 4096)] {
        let err = w.append(vaddr, &vec![0; len]).unwrap_err();
        assert!(matches!(err, WriteImageError::Unaligned { .. }), "{err}");
    }
    assert_eq!(w.offset(), PAGE_SIZE);
    // The writer is still usable.
    w.append(0x1000, &pages(9, 1)).unwrap();
    assert_eq!(w.finish().unwrap(), 2 * PAGE_SIZE);
}

#[test]
fn unfinished_writer_leaves_nothing() {
    let dir = TempDir::new();
    let tmp = dir.path().join("pages.img.tmp");
    fs::write(&tmp, b"stale").unwrap();
    let mut w = PagesWriter::create(dir.path()).unwrap();
    assert_eq!(mode(&tmp), 0o600);
    w.append(0x1000, &pages(3, 2)).unwrap();
    drop(w);
    assert!(!tmp.exists());
    assert!(!dir.path().join(PAGES_FILE).exists());
}

#[test]
fn verify_spans_many_buffers() {
    // More than the 8 MiB verify buffer, in runs that straddle its edges.
    let dir = TempDir::new();
    let mut w = PagesWriter::create(dir.path()).unwrap();
    let mut runs = Vec::new();
    let mut vaddr = 0x10_0000_0000u64;
    for (i, n) in [1000usize, 1500, 7, 1].into_iter().enumerate() {
        runs.push(w.append(vaddr, &pages(i as u64 + 20, n)).unwrap());
        vaddr += (n as u64 + 1) * PAGE_SIZE;
    }
    let size = w.finish().unwrap();
    let r = PagesReader::open(dir.path(), size).unwrap();
    r.verify(&runs).unwrap();
    runs.reverse();
    r.verify(&runs).unwrap();
    runs[1].hash ^= 1;
    assert!(matches!(
        r.verify(&runs).unwrap_err(),
        ReadImageError::RunCorrupt { .. }
    ));
}

#[test]
fn full_image_directory() {
    // The order a dumper uses: pages first, then core with their size.
    let dir = TempDir::new();
    let mut w = PagesWriter::create(dir.path()).unwrap();
    let heap = w.append(0x60_0000, &pages(5, 2)).unwrap();
    let stack = w.append(0x7ffc_0001_f000, &pages(6, 1)).unwrap();
    // A shared memory object's run: at an object offset, not an address.
    let shm = w.append(PAGE_SIZE, &pages(7, 1)).unwrap();
    let size = w.finish().unwrap();
    let mut image = sample_image();
    image.inventory.pages_file_size = size;
    image.pagemaps[0].runs = vec![heap, stack];
    image.pagemaps[1].runs = vec![shm];
    write_core(dir.path(), &image).unwrap();

    let read = read_core(dir.path()).unwrap();
    let r = PagesReader::open(dir.path(), read.inventory.pages_file_size).unwrap();
    for m in &read.pagemaps {
        r.verify(&m.runs).unwrap();
    }
}

/// A dump's pages, then its core naming them, as a dumper writes them.
fn dump_into(dir: &std::path::Path, seed: u64) -> Image {
    let mut w = PagesWriter::create(dir).unwrap();
    let heap = w.append(0x60_0000, &pages(seed, 2)).unwrap();
    let name = w.name();
    let mut image = sample_image();
    image.inventory.pages_file = name.into();
    image.inventory.pages_file_size = w.finish().unwrap();
    image.pagemaps[0].runs = vec![heap];
    image.pagemaps[1].runs.clear();
    write_core(dir, &image).unwrap();
    image
}

fn open_and_verify(dir: &std::path::Path) -> Image {
    let image = read_core(dir).unwrap();
    let r = PagesReader::open_image(dir, &image.inventory).unwrap();
    r.verify(&image.pagemaps[0].runs).unwrap();
    image
}

#[test]
fn second_dump_writes_the_other_slot() {
    let dir = TempDir::new();
    let a = dump_into(dir.path(), 1);
    assert_eq!(a.inventory.pages_file, PAGES_FILE);
    // B's pages are written while A is still the image: A stays whole.
    let mut w = PagesWriter::create(dir.path()).unwrap();
    assert_eq!(w.name(), PAGES_ALT_FILE);
    w.append(0x60_0000, &pages(2, 3)).unwrap();
    w.finish().unwrap();
    assert_eq!(open_and_verify(dir.path()), a);
    // Committed B: A's pages are gone; a third dump goes back to pages.img.
    let b = dump_into(dir.path(), 3);
    assert_eq!(b.inventory.pages_file, PAGES_ALT_FILE);
    assert_eq!(open_and_verify(dir.path()), b);
    assert!(!dir.path().join(PAGES_FILE).exists());
    let c = dump_into(dir.path(), 4);
    assert_eq!(c.inventory.pages_file, PAGES_FILE);
    assert_eq!(open_and_verify(dir.path()), c);
    assert!(!dir.path().join(PAGES_ALT_FILE).exists());
    assert_eq!(mode(&dir.path().join(PAGES_FILE)), 0o600);
}

#[test]
fn readers_refuse_links_and_special_files() {
    let dir = TempDir::new();
    dump_into(dir.path(), 1);
    let other = TempDir::new();
    for name in [CORE_FILE, PAGES_FILE] {
        let real = other.path().join(name);
        fs::rename(dir.path().join(name), &real).unwrap();
        std::os::unix::fs::symlink(&real, dir.path().join(name)).unwrap();
        let err = read_core(dir.path())
            .and_then(|i| PagesReader::open_image(dir.path(), &i.inventory).map(|_| ()))
            .unwrap_err();
        assert!(matches!(err, ReadImageError::Symlink { .. }), "{err}");
        assert!(err.to_string().contains("is a symbolic link"), "{err}");
        fs::remove_file(dir.path().join(name)).unwrap();
        fs::rename(&real, dir.path().join(name)).unwrap();
    }
    fs::remove_file(dir.path().join(CORE_FILE)).unwrap();
    fs::create_dir(dir.path().join(CORE_FILE)).unwrap();
    let err = read_core(dir.path()).unwrap_err();
    assert!(matches!(err, ReadImageError::NotRegular { .. }), "{err}");
}

#[test]
fn writer_replaces_planted_links_without_following_them() {
    let dir = TempDir::new();
    let victims = TempDir::new();
    let names = [CORE_FILE, "core.img.tmp", PAGES_FILE, "pages.img.tmp"];
    for name in names {
        let v = victims.path().join(name);
        fs::write(&v, b"victim").unwrap();
        std::os::unix::fs::symlink(&v, dir.path().join(name)).unwrap();
    }
    let image = dump_into(dir.path(), 1);
    assert_eq!(open_and_verify(dir.path()), image);
    for name in names {
        assert_eq!(fs::read(victims.path().join(name)).unwrap(), b"victim");
    }
}

#[test]
fn pages_file_name_must_be_a_slot() {
    let mut image = sample_image();
    image.inventory.pages_file = "../../etc/shadow".into();
    let err = validate(&image).unwrap_err();
    assert!(
        err.to_string().contains("not pages.img or pages.alt.img"),
        "{err}"
    );
}

//! The page store, `pages.img`: the contents of every dumped page, so that
//! restore can `preadv` straight into the target and lazy restore can serve
//! pages without copying.
//!
//! # Layout
//!
//! All integers are little-endian.
//!
//! ```text
//! header page (PAGE_SIZE = 4096 bytes)
//!   0   magic         b"STASISPG"
//!   8   format_major  u32            == FORMAT_MAJOR
//!   12  page_size     u32            == PAGE_SIZE
//!   16  header_crc    u32            crc32c of bytes 0..16
//!   20  reserved      zero; written as zero, ignored on read
//!
//! data, from byte 4096: runs of whole pages, each at a page-aligned offset
//! ```
//!
//! The file has no index of its own: `core.img` holds it, as the
//! [`PageRun`]s of each [`PageMap`](crate::PageMap) (address, page count,
//! offset, xxh3-64 of the bytes), and the file's total size as
//! [`Inventory::pages_file_size`](crate::Inventory::pages_file_size).
//! Because runs are found by offset, a later minor version may lay pages
//! out differently (share, reorder, leave holes) without a format change.
//!
//! Compatibility: the header page's first 20 bytes never move. Reserved
//! bytes may gain meaning in a later minor version only if zero keeps
//! today's meaning.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use xxhash_rust::xxh3::{xxh3_64, Xxh3};

use crate::store::{
    commit_tmp, create_tmp, free_pages_slot, open_image_file, pages_file_name, read_err, tmp_path,
    write_err,
};
use crate::validate::run_len;
use crate::{
    Inventory, PageRun, ReadImageError, WriteImageError, FORMAT_MAJOR, PAGES_FILE, PAGE_SIZE,
};

/// First eight bytes of `pages.img`.
pub const PAGES_MAGIC: [u8; 8] = *b"STASISPG";
/// Size of the header page; the first run starts here.
pub const PAGES_HEADER_LEN: u64 = PAGE_SIZE;

/// Buffer of the writer: appends smaller than this are batched.
const WRITE_BUF: usize = 1 << 20;
/// Read size of [`PagesReader::verify`].
const VERIFY_BUF: u64 = 8 << 20;

fn header_page() -> Vec<u8> {
    let mut page = vec![0u8; PAGES_HEADER_LEN as usize];
    page[..8].copy_from_slice(&PAGES_MAGIC);
    page[8..12].copy_from_slice(&FORMAT_MAJOR.to_le_bytes());
    page[12..16].copy_from_slice(&(PAGE_SIZE as u32).to_le_bytes());
    let crc = crc32c::crc32c(&page[..16]);
    page[16..20].copy_from_slice(&crc.to_le_bytes());
    page
}

fn check_header(page: &[u8]) -> Result<(), ReadImageError> {
    let word = |at: usize| {
        let mut b = [0; 4];
        b.copy_from_slice(&page[at..at + 4]);
        u32::from_le_bytes(b)
    };
    if page[..8] != PAGES_MAGIC {
        return Err(ReadImageError::PagesBadMagic);
    }
    if crc32c::crc32c(&page[..16]) != word(16) {
        return Err(ReadImageError::PagesHeaderChecksum);
    }
    if word(8) != FORMAT_MAJOR {
        return Err(ReadImageError::PagesVersion { found: word(8) });
    }
    if u64::from(word(12)) != PAGE_SIZE {
        return Err(ReadImageError::PagesPageSize {
            found: word(12),
            expected: PAGE_SIZE,
        });
    }
    Ok(())
}

/// Writes the pages file atomically: into `NAME.tmp` (mode 0600), renamed
/// to `NAME` by [`finish`](Self::finish), where `NAME` is the slot that the
/// image already in the directory does not use ([`name`](Self::name); see
/// [`crate::store`]). Dropped without `finish`, it removes the temporary
/// file.
#[derive(Debug)]
pub struct PagesWriter {
    out: Option<BufWriter<File>>,
    dir: PathBuf,
    name: &'static str,
    tmp: PathBuf,
    offset: u64,
    poisoned: bool,
}

impl PagesWriter {
    /// Creates `dir/NAME.tmp`, replacing a stale one, and writes the header
    /// page.
    pub fn create(dir: &Path) -> Result<Self, WriteImageError> {
        let name = free_pages_slot(dir);
        let tmp = tmp_path(dir, name);
        let file = create_tmp(&tmp)?;
        let mut w = PagesWriter {
            out: Some(BufWriter::with_capacity(WRITE_BUF, file)),
            dir: dir.to_path_buf(),
            name,
            tmp,
            offset: 0,
            poisoned: false,
        };
        w.write(&header_page())?;
        Ok(w)
    }

    fn write(&mut self, data: &[u8]) -> Result<(), WriteImageError> {
        let out = match (&mut self.out, self.poisoned) {
            (Some(out), false) => out,
            _ => {
                return Err(WriteImageError::Poisoned {
                    path: self.tmp.clone(),
                })
            }
        };
        if let Err(e) = out.write_all(data) {
            self.poisoned = true;
            return Err(write_err(&self.tmp)(e));
        }
        self.offset += data.len() as u64;
        Ok(())
    }

    /// Appends whole pages of the target at `vaddr`; `data.len()` is a
    /// non-zero multiple of [`PAGE_SIZE`] and `vaddr` is page-aligned.
    /// Returns the run (offset page-aligned, hash = xxh3_64 of `data`), to
    /// be stored in a [`PageMap`](crate::PageMap).
    pub fn append(&mut self, vaddr: u64, data: &[u8]) -> Result<PageRun, WriteImageError> {
        let len = data.len() as u64;
        if len == 0 || !len.is_multiple_of(PAGE_SIZE) || !vaddr.is_multiple_of(PAGE_SIZE) {
            return Err(WriteImageError::Unaligned { vaddr, len });
        }
        let offset = self.offset;
        self.write(data)?;
        Ok(PageRun {
            vaddr,
            nr_pages: len / PAGE_SIZE,
            offset,
            hash: xxh3_64(data),
        })
    }

    /// The file's name in the directory, for
    /// [`Inventory::pages_file`](crate::Inventory::pages_file).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Current size of the file, header page included: the offset of the
    /// next run.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Flushes, fsyncs, renames to [`name`](Self::name), fsyncs the
    /// directory, and
    /// returns the total size, for
    /// [`Inventory::pages_file_size`](crate::Inventory::pages_file_size).
    pub fn finish(mut self) -> Result<u64, WriteImageError> {
        if self.poisoned {
            return Err(WriteImageError::Poisoned {
                path: self.tmp.clone(),
            });
        }
        let Some(out) = self.out.take() else {
            unreachable!("`out` is only taken here, and `finish` consumes self")
        };
        let file = out
            .into_inner()
            .map_err(|e| write_err(&self.tmp)(e.into_error()))?;
        file.sync_all().map_err(write_err(&self.tmp))?;
        drop(file);
        let dst = self.dir.join(self.name);
        commit_tmp(&self.tmp, &dst, &self.dir)?;
        // Renamed: nothing for Drop to clean up.
        self.tmp = PathBuf::new();
        Ok(self.offset)
    }
}

impl Drop for PagesWriter {
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            // Close without flushing: the contents are being thrown away.
            if let Some(out) = self.out.take() {
                drop(out.into_parts());
            }
            // Best effort: an unfinished NAME.tmp is garbage, and the
            // next create() would remove it anyway.
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// An open `pages.img` whose header and size have been checked.
#[derive(Debug)]
pub struct PagesReader {
    file: File,
    path: PathBuf,
    size: u64,
}

impl PagesReader {
    /// Opens `dir/pages.img`, checks the header page's magic, checksum,
    /// version and page size, and that the size is `expected_size`.
    pub fn open(dir: &Path, expected_size: u64) -> Result<Self, ReadImageError> {
        Self::open_file(dir, PAGES_FILE, expected_size)
    }

    /// Opens the pages file that `inv` names
    /// ([`Inventory::pages_file`](crate::Inventory::pages_file)) and checks
    /// it as [`open`](Self::open) does, against
    /// [`Inventory::pages_file_size`](crate::Inventory::pages_file_size).
    pub fn open_image(dir: &Path, inv: &Inventory) -> Result<Self, ReadImageError> {
        Self::open_file(dir, pages_file_name(inv), inv.pages_file_size)
    }

    fn open_file(
        dir: &Path,
        name: &'static str,
        expected_size: u64,
    ) -> Result<Self, ReadImageError> {
        let path = dir.join(name);
        let mut file = open_image_file(dir, name)?;
        let size = file.metadata().map_err(read_err(&path))?.len();
        let size_err = ReadImageError::PagesSize {
            size,
            expected: expected_size,
        };
        if size < PAGES_HEADER_LEN {
            return Err(size_err);
        }
        let mut page = vec![0u8; PAGES_HEADER_LEN as usize];
        file.read_exact(&mut page).map_err(read_err(&path))?;
        check_header(&page)?;
        if size != expected_size {
            return Err(size_err);
        }
        Ok(PagesReader { file, path, size })
    }

    /// Checks that every run is page-aligned and lies inside the file after
    /// the header page, and that its bytes have the recorded xxh3 hash.
    ///
    /// Reads in large sequential chunks, in file order, so verifying GiBs
    /// costs about one pass over the file whatever the order of `runs`.
    pub fn verify(&self, runs: &[PageRun]) -> Result<(), ReadImageError> {
        let mut order: Vec<(u64, u64, &PageRun)> = Vec::with_capacity(runs.len());
        for run in runs {
            let bounds = run_len(run).and_then(|len| Some((len, run.offset.checked_add(len)?)));
            match bounds {
                Some((len, end))
                    if run.offset.is_multiple_of(PAGE_SIZE)
                        && run.offset >= PAGES_HEADER_LEN
                        && end <= self.size =>
                {
                    order.push((run.offset, len, run));
                }
                _ => {
                    return Err(ReadImageError::RunOutOfBounds {
                        vaddr: run.vaddr,
                        offset: run.offset,
                        nr_pages: run.nr_pages,
                        size: self.size,
                    })
                }
            }
        }
        // Runs shared by several processes (pages stored once) are checked
        // once.
        order.sort_unstable_by_key(|&(offset, len, run)| (offset, len, run.hash));
        order.dedup_by_key(|&mut (offset, len, run)| (offset, len, run.hash));
        let total = order
            .iter()
            .fold(0u64, |sum, &(_, len, _)| sum.saturating_add(len));
        let mut buf = vec![0u8; total.min(VERIFY_BUF) as usize];
        // `buf[..win_len]` holds the file's bytes from `win_start`.
        let mut win_start = 0u64;
        let mut win_len = 0u64;
        for (offset, len, run) in order {
            let mut hasher = Xxh3::new();
            let mut pos = offset;
            let end = offset + len;
            while pos < end {
                if pos < win_start || pos >= win_start + win_len {
                    win_start = pos;
                    win_len = (self.size - pos).min(buf.len() as u64);
                    let chunk = &mut buf[..win_len as usize];
                    self.file
                        .read_exact_at(chunk, pos)
                        .map_err(read_err(&self.path))?;
                }
                let take = (end.min(win_start + win_len) - pos) as usize;
                let from = (pos - win_start) as usize;
                hasher.update(&buf[from..from + take]);
                pos += take as u64;
            }
            if hasher.digest() != run.hash {
                return Err(ReadImageError::RunCorrupt {
                    vaddr: run.vaddr,
                    offset: run.offset,
                    nr_pages: run.nr_pages,
                });
            }
        }
        Ok(())
    }

    /// The open file, for `preadv` of runs straight into a target.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Size of the file in bytes, header page included.
    pub fn size(&self) -> u64 {
        self.size
    }
}

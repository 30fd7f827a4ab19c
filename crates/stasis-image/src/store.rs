//! Reading and writing `core.img` in an image directory, and the atomic
//! file creation that the pages file shares.
//!
//! # What is durable and safe when
//!
//! A file is never written in place. It is written to `NAME.tmp`, created
//! with `O_CREAT|O_EXCL|O_NOFOLLOW` and mode 0600 after removing a stale
//! one (a dump that died, or a planted symbolic link: the link itself is
//! removed, never followed), fsynced, renamed to `NAME` (which replaces a
//! link at `NAME` rather than writing through it), and then the directory
//! is fsynced so the rename itself survives a crash.
//!
//! `core.img` is the commit point of a whole image. The pages file comes
//! first, under the name of the slot ([`PAGES_FILE`] or [`PAGES_ALT_FILE`])
//! that the image already in the directory does *not* use; `core.img`
//! records that name. So until the new `core.img` is renamed into place the
//! directory still holds the old image complete (a full disk, an error or
//! a `kill -9` of the dump at any moment leaves it restorable), and from
//! then on the new one. Once committed, the unused slot is removed (best
//! effort: a leftover is never read, and the next dump overwrites it). The
//! framing's End record still detects a file that was cut by other means
//! (a copy, a full disk under another tool).
//!
//! Reading opens every file with `O_NOFOLLOW` and refuses anything but a
//! regular file, so a link planted in an image directory cannot make
//! restore or inspect read another file, and a FIFO cannot make them hang.
//! Restore never writes into the image directory.
//!
//! The names `core.img`, `pages.img`, `pages.alt.img` and their `.tmp`
//! forms are part of the format and never change; a later version that
//! needs more files adds new names beside them.
//!
//! Reading caps the size of `core.img` at [`MAX_CORE_FILE_SIZE`] before
//! allocating, so a hostile or corrupt file cannot exhaust memory.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::{
    decode_core, encode_core, validate, Image, Inventory, ReadImageError, WriteImageError,
    CORE_FILE, PAGES_ALT_FILE, PAGES_FILE,
};

/// Largest `core.img` that [`read_core`] accepts (1 GiB).
pub const MAX_CORE_FILE_SIZE: u64 = 1 << 30;

/// The temporary name `NAME.tmp` of `NAME` in `dir`.
pub(crate) fn tmp_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.tmp"))
}

pub(crate) fn write_err(path: &Path) -> impl FnOnce(io::Error) -> WriteImageError + '_ {
    move |source| WriteImageError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub(crate) fn read_err(path: &Path) -> impl FnOnce(io::Error) -> ReadImageError + '_ {
    move |source| ReadImageError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The pages file `inv` names: [`PAGES_FILE`] or [`PAGES_ALT_FILE`]
/// ([`validate`] refuses any other name).
pub fn pages_file_name(inv: &Inventory) -> &'static str {
    if inv.pages_file == PAGES_ALT_FILE {
        PAGES_ALT_FILE
    } else {
        PAGES_FILE
    }
}

/// The other pages slot.
fn other_slot(name: &str) -> &'static str {
    if name == PAGES_ALT_FILE {
        PAGES_FILE
    } else {
        PAGES_ALT_FILE
    }
}

/// The pages slot a new dump into `dir` may write without touching the
/// image already there: the one its `core.img` does not name. Without a
/// readable image there is nothing to keep, and the slot is `pages.img`.
pub(crate) fn free_pages_slot(dir: &Path) -> &'static str {
    match read_core(dir) {
        Ok(image) => other_slot(pages_file_name(&image.inventory)),
        Err(_) => PAGES_FILE,
    }
}

/// Removes `path` if it exists (a file or a link, never what a link
/// points at).
fn remove_stale(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Creates `tmp` afresh with mode 0600, removing a stale one first.
/// `O_EXCL` (with `O_NOFOLLOW` for good measure) fails rather than follow
/// a link that reappeared in between.
pub(crate) fn create_tmp(tmp: &Path) -> Result<File, WriteImageError> {
    remove_stale(tmp).map_err(write_err(tmp))?;
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(tmp)
        .map_err(write_err(tmp))
}

/// Opens `dir/file` of an image for reading: never through a symbolic
/// link, and only a regular file. `O_NONBLOCK` keeps a FIFO planted under
/// the name from blocking the open; it means nothing for a regular file.
pub(crate) fn open_image_file(dir: &Path, file: &'static str) -> Result<File, ReadImageError> {
    let path = dir.join(file);
    let opened = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&path);
    let f = match opened {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(ReadImageError::Missing {
                dir: dir.to_path_buf(),
                file,
            })
        }
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(ReadImageError::Symlink { path })
        }
        Err(e) => return Err(read_err(&path)(e)),
    };
    let meta = f.metadata().map_err(read_err(&path))?;
    if !meta.is_file() {
        return Err(ReadImageError::NotRegular { path });
    }
    Ok(f)
}

/// Renames the fsynced `tmp` to `dst` and fsyncs their directory `dir`.
pub(crate) fn commit_tmp(tmp: &Path, dst: &Path, dir: &Path) -> Result<(), WriteImageError> {
    fs::rename(tmp, dst).map_err(write_err(dst))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(write_err(dir))
}

/// Validates `image` and writes it atomically as `dir/core.img`, then
/// removes the pages slot it does not name.
///
/// Write the pages file first (see the module doc): `core.img` marks the
/// image complete. An invalid image is refused with [`WriteImageError::Invalid`]
/// before anything is written.
pub fn write_core(dir: &Path, image: &Image) -> Result<(), WriteImageError> {
    validate(image)?;
    let bytes = encode_core(image);
    let tmp = tmp_path(dir, CORE_FILE);
    let dst = dir.join(CORE_FILE);
    let mut file = create_tmp(&tmp)?;
    let written = file
        .write_all(&bytes)
        .and_then(|()| file.sync_all())
        .map_err(write_err(&tmp));
    drop(file);
    let committed = written.and_then(|()| commit_tmp(&tmp, &dst, dir));
    if committed.is_err() {
        // Best effort: the error that matters is the one returned.
        let _ = fs::remove_file(&tmp);
        return committed;
    }
    // The previous image's pages, and a dump's leftovers in that slot: no
    // longer referenced. Best effort, as above.
    let unused = other_slot(pages_file_name(&image.inventory));
    let _ = remove_stale(&dir.join(unused));
    let _ = remove_stale(&tmp_path(dir, unused));
    Ok(())
}

/// Reads, decodes and validates `dir/core.img`.
pub fn read_core(dir: &Path) -> Result<Image, ReadImageError> {
    let path = dir.join(CORE_FILE);
    let file = open_image_file(dir, CORE_FILE)?;
    let size = file.metadata().map_err(read_err(&path))?.len();
    let too_large = |size| ReadImageError::TooLarge {
        path: path.clone(),
        size,
        max: MAX_CORE_FILE_SIZE,
    };
    if size > MAX_CORE_FILE_SIZE {
        return Err(too_large(size));
    }
    // The file may grow while we read it; never read past the cap.
    let mut bytes = Vec::with_capacity(size as usize);
    file.take(MAX_CORE_FILE_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err(&path))?;
    if bytes.len() as u64 > MAX_CORE_FILE_SIZE {
        return Err(too_large(bytes.len() as u64));
    }
    decode_core(&bytes).map_err(|source| ReadImageError::Core {
        dir: dir.to_path_buf(),
        source,
    })
}

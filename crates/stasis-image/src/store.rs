//! Reading and writing `core.img` in an image directory, and the atomic
//! file creation that `pages.img` shares.
//!
//! A file is never written in place. It is written to `NAME.tmp`, created
//! with `O_CREAT|O_EXCL` and mode 0600 after removing a stale one (a dump
//! that died), fsynced, renamed to `NAME`, and then the directory is fsynced
//! so the rename itself survives a crash. A reader therefore sees either
//! the old file or the whole new one. The framing's End record still
//! detects a file that was cut by other means (a copy, a full disk).
//!
//! The names `core.img`, `pages.img` and their `.tmp` forms are part of
//! the format and never change; a later version that needs more files adds
//! new names beside them.
//!
//! Reading caps the size of `core.img` at [`MAX_CORE_FILE_SIZE`] before
//! allocating, so a hostile or corrupt file cannot exhaust memory.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::{
    decode_core, encode_core, validate, Image, ReadImageError, WriteImageError, CORE_FILE,
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

/// Creates `tmp` afresh with mode 0600, removing a stale one first.
pub(crate) fn create_tmp(tmp: &Path) -> Result<File, WriteImageError> {
    match fs::remove_file(tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(write_err(tmp)(e)),
    }
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(tmp)
        .map_err(write_err(tmp))
}

/// Renames the fsynced `tmp` to `dst` and fsyncs their directory `dir`.
pub(crate) fn commit_tmp(tmp: &Path, dst: &Path, dir: &Path) -> Result<(), WriteImageError> {
    fs::rename(tmp, dst).map_err(write_err(dst))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(write_err(dir))
}

/// Validates `image` and writes it atomically as `dir/core.img`.
///
/// Write `pages.img` first (see the crate doc): `core.img` marks the image
/// complete. An invalid image is refused with [`WriteImageError::Invalid`]
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
    }
    committed
}

/// Reads, decodes and validates `dir/core.img`.
pub fn read_core(dir: &Path) -> Result<Image, ReadImageError> {
    let path = dir.join(CORE_FILE);
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(ReadImageError::Missing {
                dir: dir.to_path_buf(),
                file: CORE_FILE,
            })
        }
        Err(e) => return Err(read_err(&path)(e)),
    };
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

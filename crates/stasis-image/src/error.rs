//! Errors of the image crate, one type per operation: decoding `core.img`
//! ([`DecodeError`]), reading an image directory ([`ReadImageError`]) and
//! writing one ([`WriteImageError`]).
//!
//! Every message is one line that names the file, and the byte offset or
//! record where it applies, and says whether the image is corrupt or from
//! another version, so a user can tell what went wrong without a debugger.
//! Record numbers count from 1; offsets are byte offsets in the file.

use std::io;
use std::path::PathBuf;

use crate::framing::{RecordKind, CORE_HEADER_LEN, MAX_RECORD_LEN};
use crate::validate::InvalidImage;
use crate::FORMAT_MAJOR;

/// `core.img` could not be decoded, or decoded into an invalid image.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The file does not start with `STASISIM`.
    #[error("core.img: not a stasis image (bad magic)")]
    BadMagic,
    /// The file is shorter than its 16-byte header.
    #[error("core.img: truncated at byte {len} (the file header needs {need} bytes)", need = CORE_HEADER_LEN)]
    TruncatedHeader {
        /// Length of the file.
        len: u64,
    },
    /// The file header's crc does not match.
    #[error("core.img: checksum mismatch in the file header at byte 0: the image is corrupt")]
    HeaderChecksum,
    /// The image has another major version.
    #[error("core.img: image format version {found}, this stasis reads version {ours}", ours = FORMAT_MAJOR)]
    UnsupportedVersion {
        /// The version in the file header.
        found: u32,
    },
    /// The file ends inside a record header.
    #[error("core.img: truncated at byte {offset} (record {record} needs a 12-byte header, {remain} bytes remain)")]
    TruncatedRecordHeader {
        /// Where the record starts.
        offset: u64,
        /// 1-based record number.
        record: u64,
        /// Bytes left in the file from `offset`.
        remain: u64,
    },
    /// The file ends inside a record's payload.
    #[error("core.img: truncated at byte {offset} (record {record} of kind {kind} needs {needed} bytes, {remain} remain)")]
    TruncatedRecord {
        /// Where the record starts.
        offset: u64,
        /// 1-based record number.
        record: u64,
        /// The kind in its header.
        kind: RecordKind,
        /// Header plus payload length.
        needed: u64,
        /// Bytes left in the file from `offset`.
        remain: u64,
    },
    /// The file ends at a record boundary, before the End record.
    #[error("core.img: truncated at byte {offset} (the End record is missing after {records} records: the dump did not finish)")]
    MissingEnd {
        /// Length of the file.
        offset: u64,
        /// Records read.
        records: u64,
    },
    /// A record's length field exceeds [`MAX_RECORD_LEN`].
    #[error("core.img: record {record} ({kind}) at byte {offset} claims {len} bytes, more than the limit of {max}: the image is corrupt", max = MAX_RECORD_LEN)]
    RecordTooLarge {
        /// Where the record starts.
        offset: u64,
        /// 1-based record number.
        record: u64,
        /// The kind in its header.
        kind: RecordKind,
        /// The length in its header.
        len: u32,
    },
    /// A record's crc does not match.
    #[error("core.img: checksum mismatch in record {record} ({kind}) at byte {offset}: the image is corrupt")]
    RecordChecksum {
        /// Where the record starts.
        offset: u64,
        /// 1-based record number.
        record: u64,
        /// The kind in its header (may itself be the corrupt part).
        kind: RecordKind,
    },
    /// A must-understand record kind this version does not know.
    #[error("core.img: record {record} at byte {offset} has unknown kind {kind:#010x} (written by a newer stasis?)")]
    UnknownKind {
        /// Where the record starts.
        offset: u64,
        /// 1-based record number.
        record: u64,
        /// The kind in its header.
        kind: u32,
    },
    /// The first record is not the Inventory.
    #[error("core.img: record 1 at byte {at} is {kind}, but an image starts with its Inventory", at = CORE_HEADER_LEN)]
    InventoryNotFirst {
        /// The kind found instead.
        kind: RecordKind,
    },
    /// A second Inventory record.
    #[error(
        "core.img: record {record} at byte {offset} is a second Inventory: the image is corrupt"
    )]
    DuplicateInventory {
        /// Where the record starts.
        offset: u64,
        /// 1-based record number.
        record: u64,
    },
    /// A payload is not a valid protobuf message of its kind.
    #[error("core.img: record {record} ({kind}) at byte {offset} does not decode: {source}")]
    Payload {
        /// Where the record starts.
        offset: u64,
        /// 1-based record number.
        record: u64,
        /// The kind in its header.
        kind: RecordKind,
        /// What prost found wrong.
        source: prost::DecodeError,
    },
    /// The End record's payload has the wrong size.
    #[error("core.img: End record at byte {offset} has {len} payload bytes, expected 12: the image is corrupt")]
    BadEnd {
        /// Where the record starts.
        offset: u64,
        /// Its payload length.
        len: u64,
    },
    /// The End record does not match the records before it.
    #[error("core.img: End record at byte {offset} expects {expected_records} records with checksum {expected_crc:#010x}, found {found_records} with {found_crc:#010x}: records were lost or altered")]
    EndMismatch {
        /// Where the End record starts.
        offset: u64,
        /// Count the End record holds.
        expected_records: u64,
        /// Records actually before it.
        found_records: u64,
        /// Checksum the End record holds.
        expected_crc: u32,
        /// Checksum of the bytes actually before it.
        found_crc: u32,
    },
    /// Bytes follow the End record.
    #[error("core.img: {extra} unexpected bytes after the End record, from byte {offset}: the image is corrupt")]
    TrailingBytes {
        /// Where the extra bytes start.
        offset: u64,
        /// How many there are.
        extra: u64,
    },
    /// The records decode but are inconsistent (see [`validate`](fn@crate::validate)).
    #[error("core.img: {0}")]
    Invalid(#[from] InvalidImage),
}

/// An image directory could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadImageError {
    /// The directory lacks `core.img` or its pages file: a dump into it
    /// failed, was interrupted, or never ran.
    #[error("image directory {} holds no complete image (it has no {file})", dir.display())]
    Missing {
        /// The image directory.
        dir: PathBuf,
        /// `core.img`, `pages.img` or `pages.alt.img`.
        file: &'static str,
    },
    /// An image file is a symbolic link, which stasis never follows.
    #[error("{} is a symbolic link; stasis never follows links in an image directory: put the file itself there", path.display())]
    Symlink {
        /// The link.
        path: PathBuf,
    },
    /// An image file is a directory, FIFO, device or socket.
    #[error("{} is not a regular file: not a stasis image", path.display())]
    NotRegular {
        /// The file.
        path: PathBuf,
    },
    /// A read failed.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the kernel said.
        source: io::Error,
    },
    /// `core.img` is larger than [`MAX_CORE_FILE_SIZE`](crate::MAX_CORE_FILE_SIZE).
    #[error("{}: size is {size} bytes, more than the limit of {max}: not a stasis image, or corrupt", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// `core.img` does not decode; the source names the offset.
    #[error("{}: {source}", dir.display())]
    Core {
        /// The image directory.
        dir: PathBuf,
        /// What is wrong.
        source: DecodeError,
    },
    /// `pages.img` does not start with `STASISPG`.
    #[error("pages.img: not a stasis pages file (bad magic)")]
    PagesBadMagic,
    /// The header page's crc does not match.
    #[error("pages.img: checksum mismatch in the header page at byte 0: the image is corrupt")]
    PagesHeaderChecksum,
    /// `pages.img` has another major version.
    #[error("pages.img: image format version {found}, this stasis reads version {ours}", ours = FORMAT_MAJOR)]
    PagesVersion {
        /// The version in the header page.
        found: u32,
    },
    /// `pages.img` was written with another page size.
    #[error("pages.img: written with page size {found}, this stasis uses {expected}")]
    PagesPageSize {
        /// The page size in the header page.
        found: u32,
        /// Ours.
        expected: u64,
    },
    /// `pages.img` does not have the size `core.img` recorded.
    #[error("pages.img: size is {size} bytes, the image expects {expected} ({})", if .size < .expected { "truncated?" } else { "written by another dump?" })]
    PagesSize {
        /// Actual size.
        size: u64,
        /// [`Inventory::pages_file_size`](crate::Inventory::pages_file_size).
        expected: u64,
    },
    /// A run is not page-aligned or does not lie inside the file after the
    /// header page.
    #[error("pages.img: run at {vaddr:#x} (offset {offset}, {nr_pages} pages) is not page-aligned or lies outside the file ({size} bytes): the image is corrupt")]
    RunOutOfBounds {
        /// Target address.
        vaddr: u64,
        /// Offset in `pages.img`.
        offset: u64,
        /// Length in pages.
        nr_pages: u64,
        /// Size of `pages.img`.
        size: u64,
    },
    /// A run's bytes do not have the hash `core.img` recorded.
    #[error("pages.img: run at {vaddr:#x}..{end:#x} (offset {offset}, {nr_pages} pages) is corrupt: checksum mismatch", end = .vaddr.wrapping_add(.nr_pages.wrapping_mul(crate::PAGE_SIZE)))]
    RunCorrupt {
        /// Target address.
        vaddr: u64,
        /// Offset in `pages.img`.
        offset: u64,
        /// Length in pages.
        nr_pages: u64,
    },
}

/// An image could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WriteImageError {
    /// A write, fsync or rename failed.
    #[error("cannot write {}: {source}", path.display())]
    Io {
        /// The file (or directory, for its fsync).
        path: PathBuf,
        /// What the kernel said.
        source: io::Error,
    },
    /// The image fails [`validate`](fn@crate::validate): a bug in the dumper.
    #[error("refusing to write an invalid image: {0}")]
    Invalid(#[from] DecodeError),
    /// [`PagesWriter::append`](crate::PagesWriter::append) was given
    /// something other than whole pages at a page-aligned address.
    #[error("pages.img: cannot append {len} bytes at {vaddr:#x}: not whole pages at a page-aligned address")]
    Unaligned {
        /// Target address.
        vaddr: u64,
        /// Bytes given.
        len: u64,
    },
    /// An earlier write to this file failed, so its contents are unknown.
    #[error("cannot write {}: an earlier write to it failed", path.display())]
    Poisoned {
        /// The file.
        path: PathBuf,
    },
}

//! The stasis image format: record schema, framing, versioning, checksums
//! and the page store. This crate makes no syscalls beyond plain `std` file
//! I/O, so `stasis inspect` can use it offline and the decoder can be fuzzed
//! (see `fuzz/` at the top of the repository).
//!
//! # An image directory
//!
//! | file        | holds                                                    | module        |
//! |-------------|----------------------------------------------------------|---------------|
//! | `core.img`  | every record except page contents, framed and checksummed | [`framing`]   |
//! | `pages.img` | page contents, page-aligned, one 4096-byte header page     | [`pages`]     |
//! | `pages.alt.img` | the same, in the second slot (see [`store`])           | [`pages`]     |
//!
//! Both files are written atomically: into `NAME.tmp` (mode 0600, created
//! fresh), fsynced, renamed into place, and then the directory is fsynced.
//! **Write the pages file first and `core.img` last.** `core.img` records
//! the name of the pages file ([`Inventory::pages_file`], one of two slots,
//! so that a dump never overwrites the pages of the image it replaces), its
//! size ([`Inventory::pages_file_size`]) and the xxh3 hash of every page
//! run, so once `core.img` exists the image is complete, and a pages file
//! from another dump, or a truncated one, is detected by
//! [`PagesReader::open_image`] and [`PagesReader::verify`]. See [`store`]
//! for what is durable when, and how links planted in a directory are
//! handled.
//!
//! # Compatibility policy
//!
//! Decided before 1.0, and binding from then on:
//!
//! * **One major version.** [`FORMAT_MAJOR`] is written in both file headers
//!   and in the [`Inventory`]. A reader accepts exactly its own major and
//!   refuses anything else with "image format version X, this stasis reads
//!   version 1". The magic and the version field keep their place in every
//!   future major, so any stasis can say which version an image has.
//! * **Within a major, records only grow.** A new piece of state is a new
//!   optional protobuf field with a fresh field number; a field number is
//!   never reused and never changes type (see [`records`]). An older reader
//!   skips fields it does not know. Note that prost drops unknown fields, so
//!   a tool that decodes and re-encodes an image loses them; only the dumper
//!   writes images today.
//! * **New record kinds.** Kinds below `0x8000_0000` must be understood: an
//!   older reader refuses an image that has one it does not know. Kinds in
//!   [`SKIPPABLE_KINDS`] are optional: an older reader checks their checksum
//!   and skips them. State that restore cannot do without goes into a
//!   must-understand kind (or into a new field of an existing record).
//! * **Anything an older reader would misread** (a changed framing, a field
//!   whose meaning changes) bumps [`FORMAT_MAJOR`].

pub mod error;
pub mod framing;
pub mod ipc;
pub mod pages;
pub mod records;
pub mod store;
pub mod validate;

pub use error::{DecodeError, ReadImageError, WriteImageError};
pub use framing::{
    decode_core, encode_core, RecordKind, CORE_HEADER_LEN, CORE_MAGIC, MAX_RECORD_LEN,
    RECORD_HEADER_LEN, SKIPPABLE_KINDS,
};
pub use ipc::{IpcNamespace, IpcSysctl, SysvMsg, SysvMsgQueue, SysvSem, SysvShm, IPC_SYSCTLS};
pub use pages::{PagesReader, PagesWriter, PAGES_HEADER_LEN, PAGES_MAGIC};
pub use records::*;
pub use store::{pages_file_name, read_core, write_core, MAX_CORE_FILE_SIZE};
pub use validate::{validate, InvalidImage};

/// The image format's major version; see the compatibility policy above.
pub const FORMAT_MAJOR: u32 = 1;
/// The page size images are written with. `pages.img` offsets and every
/// address and length in a [`PageRun`] or [`Vma`] are multiples of it.
pub const PAGE_SIZE: u64 = 4096;
/// File name of the core image inside an image directory.
pub const CORE_FILE: &str = "core.img";
/// File name of the page store inside an image directory.
pub const PAGES_FILE: &str = "pages.img";
/// The page store's second slot: a dump into a directory whose image uses
/// [`PAGES_FILE`] writes this one, and the other way round (see [`store`]).
pub const PAGES_ALT_FILE: &str = "pages.alt.img";

/// Whole decoded core image.
///
/// In `core.img` the records appear in this order: the inventory, every
/// process, every page map, every pipe. Within each kind the order of the
/// vectors is preserved.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Image {
    /// What the image is and where it came from.
    pub inventory: Inventory,
    /// Every process of the dumped tree.
    pub processes: Vec<Process>,
    /// Where each process's dumped pages live in `pages.img`; at most one
    /// per pid.
    pub pagemaps: Vec<PageMap>,
    /// Every pipe that an fd of the image refers to.
    pub pipes: Vec<Pipe>,
}

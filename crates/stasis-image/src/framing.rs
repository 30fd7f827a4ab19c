//! Framing of `core.img`: how records are laid out, checksummed and
//! terminated. Pure functions on byte slices; this is what gets fuzzed.
//!
//! # Layout
//!
//! All integers are little-endian. Offsets are from the start of the file.
//!
//! ```text
//! file header (16 bytes)
//!   0   magic         b"STASISIM"
//!   8   format_major  u32            == FORMAT_MAJOR
//!   12  header_crc    u32            crc32c of bytes 0..12
//!
//! record (repeated), first at byte 16
//!   +0  kind          u32            see RecordKind
//!   +4  len           u32            payload length, at most MAX_RECORD_LEN
//!   +8  crc           u32            crc32c of kind || len || payload
//!   +12 payload       len bytes      prost-encoded message
//!
//! End record (last; kind 0xFFFF_FFFF, len 12), payload:
//!   +0  records       u64            number of records before End
//!   +8  file_crc      u32            crc32c of every byte before End's header
//! ```
//!
//! # Invariants a decoder enforces
//!
//! * The first record is the only [`Inventory`].
//! * Every byte of the file is covered by a checksum, so every single-bit
//!   error is detected. A length is checked against [`MAX_RECORD_LEN`] and
//!   against the bytes that remain before anything is allocated.
//! * The file ends exactly after the End record. A file cut anywhere, even
//!   at a record boundary, lacks it; a record dropped, duplicated or moved
//!   changes the End record's count or checksum.
//! * Unknown kinds below `0x8000_0000` are an error; kinds in
//!   [`SKIPPABLE_KINDS`] are checked and skipped (see the compatibility policy
//!   in the crate doc).
//! * The decoded [`Image`] then passes [`validate`](fn@crate::validate).
//!
//! The 16-byte file header and the 12-byte record header never change
//! within a major version; the magic and the version field never move.

use std::fmt;
use std::ops::RangeInclusive;

use prost::Message;

use crate::{validate, DecodeError, Image, Inventory, PageMap, Pipe, Process, FORMAT_MAJOR};

/// First eight bytes of `core.img`.
pub const CORE_MAGIC: [u8; 8] = *b"STASISIM";
/// Size of the file header: magic, format_major, crc.
pub const CORE_HEADER_LEN: usize = 16;
/// Size of a record header: kind, len, crc.
pub const RECORD_HEADER_LEN: usize = 12;
/// Largest payload a record may have (256 MiB). A longer length field is
/// treated as corruption, before any allocation.
pub const MAX_RECORD_LEN: u32 = 256 << 20;
/// Record kinds an older reader may skip; see the compatibility policy.
pub const SKIPPABLE_KINDS: RangeInclusive<u32> = 0x8000_0000..=0xFFFF_FFFE;

const KIND_INVENTORY: u32 = 1;
const KIND_PROCESS: u32 = 2;
const KIND_PAGEMAP: u32 = 3;
const KIND_PIPE: u32 = 4;
const KIND_END: u32 = 0xFFFF_FFFF;
const END_PAYLOAD_LEN: usize = 12;

/// The kind field of a record header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RecordKind {
    /// 1: [`Inventory`]; exactly one, first.
    Inventory,
    /// 2: [`Process`].
    Process,
    /// 3: [`PageMap`].
    PageMap,
    /// 4: [`Pipe`].
    Pipe,
    /// `0xFFFF_FFFF`: the terminating record.
    End,
    /// Any other value.
    Unknown(u32),
}

impl RecordKind {
    /// The kind as written in a record header.
    pub fn to_u32(self) -> u32 {
        match self {
            RecordKind::Inventory => KIND_INVENTORY,
            RecordKind::Process => KIND_PROCESS,
            RecordKind::PageMap => KIND_PAGEMAP,
            RecordKind::Pipe => KIND_PIPE,
            RecordKind::End => KIND_END,
            RecordKind::Unknown(k) => k,
        }
    }

    /// The kind a record header's value names.
    pub fn from_u32(kind: u32) -> Self {
        match kind {
            KIND_INVENTORY => RecordKind::Inventory,
            KIND_PROCESS => RecordKind::Process,
            KIND_PAGEMAP => RecordKind::PageMap,
            KIND_PIPE => RecordKind::Pipe,
            KIND_END => RecordKind::End,
            k => RecordKind::Unknown(k),
        }
    }
}

impl fmt::Display for RecordKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordKind::Inventory => f.write_str("Inventory"),
            RecordKind::Process => f.write_str("Process"),
            RecordKind::PageMap => f.write_str("PageMap"),
            RecordKind::Pipe => f.write_str("Pipe"),
            RecordKind::End => f.write_str("End"),
            RecordKind::Unknown(k) => write!(f, "unknown kind {k:#010x}"),
        }
    }
}

/// Encodes `image` as the bytes of `core.img`.
///
/// This does not validate; [`write_core`](crate::write_core) does. An image
/// that passes [`validate`](fn@crate::validate) always decodes again.
///
/// # Panics
///
/// If one record's encoding exceeds 4 GiB, which the u32 length field cannot
/// express ([`validate`](fn@crate::validate) rejects anything over
/// [`MAX_RECORD_LEN`] long before).
pub fn encode_core(image: &Image) -> Vec<u8> {
    let mut out = Vec::with_capacity(4096);
    out.extend_from_slice(&CORE_MAGIC);
    out.extend_from_slice(&FORMAT_MAJOR.to_le_bytes());
    let header_crc = crc32c::crc32c(&out);
    out.extend_from_slice(&header_crc.to_le_bytes());

    push_msg(&mut out, KIND_INVENTORY, &image.inventory);
    for p in &image.processes {
        push_msg(&mut out, KIND_PROCESS, p);
    }
    for m in &image.pagemaps {
        push_msg(&mut out, KIND_PAGEMAP, m);
    }
    for p in &image.pipes {
        push_msg(&mut out, KIND_PIPE, p);
    }
    let records = (1 + image.processes.len() + image.pagemaps.len() + image.pipes.len()) as u64;

    let file_crc = crc32c::crc32c(&out);
    push_record(&mut out, KIND_END, &|o| {
        o.extend_from_slice(&records.to_le_bytes());
        o.extend_from_slice(&file_crc.to_le_bytes());
    });
    out
}

fn push_msg(out: &mut Vec<u8>, kind: u32, msg: &impl Message) {
    out.reserve(RECORD_HEADER_LEN + msg.encoded_len());
    push_record(out, kind, &|o| {
        msg.encode(o).expect("a Vec<u8> grows as needed");
    });
}

/// Appends one framed record whose payload `payload` writes.
fn push_record(out: &mut Vec<u8>, kind: u32, payload: &dyn Fn(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(&[0; 8]); // len and crc, filled in below
    payload(out);
    let len = out.len() - start - RECORD_HEADER_LEN;
    let len = u32::try_from(len).expect("a core.img record larger than 4 GiB");
    out[start + 4..start + 8].copy_from_slice(&len.to_le_bytes());
    let crc = record_crc(&out[start..start + 8], &out[start + RECORD_HEADER_LEN..]);
    out[start + 8..start + 12].copy_from_slice(&crc.to_le_bytes());
}

fn record_crc(kind_and_len: &[u8], payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(kind_and_len), payload)
}

fn le_u32(bytes: &[u8], at: usize) -> u32 {
    let mut b = [0; 4];
    b.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(b)
}

fn le_u64(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(b)
}

/// Decodes and validates the bytes of `core.img`. Never panics, whatever
/// the input; every error names the record and byte offset at fault.
pub fn decode_core(bytes: &[u8]) -> Result<Image, DecodeError> {
    let image = decode_records(bytes)?;
    validate(&image)?;
    Ok(image)
}

fn check_file_header(bytes: &[u8]) -> Result<(), DecodeError> {
    let magic_len = bytes.len().min(CORE_MAGIC.len());
    if bytes[..magic_len] != CORE_MAGIC[..magic_len] {
        return Err(DecodeError::BadMagic);
    }
    if bytes.len() < CORE_HEADER_LEN {
        return Err(DecodeError::TruncatedHeader {
            len: bytes.len() as u64,
        });
    }
    // The crc comes before the version: a flipped version bit is corruption,
    // not a newer writer.
    if crc32c::crc32c(&bytes[..12]) != le_u32(bytes, 12) {
        return Err(DecodeError::HeaderChecksum);
    }
    let found = le_u32(bytes, 8);
    if found != FORMAT_MAJOR {
        return Err(DecodeError::UnsupportedVersion { found });
    }
    Ok(())
}

/// Framing only: checks headers, lengths and checksums and decodes payloads,
/// without [`validate`](fn@crate::validate).
fn decode_records(bytes: &[u8]) -> Result<Image, DecodeError> {
    check_file_header(bytes)?;

    let mut image = Image::default();
    let mut pos = CORE_HEADER_LEN;
    let mut count = 0u64; // records before `pos`
    loop {
        let record = count + 1; // 1-based, as a user counts
        let offset = pos as u64;
        let remain = bytes.len() - pos;
        if remain == 0 {
            return Err(DecodeError::MissingEnd {
                offset,
                records: count,
            });
        }
        if remain < RECORD_HEADER_LEN {
            return Err(DecodeError::TruncatedRecordHeader {
                offset,
                record,
                remain: remain as u64,
            });
        }
        let kind = RecordKind::from_u32(le_u32(bytes, pos));
        let len = le_u32(bytes, pos + 4);
        let crc = le_u32(bytes, pos + 8);
        if len > MAX_RECORD_LEN {
            return Err(DecodeError::RecordTooLarge {
                offset,
                record,
                kind,
                len,
            });
        }
        let needed = RECORD_HEADER_LEN + len as usize;
        if remain < needed {
            return Err(DecodeError::TruncatedRecord {
                offset,
                record,
                kind,
                needed: needed as u64,
                remain: remain as u64,
            });
        }
        let payload = &bytes[pos + RECORD_HEADER_LEN..pos + needed];
        if record_crc(&bytes[pos..pos + 8], payload) != crc {
            return Err(DecodeError::RecordChecksum {
                offset,
                record,
                kind,
            });
        }
        if count == 0 && kind != RecordKind::Inventory {
            return Err(DecodeError::InventoryNotFirst { kind });
        }

        let bad_payload = |source| DecodeError::Payload {
            offset,
            record,
            kind,
            source,
        };
        match kind {
            RecordKind::Inventory if count != 0 => {
                return Err(DecodeError::DuplicateInventory { offset, record });
            }
            RecordKind::Inventory => {
                image.inventory = Inventory::decode(payload).map_err(bad_payload)?;
            }
            RecordKind::Process => {
                image
                    .processes
                    .push(Process::decode(payload).map_err(bad_payload)?);
            }
            RecordKind::PageMap => {
                image
                    .pagemaps
                    .push(PageMap::decode(payload).map_err(bad_payload)?);
            }
            RecordKind::Pipe => image
                .pipes
                .push(Pipe::decode(payload).map_err(bad_payload)?),
            RecordKind::End => {
                check_end(bytes, pos, payload, count)?;
                return Ok(image);
            }
            RecordKind::Unknown(k) if SKIPPABLE_KINDS.contains(&k) => {}
            RecordKind::Unknown(k) => {
                return Err(DecodeError::UnknownKind {
                    offset,
                    record,
                    kind: k,
                });
            }
        }
        pos += needed;
        count += 1;
    }
}

/// Checks the End record at `pos` against the `count` records before it.
fn check_end(bytes: &[u8], pos: usize, payload: &[u8], count: u64) -> Result<(), DecodeError> {
    let offset = pos as u64;
    if payload.len() != END_PAYLOAD_LEN {
        return Err(DecodeError::BadEnd {
            offset,
            len: payload.len() as u64,
        });
    }
    let expected_records = le_u64(payload, 0);
    let expected_crc = le_u32(payload, 8);
    let found_crc = crc32c::crc32c(&bytes[..pos]);
    if expected_records != count || expected_crc != found_crc {
        return Err(DecodeError::EndMismatch {
            offset,
            expected_records,
            found_records: count,
            expected_crc,
            found_crc,
        });
    }
    let end = pos + RECORD_HEADER_LEN + END_PAYLOAD_LEN;
    if end != bytes.len() {
        return Err(DecodeError::TrailingBytes {
            offset: end as u64,
            extra: (bytes.len() - end) as u64,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_round_trips() {
        for k in [1, 2, 3, 4, 0, 5, 0x8000_0000, 0xFFFF_FFFF] {
            assert_eq!(RecordKind::from_u32(k).to_u32(), k);
        }
    }

    #[test]
    fn empty_image_layout() {
        let mut image = Image::default();
        image.inventory.format_major = FORMAT_MAJOR;
        image.inventory.page_size = 4096;
        let bytes = encode_core(&image);
        assert_eq!(&bytes[..8], b"STASISIM");
        assert_eq!(le_u32(&bytes, 8), FORMAT_MAJOR);
        assert_eq!(le_u32(&bytes, 16), KIND_INVENTORY);
        let inv_len = le_u32(&bytes, 20) as usize;
        let end = CORE_HEADER_LEN + RECORD_HEADER_LEN + inv_len;
        assert_eq!(le_u32(&bytes, end), KIND_END);
        assert_eq!(le_u32(&bytes, end + 4), 12);
        assert_eq!(le_u64(&bytes, end + 12), 1);
        assert_eq!(bytes.len(), end + 24);
        assert_eq!(decode_core(&bytes).unwrap(), image);
    }
}

//! `core.img` framing: round trip, and tampered magic, version, checksum,
//! length, truncation and record order.

mod common;

use common::{frame, reseal, sample_image};
use prost::Message;
use stasis_image::*;

fn inventory_bytes() -> Vec<u8> {
    sample_image().inventory.encode_to_vec()
}

#[test]
fn round_trip() {
    let image = sample_image();
    let bytes = encode_core(&image);
    assert_eq!(decode_core(&bytes).unwrap(), image);
    // Deterministic: same image, same bytes.
    assert_eq!(encode_core(&image), bytes);
}

#[test]
fn round_trip_minimal() {
    let mut image = Image::default();
    image.inventory.format_major = FORMAT_MAJOR;
    image.inventory.page_size = PAGE_SIZE as u32;
    assert_eq!(decode_core(&encode_core(&image)).unwrap(), image);
}

#[test]
fn every_truncation_fails() {
    let bytes = encode_core(&sample_image());
    for n in 0..bytes.len() {
        let err = decode_core(&bytes[..n]).expect_err("a truncated image decoded");
        let msg = err.to_string();
        assert!(
            msg.starts_with("core.img: truncated at byte"),
            "cut at {n}: {msg}"
        );
    }
}

#[test]
fn every_bit_flip_fails() {
    let bytes = encode_core(&sample_image());
    for i in 0..bytes.len() * 8 {
        let mut b = bytes.clone();
        b[i / 8] ^= 1 << (i % 8);
        assert!(decode_core(&b).is_err(), "flip of bit {i} went unnoticed");
    }
}

#[test]
fn truncation_message_names_record_and_sizes() {
    let bytes = encode_core(&sample_image());
    // Cut inside the first Process record (record 2).
    let inv_len = u32::from_le_bytes(bytes[20..24].try_into().unwrap()) as usize;
    let proc_at = CORE_HEADER_LEN + RECORD_HEADER_LEN + inv_len;
    let cut = proc_at + RECORD_HEADER_LEN + 5;
    let err = decode_core(&bytes[..cut]).unwrap_err();
    let proc_len = u32::from_le_bytes(bytes[proc_at + 4..proc_at + 8].try_into().unwrap());
    assert_eq!(
        err.to_string(),
        format!(
            "core.img: truncated at byte {proc_at} (record 2 of kind Process needs {} bytes, 17 remain)",
            proc_len + 12
        )
    );
}

#[test]
fn checksum_message_names_record() {
    let mut bytes = encode_core(&sample_image());
    let inv_len = u32::from_le_bytes(bytes[20..24].try_into().unwrap()) as usize;
    let proc_at = CORE_HEADER_LEN + RECORD_HEADER_LEN + inv_len;
    bytes[proc_at + 20] ^= 0x40;
    assert_eq!(
        decode_core(&bytes).unwrap_err().to_string(),
        format!("core.img: checksum mismatch in record 2 (Process) at byte {proc_at}: the image is corrupt")
    );
}

#[test]
fn wrong_magic() {
    let mut bytes = encode_core(&sample_image());
    bytes[0] = b'X';
    let err = decode_core(&bytes).unwrap_err();
    assert_eq!(err, DecodeError::BadMagic);
    assert_eq!(err.to_string(), "core.img: not a stasis image (bad magic)");
    assert_eq!(decode_core(b"\x7fELF").unwrap_err(), DecodeError::BadMagic);
    assert_eq!(
        decode_core(b"").unwrap_err(),
        DecodeError::TruncatedHeader { len: 0 }
    );
}

#[test]
fn wrong_version_in_header() {
    let mut bytes = encode_core(&sample_image());
    bytes[8..12].copy_from_slice(&2u32.to_le_bytes());
    // A flipped version with the old crc is corruption...
    assert_eq!(
        decode_core(&bytes).unwrap_err(),
        DecodeError::HeaderChecksum
    );
    // ...a consistent header from a newer writer is a version error.
    let crc = crc32c::crc32c(&bytes[..12]);
    bytes[12..16].copy_from_slice(&crc.to_le_bytes());
    let err = decode_core(&bytes).unwrap_err();
    assert_eq!(err, DecodeError::UnsupportedVersion { found: 2 });
    assert_eq!(
        err.to_string(),
        "core.img: image format version 2, this stasis reads version 1"
    );
}

#[test]
fn wrong_version_in_inventory() {
    let mut image = sample_image();
    image.inventory.format_major = 7;
    let err = decode_core(&encode_core(&image)).unwrap_err();
    assert_eq!(
        err,
        DecodeError::Invalid(InvalidImage::FormatVersion { found: 7 })
    );
    assert_eq!(
        err.to_string(),
        "core.img: image format version 7, this stasis reads version 1"
    );
}

#[test]
fn oversized_length_field() {
    for len in [MAX_RECORD_LEN + 1, u32::MAX] {
        let mut bytes = encode_core(&sample_image());
        bytes[20..24].copy_from_slice(&len.to_le_bytes());
        let err = decode_core(&bytes).unwrap_err();
        assert!(
            matches!(err, DecodeError::RecordTooLarge { record: 1, offset: 16, len: l, .. } if l == len),
            "{err}"
        );
    }
    // At the cap, but longer than the file: truncation, not an allocation.
    let mut bytes = encode_core(&sample_image());
    bytes[20..24].copy_from_slice(&MAX_RECORD_LEN.to_le_bytes());
    assert!(matches!(
        decode_core(&bytes).unwrap_err(),
        DecodeError::TruncatedRecord { record: 1, .. }
    ));
}

#[test]
fn first_record_must_be_inventory() {
    let pipe = sample_image().pipes[0].encode_to_vec();
    let err = decode_core(&frame(&[(4, pipe.clone()), (1, inventory_bytes())])).unwrap_err();
    assert_eq!(
        err,
        DecodeError::InventoryNotFirst {
            kind: RecordKind::Pipe
        }
    );
    let err = decode_core(&frame(&[])).unwrap_err();
    assert_eq!(
        err,
        DecodeError::InventoryNotFirst {
            kind: RecordKind::End
        }
    );
}

#[test]
fn exactly_one_inventory() {
    let err = decode_core(&frame(&[(1, inventory_bytes()), (1, inventory_bytes())])).unwrap_err();
    assert!(
        matches!(err, DecodeError::DuplicateInventory { record: 2, .. }),
        "{err}"
    );
}

#[test]
fn unknown_kinds() {
    let inv = inventory_bytes();
    let mut image = sample_image();
    image.processes.clear();
    image.pagemaps.clear();
    image.pipes.clear();
    image.inventory.root_pid = 0;
    let inv_empty = image.inventory.encode_to_vec();

    for kind in [0, 5, 0x7FFF_FFFF] {
        let err = decode_core(&frame(&[(1, inv.clone()), (kind, vec![1, 2, 3])])).unwrap_err();
        assert!(
            matches!(err, DecodeError::UnknownKind { record: 2, kind: k, .. } if k == kind),
            "{err}"
        );
    }
    // Skippable kinds are checked and skipped.
    let bytes = frame(&[(1, inv_empty.clone()), (0x8000_0001, vec![9; 40])]);
    assert_eq!(decode_core(&bytes).unwrap(), image);
    let mut corrupt = bytes.clone();
    let last = corrupt.len() - 30;
    corrupt[last] ^= 1;
    assert!(matches!(
        decode_core(&corrupt).unwrap_err(),
        DecodeError::RecordChecksum { record: 2, .. }
    ));
}

#[test]
fn missing_end_record() {
    let bytes = encode_core(&sample_image());
    let without_end = &bytes[..bytes.len() - 24];
    let err = decode_core(without_end).unwrap_err();
    assert_eq!(
        err,
        DecodeError::MissingEnd {
            offset: without_end.len() as u64,
            records: 7
        }
    );
}

#[test]
fn end_record_detects_dropped_and_reordered_records() {
    let image = sample_image();
    let inv = image.inventory.encode_to_vec();
    let p0 = image.processes[0].encode_to_vec();
    let p1 = image.processes[1].encode_to_vec();
    let good = frame(&[(1, inv.clone()), (2, p0.clone()), (2, p1.clone())]);
    // Splice: take the End record of a shorter image.
    let short = frame(&[(1, inv.clone()), (2, p0.clone())]);
    let mut spliced = good[..good.len() - 24].to_vec();
    spliced.extend_from_slice(&short[short.len() - 24..]);
    assert!(matches!(
        decode_core(&spliced).unwrap_err(),
        DecodeError::EndMismatch {
            expected_records: 2,
            found_records: 3,
            ..
        }
    ));
    // Same count, different order: the file crc differs.
    let swapped = frame(&[(1, inv), (2, p1), (2, p0)]);
    let mut spliced = swapped[..swapped.len() - 24].to_vec();
    spliced.extend_from_slice(&good[good.len() - 24..]);
    assert!(matches!(
        decode_core(&spliced).unwrap_err(),
        DecodeError::EndMismatch {
            expected_records: 3,
            found_records: 3,
            ..
        }
    ));
}

#[test]
fn trailing_bytes() {
    let mut bytes = encode_core(&sample_image());
    let len = bytes.len() as u64;
    bytes.extend_from_slice(b"junk");
    assert_eq!(
        decode_core(&bytes).unwrap_err(),
        DecodeError::TrailingBytes {
            offset: len,
            extra: 4
        }
    );
}

#[test]
fn bad_payload_names_record() {
    let err = decode_core(&frame(&[(1, inventory_bytes()), (2, vec![0xff; 7])])).unwrap_err();
    assert!(matches!(
        err,
        DecodeError::Payload {
            record: 2,
            kind: RecordKind::Process,
            offset: _,
            ..
        }
    ));
    assert!(
        err.to_string()
            .starts_with("core.img: record 2 (Process) at byte "),
        "{err}"
    );
}

#[test]
fn resealed_image_is_still_valid() {
    // `reseal` must agree with the encoder, or the mutation test proves nothing.
    let bytes = encode_core(&sample_image());
    let mut copy = bytes.clone();
    copy[12..16].fill(0);
    let last = copy.len() - 1;
    copy[last] ^= 0xff;
    reseal(&mut copy);
    assert_eq!(copy, bytes);
}

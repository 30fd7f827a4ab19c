//! Structured input: the fuzz data is cut into records, which are framed
//! with correct checksums and an End record, so mutations reach the
//! protobuf payload decoder and `validate` instead of dying at a crc.
//!
//! Input: repeated `[selector u8][len u16 LE][payload len bytes]`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use stasis_image::{CORE_MAGIC, FORMAT_MAJOR};

/// Kinds the selector picks from: the four known ones, a skippable one, an
/// unknown must-understand one, and End in the wrong place.
const KINDS: [u32; 7] = [1, 2, 3, 4, 0x8000_0001, 5, 0xFFFF_FFFF];

fn push(out: &mut Vec<u8>, kind: u32, payload: &[u8]) {
    let start = out.len();
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    let crc = crc32c::crc32c_append(crc32c::crc32c(&out[start..]), payload);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(payload);
}

fuzz_target!(|data: &[u8]| {
    let mut out = Vec::with_capacity(data.len() + 64);
    out.extend_from_slice(&CORE_MAGIC);
    out.extend_from_slice(&FORMAT_MAJOR.to_le_bytes());
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());

    let mut rest = data;
    let mut records = 0u64;
    while rest.len() >= 3 {
        let kind = KINDS[rest[0] as usize % KINDS.len()];
        let len = (u16::from_le_bytes([rest[1], rest[2]]) as usize).min(rest.len() - 3);
        push(&mut out, kind, &rest[3..3 + len]);
        rest = &rest[3 + len..];
        records += 1;
    }
    let mut end = records.to_le_bytes().to_vec();
    end.extend_from_slice(&crc32c::crc32c(&out).to_le_bytes());
    push(&mut out, 0xFFFF_FFFF, &end);

    if let Ok(image) = stasis_image::decode_core(&out) {
        let again = stasis_image::decode_core(&stasis_image::encode_core(&image))
            .expect("an accepted image re-encodes to a valid one");
        assert_eq!(again, image);
    }
});

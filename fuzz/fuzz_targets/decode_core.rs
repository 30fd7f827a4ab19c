//! Raw bytes into `decode_core`: it must never panic, and an image it
//! accepts must re-encode to an image that decodes to the same value.
//! Start from `seeds/decode_core` so the fuzzer gets past the checksums.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(image) = stasis_image::decode_core(data) {
        let again = stasis_image::decode_core(&stasis_image::encode_core(&image))
            .expect("an accepted image re-encodes to a valid one");
        assert_eq!(again, image);
    }
});

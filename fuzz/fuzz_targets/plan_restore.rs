//! The restore planner on structured mutations of decoded seed images
//! (the mutator is shared with `crates/stasis-engine/tests/plan_mutations.rs`):
//! byte 0 picks the seed, the rest are edits to the tree, memory, fds and
//! page maps. Every mutant that `validate` accepts (what `read_core` would
//! hand restore) is planned with `Mode::ImageOnly`, which creates no
//! process and changes nothing on the host. Any panic is a bug.
//!
//!   cd fuzz && cargo +nightly fuzz run plan_restore

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use stasis_engine::restore::plan::{plan, Mode};
use stasis_engine::RestoreOptions;
use stasis_image::Image;

#[path = "../../crates/stasis-engine/tests/mutate/mod.rs"]
mod mutate;

fn seeds() -> &'static [Image] {
    static SEEDS: OnceLock<Vec<Image>> = OnceLock::new();
    SEEDS.get_or_init(mutate::seeds)
}

fuzz_target!(|data: &[u8]| {
    let seeds = seeds();
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let mut image = seeds[pick as usize % seeds.len()].clone();
    mutate::mutate(&mut image, &mut mutate::Choices::new(rest));
    if stasis_image::validate(&image).is_err() {
        return;
    }
    for pidns in [false, true] {
        let opts = RestoreOptions {
            pidns,
            shell_job: image.inventory.shell_job,
            ..RestoreOptions::default()
        };
        let _ = plan(&image, None, &opts, Mode::ImageOnly);
    }
});

//! The restore planner on a few thousand deterministic mutations of the
//! image fuzz seeds (see `mutate/mod.rs`): every mutant that validates is
//! planned in `Mode::ImageOnly`, which touches nothing on the host, and
//! must give a plan or an error, never a panic. `fuzz/`'s `plan_restore`
//! target does the same without a fixed budget. No root needed.

mod mutate;

use mutate::{mutate, seeds, Choices};
use stasis_engine::restore::plan::{plan, Mode};
use stasis_engine::RestoreOptions;

const ITERATIONS: u64 = 4000;

/// xorshift64*: the same mutants on every run.
fn bytes(state: &mut u64, n: usize) -> Vec<u8> {
    (0..n)
        .map(|_| {
            *state ^= *state >> 12;
            *state ^= *state << 25;
            *state ^= *state >> 27;
            (state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
        })
        .collect()
}

#[test]
fn planner_never_panics_on_mutated_images() {
    let seeds = seeds();
    assert!(seeds.len() >= 10, "the fuzz seeds decode: {}", seeds.len());
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let (mut valid, mut planned) = (0, 0);
    for i in 0..ITERATIONS {
        let input = bytes(&mut state, 96);
        let mut image = seeds[i as usize % seeds.len()].clone();
        mutate(&mut image, &mut Choices::new(&input));
        if stasis_image::validate(&image).is_err() {
            continue;
        }
        valid += 1;
        for pidns in [false, true] {
            let opts = RestoreOptions {
                pidns,
                shell_job: image.inventory.shell_job,
                ..RestoreOptions::default()
            };
            if plan(&image, None, &opts, Mode::ImageOnly).is_ok() {
                planned += 1;
            }
        }
    }
    eprintln!("{ITERATIONS} mutants: {valid} validated, {planned} plans made");
    assert!(valid > ITERATIONS / 10, "too few mutants validate: {valid}");
}

/// Some seeds are synthetic and not restorable as they are (a child in
/// session 0), but enough must plan for the mutants to reach every step.
#[test]
fn seeds_reach_the_whole_plan() {
    let mut planned = 0;
    for image in seeds() {
        let opts = RestoreOptions {
            shell_job: image.inventory.shell_job,
            pidns: image.inventory.root_pid == 1,
            ..RestoreOptions::default()
        };
        match plan(&image, None, &opts, Mode::ImageOnly) {
            Ok(_) => planned += 1,
            Err(e) => eprintln!("seed with root {}: {:?}", image.inventory.root_pid, e.0),
        }
    }
    assert!(planned >= 3, "only {planned} seeds plan");
}

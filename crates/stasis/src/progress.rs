//! indicatif progress for long dumps and restores. No ticker thread: the
//! restore forks, and a fork must happen while we are single-threaded.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Bar {
    bar: ProgressBar,
    start: std::time::Instant,
}

impl Bar {
    pub fn new(quiet: bool) -> Bar {
        let bar = ProgressBar::with_draw_target(
            Some(0),
            if quiet {
                ProgressDrawTarget::hidden()
            } else {
                ProgressDrawTarget::stderr()
            },
        );
        Bar {
            bar,
            start: std::time::Instant::now(),
        }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl stasis_engine::Progress for Bar {
    fn phase(&self, name: &str, total: u64) {
        // `STASIS_LOG=debug` shows where the time goes.
        tracing::debug!(
            "{:8.1} ms: {name}",
            self.start.elapsed().as_secs_f64() * 1e3
        );
        if total > 0 {
            self.bar.set_style(
                ProgressStyle::with_template(
                    "{msg:>10} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            self.bar.set_length(total);
            self.bar.set_position(0);
        } else {
            self.bar
                .set_style(ProgressStyle::with_template("{msg}").expect("valid template"));
        }
        self.bar.set_message(name.to_string());
    }

    fn advance(&self, units: u64) {
        self.bar.inc(units);
    }
}

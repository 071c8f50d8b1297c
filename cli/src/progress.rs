//! The progress bar of `backline run`: tasks planned so far vs. tasks finished.

use backline::model::{Outcome, Status};
use backline::pipeline::Progress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Bar {
    bar: ProgressBar,
}

impl Bar {
    pub fn new(job: &str, visible: bool) -> Bar {
        let target = if visible { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() };
        let bar = ProgressBar::with_draw_target(Some(0), target);
        bar.set_style(
            ProgressStyle::with_template("{prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} tasks, {msg}")
                .expect("template is valid"),
        );
        bar.set_prefix(job.to_string());
        bar.set_message("0 B copied");
        Bar { bar }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

pub struct BarProgress {
    pub bar: ProgressBar,
    bytes: std::sync::atomic::AtomicU64,
    waiting: std::sync::atomic::AtomicI64,
}

impl BarProgress {
    fn show(&self) {
        use std::sync::atomic::Ordering;
        let copied = indicatif::HumanBytes(self.bytes.load(Ordering::Relaxed));
        match self.waiting.load(Ordering::Relaxed) {
            0 => self.bar.set_message(format!("{copied} copied")),
            waiting => self.bar.set_message(format!("{copied} copied, {waiting} waiting for archive retrieval")),
        }
    }
}

impl Bar {
    pub fn progress(&self) -> BarProgress {
        BarProgress { bar: self.bar.clone(), bytes: Default::default(), waiting: Default::default() }
    }
}

impl Progress for BarProgress {
    fn planned(&self, _key: &str, _bytes: u64) {
        self.bar.inc_length(1);
    }

    fn finished(&self, outcome: &Outcome) {
        use std::sync::atomic::Ordering;
        if outcome.status == Status::Ok {
            self.bytes.fetch_add(outcome.bytes, Ordering::Relaxed);
            self.show();
        }
        self.bar.inc(1);
    }

    fn waiting(&self, delta: i64) {
        self.waiting.fetch_add(delta, std::sync::atomic::Ordering::Relaxed);
        self.show();
    }
}

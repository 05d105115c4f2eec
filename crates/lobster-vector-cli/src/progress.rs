//! Progress on stderr: an indicatif bar on a terminal, plain log lines otherwise.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use lobster_vector::build::BuildProgress;

/// A progress display for one long task at a time.
pub struct Progress {
    bar: Option<ProgressBar>,
    quiet: bool,
    plain: Mutex<PlainState>,
}

struct PlainState {
    what: String,
    total: usize,
    done: usize,
    next_report: usize,
    started: Instant,
}

impl Progress {
    /// A bar when stderr is a terminal; log lines every 10% otherwise; nothing when `quiet`.
    pub fn new(quiet: bool) -> Self {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::hidden();
            bar.set_style(
                ProgressStyle::with_template(
                    "{msg:>28} [{bar:30}] {pos}/{len} {per_sec} ETA {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar
        });
        Self {
            bar,
            quiet,
            plain: Mutex::new(PlainState {
                what: String::new(),
                total: 0,
                done: 0,
                next_report: 0,
                started: Instant::now(),
            }),
        }
    }

    /// Begins a task of `total` units.
    pub fn begin(&self, what: &str, total: usize) {
        if let Some(bar) = &self.bar {
            bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            bar.reset();
            bar.set_length(total as u64);
            bar.set_message(what.to_string());
        } else if let Ok(mut p) = self.plain.lock() {
            *p = PlainState {
                what: what.into(),
                total,
                done: 0,
                next_report: total / 10,
                started: Instant::now(),
            };
        }
    }

    /// Adds `n` finished units.
    pub fn inc(&self, n: usize) {
        if let Some(bar) = &self.bar {
            bar.inc(n as u64);
            return;
        }
        if self.quiet {
            return;
        }
        if let Ok(mut p) = self.plain.lock() {
            p.done += n;
            if p.done >= p.next_report && p.total > 0 {
                let rate = p.done as f64 / p.started.elapsed().as_secs_f64().max(1e-9);
                eprintln!("{}: {}/{} ({:.0}/s)", p.what, p.done, p.total, rate);
                p.next_report = p.done + (p.total / 10).max(1);
            }
        }
    }

    /// Replaces the current task's label (the bar's message; plain lines
    /// take it from the next report on).
    pub fn set_message(&self, what: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(what.to_string());
        } else if let Ok(mut p) = self.plain.lock() {
            p.what = what.to_string();
        }
    }

    /// One line about what happens next (nothing when quiet).
    pub fn note(&self, text: &str) {
        if self.quiet {
            return;
        }
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }

    /// Ends the current task.
    pub fn end(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl BuildProgress for Progress {
    fn start(&self, collection: &str, total: usize) {
        self.begin(collection, total);
    }
    fn advance(&self, done: usize) {
        self.inc(done);
    }
    fn finish(&self) {
        self.end();
    }
}

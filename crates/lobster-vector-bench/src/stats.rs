//! Medians and percentiles of timings.

use std::time::Instant;

/// Seconds elapsed running `f`.
pub fn time<T>(f: impl FnOnce() -> T) -> (f64, T) {
    let t = Instant::now();
    let out = f();
    (t.elapsed().as_secs_f64(), out)
}

pub use lobster_vector_core::testing::bench::{median, percentile};

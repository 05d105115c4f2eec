//! Request counters in the Prometheus text format (`GET /metrics`).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// (route label, status) of a counted answer.
type RequestKey = (&'static str, u16);

/// Counters shared by every request.
#[derive(Debug, Default)]
pub struct Metrics {
    /// (route, status) → (requests, total seconds).
    requests: Mutex<BTreeMap<RequestKey, (u64, f64)>>,
    in_flight: AtomicI64,
    /// Terms matched (a batch counts each of its terms).
    terms: AtomicU64,
    /// Requests refused because the concurrency limit was reached.
    overloaded: AtomicU64,
}

impl Metrics {
    pub fn started(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    pub fn finished(&self, route: &'static str, status: u16, took: Duration) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        let mut map = self.requests.lock().unwrap_or_else(PoisonError::into_inner);
        let e = map.entry((route, status)).or_default();
        e.0 += 1;
        e.1 += took.as_secs_f64();
    }

    pub fn matched(&self, terms: usize) {
        self.terms.fetch_add(terms as u64, Ordering::Relaxed);
    }

    pub fn refused(&self) {
        self.overloaded.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition of every counter.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let map = self.requests.lock().unwrap_or_else(PoisonError::into_inner);
        out.push_str(
            "# HELP lobster_vector_requests_total HTTP requests answered, by route and status.\n",
        );
        out.push_str("# TYPE lobster_vector_requests_total counter\n");
        for ((route, status), (n, _)) in map.iter() {
            let _ = writeln!(
                out,
                "lobster_vector_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        out.push_str("# HELP lobster_vector_request_seconds_total Time spent answering, by route and status.\n");
        out.push_str("# TYPE lobster_vector_request_seconds_total counter\n");
        for ((route, status), (_, s)) in map.iter() {
            let _ = writeln!(out, "lobster_vector_request_seconds_total{{route=\"{route}\",status=\"{status}\"}} {s:.6}");
        }
        let _ = writeln!(
            out,
            "# HELP lobster_vector_in_flight Requests being answered.\n# TYPE lobster_vector_in_flight gauge\nlobster_vector_in_flight {}",
            self.in_flight.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP lobster_vector_terms_matched_total Terms matched.\n# TYPE lobster_vector_terms_matched_total counter\nlobster_vector_terms_matched_total {}",
            self.terms.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP lobster_vector_overloaded_total Requests refused with 429 at the concurrency limit.\n# TYPE lobster_vector_overloaded_total counter\nlobster_vector_overloaded_total {}",
            self.overloaded.load(Ordering::Relaxed)
        );
        out
    }
}

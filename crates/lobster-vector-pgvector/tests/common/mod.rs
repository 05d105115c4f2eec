//! Shared helpers of the integration tests: the test server's URL (from
//! `LOBSTER_PGVECTOR_URL` or `DATABASE_URL`; `scripts/pg-test-server.sh` starts
//! one), unique collection names, clustered synthetic data.
#![allow(dead_code)]

use lobster_vector_pgvector::{PgOptions, PgStore};
use rand::Rng;

/// The test server's URL; `None` skips (or panics under
/// `LOBSTER_TEST_REQUIRE_SERVICES=1`).
pub fn url() -> Option<String> {
    match lobster_vector_pgvector::url_from_env() {
        Some(u) => Some(u),
        None => lobster_vector_core::testing::service_unavailable(
            "PostgreSQL with pgvector (LOBSTER_PGVECTOR_URL; start one with scripts/pg-test-server.sh)",
        ),
    }
}

/// A store on the test server with `options`, or `None` (skip) without a server.
pub fn store(options: PgOptions) -> Option<PgStore> {
    url().map(|u| PgStore::connect(&u, options).expect("connect to the test server"))
}

/// Options that send even tiny collections through the HNSW index.
pub fn hnsw_options() -> PgOptions {
    PgOptions {
        exact_search_below: 0,
        ..PgOptions::default()
    }
}

/// A collection name no other test (or test run) uses.
pub fn unique(prefix: &str) -> String {
    let n: u64 = rand::rng().random();
    format!("{prefix}_{n:016x}")
}

/// `url` with its password replaced (`postgres://user:pw@host…` form).
pub fn with_password(url: &str, password: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a postgres:// URL");
    let at = rest.rfind('@').expect("user@host in the URL");
    let user = rest[..at].split(':').next().unwrap_or("");
    format!("{scheme}://{user}:{password}@{}", &rest[at + 1..])
}

/// The password inside `url`.
pub fn password(url: &str) -> String {
    let rest = url.split_once("://").expect("URL").1;
    let at = rest.rfind('@').expect("user@host");
    rest[..at]
        .split_once(':')
        .map(|p| p.1.to_string())
        .unwrap_or_default()
}

#[allow(unused_imports)] // not every test file uses all of it
pub use lobster_vector_core::testing::data::*;

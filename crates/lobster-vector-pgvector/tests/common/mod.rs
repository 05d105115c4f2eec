//! Shared helpers of the integration tests: the test server's URL (from
//! `LOBSTER_PGVECTOR_URL` or `DATABASE_URL`; `scripts/pg-test-server.sh` starts
//! one), unique collection names, clustered synthetic data.
#![allow(dead_code)]

use lobster_vector_core::{Hit, Metadata, Record};
use lobster_vector_pgvector::{PgOptions, PgStore};
use rand::{Rng, SeedableRng};

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

pub fn rng(seed: u64) -> rand::rngs::StdRng {
    rand::rngs::StdRng::seed_from_u64(seed)
}

/// A standard normal sample (Box–Muller).
pub fn gauss(r: &mut impl Rng) -> f32 {
    let u1: f64 = r.random_range(f64::EPSILON..1.0);
    let u2: f64 = r.random();
    ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
}

/// `n` vectors around `clusters` random unit centres: centre + noise·N(0, I)/√dim.
pub fn clustered(seed: u64, n: usize, dim: usize, clusters: usize, noise: f32) -> Vec<Vec<f32>> {
    let mut r = rng(seed);
    let centres: Vec<Vec<f32>> = (0..clusters)
        .map(|_| {
            let mut c: Vec<f32> = (0..dim).map(|_| gauss(&mut r)).collect();
            let norm = c.iter().map(|x| x * x).sum::<f32>().sqrt();
            c.iter_mut().for_each(|x| *x /= norm);
            c
        })
        .collect();
    let scale = noise / (dim as f32).sqrt();
    (0..n)
        .map(|i| {
            let c = &centres[i % clusters];
            c.iter().map(|x| x + scale * gauss(&mut r)).collect()
        })
        .collect()
}

/// `n` data vectors and `nq` query vectors drawn from the same clusters.
pub fn clustered_split(
    seed: u64,
    n: usize,
    nq: usize,
    dim: usize,
    clusters: usize,
    noise: f32,
) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
    let mut all = clustered(seed, n + nq, dim, clusters, noise);
    let queries = all.split_off(n);
    (all, queries)
}

pub fn records(prefix: &str, vectors: &[Vec<f32>]) -> Vec<Record> {
    vectors
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let mut m = Metadata::new();
            m.insert("i".into(), serde_json::json!(i));
            Record::new(format!("{prefix}{i}"), v.clone())
                .with_document(format!("doc {prefix}{i}"))
                .with_metadata(m)
        })
        .collect()
}

pub fn ids(hits: &[Hit]) -> Vec<String> {
    hits.iter().map(|h| h.id.clone()).collect()
}

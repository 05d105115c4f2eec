//! Deterministic test data for store tests: clustered vectors (on which an
//! HNSW's recall means something, unlike uniform random ones) and records.

use rand::{Rng, SeedableRng};

use crate::{Hit, Metadata, Record};

/// A seeded generator.
pub fn rng(seed: u64) -> rand::rngs::StdRng {
    rand::rngs::StdRng::seed_from_u64(seed)
}

/// Uniform random vector in [-1, 1)^dim (speed figures only).
pub fn random_vector(r: &mut impl Rng, dim: usize) -> Vec<f32> {
    (0..dim).map(|_| r.random_range(-1.0_f32..1.0)).collect()
}

/// A standard normal sample (Box–Muller).
pub fn gauss(r: &mut impl Rng) -> f32 {
    let u1: f64 = r.random_range(f64::EPSILON..1.0);
    let u2: f64 = r.random();
    ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
}

/// `n` vectors around `clusters` random unit centres: centre + noise·N(0, I)/√dim,
/// so the noise has norm ≈ `noise` against unit-scale centres.
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

/// Records `{prefix}{i}` with document `doc {prefix}{i}` and metadata `{"i": i}`.
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

/// The ids of `hits`, in order.
pub fn ids(hits: &[Hit]) -> Vec<String> {
    hits.iter().map(|h| h.id.clone()).collect()
}

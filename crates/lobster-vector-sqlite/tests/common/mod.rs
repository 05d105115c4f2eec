//! Shared helpers of the integration tests.
#![allow(dead_code)]

use std::path::Path;

use lobster_vector_core::{CollectionInfo, Hit, Metadata, Record, Result, VectorStore};
use lobster_vector_sqlite::{SqliteOptions, SqliteStore};
use rand::{Rng, SeedableRng};
use tempfile::TempDir;

/// A store in its own temporary directory, removed after the store is closed.
#[derive(Debug)]
pub struct TempStore {
    pub store: SqliteStore,
    pub dir: TempDir,
}

impl TempStore {
    pub fn new(options: SqliteOptions) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(dir.path(), options).expect("open");
        Self { store, dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl VectorStore for TempStore {
    fn backend_name(&self) -> &'static str {
        self.store.backend_name()
    }
    fn upsert(&self, c: &str, r: &[Record]) -> Result<()> {
        self.store.upsert(c, r)
    }
    fn search(&self, c: &str, q: &[f32], k: usize) -> Result<Vec<Hit>> {
        self.store.search(c, q, k)
    }
    fn search_batch(&self, c: &str, q: &[Vec<f32>], k: usize) -> Result<Vec<Vec<Hit>>> {
        self.store.search_batch(c, q, k)
    }
    fn delete(&self, c: &str, ids: &[String]) -> Result<usize> {
        self.store.delete(c, ids)
    }
    fn count(&self, c: &str) -> Result<usize> {
        self.store.count(c)
    }
    fn has_collection(&self, c: &str) -> Result<bool> {
        self.store.has_collection(c)
    }
    fn list_collections(&self) -> Result<Vec<String>> {
        self.store.list_collections()
    }
    fn drop_collection(&self, c: &str) -> Result<bool> {
        self.store.drop_collection(c)
    }
    fn collection_info(&self, c: &str) -> Result<CollectionInfo> {
        self.store.collection_info(c)
    }
    fn set_collection_metadata(&self, c: &str, m: Metadata) -> Result<()> {
        self.store.set_collection_metadata(c, m)
    }
    fn flush(&self) -> Result<()> {
        self.store.flush()
    }
    fn lock_for_writing(&self) -> Result<()> {
        self.store.lock_for_writing()
    }
}

pub fn rng(seed: u64) -> rand::rngs::StdRng {
    rand::rngs::StdRng::seed_from_u64(seed)
}

/// Uniform random vector in [-1, 1)^dim.
pub fn random_vector(r: &mut impl Rng, dim: usize) -> Vec<f32> {
    (0..dim).map(|_| r.random_range(-1.0_f32..1.0)).collect()
}

/// A standard normal sample (Box–Muller).
pub fn gauss(r: &mut impl Rng) -> f32 {
    let u1: f64 = r.random_range(f64::EPSILON..1.0);
    let u2: f64 = r.random();
    ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
}

/// `n` vectors around `clusters` random centres: centre + noise·N(0, I)/√dim,
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

/// Options that make tiny test collections go through the HNSW graph.
pub fn hnsw_options() -> SqliteOptions {
    SqliteOptions {
        exact_search_below: 0,
        ..SqliteOptions::default()
    }
}

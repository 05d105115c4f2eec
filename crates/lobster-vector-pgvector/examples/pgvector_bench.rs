//! Figures for the `pgvector` store beside the `local` store (SQLite + usearch)
//! on the same vectors: bulk ingest rate, query latency p50/p99 at k=20
//! (with documents and metadata), and recall@20 against the exact FlatStore.
//!
//! `LOBSTER_PGVECTOR_URL=… cargo run --release -p lobster-vector-pgvector --example pgvector_bench -- [N] [DIM] [BATCH] [random|clustered]`
//! (defaults 100000 384 5000, both data sets). On uniform random vectors
//! only the speed figures mean anything (every HNSW's recall collapses there);
//! the clustered set (64 centres, noise ≈ 0.6) is closer to real embeddings.

use std::time::{Duration, Instant};

use lobster_vector_core::{FlatStore, Metadata, Record, VectorStore};
use lobster_vector_pgvector::{PgOptions, PgStore};
use lobster_vector_sqlite::{SqliteOptions, SqliteStore};
use rand::{Rng, SeedableRng};

fn gauss(r: &mut impl Rng) -> f32 {
    let u1: f64 = r.random_range(f64::EPSILON..1.0);
    let u2: f64 = r.random();
    ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
}

fn data(clustered: bool, n: usize, nq: usize, dim: usize) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
    let mut r = rand::rngs::StdRng::seed_from_u64(if clustered { 11 } else { 7 });
    let centres: Vec<Vec<f32>> = (0..64)
        .map(|_| {
            let mut c: Vec<f32> = (0..dim).map(|_| gauss(&mut r)).collect();
            let norm = c.iter().map(|x| x * x).sum::<f32>().sqrt();
            c.iter_mut().for_each(|x| *x /= norm);
            c
        })
        .collect();
    let scale = 0.6 / (dim as f32).sqrt();
    let mut all: Vec<Vec<f32>> = (0..n + nq)
        .map(|i| {
            if clustered {
                let c = &centres[i % centres.len()];
                c.iter().map(|x| x + scale * gauss(&mut r)).collect()
            } else {
                (0..dim).map(|_| r.random_range(-1.0_f32..1.0)).collect()
            }
        })
        .collect();
    let queries = all.split_off(n);
    (all, queries)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

struct Figures {
    ingest_per_s: f64,
    p50: f64,
    p99: f64,
    recall: f64,
}

fn run(
    store: &dyn VectorStore,
    c: &str,
    records: &[Record],
    queries: &[Vec<f32>],
    truth: &[Vec<String>],
    batch: usize,
) -> Result<Figures, Box<dyn std::error::Error>> {
    let t = Instant::now();
    for chunk in records.chunks(batch) {
        store.upsert(c, chunk)?;
    }
    store.flush()?;
    let ingest = t.elapsed();
    let mut lat = Vec::with_capacity(queries.len());
    let (mut hit, mut total) = (0usize, 0usize);
    for (q, want) in queries.iter().zip(truth) {
        let t = Instant::now();
        let hits = store.search(c, q, 20)?;
        lat.push(t.elapsed());
        hit += hits.iter().filter(|h| want.contains(&h.id)).count();
        total += want.len();
    }
    lat.sort();
    Ok(Figures {
        ingest_per_s: records.len() as f64 / ingest.as_secs_f64(),
        p50: percentile(&lat, 0.5),
        p99: percentile(&lat, 0.99),
        recall: hit as f64 / total as f64,
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let n = args.first().copied().unwrap_or(100_000);
    let dim = args.get(1).copied().unwrap_or(384);
    let batch = args.get(2).copied().unwrap_or(5_000);
    let only: Option<bool> = std::env::args().find_map(|a| match a.as_str() {
        "random" => Some(false),
        "clustered" => Some(true),
        _ => None,
    });
    let url = lobster_vector_pgvector::url_from_env()
        .ok_or("set LOBSTER_PGVECTOR_URL (eval \"$(bash scripts/pg-test-server.sh start)\")")?;
    let pg = PgStore::connect(&url, PgOptions::default())?;
    for clustered in [false, true] {
        if only.is_some_and(|o| o != clustered) {
            continue;
        }
        let kind = if clustered { "clustered" } else { "random" };
        let (vectors, queries) = data(clustered, n, 500, dim);
        let records: Vec<Record> = vectors
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                let mut m = Metadata::new();
                m.insert("ontology_id".into(), format!("MONDO:{i:07}").into());
                Record::new(format!("id{i}"), v)
                    .with_document(format!("label number {i}"))
                    .with_metadata(m)
            })
            .collect();
        let flat = FlatStore::new();
        flat.upsert("truth", &records)?;
        let truth: Vec<Vec<String>> = queries
            .iter()
            .map(|q| {
                flat.search("truth", q, 20)
                    .map(|h| h.into_iter().map(|h| h.id).collect())
            })
            .collect::<Result<_, _>>()?;
        drop(flat);
        println!("== {n} x {dim} {kind} vectors, batches of {batch}, 500 queries at k=20");
        let c = format!("bench_{kind}_{}", std::process::id());
        let f = run(&pg, &c, &records, &queries, &truth, batch)?;
        pg.drop_collection(&c)?;
        let dir = tempfile::tempdir()?;
        let local = SqliteStore::open(dir.path(), SqliteOptions::default())?;
        let l = run(&local, "bench", &records, &queries, &truth, batch)?;
        for (name, x) in [("pgvector", &f), ("local", &l)] {
            println!(
                "{name:>9}: ingest {:>7.0} vectors/s  query p50 {:>6.2} ms  p99 {:>6.2} ms  recall@20 {:.4}{}",
                x.ingest_per_s,
                x.p50,
                x.p99,
                x.recall,
                if clustered { "" } else { " (random data: speed only)" }
            );
        }
        println!(
            "  pgvector / local: ingest {:.2}x, p50 {:.2}x slower",
            f.ingest_per_s / l.ingest_per_s,
            f.p50 / l.p50
        );
    }
    Ok(())
}

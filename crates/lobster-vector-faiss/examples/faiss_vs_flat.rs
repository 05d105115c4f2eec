//! FAISS flat (`IndexIDMap2,Flat`, inner product) against lobster-vector's
//! FlatStore on the same vectors, in the same process: exact k-NN, so both
//! must return the same neighbours; the figures are speed only.
//!
//! `cargo run --release -p lobster-vector-faiss --example faiss_vs_flat -- [N] [DIM] [QUERIES]`
//! (defaults 200000 384 1000). Prints ingest time, single-query latency
//! (median, p99 over `QUERIES` queries) and batch throughput at k = 20, and the
//! FlatStore/FAISS ratios.

use std::time::Instant;

use lobster_vector_core::store::as_slices;
use lobster_vector_core::testing::bench::percentile;
use lobster_vector_core::testing::data::clustered_split;
use lobster_vector_core::{FlatStore, Record, VectorStore};
use lobster_vector_faiss::FaissStore;

const K: usize = 20;

struct Figures {
    ingest_s: f64,
    single_p50_ms: f64,
    single_p99_ms: f64,
    batch_qps: f64,
    first_ids: Vec<Vec<String>>,
}

fn measure(store: &dyn VectorStore, records: &[Record], queries: &[Vec<f32>]) -> Figures {
    let started = Instant::now();
    for chunk in records.chunks(10_000) {
        store.upsert("bench", chunk).expect("upsert");
    }
    let ingest_s = started.elapsed().as_secs_f64();
    for q in queries.iter().take(10) {
        store.search("bench", q, K).expect("warm-up");
    }
    let mut lat = Vec::with_capacity(queries.len());
    let mut first_ids = Vec::new();
    for q in queries {
        let t = Instant::now();
        let hits = store.search("bench", q, K).expect("search");
        lat.push(t.elapsed().as_secs_f64() * 1e3);
        first_ids.push(hits.into_iter().map(|h| h.id).collect());
    }
    let t = Instant::now();
    let batch = store
        .search_batch("bench", &as_slices(queries), K)
        .expect("batch");
    let batch_s = t.elapsed().as_secs_f64();
    assert_eq!(batch.len(), queries.len());
    Figures {
        ingest_s,
        single_p50_ms: percentile(&lat, 50.0),
        single_p99_ms: percentile(&lat, 99.0),
        batch_qps: queries.len() as f64 / batch_s,
        first_ids,
    }
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let n = args.first().copied().unwrap_or(200_000);
    let dim = args.get(1).copied().unwrap_or(384);
    let nq = args.get(2).copied().unwrap_or(1_000);
    eprintln!("{n} x {dim} vectors, {nq} queries, k = {K}");
    let (base, queries) = clustered_split(42, n, nq, dim, 256, 0.8);
    let records: Vec<Record> = base
        .into_iter()
        .enumerate()
        .map(|(i, v)| Record::new(format!("v{i}"), v).with_document(format!("doc {i}")))
        .collect();
    let faiss = measure(&FaissStore::in_memory(), &records, &queries);
    let flat = measure(&FlatStore::new(), &records, &queries);
    let agree = faiss
        .first_ids
        .iter()
        .zip(&flat.first_ids)
        .map(|(a, b)| a.iter().filter(|id| b.contains(id)).count())
        .sum::<usize>() as f64
        / (K * nq) as f64;
    println!(
        "{:<28} {:>12} {:>12} {:>10}",
        "figure", "FlatStore", "FAISS", "ratio"
    );
    let row = |name: &str, ours: f64, theirs: f64, better_is_lower: bool| {
        let ratio = if better_is_lower {
            theirs / ours
        } else {
            ours / theirs
        };
        println!("{name:<28} {ours:>12.3} {theirs:>12.3} {ratio:>9.2}x");
    };
    row("ingest seconds", flat.ingest_s, faiss.ingest_s, true);
    row(
        "single query p50 ms",
        flat.single_p50_ms,
        faiss.single_p50_ms,
        true,
    );
    row(
        "single query p99 ms",
        flat.single_p99_ms,
        faiss.single_p99_ms,
        true,
    );
    row("batch queries/s", flat.batch_qps, faiss.batch_qps, false);
    println!(
        "ratio > 1: FlatStore faster. Same top-{K} ids: {:.4}",
        agree
    );
}

//! Recall@10 of the HNSW path against the exact FlatStore on clustered
//! synthetic data (uniform random high-dimensional vectors are for speed
//! figures only: every HNSW's recall collapses on them).

mod common;

use common::{clustered_split, records, TempStore};
use lobster_vector_core::{FlatStore, VectorStore};
use lobster_vector_local::{LocalOptions, LocalStore};

const C: &str = "clustered_20k";

fn recall_at_10(store: &dyn VectorStore, flat: &FlatStore, queries: &[Vec<f32>]) -> f64 {
    lobster_vector_core::testing::recall_at_k(store, flat, C, queries, 10)
}

#[test]
fn recall_at_10_on_clustered_384d_data() {
    let (n, dim) = (20_000, 384);
    let (data, queries) = clustered_split(42, n, 300, dim, 64, 0.6);
    let recs = records("v", &data);
    // Batches of 5,000 are inserted into the graph by two threads.
    let mut options = LocalOptions::default();
    options.hnsw.build_threads = 2;
    let ts = TempStore::new(options);
    let flat = FlatStore::new();
    let t = std::time::Instant::now();
    for chunk in recs.chunks(5_000) {
        ts.store.upsert(C, chunk).expect("upsert");
    }
    let ingest = t.elapsed();
    flat.upsert(C, &recs).expect("flat");
    // Queries: fresh points from the same clusters (not in the data).
    let r = recall_at_10(&ts.store, &flat, &queries);
    eprintln!(
        "recall@10 = {r:.4} on {n}x{dim} clustered vectors (ingest {:.1} s)",
        ingest.as_secs_f64()
    );
    assert!(r >= 0.98, "recall@10 {r}");
    // Concurrent inserts must leave every vector reachable: it finds itself
    // first. (HNSW pruning leaves a few nodes unreachable even when built by
    // one thread: 8 of these 20,000 were measured either way.)
    let lost = recs
        .iter()
        .filter(|r| {
            let hits = ts.store.search(C, &r.vector, 1).expect("search");
            hits.first().map(|h| h.id.as_str()) != Some(r.id.as_str())
        })
        .count();
    let self_recall = 1.0 - lost as f64 / n as f64;
    eprintln!("self-recall@1 = {self_recall:.5} (graph built by 2 threads)");
    assert!(self_recall >= 0.999, "self-recall@1 {self_recall}");
    // The same answers after reopening from the saved index file.
    let common::TempStore { store, dir } = ts;
    drop(store);
    let reopened = LocalStore::open(dir.path(), LocalOptions::default()).expect("reopen");
    let r2 = recall_at_10(&reopened, &flat, &queries);
    assert!(r2 >= 0.98, "recall@10 after reopening {r2}");
}

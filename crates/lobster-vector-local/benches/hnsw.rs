//! HNSW search of the local store (8-bit walk, exact re-rank, rows fetched
//! from SQLite): one query at a time and batches of 256, k = 20 over 20,000
//! clustered vectors of 384 floats.
//!
//! `cargo bench -p lobster-vector-local --bench hnsw`

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use lobster_vector_core::store::as_slices;
use lobster_vector_core::testing::data::clustered_split;
use lobster_vector_core::{Record, VectorStore};
use lobster_vector_local::{LocalOptions, LocalStore};

const COLLECTION: &str = "bench";
const K: usize = 20;

fn hnsw(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temporary directory");
    // 20,000 vectors are above `exact_search_below`: searches walk the graph.
    let store = LocalStore::open(dir.path(), LocalOptions::default()).expect("open the store");
    let (base, queries) = clustered_split(7, 20_000, 256, 384, 64, 0.5);
    let records: Vec<Record> = base
        .into_iter()
        .enumerate()
        .map(|(i, v)| Record::new(format!("r{i}"), v))
        .collect();
    for chunk in records.chunks(5_000) {
        store.upsert(COLLECTION, chunk).expect("upsert");
    }
    store.flush().expect("flush");
    let queries = as_slices(&queries);
    let mut group = c.benchmark_group("hnsw_20k_x_384");
    group.throughput(Throughput::Elements(1));
    group.bench_function("search", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % queries.len();
            store.search(COLLECTION, queries[i], K).expect("search")
        })
    });
    group.throughput(Throughput::Elements(queries.len() as u64));
    group.bench_with_input(
        BenchmarkId::new("search_batch", queries.len()),
        &queries,
        |b, queries| b.iter(|| store.search_batch(COLLECTION, queries, K).expect("batch")),
    );
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .measurement_time(std::time::Duration::from_secs(8));
    targets = hnsw
}
criterion_main!(benches);

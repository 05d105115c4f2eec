//! Quick figures for the `local` store on random vectors (speed only: recall on
//! uniform random vectors means nothing).
//!
//! `cargo run --release -p lobster-vector-local --example bench -- [N] [DIM] [BATCH] [clustered]`
//! (defaults 100000 384 5000; `clustered` draws the vectors around 64 random
//! centres instead of uniformly, which is closer to real embeddings). Prints ingest rate, query latency p50/p99 at
//! k=20 (including documents and metadata), 1,000 queries as single searches
//! and as one batch, on-disk size, and the time to
//! reopen the store and answer a first query with a current index file.

use std::time::Instant;

use lobster_vector_core::store::as_slices;
use lobster_vector_core::testing::bench::percentile;
use lobster_vector_core::{Metadata, Record, VectorStore};
use lobster_vector_local::{LocalOptions, LocalStore};

fn lcg(state: &mut u64) -> f32 {
    *state = state
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    ((*state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
}

fn dir_size(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    for d in [dir.to_path_buf(), dir.join("index")] {
        for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
            if let Ok(m) = e.metadata() {
                if m.is_file() {
                    total += m.len();
                }
            }
        }
    }
    total
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let n = args.first().copied().unwrap_or(100_000);
    let dim = args.get(1).copied().unwrap_or(384);
    let batch = args.get(2).copied().unwrap_or(5_000);
    let clustered = std::env::args().any(|a| a == "clustered");
    let dir = tempfile::tempdir()?;
    let c = "bench_random";
    let mut state = 7u64;
    let centres: Vec<Vec<f32>> = (0..64)
        .map(|_| (0..dim).map(|_| lcg(&mut state)).collect())
        .collect();
    let records: Vec<Record> = (0..n)
        .map(|i| {
            let v: Vec<f32> = if clustered {
                let c = &centres[i % centres.len()];
                c.iter().map(|x| x + 0.5 * lcg(&mut state)).collect()
            } else {
                (0..dim).map(|_| lcg(&mut state)).collect()
            };
            let mut m = Metadata::new();
            m.insert("ontology_id".into(), format!("MONDO:{i:07}").into());
            Record::new(format!("id{i}"), v)
                .with_document(format!("label number {i}"))
                .with_metadata(m)
        })
        .collect();
    let queries: Vec<Vec<f32>> = (0..1_000)
        .map(|i| {
            if clustered {
                let c = &centres[i % centres.len()];
                c.iter().map(|x| x + 0.5 * lcg(&mut state)).collect()
            } else {
                (0..dim).map(|_| lcg(&mut state)).collect()
            }
        })
        .collect();

    let store = LocalStore::open(dir.path(), LocalOptions::default())?;
    let t = Instant::now();
    for chunk in records.chunks(batch) {
        store.upsert(c, chunk)?;
    }
    let ingest = t.elapsed();
    let t = Instant::now();
    store.flush()?;
    let save = t.elapsed();
    println!(
        "ingest: {n} x {dim} {} in batches of {batch}: {:.1} s = {:.0} vectors/s (+ index save {:.2} s)",
        if clustered { "clustered" } else { "random" },
        ingest.as_secs_f64(),
        n as f64 / ingest.as_secs_f64(),
        save.as_secs_f64()
    );
    let mut lat = Vec::with_capacity(queries.len());
    for q in &queries {
        let t = Instant::now();
        let hits = store.search(c, q, 20)?;
        lat.push(t.elapsed().as_secs_f64() * 1e3);
        assert_eq!(hits.len(), 20);
    }
    println!(
        "query k=20 (with documents+metadata): p50 {:.3} ms, p99 {:.3} ms",
        percentile(&lat, 50.0),
        percentile(&lat, 99.0)
    );
    // The same queries one `search` at a time and as `search_batch` calls
    // (one read transaction, one index read, one row fetch each), best of 3:
    // all 1,000 at k=20, and in batches of 256 at k=64 (what `map` asks).
    let best = |f: &dyn Fn() -> Result<(), Box<dyn std::error::Error>>| {
        (0..3)
            .map(|_| {
                let t = Instant::now();
                f().map(|()| t.elapsed().as_secs_f64())
            })
            .try_fold(f64::INFINITY, |m, s| s.map(|s| m.min(s)))
    };
    for (k, per_batch) in [(20, queries.len()), (64, 256)] {
        let singles = best(&|| {
            for q in &queries {
                store.search(c, q, k)?;
            }
            Ok(())
        })?;
        let batched = best(&|| {
            for batch in queries.chunks(per_batch) {
                let hits = store.search_batch(c, &as_slices(batch), k)?;
                assert_eq!(hits.len(), batch.len());
            }
            Ok(())
        })?;
        println!(
            "{} queries k={k}: one search each {:.0} q/s, search_batch of {per_batch} {:.0} q/s ({:.2}x)",
            queries.len(),
            queries.len() as f64 / singles,
            queries.len() as f64 / batched,
            singles / batched
        );
    }
    drop(store);
    println!(
        "on disk: {:.1} MiB",
        dir_size(dir.path()) as f64 / (1024.0 * 1024.0)
    );

    for (run, q) in queries.iter().enumerate().take(3) {
        let t = Instant::now();
        let store = LocalStore::open(
            dir.path(),
            LocalOptions {
                read_only: true,
                ..LocalOptions::default()
            },
        )?;
        let hits = store.search(c, q, 20)?;
        let first = t.elapsed();
        assert_eq!(hits.len(), 20);
        println!(
            "open + first query (current index file), run {run}: {:.1} ms",
            first.as_secs_f64() * 1e3
        );
    }
    Ok(())
}

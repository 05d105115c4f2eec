//! Parity with the exact FlatStore: recall@10 of the HNSW index on clustered
//! synthetic data (uniform random high-dimensional vectors are for speed
//! figures only: every HNSW's recall collapses on them), and exact ordering
//! and distances on the exact-scan path.

mod common;

use common::{clustered_split, records};
use lobster_vector_core::store::as_slices;
use lobster_vector_core::{FlatStore, VectorStore};
use lobster_vector_pgvector::PgOptions;

#[test]
fn recall_at_10_on_clustered_384d_data() {
    let Some(store) = common::store(PgOptions::default()) else {
        return;
    };
    let c = common::unique("recall");
    let (n, dim) = (20_000, 384);
    let (data, queries) = clustered_split(42, n, 300, dim, 64, 0.6);
    let recs = records("v", &data);
    let flat = FlatStore::new();
    flat.upsert(&c, &recs).expect("flat");
    let t = std::time::Instant::now();
    for chunk in recs.chunks(5_000) {
        store.upsert(&c, chunk).expect("upsert");
    }
    let ingest = t.elapsed();
    assert_eq!(store.count(&c).expect("count"), n);
    let (mut hit, mut total) = (0usize, 0usize);
    let t = std::time::Instant::now();
    for q in &queries {
        let want = common::ids(&flat.search(&c, q, 10).expect("flat"));
        let got = store.search(&c, q, 10).expect("search");
        assert_eq!(got.len(), 10);
        assert!(got.windows(2).all(|w| w[0].distance <= w[1].distance));
        hit += got.iter().filter(|h| want.contains(&h.id)).count();
        total += want.len();
    }
    let r = hit as f64 / total as f64;
    eprintln!(
        "recall@10 = {r:.4} on {n}x{dim} clustered vectors (ingest {:.1} s, {} queries {:.2} s)",
        ingest.as_secs_f64(),
        queries.len(),
        t.elapsed().as_secs_f64()
    );
    assert!(r >= 0.98, "recall@10 {r}");
    // search_batch gives the same answers in one round trip per 256 queries.
    let batch = store
        .search_batch(&c, &as_slices(&queries), 10)
        .expect("batch");
    for (q, b) in queries.iter().zip(&batch).take(50) {
        let single = store.search(&c, q, 10).expect("search");
        assert_eq!(common::ids(b), common::ids(&single));
    }
    store.drop_collection(&c).expect("drop");
}

#[test]
fn exact_scan_matches_flat_store_order_and_distances() {
    let Some(store) = common::store(PgOptions {
        exact_search_below: usize::MAX,
        ..PgOptions::default()
    }) else {
        return;
    };
    let c = common::unique("exact");
    let (data, queries) = clustered_split(7, 3_000, 40, 64, 16, 0.8);
    let recs = records("e", &data);
    let flat = FlatStore::new();
    flat.upsert(&c, &recs).expect("flat");
    store.upsert(&c, &recs).expect("upsert");
    for q in &queries {
        let want = flat.search(&c, q, 25).expect("flat");
        let got = store.search(&c, q, 25).expect("search");
        assert_eq!(common::ids(&got), common::ids(&want));
        for (g, w) in got.iter().zip(&want) {
            assert!(
                (g.distance - w.distance).abs() < 1e-5,
                "{} vs {}",
                g.distance,
                w.distance
            );
        }
    }
    // k beyond pgvector's ef_search limit falls back to the exact scan too.
    let all = store.search(&c, &queries[0], 2_500).expect("k=2500");
    assert_eq!(all.len(), 2_500);
    assert_eq!(
        common::ids(&all),
        common::ids(&flat.search(&c, &queries[0], 2_500).expect("flat"))
    );
    store.drop_collection(&c).expect("drop");
}

#[test]
fn halfvec_index_above_2000_dimensions() {
    let Some(store) = common::store(common::hnsw_options()) else {
        return;
    };
    let c = common::unique("halfvec");
    let (data, queries) = clustered_split(9, 300, 10, 2_100, 8, 0.8);
    let recs = records("h", &data);
    let flat = FlatStore::new();
    flat.upsert(&c, &recs).expect("flat");
    store.upsert(&c, &recs).expect("upsert 2100-d");
    for q in &queries {
        let want = flat.search(&c, q, 10).expect("flat");
        let got = store.search(&c, q, 10).expect("search");
        assert!(got.windows(2).all(|w| w[0].distance <= w[1].distance));
        let found = got
            .iter()
            .filter(|h| want.iter().any(|w| w.id == h.id))
            .count();
        assert!(found >= 9, "{found}/10");
        // Distances are the full-precision ones.
        for g in &got {
            let w = flat.search(&c, q, 300).expect("flat");
            let d = w.iter().find(|x| x.id == g.id).expect("known id").distance;
            assert!((g.distance - d).abs() < 1e-5);
        }
    }
    let e = store
        .upsert(
            &common::unique("toowide"),
            &[lobster_vector_core::Record::new("x", vec![1.0; 4_001])],
        )
        .expect_err("4001-d");
    assert!(
        matches!(e, lobster_vector_core::Error::InvalidInput { .. }),
        "{e:?}"
    );
    store.drop_collection(&c).expect("drop");
}

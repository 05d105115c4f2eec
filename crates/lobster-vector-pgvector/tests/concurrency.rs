//! Several threads searching while one ingests: no errors, every search sees a
//! consistent collection, and the counts are right at the end.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use lobster_vector_core::store::as_slices;
use lobster_vector_core::VectorStore;
use lobster_vector_pgvector::PgOptions;

#[test]
fn searches_while_ingesting() {
    let Some(store) = common::store(PgOptions {
        exact_search_below: 1_000,
        ..PgOptions::default()
    }) else {
        return;
    };
    let store = Arc::new(store);
    let c = common::unique("concurrent");
    let (data, queries) = common::clustered_split(3, 6_000, 64, 96, 24, 0.6);
    let recs = common::records("c", &data);
    store.upsert(&c, &recs[..1_000]).expect("seed");
    let done = Arc::new(AtomicBool::new(false));
    let searches = Arc::new(AtomicUsize::new(0));
    let readers: Vec<_> = (0..4)
        .map(|t| {
            let (store, c, done, searches) = (
                Arc::clone(&store),
                c.clone(),
                Arc::clone(&done),
                Arc::clone(&searches),
            );
            let queries = queries.clone();
            std::thread::spawn(move || {
                let mut i = t;
                while !done.load(Ordering::Acquire) {
                    let q = &queries[i % queries.len()];
                    let hits = store.search(&c, q, 10).expect("search during ingest");
                    assert_eq!(hits.len(), 10);
                    assert!(hits.windows(2).all(|w| w[0].distance <= w[1].distance));
                    let n = store.count(&c).expect("count during ingest");
                    // Batches of 500 become visible whole.
                    assert!(n % 500 == 0 && n >= 1_000, "count {n}");
                    if i % 7 == 0 {
                        let b = store
                            .search_batch(&c, &as_slices(&queries[..4]), 5)
                            .expect("batch during ingest");
                        assert!(b.iter().all(|h| h.len() == 5));
                    }
                    searches.fetch_add(1, Ordering::Relaxed);
                    i += 4;
                }
            })
        })
        .collect();
    let writer = {
        let (store, c) = (Arc::clone(&store), c.clone());
        let recs = recs.clone();
        std::thread::spawn(move || {
            for chunk in recs[1_000..].chunks(500) {
                store.upsert(&c, chunk).expect("upsert during searches");
            }
            // Overwrites and deletes too.
            store.upsert(&c, &recs[..500]).expect("overwrite");
            let gone: Vec<String> = recs[..500].iter().map(|r| r.id.clone()).collect();
            assert_eq!(store.delete(&c, &gone).expect("delete"), 500);
        })
    };
    writer.join().expect("writer");
    done.store(true, Ordering::Release);
    for r in readers {
        r.join().expect("reader");
    }
    assert_eq!(store.count(&c).expect("count"), 6_000 - 500);
    assert!(searches.load(Ordering::Relaxed) > 0);
    eprintln!(
        "{} searches ran during the ingest",
        searches.load(Ordering::Relaxed)
    );
    store.drop_collection(&c).expect("drop");
}

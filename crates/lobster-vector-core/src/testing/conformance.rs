//! One function per rule of the `VectorStore` contract (DESIGN.md). Each uses
//! its own uniquely named collections, so a shared server can run them in
//! parallel, and drops them at the end.

use rand::{Rng, SeedableRng};
use serde_json::json;

use crate::{Error, Metadata, Record, VectorStore};

/// A unique, valid collection name for one rule.
fn name(rule: &str) -> String {
    let n: u32 = rand::rng().random();
    format!("conf_{}_{n:08x}", &rule[..rule.len().min(40)])
}

fn rng(seed: u64) -> rand::rngs::StdRng {
    rand::rngs::StdRng::seed_from_u64(seed)
}

/// `n` random vectors of dimension `dim` (uniform in [-1, 1)).
pub fn random_vectors(seed: u64, n: usize, dim: usize) -> Vec<Vec<f32>> {
    let mut r = rng(seed);
    (0..n)
        .map(|_| (0..dim).map(|_| r.random_range(-1.0_f32..1.0)).collect())
        .collect()
}

fn records(seed: u64, n: usize, dim: usize) -> Vec<Record> {
    random_vectors(seed, n, dim)
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            let mut m = Metadata::new();
            m.insert("i".into(), json!(i));
            Record::new(format!("id-{i}"), v)
                .with_document(format!("doc {i}"))
                .with_metadata(m)
        })
        .collect()
}

/// Cosine distance computed naively in f64.
pub fn cosine_distance(a: &[f32], b: &[f32]) -> f64 {
    let (mut d, mut na, mut nb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (f64::from(*x), f64::from(*y));
        d += x * y;
        na += x * x;
        nb += y * y;
    }
    1.0 - d / (na.sqrt() * nb.sqrt())
}

/// The exact answer: `(id, distance)` of the `k` nearest, nearest first.
pub fn brute_force(records: &[Record], q: &[f32], k: usize) -> Vec<(String, f64)> {
    let mut all: Vec<(String, f64)> = records
        .iter()
        .map(|r| (r.id.clone(), cosine_distance(&r.vector, q)))
        .collect();
    all.sort_by(|a, b| a.1.total_cmp(&b.1));
    all.truncate(k);
    all
}

fn state(
    store: &dyn VectorStore,
    c: &str,
    probe: &[f32],
) -> (usize, Vec<(String, Option<String>)>) {
    let count = store.count(c).expect("count");
    let hits = store.search(c, probe, 100).expect("search");
    (
        count,
        hits.into_iter().map(|h| (h.id, h.document)).collect(),
    )
}

pub fn upsert_creates_collection_and_counts(store: &dyn VectorStore) {
    let c = name("create");
    assert!(!store.has_collection(&c).expect("has_collection"));
    store.upsert(&c, &records(1, 10, 8)).expect("upsert");
    assert!(store.has_collection(&c).expect("has_collection"));
    assert_eq!(store.count(&c).expect("count"), 10);
    store
        .upsert(&c, &records(2, 3, 8)[..0])
        .expect("empty batch");
    assert_eq!(store.count(&c).expect("count"), 10);
    let info = store.collection_info(&c).expect("info");
    assert_eq!((info.dimension, info.count), (Some(8), 10));
    store.drop_collection(&c).expect("drop");
}

pub fn upsert_overwrites_existing_id(store: &dyn VectorStore) {
    let c = name("overwrite");
    let recs = records(3, 5, 4);
    store.upsert(&c, &recs).expect("upsert");
    let new_vec = vec![0.0, 0.0, 0.0, 1.0];
    let mut m = Metadata::new();
    m.insert("v".into(), json!("second"));
    store
        .upsert(
            &c,
            &[Record::new("id-2", new_vec.clone())
                .with_document("replaced")
                .with_metadata(m.clone())],
        )
        .expect("overwrite");
    assert_eq!(store.count(&c).expect("count"), 5);
    let hit = store.search(&c, &new_vec, 1).expect("search").remove(0);
    assert_eq!(hit.id, "id-2");
    assert!(hit.distance.abs() < 1e-5, "distance {}", hit.distance);
    assert_eq!(hit.document.as_deref(), Some("replaced"));
    assert_eq!(hit.metadata, m);
    store.drop_collection(&c).expect("drop");
}

pub fn search_matches_brute_force_reference(store: &dyn VectorStore) {
    let c = name("reference");
    let recs = records(4, 300, 24);
    store.upsert(&c, &recs).expect("upsert");
    for q in random_vectors(5, 25, 24) {
        let got = store.search(&c, &q, 10).expect("search");
        let want = brute_force(&recs, &q, 10);
        assert_eq!(got.len(), 10);
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g.id, w.0, "order differs from the reference");
            assert!(
                (f64::from(g.distance) - w.1).abs() < 1e-5,
                "{} vs {}",
                g.distance,
                w.1
            );
        }
        assert!(got.windows(2).all(|w| w[0].distance <= w[1].distance));
    }
    store.drop_collection(&c).expect("drop");
}

pub fn search_returns_documents_and_metadata(store: &dyn VectorStore) {
    let c = name("payload");
    let recs = records(6, 20, 6);
    store.upsert(&c, &recs).expect("upsert");
    let hit = store
        .search(&c, &recs[7].vector, 1)
        .expect("search")
        .remove(0);
    assert_eq!(hit.id, "id-7");
    assert_eq!(hit.document.as_deref(), Some("doc 7"));
    assert_eq!(hit.metadata.get("i"), Some(&json!(7)));
    store.drop_collection(&c).expect("drop");
}

pub fn k_is_clamped(store: &dyn VectorStore) {
    let c = name("clamp");
    let recs = records(7, 6, 5);
    store.upsert(&c, &recs).expect("upsert");
    assert_eq!(
        store
            .search(&c, &recs[0].vector, 1000)
            .expect("search")
            .len(),
        6
    );
    assert_eq!(
        store.search(&c, &recs[0].vector, 0).expect("search").len(),
        0
    );
    store.drop_collection(&c).expect("drop");
}

pub fn empty_collection_gives_no_hits(store: &dyn VectorStore) {
    let c = name("empty");
    let recs = records(8, 3, 5);
    store.upsert(&c, &recs).expect("upsert");
    let ids: Vec<String> = recs.iter().map(|r| r.id.clone()).collect();
    assert_eq!(store.delete(&c, &ids).expect("delete"), 3);
    assert_eq!(store.count(&c).expect("count"), 0);
    assert!(store
        .search(&c, &recs[0].vector, 5)
        .expect("search")
        .is_empty());
    store.drop_collection(&c).expect("drop");
}

pub fn missing_collection_is_an_error(store: &dyn VectorStore) {
    let c = name("missing");
    let is_missing = |e: Error| matches!(e, Error::CollectionNotFound { ref name } if *name == c);
    assert!(is_missing(
        store.search(&c, &[1.0, 0.0], 3).expect_err("search")
    ));
    assert!(is_missing(
        store.delete(&c, &["x".into()]).expect_err("delete")
    ));
    assert!(is_missing(store.count(&c).expect_err("count")));
    assert!(is_missing(store.collection_info(&c).expect_err("info")));
    assert!(!store.has_collection(&c).expect("has_collection"));
    assert!(!store.drop_collection(&c).expect("drop"));
}

pub fn dimension_mismatch_is_rejected(store: &dyn VectorStore) {
    let c = name("dims");
    let recs = records(9, 4, 8);
    store.upsert(&c, &recs).expect("upsert");
    let before = state(store, &c, &recs[0].vector);
    let e = store
        .upsert(&c, &[Record::new("new", vec![1.0; 9])])
        .expect_err("9-d into 8-d");
    assert!(
        matches!(
            e,
            Error::DimensionMismatch {
                expected: 8,
                got: 9
            }
        ),
        "{e:?}"
    );
    let e = store.search(&c, &[1.0; 7], 3).expect_err("7-d query");
    assert!(
        matches!(
            e,
            Error::DimensionMismatch {
                expected: 8,
                got: 7
            }
        ),
        "{e:?}"
    );
    // Mixed dimensions inside one batch of a new collection.
    let c2 = name("dims_mixed");
    let e = store
        .upsert(
            &c2,
            &[
                Record::new("a", vec![1.0; 3]),
                Record::new("b", vec![1.0; 4]),
            ],
        )
        .expect_err("mixed");
    assert!(
        matches!(
            e,
            Error::DimensionMismatch {
                expected: 3,
                got: 4
            }
        ),
        "{e:?}"
    );
    assert_eq!(state(store, &c, &recs[0].vector), before);
    assert!(!store.has_collection(&c2).expect("has") || store.count(&c2).expect("count") == 0);
    store.drop_collection(&c).expect("drop");
    store.drop_collection(&c2).expect("drop");
}

pub fn invalid_records_change_nothing(store: &dyn VectorStore) {
    let c = name("invalid");
    let recs = records(10, 5, 4);
    store.upsert(&c, &recs).expect("upsert");
    let before = state(store, &c, &recs[0].vector);
    let good = || Record::new("fresh", vec![0.5, 0.5, 0.5, 0.5]);
    let bad_batches: Vec<(&str, Vec<Record>)> = vec![
        (
            "NaN",
            vec![good(), Record::new("nan", vec![f32::NAN, 1.0, 1.0, 1.0])],
        ),
        (
            "+inf",
            vec![
                good(),
                Record::new("inf", vec![f32::INFINITY, 1.0, 1.0, 1.0]),
            ],
        ),
        (
            "-inf",
            vec![
                good(),
                Record::new("ninf", vec![1.0, f32::NEG_INFINITY, 1.0, 1.0]),
            ],
        ),
        (
            "zero vector",
            vec![good(), Record::new("zero", vec![0.0; 4])],
        ),
        ("empty id", vec![good(), Record::new("", vec![1.0; 4])]),
        (
            "duplicate id",
            vec![good(), Record::new("fresh", vec![1.0; 4])],
        ),
        (
            "overwrite then NaN",
            vec![
                Record::new("id-1", vec![1.0; 4]),
                Record::new("x", vec![f32::NAN; 4]),
            ],
        ),
    ];
    for (what, batch) in bad_batches {
        match store.upsert(&c, &batch) {
            Err(Error::InvalidInput { message }) => assert!(!message.is_empty(), "{what}"),
            other => panic!("{what}: expected InvalidInput, got {other:?}"),
        }
        assert_eq!(
            state(store, &c, &recs[0].vector),
            before,
            "{what} changed the store"
        );
    }
    store.drop_collection(&c).expect("drop");
}

pub fn invalid_collection_names_are_rejected(store: &dyn VectorStore) {
    let long = "a".repeat(300);
    for bad in [
        "..",
        "a..b",
        "a/b",
        "ab",
        "",
        "_abc",
        "abc-",
        "a\0bc",
        "white space",
        long.as_str(),
    ] {
        let e = store
            .upsert(bad, &[Record::new("x", vec![1.0, 2.0])])
            .expect_err(bad);
        assert!(matches!(e, Error::InvalidInput { .. }), "{bad:?}: {e:?}");
        assert!(
            matches!(
                store.search(bad, &[1.0, 2.0], 1),
                Err(Error::InvalidInput { .. })
            ),
            "{bad:?}"
        );
    }
    let names = store.list_collections().expect("list");
    assert!(
        names
            .iter()
            .all(|n| crate::validate::collection_name(n).is_ok()),
        "{names:?}"
    );
}

pub fn invalid_queries_are_rejected(store: &dyn VectorStore) {
    let c = name("badquery");
    store.upsert(&c, &records(11, 4, 3)).expect("upsert");
    for (what, q) in [
        ("NaN", vec![f32::NAN, 0.0, 1.0]),
        ("inf", vec![f32::INFINITY, 0.0, 1.0]),
        ("zero", vec![0.0; 3]),
    ] {
        assert!(
            matches!(store.search(&c, &q, 2), Err(Error::InvalidInput { .. })),
            "{what}"
        );
    }
    store.drop_collection(&c).expect("drop");
}

pub fn delete_ignores_unknown_ids(store: &dyn VectorStore) {
    let c = name("delete");
    store.upsert(&c, &records(12, 6, 4)).expect("upsert");
    let n = store
        .delete(
            &c,
            &["id-1".into(), "nope".into(), "id-4".into(), "id-1".into()],
        )
        .expect("delete");
    assert_eq!(n, 2);
    assert_eq!(store.count(&c).expect("count"), 4);
    assert_eq!(store.delete(&c, &[]).expect("delete none"), 0);
    store.drop_collection(&c).expect("drop");
}

pub fn deleted_ids_are_never_returned(store: &dyn VectorStore) {
    let c = name("deleted");
    let recs = records(13, 50, 8);
    store.upsert(&c, &recs).expect("upsert");
    let gone: Vec<String> = (0..50).step_by(3).map(|i| format!("id-{i}")).collect();
    store.delete(&c, &gone).expect("delete");
    for r in &recs {
        let hits = store.search(&c, &r.vector, 50).expect("search");
        assert_eq!(hits.len(), 50 - gone.len());
        assert!(hits.iter().all(|h| !gone.contains(&h.id)));
        if !gone.contains(&r.id) {
            assert_eq!(hits[0].id, r.id, "a surviving vector finds itself first");
        }
    }
    store.drop_collection(&c).expect("drop");
}

pub fn list_and_drop_collections(store: &dyn VectorStore) {
    let (a, b) = (name("list_a"), name("list_b"));
    store.upsert(&a, &records(14, 2, 3)).expect("upsert");
    store.upsert(&b, &records(15, 2, 5)).expect("upsert");
    let names = store.list_collections().expect("list");
    assert!(names.contains(&a) && names.contains(&b), "{names:?}");
    assert!(store.drop_collection(&a).expect("drop"));
    assert!(!store.list_collections().expect("list").contains(&a));
    assert!(matches!(
        store.count(&a),
        Err(Error::CollectionNotFound { .. })
    ));
    assert_eq!(
        store.count(&b).expect("count"),
        2,
        "dropping one collection left the other"
    );
    store.drop_collection(&b).expect("drop");
}

pub fn collection_metadata_round_trips(store: &dyn VectorStore) {
    let c = name("meta");
    store.upsert(&c, &records(16, 3, 3)).expect("upsert");
    let mut m = Metadata::new();
    m.insert(
        "artifact".into(),
        json!({"embedding_model": "m", "dimensions": 3, "quote": "it's \"x\""}),
    );
    store.set_collection_metadata(&c, m.clone()).expect("set");
    let info = store.collection_info(&c).expect("info");
    assert_eq!(info.metadata.get("artifact"), m.get("artifact"));
    assert_eq!(info.count, 3);
    store.drop_collection(&c).expect("drop");
}

pub fn search_batch_equals_single_searches(store: &dyn VectorStore) {
    let c = name("batch");
    let recs = records(17, 200, 16);
    store.upsert(&c, &recs).expect("upsert");
    // More queries than a batch a store may split over threads.
    let owned = random_vectors(18, 40, 16);
    let queries = crate::store::as_slices(&owned);
    let batch = store.search_batch(&c, &queries, 7).expect("batch");
    assert_eq!(batch.len(), queries.len());
    for (q, b) in queries.iter().zip(&batch) {
        let single = store.search(&c, q, 7).expect("search");
        let ids = |h: &[crate::Hit]| h.iter().map(|x| x.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(b), ids(&single));
        for (x, y) in b.iter().zip(&single) {
            assert!((x.distance - y.distance).abs() < 1e-5);
        }
    }
    assert!(store
        .search_batch(&c, &[], 7)
        .expect("empty batch")
        .is_empty());
    let short = [0.5; 15];
    let mut bad = queries.clone();
    bad[5] = &short;
    let refused = store.search_batch(&c, &bad, 7);
    assert!(
        matches!(
            refused,
            Err(Error::DimensionMismatch {
                expected: 16,
                got: 15
            })
        ),
        "a batch with one query of the wrong dimension is refused as a whole: {refused:?}"
    );
    assert!(matches!(
        store.search_batch(&name("batch_missing"), &queries, 7),
        Err(Error::CollectionNotFound { .. })
    ));
    store.drop_collection(&c).expect("drop");
}

/// Every live record comes back exactly once over consecutive pages, with
/// its vector (up to normalisation), document and metadata, and an empty page
/// after the last; a missing collection is `CollectionNotFound`.
pub fn read_page_lists_every_record_once(store: &dyn VectorStore) {
    let c = name("page");
    let mut recs = records(19, 23, 8);
    store.upsert(&c, &recs).expect("upsert");
    let first = store.read_page(&c, 0, 5);
    assert_eq!(first.expect("read_page").len(), 5);
    // An overwrite and two deletes before reading the whole collection.
    let overwritten = records(20, 1, 8).remove(0);
    recs[3].vector = overwritten.vector;
    recs[3].document = Some("overwritten".into());
    store.upsert(&c, &recs[3..4]).expect("overwrite");
    store
        .delete(&c, &["id-0".to_string(), "id-7".to_string()])
        .expect("delete");
    recs.retain(|r| r.id != "id-0" && r.id != "id-7");
    let mut seen = Vec::new();
    let mut offset = 0;
    loop {
        let page = store.read_page(&c, offset, 6).expect("read_page");
        assert!(page.len() <= 6);
        if page.is_empty() {
            break;
        }
        offset += page.len();
        seen.extend(page);
        assert!(offset <= recs.len(), "more records than stored: {offset}");
    }
    assert_eq!(seen.len(), recs.len());
    for want in &recs {
        let got = seen
            .iter()
            .find(|r| r.id == want.id)
            .unwrap_or_else(|| panic!("{} missing from the pages", want.id));
        assert!(
            cosine_distance(&got.vector, &want.vector) < 1e-5,
            "{}",
            want.id
        );
        assert_eq!(got.document, want.document, "{}", want.id);
        assert_eq!(got.metadata, want.metadata, "{}", want.id);
    }
    let mut ids: Vec<&str> = seen.iter().map(|r| r.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), recs.len(), "a record was listed twice");
    assert!(store
        .read_page(&c, 1_000, 10)
        .expect("past the end")
        .is_empty());
    store.drop_collection(&c).expect("drop");
    assert!(matches!(
        store.read_page(&c, 0, 10),
        Err(Error::CollectionNotFound { .. })
    ));
}

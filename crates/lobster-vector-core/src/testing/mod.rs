//! Test support (feature `testing`): the store conformance suite and small
//! deterministic doubles for unit tests of code that takes an embedder.

pub mod bench;
pub mod chroma_server;
pub mod conformance;
pub mod data;
mod hashing_embedder;

pub use hashing_embedder::HashingEmbedder;

/// Anything a conformance test can run against: a store, or a box or `Arc` of one.
pub trait AsStore {
    fn as_store(&self) -> &dyn crate::VectorStore;
}

impl<T: crate::VectorStore> AsStore for T {
    fn as_store(&self) -> &dyn crate::VectorStore {
        self
    }
}

impl AsStore for Box<dyn crate::VectorStore> {
    fn as_store(&self) -> &dyn crate::VectorStore {
        self.as_ref()
    }
}

impl AsStore for std::sync::Arc<dyn crate::VectorStore> {
    fn as_store(&self) -> &dyn crate::VectorStore {
        self.as_ref()
    }
}

/// Recall@k of `store` against the exact answers of `reference` on the same
/// collection: the share of the reference's top-`k` ids that `store` also
/// returns, over all `queries`. Panics when a search fails or `store`'s hits
/// are not in ascending distance order.
pub fn recall_at_k(
    store: &dyn crate::VectorStore,
    reference: &dyn crate::VectorStore,
    collection: &str,
    queries: &[Vec<f32>],
    k: usize,
) -> f64 {
    let (mut hit, mut total) = (0usize, 0usize);
    for q in queries {
        let want = reference
            .search(collection, q, k)
            .expect("reference search");
        let got = store.search(collection, q, k).expect("search");
        assert!(
            got.windows(2).all(|w| w[0].distance <= w[1].distance),
            "hits out of order"
        );
        hit += got
            .iter()
            .filter(|h| want.iter().any(|w| w.id == h.id))
            .count();
        total += want.len();
    }
    hit as f64 / total.max(1) as f64
}

/// Whether tests that need an external service must fail instead of skipping
/// (`LOBSTER_TEST_REQUIRE_SERVICES=1`, set by CI after starting the services).
pub fn services_required() -> bool {
    std::env::var("LOBSTER_TEST_REQUIRE_SERVICES").is_ok_and(|v| v == "1" || v == "true")
}

/// Skips (returns `None`) or panics when a service-backed test cannot run.
pub fn service_unavailable<T>(what: &str) -> Option<T> {
    if services_required() {
        panic!("{what} is unavailable but LOBSTER_TEST_REQUIRE_SERVICES=1");
    }
    eprintln!(
        "skipping: {what} is unavailable (set LOBSTER_TEST_REQUIRE_SERVICES=1 to fail instead)"
    );
    None
}

/// Generates one `#[test]` per conformance rule for a store.
///
/// `conformance_suite!(expr)` where `expr` builds a fresh store
/// (anything that dereferences to a `VectorStore`), or
/// `conformance_suite!(optional: expr)` where `expr` is an `Option` and `None`
/// skips the test (use [`service_unavailable`] to fail in CI instead).
#[macro_export]
macro_rules! conformance_suite {
    (optional: $make:expr) => {
        $crate::conformance_suite!(@rules $make;
            upsert_creates_collection_and_counts, upsert_overwrites_existing_id,
            search_matches_brute_force_reference, search_returns_documents_and_metadata,
            k_is_clamped, empty_collection_gives_no_hits, missing_collection_is_an_error,
            dimension_mismatch_is_rejected, invalid_records_change_nothing,
            invalid_collection_names_are_rejected, invalid_queries_are_rejected,
            delete_ignores_unknown_ids, deleted_ids_are_never_returned,
            list_and_drop_collections, collection_metadata_round_trips,
            search_batch_equals_single_searches, read_page_lists_every_record_once);
    };
    ($make:expr) => {
        $crate::conformance_suite!(optional: Some($make));
    };
    (@rules $make:expr; $($rule:ident),* $(,)?) => {
        $(
            #[test]
            fn $rule() {
                if let Some(store) = $make {
                    $crate::testing::conformance::$rule($crate::testing::AsStore::as_store(&store));
                }
            }
        )*
    };
}

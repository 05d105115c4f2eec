//! The one trait every vector backend implements.

use crate::{CollectionInfo, Error, Hit, Metadata, Record, Result};

/// A store of named collections of vectors, searched by cosine distance.
///
/// Contract (checked by the conformance suite, `testing::conformance_suite!`):
/// - `upsert` creates the collection on first write and overwrites existing ids;
///   all vectors of a collection share one dimension.
/// - `search` returns at most `k` hits sorted by ascending cosine distance
///   `1 - cos(q, v)`; `k` beyond the collection size is clamped; an empty
///   collection gives no hits.
/// - Missing collections give `CollectionNotFound` (search, delete, count, info);
///   wrong dimensions `DimensionMismatch`; NaN/inf, zero vectors, empty or
///   duplicate ids and bad collection names `InvalidInput`.
/// - A rejected call changes nothing.
pub trait VectorStore: Send + Sync + std::fmt::Debug {
    /// The backend's configuration name (`memory`, `local`, `pgvector`, …).
    fn backend_name(&self) -> &'static str;

    /// Inserts or overwrites `records` as one all-or-nothing batch.
    fn upsert(&self, collection: &str, records: &[Record]) -> Result<()>;

    /// The `k` nearest records to `query`, nearest first.
    fn search(&self, collection: &str, query: &[f32], k: usize) -> Result<Vec<Hit>>;

    /// One result list per query, in query order. The default loops over `search`.
    fn search_batch(
        &self,
        collection: &str,
        queries: &[Vec<f32>],
        k: usize,
    ) -> Result<Vec<Vec<Hit>>> {
        queries
            .iter()
            .map(|q| self.search(collection, q, k))
            .collect()
    }

    /// Removes the given ids; unknown ids are ignored. Returns how many were removed.
    fn delete(&self, collection: &str, ids: &[String]) -> Result<usize>;

    /// Number of records in the collection.
    fn count(&self, collection: &str) -> Result<usize>;

    /// Whether the collection exists.
    fn has_collection(&self, collection: &str) -> Result<bool>;

    /// Names of all collections, sorted.
    fn list_collections(&self) -> Result<Vec<String>>;

    /// Removes a collection and its metadata; returns whether it existed.
    fn drop_collection(&self, collection: &str) -> Result<bool>;

    /// Dimension, count and collection-level metadata.
    fn collection_info(&self, collection: &str) -> Result<CollectionInfo>;

    /// Replaces the collection-level metadata (creating an empty collection if needed).
    fn set_collection_metadata(&self, collection: &str, metadata: Metadata) -> Result<()>;

    /// Up to `limit` records of the collection from position `offset`, with
    /// their vectors, documents and metadata, in an order that stays the same
    /// while the collection is not written to; an empty page ends it. For
    /// copying a collection page by page (`lobster-vector import`). Backends
    /// that cannot list their records answer `NotAvailable` (the default).
    fn read_page(&self, collection: &str, offset: usize, limit: usize) -> Result<Vec<Record>> {
        let _ = (offset, limit);
        Err(Error::NotAvailable {
            what: format!(
                "reading the records of `{collection}` from the `{}` backend",
                self.backend_name()
            ),
            hint: "import from a backend that can list its records (chromadb)".into(),
        })
    }

    /// Makes every acknowledged write durable. In-memory stores do nothing.
    fn flush(&self) -> Result<()> {
        Ok(())
    }

    /// Reserves the store for writing by this handle now, before a long job
    /// (embedding a whole ontology) produces its first write, so a second
    /// writer is refused before any work is done. Idempotent; the reservation
    /// lasts as long as the handle. Backends that allow concurrent writers (or
    /// keep no cross-process state) do nothing.
    ///
    /// Errors: `StoreLocked` when another process is writing; `ReadOnly` when
    /// the store was opened read-only.
    fn lock_for_writing(&self) -> Result<()> {
        Ok(())
    }
}

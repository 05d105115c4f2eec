//! The one trait every vector backend implements.

use crate::{CollectionInfo, Error, Hit, Metadata, Record, Result};

/// A store of named collections of vectors, searched by cosine distance.
///
/// The methods fall in two groups: reads (searches, counts, listings; safe on
/// a store opened read-only) and writes (everything that changes a
/// collection). Searching is batch-first: [`search_batch`](Self::search_batch)
/// is the one search a backend must implement, and [`search`](Self::search)
/// is a batch of one unless a backend has a faster single path.
///
/// Contract (checked by the conformance suite, `testing::conformance_suite!`):
/// - `upsert` creates the collection on first write and overwrites existing ids;
///   all vectors of a collection share one dimension.
/// - a search returns at most `k` hits per query sorted by ascending cosine
///   distance `1 - cos(q, v)`; `k` beyond the collection size is clamped; an
///   empty collection gives no hits; a batch answers in query order, each
///   list equal to the single search of its query.
/// - Missing collections give `CollectionNotFound` (searches, delete, count,
///   info, read_page); wrong dimensions `DimensionMismatch`; NaN/inf, zero
///   vectors, empty or duplicate ids and bad collection names `InvalidInput`.
/// - A rejected call changes nothing.
pub trait VectorStore: Send + Sync + std::fmt::Debug {
    /// The backend's configuration name (`memory`, `local`, `pgvector`, …).
    fn backend_name(&self) -> &'static str;

    // ---- Reads ----

    /// The `k` nearest records to each query, nearest first: one list per
    /// query, in query order. A batch is validated whole before any search,
    /// so one bad query fails the batch.
    fn search_batch(&self, collection: &str, queries: &[&[f32]], k: usize)
        -> Result<Vec<Vec<Hit>>>;

    /// The `k` nearest records to `query`, nearest first (a batch of one).
    fn search(&self, collection: &str, query: &[f32], k: usize) -> Result<Vec<Hit>> {
        Ok(self
            .search_batch(collection, &[query], k)?
            .pop()
            .unwrap_or_default())
    }

    /// Dimension, count and collection-level metadata.
    fn collection_info(&self, collection: &str) -> Result<CollectionInfo>;

    /// Number of records in the collection (its `collection_info` count).
    fn count(&self, collection: &str) -> Result<usize> {
        Ok(self.collection_info(collection)?.count)
    }

    /// Whether the collection exists (whether `collection_info` finds it).
    fn has_collection(&self, collection: &str) -> Result<bool> {
        match self.collection_info(collection) {
            Ok(_) => Ok(true),
            Err(Error::CollectionNotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Names of all collections, sorted.
    fn list_collections(&self) -> Result<Vec<String>>;

    /// Up to `limit` records of the collection from position `offset`, with
    /// their vectors, documents and metadata, in an order that stays the same
    /// while the collection is not written to; an empty page ends it. For
    /// copying a collection page by page (`lobster-vector import`).
    fn read_page(&self, collection: &str, offset: usize, limit: usize) -> Result<Vec<Record>>;

    // ---- Writes ----

    /// Inserts or overwrites `records` as one all-or-nothing batch.
    fn upsert(&self, collection: &str, records: &[Record]) -> Result<()>;

    /// Removes the given ids; unknown ids are ignored. Returns how many were removed.
    fn delete(&self, collection: &str, ids: &[String]) -> Result<usize>;

    /// Removes a collection and its metadata; returns whether it existed.
    fn drop_collection(&self, collection: &str) -> Result<bool>;

    /// Replaces the collection-level metadata (creating an empty collection if needed).
    fn set_collection_metadata(&self, collection: &str, metadata: Metadata) -> Result<()>;

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

/// Borrows owned vectors (an embedder's output) as the slices
/// [`VectorStore::search_batch`] takes.
pub fn as_slices(vectors: &[Vec<f32>]) -> Vec<&[f32]> {
    vectors.iter().map(Vec::as_slice).collect()
}

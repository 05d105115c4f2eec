//! The FAISS vector store of lobster-vector (backend `faiss`).
//!
//! Semantics are those of the predecessor's FAISS backend:
//!
//! * One `IndexIDMap2` per collection over an index made by FAISS's
//!   `index_factory` ([`FaissOptions::index`], default `Flat`: exact search),
//!   inner-product metric over L2-normalised vectors. The distance returned
//!   is `1 - inner product`, the cosine distance the `VectorStore` contract
//!   asks for (equal to `squared_l2 / 2` on unit vectors).
//! * String ids map to int64 labels, which are never reused. An upsert of an
//!   existing id removes its old vector, then adds the new one; delete ignores
//!   unknown ids. Indexes that cannot remove vectors (HNSW) are rebuilt from
//!   their own vectors instead; indexes that need training (IVF, PQ) are
//!   trained on a collection's first batch.
//! * `k` is clamped to the collection's size; an empty collection has no hits.
//!
//! Persistence: without a path everything stays in memory. With one,
//! [`flush`](lobster_vector_core::VectorStore::flush) (and dropping the store)
//! saves the changed collections — `write_index` plus the id map, documents
//! and metadata beside it, each written to a temp file, fsynced and renamed,
//! then a manifest naming them replaced the same way — and
//! [`FaissStore::open`] loads them back. A crash keeps the last completed
//! save. One process writes at a time: the first change takes an exclusive
//! lock on `<dir>/lock` (another process holding it → `StoreLocked`); readers
//! see the store as of their open.
//!
//! FAISS is compiled from the sources `faiss-sys` vendors, statically: this
//! crate needs `cmake` and a BLAS (`libopenblas-dev`) to build.

mod collection;
mod options;
mod persist;
mod store;

pub use options::{FaissOptions, DEFAULT_INDEX};
pub use store::FaissStore;

/// The backend name in configuration and errors.
pub const BACKEND: &str = "faiss";

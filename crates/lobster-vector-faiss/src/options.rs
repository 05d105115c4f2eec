//! Options of [`FaissStore::open`](crate::FaissStore::open).

use std::path::PathBuf;

/// The index under the id map when none is configured: exact search.
pub const DEFAULT_INDEX: &str = "Flat";

/// How to open a [`FaissStore`](crate::FaissStore).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaissOptions {
    /// Directory the store is saved to by `flush` (and on drop) and loaded from
    /// on open. `None` keeps everything in memory, as the predecessor did.
    pub path: Option<PathBuf>,
    /// FAISS `index_factory` description of the index under the id map, used
    /// for collections created from now on: `Flat` (exact, the default),
    /// `HNSW32`, `IVF1024,Flat`, … Indexes that need training are trained on
    /// the first batch of a collection, which must then hold enough vectors.
    /// Indexes that cannot remove vectors (HNSW) are rebuilt from their own
    /// vectors when an id is overwritten or deleted.
    pub index: String,
    /// FAISS search parameters set on every index created or loaded, as
    /// `name=value` pairs separated by commas: `efSearch=128` for HNSW,
    /// `nprobe=16` for IVF. Empty (the default) keeps FAISS's defaults.
    pub parameters: String,
}

impl Default for FaissOptions {
    fn default() -> Self {
        Self {
            path: None,
            index: DEFAULT_INDEX.to_string(),
            parameters: String::new(),
        }
    }
}

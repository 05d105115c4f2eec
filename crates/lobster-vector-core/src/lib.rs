//! Core of lobster-vector: the contracts every part keeps (errors, distance,
//! [`VectorStore`], [`Embedder`], [`Reranker`], the collection [`Artifact`]),
//! the exact in-memory [`FlatStore`] and the conformance suite every store
//! runs (feature `testing`). Light dependencies only: the matching pipeline
//! lives in `lobster-vector-match`.

pub mod artifact;
pub mod cpu;
pub mod embedder;
mod error;
pub mod flat;
pub mod lock;
pub mod metric;
pub mod reranker;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;
mod types;
pub mod validate;

pub use artifact::{Artifact, CollectionSummary};
pub use embedder::Embedder;
pub use error::{BoxError, Error, ErrorKind, Result};
pub use flat::FlatStore;
pub use metric::Metric;
pub use reranker::{Ranking, Reranker};
pub use store::VectorStore;
pub use types::{CollectionInfo, Hit, Metadata, Record};

/// This library's version, recorded in collection artifacts.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

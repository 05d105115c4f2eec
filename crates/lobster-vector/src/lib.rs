//! lobster-vector: map biomedical free text ("heart attack", "CD8+ T cells",
//! "colon mucosa") to MONDO, UBERON and Cell Ontology concepts by semantic
//! vector search over pluggable stores, embedders and rerankers.
//!
//! This facade re-exports the core contracts (`lobster-vector-core`) and the
//! matching pipeline (`lobster-vector-match`) and adds configuration
//! resolution ([`Config`]) and factories ([`open_store`], [`open_embedder`],
//! [`open_reranker`]).

#[cfg(feature = "candle")]
pub mod adapt;
#[cfg(feature = "chroma")]
pub mod chroma;
#[cfg(feature = "cohere")]
pub mod cohere;
pub mod config;
mod factory;
#[cfg(any(feature = "openai", feature = "cohere", feature = "chroma"))]
pub mod http;
#[cfg(feature = "openai")]
pub mod openai;
mod secret;

pub use config::{Backend, Config, EmbeddingProvider, Overrides, RerankerKind};
pub use factory::{
    backend_availability, model_sources, open_embedder, open_existing_store, open_reranker,
    open_store, provider_availability, reranker_availability, Availability,
};
pub use lobster_vector_core::*;
pub use lobster_vector_match::*;
pub use secret::{redact_url, Secret};

/// The embedded persistent store (backend `local`) with its maintenance API
/// (`check`, `compact`, `backup`), beyond the `VectorStore` trait.
#[cfg(feature = "local")]
pub use lobster_vector_local as local;

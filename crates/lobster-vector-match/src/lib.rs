//! The matching pipeline of lobster-vector, from an ontology source to ranked,
//! calibrated concepts:
//!
//! - [`ontology`]: the term model, loaders (cellxgene JSON, OBO), label
//!   normalisation with the exact-match index, obsolete redirects, the graph;
//! - [`build`]: embedding an ontology into a collection and fitting its
//!   [`matcher`] from the same source, sealed by the artifact;
//! - [`matcher`]: the candidate channels (exact, lexical, abbreviation,
//!   dense), their features, the ranker learned by the build and the
//!   calibrated confidence;
//! - [`service`]: [`SearchService`], the one entry point for queries;
//! - [`curation`]: review statuses, SSSOM/TSV, curated mappings (the first
//!   tier of every match) and re-mapping across ontology releases.

pub mod build;
mod compiled;
pub mod curation;
pub mod matcher;
pub mod ontology;
pub mod service;

pub use service::{MatchType, OntologyMatch, ResolvedCollection, SearchHit, SearchService};

// The contracts this crate builds on, under the paths its modules use.
pub(crate) use lobster_vector_core::{
    artifact, embedder, validate, Artifact, Embedder, Error, Hit, Metadata, Metric, Record,
    Reranker, Result, VectorStore, VERSION,
};
#[cfg(test)]
pub(crate) use lobster_vector_core::{testing, FlatStore};

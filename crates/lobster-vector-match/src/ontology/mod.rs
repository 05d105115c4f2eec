//! Ontologies: the term model, loaders for cellxgene JSON (plain or zstd) and
//! OBO 1.4, label normalisation with an exact-match index, obsolete-term
//! redirects, and the term [`graph`].
//!
//! ```no_run
//! use lobster_vector_match::ontology::{graph::Graph, ExactIndex, Ontology};
//!
//! # fn main() -> lobster_vector_core::Result<()> {
//! let cl = Ontology::load("CL-ontology-v2026-03-26.json.zst")?;
//! assert_eq!(cl.version(), "v2026-03-26");
//! // Views borrowing the ontology; their tables are built on first use and
//! // kept inside `cl`.
//! let exact = ExactIndex::new(&cl);
//! let hits = exact.lookup("CD8-positive, alpha-beta T cells");
//! assert_eq!(hits[0].id, "CL:0000625");
//! let graph = Graph::new(&cl);
//! let within_t_cells = graph.subtree("CL:0000084")?;
//! assert!(within_t_cells.contains("CL:0000625"));
//! # Ok(())
//! # }
//! ```

mod cellxgene;
pub mod graph;
mod kind;
mod library;
mod model;
mod normalize;
mod obo;
mod report;
mod source;

pub use kind::{compare_versions, incarnation_name, split_incarnation, OntologyKind};
pub use library::OntologyLibrary;
pub use model::{
    canonical_term_id, Ontology, Redirect, Synonym, SynonymScope, Term, MAX_SYNONYMS_PER_TERM,
};
pub use normalize::{normalize_label, EntryKind, ExactIndex, ExactMatch};
pub use report::{Neighborhood, TermRef, TermReport};

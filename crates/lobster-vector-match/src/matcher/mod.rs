//! The matcher: candidate channels over one ontology (exact lookup lives in
//! [`crate::ontology::ExactIndex`]; [`lexical`] words and trigrams, the
//! abbreviation table, the dense neighbours of the store), the
//! [features](candidates::FEATURES) of each candidate concept, and the
//! [ranker and calibration](model) that [`fit`] learns at build time from the
//! ontology's own synonyms.

pub mod candidates;
pub(crate) mod compiled;
pub mod fit;
pub mod lexical;
pub mod model;
pub mod structure;
pub mod text;

/// The confidence at or above which a ranked row is accepted without review
/// (`map --min-score`, the `accepted` status). Measured on a held-out split of
/// 1,000 curator synonyms removed from the sources before the build: see the
/// README's "Matching" section for the precision and share it gives.
pub const ACCEPT_THRESHOLD: f32 = 0.8;

pub use candidates::{Candidate, CandidateGenerator, Channels, DenseHit, FEATURES};
pub use fit::{fit_matcher, held_out_synonym_texts, FitOptions, DENSE_POOL};
pub use model::{Calibration, FitReport, MatcherModel, MODEL_KEY};

use crate::{Embedder, Hit, Result, VectorStore};
use lobster_vector_core::store::as_slices;

/// Adds to each query's dense `hits` those of its [label-style
/// variant](text::label_style) (`CD8+` searched as `CD8-positive` too):
/// variants are embedded in one batch and searched in one batch, and each
/// record keeps its smaller distance; at most `k` hits stay, nearest first.
///
/// # Errors
/// Embedding or store failures.
pub fn add_variant_hits(
    embedder: &dyn Embedder,
    store: &dyn VectorStore,
    collection: &str,
    texts: &[&str],
    hits: &mut [Vec<Hit>],
    k: usize,
) -> Result<()> {
    let variants: Vec<(usize, String)> = texts
        .iter()
        .enumerate()
        .filter_map(|(i, t)| text::label_style(t).map(|v| (i, v)))
        .collect();
    if variants.is_empty() {
        return Ok(());
    }
    let refs: Vec<&str> = variants.iter().map(|(_, v)| v.as_str()).collect();
    let vectors = embedder.embed_documents(&refs)?;
    let extra = store.search_batch(collection, &as_slices(&vectors), k)?;
    for ((i, _), more) in variants.iter().zip(extra) {
        let list = &mut hits[*i];
        list.extend(more);
        list.sort_by(|a, b| a.distance.total_cmp(&b.distance).then(a.id.cmp(&b.id)));
        let mut seen = std::collections::HashSet::new();
        list.retain(|h| seen.insert(h.id.clone()));
        list.truncate(k);
    }
    Ok(())
}

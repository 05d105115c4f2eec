//! Re-scoring candidate documents against a query.

use crate::Result;

/// The result of a rerank: `(index into the input documents, score)`, best first.
pub type Ranking = Vec<(usize, f32)>;

/// A model that scores (query, document) pairs.
///
/// Contract: returns at most `top_n` entries sorted by descending score;
/// empty input gives empty output; scores are probabilities in 0..=1 where the
/// model has them (sigmoid of a single logit), so they can be shown as-is.
pub trait Reranker: Send + Sync + std::fmt::Debug {
    /// Scores `documents` against `query`.
    fn rerank(&self, query: &str, documents: &[&str], top_n: usize) -> Result<Ranking>;

    /// The configuration name (`cross_encoder`, `cohere`).
    fn name(&self) -> &str;

    /// `false` when the reranker degraded to the input order (for example a missing API key).
    fn is_active(&self) -> bool {
        true
    }
}

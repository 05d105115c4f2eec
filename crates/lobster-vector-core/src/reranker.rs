//! Re-scoring candidate documents against a query.

use crate::Result;

/// The result of a rerank: `(index into the input documents, score)`, best first.
pub type Ranking = Vec<(usize, f32)>;

/// A model that scores (query, document) pairs.
///
/// Implementors provide [`Reranker::score`]; [`Reranker::rerank`] orders and
/// cuts in one place for every model.
pub trait Reranker: Send + Sync + std::fmt::Debug {
    /// One score per document, in input order. Scores are probabilities in
    /// 0..=1 where the model has them (sigmoid of a single logit), so they can
    /// be shown as they are. Called with at least two documents.
    fn score(&self, query: &str, documents: &[&str]) -> Result<Vec<f32>>;

    /// The configuration name (`cross_encoder`, `cohere`).
    fn name(&self) -> &str;

    /// `false` when the reranker cannot score (for example a missing API key):
    /// callers keep their own order and say it was not reranked.
    fn is_active(&self) -> bool {
        true
    }

    /// At most `top_n` documents, best first (ties keep input order).
    ///
    /// Empty input gives empty output. A single document needs no model call:
    /// it is ranked first with score 1.0, which means "rank 1 of 1", not a
    /// relevance judgement.
    fn rerank(&self, query: &str, documents: &[&str], top_n: usize) -> Result<Ranking> {
        match documents.len() {
            0 => return Ok(Vec::new()),
            1 => return Ok(vec![(0, 1.0)].into_iter().take(top_n).collect()),
            _ => {}
        }
        let scores = self.score(query, documents)?;
        if scores.len() != documents.len() {
            return Err(crate::Error::Model {
                message: format!(
                    "reranker `{}` returned {} scores for {} documents",
                    self.name(),
                    scores.len(),
                    documents.len()
                ),
            });
        }
        Ok(rank(scores, top_n))
    }
}

/// Indices sorted by descending score (NaN last, ties in input order), cut to `top_n`.
pub fn rank(scores: Vec<f32>, top_n: usize) -> Ranking {
    let mut ranking: Ranking = scores.into_iter().enumerate().collect();
    ranking.sort_by(|a, b| match (a.1.is_nan(), b.1.is_nan()) {
        (false, false) => b.1.total_cmp(&a.1),
        (x, y) => x.cmp(&y),
    });
    ranking.truncate(top_n);
    ranking
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Calls(std::sync::atomic::AtomicUsize);

    impl Reranker for Calls {
        fn score(&self, _query: &str, documents: &[&str]) -> Result<Vec<f32>> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(documents.iter().map(|d| d.len() as f32 / 10.0).collect())
        }
        fn name(&self) -> &str {
            "calls"
        }
    }

    fn calls() -> Calls {
        Calls(std::sync::atomic::AtomicUsize::new(0))
    }

    #[test]
    fn sorts_best_first_and_cuts_to_top_n() {
        let r = calls();
        let got = r.rerank("q", &["ab", "abcd", "a", "abc"], 3).unwrap();
        assert_eq!(got, vec![(1, 0.4), (3, 0.3), (0, 0.2)]);
        assert_eq!(r.rerank("q", &["ab", "abcd"], 0).unwrap(), vec![]);
    }

    #[test]
    fn empty_and_single_inputs_need_no_model_call() {
        let r = calls();
        assert!(r.rerank("q", &[], 5).unwrap().is_empty());
        assert_eq!(r.rerank("q", &["only"], 5).unwrap(), vec![(0, 1.0)]);
        assert_eq!(r.0.load(std::sync::atomic::Ordering::SeqCst), 0);
    }

    #[test]
    fn ties_keep_input_order_and_nan_goes_last() {
        let order: Vec<usize> = rank(vec![0.5, f32::NAN, 0.5, 0.9], 4)
            .into_iter()
            .map(|(i, _)| i)
            .collect();
        assert_eq!(order, vec![3, 0, 2, 1]);
    }
}

//! Cohere's rerank API (`POST {base}/v2/rerank`), reranker `cohere`.
//!
//! Contract: scores are Cohere's `relevance_score` (0..=1), never rescaled.
//! Without a key the reranker is inactive: it warns once, the service keeps
//! the vector order and marks rows `reranked: false`, and a direct
//! [`Reranker::score`] call is a `NotAvailable` error rather than invented scores.

use lobster_vector_core::{Error, Reranker, Result};
use serde_json::{json, Value};

use crate::http::{join_url, ApiClient, HttpOptions};
use crate::Secret;

pub use crate::config::{
    COHERE_DEFAULT_BASE_URL as DEFAULT_BASE_URL, COHERE_DEFAULT_MODEL as DEFAULT_MODEL,
};
/// Documents per request (Cohere's documented limit is 1,000).
const MAX_DOCUMENTS: usize = 1000;

/// Where and how to call the rerank API.
#[derive(Debug, Clone)]
pub struct CohereOptions {
    pub base_url: String,
    pub model: String,
    /// `None` makes the reranker inactive.
    pub api_key: Option<Secret>,
    pub http: HttpOptions,
}

impl Default for CohereOptions {
    fn default() -> Self {
        Self {
            base_url: DEFAULT_BASE_URL.into(),
            model: DEFAULT_MODEL.into(),
            api_key: None,
            http: HttpOptions::default(),
        }
    }
}

/// A Cohere rerank client.
#[derive(Debug)]
pub struct CohereReranker {
    client: ApiClient,
    url: String,
    options: CohereOptions,
}

impl CohereReranker {
    pub fn new(options: CohereOptions) -> Result<Self> {
        if !(options.base_url.starts_with("http://") || options.base_url.starts_with("https://")) {
            return Err(Error::InvalidConfig {
                key: "CO_API_URL".into(),
                value: crate::secret::redact_url(&options.base_url),
                valid: "an http:// or https:// URL".into(),
            });
        }
        if options.api_key.is_none() {
            tracing::warn!(
                "COHERE_API_KEY (or CO_API_KEY) is not set: results keep the vector order and are marked `reranked: false`"
            );
        }
        Ok(Self {
            client: ApiClient::new(
                "cohere",
                "COHERE_API_KEY (or CO_API_KEY)",
                options.http.clone(),
            ),
            url: join_url(&options.base_url, "v2/rerank"),
            options,
        })
    }

    fn score_chunk(&self, key: &Secret, query: &str, documents: &[&str]) -> Result<Vec<f32>> {
        let body = json!({
            "model": self.options.model,
            "query": query,
            "documents": documents,
            "top_n": documents.len(),
        });
        let response = self.client.post_json(&self.url, Some(key), &body)?;
        let bad = |message: String| self.client.malformed(&self.url, message);
        let results = response
            .get("results")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("no `results` array".into()))?;
        let mut scores = vec![f32::NAN; documents.len()];
        for (position, r) in results.iter().enumerate() {
            let index = r
                .get("index")
                .and_then(Value::as_u64)
                .map(|i| i as usize)
                .filter(|i| *i < documents.len())
                .ok_or_else(|| bad(format!("result {position} has no valid `index`")))?;
            let score = r
                .get("relevance_score")
                .and_then(Value::as_f64)
                .filter(|s| s.is_finite())
                .ok_or_else(|| bad(format!("result {position} has no `relevance_score`")))?;
            if !scores[index].is_nan() {
                return Err(bad(format!("index {index} appears twice")));
            }
            scores[index] = score as f32;
        }
        if scores.iter().any(|s| s.is_nan()) {
            return Err(bad(format!(
                "{} results for {} documents",
                results.len(),
                documents.len()
            )));
        }
        Ok(scores)
    }
}

impl Reranker for CohereReranker {
    fn score(&self, query: &str, documents: &[&str]) -> Result<Vec<f32>> {
        let key = self
            .options
            .api_key
            .as_ref()
            .ok_or_else(|| Error::NotAvailable {
                what: "reranker `cohere`".into(),
                hint: "set COHERE_API_KEY or CO_API_KEY".into(),
            })?;
        let mut scores = Vec::with_capacity(documents.len());
        for chunk in documents.chunks(MAX_DOCUMENTS) {
            scores.extend(self.score_chunk(key, query, chunk)?);
        }
        Ok(scores)
    }

    fn name(&self) -> &str {
        "cohere"
    }

    fn is_active(&self) -> bool {
        self.options.api_key.is_some()
    }
}

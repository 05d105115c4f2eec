//! An embedder for any server that speaks OpenAI's embeddings API
//! (`POST {base}/embeddings` with `model` and `input: [...]`).
//!
//! Contract: inputs go in batches of at most [`MAX_BATCH`]; vectors come back
//! in input order (by each item's `index`); the dimension is learned from the
//! first response (or known for OpenAI's own models) and every later response
//! must match it; a response with the wrong number of vectors, a repeated or
//! missing index, or a non-finite value is an error, never a silent gap.

use std::sync::OnceLock;

use lobster_vector_core::embedder::check_texts;
use lobster_vector_core::{Embedder, Error, Result};
use serde_json::{json, Value};

use crate::http::{join_url, ApiClient, HttpOptions};
use crate::Secret;

/// The API's limit on inputs per request.
pub const MAX_BATCH: usize = 2048;
pub use crate::config::{
    OPENAI_DEFAULT_BASE_URL as DEFAULT_BASE_URL, OPENAI_DEFAULT_MODEL as DEFAULT_MODEL,
};

/// Where and how to call the embeddings API.
#[derive(Debug, Clone)]
pub struct OpenAiOptions {
    pub base_url: String,
    pub model: String,
    /// Sent as a bearer token; optional for local servers.
    pub api_key: Option<Secret>,
    /// Inputs per request, 1..=[`MAX_BATCH`].
    pub batch_size: usize,
    pub http: HttpOptions,
}

impl Default for OpenAiOptions {
    fn default() -> Self {
        Self {
            base_url: DEFAULT_BASE_URL.into(),
            model: DEFAULT_MODEL.into(),
            api_key: None,
            batch_size: MAX_BATCH,
            http: HttpOptions::default(),
        }
    }
}

/// An OpenAI-compatible embeddings client (provider `openai`).
#[derive(Debug)]
pub struct OpenAiEmbedder {
    client: ApiClient,
    url: String,
    options: OpenAiOptions,
    dimensions: OnceLock<usize>,
}

/// Output dimensions of OpenAI's own models at their default size.
fn known_dimensions(model: &str) -> Option<usize> {
    match model {
        "text-embedding-3-small" | "text-embedding-ada-002" => Some(1536),
        "text-embedding-3-large" => Some(3072),
        _ => None,
    }
}

impl OpenAiEmbedder {
    /// Checks the options; sends nothing. OpenAI's own endpoint requires a key.
    pub fn new(options: OpenAiOptions) -> Result<Self> {
        if !(1..=MAX_BATCH).contains(&options.batch_size) {
            return Err(Error::invalid_input(format!(
                "OpenAI batch size must be 1..={MAX_BATCH}, got {}",
                options.batch_size
            )));
        }
        if !(options.base_url.starts_with("http://") || options.base_url.starts_with("https://")) {
            return Err(Error::InvalidConfig {
                key: "OPENAI_BASE_URL".into(),
                value: crate::secret::redact_url(&options.base_url),
                valid: "an http:// or https:// URL".into(),
            });
        }
        if options.api_key.is_none() && options.base_url.contains("api.openai.com") {
            return Err(Error::NotAvailable {
                what: "embedding provider `openai`".into(),
                hint:
                    "set OPENAI_API_KEY (or OPENAI_BASE_URL for a local server that needs no key)"
                        .into(),
            });
        }
        let dimensions = OnceLock::new();
        if let Some(d) = known_dimensions(&options.model) {
            let _ = dimensions.set(d);
        }
        Ok(Self {
            client: ApiClient::new("openai", "OPENAI_API_KEY", options.http.clone()),
            url: join_url(&options.base_url, "embeddings"),
            options,
            dimensions,
        })
    }

    /// Learns the dimension with one request when the model is not a known one.
    pub fn probe_dimensions(&self) -> Result<usize> {
        match self.dimensions.get() {
            Some(d) => Ok(*d),
            None => Ok(self.embed_batch(&["dimension probe"])?[0].len()),
        }
    }

    fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let body =
            json!({ "model": self.options.model, "input": texts, "encoding_format": "float" });
        let response = self
            .client
            .post_json(&self.url, self.options.api_key.as_ref(), &body)?;
        let vectors = self.parse(&response, texts.len())?;
        Ok(vectors)
    }

    /// Vectors from a response to `expected` inputs, in input order.
    fn parse(&self, response: &Value, expected: usize) -> Result<Vec<Vec<f32>>> {
        let bad = |message: String| self.client.malformed(&self.url, message);
        let data = response
            .get("data")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("no `data` array".into()))?;
        if data.len() != expected {
            return Err(bad(format!("{} vectors for {expected} inputs", data.len())));
        }
        let mut slots: Vec<Option<Vec<f32>>> = vec![None; expected];
        for (position, item) in data.iter().enumerate() {
            let index = match item.get("index") {
                None => position,
                Some(i) => i
                    .as_u64()
                    .map(|i| i as usize)
                    .filter(|i| *i < expected)
                    .ok_or_else(|| bad(format!("item {position} has index {i}")))?,
            };
            let values = item
                .get("embedding")
                .and_then(Value::as_array)
                .ok_or_else(|| bad(format!("item {position} has no `embedding` array")))?;
            let vector = values
                .iter()
                .map(|v| v.as_f64().map(|x| x as f32).filter(|x| x.is_finite()))
                .collect::<Option<Vec<f32>>>()
                .ok_or_else(|| {
                    bad(format!(
                        "item {position} holds a non-numeric or non-finite value"
                    ))
                })?;
            let want = *self.dimensions.get_or_init(|| vector.len());
            if vector.len() != want || want == 0 {
                return Err(bad(format!(
                    "item {position} has {} dimensions, earlier responses had {want}",
                    vector.len()
                )));
            }
            if slots[index].replace(vector).is_some() {
                return Err(bad(format!("index {index} appears twice")));
            }
        }
        slots
            .into_iter()
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| bad("an input index is missing".into()))
    }
}

impl Embedder for OpenAiEmbedder {
    fn embed_documents(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        check_texts(texts)?;
        let mut out = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(self.options.batch_size) {
            out.extend(self.embed_batch(chunk)?);
        }
        Ok(out)
    }

    /// Known after the first response (or for OpenAI's own models); 0 before.
    fn dimensions(&self) -> usize {
        self.dimensions.get().copied().unwrap_or(0)
    }

    fn model_id(&self) -> &str {
        &self.options.model
    }

    fn provider(&self) -> &str {
        "openai"
    }
}

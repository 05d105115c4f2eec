//! Turning text into vectors.

use crate::Result;

/// A text embedding model.
///
/// Contract: one vector of `dimensions()` floats per input, in input order;
/// empty text is `InvalidInput`; text longer than the model's limit is
/// truncated as the model's reference pipeline does.
pub trait Embedder: Send + Sync + std::fmt::Debug {
    /// Embeds documents (ontology labels and synonyms) in one call.
    fn embed_documents(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>>;

    /// Embeds one query. Models without a query prompt embed it as a document.
    fn embed_query(&self, text: &str) -> Result<Vec<f32>> {
        let mut v = self.embed_documents(&[text])?;
        v.pop().ok_or_else(|| crate::Error::Model {
            message: "embedder returned no vector".into(),
        })
    }

    /// Output dimension.
    fn dimensions(&self) -> usize;

    /// The model's identifier (for example `sentence-transformers/all-MiniLM-L6-v2`).
    fn model_id(&self) -> &str;

    /// The provider name from the configuration table (`minilm`, `sapbert`, `openai`).
    fn provider(&self) -> &str;
}

/// Rejects empty or whitespace-only texts, naming the first one.
pub fn check_texts(texts: &[&str]) -> Result<()> {
    match texts.iter().position(|t| t.trim().is_empty()) {
        Some(i) => Err(crate::Error::invalid_input(format!(
            "text #{i} is empty; nothing to embed"
        ))),
        None => Ok(()),
    }
}

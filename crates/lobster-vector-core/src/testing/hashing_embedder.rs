use crate::{embedder::check_texts, metric::normalize, Embedder, Result};

/// A deterministic bag-of-character-trigrams embedder for unit tests of code
/// that takes an [`Embedder`]. Similar strings get similar vectors; it is not a
/// language model and never stands in for one outside tests.
#[derive(Debug, Clone)]
pub struct HashingEmbedder {
    dimensions: usize,
    model_id: String,
}

impl HashingEmbedder {
    pub fn new(dimensions: usize) -> Self {
        Self {
            dimensions,
            model_id: format!("hashing-trigram-{dimensions}"),
        }
    }

    /// The same embedder under another model id (to test fail-closed checks).
    pub fn with_model_id(mut self, id: &str) -> Self {
        self.model_id = id.into();
        self
    }

    fn embed_one(&self, text: &str) -> Vec<f32> {
        let padded: Vec<char> = format!("  {}  ", text.to_lowercase()).chars().collect();
        let mut v = vec![0.0_f32; self.dimensions];
        for w in padded.windows(3) {
            // FNV-1a over the trigram.
            let mut h: u64 = 0xcbf2_9ce4_8422_2325;
            for c in w {
                h ^= u64::from(u32::from(*c));
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
            v[(h % self.dimensions as u64) as usize] += 1.0;
        }
        normalize(&mut v);
        v
    }
}

impl Embedder for HashingEmbedder {
    fn embed_documents(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        check_texts(texts)?;
        Ok(texts.iter().map(|t| self.embed_one(t)).collect())
    }
    fn dimensions(&self) -> usize {
        self.dimensions
    }
    fn model_id(&self) -> &str {
        &self.model_id
    }
    fn provider(&self) -> &str {
        "hashing"
    }
}

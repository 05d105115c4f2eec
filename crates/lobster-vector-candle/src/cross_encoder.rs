//! [`CrossEncoder`]: a Hugging Face `BertForSequenceClassification`
//! directory scoring (query, document) pairs (reranker `cross_encoder`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use lobster_vector_core::{Error, Reranker, Result};
use serde::Deserialize;
use tokenizers::{EncodeInput, Encoding, Tokenizer};

use crate::batch::{pack, run_sorted, thread_pool, Packed};
use crate::matmul::PackedLinear;
use crate::model::{
    encoder_prefix, load_linear, load_tokenizer, open_weights, read_json, Bert, BertConfig,
    ModelFiles,
};

/// Pairs per forward pass unless configured.
pub const DEFAULT_PAIR_BATCH_SIZE: usize = 32;

/// How a [`CrossEncoder`] runs.
#[derive(Debug, Clone)]
pub struct CrossEncoderOptions {
    /// Pairs per forward pass (sorted by length, packed without padding).
    pub batch_size: usize,
    /// Worker threads; `None` = the pool the call runs in.
    pub threads: Option<usize>,
    /// Tokens per pair, `[CLS]`/`[SEP]` included; `None` = the tokenizer
    /// config's `model_max_length`, else the model's positions.
    pub max_length: Option<usize>,
}

impl Default for CrossEncoderOptions {
    fn default() -> Self {
        Self {
            batch_size: DEFAULT_PAIR_BATCH_SIZE,
            threads: None,
            max_length: None,
        }
    }
}

#[derive(Deserialize, Default)]
struct HeadConfig {
    #[serde(default)]
    id2label: Option<BTreeMap<String, String>>,
    #[serde(default)]
    num_labels: Option<usize>,
}

#[derive(Deserialize, Default)]
struct TokenizerConfig {
    model_max_length: Option<f64>,
}

/// A BERT cross-encoder.
///
/// Pipeline per pair: tokenise as `[CLS] query [SEP] document [SEP]` with
/// token type 0 for the query part and 1 for the document part, truncate the
/// pair longest-first to `max_length`, run the encoder, take `[CLS]`, apply
/// the pooler (dense + tanh) and the classifier. The relevance logit is the
/// single logit of a one-label head, or `logit₁ − logit₀` of a two-label head;
/// the score is its sigmoid (for two labels, the softmax probability of label 1).
pub struct CrossEncoder {
    model: Bert,
    pooler: PackedLinear,
    classifier: PackedLinear,
    labels: usize,
    tokenizer: Tokenizer,
    max_length: usize,
    batch_size: usize,
    pool: Option<rayon::ThreadPool>,
    dir: PathBuf,
}

impl std::fmt::Debug for CrossEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CrossEncoder")
            .field("dir", &self.dir)
            .field("model", &self.model)
            .field("labels", &self.labels)
            .field("max_length", &self.max_length)
            .field("batch_size", &self.batch_size)
            .finish()
    }
}

impl CrossEncoder {
    /// Loads a `BertForSequenceClassification` directory (`config.json`,
    /// `model.safetensors` with `bert.pooler.dense.*` and `classifier.*`,
    /// `tokenizer.json`). Heads with one or two labels are supported.
    pub fn load(dir: &Path, options: CrossEncoderOptions) -> Result<Self> {
        if options.batch_size == 0 || options.threads == Some(0) {
            return Err(Error::InvalidConfig {
                key: "cross-encoder batch size / threads".into(),
                value: "0".into(),
                valid: "positive numbers".into(),
            });
        }
        let files = ModelFiles::locate(dir)?;
        let cfg = BertConfig::from_file(&files.config)?;
        let head: HeadConfig = read_json(&files.config)?.unwrap_or_default();
        let labels = head
            .num_labels
            .or(head.id2label.as_ref().map(BTreeMap::len))
            .unwrap_or(2);
        if !(1..=2).contains(&labels) {
            return Err(Error::Model {
                message: format!(
                    "`{}` declares {labels} labels; a relevance cross-encoder has 1 or 2",
                    files.config.display()
                ),
            });
        }
        let tok_cfg: TokenizerConfig =
            read_json(&dir.join("tokenizer_config.json"))?.unwrap_or_default();
        let positions = cfg.max_position_embeddings;
        let max_length = options
            .max_length
            .unwrap_or(match tok_cfg.model_max_length {
                Some(m) if m >= 1.0 && m < positions as f64 => m as usize,
                _ => positions,
            })
            .min(positions);
        if max_length < 3 {
            return Err(Error::InvalidConfig {
                key: "max_length".into(),
                value: max_length.to_string(),
                valid: "at least 3 tokens ([CLS] and two [SEP])".into(),
            });
        }
        let tokenizer = load_tokenizer(&files.tokenizer, max_length)?;
        let model = Bert::load(&files.weights, &cfg, &files.config)?;
        let root = open_weights(&files.weights)?;
        let h = cfg.hidden_size;
        let pooler_prefix = match encoder_prefix(&root) {
            "" => "pooler.dense".to_string(),
            p => format!("{p}.pooler.dense"),
        };
        let pooler = load_linear(&root, &pooler_prefix, h, h, &files.weights)?;
        let classifier = load_linear(&root, "classifier", labels, h, &files.weights)?;
        let pool = thread_pool(options.threads, "lobster-rerank")?;
        Ok(Self {
            model,
            pooler,
            classifier,
            labels,
            tokenizer,
            max_length,
            batch_size: options.batch_size,
            pool,
            dir: dir.to_path_buf(),
        })
    }

    /// Tokens per pair, special tokens included.
    pub fn max_length(&self) -> usize {
        self.max_length
    }

    /// The pair encoding the model sees for (`query`, `document`): token ids
    /// and token type ids, after truncation.
    pub fn encode_pair(&self, query: &str, document: &str) -> Result<(Vec<u32>, Vec<u32>)> {
        let e = self.encode(query, &[document])?;
        Ok(e.into_iter()
            .next()
            .map(|e| (e.get_ids().to_vec(), e.get_type_ids().to_vec()))
            .unwrap_or_default())
    }

    /// The relevance logit of each document for `query`, in input order.
    pub fn logits(&self, query: &str, documents: &[&str]) -> Result<Vec<f32>> {
        if documents.is_empty() {
            return Ok(Vec::new());
        }
        let run = || {
            let encodings = self.encode(query, documents)?;
            run_sorted(&encodings, self.batch_size, |batch, par| {
                self.run_batch(batch, par)
            })
        };
        match &self.pool {
            Some(pool) => pool.install(run),
            None => run(),
        }
    }

    fn encode(&self, query: &str, documents: &[&str]) -> Result<Vec<Encoding>> {
        let inputs: Vec<EncodeInput> = documents
            .iter()
            .map(|d| (query.trim().to_string(), d.trim().to_string()).into())
            .collect();
        let encodings = self
            .tokenizer
            .encode_batch(inputs, true)
            .map_err(|e| Error::Model {
                message: format!("tokenisation failed: {e}"),
            })?;
        let truncated = encodings
            .iter()
            .filter(|e| !e.get_overflowing().is_empty())
            .count();
        if truncated > 0 {
            tracing::warn!(
                truncated,
                max_length = self.max_length,
                "{truncated} (query, document) pair(s) longer than {} tokens truncated longest-first",
                self.max_length
            );
        }
        Ok(encodings)
    }

    fn run_batch(&self, encodings: &[&Encoding], par: bool) -> Result<Vec<f32>> {
        let Packed {
            ids,
            type_ids,
            seqs,
        } = pack(encodings, true);
        let hidden = self.model.forward(&ids, &type_ids, &seqs, par)?;
        let h = self.model.hidden_size();
        let mut cls = Vec::with_capacity(seqs.len() * h);
        for &(start, _) in &seqs {
            cls.extend_from_slice(&hidden[start * h..(start + 1) * h]);
        }
        let m = seqs.len();
        let mut pooled = vec![0f32; m * h];
        self.pooler.forward(&mut pooled, &cls, m, None, par);
        pooled.iter_mut().for_each(|v| *v = v.tanh());
        let mut logits = vec![0f32; m * self.labels];
        self.classifier
            .forward(&mut logits, &pooled, m, None, false);
        Ok(logits
            .chunks_exact(self.labels)
            .map(|l| if self.labels == 1 { l[0] } else { l[1] - l[0] })
            .collect())
    }
}

/// `1 / (1 + e^(-x))`.
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

impl Reranker for CrossEncoder {
    /// The sigmoid of each pair's relevance logit.
    fn score(&self, query: &str, documents: &[&str]) -> Result<Vec<f32>> {
        Ok(self
            .logits(query, documents)?
            .into_iter()
            .map(sigmoid)
            .collect())
    }

    fn name(&self) -> &str {
        "cross_encoder"
    }
}

//! [`BertEmbedder`]: sentence-transformers' pipeline (tokenise, BERT,
//! pool, normalise) for any Hugging Face BERT directory.

use std::path::{Path, PathBuf};

use lobster_vector_core::embedder::check_texts;
use lobster_vector_core::{Embedder, Error, Result};
use serde::Deserialize;
use tokenizers::{Encoding, Tokenizer};

use crate::adapt::AdaptationManifest;
use crate::batch::{pack, run_sorted, thread_pool, Packed};
use crate::model::{load_tokenizer, model_error, read_json, Bert, BertConfig, ModelFiles};
use crate::resolve::{provider_info, resolve_model_dir};

/// How token vectors become one text vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    /// Mean of the token vectors, `[CLS]` and `[SEP]` included (MiniLM).
    Mean,
    /// The `[CLS]` token's vector (SapBERT).
    Cls,
    /// Element-wise maximum over the tokens.
    Max,
}

impl Pooling {
    /// The name used in messages: `mean`, `cls` or `max`.
    pub fn as_str(self) -> &'static str {
        match self {
            Pooling::Mean => "mean",
            Pooling::Cls => "cls",
            Pooling::Max => "max",
        }
    }
}

impl std::fmt::Display for Pooling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Pooling {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "mean" => Ok(Pooling::Mean),
            "cls" => Ok(Pooling::Cls),
            "max" => Ok(Pooling::Max),
            _ => Err(Error::InvalidConfig {
                key: "pooling".into(),
                value: s.into(),
                valid: "mean, cls, max".into(),
            }),
        }
    }
}

/// Default texts per forward pass. With short texts (~10 tokens) a batch
/// of 64 gives the matrix products a few hundred rows, enough to run near
/// the CPU's peak; larger batches gain nothing measurable on 2 cores.
pub const DEFAULT_BATCH_SIZE: usize = 64;

/// How a [`BertEmbedder`] is set up. Build with [`BertOptions::minilm`],
/// [`BertOptions::sapbert`] or [`BertOptions::for_provider`], then adjust
/// with the `with_*` methods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BertOptions {
    /// Provider name reported by [`Embedder::provider`].
    pub provider: String,
    /// Model id reported by [`Embedder::model_id`] (and recorded in
    /// collection artifacts): name the weights actually loaded. A directory
    /// written by [`adapt`](fn@crate::adapt) names its own model id in its manifest,
    /// and that one is reported instead.
    pub model_id: String,
    /// Pooling; `None` reads it from the directory's pooling module
    /// (`modules.json` → `1_Pooling/config.json`), and mean when there is none.
    pub pooling: Option<Pooling>,
    /// L2-normalise the output; `None` normalises exactly when `modules.json`
    /// lists a `sentence_transformers.models.Normalize` module.
    pub normalize: Option<bool>,
    /// Tokens per text including `[CLS]` and `[SEP]`; `None` takes
    /// `sentence_bert_config.json`'s `max_seq_length`, else the smaller of
    /// the model's position count and the tokenizer's `model_max_length`.
    /// Never more than the model's position embeddings.
    pub max_seq_length: Option<usize>,
    /// Texts per forward pass (at least 1). Inputs are sorted by token count
    /// and cut into batches of similar lengths; results come back in the
    /// caller's order.
    pub batch_size: usize,
    /// Threads for the encoder (matrix products, attention, element-wise
    /// steps and tokenisation all run on rayon). `Some(n)` gives the
    /// embedder a private rayon pool of `n` threads; `None` uses the pool
    /// the call runs in — the global one unless inside `ThreadPool::install`,
    /// whose size the binary sets (from `LOBSTER_THREADS`) and rayon
    /// otherwise takes from `RAYON_NUM_THREADS` or the number of CPUs.
    /// candle itself only loads the weights here and starts no threads.
    pub threads: Option<usize>,
}

impl BertOptions {
    /// all-MiniLM-L6-v2: pooling and normalisation from the directory
    /// (mean + L2 normalise for the real model), 384-d.
    pub fn minilm() -> Self {
        Self::preset("minilm", None, None)
    }

    /// SapBERT (cambridgeltl/SapBERT-from-PubMedBERT-fulltext): `[CLS]`
    /// pooling, not normalised, whatever the directory says.
    pub fn sapbert() -> Self {
        Self::preset("sapbert", Some(Pooling::Cls), Some(false))
    }

    /// The preset of a provider name (`minilm` or `sapbert`); any other
    /// name is [`Error::InvalidConfig`] listing the valid ones.
    pub fn for_provider(provider: &str) -> Result<Self> {
        match provider_info(provider)?.name {
            "sapbert" => Ok(Self::sapbert()),
            _ => Ok(Self::minilm()),
        }
    }

    fn preset(provider: &str, pooling: Option<Pooling>, normalize: Option<bool>) -> Self {
        let model_id = provider_info(provider)
            .map(|p| p.model_id.to_string())
            .unwrap_or_default();
        Self {
            provider: provider.into(),
            model_id,
            pooling,
            normalize,
            max_seq_length: None,
            batch_size: DEFAULT_BATCH_SIZE,
            threads: None,
        }
    }

    /// Forces a pooling instead of reading the directory's.
    pub fn with_pooling(mut self, pooling: Pooling) -> Self {
        self.pooling = Some(pooling);
        self
    }

    /// Forces normalisation on or off.
    pub fn with_normalize(mut self, normalize: bool) -> Self {
        self.normalize = Some(normalize);
        self
    }

    /// Sets the token limit per text (including `[CLS]` and `[SEP]`).
    pub fn with_max_seq_length(mut self, tokens: usize) -> Self {
        self.max_seq_length = Some(tokens);
        self
    }

    /// Sets the texts per forward pass.
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size;
        self
    }

    /// Gives the embedder its own pool of `threads` threads.
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = Some(threads);
        self
    }

    /// Sets the reported model id.
    pub fn with_model_id(mut self, model_id: impl Into<String>) -> Self {
        self.model_id = model_id.into();
        self
    }

    /// Sets the reported provider name.
    pub fn with_provider(mut self, provider: impl Into<String>) -> Self {
        self.provider = provider.into();
        self
    }
}

/// A BERT sentence embedder reproducing sentence-transformers' output.
///
/// Pipeline per text: strip surrounding whitespace (and lowercase when
/// `sentence_bert_config.json` says `do_lower_case`), tokenise with the
/// directory's `tokenizer.json`, truncate to `max_seq_length` tokens
/// including `[CLS]` and `[SEP]` (a `tracing` warning names truncated texts),
/// run the encoder, pool, and L2-normalise when configured.
///
/// Texts are sorted by token count and batched with their neighbours;
/// inside a batch the sequences are packed back to back, so no padding is
/// computed and a text's vector does not depend on what it was batched
/// with (beyond float rounding, < 1e-5).
pub struct BertEmbedder {
    model: Bert,
    tokenizer: Tokenizer,
    pooling: Pooling,
    normalize: bool,
    lowercase: bool,
    max_seq_length: usize,
    batch_size: usize,
    pool: Option<rayon::ThreadPool>,
    provider: String,
    model_id: String,
    dir: PathBuf,
}

impl std::fmt::Debug for BertEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BertEmbedder")
            .field("provider", &self.provider)
            .field("model_id", &self.model_id)
            .field("dir", &self.dir)
            .field("model", &self.model)
            .field("pooling", &self.pooling)
            .field("normalize", &self.normalize)
            .field("max_seq_length", &self.max_seq_length)
            .field("batch_size", &self.batch_size)
            .field(
                "threads",
                &self.pool.as_ref().map(|p| p.current_num_threads()),
            )
            .finish()
    }
}

#[derive(Deserialize)]
struct ModuleEntry {
    #[serde(default)]
    path: String,
    #[serde(rename = "type", default)]
    kind: String,
}

#[derive(Deserialize)]
struct PoolingConfig {
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_max_tokens: bool,
    #[serde(default)]
    pooling_mode_mean_sqrt_len_tokens: bool,
    #[serde(default)]
    pooling_mode_weightedmean_tokens: bool,
    #[serde(default)]
    pooling_mode_lasttoken: bool,
}

#[derive(Deserialize, Default)]
struct SbertConfig {
    max_seq_length: Option<usize>,
    #[serde(default)]
    do_lower_case: bool,
}

#[derive(Deserialize, Default)]
struct TokenizerConfig {
    model_max_length: Option<f64>,
}

/// What the sentence-transformers modules of a directory say.
struct Modules {
    pooling: Option<Pooling>,
    normalize: bool,
}

fn read_modules(dir: &Path) -> Result<Modules> {
    let entries: Vec<ModuleEntry> = read_json(&dir.join("modules.json"))?.unwrap_or_default();
    let normalize = entries.iter().any(|m| m.kind.ends_with("models.Normalize"));
    let pooling_dir = entries
        .iter()
        .find(|m| m.kind.ends_with("models.Pooling"))
        .map(|m| dir.join(&m.path))
        .unwrap_or_else(|| dir.join("1_Pooling"));
    let cfg_path = pooling_dir.join("config.json");
    let pooling = match read_json::<PoolingConfig>(&cfg_path)? {
        None => None,
        Some(c) => {
            let modes = [
                (c.pooling_mode_mean_tokens, Some(Pooling::Mean)),
                (c.pooling_mode_cls_token, Some(Pooling::Cls)),
                (c.pooling_mode_max_tokens, Some(Pooling::Max)),
                (c.pooling_mode_mean_sqrt_len_tokens, None),
                (c.pooling_mode_weightedmean_tokens, None),
                (c.pooling_mode_lasttoken, None),
            ];
            let on: Vec<Option<Pooling>> =
                modes.iter().filter(|(b, _)| *b).map(|(_, p)| *p).collect();
            match on.as_slice() {
                [Some(p)] => Some(*p),
                [] => None,
                _ => {
                    return Err(model_error(format!(
                        "`{}` asks for a pooling this embedder does not implement (supported: exactly one of mean, cls, max); force one with BertOptions::with_pooling",
                        cfg_path.display()
                    )))
                }
            }
        }
    };
    Ok(Modules { pooling, normalize })
}

impl BertEmbedder {
    /// Finds the provider's model (see [`resolve_model_dir`]) and loads it
    /// with the provider's preset options.
    pub fn for_provider(provider: &str, explicit: Option<&Path>) -> Result<Self> {
        let options = BertOptions::for_provider(provider)?;
        let dir = resolve_model_dir(provider, explicit)?;
        Self::load(&dir, options)
    }

    /// Loads a Hugging Face / sentence-transformers BERT directory:
    /// `config.json`, `model.safetensors` and `tokenizer.json` are required;
    /// `modules.json`, the pooling module's `config.json`,
    /// `sentence_bert_config.json` and `tokenizer_config.json` are read when
    /// present. A missing, unreadable or corrupt file is [`Error::Model`]
    /// naming it; a `batch_size` or `threads` of 0 is [`Error::InvalidConfig`].
    pub fn load(dir: &Path, options: BertOptions) -> Result<Self> {
        if options.batch_size == 0 {
            return Err(Error::InvalidConfig {
                key: "batch size".into(),
                value: "0".into(),
                valid: "a positive number of texts".into(),
            });
        }
        if options.threads == Some(0) {
            return Err(Error::InvalidConfig {
                key: "threads".into(),
                value: "0".into(),
                valid: "a positive number of threads".into(),
            });
        }
        let ModelFiles {
            config: config_path,
            weights: weights_path,
            tokenizer: tokenizer_path,
        } = ModelFiles::locate(dir)?;
        let cfg = BertConfig::from_file(&config_path)?;
        let modules = read_modules(dir)?;
        let sbert: SbertConfig =
            read_json(&dir.join("sentence_bert_config.json"))?.unwrap_or_default();
        let tok_cfg: TokenizerConfig =
            read_json(&dir.join("tokenizer_config.json"))?.unwrap_or_default();

        let positions = cfg.max_position_embeddings;
        let max_seq_length = options
            .max_seq_length
            .or(sbert.max_seq_length)
            .unwrap_or(match tok_cfg.model_max_length {
                Some(m) if m >= 1.0 && m < positions as f64 => m as usize,
                _ => positions,
            })
            .min(positions);
        if max_seq_length < 2 {
            return Err(Error::InvalidConfig {
                key: "max_seq_length".into(),
                value: max_seq_length.to_string(),
                valid: "at least 2 tokens ([CLS] and [SEP])".into(),
            });
        }

        let tokenizer = load_tokenizer(&tokenizer_path, max_seq_length)?;

        let model = Bert::load(&weights_path, &cfg, &config_path)?;

        let pool = thread_pool(options.threads, "lobster-bert")?;

        Ok(Self {
            model,
            tokenizer,
            pooling: options.pooling.or(modules.pooling).unwrap_or(Pooling::Mean),
            normalize: options.normalize.unwrap_or(modules.normalize),
            lowercase: sbert.do_lower_case,
            max_seq_length,
            batch_size: options.batch_size,
            pool,
            provider: options.provider,
            model_id: match AdaptationManifest::read(dir)? {
                Some(manifest) => manifest.model_id,
                None => options.model_id,
            },
            dir: dir.to_path_buf(),
        })
    }

    /// The directory the model was loaded from.
    pub fn model_dir(&self) -> &Path {
        &self.dir
    }

    /// The pooling in effect.
    pub fn pooling(&self) -> Pooling {
        self.pooling
    }

    /// Whether outputs are L2-normalised.
    pub fn normalizes(&self) -> bool {
        self.normalize
    }

    /// Tokens per text, `[CLS]` and `[SEP]` included.
    pub fn max_seq_length(&self) -> usize {
        self.max_seq_length
    }

    /// The token ids the model sees for `text`, after the same stripping,
    /// lowercasing and truncation as embedding (`[CLS]` and `[SEP]` included).
    /// Unlike embedding, an empty text is allowed (it gives `[CLS]` `[SEP]`).
    pub fn token_ids(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self.encode(&[text])?;
        Ok(enc
            .into_iter()
            .next()
            .map(|e| e.get_ids().to_vec())
            .unwrap_or_default())
    }

    fn prepare<'a>(&self, text: &'a str) -> std::borrow::Cow<'a, str> {
        let t = text.trim();
        if self.lowercase {
            t.to_lowercase().into()
        } else {
            t.into()
        }
    }

    /// The encoder.
    pub(crate) fn bert(&self) -> &Bert {
        &self.model
    }

    /// The encodings of `texts` as embedding tokenises them.
    pub(crate) fn encode_texts(&self, texts: &[&str]) -> Result<Vec<Encoding>> {
        self.encode(texts)
    }

    fn encode(&self, texts: &[&str]) -> Result<Vec<Encoding>> {
        let inputs: Vec<String> = texts.iter().map(|t| self.prepare(t).into_owned()).collect();
        let encodings = self
            .tokenizer
            .encode_batch(inputs, true)
            .map_err(|e| model_error(format!("tokenisation failed: {e}")))?;
        let truncated: Vec<usize> = encodings
            .iter()
            .enumerate()
            .filter(|(_, e)| !e.get_overflowing().is_empty())
            .map(|(i, _)| i)
            .collect();
        if !truncated.is_empty() {
            tracing::warn!(
                count = truncated.len(),
                first = truncated[0],
                max_seq_length = self.max_seq_length,
                "{} text(s) longer than {} tokens truncated (first: #{}), as sentence-transformers does",
                truncated.len(),
                self.max_seq_length,
                truncated[0]
            );
        }
        Ok(encodings)
    }

    /// Runs one batch: returns the pooled (and maybe normalised) vectors.
    fn run_batch(&self, encodings: &[&Encoding], par: bool) -> Result<Vec<Vec<f32>>> {
        let Packed { ids, seqs, .. } = pack(encodings, false);
        let hidden = self.model.forward(&ids, &[], &seqs, par)?;
        let h = self.model.hidden_size();
        Ok(seqs
            .iter()
            .map(|&(start, len)| {
                let rows = &hidden[start * h..(start + len) * h];
                let mut v = match self.pooling {
                    Pooling::Cls => rows[..h].to_vec(),
                    Pooling::Mean => {
                        let mut acc = vec![0f32; h];
                        for row in rows.chunks_exact(h) {
                            for (a, b) in acc.iter_mut().zip(row) {
                                *a += b;
                            }
                        }
                        let inv = 1.0 / (len.max(1) as f32);
                        acc.iter_mut().for_each(|a| *a *= inv);
                        acc
                    }
                    Pooling::Max => {
                        let mut acc = vec![f32::NEG_INFINITY; h];
                        for row in rows.chunks_exact(h) {
                            for (a, b) in acc.iter_mut().zip(row) {
                                *a = a.max(*b);
                            }
                        }
                        acc
                    }
                };
                if self.normalize {
                    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
                    v.iter_mut().for_each(|x| *x /= norm);
                }
                v
            })
            .collect())
    }

    fn embed_all(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        check_texts(texts)?;
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let encodings = self.encode(texts)?;
        run_sorted(&encodings, self.batch_size, |batch, par| {
            self.run_batch(batch, par)
        })
    }
}

impl Embedder for BertEmbedder {
    /// One vector per text in input order; an empty or whitespace-only text
    /// is [`Error::InvalidInput`] naming it.
    fn embed_documents(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        match &self.pool {
            Some(pool) => pool.install(|| self.embed_all(texts)),
            None => self.embed_all(texts),
        }
    }

    fn dimensions(&self) -> usize {
        self.model.hidden_size()
    }

    fn model_id(&self) -> &str {
        &self.model_id
    }

    fn provider(&self) -> &str {
        &self.provider
    }
}

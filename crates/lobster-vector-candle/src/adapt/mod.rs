//! Adapting a BERT sentence encoder to an ontology (SapBERT's recipe): the
//! names of one concept are pulled together and other concepts pushed
//! apart, with a symmetric InfoNCE loss over in-batch negatives, batches
//! being filled with each concept's nearest neighbours under the base model
//! (hard negatives).
//!
//! The embeddings and the lower layers stay frozen and run on this crate's
//! fast kernels; the top [`AdaptOptions::train_layers`] layers train with
//! candle's autograd and AdamW. The result is an ordinary
//! sentence-transformers directory ([`BertEmbedder::load`] reads it at full
//! speed) plus [`MANIFEST_FILE`], whose model id differs from the base
//! model's, so collections built with one model and queried with the other
//! fail closed.
//!
//! Deterministic for the same base model, synonym sets, options and thread
//! count.

mod batches;
mod encoder;
mod output;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use candle_core::{Device, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use lobster_vector_core::{Embedder, Error, Result};
use tokenizers::Encoding;

use crate::batch::pack;
use crate::embedder::{BertEmbedder, BertOptions};
use crate::model::BertConfig;

pub use output::{AdaptationManifest, SourceRecord, MANIFEST_FILE};

/// The names of one concept: its label first, then its synonyms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynonymSet {
    /// The concept's id (reported, never trained on).
    pub id: String,
    /// Label and synonyms; sets with fewer than two distinct names
    /// (ignoring case and surrounding space) give no training pair.
    pub names: Vec<String>,
}

/// How to adapt.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AdaptOptions {
    /// How many of the top encoder layers train (the rest stay frozen).
    pub train_layers: usize,
    /// Passes over the concepts (each concept gives one pair per pass).
    pub epochs: usize,
    /// Pairs per step; the other pairs of a batch are the negatives.
    pub batch_size: usize,
    /// Peak AdamW learning rate (linear warm-up over the first 10 % of
    /// steps, then linear decay to zero).
    pub learning_rate: f64,
    /// AdamW weight decay.
    pub weight_decay: f64,
    /// Softmax temperature of the InfoNCE loss.
    pub temperature: f64,
    /// Names are truncated to this many tokens while training.
    pub max_tokens: usize,
    /// Seed of the pair draws and the concept order.
    pub seed: u64,
    /// Stop after this many steps (all epochs when `None`).
    pub max_steps: Option<usize>,
}

impl Default for AdaptOptions {
    fn default() -> Self {
        Self {
            train_layers: 2,
            epochs: 1,
            batch_size: 64,
            learning_rate: 1e-4,
            weight_decay: 0.01,
            temperature: 0.05,
            max_tokens: 32,
            seed: 17,
            max_steps: None,
        }
    }
}

impl AdaptOptions {
    fn check(&self) -> Result<()> {
        let bad = |key: &str, value: String, valid: &str| {
            Err(Error::InvalidConfig {
                key: key.into(),
                value,
                valid: valid.into(),
            })
        };
        if self.train_layers == 0 {
            return bad("train layers", "0".into(), "at least one layer");
        }
        if self.epochs == 0 {
            return bad("epochs", "0".into(), "at least one epoch");
        }
        if self.batch_size < 2 {
            return bad(
                "batch size",
                self.batch_size.to_string(),
                "at least 2 pairs (the other pairs are the negatives)",
            );
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return bad(
                "learning rate",
                self.learning_rate.to_string(),
                "a positive number",
            );
        }
        if !(self.temperature > 0.0 && self.temperature.is_finite()) {
            return bad(
                "temperature",
                self.temperature.to_string(),
                "a positive number",
            );
        }
        if self.max_tokens < 3 {
            return bad("max tokens", self.max_tokens.to_string(), "at least 3");
        }
        Ok(())
    }
}

/// What [`adapt`] reports as it goes.
#[derive(Debug, Clone, PartialEq)]
pub enum AdaptEvent {
    /// The base model is embedding the labels of `concepts` concepts to find
    /// each one's nearest neighbour.
    Mining { concepts: usize },
    /// Training starts: `steps` steps in all.
    Training { steps: usize },
    /// Step `step` (from 1) finished with this batch loss.
    Step { step: usize, loss: f32 },
    /// The model is being written.
    Saving,
}

/// What [`adapt`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct AdaptReport {
    /// The directory written.
    pub output: PathBuf,
    /// The manifest written into it.
    pub manifest: AdaptationManifest,
}

/// Adapts the model in `base_dir` (loaded with `base_options`, whose model
/// id names it in the manifest) to
/// `sets` and writes it to `output`, which must not exist.
///
/// `sources` records what the sets were read from (it goes into the
/// manifest). `cancel` stops between steps: nothing is written and
/// [`Error::Interrupted`] is returned. Any error leaves `output` absent.
///
/// # Errors
/// [`Error::InvalidConfig`] for bad options, [`Error::InvalidInput`] when
/// `output` exists or fewer than two sets have two names,
/// [`Error::Model`] for an unusable base model, [`Error::Io`] when writing
/// fails.
#[allow(clippy::too_many_arguments)]
pub fn adapt(
    base_dir: &Path,
    base_options: BertOptions,
    sets: &[SynonymSet],
    sources: &[SourceRecord],
    options: &AdaptOptions,
    output: &Path,
    cancel: &AtomicBool,
    progress: &mut dyn FnMut(AdaptEvent),
) -> Result<AdaptReport> {
    options.check()?;
    if output.exists() {
        return Err(Error::invalid_input(format!(
            "`{}` already exists; adapting writes a new directory",
            output.display()
        )));
    }
    let started = Instant::now();
    let base = BertEmbedder::load(
        base_dir,
        base_options.with_max_seq_length(options.max_tokens),
    )?;
    let base_model_id = base.model_id().to_string();
    let cfg = BertConfig::from_file(&base_dir.join("config.json"))?;
    let training = TrainingSets::new(sets, &base)?;

    progress(AdaptEvent::Mining {
        concepts: training.len(),
    });
    let neighbour = nearest_neighbours(&base, &training)?;

    let top = encoder::TrainableTop::load(
        &base_dir.join("model.safetensors"),
        &cfg,
        options.train_layers,
        base.pooling(),
    )?;
    let mut optimizer = AdamW::new(
        top.vars(),
        ParamsAdamW {
            lr: options.learning_rate,
            weight_decay: options.weight_decay,
            ..ParamsAdamW::default()
        },
    )
    .map_err(|e| candle_err("optimiser", e))?;

    let per_epoch = training.len().div_ceil(options.batch_size);
    let total = (per_epoch * options.epochs).min(options.max_steps.unwrap_or(usize::MAX));
    progress(AdaptEvent::Training { steps: total });
    let warmup = (total / 10).max(1);
    let mut step = 0;
    let mut losses = Vec::with_capacity(total);
    'epochs: for epoch in 0..options.epochs {
        let batches = batches::epoch_batches(
            &training.name_counts(),
            &neighbour,
            options.batch_size,
            options.seed,
            epoch as u64,
        );
        for batch in batches {
            if step == total {
                break 'epochs;
            }
            if cancel.load(Ordering::Relaxed) {
                return Err(Error::Interrupted);
            }
            // Fewer than two pairs leave no negative.
            if batch.len() < 2 {
                continue;
            }
            let lr = if step < warmup {
                options.learning_rate * (step + 1) as f64 / warmup as f64
            } else {
                options.learning_rate * (total - step) as f64 / (total - warmup).max(1) as f64
            };
            optimizer.set_learning_rate(lr);
            let loss = training.loss(&base, &top, &batch, options.temperature)?;
            let value = loss.to_scalar::<f32>().map_err(|e| candle_err("loss", e))?;
            if !value.is_finite() {
                return Err(Error::Model {
                    message: format!(
                        "the training loss diverged at step {} (try a lower learning rate)",
                        step + 1
                    ),
                });
            }
            optimizer
                .backward_step(&loss)
                .map_err(|e| candle_err("backward pass", e))?;
            step += 1;
            losses.push(value);
            progress(AdaptEvent::Step { step, loss: value });
        }
    }
    if cancel.load(Ordering::Relaxed) {
        return Err(Error::Interrupted);
    }
    progress(AdaptEvent::Saving);
    let manifest = AdaptationManifest::new(
        &base_model_id,
        base_dir,
        sources,
        output::names_sha256(sets),
        options,
        output::Training {
            concepts: training.len(),
            steps: step,
            first_loss: losses.first().copied().unwrap_or(f32::NAN),
            last_loss: mean_tail(&losses),
            seconds: started.elapsed().as_secs_f64(),
        },
    )?;
    output::write_model(base_dir, &top, &manifest, output)?;
    Ok(AdaptReport {
        output: output.to_path_buf(),
        manifest,
    })
}

/// The mean of the last tenth of the losses (at least one).
fn mean_tail(losses: &[f32]) -> f32 {
    let n = (losses.len() / 10).max(1).min(losses.len());
    if n == 0 {
        return f32::NAN;
    }
    losses[losses.len() - n..].iter().sum::<f32>() / n as f32
}

/// A candle failure as an [`Error::Model`].
pub(crate) fn candle_err(what: &str, e: candle_core::Error) -> Error {
    Error::Model {
        message: format!("adapting the model: {what}: {e}"),
    }
}

/// The sets that give pairs, tokenised once.
struct TrainingSets {
    /// Per concept: the encodings of its distinct names, label first.
    names: Vec<Vec<Encoding>>,
    /// Per concept: its first name.
    labels: Vec<String>,
}

impl TrainingSets {
    fn new(sets: &[SynonymSet], base: &BertEmbedder) -> Result<Self> {
        let mut counts = Vec::new();
        let mut texts: Vec<&str> = Vec::new();
        for set in sets {
            let mut seen = std::collections::HashSet::new();
            let distinct: Vec<&str> = set
                .names
                .iter()
                .map(|n| n.trim())
                .filter(|n| !n.is_empty() && seen.insert(n.to_lowercase()))
                .collect();
            if distinct.len() >= 2 {
                counts.push(distinct.len());
                texts.extend(distinct);
            }
        }
        if counts.len() < 2 {
            return Err(Error::invalid_input(format!(
                "{} concept(s) have two different names; adapting needs at least two",
                counts.len()
            )));
        }
        let mut encodings = base.encode_texts(&texts)?.into_iter();
        let mut labels = Vec::with_capacity(counts.len());
        let mut names = Vec::with_capacity(counts.len());
        let mut first = 0;
        for n in counts {
            labels.push(texts[first].to_string());
            names.push(encodings.by_ref().take(n).collect());
            first += n;
        }
        Ok(Self { names, labels })
    }

    fn len(&self) -> usize {
        self.names.len()
    }

    fn name_counts(&self) -> Vec<usize> {
        self.names.iter().map(Vec::len).collect()
    }

    /// The symmetric InfoNCE loss of one batch.
    fn loss(
        &self,
        base: &BertEmbedder,
        top: &encoder::TrainableTop,
        batch: &[batches::Pair],
        temperature: f64,
    ) -> Result<Tensor> {
        let mut encodings: Vec<&Encoding> = Vec::with_capacity(2 * batch.len());
        for p in batch {
            encodings.push(&self.names[p.concept as usize][p.anchor as usize]);
        }
        for p in batch {
            encodings.push(&self.names[p.concept as usize][p.positive as usize]);
        }
        let packed = pack(&encodings, false);
        let model = base.bert();
        let hidden = model.forward_layers(&packed.ids, &[], &packed.seqs, top.first, true)?;
        let step = || -> candle_core::Result<Tensor> {
            let (x, mask) = encoder::pad_batch(&hidden, &packed.seqs, model.hidden_size())?;
            let emb = top.forward(&x, &mask)?;
            let b = batch.len();
            let anchors = emb.narrow(0, 0, b)?;
            let positives = emb.narrow(0, b, b)?;
            let logits = (anchors.matmul(&positives.t()?)? / temperature)?;
            let targets = Tensor::arange(0u32, b as u32, &Device::Cpu)?;
            let forward = candle_nn::loss::cross_entropy(&logits, &targets)?;
            let backward = candle_nn::loss::cross_entropy(&logits.t()?.contiguous()?, &targets)?;
            (forward + backward)? / 2.0
        };
        step().map_err(|e| candle_err("forward pass", e))
    }
}

/// For every concept, the other concept whose label the base model places
/// nearest (by cosine).
fn nearest_neighbours(base: &BertEmbedder, sets: &TrainingSets) -> Result<Vec<u32>> {
    let n = sets.len();
    let labels: Vec<&str> = sets.labels.iter().map(String::as_str).collect();
    let vectors = base.embed_documents(&labels)?;
    let h = base.dimensions();
    let flat: Vec<f32> = vectors.into_iter().flatten().collect();
    let mine = || -> candle_core::Result<Vec<u32>> {
        let all = Tensor::from_vec(flat, (n, h), &Device::Cpu)?;
        let all_t = all.t()?.contiguous()?;
        let mut out = Vec::with_capacity(n);
        let chunk = 1024;
        for start in (0..n).step_by(chunk) {
            let len = chunk.min(n - start);
            let sims = all.narrow(0, start, len)?.matmul(&all_t)?;
            let rows = sims.to_vec2::<f32>()?;
            for (i, row) in rows.into_iter().enumerate() {
                let me = start + i;
                let best = row
                    .iter()
                    .enumerate()
                    .filter(|&(j, _)| j != me)
                    .max_by(|a, b| a.1.total_cmp(b.1).then(b.0.cmp(&a.0)))
                    .map_or(me, |(j, _)| j);
                out.push(best as u32);
            }
        }
        Ok(out)
    };
    mine().map_err(|e| candle_err("mining hard negatives", e))
}

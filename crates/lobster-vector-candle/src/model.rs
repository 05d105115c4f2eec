//! BERT encoder: weights loaded with candle from `model.safetensors`, forward
//! pass over packed (unpadded) token sequences on the kernels of
//! [`crate::kernels`].

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use lobster_vector_core::{Error, Result};
use serde::Deserialize;
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use crate::kernels::{self, Activation};
use crate::matmul::PackedLinear;

/// The fields of a Hugging Face BERT `config.json` the encoder needs.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    #[serde(default = "default_act")]
    pub hidden_act: String,
    pub max_position_embeddings: usize,
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default)]
    pub position_embedding_type: Option<String>,
    #[serde(default)]
    pub model_type: Option<String>,
}

fn default_act() -> String {
    "gelu".into()
}
fn default_type_vocab() -> usize {
    2
}
fn default_eps() -> f64 {
    1e-12
}

impl BertConfig {
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Model {
            message: format!("cannot read `{}`: {e}", path.display()),
        })?;
        let cfg: Self = serde_json::from_str(&text).map_err(|e| Error::Model {
            message: format!("`{}` is not a BERT config: {e}", path.display()),
        })?;
        cfg.check(path)?;
        Ok(cfg)
    }

    fn check(&self, path: &Path) -> Result<()> {
        let bad = |what: String| {
            Err(Error::Model {
                message: format!("`{}`: {what}", path.display()),
            })
        };
        if let Some(t) = &self.model_type {
            if t != "bert" {
                return bad(format!(
                    "model_type `{t}` is not supported (only `bert` encoders)"
                ));
            }
        }
        if let Some(p) = &self.position_embedding_type {
            if p != "absolute" {
                return bad(format!(
                    "position_embedding_type `{p}` is not supported (only `absolute`)"
                ));
            }
        }
        if self.hidden_size == 0
            || self.num_attention_heads == 0
            || self.hidden_size % self.num_attention_heads != 0
        {
            return bad(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if self.type_vocab_size == 0 || self.max_position_embeddings == 0 {
            return bad("type_vocab_size and max_position_embeddings must be positive".into());
        }
        self.activation(path).map(|_| ())
    }

    fn activation(&self, path: &Path) -> Result<Activation> {
        match self.hidden_act.as_str() {
            "gelu" => Ok(Activation::Gelu),
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Ok(Activation::GeluTanh),
            "relu" => Ok(Activation::Relu),
            other => Err(Error::Model {
                message: format!(
                    "`{}`: hidden_act `{other}` is not supported (gelu, gelu_new, gelu_pytorch_tanh, gelu_fast, relu)",
                    path.display()
                ),
            }),
        }
    }
}

/// One encoder layer (query, key and value fused into one product).
struct Layer {
    qkv: PackedLinear,
    out: PackedLinear,
    ln1_g: Vec<f32>,
    ln1_b: Vec<f32>,
    ff1: PackedLinear,
    ff2: PackedLinear,
    ln2_g: Vec<f32>,
    ln2_b: Vec<f32>,
}

/// The BERT encoder (embeddings + layers, no pooler).
pub(crate) struct Bert {
    hidden: usize,
    heads: usize,
    intermediate: usize,
    vocab: usize,
    max_positions: usize,
    eps: f32,
    act: Activation,
    word: Vec<f32>,
    position: Vec<f32>,
    /// Token type embeddings, `[type_vocab, hidden]`.
    token_type: Vec<f32>,
    type_vocab: usize,
    emb_ln_g: Vec<f32>,
    emb_ln_b: Vec<f32>,
    layers: Vec<Layer>,
}

impl std::fmt::Debug for Bert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bert")
            .field("hidden", &self.hidden)
            .field("heads", &self.heads)
            .field("intermediate", &self.intermediate)
            .field("layers", &self.layers.len())
            .field("vocab", &self.vocab)
            .field("act", &self.act)
            .finish()
    }
}

fn model_err(path: &Path) -> impl Fn(candle_core::Error) -> Error + '_ {
    move |e| Error::ModelFiles {
        path: path.into(),
        message: e.to_string(),
    }
}

/// Reads an optional JSON file: `Ok(None)` when absent, an error when unreadable or malformed.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| model_error(format!("cannot read `{}`: {e}", path.display())))?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| model_error(format!("cannot parse `{}`: {e}", path.display())))
}

/// An [`Error::Model`] with `message`.
pub(crate) fn model_error(message: String) -> Error {
    Error::Model { message }
}

/// The files every Hugging Face BERT directory must hold.
pub(crate) struct ModelFiles {
    pub config: PathBuf,
    pub weights: PathBuf,
    pub tokenizer: PathBuf,
}

impl ModelFiles {
    /// `config.json`, `model.safetensors` and `tokenizer.json` of `dir`;
    /// [`Error::Model`] naming the directory and what it lacks otherwise.
    pub fn locate(dir: &Path) -> Result<Self> {
        if !dir.is_dir() {
            return Err(Error::Model {
                message: format!("model directory `{}` does not exist", dir.display()),
            });
        }
        let required = |name: &str| -> Result<PathBuf> {
            let p = dir.join(name);
            if p.is_file() {
                return Ok(p);
            }
            let hint = if name == "model.safetensors" && dir.join("pytorch_model.bin").is_file() {
                " (it has only pytorch_model.bin; convert it to safetensors)"
            } else {
                ""
            };
            Err(Error::Model {
                message: format!("model directory `{}` lacks {name}{hint}", dir.display()),
            })
        };
        Ok(Self {
            config: required("config.json")?,
            weights: required("model.safetensors")?,
            tokenizer: required("tokenizer.json")?,
        })
    }
}

/// Loads `tokenizer.json` without padding, truncating to `max_length`
/// tokens (special tokens included; pairs longest-first, as Hugging Face does).
pub(crate) fn load_tokenizer(path: &Path, max_length: usize) -> Result<Tokenizer> {
    let mut tokenizer = Tokenizer::from_file(path)
        .map_err(|e| model_error(format!("cannot load `{}`: {e}", path.display())))?;
    tokenizer.with_padding(None);
    tokenizer
        .with_truncation(Some(TruncationParams {
            max_length,
            strategy: TruncationStrategy::LongestFirst,
            stride: 0,
            direction: TruncationDirection::Right,
        }))
        .map_err(|e| model_error(format!("cannot configure truncation: {e}")))?;
    Ok(tokenizer)
}

/// Memory-maps a safetensors file; tensors are converted to `f32` when read.
pub(crate) fn open_weights(weights: &Path) -> Result<VarBuilder<'static>> {
    // SAFETY: the file is memory-mapped read-only; candle copies every
    // tensor out of the map while loading. A file modified by another
    // process during loading is the caller's problem, as for any mmap.
    unsafe {
        VarBuilder::from_mmaped_safetensors(&[weights], DType::F32, &Device::Cpu)
            .map_err(model_err(weights))
    }
}

/// Reads `{prefix}.weight` (`[out, in]`, PyTorch's layout) and `{prefix}.bias`
/// into a packed linear layer.
pub(crate) fn load_linear(
    vb: &VarBuilder,
    prefix: &str,
    out: usize,
    inp: usize,
    weights: &Path,
) -> Result<PackedLinear> {
    let err = model_err(weights);
    let w = vb
        .get((out, inp), &format!("{prefix}.weight"))
        .map_err(&err)?;
    let b = vb.get(out, &format!("{prefix}.bias")).map_err(&err)?;
    Ok(PackedLinear::from_out_in(
        &to_vec(w, weights)?,
        &to_vec(b, weights)?,
        inp,
        out,
    ))
}

/// A tensor's values, row-major.
pub(crate) fn to_vec(t: Tensor, weights: &Path) -> Result<Vec<f32>> {
    t.flatten_all()
        .and_then(|t| t.to_vec1::<f32>())
        .map_err(model_err(weights))
}

/// The prefix of the encoder's tensors: `bert.` in task models
/// (`BertForSequenceClassification`), none in bare encoders.
pub(crate) fn encoder_prefix(vb: &VarBuilder) -> &'static str {
    if vb.contains_tensor("bert.embeddings.word_embeddings.weight") {
        "bert"
    } else {
        ""
    }
}

impl Bert {
    /// Loads the encoder from a safetensors file (memory-mapped; any float
    /// dtype is converted to `f32`). Accepts tensor names with or without a
    /// `bert.` prefix.
    pub fn load(weights: &Path, cfg: &BertConfig, config_path: &Path) -> Result<Self> {
        let err = model_err(weights);
        let root = open_weights(weights)?;
        let vb = match encoder_prefix(&root) {
            "" => root,
            prefix => root.pp(prefix),
        };
        let (h, i) = (cfg.hidden_size, cfg.intermediate_size);
        let vec = |t: Tensor| to_vec(t, weights);
        let linear =
            |prefix: &str, out: usize, inp: usize| load_linear(&vb, prefix, out, inp, weights);
        let emb = vb.pp("embeddings");
        let word = vec(emb
            .get((cfg.vocab_size, h), "word_embeddings.weight")
            .map_err(&err)?)?;
        let position = vec(emb
            .get(
                (cfg.max_position_embeddings, h),
                "position_embeddings.weight",
            )
            .map_err(&err)?)?;
        let token_type = vec(emb
            .get((cfg.type_vocab_size, h), "token_type_embeddings.weight")
            .map_err(&err)?)?;
        let emb_ln_g = vec(emb.get(h, "LayerNorm.weight").map_err(&err)?)?;
        let emb_ln_b = vec(emb.get(h, "LayerNorm.bias").map_err(&err)?)?;
        let mut layers = Vec::with_capacity(cfg.num_hidden_layers);
        for l in 0..cfg.num_hidden_layers {
            let p = format!("encoder.layer.{l}");
            let w = |name: &str, shape: &[usize]| -> Result<Tensor> {
                vb.get(shape, &format!("{p}.{name}")).map_err(&err)
            };
            let qkv = Tensor::cat(
                &[
                    w("attention.self.query.weight", &[h, h])?,
                    w("attention.self.key.weight", &[h, h])?,
                    w("attention.self.value.weight", &[h, h])?,
                ],
                0,
            )
            .map_err(&err)?;
            let qkv_b = Tensor::cat(
                &[
                    w("attention.self.query.bias", &[h])?,
                    w("attention.self.key.bias", &[h])?,
                    w("attention.self.value.bias", &[h])?,
                ],
                0,
            )
            .map_err(&err)?;
            layers.push(Layer {
                qkv: PackedLinear::from_out_in(&vec(qkv)?, &vec(qkv_b)?, h, 3 * h),
                out: linear(&format!("{p}.attention.output.dense"), h, h)?,
                ln1_g: vec(w("attention.output.LayerNorm.weight", &[h])?)?,
                ln1_b: vec(w("attention.output.LayerNorm.bias", &[h])?)?,
                ff1: linear(&format!("{p}.intermediate.dense"), i, h)?,
                ff2: linear(&format!("{p}.output.dense"), h, i)?,
                ln2_g: vec(w("output.LayerNorm.weight", &[h])?)?,
                ln2_b: vec(w("output.LayerNorm.bias", &[h])?)?,
            });
        }
        Ok(Self {
            hidden: h,
            heads: cfg.num_attention_heads,
            intermediate: i,
            vocab: cfg.vocab_size,
            max_positions: cfg.max_position_embeddings,
            eps: cfg.layer_norm_eps as f32,
            act: cfg.activation(config_path)?,
            word,
            position,
            token_type,
            type_vocab: cfg.type_vocab_size,
            emb_ln_g,
            emb_ln_b,
            layers,
        })
    }

    /// Width of the hidden states.
    pub fn hidden_size(&self) -> usize {
        self.hidden
    }

    /// Runs the encoder over packed sequences: `ids` holds the token ids of
    /// every sequence back to back, `seqs` the `(first token, length)` of
    /// each, `type_ids` the segment of every token (empty = all segment 0).
    /// Returns the last hidden state, `[ids.len(), hidden]` row-major.
    ///
    /// `par` spreads each step over the current rayon pool (for one small
    /// batch); without it the call is single-threaded (for batches run side
    /// by side). Errors on an out-of-range id or an over-long sequence.
    pub fn forward(
        &self,
        ids: &[u32],
        type_ids: &[u32],
        seqs: &[(usize, usize)],
        par: bool,
    ) -> Result<Vec<f32>> {
        self.forward_layers(ids, type_ids, seqs, self.layers.len(), par)
    }

    /// [`forward`](Self::forward) through the embeddings and the first
    /// `layers` encoder layers only (all of them when `layers` is larger):
    /// the hidden state a trainer of the remaining layers starts from.
    pub fn forward_layers(
        &self,
        ids: &[u32],
        type_ids: &[u32],
        seqs: &[(usize, usize)],
        layers: usize,
        par: bool,
    ) -> Result<Vec<f32>> {
        let (h, n) = (self.hidden, ids.len());
        if !type_ids.is_empty() && type_ids.len() != n {
            return Err(Error::Model {
                message: format!("{} token type ids for {n} tokens", type_ids.len()),
            });
        }
        let mut x = vec![0f32; n * h];
        for &(start, len) in seqs {
            if len > self.max_positions {
                return Err(Error::invalid_input(format!(
                    "sequence of {len} tokens exceeds the model's {} positions",
                    self.max_positions
                )));
            }
            for p in 0..len {
                let id = ids[start + p] as usize;
                if id >= self.vocab {
                    return Err(Error::Model {
                        message: format!(
                            "token id {id} is outside the model's vocabulary of {} (tokenizer and weights disagree)",
                            self.vocab
                        ),
                    });
                }
                let t = type_ids.get(start + p).map_or(0, |&t| t as usize);
                if t >= self.type_vocab {
                    return Err(Error::Model {
                        message: format!(
                            "token type {t} is outside the model's {} token types",
                            self.type_vocab
                        ),
                    });
                }
                let row = &mut x[(start + p) * h..(start + p + 1) * h];
                let w = &self.word[id * h..(id + 1) * h];
                let pe = &self.position[p * h..(p + 1) * h];
                let te = &self.token_type[t * h..(t + 1) * h];
                for (((o, a), b), c) in row.iter_mut().zip(w).zip(pe).zip(te) {
                    *o = a + b + c;
                }
            }
        }
        kernels::add_layer_norm(&mut x, &[], &self.emb_ln_g, &self.emb_ln_b, self.eps, par);

        let i = self.intermediate;
        let mut qkv = vec![0f32; n * 3 * h];
        let mut ctx = vec![0f32; n * h];
        let mut tmp = vec![0f32; n * h];
        let mut inter = vec![0f32; n * i];
        for layer in self.layers.iter().take(layers) {
            layer.qkv.forward(&mut qkv, &x, n, None, par);
            kernels::attention(&mut ctx, &qkv, seqs, h, self.heads, par);
            layer.out.forward(&mut tmp, &ctx, n, None, par);
            kernels::add_layer_norm(&mut x, &tmp, &layer.ln1_g, &layer.ln1_b, self.eps, par);
            layer.ff1.forward(&mut inter, &x, n, Some(self.act), par);
            layer.ff2.forward(&mut tmp, &inter, n, None, par);
            kernels::add_layer_norm(&mut x, &tmp, &layer.ln2_g, &layer.ln2_b, self.eps, par);
        }
        Ok(x)
    }
}

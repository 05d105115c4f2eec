//! The trainable top of a BERT encoder: its last layers as candle [`Var`]s,
//! with a differentiable forward pass over padded batches and the model's
//! pooling.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor, Var, D};
use lobster_vector_core::Result;

use crate::embedder::Pooling;
use crate::model::{encoder_prefix, model_error, open_weights, BertConfig};

use super::candle_err;

/// The tensor names of one encoder layer, relative to `encoder.layer.{l}.`.
const LAYER_TENSORS: [&str; 16] = [
    "attention.self.query.weight",
    "attention.self.query.bias",
    "attention.self.key.weight",
    "attention.self.key.bias",
    "attention.self.value.weight",
    "attention.self.value.bias",
    "attention.output.dense.weight",
    "attention.output.dense.bias",
    "attention.output.LayerNorm.weight",
    "attention.output.LayerNorm.bias",
    "intermediate.dense.weight",
    "intermediate.dense.bias",
    "output.dense.weight",
    "output.dense.bias",
    "output.LayerNorm.weight",
    "output.LayerNorm.bias",
];

/// One layer's parameters, in [`LAYER_TENSORS`] order.
struct TrainableLayer {
    vars: Vec<Var>,
}

impl TrainableLayer {
    fn var(&self, i: usize) -> &Tensor {
        self.vars[i].as_tensor()
    }
}

/// The last `layers.len()` encoder layers of a BERT model, trainable.
pub(crate) struct TrainableTop {
    /// Index of the first trainable layer (= number of frozen layers).
    pub first: usize,
    layers: Vec<TrainableLayer>,
    /// The full tensor name of every var, for saving.
    names: Vec<(String, Var)>,
    heads: usize,
    eps: f64,
    gelu_tanh: bool,
    pooling: Pooling,
}

impl TrainableTop {
    /// Loads the last `train_layers` layers of the model whose weights are
    /// `weights` (all layers when `train_layers` is at least their number).
    pub fn load(
        weights: &Path,
        cfg: &BertConfig,
        train_layers: usize,
        pooling: Pooling,
    ) -> Result<Self> {
        if pooling == Pooling::Max {
            return Err(model_error(
                "adapting a model with max pooling is not supported (mean or cls)".into(),
            ));
        }
        let gelu_tanh = match cfg.hidden_act.as_str() {
            "gelu" => false,
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => true,
            other => {
                return Err(model_error(format!(
                    "adapting a model with hidden_act `{other}` is not supported (gelu variants)"
                )))
            }
        };
        let root = open_weights(weights)?;
        let prefix = match encoder_prefix(&root) {
            "" => String::new(),
            p => format!("{p}."),
        };
        let total = cfg.num_hidden_layers;
        let first = total.saturating_sub(train_layers);
        let mut layers = Vec::new();
        let mut names = Vec::new();
        for l in first..total {
            let mut vars = Vec::with_capacity(LAYER_TENSORS.len());
            for t in LAYER_TENSORS {
                let name = format!("{prefix}encoder.layer.{l}.{t}");
                let shape = tensor_shape(t, cfg);
                let tensor = root
                    .get(shape.as_slice(), &name)
                    .map_err(|e| candle_err(&format!("cannot read `{name}`"), e))?;
                let var = Var::from_tensor(&tensor).map_err(|e| candle_err("var", e))?;
                names.push((name, var.clone()));
                vars.push(var);
            }
            layers.push(TrainableLayer { vars });
        }
        Ok(Self {
            first,
            layers,
            names,
            heads: cfg.num_attention_heads,
            eps: cfg.layer_norm_eps,
            gelu_tanh,
            pooling,
        })
    }

    /// Every trainable parameter.
    pub fn vars(&self) -> Vec<Var> {
        self.names.iter().map(|(_, v)| v.clone()).collect()
    }

    /// The trained tensors by their name in the model file.
    pub fn named_tensors(&self) -> HashMap<String, Tensor> {
        self.names
            .iter()
            .map(|(n, v)| (n.clone(), v.as_tensor().clone()))
            .collect()
    }

    /// Pooled, L2-normalised sentence vectors `[batch, hidden]` from the
    /// frozen hidden states `x` (`[batch, tokens, hidden]`, padded) and the
    /// token mask (`[batch, tokens]`, 1 for a real token, 0 for padding).
    pub fn forward(&self, x: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
        let (b, t, h) = x.dims3()?;
        let heads = self.heads;
        let dh = h / heads;
        // 0 where a key is a real token, a large negative number where it is padding.
        let key_bias = ((mask.ones_like()? - mask)? * -10_000.0)?.reshape((b, 1, 1, t))?;
        let scale = 1.0 / (dh as f64).sqrt();
        let mut x = x.clone();
        for layer in &self.layers {
            let flat = x.reshape((b * t, h))?;
            let linear = |input: &Tensor, w: usize| -> candle_core::Result<Tensor> {
                input
                    .matmul(&layer.var(w).t()?)?
                    .broadcast_add(layer.var(w + 1))
            };
            let split = |y: Tensor| -> candle_core::Result<Tensor> {
                y.reshape((b, t, heads, dh))?.transpose(1, 2)?.contiguous()
            };
            let q = split(linear(&flat, 0)?)?;
            let k = split(linear(&flat, 2)?)?;
            let v = split(linear(&flat, 4)?)?;
            let scores = (q.matmul(&k.t()?.contiguous()?)? * scale)?.broadcast_add(&key_bias)?;
            let probs = candle_nn::ops::softmax(&scores, D::Minus1)?;
            let ctx = probs
                .matmul(&v)?
                .transpose(1, 2)?
                .contiguous()?
                .reshape((b * t, h))?;
            let attn = linear(&ctx, 6)?;
            let x1 = layer_norm(&(attn + &flat)?, layer.var(8), layer.var(9), self.eps)?;
            let inter = linear(&x1, 10)?;
            let inter = if self.gelu_tanh {
                inter.gelu()?
            } else {
                inter.gelu_erf()?
            };
            let out = linear(&inter, 12)?;
            let x2 = layer_norm(&(out + &x1)?, layer.var(14), layer.var(15), self.eps)?;
            x = x2.reshape((b, t, h))?;
        }
        let pooled = match self.pooling {
            Pooling::Cls => x.narrow(1, 0, 1)?.squeeze(1)?,
            _ => {
                let m = mask.unsqueeze(2)?;
                let sum = x.broadcast_mul(&m)?.sum(1)?;
                sum.broadcast_div(&m.sum(1)?)?
            }
        };
        let norm = pooled
            .sqr()?
            .sum_keepdim(1)?
            .sqrt()?
            .clamp(1e-12, f64::MAX)?;
        pooled.broadcast_div(&norm)
    }
}

/// Layer norm from differentiable primitives.
fn layer_norm(x: &Tensor, g: &Tensor, b: &Tensor, eps: f64) -> candle_core::Result<Tensor> {
    let mean = x.mean_keepdim(D::Minus1)?;
    let centred = x.broadcast_sub(&mean)?;
    let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
    centred
        .broadcast_div(&(var + eps)?.sqrt()?)?
        .broadcast_mul(g)?
        .broadcast_add(b)
}

/// The shape of tensor `name` (relative to its layer) in a model of `cfg`.
fn tensor_shape(name: &str, cfg: &BertConfig) -> Vec<usize> {
    let (h, i) = (cfg.hidden_size, cfg.intermediate_size);
    match name {
        "intermediate.dense.weight" => vec![i, h],
        "intermediate.dense.bias" => vec![i],
        "output.dense.weight" => vec![h, i],
        n if n.ends_with(".weight") && !n.contains("LayerNorm") => vec![h, h],
        _ => vec![h],
    }
}

/// A padded batch: hidden states `[batch, tokens, hidden]` and mask
/// `[batch, tokens]` from packed rows (`hidden` is `[Σ len, width]`).
pub(crate) fn pad_batch(
    hidden: &[f32],
    seqs: &[(usize, usize)],
    width: usize,
) -> candle_core::Result<(Tensor, Tensor)> {
    let t = seqs.iter().map(|s| s.1).max().unwrap_or(1).max(1);
    let b = seqs.len();
    let mut x = vec![0f32; b * t * width];
    let mut mask = vec![0f32; b * t];
    for (row, &(start, len)) in seqs.iter().enumerate() {
        x[row * t * width..(row * t + len) * width]
            .copy_from_slice(&hidden[start * width..(start + len) * width]);
        mask[row * t..row * t + len]
            .iter_mut()
            .for_each(|m| *m = 1.0);
    }
    Ok((
        Tensor::from_vec(x, (b, t, width), &Device::Cpu)?,
        Tensor::from_vec(mask, (b, t), &Device::Cpu)?.to_dtype(DType::F32)?,
    ))
}

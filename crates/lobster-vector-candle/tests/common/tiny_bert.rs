//! A tiny BERT with seeded weights and a WordPiece tokenizer, written to a
//! directory as Hugging Face lays one out, for the tests of this crate.

#![allow(dead_code, clippy::unwrap_used)] // each test uses part of it

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use serde_json::json;

pub const HIDDEN: usize = 8;
pub const HEADS: usize = 2;
pub const LAYERS: usize = 2;
pub const INTER: usize = 16;
pub const POSITIONS: usize = 40;

/// A WordPiece vocabulary of a few medical words.
pub const VOCAB: &[&str] = &[
    "[PAD]",
    "[UNK]",
    "[CLS]",
    "[SEP]",
    "heart",
    "attack",
    "myocardial",
    "infarction",
    "asthma",
    "lung",
    "cancer",
    "disease",
    "of",
    "the",
    "t",
    "cell",
    "colon",
    "mucosa",
    "##s",
];

pub type Weights = HashMap<String, (Vec<usize>, Vec<f32>)>;

/// Deterministic pseudo-random weights in [-scale, scale].
pub struct Lcg(pub u64);

impl Lcg {
    pub fn next(&mut self, scale: f32) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
    }
}

/// Seeded weights of a BERT with `vocab` tokens and a `labels`-way
/// classifier head (no head when `labels` is 0).
pub fn tiny_weights(vocab: usize, labels: usize, seed: u64) -> Weights {
    let mut rng = Lcg(seed);
    let mut w = Weights::new();
    let mut put = |name: &str, shape: &[usize], scale: f32, offset: f32| {
        let n: usize = shape.iter().product();
        let values = (0..n).map(|_| offset + rng.next(scale)).collect();
        w.insert(name.to_string(), (shape.to_vec(), values));
    };
    let h = HIDDEN;
    put(
        "bert.embeddings.word_embeddings.weight",
        &[vocab, h],
        1.0,
        0.0,
    );
    put(
        "bert.embeddings.position_embeddings.weight",
        &[POSITIONS, h],
        0.5,
        0.0,
    );
    put(
        "bert.embeddings.token_type_embeddings.weight",
        &[2, h],
        1.0,
        0.0,
    );
    put("bert.embeddings.LayerNorm.weight", &[h], 0.2, 1.0);
    put("bert.embeddings.LayerNorm.bias", &[h], 0.2, 0.0);
    for l in 0..LAYERS {
        let p = format!("bert.encoder.layer.{l}");
        for m in ["query", "key", "value"] {
            put(&format!("{p}.attention.self.{m}.weight"), &[h, h], 0.6, 0.0);
            put(&format!("{p}.attention.self.{m}.bias"), &[h], 0.2, 0.0);
        }
        put(
            &format!("{p}.attention.output.dense.weight"),
            &[h, h],
            0.5,
            0.0,
        );
        put(&format!("{p}.attention.output.dense.bias"), &[h], 0.2, 0.0);
        put(
            &format!("{p}.attention.output.LayerNorm.weight"),
            &[h],
            0.2,
            1.0,
        );
        put(
            &format!("{p}.attention.output.LayerNorm.bias"),
            &[h],
            0.2,
            0.0,
        );
        put(
            &format!("{p}.intermediate.dense.weight"),
            &[INTER, h],
            0.5,
            0.0,
        );
        put(&format!("{p}.intermediate.dense.bias"), &[INTER], 0.2, 0.0);
        put(&format!("{p}.output.dense.weight"), &[h, INTER], 0.4, 0.0);
        put(&format!("{p}.output.dense.bias"), &[h], 0.2, 0.0);
        put(&format!("{p}.output.LayerNorm.weight"), &[h], 0.2, 1.0);
        put(&format!("{p}.output.LayerNorm.bias"), &[h], 0.2, 0.0);
    }
    put("bert.pooler.dense.weight", &[h, h], 0.6, 0.0);
    put("bert.pooler.dense.bias", &[h], 0.2, 0.0);
    if labels > 0 {
        put("classifier.weight", &[labels, h], 1.0, 0.0);
        put("classifier.bias", &[labels], 0.3, 0.0);
    }
    w
}

/// Writes a complete model directory: config, weights, WordPiece tokenizer.
pub fn write_model(dir: &Path, weights: &Weights, vocab: &[&str], labels: usize) {
    let id2label: serde_json::Map<String, serde_json::Value> = (0..labels)
        .map(|i| (i.to_string(), json!(format!("LABEL_{i}"))))
        .collect();
    let config = json!({
        "architectures": ["BertForSequenceClassification"],
        "model_type": "bert",
        "vocab_size": vocab.len(),
        "hidden_size": HIDDEN,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS,
        "intermediate_size": INTER,
        "hidden_act": "gelu_new",
        "max_position_embeddings": POSITIONS,
        "type_vocab_size": 2,
        "layer_norm_eps": 1e-12,
        "id2label": id2label,
    });
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    let vocab: serde_json::Map<String, serde_json::Value> = vocab
        .iter()
        .enumerate()
        .map(|(i, t)| (t.to_string(), json!(i)))
        .collect();
    let special = |id: usize, t: &str| json!({"id": id, "content": t, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true});
    let tokenizer = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [special(0, "[PAD]"), special(1, "[UNK]"), special(2, "[CLS]"), special(3, "[SEP]")],
        "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true, "strip_accents": null, "lowercase": true},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {"type": "BertProcessing", "sep": ["[SEP]", 3], "cls": ["[CLS]", 2]},
        "decoder": null,
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 100, "vocab": vocab},
    });
    std::fs::write(dir.join("tokenizer.json"), tokenizer.to_string()).unwrap();
    let tensors: HashMap<String, Tensor> = weights
        .iter()
        .map(|(k, (shape, v))| {
            (
                k.clone(),
                Tensor::from_vec(v.clone(), shape.as_slice(), &Device::Cpu).unwrap(),
            )
        })
        .collect();
    candle_core::safetensors::save(&tensors, dir.join("model.safetensors")).unwrap();
}

/// Makes `dir` a sentence-transformers model: mean pooling, then L2
/// normalisation.
pub fn write_sentence_modules(dir: &Path) {
    let modules = json!([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]);
    std::fs::write(dir.join("modules.json"), modules.to_string()).unwrap();
    std::fs::create_dir_all(dir.join("1_Pooling")).unwrap();
    std::fs::create_dir_all(dir.join("2_Normalize")).unwrap();
    let pooling = json!({"word_embedding_dimension": HIDDEN, "pooling_mode_mean_tokens": true});
    std::fs::write(dir.join("1_Pooling/config.json"), pooling.to_string()).unwrap();
}

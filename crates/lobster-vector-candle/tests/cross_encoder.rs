//! The cross-encoder on a tiny BERT classifier this test writes with seeded
//! weights, checked against the forward pass written out step by step here.

#![allow(clippy::unwrap_used)] // test helpers fail loudly

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use lobster_vector_candle::{CrossEncoder, CrossEncoderOptions};
use lobster_vector_core::{Error, Reranker};
use serde_json::json;

const HIDDEN: usize = 8;
const HEADS: usize = 2;
const LAYERS: usize = 2;
const INTER: usize = 16;
const POSITIONS: usize = 40;
const VOCAB: &[&str] = &[
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

type Weights = HashMap<String, (Vec<usize>, Vec<f32>)>;

/// Deterministic pseudo-random weights in [-scale, scale].
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, scale: f32) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
    }
}

fn tiny_weights(labels: usize, seed: u64) -> Weights {
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
        &[VOCAB.len(), h],
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
    put("classifier.weight", &[labels, h], 1.0, 0.0);
    put("classifier.bias", &[labels], 0.3, 0.0);
    w
}

/// Writes a complete model directory: config, weights, WordPiece tokenizer.
fn write_model(dir: &Path, weights: &Weights, labels: usize) {
    let id2label: serde_json::Map<String, serde_json::Value> = (0..labels)
        .map(|i| (i.to_string(), json!(format!("LABEL_{i}"))))
        .collect();
    let config = json!({
        "architectures": ["BertForSequenceClassification"],
        "model_type": "bert",
        "vocab_size": VOCAB.len(),
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
    let vocab: serde_json::Map<String, serde_json::Value> = VOCAB
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

fn model(
    labels: usize,
    options: CrossEncoderOptions,
) -> (tempfile::TempDir, Weights, CrossEncoder) {
    let dir = tempfile::tempdir().unwrap();
    let w = tiny_weights(labels, 7 + labels as u64);
    write_model(dir.path(), &w, labels);
    let ce = CrossEncoder::load(dir.path(), options).unwrap();
    (dir, w, ce)
}

// ---- the reference forward pass, step by step, in f64 ----

fn get<'a>(w: &'a Weights, name: &str) -> &'a [f32] {
    &w[name].1
}

/// `y = W x + b` with `W` stored `[out, in]`.
fn linear(w: &Weights, prefix: &str, x: &[f64]) -> Vec<f64> {
    let (shape, weight) = &w[&format!("{prefix}.weight")];
    let bias = get(w, &format!("{prefix}.bias"));
    let (out, inp) = (shape[0], shape[1]);
    (0..out)
        .map(|o| {
            (0..inp)
                .map(|i| f64::from(weight[o * inp + i]) * x[i])
                .sum::<f64>()
                + f64::from(bias[o])
        })
        .collect()
}

fn layer_norm(w: &Weights, prefix: &str, x: &[f64]) -> Vec<f64> {
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    let (g, b) = (
        get(w, &format!("{prefix}.weight")),
        get(w, &format!("{prefix}.bias")),
    );
    x.iter()
        .enumerate()
        .map(|(i, v)| (v - mean) / (var + 1e-12).sqrt() * f64::from(g[i]) + f64::from(b[i]))
        .collect()
}

fn gelu_tanh(x: f64) -> f64 {
    0.5 * x * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x.powi(3))).tanh())
}

fn add(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(x, y)| x + y).collect()
}

/// Logits of one encoded pair.
fn reference_logits(w: &Weights, ids: &[u32], types: &[u32]) -> Vec<f64> {
    let h = HIDDEN;
    let row = |name: &str, i: usize| -> Vec<f64> {
        get(w, name)[i * h..(i + 1) * h]
            .iter()
            .map(|v| f64::from(*v))
            .collect()
    };
    let mut x: Vec<Vec<f64>> = ids
        .iter()
        .zip(types)
        .enumerate()
        .map(|(p, (&id, &t))| {
            let e = add(
                &add(
                    &row("bert.embeddings.word_embeddings.weight", id as usize),
                    &row("bert.embeddings.position_embeddings.weight", p),
                ),
                &row("bert.embeddings.token_type_embeddings.weight", t as usize),
            );
            layer_norm(w, "bert.embeddings.LayerNorm", &e)
        })
        .collect();
    let dh = h / HEADS;
    for l in 0..LAYERS {
        let p = format!("bert.encoder.layer.{l}");
        let proj = |m: &str, x: &Vec<Vec<f64>>| -> Vec<Vec<f64>> {
            x.iter()
                .map(|t| linear(w, &format!("{p}.attention.self.{m}"), t))
                .collect()
        };
        let (q, k, v) = (proj("query", &x), proj("key", &x), proj("value", &x));
        let mut ctx = vec![vec![0.0; h]; x.len()];
        for head in 0..HEADS {
            let r = head * dh..(head + 1) * dh;
            for i in 0..x.len() {
                let scores: Vec<f64> = (0..x.len())
                    .map(|j| r.clone().map(|c| q[i][c] * k[j][c]).sum::<f64>() / (dh as f64).sqrt())
                    .collect();
                let max = scores.iter().cloned().fold(f64::MIN, f64::max);
                let exp: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                let total: f64 = exp.iter().sum();
                for c in r.clone() {
                    ctx[i][c] = (0..x.len()).map(|j| exp[j] / total * v[j][c]).sum();
                }
            }
        }
        x = x
            .iter()
            .zip(&ctx)
            .map(|(t, c)| {
                let attn = linear(w, &format!("{p}.attention.output.dense"), c);
                let t = layer_norm(
                    w,
                    &format!("{p}.attention.output.LayerNorm"),
                    &add(t, &attn),
                );
                let inter: Vec<f64> = linear(w, &format!("{p}.intermediate.dense"), &t)
                    .into_iter()
                    .map(gelu_tanh)
                    .collect();
                let out = linear(w, &format!("{p}.output.dense"), &inter);
                layer_norm(w, &format!("{p}.output.LayerNorm"), &add(&t, &out))
            })
            .collect();
    }
    let pooled: Vec<f64> = linear(w, "bert.pooler.dense", &x[0])
        .into_iter()
        .map(f64::tanh)
        .collect();
    linear(w, "classifier", &pooled)
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

const QUERY: &str = "heart attack";
const DOCS: &[&str] = &[
    "myocardial infarction",
    "asthma",
    "heart disease of the lung",
    "colon mucosa",
    "t cells",
    "lung cancer",
];

#[test]
fn pair_encoding_has_segments_and_truncates_longest_first() {
    let (_d, _w, ce) = model(1, CrossEncoderOptions::default());
    let (ids, types) = ce
        .encode_pair("Heart attack", "myocardial infarction")
        .unwrap();
    assert_eq!(ids, vec![2, 4, 5, 3, 6, 7, 3]);
    assert_eq!(types, vec![0, 0, 0, 0, 1, 1, 1]);

    let (_d, _w, short) = model(
        1,
        CrossEncoderOptions {
            max_length: Some(8),
            ..CrossEncoderOptions::default()
        },
    );
    assert_eq!(short.max_length(), 8);
    let long_doc = "heart disease of the lung cancer of the colon mucosa";
    let (ids, types) = short.encode_pair("heart attack", long_doc).unwrap();
    // 8 tokens: [CLS] + 2 query + [SEP] + 3 document + [SEP]; the longer side gave way.
    assert_eq!(ids, vec![2, 4, 5, 3, 4, 11, 12, 3]);
    assert_eq!(types, vec![0, 0, 0, 0, 1, 1, 1, 1]);
    // Both sides long: both are cut, the longer one first.
    let (ids, _) = short.encode_pair(long_doc, long_doc).unwrap();
    assert_eq!(ids, vec![2, 4, 11, 3, 4, 11, 12, 3]);
}

#[test]
fn logits_match_the_step_by_step_forward_pass() {
    for labels in [1, 2] {
        for batch_size in [1, 2, 64] {
            let (_d, w, ce) = model(
                labels,
                CrossEncoderOptions {
                    batch_size,
                    ..CrossEncoderOptions::default()
                },
            );
            let got = ce.logits(QUERY, DOCS).unwrap();
            assert_eq!(got.len(), DOCS.len());
            for (doc, logit) in DOCS.iter().zip(&got) {
                let (ids, types) = ce.encode_pair(QUERY, doc).unwrap();
                let r = reference_logits(&w, &ids, &types);
                let want = if labels == 1 { r[0] } else { r[1] - r[0] };
                assert!(
                    (f64::from(*logit) - want).abs() < 1e-4,
                    "labels {labels}, batch {batch_size}, `{doc}`: {logit} vs {want}"
                );
            }
            // Scores are the sigmoid of the logit (for two labels: softmax of label 1).
            let scores = ce.score(QUERY, DOCS).unwrap();
            for (s, l) in scores.iter().zip(&got) {
                assert!((f64::from(*s) - sigmoid(f64::from(*l))).abs() < 1e-6);
                assert!((0.0..=1.0).contains(s));
            }
        }
    }
}

#[test]
fn rerank_sorts_cuts_and_handles_empty_and_single() {
    let (_d, w, ce) = model(1, CrossEncoderOptions::default());
    let want: Vec<f64> = DOCS
        .iter()
        .map(|d| {
            let (ids, types) = ce.encode_pair(QUERY, d).unwrap();
            sigmoid(reference_logits(&w, &ids, &types)[0])
        })
        .collect();
    let mut order: Vec<usize> = (0..DOCS.len()).collect();
    order.sort_by(|&a, &b| want[b].total_cmp(&want[a]));
    let ranking = ce.rerank(QUERY, DOCS, 3).unwrap();
    assert_eq!(ranking.iter().map(|r| r.0).collect::<Vec<_>>(), order[..3]);
    assert!(ranking.windows(2).all(|p| p[0].1 >= p[1].1));
    assert!(ce.rerank(QUERY, &[], 3).unwrap().is_empty());
    assert_eq!(ce.rerank(QUERY, &["asthma"], 3).unwrap(), vec![(0, 1.0)]);
    assert_eq!(ce.name(), "cross_encoder");
}

#[test]
fn a_document_scores_the_same_alone_or_in_a_batch() {
    let (_d, _w, ce) = model(1, CrossEncoderOptions::default());
    let together = ce.logits(QUERY, DOCS).unwrap();
    for (doc, l) in DOCS.iter().zip(&together) {
        let alone = ce.logits(QUERY, &[doc]).unwrap()[0];
        assert!((alone - l).abs() < 1e-5, "{doc}: {alone} vs {l}");
    }
}

#[test]
fn broken_directories_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = tiny_weights(1, 1);
    w.remove("classifier.weight");
    write_model(dir.path(), &w, 1);
    match CrossEncoder::load(dir.path(), CrossEncoderOptions::default()) {
        Err(Error::Model { message }) => assert!(message.contains("classifier"), "{message}"),
        other => panic!("expected a model error, got {other:?}"),
    }

    let dir = tempfile::tempdir().unwrap();
    write_model(dir.path(), &tiny_weights(3, 1), 3);
    match CrossEncoder::load(dir.path(), CrossEncoderOptions::default()) {
        Err(Error::Model { message }) => assert!(message.contains("3 labels"), "{message}"),
        other => panic!("expected a model error, got {other:?}"),
    }

    let dir = tempfile::tempdir().unwrap();
    write_model(dir.path(), &tiny_weights(1, 1), 1);
    std::fs::remove_file(dir.path().join("tokenizer.json")).unwrap();
    match CrossEncoder::load(dir.path(), CrossEncoderOptions::default()) {
        Err(Error::Model { message }) => assert!(message.contains("tokenizer.json"), "{message}"),
        other => panic!("expected a model error, got {other:?}"),
    }
}

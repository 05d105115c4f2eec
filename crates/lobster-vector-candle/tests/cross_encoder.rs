//! The cross-encoder on a tiny BERT classifier this test writes with seeded
//! weights, checked against the forward pass written out step by step here.

#![allow(clippy::unwrap_used)] // test helpers fail loudly

mod common;

use common::tiny_bert::{tiny_weights, write_model, Weights, HEADS, HIDDEN, LAYERS, VOCAB};
use lobster_vector_candle::{CrossEncoder, CrossEncoderOptions};
use lobster_vector_core::{Error, Reranker};

fn model(
    labels: usize,
    options: CrossEncoderOptions,
) -> (tempfile::TempDir, Weights, CrossEncoder) {
    let dir = tempfile::tempdir().unwrap();
    let w = tiny_weights(VOCAB.len(), labels, 7 + labels as u64);
    write_model(dir.path(), &w, VOCAB, labels);
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
    let mut w = tiny_weights(VOCAB.len(), 1, 1);
    w.remove("classifier.weight");
    write_model(dir.path(), &w, VOCAB, 1);
    match CrossEncoder::load(dir.path(), CrossEncoderOptions::default()) {
        Err(e @ (Error::Model { .. } | Error::ModelFiles { .. })) => {
            assert!(e.to_string().contains("classifier"), "{e}")
        }
        other => panic!("expected a model error, got {other:?}"),
    }

    let dir = tempfile::tempdir().unwrap();
    write_model(dir.path(), &tiny_weights(VOCAB.len(), 3, 1), VOCAB, 3);
    match CrossEncoder::load(dir.path(), CrossEncoderOptions::default()) {
        Err(Error::Model { message }) => assert!(message.contains("3 labels"), "{message}"),
        other => panic!("expected a model error, got {other:?}"),
    }

    let dir = tempfile::tempdir().unwrap();
    write_model(dir.path(), &tiny_weights(VOCAB.len(), 1, 1), VOCAB, 1);
    std::fs::remove_file(dir.path().join("tokenizer.json")).unwrap();
    match CrossEncoder::load(dir.path(), CrossEncoderOptions::default()) {
        Err(Error::Model { message }) => assert!(message.contains("tokenizer.json"), "{message}"),
        other => panic!("expected a model error, got {other:?}"),
    }
}

//! Adapting a tiny BERT this test writes: the loss falls, names of one
//! concept that were never trained on come closer, the result is a model
//! like any other, and a failed or interrupted run writes nothing.

#![allow(clippy::unwrap_used)] // test helpers fail loudly

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use common::tiny_bert::{tiny_weights, write_model, write_sentence_modules};
use lobster_vector_candle::{
    adapt, AdaptEvent, AdaptOptions, AdaptationManifest, BertEmbedder, BertOptions, SourceRecord,
    SynonymSet, MANIFEST_FILE,
};
use lobster_vector_core::{Embedder, Error};

const CONCEPTS: usize = 12;

/// Concept `k` is written with two of its three words `k{k}a`, `k{k}b`,
/// `k{k}c`.
fn word(k: usize, w: char) -> String {
    format!("k{k}{w}")
}

fn vocab() -> Vec<String> {
    let mut v: Vec<String> = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for k in 0..CONCEPTS {
        for w in ['a', 'b', 'c'] {
            v.push(word(k, w));
        }
    }
    v
}

/// The trained names: "a b" and "b c" of every concept.
fn training_sets() -> Vec<SynonymSet> {
    (0..CONCEPTS)
        .map(|k| SynonymSet {
            id: format!("X:{k}"),
            names: vec![
                format!("{} {}", word(k, 'a'), word(k, 'b')),
                format!("{} {}", word(k, 'b'), word(k, 'c')),
            ],
        })
        .collect()
}

/// The held-out name of concept `k`: "a c".
fn held_out(k: usize) -> String {
    format!("{} {}", word(k, 'a'), word(k, 'c'))
}

fn base_model(dir: &Path) {
    let vocab = vocab();
    let refs: Vec<&str> = vocab.iter().map(String::as_str).collect();
    write_model(dir, &tiny_weights(refs.len(), 0, 11), &refs, 0);
    write_sentence_modules(dir);
}

fn options() -> AdaptOptions {
    AdaptOptions {
        train_layers: 2,
        epochs: 40,
        batch_size: 6,
        learning_rate: 3e-3,
        weight_decay: 0.0,
        temperature: 0.1,
        seed: 5,
        ..AdaptOptions::default()
    }
}

fn sources() -> Vec<SourceRecord> {
    vec![SourceRecord {
        file: "tiny.obo".into(),
        sha256: "0".repeat(64),
    }]
}

fn run(
    base: &Path,
    out: &Path,
    options: &AdaptOptions,
) -> lobster_vector_core::Result<AdaptationManifest> {
    adapt(
        base,
        BertOptions::minilm().with_model_id("tiny/base"),
        &training_sets(),
        &sources(),
        options,
        out,
        &AtomicBool::new(false),
        &mut |_| {},
    )
    .map(|r| r.manifest)
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Mean cosine of each held-out name to its own concept's trained names,
/// minus its mean cosine to the other concepts' trained names.
fn margin(e: &BertEmbedder) -> f32 {
    let held: Vec<String> = (0..CONCEPTS).map(held_out).collect();
    let held = e
        .embed_documents(&held.iter().map(String::as_str).collect::<Vec<_>>())
        .unwrap();
    let trained: Vec<Vec<Vec<f32>>> = training_sets()
        .iter()
        .map(|s| {
            e.embed_documents(&s.names.iter().map(String::as_str).collect::<Vec<_>>())
                .unwrap()
        })
        .collect();
    let (mut own, mut other, mut n_other) = (0f32, 0f32, 0usize);
    for (k, h) in held.iter().enumerate() {
        for (j, names) in trained.iter().enumerate() {
            for v in names {
                if j == k {
                    own += dot(h, v) / 2.0;
                } else {
                    other += dot(h, v);
                    n_other += 1;
                }
            }
        }
    }
    own / CONCEPTS as f32 - other / n_other as f32
}

#[test]
fn the_loss_falls_and_held_out_names_come_closer() {
    let dir = tempfile::tempdir().unwrap();
    let (base, out) = (dir.path().join("base"), dir.path().join("adapted"));
    std::fs::create_dir(&base).unwrap();
    base_model(&base);
    let before = BertEmbedder::load(&base, BertOptions::minilm()).unwrap();
    let mut losses = Vec::new();
    let manifest = adapt(
        &base,
        BertOptions::minilm().with_model_id("tiny/base"),
        &training_sets(),
        &sources(),
        &options(),
        &out,
        &AtomicBool::new(false),
        &mut |e| {
            if let AdaptEvent::Step { loss, .. } = e {
                losses.push(loss);
            }
        },
    )
    .unwrap()
    .manifest;
    assert_eq!(manifest.steps, 80, "12 concepts in batches of 6, 40 epochs");
    assert_eq!(losses.len(), 80);
    let head: f32 = losses[..8].iter().sum::<f32>() / 8.0;
    let tail: f32 = losses[72..].iter().sum::<f32>() / 8.0;
    assert!(tail < 0.5 * head, "loss {head} -> {tail}");

    let after = BertEmbedder::load(&out, BertOptions::minilm()).unwrap();
    let (m0, m1) = (margin(&before), margin(&after));
    assert!(m1 > m0 + 0.2, "held-out margin {m0} -> {m1}");

    // A model like any other, with a model id of its own.
    assert_eq!(after.dimensions(), before.dimensions());
    assert!(
        after.model_id().starts_with("tiny/base+adapted-") && after.model_id().len() > 20,
        "{}",
        after.model_id()
    );
    assert_eq!(after.model_id(), manifest.model_id);
    let read = AdaptationManifest::read(&out).unwrap().unwrap();
    assert_eq!(read.base_model_id, "tiny/base");
    assert_eq!(read.sources, sources());
    assert_eq!(read.concepts, CONCEPTS);
    for f in [
        "config.json",
        "tokenizer.json",
        "modules.json",
        "1_Pooling/config.json",
        MANIFEST_FILE,
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
}

#[test]
fn the_same_seed_gives_the_same_model_and_a_reload_embeds_identically() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base");
    std::fs::create_dir(&base).unwrap();
    base_model(&base);
    let short = AdaptOptions {
        epochs: 3,
        ..options()
    };
    let (a, b, c) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("c"),
    );
    let ma = run(&base, &a, &short).unwrap();
    let mb = run(&base, &b, &short).unwrap();
    let mc = run(
        &base,
        &c,
        &AdaptOptions {
            seed: 6,
            ..short.clone()
        },
    )
    .unwrap();
    let weights = |d: &Path| std::fs::read(d.join("model.safetensors")).unwrap();
    assert_eq!(weights(&a), weights(&b));
    assert_eq!(ma.model_id, mb.model_id);
    assert_ne!(weights(&a), weights(&c));
    assert_ne!(ma.model_id, mc.model_id, "the seed is part of the model id");

    let texts: Vec<String> = (0..CONCEPTS).map(held_out).collect();
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    let first = BertEmbedder::load(&a, BertOptions::minilm()).unwrap();
    let second = BertEmbedder::load(&a, BertOptions::minilm()).unwrap();
    assert_eq!(
        first.embed_documents(&texts).unwrap(),
        second.embed_documents(&texts).unwrap()
    );
    let base_vectors = BertEmbedder::load(&base, BertOptions::minilm())
        .unwrap()
        .embed_documents(&texts)
        .unwrap();
    assert_ne!(first.embed_documents(&texts).unwrap(), base_vectors);
}

#[test]
fn an_interrupted_or_refused_run_leaves_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base");
    std::fs::create_dir(&base).unwrap();
    base_model(&base);
    let out = dir.path().join("adapted");
    let listing = || {
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };

    // Ctrl-C during training.
    let cancel = AtomicBool::new(false);
    let err = adapt(
        &base,
        BertOptions::minilm(),
        &training_sets(),
        &sources(),
        &options(),
        &out,
        &cancel,
        &mut |e| {
            if matches!(e, AdaptEvent::Step { step: 3, .. }) {
                cancel.store(true, Ordering::SeqCst);
            }
        },
    )
    .unwrap_err();
    assert!(matches!(err, Error::Interrupted), "{err}");
    assert_eq!(listing(), vec!["base"]);

    // Bad options, too few names, an existing output.
    let bad = AdaptOptions {
        batch_size: 1,
        ..options()
    };
    assert!(matches!(
        run(&base, &out, &bad),
        Err(Error::InvalidConfig { .. })
    ));
    let one_name = vec![SynonymSet {
        id: "X:1".into(),
        names: vec!["k1a".into(), " K1A ".into()],
    }];
    let err = adapt(
        &base,
        BertOptions::minilm(),
        &one_name,
        &sources(),
        &options(),
        &out,
        &AtomicBool::new(false),
        &mut |_| {},
    )
    .unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err}");
    assert_eq!(listing(), vec!["base"]);
    std::fs::create_dir(&out).unwrap();
    let err = run(&base, &out, &options()).unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0);
}

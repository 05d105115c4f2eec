//! The training forward pass against the inference kernels, and its
//! gradients against finite differences, on a tiny BERT.

#![allow(clippy::unwrap_used)]

#[path = "../../tests/common/tiny_bert.rs"]
mod tiny_bert;

use candle_core::Tensor;

use tiny_bert::VOCAB;

use super::encoder::{pad_batch, TrainableTop};
use crate::embedder::{BertEmbedder, BertOptions, Pooling};
use crate::model::BertConfig;
use lobster_vector_core::Embedder;

const TEXTS: &[&str] = &[
    "heart attack",
    "myocardial infarction of the heart",
    "lung cancer",
    "t cell",
    "cancer of the lung t cell heart",
];

fn tiny(dir: &std::path::Path) -> (BertEmbedder, BertConfig) {
    tiny_bert::write_model(dir, &tiny_bert::tiny_weights(VOCAB.len(), 0, 3), VOCAB, 0);
    tiny_bert::write_sentence_modules(dir);
    let e = BertEmbedder::load(dir, BertOptions::minilm()).unwrap();
    let cfg = BertConfig::from_file(&dir.join("config.json")).unwrap();
    (e, cfg)
}

/// The candle forward of `top` over `texts`, from the frozen layers below it.
fn train_forward(e: &BertEmbedder, top: &TrainableTop, texts: &[&str]) -> Tensor {
    let encodings = e.encode_texts(texts).unwrap();
    let refs: Vec<_> = encodings.iter().collect();
    let packed = crate::batch::pack(&refs, false);
    let hidden = e
        .bert()
        .forward_layers(&packed.ids, &[], &packed.seqs, top.first, false)
        .unwrap();
    let (x, mask) = pad_batch(&hidden, &packed.seqs, e.bert().hidden_size()).unwrap();
    top.forward(&x, &mask).unwrap()
}

#[test]
fn the_training_forward_pass_equals_the_inference_kernels() {
    let dir = tempfile::tempdir().unwrap();
    let (e, cfg) = tiny(dir.path());
    let expected = e.embed_documents(TEXTS).unwrap();
    for layers in [1, 2] {
        let top = TrainableTop::load(
            &dir.path().join("model.safetensors"),
            &cfg,
            layers,
            Pooling::Mean,
        )
        .unwrap();
        assert_eq!(top.first, 2 - layers);
        let got = train_forward(&e, &top, TEXTS).to_vec2::<f32>().unwrap();
        for (g, x) in got.iter().zip(&expected) {
            let diff = g
                .iter()
                .zip(x)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(
                diff < 1e-5,
                "{layers} trained layers: max difference {diff}"
            );
        }
    }
}

#[test]
fn gradients_match_finite_differences() {
    let dir = tempfile::tempdir().unwrap();
    let (e, cfg) = tiny(dir.path());
    let top = TrainableTop::load(
        &dir.path().join("model.safetensors"),
        &cfg,
        2,
        Pooling::Mean,
    )
    .unwrap();
    // A loss that depends on every output: similarities to fixed directions.
    let loss_of = |top: &TrainableTop| -> Tensor {
        let emb = train_forward(&e, top, TEXTS);
        let targets = Tensor::arange(0f32, emb.elem_count() as f32, &candle_core::Device::Cpu)
            .unwrap()
            .reshape(emb.shape())
            .unwrap()
            .sin()
            .unwrap();
        (emb * targets).unwrap().sum_all().unwrap()
    };
    let grads = loss_of(&top).backward().unwrap();
    let vars = top.vars();
    let eps = 1e-2f32;
    let mut checked = 0;
    // The query weight of the lower layer, a layer norm gain of the upper one,
    // and the output bias of the feed-forward block.
    for v in [&vars[0], &vars[16 + 8], &vars[16 + 13]] {
        let grad = grads
            .get(v.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let original = v
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        for i in [0, original.len() / 2, original.len() - 1] {
            let at = |delta: f32| {
                let mut w = original.clone();
                w[i] += delta;
                v.set(
                    &Tensor::from_vec(w, v.as_tensor().shape(), &candle_core::Device::Cpu).unwrap(),
                )
                .unwrap();
                loss_of(&top).to_scalar::<f32>().unwrap()
            };
            let numeric = (at(eps) - at(-eps)) / (2.0 * eps);
            at(0.0);
            let tolerance = 2e-3 + 0.05 * numeric.abs().max(grad[i].abs());
            assert!(
                (numeric - grad[i]).abs() < tolerance,
                "element {i}: autograd {} vs finite difference {numeric}",
                grad[i]
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 9);
}

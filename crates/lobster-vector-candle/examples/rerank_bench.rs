//! Cross-encoder throughput (pairs/s) on the MiniLM-L6 architecture
//! (ms-marco-MiniLM-L-6-v2's shape: 6 layers, 384 hidden, 12 heads, one
//! logit) with random weights and MiniLM's real tokenizer.
//!
//! ```text
//! cargo run --release -p lobster-vector-candle --example rerank_bench -- \
//!     [--threads 2] [--reps 5] [--batches 1,16,64]
//! ```
//!
//! For each batch size B, one `score` call ranks B ontology-style documents
//! against "heart attack"; prints the median pairs/s over `--reps` timed
//! rounds of 256 pairs, as one JSON line per batch size.

use std::collections::HashMap;
use std::time::Instant;

use candle_core::{Device, Tensor};
use lobster_vector_candle::{resolve_model_dir, CrossEncoder, CrossEncoderOptions};
use lobster_vector_core::Reranker;

const DOCS: &[&str] = &[
    "myocardial infarction (heart attack)",
    "acute myocardial infarction",
    "heart disease",
    "coronary artery disease",
    "angina pectoris",
    "cardiac arrest",
    "heart failure (congestive heart failure)",
    "asthma",
    "stroke (cerebrovascular accident)",
    "pulmonary embolism",
    "aortic dissection",
    "pericarditis",
    "myocarditis",
    "arrhythmia (cardiac dysrhythmia)",
    "hypertensive heart disease",
    "Takotsubo cardiomyopathy (broken heart syndrome)",
];

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_string())
}

/// Writes a random-weight BertForSequenceClassification with MiniLM's shape.
fn write_model(dir: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    let minilm = resolve_model_dir("minilm", None)?;
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(minilm.join("config.json"))?)?;
    config["architectures"] = serde_json::json!(["BertForSequenceClassification"]);
    config["id2label"] = serde_json::json!({"0": "LABEL_0"});
    std::fs::write(dir.join("config.json"), config.to_string())?;
    std::fs::copy(minilm.join("tokenizer.json"), dir.join("tokenizer.json"))?;
    let get = |k: &str| config[k].as_u64().map(|v| v as usize).ok_or(k.to_string());
    let (h, i, layers) = (
        get("hidden_size")?,
        get("intermediate_size")?,
        get("num_hidden_layers")?,
    );
    let (vocab, positions) = (get("vocab_size")?, get("max_position_embeddings")?);
    let mut shapes: Vec<(String, Vec<usize>)> = vec![
        (
            "bert.embeddings.word_embeddings.weight".into(),
            vec![vocab, h],
        ),
        (
            "bert.embeddings.position_embeddings.weight".into(),
            vec![positions, h],
        ),
        (
            "bert.embeddings.token_type_embeddings.weight".into(),
            vec![2, h],
        ),
        ("bert.embeddings.LayerNorm.weight".into(), vec![h]),
        ("bert.embeddings.LayerNorm.bias".into(), vec![h]),
        ("bert.pooler.dense.weight".into(), vec![h, h]),
        ("bert.pooler.dense.bias".into(), vec![h]),
        ("classifier.weight".into(), vec![1, h]),
        ("classifier.bias".into(), vec![1]),
    ];
    for l in 0..layers {
        let p = format!("bert.encoder.layer.{l}");
        for m in ["query", "key", "value"] {
            shapes.push((format!("{p}.attention.self.{m}.weight"), vec![h, h]));
            shapes.push((format!("{p}.attention.self.{m}.bias"), vec![h]));
        }
        for (name, shape) in [
            ("attention.output.dense.weight", vec![h, h]),
            ("attention.output.dense.bias", vec![h]),
            ("attention.output.LayerNorm.weight", vec![h]),
            ("attention.output.LayerNorm.bias", vec![h]),
            ("intermediate.dense.weight", vec![i, h]),
            ("intermediate.dense.bias", vec![i]),
            ("output.dense.weight", vec![h, i]),
            ("output.dense.bias", vec![h]),
            ("output.LayerNorm.weight", vec![h]),
            ("output.LayerNorm.bias", vec![h]),
        ] {
            shapes.push((format!("{p}.{name}"), shape));
        }
    }
    let mut tensors = HashMap::new();
    for (name, shape) in shapes {
        let t = if name.ends_with("LayerNorm.weight") {
            Tensor::ones(shape.as_slice(), candle_core::DType::F32, &Device::Cpu)?
        } else {
            Tensor::randn(0f32, 0.02, shape.as_slice(), &Device::Cpu)?
        };
        tensors.insert(name, t);
    }
    candle_core::safetensors::save(&tensors, dir.join("model.safetensors"))?;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let threads: usize = arg("--threads", "2").parse()?;
    let reps: usize = arg("--reps", "5").parse()?;
    let batches: Vec<usize> = arg("--batches", "1,16,64")
        .split(',')
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    let dir = std::env::temp_dir().join(format!("lv-rerank-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    write_model(&dir)?;
    let ce = CrossEncoder::load(
        &dir,
        CrossEncoderOptions {
            threads: Some(threads),
            ..CrossEncoderOptions::default()
        },
    )?;
    const PAIRS_PER_ROUND: usize = 256;
    for &b in &batches {
        let docs: Vec<&str> = DOCS.iter().cycle().take(b).copied().collect();
        ce.score("heart attack", &docs)?;
        let mut rates = Vec::new();
        for _ in 0..reps {
            let calls = PAIRS_PER_ROUND.div_ceil(b);
            let t = Instant::now();
            for _ in 0..calls {
                // `score`, not `rerank`: a batch of 1 still runs the model.
                ce.score("heart attack", &docs)?;
            }
            rates.push((calls * b) as f64 / t.elapsed().as_secs_f64());
        }
        rates.sort_by(f64::total_cmp);
        println!(
            "{}",
            serde_json::json!({
                "batch": b,
                "threads": threads,
                "pairs_per_s_median": rates[rates.len() / 2],
                "architecture": "MiniLM-L6-H384, random weights",
            })
        );
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

//! Parity with sentence-transformers on the real all-MiniLM-L6-v2 weights
//! (fetched by `bash scripts/setup.sh`), and the error contracts of loading.
//!
//! Without the model (or the shared fixtures) the tests print a line and
//! pass, unless `LOBSTER_TEST_REQUIRE_SERVICES=1`, where they fail.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use lobster_vector_candle::{resolve_model_dir, BertEmbedder, BertOptions, Pooling};
use lobster_vector_core::testing::service_unavailable;
use lobster_vector_core::{Embedder, Error};
use serde_json::Value;

fn fixtures_dir() -> PathBuf {
    std::env::var_os("LOBSTER_FIXTURES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures"))
}

fn fixture(name: &str) -> Option<Value> {
    let path = fixtures_dir().join(name);
    match std::fs::read_to_string(&path) {
        Ok(text) => Some(serde_json::from_str(&text).expect("fixture is JSON")),
        Err(_) => service_unavailable(&format!(
            "fixture {} (set LOBSTER_FIXTURES_DIR)",
            path.display()
        )),
    }
}

fn model_dir() -> Option<PathBuf> {
    let explicit = std::env::var_os("LOBSTER_MINILM_MODEL").map(PathBuf::from);
    match resolve_model_dir("minilm", explicit.as_deref()) {
        Ok(dir) => Some(dir),
        Err(e) => service_unavailable(&format!("the MiniLM model ({e})")),
    }
}

fn minilm() -> Option<&'static BertEmbedder> {
    static E: OnceLock<Option<BertEmbedder>> = OnceLock::new();
    E.get_or_init(|| {
        model_dir().map(|d| BertEmbedder::load(&d, BertOptions::minilm()).expect("model loads"))
    })
    .as_ref()
}

fn minilm_cls() -> Option<&'static BertEmbedder> {
    static E: OnceLock<Option<BertEmbedder>> = OnceLock::new();
    E.get_or_init(|| {
        model_dir().map(|d| {
            let opts = BertOptions::sapbert()
                .with_model_id("sentence-transformers/all-MiniLM-L6-v2 (cls)")
                .with_provider("minilm-cls");
            BertEmbedder::load(&d, opts).expect("model loads")
        })
    })
    .as_ref()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|s| s.as_str().expect("string").to_string())
        .collect()
}

fn matrix(v: &Value) -> Vec<Vec<f32>> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|row| {
            row.as_array()
                .expect("row")
                .iter()
                .map(|x| x.as_f64().expect("number") as f32)
                .collect()
        })
        .collect()
}

fn norm(a: &[f32]) -> f64 {
    a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt()
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    dot / (norm(a) * norm(b))
}

fn max_abs_diff(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    a.iter()
        .zip(b)
        .flat_map(|(x, y)| x.iter().zip(y).map(|(p, q)| (p - q).abs()))
        .fold(0.0, f32::max)
}

/// Checks every non-empty fixture text, embedded alone and in one batch.
fn check_golden(embedder: &BertEmbedder, golden: &Value, normalized: bool) {
    let texts = strings(&golden["texts"]);
    let want = matrix(&golden["embeddings"]);
    assert_eq!(texts.len(), want.len());
    assert_eq!(
        embedder.dimensions(),
        golden["dim"].as_u64().expect("dim") as usize
    );
    let idx: Vec<usize> = (0..texts.len())
        .filter(|&i| !texts[i].trim().is_empty())
        .collect();
    assert!(
        idx.len() + 1 >= texts.len(),
        "at most the one empty text is skipped"
    );
    let refs: Vec<&str> = idx.iter().map(|&i| texts[i].as_str()).collect();

    let single: Vec<Vec<f32>> = refs
        .iter()
        .map(|t| embedder.embed_query(t).expect("embeds"))
        .collect();
    let batch = embedder.embed_documents(&refs).expect("embeds batch");
    assert_eq!(batch.len(), refs.len());

    let mut min_cos = f64::INFINITY;
    for (k, &i) in idx.iter().enumerate() {
        let c = cosine(&single[k], &want[i]);
        min_cos = min_cos.min(c);
        assert!(
            c >= 0.9999,
            "text #{i} {:?}: cosine {c}",
            &texts[i][..texts[i].len().min(40)]
        );
        let (got_n, want_n) = (norm(&single[k]), norm(&want[i]));
        assert!(
            (got_n - want_n).abs() <= 1e-3 * want_n,
            "text #{i}: norm {got_n} vs {want_n}"
        );
        if normalized {
            assert!((got_n - 1.0).abs() < 1e-5);
        }
    }
    let d = max_abs_diff(&batch, &single);
    assert!(d <= 1e-5, "batch vs single max abs diff {d}");
    eprintln!(
        "{} pooling: {} vectors, min cosine {min_cos:.9}, batch vs single max abs diff {d:e}",
        golden["pooling"],
        idx.len()
    );
}

#[test]
fn mean_pooling_matches_sentence_transformers() {
    let (Some(e), Some(golden)) = (minilm(), fixture("minilm_golden.json")) else {
        return;
    };
    assert_eq!(golden["pooling"], "mean");
    assert_eq!(e.pooling(), Pooling::Mean);
    assert!(e.normalizes());
    check_golden(e, &golden, true);
}

#[test]
fn cls_pooling_matches_sentence_transformers() {
    let (Some(e), Some(golden)) = (minilm_cls(), fixture("minilm_cls_golden.json")) else {
        return;
    };
    assert_eq!(golden["pooling"], "cls");
    assert_eq!(e.pooling(), Pooling::Cls);
    assert!(!e.normalizes());
    check_golden(e, &golden, false);
}

#[test]
fn token_ids_match_the_reference_tokenizer() {
    let (Some(e), Some(tokens)) = (minilm(), fixture("minilm_tokens.json")) else {
        return;
    };
    let max = tokens["max_seq_length"].as_u64().expect("max_seq_length") as usize;
    assert_eq!(e.max_seq_length(), max);
    let texts = strings(&tokens["texts"]);
    let ids = tokens["input_ids"].as_array().expect("input_ids");
    assert_eq!(texts.len(), ids.len());
    let mut saw_truncated = false;
    for (text, want) in texts.iter().zip(ids) {
        let want: Vec<u32> = want
            .as_array()
            .expect("ids")
            .iter()
            .map(|x| x.as_u64().expect("id") as u32)
            .collect();
        let got = e.token_ids(text).expect("tokenises");
        assert_eq!(got, want, "token ids of {:?}", &text[..text.len().min(40)]);
        saw_truncated |= got.len() == max;
    }
    assert!(
        saw_truncated,
        "the fixtures include a text truncated to {max} tokens"
    );

    // The golden files' token counts agree as well.
    let golden = fixture("minilm_golden.json").expect("fixture");
    let counts = golden["token_counts"].as_array().expect("token_counts");
    for (text, n) in strings(&golden["texts"]).iter().zip(counts) {
        assert_eq!(
            e.token_ids(text).expect("tokenises").len() as u64,
            n.as_u64().expect("count")
        );
    }
}

#[test]
fn empty_text_is_invalid_input() {
    let Some(e) = minilm() else { return };
    for bad in ["", "   ", "\n\t"] {
        match e.embed_query(bad) {
            Err(Error::InvalidInput { .. }) => {}
            other => panic!("{bad:?}: expected InvalidInput, got {other:?}"),
        }
    }
    match e.embed_documents(&["heart attack", ""]) {
        Err(Error::InvalidInput { message }) => assert!(message.contains("#1"), "{message}"),
        other => panic!("expected InvalidInput, got {other:?}"),
    }
    assert!(e.embed_documents(&[]).expect("empty batch").is_empty());
}

#[test]
fn batches_of_mixed_lengths_restore_input_order() {
    let Some(e) = minilm() else { return };
    let long = "a very long text ".repeat(200);
    let texts: Vec<String> = (0..70)
        .map(|i| match i % 5 {
            0 => format!("disease number {i}"),
            1 => "heart attack".to_string(),
            2 => format!("{} of the {i}th kind", long.trim()),
            3 => format!("cell type {i} of the immune system with a longer description"),
            _ => format!("t{i}"),
        })
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let batched = e.embed_documents(&refs).expect("embeds");
    let single: Vec<Vec<f32>> = refs
        .iter()
        .map(|t| e.embed_query(t).expect("embeds"))
        .collect();
    let d = max_abs_diff(&batched, &single);
    assert!(d <= 1e-5, "max abs diff {d}");

    // Tiny batches and one private thread give the same vectors.
    let dir = e.model_dir().to_path_buf();
    let small = BertEmbedder::load(
        &dir,
        BertOptions::minilm().with_batch_size(3).with_threads(1),
    )
    .expect("loads");
    let d = max_abs_diff(&small.embed_documents(&refs).expect("embeds"), &single);
    assert!(d <= 1e-5, "batch size 3: max abs diff {d}");
}

#[test]
fn provider_presets() {
    let Some(e) = minilm() else { return };
    assert_eq!(e.provider(), "minilm");
    assert_eq!(e.model_id(), "sentence-transformers/all-MiniLM-L6-v2");
    assert_eq!(e.dimensions(), 384);
    let s = BertOptions::sapbert();
    assert_eq!(s.provider, "sapbert");
    assert_eq!(s.model_id, "cambridgeltl/SapBERT-from-PubMedBERT-fulltext");
    assert_eq!((s.pooling, s.normalize), (Some(Pooling::Cls), Some(false)));
    assert!(matches!(
        BertOptions::for_provider("bogus"),
        Err(Error::InvalidConfig { .. })
    ));
}

/// Copies the model directory's small files into a temp dir; `weights`
/// decides what becomes of model.safetensors.
fn copy_model(src: &Path, weights: Option<usize>, skip: &[&str]) -> tempfile::TempDir {
    let dst = tempfile::tempdir().expect("tempdir");
    for name in [
        "config.json",
        "tokenizer.json",
        "modules.json",
        "sentence_bert_config.json",
        "tokenizer_config.json",
    ] {
        if !skip.contains(&name) && src.join(name).exists() {
            std::fs::copy(src.join(name), dst.path().join(name)).expect("copy");
        }
    }
    std::fs::create_dir_all(dst.path().join("1_Pooling")).expect("mkdir");
    std::fs::copy(
        src.join("1_Pooling/config.json"),
        dst.path().join("1_Pooling/config.json"),
    )
    .expect("copy");
    if let Some(len) = weights {
        let bytes = std::fs::read(src.join("model.safetensors")).expect("read weights");
        std::fs::write(
            dst.path().join("model.safetensors"),
            &bytes[..len.min(bytes.len())],
        )
        .expect("write");
    }
    dst
}

fn expect_model_error(dir: &Path, needle: &str) {
    match BertEmbedder::load(dir, BertOptions::minilm()) {
        Err(e @ (Error::Model { .. } | Error::ModelFiles { .. })) => {
            let message = e.to_string();
            assert!(
                message.contains(needle),
                "message {message:?} lacks {needle:?}"
            )
        }
        other => panic!("expected a model error mentioning {needle}, got {other:?}"),
    }
}

#[test]
fn truncated_weights_are_a_clear_model_error() {
    let Some(src) = model_dir() else { return };
    let len = std::fs::metadata(src.join("model.safetensors"))
        .expect("weights")
        .len() as usize;
    for cut in [len / 2, 100, 4] {
        let dir = copy_model(&src, Some(cut), &[]);
        expect_model_error(dir.path(), "model.safetensors");
    }
}

#[test]
fn missing_files_are_clear_model_errors() {
    let Some(src) = model_dir() else { return };
    let len = std::fs::metadata(src.join("model.safetensors"))
        .expect("weights")
        .len() as usize;
    let dir = copy_model(&src, Some(len), &["tokenizer.json"]);
    expect_model_error(dir.path(), "tokenizer.json");
    let dir = copy_model(&src, None, &[]);
    expect_model_error(dir.path(), "model.safetensors");
    let dir = copy_model(&src, Some(len), &["config.json"]);
    expect_model_error(dir.path(), "config.json");
    expect_model_error(Path::new("/nonexistent/lobster/model"), "does not exist");

    // A corrupt tokenizer.json and config.json name their file too.
    let dir = copy_model(&src, Some(len), &[]);
    std::fs::write(dir.path().join("tokenizer.json"), "{ not json").expect("write");
    expect_model_error(dir.path(), "tokenizer.json");
    let dir = copy_model(&src, Some(len), &[]);
    std::fs::write(dir.path().join("config.json"), "{\"hidden_size\": 1}").expect("write");
    expect_model_error(dir.path(), "config.json");
}

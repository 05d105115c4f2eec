//! Model directory resolution (no model needed: resolution only looks for
//! files). One test, because it changes process-wide environment variables.

use std::path::Path;

use lobster_vector_candle::{assets_dir, resolve_model_dir};
use lobster_vector_core::Error;

fn fake_model(dir: &Path) {
    std::fs::create_dir_all(dir).expect("mkdir");
    for f in ["config.json", "model.safetensors", "tokenizer.json"] {
        std::fs::write(dir.join(f), "{}").expect("write");
    }
}

fn model_message(r: lobster_vector_core::Result<std::path::PathBuf>) -> String {
    match r {
        Err(e @ (Error::Model { .. } | Error::ModelMissing { .. })) => e.to_string(),
        other => panic!("expected a model error, got {other:?}"),
    }
}

/// Whether a missing model is one the asset setup fetches.
fn fetched_by_setup(r: lobster_vector_core::Result<std::path::PathBuf>) -> bool {
    match r {
        Err(Error::ModelMissing {
            fetched_by_setup, ..
        }) => fetched_by_setup,
        other => panic!("expected a missing model, got {other:?}"),
    }
}

#[test]
fn resolution_order_and_errors() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let assets = tmp.path().join("assets");
    let hf = tmp.path().join("hf");
    std::env::set_var("LOBSTER_ASSETS_DIR", &assets);
    std::env::set_var("HF_HOME", &hf);
    std::env::remove_var("HF_HUB_CACHE");
    std::env::remove_var("HF_HUB_OFFLINE");
    // A hub that refuses connections: the download step is tried and reported.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    std::env::set_var("HF_ENDPOINT", format!("http://127.0.0.1:{port}"));
    assert_eq!(assets_dir(), assets);

    // Nothing anywhere: the error lists every place and the fetch command.
    let msg = model_message(resolve_model_dir("minilm", None));
    assert!(
        msg.contains(&assets.join("models/all-MiniLM-L6-v2").display().to_string()),
        "{msg}"
    );
    assert!(
        msg.contains("models--sentence-transformers--all-MiniLM-L6-v2"),
        "{msg}"
    );
    assert!(fetched_by_setup(resolve_model_dir("minilm", None)));
    assert!(msg.contains("LOBSTER_MINILM_MODEL"), "{msg}");
    assert!(
        msg.contains(&format!("download of sentence-transformers/all-MiniLM-L6-v2 from http://127.0.0.1:{port} (hub unreachable")),
        "{msg}"
    );
    std::env::set_var("HF_HUB_OFFLINE", "1");
    let msg = model_message(resolve_model_dir("minilm", None));
    assert!(msg.contains("skipped: HF_HUB_OFFLINE is set"), "{msg}");
    let msg = model_message(resolve_model_dir("sapbert", None));
    assert!(
        msg.contains("models--cambridgeltl--SapBERT-from-PubMedBERT-fulltext"),
        "{msg}"
    );
    assert!(msg.contains("LOBSTER_SAPBERT_MODEL"), "{msg}");
    assert!(!fetched_by_setup(resolve_model_dir("sapbert", None)));

    // Hugging Face cache layout: refs/main wins over other snapshots.
    let repo = hf.join("hub/models--sentence-transformers--all-MiniLM-L6-v2");
    fake_model(&repo.join("snapshots/aaa"));
    fake_model(&repo.join("snapshots/bbb"));
    assert_eq!(
        resolve_model_dir("minilm", None).expect("found"),
        repo.join("snapshots/aaa")
    );
    std::fs::create_dir_all(repo.join("refs")).expect("mkdir");
    std::fs::write(repo.join("refs/main"), "bbb\n").expect("write");
    assert_eq!(
        resolve_model_dir("minilm", None).expect("found"),
        repo.join("snapshots/bbb")
    );

    // An incomplete asset dir is reported, and the cache is used.
    let asset_model = assets.join("models/all-MiniLM-L6-v2");
    std::fs::create_dir_all(&asset_model).expect("mkdir");
    std::fs::write(asset_model.join("config.json"), "{}").expect("write");
    assert_eq!(
        resolve_model_dir("minilm", None).expect("found"),
        repo.join("snapshots/bbb")
    );
    std::fs::remove_dir_all(&repo).expect("rm");
    let msg = model_message(resolve_model_dir("minilm", None));
    assert!(
        msg.contains("lacks model.safetensors, tokenizer.json"),
        "{msg}"
    );

    // The asset dir comes before the cache.
    fake_model(&repo.join("snapshots/ccc"));
    fake_model(&asset_model);
    assert_eq!(
        resolve_model_dir("minilm", None).expect("found"),
        asset_model
    );

    // An explicit dir comes first and is never silently replaced.
    let explicit = tmp.path().join("explicit");
    fake_model(&explicit);
    assert_eq!(
        resolve_model_dir("minilm", Some(&explicit)).expect("found"),
        explicit
    );
    let msg = model_message(resolve_model_dir("minilm", Some(&tmp.path().join("nope"))));
    assert!(msg.contains("does not exist"), "{msg}");
    std::fs::remove_file(explicit.join("tokenizer.json")).expect("rm");
    let msg = model_message(resolve_model_dir("minilm", Some(&explicit)));
    assert!(msg.contains("lacks tokenizer.json"), "{msg}");

    // Unknown providers list the valid ones.
    match resolve_model_dir("openai", None) {
        Err(Error::InvalidConfig { valid, .. }) => assert_eq!(valid, "minilm, sapbert"),
        other => panic!("expected InvalidConfig, got {other:?}"),
    }

    // The default asset dir is under HOME.
    std::env::remove_var("LOBSTER_ASSETS_DIR");
    std::env::set_var("HOME", tmp.path());
    assert_eq!(assets_dir(), tmp.path().join(".lobster/assets"));
}

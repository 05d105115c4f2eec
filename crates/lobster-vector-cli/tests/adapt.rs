//! `adapt` on the real MiniLM model and the real Cell Ontology: a few steps
//! write a model that `build` and `search` use, whose model id keeps it apart
//! from collections of the base model.

mod common;

use common::{cl_store, lv, stdout_json};

#[test]
fn an_adapted_model_builds_searches_and_fails_closed_against_the_base_model() {
    let Some(base_store) = cl_store() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("adapted");
    let model_arg = model.to_str().unwrap();
    let out = lv(base_store)
        .args([
            "adapt",
            "-o",
            "cl",
            "--max-steps",
            "3",
            "--batch-size",
            "16",
        ])
        .args(["--output", model_arg, "--json", "-q"])
        .output()
        .unwrap();
    let report = stdout_json(&out);
    let manifest = &report["manifest"];
    let id = manifest["model_id"].as_str().unwrap();
    assert!(
        id.starts_with("sentence-transformers/all-MiniLM-L6-v2+adapted-"),
        "{id}"
    );
    assert_eq!(manifest["steps"], 3);
    // Most CL synonyms are held out to fit the matcher (and so not trained
    // on); the concepts left with two names still number in the hundreds.
    assert!(manifest["concepts"].as_u64().unwrap() > 100, "{manifest}");
    let source = manifest["sources"][0]["file"].as_str().unwrap();
    assert!(source.starts_with("CL-ontology-"), "{source}");
    assert_eq!(manifest["sources"][0]["sha256"].as_str().unwrap().len(), 64);
    for f in [
        "model.safetensors",
        "tokenizer.json",
        "config.json",
        "lobster_adaptation.json",
    ] {
        assert!(model.join(f).is_file(), "{f} missing");
    }

    // An existing output is refused, and left as it was.
    let before = std::fs::read(model.join("lobster_adaptation.json")).unwrap();
    let again = lv(base_store)
        .args([
            "adapt",
            "-o",
            "cl",
            "--max-steps",
            "1",
            "--output",
            model_arg,
        ])
        .output()
        .unwrap();
    assert!(!again.status.success());
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(
        err.contains("already exists") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(model.join("lobster_adaptation.json")).unwrap(),
        before
    );

    // The base model's collection refuses the adapted model's queries.
    let refused = lv(base_store)
        .env("LOBSTER_MINILM_MODEL", &model)
        .args(["search", "T cell", "-o", "cl"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains(id) && err.contains("rebuild"), "{err}");

    // A collection built with the adapted model answers with it.
    let store = dir.path().join("store");
    let built = lv(&store)
        .env("LOBSTER_MINILM_MODEL", &model)
        .args(["build", "-o", "cl", "--json", "-q"])
        .output()
        .unwrap();
    let built = stdout_json(&built);
    assert_eq!(built["embedding_model"], id);
    let hits = lv(&store)
        .env("LOBSTER_MINILM_MODEL", &model)
        .args(["search", "T cell", "-o", "cl", "-k", "1", "--json"])
        .output()
        .unwrap();
    let hits = stdout_json(&hits);
    let text = hits.to_string();
    assert!(text.contains("CL:0000084"), "{text}");
}

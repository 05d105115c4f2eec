//! The `lobster-vector` binary: configuration errors, exit codes, clean
//! failures on bad input. (Real-data answers are tested in the facade crate.)

use std::process::{Command, Output};

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let store = tempfile::tempdir().expect("tempdir");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lobster-vector"));
    cmd.args(args)
        .env_remove("LOBSTER_VECTOR_BACKEND")
        .env_remove("LOBSTER_EMBEDDING_PROVIDER")
        .env_remove("LOBSTER_RERANKER")
        .env("LOBSTER_VECTOR_STORE_PATH", store.path().join("store"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run lobster-vector")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn unknown_backend_lists_valid_values() {
    let out = run(&["info"], &[("LOBSTER_VECTOR_BACKEND", "bogus")]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("bogus") && err.contains("local, memory, pgvector, faiss, chromadb"),
        "{err}"
    );
}

#[test]
fn info_shows_the_resolved_backend_and_masks_secrets() {
    let out = run(
        &["info", "--json"],
        &[
            ("LOBSTER_VECTOR_BACKEND", "memory"),
            ("LOBSTER_PGVECTOR_URL", "postgres://u:hunter2@h/db"),
            ("OPENAI_API_KEY", "sk-secret"),
            ("LOBSTER_CHROMA_TOKEN", "chroma-secret"),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["configuration"]["backend"], "memory");
    assert_eq!(v["configuration"]["pgvector_url"], "postgres://u:***@h/db");
    assert_eq!(v["backends"]["memory"], "available");
    assert_eq!(v["configuration"]["chroma_token"], "***");
    let all = text(&out.stdout);
    assert!(
        !all.contains("hunter2") && !all.contains("sk-secret") && !all.contains("chroma-secret"),
        "{all}"
    );
}

#[test]
fn info_shows_where_each_model_resolves() {
    let models = tempfile::tempdir().expect("tempdir");
    let minilm = models.path().join("minilm");
    std::fs::create_dir(&minilm).expect("mkdir");
    for f in ["config.json", "model.safetensors", "tokenizer.json"] {
        std::fs::write(minilm.join(f), b"{}").expect("write");
    }
    let out = run(
        &["info", "--json"],
        &[
            ("LOBSTER_MINILM_MODEL", minilm.to_str().expect("utf-8 path")),
            ("LOBSTER_CROSS_ENCODER_MODEL", "/nonexistent/cross-encoder"),
            ("OPENAI_BASE_URL", "http://127.0.0.1:9/v1"),
            ("LOBSTER_OPENAI_MODEL", "nomic-embed"),
            ("COHERE_API_KEY", "co-secret"),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let m = &v["models"];
    assert_eq!(m["minilm"], minilm.display().to_string());
    let ce = m["cross_encoder"].as_str().expect("string");
    assert!(
        ce.starts_with("not found") && ce.contains("/nonexistent/cross-encoder"),
        "{ce}"
    );
    let openai = m["openai"].as_str().expect("string");
    assert!(
        openai.contains("http://127.0.0.1:9/v1/embeddings")
            && openai.contains("nomic-embed")
            && openai.contains("OPENAI_API_KEY not set"),
        "{openai}"
    );
    let cohere = m["cohere"].as_str().expect("string");
    assert!(
        cohere.contains("/v2/rerank") && cohere.contains("key set"),
        "{cohere}"
    );
    assert!(!text(&out.stdout).contains("co-secret"));
    assert_eq!(v["rerankers"]["cross_encoder"], "available");
    assert_eq!(v["embedding_providers"]["openai"], "available");
}

#[test]
fn flag_beats_environment() {
    let out = run(
        &["--backend", "memory", "info", "--json"],
        &[("LOBSTER_VECTOR_BACKEND", "local")],
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["configuration"]["backend"], "memory");
}

#[test]
fn search_without_collections_fails_cleanly() {
    let out = run(
        &["search", "heart attack", "--ontology", "disease"],
        &[("LOBSTER_VECTOR_BACKEND", "memory")],
    );
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("lobster-vector build --ontology mondo"),
        "{err}"
    );
    let out = run(
        &["search", "heart attack", "--ontology", "diseases"],
        &[("LOBSTER_VECTOR_BACKEND", "memory")],
    );
    assert!(
        text(&out.stderr).contains("unknown ontology `diseases`"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn bad_input_is_a_clear_error() {
    let cases: &[(&[&str], &str)] = &[
        (&["lookup", "FOO:1"], "not a MONDO, UBERON or CL id"),
        (
            &[
                "map",
                "--input",
                "/nonexistent/x.tsv",
                "--ontology",
                "mondo",
            ],
            "cannot read `/nonexistent/x.tsv`",
        ),
        (
            &[
                "build",
                "--ontology",
                "mondo",
                "--source",
                "/nonexistent/MONDO-ontology-v1.json",
            ],
            "/nonexistent/MONDO-ontology-v1.json",
        ),
        (&["search", "heart", "-k", "0"], "0"),
    ];
    for (args, needle) in cases {
        let out = run(args, &[("LOBSTER_VECTOR_BACKEND", "memory")]);
        assert!(!out.status.success(), "{args:?}");
        let err = text(&out.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn help_lists_the_commands() {
    let out = run(&["--help"], &[]);
    let help = text(&out.stdout);
    for cmd in [
        "build",
        "search",
        "map",
        "lookup",
        "neighbors",
        "collections",
        "info",
        "embed",
    ] {
        assert!(help.contains(cmd), "{cmd}: {help}");
    }
}

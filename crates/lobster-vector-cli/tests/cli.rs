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
        (&["search", "heart", "-k", "0"], "0 is not in 1..=1000"),
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
fn map_refuses_its_input_as_output_and_a_missing_directory_before_any_work() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("same.tsv");
    let original = "sample\ttissue\ns1\tcolon\n";
    std::fs::write(&input, original).expect("write");
    std::fs::create_dir(dir.path().join("in")).expect("mkdir");
    let link = dir.path().join("link.tsv");
    std::os::unix::fs::symlink(&input, &link).expect("symlink");
    let spellings = [
        input.clone(),
        dir.path().join("in/../same.tsv"),
        link.clone(),
    ];
    for output in &spellings {
        let out = run(
            &[
                "map",
                "-i",
                input.to_str().expect("utf-8"),
                "-c",
                "tissue",
                "-o",
                "tissue",
                "--output",
                output.to_str().expect("utf-8"),
            ],
            &[("LOBSTER_VECTOR_BACKEND", "memory")],
        );
        assert!(!out.status.success(), "{output:?}");
        let err = text(&out.stderr);
        assert!(err.contains("is the input file"), "{output:?}: {err}");
        assert_eq!(std::fs::read_to_string(&input).expect("read"), original);
    }
    assert!(std::fs::symlink_metadata(&link)
        .expect("link")
        .file_type()
        .is_symlink());
    // A missing output directory is refused before the store or model is touched.
    let out = run(
        &[
            "map",
            "-i",
            input.to_str().expect("utf-8"),
            "-o",
            "tissue",
            "--output",
            "/nonexistent/dir/x.tsv",
        ],
        &[("LOBSTER_VECTOR_BACKEND", "memory")],
    );
    let err = text(&out.stderr);
    assert!(
        !out.status.success() && err.contains("`/nonexistent/dir` does not exist"),
        "{err}"
    );
}

#[test]
fn thread_counts_beyond_a_few_per_core_are_refused() {
    let out = run(&["info"], &[("LOBSTER_THREADS", "100000")]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("LOBSTER_THREADS") && err.contains("per core"),
        "{err}"
    );
    let out = run(&["--threads", "2", "info"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn a_bad_log_filter_is_reported_and_stderr_has_no_colour_when_not_a_terminal() {
    let out = run(
        &["search", "heart", "-o", "disease"],
        &[
            ("LOBSTER_VECTOR_BACKEND", "memory"),
            ("LOBSTER_LOG", "=[bad"),
        ],
    );
    let err = text(&out.stderr);
    assert!(
        err.contains("LOBSTER_LOG `=[bad` is not a tracing filter"),
        "{err}"
    );
    // A WARN line (no ontology source to check a curated id against), piped.
    let out = run(
        &["curate", "add", "T cells", "CL:0000084"],
        &[("LOBSTER_ASSETS_DIR", "/nonexistent")],
    );
    let err = text(&out.stderr);
    assert!(
        out.status.success() && err.contains("WARN") && err.contains("cannot check"),
        "{err}"
    );
    assert!(
        !err.contains('\u{1b}'),
        "ANSI escapes in piped stderr: {err:?}"
    );
}

#[test]
fn passwords_in_every_url_are_masked_in_info_errors_and_logs() {
    let env = [
        ("OPENAI_BASE_URL", "http://ouser:opass-1@127.0.0.1:9/v1"),
        ("LOBSTER_CHROMA_URL", "http://cuser:cpass-2@127.0.0.1:9"),
        ("CO_API_URL", "http://kuser:kpass-3@127.0.0.1:9"),
    ];
    let secrets = ["opass-1", "cpass-2", "kpass-3"];
    let mut seen = String::new();
    for args in [vec!["info"], vec!["info", "--json"]] {
        let out = run(&args, &env);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert!(all.contains("cuser:***@127.0.0.1:9"), "{all}");
        seen += &all;
    }
    // Errors and retry warnings of each client (nothing listens on port 9).
    for (args, extra) in [
        (vec!["embed", "x"], ("LOBSTER_EMBEDDING_PROVIDER", "openai")),
        (vec!["collections"], ("LOBSTER_VECTOR_BACKEND", "chromadb")),
        (
            vec!["search", "heart", "-o", "disease"],
            ("LOBSTER_RERANKER", "cohere"),
        ),
    ] {
        let mut env = env.to_vec();
        env.push(extra);
        env.push(("LOBSTER_LOG", "debug"));
        let out = run(&args, &env);
        seen += &format!("{}{}", text(&out.stdout), text(&out.stderr));
    }
    assert!(
        seen.contains("ouser:***@") && seen.contains("cuser:***@"),
        "{seen}"
    );
    for s in secrets {
        assert!(!seen.contains(s), "`{s}` printed:\n{seen}");
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

// ---- `store check | compact | backup` on the local store ----

use std::path::Path;

use lobster_vector::local::{LocalOptions, LocalStore};
use lobster_vector::{Artifact, Metadata, Record, VectorStore};

/// Runs the binary on the local store at `store`.
fn run_local(store: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lobster-vector"))
        .args(args)
        .env("LOBSTER_VECTOR_BACKEND", "local")
        .env("LOBSTER_VECTOR_STORE_PATH", store)
        .env_remove("LOBSTER_EMBEDDING_PROVIDER")
        .env_remove("LOBSTER_RERANKER")
        .output()
        .expect("run lobster-vector")
}

/// A local store with two collections (3,000 and 5 vectors), index files saved.
fn filled_store(dir: &Path) {
    let store = LocalStore::open(dir, LocalOptions::default()).expect("open");
    let rec = |i: usize| {
        let v: Vec<f32> = (0..16)
            .map(|j| ((i * 31 + j * 7) % 97) as f32 + 1.0)
            .collect();
        Record::new(format!("id{i}"), v).with_document(format!("doc {i}"))
    };
    let big: Vec<Record> = (0..3_000).map(rec).collect();
    store.upsert("big_one", &big).expect("upsert");
    store
        .delete("big_one", &["id0".into(), "id1".into()])
        .expect("delete");
    store
        .upsert("small", &(0..5).map(rec).collect::<Vec<_>>())
        .expect("upsert");
    store.flush().expect("flush");
}

fn json_out(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            text(&out.stdout),
            text(&out.stderr)
        )
    })
}

#[test]
fn import_copies_a_local_collection_with_its_artifact() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("store");
    filled_store(&dir);
    // Without an artifact nothing says which model made the vectors.
    let import = |collection: &str, target: &str, extra: &[&str]| {
        let mut args = vec![
            "import", "--from", "local", "-c", collection, "--as", target,
        ];
        args.extend_from_slice(extra);
        run_local(&dir, &args)
    };
    let out = import("small", "small_copy", &[]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("--embedding-provider"),
        "{}",
        text(&out.stderr)
    );
    {
        let store = LocalStore::open(&dir, LocalOptions::default()).expect("open");
        let artifact = Artifact {
            embedding_provider: "minilm".into(),
            embedding_model: "sentence-transformers/all-MiniLM-L6-v2".into(),
            dimensions: 16,
            ontology: "cell_ontology".into(),
            source_version: "v1".into(),
            source_sha256: "ab".repeat(32),
            built_at: "2026-01-01T00:00:00Z".into(),
            lobster_vector_version: "0.1.0".into(),
            entry_count: 2_998,
            term_count: 1_000,
            source_path: None,
        };
        let mut metadata = Metadata::new();
        artifact.write_into(&mut metadata);
        store
            .set_collection_metadata("big_one", metadata)
            .expect("artifact");
    }
    let out = import("big_one", "big_copy", &["--batch-size", "700", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report = json_out(&out);
    assert_eq!(report["records"], 2_998);
    assert_eq!(
        report["artifact"]["embedding_model"],
        "sentence-transformers/all-MiniLM-L6-v2"
    );

    let store = LocalStore::open(&dir, LocalOptions::default()).expect("reopen");
    assert_eq!(store.count("big_copy").expect("count"), 2_998);
    let copied =
        Artifact::from_metadata(&store.collection_info("big_copy").expect("info").metadata)
            .expect("the artifact came across");
    assert_eq!(
        (copied.ontology.as_str(), copied.entry_count),
        ("cell_ontology", 2_998)
    );
    // Same records, so the same neighbours with the same documents.
    let probe: Vec<f32> = (0..16).map(|j| (j % 5) as f32 + 0.5).collect();
    let a = store.search("big_one", &probe, 10).expect("search");
    let b = store.search("big_copy", &probe, 10).expect("search");
    let rows = |h: &[lobster_vector::Hit]| {
        h.iter()
            .map(|x| (x.id.clone(), x.document.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(rows(&a), rows(&b));
    assert!(a
        .iter()
        .zip(&b)
        .all(|(x, y)| (x.distance - y.distance).abs() < 1e-5));
    // Deleted records stay deleted in the copy.
    assert!(
        store
            .get("big_copy", &["id0".into(), "id5".into()])
            .expect("get")
            .len()
            == 1
    );
}

#[test]
fn store_check_reports_agreement_per_collection() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("store");
    filled_store(&dir);
    let out = run_local(&dir, &["store", "check", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v = json_out(&out);
    assert_eq!(v["ok"], true);
    assert_eq!(v["integrity_check"], serde_json::json!(["ok"]));
    let cols = v["collections"].as_array().expect("collections");
    assert_eq!(cols.len(), 2);
    assert_eq!(cols[0]["name"], "big_one");
    assert_eq!(cols[0]["records"], 2_998);
    assert_eq!(cols[0]["index_entries"], 2_998);
    assert_eq!(cols[0]["missing_from_index"], 0);
    assert_eq!(cols[0]["extra_in_index"], 0);
    assert_eq!(cols[0]["dead_entries"], 2);
    assert_eq!(cols[0]["index_file"]["status"], "current");
    assert_eq!(cols[1]["name"], "small");
    assert_eq!(cols[1]["records"], 5);
    assert_eq!(cols[1]["ok"], true);

    // The table form names every collection and its counts.
    let out = run_local(&dir, &["store", "check"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    assert!(table.contains("SQLite integrity_check: ok"), "{table}");
    let big_line = table
        .lines()
        .find(|l| l.starts_with("big_one"))
        .expect("big_one row");
    let cells: Vec<&str> = big_line.split_whitespace().collect();
    assert_eq!(
        &cells[..8],
        &["big_one", "16", "2998", "2998", "0", "0", "2", "ok"]
    );
}

#[test]
fn store_check_fails_on_a_corrupt_index_file_and_compact_repairs_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("store");
    filled_store(&dir);
    let index_file = dir.join("index").join("big_one.hnsw");
    let len = std::fs::metadata(&index_file).expect("index file").len();
    std::fs::write(&index_file, vec![0x5a; len as usize]).expect("garble");

    let out = run_local(&dir, &["store", "check", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let v = json_out(&out);
    assert_eq!(v["ok"], false);
    let big = &v["collections"][0];
    assert_eq!(big["index_file"]["status"], "invalid");
    // The index rebuilt from SQLite still agrees; only the file is bad.
    assert_eq!(big["index_entries"], 2_998);
    assert_eq!(v["collections"][1]["ok"], true);
    let err = text(&out.stderr);
    assert!(
        err.contains("big_one") && err.contains("lobster-vector store compact"),
        "{err}"
    );

    let out = run_local(&dir, &["store", "compact", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v = json_out(&out);
    assert_eq!(v["collections_rebuilt"], 2);

    let out = run_local(&dir, &["store", "check", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v = json_out(&out);
    assert_eq!(v["ok"], true);
    // compact dropped the deleted entries from the graph.
    assert_eq!(v["collections"][0]["dead_entries"], 0);
    assert_eq!(v["collections"][0]["index_file"]["status"], "current");
}

#[test]
fn store_backup_copies_refuses_to_overwrite_and_replaces_with_force() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("store");
    filled_store(&dir);
    let dest = tmp.path().join("copy");
    let dest_s = dest.to_str().expect("utf-8 path");

    let out = run_local(&dir, &["store", "backup", dest_s, "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v = json_out(&out);
    assert_eq!(v["collections"], 2);
    assert_eq!(v["replaced"], false);
    {
        let copy = LocalStore::open(&dest, LocalOptions::default()).expect("open copy");
        assert_eq!(copy.count("big_one").expect("count"), 2_998);
        assert_eq!(copy.count("small").expect("count"), 5);
        assert!(copy.check().expect("check").is_ok());
    }

    // An existing backup is not overwritten without --force.
    let out = run_local(&dir, &["store", "backup", dest_s]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("already exists") && err.contains("--force"),
        "{err}"
    );

    // With --force it is replaced, and no temporary directory is left behind.
    {
        let store = LocalStore::open(&dir, LocalOptions::default()).expect("open");
        store
            .upsert("small", &[Record::new("extra", vec![1.0; 16])])
            .expect("upsert");
    }
    let out = run_local(&dir, &["store", "backup", dest_s, "--force", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(json_out(&out)["replaced"], true);
    let copy = LocalStore::open(&dest, LocalOptions::default()).expect("open copy");
    assert_eq!(copy.count("small").expect("count"), 6);
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path())
        .expect("ls")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // --force never replaces something that is not a store, nor a file.
    let other = tmp.path().join("other");
    std::fs::create_dir(&other).expect("mkdir");
    std::fs::write(other.join("notes.txt"), "mine").expect("write");
    let out = run_local(
        &dir,
        &["store", "backup", other.to_str().expect("utf-8"), "--force"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("not a lobster-vector store"),
        "{}",
        text(&out.stderr)
    );
    assert!(other.join("notes.txt").exists());
    let file = tmp.path().join("a_file");
    std::fs::write(&file, "x").expect("write");
    let out = run_local(
        &dir,
        &["store", "backup", file.to_str().expect("utf-8"), "--force"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("not a directory"),
        "{}",
        text(&out.stderr)
    );
    // Nor a destination inside the store.
    let inside = dir.join("nested");
    let out = run_local(&dir, &["store", "backup", inside.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("outside the store directory"),
        "{}",
        text(&out.stderr)
    );
    assert!(!inside.exists());
}

#[test]
fn store_commands_need_the_local_backend_and_an_existing_store() {
    let out = run(&["store", "check"], &[("LOBSTER_VECTOR_BACKEND", "memory")]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("`local` store") && err.contains("backend is `memory`"),
        "{err}"
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    let missing = tmp.path().join("none");
    let dest = tmp.path().join("bk");
    let dest = dest.to_str().expect("utf-8");
    for args in [
        &["store", "check"][..],
        &["store", "compact"],
        &["store", "backup", dest],
    ] {
        let out = run_local(&missing, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = text(&out.stderr);
        assert!(err.contains("no local store at"), "{args:?}: {err}");
        assert!(!missing.exists(), "{args:?} created the store");
    }
}

#[test]
fn reading_commands_never_create_a_store_at_a_mistyped_path() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let typo = tmp.path().join("typo/store");
    let values = tmp.path().join("values.txt");
    std::fs::write(&values, "colon\n").expect("write");
    for args in [
        &["search", "heart", "-o", "disease"][..],
        &["collections"],
        &["map", "-i", values.to_str().expect("utf-8"), "-o", "tissue"],
    ] {
        let out = run_local(&typo, args);
        assert!(!out.status.success(), "{args:?}");
        let err = text(&out.stderr);
        assert!(
            err.contains("no local store at") && err.contains(typo.to_str().expect("utf-8")),
            "{args:?}: {err}"
        );
        assert!(!typo.exists(), "{args:?} created the store");
    }
    // An existing directory whose database was removed is no store either.
    std::fs::create_dir_all(&typo).expect("mkdir");
    let out = run_local(&typo, &["search", "heart", "-o", "disease"]);
    assert!(text(&out.stderr).contains("no local store at"));
    assert!(!typo.join("store.sqlite3").exists());
}

#[test]
fn build_is_refused_up_front_while_another_process_writes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("store");
    let holder = LocalStore::open(&dir, LocalOptions::default()).expect("open");
    holder.lock_for_writing().expect("lock");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../lobster-vector-match/tests/fixtures/mini_cl.obo");
    let out = Command::new(env!("CARGO_BIN_EXE_lobster-vector"))
        .args(["build", "--ontology", "cl", "--source"])
        .arg(&fixture)
        .env("LOBSTER_VECTOR_BACKEND", "local")
        .env("LOBSTER_VECTOR_STORE_PATH", &dir)
        .env_remove("LOBSTER_EMBEDDING_PROVIDER")
        // No model here: the lock must be refused before the model is even looked for.
        .env("LOBSTER_MINILM_MODEL", tmp.path().join("no-model"))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("locked by another writer"), "{err}");
    assert!(!err.contains("model"), "{err}");
    drop(holder);
}

#[test]
fn bad_ontology_sources_are_refused_with_the_reason() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let no_terms = tmp.path().join("empty.obo");
    std::fs::write(&no_terms, "format-version: 1.4\nontology: cl\n").expect("write");
    let nul = tmp.path().join("zeros.obo");
    std::fs::write(&nul, vec![0u8; 8 << 20]).expect("write");
    let crowded = tmp.path().join("crowded.obo");
    let mut obo =
        String::from("format-version: 1.4\nontology: cl\n\n[Term]\nid: CL:0000001\nname: x cell\n");
    for i in 0..=lobster_vector::ontology::MAX_SYNONYMS_PER_TERM {
        obo.push_str(&format!("synonym: \"x cell {i}\" EXACT []\n"));
    }
    std::fs::write(&crowded, obo).expect("write");
    let cases = [
        (&no_terms, "holds no terms"),
        (&nul, "NUL byte"),
        (&crowded, "10001 synonyms"),
    ];
    for (source, needle) in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_lobster-vector"))
            .args(["build", "--ontology", "cl", "--source"])
            .arg(source)
            .env("LOBSTER_VECTOR_BACKEND", "memory")
            .env("LOBSTER_MINILM_MODEL", tmp.path().join("no-model"))
            .env_remove("LOBSTER_EMBEDDING_PROVIDER")
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(1), "{source:?}");
        let err = text(&out.stderr);
        assert!(err.contains(needle), "{source:?}: {err}");
        assert!(
            !err.contains("does not exist") && !err.contains("model"),
            "{err}"
        );
    }
}

#[test]
fn a_missing_ontology_source_and_a_damaged_database_come_with_what_to_do() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let assets = tmp.path().join("assets");
    std::fs::create_dir_all(assets.join("ontologies")).expect("mkdir");
    let out = Command::new(env!("CARGO_BIN_EXE_lobster-vector"))
        .args(["build", "--ontology", "mondo"])
        .env("LOBSTER_VECTOR_BACKEND", "memory")
        .env("LOBSTER_ASSETS_DIR", &assets)
        .env_remove("LOBSTER_EMBEDDING_PROVIDER")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("no mondo source file"), "{err}");
    assert!(
        err.contains("hint:") && err.contains("scripts/setup.sh"),
        "{err}"
    );
    assert!(!err.contains("model error"), "{err}");

    let store = tmp.path().join("store");
    std::fs::create_dir_all(&store).expect("mkdir");
    let garbage: Vec<u8> = (0..64 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(store.join("store.sqlite3"), garbage).expect("write");
    let out = run_local(&store, &["collections"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("store.sqlite3"), "{err}");
    assert!(err.contains("hint:") && err.contains("backup"), "{err}");
}

//! `lobster-vector import --from chromadb --to local` on a Chroma directory
//! built by the Python `chromadb` client (as the predecessor's prebuilt
//! stores were) with real MiniLM vectors of Cell Ontology texts, served by
//! `chroma run` from `scripts/chroma-test-server.sh`.
//!
//! Needs the Chroma test harness (LOBSTER_CHROMA_URL set by the script; the
//! test starts a private server on its own data directory) and the real
//! assets; skips without them, fails when LOBSTER_TEST_REQUIRE_SERVICES=1.

use std::path::Path;
use std::process::{Command, Output};

use lobster_vector::chroma::{ChromaOptions, ChromaStore};
use lobster_vector::ontology::{OntologyKind, OntologyLibrary};
use lobster_vector::{Artifact, Backend, Config, Metadata, Overrides, VectorStore};
use lobster_vector_core::testing::chroma_server::{self, PrivateChroma};
use serde_json::json;

const COLLECTION: &str = "predecessor_cl";

fn unavailable(what: &str) -> Option<()> {
    lobster_vector_core::testing::service_unavailable(what)
}

fn assert_succeeded(out: &Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn cli(args: &[&str], chroma_url: &str, store: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lobster-vector"))
        .args(args)
        .env_remove("LOBSTER_VECTOR_BACKEND")
        .env_remove("LOBSTER_EMBEDDING_PROVIDER")
        .env("LOBSTER_VECTOR_STORE_PATH", store)
        .env("LOBSTER_CHROMA_URL", chroma_url)
        .output()
        .expect("run lobster-vector")
}

/// Every record of a collection, by searching with k = its size.
fn all_records(
    store: &dyn VectorStore,
    c: &str,
    probe: &[f32],
) -> Vec<(String, Option<String>, Metadata)> {
    let n = store.count(c).expect("count");
    let mut rows: Vec<_> = store
        .search(c, probe, n)
        .expect("search")
        .into_iter()
        .map(|h| (h.id, h.document, h.metadata))
        .collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    rows
}

#[test]
fn import_a_python_built_chroma_store_into_local() {
    if std::env::var("LOBSTER_CHROMA_URL").map_or(true, |u| u.is_empty()) {
        let _ = unavailable("the Chroma test harness (LOBSTER_CHROMA_URL)");
        return;
    }
    let config = Config::resolve(&Overrides::default()).expect("config");
    let embedder = match lobster_vector::open_embedder(&config) {
        Ok(e) => e,
        Err(e) => {
            let _ = unavailable(&format!("the MiniLM model ({e})"));
            return;
        }
    };
    let library = OntologyLibrary::new(vec![config.assets_dir.join("ontologies")]);
    let cl = match library.newest(OntologyKind::CellOntology) {
        Ok(o) => o,
        Err(e) => {
            let _ = unavailable(&format!("the Cell Ontology source ({e})"));
            return;
        }
    };

    // Real texts: labels and synonyms of live CL terms, embedded with MiniLM.
    let mut ids = Vec::new();
    let mut texts = Vec::new();
    let mut metas = Vec::new();
    for t in cl.live_terms().take(700) {
        ids.push(format!("{}#label", t.id));
        texts.push(t.label.clone());
        metas.push(json!({"ontology_id": t.id, "kind": "label", "source": "predecessor"}));
        if let Some(s) = t.synonyms.first() {
            ids.push(format!("{}#syn0", t.id));
            texts.push(s.text.clone());
            metas.push(json!({"ontology_id": t.id, "kind": "synonym", "source": "predecessor"}));
        }
    }
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let vectors = embedder.embed_documents(&refs).expect("embed");

    // The fixture: a Chroma directory written by the Python client.
    let state = tempfile::tempdir().expect("tempdir");
    let python = chroma_server::run(state.path(), "python");
    let fixture = state.path().join("fixture.json");
    std::fs::write(
        &fixture,
        serde_json::to_vec(&json!({
            "ids": ids, "embeddings": vectors, "documents": texts, "metadatas": metas,
        }))
        .expect("json"),
    )
    .expect("write fixture");
    let data = state.path().join("data");
    let py = Command::new(&python)
        .arg("-c")
        .arg(
            r#"
import json, sys
import chromadb
f = json.load(open(sys.argv[1]))
client = chromadb.PersistentClient(path=sys.argv[2])
col = client.create_collection(sys.argv[3], metadata={"hnsw:space": "cosine", "hnsw:search_ef": 100}, embedding_function=None)
for i in range(0, len(f["ids"]), 500):
    s = slice(i, i + 500)
    col.add(ids=f["ids"][s], embeddings=f["embeddings"][s], documents=f["documents"][s], metadatas=f["metadatas"][s])
print(col.count())
"#,
        )
        .arg(&fixture)
        .arg(&data)
        .arg(COLLECTION)
        .output()
        .expect("run python");
    assert_succeeded(&py);
    assert_eq!(
        String::from_utf8_lossy(&py.stdout).trim(),
        ids.len().to_string()
    );

    let server = PrivateChroma::start(state.path());
    let url = server.url().to_string();
    let store_dir = state.path().join("local");

    // Without artifact metadata the import refuses until the model is named.
    let args = [
        "import",
        "--from",
        "chromadb",
        "--collection",
        COLLECTION,
        "--to",
        "local",
    ];
    let out = cli(&args, &url, &store_dir);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--embedding-provider"), "{err}");
    let mut with_provider = args.to_vec();
    with_provider.extend(["--embedding-provider", "minilm", "--batch-size", "300"]);
    let out = cli(&with_provider, &url, &store_dir);
    assert_succeeded(&out);

    let source = ChromaStore::open(ChromaOptions {
        url: url.clone(),
        ..ChromaOptions::default()
    })
    .expect("open chroma");
    let local_config = Config {
        backend: Backend::Local,
        store_path: store_dir.clone(),
        ..config.clone()
    };
    {
        let local = lobster_vector::open_store(&local_config).expect("open local");
        let info = local.collection_info(COLLECTION).expect("info");
        assert_eq!((info.count, info.dimension), (ids.len(), Some(384)));
        let artifact = Artifact::from_metadata(&info.metadata).expect("an artifact");
        assert_eq!(artifact.embedding_provider, embedder.provider());
        assert_eq!(artifact.embedding_model, embedder.model_id());
        assert_eq!(artifact.entry_count, ids.len());

        // Same ids, documents and metadata.
        let got = all_records(local.as_ref(), COLLECTION, &vectors[0]);
        let mut want: Vec<(String, Option<String>, Metadata)> = ids
            .iter()
            .zip(&texts)
            .zip(&metas)
            .map(|((id, t), m)| {
                let m = m.as_object().expect("object").clone();
                (id.clone(), Some(t.clone()), m.into_iter().collect())
            })
            .collect();
        want.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(got, want);

        // The local store answers exactly: its top-10 are the 10 nearest of the
        // fixture's vectors, at their cosine distances. Chroma's HNSW is
        // approximate, so its top-10 must come across with the same distances
        // and overlap the exact top-10 in at least 8 of 10.
        let by_id: std::collections::HashMap<&str, &Vec<f32>> =
            ids.iter().map(String::as_str).zip(&vectors).collect();
        let cosine_distance =
            |a: &[f32], b: &[f32]| 1.0 - a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
        for q in [
            "CD8-positive T cell",
            "heart muscle cell",
            "neuron of the retina",
            "B cell",
        ] {
            let v = embedder.embed_query(q).expect("embed");
            let mut exact: Vec<f32> = vectors.iter().map(|x| cosine_distance(&v, x)).collect();
            exact.sort_by(f32::total_cmp);
            let local_hits = local.search(COLLECTION, &v, 10).expect("local search");
            assert_eq!(local_hits.len(), 10, "{q:?}");
            for (hit, want) in local_hits.iter().zip(&exact) {
                assert!(
                    (hit.distance - want).abs() < 1e-4,
                    "{q:?}: {hit:?} vs {want}"
                );
                let own = cosine_distance(&v, by_id[hit.id.as_str()]);
                assert!((hit.distance - own).abs() < 1e-4, "{q:?}: {hit:?} vs {own}");
            }
            let chroma_hits = source.search(COLLECTION, &v, 10).expect("chroma search");
            for hit in &chroma_hits {
                let own = cosine_distance(&v, by_id[hit.id.as_str()]);
                assert!((hit.distance - own).abs() < 1e-4, "{q:?}: {hit:?} vs {own}");
            }
            let shared = chroma_hits
                .iter()
                .filter(|h| local_hits.iter().any(|l| l.id == h.id))
                .count();
            assert!(shared >= 8, "{q:?}: Chroma and local share {shared} of 10");
        }
    }

    // A source that carries an artifact needs no flag, and the artifact comes across.
    let mut meta = Metadata::new();
    let mut recorded = Artifact::from_metadata(
        &lobster_vector::open_store(&local_config)
            .expect("open local")
            .collection_info(COLLECTION)
            .expect("info")
            .metadata,
    )
    .expect("artifact");
    recorded.source_version = "v2026_03_26".into();
    recorded.write_into(&mut meta);
    source
        .set_collection_metadata(COLLECTION, meta)
        .expect("label the source");
    let out = cli(
        &[
            "import",
            "--from",
            "chromadb",
            "--collection",
            COLLECTION,
            "--to",
            "local",
            "--as",
            "cell_ontology_v2026_03_26",
            "--json",
        ],
        &url,
        &store_dir,
    );
    assert_succeeded(&out);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json report");
    assert_eq!(report["records"], ids.len());
    let local = lobster_vector::open_store(&local_config).expect("open local");
    let copied = Artifact::from_metadata(
        &local
            .collection_info("cell_ontology_v2026_03_26")
            .expect("info")
            .metadata,
    )
    .expect("artifact");
    assert_eq!(copied.source_version, "v2026_03_26");
    assert_eq!(copied.embedding_model, recorded.embedding_model);

    // An existing target is not overwritten without --force.
    drop(local);
    let out = cli(&with_provider, &url, &store_dir);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
}

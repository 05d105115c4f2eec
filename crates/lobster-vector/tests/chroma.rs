//! The Chroma store against a real `chroma run` server (LOBSTER_CHROMA_URL,
//! started by `scripts/chroma-test-server.sh`), plus its refusals against a
//! scripted fake server.
#![cfg(feature = "chroma")]

mod support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lobster_vector::chroma::{ChromaOptions, ChromaStore, TokenHeader, COLLECTION_METADATA_KEY};
use lobster_vector::http::{ApiClient, Auth, HttpOptions, Method};
use lobster_vector::testing::conformance::brute_force;
use lobster_vector::testing::service_unavailable;
use lobster_vector::{Error, FlatStore, Metadata, Record, Secret, VectorStore};
use lobster_vector_core::testing::chroma_server::PrivateChroma;
use lobster_vector_core::testing::data::{clustered, records};
use rand::Rng;
use serde_json::json;
use support::{FakeApi, Reply};

/// The test server's URL, or `None` (skip; a failure under LOBSTER_TEST_REQUIRE_SERVICES=1).
fn server_url() -> Option<String> {
    match std::env::var("LOBSTER_CHROMA_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => service_unavailable("a Chroma server (LOBSTER_CHROMA_URL)"),
    }
}

fn open(url: &str) -> ChromaStore {
    ChromaStore::open(ChromaOptions {
        url: url.into(),
        ..ChromaOptions::default()
    })
    .expect("open the Chroma test server")
}

fn store() -> Option<ChromaStore> {
    server_url().map(|u| open(&u))
}

fn unique(prefix: &str) -> String {
    let n: u32 = rand::rng().random();
    format!("{prefix}_{n:08x}")
}

mod conformance {
    use super::*;
    lobster_vector_core::conformance_suite!(optional: store());
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

#[test]
fn recall_at_10_against_flat_store_on_clustered_data() {
    let Some(store) = store() else { return };
    let (n, nq, dim) = (10_000, 200, 384);
    let mut all = clustered(42, n + nq, dim, 64, 0.6);
    let queries = all.split_off(n);
    let recs = records("v", &all);
    let c = unique("recall");
    let t = Instant::now();
    for chunk in recs.chunks(2_000) {
        store.upsert(&c, chunk).expect("upsert");
    }
    let ingest = t.elapsed().as_secs_f64();
    assert_eq!(store.count(&c).expect("count"), n);
    let flat = FlatStore::new();
    flat.upsert(&c, &recs).expect("flat");
    let (mut hit, mut total) = (0usize, 0usize);
    let (mut chroma_ms, mut flat_ms) = (Vec::new(), Vec::new());
    for q in &queries {
        let t = Instant::now();
        let want = flat.search(&c, q, 20).expect("flat");
        flat_ms.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        let got = store.search(&c, q, 20).expect("search");
        chroma_ms.push(t.elapsed().as_secs_f64() * 1e3);
        assert!(got.windows(2).all(|w| w[0].distance <= w[1].distance));
        let want10: Vec<&str> = want.iter().take(10).map(|h| h.id.as_str()).collect();
        hit += got
            .iter()
            .take(10)
            .filter(|h| want10.contains(&h.id.as_str()))
            .count();
        total += want10.len();
        // Chroma's distances are cosine distances: the shared ids agree with FlatStore.
        for g in &got {
            if let Some(w) = want.iter().find(|w| w.id == g.id) {
                assert!((g.distance - w.distance).abs() < 1e-4, "{g:?} vs {w:?}");
            }
        }
    }
    let recall = hit as f64 / total as f64;
    eprintln!(
        "chroma: recall@10 = {recall:.4} on {n}x{dim} clustered vectors; ingest {:.0} vectors/s; \
         query p50 at k=20: chroma {:.2} ms, FlatStore {:.2} ms",
        n as f64 / ingest,
        median(chroma_ms),
        median(flat_ms)
    );
    #[cfg(feature = "local")]
    {
        // The same figures for the embedded `local` store, in the same run.
        let dir = tempfile::tempdir().expect("tempdir");
        let config = lobster_vector::Config {
            backend: lobster_vector::Backend::Local,
            store_path: dir.path().to_path_buf(),
            ..lobster_vector::Config::resolve(&lobster_vector::Overrides::default())
                .expect("config")
        };
        let local = lobster_vector::open_store(&config).expect("open local");
        let t = Instant::now();
        for chunk in recs.chunks(2_000) {
            local.upsert(&c, chunk).expect("upsert");
        }
        local.flush().expect("flush");
        let local_ingest = t.elapsed().as_secs_f64();
        let local_ms: Vec<f64> = queries
            .iter()
            .map(|q| {
                let t = Instant::now();
                local.search(&c, q, 20).expect("search");
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        eprintln!(
            "local: ingest {:.0} vectors/s; query p50 at k=20: {:.2} ms",
            n as f64 / local_ingest,
            median(local_ms)
        );
    }
    store.drop_collection(&c).expect("drop");
    assert!(recall >= 0.98, "recall@10 {recall}");
}

#[test]
fn ids_documents_and_metadata_are_stored_verbatim() {
    let Some(store) = store() else { return };
    let c = unique("verbatim");
    let odd = [
        "a\"b",
        "it's",
        "../../etc/passwd",
        "$where",
        "{\"$ne\": 1}",
        "<script>alert(1)</script>",
        "back\\slash",
        "tab\tnew\nline",
        "%2F%00",
        "spaces  and ; semicolons -- ",
        "ünïcødé 細胞",
        "🫀 heart",
        "#hash",
        "?q=1&x=2",
    ];
    let mut meta = Metadata::new();
    meta.insert(
        "nested".into(),
        json!({"a": [1, 2, {"b": null}], "c": "x\"y"}),
    );
    meta.insert("list".into(), json!(["CL:0000084", "CL:0000625"]));
    meta.insert("null".into(), json!(null));
    meta.insert("".into(), json!("empty key"));
    meta.insert("#k".into(), json!(1));
    meta.insert("$k".into(), json!(2));
    meta.insert("chroma:k".into(), json!(3));
    meta.insert("big".into(), json!(u64::MAX));
    meta.insert("f".into(), json!(0.1));
    meta.insert("t".into(), json!(true));
    meta.insert("s".into(), json!("it's \"quoted\" \\ ; DROP TABLE x"));
    let recs: Vec<Record> = odd
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let mut v = vec![0.01_f32; 8];
            v[i % 8] = 1.0 + i as f32;
            Record::new(*id, v)
                .with_document(format!("doc of {id}: \"quoted\" 'single' \\ {{}} $ne"))
                .with_metadata(meta.clone())
        })
        .collect();
    store.upsert(&c, &recs).expect("upsert");
    assert_eq!(store.count(&c).expect("count"), odd.len());
    for r in &recs {
        let hits = store.search(&c, &r.vector, odd.len()).expect("search");
        let h = hits
            .iter()
            .find(|h| h.id == r.id)
            .expect("every id comes back");
        assert_eq!(h.document, r.document);
        assert_eq!(h.metadata, meta, "metadata of {:?}", r.id);
    }
    let page = store.read_page(&c, 0, 100).expect("page");
    let got: HashSet<&str> = page.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(got, odd.iter().copied().collect());
    let gone: Vec<String> = odd[..5].iter().map(|s| s.to_string()).collect();
    assert_eq!(store.delete(&c, &gone).expect("delete"), 5);
    assert_eq!(store.count(&c).expect("count"), odd.len() - 5);
    store.drop_collection(&c).expect("drop");
}

#[test]
fn overwrite_replaces_metadata_and_document() {
    let Some(store) = store() else { return };
    let c = unique("overwrite_full");
    let mut m = Metadata::new();
    m.insert("old".into(), json!("x"));
    m.insert("nested".into(), json!({"a": 1}));
    store
        .upsert(
            &c,
            &[Record::new("a", vec![1.0, 0.0, 0.0])
                .with_document("first")
                .with_metadata(m)],
        )
        .expect("upsert");
    let mut m2 = Metadata::new();
    m2.insert("new".into(), json!(2));
    store
        .upsert(
            &c,
            &[Record::new("a", vec![0.0, 1.0, 0.0]).with_metadata(m2.clone())],
        )
        .expect("overwrite");
    let hit = store
        .search(&c, &[0.0, 1.0, 0.0], 1)
        .expect("search")
        .remove(0);
    assert_eq!(hit.document, None, "the old document is gone");
    assert_eq!(hit.metadata, m2, "old keys are gone");
    store
        .upsert(&c, &[Record::new("a", vec![0.0, 0.0, 1.0])])
        .expect("overwrite");
    let hit = store
        .search(&c, &[0.0, 0.0, 1.0], 1)
        .expect("search")
        .remove(0);
    assert!(hit.metadata.is_empty() && hit.document.is_none(), "{hit:?}");
    assert_eq!(store.count(&c).expect("count"), 1);
    store.drop_collection(&c).expect("drop");
}

#[test]
fn collection_metadata_is_stored_with_the_collection() {
    let Some(url) = server_url() else { return };
    let c = unique("artifact");
    let mut m = Metadata::new();
    m.insert(
        "artifact".into(),
        json!({"embedding_provider": "minilm", "dimensions": 384, "nested": {"q": "it's"}}),
    );
    open(&url)
        .set_collection_metadata(&c, m.clone())
        .expect("set");
    // Another client (a later process) reads it back.
    let info = open(&url).collection_info(&c).expect("info");
    assert_eq!(info.metadata, m);
    assert_eq!((info.count, info.dimension), (0, None));
    open(&url).drop_collection(&c).expect("drop");
}

#[test]
fn a_non_cosine_collection_is_refused_for_search_but_readable() {
    let Some(url) = server_url() else { return };
    let store = open(&url);
    let c = unique("l2space");
    let client = ApiClient::new("chromadb", "LOBSTER_CHROMA_TOKEN", HttpOptions::default());
    let base =
        format!("{url}/api/v2/tenants/default_tenant/databases/default_database/collections");
    let made = client
        .send_json(
            Method::Post,
            &base,
            Auth::None,
            Some(&json!({"name": c, "configuration": {"hnsw": {"space": "l2"}}})),
        )
        .expect("create");
    let id = made["id"].as_str().expect("id").to_string();
    client
        .send_json(
            Method::Post,
            &format!("{base}/{id}/upsert"),
            Auth::None,
            Some(&json!({"ids": ["x"], "embeddings": [[1.0, 2.0]]})),
        )
        .expect("upsert");
    let e = store.search(&c, &[1.0, 2.0], 1).expect_err("l2 space");
    assert!(
        matches!(&e, Error::MetricMismatch { metric, .. } if metric.contains("l2")),
        "{e:?}"
    );
    let page = store.read_page(&c, 0, 10).expect("page");
    assert_eq!(page[0].vector, vec![1.0, 2.0]);
    store.drop_collection(&c).expect("drop");
}

#[test]
fn writes_larger_than_the_batch_limit_are_split() {
    let Some(url) = server_url() else { return };
    let store = ChromaStore::open(ChromaOptions {
        url,
        max_batch: 7,
        ..ChromaOptions::default()
    })
    .expect("open");
    assert_eq!(store.max_batch(), 7);
    let c = unique("split");
    let recs = records("s", &clustered(3, 50, 8, 4, 0.5));
    store.upsert(&c, &recs).expect("upsert");
    assert_eq!(store.count(&c).expect("count"), 50);
    let ids: Vec<String> = recs.iter().map(|r| r.id.clone()).collect();
    let batch = store
        .search_batch(&c, &[recs[0].vector.as_slice(); 9], 3)
        .expect("batch");
    assert_eq!(batch.len(), 9);
    let want = brute_force(&recs, &recs[0].vector, 3);
    assert_eq!(batch[8][0].id, want[0].0);
    assert_eq!(store.delete(&c, &ids[..20]).expect("delete"), 20);
    assert_eq!(store.count(&c).expect("count"), 30);
    store.drop_collection(&c).expect("drop");
}

/// A Chroma server of this test's own, with its state directory.
struct PrivateServer {
    chroma: PrivateChroma,
    _state: tempfile::TempDir,
}

impl PrivateServer {
    /// Starts one when the shared test server is configured (else skips or fails).
    fn start() -> Option<Self> {
        server_url()?;
        let state = tempfile::tempdir().expect("tempdir");
        let chroma = PrivateChroma::start(state.path());
        Some(Self {
            chroma,
            _state: state,
        })
    }
}

#[test]
fn server_restart_during_ingest_loses_and_duplicates_nothing() {
    let Some(server) = PrivateServer::start() else {
        return;
    };
    let store = Arc::new(
        ChromaStore::open(ChromaOptions {
            url: server.chroma.url().to_string(),
            http: HttpOptions {
                connect_timeout: Duration::from_secs(2),
                read_timeout: Duration::from_secs(30),
                max_retries: 3,
                base_backoff: Duration::from_millis(200),
                max_backoff: Duration::from_secs(1),
            },
            ..ChromaOptions::default()
        })
        .expect("open"),
    );
    let c = "restart_ingest";
    let recs = records("r", &clustered(9, 12_000, 64, 16, 0.5));
    let batches: Vec<Vec<Record>> = recs.chunks(250).map(<[Record]>::to_vec).collect();
    let started = Arc::new(AtomicBool::new(false));
    let ingest = {
        let (store, started) = (store.clone(), started.clone());
        std::thread::spawn(move || {
            let (mut acknowledged, mut errors) = (Vec::new(), Vec::new());
            for batch in batches {
                // A batch the client reports as failed is sent again, as a caller would.
                let deadline = Instant::now() + Duration::from_secs(120);
                loop {
                    match store.upsert(c, &batch) {
                        Ok(()) => {
                            acknowledged.extend(batch.iter().map(|r| r.id.clone()));
                            break;
                        }
                        Err(e) => {
                            assert!(Instant::now() < deadline, "still failing: {e}");
                            assert!(
                                matches!(e, Error::Backend { .. }),
                                "a transport failure is a backend error: {e:?}"
                            );
                            errors.push(e.to_string());
                            std::thread::sleep(Duration::from_millis(500));
                        }
                    }
                }
                started.store(true, Ordering::SeqCst);
            }
            (acknowledged, errors)
        })
    };
    while !started.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    server.chroma.restart();
    let (acknowledged, errors) = ingest.join().expect("ingest thread");
    eprintln!(
        "restart during ingest: {} records acknowledged, {} failed attempts reported",
        acknowledged.len(),
        errors.len()
    );
    let unique_acked: HashSet<&String> = acknowledged.iter().collect();
    assert_eq!(unique_acked.len(), recs.len());
    assert_eq!(store.count(c).expect("count"), recs.len());
    let mut seen = HashSet::new();
    let mut offset = 0;
    loop {
        let page = store.read_page(c, offset, 1000).expect("page");
        if page.is_empty() {
            break;
        }
        offset += page.len();
        for r in page {
            assert!(seen.insert(r.id.clone()), "duplicate id {}", r.id);
        }
    }
    assert_eq!(seen.len(), recs.len());
    for r in recs.iter().step_by(997) {
        assert_eq!(store.search(c, &r.vector, 1).expect("search")[0].id, r.id);
    }
}

// --- refusals, against a scripted fake server ---

fn fake_chroma(version: &'static str, database_status: u16) -> FakeApi {
    FakeApi::start(move |_, r| match r.path.as_str() {
        "/api/v2/version" => Reply::json(200, json!(version)),
        "/api/v2/pre-flight-checks" => Reply::json(
            200,
            json!({"max_batch_size": 100, "supports_base64_encoding": true}),
        ),
        p if p.starts_with("/api/v2/tenants/") => Reply::json(
            database_status,
            json!({"error": "NotFoundError", "message": "Database [x] not found"}),
        ),
        _ => Reply::json(404, json!({"error": "NotFoundError", "message": "no"})),
    })
}

fn options(url: String) -> ChromaOptions {
    ChromaOptions {
        url,
        http: HttpOptions {
            max_retries: 0,
            ..HttpOptions::default()
        },
        ..ChromaOptions::default()
    }
}

#[test]
fn an_incompatible_server_is_refused_clearly() {
    for version in ["0.6.3", "2.0.0", "not a version"] {
        let api = fake_chroma(version, 200);
        let e = ChromaStore::open(options(api.url())).expect_err(version);
        let text = e.chain();
        assert!(
            text.contains(version) && text.contains("chromadb 1.x"),
            "{text}"
        );
    }
    let api = FakeApi::start(|_, _| Reply::json(404, json!({"detail": "Not Found"})));
    let text = ChromaStore::open(options(api.url()))
        .expect_err("no v2")
        .chain();
    assert!(text.contains("v2 API") && text.contains("404"), "{text}");
}

#[test]
fn a_missing_database_and_refused_token_are_named() {
    let api = fake_chroma("1.0.0", 404);
    let mut o = options(api.url());
    o.database = "my db".into();
    let text = ChromaStore::open(o).expect_err("missing database").chain();
    assert!(
        text.contains("my db") && text.contains("LOBSTER_CHROMA_DATABASE"),
        "{text}"
    );
    assert!(
        api.requests()
            .iter()
            .any(|r| r.path == "/api/v2/tenants/default_tenant/databases/my%20db"),
        "{:?}",
        api.requests()
    );

    let api = fake_chroma("1.0.0", 401);
    let mut o = options(api.url());
    o.token = Some(Secret::new("s3cret"));
    o.token_header = TokenHeader::XChromaToken;
    let e = ChromaStore::open(o).expect_err("refused token");
    assert!(
        matches!(&e, Error::Unauthorized { variable, status: 401, .. } if variable == "LOBSTER_CHROMA_TOKEN"),
        "{e:?}"
    );
    assert!(!e.chain().contains("s3cret"));
    let sent = api.requests();
    assert!(sent
        .iter()
        .all(|r| r.header("x-chroma-token") == Some("s3cret")));
}

#[test]
fn the_bearer_token_is_sent_by_default() {
    let api = fake_chroma("1.0.0", 200);
    let mut o = options(api.url());
    o.token = Some(Secret::new("tok"));
    let store = ChromaStore::open(o).expect("open");
    assert_eq!(
        store.max_batch(),
        100,
        "the server's limit lowers the option"
    );
    assert!(api
        .requests()
        .iter()
        .all(|r| r.header("authorization") == Some("Bearer tok")));
    assert_eq!(COLLECTION_METADATA_KEY, "lobster_vector:metadata");
}

/// The whole service on Chroma with the real MiniLM model and Cell Ontology
/// (`scripts/setup.sh`): build, recall against FlatStore on real embeddings of
/// ontology texts, and a known answer.
#[cfg(feature = "candle")]
#[test]
fn real_minilm_cell_ontology_on_chroma() {
    use lobster_vector::build::{build_collection, BuildOptions, NoProgress};
    use lobster_vector::ontology::{OntologyKind, OntologyLibrary};
    use lobster_vector::{open_embedder, Config, Overrides, SearchService};

    let Some(store) = store() else { return };
    let config = Config::resolve(&Overrides::default()).expect("config");
    let embedder = match open_embedder(&config) {
        Ok(e) => e,
        Err(e) => {
            let _: Option<()> = service_unavailable(&format!("the MiniLM model ({e})"));
            return;
        }
    };
    let library = Arc::new(OntologyLibrary::new(vec![config
        .assets_dir
        .join("ontologies")]));
    let cl = match library.newest(OntologyKind::CellOntology) {
        Ok(o) => o,
        Err(e) => {
            let _: Option<()> = service_unavailable(&format!("the CL source ({e})"));
            return;
        }
    };
    let store: Arc<dyn VectorStore> = Arc::new(store);
    let t = Instant::now();
    let report = build_collection(
        &cl,
        embedder.as_ref(),
        store.as_ref(),
        &BuildOptions {
            force: true,
            ..BuildOptions::default()
        },
        &NoProgress,
        &AtomicBool::new(false),
    )
    .expect("build on chroma");
    eprintln!(
        "chroma: built {} ({} entries) in {:.1} s incl. embedding",
        report.collection,
        report.entries,
        t.elapsed().as_secs_f64()
    );
    let c = report.collection.clone();
    assert_eq!(store.count(&c).expect("count"), report.entries);

    // Every record back, page by page, into the exact reference.
    let flat = FlatStore::new();
    let mut offset = 0;
    loop {
        let page = store.read_page(&c, offset, 1000).expect("page");
        if page.is_empty() {
            break;
        }
        offset += page.len();
        flat.upsert(&c, &page).expect("flat");
    }
    assert_eq!(offset, report.entries);

    // Queries: term definitions (free text that is not in the collection).
    let defs: Vec<&str> = cl
        .live_terms()
        .filter_map(|t| t.definition.as_deref())
        .step_by(7)
        .take(300)
        .collect();
    let queries = embedder.embed_documents(&defs).expect("embed");
    let (mut hit, mut total) = (0, 0);
    for q in &queries {
        let want: Vec<String> = flat
            .search(&c, q, 10)
            .expect("flat")
            .into_iter()
            .map(|h| h.id)
            .collect();
        let got = store.search(&c, q, 10).expect("search");
        hit += got.iter().filter(|h| want.contains(&h.id)).count();
        total += want.len();
    }
    let recall = hit as f64 / total as f64;
    eprintln!(
        "chroma: recall@10 = {recall:.4} on real MiniLM embeddings of CL ({} queries)",
        queries.len()
    );
    assert!(recall >= 0.98, "recall@10 {recall}");

    let service = SearchService::new(store.clone(), embedder).with_ontologies(Some(library));
    let m = service
        .match_ontology("CD8+ T cells", "cell_type", 3)
        .expect("match on chroma");
    assert!(m.iter().any(|x| x.ontology_id == "CL:0000625"), "{m:?}");
    store.drop_collection(&c).expect("drop");
}

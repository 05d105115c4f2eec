use std::sync::Arc;

use serde_json::json;

use super::*;
use crate::testing::HashingEmbedder;
use crate::{FlatStore, Metadata, Record};

const DIM: usize = 64;

/// Writes an ontology-shaped collection: one entry per (concept, text).
fn build(
    store: &FlatStore,
    embedder: &dyn Embedder,
    name: &str,
    entries: &[(&str, &str, &str)],
    finished: bool,
) {
    let texts: Vec<&str> = entries.iter().map(|e| e.2).collect();
    let vectors = embedder.embed_documents(&texts).expect("embed");
    let records: Vec<Record> = entries
        .iter()
        .zip(vectors)
        .enumerate()
        .map(|(i, ((id, label, text), v))| {
            let mut m = Metadata::new();
            m.insert("ontology_id".into(), json!(id));
            m.insert("label".into(), json!(label));
            m.insert("matched_text".into(), json!(text));
            Record::new(format!("{id}#{i}"), v)
                .with_document(*text)
                .with_metadata(m)
        })
        .collect();
    store.upsert(name, &records).expect("upsert");
    if finished {
        let mut meta = Metadata::new();
        Artifact {
            embedding_provider: embedder.provider().into(),
            embedding_model: embedder.model_id().into(),
            dimensions: embedder.dimensions(),
            ontology: "mondo".into(),
            source_version: name.trim_start_matches("mondo_").into(),
            source_sha256: "0".repeat(64),
            built_at: "2026-01-01T00:00:00Z".into(),
            lobster_vector_version: crate::VERSION.into(),
            entry_count: records.len(),
            term_count: 0,
            source_path: None,
        }
        .write_into(&mut meta);
        store.set_collection_metadata(name, meta).expect("metadata");
    }
}

const ENTRIES: &[(&str, &str, &str)] = &[
    ("MONDO:1", "myocardial infarction", "myocardial infarction"),
    ("MONDO:1", "myocardial infarction", "heart attack"),
    ("MONDO:1", "myocardial infarction", "heart attacks"),
    ("MONDO:2", "heart disease", "heart disease"),
    ("MONDO:3", "asthma", "asthma"),
    ("MONDO:4", "lung cancer", "lung cancer"),
];

fn service() -> (Arc<FlatStore>, SearchService) {
    let store = Arc::new(FlatStore::new());
    let embedder = HashingEmbedder::new(DIM);
    build(&store, &embedder, "mondo_v2025_01_01", ENTRIES, true);
    build(&store, &embedder, "mondo_v2026_01_01", ENTRIES, true);
    // Newest by name but unfinished: never chosen.
    build(&store, &embedder, "mondo_v2027_01_01", ENTRIES, false);
    let service = SearchService::new(store.clone(), Arc::new(embedder));
    (store, service)
}

#[test]
fn alias_resolves_to_newest_finished_build() {
    let (_, s) = service();
    for alias in ["mondo", "disease", "MONDO"] {
        assert_eq!(
            s.resolve_collection(alias).expect("resolve").name,
            "mondo_v2026_01_01"
        );
    }
    assert_eq!(
        s.resolve_collection("mondo_v2025_01_01").expect("pin").name,
        "mondo_v2025_01_01"
    );
    let e = s
        .resolve_collection("mondo_v2027_01_01")
        .expect_err("unfinished");
    assert!(
        matches!(&e, Error::BuildUnfinished { collection } if collection == "mondo_v2027_01_01"),
        "{e:?}"
    );
    match s.resolve_collection("diseases") {
        Err(Error::UnknownOntology { valid, .. }) => {
            assert!(
                valid.contains("mondo") && valid.contains("cell_type"),
                "{valid}"
            )
        }
        other => panic!("{other:?}"),
    }
    assert!(
        matches!(s.resolve_collection("tissue"), Err(Error::NoCollection { ontology }) if ontology == "uberon")
    );
}

#[test]
fn match_collapses_entries_to_concepts() {
    let (_, s) = service();
    let m = s
        .match_ontology("heart attack", "disease", 3)
        .expect("match");
    assert_eq!(m.len(), 3);
    assert_eq!(m[0].ontology_id, "MONDO:1");
    assert_eq!(m[0].term, "myocardial infarction");
    assert_eq!(m[0].matched_text, "heart attack");
    assert_eq!(m[0].score, 1.0);
    assert_eq!(m[0].match_type, MatchType::Semantic);
    assert_eq!(
        (m[0].ontology.as_str(), m[0].ontology_version.as_str()),
        ("mondo", "v2026_01_01")
    );
    assert_eq!(m[0].distance_metric, "cosine");
    let ids: Vec<&str> = m.iter().map(|x| x.ontology_id.as_str()).collect();
    let unique: std::collections::HashSet<&str> = ids.iter().copied().collect();
    assert_eq!(ids.len(), unique.len(), "one row per concept: {ids:?}");
    assert!(m.windows(2).all(|w| w[0].score >= w[1].score));
    let json = serde_json::to_value(&m[0]).expect("json");
    for field in [
        "term",
        "ontology_id",
        "score",
        "metadata",
        "distance_metric",
        "matched_text",
        "match_type",
        "ontology",
        "ontology_version",
    ] {
        assert!(json.get(field).is_some(), "{field}");
    }
    assert_eq!(json["match_type"], "semantic");
}

#[test]
fn scores_follow_the_distance_formula() {
    let (store, s) = service();
    let q = HashingEmbedder::new(DIM)
        .embed_query("lung cancers")
        .expect("embed");
    let hits = store.search("mondo_v2026_01_01", &q, 6).expect("search");
    let got = s
        .query("lung cancers", "mondo_v2026_01_01", 6)
        .expect("query");
    for (h, g) in hits.iter().zip(&got) {
        assert_eq!(g.id, h.id);
        assert_eq!(g.score, Metric::Cosine.similarity(h.distance));
    }
}

#[test]
fn batch_equals_single() {
    let (_, s) = service();
    let terms = ["heart attack", "asthma", "lung cancer", "heart attack"];
    let batch = s.match_ontology_batch(&terms, "mondo", 2).expect("batch");
    for (t, b) in terms.iter().zip(&batch) {
        assert_eq!(&s.match_ontology(t, "mondo", 2).expect("single"), b);
    }
    let qb = s
        .query_batch(&terms, "mondo_v2026_01_01", 3)
        .expect("query batch");
    let single = s.query("asthma", "mondo_v2026_01_01", 3).expect("query");
    assert_eq!(qb[1].len(), single.len());
    for (b, q) in qb[1].iter().zip(&single) {
        assert_eq!((&b.id, b.score), (&q.id, q.score));
        assert!((b.distance - q.distance).abs() < 1e-5);
    }
}

#[test]
fn another_embedder_fails_closed() {
    let (store, _) = service();
    let other = SearchService::new(
        store,
        Arc::new(HashingEmbedder::new(DIM).with_model_id("other-model")),
    );
    for r in [
        other.match_ontology("asthma", "mondo", 3).map(|_| ()),
        other.query("asthma", "mondo_v2026_01_01", 3).map(|_| ()),
    ] {
        match r {
            Err(Error::EmbedderMismatch {
                built_with,
                query_with,
                ..
            }) => {
                assert!(built_with.contains("hashing-trigram-64"), "{built_with}");
                assert!(query_with.contains("other-model"), "{query_with}");
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn empty_query_is_invalid_and_lazy_embedder_loads_once() {
    let store: Arc<dyn VectorStore> = Arc::new(FlatStore::new());
    let loads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = loads.clone();
    let s = SearchService::with_lazy_embedder(store, move || {
        counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(Arc::new(HashingEmbedder::new(8)) as Arc<dyn Embedder>)
    });
    assert!(matches!(
        s.match_ontology("  ", "mondo", 3),
        Err(Error::InvalidInput { .. })
    ));
    assert_eq!(
        loads.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "no model load for bad input"
    );
    s.embedder().expect("load");
    s.embedder().expect("cached");
    assert_eq!(loads.load(std::sync::atomic::Ordering::SeqCst), 1);
}

/// Scores documents by their shortness.
#[derive(Debug)]
struct LengthReranker;

impl Reranker for LengthReranker {
    fn score(&self, _query: &str, documents: &[&str]) -> Result<Vec<f32>> {
        Ok(documents.iter().map(|d| 1.0 / d.len() as f32).collect())
    }
    fn name(&self) -> &str {
        "length"
    }
}

#[test]
fn reranker_reorders_and_keeps_vector_score() {
    let (store, _) = service();
    let s = SearchService::new(store, Arc::new(HashingEmbedder::new(DIM)))
        .with_reranker(Some(Arc::new(LengthReranker)));
    let m = s.match_ontology("heart attack", "mondo", 4).expect("match");
    // Shortest document first: "asthma".
    assert_eq!(m[0].ontology_id, "MONDO:3");
    assert!(m.windows(2).all(|w| w[0].score >= w[1].score));
    assert!(m.iter().all(|x| x.metadata.get("vector_score").is_some()));
}

/// Prefers the documents the vector search ranked last.
#[derive(Debug)]
struct ReverseReranker;

impl Reranker for ReverseReranker {
    fn score(&self, _query: &str, documents: &[&str]) -> Result<Vec<f32>> {
        let n = documents.len() as f32;
        Ok((0..documents.len()).map(|i| (i as f32 + 1.0) / n).collect())
    }
    fn name(&self) -> &str {
        "reverse"
    }
}

/// A reranker without credentials.
#[derive(Debug)]
struct InactiveReranker;

impl Reranker for InactiveReranker {
    fn score(&self, _query: &str, _documents: &[&str]) -> Result<Vec<f32>> {
        Err(Error::NotAvailable {
            what: "test reranker".into(),
            hint: "none".into(),
        })
    }
    fn name(&self) -> &str {
        "inactive"
    }
    fn is_active(&self) -> bool {
        false
    }
}

/// The mini Cell Ontology fixture built into a store, with its library.
fn cl_service(reranker: Option<Arc<dyn Reranker>>) -> SearchService {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let ontology = crate::ontology::Ontology::load(fixtures.join("mini_cl.obo")).expect("fixture");
    let store = Arc::new(FlatStore::new());
    let embedder = HashingEmbedder::new(DIM);
    crate::build::build_collection(
        &ontology,
        &embedder,
        store.as_ref(),
        &crate::build::BuildOptions::default(),
        &crate::build::NoProgress,
        &std::sync::atomic::AtomicBool::new(false),
    )
    .expect("build");
    SearchService::new(store, Arc::new(embedder))
        .with_ontologies(Some(Arc::new(crate::ontology::OntologyLibrary::new(vec![
            fixtures,
        ]))))
        .with_reranker(reranker)
}

#[test]
fn reranker_reorders_semantic_hits_and_exact_matches_stay_first() {
    let plain = cl_service(None)
        .match_ontology("lymphocyte", "cl", 4)
        .expect("match");
    let reranked = cl_service(Some(Arc::new(ReverseReranker)))
        .match_ontology("lymphocyte", "cl", 4)
        .expect("match");
    // The exact label stays first with its exact score, not reranked.
    for m in [&plain, &reranked] {
        assert_eq!(m[0].ontology_id, "CL:0000542");
        assert_eq!(m[0].match_type, MatchType::ExactLabel);
        assert_eq!(m[0].score, 1.0);
        assert!(m[0].metadata.get("reranked").is_none());
    }
    let semantic = |m: &[OntologyMatch]| -> Vec<String> {
        m.iter()
            .skip(1)
            .map(|r| r.ontology_id.clone())
            .collect::<Vec<_>>()
    };
    assert_ne!(
        semantic(&plain),
        semantic(&reranked),
        "the reranker changed the order"
    );
    for r in &reranked[1..] {
        assert!(!r.match_type.is_exact(), "{r:?}");
        assert_eq!(r.metadata["reranked"], serde_json::json!(true));
        if r.match_type == MatchType::Semantic {
            assert!(r.metadata["vector_score"].is_number());
        }
        assert!((0.0..=1.0).contains(&r.score));
    }
    assert!(reranked[1..].windows(2).all(|w| w[0].score >= w[1].score));
}

#[test]
fn an_inactive_reranker_keeps_the_order_and_says_so() {
    let plain = cl_service(None)
        .match_ontology("nerve cells of the brain", "cl", 4)
        .expect("match");
    let degraded = cl_service(Some(Arc::new(InactiveReranker)))
        .match_ontology("nerve cells of the brain", "cl", 4)
        .expect("match");
    let ids = |m: &[OntologyMatch]| m.iter().map(|r| r.ontology_id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&plain), ids(&degraded));
    for (p, d) in plain.iter().zip(&degraded) {
        assert_eq!(p.score, d.score, "no invented scores");
        if !d.match_type.is_exact() {
            assert_eq!(d.metadata["reranked"], serde_json::json!(false));
        }
    }
}

/// Two concepts sharing an exact synonym: the one with descendants, and a leaf.
const SHARED_SYNONYM_OBO: &str = "format-version: 1.4
data-version: releases/2026-01-01
ontology: cl

[Term]
id: CL:0000001
name: broad cell
synonym: \"BC\" EXACT []

[Term]
id: CL:0000002
name: narrow branch cell
is_a: CL:0000001 ! broad cell

[Term]
id: CL:0000003
name: other branch cell
is_a: CL:0000001 ! broad cell

[Term]
id: CL:0000000
name: bright cell
synonym: \"BC\" EXACT []
";

/// The exact rows of `query` in a store of [`SHARED_SYNONYM_OBO`] whose
/// matcher scores a candidate by `weight` × its number of descendants alone.
fn exact_rows_ranked_by_descendants(weight: f32, query: &str) -> Vec<OntologyMatch> {
    use crate::matcher::{Calibration, FitReport, MatcherModel, FEATURES, MODEL_KEY};
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("CL-ontology-v2026-01-01.obo");
    std::fs::write(&path, SHARED_SYNONYM_OBO).expect("write");
    let ontology = crate::ontology::Ontology::load(&path).expect("ontology");
    let store = Arc::new(FlatStore::new());
    let embedder = HashingEmbedder::new(DIM);
    let options = crate::build::BuildOptions {
        fit: None,
        ..crate::build::BuildOptions::default()
    };
    let report = crate::build::build_collection(
        &ontology,
        &embedder,
        store.as_ref(),
        &options,
        &crate::build::NoProgress,
        &std::sync::atomic::AtomicBool::new(false),
    )
    .expect("build");
    let mut weights = vec![0.0; FEATURES.len()];
    let descendants = FEATURES
        .iter()
        .position(|f| *f == "log_descendants")
        .expect("feature");
    weights[descendants] = weight;
    let model = MatcherModel {
        features: FEATURES.iter().map(|f| f.to_string()).collect(),
        mean: vec![0.0; FEATURES.len()],
        scale: vec![1.0; FEATURES.len()],
        weights,
        calibration: Calibration {
            score_slope: 1.0,
            share_slope: 0.0,
            bias: 0.0,
        },
        report: FitReport::default(),
        features_code: crate::matcher::model::FEATURES_CODE,
    };
    let mut meta = store
        .collection_info(&report.collection)
        .expect("info")
        .metadata;
    meta.insert(
        MODEL_KEY.into(),
        serde_json::to_value(&model).expect("model"),
    );
    store
        .set_collection_metadata(&report.collection, meta)
        .expect("metadata");
    let service = SearchService::new(store, Arc::new(embedder)).with_ontologies(Some(Arc::new(
        crate::ontology::OntologyLibrary::new(vec![dir.path().to_path_buf()]),
    )));
    let rows = service.match_ontology(query, "cl", 5).expect("match");
    rows.into_iter()
        .filter(|r| r.match_type.is_exact())
        .collect()
}

#[test]
fn concepts_sharing_an_exact_text_are_ordered_by_the_matcher() {
    let ids = |rows: &[OntologyMatch]| {
        rows.iter()
            .map(|r| r.ontology_id.clone())
            .collect::<Vec<_>>()
    };
    // Rewarding descendants puts the broad concept first, although its id sorts later.
    let broad_first = exact_rows_ranked_by_descendants(1.0, "BC");
    assert_eq!(ids(&broad_first), ["CL:0000001", "CL:0000000"]);
    // Penalising them puts the leaf first: the order is the matcher's, not the ids'.
    let leaf_first = exact_rows_ranked_by_descendants(-1.0, "bc");
    assert_eq!(ids(&leaf_first), ["CL:0000000", "CL:0000001"]);
    for r in broad_first.iter().chain(&leaf_first) {
        assert_eq!(r.match_type, MatchType::ExactSynonym);
        assert_eq!(r.score, 1.0);
    }
    // A label outranks any synonym whatever the matcher says.
    let label = exact_rows_ranked_by_descendants(-1.0, "broad cell");
    assert_eq!(ids(&label), ["CL:0000001"]);
    assert_eq!(label[0].match_type, MatchType::ExactLabel);
}

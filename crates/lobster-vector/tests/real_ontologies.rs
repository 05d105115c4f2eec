//! The main job on the real assets (`scripts/setup.sh`): build the CL, UBERON
//! and MONDO collections with the real MiniLM model and check known answers.
//! Skips when the assets are absent; fails when LOBSTER_TEST_REQUIRE_SERVICES=1.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use lobster_vector::build::{build_collection, BuildOptions, NoProgress};
use lobster_vector::local::{LocalOptions, LocalStore};
use lobster_vector::ontology::{OntologyKind, OntologyLibrary};
use lobster_vector::service::MatchOptions;
use lobster_vector::testing::{recall_at_k, service_unavailable, HashingEmbedder};
use lobster_vector::{
    open_embedder, Config, Error, FlatStore, MatchType, Overrides, SearchService, VectorStore,
};

struct Fixture {
    service: SearchService,
    store: Arc<FlatStore>,
    library: Arc<OntologyLibrary>,
}

fn fixture() -> Option<Fixture> {
    let config = Config::resolve(&Overrides::default()).expect("config");
    let library = Arc::new(OntologyLibrary::new(vec![config
        .assets_dir
        .join("ontologies")]));
    let embedder = match open_embedder(&config) {
        Ok(e) => e,
        Err(e) => return service_unavailable(&format!("the MiniLM model ({e})")),
    };
    let store = Arc::new(FlatStore::new());
    let cancel = AtomicBool::new(false);
    for kind in OntologyKind::ALL {
        let ontology = match library.newest(kind) {
            Ok(o) => o,
            Err(e) => return service_unavailable(&format!("the {} source ({e})", kind.name())),
        };
        let build = || {
            build_collection(
                &ontology,
                embedder.as_ref(),
                store.as_ref(),
                &BuildOptions::default(),
                &NoProgress,
                &cancel,
            )
            .expect("build")
        };
        let report = build();
        assert!(!report.skipped);
        assert!(
            report.entries > report.terms,
            "labels and synonyms: {report:?}"
        );
        // A second build of the same source and model is a no-op.
        let again = build();
        assert!(again.skipped && again.entries == report.entries);
    }
    let service =
        SearchService::new(store.clone(), embedder).with_ontologies(Some(library.clone()));
    Some(Fixture {
        service,
        store,
        library,
    })
}

#[test]
fn main_job_on_real_assets() {
    let Some(f) = fixture() else { return };
    let s = &f.service;

    // Cell types: the predecessor's motivating example.
    let m = s
        .match_ontology("CD8+ T cells", "cell_type", 3)
        .expect("match");
    assert_eq!(m[0].ontology_id, "CL:0000625", "{m:#?}");
    assert!(m
        .iter()
        .all(|x| x.ontology == "cell_ontology" && x.ontology_version == "v2026-03-26"));
    assert!(m.windows(2).all(|w| w[0].score >= w[1].score), "{m:#?}");

    // Nonsense is not accepted: its best row's confidence is below the accept threshold.
    let m = s
        .match_ontology("foo bar baz", "cell_type", 3)
        .expect("match");
    assert!(
        m[0].score < lobster_vector::matcher::ACCEPT_THRESHOLD,
        "{m:#?}"
    );
    assert!(m.iter().all(|x| !x.match_type.is_exact()));

    // A synonym: "heart attack" is MONDO:0005068 (myocardial infarction), first.
    let m = s
        .match_ontology("heart attack", "disease", 5)
        .expect("match");
    assert_eq!(m[0].ontology_id, "MONDO:0005068", "{m:#?}");
    assert_eq!(m[0].term, "myocardial infarction");
    assert_eq!(m[0].matched_text, "heart attack");
    assert_eq!(m[0].score, 1.0);
    assert_eq!(m[0].match_type, MatchType::ExactSynonym);

    // An exact label.
    let m = s.match_ontology("colon", "tissue", 5).expect("match");
    assert_eq!(
        (m[0].ontology_id.as_str(), m[0].match_type),
        ("UBERON:0001155", MatchType::ExactLabel),
        "{m:#?}"
    );

    // A paraphrase no label or synonym spells out still finds the concept semantically.
    let m = s
        .match_ontology("cancer of the lung", "disease", 5)
        .expect("match");
    assert!(
        m.iter()
            .any(|x| x.term.contains("lung") && x.match_type == MatchType::Semantic),
        "{m:#?}"
    );

    // An obsolete MONDO id redirects to its live replacement.
    let mondo = f.library.newest(OntologyKind::Mondo).expect("mondo");
    let (obsolete, target) = mondo
        .terms()
        .iter()
        .filter(|t| t.deprecated)
        .find_map(|t| {
            let r = mondo.resolve_obsolete(&t.id)?;
            let target = r.replaced_by?;
            mondo
                .get(&target)
                .filter(|x| !x.deprecated)
                .map(|_| (t.id.clone(), target))
        })
        .expect("an obsolete MONDO term with a live replacement");
    let m = s.match_ontology(&obsolete, "mondo", 3).expect("match");
    assert_eq!(m[0].ontology_id, target, "{m:#?}");
    assert_eq!(m[0].match_type, MatchType::ObsoleteRedirect);
    assert_eq!(m[0].metadata["obsolete_id"], obsolete.as_str());

    // `within` keeps only descendants of T cell (CL:0000084).
    let opts = MatchOptions {
        k: 5,
        within: Some("CL:0000084".into()),
    };
    let m = s
        .match_ontology_with("cytotoxic lymphocyte", "cl", &opts)
        .expect("within");
    let cl = f.library.newest(OntologyKind::CellOntology).expect("cl");
    let graph = lobster_vector::ontology::graph::Graph::new(&cl);
    assert_eq!(m.len(), 5);
    for x in &m {
        assert!(
            graph
                .is_descendant_of(&x.ontology_id, "CL:0000084")
                .expect("known id"),
            "{x:#?}"
        );
    }

    // One row per concept.
    let m = s.match_ontology("T cell", "cl", 10).expect("match");
    let mut ids: Vec<&str> = m.iter().map(|x| x.ontology_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), m.len());

    // Fail closed: another embedder may not query these collections.
    let other = SearchService::new(f.store.clone(), Arc::new(HashingEmbedder::new(384)));
    match other.match_ontology("colon", "tissue", 3) {
        Err(Error::EmbedderMismatch { built_with, .. }) => {
            assert!(built_with.contains("all-MiniLM-L6-v2"), "{built_with}")
        }
        other => panic!("expected EmbedderMismatch, got {other:?}"),
    }

    local_store_recall_on_real_mondo(&f);

    // Bad input: an empty query and an unknown alias are typed errors.
    assert!(matches!(
        s.match_ontology("   ", "mondo", 3),
        Err(Error::InvalidInput { .. })
    ));
    assert!(matches!(
        s.match_ontology("x", "diseases", 3),
        Err(Error::UnknownOntology { .. })
    ));
}

/// Recall@10 of the `local` store (SQLite + HNSW, default options) against
/// the exact FlatStore on the real MONDO collection: every label and synonym
/// embedded with MiniLM. Queries: every 100th stored vector, and new
/// phrasings of labels that are in no entry.
fn local_store_recall_on_real_mondo(f: &Fixture) {
    let collection = f
        .store
        .list_collections()
        .expect("list")
        .into_iter()
        .find(|c| c.starts_with("mondo_"))
        .expect("the MONDO collection");
    let dir = tempfile::tempdir().expect("tempdir");
    let local = LocalStore::open(dir.path(), LocalOptions::default()).expect("open");
    let started = std::time::Instant::now();
    // Queries: every 100th stored vector, taken while copying.
    let mut queries: Vec<Vec<f32>> = Vec::new();
    let mut n = 0;
    loop {
        let page = f.store.read_page(&collection, n, 5_000).expect("page");
        if page.is_empty() {
            break;
        }
        local.upsert(&collection, &page).expect("upsert");
        queries.extend(page.iter().step_by(100).map(|r| r.vector.clone()));
        n += page.len();
    }
    let ingest = started.elapsed().as_secs_f64();
    assert_eq!(local.count(&collection).expect("count"), n);
    assert_eq!(f.store.count(&collection).expect("count"), n);
    // Distinct label and synonym texts of live MONDO terms (88,405 in v2026-05-05).
    assert!(n > 80_000, "MONDO labels and synonyms: {n}");

    let embedder = f.service.embedder().expect("embedder");
    let mondo = f.library.newest(OntologyKind::Mondo).expect("mondo");
    let phrasings: Vec<String> = mondo
        .terms()
        .iter()
        .filter(|t| !t.deprecated)
        .step_by(150)
        .map(|t| format!("patient with a history of {}", t.label))
        .collect();
    let texts: Vec<&str> = phrasings.iter().map(String::as_str).collect();
    queries.extend(embedder.embed_documents(&texts).expect("embed"));

    let recall = recall_at_k(&local, f.store.as_ref(), &collection, &queries, 10);
    eprintln!(
        "local store: recall@10 = {recall:.4} against FlatStore on {n} real MONDO vectors, \
         {} queries ({} new phrasings); ingest {:.0} vectors/s",
        queries.len(),
        phrasings.len(),
        n as f64 / ingest
    );
    assert!(recall >= 0.98, "recall@10 {recall}");
}

//! The matcher: its ranker beats dense-only on a fixture's held-out synonyms,
//! and each channel finds real ontology examples.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use lobster_vector_core::testing::{service_unavailable, HashingEmbedder};
use lobster_vector_core::FlatStore;
use lobster_vector_core::VectorStore;
use lobster_vector_match::build::{build_collection, BuildOptions, NoProgress};
use lobster_vector_match::matcher::{CandidateGenerator, FitOptions, MatcherModel, MODEL_KEY};
use lobster_vector_match::ontology::{Ontology, Synonym, Term};

/// Made-up words, so neither embedder nor lexicon knows them.
const WORDS: [&str; 24] = [
    "zorvat", "quelin", "marbic", "tovren", "plasku", "drimel", "vostan", "kelbro", "furnim",
    "gastel", "hormix", "jundal", "lupric", "nevost", "orbanu", "pirtel", "quanso", "rimbet",
    "sovlar", "trenik", "ulmorb", "vetrac", "wistel", "yorban",
];

fn term(id: usize, label: String, synonyms: Vec<String>, parent: Option<usize>) -> Term {
    Term {
        id: format!("FX:{id:04}"),
        label,
        definition: None,
        synonyms: synonyms
            .into_iter()
            .map(|text| Synonym { text, scope: None })
            .collect(),
        parents: parent.map(|p| format!("FX:{p:04}")).into_iter().collect(),
        deprecated: false,
        replaced_by: None,
        consider: vec![],
    }
}

/// 240 terms named by three made-up words and a head word; each has, as
/// synonyms, its initialism (`ZQM cell`) and its words in another order
/// with `of` (`cell of marbic zorvat quelin`): the forms curators write,
/// which a character-trigram embedder reads poorly.
fn fixture() -> Ontology {
    let mut terms = vec![term(0, "cell".into(), vec![], None)];
    for i in 0..240 {
        let (a, b, c) = (
            WORDS[i % 24],
            WORDS[(i / 24 + i) % 24],
            WORDS[(i * 7 + 3) % 24],
        );
        let label = format!("{a} {b} {c} cell");
        let initials: String = [a, b, c].iter().map(|w| w[..1].to_uppercase()).collect();
        terms.push(term(
            i + 1,
            label,
            vec![format!("{initials} cell"), format!("cell of {c} {a} {b}")],
            Some(0),
        ));
    }
    // Initialisms and reorderings may coincide between terms: keep them unique.
    let mut seen = std::collections::HashSet::new();
    for t in &mut terms {
        t.synonyms.retain(|s| seen.insert(s.text.to_lowercase()));
    }
    Ontology::from_terms("fixture", None, "v1", terms).expect("fixture ontology")
}

/// Builds `ontology` into `store` with a matcher fitted on at most `max_queries` held-out synonyms.
fn build_with_matcher(
    ontology: &Ontology,
    embedder: &HashingEmbedder,
    store: &FlatStore,
    max_queries: usize,
) -> lobster_vector_match::build::BuildReport {
    let options = BuildOptions {
        fit: Some(FitOptions {
            max_queries,
            ..FitOptions::default()
        }),
        ..BuildOptions::default()
    };
    build_collection(
        ontology,
        embedder,
        store,
        &options,
        &NoProgress,
        &AtomicBool::new(false),
    )
    .expect("build")
}

#[test]
fn the_fitted_ranker_beats_dense_only_on_held_out_synonyms() {
    let ontology = fixture();
    let store = FlatStore::new();
    let report = build_with_matcher(&ontology, &HashingEmbedder::new(256), &store, 400);
    let fit = report.matcher.expect("a fitted matcher");
    assert!(fit.calibration_queries >= 30, "{fit:?}");
    assert!(
        fit.ranker_acc1 >= fit.dense_acc1 + 0.15,
        "ranker {:.3} vs dense {:.3}",
        fit.ranker_acc1,
        fit.dense_acc1
    );
    // The model is stored with the collection and reads back.
    let info = store.collection_info(&report.collection).expect("info");
    let model: MatcherModel =
        serde_json::from_value(info.metadata[MODEL_KEY].clone()).expect("stored model");
    assert!(model.is_compatible());
    assert_eq!(model.report, fit);
    assert!(model.calibration.score_slope >= 0.0 && model.calibration.share_slope >= 0.0);
}

#[test]
fn a_build_of_the_same_source_fits_a_stale_or_missing_matcher_again() {
    let ontology = fixture();
    let store = FlatStore::new();
    let embedder = HashingEmbedder::new(128);
    let build = || build_with_matcher(&ontology, &embedder, &store, 200);
    let first = build();
    let stored = |name: &str| -> Option<MatcherModel> {
        let meta = store.collection_info(name).expect("info").metadata;
        MatcherModel::from_metadata(&meta).map(|m| m.expect("model"))
    };
    let model = stored(&first.collection).expect("model");
    assert!(model.is_current());
    // Current: the second build is a no-op.
    let again = build();
    assert!(again.skipped && again.matcher.is_none(), "{again:?}");
    // Fitted by other feature code: it still applies, and the build fits it again.
    let mut old = model.clone();
    old.features_code = 0;
    assert!(old.is_compatible() && !old.is_current());
    let mut meta = store
        .collection_info(&first.collection)
        .expect("info")
        .metadata;
    meta.insert(MODEL_KEY.into(), serde_json::to_value(&old).expect("json"));
    store
        .set_collection_metadata(&first.collection, meta.clone())
        .expect("metadata");
    let refitted = build();
    assert!(refitted.skipped, "nothing is embedded again");
    assert!(refitted.matcher.is_some(), "{refitted:?}");
    assert_eq!(refitted.collection, first.collection);
    let mut now = stored(&first.collection).expect("model");
    assert!(now.is_current());
    now.report.seconds = model.report.seconds;
    assert_eq!(now, model, "the same fit as the first build");
    // Missing: fitted again too.
    meta.remove(MODEL_KEY);
    store
        .set_collection_metadata(&first.collection, meta)
        .expect("metadata");
    assert!(build().matcher.is_some());
    assert!(stored(&first.collection).is_some_and(|m| m.is_current()));
}

#[test]
fn fitting_is_deterministic() {
    let ontology = fixture();
    let fit = || {
        let store = FlatStore::new();
        let r = build_with_matcher(&ontology, &HashingEmbedder::new(128), &store, 200);
        let meta = store.collection_info(&r.collection).expect("info").metadata;
        let mut model: MatcherModel =
            serde_json::from_value(meta[MODEL_KEY].clone()).expect("model");
        model.report.seconds = 0.0;
        model
    };
    assert_eq!(fit(), fit());
}

fn real_ontology(prefix: &str) -> Option<Ontology> {
    let dir = std::env::var_os("LOBSTER_ASSETS_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".lobster/assets")))
        .map(|d| d.join("ontologies"));
    let path = dir.and_then(|d| {
        std::fs::read_dir(&d)
            .ok()?
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&format!("{prefix}-ontology-")))
            })
    });
    match path {
        Some(p) => Some(Ontology::load(p).expect("real ontology")),
        None => service_unavailable(&format!("the real {prefix} source (bash scripts/setup.sh)")),
    }
}

/// The best lexical candidates' term ids for a query (no dense hits).
fn lexical_top(o: &Ontology, query: &str, n: usize) -> Vec<String> {
    let g = CandidateGenerator::new(o);
    let mut c = g.candidates(query, &[], &(0..0));
    // Rank by word coverage of both sides, then trigram similarity.
    c.sort_by(|a, b| {
        let key = |x: &lobster_vector_match::matcher::Candidate| {
            x.features[8] + x.features[9] + x.features[6]
        };
        key(b).total_cmp(&key(a)).then(a.term.cmp(&b.term))
    });
    c.iter()
        .take(n)
        .map(|c| o.terms()[c.term as usize].id.clone())
        .collect()
}

#[test]
fn lexical_channel_reads_curator_forms_on_real_cl_and_uberon() {
    let Some(cl) = real_ontology("CL") else {
        return;
    };
    // Word order free, marker notation, plurals.
    let appendix = lexical_top(&cl, "appendix macrophage", 3);
    assert!(
        appendix.iter().any(|id| cl
            .get(id)
            .is_some_and(|t| t.label.contains("macrophage") && t.label.contains("appendix"))),
        "{appendix:?}"
    );
    let cd14 = lexical_top(&cl, "CD14+ monocytes", 3);
    assert!(cd14.contains(&"CL:0001054".to_string()), "{cd14:?}");
    let Some(uberon) = real_ontology("UBERON") else {
        return;
    };
    let femur = lexical_top(&uberon, "femur diaphysis", 3);
    assert!(
        femur.iter().any(|id| uberon
            .get(id)
            .is_some_and(|t| t.label == "diaphysis of femur")),
        "{femur:?}"
    );
}

#[test]
fn abbreviation_channel_finds_initialisms_on_real_cl() {
    let Some(cl) = real_ontology("CL") else {
        return;
    };
    let g = CandidateGenerator::new(&cl);
    let found = |q: &str| -> Vec<String> {
        g.candidates(q, &[], &(0..0))
            .into_iter()
            .filter(|c| c.channels.abbreviation)
            .map(|c| cl.terms()[c.term as usize].label.clone())
            .collect()
    };
    assert!(
        found("MAIT")
            .iter()
            .any(|l| l == "mucosal-associated invariant T cell"),
        "{:?}",
        found("MAIT")
    );
    assert!(
        found("HSC").iter().any(|l| l == "hematopoietic stem cell"),
        "{:?}",
        found("HSC")
    );
}

#[test]
fn substitutes_are_learned_from_the_ontology() {
    let Some(mondo) = real_ontology("MONDO") else {
        return;
    };
    let lex = mondo.lexical();
    let subs = lex.substitutes_of("disease");
    assert!(subs.contains(&"disorder"), "{subs:?}");
    let renal = lex.substitutes_of("renal");
    assert!(renal.contains(&"kidney"), "{renal:?}");
}

//! Fitting a collection's matcher from the ontology it was built from: hold
//! out a seeded sample of synonyms, mask each one in every channel, and learn
//! to put its owner first.

use std::time::Instant;

use rayon::prelude::*;
use xxhash_rust::xxh3::xxh3_64_with_seed;

use super::candidates::{CandidateGenerator, DenseHit};
use super::model::{fit, Example, FitReport, MatcherModel};
use crate::ontology::{normalize_label, ExactIndex, Ontology};
use crate::{Embedder, Result, VectorStore};
use lobster_vector_core::store::as_slices;

/// How a matcher is fitted.
#[derive(Debug, Clone)]
pub struct FitOptions {
    /// Seeds the choice of held-out synonyms.
    pub seed: u64,
    /// Held-out synonyms used at most (a quarter of them calibrate).
    pub max_queries: usize,
    /// Dense neighbours fetched per query.
    pub dense_pool: usize,
    /// Share of held-out synonyms drawn from terms that have descendants.
    pub general_share: f32,
    /// Held-out whole terms (answered by a parent), as a share of `max_queries`.
    pub term_share: f32,
    /// Features held at weight 0 (names from [`FEATURES`](super::FEATURES)), for ablations.
    pub without: Vec<String>,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            seed: 17,
            max_queries: 4000,
            dense_pool: DENSE_POOL,
            without: Vec::new(),
            general_share: 0.5,
            term_share: 0.3,
        }
    }
}

/// Dense neighbours each query fetches, at query time and in fitting.
pub const DENSE_POOL: usize = 64;

/// Texts embedded per batch while fitting.
const EMBED_BATCH: usize = 256;

/// One fitting query: a held-out synonym (its owner is the answer) or the
/// label of a held-out term (its parents are the answers).
struct Sample {
    /// Entries hidden from every channel.
    exclude: std::ops::Range<u32>,
    /// Terms that count as right.
    golds: Vec<u32>,
    text: String,
    calibrate: bool,
}

/// Fits the ranker and calibration of `collection` (already holding the
/// embedded entries of `ontology`, written by [`crate::build`]).
///
/// # Errors
/// Embedding or store failures.
pub fn fit_matcher(
    ontology: &Ontology,
    embedder: &dyn Embedder,
    store: &dyn VectorStore,
    collection: &str,
    options: &FitOptions,
) -> Result<MatcherModel> {
    let started = Instant::now();
    let generator = CandidateGenerator::new(ontology);
    let mut samples = held_out_synonyms(ontology, &generator, options);
    samples.extend(held_out_terms(ontology, &generator, options));
    let sampled = samples.len();
    let mut examples: Vec<(bool, Example)> = Vec::with_capacity(samples.len());
    for chunk in samples.chunks(EMBED_BATCH) {
        let texts: Vec<&str> = chunk.iter().map(|s| s.text.as_str()).collect();
        let vectors = embedder.embed_documents(&texts)?;
        let widest = chunk.iter().map(|s| s.exclude.len()).max().unwrap_or(1);
        let mut hits = store.search_batch(
            collection,
            &as_slices(&vectors),
            options.dense_pool + widest,
        )?;
        super::add_variant_hits(
            embedder,
            store,
            collection,
            &texts,
            &mut hits,
            options.dense_pool + widest,
        )?;
        let chunk_examples: Vec<(bool, Example)> = chunk
            .par_iter()
            .zip(hits)
            .map(|(s, hits)| {
                let dense: Vec<DenseHit> = hits
                    .iter()
                    .filter_map(|h| {
                        let entry = generator.entry_of_hit(&h.id)?;
                        (!s.exclude.contains(&entry)).then_some(DenseHit {
                            entry,
                            cosine: 1.0 - h.distance,
                        })
                    })
                    .take(options.dense_pool)
                    .collect();
                let lex = generator.lexical();
                let dense_top_is_gold = dense
                    .first()
                    .is_some_and(|h| s.golds.contains(&lex.entries()[h.entry as usize].term));
                let candidates = generator.candidates(&s.text, &dense, &s.exclude);
                let golds = candidates
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| s.golds.contains(&c.term))
                    .map(|(i, _)| i)
                    .collect();
                (
                    s.calibrate,
                    Example {
                        candidates: candidates.into_iter().map(|c| c.features).collect(),
                        golds,
                        dense_top_is_gold,
                    },
                )
            })
            .collect();
        examples.extend(chunk_examples);
    }
    let (cal, train): (Vec<_>, Vec<_>) = examples.into_iter().partition(|(c, _)| *c);
    let train: Vec<Example> = train.into_iter().map(|(_, e)| e).collect();
    let cal: Vec<Example> = cal.into_iter().map(|(_, e)| e).collect();
    let without: Vec<usize> = options
        .without
        .iter()
        .map(|name| {
            super::FEATURES
                .iter()
                .position(|f| f == name)
                .ok_or_else(|| {
                    crate::Error::invalid_input(format!(
                        "unknown matcher feature `{name}`; known: {}",
                        super::FEATURES.join(", ")
                    ))
                })
        })
        .collect::<Result<_>>()?;
    let report = FitReport {
        seed: options.seed,
        sampled,
        without: options.without.clone(),
        ..FitReport::default()
    };
    let mut model = fit(&train, &cal, &without, report);
    model.report.seconds = started.elapsed().as_secs_f64();
    Ok(model)
}

/// The synonyms a fit with `options` holds out of `ontology`, as
/// `(term id, synonym)`. An encoder adapted to the ontology should not
/// train on them: the ranker fitted on them would then trust the dense
/// cosine more than unseen queries warrant.
pub fn held_out_synonym_texts(ontology: &Ontology, options: &FitOptions) -> Vec<(String, String)> {
    let generator = CandidateGenerator::new(ontology);
    let terms = ontology.terms();
    held_out_synonyms(ontology, &generator, options)
        .into_iter()
        .map(|s| (terms[s.golds[0] as usize].id.clone(), s.text))
        .collect()
}

/// A seeded sample of synonyms that no other entry matches exactly once
/// they are held out (those would be answered by exact matching).
fn held_out_synonyms(
    ontology: &Ontology,
    generator: &CandidateGenerator<'_>,
    options: &FitOptions,
) -> Vec<Sample> {
    let lex = generator.lexical();
    let terms = ontology.terms();
    let mut keyed: Vec<(u64, u32)> = lex
        .entries()
        .iter()
        .enumerate()
        .filter(|(_, e)| !e.is_label())
        .map(|(i, e)| {
            let key = format!("{}#{}", terms[e.term as usize].id, e.slot);
            (xxh3_64_with_seed(key.as_bytes(), options.seed), i as u32)
        })
        .collect();
    keyed.sort_unstable();
    // Queries name general concepts far more often than an ontology's share
    // of them suggests: draw a fixed share of held-out synonyms from terms
    // that have descendants, the rest from leaves, each in seeded order.
    let structure = ontology.structure();
    let (mut general, mut leaves): (Vec<_>, Vec<_>) = keyed
        .into_iter()
        .partition(|&(_, e)| structure.descendants(lex.entries()[e as usize].term) > 0.0);
    general.reverse();
    leaves.reverse();
    let mut taken_general = 0usize;
    let mut taken = 0usize;
    let draw = std::iter::from_fn(|| {
        let want_general = (taken_general as f32) < options.general_share * (taken as f32 + 1.0);
        taken += 1;
        let next = if want_general {
            general.pop().or_else(|| leaves.pop())
        } else {
            leaves.pop().or_else(|| general.pop())
        };
        if next.is_some() && want_general {
            taken_general += 1;
        }
        next
    });
    let exact = ExactIndex::new(ontology);
    let mut out = Vec::new();
    for (hash, entry) in draw {
        if out.len() >= options.max_queries {
            break;
        }
        let e = &lex.entries()[entry as usize];
        let term = &terms[e.term as usize];
        let Some(text) = term.entry_text(e.slot) else {
            continue;
        };
        let key = normalize_label(text);
        let elsewhere = exact.lookup(text).iter().any(|m| m.id != term.id);
        let twin = lex
            .entries_of(e.term)
            .filter(|&o| o as u32 != entry)
            .filter_map(|o| term.entry_text(lex.entries()[o].slot))
            .any(|t| normalize_label(t) == key);
        if elsewhere || twin {
            continue;
        }
        out.push(Sample {
            exclude: entry..entry + 1,
            golds: vec![e.term],
            text: text.to_string(),
            calibrate: hash % 4 == 0,
        });
    }
    out
}

/// A seeded sample of live terms with live parents, each hidden whole and
/// queried by its label: the answer is a parent, which teaches the ranker
/// what a query naming no concept of the ontology should map to.
fn held_out_terms(
    ontology: &Ontology,
    generator: &CandidateGenerator<'_>,
    options: &FitOptions,
) -> Vec<Sample> {
    let lex = generator.lexical();
    let terms = ontology.terms();
    let want = (options.max_queries as f32 * options.term_share) as usize;
    let adj = ontology.adjacency();
    let mut keyed: Vec<(u64, u32)> = (0..terms.len() as u32)
        .filter(|&t| !lex.entries_of(t).is_empty())
        .map(|t| {
            let key = format!("term:{}", terms[t as usize].id);
            (xxh3_64_with_seed(key.as_bytes(), options.seed), t)
        })
        .collect();
    keyed.sort_unstable();
    let mut out = Vec::new();
    for (hash, t) in keyed {
        if out.len() >= want {
            break;
        }
        let golds: Vec<u32> = adj
            .parents
            .row(t)
            .iter()
            .copied()
            .filter(|&p| !lex.entries_of(p).is_empty())
            .collect();
        if golds.is_empty() {
            continue;
        }
        let range = lex.entries_of(t);
        out.push(Sample {
            exclude: range.start as u32..range.end as u32,
            golds,
            text: terms[t as usize].label.clone(),
            calibrate: hash % 4 == 0,
        });
    }
    out
}

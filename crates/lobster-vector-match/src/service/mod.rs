//! `SearchService`: embeds text, searches a store, gathers candidates from
//! every channel of the [matcher](crate::matcher), ranks and calibrates them,
//! and (optionally) reranks.

mod lazy;

use std::collections::HashSet;
use std::sync::Arc;

use serde::Serialize;

use lobster_vector_core::store::as_slices;
use rayon::prelude::*;

use crate::curation::{CuratedSet, CuratedTarget};
use crate::matcher::{Candidate, CandidateGenerator, DenseHit, MatcherModel, DENSE_POOL};
use crate::ontology::graph::Graph;
use crate::ontology::{
    split_incarnation, EntryKind, ExactIndex, Ontology, OntologyKind, OntologyLibrary, Term,
};
use crate::{
    validate, Artifact, Embedder, Error, Hit, Metadata, Metric, Reranker, Result, VectorStore,
};
use lazy::Lazy;

/// How many store hits `match_ontology` asks for per requested concept.
pub const CANDIDATE_FACTOR: usize = 4;

/// One hit of a plain collection query.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchHit {
    pub id: String,
    /// `clamp(1 - distance, 0, 1)` rounded to 4 decimals.
    #[serde(serialize_with = "serialize_score")]
    pub score: f32,
    /// Cosine distance as the store returned it.
    pub distance: f32,
    pub document: Option<String>,
    pub metadata: Metadata,
}

/// How a concept was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchType {
    /// A curated mapping of the normalised query (see [`crate::curation`]);
    /// `metadata.curated_id` names an obsolete curated id this row replaces.
    Curated,
    /// The normalised query equals the concept's label.
    ExactLabel,
    /// The normalised query equals one of the concept's synonyms.
    ExactSynonym,
    /// The query is the concept's id.
    ExactId,
    /// The query names an obsolete term; this row is its replacement (or a
    /// term to consider), and `metadata.obsolete_id` names the obsolete one.
    ObsoleteRedirect,
    /// Found by the dense channel (nearest labels and synonyms by embedding).
    Semantic,
    /// Found by the lexical channel only (words or character trigrams).
    Lexical,
    /// Found by the abbreviation channel only (an initialism of a label or synonym).
    Abbreviation,
}

impl MatchType {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchType::Curated => "curated",
            MatchType::ExactLabel => "exact_label",
            MatchType::ExactSynonym => "exact_synonym",
            MatchType::ExactId => "exact_id",
            MatchType::ObsoleteRedirect => "obsolete_redirect",
            MatchType::Semantic => "semantic",
            MatchType::Lexical => "lexical",
            MatchType::Abbreviation => "abbreviation",
        }
    }

    /// Whether the row was found without ranking: curated, exact id, label,
    /// synonym or obsolete redirect.
    pub fn is_exact(self) -> bool {
        !matches!(
            self,
            MatchType::Semantic | MatchType::Lexical | MatchType::Abbreviation
        )
    }
}

/// One concept matched to a query (field names follow the Python predecessor, plus more).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OntologyMatch {
    /// The concept's label.
    pub term: String,
    pub ontology_id: String,
    /// Exact rows: 1.0. Ranked rows: the calibrated probability that the row
    /// is right (the cosine similarity where the collection has no fitted
    /// matcher); 4 decimals, serialised as such.
    #[serde(serialize_with = "serialize_score")]
    pub score: f32,
    pub metadata: Metadata,
    pub distance_metric: &'static str,
    /// The label or synonym that matched.
    pub matched_text: String,
    pub match_type: MatchType,
    pub ontology: String,
    pub ontology_version: String,
}

/// A finished ontology collection chosen for a query.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedCollection {
    pub name: String,
    pub artifact: Artifact,
    /// The ranker and calibration the build fitted, when it fitted one.
    pub matcher: Option<Arc<MatcherModel>>,
}

/// The one entry point for queries. Cheap to clone and share across threads.
#[derive(Debug, Clone)]
pub struct SearchService {
    store: Arc<dyn VectorStore>,
    embedder: Arc<Lazy<dyn Embedder>>,
    reranker: Option<Arc<dyn Reranker>>,
    ontologies: Option<Arc<OntologyLibrary>>,
    curated: Option<Arc<CuratedSet>>,
}

fn string_field(metadata: &Metadata, key: &str) -> Option<String> {
    metadata
        .get(key)
        .and_then(|v| v.as_str())
        .map(str::to_string)
}

impl SearchService {
    /// A service over `store` with an embedder that is already loaded.
    pub fn new(store: Arc<dyn VectorStore>, embedder: Arc<dyn Embedder>) -> Self {
        Self {
            store,
            embedder: Arc::new(Lazy::ready(embedder)),
            reranker: None,
            ontologies: None,
            curated: None,
        }
    }

    /// A service whose embedder is created by `make` on first use.
    pub fn with_lazy_embedder(
        store: Arc<dyn VectorStore>,
        make: impl Fn() -> Result<Arc<dyn Embedder>> + Send + Sync + 'static,
    ) -> Self {
        Self {
            store,
            embedder: Arc::new(Lazy::deferred(make)),
            reranker: None,
            ontologies: None,
            curated: None,
        }
    }

    /// Sets the reranker applied by `match_ontology`.
    pub fn with_reranker(mut self, reranker: Option<Arc<dyn Reranker>>) -> Self {
        self.reranker = reranker;
        self
    }

    /// Sets where ontology sources are found (exact matching, obsolete redirects, `within`).
    pub fn with_ontologies(mut self, library: Option<Arc<OntologyLibrary>>) -> Self {
        self.ontologies = library;
        self
    }

    /// Sets the curated mappings answered before any other match.
    pub fn with_curated(mut self, curated: Option<Arc<CuratedSet>>) -> Self {
        self.curated = curated.filter(|c| !c.is_empty());
        self
    }

    /// The curated mappings, if any.
    pub fn curated(&self) -> Option<&Arc<CuratedSet>> {
        self.curated.as_ref()
    }

    /// The ontology library, if any.
    pub fn ontologies(&self) -> Option<&Arc<OntologyLibrary>> {
        self.ontologies.as_ref()
    }

    pub fn store(&self) -> &Arc<dyn VectorStore> {
        &self.store
    }

    /// The embedder, loading it if needed.
    pub fn embedder(&self) -> Result<Arc<dyn Embedder>> {
        self.embedder.get()
    }

    pub fn reranker(&self) -> Option<&Arc<dyn Reranker>> {
        self.reranker.as_ref()
    }

    /// Fails closed when `collection` carries an artifact from another embedder.
    fn check_collection(&self, collection: &str, embedder: &dyn Embedder) -> Result<()> {
        let info = self.store.collection_info(collection)?;
        if let Some(a) = Artifact::from_metadata(&info.metadata) {
            a.check_embedder(collection, embedder)?;
        }
        Ok(())
    }

    fn to_hits(hits: Vec<Hit>) -> Vec<SearchHit> {
        hits.into_iter()
            .map(|h| SearchHit {
                score: Metric::Cosine.similarity(h.distance),
                id: h.id,
                distance: h.distance,
                document: h.document,
                metadata: h.metadata,
            })
            .collect()
    }

    /// The `k` nearest records of `collection` to `text`.
    pub fn query(&self, text: &str, collection: &str, k: usize) -> Result<Vec<SearchHit>> {
        let mut out = self.query_batch(&[text], collection, k)?;
        Ok(out.pop().unwrap_or_default())
    }

    /// [`query`](Self::query) for many texts: one embedding batch, one batch search.
    pub fn query_batch(
        &self,
        texts: &[&str],
        collection: &str,
        k: usize,
    ) -> Result<Vec<Vec<SearchHit>>> {
        crate::embedder::check_texts(texts)?;
        validate::collection_name(collection)?;
        let embedder = self.embedder()?;
        self.check_collection(collection, embedder.as_ref())?;
        let vectors = embedder.embed_documents(texts)?;
        let hits = self
            .store
            .search_batch(collection, &as_slices(&vectors), k)?;
        Ok(hits.into_iter().map(Self::to_hits).collect())
    }

    /// Picks the collection for an ontology name, alias or exact collection name.
    ///
    /// An exact collection name pins it (and, once a rebuild replaced it, its
    /// rebuild); an alias resolves to the newest finished build (one whose
    /// artifact has been written): newest version, then newest build.
    pub fn resolve_collection(&self, ontology_or_collection: &str) -> Result<ResolvedCollection> {
        // A finished build's artifact and metadata (`None`: unfinished).
        let finished = |name: &str| -> Result<Option<(Artifact, Metadata)>> {
            let metadata = self.store.collection_info(name)?.metadata;
            Ok(Artifact::from_metadata(&metadata).map(|a| (a, metadata)))
        };
        // The matcher is read only for the build chosen.
        let resolved = |name: String, artifact: Artifact, metadata: &Metadata| {
            let matcher = match MatcherModel::from_metadata(metadata) {
                None => None,
                Some(Ok(model)) if model.is_compatible() => {
                    if !model.is_current() {
                        warn_once(&name, "the matcher of this collection was fitted on features computed by another version; it applies, but fitting it again (a build does) matches better");
                    }
                    Some(Arc::new(model))
                }
                Some(_) => {
                    warn_once(&name, "the matcher of this collection was fitted on another feature set and is not applied: candidates are ordered by cosine similarity until it is fitted again (a build does)");
                    None
                }
            };
            ResolvedCollection {
                name,
                artifact,
                matcher,
            }
        };
        if validate::collection_name(ontology_or_collection).is_ok()
            && self.store.has_collection(ontology_or_collection)?
        {
            let name = ontology_or_collection.to_string();
            return match finished(&name)? {
                Some((artifact, metadata)) => Ok(resolved(name, artifact, &metadata)),
                None => Err(Error::BuildUnfinished { collection: name }),
            };
        }
        let names = self.store.list_collections()?;
        // The newest finished build among `candidates`: by version, then build time.
        let newest = |candidates: Vec<&String>| -> Result<Option<ResolvedCollection>> {
            let mut best: Option<(String, &String, Artifact, Metadata)> = None;
            for name in candidates {
                let Some((artifact, metadata)) = finished(name)? else {
                    continue;
                };
                let version = OntologyKind::parse_collection_name(name)
                    .map(|(_, v)| v)
                    .unwrap_or_default();
                let newer = best.as_ref().is_none_or(|(v, n, a, _)| {
                    crate::ontology::compare_versions(&version, v)
                        .then_with(|| artifact.built_at.cmp(&a.built_at))
                        .then_with(|| name.cmp(n))
                        .is_gt()
                });
                if newer {
                    best = Some((version, name, artifact, metadata));
                }
            }
            Ok(best
                .map(|(_, name, artifact, metadata)| resolved(name.clone(), artifact, &metadata)))
        };
        // A collection name whose build was replaced by a rebuild pins the
        // rebuild (its incarnation).
        let rebuilt: Vec<&String> = names
            .iter()
            .filter(|n| {
                split_incarnation(n).0 == ontology_or_collection
                    && n.as_str() != ontology_or_collection
            })
            .collect();
        if let Some(r) = newest(rebuilt)? {
            return Ok(r);
        }
        let kind = OntologyKind::from_alias(ontology_or_collection)?;
        let of_kind: Vec<&String> = names
            .iter()
            .filter(|n| OntologyKind::parse_collection_name(n).is_some_and(|(k, _)| k == kind))
            .collect();
        newest(of_kind)?.ok_or_else(|| Error::NoCollection {
            ontology: kind.name().to_string(),
        })
    }

    /// The best `k` concepts of an ontology for `term`.
    pub fn match_ontology(
        &self,
        term: &str,
        ontology: &str,
        k: usize,
    ) -> Result<Vec<OntologyMatch>> {
        self.match_ontology_with(term, ontology, &MatchOptions::top(k))
    }

    /// [`match_ontology`](Self::match_ontology) with options (`within`).
    pub fn match_ontology_with(
        &self,
        term: &str,
        ontology: &str,
        options: &MatchOptions,
    ) -> Result<Vec<OntologyMatch>> {
        let mut out = self.match_ontology_batch_with(&[term], ontology, options)?;
        Ok(out.pop().unwrap_or_default())
    }

    /// [`match_ontology`](Self::match_ontology) for many terms: one embedding
    /// batch, one batch search, results in input order.
    pub fn match_ontology_batch(
        &self,
        terms: &[&str],
        ontology: &str,
        k: usize,
    ) -> Result<Vec<Vec<OntologyMatch>>> {
        self.match_ontology_batch_with(terms, ontology, &MatchOptions::top(k))
    }

    /// The ontology a resolved collection was built from, when its source is available.
    pub fn ontology_of(&self, resolved: &ResolvedCollection) -> Result<Option<Arc<Ontology>>> {
        match &self.ontologies {
            Some(lib) => lib.for_artifact(&resolved.artifact),
            None => Ok(None),
        }
    }

    /// Batch matching with options. Order per term: curated mappings, an
    /// exact id, exact labels, exact synonyms and obsolete redirects (score
    /// 1.0), then ranked candidates; one row per concept; reranked if
    /// configured; at most `k`.
    pub fn match_ontology_batch_with(
        &self,
        terms: &[&str],
        ontology: &str,
        options: &MatchOptions,
    ) -> Result<Vec<Vec<OntologyMatch>>> {
        crate::embedder::check_texts(terms)?;
        let resolved = self.resolve_collection(ontology)?;
        match self.match_in(&resolved, terms, options) {
            // A rebuild replaced the build between resolving and searching:
            // answer from the new one.
            Err(Error::CollectionNotFound { name }) if name == resolved.name => {
                let again = self.resolve_collection(ontology)?;
                self.match_in(&again, terms, options)
            }
            result => result,
        }
    }

    /// [`match_ontology_batch_with`](Self::match_ontology_batch_with) in one resolved collection.
    fn match_in(
        &self,
        resolved: &ResolvedCollection,
        terms: &[&str],
        options: &MatchOptions,
    ) -> Result<Vec<Vec<OntologyMatch>>> {
        let k = options.k;
        let embedder = self.embedder()?;
        resolved
            .artifact
            .check_embedder(&resolved.name, embedder.as_ref())?;
        let onto = self.ontology_of(resolved)?;
        if onto.is_none() {
            tracing::warn!(
                collection = %resolved.name,
                "the ontology source of this collection is not available; exact and obsolete matching are off"
            );
        }
        let within: Option<HashSet<&str>> = match (&options.within, &onto) {
            (None, _) => None,
            (Some(id), Some(o)) => Some(Graph::new(o).subtree(id)?),
            (Some(_), None) => {
                return Err(Error::CollectionSourceMissing {
                    collection: resolved.name.clone(),
                    needed_for: "`within`",
                })
            }
        };
        let keep = |id: &str| within.as_ref().is_none_or(|set| set.contains(id));
        let vectors = embedder.embed_documents(terms)?;
        let mut fetch = k.saturating_mul(CANDIDATE_FACTOR);
        if onto.is_some() {
            fetch = fetch.max(DENSE_POOL);
        }
        if within.is_some() {
            fetch = fetch.max(200);
        }
        let mut hits = self
            .store
            .search_batch(&resolved.name, &as_slices(&vectors), fetch)?;
        if onto.is_some() {
            crate::matcher::add_variant_hits(
                embedder.as_ref(),
                self.store.as_ref(),
                &resolved.name,
                terms,
                &mut hits,
                fetch,
            )?;
        }
        let total = match within {
            Some(_) => Some(self.store.count(&resolved.name)?),
            None => None,
        };
        let work: Vec<(usize, Vec<Hit>)> = hits.into_iter().enumerate().collect();
        work.into_par_iter()
            .map(|(i, mut hits)| -> Result<Vec<OntologyMatch>> {
                let (term, vector) = (&terms[i], &vectors[i]);
                let mut rows = match &onto {
                    Some(o) => {
                        let mut rows = match &self.curated {
                            Some(c) => curated_rows(o, c, term, resolved),
                            None => Vec::new(),
                        };
                        rows.extend(exact_rows(o, term, resolved));
                        let mut seen = HashSet::new();
                        rows.retain(|r| seen.insert(r.ontology_id.clone()));
                        rows
                    }
                    None => Vec::new(),
                };
                rows.retain(|r| keep(&r.ontology_id));
                // With `within`, widen the search until k concepts pass the filter or the collection is exhausted.
                if let (Some(_), Some(total)) = (&within, total) {
                    let mut n = fetch;
                    while distinct_concepts(&hits, &keep) < k && n < total {
                        n = n.saturating_mul(8).min(total);
                        hits = self.store.search(&resolved.name, vector, n)?;
                    }
                }
                let candidates = onto
                    .as_deref()
                    .map(|o| RankedCandidates::new(o, resolved, term, &hits));
                if let Some(c) = &candidates {
                    order_exact_ties(&mut rows, c);
                }
                let more = {
                    let seen: HashSet<&str> = rows.iter().map(|r| r.ontology_id.as_str()).collect();
                    let new = |id: &str| keep(id) && !seen.contains(id);
                    match &candidates {
                        Some(c) => c.rows(resolved, &new),
                        None => dense_rows(hits, resolved, &new),
                    }
                };
                rows.extend(more);
                if let Some(reranker) = &self.reranker {
                    rows = rerank(
                        reranker.as_ref(),
                        term,
                        rows,
                        k.saturating_mul(CANDIDATE_FACTOR),
                    )?;
                }
                rows.truncate(k);
                Ok(rows)
            })
            .collect()
    }
}

/// Logs `message` about `collection` once per process.
fn warn_once(collection: &str, message: &str) {
    static WARNED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut warned = WARNED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !warned.iter().any(|c| c == collection) {
        warned.push(collection.to_string());
        tracing::warn!(collection = %collection, "{message}");
    }
}

/// Rounds a score to the 4 decimals every output shows.
fn round4(x: f32) -> f32 {
    output_score(x) as f32
}

/// A score as outputs show it: the nearest number with 4 decimals, as an
/// `f64` so JSON prints `0.7341`, not the `f32`'s `0.7340999841690063`.
pub fn output_score(x: f32) -> f64 {
    (f64::from(x) * 10_000.0).round() / 10_000.0
}

fn serialize_score<S: serde::Serializer>(x: &f32, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_f64(output_score(*x))
}

/// Every channel's candidates of one query, with what ranks them: the
/// collection's fitted matcher, or cosine similarity where it has none.
struct RankedCandidates<'o> {
    ontology: &'o Ontology,
    matcher: Option<&'o MatcherModel>,
    candidates: Vec<Candidate>,
}

impl<'o> RankedCandidates<'o> {
    fn new(o: &'o Ontology, resolved: &'o ResolvedCollection, query: &str, hits: &[Hit]) -> Self {
        let generator = CandidateGenerator::new(o);
        let dense: Vec<DenseHit> = hits
            .iter()
            .filter_map(|h| {
                Some(DenseHit {
                    entry: generator.entry_of_hit(&h.id)?,
                    cosine: 1.0 - h.distance,
                })
            })
            .collect();
        RankedCandidates {
            ontology: o,
            matcher: resolved.matcher.as_deref(),
            candidates: generator.candidates(query, &dense, &(0..0)),
        }
    }

    /// Ranker scores and calibrated probabilities of `candidates`, the
    /// probabilities being shares of this pool.
    fn score(&self, candidates: &[&Candidate]) -> Vec<(f32, f32)> {
        match self.matcher {
            Some(model) => model.rank(candidates),
            None => candidates
                .iter()
                .map(|c| {
                    let cos = c.cosine.unwrap_or(0.0);
                    (cos, Metric::Cosine.similarity(1.0 - cos))
                })
                .collect(),
        }
    }

    /// The ranker's score of the concept `id`, if it is a candidate.
    fn score_of(&self, id: &str) -> Option<f32> {
        let terms = self.ontology.terms();
        let c = self
            .candidates
            .iter()
            .find(|c| terms[c.term as usize].id == id)?;
        Some(self.score(&[c])[0].0)
    }

    /// The candidates `keep` accepts as rows, best first; probabilities are
    /// shares of the kept candidates.
    fn rows(
        &self,
        resolved: &ResolvedCollection,
        keep: &dyn Fn(&str) -> bool,
    ) -> Vec<OntologyMatch> {
        let terms = self.ontology.terms();
        let kept: Vec<&Candidate> = self
            .candidates
            .iter()
            .filter(|c| keep(&terms[c.term as usize].id))
            .collect();
        let scored = self.score(&kept);
        let mut order: Vec<usize> = (0..kept.len()).collect();
        order.sort_by(|&a, &b| {
            scored[b]
                .1
                .total_cmp(&scored[a].1)
                .then(scored[b].0.total_cmp(&scored[a].0))
                .then(kept[a].term.cmp(&kept[b].term))
        });
        order
            .into_iter()
            .map(|i| self.row(kept[i], scored[i].0, scored[i].1, resolved))
            .collect()
    }

    fn row(
        &self,
        c: &Candidate,
        rank_score: f32,
        probability: f32,
        resolved: &ResolvedCollection,
    ) -> OntologyMatch {
        let term = &self.ontology.terms()[c.term as usize];
        let entry = &self.ontology.lexical().entries()[c.entry as usize];
        let matched = term.entry_text(entry.slot).unwrap_or(&term.label);
        let mut meta = Metadata::new();
        meta.insert("ontology_id".into(), serde_json::json!(term.id));
        meta.insert("label".into(), serde_json::json!(term.label));
        meta.insert("matched_text".into(), serde_json::json!(matched));
        meta.insert(
            "kind".into(),
            serde_json::json!(if entry.is_label() { "label" } else { "synonym" }),
        );
        if let Some(scope) = (entry.slot > 0)
            .then(|| {
                term.synonyms
                    .get(entry.slot as usize - 1)
                    .and_then(|s| s.scope)
            })
            .flatten()
        {
            meta.insert("scope".into(), serde_json::json!(scope.as_str()));
        }
        if let Some(d) = &term.definition {
            meta.insert("definition".into(), serde_json::json!(d));
        }
        if let Some(cos) = c.cosine {
            meta.insert(
                "vector_score".into(),
                serde_json::json!(output_score(cos.clamp(0.0, 1.0))),
            );
        }
        meta.insert(
            "rank_score".into(),
            serde_json::json!(output_score(rank_score)),
        );
        let channels: Vec<&str> = [
            (c.channels.dense, "dense"),
            (c.channels.lexical, "lexical"),
            (c.channels.abbreviation, "abbreviation"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect();
        meta.insert("channels".into(), serde_json::json!(channels));
        let match_type = if c.channels.dense {
            MatchType::Semantic
        } else if c.channels.lexical {
            MatchType::Lexical
        } else {
            MatchType::Abbreviation
        };
        OntologyMatch {
            term: term.label.clone(),
            ontology_id: term.id.clone(),
            score: round4(probability),
            metadata: meta,
            distance_metric: Metric::Cosine.as_str(),
            matched_text: matched.to_string(),
            match_type,
            ontology: resolved.artifact.ontology.clone(),
            ontology_version: resolved.artifact.source_version.clone(),
        }
    }
}

/// Orders each run of exact rows of one match type and scope (one text
/// naming several concepts: `RA` is a synonym of two diseases) by the
/// matcher's ranking of those concepts; rows it did not rank keep their
/// place after the ranked ones of their run.
fn order_exact_ties(rows: &mut [OntologyMatch], ranked: &RankedCandidates<'_>) {
    let tied = |a: &OntologyMatch, b: &OntologyMatch| {
        a.match_type == b.match_type && a.metadata.get("scope") == b.metadata.get("scope")
    };
    let score = |r: &OntologyMatch| ranked.score_of(&r.ontology_id).unwrap_or(f32::NEG_INFINITY);
    for run in rows.chunk_by_mut(tied) {
        if matches!(
            run[0].match_type,
            MatchType::ExactLabel | MatchType::ExactSynonym
        ) {
            // Stable: unranked rows keep their relative order, last.
            run.sort_by(|a, b| score(b).total_cmp(&score(a)));
        }
    }
}

/// Without the ontology source: the store's hits, one row per concept, by similarity.
fn dense_rows(
    hits: Vec<Hit>,
    resolved: &ResolvedCollection,
    keep: &dyn Fn(&str) -> bool,
) -> Vec<OntologyMatch> {
    let mut seen = HashSet::new();
    hits.into_iter()
        .map(|h| {
            let mut r = semantic_row(h, resolved);
            r.metadata.insert(
                "vector_score".into(),
                serde_json::json!(output_score(r.score)),
            );
            r
        })
        .filter(|r| keep(&r.ontology_id) && seen.insert(r.ontology_id.clone()))
        .collect()
}

/// Options of [`SearchService::match_ontology_with`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MatchOptions {
    /// Concepts to return.
    pub k: usize,
    /// Only concepts that are this term or its descendants.
    pub within: Option<String>,
}

impl MatchOptions {
    /// The best `k`, unrestricted.
    pub fn top(k: usize) -> Self {
        Self { k, within: None }
    }
}

fn concept_id(h: &Hit) -> String {
    string_field(&h.metadata, "ontology_id").unwrap_or_else(|| h.id.clone())
}

fn distinct_concepts(hits: &[Hit], keep: &dyn Fn(&str) -> bool) -> usize {
    hits.iter()
        .map(concept_id)
        .filter(|id| keep(id))
        .collect::<HashSet<_>>()
        .len()
}

fn semantic_row(h: Hit, resolved: &ResolvedCollection) -> OntologyMatch {
    let id = concept_id(&h);
    let document = h.document.clone().unwrap_or_default();
    OntologyMatch {
        term: string_field(&h.metadata, "label").unwrap_or_else(|| document.clone()),
        matched_text: string_field(&h.metadata, "matched_text").unwrap_or(document),
        ontology_id: id,
        score: Metric::Cosine.similarity(h.distance),
        metadata: h.metadata,
        distance_metric: Metric::Cosine.as_str(),
        match_type: MatchType::Semantic,
        ontology: resolved.artifact.ontology.clone(),
        ontology_version: resolved.artifact.source_version.clone(),
    }
}

/// A score-1.0 row for a term found without embeddings.
fn exact_row(
    o: &Ontology,
    id: &str,
    matched_text: &str,
    match_type: MatchType,
    metadata: Metadata,
    resolved: &ResolvedCollection,
) -> OntologyMatch {
    let term = o
        .get(id)
        .map_or_else(|| id.to_string(), |t| t.label.clone());
    OntologyMatch {
        term,
        ontology_id: id.to_string(),
        score: 1.0,
        metadata,
        distance_metric: Metric::Cosine.as_str(),
        matched_text: matched_text.to_string(),
        match_type,
        ontology: resolved.artifact.ontology.clone(),
        ontology_version: resolved.artifact.source_version.clone(),
    }
}

/// Rows replacing an obsolete term: its `replaced_by`, or else its `consider` list.
fn redirect_rows(
    o: &Ontology,
    obsolete: &Term,
    matched_text: &str,
    resolved: &ResolvedCollection,
) -> Vec<OntologyMatch> {
    let Some(r) = o.resolve_obsolete(&obsolete.id) else {
        return Vec::new();
    };
    let mut meta = Metadata::new();
    meta.insert("obsolete_id".into(), serde_json::json!(obsolete.id));
    meta.insert("obsolete_label".into(), serde_json::json!(obsolete.label));
    meta.insert("consider".into(), serde_json::json!(r.consider));
    let targets: Vec<&String> = match &r.replaced_by {
        Some(id) => vec![id],
        None => r.consider.iter().collect(),
    };
    targets
        .into_iter()
        .map(|id| {
            let mut m = meta.clone();
            m.insert(
                "redirect".into(),
                serde_json::json!(if r.replaced_by.is_some() {
                    "replaced_by"
                } else {
                    "consider"
                }),
            );
            exact_row(
                o,
                id,
                matched_text,
                MatchType::ObsoleteRedirect,
                m,
                resolved,
            )
        })
        .collect()
}

/// The curated mappings of `query` into `o`, redirected when the curated
/// term is obsolete and replaced (flagged by `metadata.curated_id`); one
/// obsolete without replacement, or absent from `o`, answers nothing and is
/// reported as a warning.
fn curated_rows(
    o: &Ontology,
    curated: &CuratedSet,
    query: &str,
    resolved: &ResolvedCollection,
) -> Vec<OntologyMatch> {
    let own_prefix = o.kind().map(|k| k.source_prefix());
    curated
        .lookup(query)
        .filter(|m| own_prefix.is_none_or(|p| m.prefix().eq_ignore_ascii_case(p)))
        .filter_map(|m| {
            let target = match CuratedSet::target(m, o) {
                Ok(t) => t,
                Err(change) => {
                    if own_prefix.is_some() {
                        tracing::warn!(
                            label = %m.subject_label,
                            id = %m.object_id,
                            change = change.as_str(),
                            "a curated mapping points to a term that is obsolete without replacement or absent in {}; it is not used",
                            o.version()
                        );
                    }
                    return None;
                }
            };
            let mut meta = Metadata::new();
            meta.insert("predicate_id".into(), serde_json::json!(m.predicate_id));
            meta.insert("justification".into(), serde_json::json!(m.justification));
            for (key, value) in [
                ("author_id", &m.author_id),
                ("author_label", &m.author_label),
                ("mapping_date", &m.mapping_date),
                ("comment", &m.comment),
            ] {
                if let Some(v) = value {
                    meta.insert(key.into(), serde_json::json!(v));
                }
            }
            let term = match target {
                CuratedTarget::Live(t) => t,
                CuratedTarget::Redirected {
                    obsolete,
                    replacement,
                } => {
                    meta.insert("curated_id".into(), serde_json::json!(obsolete.id));
                    meta.insert("redirect".into(), serde_json::json!("replaced_by"));
                    replacement
                }
            };
            Some(exact_row(
                o,
                &term.id,
                &m.subject_label,
                MatchType::Curated,
                meta,
                resolved,
            ))
        })
        .collect()
}

/// Exact id, label, synonym and obsolete matches of `query`, best first.
fn exact_rows(o: &Ontology, query: &str, resolved: &ResolvedCollection) -> Vec<OntologyMatch> {
    let mut rows = Vec::new();
    let trimmed = query.trim();
    if let Some(t) = o.get(trimmed) {
        if t.deprecated {
            rows.extend(redirect_rows(o, t, trimmed, resolved));
        } else {
            rows.push(exact_row(
                o,
                &t.id,
                trimmed,
                MatchType::ExactId,
                Metadata::new(),
                resolved,
            ));
        }
    }
    let exact = ExactIndex::new(o);
    for m in exact.lookup(query) {
        let match_type = match m.kind {
            EntryKind::Label => MatchType::ExactLabel,
            EntryKind::Synonym => MatchType::ExactSynonym,
        };
        let mut meta = Metadata::new();
        if let Some(scope) = m.scope {
            meta.insert("scope".into(), serde_json::json!(scope.as_str()));
        }
        rows.push(exact_row(
            o,
            m.id,
            m.matched_text,
            match_type,
            meta,
            resolved,
        ));
    }
    for t in exact.lookup_obsolete(query) {
        rows.extend(redirect_rows(o, t, &t.label, resolved));
    }
    let mut seen = HashSet::new();
    rows.retain(|r| seen.insert(r.ontology_id.clone()));
    rows
}

/// Reorders the first `pool` semantic matches by the reranker's score; exact
/// matches stay first. A reranked row's `score` is the reranker's (a
/// probability), its vector similarity moves to `metadata.vector_score`, and
/// `metadata.reranked` says whether the reranker scored it (`false` when it is
/// inactive or there was nothing to choose between).
fn rerank(
    reranker: &dyn Reranker,
    query: &str,
    matches: Vec<OntologyMatch>,
    pool: usize,
) -> Result<Vec<OntologyMatch>> {
    let (mut exact, mut semantic): (Vec<_>, Vec<_>) =
        matches.into_iter().partition(|m| m.match_type.is_exact());
    semantic.truncate(pool);
    if semantic.len() < 2 || !reranker.is_active() {
        for m in &mut semantic {
            m.metadata
                .insert("reranked".into(), serde_json::json!(false));
        }
        exact.extend(semantic);
        return Ok(exact);
    }
    let docs: Vec<String> = semantic
        .iter()
        .map(|m| {
            if m.matched_text == m.term {
                m.term.clone()
            } else {
                format!("{} ({})", m.term, m.matched_text)
            }
        })
        .collect();
    let doc_refs: Vec<&str> = docs.iter().map(String::as_str).collect();
    let ranking = reranker.rerank(query, &doc_refs, semantic.len())?;
    let mut slots: Vec<Option<OntologyMatch>> = semantic.into_iter().map(Some).collect();
    for (i, score) in ranking {
        if let Some(mut m) = slots.get_mut(i).and_then(Option::take) {
            // The cosine stays where the ranker put it; a row without one
            // (found by the lexical or abbreviation channel) keeps its
            // confidence under `confidence`.
            if !m.metadata.contains_key("vector_score") {
                m.metadata.insert(
                    "confidence".into(),
                    serde_json::json!(output_score(m.score)),
                );
            }
            m.metadata
                .insert("reranked".into(), serde_json::json!(true));
            m.score = round4(score);
            exact.push(m);
        }
    }
    Ok(exact)
}

#[cfg(test)]
mod tests;

//! Building an ontology collection: one entry per label and per synonym of
//! every live term, embedded in batches, written to a store, its
//! [matcher](crate::matcher) fitted from the same source, and sealed by
//! writing the artifact (with the fitted model) last.
//!
//! A collection without an artifact is an unfinished build: search never uses
//! it, so an interrupted build (Ctrl-C, a crash) is never visible to queries.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use serde_json::json;

use crate::artifact::{now_rfc3339, Artifact, ARTIFACT_KEY};
use crate::matcher::{fit_matcher, FitOptions, FitReport, MODEL_KEY};
use crate::ontology::{Ontology, Term};
use crate::{validate, Embedder, Error, Metadata, Record, Result, VectorStore};

/// How a build runs.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Texts embedded and written per batch.
    pub batch_size: usize,
    /// Rebuild even when the same source and model already built the collection.
    pub force: bool,
    /// How the matcher is fitted; `None` builds without one (queries then
    /// order candidates by cosine similarity alone).
    pub fit: Option<FitOptions>,
}

impl Default for BuildOptions {
    fn default() -> Self {
        Self {
            batch_size: 512,
            force: false,
            fit: Some(FitOptions::default()),
        }
    }
}

/// What a build did.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BuildReport {
    pub collection: String,
    pub ontology: String,
    pub version: String,
    /// Vectors written (0 when skipped).
    pub entries: usize,
    pub terms: usize,
    /// `true` when an identical build existed and nothing was done.
    pub skipped: bool,
    pub seconds: f64,
    /// How the matcher was fitted (absent when skipped or built without one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matcher: Option<FitReport>,
}

/// Progress of a build, reported after every batch.
pub trait BuildProgress {
    /// Called once before the first batch with the number of texts to embed.
    fn start(&self, collection: &str, total: usize);
    /// Called after each written batch with the number of texts it held.
    fn advance(&self, done: usize);
    /// Called once at the end, also on failure.
    fn finish(&self);
}

/// A progress sink that reports nothing.
#[derive(Debug, Default)]
pub struct NoProgress;

impl BuildProgress for NoProgress {
    fn start(&self, _: &str, _: usize) {}
    fn advance(&self, _: usize) {}
    fn finish(&self) {}
}

/// The collection name for an ontology: `<ontology>_<version>`.
pub fn collection_name(ontology: &Ontology) -> Result<String> {
    let name = match ontology.kind() {
        Some(kind) => kind.collection_name(ontology.version()),
        None => {
            let raw = format!("{}_{}", ontology.name(), ontology.version()).to_lowercase();
            raw.chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect()
        }
    };
    validate::collection_name(&name)?;
    Ok(name)
}

/// The entries of one term: its label, then each synonym.
fn term_entries(term: &Term) -> impl Iterator<Item = (String, &str, Metadata)> + '_ {
    let base = |kind: &str, text: &str, scope: Option<&str>| {
        let mut m = Metadata::new();
        m.insert("ontology_id".into(), json!(term.id));
        m.insert("label".into(), json!(term.label));
        m.insert("matched_text".into(), json!(text));
        m.insert("kind".into(), json!(kind));
        if let Some(scope) = scope {
            m.insert("scope".into(), json!(scope));
        }
        if let Some(d) = &term.definition {
            m.insert("definition".into(), json!(d));
        }
        m
    };
    let label = std::iter::once((
        format!("{}#label", term.id),
        term.label.as_str(),
        base("label", &term.label, None),
    ));
    let synonyms = term
        .synonyms
        .iter()
        .enumerate()
        .filter(|(_, s)| !s.text.trim().is_empty())
        .map(move |(i, s)| {
            (
                format!("{}#syn{i}", term.id),
                s.text.as_str(),
                base("synonym", &s.text, s.scope.map(|x| x.as_str())),
            )
        });
    label.chain(synonyms)
}

/// Builds (or confirms) the collection of `ontology` embedded by `embedder` in `store`.
///
/// Rebuilding the same source (SHA-256) with the same model is a no-op unless
/// `options.force`. Setting `cancel` stops between batches, drops the partial
/// collection and returns [`Error::Interrupted`]. Any other failure also drops
/// the partial collection; because the artifact is written last, a crash
/// leaves only an unfinished build that search ignores and the next build replaces.
///
/// Unless the build is a no-op it takes the store's write lock
/// ([`VectorStore::lock_for_writing`]) before embedding anything, so a second
/// writer fails with `StoreLocked` at once instead of after the embedding work.
pub fn build_collection(
    ontology: &Ontology,
    embedder: &dyn Embedder,
    store: &dyn VectorStore,
    options: &BuildOptions,
    progress: &dyn BuildProgress,
    cancel: &AtomicBool,
) -> Result<BuildReport> {
    let started = Instant::now();
    let collection = collection_name(ontology)?;
    let ontology_name = ontology
        .kind()
        .map_or_else(|| ontology.name().to_string(), |k| k.name().to_string());
    let live: Vec<&Term> = ontology
        .live_terms()
        .filter(|t| !t.label.trim().is_empty())
        .collect();
    let mut report = BuildReport {
        collection: collection.clone(),
        ontology: ontology_name.clone(),
        version: ontology.version().to_string(),
        entries: 0,
        terms: live.len(),
        skipped: false,
        seconds: 0.0,
        matcher: None,
    };
    if store.has_collection(&collection)? {
        let info = store.collection_info(&collection)?;
        let same = Artifact::from_metadata(&info.metadata).is_some_and(|a| {
            a.source_sha256 == ontology.source_sha256()
                && a.embedding_provider == embedder.provider()
                && a.embedding_model == embedder.model_id()
                && a.dimensions == embedder.dimensions()
        });
        if same && !options.force {
            report.skipped = true;
            report.entries = info.count;
            return Ok(report);
        }
        tracing::info!(%collection, "replacing the existing collection");
        store.drop_collection(&collection)?;
    }
    // A second writer is refused here, before any text is embedded.
    store.lock_for_writing()?;

    let entries: Vec<(String, &str, Metadata)> =
        live.iter().flat_map(|t| term_entries(t)).collect();
    progress.start(&collection, entries.len());
    let result = write_entries(
        &collection,
        &entries,
        embedder,
        store,
        options,
        progress,
        cancel,
    );
    progress.finish();
    let result = result.and_then(|()| match &options.fit {
        Some(fit) => fit_matcher(ontology, embedder, store, &collection, fit).map(Some),
        None => Ok(None),
    });
    let model = match result {
        Ok(model) => model,
        Err(e) => {
            if let Err(drop_err) = store.drop_collection(&collection) {
                tracing::warn!(%collection, error = %drop_err, "could not remove the unfinished collection");
            }
            return Err(e);
        }
    };
    let artifact = Artifact {
        embedding_provider: embedder.provider().to_string(),
        embedding_model: embedder.model_id().to_string(),
        dimensions: embedder.dimensions(),
        ontology: ontology_name,
        source_version: ontology.version().to_string(),
        source_sha256: ontology.source_sha256().to_string(),
        built_at: now_rfc3339(),
        lobster_vector_version: crate::VERSION.to_string(),
        entry_count: entries.len(),
        term_count: live.len(),
        source_path: Some(ontology.source_path().display().to_string()),
    };
    let mut metadata = store.collection_info(&collection)?.metadata;
    metadata.remove(ARTIFACT_KEY);
    metadata.remove(MODEL_KEY);
    if let Some(model) = &model {
        metadata.insert(MODEL_KEY.into(), json!(model));
        report.matcher = Some(model.report.clone());
    }
    artifact.write_into(&mut metadata);
    store.set_collection_metadata(&collection, metadata)?;
    store.flush()?;
    report.entries = entries.len();
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Fits the matcher of a finished collection again from `ontology` (the
/// source it was built from, checked by SHA-256) without re-embedding, and
/// stores it with the collection.
///
/// # Errors
/// [`Error::CollectionUnavailable`] when the collection is unfinished or was
/// built from another source or embedder; store and embedding failures.
pub fn refit_matcher(
    ontology: &Ontology,
    embedder: &dyn Embedder,
    store: &dyn VectorStore,
    collection: &str,
    fit: &FitOptions,
) -> Result<FitReport> {
    let mut metadata = store.collection_info(collection)?.metadata;
    let Some(artifact) = Artifact::from_metadata(&metadata) else {
        return Err(Error::CollectionUnavailable {
            collection: collection.into(),
            reason: "its build did not finish (no artifact)".into(),
        });
    };
    artifact.check_embedder(collection, embedder)?;
    if artifact.source_sha256 != ontology.source_sha256() {
        return Err(Error::CollectionUnavailable {
            collection: collection.into(),
            reason: format!(
                "it was built from another source (SHA-256 {}, given {})",
                artifact.source_sha256,
                ontology.source_sha256()
            ),
        });
    }
    store.lock_for_writing()?;
    let model = fit_matcher(ontology, embedder, store, collection, fit)?;
    metadata.insert(MODEL_KEY.into(), json!(model));
    store.set_collection_metadata(collection, metadata)?;
    store.flush()?;
    Ok(model.report)
}

fn write_entries(
    collection: &str,
    entries: &[(String, &str, Metadata)],
    embedder: &dyn Embedder,
    store: &dyn VectorStore,
    options: &BuildOptions,
    progress: &dyn BuildProgress,
    cancel: &AtomicBool,
) -> Result<()> {
    for batch in entries.chunks(options.batch_size.max(1)) {
        if cancel.load(Ordering::Relaxed) {
            return Err(Error::Interrupted);
        }
        let texts: Vec<&str> = batch.iter().map(|e| e.1).collect();
        let vectors = embedder.embed_documents(&texts)?;
        if vectors.len() != batch.len() {
            return Err(Error::Model {
                message: format!(
                    "embedder returned {} vectors for {} texts",
                    vectors.len(),
                    batch.len()
                ),
            });
        }
        let records: Vec<Record> = batch
            .iter()
            .zip(vectors)
            .map(|((id, text, meta), v)| {
                Record::new(id.clone(), v)
                    .with_document(*text)
                    .with_metadata(meta.clone())
            })
            .collect();
        store.upsert(collection, &records)?;
        progress.advance(batch.len());
    }
    Ok(())
}

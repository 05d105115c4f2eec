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
use crate::matcher::{fit_matcher, FitOptions, FitReport, MatcherModel, MODEL_KEY};
use crate::ontology::{incarnation_name, split_incarnation, Ontology, Term};
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
    /// How the matcher was fitted: absent when built without one, or when
    /// the build was skipped and its matcher was [current](MatcherModel::is_current).
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
/// `options.force`, apart from fitting its matcher again when it is missing
/// or not [current](MatcherModel::is_current) (and `options.fit` is set). A
/// rebuild never touches the live build: it is written under a free [incarnation name](crate::ontology::incarnation_name) beside
/// it, becomes the one searches resolve to when its artifact is written (one
/// metadata write), and only then are the builds it replaces dropped. Setting
/// `cancel` stops between batches, drops the partial build and returns
/// [`Error::Interrupted`]; any other failure also drops it. Because the
/// artifact is written last, a crash leaves at most an unfinished build that
/// search ignores and the next build removes, and the old build keeps
/// serving. `report.collection` names the build written (or kept).
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
    let incarnations = Incarnations::of(store, &collection)?;
    if let Some(live) = incarnations.live() {
        let artifact = &live.artifact;
        let same = artifact.source_sha256 == ontology.source_sha256()
            && artifact.embedding_provider == embedder.provider()
            && artifact.embedding_model == embedder.model_id()
            && artifact.dimensions == embedder.dimensions();
        if same && !options.force {
            report.collection = live.name.clone();
            report.skipped = true;
            report.entries = live.count;
            // A matcher missing, or fitted by other feature code, is fitted again.
            if let Some(fit) = options.fit.as_ref().filter(|_| !live.matcher_current) {
                report.matcher = Some(refit_matcher(ontology, embedder, store, &live.name, fit)?);
            }
            report.seconds = started.elapsed().as_secs_f64();
            return Ok(report);
        }
    }
    store.lock_for_writing()?;
    // Leftovers of interrupted builds; the live build keeps serving until
    // the new one is finished.
    for name in incarnations.unfinished() {
        tracing::info!(collection = %name, "removing an unfinished build");
        store.drop_collection(name)?;
    }
    let collection = incarnations.free_name(&collection);
    report.collection = collection.clone();

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
    // The new build is live from the artifact on; the builds it replaces go.
    for Finished { name, .. } in &incarnations.finished {
        tracing::info!(collection = %name, replaced_by = %collection, "removing the replaced build");
        if let Err(e) = store.drop_collection(name) {
            tracing::warn!(collection = %name, error = %e, "could not remove the replaced build; the next build will");
        }
    }
    report.entries = entries.len();
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// The builds of one collection base name in a store: finished ones (with
/// an artifact) and unfinished ones.
#[derive(Debug)]
struct Incarnations {
    finished: Vec<Finished>,
    unfinished: Vec<String>,
}

/// A finished build: its collection, artifact and record count, and whether
/// its stored matcher is [current](MatcherModel::is_current).
#[derive(Debug)]
struct Finished {
    name: String,
    artifact: Artifact,
    count: usize,
    matcher_current: bool,
}

impl Incarnations {
    fn of(store: &dyn VectorStore, base: &str) -> Result<Incarnations> {
        let mut out = Incarnations {
            finished: Vec::new(),
            unfinished: Vec::new(),
        };
        for name in store.list_collections()? {
            if name != base && split_incarnation(&name).0 != base {
                continue;
            }
            let info = store.collection_info(&name)?;
            match Artifact::from_metadata(&info.metadata) {
                Some(artifact) => out.finished.push(Finished {
                    name,
                    artifact,
                    count: info.count,
                    matcher_current: MatcherModel::from_metadata(&info.metadata)
                        .and_then(std::result::Result::ok)
                        .is_some_and(|m| m.is_current()),
                }),
                None => out.unfinished.push(name),
            }
        }
        // Newest last: by build time, then name.
        out.finished
            .sort_by(|a, b| (&a.artifact.built_at, &a.name).cmp(&(&b.artifact.built_at, &b.name)));
        Ok(out)
    }

    /// The build searches answer from: the newest finished one.
    fn live(&self) -> Option<&Finished> {
        self.finished.last()
    }

    fn unfinished(&self) -> impl Iterator<Item = &str> {
        self.unfinished.iter().map(String::as_str)
    }

    /// The first incarnation name of `base` no finished build holds.
    fn free_name(&self, base: &str) -> String {
        (0..)
            .map(|n| incarnation_name(base, n))
            .find(|name| !self.finished.iter().any(|f| &f.name == name))
            .unwrap_or_else(|| base.to_string())
    }
}

/// The live (newest finished) build of `ontology` in `store`, if any: the
/// collection [`refit_matcher`] and searches use.
pub fn live_collection(store: &dyn VectorStore, ontology: &Ontology) -> Result<Option<String>> {
    let base = collection_name(ontology)?;
    Ok(Incarnations::of(store, &base)?
        .live()
        .map(|f| f.name.clone()))
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
        return Err(Error::BuildUnfinished {
            collection: collection.into(),
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

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use super::*;
    use crate::testing::HashingEmbedder;
    use crate::{FlatStore, SearchService};

    fn fixture() -> Ontology {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mini_cl.obo");
        Ontology::load(path).expect("fixture")
    }

    fn build(store: &FlatStore, o: &Ontology, force: bool, cancel: bool) -> Result<BuildReport> {
        let options = BuildOptions {
            force,
            fit: None,
            ..BuildOptions::default()
        };
        build_collection(
            o,
            &HashingEmbedder::new(32),
            store,
            &options,
            &NoProgress,
            &AtomicBool::new(cancel),
        )
    }

    fn names(store: &FlatStore) -> Vec<String> {
        let mut n = store.list_collections().expect("list");
        n.sort();
        n
    }

    #[test]
    fn a_rebuild_is_written_beside_the_live_build_and_replaces_it_when_finished() {
        let store = Arc::new(FlatStore::new());
        let o = fixture();
        let base = collection_name(&o).expect("name");
        let first = build(&store, &o, false, false).expect("build");
        assert_eq!(first.collection, base);
        let again = build(&store, &o, false, false).expect("no-op");
        assert!(again.skipped);
        assert_eq!(again.collection, base);

        let second = build(&store, &o, true, false).expect("rebuild");
        let r1 = incarnation_name(&base, 1);
        assert_eq!(second.collection, r1);
        assert_eq!(names(&store), vec![r1.clone()]);
        let service = SearchService::new(store.clone(), Arc::new(HashingEmbedder::new(32)));
        assert_eq!(service.resolve_collection("cl").expect("alias").name, r1);
        // The name of the replaced build pins its rebuild.
        assert_eq!(service.resolve_collection(&base).expect("pin").name, r1);
        assert_eq!(
            live_collection(store.as_ref(), &o).expect("live"),
            Some(r1.clone())
        );

        // The next rebuild takes the free name again.
        let third = build(&store, &o, true, false).expect("rebuild");
        assert_eq!(third.collection, base);
        assert_eq!(names(&store), vec![base.clone()]);
    }

    #[test]
    fn an_interrupted_rebuild_leaves_the_live_build_serving() {
        let store = Arc::new(FlatStore::new());
        let o = fixture();
        let base = collection_name(&o).expect("name");
        build(&store, &o, false, false).expect("build");
        let e = build(&store, &o, true, true).expect_err("interrupted");
        assert!(matches!(e, Error::Interrupted), "{e:?}");
        assert_eq!(names(&store), vec![base.clone()]);
        let service = SearchService::new(store.clone(), Arc::new(HashingEmbedder::new(32)));
        assert_eq!(service.resolve_collection("cl").expect("alias").name, base);

        // A build killed mid-way leaves an unfinished incarnation: ignored by
        // search, removed by the next build.
        let leftover = incarnation_name(&base, 1);
        store
            .upsert(&leftover, &[Record::new("x", vec![1.0; 32])])
            .expect("upsert");
        assert_eq!(service.resolve_collection("cl").expect("alias").name, base);
        let report = build(&store, &o, true, false).expect("rebuild");
        assert_eq!(report.collection, leftover);
        assert_eq!(names(&store), vec![leftover.clone()]);
        assert!(store.count(&leftover).expect("count") > 10);
    }
}

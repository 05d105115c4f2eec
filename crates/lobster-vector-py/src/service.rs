//! The search service and ontology graphs, as Python classes.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use lobster_vector::build::{build_collection, BuildOptions, NoProgress};
use lobster_vector::curation::{mapping_set, sssom, CuratedStore, SetInfo};
use lobster_vector::ontology::{Neighborhood, Ontology, OntologyLibrary, TermReport};
use lobster_vector::service::{output_score, MatchOptions};
use lobster_vector::SearchService;
use pyo3::prelude::*;
use serde_json::json;

use crate::convert::to_python;
use crate::errors::IntoPy;
use crate::handles::{config, PyEmbedder, PyReranker, PyStore};

/// The ontology sources under `assets_dir` (default: the configured asset directory).
fn asset_library(assets_dir: Option<PathBuf>) -> PyResult<OntologyLibrary> {
    let dir = match assets_dir {
        Some(d) => d,
        None => config(None, None, None, None)?.assets_dir,
    };
    Ok(OntologyLibrary::in_assets(&dir))
}

/// Matching, querying and building over one store, embedder and reranker.
#[pyclass(name = "Service", module = "lobster.vector._native", frozen)]
#[derive(Debug)]
pub struct PyService {
    service: SearchService,
    store: Py<PyStore>,
    embedder: Py<PyEmbedder>,
}

#[pymethods]
impl PyService {
    /// A service over `store` and `embedder` (loaded on first use), with an
    /// optional `reranker`; ontology sources come from `assets_dir/ontologies`.
    #[new]
    #[pyo3(signature = (store, embedder, reranker=None, assets_dir=None))]
    fn new(
        store: Bound<'_, PyStore>,
        embedder: Bound<'_, PyEmbedder>,
        reranker: Option<Bound<'_, PyReranker>>,
        assets_dir: Option<PathBuf>,
    ) -> PyResult<Self> {
        let handle = embedder.clone().unbind();
        let service = SearchService::with_lazy_embedder(store.get().inner.clone(), move || {
            handle.get().get()
        })
        .with_reranker(reranker.and_then(|r| r.get().inner.clone()))
        .with_ontologies(Some(Arc::new(asset_library(assets_dir)?)))
        .with_curated(Some(Arc::new(
            CuratedStore::in_dir(&store.get().config.store_path)
                .load()
                .py_err()?,
        )));
        Ok(Self {
            service,
            store: store.unbind(),
            embedder: embedder.unbind(),
        })
    }

    /// The store this service reads.
    #[getter]
    fn store(&self, py: Python<'_>) -> Py<PyStore> {
        self.store.clone_ref(py)
    }

    /// The embedder this service queries with.
    #[getter]
    fn embedder(&self, py: Python<'_>) -> Py<PyEmbedder> {
        self.embedder.clone_ref(py)
    }

    /// The `k` nearest records of `collection` per text, as the predecessor's
    /// dicts: `term` (the record's text), `ontology_id`, `score`
    /// (`clamp(1 - distance, 0, 1)`, 4 decimals), `metadata`, `distance_metric`.
    fn query_batch<'py>(
        &self,
        py: Python<'py>,
        texts: Vec<String>,
        collection: &str,
        k: usize,
    ) -> PyResult<Bound<'py, PyAny>> {
        let hits = py
            .detach(|| {
                let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
                self.service.query_batch(&refs, collection, k)
            })
            .py_err()?;
        let rows: Vec<Vec<serde_json::Value>> = hits
            .into_iter()
            .map(|hits| {
                hits.into_iter()
                    .map(|h| {
                        let id = h
                            .metadata
                            .get("ontology_id")
                            .and_then(|v| v.as_str())
                            .map_or_else(|| h.id.clone(), str::to_string);
                        json!({
                            "term": h.document.unwrap_or_default(),
                            "ontology_id": id,
                            "score": output_score(h.score),
                            "metadata": h.metadata,
                            "distance_metric": "cosine",
                        })
                    })
                    .collect()
            })
            .collect();
        to_python(py, &rows)
    }

    /// The best `k` concepts of `ontology` (a name, alias or collection) per
    /// term, as dicts of the CLI's `--json` rows; `within` keeps only a term
    /// and its descendants.
    #[pyo3(signature = (terms, ontology, k, within=None))]
    fn match_batch<'py>(
        &self,
        py: Python<'py>,
        terms: Vec<String>,
        ontology: &str,
        k: usize,
        within: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let options = MatchOptions { k, within };
        let rows = py
            .detach(|| {
                let refs: Vec<&str> = terms.iter().map(String::as_str).collect();
                self.service
                    .match_ontology_batch_with(&refs, ontology, &options)
            })
            .py_err()?;
        to_python(py, &rows)
    }

    /// The best `k` concepts per term as SSSOM/TSV text: literal subjects,
    /// each value's review status (`accepted`, `review`, `unmapped`) in
    /// `comment`, `sssom:NoTermFound` for values below `min_score`.
    #[pyo3(signature = (terms, ontology, k=1, min_score=0.0, license=None))]
    fn match_sssom(
        &self,
        py: Python<'_>,
        terms: Vec<String>,
        ontology: &str,
        k: usize,
        min_score: f32,
        license: Option<String>,
    ) -> PyResult<String> {
        py.detach(|| -> lobster_vector::Result<String> {
            let resolved = self.service.resolve_collection(ontology)?;
            let refs: Vec<&str> = terms.iter().map(String::as_str).collect();
            let rows = self.service.match_ontology_batch_with(
                &refs,
                &resolved.name,
                &MatchOptions::top(k),
            )?;
            let license = license.as_deref().unwrap_or(sssom::LICENSE_UNSPECIFIED);
            let info = SetInfo::for_collection(&resolved, license);
            let results = refs.iter().copied().zip(rows.iter().map(Vec::as_slice));
            mapping_set(results, min_score, &info).to_tsv()
        })
        .py_err()
    }

    /// The store's curated mappings (`curated.sssom.tsv` in the store
    /// directory), answered before any other match.
    fn curated<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let rows: Vec<serde_json::Value> = self
            .service
            .curated()
            .map(|set| {
                set.iter()
                    .map(|m| {
                        json!({
                            "subject_label": m.subject_label,
                            "object_id": m.object_id,
                            "object_label": m.object_label,
                            "mapping_justification": m.justification,
                            "author_label": m.author_label,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        to_python(py, &rows)
    }

    /// The collection an ontology name or alias resolves to (its newest
    /// finished build): `collection`, `artifact`, `matcher` (whether the build
    /// fitted one).
    fn resolve<'py>(&self, py: Python<'py>, ontology: &str) -> PyResult<Bound<'py, PyAny>> {
        let r = py
            .detach(|| self.service.resolve_collection(ontology))
            .py_err()?;
        to_python(
            py,
            &json!({
                "collection": r.name,
                "artifact": r.artifact,
                "matcher": r.matcher.is_some(),
            }),
        )
    }

    /// Label, definition, synonyms, parents, obsolete status and replacement
    /// of `term_id`, from the newest source of its ontology.
    fn lookup<'py>(&self, py: Python<'py>, term_id: &str) -> PyResult<Bound<'py, PyAny>> {
        self.ontology_of_term(py, term_id)?.lookup(py, term_id)
    }

    /// Parents, children, siblings, and ancestors and descendants to `depth`.
    #[pyo3(signature = (term_id, depth=1))]
    fn neighbors<'py>(
        &self,
        py: Python<'py>,
        term_id: &str,
        depth: usize,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.ontology_of_term(py, term_id)?
            .neighbors(py, term_id, depth)
    }

    /// The newest source of `ontology` (a name or alias), loaded once per service.
    fn ontology(&self, py: Python<'_>, ontology: &str) -> PyResult<PyOntology> {
        let library = self.library();
        let found = py.detach(|| library.select(ontology, None)).py_err()?;
        PyOntology::single(found)
    }

    /// Builds `ontology` (a name, alias or `all`) from its newest source under
    /// the asset directory, or from the file `source`, into this service's
    /// store; returns one report per collection. An identical earlier build
    /// is kept (`skipped`) unless `force`.
    #[pyo3(signature = (ontology, source=None, force=false))]
    fn build<'py>(
        &self,
        py: Python<'py>,
        ontology: &str,
        source: Option<PathBuf>,
        force: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let reports = py
            .detach(|| -> lobster_vector::Result<Vec<_>> {
                let sources = self.library().select(ontology, source.as_deref())?;
                let store = self.service.store();
                store.lock_for_writing()?;
                let embedder = self.service.embedder()?;
                let options = BuildOptions {
                    force,
                    ..BuildOptions::default()
                };
                let cancel = AtomicBool::new(false);
                sources
                    .iter()
                    .map(|o| {
                        build_collection(
                            o,
                            embedder.as_ref(),
                            store.as_ref(),
                            &options,
                            &NoProgress,
                            &cancel,
                        )
                    })
                    .collect()
            })
            .py_err()?;
        to_python(py, &reports)
    }
}

impl PyOntology {
    /// The one ontology of a selection (`all` selects several).
    fn single(mut found: Vec<Arc<Ontology>>) -> PyResult<Self> {
        match found.pop() {
            Some(inner) if found.is_empty() => Ok(Self { inner }),
            _ => Err(crate::errors::to_py(lobster_vector::Error::invalid_input(
                "name one ontology (mondo, uberon, cell_ontology or an alias), not `all`",
            ))),
        }
    }
}

impl PyService {
    /// The newest ontology holding `term_id`, from this service's library.
    fn ontology_of_term(&self, py: Python<'_>, term_id: &str) -> PyResult<PyOntology> {
        let library = self.library();
        let inner = py.detach(|| library.for_term_id(term_id)).py_err()?;
        Ok(PyOntology { inner })
    }

    fn library(&self) -> Arc<OntologyLibrary> {
        self.service
            .ontologies()
            .cloned()
            .unwrap_or_else(|| Arc::new(OntologyLibrary::new(Vec::new())))
    }
}

/// One ontology loaded from its source file, for lookups and the graph.
#[pyclass(name = "Ontology", module = "lobster.vector._native", frozen)]
#[derive(Debug)]
pub struct PyOntology {
    inner: Arc<Ontology>,
}

#[pymethods]
impl PyOntology {
    /// The newest source of `ontology` (name or alias) under the asset
    /// directory, or the file `source`.
    #[new]
    #[pyo3(signature = (ontology, source=None, assets_dir=None))]
    fn new(
        py: Python<'_>,
        ontology: &str,
        source: Option<PathBuf>,
        assets_dir: Option<PathBuf>,
    ) -> PyResult<Self> {
        let library = asset_library(assets_dir)?;
        let found = py
            .detach(|| library.select(ontology, source.as_deref()))
            .py_err()?;
        Self::single(found)
    }

    /// The newest ontology holding `term_id` (by its prefix).
    #[staticmethod]
    #[pyo3(signature = (term_id, assets_dir=None))]
    fn for_term(py: Python<'_>, term_id: &str, assets_dir: Option<PathBuf>) -> PyResult<Self> {
        let library = asset_library(assets_dir)?;
        let inner = py.detach(|| library.for_term_id(term_id)).py_err()?;
        Ok(Self { inner })
    }

    /// `mondo`, `uberon`, `cl`, ... as the source names itself.
    #[getter]
    fn name(&self) -> String {
        self.inner.name().to_string()
    }

    /// The source's release, e.g. `v2026-03-26`.
    #[getter]
    fn version(&self) -> String {
        self.inner.version().to_string()
    }

    /// Label, definition, synonyms, parents, obsolete status and replacement of `term_id`.
    fn lookup<'py>(&self, py: Python<'py>, term_id: &str) -> PyResult<Bound<'py, PyAny>> {
        let report = TermReport::of(&self.inner, term_id).py_err()?;
        to_python(py, &report)
    }

    /// Parents, children, siblings, and ancestors and descendants to `depth`.
    #[pyo3(signature = (term_id, depth=1))]
    fn neighbors<'py>(
        &self,
        py: Python<'py>,
        term_id: &str,
        depth: usize,
    ) -> PyResult<Bound<'py, PyAny>> {
        let n = py
            .detach(|| Neighborhood::of(&self.inner, term_id, depth))
            .py_err()?;
        to_python(py, &n)
    }

    fn __len__(&self) -> usize {
        self.inner.terms().len()
    }

    fn __contains__(&self, term_id: &str) -> bool {
        self.inner.get(term_id.trim()).is_some()
    }

    fn __repr__(&self) -> String {
        format!(
            "Ontology(name={:?}, version={:?}, terms={})",
            self.inner.name(),
            self.inner.version(),
            self.inner.terms().len()
        )
    }
}

//! Handles over the configured components: the store, the embedder (loaded
//! on first use) and the reranker, each resolved from keyword arguments >
//! environment > defaults exactly as the CLI resolves its flags.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use lobster_vector::{
    CollectionSummary, Config, Embedder, Metric, Overrides, Reranker, VectorStore,
};
use pyo3::prelude::*;
use serde_json::json;

use crate::convert::to_python;
use crate::errors::IntoPy;

/// Resolves the configuration for the given values (`None` defers to the environment).
pub fn config(
    backend: Option<String>,
    store_path: Option<PathBuf>,
    embedding_provider: Option<String>,
    reranker: Option<String>,
) -> PyResult<Config> {
    Config::resolve(&Overrides {
        backend,
        store_path,
        embedding_provider,
        reranker,
        threads: None,
    })
    .py_err()
}

/// The resolved configuration as a dict; secrets are masked.
#[pyfunction]
#[pyo3(signature = (backend=None, store_path=None, embedding_provider=None, reranker=None))]
pub fn resolve_config<'py>(
    py: Python<'py>,
    backend: Option<String>,
    store_path: Option<PathBuf>,
    embedding_provider: Option<String>,
    reranker: Option<String>,
) -> PyResult<Bound<'py, PyAny>> {
    let c = config(backend, store_path, embedding_provider, reranker)?;
    to_python(
        py,
        &json!({
            "backend": c.backend.as_str(),
            "store_path": c.store_path,
            "embedding_provider": c.embedding_provider.as_str(),
            "reranker": c.reranker.as_str(),
            "assets_dir": c.assets_dir,
            "chroma_url": c.chroma_url,
            "pgvector_url": c.pgvector_url.as_ref().map(|u| u.redacted()),
            "faiss_path": c.faiss_path,
        }),
    )
}

/// An opened vector store (`LOBSTER_VECTOR_BACKEND`).
#[pyclass(name = "Store", module = "lobster.vector._native", frozen)]
#[derive(Debug)]
pub struct PyStore {
    pub(crate) inner: Arc<dyn VectorStore>,
    pub(crate) config: Config,
}

#[pymethods]
impl PyStore {
    /// Opens the configured store.
    #[new]
    #[pyo3(signature = (backend=None, store_path=None))]
    fn open(
        py: Python<'_>,
        backend: Option<String>,
        store_path: Option<PathBuf>,
    ) -> PyResult<Self> {
        let config = config(backend, store_path, None, None)?;
        let inner = py.detach(|| lobster_vector::open_store(&config)).py_err()?;
        Ok(Self { inner, config })
    }

    /// The backend's name (`local`, `memory`, `pgvector`, `faiss`, `chromadb`).
    #[getter]
    fn backend(&self) -> &'static str {
        self.config.backend.as_str()
    }

    /// Where a `local` store lives.
    #[getter]
    fn store_path(&self) -> PathBuf {
        self.config.store_path.clone()
    }

    /// Every collection: name, count, dimension, whether its build finished, its artifact.
    fn collections<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let list = py
            .detach(|| CollectionSummary::list(self.inner.as_ref()))
            .py_err()?;
        to_python(py, &list)
    }

    /// Records in `collection`.
    fn count(&self, py: Python<'_>, collection: &str) -> PyResult<usize> {
        py.detach(|| self.inner.count(collection)).py_err()
    }

    /// The `k` nearest records to `vector`: dicts with `id`, `distance`
    /// (cosine), `score`, `document`, `metadata`.
    fn search<'py>(
        &self,
        py: Python<'py>,
        collection: &str,
        vector: Vec<f32>,
        k: usize,
    ) -> PyResult<Bound<'py, PyAny>> {
        let hits = py
            .detach(|| self.inner.search(collection, &vector, k))
            .py_err()?;
        let rows: Vec<_> = hits
            .into_iter()
            .map(|h| {
                json!({
                    "id": h.id,
                    "distance": h.distance,
                    "score": lobster_vector::service::output_score(Metric::Cosine.similarity(h.distance)),
                    "document": h.document,
                    "metadata": h.metadata,
                })
            })
            .collect();
        to_python(py, &rows)
    }

    fn __repr__(&self) -> String {
        format!("Store(backend={:?})", self.config.backend.as_str())
    }
}

/// The configured embedding model (`LOBSTER_EMBEDDING_PROVIDER`), loaded on first use.
#[pyclass(name = "Embedder", module = "lobster.vector._native", frozen)]
#[derive(Debug)]
pub struct PyEmbedder {
    config: Config,
    loaded: Mutex<Option<Arc<dyn Embedder>>>,
}

impl PyEmbedder {
    /// The model, loading it on the first call (a failed load is tried again next time).
    pub(crate) fn get(&self) -> lobster_vector::Result<Arc<dyn Embedder>> {
        let mut slot = self.loaded.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(e) = slot.as_ref() {
            return Ok(e.clone());
        }
        let e = lobster_vector::open_embedder(&self.config)?;
        *slot = Some(e.clone());
        Ok(e)
    }
}

#[pymethods]
impl PyEmbedder {
    /// The configured embedder; nothing is loaded until it embeds.
    #[new]
    #[pyo3(signature = (provider=None))]
    fn new(provider: Option<String>) -> PyResult<Self> {
        Ok(Self {
            config: config(None, None, provider, None)?,
            loaded: Mutex::new(None),
        })
    }

    /// `minilm`, `sapbert` or `openai`.
    #[getter]
    fn provider(&self) -> &'static str {
        self.config.embedding_provider.as_str()
    }

    /// Whether the model is loaded.
    #[getter]
    fn loaded(&self) -> bool {
        self.loaded
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    /// The model id recorded in collection artifacts (loads the model).
    #[getter]
    fn model_id(&self, py: Python<'_>) -> PyResult<String> {
        let e = py.detach(|| self.get()).py_err()?;
        Ok(e.model_id().to_string())
    }

    /// Vector dimension (loads the model).
    #[getter]
    fn dimensions(&self, py: Python<'_>) -> PyResult<usize> {
        let e = py.detach(|| self.get()).py_err()?;
        Ok(e.dimensions())
    }

    /// One unit vector for `text`, embedded as a query.
    fn embed_text(&self, py: Python<'_>, text: &str) -> PyResult<Vec<f32>> {
        let mut v = self.embed_batch(py, vec![text.to_string()])?;
        Ok(v.pop().unwrap_or_default())
    }

    /// One unit vector per text, in one batch.
    fn embed_batch(&self, py: Python<'_>, texts: Vec<String>) -> PyResult<Vec<Vec<f32>>> {
        py.detach(|| {
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            lobster_vector::embedder::check_texts(&refs)?;
            self.get()?.embed_documents(&refs)
        })
        .py_err()
    }

    fn __repr__(&self) -> String {
        format!(
            "Embedder(provider={:?}, loaded={})",
            self.provider(),
            self.loaded()
        )
    }
}

/// The configured reranker (`LOBSTER_RERANKER`); `none` reorders nothing.
#[pyclass(name = "Reranker", module = "lobster.vector._native", frozen)]
#[derive(Debug)]
pub struct PyReranker {
    pub(crate) inner: Option<Arc<dyn Reranker>>,
    kind: &'static str,
}

#[pymethods]
impl PyReranker {
    #[new]
    #[pyo3(signature = (kind=None))]
    fn new(py: Python<'_>, kind: Option<String>) -> PyResult<Self> {
        let config = config(None, None, None, kind)?;
        let inner = py
            .detach(|| lobster_vector::open_reranker(&config))
            .py_err()?;
        Ok(Self {
            inner,
            kind: config.reranker.as_str(),
        })
    }

    /// `none`, `cross_encoder` or `cohere`.
    #[getter]
    fn kind(&self) -> &'static str {
        self.kind
    }

    /// `(index, score)` of the best `top_k` documents for `query`, best first.
    fn rerank(
        &self,
        py: Python<'_>,
        query: &str,
        documents: Vec<String>,
        top_k: usize,
    ) -> PyResult<Vec<(usize, f32)>> {
        let Some(r) = &self.inner else {
            return Ok((0..documents.len().min(top_k)).map(|i| (i, 0.0)).collect());
        };
        py.detach(|| {
            let refs: Vec<&str> = documents.iter().map(String::as_str).collect();
            r.rerank(query, &refs, top_k)
        })
        .py_err()
    }

    fn __repr__(&self) -> String {
        format!("Reranker(kind={:?})", self.kind)
    }
}

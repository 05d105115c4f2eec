//! Factories: a [`Config`] in, ready components out.
//!
//! A backend, provider or reranker from the configuration table that this
//! build lacks answers with [`Error::NotAvailable`] naming how to get it —
//! never a silent fallback.

use std::sync::Arc;

use lobster_vector_core::{Embedder, Error, FlatStore, Reranker, Result, VectorStore};

use crate::config::{Backend, Config, EmbeddingProvider, RerankerKind};

/// Whether a configurable component can be used from this binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Availability {
    Available,
    /// Present in the table but not part of this build; the string says how to get it.
    Missing(String),
}

impl Availability {
    pub fn is_available(&self) -> bool {
        matches!(self, Availability::Available)
    }
}

fn missing(what: String, hint: &str) -> Error {
    Error::NotAvailable {
        what,
        hint: hint.into(),
    }
}

/// Whether `backend` is compiled in.
pub fn backend_availability(backend: Backend) -> Availability {
    match backend {
        Backend::Memory => Availability::Available,
        #[cfg(feature = "local")]
        Backend::Local => Availability::Available,
        #[cfg(not(feature = "local"))]
        Backend::Local => Availability::Missing("rebuild with `--features local`".into()),
        #[cfg(feature = "pgvector")]
        Backend::Pgvector => Availability::Available,
        #[cfg(not(feature = "pgvector"))]
        Backend::Pgvector => Availability::Missing("rebuild with `--features pgvector`".into()),
        #[cfg(feature = "faiss")]
        Backend::Faiss => Availability::Available,
        #[cfg(not(feature = "faiss"))]
        Backend::Faiss => Availability::Missing("rebuild with `--features faiss`".into()),
        #[cfg(feature = "chroma")]
        Backend::Chromadb => Availability::Available,
        #[cfg(not(feature = "chroma"))]
        Backend::Chromadb => Availability::Missing("rebuild with `--features chroma`".into()),
    }
}

/// Whether `provider` is compiled in.
pub fn provider_availability(provider: EmbeddingProvider) -> Availability {
    match provider {
        #[cfg(feature = "candle")]
        EmbeddingProvider::Minilm | EmbeddingProvider::Sapbert => Availability::Available,
        #[cfg(not(feature = "candle"))]
        EmbeddingProvider::Minilm | EmbeddingProvider::Sapbert => {
            Availability::Missing("rebuild with `--features candle`".into())
        }
        #[cfg(feature = "openai")]
        EmbeddingProvider::Openai => Availability::Available,
        #[cfg(not(feature = "openai"))]
        EmbeddingProvider::Openai => {
            Availability::Missing("rebuild with `--features openai`".into())
        }
    }
}

/// Whether `reranker` is compiled in.
pub fn reranker_availability(reranker: RerankerKind) -> Availability {
    match reranker {
        RerankerKind::None => Availability::Available,
        #[cfg(feature = "candle")]
        RerankerKind::CrossEncoder => Availability::Available,
        #[cfg(not(feature = "candle"))]
        RerankerKind::CrossEncoder => {
            Availability::Missing("rebuild with `--features candle`".into())
        }
        #[cfg(feature = "cohere")]
        RerankerKind::Cohere => Availability::Available,
        #[cfg(not(feature = "cohere"))]
        RerankerKind::Cohere => Availability::Missing("rebuild with `--features cohere`".into()),
    }
}

/// Opens the configured vector store, creating a local store that does not
/// exist; one that exists opens read-only where this process cannot write it.
pub fn open_store(config: &Config) -> Result<Arc<dyn VectorStore>> {
    open(config, false)
}

/// Opens the configured vector store to read it: a local store must exist
/// (else `Error::Io`, not found, and nothing is created) and is opened
/// read-only where this process cannot write it.
pub fn open_existing_store(config: &Config) -> Result<Arc<dyn VectorStore>> {
    open(config, true)
}

#[cfg_attr(not(feature = "local"), allow(unused_variables))]
fn open(config: &Config, existing: bool) -> Result<Arc<dyn VectorStore>> {
    match config.backend {
        Backend::Memory => Ok(Arc::new(FlatStore::new())),
        #[cfg(feature = "local")]
        Backend::Local => {
            use lobster_vector_local::{LocalOptions, LocalStore};
            let (path, options) = (&config.store_path, LocalOptions::default());
            // A store that exists opens read-only where it cannot be written.
            let exists = path.join(lobster_vector_local::DB_FILE).is_file();
            Ok(Arc::new(if existing || exists {
                LocalStore::open_existing(path, options)?
            } else {
                LocalStore::open(path, options)?
            }))
        }
        #[cfg(feature = "pgvector")]
        Backend::Pgvector => {
            use lobster_vector_pgvector::{PgOptions, PgStore};
            let url = config
                .pgvector_url
                .as_ref()
                .ok_or_else(|| Error::InvalidConfig {
                    key: "LOBSTER_PGVECTOR_URL".into(),
                    value: "(unset)".into(),
                    valid:
                        "a PostgreSQL connection string (postgres://user:password@host:5432/db), \
                        in LOBSTER_PGVECTOR_URL or DATABASE_URL"
                            .into(),
                })?;
            tracing::info!(url = %url.redacted(), "connecting to PostgreSQL");
            Ok(Arc::new(PgStore::connect(
                url.expose(),
                PgOptions::default(),
            )?))
        }
        #[cfg(feature = "faiss")]
        Backend::Faiss => {
            use lobster_vector_faiss::{FaissOptions, FaissStore};
            Ok(Arc::new(FaissStore::open(FaissOptions {
                path: config.faiss_path.clone(),
                index: config.faiss_index.clone(),
                parameters: config.faiss_params.clone(),
            })?))
        }
        #[cfg(feature = "chroma")]
        Backend::Chromadb => {
            use crate::chroma::{ChromaOptions, ChromaStore};
            let token_header = config
                .chroma_token_header
                .as_deref()
                .map(str::parse)
                .transpose()?
                .unwrap_or_default();
            Ok(Arc::new(ChromaStore::open(ChromaOptions {
                url: config.chroma_url.clone(),
                tenant: config.chroma_tenant.clone(),
                database: config.chroma_database.clone(),
                token: config.chroma_token.clone(),
                token_header,
                ..ChromaOptions::default()
            })?))
        }
        // Reached only by backends this build lacks (none when all are on).
        #[allow(unreachable_patterns)]
        other => match backend_availability(other) {
            Availability::Available => unreachable!("every available backend is matched above"),
            Availability::Missing(hint) => Err(missing(format!("backend `{other}`"), &hint)),
        },
    }
}

/// Loads the configured embedder.
pub fn open_embedder(config: &Config) -> Result<Arc<dyn Embedder>> {
    let p = config.embedding_provider;
    #[cfg(feature = "candle")]
    if let Some(explicit) = match p {
        EmbeddingProvider::Minilm => Some(config.minilm_model.as_deref()),
        EmbeddingProvider::Sapbert => Some(config.sapbert_model.as_deref()),
        EmbeddingProvider::Openai => None,
    } {
        use lobster_vector_candle::{resolve_model_dir, BertEmbedder, BertOptions};
        let mut options = BertOptions::for_provider(p.as_str())?;
        if let Some(threads) = config.threads {
            options = options.with_threads(threads);
        }
        let dir = resolve_model_dir(p.as_str(), explicit)?;
        tracing::info!(provider = %p, dir = %dir.display(), "loading embedder");
        return Ok(Arc::new(BertEmbedder::load(&dir, options)?));
    }
    #[cfg(feature = "openai")]
    if p == EmbeddingProvider::Openai {
        use crate::openai::{OpenAiEmbedder, OpenAiOptions};
        let defaults = OpenAiOptions::default();
        let embedder = OpenAiEmbedder::new(OpenAiOptions {
            base_url: config.openai_base_url.clone().unwrap_or(defaults.base_url),
            model: config.openai_model.clone().unwrap_or(defaults.model),
            api_key: config.openai_api_key.clone(),
            ..OpenAiOptions::default()
        })?;
        embedder.probe_dimensions()?;
        return Ok(Arc::new(embedder));
    }
    match provider_availability(p) {
        Availability::Available => unreachable!("every available provider is matched above"),
        Availability::Missing(hint) => Err(missing(format!("embedding provider `{p}`"), &hint)),
    }
}

/// Loads the configured reranker; `None` for `LOBSTER_RERANKER=none`.
pub fn open_reranker(config: &Config) -> Result<Option<Arc<dyn Reranker>>> {
    match config.reranker {
        RerankerKind::None => Ok(None),
        #[cfg(feature = "candle")]
        RerankerKind::CrossEncoder => {
            use lobster_vector_candle::{resolve_model_dir, CrossEncoder, CrossEncoderOptions};
            let dir = resolve_model_dir("cross_encoder", config.cross_encoder_model.as_deref())?;
            tracing::info!(dir = %dir.display(), "loading cross-encoder");
            Ok(Some(Arc::new(CrossEncoder::load(
                &dir,
                CrossEncoderOptions {
                    threads: config.threads,
                    ..CrossEncoderOptions::default()
                },
            )?)))
        }
        #[cfg(feature = "cohere")]
        RerankerKind::Cohere => {
            use crate::cohere::{CohereOptions, CohereReranker};
            let defaults = CohereOptions::default();
            Ok(Some(Arc::new(CohereReranker::new(CohereOptions {
                base_url: config.cohere_base_url.clone().unwrap_or(defaults.base_url),
                model: config.cohere_rerank_model.clone().unwrap_or(defaults.model),
                api_key: config.cohere_api_key.clone(),
                ..defaults
            })?)))
        }
        #[allow(unreachable_patterns)] // every kind is matched above in a full build
        other => match reranker_availability(other) {
            Availability::Available => unreachable!("every available reranker is matched above"),
            Availability::Missing(hint) => Err(missing(format!("reranker `{other}`"), &hint)),
        },
    }
}

/// Where each model of the configuration table would come from — a
/// directory or an API endpoint — or why it cannot be used, in table order:
/// `minilm`, `sapbert`, `openai`, `cross_encoder`, `cohere`. Nothing is loaded,
/// downloaded or sent.
pub fn model_sources(config: &Config) -> Vec<(&'static str, Result<String>)> {
    #[cfg(feature = "candle")]
    let local = |name: &'static str, explicit: Option<&std::path::Path>| {
        (
            name,
            lobster_vector_candle::find_model_dir(name, explicit).map(|d| d.display().to_string()),
        )
    };
    #[cfg(not(feature = "candle"))]
    let local = |name: &'static str, _: Option<&std::path::Path>| {
        (
            name,
            Err(missing(name.into(), "rebuild with `--features candle`")),
        )
    };
    // `{base}/{path}, model {model} (key set | VARIABLE not set)`
    let api = |available: Availability,
               base: &str,
               path: &str,
               model: &str,
               key: &Option<crate::Secret>,
               variable: &str,
               name: &str| match available {
        Availability::Missing(hint) => Err(missing(name.into(), &hint)),
        Availability::Available => Ok(format!(
            "{}/{path}, model {model} ({})",
            crate::secret::redact_url(base.trim_end_matches('/')),
            match key {
                Some(_) => "key set".to_string(),
                None => format!("{variable} not set"),
            }
        )),
    };
    vec![
        local("minilm", config.minilm_model.as_deref()),
        local("sapbert", config.sapbert_model.as_deref()),
        (
            "openai",
            api(
                provider_availability(EmbeddingProvider::Openai),
                config
                    .openai_base_url
                    .as_deref()
                    .unwrap_or(crate::config::OPENAI_DEFAULT_BASE_URL),
                "embeddings",
                config
                    .openai_model
                    .as_deref()
                    .unwrap_or(crate::config::OPENAI_DEFAULT_MODEL),
                &config.openai_api_key,
                "OPENAI_API_KEY",
                "openai",
            ),
        ),
        local("cross_encoder", config.cross_encoder_model.as_deref()),
        (
            "cohere",
            api(
                reranker_availability(RerankerKind::Cohere),
                config
                    .cohere_base_url
                    .as_deref()
                    .unwrap_or(crate::config::COHERE_DEFAULT_BASE_URL),
                "v2/rerank",
                config
                    .cohere_rerank_model
                    .as_deref()
                    .unwrap_or(crate::config::COHERE_DEFAULT_MODEL),
                &config.cohere_api_key,
                "COHERE_API_KEY",
                "cohere",
            ),
        ),
    ]
}

#[cfg(test)]
mod faiss_tests {
    use super::*;
    use crate::config::Overrides;

    fn faiss_config(dir: &std::path::Path) -> Config {
        let dir = dir.display().to_string();
        Config::resolve_with(&Overrides::default(), &|k| match k {
            "LOBSTER_VECTOR_BACKEND" => Some("faiss".into()),
            "LOBSTER_FAISS_PATH" => Some(dir.clone()),
            _ => None,
        })
        .expect("config")
    }

    #[cfg(feature = "faiss")]
    #[test]
    fn faiss_store_saves_where_configured() {
        use lobster_vector_core::Record;
        let dir = tempfile::tempdir().expect("temp dir");
        let config = faiss_config(&dir.path().join("f"));
        assert_eq!(config.faiss_index, "Flat");
        {
            let store = open_store(&config).expect("open");
            assert_eq!(store.backend_name(), "faiss");
            store
                .upsert(
                    "cfg",
                    &[
                        Record::new("a", vec![1.0, 0.0]),
                        Record::new("b", vec![0.0, 1.0]),
                    ],
                )
                .expect("upsert");
            store.flush().expect("flush");
        }
        let store = open_store(&config).expect("reopen");
        let hits = store.search("cfg", &[0.1, 1.0], 1).expect("search");
        assert_eq!(hits[0].id, "b");
        assert!(dir.path().join("f/manifest.json").is_file());
    }

    #[cfg(not(feature = "faiss"))]
    #[test]
    fn faiss_without_the_feature_says_how_to_get_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let e = open_store(&faiss_config(dir.path())).expect_err("not built in");
        assert!(e.to_string().contains("--features faiss"), "{e}");
    }

    #[test]
    fn faiss_path_memory_keeps_it_in_memory() {
        let config = Config::resolve_with(&Overrides::default(), &|k| {
            (k == "LOBSTER_FAISS_PATH").then(|| "memory".to_string())
        })
        .expect("config");
        assert_eq!(config.faiss_path, None);
    }
}

#[cfg(all(test, feature = "pgvector"))]
mod pgvector_tests {
    use super::*;
    use crate::config::Overrides;

    #[test]
    fn pgvector_without_a_url_names_the_variables() {
        let config = Config::resolve_with(&Overrides::default(), &|k| {
            (k == "LOBSTER_VECTOR_BACKEND").then(|| "pgvector".to_string())
        })
        .expect("config");
        let e = open_store(&config).expect_err("no URL");
        let text = e.to_string();
        assert!(
            text.contains("LOBSTER_PGVECTOR_URL") && text.contains("DATABASE_URL"),
            "{text}"
        );
        assert!(backend_availability(Backend::Pgvector).is_available());
    }
}

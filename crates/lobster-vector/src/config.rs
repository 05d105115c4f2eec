//! One [`Config`], resolved from flags > environment > defaults.
//!
//! Unknown values are errors that list the valid ones; nothing falls back silently.

use std::path::PathBuf;

use lobster_vector_core::{Error, Result};

use crate::Secret;

/// Defines a closed set of configuration values with their spellings.
macro_rules! choice {
    ($(#[$meta:meta])* $name:ident, $key:literal { $($(#[$vmeta:meta])* $variant:ident = $text:literal $(| $alias:literal)*),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            /// Every value, in documentation order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The environment variable this value is read from.
            pub const KEY: &'static str = $key;

            /// The canonical spelling.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// The canonical spellings, comma separated (for error messages and `--help`).
            pub fn valid_values() -> String {
                Self::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
            }
        }

        impl std::str::FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                match s.trim().to_ascii_lowercase().as_str() {
                    $($text $(| $alias)* => Ok($name::$variant),)+
                    _ => Err(Error::InvalidConfig {
                        key: $key.into(),
                        value: s.into(),
                        valid: Self::valid_values(),
                    }),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

choice!(
    /// Where vectors live (`LOBSTER_VECTOR_BACKEND`).
    Backend, "LOBSTER_VECTOR_BACKEND" {
        /// The embedded persistent store (SQLite + HNSW) under `store_path`.
        Local = "local",
        /// The exact in-memory index; nothing persists.
        Memory = "memory",
        /// PostgreSQL with pgvector.
        Pgvector = "pgvector" | "postgres" | "postgresql",
        /// FAISS (optional build feature).
        Faiss = "faiss",
        /// A ChromaDB server over HTTP.
        Chromadb = "chromadb" | "chroma",
    }
);

choice!(
    /// Which model embeds text (`LOBSTER_EMBEDDING_PROVIDER`).
    EmbeddingProvider, "LOBSTER_EMBEDDING_PROVIDER" {
        /// all-MiniLM-L6-v2, 384-d, mean pooling, normalised.
        Minilm = "minilm",
        /// SapBERT-from-PubMedBERT-fulltext, 768-d, CLS pooling.
        Sapbert = "sapbert",
        /// An OpenAI-compatible embeddings API.
        Openai = "openai",
    }
);

choice!(
    /// Which model reorders candidates (`LOBSTER_RERANKER`).
    RerankerKind, "LOBSTER_RERANKER" {
        /// No reranking.
        None = "none",
        /// A cross-encoder run locally.
        CrossEncoder = "cross_encoder" | "cross-encoder" | "crossencoder",
        /// Cohere's rerank API.
        Cohere = "cohere",
    }
);

/// OpenAI's API, used when `OPENAI_BASE_URL` is not set.
pub const OPENAI_DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";
/// The embedding model used when `LOBSTER_OPENAI_MODEL` is not set.
pub const OPENAI_DEFAULT_MODEL: &str = "text-embedding-3-small";
/// The FAISS index under the id map when `LOBSTER_FAISS_INDEX` is not set.
pub const FAISS_DEFAULT_INDEX: &str = "Flat";
/// Cohere's API, used when `CO_API_URL` is not set.
pub const COHERE_DEFAULT_BASE_URL: &str = "https://api.cohere.com";
/// The rerank model used when `COHERE_RERANK_MODEL` is not set.
pub const COHERE_DEFAULT_MODEL: &str = "rerank-v4.0-pro";

/// Worker threads allowed per core: more only queue on the same cores.
pub const MAX_THREADS_PER_CORE: usize = 4;

/// The most worker threads `LOBSTER_THREADS` may ask for on this machine.
pub fn max_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()) * MAX_THREADS_PER_CORE
}

/// Values given on the command line (or by a library caller); `None` defers to
/// the environment, then to the default.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub backend: Option<String>,
    pub store_path: Option<PathBuf>,
    pub embedding_provider: Option<String>,
    pub reranker: Option<String>,
    pub threads: Option<usize>,
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub backend: Backend,
    pub store_path: PathBuf,
    pub embedding_provider: EmbeddingProvider,
    pub reranker: RerankerKind,
    pub pgvector_url: Option<Secret>,
    /// Directory of the FAISS store (`LOBSTER_FAISS_PATH`, default
    /// `~/.lobster/faiss_store`); `None` (the value `memory`) keeps it in memory.
    pub faiss_path: Option<PathBuf>,
    /// FAISS `index_factory` description under the id map
    /// (`LOBSTER_FAISS_INDEX`, default `Flat`: exact).
    pub faiss_index: String,
    /// FAISS search parameters (`LOBSTER_FAISS_PARAMS`, e.g. `efSearch=128`).
    pub faiss_params: String,
    pub chroma_url: String,
    /// Chroma tenant (`LOBSTER_CHROMA_TENANT`, default `default_tenant`).
    pub chroma_tenant: String,
    /// Chroma database (`LOBSTER_CHROMA_DATABASE`, default `default_database`).
    pub chroma_database: String,
    /// Chroma auth token (`LOBSTER_CHROMA_TOKEN`), sent as the header chosen by
    /// `LOBSTER_CHROMA_TOKEN_HEADER`: `authorization` (bearer, default) or `x-chroma-token`.
    pub chroma_token: Option<Secret>,
    pub chroma_token_header: Option<String>,
    pub minilm_model: Option<PathBuf>,
    pub sapbert_model: Option<PathBuf>,
    pub cross_encoder_model: Option<PathBuf>,
    pub openai_api_key: Option<Secret>,
    pub openai_base_url: Option<String>,
    pub openai_model: Option<String>,
    pub cohere_api_key: Option<Secret>,
    pub cohere_rerank_model: Option<String>,
    /// Cohere's API base URL (`CO_API_URL`, as Cohere's own clients read it).
    pub cohere_base_url: Option<String>,
    /// Where the setup script puts models and ontology sources.
    pub assets_dir: PathBuf,
    /// Worker threads for search and inference; `None` = all cores.
    pub threads: Option<usize>,
}

/// The user's home directory, or the current directory when unknown.
fn home(env: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    env("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
}

impl Config {
    /// Resolves from the process environment and `overrides`.
    pub fn resolve(overrides: &Overrides) -> Result<Config> {
        Self::resolve_with(overrides, &|k| {
            std::env::var(k).ok().filter(|v| !v.is_empty())
        })
    }

    /// Resolves with `env` as the environment (for tests and embedding hosts).
    pub fn resolve_with(
        overrides: &Overrides,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config> {
        let pick = |flag: &Option<String>, key: &str| flag.clone().or_else(|| env(key));
        let backend = pick(&overrides.backend, Backend::KEY)
            .map(|v| v.parse())
            .transpose()?;
        let provider = pick(&overrides.embedding_provider, EmbeddingProvider::KEY)
            .map(|v| v.parse())
            .transpose()?;
        let reranker = pick(&overrides.reranker, RerankerKind::KEY)
            .map(|v| v.parse())
            .transpose()?;
        let max_threads = max_threads();
        let threads = match overrides.threads {
            Some(t) => Some(t.to_string()),
            None => env("LOBSTER_THREADS"),
        }
        .map(|v| {
            v.trim()
                .parse::<usize>()
                .ok()
                .filter(|t| (1..=max_threads).contains(t))
                .ok_or_else(|| Error::InvalidConfig {
                    key: "LOBSTER_THREADS".into(),
                    value: v.clone(),
                    valid: format!(
                        "1 to {max_threads} ({MAX_THREADS_PER_CORE} per core of this machine)"
                    ),
                })
        })
        .transpose()?;
        let path = |key: &str| env(key).map(PathBuf::from);
        let lobster_home = home(env).join(".lobster");
        Ok(Config {
            backend: backend.unwrap_or(Backend::Local),
            store_path: overrides
                .store_path
                .clone()
                .or_else(|| path("LOBSTER_VECTOR_STORE_PATH"))
                .unwrap_or_else(|| lobster_home.join("vector_store")),
            embedding_provider: provider.unwrap_or(EmbeddingProvider::Minilm),
            reranker: reranker.unwrap_or(RerankerKind::None),
            pgvector_url: env("LOBSTER_PGVECTOR_URL")
                .or_else(|| env("DATABASE_URL"))
                .map(Secret::new),
            faiss_path: match env("LOBSTER_FAISS_PATH") {
                Some(v) if v == "memory" => None,
                Some(v) => Some(PathBuf::from(v)),
                None => Some(lobster_home.join("faiss_store")),
            },
            faiss_index: env("LOBSTER_FAISS_INDEX").unwrap_or_else(|| FAISS_DEFAULT_INDEX.into()),
            faiss_params: env("LOBSTER_FAISS_PARAMS").unwrap_or_default(),
            chroma_url: env("LOBSTER_CHROMA_URL").unwrap_or_else(|| "http://127.0.0.1:8000".into()),
            chroma_tenant: env("LOBSTER_CHROMA_TENANT").unwrap_or_else(|| "default_tenant".into()),
            chroma_database: env("LOBSTER_CHROMA_DATABASE")
                .unwrap_or_else(|| "default_database".into()),
            chroma_token: env("LOBSTER_CHROMA_TOKEN").map(Secret::new),
            chroma_token_header: env("LOBSTER_CHROMA_TOKEN_HEADER"),
            minilm_model: path("LOBSTER_MINILM_MODEL"),
            sapbert_model: path("LOBSTER_SAPBERT_MODEL"),
            cross_encoder_model: path("LOBSTER_CROSS_ENCODER_MODEL"),
            openai_api_key: env("OPENAI_API_KEY").map(Secret::new),
            openai_base_url: env("OPENAI_BASE_URL"),
            openai_model: env("LOBSTER_OPENAI_MODEL"),
            cohere_api_key: env("COHERE_API_KEY")
                .or_else(|| env("CO_API_KEY"))
                .map(Secret::new),
            cohere_rerank_model: env("COHERE_RERANK_MODEL"),
            cohere_base_url: env("CO_API_URL"),
            assets_dir: path("LOBSTER_ASSETS_DIR").unwrap_or_else(|| lobster_home.join("assets")),
            threads,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn defaults() {
        let c = Config::resolve_with(&Overrides::default(), &env_of(&[("HOME", "/h")])).unwrap();
        assert_eq!(c.backend, Backend::Local);
        assert_eq!(c.embedding_provider, EmbeddingProvider::Minilm);
        assert_eq!(c.reranker, RerankerKind::None);
        assert_eq!(c.store_path, PathBuf::from("/h/.lobster/vector_store"));
        assert_eq!(c.chroma_url, "http://127.0.0.1:8000");
        assert!(c.pgvector_url.is_none() && c.threads.is_none());
    }

    #[test]
    fn threads_are_capped_at_a_few_per_core() {
        let env = env_of(&[("HOME", "/h")]);
        let with = |t: usize| {
            let o = Overrides {
                threads: Some(t),
                ..Default::default()
            };
            Config::resolve_with(&o, &env)
        };
        assert_eq!(with(1).unwrap().threads, Some(1));
        assert_eq!(with(max_threads()).unwrap().threads, Some(max_threads()));
        let e = with(max_threads() + 1).unwrap_err().to_string();
        assert!(
            e.contains("LOBSTER_THREADS") && e.contains("per core"),
            "{e}"
        );
        assert!(with(0).is_err());
        let env = env_of(&[("HOME", "/h"), ("LOBSTER_THREADS", "100000")]);
        assert!(Config::resolve_with(&Overrides::default(), &env).is_err());
    }

    #[test]
    fn flag_beats_environment() {
        let env = env_of(&[
            ("LOBSTER_VECTOR_BACKEND", "pgvector"),
            ("LOBSTER_VECTOR_STORE_PATH", "/env"),
        ]);
        let o = Overrides {
            backend: Some("memory".into()),
            ..Default::default()
        };
        let c = Config::resolve_with(&o, &env).unwrap();
        assert_eq!(c.backend, Backend::Memory);
        assert_eq!(c.store_path, PathBuf::from("/env"));
        let c = Config::resolve_with(&Overrides::default(), &env).unwrap();
        assert_eq!(c.backend, Backend::Pgvector);
    }

    #[test]
    fn unknown_values_list_valid_ones() {
        for (key, value, listed) in [
            (
                "LOBSTER_VECTOR_BACKEND",
                "bogus",
                "local, memory, pgvector, faiss, chromadb",
            ),
            (
                "LOBSTER_EMBEDDING_PROVIDER",
                "bert",
                "minilm, sapbert, openai",
            ),
            ("LOBSTER_RERANKER", "colbert", "none, cross_encoder, cohere"),
            ("LOBSTER_THREADS", "0", "per core"),
        ] {
            let err =
                Config::resolve_with(&Overrides::default(), &env_of(&[(key, value)])).unwrap_err();
            let msg = err.to_string();
            assert!(
                msg.contains(key) && msg.contains(value) && msg.contains(listed),
                "{msg}"
            );
        }
    }

    #[test]
    fn secrets_come_from_either_variable_and_stay_masked() {
        let env = env_of(&[
            ("DATABASE_URL", "postgres://u:pw@h/db"),
            ("CO_API_KEY", "k"),
        ]);
        let c = Config::resolve_with(&Overrides::default(), &env).unwrap();
        assert_eq!(
            c.pgvector_url.as_ref().unwrap().expose(),
            "postgres://u:pw@h/db"
        );
        assert_eq!(c.cohere_api_key.as_ref().unwrap().expose(), "k");
        let debug = format!("{c:?}");
        assert!(
            !debug.contains("pw@") && !debug.contains("\"k\""),
            "{debug}"
        );
    }
}

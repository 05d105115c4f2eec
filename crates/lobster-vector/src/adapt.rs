//! Adapting the configured BERT embedder to ontology sources (see
//! [`lobster_vector_candle::adapt`](fn@lobster_vector_candle::adapt)):
//! which names train, and which model is the base.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use lobster_vector_candle::{
    adapt, AdaptEvent, AdaptOptions, AdaptReport, AdaptationManifest, SourceRecord, SynonymSet,
    MANIFEST_FILE,
};
use lobster_vector_candle::{resolve_model_dir, BertOptions};
use lobster_vector_match::matcher::{held_out_synonym_texts, FitOptions};
use lobster_vector_match::ontology::{Ontology, SynonymScope};

use crate::{Config, EmbeddingProvider, Error, Result};

/// The folder under `<assets>/models/` an adapted model is written to by
/// default, per base provider.
pub fn default_output(config: &Config) -> PathBuf {
    let folder = match config.embedding_provider {
        EmbeddingProvider::Sapbert => "SapBERT-from-PubMedBERT-fulltext-adapted",
        _ => "all-MiniLM-L6-v2-adapted",
    };
    config.assets_dir.join("models").join(folder)
}

/// The configured embedder's model directory and options: the base an
/// adaptation starts from. Only the BERT providers can be adapted.
///
/// # Errors
/// [`Error::InvalidConfig`] for a provider that is not a local BERT model;
/// [`Error::Model`] when its directory cannot be found.
pub fn base_model(config: &Config) -> Result<(PathBuf, BertOptions)> {
    let p = config.embedding_provider;
    let explicit = match p {
        EmbeddingProvider::Minilm => config.minilm_model.as_deref(),
        EmbeddingProvider::Sapbert => config.sapbert_model.as_deref(),
        EmbeddingProvider::Openai => {
            return Err(Error::InvalidConfig {
                key: "embedding provider".into(),
                value: p.as_str().into(),
                valid: "minilm or sapbert (a remote embedding service cannot be adapted)".into(),
            })
        }
    };
    let dir = resolve_model_dir(p.as_str(), explicit)?;
    let mut options = BertOptions::for_provider(p.as_str())?;
    if let Some(threads) = config.threads {
        options = options.with_threads(threads);
    }
    Ok((dir, options))
}

/// The names that train: for every live term, its label followed by its
/// exact synonyms and those whose scope the source does not state (broad,
/// narrow and related synonyms name other concepts), less the synonyms a
/// matcher fitted with `fit` holds out (see [`held_out_synonym_texts`]).
/// With the files they came from.
pub fn synonym_sets(
    ontologies: &[Arc<Ontology>],
    fit: &FitOptions,
) -> (Vec<SynonymSet>, Vec<SourceRecord>) {
    let mut sets = Vec::new();
    let mut sources = Vec::new();
    for o in ontologies {
        let held_out: HashSet<(String, String)> =
            held_out_synonym_texts(o, fit).into_iter().collect();
        for t in o.live_terms() {
            let names: Vec<String> = std::iter::once(t.label.clone())
                .chain(
                    t.synonyms
                        .iter()
                        .filter(|s| matches!(s.scope, None | Some(SynonymScope::Exact)))
                        .filter(|s| !held_out.contains(&(t.id.clone(), s.text.clone())))
                        .map(|s| s.text.clone()),
                )
                .filter(|n| !n.trim().is_empty())
                .collect();
            sets.push(SynonymSet {
                id: t.id.clone(),
                names,
            });
        }
        sources.push(SourceRecord {
            file: file_name(o.source_path()),
            sha256: o.source_sha256().to_string(),
        });
    }
    (sets, sources)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

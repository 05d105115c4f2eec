//! What built a collection: stored with it so queries can fail closed.

use serde::{Deserialize, Serialize};

use crate::{Embedder, Error, Metadata, Result, VectorStore};

/// The key under which the artifact lives in collection metadata.
pub const ARTIFACT_KEY: &str = "artifact";

/// Provenance of an ontology collection, written last when a build completes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Artifact {
    pub embedding_provider: String,
    pub embedding_model: String,
    pub dimensions: usize,
    pub ontology: String,
    pub source_version: String,
    pub source_sha256: String,
    /// RFC 3339 UTC time the build finished.
    pub built_at: String,
    pub lobster_vector_version: String,
    /// Number of vectors (labels + synonyms) written.
    pub entry_count: usize,
    /// Number of live terms indexed.
    #[serde(default)]
    pub term_count: usize,
    /// The source file the collection was built from (to find it again for
    /// exact matching and the graph; verified by `source_sha256`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_path: Option<String>,
}

impl Artifact {
    /// Reads the artifact from collection metadata; `None` when absent (an unfinished build).
    pub fn from_metadata(metadata: &Metadata) -> Option<Artifact> {
        metadata
            .get(ARTIFACT_KEY)
            .and_then(|v| serde_json::from_value(v.clone()).ok())
    }

    /// Stores the artifact in collection metadata.
    pub fn write_into(&self, metadata: &mut Metadata) {
        if let Ok(v) = serde_json::to_value(self) {
            metadata.insert(ARTIFACT_KEY.into(), v);
        }
    }

    /// Fails closed when `embedder` is not the one that built `collection`.
    pub fn check_embedder(&self, collection: &str, embedder: &dyn Embedder) -> Result<()> {
        let same = self.embedding_provider == embedder.provider()
            && self.embedding_model == embedder.model_id()
            && self.dimensions == embedder.dimensions();
        if same {
            return Ok(());
        }
        Err(Error::EmbedderMismatch {
            collection: collection.into(),
            built_with: format!(
                "{}:{} ({}-d)",
                self.embedding_provider, self.embedding_model, self.dimensions
            ),
            query_with: format!(
                "{}:{} ({}-d)",
                embedder.provider(),
                embedder.model_id(),
                embedder.dimensions()
            ),
        })
    }
}

/// One collection of a store as listings show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CollectionSummary {
    pub name: String,
    pub count: usize,
    pub dimension: Option<usize>,
    /// Whether its build finished (it has an artifact).
    pub complete: bool,
    pub artifact: Option<Artifact>,
}

impl CollectionSummary {
    /// Every collection of `store`, in the store's order.
    pub fn list(store: &dyn VectorStore) -> Result<Vec<CollectionSummary>> {
        store
            .list_collections()?
            .into_iter()
            .map(|name| {
                let info = store.collection_info(&name)?;
                let artifact = Artifact::from_metadata(&info.metadata);
                Ok(CollectionSummary {
                    name: info.name,
                    count: info.count,
                    dimension: info.dimension,
                    complete: artifact.is_some(),
                    artifact,
                })
            })
            .collect()
    }
}

/// The current UTC time as RFC 3339 (seconds precision), without a date crate.
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}Z")
}

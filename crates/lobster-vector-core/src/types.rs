//! Records going into a store and hits coming out.

use serde::{Deserialize, Serialize};

/// A JSON object: record metadata and collection metadata.
pub type Metadata = serde_json::Map<String, serde_json::Value>;

/// One vector with its id, optional document text and metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub vector: Vec<f32>,
    #[serde(default)]
    pub document: Option<String>,
    #[serde(default)]
    pub metadata: Metadata,
}

impl Record {
    /// A record without document or metadata.
    pub fn new(id: impl Into<String>, vector: Vec<f32>) -> Self {
        Self {
            id: id.into(),
            vector,
            document: None,
            metadata: Metadata::new(),
        }
    }

    /// Sets the document text.
    pub fn with_document(mut self, document: impl Into<String>) -> Self {
        self.document = Some(document.into());
        self
    }

    /// Sets the metadata object.
    pub fn with_metadata(mut self, metadata: Metadata) -> Self {
        self.metadata = metadata;
        self
    }
}

/// A search result: the cosine distance of a stored record to the query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hit {
    pub id: String,
    /// Cosine distance `1 - cos(q, v)`, ascending across a result list.
    pub distance: f32,
    pub document: Option<String>,
    pub metadata: Metadata,
}

/// What a store knows about one collection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollectionInfo {
    pub name: String,
    /// Vector dimension; `None` before the first vector arrives.
    pub dimension: Option<usize>,
    pub count: usize,
    /// Collection-level metadata: the build artifact and backend settings.
    pub metadata: Metadata,
}

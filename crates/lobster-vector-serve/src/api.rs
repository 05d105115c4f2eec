//! Request and answer bodies of the HTTP API. Answer rows are the CLI's
//! `--json` rows: serialised [`OntologyMatch`], [`SearchHit`], [`TermReport`],
//! [`Neighborhood`] and [`CollectionSummary`].

use lobster_vector::ontology::{Neighborhood, TermReport};
use lobster_vector::{CollectionSummary, OntologyMatch, SearchHit};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// One text or a list of texts.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(t) => vec![t],
            OneOrMany::Many(v) => v,
        }
    }
}

/// `POST /v1/match`: terms to map to one ontology.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MatchRequest {
    /// A term, or a list of terms (a metadata column).
    pub terms: OneOrMany,
    /// `mondo`/`disease`, `uberon`/`tissue`, `cell_ontology`/`cell_type`, or a collection name.
    pub ontology: String,
    /// Concepts per term (default 5).
    pub k: Option<usize>,
    /// Drop rows whose score is below this (0..1).
    pub min_score: Option<f32>,
    /// Keep only this term id and its descendants.
    pub within: Option<String>,
}

/// The matches of one term.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TermMatches {
    pub query: String,
    /// Best first; rows as `lobster-vector search --json` prints them.
    #[schema(value_type = Vec<Object>)]
    pub matches: Vec<OntologyMatch>,
}

/// The answer of `POST /v1/match`, one entry per term in request order.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MatchResponse {
    pub ontology: String,
    pub results: Vec<TermMatches>,
}

/// `POST /v1/search`: a raw nearest-neighbour query of one collection.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    /// A text, or a list of texts.
    pub texts: OneOrMany,
    /// The collection's exact name (see `GET /v1/collections`).
    pub collection: String,
    /// Records per text (default 5).
    pub k: Option<usize>,
}

/// The hits of one text.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TextHits {
    pub query: String,
    #[schema(value_type = Vec<Object>)]
    pub hits: Vec<SearchHit>,
}

/// The answer of `POST /v1/search`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SearchResponse {
    pub collection: String,
    pub results: Vec<TextHits>,
}

/// `GET /v1/terms/{id}`: the CLI's `lookup --json`.
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct TermBody(pub TermReport);

/// `GET /v1/terms/{id}/neighbors`: the CLI's `neighbors --json`.
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct NeighborsBody(pub Neighborhood);

/// Both bodies are documented as JSON objects.
macro_rules! object_schema {
    ($($t:ty),+) => {$(
        impl utoipa::PartialSchema for $t {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new().into()
            }
        }
        impl ToSchema for $t {}
    )+};
}
object_schema!(TermBody, NeighborsBody);

/// Query of `GET /v1/terms/{id}/neighbors`.
#[derive(Debug, Clone, Deserialize, IntoParams)]
pub struct NeighborsQuery {
    /// Edges up and down for ancestors and descendants (default 1).
    pub depth: Option<usize>,
}

/// `GET /v1/collections`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CollectionsResponse {
    pub backend: String,
    #[schema(value_type = Vec<Object>)]
    pub collections: Vec<CollectionSummary>,
}

/// `GET /health`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or `loading` while the model and ontologies load.
    pub status: String,
    pub version: String,
    pub backend: String,
    pub embedding_provider: String,
}

//! How to reach a Chroma server, and why one is refused.

use lobster_vector_core::{Error, Result};

use super::SUPPORTED_API_MAJOR;
use crate::http::HttpOptions;
use crate::Secret;

/// How the auth token is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TokenHeader {
    /// `Authorization: Bearer <token>` (Chroma's default token transport).
    #[default]
    Authorization,
    /// `X-Chroma-Token: <token>`.
    XChromaToken,
}

impl std::str::FromStr for TokenHeader {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "authorization" | "bearer" => Ok(Self::Authorization),
            "x-chroma-token" | "x_chroma_token" => Ok(Self::XChromaToken),
            _ => Err(Error::InvalidConfig {
                key: "LOBSTER_CHROMA_TOKEN_HEADER".into(),
                value: s.into(),
                valid: "authorization, x-chroma-token".into(),
            }),
        }
    }
}

/// Where the server is and how to talk to it.
#[derive(Debug, Clone)]
pub struct ChromaOptions {
    /// The server's base URL, e.g. `http://127.0.0.1:8000`.
    pub url: String,
    pub tenant: String,
    pub database: String,
    pub token: Option<Secret>,
    pub token_header: TokenHeader,
    /// Records per request at most; the server's `max_batch_size` lowers it.
    pub max_batch: usize,
    pub http: HttpOptions,
}

impl Default for ChromaOptions {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:8000".into(),
            tenant: "default_tenant".into(),
            database: "default_database".into(),
            token: None,
            token_header: TokenHeader::default(),
            max_batch: 1000,
            http: HttpOptions::default(),
        }
    }
}

/// Why the store refused a server (the source of an [`Error::Backend`]).
#[derive(Debug, thiserror::Error)]
pub enum ChromaError {
    /// The server speaks another API version.
    #[error(
        "the Chroma server at {url} reports API version {version}; this client speaks \
         API {SUPPORTED_API_MAJOR}.x (chromadb 1.x, `chroma run`)"
    )]
    IncompatibleServer { url: String, version: String },
    /// The server has no v2 API (chromadb before 0.6) or is not Chroma.
    #[error(
        "{url} does not serve Chroma's v2 API (HTTP {status} from /api/v2/version); \
         run a chromadb 1.x server (`chroma run --path DIR`)"
    )]
    NoV2Api { url: String, status: u16 },
    /// The configured tenant or database does not exist on the server.
    #[error(
        "database `{database}` of tenant `{tenant}` does not exist on {url}; create it or set \
         LOBSTER_CHROMA_TENANT / LOBSTER_CHROMA_DATABASE"
    )]
    DatabaseNotFound {
        url: String,
        tenant: String,
        database: String,
    },
}

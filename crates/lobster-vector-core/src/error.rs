//! The one error type of lobster-vector's libraries.

use std::path::PathBuf;

/// A boxed source error from a backend, an HTTP client or a model runtime.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Every way a lobster-vector library call can fail.
///
/// Variants carry structured fields so callers can react without parsing
/// messages; `Display` gives a sentence a user can act on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A search, delete, count or info call named a collection that does not exist.
    #[error("collection `{name}` does not exist")]
    CollectionNotFound { name: String },

    /// A vector's dimension differs from its collection's (or batch's) dimension.
    #[error("dimension mismatch: the collection holds {expected}-d vectors, got {got}-d")]
    DimensionMismatch { expected: usize, got: usize },

    /// User-supplied data was rejected; `message` names the offending record or field.
    #[error("invalid input: {message}")]
    InvalidInput { message: String },

    /// The collection exists but cannot answer this query, for a reason no
    /// more specific variant names.
    #[error("collection `{collection}` cannot be used: {reason}")]
    CollectionUnavailable { collection: String, reason: String },

    /// The collection exists but its build never finished: it has no artifact.
    #[error("collection `{collection}` cannot be used: its build did not finish (no artifact)")]
    BuildUnfinished { collection: String },

    /// The collection was built by another embedder than the one querying it;
    /// both are `provider:model (N-d)`.
    #[error("collection `{collection}` cannot be used: it was built with {built_with} but the query embedder is {query_with}")]
    EmbedderMismatch {
        collection: String,
        built_with: String,
        query_with: String,
    },

    /// The collection's distances are not cosine distances (a remote store
    /// created with another space or metric).
    #[error(
        "collection `{collection}` cannot be used: it measures `{metric}`, not cosine distance"
    )]
    MetricMismatch { collection: String, metric: String },

    /// An operation needs the ontology source a collection was built from,
    /// and it is not loaded.
    #[error("{needed_for} needs the ontology source file collection `{collection}` was built from, and it is not available")]
    CollectionSourceMissing {
        collection: String,
        needed_for: &'static str,
    },

    /// A configuration value is unknown or malformed; `valid` lists what is accepted.
    #[error("invalid value `{value}` for {key}; valid values: {valid}")]
    InvalidConfig {
        key: String,
        value: String,
        valid: String,
    },

    /// The requested backend, provider or reranker is not part of this build or not built yet.
    #[error("{what} is not available in this build: {hint}")]
    NotAvailable { what: String, hint: String },

    /// An ontology name or alias that is not known.
    #[error("unknown ontology `{name}`; valid names: {valid}")]
    UnknownOntology { name: String, valid: String },

    /// No finished collection exists for an ontology in this store.
    #[error("no {ontology} collection is built in this store")]
    NoCollection { ontology: String },

    /// A term id that is not in the ontology.
    #[error("term `{id}` is not in {ontology}")]
    TermNotFound { id: String, ontology: String },

    /// A file could not be read or written.
    #[error("{action} `{path}`")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A file's content could not be parsed; `location` is a line or a JSON path where known.
    #[error("cannot parse `{path}`{}: {message}", location.as_ref().map(|l| format!(" at {l}")).unwrap_or_default())]
    Parse {
        path: PathBuf,
        location: Option<String>,
        message: String,
    },

    /// No source file of an ontology in the directories searched.
    #[error("no {ontology} source file (`{pattern}`) in {searched}")]
    OntologySourceMissing {
        ontology: String,
        pattern: String,
        searched: String,
    },

    /// No directory of a model was found; `tried` lists where it was looked
    /// for, `env_var` is the variable that names a directory, and
    /// `fetched_by_setup` tells whether the project's asset setup fetches it.
    #[error("no model directory for provider `{provider}` ({model_id}); tried: {tried}; set {env_var} to a model directory")]
    ModelMissing {
        provider: String,
        model_id: String,
        tried: String,
        env_var: &'static str,
        fetched_by_setup: bool,
    },

    /// A model's files exist but cannot be loaded (corrupt or incomplete).
    #[error("cannot load the model files at `{path}` (corrupt or incomplete?): {message}")]
    ModelFiles { path: PathBuf, message: String },

    /// A model could not be loaded or run, for a reason no more specific
    /// variant names.
    #[error("model error: {message}")]
    Model { message: String },

    /// Another process holds the store's write lock.
    #[error("the store at `{path}` is locked by another writer")]
    StoreLocked { path: PathBuf },

    /// An API refused the credentials (HTTP 401/403); `variable` names where the key comes from.
    #[error("{service} refused the credentials (HTTP {status}); check {variable}")]
    Unauthorized {
        service: String,
        status: u16,
        variable: String,
    },

    /// A write (or maintenance that writes) was attempted on a store open
    /// read-only: by option, or because its files cannot be written.
    #[error("the store at `{path}` is open read-only (by option, or because its files cannot be written) and cannot {action}")]
    ReadOnly { path: PathBuf, action: &'static str },

    /// A failure inside a storage engine, HTTP service or runtime.
    #[error("{kind} backend error")]
    Backend {
        kind: &'static str,
        #[source]
        source: BoxError,
    },

    /// The operation was interrupted (for example by Ctrl-C) and rolled back.
    #[error("interrupted; nothing was committed")]
    Interrupted,
}

/// What kind of failure an [`Error`] is: the level a caller (an HTTP status, a
/// Python exception class) reacts to without matching every variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The caller's input or configuration is wrong.
    InvalidInput,
    /// A named collection, ontology build, ontology source or term does not exist.
    NotFound,
    /// The collection exists but cannot answer (another embedder, unfinished build).
    Unavailable,
    /// A component that this build does not contain.
    NotAvailable,
    /// Another writer holds the store, or it is read-only.
    Locked,
    /// A remote service refused the credentials.
    Unauthorized,
    /// A file could not be read, written or parsed.
    Io,
    /// A model could not be loaded or run.
    Model,
    /// A storage engine or remote service failed.
    Backend,
    /// Stopped on request; nothing was committed.
    Interrupted,
}

impl ErrorKind {
    /// The snake_case name used in machine-readable output.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::NotAvailable => "not_available",
            ErrorKind::Locked => "locked",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::Io => "io",
            ErrorKind::Model => "model",
            ErrorKind::Backend => "backend",
            ErrorKind::Interrupted => "interrupted",
        }
    }
}

impl Error {
    /// The kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::DimensionMismatch { .. }
            | Error::InvalidInput { .. }
            | Error::InvalidConfig { .. }
            | Error::UnknownOntology { .. } => ErrorKind::InvalidInput,
            Error::CollectionNotFound { .. }
            | Error::NoCollection { .. }
            | Error::TermNotFound { .. }
            | Error::OntologySourceMissing { .. }
            | Error::CollectionSourceMissing { .. } => ErrorKind::NotFound,
            Error::CollectionUnavailable { .. }
            | Error::BuildUnfinished { .. }
            | Error::EmbedderMismatch { .. }
            | Error::MetricMismatch { .. } => ErrorKind::Unavailable,
            Error::NotAvailable { .. } => ErrorKind::NotAvailable,
            Error::StoreLocked { .. } | Error::ReadOnly { .. } => ErrorKind::Locked,
            Error::Unauthorized { .. } => ErrorKind::Unauthorized,
            Error::Io { .. } | Error::Parse { .. } => ErrorKind::Io,
            Error::Model { .. } | Error::ModelMissing { .. } | Error::ModelFiles { .. } => {
                ErrorKind::Model
            }
            Error::Backend { .. } => ErrorKind::Backend,
            Error::Interrupted => ErrorKind::Interrupted,
        }
    }

    /// This error and its causes on one line, joined by `: `.
    pub fn chain(&self) -> String {
        let mut out = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(s) = source {
            out.push_str(": ");
            out.push_str(&s.to_string());
            source = s.source();
        }
        out
    }

    /// Shorthand for [`Error::InvalidInput`].
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::InvalidInput {
            message: message.into(),
        }
    }

    /// Shorthand for [`Error::Backend`].
    pub fn backend(kind: &'static str, source: impl Into<BoxError>) -> Self {
        Self::Backend {
            kind,
            source: source.into(),
        }
    }

    /// Shorthand for [`Error::Io`].
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

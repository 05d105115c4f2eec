//! Options of [`PgStore::connect`](crate::PgStore::connect).

use std::time::Duration;

/// HNSW parameters of the per-collection pgvector index.
///
/// `m` and `ef_construction` apply to collections created from now on (an
/// existing index keeps the parameters it was built with); `ef_search` applies
/// to every search, set with `SET LOCAL hnsw.ef_search` inside the search's
/// transaction (so it is safe behind a transaction-pooling proxy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HnswParams {
    /// Edges per node (`WITH (m = …)`). Default 16 (pgvector's default).
    pub m: u32,
    /// Candidate list while building (`WITH (ef_construction = …)`). Default 128.
    pub ef_construction: u32,
    /// Candidate list while searching; a search for `k` neighbours uses
    /// `max(ef_search, k)` (pgvector allows at most 1,000). Default 100.
    pub ef_search: u32,
}

impl Default for HnswParams {
    fn default() -> Self {
        Self {
            m: 16,
            ef_construction: 128,
            ef_search: 100,
        }
    }
}

/// How to connect a [`PgStore`](crate::PgStore).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgOptions {
    /// Most connections the pool opens. Default 8.
    pub pool_size: usize,
    /// How long a call waits for a free pooled connection. Default 30 s.
    pub pool_timeout: Duration,
    /// Bound on establishing one connection — TCP connect, TLS and
    /// authentication together — unless the URL sets `connect_timeout`.
    /// Default 10 s.
    pub connect_timeout: Duration,
    /// `statement_timeout` of every session; zero disables it. Default 5 min
    /// (a bulk merge with HNSW maintenance of a large batch takes a while).
    pub statement_timeout: Duration,
    /// HNSW parameters.
    pub hnsw: HnswParams,
    /// Collections with fewer vectors than this are searched exactly
    /// (`SET LOCAL enable_indexscan = off`: a sequential scan with exact
    /// ordering) instead of through the HNSW index. Default 2,000.
    pub exact_search_below: usize,
    /// Batches with at least this many records are loaded with binary `COPY`
    /// into a temporary table and merged; smaller ones are one
    /// `INSERT … SELECT FROM unnest(…) ON CONFLICT (id) DO UPDATE`. Default 500.
    pub copy_at_least: usize,
}

impl Default for PgOptions {
    fn default() -> Self {
        Self {
            pool_size: 8,
            pool_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            statement_timeout: Duration::from_secs(300),
            hnsw: HnswParams::default(),
            exact_search_below: 2_000,
            copy_at_least: 500,
        }
    }
}

//! The PostgreSQL + pgvector vector store of lobster-vector (backend
//! `pgvector`): for a lab that shares one ontology index across many users and
//! machines, on the PostgreSQL it already runs (replicas, backups, managed
//! offerings).
//!
//! # Connecting
//!
//! [`PgStore::connect`] takes a `postgres://` URL or a libpq keyword/value
//! string (`LOBSTER_PGVECTOR_URL`, else `DATABASE_URL`). `sslmode=disable`
//! connects in clear; `prefer` (the default) and `require` encrypt with TLS
//! (rustls) without checking the certificate, as libpq does without a root
//! certificate; `sslmode=verify-full&sslrootcert=PATH` checks the chain
//! against the PEM file and the host name. Establishing a connection — TCP,
//! TLS and authentication together — is bounded by the URL's `connect_timeout`
//! (else [`PgOptions::connect_timeout`], 10 s), so an unreachable or silent
//! server fails in time. Every session gets [`PgOptions::statement_timeout`].
//! Connections come from a small pool (at most [`PgOptions::pool_size`]).
//! Errors name the server as `user@host:port/dbname`: the password never
//! appears in an error, a log line or a `Debug` output.
//!
//! On connecting, the store creates the `vector` extension if it is missing
//! (a clear error names a missing privilege or a server without pgvector),
//! refuses pgvector older than 0.8.4 (HNSW race fixes), and creates the
//! catalog table if it is missing — all under an advisory lock, and only what
//! is missing, so a role that may only read and write the tables of a
//! prepared database works.
//!
//! # Schema
//!
//! Tables live in the first schema of the session's `search_path` (set it
//! with `options=-csearch_path%3Dmyschema` in the URL).
//!
//! ```text
//! lobster_vector_collections   the catalog: id bigserial, name text unique, dimension,
//!                              metric ('cosine'), metadata jsonb (the artifact),
//!                              record_count, indexed, created_at, updated_at
//! lobster_vector_c<id>         one table per collection: id text primary key,
//!                              document text, metadata jsonb, embedding vector(d)
//! lobster_vector_c<id>_hnsw    its HNSW index, vector_cosine_ops
//! ```
//!
//! A collection's record table is named after its catalog id, never after the
//! user's collection name (names are validated too, and stored only as data),
//! and every identifier is double-quoted. Dropping and re-creating a
//! collection gives a new table. Documents, metadata and ids are always bound
//! parameters or binary `COPY` data, never SQL text; text containing NUL
//! (which PostgreSQL cannot store) is rejected with `InvalidInput`.
//!
//! Dimensions: up to 2,000 the index is on the `vector` column; from 2,001 to
//! 4,000 (for example 3,072-d OpenAI embeddings) it is on the expression
//! `embedding::halfvec(d)` (`halfvec_cosine_ops`) while the column keeps full
//! `float4` precision: the index orders candidates by half-precision distance
//! and the returned distances (and their order) are the full-precision ones.
//! Beyond 4,000 the first upsert fails with `InvalidInput`.
//!
//! # Writes
//!
//! Each `upsert`, `delete`, `drop_collection` is one transaction that first
//! locks the collection's catalog row (`SELECT … FOR UPDATE`), so writers of
//! one collection queue up, `record_count` stays exact, and a rejected batch
//! changes nothing. Batches of at least [`PgOptions::copy_at_least`] records
//! go through binary `COPY` into a temporary table and one
//! `INSERT … SELECT … ON CONFLICT (id) DO UPDATE`; smaller ones are one
//! `INSERT … SELECT FROM unnest(…) ON CONFLICT …`. The HNSW index is created
//! in the upsert that brings the collection to
//! [`PgOptions::exact_search_below`] vectors (building it over the first
//! vectors at once is faster than growing it row by row), and maintained by
//! PostgreSQL from then on. Committed writes are as durable as the server
//! makes them; [`flush`](lobster_vector_core::VectorStore::flush) has nothing to do.
//!
//! # Searches
//!
//! A search reads the catalog row, then runs in a `READ ONLY` transaction
//! (so it also works on a hot standby):
//!
//! * collections without an index yet, or smaller than
//!   [`PgOptions::exact_search_below`], or `k` above 1,000 (pgvector's
//!   `ef_search` limit): an exact scan — a subquery the planner cannot turn
//!   into an index scan, plus `SET LOCAL enable_indexscan = off` — with exact
//!   ordering;
//! * otherwise `ORDER BY embedding <=> $1 LIMIT k` through the HNSW index with
//!   `SET LOCAL hnsw.ef_search = max(ef_search, k)` and
//!   `SET LOCAL hnsw.iterative_scan = strict_order` (so a graph with deleted
//!   entries still yields `k` hits when the collection has them).
//!
//! The distance returned is pgvector's `<=>`, which is already the cosine
//! distance `1 - cos(q, v)` of the contract. `search_batch` sends up to 256
//! queries as one statement (`unnest` of a `vector[]` with a `LATERAL`
//! nearest-neighbour subquery): one round trip per 256 queries.

mod conn;
mod options;
mod schema;
mod store;

pub use options::{HnswParams, PgOptions};
pub use schema::{MAX_HALFVEC_INDEX_DIM, MAX_VECTOR_INDEX_DIM, MIN_PGVECTOR};
pub use store::PgStore;

/// The backend name this store answers to in configuration (`LOBSTER_VECTOR_BACKEND`).
pub const BACKEND: &str = "pgvector";

/// Environment variables read for the connection string, in order.
pub const URL_VARS: [&str; 2] = ["LOBSTER_PGVECTOR_URL", "DATABASE_URL"];

/// The connection string from `LOBSTER_PGVECTOR_URL`, else `DATABASE_URL`.
pub fn url_from_env() -> Option<String> {
    URL_VARS
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.trim().is_empty()))
}

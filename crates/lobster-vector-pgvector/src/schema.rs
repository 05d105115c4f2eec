//! The extension check, the catalog table and per-collection DDL.

use lobster_vector_core::{Error, Result};
use postgres::error::SqlState;
use postgres::Client;

use crate::conn::{message, Connector};
use crate::{HnswParams, BACKEND};

/// The catalog of collections (in the first schema of the session's `search_path`).
pub(crate) const CATALOG: &str = "lobster_vector_collections";

/// The oldest pgvector accepted: 0.8.4 carries fixes for HNSW races under
/// concurrent inserts and vacuum.
pub const MIN_PGVECTOR: (u32, u32, u32) = (0, 8, 4);

/// Largest dimension indexed as `vector` (pgvector's HNSW limit for `vector`).
pub const MAX_VECTOR_INDEX_DIM: usize = 2_000;

/// Largest dimension accepted at all: indexed through a `halfvec` expression.
pub const MAX_HALFVEC_INDEX_DIM: usize = 4_000;

/// Arbitrary key of the advisory lock taken while creating the extension and catalog.
const SETUP_LOCK: i64 = 0x6c6f_6273_7465_7276; // "lobsterv"

/// `"major.minor.patch"` → tuple (missing parts are 0, suffixes ignored).
pub(crate) fn parse_version(v: &str) -> Option<(u32, u32, u32)> {
    let mut parts = v.split('.').map(|p| {
        p.chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse::<u32>()
    });
    let major = parts.next()?.ok()?;
    let minor = parts.next().unwrap_or(Ok(0)).ok()?;
    let patch = parts.next().unwrap_or(Ok(0)).ok()?;
    Some((major, minor, patch))
}

fn check_version(connector: &Connector, installed: &str) -> Result<()> {
    let (a, b, c) = MIN_PGVECTOR;
    match parse_version(installed) {
        Some(v) if v >= MIN_PGVECTOR => Ok(()),
        _ => Err(Error::backend(
            BACKEND,
            format!(
                "PostgreSQL at {}: pgvector {installed} is installed in this database; \
                 lobster-vector needs {a}.{b}.{c} or newer (HNSW race fixes). Install a newer \
                 pgvector on the server and run `ALTER EXTENSION vector UPDATE`",
                connector.target()
            ),
        )),
    }
}

fn installed_version(client: &mut Client, connector: &Connector) -> Result<Option<String>> {
    Ok(client
        .query_opt(
            "SELECT extversion FROM pg_extension WHERE extname = 'vector'",
            &[],
        )
        .map_err(|e| connector.error("reading the installed extensions", &e))?
        .map(|r| r.get(0)))
}

fn catalog_exists(client: &mut Client, connector: &Connector) -> Result<bool> {
    let row = client
        .query_one(&format!("SELECT to_regclass('{CATALOG}') IS NOT NULL"), &[])
        .map_err(|e| connector.error("looking up the catalog table", &e))?;
    Ok(row.get(0))
}

/// Makes sure the `vector` extension (recent enough) and the catalog exist.
/// Creates only what is missing, under an advisory lock, so a role with
/// read-only access to a prepared database works.
pub(crate) fn prepare(client: &mut Client, connector: &Connector) -> Result<()> {
    if let Some(v) = installed_version(client, connector)? {
        check_version(connector, &v)?;
        if catalog_exists(client, connector)? {
            return Ok(());
        }
    }
    let mut tx = client
        .transaction()
        .map_err(|e| connector.error("starting the setup transaction", &e))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SETUP_LOCK])
        .map_err(|e| connector.error("taking the setup lock", &e))?;
    let installed: Option<String> = tx
        .query_opt(
            "SELECT extversion FROM pg_extension WHERE extname = 'vector'",
            &[],
        )
        .map_err(|e| connector.error("reading the installed extensions", &e))?
        .map(|r| r.get(0));
    if installed.is_none() {
        let available: Option<Option<String>> = tx
            .query_opt(
                "SELECT default_version FROM pg_available_extensions WHERE name = 'vector'",
                &[],
            )
            .map_err(|e| connector.error("reading the available extensions", &e))?
            .map(|r| r.get(0));
        if available.is_none() {
            return Err(Error::backend(
                BACKEND,
                format!(
                    "PostgreSQL at {}: the pgvector extension (`vector`) is not installed on \
                     the server; install pgvector {}.{}.{} or newer there (for example the \
                     postgresql-NN-pgvector package) and retry",
                    connector.target(),
                    MIN_PGVECTOR.0,
                    MIN_PGVECTOR.1,
                    MIN_PGVECTOR.2
                ),
            ));
        }
        if let Err(e) = tx.batch_execute("CREATE EXTENSION IF NOT EXISTS vector") {
            let why = if e.code() == Some(&SqlState::INSUFFICIENT_PRIVILEGE) {
                "the role may not create it (missing privilege); ask a superuser to run \
                 `CREATE EXTENSION vector;` in this database"
            } else {
                "`CREATE EXTENSION vector` failed"
            };
            return Err(Error::backend(
                BACKEND,
                format!(
                    "PostgreSQL at {}: the pgvector extension is not enabled in this database and {why}: {}",
                    connector.target(),
                    message(&e)
                ),
            ));
        }
    }
    let version: String = tx
        .query_one(
            "SELECT extversion FROM pg_extension WHERE extname = 'vector'",
            &[],
        )
        .map_err(|e| connector.error("reading the pgvector version", &e))?
        .get(0);
    check_version(connector, &version)?;
    tx.batch_execute(&format!(
        "CREATE TABLE IF NOT EXISTS {CATALOG} (
            id           bigserial   PRIMARY KEY,
            name         text        NOT NULL UNIQUE,
            dimension    integer     CHECK (dimension > 0),
            metric       text        NOT NULL DEFAULT 'cosine',
            metadata     jsonb       NOT NULL DEFAULT '{{}}'::jsonb,
            record_count bigint      NOT NULL DEFAULT 0,
            indexed      boolean     NOT NULL DEFAULT false,
            created_at   timestamptz NOT NULL DEFAULT now(),
            updated_at   timestamptz NOT NULL DEFAULT now()
        );
        COMMENT ON TABLE {CATALOG} IS 'lobster-vector collections; records of collection id N live in table lobster_vector_cN'"
    ))
    .map_err(|e| connector.error("creating the catalog table", &e))?;
    tx.commit()
        .map_err(|e| connector.error("committing the setup", &e))?;
    Ok(())
}

/// `"name"` with embedded quotes doubled: a safe SQL identifier.
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The table holding the records of the collection with catalog id `id`.
pub(crate) fn table_name(id: i64) -> String {
    format!("lobster_vector_c{id}")
}

/// Whether a collection of dimension `dim` is indexed through `halfvec`.
pub(crate) fn uses_halfvec(dim: usize) -> bool {
    dim > MAX_VECTOR_INDEX_DIM
}

/// Checks a new collection's dimension against pgvector's index limits.
pub(crate) fn check_dimension(dim: usize) -> Result<()> {
    if dim > MAX_HALFVEC_INDEX_DIM {
        return Err(Error::invalid_input(format!(
            "{dim}-d vectors are beyond what pgvector's HNSW index supports \
             ({MAX_VECTOR_INDEX_DIM} as vector, {MAX_HALFVEC_INDEX_DIM} as halfvec)"
        )));
    }
    Ok(())
}

/// `CREATE TABLE` of a collection's record table.
pub(crate) fn create_table_sql(table: &str, dim: usize) -> String {
    let t = quote_ident(table);
    format!(
        "CREATE TABLE {t} (
            id        text   PRIMARY KEY,
            document  text,
            metadata  jsonb  NOT NULL DEFAULT '{{}}'::jsonb,
            embedding vector({dim}) NOT NULL
        )"
    )
}

/// `CREATE INDEX` of a collection's HNSW index (cosine).
pub(crate) fn create_index_sql(table: &str, dim: usize, hnsw: &HnswParams) -> String {
    let t = quote_ident(table);
    let i = quote_ident(&format!("{table}_hnsw"));
    let (m, efc) = (hnsw.m.max(2), hnsw.ef_construction.max(4));
    if uses_halfvec(dim) {
        format!(
            "CREATE INDEX {i} ON {t} USING hnsw ((embedding::halfvec({dim})) halfvec_cosine_ops) \
             WITH (m = {m}, ef_construction = {efc})"
        )
    } else {
        format!(
            "CREATE INDEX {i} ON {t} USING hnsw (embedding vector_cosine_ops) \
             WITH (m = {m}, ef_construction = {efc})"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(parse_version("0.8.6"), Some((0, 8, 6)));
        assert_eq!(parse_version("0.8"), Some((0, 8, 0)));
        assert_eq!(parse_version("0.10.0-dev"), Some((0, 10, 0)));
        assert_eq!(parse_version("x"), None);
        assert!(parse_version("0.8.3").unwrap() < MIN_PGVECTOR);
        assert!(parse_version("0.8.4").unwrap() >= MIN_PGVECTOR);
        assert!(parse_version("0.10.0").unwrap() >= MIN_PGVECTOR);
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(table_name(7), "lobster_vector_c7");
        assert!(create_index_sql("t", 384, &HnswParams::default()).contains("vector_cosine_ops"));
        assert!(create_index_sql("t", 3072, &HnswParams::default())
            .contains("(embedding::halfvec(3072)) halfvec_cosine_ops"));
        assert!(check_dimension(4001).is_err() && check_dimension(4000).is_ok());
    }
}

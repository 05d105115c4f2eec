//! [`PgStore`]: the `VectorStore` on PostgreSQL + pgvector.

use lobster_vector_core::{
    validate, CollectionInfo, Error, Hit, Metadata, Record, Result, VectorStore,
};
use pgvector::Vector;
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::error::SqlState;
use postgres::types::ToSql;
use serde_json::Value;

use crate::conn::{Conn, Connector, Pool};
use crate::schema::{self, quote_ident, CATALOG};
use crate::{PgOptions, BACKEND};

/// pgvector's largest `hnsw.ef_search`; searches for more neighbours scan exactly.
const MAX_EF_SEARCH: usize = 1_000;

/// Queries per statement in `search_batch`.
const BATCH_QUERIES: usize = 256;

/// The PostgreSQL + pgvector vector store (backend `pgvector`). See the crate
/// documentation for the schema and the search paths.
pub struct PgStore {
    pool: Pool,
    options: PgOptions,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("target", &self.pool.connector.target())
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// One catalog row.
#[derive(Debug, Clone, Copy)]
struct Entry {
    id: i64,
    dimension: Option<usize>,
    count: usize,
    indexed: bool,
}

impl Entry {
    fn table(&self) -> String {
        quote_ident(&schema::table_name(self.id))
    }
}

fn not_found(name: &str) -> Error {
    Error::CollectionNotFound { name: name.into() }
}

fn to_usize(v: i64) -> usize {
    usize::try_from(v).unwrap_or(0)
}

fn entry(row: &postgres::Row) -> Entry {
    let dim: Option<i32> = row.get(1);
    Entry {
        id: row.get(0),
        dimension: dim.and_then(|d| usize::try_from(d).ok()),
        count: to_usize(row.get(2)),
        indexed: row.get(3),
    }
}

/// Rejects text PostgreSQL cannot store (`text` and `jsonb` refuse NUL).
fn check_nul(what: &str, s: &str) -> Result<()> {
    if s.contains('\0') {
        return Err(Error::invalid_input(format!(
            "{what} contains a NUL character, which PostgreSQL cannot store"
        )));
    }
    Ok(())
}

fn check_json(what: &str, v: &Value) -> Result<()> {
    match v {
        Value::String(s) => check_nul(what, s),
        Value::Array(a) => a.iter().try_for_each(|x| check_json(what, x)),
        Value::Object(o) => o.iter().try_for_each(|(k, x)| {
            check_nul(what, k)?;
            check_json(what, x)
        }),
        _ => Ok(()),
    }
}

fn check_payload(records: &[Record]) -> Result<()> {
    for r in records {
        if let Some(d) = &r.document {
            check_nul(&format!("record {:?} document", r.id), d)?;
        }
        for (k, v) in &r.metadata {
            let what = format!("record {:?} metadata", r.id);
            check_nul(&what, k)?;
            check_json(&what, v)?;
        }
    }
    Ok(())
}

fn metadata_of(v: Value) -> Metadata {
    match v {
        Value::Object(m) => m,
        _ => Metadata::new(),
    }
}

impl PgStore {
    /// Connects to `url` (a `postgres://` URL or libpq keyword/value string,
    /// usually `LOBSTER_PGVECTOR_URL`), creates the `vector` extension if it is
    /// missing, refuses pgvector older than 0.8.4, and creates the catalog
    /// table if it is missing. Errors name the server as `user@host:port/db`
    /// and never contain the password.
    pub fn connect(url: &str, options: PgOptions) -> Result<Self> {
        let connector = Connector::new(url, &options)?;
        let mut client = connector.connect()?;
        schema::prepare(&mut client, &connector)?;
        tracing::debug!(target = connector.target(), "pgvector store ready");
        let pool = Pool::new(connector, options.pool_size, options.pool_timeout);
        pool.put(client);
        Ok(Self { pool, options })
    }

    /// The server as `user@host:port/dbname`.
    pub fn target(&self) -> &str {
        self.pool.connector.target()
    }

    /// The options this store was connected with.
    pub fn options(&self) -> &PgOptions {
        &self.options
    }

    fn err(&self, action: &str, e: &postgres::Error) -> Error {
        self.pool.connector.error(action, e)
    }

    /// Runs `f` inside `begin` … `COMMIT`, rolling back when it fails.
    fn in_tx<T>(
        &self,
        conn: &mut Conn,
        begin: &str,
        f: impl FnOnce(&mut Conn) -> Result<T>,
    ) -> Result<T> {
        conn.client
            .batch_execute(begin)
            .map_err(|e| self.err("starting a transaction", &e))?;
        match f(conn) {
            Ok(v) => {
                conn.client
                    .batch_execute("COMMIT")
                    .map_err(|e| self.err("committing", &e))?;
                Ok(v)
            }
            Err(e) => {
                if conn.client.batch_execute("ROLLBACK").is_err() {
                    conn.poison();
                }
                Err(e)
            }
        }
    }

    fn lookup(&self, conn: &mut Conn, name: &str, lock: bool) -> Result<Option<Entry>> {
        let sql = format!(
            "SELECT id, dimension, record_count, indexed FROM {CATALOG} WHERE name = $1{}",
            if lock { " FOR UPDATE" } else { "" }
        );
        let stmt = conn
            .prepare(&sql)
            .map_err(|e| self.err("reading the catalog", &e))?;
        let row = conn
            .client
            .query_opt(&stmt, &[&name])
            .map_err(|e| self.err("reading the catalog", &e))?;
        Ok(row.as_ref().map(entry))
    }

    /// Inserts or updates `records` in `table`; returns how many ids were new.
    fn merge(&self, conn: &mut Conn, table: &str, records: &[Record]) -> Result<usize> {
        let set = "ON CONFLICT (id) DO UPDATE SET document = EXCLUDED.document, \
                   metadata = EXCLUDED.metadata, embedding = EXCLUDED.embedding \
                   RETURNING (xmax = 0) AS inserted";
        let metadata: Vec<Value> = records
            .iter()
            .map(|r| Value::Object(r.metadata.clone()))
            .collect();
        let inserted: i64 = if records.len() >= self.options.copy_at_least {
            conn.client
                .batch_execute(
                    "CREATE TEMP TABLE lobster_vector_stage \
                     (id text, document text, metadata jsonb, embedding vector) ON COMMIT DROP",
                )
                .map_err(|e| self.err("creating the staging table", &e))?;
            let vector_type = conn
                .prepare("SELECT NULL::vector")
                .map_err(|e| self.err("looking up the vector type", &e))?
                .columns()[0]
                .type_()
                .clone();
            let sink = conn
                .client
                .copy_in(
                    "COPY lobster_vector_stage (id, document, metadata, embedding) \
                     FROM STDIN (FORMAT binary)",
                )
                .map_err(|e| self.err("starting COPY", &e))?;
            let types = [
                postgres::types::Type::TEXT,
                postgres::types::Type::TEXT,
                postgres::types::Type::JSONB,
                vector_type,
            ];
            let mut w = BinaryCopyInWriter::new(sink, &types);
            for (r, m) in records.iter().zip(&metadata) {
                let v = Vector::from(r.vector.clone());
                let row: [&(dyn ToSql + Sync); 4] = [&r.id, &r.document, m, &v];
                w.write(&row).map_err(|e| self.err("COPY", &e))?;
            }
            w.finish().map_err(|e| self.err("COPY", &e))?;
            let sql = format!(
                "WITH ins AS (INSERT INTO {table} (id, document, metadata, embedding) \
                 SELECT id, document, metadata, embedding FROM lobster_vector_stage {set}) \
                 SELECT count(*) FILTER (WHERE inserted) FROM ins"
            );
            let n = conn
                .client
                .query_one(&sql, &[])
                .map_err(|e| self.err("merging the staged records", &e))?
                .get(0);
            conn.client
                .batch_execute("DROP TABLE lobster_vector_stage")
                .map_err(|e| self.err("dropping the staging table", &e))?;
            n
        } else {
            let ids: Vec<&str> = records.iter().map(|r| r.id.as_str()).collect();
            let docs: Vec<Option<&str>> = records.iter().map(|r| r.document.as_deref()).collect();
            let vectors: Vec<Vector> = records
                .iter()
                .map(|r| Vector::from(r.vector.clone()))
                .collect();
            let sql = format!(
                "WITH ins AS (INSERT INTO {table} (id, document, metadata, embedding) \
                 SELECT * FROM unnest($1::text[], $2::text[], $3::jsonb[], $4::vector[]) {set}) \
                 SELECT count(*) FILTER (WHERE inserted) FROM ins"
            );
            let stmt = conn
                .prepare(&sql)
                .map_err(|e| self.err("preparing the upsert", &e))?;
            conn.client
                .query_one(&stmt, &[&ids, &docs, &metadata, &vectors])
                .map_err(|e| self.err("upserting records", &e))?
                .get(0)
        };
        Ok(to_usize(inserted))
    }

    /// The statement opening a search transaction of `entry` for `k`
    /// neighbours, and whether the search is exact (no index).
    fn search_plan(&self, entry: &Entry, k: usize) -> (String, bool) {
        let exact =
            !entry.indexed || entry.count < self.options.exact_search_below || k > MAX_EF_SEARCH;
        let begin = if exact {
            // The exact statement cannot use the index anyway (OFFSET 0 keeps
            // the subquery from being flattened); this also guards plans.
            "BEGIN READ ONLY; SET LOCAL enable_indexscan = off".to_string()
        } else {
            let ef = (self.options.hnsw.ef_search as usize)
                .max(k)
                .min(MAX_EF_SEARCH);
            format!(
                "BEGIN READ ONLY; SET LOCAL hnsw.ef_search = {ef}; \
                 SET LOCAL hnsw.iterative_scan = strict_order"
            )
        };
        (begin, exact)
    }

    fn read_hits(rows: Vec<postgres::Row>, resort: bool) -> Vec<Hit> {
        let mut hits: Vec<Hit> = rows
            .into_iter()
            .map(|r| {
                let d: f64 = r.get("d");
                Hit {
                    id: r.get("id"),
                    distance: d as f32,
                    document: r.get("document"),
                    metadata: metadata_of(r.get("metadata")),
                }
            })
            .collect();
        if resort {
            hits.sort_by(|a, b| a.distance.total_cmp(&b.distance));
        }
        hits
    }

    /// SQL of one search: `$1` the query, `$2` the limit.
    fn search_sql(entry: &Entry, exact: bool) -> String {
        let t = entry.table();
        let dim = entry.dimension.unwrap_or(0);
        if exact {
            format!(
                "SELECT id, document, metadata, d FROM \
                 (SELECT id, document, metadata, embedding <=> $1::vector AS d FROM {t} OFFSET 0) s \
                 ORDER BY d LIMIT $2"
            )
        } else if schema::uses_halfvec(dim) {
            format!(
                "SELECT id, document, metadata, embedding <=> $1::vector AS d FROM {t} \
                 ORDER BY embedding::halfvec({dim}) <=> $1::vector::halfvec({dim}) LIMIT $2"
            )
        } else {
            format!(
                "SELECT id, document, metadata, embedding <=> $1::vector AS d FROM {t} \
                 ORDER BY embedding <=> $1::vector LIMIT $2"
            )
        }
    }

    /// SQL of a batch of searches: `$1` the queries (`vector[]`), `$2` the limit.
    fn batch_sql(entry: &Entry, exact: bool) -> String {
        let t = entry.table();
        let dim = entry.dimension.unwrap_or(0);
        let inner = if exact {
            format!(
                "SELECT id, document, metadata, d FROM \
                 (SELECT id, document, metadata, embedding <=> q.v AS d FROM {t} OFFSET 0) s \
                 ORDER BY d LIMIT $2"
            )
        } else if schema::uses_halfvec(dim) {
            format!(
                "SELECT id, document, metadata, embedding <=> q.v AS d FROM {t} \
                 ORDER BY embedding::halfvec({dim}) <=> q.v::halfvec({dim}) LIMIT $2"
            )
        } else {
            format!(
                "SELECT id, document, metadata, embedding <=> q.v AS d FROM {t} \
                 ORDER BY embedding <=> q.v LIMIT $2"
            )
        };
        format!(
            "SELECT q.i, h.id, h.document, h.metadata, h.d \
             FROM unnest($1::vector[]) WITH ORDINALITY AS q(v, i) \
             CROSS JOIN LATERAL ({inner}) h ORDER BY q.i, h.d"
        )
    }

    /// Looks up a collection for a search and validates the queries against it.
    /// `None`: nothing to search (no vectors yet, or `k == 0`).
    fn prepare_search(
        &self,
        conn: &mut Conn,
        collection: &str,
        queries: &[&[f32]],
        k: usize,
    ) -> Result<Option<Entry>> {
        validate::collection_name(collection)?;
        let entry = self
            .lookup(conn, collection, false)?
            .ok_or_else(|| not_found(collection))?;
        for q in queries {
            match entry.dimension {
                Some(d) => validate::query(q, d)?,
                None => validate::vector("query vector", q)?,
            }
        }
        if entry.dimension.is_none() || entry.count == 0 || k == 0 {
            return Ok(None);
        }
        Ok(Some(entry))
    }

    fn missing_table(&self, collection: &str, action: &str, e: &postgres::Error) -> Error {
        if e.code() == Some(&SqlState::UNDEFINED_TABLE) {
            // Dropped by another client since the catalog was read.
            not_found(collection)
        } else {
            self.err(action, e)
        }
    }
}

impl VectorStore for PgStore {
    fn backend_name(&self) -> &'static str {
        BACKEND
    }

    fn upsert(&self, collection: &str, records: &[Record]) -> Result<()> {
        validate::collection_name(collection)?;
        // Everything but the collection's dimension is checked before any round trip.
        validate::records(records, None)?;
        check_payload(records)?;
        let mut conn = self.pool.get()?;
        self.in_tx(&mut conn, "BEGIN", |conn| {
            let stmt = conn
                .prepare(&format!(
                    "INSERT INTO {CATALOG} (name) VALUES ($1) ON CONFLICT (name) DO NOTHING"
                ))
                .map_err(|e| self.err("creating the collection", &e))?;
            conn.client
                .execute(&stmt, &[&collection])
                .map_err(|e| self.err("creating the collection", &e))?;
            let mut entry = self
                .lookup(conn, collection, true)?
                .ok_or_else(|| not_found(collection))?;
            let Some(dim) = validate::records(records, entry.dimension)? else {
                return Ok(());
            };
            let table = entry.table();
            if entry.dimension.is_none() {
                schema::check_dimension(dim)?;
                conn.client
                    .batch_execute(&schema::create_table_sql(
                        &schema::table_name(entry.id),
                        dim,
                    ))
                    .map_err(|e| self.err("creating the collection table", &e))?;
                entry.dimension = Some(dim);
            }
            let inserted = self.merge(conn, &table, records)?;
            let count = entry.count + inserted;
            let index_now = !entry.indexed && count >= self.options.exact_search_below;
            if index_now {
                conn.client
                    .batch_execute(&schema::create_index_sql(
                        &schema::table_name(entry.id),
                        dim,
                        &self.options.hnsw,
                    ))
                    .map_err(|e| self.err("building the HNSW index", &e))?;
            }
            let stmt = conn
                .prepare(&format!(
                    "UPDATE {CATALOG} SET dimension = $2, record_count = $3, \
                     indexed = indexed OR $4, updated_at = now() WHERE id = $1"
                ))
                .map_err(|e| self.err("updating the catalog", &e))?;
            let (d, c) = (dim as i32, count as i64);
            conn.client
                .execute(&stmt, &[&entry.id, &d, &c, &index_now])
                .map_err(|e| self.err("updating the catalog", &e))?;
            Ok(())
        })
    }

    fn search(&self, collection: &str, query: &[f32], k: usize) -> Result<Vec<Hit>> {
        let mut conn = self.pool.get()?;
        let Some(entry) = self.prepare_search(&mut conn, collection, &[query], k)? else {
            return Ok(Vec::new());
        };
        let (begin, exact) = self.search_plan(&entry, k);
        let sql = Self::search_sql(&entry, exact);
        let q = Vector::from(query.to_vec());
        let limit = k as i64;
        let rows = self.in_tx(&mut conn, &begin, |conn| {
            let stmt = conn
                .prepare(&sql)
                .map_err(|e| self.missing_table(collection, "preparing the search", &e))?;
            conn.client
                .query(&stmt, &[&q, &limit])
                .map_err(|e| self.missing_table(collection, "searching", &e))
        })?;
        let resort = !exact && schema::uses_halfvec(entry.dimension.unwrap_or(0));
        Ok(Self::read_hits(rows, resort))
    }

    /// All queries of a chunk (up to 256) go to the server as one statement
    /// (`unnest` of the queries with a `LATERAL` nearest-neighbour subquery):
    /// one round trip per chunk instead of one per query.
    fn search_batch(
        &self,
        collection: &str,
        queries: &[&[f32]],
        k: usize,
    ) -> Result<Vec<Vec<Hit>>> {
        let mut conn = self.pool.get()?;
        let Some(entry) = self.prepare_search(&mut conn, collection, queries, k)? else {
            return Ok(vec![Vec::new(); queries.len()]);
        };
        let (begin, exact) = self.search_plan(&entry, k);
        let sql = Self::batch_sql(&entry, exact);
        let resort = !exact && schema::uses_halfvec(entry.dimension.unwrap_or(0));
        let limit = k as i64;
        let mut out: Vec<Vec<Hit>> = Vec::with_capacity(queries.len());
        self.in_tx(&mut conn, &begin, |conn| {
            let stmt = conn
                .prepare(&sql)
                .map_err(|e| self.missing_table(collection, "preparing the search", &e))?;
            for chunk in queries.chunks(BATCH_QUERIES) {
                let vs: Vec<Vector> = chunk.iter().map(|q| Vector::from(q.to_vec())).collect();
                let rows = conn
                    .client
                    .query(&stmt, &[&vs, &limit])
                    .map_err(|e| self.missing_table(collection, "searching", &e))?;
                let base = out.len();
                out.extend((0..chunk.len()).map(|_| Vec::new()));
                let mut per: Vec<Vec<postgres::Row>> =
                    (0..chunk.len()).map(|_| Vec::new()).collect();
                for r in rows {
                    let i: i64 = r.get(0);
                    if let Some(slot) = usize::try_from(i - 1).ok().and_then(|i| per.get_mut(i)) {
                        slot.push(r);
                    }
                }
                for (j, rows) in per.into_iter().enumerate() {
                    out[base + j] = Self::read_hits(rows, resort);
                }
            }
            Ok(())
        })?;
        Ok(out)
    }

    fn delete(&self, collection: &str, ids: &[String]) -> Result<usize> {
        validate::collection_name(collection)?;
        let mut conn = self.pool.get()?;
        self.in_tx(&mut conn, "BEGIN", |conn| {
            let entry = self
                .lookup(conn, collection, true)?
                .ok_or_else(|| not_found(collection))?;
            if entry.dimension.is_none() || ids.is_empty() {
                return Ok(0);
            }
            let stmt = conn
                .prepare(&format!(
                    "DELETE FROM {} WHERE id = ANY($1::text[])",
                    entry.table()
                ))
                .map_err(|e| self.err("preparing the delete", &e))?;
            let n = conn
                .client
                .execute(&stmt, &[&ids])
                .map_err(|e| self.err("deleting records", &e))?;
            let stmt = conn
                .prepare(&format!(
                    "UPDATE {CATALOG} SET record_count = record_count - $2, updated_at = now() \
                     WHERE id = $1"
                ))
                .map_err(|e| self.err("updating the catalog", &e))?;
            let n_i64 = n as i64;
            conn.client
                .execute(&stmt, &[&entry.id, &n_i64])
                .map_err(|e| self.err("updating the catalog", &e))?;
            Ok(n as usize)
        })
    }

    fn count(&self, collection: &str) -> Result<usize> {
        validate::collection_name(collection)?;
        let mut conn = self.pool.get()?;
        Ok(self
            .lookup(&mut conn, collection, false)?
            .ok_or_else(|| not_found(collection))?
            .count)
    }

    fn has_collection(&self, collection: &str) -> Result<bool> {
        validate::collection_name(collection)?;
        let mut conn = self.pool.get()?;
        Ok(self.lookup(&mut conn, collection, false)?.is_some())
    }

    fn list_collections(&self) -> Result<Vec<String>> {
        let mut conn = self.pool.get()?;
        let rows = conn
            .client
            .query(&format!("SELECT name FROM {CATALOG}"), &[])
            .map_err(|e| self.err("listing collections", &e))?;
        let mut names: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
        names.sort();
        Ok(names)
    }

    fn drop_collection(&self, collection: &str) -> Result<bool> {
        validate::collection_name(collection)?;
        let mut conn = self.pool.get()?;
        self.in_tx(&mut conn, "BEGIN", |conn| {
            let Some(entry) = self.lookup(conn, collection, true)? else {
                return Ok(false);
            };
            conn.client
                .batch_execute(&format!("DROP TABLE IF EXISTS {}", entry.table()))
                .map_err(|e| self.err("dropping the collection table", &e))?;
            conn.client
                .execute(
                    &format!("DELETE FROM {CATALOG} WHERE id = $1"),
                    &[&entry.id],
                )
                .map_err(|e| self.err("updating the catalog", &e))?;
            Ok(true)
        })
    }

    fn collection_info(&self, collection: &str) -> Result<CollectionInfo> {
        validate::collection_name(collection)?;
        let mut conn = self.pool.get()?;
        let row = conn
            .client
            .query_opt(
                &format!("SELECT dimension, record_count, metadata FROM {CATALOG} WHERE name = $1"),
                &[&collection],
            )
            .map_err(|e| self.err("reading the catalog", &e))?
            .ok_or_else(|| not_found(collection))?;
        let dim: Option<i32> = row.get(0);
        Ok(CollectionInfo {
            name: collection.to_string(),
            dimension: dim.and_then(|d| usize::try_from(d).ok()),
            count: to_usize(row.get(1)),
            metadata: metadata_of(row.get(2)),
        })
    }

    fn set_collection_metadata(&self, collection: &str, metadata: Metadata) -> Result<()> {
        validate::collection_name(collection)?;
        let value = Value::Object(metadata);
        check_json("collection metadata", &value)?;
        let mut conn = self.pool.get()?;
        conn.client
            .execute(
                &format!(
                    "INSERT INTO {CATALOG} (name, metadata) VALUES ($1, $2) \
                     ON CONFLICT (name) DO UPDATE SET metadata = EXCLUDED.metadata, updated_at = now()"
                ),
                &[&collection, &value],
            )
            .map_err(|e| self.err("writing collection metadata", &e))?;
        Ok(())
    }

    /// Rows ordered by id (stable while the collection is not written to).
    fn read_page(&self, collection: &str, offset: usize, limit: usize) -> Result<Vec<Record>> {
        validate::collection_name(collection)?;
        let mut conn = self.pool.get()?;
        let entry = self
            .lookup(&mut conn, collection, false)?
            .ok_or_else(|| not_found(collection))?;
        if entry.dimension.is_none() || limit == 0 {
            return Ok(Vec::new());
        }
        let (offset, limit) = (
            i64::try_from(offset).unwrap_or(i64::MAX),
            i64::try_from(limit).unwrap_or(i64::MAX),
        );
        let sql = format!(
            "SELECT id, document, metadata, embedding FROM {} ORDER BY id OFFSET $1 LIMIT $2",
            entry.table()
        );
        let rows = conn
            .client
            .query(&sql, &[&offset, &limit])
            .map_err(|e| self.missing_table(collection, "reading records", &e))?;
        Ok(rows
            .into_iter()
            .map(|r| Record {
                id: r.get("id"),
                vector: r.get::<_, Vector>("embedding").to_vec(),
                document: r.get("document"),
                metadata: metadata_of(r.get("metadata")),
            })
            .collect())
    }

    /// Every acknowledged write is already committed (and durable as the
    /// server's `synchronous_commit` says): nothing to do.
    fn flush(&self) -> Result<()> {
        Ok(())
    }
}

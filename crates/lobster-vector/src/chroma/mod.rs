//! A [`VectorStore`] on a Chroma server (backend `chromadb`), over Chroma's
//! REST API v2 as served by `chroma run` from `chromadb` 1.x.
//!
//! Contract, beyond the [`VectorStore`] trait's:
//! - [`ChromaStore::open`] asks `GET /api/v2/version` and refuses a server
//!   whose API major version is not [`SUPPORTED_API_MAJOR`] (older servers
//!   without the v2 API answer 404/410 there and are refused too), then checks
//!   that the tenant and database exist and reads the server's
//!   `max_batch_size` from `/api/v2/pre-flight-checks`.
//! - Collections are created with `configuration.hnsw.space = "cosine"`, so the
//!   distances Chroma returns are already `1 - cos(q, v)`. A collection made
//!   elsewhere in another space (`l2`, `ip`) is refused for search and upsert
//!   with [`Error::CollectionUnavailable`]; it can still be read with
//!   [`VectorStore::read_page`] (Chroma `get` with offset and limit, in the
//!   server's storage order), which is what importing needs.
//! - Writes larger than the server's batch limit are split into several
//!   requests. Each request is all-or-nothing on the server, but a failure in
//!   a later request leaves the earlier ones applied; everything is validated
//!   before the first request, so an invalid batch changes nothing. Requests
//!   are retried on connection errors, 429 and 5xx (upserts and deletes are
//!   idempotent, so a retried request that had been applied changes nothing).
//! - Overwrite semantics: Chroma's own upsert merges metadata keys and keeps a
//!   document that is not re-sent. To give the trait's "an existing id is
//!   overwritten", an upsert first reads the batch's existing records, sends
//!   `null` for every metadata key the new record lacks, and deletes (then
//!   re-adds) records whose document must become absent. Concurrent writers to
//!   the same ids are not serialised against each other.
//! - Record metadata: Chroma stores only flat scalars. Strings, booleans,
//!   integers that fit in `i64` and floats are stored natively (so Chroma
//!   `where` filters see them). Every other value (null, arrays, objects,
//!   integers beyond `i64`), and any value whose key Chroma reserves or
//!   rejects (empty, starting with `#`, `$` or `chroma:`, or starting with
//!   [`JSON_KEY_PREFIX`]), is stored as JSON text under
//!   `JSON_KEY_PREFIX + key` and decoded back on read, so every JSON object
//!   round-trips exactly (key order aside).
//! - Collection-level metadata (our artifact JSON) is stored serialised under
//!   the single collection metadata key [`COLLECTION_METADATA_KEY`]. For a
//!   collection made by another client, `collection_info` returns Chroma's
//!   flat collection metadata as it is (decoded as record metadata is).
//! - `flush` does nothing: the server commits a request to its log before it
//!   answers (SQLite under `chroma run`); durability beyond that is the server's.
//! - Deletes count what existed: Chroma's own `deleted` figure counts the ids
//!   sent, so the store first reads which ids exist.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use lobster_vector_core::{
    validate, CollectionInfo, Error, Hit, Metadata, Record, Result, VectorStore,
};
use serde_json::{json, Value};

use crate::http::{http_status, join_url, ApiClient, Auth, Method};
use crate::secret::redact_url;

mod codec;
mod options;

use codec::{decode_collection_metadata, payload_at, space_of, string_array};
pub use codec::{decode_metadata, encode_metadata};
pub use options::{ChromaError, ChromaOptions, TokenHeader};

/// The Chroma API major version this client speaks (`chromadb` 1.x reports `1.0.0`).
pub const SUPPORTED_API_MAJOR: u64 = 1;
/// The environment variable that holds the auth token.
pub const TOKEN_VARIABLE: &str = "LOBSTER_CHROMA_TOKEN";
/// The collection metadata key holding our collection-level metadata as JSON text.
pub const COLLECTION_METADATA_KEY: &str = "lobster_vector:metadata";
/// Prefix of record metadata keys whose value is stored as JSON text.
pub const JSON_KEY_PREFIX: &str = "lobster_vector:json:";
/// The backend's name in errors and configuration.
const SERVICE: &str = "chromadb";
/// Collections listed per request.
const LIST_PAGE: usize = 100;

/// What the store remembers about a collection between calls. A stale entry
/// (the collection was dropped and re-created elsewhere) shows as a 404 on its
/// id and is looked up again by name.
#[derive(Debug, Clone)]
struct Handle {
    id: String,
    dimension: Option<usize>,
    /// The collection's vector space (`cosine`, `l2`, `ip`).
    space: String,
}

/// A Chroma server as a [`VectorStore`].
#[derive(Debug)]
pub struct ChromaStore {
    client: ApiClient,
    options: ChromaOptions,
    /// `{url}/api/v2/tenants/{tenant}/databases/{database}`.
    base: String,
    server_version: String,
    max_batch: usize,
    handles: Mutex<HashMap<String, Handle>>,
}

/// Percent-encodes a URL path segment (everything but unreserved characters).
fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl ChromaStore {
    /// Connects, checks the server's API version and the tenant/database, and
    /// reads the server's batch limit.
    pub fn open(options: ChromaOptions) -> Result<Self> {
        let client = ApiClient::new(SERVICE, TOKEN_VARIABLE, options.http.clone());
        let root = options.url.trim_end_matches('/').to_string();
        let base = format!(
            "{root}/api/v2/tenants/{}/databases/{}",
            segment(&options.tenant),
            segment(&options.database)
        );
        let mut store = Self {
            client,
            options,
            base,
            server_version: String::new(),
            max_batch: 1,
            handles: Mutex::new(HashMap::new()),
        };
        let root_url = |p: &str| join_url(&root, p);
        let version = match store.call(Method::Get, &root_url("api/v2/version"), None) {
            Ok(v) => v,
            Err(e) => {
                return Err(match http_status(&e) {
                    Some(status @ (404 | 410)) => Error::backend(
                        SERVICE,
                        ChromaError::NoV2Api {
                            url: redact_url(&root),
                            status,
                        },
                    ),
                    _ => e,
                })
            }
        };
        let version = version.as_str().unwrap_or_default().to_string();
        let major = version
            .split('.')
            .next()
            .and_then(|m| m.trim().parse::<u64>().ok());
        if major != Some(SUPPORTED_API_MAJOR) {
            return Err(Error::backend(
                SERVICE,
                ChromaError::IncompatibleServer {
                    url: redact_url(&root),
                    version,
                },
            ));
        }
        store.server_version = version;
        if let Err(e) = store.call(Method::Get, &store.base.clone(), None) {
            return Err(match http_status(&e) {
                Some(404) => Error::backend(
                    SERVICE,
                    ChromaError::DatabaseNotFound {
                        url: redact_url(&root),
                        tenant: store.options.tenant.clone(),
                        database: store.options.database.clone(),
                    },
                ),
                _ => e,
            });
        }
        let checks = store.call(Method::Get, &root_url("api/v2/pre-flight-checks"), None)?;
        let server_max = checks
            .get("max_batch_size")
            .and_then(Value::as_u64)
            .filter(|n| *n > 0)
            .map_or(usize::MAX, |n| usize::try_from(n).unwrap_or(usize::MAX));
        store.max_batch = store.options.max_batch.clamp(1, server_max.max(1));
        tracing::debug!(
            url = %store.options.url,
            version = %store.server_version,
            max_batch = store.max_batch,
            "connected to chroma"
        );
        Ok(store)
    }

    /// The API version the server reported.
    pub fn server_version(&self) -> &str {
        &self.server_version
    }

    /// Records per write request (the smaller of the option and the server's limit).
    pub fn max_batch(&self) -> usize {
        self.max_batch
    }

    fn auth(&self) -> Auth<'_> {
        match (&self.options.token, self.options.token_header) {
            (None, _) => Auth::None,
            (Some(t), TokenHeader::Authorization) => Auth::Bearer(t),
            (Some(t), TokenHeader::XChromaToken) => Auth::Header("x-chroma-token", t),
        }
    }

    fn call(&self, method: Method, url: &str, body: Option<&Value>) -> Result<Value> {
        self.client.send_json(method, url, self.auth(), body)
    }

    fn collections_url(&self) -> String {
        format!("{}/collections", self.base)
    }

    fn handles(&self) -> std::sync::MutexGuard<'_, HashMap<String, Handle>> {
        self.handles
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The collection's JSON by name; `None` when it does not exist.
    fn fetch(&self, name: &str) -> Result<Option<Value>> {
        let url = format!("{}/{}", self.collections_url(), segment(name));
        match self.call(Method::Get, &url, None) {
            Ok(v) => Ok(Some(v)),
            Err(e) if http_status(&e) == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn handle_of(&self, json: &Value) -> Result<Handle> {
        let id = json
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| self.malformed("a collection without an id"))?
            .to_string();
        let dimension = json
            .get("dimension")
            .and_then(Value::as_u64)
            .and_then(|d| usize::try_from(d).ok());
        Ok(Handle {
            id,
            dimension,
            space: space_of(json),
        })
    }

    /// Looks the collection up by name (refreshing the cache); `None` when missing.
    fn lookup(&self, name: &str) -> Result<Option<Handle>> {
        match self.fetch(name)? {
            Some(json) => {
                let h = self.handle_of(&json)?;
                self.handles().insert(name.to_string(), h.clone());
                Ok(Some(h))
            }
            None => {
                self.handles().remove(name);
                Ok(None)
            }
        }
    }

    /// A cached handle when it knows the dimension, else a fresh lookup.
    fn handle(&self, name: &str) -> Result<Option<Handle>> {
        let cached = self.handles().get(name).cloned();
        match cached {
            Some(h) if h.dimension.is_some() => Ok(Some(h)),
            _ => self.lookup(name),
        }
    }

    fn require(&self, name: &str) -> Result<Handle> {
        self.handle(name)?.ok_or_else(|| not_found(name))
    }

    /// Runs `op` on the collection's id; on a 404 (the cached id went stale)
    /// looks the name up again and retries once.
    fn with_collection<T>(&self, name: &str, op: impl Fn(&Handle) -> Result<T>) -> Result<T> {
        let h = self.require(name)?;
        match op(&h) {
            Err(e) if http_status(&e) == Some(404) => {
                let fresh = self.lookup(name)?.ok_or_else(|| not_found(name))?;
                op(&fresh)
            }
            other => other,
        }
    }

    fn collection_url(&self, h: &Handle, action: &str) -> String {
        format!("{}/{}/{action}", self.collections_url(), segment(&h.id))
    }

    fn check_cosine(&self, name: &str, h: &Handle) -> Result<()> {
        if h.space == "cosine" {
            return Ok(());
        }
        Err(Error::MetricMismatch {
            collection: name.into(),
            metric: format!("the Chroma `{}` space", h.space),
        })
    }

    /// Creates the collection in cosine space (or returns the existing one).
    fn create(&self, name: &str) -> Result<Handle> {
        let body = json!({
            "name": name,
            "get_or_create": true,
            "configuration": {"hnsw": {"space": "cosine"}},
        });
        let created = self.call(Method::Post, &self.collections_url(), Some(&body))?;
        let h = self.handle_of(&created)?;
        self.handles().insert(name.to_string(), h.clone());
        Ok(h)
    }

    fn malformed(&self, what: &str) -> Error {
        self.client.malformed(&self.base, what)
    }

    /// Maps a 400 from the server (data it refused) to `InvalidInput`.
    fn refused(e: Error) -> Error {
        match http_status(&e) {
            Some(400 | 422) => Error::invalid_input(format!(
                "the Chroma server refused the request: {}",
                e.chain()
            )),
            _ => e,
        }
    }

    /// Reads existing records among `ids`: id → (metadata keys, has document).
    fn existing(&self, h: &Handle, ids: &[&str]) -> Result<HashMap<String, (Vec<String>, bool)>> {
        let body = json!({"ids": ids, "include": ["metadatas", "documents"]});
        let got = self.call(Method::Post, &self.collection_url(h, "get"), Some(&body))?;
        let ids = string_array(got.get("ids"));
        let metas = got.get("metadatas").and_then(Value::as_array);
        let docs = got.get("documents").and_then(Value::as_array);
        Ok(ids
            .into_iter()
            .enumerate()
            .map(|(i, id)| {
                let keys = metas
                    .and_then(|m| m.get(i))
                    .and_then(Value::as_object)
                    .map(|m| m.keys().cloned().collect())
                    .unwrap_or_default();
                let has_doc = docs.and_then(|d| d.get(i)).is_some_and(|d| !d.is_null());
                (id, (keys, has_doc))
            })
            .collect())
    }

    fn upsert_chunk(&self, h: &Handle, chunk: &[Record]) -> Result<()> {
        let ids: Vec<&str> = chunk.iter().map(|r| r.id.as_str()).collect();
        let existing = self.existing(h, &ids)?;
        let mut metadatas = Vec::with_capacity(chunk.len());
        let mut clear_docs = Vec::new();
        for r in chunk {
            let mut m = encode_metadata(&r.metadata);
            if let Some((old_keys, had_doc)) = existing.get(&r.id) {
                for k in old_keys {
                    if !m.contains_key(k) {
                        m.insert(k.clone(), Value::Null);
                    }
                }
                if *had_doc && r.document.is_none() {
                    clear_docs.push(r.id.as_str());
                }
            }
            metadatas.push(if m.is_empty() {
                Value::Null
            } else {
                Value::Object(m)
            });
        }
        if !clear_docs.is_empty() {
            // Chroma cannot set a document back to absent; remove, then re-add below.
            let body = json!({"ids": clear_docs});
            self.call(Method::Post, &self.collection_url(h, "delete"), Some(&body))?;
        }
        let body = json!({
            "ids": ids,
            "embeddings": chunk.iter().map(|r| &r.vector).collect::<Vec<_>>(),
            "documents": chunk.iter().map(|r| r.document.as_deref()).collect::<Vec<_>>(),
            "metadatas": metadatas,
        });
        self.call(Method::Post, &self.collection_url(h, "upsert"), Some(&body))
            .map_err(Self::refused)?;
        Ok(())
    }

    fn query(&self, h: &Handle, queries: &[&[f32]], k: usize) -> Result<Vec<Vec<Hit>>> {
        let n_results = k.min(i32::MAX as usize);
        let mut out = Vec::with_capacity(queries.len());
        for chunk in queries.chunks(self.max_batch) {
            let body = json!({
                "query_embeddings": chunk,
                "n_results": n_results,
                "include": ["documents", "metadatas", "distances"],
            });
            let got = self.call(Method::Post, &self.collection_url(h, "query"), Some(&body))?;
            let lists = |key: &str| got.get(key).and_then(Value::as_array);
            let (ids, dists) = match (lists("ids"), lists("distances")) {
                (Some(i), Some(d)) if i.len() == chunk.len() && d.len() == chunk.len() => (i, d),
                _ => {
                    return Err(self
                        .malformed("a query response without one id and distance list per query"))
                }
            };
            for qi in 0..chunk.len() {
                let row_ids = string_array(ids.get(qi));
                let row_d = dists.get(qi).and_then(Value::as_array);
                let row_docs = lists("documents")
                    .and_then(|d| d.get(qi))
                    .and_then(Value::as_array);
                let row_meta = lists("metadatas")
                    .and_then(|m| m.get(qi))
                    .and_then(Value::as_array);
                let mut hits = Vec::with_capacity(row_ids.len());
                for (i, id) in row_ids.into_iter().enumerate() {
                    let distance = row_d
                        .and_then(|d| d.get(i))
                        .and_then(Value::as_f64)
                        .ok_or_else(|| self.malformed("a query hit without a distance"))?;
                    let (document, metadata) = payload_at(row_docs, row_meta, i);
                    hits.push(Hit {
                        id,
                        distance: distance as f32,
                        document,
                        metadata,
                    });
                }
                hits.sort_by(|a, b| a.distance.total_cmp(&b.distance));
                hits.truncate(k);
                out.push(hits);
            }
        }
        Ok(out)
    }

    /// Reads up to `limit` (at most the batch limit) records starting at
    /// `offset`, in the server's storage order, with their vectors, documents
    /// and decoded metadata. Works on collections of any space.
    fn page(&self, collection: &str, offset: usize, limit: usize) -> Result<Vec<Record>> {
        validate::collection_name(collection)?;
        let limit = limit.clamp(1, self.max_batch);
        self.with_collection(collection, |h| {
            let body = json!({
                "offset": offset,
                "limit": limit,
                "include": ["embeddings", "documents", "metadatas"],
            });
            let got = self.call(Method::Post, &self.collection_url(h, "get"), Some(&body))?;
            let ids = string_array(got.get("ids"));
            let embs = got.get("embeddings").and_then(Value::as_array);
            let docs = got.get("documents").and_then(Value::as_array);
            let metas = got.get("metadatas").and_then(Value::as_array);
            let mut records = Vec::with_capacity(ids.len());
            for (i, id) in ids.into_iter().enumerate() {
                let vector: Vec<f32> = embs
                    .and_then(|e| e.get(i))
                    .and_then(Value::as_array)
                    .ok_or_else(|| self.malformed("a record without its embedding"))?
                    .iter()
                    .map(|x| x.as_f64().map(|x| x as f32))
                    .collect::<Option<_>>()
                    .ok_or_else(|| self.malformed("an embedding with a non-number"))?;
                let (document, metadata) = payload_at(docs, metas, i);
                records.push(Record {
                    id,
                    vector,
                    document,
                    metadata,
                });
            }
            Ok(records)
        })
    }
}

fn not_found(name: &str) -> Error {
    Error::CollectionNotFound { name: name.into() }
}

impl VectorStore for ChromaStore {
    fn backend_name(&self) -> &'static str {
        "chromadb"
    }

    fn upsert(&self, collection: &str, records: &[Record]) -> Result<()> {
        validate::collection_name(collection)?;
        let mut existing = self.handle(collection)?;
        if let Some(d) = existing.as_ref().and_then(|h| h.dimension) {
            if records.iter().any(|r| r.vector.len() != d) {
                // Confirm against the server before refusing (the cache may be stale).
                existing = self.lookup(collection)?;
            }
        }
        validate::records(records, existing.as_ref().and_then(|h| h.dimension))?;
        if let Some(h) = &existing {
            self.check_cosine(collection, h)?;
        }
        if existing.is_none() {
            self.create(collection)?;
        }
        for chunk in records.chunks(self.max_batch) {
            match self.with_collection(collection, |h| self.upsert_chunk(h, chunk)) {
                // Dropped by another client since we looked: write creates it again.
                Err(Error::CollectionNotFound { .. }) => {
                    self.create(collection)?;
                    self.with_collection(collection, |h| self.upsert_chunk(h, chunk))?;
                }
                other => other?,
            }
        }
        if let (Some(first), Some(h)) = (records.first(), self.handles().get_mut(collection)) {
            h.dimension.get_or_insert(first.vector.len());
        }
        Ok(())
    }

    fn search_batch(
        &self,
        collection: &str,
        queries: &[&[f32]],
        k: usize,
    ) -> Result<Vec<Vec<Hit>>> {
        validate::collection_name(collection)?;
        let mut h = self.require(collection)?;
        if queries.iter().any(|q| Some(q.len()) != h.dimension) {
            // Confirm against the server before refusing (the cache may be stale).
            h = self
                .lookup(collection)?
                .ok_or_else(|| not_found(collection))?;
        }
        let Some(dim) = h.dimension else {
            // Never written to: no dimension to check against, no hits.
            for q in queries {
                validate::vector("query vector", q)?;
            }
            return Ok(vec![Vec::new(); queries.len()]);
        };
        for q in queries {
            validate::query(q, dim)?;
        }
        self.check_cosine(collection, &h)?;
        if k == 0 || queries.is_empty() {
            return Ok(vec![Vec::new(); queries.len()]);
        }
        self.with_collection(collection, |h| self.query(h, queries, k))
    }

    fn delete(&self, collection: &str, ids: &[String]) -> Result<usize> {
        validate::collection_name(collection)?;
        let mut seen = HashSet::with_capacity(ids.len());
        let unique: Vec<&str> = ids
            .iter()
            .map(String::as_str)
            .filter(|id| seen.insert(*id))
            .collect();
        self.with_collection(collection, |h| {
            let mut removed = 0;
            for chunk in unique.chunks(self.max_batch) {
                let body = json!({"ids": chunk, "include": []});
                let got = self.call(Method::Post, &self.collection_url(h, "get"), Some(&body))?;
                let present = string_array(got.get("ids"));
                if present.is_empty() {
                    continue;
                }
                let body = json!({"ids": present});
                self.call(Method::Post, &self.collection_url(h, "delete"), Some(&body))?;
                removed += present.len();
            }
            Ok(removed)
        })
    }

    fn count(&self, collection: &str) -> Result<usize> {
        validate::collection_name(collection)?;
        self.with_collection(collection, |h| {
            let n = self.call(Method::Get, &self.collection_url(h, "count"), None)?;
            n.as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| self.malformed("a count that is not a number"))
        })
    }

    fn has_collection(&self, collection: &str) -> Result<bool> {
        validate::collection_name(collection)?;
        Ok(self.lookup(collection)?.is_some())
    }

    fn list_collections(&self) -> Result<Vec<String>> {
        let mut names = Vec::new();
        loop {
            let url = format!(
                "{}?limit={LIST_PAGE}&offset={}",
                self.collections_url(),
                names.len()
            );
            let page = self.call(Method::Get, &url, None)?;
            let page = page
                .as_array()
                .ok_or_else(|| self.malformed("a collection list that is not an array"))?;
            names.extend(
                page.iter()
                    .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_string)),
            );
            if page.len() < LIST_PAGE {
                break;
            }
        }
        names.sort();
        Ok(names)
    }

    fn drop_collection(&self, collection: &str) -> Result<bool> {
        validate::collection_name(collection)?;
        self.handles().remove(collection);
        let url = format!("{}/{}", self.collections_url(), segment(collection));
        match self.call(Method::Delete, &url, None) {
            Ok(_) => Ok(true),
            Err(e) if http_status(&e) == Some(404) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn collection_info(&self, collection: &str) -> Result<CollectionInfo> {
        validate::collection_name(collection)?;
        let json = self
            .fetch(collection)?
            .ok_or_else(|| not_found(collection))?;
        let h = self.handle_of(&json)?;
        self.handles().insert(collection.to_string(), h.clone());
        let count = self.count(collection)?;
        Ok(CollectionInfo {
            name: collection.to_string(),
            dimension: h.dimension,
            count,
            metadata: decode_collection_metadata(&json),
        })
    }

    fn read_page(&self, collection: &str, offset: usize, limit: usize) -> Result<Vec<Record>> {
        self.page(collection, offset, limit)
    }

    fn set_collection_metadata(&self, collection: &str, metadata: Metadata) -> Result<()> {
        validate::collection_name(collection)?;
        if self.handle(collection)?.is_none() {
            self.create(collection)?;
        }
        let text = Value::Object(metadata).to_string();
        self.with_collection(collection, |h| {
            let url = format!("{}/{}", self.collections_url(), segment(&h.id));
            let body = json!({"new_metadata": {COLLECTION_METADATA_KEY: text}});
            self.call(Method::Put, &url, Some(&body)).map(|_| ())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::segment;

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(segment("default_tenant"), "default_tenant");
        assert_eq!(segment("a b/c"), "a%20b%2Fc");
        assert_eq!(segment("é"), "%C3%A9");
    }
}

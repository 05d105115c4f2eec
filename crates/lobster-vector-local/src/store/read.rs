//! Reads: records by id or page, and searches (one snapshot, one index read
//! and one fetch of rows per batch of queries).

use std::collections::HashMap;
use std::rc::Rc;

use lobster_vector_core::{metric::normalize, validate, Hit, Metadata, Record, Result};
use rusqlite::types::Value;
use rusqlite::{params, Connection};

use super::sync::error_index_unavailable;
use super::{not_found, read, LocalStore};
use crate::error::{corrupt, corrupt_col, SqlExt};
use crate::options::PARALLEL_SEARCH_MIN;
use crate::schema::{self, decode, key, CollRow};

impl LocalStore {
    /// The stored records with these ids (vectors as stored: L2-normalised), in
    /// the order of `ids`; unknown ids are skipped, repeated ids given once.
    pub fn get(&self, collection: &str, ids: &[String]) -> Result<Vec<Record>> {
        let wanted: Rc<Vec<Value>> = Rc::new(ids.iter().map(|i| Value::Text(i.clone())).collect());
        let found = self.read_records(
            collection,
            "SELECT id, document, metadata, vector FROM records \
             WHERE collection = ?1 AND id IN rarray(?2)",
            params![collection, wanted],
        )?;
        let mut found: HashMap<String, Record> =
            found.into_iter().map(|r| (r.id.clone(), r)).collect();
        Ok(ids.iter().filter_map(|i| found.remove(i)).collect())
    }

    /// The records `sql` selects (columns id, document, metadata, vector) in
    /// one read transaction; `CollectionNotFound` when the collection is absent.
    pub(super) fn read_records(
        &self,
        collection: &str,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<Record>> {
        validate::collection_name(collection)?;
        let db = &self.paths.db;
        let conn = self.readers.get()?;
        let tx = conn.unchecked_transaction().db(db)?;
        let row = schema::read_row(&tx, db, collection)?.ok_or_else(|| not_found(collection))?;
        let Some(dim) = row.dimension else {
            return Ok(Vec::new());
        };
        let mut st = tx.prepare_cached(sql).db(db)?;
        let mut rows = st.query(params).db(db)?;
        let mut found = Vec::new();
        while let Some(r) = rows.next().db(db)? {
            found.push(Record {
                id: r.get(0).db(db)?,
                document: r.get(1).db(db)?,
                metadata: parse_metadata(r.get_ref(2).db(db)?.as_str().map_err(corrupt_col)?)?,
                vector: decode(r.get_ref(3).db(db)?.as_blob().map_err(corrupt_col)?, dim)?,
            });
        }
        Ok(found)
    }

    /// The hits of each query's `(key, distance)` matches, nearest first: the
    /// rows of every query read in one statement, keys no longer in SQLite
    /// dropped. (The index holds the same unit vectors as SQLite, so its
    /// distances are the stored vectors'.)
    fn fetch(
        &self,
        conn: &Connection,
        name: &str,
        matches: &[Vec<(u64, f32)>],
    ) -> Result<Vec<Vec<Hit>>> {
        let db = &self.paths.db;
        // How many queries matched each key: its row is moved into the last
        // hit that needs it and cloned for the others.
        let mut uses: HashMap<u64, usize> = HashMap::new();
        for &(k, _) in matches.iter().flatten() {
            *uses.entry(k).or_default() += 1;
        }
        if uses.is_empty() {
            return Ok(vec![Vec::new(); matches.len()]);
        }
        let mut wanted = Vec::with_capacity(uses.len());
        for &k in uses.keys() {
            wanted.push(Value::Integer(
                i64::try_from(k).map_err(|_| corrupt(format!("index key {k} out of range")))?,
            ));
        }
        let cap = wanted.len();
        let wanted = Rc::new(wanted);
        let mut st = conn
            .prepare_cached(
                "SELECT rid, id, document, metadata FROM records \
                 WHERE rid IN rarray(?1) AND +collection = ?2",
            )
            .db(db)?;
        let mut rows = st.query(params![wanted, name]).db(db)?;
        let mut found: HashMap<u64, (String, Option<String>, Metadata)> =
            HashMap::with_capacity(cap);
        while let Some(r) = rows.next().db(db)? {
            let rid = key(r.get(0).db(db)?)?;
            let id: String = r.get(1).db(db)?;
            let document: Option<String> = r.get(2).db(db)?;
            let metadata = parse_metadata(r.get_ref(3).db(db)?.as_str().map_err(corrupt_col)?)?;
            found.insert(rid, (id, document, metadata));
        }
        Ok(matches
            .iter()
            .map(|m| {
                m.iter()
                    .filter_map(|&(k, distance)| {
                        let left = uses.get_mut(&k)?;
                        *left -= 1;
                        let (id, document, metadata) = if *left == 0 {
                            found.remove(&k)?
                        } else {
                            found.get(&k)?.clone()
                        };
                        Some(Hit {
                            id,
                            distance,
                            document,
                            metadata,
                        })
                    })
                    .collect()
            })
            .collect())
    }

    /// Searches until one attempt sees every hit it found still in SQLite
    /// (a concurrent write can delete rows between the index read and the
    /// fetch), at most three attempts.
    pub(super) fn search_retrying(
        &self,
        collection: &str,
        queries: &[&[f32]],
        k: usize,
    ) -> Result<Vec<Vec<Hit>>> {
        validate::collection_name(collection)?;
        for attempt in 0..3 {
            if let Some(hits) = self.search_once(collection, queries, k, attempt == 2)? {
                return Ok(hits);
            }
        }
        Err(error_index_unavailable(collection))
    }

    /// One attempt at a batch of searches, in one read transaction; `None`
    /// when hits vanished meanwhile (retry).
    fn search_once(
        &self,
        collection: &str,
        queries: &[&[f32]],
        k: usize,
        last_try: bool,
    ) -> Result<Option<Vec<Vec<Hit>>>> {
        let conn = self.readers.get()?;
        let check = |row: &CollRow| {
            queries.iter().try_for_each(|q| match row.dimension {
                None => validate::vector("query vector", q),
                Some(d) => validate::query(q, d),
            })
        };
        let (row, slot) = self.prepare(&conn, collection, &check)?;
        let none = || Ok(Some(vec![Vec::new(); queries.len()]));
        let Some(slot) = slot else {
            return none();
        };
        if k == 0 || row.record_count == 0 {
            return none();
        }
        let matches: Vec<Vec<(u64, f32)>> = {
            let g = read(&slot.live);
            let Some(l) = g.as_ref() else {
                // Dropped by a failed update meanwhile.
                return if last_try {
                    Err(error_index_unavailable(collection))
                } else {
                    Ok(None)
                };
            };
            let n = l.size();
            let kk = k.min(n);
            if kk == 0 {
                return none();
            }
            let exact = n < self.options.exact_search_below;
            let search_all = |queries: &[&[f32]]| {
                let mut q = Vec::new();
                queries
                    .iter()
                    .map(|query| {
                        q.clear();
                        q.extend_from_slice(query);
                        normalize(&mut q);
                        l.search(&q, kk, exact)
                    })
                    .collect::<Vec<_>>()
            };
            let threads = self.options.hnsw.search_threads.max(1);
            if threads == 1 || queries.len() < PARALLEL_SEARCH_MIN {
                search_all(queries)
            } else {
                let share = queries.len().div_ceil(threads);
                std::thread::scope(|s| {
                    let parts: Vec<_> = queries
                        .chunks(share)
                        .map(|part| s.spawn(move || search_all(part)))
                        .collect();
                    parts
                        .into_iter()
                        .flat_map(|p| p.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                        .collect()
                })
            }
        };
        let hits = self.fetch(&conn, collection, &matches)?;
        let complete = hits.iter().zip(&matches).all(|(h, m)| h.len() == m.len());
        if !complete && !last_try {
            return Ok(None);
        }
        Ok(Some(hits))
    }
}

pub(super) fn parse_metadata(text: &str) -> Result<Metadata> {
    serde_json::from_str(text)
        .map_err(|e| corrupt(format!("stored metadata is not a JSON object: {e}")))
}

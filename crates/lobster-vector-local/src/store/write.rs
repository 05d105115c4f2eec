//! Writes: each is one SQLite transaction (all or nothing, durable when it
//! returns), then the in-memory index is updated. Each takes the write lock
//! on first use.

use std::path::Path;

use lobster_vector_core::{metric::normalize, validate, Error, Metadata, Record, Result};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::sync::Committed;
use super::{not_found, write, LocalStore};
use crate::error::SqlExt;
use crate::index;
use crate::schema::{self, encode, key, NOW};

impl LocalStore {
    /// One SQLite transaction (all or nothing, durable when this returns `Ok`),
    /// then the in-memory index. Takes the write lock on first use.
    pub(super) fn commit_upsert(&self, collection: &str, records: &[Record]) -> Result<()> {
        validate::collection_name(collection)?;
        let db = &self.paths.db;
        let mut w = self.writer("upsert records")?;
        let committed = {
            let tx = w
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .db(db)?;
            let row = schema::read_row(&tx, db, collection)?;
            let Some(dim) = validate::records(records, row.and_then(|r| r.dimension))? else {
                if row.is_none() {
                    let seq = schema::next_seq(&tx, db)?;
                    schema::insert_collection(&tx, db, collection, seq, "{}")?;
                    tx.commit().db(db)?;
                }
                return Ok(());
            };
            let seq = schema::next_seq(&tx, db)?;
            let incarnation = match row {
                Some(r) => r.incarnation,
                None => {
                    schema::insert_collection(&tx, db, collection, seq, "{}")?;
                    seq
                }
            };
            // Ids are unique within a validated batch, so removing every
            // overwritten row first and then inserting is one overwrite each.
            let removed = remove_rows(&tx, db, collection, seq, records.iter().map(|r| &*r.id))?;
            let mut added = Vec::with_capacity(records.len());
            {
                let mut ins = tx
                    .prepare_cached(
                        "INSERT INTO records (collection, id, document, metadata, vector, seq) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    )
                    .db(db)?;
                for r in records {
                    let mut v = r.vector.clone();
                    normalize(&mut v);
                    let meta = metadata_json(&format!("record {:?} metadata", r.id), &r.metadata)?;
                    ins.execute(params![collection, r.id, r.document, meta, encode(&v), seq])
                        .db(db)?;
                    added.push((key(tx.last_insert_rowid())?, v));
                }
            }
            let grown = (added.len() - removed.len()) as i64;
            tx.execute(
                &format!(
                    "UPDATE collections SET dimension = ?2, record_count = record_count + ?3, \
                     last_seq = ?4, updated_at = {NOW} WHERE name = ?1"
                ),
                params![collection, dim as i64, grown, seq],
            )
            .db(db)?;
            tx.commit().db(db)?;
            Committed {
                incarnation,
                seq,
                prev_last_seq: row.map(|r| r.last_seq),
                prev_had_vectors: row.is_some_and(|r| r.dimension.is_some()),
                dim,
                removed,
                added,
            }
        };
        self.apply(&mut w, collection, committed);
        Ok(())
    }

    /// One transaction; returns how many of `ids` existed. Takes the write lock on first use.
    pub(super) fn commit_delete(&self, collection: &str, ids: &[String]) -> Result<usize> {
        validate::collection_name(collection)?;
        let db = &self.paths.db;
        let mut w = self.writer("delete records")?;
        let committed = {
            let tx = w
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .db(db)?;
            let row =
                schema::read_row(&tx, db, collection)?.ok_or_else(|| not_found(collection))?;
            if ids.is_empty() {
                return Ok(0);
            }
            let seq = schema::next_seq(&tx, db)?;
            let removed = remove_rows(&tx, db, collection, seq, ids.iter().map(String::as_str))?;
            if removed.is_empty() {
                return Ok(0);
            }
            tx.execute(
                &format!(
                    "UPDATE collections SET record_count = record_count - ?2, last_seq = ?3, \
                     updated_at = {NOW} WHERE name = ?1"
                ),
                params![collection, removed.len() as i64, seq],
            )
            .db(db)?;
            tx.commit().db(db)?;
            Committed {
                incarnation: row.incarnation,
                seq,
                prev_last_seq: Some(row.last_seq),
                prev_had_vectors: row.dimension.is_some(),
                dim: row.dimension.unwrap_or(0),
                removed,
                added: Vec::new(),
            }
        };
        let n = committed.removed.len();
        self.apply(&mut w, collection, committed);
        Ok(n)
    }

    /// Removes the collection's rows, tombstones and index files. Takes the write lock on first use.
    pub(super) fn commit_drop(&self, collection: &str) -> Result<bool> {
        validate::collection_name(collection)?;
        let db = &self.paths.db;
        let mut w = self.writer("drop a collection")?;
        {
            let tx = w
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .db(db)?;
            if schema::read_row(&tx, db, collection)?.is_none() {
                return Ok(false);
            }
            for sql in [
                "DELETE FROM records WHERE collection = ?1",
                "DELETE FROM tombstones WHERE collection = ?1",
                "DELETE FROM collections WHERE name = ?1",
            ] {
                tx.execute(sql, [collection]).db(db)?;
            }
            tx.commit().db(db)?;
        }
        if let Some(slot) = write(&self.slots).remove(collection) {
            *write(&slot.live) = None;
        }
        index::remove_files(&self.paths.index_dir, collection);
        Ok(true)
    }

    /// Stored in the `collections` row (durable when this returns). Takes the write lock on first use.
    pub(super) fn commit_metadata(&self, collection: &str, metadata: Metadata) -> Result<()> {
        validate::collection_name(collection)?;
        let json = metadata_json("collection metadata", &metadata)?;
        let db = &self.paths.db;
        let mut w = self.writer("set collection metadata")?;
        let tx = w
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .db(db)?;
        if schema::read_row(&tx, db, collection)?.is_some() {
            tx.execute(
                &format!(
                    "UPDATE collections SET metadata = ?2, updated_at = {NOW} WHERE name = ?1"
                ),
                params![collection, json],
            )
            .db(db)?;
        } else {
            let seq = schema::next_seq(&tx, db)?;
            schema::insert_collection(&tx, db, collection, seq, &json)?;
        }
        tx.commit().db(db)
    }
}

/// Deletes the rows of `ids` (unknown ids are skipped) inside the write
/// transaction `tx` and leaves a tombstone `(collection, seq, rid)` for each,
/// so that replay removes them from index files saved earlier. Returns the
/// removed rows' index keys.
fn remove_rows<'a>(
    tx: &Connection,
    db: &Path,
    collection: &str,
    seq: i64,
    ids: impl Iterator<Item = &'a str>,
) -> Result<Vec<u64>> {
    let mut del = tx
        .prepare_cached("DELETE FROM records WHERE collection = ?1 AND id = ?2 RETURNING rid")
        .db(db)?;
    let mut tomb = tx
        .prepare_cached("INSERT INTO tombstones (collection, seq, rid) VALUES (?1, ?2, ?3)")
        .db(db)?;
    let mut removed = Vec::new();
    for id in ids {
        let old: Option<i64> = del
            .query_row(params![collection, id], |r| r.get(0))
            .optional()
            .db(db)?;
        if let Some(old) = old {
            tomb.execute(params![collection, seq, old]).db(db)?;
            removed.push(key(old)?);
        }
    }
    Ok(removed)
}

fn metadata_json(what: &str, m: &Metadata) -> Result<String> {
    serde_json::to_string(m)
        .map_err(|e| Error::invalid_input(format!("{what} cannot be serialised as JSON: {e}")))
}

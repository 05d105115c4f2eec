//! Keeping each collection's in-memory index in step with SQLite: catch-up
//! (replay newer changes, load the index file, or rebuild), updates after
//! this process's commits, and saves of index files.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use lobster_vector_core::{Error, Result};
use rusqlite::{params, Connection, TransactionBehavior};

use super::{not_found, read, write, LocalStore, Writer};
use crate::error::{corrupt, corrupt_col, SqlExt};
use crate::index::{self, LiveIndex, LoadFailure, Slot};
use crate::schema::{self, decode, key, CollRow};
use crate::BACKEND;

/// Rows fetched per query while rebuilding or replaying an index.
const REPLAY_BATCH: usize = 8_192;

/// What one committed write changed, for updating the in-memory index.
#[derive(Debug)]
pub(super) struct Committed {
    pub(super) incarnation: i64,
    pub(super) seq: i64,
    /// `last_seq` of the collection before this write (`None`: the write created it).
    pub(super) prev_last_seq: Option<i64>,
    /// Whether the collection held vectors (had a dimension) before this write.
    pub(super) prev_had_vectors: bool,
    pub(super) dim: usize,
    pub(super) removed: Vec<u64>,
    pub(super) added: Vec<(u64, Vec<f32>)>,
}

impl LocalStore {
    pub(crate) fn slot(&self, name: &str) -> Arc<Slot> {
        if let Some(s) = read(&self.slots).get(name) {
            return s.clone();
        }
        write(&self.slots)
            .entry(name.to_string())
            .or_insert_with(|| Arc::new(Slot::new()))
            .clone()
    }

    /// Reads the collection row in a read transaction on `conn`, runs `check`
    /// on it, then brings the in-memory index up to the row's `last_seq`.
    pub(super) fn prepare(
        &self,
        conn: &Connection,
        name: &str,
        check: &dyn Fn(&CollRow) -> Result<()>,
    ) -> Result<(CollRow, Option<Arc<Slot>>)> {
        let db = &self.paths.db;
        let tx = conn.unchecked_transaction().db(db)?;
        let Some(row) = schema::read_row(&tx, db, name)? else {
            write(&self.slots).remove(name);
            return Err(not_found(name));
        };
        check(&row)?;
        if row.dimension.is_none() {
            return Ok((row, None));
        }
        let slot = self.slot(name);
        let current = read(&slot.live)
            .as_ref()
            .is_some_and(|l| l.incarnation == row.incarnation && l.seq >= row.last_seq);
        let mut unsaved = false;
        if !current {
            let mut g = write(&slot.live);
            self.catch_up(&tx, name, &row, &mut g)?;
            unsaved = g.as_ref().is_some_and(|l| {
                l.saved_seq.is_none() || l.unsaved >= self.options.autosave_every.max(1)
            });
        }
        tx.commit().db(db)?;
        if unsaved {
            self.save_for_readers(name, &slot);
        }
        Ok((row, Some(slot)))
    }

    /// Saves an index this process had to rebuild (or replay far) while
    /// reading, so that the next process loads it instead of rebuilding it
    /// again; skipped while another process saves. A read-only store cannot
    /// save: it warns once per collection that every process rebuilds the
    /// index until a writer saves it.
    pub(super) fn save_for_readers(&self, name: &str, slot: &Slot) {
        if self.writer.is_none() {
            if !slot.warned_unsaved.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    collection = name,
                    path = %self.paths.dir.display(),
                    "the index file is missing or stale and this store is read-only: every process \
                     rebuilds the index in memory until a writer saves it (compacting the store does)"
                );
            }
            return;
        }
        if self.holds_write_lock() {
            // Saved with this process's writes.
            return;
        }
        let saved = self
            .readers
            .get()
            .and_then(|conn| self.save_file(name, slot, Duration::ZERO, Some(&conn)));
        match saved {
            Ok(Some(meta)) => tracing::info!(
                collection = name,
                seq = meta.seq,
                "saved the rebuilt index file"
            ),
            Ok(None) => {}
            Err(Error::StoreLocked { .. }) => {
                tracing::debug!(collection = name, "another process is saving index files");
            }
            Err(e) => {
                tracing::warn!(collection = name, error = %e, "saving the rebuilt index file failed");
            }
        }
    }

    /// Writes one collection's index file if it changed since its last save,
    /// holding the index directory's save lock (waiting up to `wait`). With
    /// `only_if_current`, saves only while the collection's row read on that
    /// connection still is the index's state (a reader's save). Returns the
    /// sidecar written.
    pub(super) fn save_file(
        &self,
        name: &str,
        slot: &Slot,
        wait: Duration,
        only_if_current: Option<&Connection>,
    ) -> Result<Option<index::IndexMeta>> {
        let _lock = index::save_lock(&self.paths.index_dir, wait)?;
        let meta = {
            let g = read(&slot.live);
            let Some(l) = g.as_ref() else {
                return Ok(None);
            };
            if l.saved_seq == Some(l.seq) && l.unsaved == 0 {
                return Ok(None);
            }
            if let Some(conn) = only_if_current {
                let row = schema::read_row(conn, &self.paths.db, name)?;
                if !row.is_some_and(|r| r.incarnation == l.incarnation && r.last_seq == l.seq) {
                    return Ok(None);
                }
            }
            index::save(&self.paths.index_dir, name, l)?
        };
        if let Some(l) = write(&slot.live).as_mut() {
            if l.seq == meta.seq && l.incarnation == meta.incarnation {
                l.saved_seq = Some(meta.seq);
                l.unsaved = 0;
            }
        }
        tracing::debug!(
            collection = name,
            seq = meta.seq,
            count = meta.count,
            "saved the index file"
        );
        Ok(Some(meta))
    }

    /// Makes `live` reflect `row` (read in the same transaction on `conn`):
    /// replays newer changes into a current in-memory index, else loads the
    /// index file and replays, else rebuilds from SQLite.
    pub(crate) fn catch_up(
        &self,
        conn: &Connection,
        name: &str,
        row: &CollRow,
        live: &mut Option<LiveIndex>,
    ) -> Result<()> {
        let Some(dim) = row.dimension else {
            *live = None;
            return Ok(());
        };
        if let Some(l) = live.as_mut() {
            if l.incarnation == row.incarnation && l.dim == dim {
                if l.seq >= row.last_seq {
                    return Ok(());
                }
                if l.seq >= row.tombstone_floor {
                    self.replay(conn, name, l, row)?;
                    if l.size() == row.record_count && !l.needs_rebuild() {
                        return Ok(());
                    }
                    if l.needs_rebuild() {
                        *live = Some(self.rebuild(conn, name, row)?);
                        return Ok(());
                    }
                    tracing::warn!(
                        collection = name,
                        index = l.size(),
                        sqlite = row.record_count,
                        "the in-memory index disagrees with SQLite after replay; rebuilding it"
                    );
                }
            }
        }
        *live = None;
        match index::load(&self.paths.index_dir, name, row, &self.options.hnsw) {
            Ok(mut l) => {
                let from = l.seq;
                self.replay(conn, name, &mut l, row)?;
                if l.size() == row.record_count && !l.needs_rebuild() {
                    tracing::debug!(
                        collection = name,
                        file_seq = from,
                        seq = row.last_seq,
                        "loaded the index file and replayed newer changes"
                    );
                    *live = Some(l);
                    return Ok(());
                }
                if l.size() != row.record_count {
                    tracing::warn!(
                        collection = name,
                        index = l.size(),
                        sqlite = row.record_count,
                        "the index file disagrees with SQLite after replay; rebuilding it"
                    );
                }
            }
            Err(LoadFailure::Absent) => {
                if row.record_count > 0 {
                    tracing::info!(
                        collection = name,
                        records = row.record_count,
                        "no index file; building the index from SQLite"
                    );
                }
            }
            Err(LoadFailure::Invalid(reason)) => tracing::warn!(
                collection = name,
                reason = %reason,
                "ignoring the index file; rebuilding the index from SQLite"
            ),
        }
        *live = Some(self.rebuild(conn, name, row)?);
        Ok(())
    }

    /// Applies the changes with `l.seq < seq <= row.last_seq` from SQLite.
    pub(super) fn replay(
        &self,
        conn: &Connection,
        name: &str,
        l: &mut LiveIndex,
        row: &CollRow,
    ) -> Result<()> {
        if l.seq >= row.last_seq {
            return Ok(());
        }
        let db = &self.paths.db;
        let gone: Vec<u64> = {
            let mut st = conn
                .prepare_cached(
                    "SELECT rid FROM tombstones WHERE collection = ?1 AND seq > ?2 AND seq <= ?3",
                )
                .db(db)?;
            let rids = st
                .query_map(params![name, l.seq, row.last_seq], |r| r.get::<_, i64>(0))
                .db(db)?;
            let mut keys = Vec::new();
            for rid in rids {
                keys.push(key(rid.db(db)?)?);
            }
            keys
        };
        l.remove(&gone);
        let from = l.seq;
        self.stream_records(
            conn,
            "SELECT rid, vector FROM records WHERE collection = ?1 AND seq > ?2 AND seq <= ?3",
            params![name, from, row.last_seq],
            l,
            name,
        )?;
        l.seq = row.last_seq;
        Ok(())
    }

    /// Adds the `(rid, vector)` rows of `sql` to `l`, in batches.
    pub(super) fn stream_records(
        &self,
        conn: &Connection,
        sql: &str,
        params: &[&dyn rusqlite::ToSql],
        l: &mut LiveIndex,
        name: &str,
    ) -> Result<()> {
        let db = &self.paths.db;
        let mut st = conn.prepare_cached(sql).db(db)?;
        let mut rows = st.query(params).db(db)?;
        let mut batch = Vec::with_capacity(REPLAY_BATCH.min(4096));
        while let Some(r) = rows.next().db(db)? {
            let rid: i64 = r.get(0).db(db)?;
            let blob = r.get_ref(1).db(db)?.as_blob().map_err(corrupt_col)?;
            batch.push((key(rid)?, decode(blob, l.dim)?));
            if batch.len() == REPLAY_BATCH {
                l.add(name, &batch)?;
                batch.clear();
            }
        }
        l.add(name, &batch)?;
        Ok(())
    }

    /// A fresh index of every record of the collection, at `row.last_seq`.
    pub(crate) fn rebuild(
        &self,
        conn: &Connection,
        name: &str,
        row: &CollRow,
    ) -> Result<LiveIndex> {
        let dim = row
            .dimension
            .ok_or_else(|| corrupt(format!("collection `{name}` has records but no dimension")))?;
        let started = std::time::Instant::now();
        let mut l = LiveIndex::empty(row.incarnation, dim, row.last_seq, &self.options.hnsw);
        self.stream_records(
            conn,
            "SELECT rid, vector FROM records WHERE collection = ?1 AND seq <= ?2",
            params![name, row.last_seq],
            &mut l,
            name,
        )?;
        if l.size() != row.record_count {
            return Err(corrupt(format!(
                "collection `{name}` counts {} records but holds {}",
                row.record_count,
                l.size()
            )));
        }
        if row.record_count >= 10_000 {
            tracing::info!(
                collection = name,
                records = row.record_count,
                seconds = started.elapsed().as_secs_f64(),
                "built the index from SQLite"
            );
        }
        Ok(l)
    }

    /// Updates the in-memory index after a commit. Never fails the write (it is
    /// durable): on error the index is dropped and rebuilt by the next search.
    pub(super) fn apply(&self, w: &mut Writer, name: &str, c: Committed) {
        let slot = self.slot(name);
        let mut g = write(&slot.live);
        let outcome = self.apply_inner(w, name, &c, &mut g);
        if let Err(e) = outcome {
            tracing::warn!(
                collection = name,
                error = %e,
                "updating the in-memory index failed; it will be rebuilt from SQLite"
            );
            *g = None;
            return;
        }
        let due = g
            .as_ref()
            .is_some_and(|l| l.unsaved >= self.options.autosave_every.max(1));
        drop(g);
        if due {
            if let Err(e) = self.save_slot(w, name, &slot) {
                tracing::warn!(collection = name, error = %e, "saving the index file failed");
            }
        }
    }

    pub(super) fn apply_inner(
        &self,
        w: &mut Writer,
        name: &str,
        c: &Committed,
        live: &mut Option<LiveIndex>,
    ) -> Result<()> {
        if let Some(l) = live.as_mut() {
            if l.incarnation == c.incarnation {
                if l.seq >= c.seq {
                    return Ok(());
                }
                if Some(l.seq) == c.prev_last_seq {
                    l.remove(&c.removed);
                    l.add(name, &c.added)?;
                    l.seq = c.seq;
                    if !l.needs_rebuild() {
                        return Ok(());
                    }
                    // Too many deleted entries in the graph: rebuild it.
                    let db = &self.paths.db;
                    let tx = w.conn.unchecked_transaction().db(db)?;
                    *live = match schema::read_row(&tx, db, name)? {
                        Some(row) if row.dimension.is_some() => {
                            Some(self.rebuild(&tx, name, &row)?)
                        }
                        _ => None,
                    };
                    return tx.commit().db(db);
                }
            }
        }
        if !c.prev_had_vectors {
            // The collection had no vectors before: this batch is all of it.
            let mut l = LiveIndex::empty(c.incarnation, c.dim, c.seq, &self.options.hnsw);
            l.add(name, &c.added)?;
            *live = Some(l);
            return Ok(());
        }
        let db = &self.paths.db;
        let tx = w.conn.unchecked_transaction().db(db)?;
        if let Some(row) = schema::read_row(&tx, db, name)? {
            self.catch_up(&tx, name, &row, live)?;
        } else {
            *live = None;
        }
        tx.commit().db(db)
    }

    /// Saves one collection's index file if it changed since the last save, then
    /// prunes the collection's tombstones up to the saved sequence number.
    pub(crate) fn save_slot(&self, w: &mut Writer, name: &str, slot: &Slot) -> Result<()> {
        let Some(meta) = self.save_file(name, slot, index::SAVE_WAIT, None)? else {
            return Ok(());
        };
        let db = &self.paths.db;
        let tx = w
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .db(db)?;
        let n = tx
            .execute(
                "UPDATE collections SET tombstone_floor = ?3 \
                 WHERE name = ?1 AND incarnation = ?2 AND tombstone_floor < ?3",
                params![name, meta.incarnation, meta.seq],
            )
            .db(db)?;
        if n > 0 {
            tx.execute(
                "DELETE FROM tombstones WHERE collection = ?1 AND seq <= ?2",
                params![name, meta.seq],
            )
            .db(db)?;
        }
        tx.commit().db(db)
    }

    /// Saves every changed index of this process (the caller holds the write lock).
    pub(crate) fn save_all(&self, w: &mut Writer) -> Result<()> {
        let slots: Vec<(String, Arc<Slot>)> = read(&self.slots)
            .iter()
            .map(|(n, s)| (n.clone(), s.clone()))
            .collect();
        let mut first_err = None;
        for (name, slot) in slots {
            if let Err(e) = self.save_slot(w, &name, &slot) {
                tracing::warn!(collection = %name, error = %e, "saving the index file failed");
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

pub(super) fn error_index_unavailable(name: &str) -> Error {
    Error::backend(
        BACKEND,
        format!("the HNSW index of collection `{name}` could not be brought up to date"),
    )
}

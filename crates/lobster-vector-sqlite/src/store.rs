//! [`SqliteStore`]: open, the `VectorStore` implementation, index catch-up and saves.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use lobster_vector_core::{
    metric::normalize, validate, CollectionInfo, Error, Hit, Metadata, Record, Result, VectorStore,
};
use rusqlite::types::Value;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::error::{corrupt, SqlExt};
use crate::index::{self, LiveIndex, LoadFailure, Slot};
use crate::options::SqliteOptions;
use crate::pool::Pool;
use crate::schema::{self, decode, encode, key, CollRow, NOW};
use crate::{BACKEND, DB_FILE, INDEX_DIR, LOCK_FILE};

/// Rows fetched per query while rebuilding or replaying an index.
const REPLAY_BATCH: usize = 8_192;

/// The files of a store directory.
#[derive(Debug, Clone)]
pub(crate) struct Paths {
    pub dir: PathBuf,
    pub db: PathBuf,
    pub index_dir: PathBuf,
    pub lock: PathBuf,
}

impl Paths {
    fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            db: dir.join(DB_FILE),
            index_dir: dir.join(INDEX_DIR),
            lock: dir.join(LOCK_FILE),
        }
    }
}

/// The writer's connection and, once taken, the cross-process write lock.
#[derive(Debug)]
pub(crate) struct Writer {
    pub conn: Connection,
    pub lock: Option<File>,
}

/// What one committed write changed, for updating the in-memory index.
#[derive(Debug)]
struct Committed {
    incarnation: i64,
    seq: i64,
    /// `last_seq` of the collection before this write (`None`: the write created it).
    prev_last_seq: Option<i64>,
    /// Whether the collection held vectors (had a dimension) before this write.
    prev_had_vectors: bool,
    dim: usize,
    removed: Vec<u64>,
    added: Vec<(u64, Vec<f32>)>,
}

/// The embedded persistent vector store (backend `local`).
///
/// See the [crate documentation](crate) for the layout, the durability
/// guarantee (an acknowledged write survives power loss), sequence numbers and
/// replay, and concurrency. All methods take `&self`; the store is `Send + Sync`
/// and meant to be shared (`Arc<dyn VectorStore>`).
#[derive(Debug)]
pub struct SqliteStore {
    pub(crate) paths: Paths,
    pub(crate) options: SqliteOptions,
    pub(crate) readers: Pool,
    /// `None` for read-only stores.
    pub(crate) writer: Option<Mutex<Writer>>,
    pub(crate) slots: RwLock<HashMap<String, Arc<Slot>>>,
}

pub(crate) fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(PoisonError::into_inner)
}

/// Whether this process can write the store: its lock file (created if
/// missing) and its database open for writing.
fn writable(paths: &Paths) -> bool {
    let open = |p: &Path, create: bool| {
        OpenOptions::new()
            .write(true)
            .create(create)
            .truncate(false)
            .open(p)
    };
    let denied = |e: &io::Error| {
        matches!(
            e.kind(),
            io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem
        )
    };
    !matches!(open(&paths.lock, true), Err(e) if denied(&e))
        && !matches!(open(&paths.db, false), Err(e) if denied(&e))
}

pub(crate) fn not_found(name: &str) -> Error {
    Error::CollectionNotFound {
        name: name.to_string(),
    }
}

impl SqliteStore {
    /// Opens (or, unless `options.read_only`, creates) the store in `dir`.
    ///
    /// Creates `dir` and its `index/` directory if missing and the database with
    /// its schema if new. Does not load any index: each collection's index is
    /// loaded (or rebuilt) on its first search or write. Does not take the write
    /// lock: the first write does (see [`lock_for_writing`](Self::lock_for_writing)).
    ///
    /// Errors: `dir` is a file, cannot be created or written, or holds a database
    /// that is not a lobster-vector store → `Error::Io` naming the path;
    /// `read_only` and no store in `dir` → `Error::Io` (not found).
    pub fn open(dir: &Path, options: SqliteOptions) -> Result<Self> {
        let paths = Paths::new(dir);
        match fs::metadata(dir) {
            Ok(m) if !m.is_dir() => {
                return Err(Error::io(
                    "open the store directory",
                    dir,
                    io::Error::new(
                        io::ErrorKind::NotADirectory,
                        "the path exists and is not a directory",
                    ),
                ))
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound && !options.read_only => {
                fs::create_dir_all(dir)
                    .map_err(|e| Error::io("create the store directory", dir, e))?;
            }
            Err(e) => return Err(Error::io("open the store directory", dir, e)),
        }
        let writer = if options.read_only {
            if !paths.db.is_file() {
                return Err(Error::io(
                    "open the store database (read-only stores are not created)",
                    &paths.db,
                    io::Error::new(io::ErrorKind::NotFound, "no store database here"),
                ));
            }
            None
        } else {
            fs::create_dir_all(&paths.index_dir)
                .map_err(|e| Error::io("create the index directory", &paths.index_dir, e))?;
            // Probes that the directory is writable before SQLite does.
            OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(&paths.lock)
                .map_err(|e| Error::io("create the write lock file", &paths.lock, e))?;
            let conn = schema::open_writer(&paths.db, options.busy_timeout)?;
            Some(Mutex::new(Writer { conn, lock: None }))
        };
        let mode = schema::read_mode(&paths.db, options.read_only)?;
        let readers = Pool::new(paths.db.clone(), options.busy_timeout, mode);
        if writer.is_none() {
            let conn = readers.get()?;
            schema::verify_existing(&conn, &paths.db)?;
        }
        Ok(Self {
            paths,
            options,
            readers,
            writer,
            slots: RwLock::new(HashMap::new()),
        })
    }

    /// Opens the store that exists in `dir`, read-only when its directory or
    /// database cannot be written (as if `options.read_only` were set): any
    /// number of readers may search a store they cannot change.
    ///
    /// Errors: no store database in `dir` → `Error::Io` (not found), nothing
    /// created; otherwise those of [`open`](Self::open).
    pub fn open_existing(dir: &Path, mut options: SqliteOptions) -> Result<Self> {
        let paths = Paths::new(dir);
        if !paths.db.is_file() {
            return Err(Error::io(
                "open the store",
                dir,
                io::Error::new(io::ErrorKind::NotFound, format!("no {DB_FILE} here")),
            ));
        }
        if !options.read_only && !writable(&paths) {
            tracing::debug!(path = %dir.display(), "the store cannot be written; opening it read-only");
            options.read_only = true;
        }
        Self::open(dir, options)
    }

    /// The store directory.
    pub fn path(&self) -> &Path {
        &self.paths.dir
    }

    /// The options the store was opened with.
    pub fn options(&self) -> &SqliteOptions {
        &self.options
    }

    /// Whether this store holds the write lock.
    pub fn holds_write_lock(&self) -> bool {
        self.writer.as_ref().is_some_and(|w| {
            w.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .lock
                .is_some()
        })
    }

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
    fn read_records(
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

    /// The writer, taking the cross-process lock on first use; `action` names
    /// the refused operation in the `ReadOnly` error of a read-only store.
    pub(crate) fn writer(&self, action: &'static str) -> Result<MutexGuard<'_, Writer>> {
        let Some(w) = &self.writer else {
            return Err(Error::ReadOnly {
                path: self.paths.dir.clone(),
                action,
            });
        };
        let mut g = w.lock().unwrap_or_else(PoisonError::into_inner);
        if g.lock.is_none() {
            let file = lobster_vector_core::lock::acquire(
                &self.paths.dir,
                &self.paths.lock,
                self.options.lock_timeout,
            )?;
            g.lock = Some(file);
            tracing::debug!(path = %self.paths.dir.display(), "took the store's write lock");
            self.sweep_temp_files();
        }
        Ok(g)
    }

    /// Removes `*.tmp` files a crashed save left behind.
    fn sweep_temp_files(&self) {
        let Ok(_lock) = index::save_lock(&self.paths.index_dir, index::SAVE_WAIT) else {
            return;
        };
        let Ok(entries) = fs::read_dir(&self.paths.index_dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "tmp") {
                if let Err(err) = fs::remove_file(&p) {
                    tracing::warn!(path = %p.display(), error = %err, "cannot remove a temporary index file");
                }
            }
        }
    }

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
    fn prepare(
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
    fn save_for_readers(&self, name: &str, slot: &Slot) {
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
    fn save_file(
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
    fn replay(
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
    fn stream_records(
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
    fn apply(&self, w: &mut Writer, name: &str, c: Committed) {
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

    fn apply_inner(
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

    /// Hits for the index's `(key, distance)` matches, nearest first: rows read
    /// in one query, keys no longer in SQLite dropped. (The index holds the
    /// same unit vectors as SQLite, so its distances are the stored vectors'.)
    fn fetch(&self, conn: &Connection, name: &str, matches: &[(u64, f32)]) -> Result<Vec<Hit>> {
        if matches.is_empty() {
            return Ok(Vec::new());
        }
        let db = &self.paths.db;
        let mut wanted = Vec::with_capacity(matches.len());
        for &(k, _) in matches {
            wanted.push(Value::Integer(
                i64::try_from(k).map_err(|_| corrupt(format!("index key {k} out of range")))?,
            ));
        }
        let wanted = Rc::new(wanted);
        let mut st = conn
            .prepare_cached(
                "SELECT rid, id, document, metadata FROM records \
                 WHERE rid IN rarray(?1) AND +collection = ?2",
            )
            .db(db)?;
        let mut rows = st.query(params![wanted, name]).db(db)?;
        let mut found: HashMap<u64, (String, Option<String>, Metadata)> =
            HashMap::with_capacity(matches.len());
        while let Some(r) = rows.next().db(db)? {
            let rid = key(r.get(0).db(db)?)?;
            let id: String = r.get(1).db(db)?;
            let document: Option<String> = r.get(2).db(db)?;
            let metadata = parse_metadata(r.get_ref(3).db(db)?.as_str().map_err(corrupt_col)?)?;
            found.insert(rid, (id, document, metadata));
        }
        Ok(matches
            .iter()
            .filter_map(|&(k, distance)| {
                let (id, document, metadata) = found.remove(&k)?;
                Some(Hit {
                    id,
                    distance,
                    document,
                    metadata,
                })
            })
            .collect())
    }

    /// One search attempt; `None` when hits vanished meanwhile (retry).
    fn search_once(
        &self,
        collection: &str,
        query: &[f32],
        k: usize,
        last_try: bool,
    ) -> Result<Option<Vec<Hit>>> {
        let conn = self.readers.get()?;
        let check = |row: &CollRow| match row.dimension {
            None => validate::vector("query vector", query),
            Some(d) => validate::query(query, d),
        };
        let (row, slot) = self.prepare(&conn, collection, &check)?;
        let Some(slot) = slot else {
            return Ok(Some(Vec::new()));
        };
        if k == 0 || row.record_count == 0 {
            return Ok(Some(Vec::new()));
        }
        let mut q = query.to_vec();
        normalize(&mut q);
        let matches = {
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
                return Ok(Some(Vec::new()));
            }
            l.search(&q, kk, n < self.options.exact_search_below)
        };
        let hits = self.fetch(&conn, collection, &matches)?;
        if hits.len() < matches.len() && !last_try {
            return Ok(None);
        }
        Ok(Some(hits))
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

fn error_index_unavailable(name: &str) -> Error {
    Error::backend(
        BACKEND,
        format!("the HNSW index of collection `{name}` could not be brought up to date"),
    )
}

fn corrupt_col(e: rusqlite::types::FromSqlError) -> Error {
    corrupt(format!("a column has the wrong type: {e}"))
}

fn parse_metadata(text: &str) -> Result<Metadata> {
    serde_json::from_str(text)
        .map_err(|e| corrupt(format!("stored metadata is not a JSON object: {e}")))
}

fn metadata_json(what: &str, m: &Metadata) -> Result<String> {
    serde_json::to_string(m)
        .map_err(|e| Error::invalid_input(format!("{what} cannot be serialised as JSON: {e}")))
}

impl VectorStore for SqliteStore {
    fn backend_name(&self) -> &'static str {
        BACKEND
    }

    /// One SQLite transaction (all or nothing, durable when this returns `Ok`),
    /// then the in-memory index. Takes the write lock on first use.
    fn upsert(&self, collection: &str, records: &[Record]) -> Result<()> {
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

    fn search(&self, collection: &str, query: &[f32], k: usize) -> Result<Vec<Hit>> {
        validate::collection_name(collection)?;
        for attempt in 0..3 {
            if let Some(hits) = self.search_once(collection, query, k, attempt == 2)? {
                return Ok(hits);
            }
        }
        Err(error_index_unavailable(collection))
    }

    /// One transaction; returns how many of `ids` existed. Takes the write lock on first use.
    fn delete(&self, collection: &str, ids: &[String]) -> Result<usize> {
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

    fn count(&self, collection: &str) -> Result<usize> {
        validate::collection_name(collection)?;
        let conn = self.readers.get()?;
        schema::read_row(&conn, &self.paths.db, collection)?
            .map(|r| r.record_count)
            .ok_or_else(|| not_found(collection))
    }

    fn has_collection(&self, collection: &str) -> Result<bool> {
        validate::collection_name(collection)?;
        let conn = self.readers.get()?;
        Ok(schema::read_row(&conn, &self.paths.db, collection)?.is_some())
    }

    fn list_collections(&self) -> Result<Vec<String>> {
        let db = &self.paths.db;
        let conn = self.readers.get()?;
        let mut st = conn
            .prepare_cached("SELECT name FROM collections ORDER BY name")
            .db(db)?;
        let names = st.query_map([], |r| r.get(0)).db(db)?;
        names.collect::<rusqlite::Result<Vec<String>>>().db(db)
    }

    /// Removes the collection's rows, tombstones and index files. Takes the write lock on first use.
    fn drop_collection(&self, collection: &str) -> Result<bool> {
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

    fn collection_info(&self, collection: &str) -> Result<CollectionInfo> {
        validate::collection_name(collection)?;
        let db = &self.paths.db;
        let conn = self.readers.get()?;
        let got: Option<(Option<i64>, i64, String)> = conn
            .prepare_cached(
                "SELECT dimension, record_count, metadata FROM collections WHERE name = ?1",
            )
            .db(db)?
            .query_row([collection], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()
            .db(db)?;
        let (dimension, count, metadata) = got.ok_or_else(|| not_found(collection))?;
        Ok(CollectionInfo {
            name: collection.to_string(),
            dimension: dimension.and_then(|d| usize::try_from(d).ok()),
            count: usize::try_from(count).unwrap_or(0),
            metadata: parse_metadata(&metadata)?,
        })
    }

    /// Stored in the `collections` row (durable when this returns). Takes the write lock on first use.
    fn set_collection_metadata(&self, collection: &str, metadata: Metadata) -> Result<()> {
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

    /// Records in the order they were last written (the order of the
    /// `records_by_seq` index), vectors as stored (L2-normalised); each page
    /// is read from one consistent snapshot.
    fn read_page(&self, collection: &str, offset: usize, limit: usize) -> Result<Vec<Record>> {
        let as_sql = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.read_records(
            collection,
            "SELECT id, document, metadata, vector FROM records \
             WHERE collection = ?1 ORDER BY seq, rid LIMIT ?2 OFFSET ?3",
            params![collection, as_sql(limit), as_sql(offset)],
        )
    }

    /// Takes the cross-process write lock now instead of on the first write
    /// (waiting up to `lock_timeout`), so a long ingest fails fast when another
    /// process writes. The lock is held until the store is dropped.
    ///
    /// Errors: `StoreLocked` when another writer holds it; `ReadOnly` for a
    /// read-only store.
    fn lock_for_writing(&self) -> Result<()> {
        self.writer("take the write lock").map(|_| ())
    }

    /// Every acknowledged write is already durable in SQLite; `flush` also saves
    /// the changed index files (only in the process holding the write lock).
    fn flush(&self) -> Result<()> {
        let Some(w) = &self.writer else {
            return Ok(());
        };
        let mut g = w.lock().unwrap_or_else(PoisonError::into_inner);
        if g.lock.is_none() {
            return Ok(());
        }
        self.save_all(&mut g)
    }
}

impl Drop for SqliteStore {
    /// Saves the changed index files if this store holds the write lock (errors are logged).
    fn drop(&mut self) {
        if let Some(w) = &self.writer {
            let mut g = w.lock().unwrap_or_else(PoisonError::into_inner);
            if g.lock.is_some() {
                if let Err(e) = self.save_all(&mut g) {
                    tracing::warn!(error = %e, "saving index files on close failed");
                }
            }
        }
    }
}

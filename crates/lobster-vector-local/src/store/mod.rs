//! [`LocalStore`]: open, the write lock, and the `VectorStore` implementation
//! over its reads (`read`), writes (`write`) and index upkeep (`sync`).

mod read;
mod sync;
mod write;

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use lobster_vector_core::{
    validate, CollectionInfo, Error, Hit, Metadata, Record, Result, VectorStore,
};
use rusqlite::{params, Connection, OptionalExtension};

use crate::error::SqlExt;
use crate::index::{self, Slot};
use crate::options::LocalOptions;
use crate::pool::Pool;
use crate::schema;
use crate::{BACKEND, DB_FILE, INDEX_DIR, LOCK_FILE};
use read::parse_metadata;

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

/// The embedded persistent vector store (backend `local`).
///
/// See the [crate documentation](crate) for the layout, the durability
/// guarantee (an acknowledged write survives power loss), sequence numbers and
/// replay, and concurrency. All methods take `&self`; the store is `Send + Sync`
/// and meant to be shared (`Arc<dyn VectorStore>`).
#[derive(Debug)]
pub struct LocalStore {
    pub(crate) paths: Paths,
    pub(crate) options: LocalOptions,
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

impl LocalStore {
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
    pub fn open(dir: &Path, options: LocalOptions) -> Result<Self> {
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
    pub fn open_existing(dir: &Path, mut options: LocalOptions) -> Result<Self> {
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
    pub fn options(&self) -> &LocalOptions {
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
}

impl VectorStore for LocalStore {
    fn backend_name(&self) -> &'static str {
        BACKEND
    }

    /// One SQLite transaction (all or nothing, durable when this returns `Ok`),
    /// then the in-memory index. Takes the write lock on first use.
    fn upsert(&self, collection: &str, records: &[Record]) -> Result<()> {
        self.commit_upsert(collection, records)
    }

    fn search(&self, collection: &str, query: &[f32], k: usize) -> Result<Vec<Hit>> {
        let mut hits = self.search_retrying(collection, &[query], k)?;
        Ok(hits.pop().unwrap_or_default())
    }

    /// One read transaction, one read of the index and one fetch of rows for
    /// the whole batch.
    fn search_batch(
        &self,
        collection: &str,
        queries: &[&[f32]],
        k: usize,
    ) -> Result<Vec<Vec<Hit>>> {
        self.search_retrying(collection, queries, k)
    }

    /// One transaction; returns how many of `ids` existed. Takes the write lock on first use.
    fn delete(&self, collection: &str, ids: &[String]) -> Result<usize> {
        self.commit_delete(collection, ids)
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
        self.commit_drop(collection)
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
        self.commit_metadata(collection, metadata)
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

impl Drop for LocalStore {
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

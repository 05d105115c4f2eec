//! The embedded persistent vector store of lobster-vector (backend `local`, the
//! default): SQLite is the log and the source of truth, one HNSW index file per
//! collection (an HNSW graph over the stored unit vectors, distance `1 − dot`,
//! walked on 8-bit codes of the vectors and ranked exactly on their `f32`
//! values; module `hnsw`) is derived from it.
//!
//! # Layout
//!
//! ```text
//! <dir>/store.sqlite3                  SQLite (WAL, synchronous=FULL): collections, records, tombstones
//! <dir>/index/<collection>.hnsw       HNSW index of the collection (derived, disposable)
//! <dir>/index/<collection>.hnsw.meta  JSON sidecar: which SQLite state the index file reflects
//! <dir>/index/save.lock               `flock`ed by whoever writes or removes index files
//! <dir>/write.lock                     `flock`ed by the one writer process
//! ```
//!
//! # Durability
//!
//! Every write (`upsert`, `delete`, `drop_collection`, `set_collection_metadata`)
//! is one SQLite transaction: a batch is all or nothing. The database runs in WAL
//! mode with `synchronous=FULL`, so the WAL is fsynced before a commit returns:
//! **a write that was acknowledged (returned `Ok`) survives a process crash and
//! power loss** (given a disk that honours fsync). Index files are only a cache:
//! losing or corrupting one costs a rebuild, never data.
//!
//! # Sequence numbers, replay and the index file format
//!
//! * The store keeps one global counter `seq` (table `store_meta`). Every write
//!   transaction takes the next value; every record row it inserts carries that
//!   `seq`, and every record row it removes (delete, or overwrite of an existing
//!   id) leaves a row `(collection, seq, rid)` in the `tombstones` table.
//! * A record row's `rid` (`INTEGER PRIMARY KEY AUTOINCREMENT`) is its index
//!   key. An overwrite deletes the old row and inserts a new one, so a key is
//!   never reused and a key always denotes the same vector. Replaying a range of
//!   `seq` is therefore idempotent: mark tombstoned keys that are present as
//!   deleted, add record keys that are absent.
//! * Deletes are authoritative in SQLite. In the HNSW graph a deleted key stays
//!   as a routing node, flagged dead and filtered out of every search (the
//!   graph around it stays as it was built, so recall does not suffer); once
//!   dead entries pass a quarter of the graph it is rebuilt from SQLite.
//!   Search results are read back from SQLite by key, so a deleted id is never
//!   returned even by an index that is behind.
//! * Each collection row holds `incarnation` (the `seq` that created it — a
//!   dropped and re-created collection gets a new one), `last_seq` (the last
//!   write that touched its records), `record_count` and `tombstone_floor`
//!   (tombstones at or below it have been pruned).
//! * Records keep their vector L2-normalised, as a little-endian `f32` blob.
//! * The index file `<c>.hnsw` is the graph's own format (header, keys,
//!   levels, upper-level links, codes, vectors, level-0 links; see `hnsw::file`);
//!   the sidecar `<c>.hnsw.meta` is JSON `{format, collection, incarnation,
//!   seq, count, dead, dimension, bytes, xxh3, connectivity}`. Both are
//!   written to temporary files and fsynced, renamed into place (index first),
//!   and the directory is fsynced last. An index file is used only if its sidecar parses, names the same
//!   collection incarnation and dimension, its `seq` lies between the
//!   collection's `tombstone_floor` and `last_seq`, and the file's length and
//!   XXH3-64 checksum match; after loading, the records with a later `seq` are
//!   replayed and the entry count must equal SQLite's. Anything else — missing,
//!   stale beyond the pruned tombstones, truncated, garbage, from another
//!   incarnation, newer than the database (a restored backup) — is rebuilt from
//!   SQLite with a `tracing` warning. A crash between the two renames leaves a
//!   checksum mismatch, hence a rebuild, never a wrong index.
//! * Index files are saved on
//!   [`VectorStore::flush`](lobster_vector_core::VectorStore::flush), when the store is dropped,
//!   after every [`LocalOptions::autosave_every`] changed vectors, and by
//!   [`LocalStore::compact`], in the process holding the write lock, which
//!   then prunes that collection's tombstones up to the saved `seq`. A reader
//!   that had to rebuild an index (missing, damaged or stale file) saves it
//!   too, while the collection is unchanged and no other save runs, so the
//!   next process loads it instead of rebuilding again; it never prunes.
//!   Every save, removal and sweep of index files holds `index/save.lock`. A
//!   read-only store never saves: it warns once per collection instead.
//!
//! # Opening
//!
//! [`LocalStore::open`] reads no index. A collection's index is made ready on
//! its first search or write: a valid index file is memory-mapped (after its
//! checksum and its links are verified) and its vectors and level-0 links are
//! searched in place — no vector is re-read from SQLite or copied — then newer
//! writes are replayed; the first addition copies the mapped index into memory.
//! Index files of earlier versions (`<c>.usearch`) are ignored (the index is
//! rebuilt from SQLite) and removed by `compact`.
//!
//! # Reads, writes and concurrency
//!
//! * Any number of threads and processes may read. Before every search the store
//!   reads the collection row (one indexed lookup); if its in-memory index is
//!   behind `last_seq` it replays the newer rows first, so a search sees every
//!   batch committed before it started — and only committed batches.
//! * One process writes at a time: the first write (or
//!   [`VectorStore::lock_for_writing`](lobster_vector_core::VectorStore::lock_for_writing)) takes an exclusive `flock` on
//!   `<dir>/write.lock` and keeps it until the store is dropped. A second writer
//!   waits up to [`LocalOptions::lock_timeout`] and then gets
//!   [`Error::StoreLocked`](lobster_vector_core::Error::StoreLocked). Stores
//!   opened [`read_only`](LocalOptions::read_only) never take the lock, create
//!   no file of their own and refuse writes; their connections open the database
//!   read-only, or `immutable` when its directory cannot be written.
//!   [`LocalStore::open_existing`] opens a store read-only by itself when this
//!   process cannot write it. SQLite's `busy_timeout` covers the short locks
//!   SQLite itself takes (checkpoints, backups).
//! * Inside a process, the HNSW index of each collection sits behind an
//!   `RwLock`: searches share it, adds and removes take it exclusively, after
//!   the SQLite commit. Small batches are linked into the graph by one thread;
//!   batches of 2,048 vectors or more by [`HnswParams::build_threads`] threads
//!   (default: the cores, at most 4) with per-node lock stripes. Pruning full
//!   link lists can leave a node that no list links to (more often after
//!   concurrent inserts of near-duplicates); after every insertion such nodes
//!   are found with one pass over the level-0 lists and linked again.
//! * A search asks the graph for `min(k, count)` neighbours with a candidate
//!   list of `max(ef_search, k)`; collections of fewer than
//!   [`LocalOptions::exact_search_below`] vectors are scanned exactly instead.
//!   The hits' ids, documents and metadata are then read from SQLite in one
//!   query; a key no longer in SQLite (deleted meanwhile) is dropped. The
//!   graph holds the same unit vectors as SQLite and scores them with the
//!   same kernel as [`FlatStore`](lobster_vector_core::FlatStore) (the
//!   returned candidates are ranked exactly), so distances agree with it to
//!   float rounding.
//!
//! # Maintenance
//!
//! [`LocalStore::check`] (integrity check and index/SQLite agreement),
//! [`LocalStore::compact`] (index rebuild, tombstone pruning, `VACUUM`) and
//! [`LocalStore::backup`] (an online, consistent copy while writes go on).

mod error;
mod hnsw;
mod index;
mod maintenance;
mod options;
mod pool;
mod schema;
mod store;

pub use maintenance::{BackupReport, CheckReport, CollectionCheck, CompactReport, IndexFileStatus};
pub use options::{HnswParams, LocalOptions, PARALLEL_SEARCH_MIN};
pub use store::LocalStore;

/// The backend name this store answers to in configuration (`LOBSTER_VECTOR_BACKEND`).
pub const BACKEND: &str = "local";

/// File name of the SQLite database inside the store directory.
pub const DB_FILE: &str = "store.sqlite3";

/// Name of the directory holding the index files inside the store directory.
pub const INDEX_DIR: &str = "index";

/// File name of the writer's lock file inside the store directory.
pub const LOCK_FILE: &str = "write.lock";

/// Fault injection for crash tests (not part of the API).
#[doc(hidden)]
pub mod fault {
    use std::sync::atomic::{AtomicU8, Ordering};

    static ABORT_AT: AtomicU8 = AtomicU8::new(0);

    /// Makes the next index save abort the process at `stage`: 1 after writing
    /// the temporary index file, 2 after writing the temporary sidecar, 3 after
    /// renaming the index file, 4 after renaming the sidecar. 0 disarms.
    pub fn abort_in_index_save(stage: u8) {
        ABORT_AT.store(stage, Ordering::SeqCst);
    }

    pub(crate) fn point(stage: u8) {
        if ABORT_AT.load(Ordering::Relaxed) == stage {
            std::process::abort();
        }
    }
}

//! Options of [`LocalStore::open`](crate::LocalStore::open).

use std::time::Duration;

/// HNSW graph parameters of the per-collection index.
///
/// `m` and `ef_construction` apply to indexes built from now on (an index
/// loaded from disk keeps the connectivity it was built with until
/// [`compact`](crate::LocalStore::compact) rebuilds it); `ef_search` applies
/// to every search.
///
/// The defaults were chosen on MiniLM embeddings of all MONDO labels (27,990
/// vectors, 1,000 held-out synonym queries, k = 20, two build threads):
/// recall@20 0.987 (hnswlib with its usual `M = 16, ef_construction = 200,
/// ef = 64`: 0.983) at about 0.22 ms per query including documents and
/// metadata, about hnswlib's own time (`lobster-vector-bench local`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HnswParams {
    /// Links per node on the upper levels (`M`); level 0 keeps `2m`. Default 20.
    pub m: usize,
    /// Size of the candidate list while inserting. Default 150.
    pub ef_construction: usize,
    /// Size of the candidate list while searching; a search for `k` neighbours
    /// uses `max(ef_search, k)`. Default 80.
    pub ef_search: usize,
    /// Threads that link a large batch (2,048 vectors or more) into the graph
    /// concurrently. Default: the available cores, at most 4. On cores shared
    /// with other busy processes one thread can be as fast: set 1 there.
    pub build_threads: usize,
    /// Threads that answer one `search_batch` of [`PARALLEL_SEARCH_MIN`]
    /// queries or more (each thread a share of the queries, over the same
    /// snapshot). Default: the available cores, at most 4; 1 searches
    /// serially.
    pub search_threads: usize,
}

impl Default for HnswParams {
    fn default() -> Self {
        Self {
            m: 20,
            ef_construction: 150,
            ef_search: 80,
            build_threads: default_threads(),
            search_threads: default_threads(),
        }
    }
}

/// Batches of searches smaller than this are answered by one thread: a
/// thread's start costs about as much as a few searches.
pub const PARALLEL_SEARCH_MIN: usize = 32;

fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
}

/// How to open a [`LocalStore`](crate::LocalStore).
///
/// ```
/// # use lobster_vector_local::LocalOptions;
/// let readonly = LocalOptions { read_only: true, ..LocalOptions::default() };
/// # let _ = readonly;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalOptions {
    /// Open for reading only: the directory and database must already exist, the
    /// write lock is never taken, no file of the store's own is created (SQLite
    /// may keep its WAL shared-memory file), writes fail with
    /// `Error::ReadOnly`, and index files are never written (indexes rebuilt or
    /// replayed stay in memory). In a directory that cannot be written the
    /// database is opened `immutable`.
    pub read_only: bool,
    /// How long the first write waits for another process's write lock before
    /// failing with `StoreLocked`. Zero (the default) fails at once.
    pub lock_timeout: Duration,
    /// SQLite `busy_timeout` for every connection. Default 10 s.
    pub busy_timeout: Duration,
    /// HNSW parameters.
    pub hnsw: HnswParams,
    /// Collections with fewer vectors than this are searched exactly (a
    /// brute-force scan, exact ordering) instead of through the HNSW graph.
    /// Default 2,000 (a scan of 2,000 × 384 floats takes about 0.1 ms).
    pub exact_search_below: usize,
    /// Save a collection's index file once this many vectors were added or
    /// removed since its last save. Default 50,000.
    pub autosave_every: usize,
}

impl Default for LocalOptions {
    fn default() -> Self {
        Self {
            read_only: false,
            lock_timeout: Duration::ZERO,
            busy_timeout: Duration::from_secs(10),
            hnsw: HnswParams::default(),
            exact_search_below: 2_000,
            autosave_every: 50_000,
        }
    }
}

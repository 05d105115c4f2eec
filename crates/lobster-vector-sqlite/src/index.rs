//! The in-memory HNSW index of one collection and its files on disk.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, PoisonError, RwLock};

use lobster_vector_core::{Error, Result};
use memmap2::Mmap;
use serde::{Deserialize, Serialize};
use usearch::ffi::Matches;
use usearch::{Index, IndexOptions, MetricKind, ScalarKind};

use crate::error;
use crate::fault;
use crate::options::HnswParams;
use crate::schema::CollRow;

/// usearch thread contexts per index: concurrent searches are limited to this
/// (see [`Permits`]).
pub(crate) const CONTEXTS: usize = 16;

/// Version of the sidecar format.
const META_FORMAT: u32 = 2;

/// Batches smaller than this are inserted into the graph by one thread.
const PARALLEL_MIN: usize = 2_048;

/// The first entries of a graph are always inserted by one thread, so
/// concurrent inserts start from a well-connected graph.
const SEQUENTIAL_PREFIX: usize = 1_024;

/// Neighbours a new entry asks for when checking that it reaches itself.
const SELF_CHECK_K: usize = 10;

/// Candidate list of those self-checks: small, since an entry that is
/// reachable at all is found at distance 0 almost at once, and a miss only
/// costs one needless re-insert.
const SELF_CHECK_EF: usize = 16;

/// Dead entries beyond which the graph is rebuilt from SQLite: more than this
/// many and more than a quarter of all entries.
const REBUILD_DEAD_MIN: usize = 1_024;

/// The sidecar `<collection>.usearch.meta`: which SQLite state the index file reflects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct IndexMeta {
    pub format: u32,
    pub collection: String,
    pub incarnation: i64,
    /// Every change with a sequence number up to this one is in the file; none after it.
    pub seq: i64,
    /// Live entries (the file also holds the `dead` ones).
    pub count: u64,
    /// Keys deleted since the graph was built: kept as graph nodes, never returned.
    #[serde(default)]
    pub dead: Vec<u64>,
    pub dimension: u64,
    /// Length of the index file in bytes.
    pub bytes: u64,
    /// XXH3-64 of the index file, 16 hex digits.
    pub xxh3: String,
    pub connectivity: u64,
    pub usearch_version: String,
}

/// A collection's HNSW index and the SQLite state it reflects.
///
/// Deleted keys are not removed from the usearch graph: usearch would reuse
/// their slots for later additions while old edges still point at them, which
/// measurably lowers recall. They are kept as routing nodes in `dead` and
/// filtered out of results; once they are more than a quarter of the graph it
/// is rebuilt from SQLite (and `compact` always rebuilds).
pub(crate) struct LiveIndex {
    pub incarnation: i64,
    pub dim: usize,
    /// Every change with a sequence number up to this one is applied.
    pub seq: i64,
    /// `seq` of the index file on disk that is known to equal this index, if any.
    pub saved_seq: Option<i64>,
    /// Vectors added or removed since the last save.
    pub unsaved: usize,
    /// Deleted keys still in the graph.
    pub dead: HashSet<u64>,
    pub index: Index,
    /// Threads inserting large batches (see [`HnswParams::build_threads`]).
    build_threads: usize,
    /// The index file `index` is a read-only view of (memory-mapped), until the
    /// first addition copies it into memory. Declared after `index`, so it is
    /// dropped after it.
    map: Option<Mmap>,
}

impl std::fmt::Debug for LiveIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveIndex")
            .field("incarnation", &self.incarnation)
            .field("dim", &self.dim)
            .field("seq", &self.seq)
            .field("saved_seq", &self.saved_seq)
            .field("unsaved", &self.unsaved)
            .field("dead", &self.dead.len())
            .field("size", &self.index.size())
            .finish()
    }
}

impl LiveIndex {
    /// An empty index for a collection incarnation, at sequence `seq`.
    pub fn empty(
        name: &str,
        incarnation: i64,
        dim: usize,
        seq: i64,
        params: &HnswParams,
        capacity: usize,
    ) -> Result<Self> {
        let options = IndexOptions {
            dimensions: dim,
            metric: MetricKind::IP,
            quantization: ScalarKind::F32,
            connectivity: params.m,
            expansion_add: params.ef_construction,
            expansion_search: params.ef_search,
            multi: false,
        };
        let index = Index::new(&options).map_err(|e| error::index(name, "create", e))?;
        index
            .reserve_capacity_and_threads(capacity.max(64), CONTEXTS)
            .map_err(|e| error::index(name, "reserve", e))?;
        Ok(Self {
            incarnation,
            dim,
            seq,
            saved_seq: None,
            unsaved: 0,
            dead: HashSet::new(),
            index,
            build_threads: params.build_threads,
            map: None,
        })
    }

    /// Whether the index is still a read-only view of its file.
    pub fn is_view(&self) -> bool {
        self.map.is_some()
    }

    /// Copies a viewed index into memory so it can change.
    pub fn make_mutable(&mut self, name: &str, params: &HnswParams) -> Result<()> {
        let Some(map) = &self.map else {
            return Ok(());
        };
        let fail = |e: &dyn std::fmt::Display| error::index(name, "copy the mapped index", e);
        let head = Index::metadata_from_buffer(map).map_err(|e| fail(&e))?;
        let index = Index::new(&head.into()).map_err(|e| fail(&e))?;
        index
            .reserve_capacity_and_threads(64, CONTEXTS)
            .map_err(|e| fail(&e))?;
        index.load_from_buffer(map).map_err(|e| fail(&e))?;
        index.change_expansion_add(params.ef_construction);
        index.change_expansion_search(params.ef_search);
        index
            .reserve_capacity_and_threads(index.size().max(64), CONTEXTS)
            .map_err(|e| fail(&e))?;
        // The view is dropped before the mapping it reads.
        self.index = index;
        self.map = None;
        Ok(())
    }

    /// Live entries (deleted ones excluded).
    pub fn size(&self) -> usize {
        self.index.size().saturating_sub(self.dead.len())
    }

    /// Whether `key` is a live entry.
    pub fn is_live(&self, key: u64) -> bool {
        self.index.contains(key) && !self.dead.contains(&key)
    }

    /// Whether enough entries are dead to rebuild the graph.
    pub fn needs_rebuild(&self) -> bool {
        self.dead.len() > REBUILD_DEAD_MIN && self.dead.len() * 4 > self.index.size()
    }

    /// The `k` nearest live entries: exact scan or HNSW search.
    pub fn search(&self, name: &str, q: &[f32], k: usize, exact: bool) -> Result<Matches> {
        let fail = |e: &dyn std::fmt::Display| error::index(name, "search", e);
        if self.dead.is_empty() {
            return if exact {
                self.index.exact_search(q, k).map_err(|e| fail(&e))
            } else {
                self.index.search(q, k).map_err(|e| fail(&e))
            };
        }
        if exact {
            let want = (k + self.dead.len()).min(self.index.size());
            let m = self.index.exact_search(q, want).map_err(|e| fail(&e))?;
            let (mut keys, mut distances) = (Vec::with_capacity(k), Vec::with_capacity(k));
            for (key, d) in m.keys.into_iter().zip(m.distances) {
                if keys.len() < k && !self.dead.contains(&key) {
                    keys.push(key);
                    distances.push(d);
                }
            }
            return Ok(Matches { keys, distances });
        }
        let dead = &self.dead;
        self.index
            .filtered_search(q, k, |key| !dead.contains(&key))
            .map_err(|e| fail(&e))
    }

    fn reserve_for(&self, name: &str, extra: usize) -> Result<()> {
        let need = self.index.size() + extra;
        let cap = self.index.capacity();
        if need > cap {
            let new_cap = need.max(cap.saturating_mul(2)).max(64);
            self.index
                .reserve_capacity_and_threads(new_cap, CONTEXTS)
                .map_err(|e| error::index(name, "reserve", e))?;
        }
        Ok(())
    }

    /// Marks live keys dead; returns how many were live.
    pub fn remove(&mut self, keys: &[u64]) -> usize {
        let mut n = 0;
        for &k in keys {
            if self.index.contains(k) && self.dead.insert(k) {
                n += 1;
            }
        }
        self.unsaved += n;
        n
    }

    /// Adds `(key, unit vector)` pairs whose keys are absent.
    pub fn add(&mut self, name: &str, items: &[(u64, Vec<f32>)]) -> Result<usize> {
        if items.is_empty() {
            return Ok(0);
        }
        if self.is_view() {
            let params = HnswParams {
                m: self.index.connectivity(),
                ef_construction: self.index.expansion_add(),
                ef_search: self.index.expansion_search(),
                build_threads: self.build_threads,
            };
            self.make_mutable(name, &params)?;
        }
        let fresh: Vec<&(u64, Vec<f32>)> = items
            .iter()
            .filter(|(k, v)| v.len() == self.dim && !self.index.contains(*k))
            .collect();
        if let Some((k, v)) = items.iter().find(|(_, v)| v.len() != self.dim) {
            return Err(error::corrupt(format!(
                "record key {k} of collection `{name}` has {} floats, the index {}",
                v.len(),
                self.dim
            )));
        }
        self.reserve_for(name, fresh.len())?;
        self.insert(name, &fresh)?;
        self.unsaved += fresh.len();
        Ok(fresh.len())
    }

    /// Inserts absent keys: the first [`SEQUENTIAL_PREFIX`] entries of the graph
    /// and small batches by this thread, large batches by `build_threads`
    /// threads followed by [`repair`](Self::repair).
    fn insert(&self, name: &str, items: &[&(u64, Vec<f32>)]) -> Result<()> {
        let add = |(k, v): &(u64, Vec<f32>)| {
            self.index
                .add(*k, v)
                .map_err(|e| error::index(name, "add", e))
        };
        let prefix = SEQUENTIAL_PREFIX
            .saturating_sub(self.index.size())
            .min(items.len());
        let (head, tail) = items.split_at(prefix);
        head.iter().try_for_each(|item| add(item))?;
        let threads = self.build_threads.clamp(1, CONTEXTS);
        if threads == 1 || tail.len() < PARALLEL_MIN {
            return tail.iter().try_for_each(|item| add(item));
        }
        let chunk = tail.len().div_ceil(threads);
        std::thread::scope(|s| {
            let workers: Vec<_> = tail
                .chunks(chunk)
                .map(|part| s.spawn(move || part.iter().try_for_each(|item| add(item))))
                .collect();
            workers.into_iter().try_for_each(|w| {
                w.join()
                    .map_err(|_| error::index(name, "add", "an insert thread panicked"))?
            })
        })?;
        self.repair(name, tail).map(|_| ())
    }

    /// Concurrent usearch inserts can leave an entry stored but unreachable by
    /// search (usearch issue #735). Every entry of `items` searches for its own
    /// vector (in parallel); those not among the nearest [`SELF_CHECK_K`] are
    /// removed and inserted again by this thread. Returns how many were.
    fn repair(&self, name: &str, items: &[&(u64, Vec<f32>)]) -> Result<usize> {
        let k = SELF_CHECK_K.min(self.index.size());
        let threads = self.build_threads.clamp(1, CONTEXTS);
        let chunk = items.len().div_ceil(threads).max(1);
        // The caller holds the index exclusively: no search sees this ef.
        let ef = self.index.expansion_search();
        self.index.change_expansion_search(SELF_CHECK_EF);
        let lost = std::thread::scope(|s| {
            let workers: Vec<_> = items
                .chunks(chunk)
                .map(|part| {
                    s.spawn(move || {
                        let mut lost = Vec::new();
                        for item in part {
                            let m = self
                                .index
                                .search(&item.1, k)
                                .map_err(|e| error::index(name, "search", e))?;
                            if !m.keys.contains(&item.0) {
                                lost.push(*item);
                            }
                        }
                        Ok::<_, Error>(lost)
                    })
                })
                .collect();
            let mut all = Vec::new();
            for w in workers {
                all.extend(
                    w.join()
                        .map_err(|_| error::index(name, "search", "a check thread panicked"))??,
                );
            }
            Ok::<_, Error>(all)
        });
        self.index.change_expansion_search(ef);
        let lost: Vec<&(u64, Vec<f32>)> = lost?;
        for (key, v) in &lost {
            self.index
                .remove(*key)
                .map_err(|e| error::index(name, "remove", e))?;
            self.index
                .add(*key, v)
                .map_err(|e| error::index(name, "add", e))?;
        }
        if !lost.is_empty() {
            tracing::debug!(
                collection = name,
                reinserted = lost.len(),
                checked = items.len(),
                "re-inserted entries a concurrent insert left unreachable"
            );
        }
        Ok(lost.len())
    }
}

/// Why an index file was not used.
#[derive(Debug)]
pub(crate) enum LoadFailure {
    /// No sidecar: never saved (or dropped).
    Absent,
    /// Present but unusable; the reason is for the log and `check`.
    Invalid(String),
}

pub(crate) fn index_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.usearch"))
}

pub(crate) fn meta_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.usearch.meta"))
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".tmp");
    PathBuf::from(s)
}

/// Reads and checks the sidecar against the collection row (no index bytes read).
pub(crate) fn read_meta(
    dir: &Path,
    name: &str,
    row: &CollRow,
) -> std::result::Result<IndexMeta, LoadFailure> {
    let path = meta_path(dir, name);
    let text = match fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(LoadFailure::Absent),
        Err(e) => {
            return Err(LoadFailure::Invalid(format!(
                "cannot read the sidecar: {e}"
            )))
        }
    };
    let meta: IndexMeta = serde_json::from_slice(&text)
        .map_err(|e| LoadFailure::Invalid(format!("the sidecar does not parse: {e}")))?;
    let invalid = |why: String| Err(LoadFailure::Invalid(why));
    if meta.format != META_FORMAT {
        return invalid(format!("sidecar format {} is unknown", meta.format));
    }
    if meta.collection != name || meta.incarnation != row.incarnation {
        return invalid(format!(
            "the file belongs to collection `{}` incarnation {}, not incarnation {} \
             (a dropped and re-created collection?)",
            meta.collection, meta.incarnation, row.incarnation
        ));
    }
    if Some(meta.dimension) != row.dimension.map(|d| d as u64) {
        return invalid(format!(
            "the file holds {}-d vectors, the collection {:?}",
            meta.dimension, row.dimension
        ));
    }
    if meta.seq > row.last_seq {
        return invalid(format!(
            "the file reflects sequence {} but the database only reaches {} \
             (database restored from an older copy?)",
            meta.seq, row.last_seq
        ));
    }
    if meta.seq < row.tombstone_floor {
        return invalid(format!(
            "the file reflects sequence {}, older than the deletions kept since {}",
            meta.seq, row.tombstone_floor
        ));
    }
    Ok(meta)
}

/// Maps the index file and checks it against its sidecar (length, checksum)
/// and the sidecar against the collection row. Returns both.
pub(crate) fn verify(
    dir: &Path,
    name: &str,
    row: &CollRow,
) -> std::result::Result<(IndexMeta, Mmap), LoadFailure> {
    let meta = read_meta(dir, name, row)?;
    let invalid = LoadFailure::Invalid;
    let file = File::open(index_path(dir, name))
        .map_err(|e| invalid(format!("cannot open the index file: {e}")))?;
    // SAFETY: the store never modifies an index file in place: saves write a
    // new file and rename it over the old one, so an existing mapping keeps
    // reading the old, unchanged file. (Editing the file in place behind the
    // store's back is not supported.)
    let bytes = unsafe { Mmap::map(&file) }
        .map_err(|e| invalid(format!("cannot map the index file: {e}")))?;
    if bytes.len() as u64 != meta.bytes {
        return Err(invalid(format!(
            "the index file has {} bytes, its sidecar says {} (truncated?)",
            bytes.len(),
            meta.bytes
        )));
    }
    let hash = format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&bytes));
    if hash != meta.xxh3 {
        return Err(invalid(format!(
            "the index file's checksum {hash} differs from its sidecar's {}",
            meta.xxh3
        )));
    }
    Ok((meta, bytes))
}

/// Loads the index file if it matches its sidecar and the collection row.
pub(crate) fn load(
    dir: &Path,
    name: &str,
    row: &CollRow,
    params: &HnswParams,
) -> std::result::Result<LiveIndex, LoadFailure> {
    let (meta, bytes) = verify(dir, name, row)?;
    let dim = row.dimension.unwrap_or(0);
    let invalid = LoadFailure::Invalid;
    let head = Index::metadata_from_buffer(&bytes)
        .map_err(|e| invalid(format!("usearch cannot read the header: {e}")))?;
    if head.dimensions != meta.dimension
        || head.metric != MetricKind::IP
        || head.quantization != ScalarKind::F32
        || head.multi
        || head.count_present != meta.count + meta.dead.len() as u64
    {
        return Err(invalid(format!(
            "the index header ({head:?}) does not match the sidecar"
        )));
    }
    let index =
        Index::new(&head.into()).map_err(|e| invalid(format!("usearch cannot create: {e}")))?;
    // Thread contexts first: `view` keeps the ones reserved before it.
    index
        .reserve_capacity_and_threads(64, CONTEXTS)
        .map_err(|e| invalid(format!("usearch cannot reserve: {e}")))?;
    // SAFETY: `bytes` (the mapping) moves into the returned `LiveIndex`, which
    // drops the view before the mapping (field order), and the mapping does not
    // change meanwhile (see `verify`).
    unsafe { index.view_from_buffer(&bytes) }
        .map_err(|e| invalid(format!("usearch cannot view: {e}")))?;
    let dead: HashSet<u64> = meta.dead.iter().copied().collect();
    if dead.len() != meta.dead.len() || !dead.iter().all(|k| index.contains(*k)) {
        return Err(invalid(
            "the sidecar's deleted keys do not match the index".into(),
        ));
    }
    if index.size() as u64 != meta.count + dead.len() as u64 || index.dimensions() != dim {
        return Err(invalid(format!(
            "the loaded index holds {} {}-d vectors, the sidecar says {} live + {} deleted {}-d",
            index.size(),
            index.dimensions(),
            meta.count,
            dead.len(),
            meta.dimension
        )));
    }
    index.change_expansion_add(params.ef_construction);
    index.change_expansion_search(params.ef_search);
    Ok(LiveIndex {
        incarnation: row.incarnation,
        dim,
        seq: meta.seq,
        saved_seq: Some(meta.seq),
        unsaved: 0,
        dead,
        index,
        build_threads: params.build_threads,
        map: Some(bytes),
    })
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = File::create(path).map_err(|e| Error::io("create", path, e))?;
    f.write_all(bytes)
        .map_err(|e| Error::io("write", path, e))?;
    f.sync_all().map_err(|e| Error::io("fsync", path, e))
}

/// fsyncs a directory so renames inside it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("fsync directory", dir, e))
}

/// Saves `live` as `<dir>/<name>.usearch` plus sidecar, atomically (temp file,
/// fsync, rename, fsync the directory). Returns the sidecar written.
pub(crate) fn save(dir: &Path, name: &str, live: &LiveIndex) -> Result<IndexMeta> {
    let serialised;
    let bytes: &[u8] = match &live.map {
        // A view is its file's bytes, unchanged (deletions live in the sidecar).
        Some(map) => map,
        None => {
            let mut buf = vec![0u8; live.index.serialized_length()];
            live.index
                .save_to_buffer(&mut buf)
                .map_err(|e| error::index(name, "serialise", e))?;
            serialised = buf;
            &serialised
        }
    };
    let len = bytes.len();
    let meta = IndexMeta {
        format: META_FORMAT,
        collection: name.to_string(),
        incarnation: live.incarnation,
        seq: live.seq,
        count: live.size() as u64,
        dead: {
            let mut d: Vec<u64> = live.dead.iter().copied().collect();
            d.sort_unstable();
            d
        },
        dimension: live.dim as u64,
        bytes: len as u64,
        xxh3: format!("{:016x}", xxhash_rust::xxh3::xxh3_64(bytes)),
        connectivity: live.index.connectivity() as u64,
        usearch_version: usearch::version().to_string(),
    };
    let json = serde_json::to_vec_pretty(&meta)
        .map_err(|e| error::index(name, "describe the index file", e))?;
    let (ipath, mpath) = (index_path(dir, name), meta_path(dir, name));
    let (itmp, mtmp) = (tmp_path(&ipath), tmp_path(&mpath));
    write_synced(&itmp, bytes)?;
    fault::point(1);
    write_synced(&mtmp, &json)?;
    fault::point(2);
    fs::rename(&itmp, &ipath).map_err(|e| Error::io("rename into place", &ipath, e))?;
    fault::point(3);
    fs::rename(&mtmp, &mpath).map_err(|e| Error::io("rename into place", &mpath, e))?;
    fault::point(4);
    sync_dir(dir)?;
    Ok(meta)
}

/// Removes a collection's index files (missing files are fine).
pub(crate) fn remove_files(dir: &Path, name: &str) {
    for p in [meta_path(dir, name), index_path(dir, name)] {
        for q in [tmp_path(&p), p] {
            if let Err(e) = fs::remove_file(&q) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(path = %q.display(), error = %e, "cannot remove an index file");
                }
            }
        }
    }
}

/// A counting semaphore bounding concurrent searches to the usearch thread contexts.
#[derive(Debug)]
pub(crate) struct Permits {
    free: Mutex<usize>,
    cv: Condvar,
}

pub(crate) struct Permit<'a>(&'a Permits);

impl Permits {
    pub fn new(n: usize) -> Self {
        Self {
            free: Mutex::new(n),
            cv: Condvar::new(),
        }
    }

    pub fn acquire(&self) -> Permit<'_> {
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        while *free == 0 {
            free = self.cv.wait(free).unwrap_or_else(PoisonError::into_inner);
        }
        *free -= 1;
        Permit(self)
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        *self.0.free.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        self.0.cv.notify_one();
    }
}

/// One collection's in-memory state in this process.
#[derive(Debug)]
pub(crate) struct Slot {
    pub live: RwLock<Option<LiveIndex>>,
    pub permits: Permits,
}

impl Slot {
    pub fn new() -> Self {
        Self {
            live: RwLock::new(None),
            permits: Permits::new(CONTEXTS),
        }
    }
}

//! The in-memory HNSW index of one collection and its files on disk.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::RwLock;

use lobster_vector_core::{Error, Result};
use memmap2::Mmap;
use serde::{Deserialize, Serialize};

use crate::error;
use crate::fault;
use crate::hnsw::{self, Graph, Shape};
use crate::options::HnswParams;
use crate::schema::CollRow;

/// Version of the sidecar format.
const META_FORMAT: u32 = 3;

/// Batches smaller than this are inserted into the graph by one thread.
const PARALLEL_MIN: usize = 2_048;

/// The first entries of a graph are always inserted by one thread, so
/// concurrent inserts start from a well-connected graph.
const SEQUENTIAL_PREFIX: usize = 1_024;

/// Rounds of re-linking nodes that no list links to after an insertion.
const REPAIR_ROUNDS: usize = 3;

/// Dead entries beyond which the graph is rebuilt from SQLite: more than this
/// many and more than a quarter of all entries.
const REBUILD_DEAD_MIN: usize = 1_024;

/// The sidecar `<collection>.hnsw.meta`: which SQLite state the index file reflects.
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
    /// The index file's identity when it was saved. While the file on disk
    /// still has it, the file is the one `xxh3` was computed over and opening
    /// it skips the checksum (hashing a large collection's file would read
    /// all of it on every open); any other file is checksummed. `None` in
    /// sidecars written before it existed.
    #[serde(default)]
    pub stamp: Option<FileStamp>,
}

/// What the file system says of a file that changes whenever the file is
/// written or replaced: its modification time and (on Unix) inode. (Its
/// length is checked against `IndexMeta::bytes` on every open.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FileStamp {
    pub modified_ns: u128,
    pub inode: u64,
}

impl FileStamp {
    fn of(file: &fs::Metadata) -> Option<Self> {
        let modified_ns = file
            .modified()
            .ok()?
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?
            .as_nanos();
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(file);
        #[cfg(not(unix))]
        let inode = 0;
        Some(Self { modified_ns, inode })
    }
}

/// A collection's HNSW graph and the SQLite state it reflects.
///
/// Deleted keys stay in the graph as routing nodes, flagged and never
/// returned; once they are more than a quarter of the graph it is rebuilt
/// from SQLite (and `compact` always rebuilds).
#[derive(Debug)]
pub(crate) struct LiveIndex {
    pub incarnation: i64,
    pub dim: usize,
    /// Every change with a sequence number up to this one is applied.
    pub seq: i64,
    /// `seq` of the index file on disk that is known to equal this index, if any.
    pub saved_seq: Option<i64>,
    /// Vectors added or removed since the last save.
    pub unsaved: usize,
    graph: Graph,
    params: HnswParams,
}

impl LiveIndex {
    /// An empty index for a collection incarnation, at sequence `seq`.
    pub fn empty(incarnation: i64, dim: usize, seq: i64, params: &HnswParams) -> Self {
        Self {
            incarnation,
            dim,
            seq,
            saved_seq: None,
            unsaved: 0,
            graph: Graph::new(Shape { dim, m: params.m }),
            params: *params,
        }
    }

    /// Live entries (deleted ones excluded).
    pub fn size(&self) -> usize {
        self.graph.len() - self.graph.dead()
    }

    /// Deleted entries still in the graph.
    pub fn dead(&self) -> usize {
        self.graph.dead()
    }

    /// Whether `key` is a live entry.
    pub fn is_live(&self, key: u64) -> bool {
        self.graph.is_live(key)
    }

    /// The indexed vector of `key`.
    pub fn vector(&self, key: u64) -> Option<&[f32]> {
        self.graph.vector(key)
    }

    /// Whether enough entries are dead to rebuild the graph.
    pub fn needs_rebuild(&self) -> bool {
        let dead = self.graph.dead();
        dead > REBUILD_DEAD_MIN && dead * 4 > self.graph.len()
    }

    /// The `k` nearest live entries as `(key, cosine distance)`, nearest
    /// first: exact scan or HNSW search with `max(ef_search, k)` candidates.
    pub fn search(&self, q: &[f32], k: usize, exact: bool) -> Vec<(u64, f32)> {
        if exact {
            self.graph.exact(q, k)
        } else {
            self.graph.search(q, k, self.params.ef_search)
        }
    }

    /// Marks live keys dead; returns how many were live.
    pub fn remove(&mut self, keys: &[u64]) -> usize {
        let n = keys.iter().filter(|&&k| self.graph.delete(k)).count();
        self.unsaved += n;
        n
    }

    /// Adds `(key, unit vector)` pairs whose keys are absent: the first
    /// [`SEQUENTIAL_PREFIX`] entries of the graph and small batches by this
    /// thread, large batches by `build_threads` threads; then re-links nodes
    /// that no list links to any more.
    pub fn add(&mut self, name: &str, items: &[(u64, Vec<f32>)]) -> Result<usize> {
        if let Some((k, v)) = items.iter().find(|(_, v)| v.len() != self.dim) {
            return Err(error::corrupt(format!(
                "record key {k} of collection `{name}` has {} floats, the index {}",
                v.len(),
                self.dim
            )));
        }
        let mut seen = HashSet::with_capacity(items.len());
        let fresh: Vec<(u64, &[f32])> = items
            .iter()
            .filter(|(k, _)| !self.graph.contains(*k) && seen.insert(*k))
            .map(|(k, v)| (*k, v.as_slice()))
            .collect();
        if fresh.is_empty() {
            return Ok(0);
        }
        if self.graph.len() + fresh.len() >= u32::MAX as usize {
            return Err(error::index(
                name,
                "add",
                "a collection's index holds fewer than 2^32 - 1 entries",
            ));
        }
        let serial = if fresh.len() < PARALLEL_MIN {
            fresh.len()
        } else {
            SEQUENTIAL_PREFIX.saturating_sub(self.graph.len())
        };
        let efc = self.params.ef_construction;
        self.graph
            .add(&fresh, efc, serial, self.params.build_threads.max(1));
        for round in 0..REPAIR_ROUNDS {
            let orphans = self.graph.orphans();
            if orphans.is_empty() {
                break;
            }
            tracing::debug!(
                collection = name,
                round,
                orphans = orphans.len(),
                "re-linking nodes no list links to"
            );
            self.graph.link(&orphans, efc, orphans.len(), 1);
        }
        self.unsaved += fresh.len();
        Ok(fresh.len())
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

/// Extension of index files (`<collection>.hnsw`, sidecar `<collection>.hnsw.meta`).
pub(crate) const INDEX_EXT: &str = "hnsw";

/// Extension of index files of earlier versions (usearch): never loaded,
/// removed by `compact`.
pub(crate) const LEGACY_EXT: &str = "usearch";

pub(crate) fn index_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.{INDEX_EXT}"))
}

pub(crate) fn meta_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.{INDEX_EXT}.meta"))
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

/// Maps the index file and checks it against its sidecar (length; the
/// checksum always with `always_checksum`, else unless the file still has the
/// identity it was saved with) and the sidecar against the collection row.
/// Returns both.
pub(crate) fn verify(
    dir: &Path,
    name: &str,
    row: &CollRow,
    always_checksum: bool,
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
    let unchanged = !always_checksum
        && meta.stamp.is_some()
        && file.metadata().ok().as_ref().and_then(FileStamp::of) == meta.stamp;
    if unchanged {
        return Ok((meta, bytes));
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

/// Loads the index file if it matches its sidecar and the collection row:
/// the graph searches the mapped file in place.
pub(crate) fn load(
    dir: &Path,
    name: &str,
    row: &CollRow,
    params: &HnswParams,
) -> std::result::Result<LiveIndex, LoadFailure> {
    let (meta, bytes) = verify(dir, name, row, false)?;
    let invalid = LoadFailure::Invalid;
    let dim = row.dimension.unwrap_or(0);
    let mut graph = hnsw::file::view(bytes).map_err(|e| invalid(format!("the index file: {e}")))?;
    for &k in &meta.dead {
        if !graph.delete(k) {
            return Err(invalid(format!(
                "the sidecar's deleted key {k} is not a live entry of the index"
            )));
        }
    }
    if graph.len() as u64 != meta.count + meta.dead.len() as u64 || graph.shape().dim != dim {
        return Err(invalid(format!(
            "the index holds {} {}-d vectors, the sidecar says {} live + {} deleted {}-d",
            graph.len(),
            graph.shape().dim,
            meta.count,
            meta.dead.len(),
            meta.dimension
        )));
    }
    Ok(LiveIndex {
        incarnation: row.incarnation,
        dim,
        seq: meta.seq,
        saved_seq: Some(meta.seq),
        unsaved: 0,
        graph,
        params: *params,
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

/// Saves `live` as `<dir>/<name>.hnsw` plus sidecar, atomically (temp file,
/// fsync, rename, fsync the directory). Returns the sidecar written.
pub(crate) fn save(dir: &Path, name: &str, live: &LiveIndex) -> Result<IndexMeta> {
    // A graph still viewing its file is that file's bytes (deletions live in the sidecar).
    let bytes: Cow<'_, [u8]> = match live.graph.mapped_file() {
        Some(map) => Cow::Borrowed(map),
        None => Cow::Owned(live.graph.to_bytes()),
    };
    let len = bytes.len();
    let mut meta = IndexMeta {
        format: META_FORMAT,
        collection: name.to_string(),
        incarnation: live.incarnation,
        seq: live.seq,
        count: live.size() as u64,
        dead: live.graph.deleted_keys(),
        dimension: live.dim as u64,
        bytes: len as u64,
        xxh3: format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&bytes)),
        connectivity: live.graph.shape().m as u64,
        stamp: None,
    };
    let (ipath, mpath) = (index_path(dir, name), meta_path(dir, name));
    let (itmp, mtmp) = (tmp_path(&ipath), tmp_path(&mpath));
    write_synced(&itmp, &bytes)?;
    // Renaming keeps the modification time and inode.
    meta.stamp = fs::metadata(&itmp).ok().as_ref().and_then(FileStamp::of);
    let json = serde_json::to_vec_pretty(&meta)
        .map_err(|e| error::index(name, "describe the index file", e))?;
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

/// Name of the lock file, inside the index directory, that every save,
/// removal and sweep of index files holds.
const SAVE_LOCK: &str = "save.lock";

/// How long a writer's save, removal or sweep of index files waits for a
/// save in progress (a reader's save skips instead of waiting).
pub(crate) const SAVE_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Takes the index directory's save lock, waiting up to `wait`; released
/// when the file is dropped. `Error::StoreLocked` past `wait`.
pub(crate) fn save_lock(dir: &Path, wait: std::time::Duration) -> Result<File> {
    lobster_vector_core::lock::acquire(dir, &dir.join(SAVE_LOCK), wait)
}

/// Removes a collection's index files (missing files are fine).
pub(crate) fn remove_files(dir: &Path, name: &str) {
    let _lock = match save_lock(dir, SAVE_WAIT) {
        Ok(l) => Some(l),
        Err(e) => {
            tracing::warn!(collection = name, error = %e, "removing index files without the save lock");
            None
        }
    };
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

/// One collection's in-memory state in this process.
#[derive(Debug)]
pub(crate) struct Slot {
    pub live: RwLock<Option<LiveIndex>>,
    /// Whether this process warned that it cannot save the rebuilt index.
    pub warned_unsaved: AtomicBool,
}

impl Slot {
    pub fn new() -> Self {
        Self {
            live: RwLock::new(None),
            warned_unsaved: AtomicBool::new(false),
        }
    }
}

//! `check`, `compact` and `backup` (the CLI's `store check|compact|backup`).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lobster_vector_core::{Error, Result, VectorStore};
use rusqlite::{backup::StepResult, Connection, OptionalExtension};
use serde::Serialize;

use crate::error::{corrupt, SqlExt};
use crate::index::{self, LoadFailure};
use crate::schema::{self, decode, key};
use crate::store::{read, write, LocalStore};
use crate::{DB_FILE, INDEX_DIR};

/// The state of a collection's index file on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum IndexFileStatus {
    /// No index file (never saved; the index is built from SQLite on load).
    Absent,
    /// The file is sound and reflects the collection's latest write.
    Current { seq: i64 },
    /// The file is sound and reflects an older state; newer writes are replayed on load.
    Behind { seq: i64, last_seq: i64 },
    /// The file cannot be used (truncated, corrupt, stale, another incarnation);
    /// it is rebuilt from SQLite on load and rewritten by the next save or `compact`.
    Invalid { reason: String },
}

/// What [`LocalStore::check`] found about one collection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CollectionCheck {
    pub name: String,
    pub dimension: Option<usize>,
    /// Record rows in SQLite.
    pub records: usize,
    /// The count kept in the collection row (must equal `records`).
    pub recorded_count: usize,
    /// Entries in the in-memory index after bringing it up to date (loaded from
    /// the index file and replayed, or rebuilt).
    pub index_entries: usize,
    /// SQLite records whose key is not in the index.
    pub missing_from_index: usize,
    /// Index entries without a SQLite record.
    pub extra_in_index: usize,
    /// Deleted entries still in the graph as routing nodes (never returned;
    /// removed by a rebuild: automatically past a quarter of the graph, or `compact`).
    pub dead_entries: usize,
    /// Sampled records (up to 1,000) whose vector in the index differs from SQLite's.
    pub vector_mismatches: usize,
    pub index_file: IndexFileStatus,
}

impl CollectionCheck {
    /// Counts agree, the index holds exactly SQLite's keys and vectors, and the
    /// index file is absent or usable.
    pub fn is_ok(&self) -> bool {
        self.records == self.recorded_count
            && self.index_entries == self.records
            && self.missing_from_index == 0
            && self.extra_in_index == 0
            && self.vector_mismatches == 0
            && !matches!(self.index_file, IndexFileStatus::Invalid { .. })
    }
}

/// The result of [`LocalStore::check`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    /// Output of SQLite's `PRAGMA integrity_check`: `["ok"]` when sound.
    pub integrity: Vec<String>,
    pub collections: Vec<CollectionCheck>,
    /// Files in `index/` of no current collection (removed by `compact`).
    pub stray_files: Vec<PathBuf>,
}

impl CheckReport {
    /// SQLite is sound and every collection's index agrees with it.
    pub fn is_ok(&self) -> bool {
        self.integrity == ["ok"] && self.collections.iter().all(CollectionCheck::is_ok)
    }
}

/// The result of [`LocalStore::compact`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CompactReport {
    pub collections_rebuilt: usize,
    pub stray_files_removed: usize,
    /// Size of the store directory's database and index files before and after.
    pub bytes_before: u64,
    pub bytes_after: u64,
}

/// The result of [`LocalStore::backup`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackupReport {
    pub destination: PathBuf,
    pub collections: usize,
    /// Bytes written (database and index files).
    pub bytes: u64,
}

/// Attempts at a consistent snapshot of one collection while writes go on.
const CHECK_ATTEMPTS: usize = 5;

/// Records whose index vector is compared with SQLite's, per collection.
const VECTOR_SAMPLE: usize = 1_000;

fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    for d in [dir.to_path_buf(), dir.join(INDEX_DIR)] {
        if let Ok(entries) = fs::read_dir(&d) {
            for e in entries.flatten() {
                if let Ok(m) = e.metadata() {
                    if m.is_file() {
                        total += m.len();
                    }
                }
            }
        }
    }
    total
}

/// Collection names that index files in `dir` belong to, with the files.
fn index_files(dir: &Path) -> Vec<(String, PathBuf)> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let p = e.path();
        let Some(file) = p.file_name().and_then(|f| f.to_str()) else {
            continue;
        };
        let base = file.strip_suffix(".tmp").unwrap_or(file);
        let base = base.strip_suffix(".meta").unwrap_or(base);
        if let Some((name, ext)) = base.rsplit_once('.') {
            if ext == index::INDEX_EXT || ext == index::LEGACY_EXT {
                out.push((name.to_string(), p.clone()));
            }
        }
    }
    out.sort();
    out
}

fn file_status(dir: &Path, name: &str, row: &schema::CollRow) -> IndexFileStatus {
    match index::verify(dir, name, row, true) {
        Ok((meta, _)) if meta.seq == row.last_seq => IndexFileStatus::Current { seq: meta.seq },
        Ok((meta, _)) => IndexFileStatus::Behind {
            seq: meta.seq,
            last_seq: row.last_seq,
        },
        Err(LoadFailure::Absent) => IndexFileStatus::Absent,
        Err(LoadFailure::Invalid(reason)) => IndexFileStatus::Invalid { reason },
    }
}

impl LocalStore {
    /// Checks the store: SQLite's `integrity_check`, each collection's stored
    /// count against its rows, its index file (checksum, sidecar), and that the
    /// index brought up to date holds exactly SQLite's keys (and, on a sample,
    /// the same vectors). Read-only on disk; loads every collection's index.
    pub fn check(&self) -> Result<CheckReport> {
        let db = &self.paths.db;
        let conn = self.readers.get()?;
        let integrity = {
            let mut st = conn.prepare("PRAGMA integrity_check").db(db)?;
            let lines = st.query_map([], |r| r.get::<_, String>(0)).db(db)?;
            lines.collect::<rusqlite::Result<Vec<_>>>().db(db)?
        };
        let names = self.list_collections()?;
        let mut collections = Vec::with_capacity(names.len());
        for name in &names {
            if let Some(c) = self.check_collection(&conn, name)? {
                collections.push(c);
            }
        }
        let stray_files = index_files(&self.paths.index_dir)
            .into_iter()
            .filter(|(n, _)| names.binary_search(n).is_err())
            .map(|(_, p)| p)
            .collect();
        Ok(CheckReport {
            integrity,
            collections,
            stray_files,
        })
    }

    fn check_collection(&self, conn: &Connection, name: &str) -> Result<Option<CollectionCheck>> {
        let db = &self.paths.db;
        for _ in 0..CHECK_ATTEMPTS {
            let tx = conn.unchecked_transaction().db(db)?;
            let Some(row) = schema::read_row(&tx, db, name)? else {
                return Ok(None);
            };
            let records: i64 = tx
                .query_row(
                    "SELECT count(*) FROM records WHERE collection = ?1",
                    [name],
                    |r| r.get(0),
                )
                .db(db)?;
            let records = usize::try_from(records).unwrap_or(0);
            let index_file = file_status(&self.paths.index_dir, name, &row);
            let mut check = CollectionCheck {
                name: name.to_string(),
                dimension: row.dimension,
                records,
                recorded_count: row.record_count,
                index_entries: 0,
                missing_from_index: 0,
                extra_in_index: 0,
                dead_entries: 0,
                vector_mismatches: 0,
                index_file,
            };
            let Some(dim) = row.dimension else {
                return Ok(Some(check));
            };
            let slot = self.slot(name);
            let mut g = write(&slot.live);
            self.catch_up(&tx, name, &row, &mut g)?;
            let Some(l) = g.as_ref() else {
                return Err(corrupt(format!("no index for collection `{name}`")));
            };
            if l.seq != row.last_seq {
                // The index moved past this snapshot (a write meanwhile): look again.
                continue;
            }
            let rids: Vec<i64> = {
                let mut st = tx
                    .prepare("SELECT rid FROM records WHERE collection = ?1")
                    .db(db)?;
                let rows = st.query_map([name], |r| r.get(0)).db(db)?;
                rows.collect::<rusqlite::Result<_>>().db(db)?
            };
            let mut present = 0;
            for &rid in &rids {
                if l.is_live(key(rid)?) {
                    present += 1;
                }
            }
            check.index_entries = l.size();
            check.missing_from_index = rids.len() - present;
            check.extra_in_index = l.size().saturating_sub(present);
            check.dead_entries = l.dead();
            let step = (rids.len() / VECTOR_SAMPLE).max(1);
            let mut st = tx
                .prepare_cached("SELECT vector FROM records WHERE rid = ?1")
                .db(db)?;
            for &rid in rids.iter().step_by(step) {
                let k = key(rid)?;
                if !l.is_live(k) {
                    continue;
                }
                let blob: Option<Vec<u8>> = st.query_row([rid], |r| r.get(0)).optional().db(db)?;
                let Some(blob) = blob else { continue };
                let stored = decode(&blob, dim)?;
                let same = l.vector(k).is_some_and(|v| {
                    v.len() == stored.len()
                        && stored.iter().zip(v).all(|(a, b)| (a - b).abs() <= 1e-6)
                });
                if !same {
                    check.vector_mismatches += 1;
                }
            }
            drop(st);
            drop(g);
            tx.commit().db(db)?;
            return Ok(Some(check));
        }
        Err(Error::backend(
            crate::BACKEND,
            format!("collection `{name}` kept changing during the check; run it again"),
        ))
    }

    /// Rebuilds every collection's index from SQLite (dropping the space of
    /// deleted entries), saves it, prunes all tombstones, removes stray index
    /// files, then runs `VACUUM` and truncates the WAL. Takes the write lock;
    /// readers may go on meanwhile.
    pub fn compact(&self) -> Result<CompactReport> {
        let db = &self.paths.db;
        let mut w = self.writer("compact")?;
        let bytes_before = dir_bytes(&self.paths.dir);
        let names: Vec<String> = {
            let mut st = w
                .conn
                .prepare("SELECT name FROM collections ORDER BY name")
                .db(db)?;
            let rows = st.query_map([], |r| r.get(0)).db(db)?;
            rows.collect::<rusqlite::Result<_>>().db(db)?
        };
        let mut rebuilt = 0;
        for name in &names {
            let rebuilt_index = {
                let tx = w.conn.unchecked_transaction().db(db)?;
                let row = schema::read_row(&tx, db, name)?;
                let l = match row {
                    Some(row) if row.dimension.is_some() => Some(self.rebuild(&tx, name, &row)?),
                    _ => None,
                };
                tx.commit().db(db)?;
                l
            };
            match rebuilt_index {
                Some(mut l) => {
                    l.unsaved = l.unsaved.max(1);
                    let slot = self.slot(name);
                    *write(&slot.live) = Some(l);
                    self.save_slot(&mut w, name, &slot)?;
                    rebuilt += 1;
                }
                None => index::remove_files(&self.paths.index_dir, name),
            }
        }
        let mut stray = 0;
        {
            let _lock = index::save_lock(&self.paths.index_dir, index::SAVE_WAIT)?;
            for (n, p) in index_files(&self.paths.index_dir) {
                let is_tmp = p.extension().is_some_and(|x| x == "tmp");
                let legacy = p
                    .file_name()
                    .and_then(|f| f.to_str())
                    .is_some_and(|f| f.contains(&format!(".{}", index::LEGACY_EXT)));
                if is_tmp || legacy || names.binary_search(&n).is_err() {
                    match fs::remove_file(&p) {
                        Ok(()) => stray += 1,
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        Err(e) => return Err(Error::io("remove a stray index file", p, e)),
                    }
                }
            }
        }
        w.conn.execute_batch("VACUUM").db(db)?;
        w.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .db(db)?;
        self.readers.clear();
        Ok(CompactReport {
            collections_rebuilt: rebuilt,
            stray_files_removed: stray,
            bytes_before,
            bytes_after: dir_bytes(&self.paths.dir),
        })
    }

    /// Writes a consistent copy of the store into `dest` (a new or empty
    /// directory), while reads and writes go on: first every collection's index
    /// (brought up to date, saved into `dest/index/`), then the database through
    /// SQLite's online backup API in one step (one read snapshot, taken after
    /// the index files, so opening the copy replays whatever came in between).
    /// The copy is fsynced. Open it with [`LocalStore::open`].
    pub fn backup(&self, dest: &Path) -> Result<BackupReport> {
        match fs::metadata(dest) {
            Ok(m) if !m.is_dir() => {
                return Err(Error::io(
                    "back up into",
                    dest,
                    io::Error::new(io::ErrorKind::NotADirectory, "the destination is a file"),
                ))
            }
            Ok(_) => {
                let mut entries = fs::read_dir(dest)
                    .map_err(|e| Error::io("read the backup directory", dest, e))?;
                if entries.next().is_some() {
                    return Err(Error::invalid_input(format!(
                        "the backup destination `{}` is not empty",
                        dest.display()
                    )));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir_all(dest)
                    .map_err(|e| Error::io("create the backup directory", dest, e))?;
            }
            Err(e) => return Err(Error::io("back up into", dest, e)),
        }
        let dest_index = dest.join(INDEX_DIR);
        fs::create_dir_all(&dest_index)
            .map_err(|e| Error::io("create the backup index directory", &dest_index, e))?;
        let db = &self.paths.db;
        let names = self.list_collections()?;
        for name in &names {
            let conn = self.readers.get()?;
            let slot = match self.prepare_for_backup(&conn, name)? {
                Some(s) => s,
                None => continue,
            };
            let g = read(&slot.live);
            if let Some(l) = g.as_ref() {
                index::save(&dest_index, name, l)?;
            }
        }
        let dest_db = dest.join(DB_FILE);
        {
            let src = self.readers.get()?;
            let mut dst = Connection::open(&dest_db).db(&dest_db)?;
            dst.pragma_update(None, "synchronous", "FULL")
                .db(&dest_db)?;
            {
                let b = rusqlite::backup::Backup::new(&src, &mut dst).db(&dest_db)?;
                loop {
                    match b.step(-1).db(db)? {
                        StepResult::Done => break,
                        StepResult::More => {}
                        StepResult::Busy | StepResult::Locked => {
                            std::thread::sleep(Duration::from_millis(10))
                        }
                        _ => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
            }
            let _: String = dst
                .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
                .db(&dest_db)?;
            dst.close()
                .map_err(|(_, e)| crate::error::sql(&dest_db, e))?;
        }
        index::sync_dir(&dest_index)?;
        index::sync_dir(dest)?;
        Ok(BackupReport {
            destination: dest.to_path_buf(),
            collections: names.len(),
            bytes: dir_bytes(dest),
        })
    }

    fn prepare_for_backup(
        &self,
        conn: &Connection,
        name: &str,
    ) -> Result<Option<std::sync::Arc<crate::index::Slot>>> {
        let db = &self.paths.db;
        let tx = conn.unchecked_transaction().db(db)?;
        let Some(row) = schema::read_row(&tx, db, name)? else {
            return Ok(None);
        };
        if row.dimension.is_none() {
            return Ok(None);
        }
        let slot = self.slot(name);
        {
            let mut g = write(&slot.live);
            self.catch_up(&tx, name, &row, &mut g)?;
        }
        tx.commit().db(db)?;
        Ok(Some(slot))
    }
}

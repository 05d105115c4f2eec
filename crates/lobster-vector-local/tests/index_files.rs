//! The index file is derived: reopening replays newer writes, and a missing,
//! stale, truncated, garbage, foreign or "future" index file is rebuilt from
//! SQLite with correct answers.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{clustered, ids, records, TempStore};
use lobster_vector_core::{FlatStore, Record, VectorStore};
use lobster_vector_local::{IndexFileStatus, LocalOptions, LocalStore};

const C: &str = "onto_v1";
const DIM: usize = 24;

fn opts() -> LocalOptions {
    common::hnsw_options()
}

fn index_file(dir: &Path) -> PathBuf {
    dir.join("index").join(format!("{C}.hnsw"))
}

fn meta_file(dir: &Path) -> PathBuf {
    dir.join("index").join(format!("{C}.hnsw.meta"))
}

/// 1,500 data vectors of 12 clusters.
fn data(seed: u64) -> Vec<Vec<f32>> {
    common::clustered_split(seed, 1_500, 40, DIM, 12, 0.4).0
}

/// 40 queries from the clusters of `data(seed)`.
fn queries(seed: u64) -> Vec<Vec<f32>> {
    common::clustered_split(seed, 1_500, 40, DIM, 12, 0.4).1
}

/// Writes 3 batches with overwrites and deletes into both stores.
fn populate(store: &dyn VectorStore, flat: &FlatStore, seed: u64) {
    let vs = data(seed);
    let recs = records("r", &vs);
    for chunk in recs.chunks(500) {
        store.upsert(C, chunk).expect("upsert");
        flat.upsert(C, chunk).expect("upsert");
    }
    let over: Vec<Record> = clustered(seed + 1, 100, DIM, 12, 0.4)
        .into_iter()
        .enumerate()
        .map(|(i, v)| Record::new(format!("r{}", i * 7), v).with_document("over"))
        .collect();
    store.upsert(C, &over).expect("overwrite");
    flat.upsert(C, &over).expect("overwrite");
    let gone: Vec<String> = (0..1_500).step_by(11).map(|i| format!("r{i}")).collect();
    store.delete(C, &gone).expect("delete");
    flat.delete(C, &gone).expect("delete");
}

/// Same ids (and distances) as the exact store for probe queries, and every
/// surviving record finds itself first.
fn assert_agrees(store: &LocalStore, flat: &FlatStore, seed: u64) {
    assert_eq!(
        store.count(C).expect("count"),
        flat.count(C).expect("count")
    );
    let mut total = 0;
    let mut overlap = 0;
    for q in queries(seed) {
        let got = store.search(C, &q, 10).expect("search");
        let want = flat.search(C, &q, 10).expect("search");
        let want_ids = ids(&want);
        total += want.len();
        overlap += got.iter().filter(|h| want_ids.contains(&h.id)).count();
        for h in &got {
            assert!(
                flat.vector(C, &h.id).is_some(),
                "returned a deleted id {}",
                h.id
            );
        }
    }
    let recall = overlap as f64 / total as f64;
    assert!(recall >= 0.98, "recall@10 {recall}");
    for i in (0..1_500).step_by(37) {
        let id = format!("r{i}");
        if let Some(v) = flat.vector(C, &id) {
            let hits = store.search(C, &v, 3).expect("search");
            assert_eq!(hits[0].id, id, "a surviving vector finds itself first");
            assert!(hits[0].distance.abs() < 1e-5);
        }
    }
    let report = store.check().expect("check");
    let c = &report.collections[0];
    assert_eq!(report.integrity, ["ok"]);
    assert_eq!(
        (
            c.index_entries,
            c.missing_from_index,
            c.extra_in_index,
            c.vector_mismatches
        ),
        (c.records, 0, 0, 0),
        "{c:?}"
    );
}

fn written_store(seed: u64) -> (TempStore, FlatStore) {
    let ts = TempStore::new(opts());
    let flat = FlatStore::new();
    populate(&ts.store, &flat, seed);
    (ts, flat)
}

/// Closes the store (saving its index) and returns its directory.
fn close(ts: TempStore) -> tempfile::TempDir {
    let TempStore { store, dir } = ts;
    drop(store);
    dir
}

#[test]
fn reopen_uses_the_saved_index() {
    let (ts, flat) = written_store(1);
    let dir = close(ts);
    assert!(index_file(dir.path()).is_file() && meta_file(dir.path()).is_file());
    let store = LocalStore::open(dir.path(), opts()).expect("reopen");
    let report = store.check().expect("check");
    assert!(report.is_ok(), "{report:?}");
    assert!(
        matches!(
            report.collections[0].index_file,
            IndexFileStatus::Current { .. }
        ),
        "{report:?}"
    );
    assert_agrees(&store, &flat, 1);
}

#[test]
fn a_stale_index_file_is_replayed() {
    let (ts, flat) = written_store(2);
    ts.store.flush().expect("flush");
    // More writes after the save: new vectors, overwrites and deletes.
    let more = records("late", &clustered(77, 300, DIM, 12, 0.4));
    ts.store.upsert(C, &more).expect("upsert");
    flat.upsert(C, &more).expect("upsert");
    let over = vec![Record::new("r3", clustered(78, 1, DIM, 12, 0.4).remove(0))];
    ts.store.upsert(C, &over).expect("overwrite");
    flat.upsert(C, &over).expect("overwrite");
    let gone: Vec<String> = (0..300).step_by(5).map(|i| format!("late{i}")).collect();
    ts.store.delete(C, &gone).expect("delete");
    flat.delete(C, &gone).expect("delete");
    // The process dies without saving again (leaked: its files stay open and locked).
    let TempStore { store, dir } = ts;
    std::mem::forget(store);
    let store = LocalStore::open(
        dir.path(),
        LocalOptions {
            read_only: true,
            ..opts()
        },
    )
    .expect("reopen");
    let report = store.check().expect("check");
    assert!(
        matches!(
            report.collections[0].index_file,
            IndexFileStatus::Behind { .. }
        ),
        "{report:?}"
    );
    assert!(report.is_ok(), "{report:?}");
    assert_agrees(&store, &flat, 2);
    for id in &gone {
        let v = more[id.trim_start_matches("late").parse::<usize>().expect("n")]
            .vector
            .clone();
        let hits = store.search(C, &v, 20).expect("search");
        assert!(hits.iter().all(|h| &h.id != id), "deleted {id} returned");
    }
}

fn damaged(seed: u64, damage: impl Fn(&Path)) {
    let (ts, flat) = written_store(seed);
    let dir = close(ts);
    damage(dir.path());
    let store = LocalStore::open(dir.path(), opts()).expect("reopen");
    let report = store.check().expect("check");
    assert!(
        matches!(
            report.collections[0].index_file,
            IndexFileStatus::Invalid { .. }
        ),
        "{report:?}"
    );
    assert!(!report.is_ok());
    assert_agrees(&store, &flat, seed);
    // compact rewrites the index file; the store is healthy again.
    store.compact().expect("compact");
    let report = store.check().expect("check");
    assert!(report.is_ok(), "{report:?}");
    drop(store);
    let store = LocalStore::open(dir.path(), opts()).expect("reopen");
    assert_agrees(&store, &flat, seed);
}

#[test]
fn a_truncated_index_file_is_rebuilt() {
    damaged(3, |d| {
        let p = index_file(d);
        let len = fs::metadata(&p).expect("stat").len();
        let f = fs::OpenOptions::new().write(true).open(&p).expect("open");
        f.set_len(len / 2).expect("truncate");
    });
}

#[test]
fn a_garbage_index_file_is_rebuilt() {
    damaged(4, |d| {
        let p = index_file(d);
        let len = fs::metadata(&p).expect("stat").len() as usize;
        let mut r = common::rng(4);
        let junk: Vec<u8> = (0..len).map(|_| rand::Rng::random::<u8>(&mut r)).collect();
        fs::write(&p, junk).expect("write");
    });
}

#[test]
fn a_bit_flip_in_the_index_file_is_detected() {
    damaged(5, |d| {
        let p = index_file(d);
        let mut bytes = fs::read(&p).expect("read");
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x40;
        fs::write(&p, bytes).expect("write");
    });
}

#[test]
fn check_checksums_a_file_whose_damage_kept_its_modification_time() {
    // Opening trusts an index file that still has the length, modification
    // time and inode it was saved with; `check` always checksums it.
    damaged(6, |d| {
        let p = index_file(d);
        let saved = fs::metadata(&p).expect("stat").modified().expect("mtime");
        let f = fs::OpenOptions::new().write(true).open(&p).expect("open");
        let mut bytes = fs::read(&p).expect("read");
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x01;
        std::io::Write::write_all(&mut &f, &bytes).expect("write in place");
        f.set_modified(saved)
            .expect("restore the modification time");
    });
}

#[test]
fn a_garbage_sidecar_is_rebuilt() {
    damaged(6, |d| fs::write(meta_file(d), b"{not json").expect("write"));
}

#[test]
fn a_missing_index_file_is_rebuilt() {
    damaged(7, |d| fs::remove_file(index_file(d)).expect("rm"));
}

#[test]
fn an_index_of_a_dropped_and_recreated_collection_is_not_used() {
    let (ts, _) = written_store(8);
    ts.store.flush().expect("flush");
    let old_index = fs::read(index_file(ts.path())).expect("read");
    let old_meta = fs::read(meta_file(ts.path())).expect("read");
    assert!(ts.store.drop_collection(C).expect("drop"));
    assert!(
        !index_file(ts.path()).exists(),
        "drop removes the index files"
    );
    let flat = FlatStore::new();
    populate(&ts.store, &flat, 9);
    let dir = close(ts);
    fs::write(index_file(dir.path()), old_index).expect("write");
    fs::write(meta_file(dir.path()), old_meta).expect("write");
    let store = LocalStore::open(dir.path(), opts()).expect("reopen");
    let report = store.check().expect("check");
    assert!(
        matches!(&report.collections[0].index_file, IndexFileStatus::Invalid { reason } if reason.contains("incarnation")),
        "{report:?}"
    );
    assert_agrees(&store, &flat, 9);
}

#[test]
fn an_index_newer_than_the_database_is_not_used() {
    // A database restored from an older copy next to newer index files: the
    // newer keys would name other vectors, so the index must be rebuilt.
    let (ts, flat_old) = written_store(10);
    let dir = close(ts);
    let db_copy = fs::read(dir.path().join("store.sqlite3")).expect("read db");
    assert!(
        !dir.path().join("store.sqlite3-wal").exists() || {
            fs::metadata(dir.path().join("store.sqlite3-wal"))
                .expect("wal")
                .len()
                == 0
        }
    );
    {
        let store = LocalStore::open(dir.path(), opts()).expect("reopen");
        let more = records("new", &clustered(11, 400, DIM, 12, 0.4));
        store.upsert(C, &more).expect("upsert");
        store
            .delete(C, &["r1".to_string(), "r2".to_string()])
            .expect("delete");
    }
    fs::write(dir.path().join("store.sqlite3"), db_copy).expect("restore db");
    let _ = fs::remove_file(dir.path().join("store.sqlite3-wal"));
    let _ = fs::remove_file(dir.path().join("store.sqlite3-shm"));
    let store = LocalStore::open(dir.path(), opts()).expect("reopen");
    let report = store.check().expect("check");
    assert!(
        matches!(&report.collections[0].index_file, IndexFileStatus::Invalid { reason } if reason.contains("older copy")),
        "{report:?}"
    );
    assert_agrees(&store, &flat_old, 10);
    // New writes after the restore reuse key numbers the newer index had used.
    let fresh = records("fresh", &clustered(12, 200, DIM, 12, 0.4));
    store.upsert(C, &fresh).expect("upsert");
    flat_old.upsert(C, &fresh).expect("upsert");
    assert_agrees(&store, &flat_old, 10);
}

#[test]
fn backup_is_a_consistent_openable_copy() {
    let (ts, flat) = written_store(13);
    let dest = tempfile::tempdir().expect("tempdir");
    let target = dest.path().join("copy");
    let report = ts.store.backup(&target).expect("backup");
    assert_eq!(report.collections, 1);
    assert!(report.bytes > 0);
    // Writes after the backup do not reach the copy.
    ts.store
        .upsert(C, &records("after", &clustered(14, 50, DIM, 12, 0.4)))
        .expect("upsert");
    let copy = LocalStore::open(&target, opts()).expect("open copy");
    let check = copy.check().expect("check");
    assert!(check.is_ok(), "{check:?}");
    assert!(
        matches!(
            check.collections[0].index_file,
            IndexFileStatus::Current { .. }
        ),
        "{check:?}"
    );
    assert_agrees(&copy, &flat, 13);
    // A non-empty destination is refused.
    let e = ts.store.backup(&target).expect_err("non-empty");
    assert!(
        matches!(e, lobster_vector_core::Error::InvalidInput { .. }),
        "{e:?}"
    );
}

#[test]
fn compact_keeps_the_data_and_prunes_deletions() {
    let (ts, flat) = written_store(15);
    let report = ts.store.compact().expect("compact");
    assert_eq!(report.collections_rebuilt, 1);
    assert_agrees(&ts.store, &flat, 15);
    let dir = close(ts);
    let store = LocalStore::open(dir.path(), opts()).expect("reopen");
    assert_agrees(&store, &flat, 15);
}

#[test]
fn collection_metadata_and_empty_collections_persist() {
    let ts = TempStore::new(opts());
    let mut m = lobster_vector_core::Metadata::new();
    m.insert(
        "artifact".into(),
        serde_json::json!({"model": "minilm", "dimensions": 3}),
    );
    ts.store
        .set_collection_metadata("empty_one", m.clone())
        .expect("set");
    ts.store
        .upsert("vectors_one", &[Record::new("a", vec![1.0, 0.0, 0.0])])
        .expect("upsert");
    ts.store
        .set_collection_metadata("vectors_one", m.clone())
        .expect("set");
    let dir = close(ts);
    let store = LocalStore::open(
        dir.path(),
        LocalOptions {
            read_only: true,
            ..opts()
        },
    )
    .expect("reopen read-only");
    assert_eq!(
        store.list_collections().expect("list"),
        ["empty_one", "vectors_one"]
    );
    let info = store.collection_info("empty_one").expect("info");
    assert_eq!((info.dimension, info.count, &info.metadata), (None, 0, &m));
    assert!(store
        .search("empty_one", &[1.0, 2.0], 3)
        .expect("search")
        .is_empty());
    let info = store.collection_info("vectors_one").expect("info");
    assert_eq!(
        (info.dimension, info.count, &info.metadata),
        (Some(3), 1, &m)
    );
    assert_eq!(
        store
            .search("vectors_one", &[1.0, 0.1, 0.0], 3)
            .expect("search")[0]
            .id,
        "a"
    );
    let got = store
        .get("vectors_one", &["a".into(), "nope".into()])
        .expect("get");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].vector, vec![1.0, 0.0, 0.0]);
}

#[test]
fn index_files_of_earlier_versions_are_ignored_and_removed_by_compact() {
    let (ts, flat) = written_store(12);
    let dir = close(ts);
    let index_dir = dir.path().join("index");
    let legacy = [
        index_dir.join(format!("{C}.usearch")),
        index_dir.join(format!("{C}.usearch.meta")),
    ];
    for p in &legacy {
        fs::write(p, b"an index file of an earlier version").expect("write");
    }
    let store = LocalStore::open(dir.path(), opts()).expect("reopen");
    assert_agrees(&store, &flat, 12);
    let report = store.compact().expect("compact");
    assert_eq!(report.stray_files_removed, 2, "{report:?}");
    assert!(legacy.iter().all(|p| !p.exists()));
    assert!(index_file(dir.path()).is_file() && meta_file(dir.path()).is_file());
    drop(store);
    let store = LocalStore::open(dir.path(), opts()).expect("reopen");
    assert_agrees(&store, &flat, 12);
}

/// The index file's inode and modification time: changed by every save.
fn index_stamp(dir: &Path) -> (u64, std::time::SystemTime) {
    use std::os::unix::fs::MetadataExt;
    let m = fs::metadata(index_file(dir)).expect("index file");
    (m.ino(), m.modified().expect("mtime"))
}

fn remove_index_files(dir: &Path) {
    fs::remove_file(index_file(dir)).expect("remove index");
    fs::remove_file(meta_file(dir)).expect("remove sidecar");
}

#[test]
fn a_missing_index_is_rebuilt_once_by_the_first_reader_and_saved() {
    let (ts, flat) = written_store(21);
    let dir = close(ts);
    remove_index_files(dir.path());
    // A writer holds the write lock all along: the readers' save must not
    // need it, and must not keep it from the writer.
    let writer = LocalStore::open(dir.path(), opts()).expect("writer");
    writer.lock_for_writing().expect("lock");
    {
        let reader = LocalStore::open_existing(dir.path(), opts()).expect("reader");
        assert!(!reader.options().read_only);
        assert_agrees(&reader, &flat, 21);
        assert!(!reader.holds_write_lock());
    }
    assert!(index_file(dir.path()).is_file(), "the reader did not save");
    let report = writer.check().expect("check");
    assert!(
        matches!(
            report.collections[0].index_file,
            IndexFileStatus::Current { .. }
        ),
        "{report:?}"
    );
    let saved = index_stamp(dir.path());
    // Later readers load the saved file: it is not written again.
    for _ in 0..2 {
        let reader = LocalStore::open_existing(dir.path(), opts()).expect("reader");
        assert_agrees(&reader, &flat, 21);
    }
    assert_eq!(index_stamp(dir.path()), saved);
    drop(writer);
}

#[test]
fn a_read_only_store_rebuilds_in_memory_and_writes_nothing() {
    let (ts, flat) = written_store(22);
    let dir = close(ts);
    remove_index_files(dir.path());
    fs::remove_file(dir.path().join(lobster_vector_local::LOCK_FILE)).expect("remove lock file");
    let listing = |d: &Path| {
        let mut names: Vec<String> = fs::read_dir(d)
            .expect("read dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let index_dir = dir.path().join("index");
    let before = listing(&index_dir);
    for _ in 0..2 {
        let store = LocalStore::open(
            dir.path(),
            LocalOptions {
                read_only: true,
                ..opts()
            },
        )
        .expect("open read-only");
        assert_agrees(&store, &flat, 22);
    }
    assert_eq!(listing(&index_dir), before);
    assert!(!dir.path().join(lobster_vector_local::LOCK_FILE).exists());
}

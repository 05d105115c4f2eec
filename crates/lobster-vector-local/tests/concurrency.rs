//! One writer, many readers: threads of one process, other processes, and a
//! second writer that is refused cleanly.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lobster_vector_core::{Error, Record, VectorStore};
use lobster_vector_local::{LocalOptions, LocalStore};

const C: &str = "shared_coll";
const DIM: usize = 32;
const BATCH: usize = 200;

fn batch(b: usize) -> Vec<Record> {
    let vs = common::clustered(b as u64, BATCH, DIM, 8, 0.5);
    vs.into_iter()
        .enumerate()
        .map(|(i, v)| Record::new(format!("b{b}-{i}"), v).with_document(format!("batch {b}")))
        .collect()
}

/// One reader pass: count is a whole number of batches, hits are sorted, whole
/// and name existing records. Returns the count seen.
fn read_once(store: &LocalStore, q: &[f32]) -> Result<usize, String> {
    let count = match store.count(C) {
        Ok(n) => n,
        Err(Error::CollectionNotFound { .. }) => return Ok(0),
        Err(e) => return Err(format!("count: {e}")),
    };
    if count % BATCH != 0 {
        return Err(format!("count {count} is not a whole number of batches"));
    }
    let hits = store.search(C, q, 20).map_err(|e| format!("search: {e}"))?;
    if count >= 20 && hits.len() != 20 {
        return Err(format!("{} hits from {count} records", hits.len()));
    }
    if !hits.windows(2).all(|w| w[0].distance <= w[1].distance) {
        return Err("hits not sorted".into());
    }
    for h in &hits {
        let b = h.id.split('-').next().unwrap_or("").trim_start_matches('b');
        if h.document.as_deref() != Some(&format!("batch {b}")) {
            return Err(format!("hit {} has document {:?}", h.id, h.document));
        }
    }
    Ok(count)
}

#[test]
fn readers_in_threads_search_while_a_writer_ingests() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(
        LocalStore::open(
            dir.path(),
            LocalOptions {
                exact_search_below: 500,
                ..LocalOptions::default()
            },
        )
        .expect("open"),
    );
    let done = Arc::new(AtomicBool::new(false));
    let searches = Arc::new(AtomicUsize::new(0));
    let readers: Vec<_> = (0..4)
        .map(|t| {
            let (store, done, searches) = (store.clone(), done.clone(), searches.clone());
            std::thread::spawn(move || {
                let qs = common::clustered(100 + t, 16, DIM, 8, 0.7);
                let mut last = 0;
                let mut i = 0;
                while !done.load(Ordering::SeqCst) {
                    let n = read_once(&store, &qs[i % qs.len()]).expect("reader");
                    assert!(n >= last, "count went backwards: {last} then {n}");
                    last = n;
                    i += 1;
                    searches.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let batches = 30;
    for b in 0..batches {
        store.upsert(C, &batch(b)).expect("upsert");
        if b % 10 == 9 {
            store.flush().expect("flush");
        }
    }
    done.store(true, Ordering::SeqCst);
    for r in readers {
        r.join().expect("reader thread");
    }
    assert!(searches.load(Ordering::Relaxed) > 50);
    assert_eq!(store.count(C).expect("count"), batches * BATCH);
    assert!(store.check().expect("check").is_ok());
}

#[test]
fn a_second_writer_is_refused_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = LocalStore::open(dir.path(), LocalOptions::default()).expect("open");
    first.upsert(C, &batch(0)).expect("upsert");
    assert!(first.holds_write_lock());

    // Opening and reading need no lock.
    let second = LocalStore::open(dir.path(), LocalOptions::default()).expect("open");
    assert_eq!(second.count(C).expect("count"), BATCH);
    let e = second.upsert(C, &batch(1)).expect_err("second writer");
    assert!(
        matches!(&e, Error::StoreLocked { path } if path == dir.path()),
        "{e:?}"
    );
    assert!(e.to_string().contains("locked by another writer"), "{e}");
    for e in [
        second.delete(C, &["b0-1".into()]).expect_err("delete"),
        second.drop_collection(C).expect_err("drop"),
        second
            .set_collection_metadata(C, Default::default())
            .expect_err("metadata"),
    ] {
        assert!(matches!(e, Error::StoreLocked { .. }), "{e:?}");
    }
    assert!(!second.holds_write_lock());

    // With a timeout it waits, then gives up.
    let waiting = LocalStore::open(
        dir.path(),
        LocalOptions {
            lock_timeout: Duration::from_millis(300),
            ..LocalOptions::default()
        },
    )
    .expect("open");
    let t = Instant::now();
    assert!(matches!(
        waiting.lock_for_writing(),
        Err(Error::StoreLocked { .. })
    ));
    assert!(
        t.elapsed() >= Duration::from_millis(280),
        "{:?}",
        t.elapsed()
    );

    // A waiting writer gets the lock once the first one closes.
    let handle = std::thread::spawn(move || waiting.upsert(C, &batch(2)).map(|_| waiting));
    std::thread::sleep(Duration::from_millis(50));
    drop(first);
    let waiting = handle
        .join()
        .expect("thread")
        .expect("the waiting writer got the lock");
    assert_eq!(waiting.count(C).expect("count"), 2 * BATCH);
    // Read-only stores never write.
    let ro = LocalStore::open(
        dir.path(),
        LocalOptions {
            read_only: true,
            ..LocalOptions::default()
        },
    )
    .expect("open read-only");
    let e = ro.upsert(C, &batch(3)).expect_err("read-only");
    assert!(matches!(e, Error::ReadOnly { .. }), "{e:?}");
    assert!(e.to_string().contains("read-only"), "{e}");
    assert_eq!(ro.count(C).expect("count"), 2 * BATCH);
    drop(second);
    assert!(waiting.check().expect("check").is_ok());
}

/// Child process roles, selected by `LV_CONC_ROLE`.
#[test]
#[ignore = "child process entry point: run by the tests that spawn it"]
fn child_entry() {
    let Ok(role) = std::env::var("LV_CONC_ROLE") else {
        return;
    };
    let dir = std::env::var("LV_CONC_DIR").expect("dir");
    let dir = Path::new(&dir);
    match role.as_str() {
        "reader" => {
            let store = LocalStore::open(
                dir,
                LocalOptions {
                    read_only: true,
                    ..LocalOptions::default()
                },
            )
            .expect("reader open");
            let qs = common::clustered(7, 16, DIM, 8, 0.7);
            // Ready once it has read; searches until the parent's stop file
            // appears, then reads once more (bounded if the parent dies).
            let stop = dir.join("stop");
            let give_up = Instant::now() + Duration::from_secs(120);
            let first = read_once(&store, &qs[0]).expect("reader");
            println!("READY");
            std::io::Write::flush(&mut std::io::stdout()).expect("flush");
            let (mut searches, mut last) = (1, first);
            loop {
                let stopping = stop.exists() || Instant::now() > give_up;
                let n = read_once(&store, &qs[searches % qs.len()]).expect("reader");
                assert!(n >= last, "count went backwards");
                last = n;
                searches += 1;
                if stopping {
                    break;
                }
            }
            println!("READER searches={searches} first={first} last={last}");
        }
        "writer" => {
            let store = LocalStore::open(dir, LocalOptions::default()).expect("open");
            match store.upsert(C, &batch(99_999)) {
                Err(Error::StoreLocked { .. }) => println!("WRITER refused"),
                other => println!("WRITER unexpected {other:?}"),
            }
        }
        other => panic!("unknown role {other}"),
    }
}

fn spawn(role: &str, dir: &Path) -> std::process::Child {
    common::child_process()
        .env("LV_CONC_ROLE", role)
        .env("LV_CONC_DIR", dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn")
}

#[test]
fn reader_processes_see_committed_batches_while_one_writer_ingests() {
    if std::env::var("LV_CONC_ROLE").is_ok() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let store = LocalStore::open(dir.path(), LocalOptions::default()).expect("open");
    store.upsert(C, &batch(0)).expect("upsert");
    let mut readers: Vec<_> = (0..3).map(|_| spawn("reader", dir.path())).collect();
    // Each reader has opened the store and read once before any new batch.
    let mut reader_out = Vec::new();
    for r in &mut readers {
        let mut lines = std::io::BufReader::new(r.stdout.take().expect("stdout"));
        let mut line = String::new();
        loop {
            line.clear();
            let n = std::io::BufRead::read_line(&mut lines, &mut line).expect("read");
            assert!(n > 0, "a reader ended before it was ready");
            if line.contains("READY") {
                break;
            }
        }
        reader_out.push(lines);
    }
    let writer2 = spawn("writer", dir.path());
    let mut b = 1;
    while b <= 30 {
        store.upsert(C, &batch(b)).expect("upsert");
        b += 1;
        std::thread::sleep(Duration::from_millis(10));
    }
    std::fs::write(dir.path().join("stop"), b"").expect("stop file");
    let out = writer2.wait_with_output().expect("writer child");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("WRITER refused"),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (r, mut lines) in readers.into_iter().zip(reader_out) {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut lines, &mut text).expect("read");
        let out = r.wait_with_output().expect("reader child");
        assert!(
            out.status.success(),
            "{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let line = text
            .lines()
            .find_map(|l| l.find("READER").map(|i| &l[i..]))
            .unwrap_or_else(|| panic!("no report: {text}"));
        let field = |name: &str| -> usize {
            line.split_whitespace()
                .find_map(|f| f.strip_prefix(&format!("{name}=")))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{line}"))
        };
        // Ready before the new batches, last read after all of them.
        assert_eq!(field("first"), BATCH, "{line}");
        assert_eq!(field("last"), b * BATCH, "{line}");
    }
    // Nothing lost.
    assert_eq!(store.count(C).expect("count"), b * BATCH);
    drop(store);
    let store = LocalStore::open(dir.path(), LocalOptions::default()).expect("reopen");
    assert_eq!(store.count(C).expect("count"), b * BATCH);
    let report = store.check().expect("check");
    assert!(report.is_ok(), "{report:?}");
}

#[test]
fn backup_while_a_writer_ingests_is_consistent() {
    if std::env::var("LV_CONC_ROLE").is_ok() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(LocalStore::open(dir.path(), LocalOptions::default()).expect("open"));
    store.upsert(C, &batch(0)).expect("upsert");
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let (store, done) = (store.clone(), done.clone());
        std::thread::spawn(move || {
            let mut b = 1;
            while !done.load(Ordering::SeqCst) && b < 200 {
                store.upsert(C, &batch(b)).expect("upsert");
                if b % 4 == 0 {
                    // An overwrite (a tombstone and a new key in one transaction).
                    let mut r = batch(b + 1_000).remove(0);
                    r.id = format!("b{}-1", b - 1);
                    r.document = Some(format!("batch {}", b - 1));
                    store.upsert(C, &[r]).expect("overwrite");
                }
                b += 1;
            }
            b
        })
    };
    std::thread::sleep(Duration::from_millis(100));
    let dest = tempfile::tempdir().expect("tempdir");
    let mut copies = Vec::new();
    for i in 0..3 {
        let target = dest.path().join(format!("copy{i}"));
        store.backup(&target).expect("backup");
        copies.push(target);
        std::thread::sleep(Duration::from_millis(50));
    }
    done.store(true, Ordering::SeqCst);
    let written = writer.join().expect("writer");
    assert!(written > 3, "the writer made progress during the backups");
    for target in copies {
        let copy = LocalStore::open(&target, LocalOptions::default()).expect("open copy");
        let n = copy.count(C).expect("count");
        assert_eq!(n % BATCH, 0, "the copy holds a torn batch: {n}");
        let report = copy.check().expect("check");
        assert_eq!(report.integrity, ["ok"]);
        let c = &report.collections[0];
        assert_eq!(
            (
                c.records,
                c.missing_from_index,
                c.extra_in_index,
                c.vector_mismatches
            ),
            (c.recorded_count, 0, 0, 0),
            "{c:?}"
        );
        let probe = batch(0).remove(3);
        assert_eq!(
            copy.search(C, &probe.vector, 1).expect("search")[0].id,
            probe.id
        );
    }
}

#[test]
fn many_threads_search_a_memory_mapped_index() {
    if std::env::var("LV_CONC_ROLE").is_ok() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = LocalStore::open(dir.path(), LocalOptions::default()).expect("open");
        for b in 0..15 {
            store.upsert(C, &batch(b)).expect("upsert");
        }
    }
    // Reopened: the saved index is mapped, not copied, until a write.
    let store = Arc::new(LocalStore::open(dir.path(), LocalOptions::default()).expect("reopen"));
    let threads: Vec<_> = (0..24)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                let qs = common::clustered(300 + t, 8, DIM, 8, 0.7);
                for q in qs.iter().cycle().take(40) {
                    assert_eq!(read_once(&store, q).expect("search"), 15 * BATCH);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("searcher");
    }
    // A write copies the mapped index into memory and goes on.
    store.upsert(C, &batch(15)).expect("upsert");
    store.delete(C, &["b3-3".to_string()]).expect("delete");
    let probe = batch(15).remove(9);
    assert_eq!(
        store.search(C, &probe.vector, 1).expect("search")[0].id,
        probe.id
    );
    assert!(store.check().expect("check").is_ok());
}

//! Opening bad paths, read-only rules, a corrupt database and a full disk give
//! clear errors and leave existing data intact.

mod common;

use std::fs;
use std::path::Path;

use lobster_vector_core::{Error, Record, VectorStore};
use lobster_vector_local::{LocalOptions, LocalStore};

fn ro() -> LocalOptions {
    LocalOptions {
        read_only: true,
        ..LocalOptions::default()
    }
}

#[test]
fn a_store_path_that_is_a_file_is_an_io_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("file");
    fs::write(&file, b"hello").expect("write");
    let e = LocalStore::open(&file, LocalOptions::default()).expect_err("file");
    assert!(
        matches!(&e, Error::Io { path, .. } if path == &file),
        "{e:?}"
    );
    assert!(e.to_string().contains("store directory"), "{e}");
    let below = file.join("store");
    let e = LocalStore::open(&below, LocalOptions::default()).expect_err("under a file");
    assert!(matches!(e, Error::Io { .. }), "{e:?}");
    assert_eq!(fs::read(&file).expect("read"), b"hello");
}

#[test]
fn an_unwritable_location_is_an_io_error() {
    // /proc refuses new directories even to root.
    let e = LocalStore::open(
        Path::new("/proc/lobster-vector-test/store"),
        LocalOptions::default(),
    )
    .expect_err("unwritable");
    assert!(matches!(e, Error::Io { .. }), "{e:?}");
}

#[test]
fn read_only_needs_an_existing_store_and_refuses_writes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nothing");
    let e = LocalStore::open(&missing, ro()).expect_err("missing");
    assert!(matches!(e, Error::Io { .. }), "{e:?}");
    assert!(!missing.exists(), "read-only open created a directory");
    let empty = dir.path().join("empty");
    fs::create_dir(&empty).expect("mkdir");
    let e = LocalStore::open(&empty, ro()).expect_err("no database");
    assert!(matches!(e, Error::Io { .. }), "{e:?}");
    {
        let s = LocalStore::open(&empty, LocalOptions::default()).expect("create");
        s.upsert("abc", &[Record::new("a", vec![1.0, 2.0])])
            .expect("upsert");
    }
    let s = LocalStore::open(&empty, ro()).expect("open read-only");
    assert_eq!(s.count("abc").expect("count"), 1);
    for e in [
        s.upsert("abc", &[Record::new("b", vec![1.0, 2.0])])
            .expect_err("upsert"),
        s.delete("abc", &["a".into()]).expect_err("delete"),
        s.compact().expect_err("compact"),
    ] {
        assert!(
            matches!(&e, Error::ReadOnly { path, .. } if path == &empty),
            "{e:?}"
        );
    }
    assert_eq!(s.count("abc").expect("count"), 1);
}

#[test]
fn a_corrupt_database_file_is_an_io_error_not_a_panic() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(dir.path().join("store.sqlite3"), vec![0x5a; 8192]).expect("write");
    for opts in [LocalOptions::default(), ro()] {
        let e = LocalStore::open(dir.path(), opts).expect_err("garbage db");
        assert!(matches!(e, Error::Io { .. }), "{e:?}");
    }
}

const C: &str = "fill_test";

const FILL_BATCH: usize = 1_000;

fn batch(b: usize) -> Vec<Record> {
    let mut r = common::rng(b as u64);
    (0..FILL_BATCH)
        .map(|i| Record::new(format!("b{b}-{i}"), common::random_vector(&mut r, 32)))
        .collect()
}

/// A cheap graph: this test is about the disk, not recall.
fn fill_options() -> LocalOptions {
    LocalOptions {
        hnsw: lobster_vector_local::HnswParams {
            m: 8,
            ef_construction: 32,
            ef_search: 32,
            ..Default::default()
        },
        exact_search_below: usize::MAX,
        ..LocalOptions::default()
    }
}

/// Child: with a file size limit, write batches until the "disk" is full.
#[test]
#[ignore = "child process entry point: run by the tests that spawn it"]
fn child_entry() {
    let Ok(dir) = std::env::var("LV_FULL_DISK_DIR") else {
        return;
    };
    let limit: u64 = std::env::var("LV_FULL_DISK_LIMIT")
        .expect("limit")
        .parse()
        .expect("n");
    // SAFETY: plain libc calls with valid arguments, before any other thread runs.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        let lim = libc::rlimit {
            rlim_cur: limit,
            rlim_max: limit,
        };
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &lim), 0);
    }
    let store = LocalStore::open(Path::new(&dir), fill_options()).expect("open");
    let start = store.count(C).expect("count") / FILL_BATCH;
    let mut acked = start;
    for b in start..start + 1_000 {
        match store.upsert(C, &batch(b)) {
            Ok(()) => acked = b + 1,
            Err(e) => {
                println!(
                    "FULL acked={acked} io={} error={e}",
                    matches!(e, Error::Io { .. })
                );
                return;
            }
        }
    }
    println!("NEVER FULL");
}

#[test]
fn a_full_disk_is_a_clear_error_and_keeps_acknowledged_data() {
    if std::env::var("LV_FULL_DISK_DIR").is_ok() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let s = LocalStore::open(dir.path(), fill_options()).expect("open");
        for b in 0..4 {
            s.upsert(C, &batch(b)).expect("upsert");
        }
    }
    let used: u64 = fs::metadata(dir.path().join("store.sqlite3"))
        .expect("db")
        .len();
    let out = common::child_process()
        .env("LV_FULL_DISK_DIR", dir.path())
        .env("LV_FULL_DISK_LIMIT", (used + 2 * 1024 * 1024).to_string())
        .output()
        .expect("child");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find_map(|l| l.find("FULL ").map(|i| &l[i..]))
        .unwrap_or_else(|| panic!("{text}\n{}", String::from_utf8_lossy(&out.stderr)));
    eprintln!("{line}");
    assert!(line.contains("io=true"), "{line}");
    let acked: usize = line
        .split_whitespace()
        .find_map(|f| f.strip_prefix("acked="))
        .and_then(|v| v.parse().ok())
        .expect("acked");
    assert!(acked >= 4, "{line}");
    let s = LocalStore::open(dir.path(), fill_options()).expect("reopen");
    assert_eq!(s.count(C).expect("count"), acked * FILL_BATCH, "{line}");
    let report = s.check().expect("check");
    assert_eq!(report.integrity, ["ok"]);
    assert!(report
        .collections
        .iter()
        .all(|c| c.missing_from_index == 0 && c.extra_in_index == 0));
    let probe = batch(1).remove(7);
    assert_eq!(
        s.search(C, &probe.vector, 1).expect("search")[0].id,
        probe.id
    );
}

#[test]
fn open_existing_creates_nothing_and_opens_what_exists() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("typo");
    let e = LocalStore::open_existing(&missing, LocalOptions::default()).expect_err("missing");
    assert!(
        matches!(&e, Error::Io { path, source, .. }
            if path == &missing && source.kind() == std::io::ErrorKind::NotFound),
        "{e:?}"
    );
    assert!(!missing.exists(), "open_existing created a directory");
    let empty = dir.path().join("empty");
    fs::create_dir(&empty).expect("mkdir");
    LocalStore::open_existing(&empty, LocalOptions::default()).expect_err("no database");
    assert_eq!(fs::read_dir(&empty).expect("read dir").count(), 0);
    {
        let s = LocalStore::open(&empty, LocalOptions::default()).expect("create");
        s.upsert("abc", &[Record::new("a", vec![1.0, 2.0])])
            .expect("upsert");
    }
    let s = LocalStore::open_existing(&empty, LocalOptions::default()).expect("open");
    assert!(!s.options().read_only, "a writable store opened read-only");
    assert_eq!(s.count("abc").expect("count"), 1);
}

//! Crash safety: a child process ingesting batches is killed with SIGKILL at
//! random moments; the store must always reopen sound, hold a whole number of
//! acknowledged batches, and its index must agree with SQLite. A child is also
//! aborted at each stage of an index save.
//!
//! The child is this test binary re-invoked with `LV_CRASH_CHILD` set, running
//! the `child_entry` test.

mod common;

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use lobster_vector_core::{Metadata, Record, VectorStore};
use lobster_vector_local::{HnswParams, LocalOptions, LocalStore};
use rand::Rng;

const C: &str = "crash_test";
const DIM: usize = 16;
const BATCH: usize = 50;
const OVERWRITES: usize = 5;
const DELETES: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// `BATCH` new ids `b{b}-{i}`, and new vectors for the first `OVERWRITES` ids of batch `b - 1`.
    Upsert(usize),
    /// Deletes the last `DELETES` ids of batch `b`.
    Delete(usize),
}

/// The j-th operation of the deterministic workload.
fn op(j: usize) -> Op {
    // Per 3 batches: U, U, U, D → 4 ops.
    let (round, pos) = (j / 4, j % 4);
    if pos < 3 {
        Op::Upsert(round * 3 + pos)
    } else {
        Op::Delete(round * 3 + 2)
    }
}

/// Record count after the first `n` operations.
fn count_after(n: usize) -> usize {
    (0..n)
        .map(|j| match op(j) {
            Op::Upsert(_) => BATCH as isize,
            Op::Delete(_) => -(DELETES as isize),
        })
        .sum::<isize>() as usize
}

fn vector(seed: u64) -> Vec<f32> {
    let mut r = common::rng(seed);
    common::random_vector(&mut r, DIM)
}

fn upsert_batch(b: usize) -> Vec<Record> {
    let mut out: Vec<Record> = (0..BATCH)
        .map(|i| {
            let mut m = Metadata::new();
            m.insert("v".into(), serde_json::json!(b));
            Record::new(format!("b{b}-{i}"), vector((b * 1000 + i) as u64)).with_metadata(m)
        })
        .collect();
    if b > 0 {
        for i in 0..OVERWRITES {
            let mut m = Metadata::new();
            m.insert("v".into(), serde_json::json!(b));
            out.push(
                Record::new(
                    format!("b{}-{i}", b - 1),
                    vector((b * 1000 + 500 + i) as u64),
                )
                .with_metadata(m),
            );
        }
    }
    out
}

fn delete_ids(b: usize) -> Vec<String> {
    (BATCH - DELETES..BATCH)
        .map(|i| format!("b{b}-{i}"))
        .collect()
}

fn child_options() -> LocalOptions {
    LocalOptions {
        // Frequent index saves, so kills also land inside saves.
        autosave_every: 120,
        lock_timeout: Duration::from_secs(5),
        exact_search_below: usize::MAX,
        hnsw: HnswParams {
            m: 8,
            ef_construction: 40,
            ef_search: 32,
            ..Default::default()
        },
        ..LocalOptions::default()
    }
}

/// Child: run operations from `LV_CRASH_START` on, appending each acknowledged
/// operation's index to `LV_CRASH_ACKS`, until killed.
#[test]
#[ignore = "child process entry point: run by the tests that spawn it"]
fn child_entry() {
    let Ok(dir) = std::env::var("LV_CRASH_CHILD") else {
        return;
    };
    let start: usize = std::env::var("LV_CRASH_START")
        .expect("start")
        .parse()
        .expect("number");
    let acks = std::env::var("LV_CRASH_ACKS").expect("acks");
    if let Ok(stage) = std::env::var("LV_ABORT_IN_SAVE") {
        lobster_vector_local::fault::abort_in_index_save(stage.parse().expect("stage"));
    }
    let store = LocalStore::open(Path::new(&dir), child_options()).expect("child open");
    let mut ack = fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(acks)
        .expect("acks");
    for j in start..start + 100_000 {
        match op(j) {
            Op::Upsert(b) => store.upsert(C, &upsert_batch(b)).expect("child upsert"),
            Op::Delete(b) => {
                let n = store.delete(C, &delete_ids(b)).expect("child delete");
                assert_eq!(n, DELETES);
            }
        }
        writeln!(ack, "{j}").expect("ack");
    }
}

fn spawn_child(
    dir: &Path,
    start: usize,
    acks: &Path,
    abort_stage: Option<u8>,
) -> std::process::Child {
    let mut cmd = common::child_process();
    cmd.env("LV_CRASH_CHILD", dir)
        .env("LV_CRASH_START", start.to_string())
        .env("LV_CRASH_ACKS", acks)
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(s) = abort_stage {
        cmd.env("LV_ABORT_IN_SAVE", s.to_string());
    }
    cmd.spawn().expect("spawn child")
}

fn last_ack(acks: &Path) -> Option<usize> {
    let text = fs::read_to_string(acks).unwrap_or_default();
    // A line cut by the kill has no newline yet: ignore it.
    let complete = match text.rfind('\n') {
        Some(i) => &text[..i],
        None => "",
    };
    complete.lines().filter_map(|l| l.parse().ok()).max()
}

/// Opens the store after a crash and checks everything; returns how many
/// operations are committed.
fn verify(dir: &Path, acked_ops: usize, sample_seed: u64) -> usize {
    let store = LocalStore::open(
        dir,
        LocalOptions {
            read_only: true,
            ..child_options()
        },
    )
    .expect("the store opens after a crash");
    let report = store.check().expect("check");
    assert_eq!(report.integrity, ["ok"], "integrity_check after a crash");
    if acked_ops == 0 && !store.has_collection(C).expect("has") {
        return 0;
    }
    let c = report
        .collections
        .iter()
        .find(|c| c.name == C)
        .expect("collection");
    assert_eq!(c.records, c.recorded_count, "{c:?}");
    assert_eq!(
        (
            c.index_entries,
            c.missing_from_index,
            c.extra_in_index,
            c.vector_mismatches
        ),
        (c.records, 0, 0, 0),
        "index and SQLite disagree: {c:?}"
    );
    let count = store.count(C).expect("count");
    // Acknowledged operations are all there; at most one more (committed, not yet acknowledged).
    let committed = if count == count_after(acked_ops) {
        acked_ops
    } else if count == count_after(acked_ops + 1) {
        acked_ops + 1
    } else {
        panic!(
            "count {count} is no whole number of operations ({} acknowledged: {} or {})",
            acked_ops,
            count_after(acked_ops),
            count_after(acked_ops + 1)
        );
    };
    // The last committed operation is complete, the next one absent.
    if committed > 0 {
        match op(committed - 1) {
            Op::Upsert(b) => {
                let want: Vec<String> = upsert_batch(b).iter().map(|r| r.id.clone()).collect();
                let got = store.get(C, &want).expect("get");
                assert_eq!(got.len(), want.len(), "partial batch {b}");
                assert!(
                    got.iter()
                        .all(|r| r.metadata.get("v") == Some(&serde_json::json!(b))),
                    "batch {b} only partly overwrote"
                );
            }
            Op::Delete(b) => {
                assert!(
                    store.get(C, &delete_ids(b)).expect("get").is_empty(),
                    "partial delete {b}"
                );
            }
        }
    }
    match op(committed) {
        Op::Upsert(b) => {
            let news: Vec<String> = (0..BATCH).map(|i| format!("b{b}-{i}")).collect();
            assert!(
                store.get(C, &news).expect("get").is_empty(),
                "uncommitted batch {b} visible"
            );
        }
        Op::Delete(b) => {
            assert_eq!(
                store.get(C, &delete_ids(b)).expect("get").len(),
                DELETES,
                "uncommitted delete {b}"
            );
        }
    }
    // Every surviving vector (a sample) finds itself first.
    let mut r = common::rng(sample_seed);
    let batches = (0..committed)
        .filter(|j| matches!(op(*j), Op::Upsert(_)))
        .count();
    if batches > 0 {
        let sample: Vec<String> = (0..25)
            .map(|_| {
                format!(
                    "b{}-{}",
                    r.random_range(0..batches),
                    r.random_range(0..BATCH)
                )
            })
            .collect();
        for rec in store.get(C, &sample).expect("get") {
            let hits = store.search(C, &rec.vector, 1).expect("search");
            assert_eq!(hits[0].id, rec.id, "a surviving vector finds itself first");
        }
    }
    committed
}

#[test]
fn sigkill_at_random_moments_never_tears_a_batch() {
    if std::env::var("LV_CRASH_CHILD").is_ok() {
        return;
    }
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("tempdir");
    let store_dir = dir.path().join("store");
    let mut committed = 0;
    let mut r = common::rng(2024);
    let kills: u64 = 60;
    for round in 0..kills {
        let acks = dir.path().join(format!("acks-{round}"));
        let mut child = spawn_child(&store_dir, committed, &acks, None);
        if round % 2 == 1 {
            // Half the kills land anywhere from start-up (open, index load, replay) on…
            std::thread::sleep(Duration::from_millis(r.random_range(5..150)));
        } else {
            // …the other half while batches are being written and indexes saved.
            let deadline = Instant::now() + Duration::from_secs(10);
            while last_ack(&acks).is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(2));
            }
            std::thread::sleep(Duration::from_millis(r.random_range(0..120)));
        }
        child.kill().expect("SIGKILL");
        child.wait().expect("wait");
        let acked = last_ack(&acks).map_or(committed, |j| j + 1);
        assert!(acked >= committed);
        committed = verify(&store_dir, acked, round);
    }
    eprintln!(
        "{kills} kills, {committed} operations committed ({} records), {:.1} s",
        count_after(committed),
        started.elapsed().as_secs_f64()
    );
    assert!(committed as u64 > kills, "the children made progress");
}

#[test]
fn abort_at_each_stage_of_an_index_save() {
    if std::env::var("LV_CRASH_CHILD").is_ok() {
        return;
    }
    for stage in 1..=4u8 {
        let dir = tempfile::tempdir().expect("tempdir");
        let store_dir = dir.path().join("store");
        // A first child writes and saves normally (the autosave runs every 120 vectors).
        let acks = dir.path().join("acks-a");
        let mut child = spawn_child(&store_dir, 0, &acks, None);
        let deadline = Instant::now() + Duration::from_secs(20);
        while last_ack(&acks).unwrap_or(0) < 8 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        child.kill().expect("kill");
        child.wait().expect("wait");
        let committed = verify(&store_dir, last_ack(&acks).map_or(0, |j| j + 1), 1);
        // The second child aborts inside its first index save.
        let acks = dir.path().join("acks-b");
        let mut child = spawn_child(&store_dir, committed, &acks, Some(stage));
        let status = child.wait().expect("wait");
        assert!(
            !status.success(),
            "stage {stage}: the child should have aborted"
        );
        let acked = last_ack(&acks).map_or(committed, |j| j + 1);
        let leftovers: Vec<_> = fs::read_dir(store_dir.join("index"))
            .expect("index dir")
            .flatten()
            .map(|e| e.file_name())
            .collect();
        let committed = verify(&store_dir, acked, u64::from(stage));
        assert!(committed >= acked, "stage {stage}");
        // A writer reopening cleans the temporary files and goes on.
        let store = LocalStore::open(&store_dir, child_options()).expect("reopen");
        store
            .upsert(C, &upsert_batch(10_000))
            .expect("upsert after the crash");
        store.flush().expect("flush");
        let names: Vec<String> = fs::read_dir(store_dir.join("index"))
            .expect("index dir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            names.iter().all(|n| !n.ends_with(".tmp")),
            "stage {stage}: {names:?} (after the crash: {leftovers:?})"
        );
        let report = store.check().expect("check");
        assert!(report.is_ok(), "stage {stage}: {report:?}");
    }
}

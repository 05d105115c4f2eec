//! `build --force` killed with SIGKILL at 24 or more points of its run (at
//! least 6 while it writes), on the real MiniLM model and the real local
//! store, while another process searches without pause: every search
//! answers from the old or the new build, never "no collection", and the
//! store checks clean after each kill. Skips without the model; fails
//! instead when LOBSTER_TEST_REQUIRE_SERVICES=1.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::lv;
use lobster_vector_core::testing::service_unavailable;
use serde_json::Value;

/// Kills at least; more until `MID_WRITE` of them left a partial build (at most `MAX_KILLS`).
const KILLS: u32 = 24;
const MID_WRITE: u32 = 6;
const MAX_KILLS: u32 = 80;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../lobster-vector-match/tests/fixtures/mini_cl.obo")
}

fn build(store: &Path, force: bool) -> std::process::Command {
    let mut cmd = lv(store);
    cmd.args([
        "build",
        "--source",
        fixture().to_str().expect("utf-8"),
        "-q",
    ]);
    if force {
        cmd.arg("--force");
    }
    cmd
}

#[test]
fn searches_never_lose_the_collection_while_rebuilds_are_killed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = tmp.path().join("store");
    let out = build(&store, false).output().expect("build");
    if !out.status.success() {
        service_unavailable::<()>(&format!(
            "the real MiniLM model ({})",
            String::from_utf8_lossy(&out.stderr)
        ));
        return;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let searcher = {
        let (stop, failures, store) = (stop.clone(), failures.clone(), store.clone());
        std::thread::spawn(move || {
            let mut searches = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let out = lv(&store)
                    .args(["search", "lymph cells", "-o", "cl", "-k", "1", "--json"])
                    .output()
                    .expect("search");
                searches += 1;
                let ok = out.status.success()
                    && serde_json::from_slice::<Value>(&out.stdout).is_ok_and(|v| {
                        v["results"]["cell_ontology"][0]["ontology_id"]
                            .as_str()
                            .is_some_and(|id| id.starts_with("CL:"))
                    });
                if !ok {
                    failures.lock().expect("lock").push(format!(
                        "exit {:?}: {}{}",
                        out.status.code(),
                        String::from_utf8_lossy(&out.stdout),
                        String::from_utf8_lossy(&out.stderr)
                    ));
                }
            }
            searches
        })
    };
    // How long a whole rebuild takes beside the searcher: the kills are
    // spread over it.
    let started = Instant::now();
    assert!(build(&store, true).status().expect("rebuild").success());
    let span = started.elapsed();

    // Kill at points spread over the rebuild's run (and a little past it,
    // for a loaded machine) until enough kills have landed while it was
    // writing.
    let mut killed_mid_write = 0;
    let mut kills = 0;
    while kills < KILLS || (killed_mid_write < MID_WRITE && kills < MAX_KILLS) {
        let i = kills;
        kills += 1;
        let mut child = build(&store, true).spawn().expect("spawn rebuild");
        std::thread::sleep(span.mul_f64(f64::from(1 + i % 12) / 10.0));
        let _ = child.kill();
        let _ = child.wait();
        let check = lv(&store)
            .args(["store", "check", "-q"])
            .output()
            .expect("check");
        assert!(
            check.status.success(),
            "kill {i}: {}",
            String::from_utf8_lossy(&check.stderr)
        );
        let out = lv(&store)
            .args(["collections", "--json"])
            .output()
            .expect("collections");
        let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
        let rows = v["collections"].as_array().expect("collections");
        if rows.iter().any(|c| c["artifact"].is_null()) {
            killed_mid_write += 1;
        }
    }
    // The kills did land while a rebuild was writing, not only before or after.
    assert!(
        killed_mid_write >= 3,
        "only {killed_mid_write} kills left a partial build"
    );
    // A rebuild that is left to finish replaces what is there.
    assert!(build(&store, true).status().expect("rebuild").success());
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let searches = searcher.join().expect("searcher");
    let failures = failures.lock().expect("lock");
    assert!(
        failures.is_empty(),
        "{} of {searches} searches failed: {:#?}",
        failures.len(),
        &failures[..failures.len().min(3)]
    );
    assert!(searches >= 10, "only {searches} searches ran");
    // Exactly one build is left.
    let out = lv(&store)
        .args(["collections", "--json"])
        .output()
        .expect("collections");
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["collections"].as_array().map(Vec::len), Some(1), "{v}");
}

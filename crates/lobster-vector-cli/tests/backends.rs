//! The whole service on each persistent backend, through the binary: `build`
//! a small Cell Ontology source with the real MiniLM model, then `search` and
//! `map` in later processes, and the answers equal the `local` store's.
//! A build into PostgreSQL killed with SIGKILL leaves the previous build
//! serving, and the next build finishes.
//! Skips without the model (or, for pgvector, without `LOBSTER_PGVECTOR_URL`);
//! fails instead when LOBSTER_TEST_REQUIRE_SERVICES=1.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lobster_vector_core::testing::service_unavailable;
use serde_json::Value;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../lobster-vector-match/tests/fixtures/mini_cl.obo")
}

/// The pgvector tests build the same collection names in the one test
/// database: one at a time.
static PG: Mutex<()> = Mutex::new(());

fn command(backend: &str, env: &[(&str, &Path)], args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lobster-vector"));
    cmd.args(args)
        .env("LOBSTER_VECTOR_BACKEND", backend)
        .env_remove("LOBSTER_EMBEDDING_PROVIDER")
        .env_remove("LOBSTER_RERANKER");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

fn run(backend: &str, env: &[(&str, &Path)], args: &[&str]) -> Output {
    command(backend, env, args)
        .output()
        .expect("run lobster-vector")
}

fn ok_json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "exit {:?}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// The model is there (else skip or fail as the environment says).
fn model_available() -> bool {
    let out = run("memory", &[], &["info", "--json"]);
    let v = ok_json(&out);
    let minilm = v["models"]["minilm"].as_str().unwrap_or("not found");
    if !minilm.starts_with("not found") {
        return true;
    }
    service_unavailable::<()>(&format!("the MiniLM model ({minilm})")).is_some()
}

/// Ontology ids of the first `search` results, and of the `map` answers,
/// after a `build` on `backend`.
fn answers(backend: &str, env: &[(&str, &Path)]) -> (Vec<String>, Vec<Value>) {
    let source = fixture();
    let source = source.to_str().expect("utf-8 path");
    let built = ok_json(&run(
        backend,
        env,
        &[
            "build",
            "--ontology",
            "cl",
            "--source",
            source,
            "--force",
            "--json",
            "-q",
        ],
    ));
    assert_eq!(built["backend"], backend, "{built}");
    let found = ok_json(&run(
        backend,
        env,
        &[
            "search",
            "killer T lymphocyte",
            "--ontology",
            "cl",
            "-k",
            "5",
            "--json",
            "-q",
        ],
    ));
    let hits = found["results"]
        .as_object()
        .and_then(|m| m.values().next())
        .and_then(Value::as_array)
        .unwrap_or_else(|| panic!("no results: {found}"));
    let ids: Vec<String> = hits
        .iter()
        .map(|h| h["ontology_id"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(ids.len(), 5, "{found}");
    let tmp = tempfile::tempdir().expect("temp dir");
    let input = tmp.path().join("labels.txt");
    std::fs::write(&input, "macrophage\nCD8 positive T cells\nnatural killer\n").expect("write");
    let output = tmp.path().join("mapped.jsonl");
    let (input, output_arg) = (
        input.to_str().expect("utf-8"),
        output.to_str().expect("utf-8"),
    );
    let out = run(
        backend,
        env,
        &[
            "map",
            "--input",
            input,
            "--ontology",
            "cl",
            "--output",
            output_arg,
            "-q",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mapped: Vec<Value> = std::fs::read_to_string(&output)
        .expect("mapped output")
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("a JSON line");
            v["ontology_id"].clone()
        })
        .collect();
    assert_eq!(mapped.len(), 3, "{mapped:?}");
    (ids, mapped)
}

fn compare_with_local(backend: &str, env: &[(&str, &Path)]) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let local = tmp.path().join("local");
    let (want_ids, want_map) = answers("local", &[("LOBSTER_VECTOR_STORE_PATH", &local)]);
    let (ids, mapped) = answers(backend, env);
    // Each backend fits its own matcher on its own neighbours, whose
    // distances agree to ~1e-5: the best concept and the five found are the
    // same, near-ties below the top may swap.
    assert_eq!(
        ids[0], want_ids[0],
        "{backend} vs local: {ids:?} {want_ids:?}"
    );
    let set = |v: &[String]| v.iter().cloned().collect::<std::collections::BTreeSet<_>>();
    assert_eq!(set(&ids), set(&want_ids), "{backend} vs local");
    assert_eq!(mapped, want_map, "{backend} vs local");
    assert!(ids.iter().all(|id| id.starts_with("CL:")), "{ids:?}");
}

#[test]
fn faiss_builds_searches_and_maps_like_local() {
    if !model_available() {
        return;
    }
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("faiss");
    compare_with_local("faiss", &[("LOBSTER_FAISS_PATH", &dir)]);
    assert!(dir.join("manifest.json").is_file());
}

#[test]
fn pgvector_builds_searches_and_maps_like_local() {
    if !model_available() {
        return;
    }
    if !pg_available() {
        return;
    }
    let _one = PG.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    compare_with_local("pgvector", &[]);
}

fn pg_available() -> bool {
    if std::env::var("LOBSTER_PGVECTOR_URL").map_or(true, |u| u.is_empty()) {
        service_unavailable::<()>("PostgreSQL (LOBSTER_PGVECTOR_URL)");
        return false;
    }
    true
}

/// The best concept for "killer T lymphocyte" on pgvector, or the failure.
fn pg_top_answer() -> Result<String, String> {
    let out = run(
        "pgvector",
        &[],
        &[
            "search",
            "killer T lymphocyte",
            "-o",
            "cl",
            "-k",
            "1",
            "--json",
            "-q",
        ],
    );
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let v: Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    v["results"]["cell_ontology"][0]["ontology_id"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| v.to_string())
}

/// The cell-ontology builds pgvector lists, and how many are unfinished.
fn pg_cl_builds() -> (usize, usize) {
    let v = ok_json(&run("pgvector", &[], &["collections", "--json", "-q"]));
    let rows: Vec<&Value> = v["collections"]
        .as_array()
        .expect("collections")
        .iter()
        .filter(|c| {
            c["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("cell_ontology"))
        })
        .collect();
    let partial = rows.iter().filter(|c| c["artifact"].is_null()).count();
    (rows.len(), partial)
}

#[test]
fn a_pgvector_build_killed_mid_write_leaves_the_old_build_serving() {
    if !model_available() || !pg_available() {
        return;
    }
    let _one = PG.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let source = fixture();
    let source = source.to_str().expect("utf-8 path");
    let build = [
        "build",
        "--ontology",
        "cl",
        "--source",
        source,
        "--force",
        "-q",
    ];
    assert!(run("pgvector", &[], &build).status.success());
    let want = pg_top_answer().expect("search after the first build");
    // A build writing one entry per batch, timed whole: the kills are
    // spread over its run, and go on until enough landed while it wrote.
    let slow: Vec<&str> = build.iter().copied().chain(["--batch-size", "1"]).collect();
    let started = Instant::now();
    assert!(run("pgvector", &[], &slow).status.success());
    let span = started.elapsed();
    let (mut kills, mut mid_write) = (0u32, 0u32);
    while kills < 12 || (mid_write < 4 && kills < 48) {
        let mut child = command("pgvector", &[], &slow)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn build");
        std::thread::sleep(span.mul_f64(f64::from(1 + kills % 12) / 10.0));
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(
            pg_top_answer().as_deref(),
            Ok(want.as_str()),
            "search after kill {kills}"
        );
        if pg_cl_builds().1 > 0 {
            mid_write += 1;
        }
        kills += 1;
    }
    eprintln!("{mid_write} of {kills} kills left a partial build");
    assert!(
        mid_write >= 4,
        "only {mid_write} of {kills} kills left a partial build"
    );
    // The rerun finishes and replaces what the kills left.
    assert!(run("pgvector", &[], &build).status.success());
    assert_eq!(pg_top_answer().as_deref(), Ok(want.as_str()));
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(pg_cl_builds(), (1, 0));
}

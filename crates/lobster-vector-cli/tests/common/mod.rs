//! Shared by the test binaries that run the real CLI on the real Cell
//! Ontology: the command, JSON output, and one CL store built once.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use lobster_vector_core::testing::service_unavailable;
use serde_json::Value;

pub fn lv(store: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lobster-vector"));
    cmd.env("LOBSTER_VECTOR_BACKEND", "local")
        .env("LOBSTER_VECTOR_STORE_PATH", store)
        .env_remove("LOBSTER_EMBEDDING_PROVIDER")
        .env_remove("LOBSTER_RERANKER")
        .env_remove("LOBSTER_SERVE_TOKEN")
        .env_remove("LOBSTER_SERVE_ADDR");
    cmd
}

pub fn stdout_json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "exit {:?}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

/// A store holding the real Cell Ontology, built once for every test here
/// (under the target directory, so a later run reuses it); `None` (skip)
/// without the assets.
pub fn cl_store() -> Option<&'static Path> {
    static STORE: OnceLock<Option<PathBuf>> = OnceLock::new();
    STORE
        .get_or_init(|| {
            let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cl-store");
            let out = lv(&dir)
                .args(["build", "--ontology", "cell_type", "--json", "-q"])
                .output()
                .expect("run build");
            if !out.status.success() {
                let err = String::from_utf8_lossy(&out.stderr).to_string();
                return service_unavailable(&format!(
                    "the real MiniLM model and CL source ({err})"
                ));
            }
            let report = stdout_json(&out);
            let entries = report["collections"][0]["entries"].as_u64().unwrap_or(0);
            let skipped = report["collections"][0]["skipped"]
                .as_bool()
                .unwrap_or(false);
            assert!(entries > 5000 || skipped, "{report}");
            Some(dir)
        })
        .as_deref()
}

//! A store nobody may write (`chmod -R a-w`) is searched by an unprivileged
//! user: no lock file, no index file, the answers of the writable store; a
//! missing index is rebuilt in memory with one warning per collection.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{cl_store, lv, stdout_json};
use serde_json::Value;

/// The uid the unprivileged runs use when the tests run as root (`nobody`).
const NOBODY: u32 = 65534;

fn is_root() -> bool {
    fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(1) == 0
}

/// Hard-links (or, across file systems, copies) the tree `from` to `to`.
fn mirror(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("create dir");
    for entry in fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if entry.file_type().expect("type").is_dir() {
            mirror(&src, &dst);
        } else if fs::hard_link(&src, &dst).is_err() {
            fs::copy(&src, &dst).expect("copy");
        }
    }
}

/// Sets the permissions of every file and directory under `root`.
fn chmod_tree(root: &Path, dir_mode: u32, file_mode: u32) {
    let mode = if root.is_dir() { dir_mode } else { file_mode };
    fs::set_permissions(root, fs::Permissions::from_mode(mode)).expect("chmod");
    if root.is_dir() {
        for entry in fs::read_dir(root).expect("read dir") {
            chmod_tree(&entry.expect("entry").path(), dir_mode, file_mode);
        }
    }
}

/// A copy of the CL store, the assets and the binary that an unprivileged
/// user can read, under a world-traversable temporary directory.
struct Sandbox {
    root: tempfile::TempDir,
}

impl Sandbox {
    fn new(store: &Path) -> Self {
        let root = tempfile::Builder::new()
            .prefix("lv-unwritable")
            .tempdir_in(std::env::temp_dir())
            .expect("tempdir");
        fs::set_permissions(root.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
        let info = stdout_json(&lv(store).args(["info", "--json"]).output().expect("info"));
        let assets = PathBuf::from(
            info["configuration"]["assets_dir"]
                .as_str()
                .expect("assets_dir"),
        );
        mirror(&assets, &root.path().join("assets"));
        fs::copy(
            env!("CARGO_BIN_EXE_lobster-vector"),
            root.path().join("lobster-vector"),
        )
        .expect("copy the binary");
        fs::create_dir(root.path().join("store")).expect("store dir");
        for name in ["store.sqlite3", "index"] {
            let src = store.join(name);
            let dst = root.path().join("store").join(name);
            if src.is_dir() {
                fs::create_dir(&dst).expect("index dir");
                for e in fs::read_dir(&src).expect("index") {
                    let e = e.expect("entry");
                    let file = e.file_name();
                    if file.to_string_lossy().ends_with(".lock") {
                        continue;
                    }
                    fs::copy(e.path(), dst.join(file)).expect("copy index file");
                }
            } else {
                fs::copy(&src, &dst).expect("copy the database");
            }
        }
        chmod_tree(&root.path().join("assets"), 0o755, 0o644);
        fs::set_permissions(
            root.path().join("lobster-vector"),
            fs::Permissions::from_mode(0o755),
        )
        .expect("chmod");
        Self { root }
    }

    fn store(&self) -> PathBuf {
        self.root.path().join("store")
    }

    fn freeze(&self) {
        chmod_tree(&self.store(), 0o555, 0o444);
    }

    fn thaw(&self) {
        chmod_tree(&self.store(), 0o755, 0o644);
    }

    /// The copied binary, as `nobody` when the tests run as root.
    fn run(&self, args: &[&str]) -> Output {
        let bin = self.root.path().join("lobster-vector");
        let mut cmd = if is_root() {
            let mut c = Command::new("setpriv");
            c.arg(format!("--reuid={NOBODY}"))
                .arg(format!("--regid={NOBODY}"))
                .arg("--clear-groups")
                .arg(&bin);
            c
        } else {
            Command::new(&bin)
        };
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.root.path())
            .env("LOBSTER_VECTOR_BACKEND", "local")
            .env("LOBSTER_VECTOR_STORE_PATH", self.store())
            .env("LOBSTER_ASSETS_DIR", self.root.path().join("assets"))
            .output()
            .expect("run the copied binary")
    }

    fn files(&self) -> Vec<String> {
        let mut out = Vec::new();
        for dir in [self.store(), self.store().join("index")] {
            for e in fs::read_dir(dir).expect("read dir") {
                out.push(e.expect("entry").file_name().to_string_lossy().into_owned());
            }
        }
        out.sort();
        out
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.thaw();
    }
}

fn ids(report: &Value) -> Vec<String> {
    report["results"]["cell_ontology"]
        .as_array()
        .unwrap_or_else(|| panic!("no cell_ontology results: {report}"))
        .iter()
        .map(|m| m["ontology_id"].as_str().expect("ontology_id").to_string())
        .collect()
}

const QUERY: [&str; 7] = [
    "search",
    "CD8+ T cells",
    "-o",
    "cell_type",
    "-k",
    "5",
    "--json",
];

#[test]
fn an_unwritable_store_is_searched_by_an_unprivileged_user() {
    let Some(store) = cl_store() else { return };
    let want = ids(&stdout_json(
        &lv(store).args(QUERY).output().expect("search"),
    ));
    assert_eq!(want.len(), 5, "{want:?}");

    let sandbox = Sandbox::new(store);
    sandbox.freeze();
    let before = sandbox.files();
    assert!(!before.iter().any(|f| f == "write.lock"), "{before:?}");

    let out = sandbox.run(&QUERY);
    assert_eq!(ids(&stdout_json(&out)), want);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("WARN"), "{stderr}");
    assert_eq!(sandbox.files(), before, "a read-only search created files");

    // Writing is refused with the reason, before any work.
    let out = sandbox.run(&["curate", "add", "my label", "CL:0000625"]);
    assert!(!out.status.success());
    let fixture = sandbox.root.path().join("mini_cl.obo");
    fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../lobster-vector-match/tests/fixtures/mini_cl.obo"),
        &fixture,
    )
    .expect("copy the fixture");
    fs::set_permissions(&fixture, fs::Permissions::from_mode(0o644)).expect("chmod");
    let out = sandbox.run(&["build", "--source", fixture.to_str().expect("utf-8")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("is open read-only") && stderr.contains("hint:"),
        "{stderr}"
    );
    assert_eq!(sandbox.files(), before, "a refused build created files");

    // Without its index file the store still answers, rebuilding the index
    // in memory, and says so once per process.
    sandbox.thaw();
    for e in fs::read_dir(sandbox.store().join("index")).expect("index") {
        fs::remove_file(e.expect("entry").path()).expect("remove index file");
    }
    sandbox.freeze();
    let before = sandbox.files();
    let labels = sandbox.root.path().join("labels.txt");
    fs::write(&labels, "CD8+ T cells\nB cell\nmonocyte\n").expect("labels");
    fs::set_permissions(&labels, fs::Permissions::from_mode(0o644)).expect("chmod");
    let out = sandbox.run(&[
        "map",
        "-i",
        labels.to_str().expect("utf-8"),
        "-o",
        "cell_type",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        stderr.matches("store is read-only").count(),
        1,
        "one warning expected: {stderr}"
    );
    assert!(stderr.contains("compacting the store"), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().count(), 4, "{stdout}");
    assert!(
        stdout.lines().nth(1).is_some_and(|l| l.contains(&want[0])),
        "{stdout}"
    );
    assert_eq!(sandbox.files(), before, "a read-only map created files");
}

//! A Chroma server of a test's own, run by the repository's
//! `scripts/chroma-test-server.sh` with its state in a directory the test
//! chooses (so restarting or stopping it disturbs no other test).

use std::path::{Path, PathBuf};
use std::process::Command;

/// `scripts/chroma-test-server.sh` of this repository.
pub fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/chroma-test-server.sh")
}

/// Runs the script's `command` with its state in `state`; panics when it
/// fails; returns its standard output, trimmed.
pub fn run(state: &Path, command: &str) -> String {
    let out = Command::new("bash")
        .arg(script())
        .arg(command)
        .env("LOBSTER_CHROMA_STATE", state)
        .output()
        .expect("run the chroma test-server script");
    assert!(
        out.status.success(),
        "chroma-test-server.sh {command}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A started server, stopped when dropped (drop it before `state` goes).
#[derive(Debug)]
pub struct PrivateChroma {
    state: PathBuf,
    url: String,
}

impl PrivateChroma {
    /// Starts a server keeping its data and process state under `state`.
    pub fn start(state: &Path) -> Self {
        let url = run(state, "start")
            .lines()
            .find_map(|l| l.strip_prefix("export LOBSTER_CHROMA_URL="))
            .expect("the script prints the URL")
            .trim()
            .to_string();
        Self {
            state: state.to_path_buf(),
            url,
        }
    }

    /// The server's base URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Stops and starts the server on the same port and data.
    pub fn restart(&self) {
        run(&self.state, "restart");
    }
}

impl Drop for PrivateChroma {
    fn drop(&mut self) {
        run(&self.state, "stop");
    }
}

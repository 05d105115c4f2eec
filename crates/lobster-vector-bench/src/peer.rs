//! Running the peer scripts of `../shared/peer` on the same vectors and reading their figures.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde_json::Value;

/// Where the peer scripts and their Python live.
#[derive(Debug, Clone)]
pub struct Peer {
    pub scripts: PathBuf,
    pub python: PathBuf,
}

impl Peer {
    /// Finds `../shared/peer` (or `$LOBSTER_PEER_DIR`) and its venv (`$PEER_ROOT/venv`, default /tmp/lv-peer).
    pub fn locate() -> Result<Peer> {
        let scripts = std::env::var_os("LOBSTER_PEER_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/peer"));
        let root = std::env::var_os("PEER_ROOT")
            .map(PathBuf::from)
            .unwrap_or_else(|| "/tmp/lv-peer".into());
        let python = root.join("venv/bin/python");
        if !scripts.join("common.py").exists() {
            bail!(
                "peer scripts not found at {} (set LOBSTER_PEER_DIR)",
                scripts.display()
            );
        }
        if !python.exists() {
            bail!(
                "peer Python not found at {}; run `{}/setup.sh` once",
                python.display(),
                scripts.display()
            );
        }
        Ok(Peer { scripts, python })
    }

    /// Runs the Python `code` (with the peer scripts importable) and `env`, and
    /// returns the JSON it wrote as `<results>/<name>.json`.
    pub fn run_code(
        &self,
        what: &str,
        code: &str,
        name: &str,
        results: &Path,
        env: &[(&str, String)],
    ) -> Result<Value> {
        let mut cmd = Command::new(&self.python);
        cmd.arg("-c").arg(code).env("PYTHONPATH", &self.scripts);
        self.finish(cmd, what, name, results, env)
    }

    /// Runs `script` with `env` and returns the JSON it wrote as `<results>/<name>.json`.
    pub fn run(
        &self,
        script: &str,
        name: &str,
        results: &Path,
        env: &[(&str, String)],
    ) -> Result<Value> {
        let mut cmd = Command::new(&self.python);
        cmd.arg(self.scripts.join(script));
        self.finish(cmd, script, name, results, env)
    }

    fn finish(
        &self,
        mut cmd: Command,
        script: &str,
        name: &str,
        results: &Path,
        env: &[(&str, String)],
    ) -> Result<Value> {
        std::fs::create_dir_all(results)?;
        cmd.env("PEER_RESULTS", results);
        for (k, v) in env {
            cmd.env(k, v);
        }
        eprintln!("running peer {script} …");
        let status = cmd
            .status()
            .with_context(|| format!("cannot run {}", self.python.display()))?;
        if !status.success() {
            bail!("peer script {script} failed with {status}");
        }
        let path = results.join(format!("{name}.json"));
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        Ok(serde_json::from_str(&text)?)
    }
}

fn npy_preamble(descr: &str, rows: usize, cols: usize, payload: usize) -> Vec<u8> {
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let mut bytes = Vec::with_capacity(10 + header.len() + payload);
    bytes.extend_from_slice(b"\x93NUMPY\x01\x00");
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    bytes
}

/// Writes a row-major `f32` matrix as a NumPy `.npy` file (version 1.0).
pub fn write_npy(path: &Path, data: &[f32], rows: usize, cols: usize) -> Result<()> {
    let mut bytes = npy_preamble("<f4", rows, cols, data.len() * 4);
    for x in data {
        bytes.extend_from_slice(&x.to_le_bytes());
    }
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

/// Writes a row-major `i64` matrix as a NumPy `.npy` file (version 1.0).
pub fn write_npy_i64(path: &Path, data: &[i64], rows: usize, cols: usize) -> Result<()> {
    let mut bytes = npy_preamble("<i8", rows, cols, data.len() * 8);
    for x in data {
        bytes.extend_from_slice(&x.to_le_bytes());
    }
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

//! The store's files.
//!
//! ```text
//! <dir>/manifest.json              which generation of each collection is current
//! <dir>/<name>.<gen>.faiss         FAISS `write_index` output
//! <dir>/<name>.<gen>.rows.json     labels → ids, documents, metadata
//! <dir>/lock                       flock held by the process that has the store open
//! ```
//!
//! A save writes the changed collections under a new generation (temp file,
//! fsync, rename), then replaces `manifest.json` the same way and fsyncs the
//! directory; only then are files no longer named by the manifest deleted. A
//! crash at any point leaves the previous manifest and every file it names
//! intact, so the store opens as of the last completed save.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use faiss::{read_index, write_index, Index};
use lobster_vector_core::{Error, Metadata, Result};
use serde::{Deserialize, Serialize};

use crate::collection::{faiss_error, Collection, Row};

const MANIFEST: &str = "manifest.json";
const FORMAT: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    format: u32,
    collections: BTreeMap<String, Entry>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    /// The `index_factory` description under the id map.
    index: String,
    dimension: Option<usize>,
    count: usize,
    generation: u64,
    next_label: u64,
    #[serde(default)]
    metadata: Metadata,
}

fn index_file(dir: &Path, name: &str, generation: u64) -> PathBuf {
    dir.join(format!("{name}.{generation}.faiss"))
}

fn rows_file(dir: &Path, name: &str, generation: u64) -> PathBuf {
    dir.join(format!("{name}.{generation}.rows.json"))
}

fn corrupt(path: &Path, message: impl std::fmt::Display) -> Error {
    Error::Parse {
        path: path.to_path_buf(),
        location: None,
        message: format!(
            "{message} (the FAISS store cannot be opened: restore the directory from a backup \
             or rebuild it)"
        ),
    }
}

/// The bytes of `<dir>/manifest.json`, `None` when there is none.
pub(crate) fn manifest(dir: &Path) -> Result<Option<Vec<u8>>> {
    let path = dir.join(MANIFEST);
    match fs::read(&path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("read", &path, e)),
    }
}

/// Loads every collection named by the manifest `bytes` of `dir` (none when `None`).
/// `parameters` are set on every loaded index.
pub(crate) fn load(
    dir: &Path,
    bytes: Option<&[u8]>,
    parameters: &str,
) -> Result<BTreeMap<String, Collection>> {
    let path = dir.join(MANIFEST);
    let Some(bytes) = bytes else {
        return Ok(BTreeMap::new());
    };
    let manifest: Manifest = serde_json::from_slice(bytes).map_err(|e| corrupt(&path, e))?;
    if manifest.format != FORMAT {
        return Err(corrupt(
            &path,
            format!(
                "format {} is not the one this build reads ({FORMAT})",
                manifest.format
            ),
        ));
    }
    let mut out = BTreeMap::new();
    for (name, e) in manifest.collections {
        let rows_path = rows_file(dir, &name, e.generation);
        let rows: Vec<Row> = serde_json::from_slice(
            &fs::read(&rows_path).map_err(|err| Error::io("read", &rows_path, err))?,
        )
        .map_err(|err| corrupt(&rows_path, err))?;
        if rows.len() != e.count || rows.iter().any(|r| r.label >= e.next_label) {
            return Err(corrupt(&rows_path, "the rows do not match the manifest"));
        }
        let index = match e.dimension {
            Some(d) => {
                let p = index_file(dir, &name, e.generation);
                if !p.is_file() {
                    return Err(corrupt(&p, "the index file is missing"));
                }
                let index = read_index(p.to_string_lossy()).map_err(|err| corrupt(&p, err))?;
                if index.d() as usize != d || index.ntotal() as usize != rows.len() {
                    return Err(corrupt(
                        &p,
                        format!(
                            "the index holds {} {}-d vectors, the manifest says {} {d}-d",
                            index.ntotal(),
                            index.d(),
                            rows.len()
                        ),
                    ));
                }
                crate::collection::apply_parameters(&index, parameters)?;
                Some(index)
            }
            None => None,
        };
        let c = Collection::restore(
            e.index,
            parameters,
            e.dimension,
            index,
            rows,
            e.next_label,
            e.metadata,
            e.generation,
        );
        out.insert(name, c);
    }
    Ok(out)
}

fn sync_file(path: &Path) -> Result<()> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io("fsync", path, e))
}

fn rename_synced(tmp: &Path, path: &Path) -> Result<()> {
    sync_file(tmp)?;
    fs::rename(tmp, path).map_err(|e| Error::io("rename into place", path, e))
}

fn tmp_of(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".tmp");
    PathBuf::from(s)
}

/// Writes the changed collections and a new manifest (see the module docs);
/// returns the manifest's bytes. Does nothing when no collection changed and
/// the manifest would equal `previous` (the one on disk).
pub(crate) fn save<'a>(
    dir: &Path,
    collections: impl Iterator<Item = (&'a String, &'a mut Collection)>,
    previous: Option<&[u8]>,
) -> Result<Vec<u8>> {
    let mut manifest = Manifest {
        format: FORMAT,
        collections: BTreeMap::new(),
    };
    let mut changed: Vec<(&String, &mut Collection, u64)> = Vec::new();
    for (name, c) in collections {
        let generation = c.generation + u64::from(c.dirty);
        manifest.collections.insert(
            name.clone(),
            Entry {
                index: c.description.clone(),
                dimension: c.dim,
                count: c.len(),
                generation,
                next_label: c.next_label,
                metadata: c.info.clone(),
            },
        );
        if c.dirty {
            changed.push((name, c, generation));
        }
    }
    let json = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| Error::backend(crate::BACKEND, format!("cannot encode the manifest: {e}")))?;
    if changed.is_empty() && previous == Some(json.as_slice()) {
        return Ok(json);
    }
    fs::create_dir_all(dir).map_err(|e| Error::io("create the store directory", dir, e))?;
    for (name, c, generation) in &changed {
        write_collection(dir, name, c, *generation)?;
    }
    let path = dir.join(MANIFEST);
    let tmp = tmp_of(&path);
    write_new(&tmp, &json)?;
    rename_synced(&tmp, &path)?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("fsync the directory", dir, e))?;
    for (_, c, generation) in changed {
        c.generation = generation;
        c.dirty = false;
    }
    remove_unreferenced(dir, &manifest);
    Ok(json)
}

fn write_new(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = File::create(path).map_err(|e| Error::io("create", path, e))?;
    f.write_all(bytes).map_err(|e| Error::io("write", path, e))
}

fn write_collection(dir: &Path, name: &str, c: &Collection, generation: u64) -> Result<()> {
    if let Some(index) = &c.index {
        let path = index_file(dir, name, generation);
        let tmp = tmp_of(&path);
        write_index(index, tmp.to_string_lossy())
            .map_err(|e| faiss_error(&format!("write {}", tmp.display()), e))?;
        rename_synced(&tmp, &path)?;
    }
    let path = rows_file(dir, name, generation);
    let tmp = tmp_of(&path);
    let rows: Vec<&Row> = c.rows().collect();
    let json = serde_json::to_vec(&rows)
        .map_err(|e| Error::backend(crate::BACKEND, format!("cannot encode rows: {e}")))?;
    write_new(&tmp, &json)?;
    rename_synced(&tmp, &path)
}

/// Deletes collection files and temp files the manifest does not name
/// (superseded generations, dropped collections, interrupted saves).
fn remove_unreferenced(dir: &Path, manifest: &Manifest) {
    let keep: Vec<PathBuf> = manifest
        .collections
        .iter()
        .flat_map(|(name, e)| {
            [
                index_file(dir, name, e.generation),
                rows_file(dir, name, e.generation),
            ]
        })
        .collect();
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let ours = name.ends_with(".faiss")
            || name.ends_with(".rows.json")
            || name.ends_with(".faiss.tmp")
            || name.ends_with(".rows.json.tmp");
        if ours && !keep.contains(&path) {
            if let Err(e) = fs::remove_file(&path) {
                tracing::warn!(path = %path.display(), error = %e, "could not remove a superseded file");
            }
        }
    }
}

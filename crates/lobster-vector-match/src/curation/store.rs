//! The persistent curated set of a store: one SSSOM/TSV file, changed under
//! an exclusive lock and replaced atomically.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::CuratedSet;
use crate::{Error, Result};

/// The file name of a store's curated set, inside the store directory.
pub const CURATED_FILE: &str = "curated.sssom.tsv";

/// How long [`CuratedStore::update`] waits for another writer.
const LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// A curated set kept in one SSSOM/TSV file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CuratedStore {
    path: PathBuf,
}

impl CuratedStore {
    /// The curated set of the store at `store_dir` ([`CURATED_FILE`] inside it).
    pub fn in_dir(store_dir: &Path) -> Self {
        Self {
            path: store_dir.join(CURATED_FILE),
        }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The `mapping_set_id` the file is written with (a `urn:uuid:` of its path).
    pub fn mapping_set_id(&self) -> String {
        super::review::urn_uuid(self.path.to_string_lossy().as_bytes())
    }

    /// The set; empty when the file does not exist yet.
    pub fn load(&self) -> Result<CuratedSet> {
        CuratedSet::load_or_empty(&self.path)
    }

    /// Loads the set, applies `change` and writes the result, holding an
    /// exclusive lock on `<file>.lock` so concurrent updates do not lose each
    /// other's work. The file is replaced by a rename: a failed or
    /// interrupted update leaves the previous file whole. `change` failing
    /// writes nothing.
    pub fn update<T>(&self, change: impl FnOnce(&mut CuratedSet) -> Result<T>) -> Result<T> {
        let dir = parent_dir(&self.path);
        std::fs::create_dir_all(dir).map_err(|e| Error::io("cannot create", dir, e))?;
        let lock_path = self.path.with_extension("tsv.lock");
        let _lock = lobster_vector_core::lock::acquire(&self.path, &lock_path, LOCK_TIMEOUT)?;
        let mut set = self.load()?;
        let out = change(&mut set)?;
        let text = set.to_sssom(&self.mapping_set_id()).to_tsv()?;
        write_replacing(&self.path, text.as_bytes())?;
        Ok(out)
    }
}

/// The directory `path` is in (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Writes `bytes` to `path` through a temporary file beside it and a rename.
pub fn write_replacing(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = parent_dir(path);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.partial", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io("cannot write", path, e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::curation::CuratedMapping;

    #[test]
    fn updates_persist_and_a_failed_change_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = CuratedStore::in_dir(dir.path());
        assert!(store.load().unwrap().is_empty());
        store
            .update(|s| s.insert(CuratedMapping::new("CD8 T", "CL:0000625")))
            .unwrap();
        let before = std::fs::read_to_string(store.path()).unwrap();
        let failed = store.update(|s| {
            s.insert(CuratedMapping::new("Mono", "CL:0000576"))?;
            Err::<(), _>(Error::invalid_input("no"))
        });
        assert!(failed.is_err());
        assert_eq!(std::fs::read_to_string(store.path()).unwrap(), before);
        let set = store.load().unwrap();
        assert_eq!(set.len(), 1);
        assert_eq!(set.lookup("cd8 t").next().unwrap().object_id, "CL:0000625");
    }
}

//! [`FaissStore`]: the `VectorStore` over FAISS.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use fs4::TryLockError;
use lobster_vector_core::{
    metric::normalize, validate, CollectionInfo, Error, Hit, Metadata, Record, Result, VectorStore,
};

use crate::collection::Collection;
use crate::options::FaissOptions;
use crate::{persist, BACKEND};

type Collections = BTreeMap<String, Mutex<Collection>>;

/// FAISS indexes in memory, saved to a directory by `flush` when opened with
/// a path. See the crate docs for the semantics.
#[derive(Debug)]
pub struct FaissStore {
    options: FaissOptions,
    collections: RwLock<Collections>,
    /// The directory's `lock` file, held once this process has written.
    writer: Mutex<Option<File>>,
    /// The manifest as this process last loaded or saved it.
    manifest: Mutex<Option<Vec<u8>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn not_found(name: &str) -> Error {
    Error::CollectionNotFound {
        name: name.to_string(),
    }
}

/// Unit copies of `queries`, checked against `dim` (`None`: the collection
/// has no vectors yet, so only the vectors themselves are checked).
fn unit_queries(queries: &[&[f32]], dim: Option<usize>) -> Result<Vec<f32>> {
    let mut flat = Vec::with_capacity(queries.len() * dim.unwrap_or(0));
    for q in queries {
        match dim {
            None => validate::vector("query vector", q)?,
            Some(d) => {
                validate::query(q, d)?;
                let start = flat.len();
                flat.extend_from_slice(q);
                normalize(&mut flat[start..]);
            }
        }
    }
    Ok(flat)
}

impl FaissStore {
    /// A store kept in memory only.
    pub fn in_memory() -> Self {
        Self::with_collections(FaissOptions::default(), BTreeMap::new())
    }

    /// Opens the store: loads `options.path` when it holds a saved store.
    ///
    /// Errors: `Io` when the directory cannot be read, `Parse` when a saved
    /// file is damaged (nothing is changed on disk), `InvalidConfig` for an
    /// index description FAISS rejects.
    pub fn open(options: FaissOptions) -> Result<Self> {
        // Fail early on a description FAISS does not know. 3,072 is divisible
        // by every sub-quantizer count that divides 384, 768, 1,024 or 1,536,
        // so a description valid for the usual dimensions passes.
        crate::collection::new_index(3_072, &options.index, &options.parameters)?;
        let (collections, manifest) = match &options.path {
            Some(dir) => {
                if dir.exists() && !dir.is_dir() {
                    return Err(Error::invalid_input(format!(
                        "the FAISS store path `{}` is not a directory",
                        dir.display()
                    )));
                }
                let manifest = persist::manifest(dir)?;
                (
                    load(dir, manifest.as_deref(), &options.parameters)?,
                    manifest,
                )
            }
            None => (BTreeMap::new(), None),
        };
        let store = Self::with_collections(options, collections);
        *lock(&store.manifest) = manifest;
        Ok(store)
    }

    fn with_collections(options: FaissOptions, collections: Collections) -> Self {
        Self {
            options,
            collections: RwLock::new(collections),
            writer: Mutex::new(None),
            manifest: Mutex::new(None),
        }
    }

    /// The directory this store saves to, if any.
    pub fn path(&self) -> Option<&Path> {
        self.options.path.as_deref()
    }

    fn new_collection(&self) -> Collection {
        Collection::new(&self.options.index, &self.options.parameters)
    }

    fn read(&self) -> RwLockReadGuard<'_, Collections> {
        self.collections
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Collections> {
        self.collections
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Before the first change: takes the directory's lock (another process
    /// holding it → `StoreLocked`) and reloads what that process may have
    /// saved since this one opened.
    fn become_writer(&self) -> Result<()> {
        let Some(dir) = &self.options.path else {
            return Ok(());
        };
        let mut writer = lock(&self.writer);
        if writer.is_some() {
            return Ok(());
        }
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io("create the store directory", dir, e))?;
        let path = dir.join("lock");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io("open the lock file", &path, e))?;
        match fs4::FileExt::try_lock(&file) {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(Error::StoreLocked {
                    path: dir.to_path_buf(),
                })
            }
            Err(TryLockError::Error(e)) => return Err(Error::io("lock", &path, e)),
        }
        let now = persist::manifest(dir)?;
        let mut seen = lock(&self.manifest);
        if now != *seen {
            let mut map = self.write();
            if map.values().any(|c| lock(c).dirty) {
                return Err(Error::invalid_input(format!(
                    "another process saved the FAISS store `{}` while this one held unsaved \
                     changes; reopen the store and apply them again",
                    dir.display()
                )));
            }
            *map = load(dir, now.as_deref(), &self.options.parameters)?;
            *seen = now;
        }
        *writer = Some(file);
        Ok(())
    }

    fn with_collection<T>(
        &self,
        name: &str,
        f: impl FnOnce(&mut Collection) -> Result<T>,
    ) -> Result<T> {
        validate::collection_name(name)?;
        let map = self.read();
        let c = map.get(name).ok_or_else(|| not_found(name))?;
        let mut guard = lock(c);
        f(&mut guard)
    }

    fn search_many(&self, name: &str, queries: &[&[f32]], k: usize) -> Result<Vec<Vec<Hit>>> {
        self.with_collection(name, |c| {
            let flat = unit_queries(queries, c.dim)?;
            match c.dim {
                Some(d) if k > 0 && !queries.is_empty() => c.search(&flat, d, k),
                _ => Ok(vec![Vec::new(); queries.len()]),
            }
        })
    }
}

fn load(dir: &Path, manifest: Option<&[u8]>, parameters: &str) -> Result<Collections> {
    Ok(persist::load(dir, manifest, parameters)?
        .into_iter()
        .map(|(n, c)| (n, Mutex::new(c)))
        .collect())
}

impl VectorStore for FaissStore {
    fn backend_name(&self) -> &'static str {
        BACKEND
    }

    fn upsert(&self, collection: &str, records: &[Record]) -> Result<()> {
        validate::collection_name(collection)?;
        self.become_writer()?;
        let mut map = self.write();
        let expected = map.get(collection).and_then(|c| lock(c).dim);
        let dim = validate::records(records, expected)?;
        let fresh = !map.contains_key(collection);
        let c = map
            .entry(collection.to_string())
            .or_insert_with(|| Mutex::new(self.new_collection()));
        let c = c.get_mut().unwrap_or_else(PoisonError::into_inner);
        let result = match dim {
            Some(dim) => c.upsert(records, dim),
            None => Ok(()),
        };
        if result.is_err() && fresh {
            map.remove(collection);
        }
        result
    }

    fn search(&self, collection: &str, query: &[f32], k: usize) -> Result<Vec<Hit>> {
        Ok(self
            .search_many(collection, &[query], k)?
            .pop()
            .unwrap_or_default())
    }

    fn search_batch(
        &self,
        collection: &str,
        queries: &[&[f32]],
        k: usize,
    ) -> Result<Vec<Vec<Hit>>> {
        self.search_many(collection, queries, k)
    }

    fn delete(&self, collection: &str, ids: &[String]) -> Result<usize> {
        validate::collection_name(collection)?;
        self.become_writer()?;
        self.with_collection(collection, |c| c.delete(ids))
    }

    fn count(&self, collection: &str) -> Result<usize> {
        self.with_collection(collection, |c| Ok(c.len()))
    }

    fn has_collection(&self, collection: &str) -> Result<bool> {
        validate::collection_name(collection)?;
        Ok(self.read().contains_key(collection))
    }

    fn list_collections(&self) -> Result<Vec<String>> {
        Ok(self.read().keys().cloned().collect())
    }

    fn drop_collection(&self, collection: &str) -> Result<bool> {
        validate::collection_name(collection)?;
        self.become_writer()?;
        // The next save writes a manifest without it.
        Ok(self.write().remove(collection).is_some())
    }

    fn collection_info(&self, collection: &str) -> Result<CollectionInfo> {
        self.with_collection(collection, |c| {
            Ok(CollectionInfo {
                name: collection.to_string(),
                dimension: c.dim,
                count: c.len(),
                metadata: c.info.clone(),
            })
        })
    }

    fn set_collection_metadata(&self, collection: &str, metadata: Metadata) -> Result<()> {
        validate::collection_name(collection)?;
        self.become_writer()?;
        let mut map = self.write();
        let c = map
            .entry(collection.to_string())
            .or_insert_with(|| Mutex::new(self.new_collection()));
        let c = c.get_mut().unwrap_or_else(PoisonError::into_inner);
        c.info = metadata;
        c.dirty = true;
        Ok(())
    }

    fn read_page(&self, collection: &str, offset: usize, limit: usize) -> Result<Vec<Record>> {
        self.with_collection(collection, |c| c.page(offset, limit))
    }

    /// Saves every changed collection (see the crate docs); a no-op in memory.
    fn flush(&self) -> Result<()> {
        let Some(dir) = &self.options.path else {
            return Ok(());
        };
        if lock(&self.writer).is_none() {
            // Never written by this process: nothing of ours to save.
            return Ok(());
        }
        let previous = lock(&self.manifest).clone();
        let saved = persist::save(
            dir,
            self.write()
                .iter_mut()
                .map(|(n, c)| (n, c.get_mut().unwrap_or_else(PoisonError::into_inner))),
            previous.as_deref(),
        )?;
        *lock(&self.manifest) = Some(saved);
        Ok(())
    }

    fn lock_for_writing(&self) -> Result<()> {
        self.become_writer()
    }
}

impl Drop for FaissStore {
    fn drop(&mut self) {
        if let Err(e) = self.flush() {
            tracing::error!(error = %e.chain(), "saving the FAISS store on close failed");
        }
    }
}

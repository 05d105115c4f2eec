//! Shared helpers of the integration tests.
#![allow(dead_code)]

use std::path::Path;

use lobster_vector_core::{CollectionInfo, Hit, Metadata, Record, Result, VectorStore};
use lobster_vector_local::{LocalOptions, LocalStore};
use tempfile::TempDir;

/// A store in its own temporary directory, removed after the store is closed.
#[derive(Debug)]
pub struct TempStore {
    pub store: LocalStore,
    pub dir: TempDir,
}

impl TempStore {
    pub fn new(options: LocalOptions) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalStore::open(dir.path(), options).expect("open");
        Self { store, dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl VectorStore for TempStore {
    fn backend_name(&self) -> &'static str {
        self.store.backend_name()
    }
    fn upsert(&self, c: &str, r: &[Record]) -> Result<()> {
        self.store.upsert(c, r)
    }
    fn search(&self, c: &str, q: &[f32], k: usize) -> Result<Vec<Hit>> {
        self.store.search(c, q, k)
    }
    fn search_batch(&self, c: &str, q: &[&[f32]], k: usize) -> Result<Vec<Vec<Hit>>> {
        self.store.search_batch(c, q, k)
    }
    fn delete(&self, c: &str, ids: &[String]) -> Result<usize> {
        self.store.delete(c, ids)
    }
    fn count(&self, c: &str) -> Result<usize> {
        self.store.count(c)
    }
    fn has_collection(&self, c: &str) -> Result<bool> {
        self.store.has_collection(c)
    }
    fn list_collections(&self) -> Result<Vec<String>> {
        self.store.list_collections()
    }
    fn drop_collection(&self, c: &str) -> Result<bool> {
        self.store.drop_collection(c)
    }
    fn collection_info(&self, c: &str) -> Result<CollectionInfo> {
        self.store.collection_info(c)
    }
    fn set_collection_metadata(&self, c: &str, m: Metadata) -> Result<()> {
        self.store.set_collection_metadata(c, m)
    }
    fn flush(&self) -> Result<()> {
        self.store.flush()
    }
    fn lock_for_writing(&self) -> Result<()> {
        self.store.lock_for_writing()
    }
    fn read_page(&self, c: &str, offset: usize, limit: usize) -> Result<Vec<Record>> {
        self.store.read_page(c, offset, limit)
    }
}

/// This test binary again, running only its ignored `child_entry` test: the
/// child-process half of a multi-process test.
pub fn child_process() -> std::process::Command {
    let mut cmd = std::process::Command::new(std::env::current_exe().expect("current exe"));
    cmd.args([
        "child_entry",
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ]);
    cmd
}

/// Options that make tiny test collections go through the HNSW graph.
pub fn hnsw_options() -> LocalOptions {
    LocalOptions {
        exact_search_below: 0,
        ..LocalOptions::default()
    }
}

#[allow(unused_imports)] // not every test file uses all of it
pub use lobster_vector_core::testing::data::*;

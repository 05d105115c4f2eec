//! The shared `VectorStore` conformance suite against real FAISS: the default
//! exact index in memory, the same saved to a directory, and an HNSW index
//! (which cannot remove vectors, so overwrites and deletes rebuild it; its
//! efSearch set through the parameters option).

use lobster_vector_faiss::{FaissOptions, FaissStore};

mod flat_in_memory {
    use super::*;
    lobster_vector_core::conformance_suite!(FaissStore::in_memory());
}

/// A store saving to a temporary directory that outlives it.
struct OnDisk {
    store: FaissStore,
    _dir: tempfile::TempDir,
}

impl lobster_vector_core::testing::AsStore for OnDisk {
    fn as_store(&self) -> &dyn lobster_vector_core::VectorStore {
        &self.store
    }
}

fn on_disk() -> OnDisk {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = FaissStore::open(FaissOptions {
        path: Some(dir.path().join("faiss")),
        ..FaissOptions::default()
    })
    .expect("open");
    OnDisk { store, _dir: dir }
}

mod flat_on_disk {
    use super::*;
    lobster_vector_core::conformance_suite!(on_disk());
}

// efSearch well above the suite's collection sizes makes HNSW exact there.
mod hnsw {
    use super::*;
    lobster_vector_core::conformance_suite!(FaissStore::open(FaissOptions {
        index: "HNSW32".into(),
        parameters: "efSearch=512".into(),
        ..FaissOptions::default()
    })
    .expect("open"));
}

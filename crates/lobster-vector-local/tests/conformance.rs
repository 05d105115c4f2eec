//! The shared `VectorStore` conformance suite, on the exact-scan path (small
//! collections) and forced through the HNSW graph.

mod common;

use common::TempStore;
use lobster_vector_local::LocalOptions;

mod exact_scan {
    use super::*;
    lobster_vector_core::conformance_suite!(TempStore::new(LocalOptions::default()));
}

mod hnsw_graph {
    use super::*;
    lobster_vector_core::conformance_suite!(TempStore::new(common::hnsw_options()));
}

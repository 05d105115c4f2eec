//! The shared `VectorStore` conformance suite against a real PostgreSQL +
//! pgvector server, on the exact-scan path, through the HNSW index, and with
//! every batch loaded by binary COPY.

mod common;

use lobster_vector_pgvector::PgOptions;

mod exact_scan {
    use super::*;
    lobster_vector_core::conformance_suite!(
        optional: common::store(PgOptions::default())
    );
}

mod hnsw_index {
    use super::*;
    lobster_vector_core::conformance_suite!(
        optional: common::store(common::hnsw_options())
    );
}

mod copy_load {
    use super::*;
    lobster_vector_core::conformance_suite!(
        optional: common::store(PgOptions {
            copy_at_least: 1,
            ..common::hnsw_options()
        })
    );
}

//! `lobster.vector._native`: the native module under the `lobster.vector`
//! Python package.
//!
//! Handles over the Rust components (`PyStore`, `PyEmbedder`, `PyReranker`),
//! the service that composes them (`PyService`) and an ontology's graph
//! (`PyOntology`). Results cross into Python as plain
//! dicts and lists, converted from the same serde values the CLI prints with
//! `--json`. Every call that embeds, searches or builds releases the GIL, and
//! every handle is safe to share between threads. Errors become the classes of
//! `lobster.vector.errors`, chosen by [`lobster_vector::ErrorKind`], with the
//! error and its causes as the message.

mod convert;
mod errors;
mod handles;
mod service;

use pyo3::prelude::*;

/// The module object (`lobster.vector._native`).
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(handles::resolve_config, m)?)?;
    m.add_class::<handles::PyStore>()?;
    m.add_class::<handles::PyEmbedder>()?;
    m.add_class::<handles::PyReranker>()?;
    m.add_class::<service::PyService>()?;
    m.add_class::<service::PyOntology>()?;
    Ok(())
}

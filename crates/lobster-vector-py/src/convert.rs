//! Serde values into Python objects.

use pyo3::prelude::*;
use serde::Serialize;

/// `value` as Python dicts, lists, strings and numbers (the CLI's `--json` shape).
pub fn to_python<'py, T: Serialize + ?Sized>(
    py: Python<'py>,
    value: &T,
) -> PyResult<Bound<'py, PyAny>> {
    pythonize::pythonize(py, value).map_err(PyErr::from)
}

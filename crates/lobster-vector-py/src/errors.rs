//! Rust errors as Python exceptions of `lobster.vector.errors`.

use lobster_vector::{Error, ErrorKind};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyType;

/// The class of `lobster.vector.errors` that an error of `kind` raises.
fn class_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidInput => "InvalidInput",
        ErrorKind::NotFound => "NotFound",
        ErrorKind::Unavailable => "CollectionUnavailable",
        ErrorKind::NotAvailable => "NotAvailable",
        ErrorKind::Locked => "StoreLocked",
        ErrorKind::Unauthorized => "Unauthorized",
        ErrorKind::Io | ErrorKind::Backend => "StoreError",
        ErrorKind::Model => "ModelError",
        ErrorKind::Interrupted => "Interrupted",
        _ => "LobsterVectorError",
    }
}

/// `err` as the Python exception of its kind; the message is the error and
/// its causes, `kind` the [`ErrorKind`] name.
pub fn to_py(err: Error) -> PyErr {
    let kind = err.kind();
    let message = err.chain();
    Python::attach(|py| {
        let class = py
            .import("lobster.vector.errors")
            .and_then(|m| m.getattr(class_name(kind)))
            .and_then(|c| c.cast_into::<PyType>().map_err(PyErr::from));
        match class {
            Ok(class) => match class.call1((message.clone(), kind.as_str())) {
                Ok(instance) => PyErr::from_value(instance),
                Err(e) => e,
            },
            Err(_) => PyRuntimeError::new_err(message),
        }
    })
}

/// `Result<T, Error>` → `PyResult<T>`.
pub trait IntoPy<T> {
    fn py_err(self) -> PyResult<T>;
}

impl<T> IntoPy<T> for lobster_vector::Result<T> {
    fn py_err(self) -> PyResult<T> {
        self.map_err(to_py)
    }
}

//! Mapping SQLite, index and file errors into `lobster_vector_core::Error`.

use std::io;
use std::path::Path;

use lobster_vector_core::Error;
use rusqlite::ErrorCode;

use crate::BACKEND;

/// Maps a SQLite error on the database at `db`: a full disk, an unopenable or
/// unwritable file and a corrupt file become `Error::Io` naming the file; the
/// rest `Error::Backend { kind: "local" }`.
pub(crate) fn sql(db: &Path, e: rusqlite::Error) -> Error {
    let code = match &e {
        rusqlite::Error::SqliteFailure(f, _) => Some(f.code),
        _ => None,
    };
    let io_kind = match code {
        Some(ErrorCode::DiskFull) => Some((
            "write the store database (the disk or file size limit is full)",
            io::ErrorKind::StorageFull,
        )),
        Some(ErrorCode::CannotOpen) => Some(("open the store database", io::ErrorKind::Other)),
        Some(ErrorCode::PermissionDenied) | Some(ErrorCode::ReadOnly) => Some((
            "write the store database (permission denied)",
            io::ErrorKind::PermissionDenied,
        )),
        Some(ErrorCode::SystemIoFailure) => Some((
            "read or write the store database (I/O error: is the disk full?)",
            io::ErrorKind::Other,
        )),
        Some(ErrorCode::DatabaseCorrupt) | Some(ErrorCode::NotADatabase) => Some((
            "read the store database (corrupt, or not a SQLite database)",
            io::ErrorKind::InvalidData,
        )),
        _ => None,
    };
    match io_kind {
        Some((action, kind)) => Error::io(action, db, io::Error::new(kind, e)),
        None => Error::backend(BACKEND, e),
    }
}

/// An index failure on `collection` while doing `action`.
pub(crate) fn index(collection: &str, action: &str, e: impl std::fmt::Display) -> Error {
    Error::backend(
        BACKEND,
        format!("HNSW index of collection `{collection}`: {action} failed: {e}"),
    )
}

/// Stored data that does not decode (a corrupt row).
pub(crate) fn corrupt(what: impl Into<String>) -> Error {
    Error::backend(BACKEND, format!("corrupt store data: {}", what.into()))
}

/// `Result::map_err` helper for SQLite calls.
pub(crate) trait SqlExt<T> {
    fn db(self, db: &Path) -> lobster_vector_core::Result<T>;
}

impl<T> SqlExt<T> for rusqlite::Result<T> {
    fn db(self, db: &Path) -> lobster_vector_core::Result<T> {
        self.map_err(|e| sql(db, e))
    }
}

/// A stored column whose SQLite type is not the one the schema gives it.
pub(crate) fn corrupt_col(e: rusqlite::types::FromSqlError) -> Error {
    corrupt(format!("a column has the wrong type: {e}"))
}

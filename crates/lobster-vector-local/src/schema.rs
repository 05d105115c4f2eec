//! The SQLite schema, connection settings and the small queries shared by reads and writes.

use std::path::Path;
use std::time::Duration;

use lobster_vector_core::{Error, Result};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};

use crate::error::{corrupt, SqlExt};

/// Version of the layout below, kept in `store_meta`.
pub(crate) const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS store_meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS collections (
    name            TEXT PRIMARY KEY,
    incarnation     INTEGER NOT NULL,
    dimension       INTEGER,
    metric          TEXT NOT NULL DEFAULT 'cosine',
    metadata        TEXT NOT NULL DEFAULT '{}',
    record_count    INTEGER NOT NULL DEFAULT 0,
    last_seq        INTEGER NOT NULL,
    tombstone_floor INTEGER NOT NULL DEFAULT 0,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS records (
    rid        INTEGER PRIMARY KEY AUTOINCREMENT,
    collection TEXT NOT NULL,
    id         TEXT NOT NULL,
    document   TEXT,
    metadata   TEXT NOT NULL,
    vector     BLOB NOT NULL,
    seq        INTEGER NOT NULL,
    UNIQUE (collection, id)
);
CREATE INDEX IF NOT EXISTS records_by_seq ON records (collection, seq);

CREATE TABLE IF NOT EXISTS tombstones (
    collection TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    rid        INTEGER NOT NULL,
    PRIMARY KEY (collection, seq, rid)
) WITHOUT ROWID;

INSERT OR IGNORE INTO store_meta (key, value) VALUES ('seq', 0);
";

/// SQL for "now" as an ISO-8601 UTC timestamp.
pub(crate) const NOW: &str = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";

/// Bytes of the database file a reader connection maps into memory.
const READER_MMAP_BYTES: i64 = 1 << 30;

/// Per-connection settings of the writer.
fn configure(conn: &Connection, db: &Path, busy: Duration) -> Result<()> {
    conn.busy_timeout(busy).db(db)?;
    conn.pragma_update(None, "synchronous", "FULL").db(db)?;
    conn.set_prepared_statement_cache_capacity(64);
    rusqlite::vtab::array::load_module(conn).db(db)?;
    Ok(())
}

/// Opens the writer's connection, creating the database and schema if needed.
pub(crate) fn open_writer(db: &Path, busy: Duration) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = Connection::open_with_flags(db, flags).db(db)?;
    configure(&conn, db, busy)?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
        .db(db)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(corrupt(format!(
            "cannot switch `{}` to WAL mode (got `{mode}`)",
            db.display()
        )));
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .db(db)?;
    tx.execute_batch(SCHEMA).db(db)?;
    tx.execute(
        "INSERT OR IGNORE INTO store_meta (key, value) VALUES ('schema_version', ?1)",
        [SCHEMA_VERSION],
    )
    .db(db)?;
    let version: i64 = tx
        .query_row(
            "SELECT value FROM store_meta WHERE key = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .db(db)?;
    check_version(db, version)?;
    tx.commit().db(db)?;
    Ok(conn)
}

/// How reader connections open the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadMode {
    /// Read-write handle restricted by `query_only`: shares the WAL index
    /// with the writer (stores opened for writing).
    Shared,
    /// `SQLITE_OPEN_READONLY`: a read-only store whose directory can hold the
    /// WAL shared-memory file.
    ReadOnly,
    /// `immutable=1`: a store in a directory nobody can write (no WAL
    /// shared-memory file can exist, so no writer can either).
    Immutable,
}

/// Opens a connection used only for reading. The database must exist.
pub(crate) fn open_reader(db: &Path, busy: Duration, mode: ReadMode) -> Result<Connection> {
    let conn = match mode {
        ReadMode::Shared => {
            let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
            Connection::open_with_flags(db, flags).db(db)?
        }
        ReadMode::ReadOnly => {
            let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
            Connection::open_with_flags(db, flags).db(db)?
        }
        ReadMode::Immutable => {
            let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_URI
                | OpenFlags::SQLITE_OPEN_NO_MUTEX;
            Connection::open_with_flags(immutable_uri(db), flags).db(db)?
        }
    };
    conn.busy_timeout(busy).db(db)?;
    conn.set_prepared_statement_cache_capacity(64);
    rusqlite::vtab::array::load_module(&conn).db(db)?;
    if mode == ReadMode::Shared {
        conn.pragma_update(None, "synchronous", "FULL").db(db)?;
        conn.pragma_update(None, "query_only", true).db(db)?;
    }
    // Searches read their hits' rows through a memory map instead of a
    // `pread` per page.
    conn.pragma_update(None, "mmap_size", READER_MMAP_BYTES)
        .db(db)?;
    Ok(conn)
}

/// The `file:` URI of `db` with `immutable=1` (path bytes outside the URI's
/// unreserved set percent-encoded).
fn immutable_uri(db: &Path) -> String {
    let mut uri = String::from("file:");
    for &b in db.as_os_str().as_encoded_bytes() {
        if b.is_ascii_alphanumeric() || b"/-_.~".contains(&b) {
            uri.push(char::from(b));
        } else {
            uri.push_str(&format!("%{b:02X}"));
        }
    }
    uri.push_str("?immutable=1");
    uri
}

/// How a store's readers open `db`: [`ReadMode::Shared`] unless `read_only`;
/// else read-only where SQLite can keep its WAL shared-memory file beside the
/// database, immutable where the directory cannot be written.
///
/// Errors: an immutable open would miss committed writes still in the WAL
/// file (a writer was killed and the directory was made read-only since) →
/// `Error::ReadOnly`; the database cannot be opened → `Error::Io`.
pub(crate) fn read_mode(db: &Path, read_only: bool) -> Result<ReadMode> {
    if !read_only {
        return Ok(ReadMode::Shared);
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(db, flags).db(db)?;
    let probe = conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    });
    match probe {
        Ok(_) => Ok(ReadMode::ReadOnly),
        Err(rusqlite::Error::SqliteFailure(f, _))
            if matches!(
                f.code,
                rusqlite::ErrorCode::ReadOnly | rusqlite::ErrorCode::CannotOpen
            ) =>
        {
            let mut wal = db.as_os_str().to_owned();
            wal.push("-wal");
            let pending = std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0);
            if pending {
                return Err(Error::ReadOnly {
                    path: db.parent().unwrap_or(db).to_path_buf(),
                    action: "merge the writes left in its WAL file by a writer that stopped \
                             (the directory cannot be written)",
                });
            }
            Ok(ReadMode::Immutable)
        }
        Err(e) => Err(e).db(db),
    }
}

/// Checks a read-only store's schema.
pub(crate) fn verify_existing(conn: &Connection, db: &Path) -> Result<()> {
    let version: Option<i64> = conn
        .query_row(
            "SELECT value FROM store_meta WHERE key = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(|e| {
            Error::io(
                "read the store database (not a lobster-vector store?)",
                db,
                std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            )
        })?;
    check_version(db, version.unwrap_or(0))
}

fn check_version(db: &Path, version: i64) -> Result<()> {
    if version != SCHEMA_VERSION {
        return Err(Error::io(
            "open the store database",
            db,
            std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                format!(
                    "schema version {version} is not the supported version {SCHEMA_VERSION} \
                     (written by another lobster-vector version?)"
                ),
            ),
        ));
    }
    Ok(())
}

/// One row of `collections`, without the metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CollRow {
    pub incarnation: i64,
    pub dimension: Option<usize>,
    pub record_count: usize,
    pub last_seq: i64,
    pub tombstone_floor: i64,
}

pub(crate) fn read_row(conn: &Connection, db: &Path, name: &str) -> Result<Option<CollRow>> {
    let raw = conn
        .prepare_cached(
            "SELECT incarnation, dimension, record_count, last_seq, tombstone_floor \
             FROM collections WHERE name = ?1",
        )
        .db(db)?
        .query_row([name], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, Option<i64>>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?,
            ))
        })
        .optional()
        .db(db)?;
    let Some((incarnation, dimension, count, last_seq, tombstone_floor)) = raw else {
        return Ok(None);
    };
    let dimension = match dimension {
        None => None,
        Some(d) => Some(
            usize::try_from(d)
                .ok()
                .filter(|d| *d > 0)
                .ok_or_else(|| corrupt(format!("collection `{name}` has dimension {d}")))?,
        ),
    };
    let record_count = usize::try_from(count)
        .map_err(|_| corrupt(format!("collection `{name}` has record count {count}")))?;
    Ok(Some(CollRow {
        incarnation,
        dimension,
        record_count,
        last_seq,
        tombstone_floor,
    }))
}

/// Takes the next sequence number (inside a write transaction).
pub(crate) fn next_seq(conn: &Connection, db: &Path) -> Result<i64> {
    conn.prepare_cached("UPDATE store_meta SET value = value + 1 WHERE key = 'seq' RETURNING value")
        .db(db)?
        .query_row([], |r| r.get(0))
        .db(db)
}

/// Inserts a new, empty collection row created by the write with sequence `seq`.
pub(crate) fn insert_collection(
    conn: &Connection,
    db: &Path,
    name: &str,
    seq: i64,
    metadata: &str,
) -> Result<()> {
    conn.prepare_cached(&format!(
        "INSERT INTO collections (name, incarnation, dimension, metadata, record_count, last_seq, \
         tombstone_floor, created_at, updated_at) VALUES (?1, ?2, NULL, ?3, 0, ?2, ?2, {NOW}, {NOW})"
    ))
    .db(db)?
    .execute(params![name, seq, metadata])
    .db(db)?;
    Ok(())
}

/// Little-endian `f32` blob of a vector.
pub(crate) fn encode(v: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len() * 4);
    for x in v {
        out.extend_from_slice(&x.to_le_bytes());
    }
    out
}

/// Decodes a vector blob of `dim` floats.
pub(crate) fn decode(blob: &[u8], dim: usize) -> Result<Vec<f32>> {
    if blob.len() != dim * 4 {
        return Err(corrupt(format!(
            "a vector blob has {} bytes, expected {} ({dim} floats)",
            blob.len(),
            dim * 4
        )));
    }
    Ok(blob
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

/// Converts a SQLite rowid into an index key.
pub(crate) fn key(rid: i64) -> Result<u64> {
    u64::try_from(rid).map_err(|_| corrupt(format!("record rowid {rid} is negative")))
}

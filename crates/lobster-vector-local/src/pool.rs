//! A small pool of read connections (a `rusqlite::Connection` is not `Sync`).

use std::ops::Deref;
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use lobster_vector_core::Result;
use rusqlite::Connection;

use crate::schema::{self, ReadMode};

/// Idle connections kept for reuse.
const KEEP_IDLE: usize = 8;

#[derive(Debug)]
pub(crate) struct Pool {
    db: PathBuf,
    busy: Duration,
    mode: ReadMode,
    idle: Mutex<Vec<Connection>>,
}

impl Pool {
    pub fn new(db: PathBuf, busy: Duration, mode: ReadMode) -> Self {
        Self {
            db,
            busy,
            mode,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// A read connection, returned to the pool when dropped.
    pub fn get(&self) -> Result<Pooled<'_>> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let conn = match idle {
            Some(c) => c,
            None => schema::open_reader(&self.db, self.busy, self.mode)?,
        };
        Ok(Pooled {
            pool: self,
            conn: Some(conn),
        })
    }

    /// Closes the idle connections.
    pub fn clear(&self) {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

#[derive(Debug)]
pub(crate) struct Pooled<'a> {
    pool: &'a Pool,
    conn: Option<Connection>,
}

impl Deref for Pooled<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        // `conn` is only taken in `drop`.
        self.conn.as_ref().unwrap_or_else(|| unreachable!())
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take() {
            if !c.is_autocommit() {
                // A transaction left open by an error path: do not reuse.
                return;
            }
            let mut idle = self
                .pool
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if idle.len() < KEEP_IDLE {
                idle.push(c);
            }
        }
    }
}

//! Cross-process write locks: an exclusive `flock` on a lock file, shared
//! by the local store (`<dir>/write.lock`) and the curated-mapping file.

use std::fs::{File, OpenOptions};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::{Error, Result};
use fs4::TryLockError;

/// Takes the exclusive lock on `lock_path` (created if missing), waiting up
/// to `timeout` (zero: fail at once); past it, [`Error::StoreLocked`] names
/// `holder`, what the lock protects.
///
/// The lock is held as long as the returned file is open; the kernel releases
/// it when the process dies, so a crashed writer never leaves a stale lock.
pub fn acquire(holder: &Path, lock_path: &Path, timeout: Duration) -> Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(lock_path)
        .map_err(|e| Error::io("open the write lock file", lock_path, e))?;
    let deadline = Instant::now() + timeout;
    loop {
        match fs4::FileExt::try_lock(&file) {
            Ok(()) => return Ok(file),
            Err(TryLockError::WouldBlock) => {
                let now = Instant::now();
                if now >= deadline {
                    return Err(Error::StoreLocked {
                        path: holder.to_path_buf(),
                    });
                }
                std::thread::sleep((deadline - now).min(Duration::from_millis(20)));
            }
            Err(TryLockError::Error(e)) => {
                return Err(Error::io("lock the write lock file", lock_path, e))
            }
        }
    }
}

//! The cross-process write lock: an exclusive `flock` on `<dir>/write.lock`.

use std::fs::{File, OpenOptions};
use std::path::Path;
use std::time::{Duration, Instant};

use fs4::TryLockError;
use lobster_vector_core::{Error, Result};

/// Takes the exclusive lock, waiting up to `timeout` (zero: fail at once).
///
/// The lock is held as long as the returned file is open; the kernel releases
/// it when the process dies, so a crashed writer never leaves a stale lock.
pub(crate) fn acquire(dir: &Path, lock_path: &Path, timeout: Duration) -> Result<File> {
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
                        path: dir.to_path_buf(),
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

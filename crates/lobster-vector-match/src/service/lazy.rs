use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use crate::Result;

type Factory<T> = Box<dyn Fn() -> Result<Arc<T>> + Send + Sync>;

/// A shared component created on first use (loading a model is slow, and
/// commands such as `collections` never need one).
pub(crate) struct Lazy<T: ?Sized> {
    cell: OnceLock<Arc<T>>,
    make: Mutex<Option<Factory<T>>>,
}

impl<T: ?Sized> Lazy<T> {
    pub(crate) fn ready(value: Arc<T>) -> Self {
        let cell = OnceLock::new();
        let _ = cell.set(value);
        Self {
            cell,
            make: Mutex::new(None),
        }
    }

    pub(crate) fn deferred(make: impl Fn() -> Result<Arc<T>> + Send + Sync + 'static) -> Self {
        Self {
            cell: OnceLock::new(),
            make: Mutex::new(Some(Box::new(make))),
        }
    }

    /// The value, creating it once; a failed creation is retried on the next call.
    pub(crate) fn get(&self) -> Result<Arc<T>> {
        if let Some(v) = self.cell.get() {
            return Ok(v.clone());
        }
        let make = self.make.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(v) = self.cell.get() {
            return Ok(v.clone());
        }
        let v = match make.as_ref() {
            Some(f) => f()?,
            None => unreachable!("a Lazy without a factory is always initialised"),
        };
        Ok(self.cell.get_or_init(|| v).clone())
    }

    pub(crate) fn is_loaded(&self) -> bool {
        self.cell.get().is_some()
    }
}

impl<T: ?Sized> std::fmt::Debug for Lazy<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.is_loaded() {
            "Lazy(loaded)"
        } else {
            "Lazy(deferred)"
        })
    }
}

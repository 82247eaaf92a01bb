//! A few read-only store connections shared by the request handlers; every SQLite call runs on
//! the blocking thread pool so that a slow query never stalls the async runtime.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use kamstrup_store::{Store, StoreError};

use crate::error::ApiError;

/// Idle connections kept for reuse; more may be open while requests overlap.
const MAX_IDLE: usize = 4;

/// Read-only connections to one history database, opened on first use.
#[derive(Debug)]
pub(crate) struct StorePool {
    path: PathBuf,
    idle: Mutex<Vec<Store>>,
}

impl StorePool {
    pub(crate) fn new(path: PathBuf) -> Arc<StorePool> {
        Arc::new(StorePool {
            path,
            idle: Mutex::new(Vec::new()),
        })
    }

    fn take(&self) -> Result<Store, ApiError> {
        let reused = match self.idle.lock() {
            Ok(mut idle) => idle.pop(),
            Err(poisoned) => poisoned.into_inner().pop(),
        };
        match reused {
            Some(store) => Ok(store),
            // The daemon creates and migrates the file; until it has, there is nothing to show.
            None => Store::open_read_only(&self.path).map_err(|e| {
                ApiError::unavailable(format!(
                    "the history database {} cannot be read yet: {e}",
                    self.path.display()
                ))
            }),
        }
    }

    fn give_back(&self, store: Store) {
        let mut idle = match self.idle.lock() {
            Ok(idle) => idle,
            Err(poisoned) => poisoned.into_inner(),
        };
        if idle.len() < MAX_IDLE {
            idle.push(store);
        }
    }

    /// Runs `f` with a connection on the blocking pool. A connection whose call failed in the
    /// database is closed rather than reused, in case the failure left it in a bad state (a
    /// request that was merely wrong, such as an unknown serial, keeps it).
    pub(crate) async fn with<T, F>(self: &Arc<Self>, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, ApiError> + Send + 'static,
    {
        let pool = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let store = pool.take()?;
            let out = f(&store);
            if out.as_ref().map_or_else(|e| !e.is_server_error(), |_| true) {
                pool.give_back(store);
            }
            out
        })
        .await
        .map_err(|e| ApiError::internal(format!("a database task failed: {e}")))?
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::internal(format!("history database: {e}"))
    }
}

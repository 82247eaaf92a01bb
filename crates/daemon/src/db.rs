//! The store behind an async-friendly handle: SQLite calls run on tokio's blocking pool so a
//! slow disk never stalls a meter's serial timing or a sink's network I/O.

use std::sync::{Arc, Mutex};

use kamstrup_store::{Store, StoreError};

/// Why a store call could not run at all (as opposed to failing inside SQLite).
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// SQLite or the schema said no.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A previous call panicked while holding the store; nothing more is written.
    #[error("the store is unusable after an internal error")]
    Poisoned,
    /// The blocking task was cancelled (runtime shutting down).
    #[error("store call cancelled: {0}")]
    Cancelled(String),
}

/// A cheap, clonable handle to the one store of the daemon.
#[derive(Clone)]
pub struct Db(Arc<Mutex<Store>>);

impl Db {
    /// Wraps an open store.
    pub fn new(store: Store) -> Db {
        Db(Arc::new(Mutex::new(store)))
    }

    /// Runs `f` with exclusive access to the store, off the async threads.
    pub async fn call<T, F>(&self, f: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = Arc::clone(&self.0);
        tokio::task::spawn_blocking(move || {
            let mut store = inner.lock().map_err(|_| DbError::Poisoned)?;
            f(&mut store).map_err(DbError::from)
        })
        .await
        .map_err(|e| DbError::Cancelled(e.to_string()))?
    }
}

/// The store as a sink's durable memory ([`kamstrup_sinks::SinkMemory`]): a sink that must
/// remember what it sent (Domoticz' add-delta) keeps it beside its cursor, in the same file.
pub struct StoreMemory(pub Db);

#[async_trait::async_trait]
impl kamstrup_sinks::SinkMemory for StoreMemory {
    async fn load(
        &self,
        sink: &str,
        key: &str,
    ) -> Result<Option<String>, kamstrup_sinks::SinkError> {
        let (sink, key) = (sink.to_owned(), key.to_owned());
        self.0
            .call(move |s| s.sink_memory(&sink, &key))
            .await
            .map_err(|e| kamstrup_sinks::SinkError::Io {
                target: "history database".into(),
                detail: e.to_string(),
            })
    }

    async fn save(
        &self,
        sink: &str,
        key: &str,
        value: &str,
    ) -> Result<(), kamstrup_sinks::SinkError> {
        let (sink, key, value) = (sink.to_owned(), key.to_owned(), value.to_owned());
        self.0
            .call(move |s| s.set_sink_memory(&sink, &key, &value))
            .await
            .map_err(|e| kamstrup_sinks::SinkError::Io {
                target: "history database".into(),
                detail: e.to_string(),
            })
    }
}

//! The one error type of the store, with a short machine-readable `kind()` for logs and metrics.
//! SQLite errors stay wrapped (with their code) so callers can tell "busy" from "disk full".

use std::path::PathBuf;

use crate::MeterId;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite reported an error (busy, disk full, I/O, constraint …).
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The directory for the database file could not be created.
    #[error("cannot create {path}: {source}")]
    Io {
        /// The directory we tried to create.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The file was written by a newer kamstrup-bridge; opening it could damage it.
    #[error(
        "database schema version {found} is newer than this program supports ({supported}); \
         upgrade kamstrup-bridge or point it at another file"
    )]
    SchemaTooNew {
        /// `PRAGMA user_version` of the file.
        found: u32,
        /// The newest schema this build knows.
        supported: u32,
    },
    /// A read-only open found a file that the daemon has not migrated yet.
    #[error(
        "database schema version {found} is older than {needed}; start the daemon once to \
         migrate it (read-only opens never migrate)"
    )]
    SchemaTooOld {
        /// `PRAGMA user_version` of the file.
        found: u32,
        /// The schema this build reads.
        needed: u32,
    },
    /// A value whose mantissa does not fit the 64-bit integer column.
    #[error("register {register}: value {value} does not fit the store (mantissa beyond 64 bits)")]
    ValueOutOfRange {
        /// Register name.
        register: String,
        /// The value as text.
        value: String,
    },
    /// Exact arithmetic (a difference, an average) overflowed.
    #[error("arithmetic overflow computing {0}")]
    Overflow(&'static str),
    /// A reading names a meter id that is not in the store.
    #[error("no meter with id {}", .0 .0)]
    UnknownMeter(MeterId),
    /// A time that cannot be represented (out of the calendar range).
    #[error("time out of range: {0}")]
    TimeOutOfRange(i64),
    /// Stored data that does not decode (hand-edited or damaged file).
    #[error("corrupt store data: {0}")]
    Corrupt(String),
    /// A write on a store opened with [`crate::Store::open_read_only`].
    #[error("the store is open read-only")]
    ReadOnly,
    /// The caller's callback (e.g. in [`crate::Store::export`]) failed.
    #[error("callback failed: {0}")]
    Callback(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    /// A stable snake_case name for logs, metrics and the dashboard.
    pub fn kind(&self) -> &'static str {
        match self {
            StoreError::Sqlite(e) => match e.sqlite_error_code() {
                Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
                    "busy"
                }
                Some(rusqlite::ErrorCode::DiskFull) => "disk_full",
                Some(rusqlite::ErrorCode::ReadOnly) => "read_only",
                Some(rusqlite::ErrorCode::CannotOpen) => "cannot_open",
                Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase) => {
                    "corrupt"
                }
                Some(rusqlite::ErrorCode::SystemIoFailure) => "io",
                _ => "sqlite",
            },
            StoreError::Io { .. } => "io",
            StoreError::SchemaTooNew { .. } => "schema_too_new",
            StoreError::SchemaTooOld { .. } => "schema_too_old",
            StoreError::ValueOutOfRange { .. } => "value_out_of_range",
            StoreError::Overflow(_) => "overflow",
            StoreError::UnknownMeter(_) => "unknown_meter",
            StoreError::TimeOutOfRange(_) => "time_out_of_range",
            StoreError::Corrupt(_) => "corrupt",
            StoreError::ReadOnly => "read_only",
            StoreError::Callback(_) => "callback",
        }
    }
}

//! Schema migrations: an ordered list of SQL scripts, applied in one transaction and tracked by
//! `PRAGMA user_version`. A file whose version is newer than the list is refused, never touched.

use rusqlite::{Connection, TransactionBehavior};

use crate::StoreError;

/// The scripts, oldest first; script `i` brings the file to version `i + 1`. Append only.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_initial.sql"),
    include_str!("../migrations/0002_sink_memory.sql"),
    include_str!("../migrations/0003_reading_source.sql"),
];

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

pub(crate) fn user_version(conn: &Connection) -> Result<u32, StoreError> {
    let v: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("negative schema version {v}")))
}

pub(crate) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    if user_version(conn)? == SCHEMA_VERSION {
        return Ok(());
    }
    // IMMEDIATE takes the write lock first, so two processes opening a fresh file at once do
    // not both run the scripts; the version is read again under the lock.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found = user_version(&tx)?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for (version, script) in (1u32..).zip(MIGRATIONS).skip(found as usize) {
        tx.execute_batch(script)?;
        tx.pragma_update(None, "user_version", version)?;
        tracing::info!(version, "store schema migrated");
    }
    tx.commit()?;
    Ok(())
}

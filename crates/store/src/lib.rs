//! The kamstrup-bridge store: an SQLite history of exact meter readings and, through per-sink
//! cursors, the outbox that lets every sink catch up on what it missed.
//!
//! # Layout and guarantees
//!
//! * Times are integer unix milliseconds UTC (a reading's `taken_at` is truncated to the
//!   millisecond). Values are a mantissa and an exponent in two INTEGER columns, so `55.006`
//!   comes back as `55.006` and `0.0` keeps its decimal. A mantissa beyond 64 bits is refused.
//! * Values are clustered by series (meter, register name) and time, so one register of one
//!   meter over a time range — the web's query — reads consecutive pages.
//! * Every write is one transaction that has committed when the call returns: the daemon may
//!   deliver a reading as soon as `insert_reading` returned its id.
//! * Sinks keep a cursor (the last reading id they received); ids only grow (AUTOINCREMENT),
//!   cursors only move forward. Readings flagged implausible are stored but never delivered.
//! * The schema is migrated by an ordered list of SQL scripts tracked by `PRAGMA user_version`;
//!   a file from a newer program is refused rather than touched.
//!
//! The API is synchronous: the daemon owns a [`Store`] on one thread (or uses
//! `spawn_blocking`); the web server opens its own [`Store::open_read_only`], which WAL mode lets
//! read while the daemon writes.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod codec;
mod error;
mod read;
mod schema;
mod series;
mod write;

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use kamstrup_decimal::Decimal;
use kamstrup_reading::{Protocol, Reading};
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use serde::{Deserialize, Serialize};

pub use error::StoreError;
pub use schema::SCHEMA_VERSION;

use codec::{from_ms, parse_protocol, serial_from_sql, serial_to_sql, to_ms};
use write::Caches;

/// How long a statement waits for another connection's lock before failing with "busy".
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The WAL file is truncated back to this size after a checkpoint, so one big bulk insert does
/// not leave a huge `-wal` file behind for good.
const JOURNAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;

/// Prepared statements kept per connection (the daemon and web reuse a couple of dozen).
const STATEMENT_CACHE: usize = 64;

/// The id of a stored reading. Ids grow with every insert and are never reused, so a sink's
/// cursor (the last id it received) says exactly what it still lacks. `ReadingId(0)` is "none".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ReadingId(pub i64);

/// A period of time, `[from, to)`.
pub type Span = (DateTime<Utc>, DateTime<Utc>);

/// What storing a reading did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Inserted {
    /// Stored under this new id.
    New(ReadingId),
    /// The same logged record (meter, source, stamp) was stored before, under this id; nothing
    /// was written.
    AlreadyStored(ReadingId),
}

impl Inserted {
    /// The reading's id, new or old.
    pub fn id(self) -> ReadingId {
        match self {
            Inserted::New(id) | Inserted::AlreadyStored(id) => id,
        }
    }

    /// True when a row was written.
    pub fn is_new(self) -> bool {
        matches!(self, Inserted::New(_))
    }
}

/// A record read from a meter's logger, to be stored with [`Store::insert_logged`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedRecord {
    /// The meter.
    pub meter: MeterId,
    /// The values; `reading.source` says which logger, `reading.taken_at` is the record's
    /// moment in UTC corrected for the meter clock's offset.
    pub reading: Reading,
    /// The record's stamp as the meter's clock wrote it (converted by the meter's zone, not
    /// corrected): what makes the record unique.
    pub logged_at: DateTime<Utc>,
    /// Why the record failed the plausibility check, if it did.
    pub implausible: Option<String>,
}

/// The store's id of a meter (stable for a serial number).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MeterId(pub i64);

/// A known meter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MeterRecord {
    /// Store id.
    pub id: MeterId,
    /// Serial number: what identifies the meter.
    pub serial: u64,
    /// The configured name (may change).
    pub name: String,
    /// Protocol it was last read with.
    pub protocol: Protocol,
    /// Model / type as last reported, if ever.
    pub model: Option<String>,
    /// The port it was last read through (may change).
    pub port: String,
    /// First time seen.
    pub first_seen: DateTime<Utc>,
    /// Last time seen.
    pub last_seen: DateTime<Utc>,
}

/// A reading as stored, with where it came from and whether it was flagged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StoredReading {
    /// Store id (the outbox position).
    pub id: ReadingId,
    /// The meter it belongs to.
    pub meter: MeterId,
    /// The meter's current name.
    pub meter_name: String,
    /// The meter's serial.
    pub serial: u64,
    /// The reading, values exact; `taken_at` at millisecond precision.
    pub reading: Reading,
    /// Why it was flagged implausible. Flagged readings are stored (and exported) but never
    /// delivered to sinks nor used for usage, series or plausibility baselines.
    pub implausible: Option<String>,
}

/// A calendar bucket for aggregated series. Boundaries are UTC; weeks start on Monday (ISO).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Bucket {
    /// One hour.
    Hour,
    /// One UTC day.
    Day,
    /// One ISO week, Monday 00:00 UTC to Monday.
    Week,
    /// One calendar month (UTC).
    Month,
}

/// One point of a series.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Point {
    /// The value's time, or the bucket's start.
    pub t: DateTime<Utc>,
    /// The exact value: a raw value, a bucket average (rounded half away from zero to the
    /// finest resolution in the bucket) or a usage (difference of exact values).
    pub value: Decimal,
    /// Smallest value in the bucket (aggregated instantaneous series only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<Decimal>,
    /// Largest value in the bucket (aggregated instantaneous series only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<Decimal>,
}

/// A recorded read failure.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReadError {
    /// The configured name of the meter whose read failed.
    pub meter_name: String,
    /// When.
    pub at: DateTime<Utc>,
    /// Short machine-readable kind (`timeout`, `crc`, …).
    pub kind: String,
    /// Human-readable message.
    pub message: String,
}

/// How hard a commit is pushed to the disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// `synchronous=NORMAL` (the default). In WAL mode a commit survives a crash or kill of the
    /// process and the file is never corrupted; only a power loss or OS crash can roll back the
    /// commits not yet written back by the OS (typically the last few seconds). It saves one
    /// fsync per commit, which matters on SD cards and flash that a Raspberry Pi runs from, and
    /// a lost reading is simply read again at the next poll.
    #[default]
    Normal,
    /// `synchronous=FULL`: every commit is fsynced before the call returns.
    Full,
}

/// The history and outbox. One SQLite connection; `Send`, not `Sync` (own it on one thread).
pub struct Store {
    pub(crate) conn: Connection,
    pub(crate) read_only: bool,
    pub(crate) caches: Caches,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.conn.path())
            .field("read_only", &self.read_only)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating the file and its directory if needed) and migrates the store, with
    /// [`Durability::Normal`].
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Store::open_with(path, Durability::Normal)
    }

    /// Like [`Store::open`], choosing how commits are synced.
    pub fn open_with(path: &Path, durability: Durability) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(%mode, "SQLite refused WAL mode; readers will block the writer");
        }
        let sync = match durability {
            Durability::Normal => "NORMAL",
            Durability::Full => "FULL",
        };
        conn.pragma_update(None, "synchronous", sync)?;
        conn.pragma_update(None, "journal_size_limit", JOURNAL_SIZE_LIMIT)?;
        Store::finish_open(conn)
    }

    /// Opens an existing, migrated store for reading only (web server, history export). WAL
    /// mode lets it read while the daemon writes; it never migrates.
    pub fn open_read_only(path: &Path) -> Result<Store, StoreError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.pragma_update(None, "query_only", true)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let found = schema::user_version(&conn)?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::SchemaTooNew {
                found,
                supported: SCHEMA_VERSION,
            });
        }
        if found < SCHEMA_VERSION {
            return Err(StoreError::SchemaTooOld {
                found,
                needed: SCHEMA_VERSION,
            });
        }
        Ok(Store {
            conn,
            read_only: true,
            caches: Caches::default(),
        })
    }

    /// A private store in memory (tests, `--dry-run`).
    pub fn open_in_memory() -> Result<Store, StoreError> {
        Store::finish_open(Connection::open_in_memory()?)
    }

    fn finish_open(mut conn: Connection) -> Result<Store, StoreError> {
        conn.pragma_update(None, "foreign_keys", true)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        schema::migrate(&mut conn)?;
        Ok(Store {
            conn,
            read_only: false,
            caches: Caches::default(),
        })
    }

    /// The schema version of the open file.
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        schema::user_version(&self.conn)
    }

    pub(crate) fn writable(&self) -> Result<(), StoreError> {
        if self.read_only {
            Err(StoreError::ReadOnly)
        } else {
            Ok(())
        }
    }

    /// Records that the meter with `serial` was seen; creates it or updates its name, protocol,
    /// port and model (a `None` model keeps the known one). Meters are keyed by serial, so a
    /// meter moved to another port keeps its id and history.
    pub fn upsert_meter(
        &mut self,
        serial: u64,
        name: &str,
        protocol: Protocol,
        model: Option<&str>,
        port: &str,
        seen: DateTime<Utc>,
    ) -> Result<MeterId, StoreError> {
        self.writable()?;
        let id: i64 = self
            .conn
            .prepare_cached(
                "INSERT INTO meters (serial, name, protocol, model, port, first_seen, last_seen)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
                 ON CONFLICT (serial) DO UPDATE SET
                     name = excluded.name,
                     protocol = excluded.protocol,
                     model = COALESCE(excluded.model, meters.model),
                     port = excluded.port,
                     first_seen = MIN(meters.first_seen, excluded.first_seen),
                     last_seen = MAX(meters.last_seen, excluded.last_seen)
                 RETURNING id",
            )?
            .query_row(
                rusqlite::params![
                    serial_to_sql(serial),
                    name,
                    codec::protocol_text(protocol),
                    model,
                    port,
                    to_ms(seen)
                ],
                |row| row.get(0),
            )?;
        self.caches.meters.insert(id);
        Ok(MeterId(id))
    }

    /// All known meters, by id.
    pub fn meters(&self) -> Result<Vec<MeterRecord>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!("{METER_COLUMNS} ORDER BY id"))?;
        let rows = stmt.query_map([], meter_row)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row??);
        }
        Ok(out)
    }

    /// The meter with this serial, if known.
    pub fn meter_by_serial(&self, serial: u64) -> Result<Option<MeterRecord>, StoreError> {
        self.conn
            .prepare_cached(&format!("{METER_COLUMNS} WHERE serial = ?1"))?
            .query_row([serial_to_sql(serial)], meter_row)
            .optional()?
            .transpose()
    }

    /// The meter with this id, if known.
    pub fn meter(&self, id: MeterId) -> Result<Option<MeterRecord>, StoreError> {
        self.conn
            .prepare_cached(&format!("{METER_COLUMNS} WHERE id = ?1"))?
            .query_row([id.0], meter_row)
            .optional()?
            .transpose()
    }

    /// The database size: `page_count × page_size` (the `-wal` file not included).
    pub fn size_bytes(&self) -> Result<u64, StoreError> {
        let pages: i64 = self
            .conn
            .query_row("PRAGMA page_count", [], |row| row.get(0))?;
        let size: i64 = self
            .conn
            .query_row("PRAGMA page_size", [], |row| row.get(0))?;
        let bytes = pages.saturating_mul(size);
        Ok(u64::try_from(bytes).unwrap_or(0))
    }
}

const METER_COLUMNS: &str =
    "SELECT id, serial, name, protocol, model, port, first_seen, last_seen FROM meters";

/// Decodes a [`METER_COLUMNS`] row; the inner result carries decoding errors of our own.
fn meter_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<MeterRecord, StoreError>> {
    let id: i64 = row.get(0)?;
    let serial: i64 = row.get(1)?;
    let name: String = row.get(2)?;
    let protocol: String = row.get(3)?;
    let model: Option<String> = row.get(4)?;
    let port: String = row.get(5)?;
    let first_seen: i64 = row.get(6)?;
    let last_seen: i64 = row.get(7)?;
    Ok((|| {
        Ok(MeterRecord {
            id: MeterId(id),
            serial: serial_from_sql(serial),
            name,
            protocol: parse_protocol(&protocol)?,
            model,
            port,
            first_seen: from_ms(first_seen)?,
            last_seen: from_ms(last_seen)?,
        })
    })())
}

/// The daemon moves its store to a dedicated thread; keep that possible.
const _: fn() = || {
    fn assert_send<T: Send>() {}
    assert_send::<Store>();
};

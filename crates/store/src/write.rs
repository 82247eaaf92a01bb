//! Writes: readings (one transaction per call), sink cursors, read errors and retention.
//! Small lookup tables (sources, series, register descriptions) are cached by id in memory.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use kamstrup_reading::{MeterIdentity, Reading, RegisterValue};
use rusqlite::{OptionalExtension, Transaction, TransactionBehavior};

use crate::codec::{decimal_to_sql, missing_to_sql, protocol_text, serial_to_sql, to_ms};
use crate::{Inserted, LoggedRecord, MeterId, ReadingId, Store, StoreError};

/// Longest error message kept; a multi-kilobyte hex dump belongs in the log, not the table.
const MAX_ERROR_MESSAGE: usize = 2048;

/// Register descriptions keyed by (register id, unit code, derived), each with the
/// (short name, unit, row id) rows that share the key.
type RegisterIds = HashMap<(u16, Option<u8>, bool), Vec<(String, String, i64)>>;

/// Ids of rows that are only ever added, never changed or deleted, so a cached id stays valid
/// even with another writer on the file. Cleared when a transaction that may have added them
/// rolls back.
#[derive(Default)]
pub(crate) struct Caches {
    pub(crate) meters: HashSet<i64>,
    sources: Vec<(MeterIdentity, i64)>,
    /// meter id → register name → series id.
    series: HashMap<i64, HashMap<String, i64>>,
    registers: RegisterIds,
}

impl Caches {
    fn clear(&mut self) {
        *self = Caches::default();
    }

    fn check_meter(&mut self, tx: &Transaction<'_>, meter: MeterId) -> Result<(), StoreError> {
        if self.meters.contains(&meter.0) {
            return Ok(());
        }
        let found = tx
            .prepare_cached("SELECT 1 FROM meters WHERE id = ?1")?
            .query_row([meter.0], |_| Ok(()))
            .optional()?;
        match found {
            Some(()) => {
                self.meters.insert(meter.0);
                Ok(())
            }
            None => Err(StoreError::UnknownMeter(meter)),
        }
    }

    fn source(&mut self, tx: &Transaction<'_>, who: &MeterIdentity) -> Result<i64, StoreError> {
        if let Some((_, id)) = self.sources.iter().find(|(m, _)| m == who) {
            return Ok(*id);
        }
        let protocol = protocol_text(who.protocol);
        let serial = who.serial.map(serial_to_sql);
        let found: Option<i64> = tx
            .prepare_cached(
                "SELECT id FROM sources WHERE protocol = ?1 AND port = ?2 AND serial IS ?3
                 AND meter_type IS ?4 LIMIT 1",
            )?
            .query_row(
                rusqlite::params![protocol, who.port, serial, who.meter_type],
                |row| row.get(0),
            )
            .optional()?;
        let id = match found {
            Some(id) => id,
            None => {
                tx.prepare_cached(
                    "INSERT INTO sources (protocol, port, serial, meter_type) VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(rusqlite::params![protocol, who.port, serial, who.meter_type])?;
                tx.last_insert_rowid()
            }
        };
        self.sources.push((who.clone(), id));
        Ok(id)
    }

    fn series(&mut self, tx: &Transaction<'_>, meter: i64, name: &str) -> Result<i64, StoreError> {
        if let Some(id) = self.series.get(&meter).and_then(|m| m.get(name)) {
            return Ok(*id);
        }
        let found: Option<i64> = tx
            .prepare_cached("SELECT id FROM series WHERE meter_id = ?1 AND name = ?2")?
            .query_row(rusqlite::params![meter, name], |row| row.get(0))
            .optional()?;
        let id = match found {
            Some(id) => id,
            None => {
                tx.prepare_cached("INSERT INTO series (meter_id, name) VALUES (?1, ?2)")?
                    .execute(rusqlite::params![meter, name])?;
                tx.last_insert_rowid()
            }
        };
        self.series
            .entry(meter)
            .or_default()
            .insert(name.to_owned(), id);
        Ok(id)
    }

    fn register(&mut self, tx: &Transaction<'_>, v: &RegisterValue) -> Result<i64, StoreError> {
        let key = (v.id, v.unit_code, v.derived);
        if let Some(list) = self.registers.get(&key) {
            if let Some((_, _, id)) = list
                .iter()
                .find(|(s, u, _)| *s == v.short && *u == v.unit.as_str())
            {
                return Ok(*id);
            }
        }
        let found: Option<i64> = tx
            .prepare_cached(
                "SELECT id FROM registers WHERE register_id = ?1 AND short = ?2 AND unit = ?3
                 AND unit_code IS ?4 AND derived = ?5 LIMIT 1",
            )?
            .query_row(
                rusqlite::params![v.id, v.short, v.unit.as_str(), v.unit_code, v.derived],
                |row| row.get(0),
            )
            .optional()?;
        let id = match found {
            Some(id) => id,
            None => {
                tx.prepare_cached(
                    "INSERT INTO registers (register_id, short, unit, unit_code, derived)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(rusqlite::params![
                    v.id,
                    v.short,
                    v.unit.as_str(),
                    v.unit_code,
                    v.derived
                ])?;
                tx.last_insert_rowid()
            }
        };
        self.registers
            .entry(key)
            .or_default()
            .push((v.short.clone(), v.unit.to_string(), id));
        Ok(id)
    }
}

fn insert_one(
    tx: &Transaction<'_>,
    caches: &mut Caches,
    meter: MeterId,
    reading: &Reading,
    logged_at: Option<DateTime<Utc>>,
    implausible: Option<&str>,
) -> Result<Inserted, StoreError> {
    caches.check_meter(tx, meter)?;
    let source = caches.source(tx, &reading.meter)?;
    let taken_at = to_ms(reading.taken_at);
    let kind = reading.source.as_str();
    // A logged record's identity is its own stamp; without one given, its taken_at.
    let logged_at = reading
        .source
        .is_logged()
        .then(|| to_ms(logged_at.unwrap_or(reading.taken_at)));
    let added = tx
        .prepare_cached(
            "INSERT INTO readings (meter_id, source_id, taken_at, missing, implausible, source, logged_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT DO NOTHING",
        )?
        .execute(rusqlite::params![
            meter.0,
            source,
            taken_at,
            missing_to_sql(&reading.missing),
            implausible,
            kind,
            logged_at
        ])?;
    if added == 0 {
        let existing: i64 = tx
            .prepare_cached(
                "SELECT id FROM readings WHERE meter_id = ?1 AND source = ?2
                 AND (logged_at = ?3 OR taken_at = ?4) LIMIT 1",
            )?
            .query_row(
                rusqlite::params![meter.0, kind, logged_at, taken_at],
                |row| row.get(0),
            )?;
        return Ok(Inserted::AlreadyStored(ReadingId(existing)));
    }
    let id = tx.last_insert_rowid();
    let deliverable = implausible.is_none();
    let mut insert = tx.prepare_cached(
        "INSERT INTO reading_values
             (series_id, taken_at, reading_id, pos, deliverable, register, mantissa, exponent, text)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    for (pos, v) in (0i64..).zip(&reading.registers) {
        let (mantissa, exponent) = decimal_to_sql(&v.name, &v.value)?;
        let series = caches.series(tx, meter.0, &v.name)?;
        let register = caches.register(tx, v)?;
        insert.execute(rusqlite::params![
            series,
            taken_at,
            id,
            pos,
            deliverable,
            register,
            mantissa,
            exponent,
            v.text
        ])?;
    }
    Ok(Inserted::New(ReadingId(id)))
}

impl Store {
    /// Stores one reading in one transaction, committed when this returns. A logged record
    /// (`reading.source` not `Poll`) that is already stored is not stored again: the id of the
    /// stored one is returned (see [`Store::insert_logged`] to tell the two apart). `implausible` is
    /// the reason when the daemon's plausibility check failed: such a reading is kept for the
    /// record but never delivered to a sink. Fails (storing nothing) for an unknown meter or a
    /// value whose mantissa does not fit 64 bits.
    pub fn insert_reading(
        &mut self,
        meter: MeterId,
        reading: &Reading,
        implausible: Option<&str>,
    ) -> Result<ReadingId, StoreError> {
        self.writable()?;
        let result = (|| {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            let id = insert_one(&tx, &mut self.caches, meter, reading, None, implausible)?;
            tx.commit()?;
            Ok(id.id())
        })();
        if result.is_err() {
            self.caches.clear();
        }
        result
    }

    /// Stores many readings in one transaction (bulk history, demo seeding): all or nothing.
    pub fn insert_readings(
        &mut self,
        items: &[(MeterId, Reading, Option<String>)],
    ) -> Result<Vec<ReadingId>, StoreError> {
        self.writable()?;
        let result = (|| {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut ids = Vec::with_capacity(items.len());
            for (meter, reading, implausible) in items {
                ids.push(
                    insert_one(
                        &tx,
                        &mut self.caches,
                        *meter,
                        reading,
                        None,
                        implausible.as_deref(),
                    )?
                    .id(),
                );
            }
            tx.commit()?;
            Ok(ids)
        })();
        if result.is_err() {
            self.caches.clear();
        }
        result
    }

    /// Stores records back-filled from a meter's loggers in one transaction (all or nothing),
    /// each with its own stamp by the meter's clock (`logged_at`, its identity; `taken_at` is
    /// that stamp corrected for the meter clock's offset). A record already stored — same
    /// meter, source and stamp or time — is skipped and reported as
    /// [`Inserted::AlreadyStored`], never an error and never a second row.
    pub fn insert_logged(&mut self, items: &[LoggedRecord]) -> Result<Vec<Inserted>, StoreError> {
        self.writable()?;
        let result = (|| {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                out.push(insert_one(
                    &tx,
                    &mut self.caches,
                    item.meter,
                    &item.reading,
                    Some(item.logged_at),
                    item.implausible.as_deref(),
                )?);
            }
            tx.commit()?;
            Ok(out)
        })();
        if result.is_err() {
            self.caches.clear();
        }
        result
    }

    /// Moves the sink's cursor to `to`; a cursor never moves backwards (a smaller `to` is
    /// ignored), so a slow acknowledgement cannot cause a second delivery storm.
    pub fn set_cursor(&mut self, sink: &str, to: ReadingId) -> Result<(), StoreError> {
        self.writable()?;
        self.conn
            .prepare_cached(
                "INSERT INTO cursors (sink, reading_id, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (sink) DO UPDATE SET
                     reading_id = excluded.reading_id, updated_at = excluded.updated_at
                 WHERE excluded.reading_id > cursors.reading_id",
            )?
            .execute(rusqlite::params![sink, to.0.max(0), to_ms(Utc::now())])?;
        Ok(())
    }

    /// Saves a sink's memory under `key` (replacing it), committed when this returns.
    pub fn set_sink_memory(
        &mut self,
        sink: &str,
        key: &str,
        value: &str,
    ) -> Result<(), StoreError> {
        self.writable()?;
        self.conn
            .prepare_cached(
                "INSERT INTO sink_memory (sink, key, value, updated_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (sink, key) DO UPDATE SET
                     value = excluded.value, updated_at = excluded.updated_at",
            )?
            .execute(rusqlite::params![sink, key, value, to_ms(Utc::now())])?;
        Ok(())
    }

    /// Records a failed read for the dashboard (the message is cut at 2 KiB).
    pub fn record_error(
        &mut self,
        meter_name: &str,
        at: DateTime<Utc>,
        kind: &str,
        message: &str,
    ) -> Result<(), StoreError> {
        self.writable()?;
        let mut cut = message.len().min(MAX_ERROR_MESSAGE);
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        let message = message.get(..cut).unwrap_or_default();
        self.conn
            .prepare_cached(
                "INSERT INTO read_errors (meter_name, at, kind, message) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(rusqlite::params![meter_name, to_ms(at), kind, message])?;
        Ok(())
    }

    /// Retention: deletes readings (and read errors) taken before `older_than`; returns how
    /// many readings went.
    ///
    /// Retention wins over the outbox: a sink that has been down for longer than the retention
    /// period loses the readings that expire meanwhile (keeping them would let a dead sink grow
    /// the file without bound). Each such loss is logged at WARN with the sink, the count and
    /// the id range, so it is never silent. With the default 10-year retention this does not
    /// happen in practice.
    pub fn prune(&mut self, older_than: DateTime<Utc>) -> Result<usize, StoreError> {
        self.writable()?;
        let cutoff = to_ms(older_than);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut cursors = tx.prepare("SELECT sink, reading_id FROM cursors ORDER BY sink")?;
            let mut lost = tx.prepare(
                "SELECT COUNT(*), MIN(id), MAX(id) FROM readings
                 WHERE taken_at < ?1 AND id > ?2 AND implausible IS NULL",
            )?;
            let rows =
                cursors.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
            for row in rows {
                let (sink, cursor) = row?;
                let (count, first, last): (i64, Option<i64>, Option<i64>) = lost
                    .query_row(rusqlite::params![cutoff, cursor], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                    })?;
                if count > 0 {
                    tracing::warn!(
                        sink = %sink,
                        count,
                        first_id = first.unwrap_or_default(),
                        last_id = last.unwrap_or_default(),
                        "retention drops readings this sink has not received yet"
                    );
                }
            }
        }
        // Values carry their reading's time, so this removes exactly the values of the
        // readings deleted next, as one range per series.
        tx.execute(
            "DELETE FROM reading_values
             WHERE series_id IN (SELECT id FROM series) AND taken_at < ?1",
            [cutoff],
        )?;
        let deleted = tx.execute("DELETE FROM readings WHERE taken_at < ?1", [cutoff])?;
        let errors = tx.execute("DELETE FROM read_errors WHERE at < ?1", [cutoff])?;
        tx.commit()?;
        if deleted > 0 || errors > 0 {
            tracing::info!(readings = deleted, errors, "retention pruned the store");
        }
        Ok(deleted)
    }
}

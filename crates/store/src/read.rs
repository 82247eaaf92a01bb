//! Reads of whole readings (the outbox side: after a cursor, latest per meter, export) and of
//! cursors and read errors.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use kamstrup_reading::{MeterIdentity, Reading, ReadingSource, RegisterValue, ValueUnit};
use rusqlite::{OptionalExtension, Row};

use crate::codec::{
    decimal_from_sql, from_ms, limit_to_sql, missing_from_sql, parse_protocol, serial_from_sql,
    to_ms, u16_from_sql, u8_from_sql,
};
use crate::{MeterId, ReadError, ReadingId, Store, StoreError, StoredReading};

/// Columns 0..=11 of every whole-reading query.
const HEADER: &str = "SELECT r.id, r.meter_id, m.name, m.serial, r.taken_at, r.missing,
        r.implausible, s.protocol, s.port, s.serial, s.meter_type, r.source
    FROM readings r
    JOIN meters m ON m.id = r.meter_id
    JOIN sources s ON s.id = r.source_id";

/// The registers of one reading (meter ?1, taken_at ?2, id ?3), found through the clustered key
/// of `reading_values`: one short range per series of the meter.
const REGISTERS: &str = "SELECT se.name, g.register_id, g.short, g.unit, g.unit_code, g.derived,
        v.mantissa, v.exponent, v.text
    FROM series se
    JOIN reading_values v ON v.series_id = se.id AND v.taken_at = ?2 AND v.reading_id = ?3
    JOIN registers g ON g.id = v.register
    WHERE se.meter_id = ?1
    ORDER BY v.pos";

/// A header row, decoded; the registers are filled in afterwards.
fn header(row: &Row<'_>) -> Result<StoredReading, StoreError> {
    let missing: Option<String> = row.get(5)?;
    let protocol: String = row.get(7)?;
    let source_serial: Option<i64> = row.get(9)?;
    let kind: String = row.get(11)?;
    let source = ReadingSource::parse(&kind)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown reading source {kind:?}")))?;
    Ok(StoredReading {
        id: ReadingId(row.get(0)?),
        meter: MeterId(row.get(1)?),
        meter_name: row.get(2)?,
        serial: serial_from_sql(row.get(3)?),
        reading: Reading {
            source,
            meter: MeterIdentity {
                protocol: parse_protocol(&protocol)?,
                port: row.get(8)?,
                serial: source_serial.map(serial_from_sql),
                meter_type: row.get(10)?,
            },
            taken_at: from_ms(row.get(4)?)?,
            registers: Vec::new(),
            missing: missing_from_sql(missing.as_deref())?,
        },
        implausible: row.get(6)?,
    })
}

/// A register value from a [`REGISTERS`] row.
fn register(row: &Row<'_>) -> Result<RegisterValue, StoreError> {
    Ok(RegisterValue {
        name: row.get(0)?,
        id: u16_from_sql(row.get(1)?, "register id")?,
        short: row.get(2)?,
        unit: ValueUnit::from_symbol(&row.get::<_, String>(3)?),
        unit_code: row
            .get::<_, Option<i64>>(4)?
            .map(|c| u8_from_sql(c, "unit code"))
            .transpose()?,
        derived: row.get(5)?,
        value: decimal_from_sql(row.get(6)?, row.get(7)?)?,
        text: row.get(8)?,
    })
}

impl Store {
    /// Fills in the registers of a reading decoded from [`HEADER`].
    fn fill_registers(&self, r: &mut StoredReading) -> Result<(), StoreError> {
        let mut stmt = self.conn.prepare_cached(REGISTERS)?;
        let mut rows = stmt.query(rusqlite::params![
            r.meter.0,
            to_ms(r.reading.taken_at),
            r.id.0
        ])?;
        while let Some(row) = rows.next()? {
            r.reading.registers.push(register(row)?);
        }
        Ok(())
    }

    fn with_registers(
        &self,
        mut readings: Vec<StoredReading>,
    ) -> Result<Vec<StoredReading>, StoreError> {
        for r in &mut readings {
            self.fill_registers(r)?;
        }
        Ok(readings)
    }

    fn headers(
        &self,
        tail: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<StoredReading>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!("{HEADER} {tail}"))?;
        let mut rows = stmt.query(params)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(header(row)?);
        }
        Ok(out)
    }

    /// One reading by id, flagged or not.
    pub fn reading(&self, id: ReadingId) -> Result<Option<StoredReading>, StoreError> {
        let found = self.headers("WHERE r.id = ?1", [id.0])?;
        Ok(self.with_registers(found)?.into_iter().next())
    }

    /// Up to `limit` deliverable readings (not flagged implausible) with id > `cursor`, by
    /// ascending id: what a timestamped sink still has to receive.
    pub fn readings_after(
        &self,
        cursor: ReadingId,
        limit: usize,
    ) -> Result<Vec<StoredReading>, StoreError> {
        let found = self.headers(
            "WHERE r.id > ?1 AND r.implausible IS NULL ORDER BY r.id LIMIT ?2",
            rusqlite::params![cursor.0, limit_to_sql(limit)],
        )?;
        self.with_registers(found)
    }

    /// The newest (by `taken_at`, then id) deliverable reading of every meter that has one,
    /// ordered by meter id — polled or logged: a record back-filled later (bigger id, older
    /// time) never wins over a newer one. The dashboard's "now".
    pub fn latest_deliverable(&self) -> Result<Vec<StoredReading>, StoreError> {
        let found = self.headers(
            "WHERE r.id = (SELECT l.id FROM readings l
                           WHERE l.meter_id = m.id AND l.implausible IS NULL
                           ORDER BY l.taken_at DESC, l.id DESC LIMIT 1)
             ORDER BY m.id",
            [],
        )?;
        self.with_registers(found)
    }

    /// The newest (by `taken_at`, then id) deliverable *polled* reading of every meter that has
    /// one, ordered by meter id: what a state sink shows as current.
    pub fn latest_polled(&self) -> Result<Vec<StoredReading>, StoreError> {
        let found = self.headers(
            "WHERE r.id = (SELECT l.id FROM readings l
                           WHERE l.meter_id = m.id AND l.source = 'poll' AND l.implausible IS NULL
                           ORDER BY l.taken_at DESC, l.id DESC LIMIT 1)
             ORDER BY m.id",
            [],
        )?;
        self.with_registers(found)
    }

    /// For state-only sinks: per meter, the newest (by `taken_at`, then id) deliverable polled
    /// reading among those with id > `cursor`; meters with nothing new are left out. Ordered by
    /// meter. Logged (back-filled) records are never "the newest": see [`Store::logged_after`].
    pub fn latest_after(&self, cursor: ReadingId) -> Result<Vec<StoredReading>, StoreError> {
        if cursor.0 <= 0 {
            return self.latest_polled();
        }
        // Scan only the new rows (a rowid range), however long the history is.
        let mut newest: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
        {
            let mut stmt = self.conn.prepare_cached(
                "SELECT id, meter_id, taken_at FROM readings
                 WHERE id > ?1 AND +implausible IS NULL AND +source = 'poll' ORDER BY id",
            )?;
            let mut rows = stmt.query([cursor.0])?;
            while let Some(row) = rows.next()? {
                let (id, meter, taken): (i64, i64, i64) = (row.get(0)?, row.get(1)?, row.get(2)?);
                let entry = newest.entry(meter).or_insert((taken, id));
                if (taken, id) > *entry {
                    *entry = (taken, id);
                }
            }
        }
        let mut out = Vec::with_capacity(newest.len());
        for (_, id) in newest.into_values() {
            out.extend(self.reading(ReadingId(id))?);
        }
        Ok(out)
    }

    /// Up to `limit` deliverable logged (back-filled) records with id > `cursor`, ordered by
    /// meter, then time: the history a state sink that accepts logged records gets beside the
    /// newest polled reading.
    pub fn logged_after(
        &self,
        cursor: ReadingId,
        limit: usize,
    ) -> Result<Vec<StoredReading>, StoreError> {
        let found = self.headers(
            "WHERE r.id IN (SELECT id FROM readings
                            WHERE id > ?1 AND +implausible IS NULL AND +source <> 'poll'
                            ORDER BY id LIMIT ?2)
             ORDER BY r.meter_id, r.taken_at, r.id",
            rusqlite::params![cursor.0, limit_to_sql(limit)],
        )?;
        self.with_registers(found)
    }

    /// The time of a meter's newest reading of this source (flagged ones included: they were
    /// read, so that time is not a gap).
    pub fn newest_of_source(
        &self,
        meter: MeterId,
        source: ReadingSource,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let ms: Option<i64> = self
            .conn
            .prepare_cached(
                "SELECT MAX(taken_at) FROM readings WHERE meter_id = ?1 AND source = ?2",
            )?
            .query_row(rusqlite::params![meter.0, source.as_str()], |row| {
                row.get(0)
            })?;
        ms.map(from_ms).transpose()
    }

    /// The periods in `[from, to)` whose readings of this meter were back-filled from its
    /// loggers, as `[first record, last record + 1 h)` runs of records at most 65 min apart
    /// (for the dashboard to mark them). Deliverable records only.
    pub fn logged_spans(
        &self,
        meter: MeterId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<crate::Span>, StoreError> {
        const JOIN_MS: i64 = 65 * 60_000;
        let mut stmt = self.conn.prepare_cached(
            "SELECT taken_at FROM readings
             WHERE meter_id = ?1 AND source <> 'poll' AND taken_at >= ?2 AND taken_at < ?3
               AND implausible IS NULL
             ORDER BY taken_at",
        )?;
        let mut rows = stmt.query(rusqlite::params![meter.0, to_ms(from), to_ms(to)])?;
        let mut spans: Vec<(i64, i64)> = Vec::new();
        while let Some(row) = rows.next()? {
            let t: i64 = row.get(0)?;
            match spans.last_mut() {
                Some((_, end)) if t - *end <= JOIN_MS => *end = t,
                _ => spans.push((t, t)),
            }
        }
        spans
            .into_iter()
            .map(|(a, b)| Ok((from_ms(a)?, from_ms((b + 3_600_000).min(to_ms(to)))?)))
            .collect()
    }

    /// The UTC hours (start of each, as unix hours) in `[from, to)` that already hold a
    /// reading of this meter — polled or logged, flagged or not: gap detection looks for the
    /// hours not in this set.
    pub fn hours_with_readings(
        &self,
        meter: MeterId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<std::collections::BTreeSet<i64>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT DISTINCT taken_at / 3600000 FROM readings
             WHERE meter_id = ?1 AND taken_at >= ?2 AND taken_at < ?3",
        )?;
        let mut rows = stmt.query(rusqlite::params![meter.0, to_ms(from), to_ms(to)])?;
        let mut out = std::collections::BTreeSet::new();
        while let Some(row) = rows.next()? {
            out.insert(row.get::<_, i64>(0)?);
        }
        Ok(out)
    }

    /// The last reading id a sink received; `ReadingId(0)` if it never received any.
    pub fn cursor(&self, sink: &str) -> Result<ReadingId, StoreError> {
        let id: Option<i64> = self
            .conn
            .prepare_cached("SELECT reading_id FROM cursors WHERE sink = ?1")?
            .query_row([sink], |row| row.get(0))
            .optional()?;
        Ok(ReadingId(id.unwrap_or(0)))
    }

    /// What a sink saved under `key` with [`Store::set_sink_memory`], if anything.
    pub fn sink_memory(&self, sink: &str, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT value FROM sink_memory WHERE sink = ?1 AND key = ?2")?
            .query_row([sink, key], |row| row.get(0))
            .optional()?)
    }

    /// Every sink's cursor and when it last moved, by sink name (for the dashboard).
    pub fn cursors(&self) -> Result<Vec<(String, ReadingId, DateTime<Utc>)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT sink, reading_id, updated_at FROM cursors ORDER BY sink")?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push((row.get(0)?, ReadingId(row.get(1)?), from_ms(row.get(2)?)?));
        }
        Ok(out)
    }

    /// The highest reading id ever assigned (0 for none); still valid after prune deleted it.
    pub fn max_reading_id(&self) -> Result<ReadingId, StoreError> {
        let seq: Option<i64> = self
            .conn
            .prepare_cached("SELECT seq FROM sqlite_sequence WHERE name = 'readings'")?
            .query_row([], |row| row.get(0))
            .optional()?;
        Ok(ReadingId(seq.unwrap_or(0)))
    }

    /// Streams stored readings to `f` in ascending time (then id) — flagged ones included, with
    /// their flag — optionally from `since` on and for one meter. Stops at the first error of
    /// `f`. Returns how many readings were passed.
    pub fn export(
        &self,
        since: Option<DateTime<Utc>>,
        meter: Option<MeterId>,
        f: &mut dyn FnMut(&StoredReading) -> Result<(), StoreError>,
    ) -> Result<usize, StoreError> {
        let mut conditions = Vec::new();
        let mut params: Vec<i64> = Vec::new();
        if let Some(t) = since {
            params.push(to_ms(t));
            conditions.push(format!("r.taken_at >= ?{}", params.len()));
        }
        if let Some(m) = meter {
            params.push(m.0);
            conditions.push(format!("r.meter_id = ?{}", params.len()));
        }
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        let sql = format!("{HEADER} {filter} ORDER BY r.taken_at, r.id");
        let mut stmt = self.conn.prepare(&sql)?;
        // The register lookups share this statement's read snapshot (same connection), so
        // the export is consistent even while the daemon writes.
        let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
        let mut count = 0usize;
        while let Some(row) = rows.next()? {
            let mut reading = header(row)?;
            self.fill_registers(&mut reading)?;
            f(&reading)?;
            count += 1;
        }
        Ok(count)
    }

    /// The newest `limit` read errors, newest first.
    pub fn recent_errors(&self, limit: usize) -> Result<Vec<ReadError>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT meter_name, at, kind, message FROM read_errors
             ORDER BY at DESC, id DESC LIMIT ?1",
        )?;
        let mut rows = stmt.query([limit_to_sql(limit)])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(ReadError {
                meter_name: row.get(0)?,
                at: from_ms(row.get(1)?)?,
                kind: row.get(2)?,
                message: row.get(3)?,
            });
        }
        Ok(out)
    }

    /// How many read errors each meter has had since `since`, by meter name.
    pub fn error_counts_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<std::collections::HashMap<String, u64>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT meter_name, COUNT(*) FROM read_errors WHERE at >= ?1 GROUP BY meter_name",
        )?;
        let mut rows = stmt.query([to_ms(since)])?;
        let mut out = std::collections::HashMap::new();
        while let Some(row) = rows.next()? {
            let n: i64 = row.get(1)?;
            out.insert(row.get(0)?, u64::try_from(n).unwrap_or(0));
        }
        Ok(out)
    }

    /// How many errors of each kind each meter has had (within retention), by meter and kind.
    pub fn error_counts(&self) -> Result<Vec<(String, String, u64)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT meter_name, kind, COUNT(*) FROM read_errors
             GROUP BY meter_name, kind ORDER BY meter_name, kind",
        )?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let n: i64 = row.get(2)?;
            out.push((row.get(0)?, row.get(1)?, u64::try_from(n).unwrap_or(0)));
        }
        Ok(out)
    }
}

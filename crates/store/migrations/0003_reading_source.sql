-- Schema 3: where a reading comes from (polled, or a record of one of the meter's own loggers,
-- back-filled), and one key per (meter, source, time) for logged records.
-- `source` is ReadingSource::as_str; rows from before this schema were all polled.
ALTER TABLE readings ADD COLUMN source TEXT NOT NULL DEFAULT 'poll'
    CHECK (source IN ('poll', 'hour_log', 'day_log', 'month_log', 'year_log'));
-- A logged record's own stamp (the meter's clock, by its zone, not corrected for drift), unix
-- ms. `taken_at` is that stamp corrected by the clock offset measured in the reading session,
-- which may differ by a second between two sessions; the record's identity is this column.
ALTER TABLE readings ADD COLUMN logged_at INTEGER;
-- A logged record can be stored once only: a second insert of it is a no-op ("already stored").
-- Polls are left out of the keys on purpose: a file from an older program may hold two polls
-- with the same millisecond, and this migration must never fail on it.
CREATE UNIQUE INDEX readings_logged_key ON readings(meter_id, source, logged_at)
    WHERE logged_at IS NOT NULL;
CREATE UNIQUE INDEX readings_source_key ON readings(meter_id, source, taken_at)
    WHERE source <> 'poll';
-- Gap detection and latest-poll queries: a meter's readings of one source by time.
CREATE INDEX readings_by_source ON readings(meter_id, source, taken_at);

-- Schema 1: meters, readings with exact values clustered by series, sink cursors, read errors.
-- Times are integer unix milliseconds UTC. Values are mantissa + exponent integers (exact).

-- One row per physical meter, keyed by serial (a meter keeps its history when its port moves).
CREATE TABLE meters (
    id          INTEGER PRIMARY KEY,
    serial      INTEGER NOT NULL UNIQUE,   -- u64 stored bit-for-bit in a signed INTEGER
    name        TEXT    NOT NULL,
    protocol    TEXT    NOT NULL,
    model       TEXT,
    port        TEXT    NOT NULL,
    first_seen  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL
) STRICT;

-- How a reading's meter identified itself; shared by many readings so a long port path is
-- stored once rather than in every row.
CREATE TABLE sources (
    id          INTEGER PRIMARY KEY,
    protocol    TEXT    NOT NULL,
    port        TEXT    NOT NULL,
    serial      INTEGER,
    meter_type  TEXT
) STRICT;

-- AUTOINCREMENT: ids must never be reused after prune deletes the newest rows, because sink
-- cursors compare ids.
CREATE TABLE readings (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    meter_id    INTEGER NOT NULL REFERENCES meters(id),
    source_id   INTEGER NOT NULL REFERENCES sources(id),
    taken_at    INTEGER NOT NULL,
    missing     TEXT,                      -- comma-separated register ids, NULL when none
    implausible TEXT                       -- why the reading was flagged; NULL = deliverable
) STRICT;
CREATE INDEX readings_by_time ON readings(taken_at);
CREATE INDEX readings_latest ON readings(meter_id, taken_at) WHERE implausible IS NULL;

-- One time series per (meter, register name): the key the web queries by.
CREATE TABLE series (
    id          INTEGER PRIMARY KEY,
    meter_id    INTEGER NOT NULL REFERENCES meters(id),
    name        TEXT    NOT NULL,
    UNIQUE (meter_id, name)
) STRICT;

-- The descriptive part of a register value, shared by all values that look alike.
CREATE TABLE registers (
    id          INTEGER PRIMARY KEY,
    register_id INTEGER NOT NULL,
    short       TEXT    NOT NULL,
    unit        TEXT    NOT NULL,
    unit_code   INTEGER,
    derived     INTEGER NOT NULL
) STRICT;

-- Clustered by (series, time): a range query for one register of one meter reads consecutive
-- pages. `deliverable` copies readings.implausible IS NULL and `taken_at` the reading's time so
-- range queries need no join. There is deliberately no index on reading_id (it would be a third
-- of the file): a reading's values are found through this key — its meter's series, its
-- taken_at, its id — and retention deletes by (series, taken_at) ranges. Hence also no foreign
-- key on reading_id: deleting a reading would have to scan for children; the store deletes
-- values before their readings itself.
CREATE TABLE reading_values (
    series_id   INTEGER NOT NULL REFERENCES series(id),
    taken_at    INTEGER NOT NULL,
    reading_id  INTEGER NOT NULL,
    pos         INTEGER NOT NULL,
    deliverable INTEGER NOT NULL,
    register    INTEGER NOT NULL REFERENCES registers(id),
    mantissa    INTEGER NOT NULL,
    exponent    INTEGER NOT NULL,
    text        TEXT,
    PRIMARY KEY (series_id, taken_at, reading_id, pos)
) STRICT, WITHOUT ROWID;

-- Per-sink outbox: the id of the last reading each sink has received.
CREATE TABLE cursors (
    sink        TEXT    PRIMARY KEY,
    reading_id  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE read_errors (
    id          INTEGER PRIMARY KEY,
    meter_name  TEXT    NOT NULL,
    at          INTEGER NOT NULL,
    kind        TEXT    NOT NULL,
    message     TEXT    NOT NULL
) STRICT;
CREATE INDEX read_errors_by_time ON read_errors(at);

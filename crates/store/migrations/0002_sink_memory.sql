-- What a sink must remember across restarts besides its cursor (e.g. the exact values the
-- Domoticz sink last wrote per device, and a half-written reading): one text value per key.
CREATE TABLE sink_memory (
    sink       TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    value      TEXT    NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (sink, key)
) WITHOUT ROWID;

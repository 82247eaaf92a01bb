//! Logged (back-filled) records in the store: their source round-trips, one key per meter,
//! source and stamp makes a second insert a reported no-op, state sinks never see them as the
//! newest value, gap queries, and the schema-2 → 3 migration of an existing file.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns: a panic is the failure report

mod common;

use common::*;
use kamstrup_reading::ReadingSource;
use kamstrup_store::{Inserted, LoggedRecord, MeterId, ReadingId, Store};

fn logged(meter: MeterId, at: &str, value: &str) -> LoggedRecord {
    let mut reading = one(t(at), "heat_energy", value);
    reading.source = ReadingSource::HourLog;
    // The meter's clock runs 9 min 31 s ahead: its own stamp is later than the corrected time.
    let logged_at = t(at) + chrono::Duration::seconds(571);
    LoggedRecord {
        meter,
        reading,
        logged_at,
        implausible: None,
    }
}

#[test]
fn a_logged_record_is_stored_once_and_reads_back_with_its_source() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("k.db")).unwrap();
    let heat = meter(&mut store, 1, "heat");
    let poll = store
        .insert_reading(
            heat,
            &one(t("2026-05-01T12:07:00Z"), "heat_energy", "10.5"),
            None,
        )
        .unwrap();
    let first = store
        .insert_logged(&[
            logged(heat, "2026-05-01T09:50:29Z", "10.1"),
            logged(heat, "2026-05-01T10:50:29Z", "10.2"),
        ])
        .unwrap();
    assert!(first.iter().all(|i| i.is_new()), "{first:?}");
    // The same records read in a later session: the corrected time is a second off, the stamp
    // is the same; and one record by its corrected time alone.
    let mut again = logged(heat, "2026-05-01T09:50:30Z", "10.1");
    again.logged_at = t("2026-05-01T09:50:29Z") + chrono::Duration::seconds(571);
    let second = store
        .insert_logged(&[again, logged(heat, "2026-05-01T10:50:29Z", "10.2")])
        .unwrap();
    assert_eq!(
        second,
        vec![
            Inserted::AlreadyStored(first[0].id()),
            Inserted::AlreadyStored(first[1].id())
        ]
    );
    // A poll with the same time as a logged record is another source: both are kept.
    let same_time = store
        .insert_reading(
            heat,
            &one(t("2026-05-01T10:50:29Z"), "heat_energy", "10.2"),
            None,
        )
        .unwrap();
    assert!(same_time.0 > first[1].id().0);

    let back = store.reading(first[0].id()).unwrap().unwrap();
    assert_eq!(back.reading.source, ReadingSource::HourLog);
    assert_eq!(back.reading.taken_at, t("2026-05-01T09:50:29Z"));
    assert_eq!(
        store.reading(poll).unwrap().unwrap().reading.source,
        ReadingSource::Poll
    );
    let all = store.readings_after(ReadingId(0), 10).unwrap();
    assert_eq!(all.len(), 4, "nothing duplicated");

    assert_eq!(
        store
            .newest_of_source(heat, ReadingSource::HourLog)
            .unwrap(),
        Some(t("2026-05-01T10:50:29Z"))
    );
    assert_eq!(
        store.newest_of_source(heat, ReadingSource::Poll).unwrap(),
        Some(t("2026-05-01T12:07:00Z"))
    );
    assert_eq!(
        store.newest_of_source(heat, ReadingSource::DayLog).unwrap(),
        None
    );
    assert_eq!(
        store
            .logged_spans(heat, t("2026-05-01T00:00:00Z"), t("2026-05-02T00:00:00Z"))
            .unwrap(),
        vec![(t("2026-05-01T09:50:29Z"), t("2026-05-01T11:50:29Z"))],
        "two records an hour apart are one back-filled period"
    );
    let hours = store
        .hours_with_readings(heat, t("2026-05-01T00:00:00Z"), t("2026-05-02T00:00:00Z"))
        .unwrap();
    let base = t("2026-05-01T00:00:00Z").timestamp() / 3600;
    assert_eq!(
        hours.into_iter().collect::<Vec<_>>(),
        vec![base + 9, base + 10, base + 12]
    );
}

#[test]
fn state_sinks_never_get_a_logged_record_as_the_newest_value() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("k.db")).unwrap();
    let heat = meter(&mut store, 1, "heat");
    let poll = store
        .insert_reading(
            heat,
            &one(t("2026-05-01T12:07:00Z"), "heat_energy", "10.5"),
            None,
        )
        .unwrap();
    // Back-filled after the poll: bigger ids, older times.
    let logged_ids: Vec<ReadingId> = store
        .insert_logged(&[
            logged(heat, "2026-05-01T09:50:29Z", "10.1"),
            logged(heat, "2026-05-01T10:50:29Z", "10.2"),
        ])
        .unwrap()
        .into_iter()
        .map(Inserted::id)
        .collect();
    let latest = store.latest_after(ReadingId(0)).unwrap();
    assert_eq!(latest.iter().map(|r| r.id).collect::<Vec<_>>(), vec![poll]);
    // Past the poll's cursor only logged records are new: nothing for a state sink.
    assert!(store.latest_after(poll).unwrap().is_empty());
    assert_eq!(
        store
            .logged_after(poll, 100)
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect::<Vec<_>>(),
        logged_ids
    );
    // The dashboard's "now" is the newest by time, whatever the insert order.
    let now = store.latest_deliverable().unwrap();
    assert_eq!(now.len(), 1);
    assert_eq!(now[0].id, poll);
}

#[test]
fn a_schema_2_file_migrates_and_its_readings_are_polls() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    {
        // A file as schema 2 left it, with one reading (the scripts are the repository's own).
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(include_str!("../migrations/0001_initial.sql"))
            .unwrap();
        conn.execute_batch(include_str!("../migrations/0002_sink_memory.sql"))
            .unwrap();
        conn.execute_batch(
            "INSERT INTO meters VALUES (1, 7, 'heat', 'kmp', NULL, 'sim:multical-403', 0, 0);
             INSERT INTO sources VALUES (1, 'kmp', 'sim:multical-403', 7, NULL);
             INSERT INTO readings (meter_id, source_id, taken_at) VALUES (1, 1, 1000);
             INSERT INTO readings (meter_id, source_id, taken_at) VALUES (1, 1, 1000);
             PRAGMA user_version = 2;",
        )
        .unwrap();
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), 3);
    let all = store.readings_after(ReadingId(0), 10).unwrap();
    assert_eq!(
        all.len(),
        2,
        "two old polls with the same time survive the new key"
    );
    assert!(all.iter().all(|r| r.reading.source == ReadingSource::Poll));
}

//! Integration tests of the store on real SQLite files in temp dirs: exactness, durability,
//! the outbox (cursors, deliverable readings), history queries, export, retention, migrations.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns: a panic is the failure report

mod common;

use common::*;
use kamstrup_decimal::Decimal;
use kamstrup_reading::{MeterIdentity, Protocol, Reading, RegisterValue};
use kamstrup_store::{Bucket, ReadingId, Store, StoreError, SCHEMA_VERSION};

fn temp_store() -> (tempfile::TempDir, std::path::PathBuf, Store) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kamstrup.db");
    let store = Store::open(&path).unwrap();
    (dir, path, store)
}

fn exact_reading() -> Reading {
    let mut date = reg("date", "230123");
    date.id = 1002;
    date.short = "DATE".into();
    date.text = Some("2023-01-23".into());
    let mut delta = reg("delta_t", "-0.57");
    delta.id = 0;
    delta.short = "ΔT".into();
    delta.unit = "K".into();
    delta.unit_code = None;
    delta.derived = true;
    Reading {
        source: Default::default(),
        meter: MeterIdentity {
            protocol: Protocol::Kmp,
            port: "/dev/serial/by-id/usb-FTDI_FT230X_Basic_UART_D30A1B2C-if00-port0".into(),
            serial: Some(5_512_345),
            meter_type: Some("MULTICAL 603".into()),
        },
        // Millisecond precision is what the store keeps.
        taken_at: t("2024-03-01T12:34:56.789Z"),
        registers: vec![
            reg("heat_energy", "55.006"),
            reg("t1", "0.0"),
            reg("flow", "1.9591204e24"),
            reg("power", "-9223372036854775808"),
            reg("volume", "9223372036854775807e-3"),
            reg("hours", "1e127"),
            reg("info", "1e-127"),
            date,
            delta,
        ],
        missing: vec![99, 1004],
    }
}

#[test]
fn values_round_trip_exactly() {
    let (_dir, _path, mut store) = temp_store();
    let m = meter(&mut store, 5_512_345, "heat");
    let reading = exact_reading();
    let id = store.insert_reading(m, &reading, None).unwrap();
    let back = store.reading(id).unwrap().unwrap();
    assert_eq!(back.reading, reading);
    assert_eq!(back.id, id);
    assert_eq!(back.meter, m);
    assert_eq!(back.meter_name, "heat");
    assert_eq!(back.serial, 5_512_345);
    assert_eq!(back.implausible, None);
    let text: Vec<String> = back
        .reading
        .registers
        .iter()
        .map(|r| r.value.to_string())
        .collect();
    assert_eq!(&text[..3], ["55.006", "0.0", "1.9591204e24"]);
    assert_eq!(text[8], "-0.57");
    // JSON keeps the exact text too (what the web API serves).
    let json = serde_json::to_string(&back).unwrap();
    assert!(json.contains(r#""value":"55.006""#), "{json}");
}

#[test]
fn sub_millisecond_time_is_truncated_to_the_millisecond() {
    let mut store = Store::open_in_memory().unwrap();
    let m = meter(&mut store, 1, "heat");
    let precise = t("2024-03-01T12:00:00.123456789Z");
    let id = store
        .insert_reading(m, &one(precise, "t1", "20.1"), None)
        .unwrap();
    let back = store.reading(id).unwrap().unwrap();
    assert_eq!(back.reading.taken_at, t("2024-03-01T12:00:00.123Z"));
}

#[test]
fn a_mantissa_beyond_64_bits_is_refused_and_nothing_is_stored() {
    let (_dir, _path, mut store) = temp_store();
    let m = meter(&mut store, 1, "heat");
    let mut reading = one(t("2024-03-01T00:00:00Z"), "t1", "20.1");
    reading.registers.push(RegisterValue {
        value: Decimal::new(i128::from(i64::MAX) + 1, -3).unwrap(),
        ..reg("heat_energy", "0")
    });
    let err = store.insert_reading(m, &reading, None).unwrap_err();
    assert_eq!(err.kind(), "value_out_of_range");
    assert!(err.to_string().contains("heat_energy"), "{err}");
    assert_eq!(store.max_reading_id().unwrap(), ReadingId(0));
    assert!(store.readings_after(ReadingId(0), 10).unwrap().is_empty());
    // The store still works afterwards (caches were reset with the rollback).
    let id = store
        .insert_reading(m, &one(t("2024-03-01T00:00:00Z"), "t1", "20.1"), None)
        .unwrap();
    assert_eq!(
        store.reading(id).unwrap().unwrap().reading.registers.len(),
        1
    );
}

#[test]
fn unknown_meter_is_an_error() {
    let mut store = Store::open_in_memory().unwrap();
    let err = store
        .insert_reading(
            kamstrup_store::MeterId(42),
            &one(t("2024-03-01T00:00:00Z"), "t1", "1"),
            None,
        )
        .unwrap_err();
    assert!(matches!(err, StoreError::UnknownMeter(_)), "{err}");
    assert_eq!(err.kind(), "unknown_meter");
}

#[test]
fn reopen_after_drop_keeps_everything() {
    let (_dir, path, mut store) = temp_store();
    let m = meter(&mut store, 5_512_345, "heat");
    let r = exact_reading();
    let id1 = store.insert_reading(m, &r, None).unwrap();
    let id2 = store
        .insert_reading(
            m,
            &one(t("2024-03-01T13:00:00Z"), "t1", "21.5"),
            Some("jump"),
        )
        .unwrap();
    store.set_cursor("influx", id1).unwrap();
    store
        .record_error("heat", t("2024-03-01T14:00:00Z"), "timeout", "no reply")
        .unwrap();
    let meters = store.meters().unwrap();
    drop(store);

    let store = Store::open(&path).unwrap();
    assert_eq!(store.meters().unwrap(), meters);
    assert_eq!(store.reading(id1).unwrap().unwrap().reading, r);
    let flagged = store.reading(id2).unwrap().unwrap();
    assert_eq!(flagged.implausible.as_deref(), Some("jump"));
    assert_eq!(store.cursor("influx").unwrap(), id1);
    assert_eq!(store.max_reading_id().unwrap(), id2);
    assert_eq!(store.recent_errors(10).unwrap().len(), 1);
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
}

#[test]
fn open_creates_the_directory_and_uses_wal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("var/lib/kamstrup/kamstrup.db");
    let store = Store::open(&path).unwrap();
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn read_only_open_of_a_missing_file_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.db");
    let err = Store::open_read_only(&path).unwrap_err();
    assert_eq!(err.kind(), "cannot_open", "{err}");
    assert!(!path.exists(), "a read-only open must not create the file");
}

#[test]
fn cursors_start_at_zero_and_never_move_backwards() {
    let (_dir, _path, mut store) = temp_store();
    assert_eq!(store.cursor("ha").unwrap(), ReadingId(0));
    store.set_cursor("ha", ReadingId(10)).unwrap();
    store.set_cursor("ha", ReadingId(7)).unwrap();
    assert_eq!(store.cursor("ha").unwrap(), ReadingId(10));
    store.set_cursor("ha", ReadingId(12)).unwrap();
    store.set_cursor("influx", ReadingId(3)).unwrap();
    assert_eq!(store.cursor("ha").unwrap(), ReadingId(12));
    let all: Vec<(String, ReadingId)> = store
        .cursors()
        .unwrap()
        .into_iter()
        .map(|(s, c, _)| (s, c))
        .collect();
    assert_eq!(
        all,
        [
            ("ha".to_string(), ReadingId(12)),
            ("influx".to_string(), ReadingId(3))
        ]
    );
}

#[test]
fn readings_after_skips_implausible_and_pages_by_id() {
    let (_dir, _path, mut store) = temp_store();
    let m = meter(&mut store, 1, "heat");
    let start = t("2024-03-01T00:00:00Z");
    let mut ids = Vec::new();
    for i in 0..6 {
        let flag = (i == 2).then_some("backwards");
        let r = one(
            start + minutes(15 * i),
            "heat_energy",
            &format!("{}.000", 100 + i),
        );
        ids.push(store.insert_reading(m, &r, flag).unwrap());
    }
    let got: Vec<ReadingId> = store
        .readings_after(ReadingId(0), 100)
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(got, [ids[0], ids[1], ids[3], ids[4], ids[5]]);
    let page: Vec<ReadingId> = store
        .readings_after(ids[1], 2)
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(page, [ids[3], ids[4]]);
    assert!(store.readings_after(ids[5], 10).unwrap().is_empty());
    // The flagged one is still stored and readable by id.
    assert_eq!(
        store
            .reading(ids[2])
            .unwrap()
            .unwrap()
            .implausible
            .as_deref(),
        Some("backwards")
    );
}

#[test]
fn latest_per_meter_for_state_only_sinks() {
    let (_dir, _path, mut store) = temp_store();
    let a = meter(&mut store, 1, "heat");
    let b = meter(&mut store, 2, "old-heat");
    let _c = meter(&mut store, 3, "never-read");
    let start = t("2024-03-01T00:00:00Z");
    let a1 = store
        .insert_reading(a, &one(start, "t1", "20.0"), None)
        .unwrap();
    let b1 = store
        .insert_reading(b, &one(start, "t1", "30.0"), None)
        .unwrap();
    let a2 = store
        .insert_reading(a, &one(start + minutes(15), "t1", "20.5"), None)
        .unwrap();
    let _a3 = store
        .insert_reading(a, &one(start + minutes(30), "t1", "99.9"), Some("jump"))
        .unwrap();

    let latest: Vec<ReadingId> = store
        .latest_deliverable()
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(latest, [a2, b1]);
    assert_eq!(
        store.latest_after(ReadingId(0)).unwrap().len(),
        2,
        "cursor 0 means everything is new"
    );
    let after: Vec<ReadingId> = store
        .latest_after(a1)
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(after, [a2, b1]);
    let after: Vec<ReadingId> = store
        .latest_after(b1)
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(after, [a2]);
    assert!(
        store.latest_after(a2).unwrap().is_empty(),
        "only a flagged one is newer"
    );
    let latest = store.latest_deliverable().unwrap();
    assert_eq!(latest[0].reading.registers[0].value.to_string(), "20.5");
}

/// Counter history used by the usage tests: a day is closed by its midnight reading.
fn counter_history(store: &mut Store) -> kamstrup_store::MeterId {
    let m = meter(store, 1, "heat");
    for (at, v, flag) in [
        ("2024-03-01T00:00:00Z", "100.000", None),
        ("2024-03-01T12:00:00Z", "100.500", None),
        ("2024-03-02T00:00:00Z", "101.000", None),
        ("2024-03-02T06:00:00Z", "101.250", None),
        ("2024-03-03T18:00:00Z", "103.006", None),
        (
            "2024-03-03T19:00:00Z",
            "50.000",
            Some("counter went backwards"),
        ),
    ] {
        store
            .insert_reading(m, &one(t(at), "heat_energy", v), flag)
            .unwrap();
    }
    m
}

#[test]
fn usage_since_is_exact() {
    let (_dir, _path, mut store) = temp_store();
    let m = counter_history(&mut store);
    let usage = |since: &str| {
        store
            .usage_since(m, "heat_energy", t(since))
            .unwrap()
            .map(|d| d.to_string())
    };
    assert_eq!(usage("2024-03-02T00:00:00Z").as_deref(), Some("2.006"));
    assert_eq!(usage("2024-03-02T03:00:00Z").as_deref(), Some("2.006"));
    assert_eq!(usage("2024-03-02T06:00:00Z").as_deref(), Some("1.756"));
    // Before any data: from the first value.
    assert_eq!(usage("2024-02-01T00:00:00Z").as_deref(), Some("3.006"));
    // After the last value: nothing used since.
    assert_eq!(usage("2024-04-01T00:00:00Z").as_deref(), Some("0.000"));
    assert_eq!(
        store
            .usage_since(m, "volume", t("2024-03-01T00:00:00Z"))
            .unwrap(),
        None
    );

    let (at, v) = store.last_value(m, "heat_energy").unwrap().unwrap();
    assert_eq!(
        (at, v.to_string()),
        (t("2024-03-03T18:00:00Z"), "103.006".into())
    );
    let (at, v) = store
        .value_at_or_before(m, "heat_energy", t("2024-03-02T05:59:59Z"))
        .unwrap()
        .unwrap();
    assert_eq!(
        (at, v.to_string()),
        (t("2024-03-02T00:00:00Z"), "101.000".into())
    );
    assert_eq!(
        store
            .value_at_or_before(m, "heat_energy", t("2024-02-29T00:00:00Z"))
            .unwrap(),
        None
    );
}

#[test]
fn usage_series_is_exact_and_adds_up() {
    let (_dir, _path, mut store) = temp_store();
    let m = counter_history(&mut store);
    let points = store
        .usage_series(
            m,
            "heat_energy",
            t("2024-03-01T00:00:00Z"),
            t("2024-03-05T00:00:00Z"),
            Bucket::Day,
        )
        .unwrap();
    let got: Vec<(String, String)> = points
        .iter()
        .map(|p| (p.t.to_rfc3339(), p.value.to_string()))
        .collect();
    assert_eq!(
        got,
        [
            ("2024-03-01T00:00:00+00:00".to_string(), "1.000".to_string()),
            ("2024-03-02T00:00:00+00:00".to_string(), "0.250".to_string()),
            ("2024-03-03T00:00:00+00:00".to_string(), "1.756".to_string()),
        ]
    );
    assert!(points.iter().all(|p| p.min.is_none() && p.max.is_none()));
    let total = points
        .iter()
        .try_fold(Decimal::ZERO, |acc, p| acc.checked_add(&p.value))
        .unwrap();
    assert_eq!(total.to_string(), "3.006");

    // The day point equals usage_since(midnight) at the end of that day.
    let day2 = store
        .usage_series(
            m,
            "heat_energy",
            t("2024-03-02T10:00:00Z"),
            t("2024-03-03T00:00:00Z"),
            Bucket::Day,
        )
        .unwrap();
    assert_eq!(day2.len(), 1);
    assert_eq!(day2[0].value.to_string(), "0.250");

    let month = store
        .usage_series(
            m,
            "heat_energy",
            t("2024-01-01T00:00:00Z"),
            t("2025-01-01T00:00:00Z"),
            Bucket::Month,
        )
        .unwrap();
    assert_eq!(month.len(), 1);
    assert_eq!(month[0].t, t("2024-03-01T00:00:00Z"));
    assert_eq!(month[0].value.to_string(), "3.006");

    let week = store
        .usage_series(
            m,
            "heat_energy",
            t("2024-02-26T00:00:00Z"),
            t("2024-03-11T00:00:00Z"),
            Bucket::Week,
        )
        .unwrap();
    assert_eq!(week.len(), 1);
    assert_eq!(week[0].t, t("2024-02-26T00:00:00Z"));
    assert_eq!(week[0].value.to_string(), "3.006");

    let hours = store
        .usage_series(
            m,
            "heat_energy",
            t("2024-03-01T00:00:00Z"),
            t("2024-03-02T00:00:00Z"),
            Bucket::Hour,
        )
        .unwrap();
    let got: Vec<(String, String)> = hours
        .iter()
        .map(|p| (p.t.format("%H").to_string(), p.value.to_string()))
        .collect();
    assert_eq!(
        got,
        [
            ("11".to_string(), "0.500".to_string()),
            ("23".to_string(), "0.500".to_string())
        ]
    );
}

#[test]
fn usage_series_without_earlier_history_starts_at_the_first_value() {
    let mut store = Store::open_in_memory().unwrap();
    let m = meter(&mut store, 7, "new");
    for (at, v) in [
        ("2024-03-01T06:00:00Z", "100.0"),
        ("2024-03-01T18:00:00Z", "100.55"),
        ("2024-03-02T01:00:00Z", "101.2"),
    ] {
        store
            .insert_reading(m, &one(t(at), "volume", v), None)
            .unwrap();
    }
    let points = store
        .usage_series(
            m,
            "volume",
            t("2024-03-01T00:00:00Z"),
            t("2024-03-03T00:00:00Z"),
            Bucket::Day,
        )
        .unwrap();
    let got: Vec<String> = points.iter().map(|p| p.value.to_string()).collect();
    assert_eq!(got, ["0.55", "0.65"]);
    assert!(store
        .usage_series(
            m,
            "nothing",
            t("2024-03-01T00:00:00Z"),
            t("2024-03-03T00:00:00Z"),
            Bucket::Day
        )
        .unwrap()
        .is_empty());
}

#[test]
fn series_raw_and_bucket_averages() {
    let (_dir, _path, mut store) = temp_store();
    let m = meter(&mut store, 1, "heat");
    for (at, v, flag) in [
        ("2024-03-01T10:00:00Z", "20.1", None),
        ("2024-03-01T10:15:00Z", "20.2", None),
        ("2024-03-01T10:30:00Z", "80.0", Some("spike")),
        ("2024-03-01T10:45:00Z", "20.2", None),
        ("2024-03-01T11:00:00Z", "21.0", None),
        ("2024-03-01T11:15:00Z", "22.0", None),
        ("2024-03-02T00:00:00Z", "-0.57", None),
        ("2024-03-02T00:15:00Z", "-0.58", None),
    ] {
        store.insert_reading(m, &one(t(at), "t1", v), flag).unwrap();
    }
    let from = t("2024-03-01T00:00:00Z");
    let raw = store
        .series(m, "t1", from, t("2024-03-02T00:00:00Z"), None)
        .unwrap();
    let got: Vec<String> = raw.iter().map(|p| p.value.to_string()).collect();
    assert_eq!(
        got,
        ["20.1", "20.2", "20.2", "21.0", "22.0"],
        "half-open range, no flagged"
    );
    assert_eq!(raw[0].t, t("2024-03-01T10:00:00Z"));

    let hours = store
        .series(m, "t1", from, t("2024-03-03T00:00:00Z"), Some(Bucket::Hour))
        .unwrap();
    let got: Vec<(String, String, String, String)> = hours
        .iter()
        .map(|p| {
            (
                p.t.format("%d %H").to_string(),
                p.value.to_string(),
                p.min.unwrap().to_string(),
                p.max.unwrap().to_string(),
            )
        })
        .collect();
    let row = |a: &str, b: &str, c: &str, d: &str| (a.into(), b.into(), c.into(), d.into());
    assert_eq!(
        got,
        [
            row("01 10", "20.2", "20.1", "20.2"),
            row("01 11", "21.5", "21.0", "22.0"),
            row("02 00", "-0.58", "-0.58", "-0.57"),
        ]
    );
    let days = store
        .series(
            m,
            "t1",
            t("2024-03-01T12:00:00Z"),
            t("2024-03-01T12:00:01Z"),
            Some(Bucket::Day),
        )
        .unwrap();
    assert_eq!(days.len(), 1, "whole buckets: the day containing the range");
    assert_eq!(days[0].value.to_string(), "20.7");
    assert_eq!(days[0].t, t("2024-03-01T00:00:00Z"));
    // JSON for the web: exact strings.
    let json = serde_json::to_string(&days[0]).unwrap();
    assert_eq!(
        json,
        r#"{"t":"2024-03-01T00:00:00Z","value":"20.7","min":"20.1","max":"22.0"}"#
    );
    assert!(store
        .series(m, "t1", from, from, Some(Bucket::Day))
        .unwrap()
        .is_empty());
}

#[test]
fn export_streams_in_time_order_with_flags() {
    let (_dir, _path, mut store) = temp_store();
    let a = meter(&mut store, 1, "heat");
    let b = meter(&mut store, 2, "old-heat");
    // Inserted out of time order (a backfill): export is by time, not id.
    let late = store
        .insert_reading(a, &one(t("2024-03-02T00:00:00Z"), "t1", "2.0"), None)
        .unwrap();
    let early = store
        .insert_reading(b, &one(t("2024-03-01T00:00:00Z"), "t1", "1.0"), Some("odd"))
        .unwrap();
    let mut empty = one(t("2024-03-01T12:00:00Z"), "t1", "0");
    empty.registers.clear();
    empty.missing = vec![60];
    let middle = store.insert_reading(a, &empty, None).unwrap();
    let multi = store.insert_reading(a, &exact_reading(), None).unwrap(); // 2024-03-01T12:34:56.789Z

    let mut seen = Vec::new();
    let n = store
        .export(None, None, &mut |r| {
            seen.push((r.id, r.implausible.clone(), r.reading.registers.len()));
            Ok(())
        })
        .unwrap();
    assert_eq!(n, 4);
    assert_eq!(
        seen,
        [
            (early, Some("odd".to_string()), 1),
            (middle, None, 0),
            (multi, None, 9),
            (late, None, 1)
        ]
    );
    let full = {
        let mut v = Vec::new();
        store
            .export(None, None, &mut |r| {
                v.push(r.clone());
                Ok(())
            })
            .unwrap();
        v
    };
    assert_eq!(full[2].reading, exact_reading());
    assert_eq!(full[1].reading.missing, [60]);

    let mut ids = Vec::new();
    store
        .export(Some(t("2024-03-01T12:00:00Z")), Some(a), &mut |r| {
            ids.push(r.id);
            Ok(())
        })
        .unwrap();
    assert_eq!(ids, [middle, multi, late]);

    // A failing callback stops the export and its error comes back.
    let mut calls = 0;
    let err = store
        .export(None, None, &mut |_| {
            calls += 1;
            Err(StoreError::Callback("disk full".into()))
        })
        .unwrap_err();
    assert_eq!(calls, 1);
    assert_eq!(err.kind(), "callback");
}

#[test]
fn prune_applies_retention_and_ids_stay_monotonic() {
    let (_dir, _path, mut store) = temp_store();
    let m = meter(&mut store, 1, "heat");
    let start = t("2024-01-01T00:00:00Z");
    let mut ids = Vec::new();
    for day in 0..10 {
        let r = one(
            start + chrono::Duration::days(day),
            "heat_energy",
            &format!("{day}.0"),
        );
        ids.push(store.insert_reading(m, &r, None).unwrap());
    }
    store.record_error("heat", start, "timeout", "old").unwrap();
    store
        .record_error("heat", start + chrono::Duration::days(9), "crc", "new")
        .unwrap();
    store.set_cursor("influx", ids[1]).unwrap(); // behind: loses ids[2..5] (logged)
    store.set_cursor("ha", ids[9]).unwrap();

    let cutoff = start + chrono::Duration::days(5);
    assert_eq!(store.prune(cutoff).unwrap(), 5);
    assert_eq!(store.reading(ids[4]).unwrap(), None);
    assert!(store.reading(ids[5]).unwrap().is_some());
    let after: Vec<ReadingId> = store
        .readings_after(store.cursor("influx").unwrap(), 100)
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(after, ids[5..]);
    assert_eq!(
        store
            .value_at_or_before(m, "heat_energy", cutoff)
            .unwrap()
            .unwrap()
            .1
            .to_string(),
        "5.0"
    );
    assert_eq!(store.recent_errors(10).unwrap().len(), 1);
    assert_eq!(store.prune(cutoff).unwrap(), 0);

    // Prune everything: ids still never go back (sink cursors rely on it).
    assert_eq!(store.prune(t("2030-01-01T00:00:00Z")).unwrap(), 5);
    assert_eq!(store.max_reading_id().unwrap(), ids[9]);
    let next = store
        .insert_reading(m, &one(t("2030-01-02T00:00:00Z"), "t1", "1"), None)
        .unwrap();
    assert!(next > ids[9]);
    assert_eq!(store.readings_after(ids[9], 10).unwrap().len(), 1);
}

#[test]
fn read_only_store_reads_while_the_daemon_writes() {
    let (_dir, path, mut writer) = temp_store();
    let m = meter(&mut writer, 1, "heat");
    writer
        .insert_reading(
            m,
            &one(t("2024-03-01T00:00:00Z"), "heat_energy", "0.000"),
            None,
        )
        .unwrap();
    let mut reader = Store::open_read_only(&path).unwrap();
    assert_eq!(reader.readings_after(ReadingId(0), 10).unwrap().len(), 1);
    assert_eq!(
        reader.set_cursor("x", ReadingId(1)).unwrap_err().kind(),
        "read_only"
    );

    const N: i64 = 200;
    let writer_thread = std::thread::spawn(move || {
        let start = t("2024-03-01T00:00:00Z");
        for i in 1..=N {
            let r = one(start + minutes(15 * i), "heat_energy", &format!("{i}.000"));
            writer.insert_reading(m, &r, None).unwrap();
        }
        writer
    });
    // While the writer commits, the reader keeps reading and only ever sees whole readings,
    // more of them each time.
    let mut last = 0;
    while last < N + 1 {
        let all = reader.readings_after(ReadingId(0), 10_000).unwrap();
        let n = i64::try_from(all.len()).unwrap();
        assert!(n >= last);
        assert!(all.iter().all(|r| r.reading.registers.len() == 1));
        last = n;
        if writer_thread.is_finished() && n == N + 1 {
            break;
        }
    }
    let mut writer = writer_thread.join().unwrap();

    // An export in progress (an open read transaction) does not block the writer.
    let mut first = true;
    reader
        .export(None, None, &mut |_| {
            if first {
                first = false;
                let id = writer
                    .insert_reading(m, &one(t("2025-01-01T00:00:00Z"), "t1", "1.0"), None)
                    .unwrap();
                assert!(id.0 > N);
            }
            Ok(())
        })
        .unwrap();
    assert_eq!(
        reader.readings_after(ReadingId(0), 10_000).unwrap().len(),
        202
    );
    assert_eq!(reader.meters().unwrap().len(), 1);
}

#[test]
fn migration_from_an_empty_file_and_refusal_of_a_future_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.db");
    std::fs::write(&path, b"").unwrap();
    // Read-only opens never migrate.
    let err = Store::open_read_only(&path).unwrap_err();
    assert_eq!(err.kind(), "schema_too_old");
    let store = Store::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    assert!(store.meters().unwrap().is_empty());
    drop(store);
    // Opening again is a no-op migration.
    Store::open(&path).unwrap();

    let future = SCHEMA_VERSION + 7;
    rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", future)
        .unwrap();
    let err = Store::open(&path).unwrap_err();
    assert!(
        matches!(err, StoreError::SchemaTooNew { found, supported } if found == future && supported == SCHEMA_VERSION),
        "{err}"
    );
    assert_eq!(err.kind(), "schema_too_new");
    assert!(err.to_string().contains("newer"), "{err}");
    assert_eq!(
        Store::open_read_only(&path).unwrap_err().kind(),
        "schema_too_new"
    );
    // The file was not touched.
    let v: u32 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, future);
}

#[test]
fn meters_are_keyed_by_serial_when_the_port_changes() {
    let (_dir, _path, mut store) = temp_store();
    let first = store
        .upsert_meter(
            5_512_345,
            "heat",
            Protocol::Kmp,
            Some("MULTICAL 603"),
            "/dev/ttyUSB0",
            t("2024-01-01T00:00:00Z"),
        )
        .unwrap();
    let id = store
        .insert_reading(first, &one(t("2024-01-01T00:00:00Z"), "t1", "20.0"), None)
        .unwrap();
    let again = store
        .upsert_meter(
            5_512_345,
            "heating",
            Protocol::Kmp,
            None,
            "/dev/ttyUSB1",
            t("2024-02-01T00:00:00Z"),
        )
        .unwrap();
    assert_eq!(first, again);
    let other = store
        .upsert_meter(
            u64::MAX,
            "other",
            Protocol::Mc66c,
            None,
            "/dev/ttyUSB0",
            t("2024-02-01T00:00:00Z"),
        )
        .unwrap();
    assert_ne!(other, first);

    let rec = store.meter_by_serial(5_512_345).unwrap().unwrap();
    assert_eq!(rec.id, first);
    assert_eq!(rec.name, "heating");
    assert_eq!(rec.port, "/dev/ttyUSB1");
    assert_eq!(
        rec.model.as_deref(),
        Some("MULTICAL 603"),
        "None keeps the known model"
    );
    assert_eq!(rec.first_seen, t("2024-01-01T00:00:00Z"));
    assert_eq!(rec.last_seen, t("2024-02-01T00:00:00Z"));
    assert_eq!(store.meter(first).unwrap().unwrap(), rec);
    let all = store.meters().unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[1].serial, u64::MAX);
    assert_eq!(all[1].protocol, Protocol::Mc66c);
    assert_eq!(store.meter_by_serial(1).unwrap(), None);
    // Old readings follow the meter's new name.
    assert_eq!(store.reading(id).unwrap().unwrap().meter_name, "heating");
}

#[test]
fn read_errors_are_listed_and_counted() {
    let mut store = Store::open_in_memory().unwrap();
    let at = t("2024-03-01T00:00:00Z");
    store
        .record_error("heat", at, "timeout", "no reply")
        .unwrap();
    store
        .record_error("heat", at + minutes(15), "crc", "bad crc")
        .unwrap();
    store
        .record_error("heat", at + minutes(30), "timeout", "no reply")
        .unwrap();
    store
        .record_error("old", at + minutes(45), "timeout", &"ø".repeat(5000))
        .unwrap();
    let recent = store.recent_errors(2).unwrap();
    assert_eq!(recent.len(), 2);
    assert_eq!(recent[0].meter_name, "old");
    assert!(recent[0].message.len() <= 2048);
    assert_eq!(recent[1].kind, "timeout");
    assert_eq!(recent[1].at, at + minutes(30));
    assert_eq!(
        store.error_counts().unwrap(),
        [
            ("heat".to_string(), "crc".to_string(), 1),
            ("heat".to_string(), "timeout".to_string(), 2),
            ("old".to_string(), "timeout".to_string(), 1),
        ]
    );
    // HA's "read errors (24 h)": errors at or after the start of the window, per meter.
    let since = store.error_counts_since(at + minutes(15)).unwrap();
    assert_eq!(
        since.get("heat"),
        Some(&2),
        "the one at the window's start counts"
    );
    assert_eq!(since.get("old"), Some(&1));
    let since = store.error_counts_since(at + minutes(31)).unwrap();
    assert_eq!(since.get("heat"), None, "older errors have left the window");
    assert_eq!(since.get("old"), Some(&1));
}

#[test]
fn bulk_insert_of_weeks_of_readings_is_fast() {
    let (_dir, _path, mut store) = temp_store();
    let m = meter(&mut store, 1, "heat");
    let start = t("2024-01-01T00:00:00Z");
    let items: Vec<_> = (0..4 * 7 * 96)
        .map(|i: i64| {
            let r = reading_at(
                start + minutes(15 * i),
                vec![
                    reg("heat_energy", &format!("{}.{:03}", 1000 + i / 100, i % 100)),
                    reg("volume", &format!("{}.{:02}", 5000 + i / 10, i % 10)),
                    reg("t1", "60.5"),
                    reg("t2", "40.25"),
                    reg("power", "3.5"),
                    reg("flow", "150"),
                    reg("hours", &format!("{}", 10_000 + i / 4)),
                    reg("info", "0"),
                ],
            );
            (m, r, None)
        })
        .collect();
    let started = std::time::Instant::now();
    let ids = store.insert_readings(&items).unwrap();
    let took = started.elapsed();
    assert_eq!(ids.len(), items.len());
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    // Generous even for an unoptimised debug build; release is far below (see the bench).
    assert!(took.as_secs_f64() < 10.0, "bulk insert took {took:?}");
    assert_eq!(
        store.readings_after(ReadingId(0), 5).unwrap()[4].reading,
        items[4].1
    );
}

#[test]
fn bulk_insert_is_all_or_nothing() {
    let mut store = Store::open_in_memory().unwrap();
    let m = meter(&mut store, 1, "heat");
    let good = one(t("2024-03-01T00:00:00Z"), "t1", "1.0");
    let mut bad = one(t("2024-03-01T00:15:00Z"), "new_register", "1.0");
    bad.registers.push(RegisterValue {
        value: Decimal::new(i128::MAX, 0).unwrap(),
        ..reg("t2", "0")
    });
    let err = store
        .insert_readings(&[(m, good.clone(), None), (m, bad, None)])
        .unwrap_err();
    assert_eq!(err.kind(), "value_out_of_range");
    assert!(store.readings_after(ReadingId(0), 10).unwrap().is_empty());
    // The series created inside the rolled-back transaction is not cached as existing.
    let ids = store
        .insert_readings(&[(
            m,
            one(t("2024-03-01T00:15:00Z"), "new_register", "2.5"),
            None,
        )])
        .unwrap();
    assert_eq!(
        store.reading(ids[0]).unwrap().unwrap().reading.registers[0].name,
        "new_register"
    );
    assert_eq!(
        store
            .last_value(m, "new_register")
            .unwrap()
            .unwrap()
            .1
            .to_string(),
        "2.5"
    );
}

#[test]
fn sink_memory_survives_reopen_and_is_per_sink_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.sqlite");
    {
        let mut store = Store::open(&path).unwrap();
        assert_eq!(store.sink_memory("domoticz", "state").unwrap(), None);
        store
            .set_sink_memory("domoticz", "state", "{\"a\":1}")
            .unwrap();
        store
            .set_sink_memory("domoticz", "state", "{\"a\":2}")
            .unwrap();
        store.set_sink_memory("other", "state", "x").unwrap();
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(
        store.sink_memory("domoticz", "state").unwrap().as_deref(),
        Some("{\"a\":2}")
    );
    assert_eq!(
        store.sink_memory("other", "state").unwrap().as_deref(),
        Some("x")
    );
    assert_eq!(store.sink_memory("domoticz", "other").unwrap(), None);
}

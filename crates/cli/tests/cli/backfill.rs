//! End-to-end back-fill with real parts: the real `kamstrup run` daemon, a real SQLite file and
//! the in-process `sim:multical-403`, whose hour logger holds weeks of records. A store with
//! only the last 2 h of polls gets every other hour of its 48 h window from the logger, exactly
//! once, with the same values `kamstrup log` prints for those hours (the simulator is a pure
//! function of UTC time, so both processes agree); the file sink receives them with their
//! logged times. A gap made while the daemon is stopped is filled at the next start, nothing
//! duplicated.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use kamstrup_meter::sim::history::{kmp_history, HistorySpec};
use kamstrup_meter::sim::KmpModel;
use kamstrup_meter::Protocol;
use kamstrup_store::{ReadingId, Store, StoredReading};
use serde_json::Value;

use super::harness::BIN;

const HOUR_MS: i64 = 3_600_000;
const WINDOW_H: i64 = 48;

/// A child process killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proc {
    fn terminate(mut self) {
        let pid = self.0.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.0.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "did not stop within 10 s");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn start_daemon(config: &Path, log: &Path) -> Proc {
    let log = std::fs::File::create(log).unwrap();
    let child = Command::new(BIN)
        .args(["-v", "run", "--config"])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    Proc(child)
}

/// Every stored reading of the file, polled and logged, by id.
fn stored(db: &Path) -> Vec<StoredReading> {
    let Ok(store) = Store::open_read_only(db) else {
        return Vec::new();
    };
    store.readings_after(ReadingId(0), 100_000).unwrap()
}

fn hour_logs(db: &Path) -> Vec<StoredReading> {
    stored(db)
        .into_iter()
        .filter(|r| r.reading.source.is_logged())
        .collect()
}

fn wait_for(what: &str, log: &Path, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; daemon log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `kamstrup log --logger hour --since …` as JSON: per record, its UTC stamp (by the zone,
/// uncorrected) and its values; and the meter clock's offset.
/// A logger record: its UTC stamp and its values by register name.
type LoggedRow = (DateTime<Utc>, BTreeMap<String, String>);

fn logger_records(since: DateTime<Utc>) -> (i64, Vec<LoggedRow>) {
    let out = Command::new(BIN)
        .args(["log", "--port", "sim:multical-403", "--logger", "hour"])
        .args(["--since", &since.to_rfc3339(), "--format", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let offset = doc["meter_clock_offset_s"].as_i64().unwrap();
    let records = doc["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let utc: DateTime<Utc> = r["utc"].as_str().unwrap().parse().unwrap();
            let values = r["registers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| {
                    (
                        v["name"].as_str().unwrap().to_owned(),
                        v["value"].as_str().unwrap().to_owned(),
                    )
                })
                .collect();
            (utc, values)
        })
        .collect();
    (offset, records)
}

/// Checks the store against the window: every UTC hour of it holds a reading, no hour holds two
/// logged records, and every logged record equals what the logger holds for that hour.
fn check_window(db: &Path, now: DateTime<Utc>) -> usize {
    let all = stored(db);
    let first = now.timestamp_millis().div_euclid(HOUR_MS) - WINDOW_H;
    let last = now.timestamp_millis().div_euclid(HOUR_MS);
    let mut covered: BTreeMap<i64, usize> = BTreeMap::new();
    let mut logged_per_hour: BTreeMap<i64, usize> = BTreeMap::new();
    for r in &all {
        let h = r.reading.taken_at.timestamp_millis().div_euclid(HOUR_MS);
        *covered.entry(h).or_default() += 1;
        if r.reading.source.is_logged() {
            *logged_per_hour.entry(h).or_default() += 1;
        }
    }
    for h in first..last {
        assert!(
            covered.contains_key(&h),
            "hour {h} of the window has no reading"
        );
    }
    assert!(
        logged_per_hour.values().all(|&n| n == 1),
        "an hour holds two logged records: {logged_per_hour:?}"
    );
    let (offset, records) = logger_records(now - chrono::Duration::hours(WINDOW_H + 3));
    let mut matched = 0;
    for r in all.iter().filter(|r| r.reading.source.is_logged()) {
        // The daemon stored the stamp minus the offset it measured (±1 s from ours).
        let found = records.iter().find(|(utc, _)| {
            let corrected = *utc - chrono::Duration::seconds(offset);
            (r.reading.taken_at - corrected).num_seconds().abs() <= 2
        });
        let (_, values) = found.unwrap_or_else(|| {
            panic!(
                "no logger record for the stored hour log at {}",
                r.reading.taken_at
            )
        });
        for v in &r.reading.registers {
            assert_eq!(
                values.get(&v.name),
                Some(&v.value.to_string()),
                "{} at {}",
                v.name,
                r.reading.taken_at
            );
        }
        assert!(!r.reading.registers.is_empty());
        matched += 1;
    }
    matched
}

/// The file sink's lines of logged records: (id, taken_at).
fn delivered_logged(path: &Path) -> Vec<(i64, DateTime<Utc>)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["source"] == "hour_log")
        .map(|v| {
            (
                v["id"].as_i64().unwrap(),
                v["taken_at"].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect()
}

#[test]
fn the_daemon_fills_every_hour_of_its_window_from_the_hour_logger_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("kamstrup.db");
    let out = dir.path().join("readings.jsonl");
    let log = dir.path().join("daemon.log");
    let config = dir.path().join("kamstrup.toml");
    std::fs::write(
        &config,
        format!(
            "[storage]\npath = {db:?}\n\n[[meter]]\nname = \"heat\"\nport = \"sim:multical-403\"\ninterval = \"1h\"\nbackfill = \"{WINDOW_H}h\"\n\n[file]\npath = {out:?}\n"
        ),
    )
    .unwrap();

    // The last 2 h of 15-minute polls, exactly as the simulator answered them.
    let now = Utc::now();
    let model = KmpModel::Multical403;
    let polls = kmp_history(
        model,
        &[60, 68, 86, 87, 80, 74, 1004, 99],
        "sim:multical-403",
        &HistorySpec {
            end: now,
            span: Duration::from_secs(2 * 3600),
            step: Duration::from_secs(15 * 60),
        },
    )
    .unwrap();
    {
        let mut store = Store::open(&db).unwrap();
        let heat = store
            .upsert_meter(
                u64::from(model.serial()),
                "heat",
                Protocol::Kmp,
                None,
                "sim:multical-403",
                polls[0].taken_at,
            )
            .unwrap();
        let items: Vec<_> = polls.iter().map(|r| (heat, r.clone(), None)).collect();
        store.insert_readings(&items).unwrap();
    }
    let polled_hours: BTreeSet<i64> = polls
        .iter()
        .map(|r| r.taken_at.timestamp_millis().div_euclid(HOUR_MS))
        .collect();
    let first = now.timestamp_millis().div_euclid(HOUR_MS) - WINDOW_H;
    let last = now.timestamp_millis().div_euclid(HOUR_MS);
    let gaps = (first..last).filter(|h| !polled_hours.contains(h)).count();
    assert!(gaps >= 45, "{gaps}");

    let daemon = start_daemon(&config, &log);
    wait_for("the back-fill", &log, || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("back-fill from the hour logger")
    });
    wait_for("the file sink", &log, || {
        let ids: BTreeSet<i64> = delivered_logged(&out).iter().map(|(id, _)| *id).collect();
        hour_logs(&db).iter().all(|r| ids.contains(&r.id.0))
    });
    daemon.terminate();
    let now = Utc::now();
    // Every gap hour filled once (one fewer when an hour began between our count and the
    // daemon's: its window moved on by one hour).
    let filled = check_window(&db, now);
    assert!(filled == gaps || filled + 1 == gaps, "{filled} of {gaps}");
    // The file sink got every back-filled hour once, with its logged time.
    let stored_logs: BTreeSet<(i64, DateTime<Utc>)> = hour_logs(&db)
        .iter()
        .map(|r| (r.id.0, r.reading.taken_at))
        .collect();
    let delivered: Vec<_> = delivered_logged(&out);
    assert_eq!(delivered.len(), stored_logs.len());
    assert_eq!(delivered.into_iter().collect::<BTreeSet<_>>(), stored_logs);
    let daemon_log = std::fs::read_to_string(&log).unwrap();
    assert!(
        daemon_log.contains("back-fill from the hour logger"),
        "{daemon_log}"
    );
    assert!(daemon_log.contains("sessions=1"), "{daemon_log}");

    // The export says which rows came from the logger.
    let export = Command::new(BIN)
        .args(["history", "export", "--format", "csv", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        export.status.success(),
        "{}",
        String::from_utf8_lossy(&export.stderr)
    );
    let csv = String::from_utf8(export.stdout).unwrap();
    assert!(csv
        .starts_with("taken_at,meter,serial,id,register,value,unit,derived,implausible,source\n"));
    let logged_rows: BTreeSet<&str> = csv
        .lines()
        .filter(|l| l.ends_with(",hour_log"))
        .filter_map(|l| l.split(',').next())
        .collect();
    assert_eq!(
        logged_rows.len(),
        stored_logs.len(),
        "one timestamp per logged record"
    );

    // A gap while the bridge was off: the last 5 hours' readings are gone.
    let cut = now - chrono::Duration::hours(5);
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        let ms = cut.timestamp_millis();
        conn.execute("DELETE FROM reading_values WHERE taken_at >= ?1", [ms])
            .unwrap();
        let gone = conn
            .execute("DELETE FROM readings WHERE taken_at >= ?1", [ms])
            .unwrap();
        assert!(gone >= 5, "{gone}");
    }
    let before: BTreeSet<i64> = stored(&db).iter().map(|r| r.id.0).collect();
    let daemon = start_daemon(&config, &log);
    wait_for("the gap to be filled", &log, || {
        let now = Utc::now();
        let hours: BTreeSet<i64> = stored(&db)
            .iter()
            .map(|r| r.reading.taken_at.timestamp_millis().div_euclid(HOUR_MS))
            .collect();
        let last = now.timestamp_millis().div_euclid(HOUR_MS);
        (last - WINDOW_H..last).all(|h| hours.contains(&h))
    });
    wait_for("the file sink to get the refill", &log, || {
        let ids: BTreeSet<i64> = delivered_logged(&out).iter().map(|(id, _)| *id).collect();
        hour_logs(&db).iter().all(|r| ids.contains(&r.id.0))
    });
    daemon.terminate();
    let now = Utc::now();
    let logged = check_window(&db, now);
    assert!(logged >= gaps, "{logged}");
    let refilled: Vec<_> = hour_logs(&db)
        .into_iter()
        .filter(|r| !before.contains(&r.id.0))
        .collect();
    assert!(refilled.len() >= 4, "{}", refilled.len());
    assert!(refilled
        .iter()
        .all(|r| r.reading.taken_at >= cut - chrono::Duration::hours(1)));
    // Nothing duplicated: no hour holds two records (check_window), every logged record was
    // delivered once — the refilled ones too, with their logged times.
    let delivered = delivered_logged(&out);
    let ids: BTreeSet<i64> = delivered.iter().map(|(id, _)| *id).collect();
    assert_eq!(
        ids.len(),
        delivered.len(),
        "a logged record was delivered twice"
    );
    for r in &refilled {
        assert!(
            delivered.contains(&(r.id.0, r.reading.taken_at)),
            "refilled {} at {} not delivered",
            r.id.0,
            r.reading.taken_at
        );
    }
}

#[test]
fn a_meter_without_loggers_is_polled_as_before_and_said_so_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("kamstrup.db");
    let log = dir.path().join("daemon.log");
    let config = dir.path().join("kamstrup.toml");
    std::fs::write(
        &config,
        format!(
            "[storage]\npath = {db:?}\n\n[[meter]]\nname = \"heat\"\nport = \"sim:multical-602\"\ninterval = \"300ms\"\nbackfill = \"48h\"\n"
        ),
    )
    .unwrap();
    let daemon = start_daemon(&config, &log);
    wait_for("a few polls", &log, || stored(&db).len() >= 4);
    daemon.terminate();
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        text.matches("keeps no logger readable over KMP").count(),
        1,
        "{text}"
    );
    assert!(hour_logs(&db).is_empty());
    assert!(stored(&db).iter().all(|r| r.reading.source.is_poll()));
}

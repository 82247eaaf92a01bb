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
use kamstrup_meter::sim::history::{kmp_history, mc66c_history, HistorySpec};
use kamstrup_meter::sim::{KmpModel, Mc66cModel};
use kamstrup_meter::Protocol;
use kamstrup_store::{ReadingId, Store, StoredReading};
use serde_json::Value;

use super::harness::{Sim, BIN};

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

/// A logger record: its UTC stamp and its values by register name.
type LoggedRow = (DateTime<Utc>, BTreeMap<String, String>);

/// The records of a `kamstrup log --format json` document: per record, its UTC stamp (by the
/// zone, uncorrected) and its values.
fn records_of(doc: &Value) -> Vec<LoggedRow> {
    doc["records"]
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
        .collect()
}

/// `kamstrup log` with `args` (and `--format json`), which must succeed: its JSON document.
fn log_json(args: &[&str]) -> Value {
    let out = Command::new(BIN)
        .arg("log")
        .args(args)
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `kamstrup log --logger hour --since …` as JSON: its records ([`records_of`]) and the meter
/// clock's offset.
fn logger_records(since: DateTime<Utc>) -> (i64, Vec<LoggedRow>) {
    let doc = log_json(&[
        "--port",
        "sim:multical-403",
        "--logger",
        "hour",
        "--since",
        &since.to_rfc3339(),
    ]);
    let offset = doc["meter_clock_offset_s"].as_i64().unwrap();
    (offset, records_of(&doc))
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

/// The hours the logged records end (as UTC unix hours): a record is the counter at the hour
/// boundary nearest to it, the end of the hour before that boundary.
fn closed_hours(logged: &[StoredReading]) -> BTreeSet<i64> {
    logged
        .iter()
        .map(|r| (r.reading.taken_at.timestamp_millis() + HOUR_MS / 2).div_euclid(HOUR_MS) - 1)
        .collect()
}

/// Deletes the readings taken in `[from_ms, to_ms)` (and their values) behind the store's back,
/// standing in for hours that passed unread (a test cannot wait hours); how many went.
fn forget_readings(db: &Path, from_ms: i64, to_ms: i64) -> usize {
    let conn = rusqlite::Connection::open(db).unwrap();
    // A running daemon may be writing.
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    let range = "WHERE taken_at >= ?1 AND taken_at < ?2";
    conn.execute(
        &format!("DELETE FROM reading_values {range}"),
        [from_ms, to_ms],
    )
    .unwrap();
    conn.execute(&format!("DELETE FROM readings {range}"), [from_ms, to_ms])
        .unwrap()
}

/// The file sink's lines of hour-logger records: (id, taken_at).
fn delivered_logged(path: &Path) -> Vec<(i64, DateTime<Utc>)> {
    delivered_from(path, "hour_log")
}

/// The file sink's lines whose source is `source` (`hour_log`, `day_log`): (id, taken_at).
fn delivered_from(path: &Path, source: &str) -> Vec<(i64, DateTime<Utc>)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["source"] == source)
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
    // daemon's: its window moved on by one hour). The simulated 403's clock runs ahead, so the
    // record ending the gap's last hour lies in that hour: no record in a polled hour.
    let filled = check_window(&db, now);
    assert!(filled == gaps || filled + 1 == gaps, "{filled} of {gaps}");
    let gap_hours: BTreeSet<i64> = (first..last)
        .filter(|h| !polled_hours.contains(h))
        .collect();
    let closed = closed_hours(&hour_logs(&db));
    // (The oldest gap hour may have left the daemon's window meanwhile.)
    assert!(
        gap_hours.iter().skip(1).all(|h| closed.contains(h)),
        "every gap hour ends with a logged record: {gap_hours:?} {closed:?}"
    );
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
    let gone = forget_readings(&db, cut.timestamp_millis(), i64::MAX);
    assert!(gone >= 5, "{gone}");
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

/// `kamstrup simulate --model multical-66c` on a real pseudo-terminal, unpaced (its hour logger
/// would take ~11 min at the real 1200 Bd; the daemon and the simulator still switch bauds as
/// on the wire).
fn simulated_66c() -> Sim {
    Sim::start(&[
        "--model",
        "multical-66c",
        "--no-pace",
        "--latency-ms",
        "300",
    ])
}

/// A config for the simulated MULTICAL 66C on `port` (its clock runs on UTC: `zone`) with a
/// file sink, back-filling the last `window` (e.g. `"48h"`).
fn mc66c_config(
    dir: &Path,
    port: &str,
    window: &str,
    min_gap: &str,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let db = dir.join("kamstrup.db");
    let out = dir.join("readings.jsonl");
    let config = dir.join("kamstrup.toml");
    std::fs::write(
        &config,
        format!(
            "[storage]\npath = {db:?}\n\n[[meter]]\nname = \"heat\"\nport = \"{port}\"\nprotocol = \"mc66c\"\ninterval = \"1h\"\nbackfill = \"{window}\"\nbackfill_min_gap = \"{min_gap}\"\nzone = \"+00:00\"\n\n[file]\npath = {out:?}\n"
        ),
    )
    .unwrap();
    (config, out)
}

/// Stores `polls` of the simulated 66C as a bridge that polled them would have.
fn seed_66c(db: &Path, polls: &[kamstrup_meter::Reading]) {
    let mut store = Store::open(db).unwrap();
    let heat = store
        .upsert_meter(
            Mc66cModel::CUSTOMER_NO,
            "heat",
            Protocol::Mc66c,
            Some("MULTICAL 66C"),
            "sim:multical-66c",
            polls[0].taken_at,
        )
        .unwrap();
    let items: Vec<_> = polls.iter().map(|r| (heat, r.clone(), None)).collect();
    store.insert_readings(&items).unwrap();
}

/// `/#1`'s heat energy of the simulated 66C at `at`, as its driver reads it: what the meter's
/// counter said at that moment (the simulator is a pure function of UTC time).
fn mc66c_energy_at(at: DateTime<Utc>) -> String {
    mc66c_value_at(at, "heat_energy")
}

/// `/#1`'s register `name` of the simulated 66C at `at` ([`mc66c_energy_at`]).
fn mc66c_value_at(at: DateTime<Utc>, name: &str) -> String {
    let r = mc66c_history(
        Mc66cModel::default(),
        "sim:multical-66c",
        &HistorySpec {
            end: at + chrono::Duration::seconds(1),
            span: Duration::from_secs(2),
            step: Duration::from_secs(1),
        },
    )
    .unwrap();
    assert_eq!(r[0].taken_at, at);
    let v = r[0].registers.iter().find(|v| v.name == name).unwrap();
    v.value.to_string()
}

#[test]
fn a_66c_gap_longer_than_backfill_min_gap_is_filled_from_its_hour_logger_once() {
    let dir = tempfile::tempdir().unwrap();
    let meter = simulated_66c();
    let port = meter.port.clone();
    let (config, out) = mc66c_config(dir.path(), &port, &format!("{WINDOW_H}h"), "6h");
    let db = dir.path().join("kamstrup.db");
    let log = dir.path().join("daemon.log");
    let now = Utc::now();
    let polls = mc66c_history(
        Mc66cModel::default(),
        "sim:multical-66c",
        &HistorySpec {
            end: now,
            span: Duration::from_secs(2 * 3600),
            step: Duration::from_secs(15 * 60),
        },
    )
    .unwrap();
    seed_66c(&db, &polls);
    let polled_hours: BTreeSet<i64> = polls
        .iter()
        .map(|r| r.taken_at.timestamp_millis().div_euclid(HOUR_MS))
        .collect();
    let first = now.timestamp_millis().div_euclid(HOUR_MS) - WINDOW_H;
    let last = now.timestamp_millis().div_euclid(HOUR_MS);
    let gaps = (first..last).filter(|h| !polled_hours.contains(h)).count();
    assert!(gaps >= 45, "{gaps}");

    let daemon = start_daemon(&config, &log);
    wait_for("the 66C back-fill", &log, || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("back-fill from the 66C's loggers")
    });
    wait_for("the file sink", &log, || {
        let ids: BTreeSet<i64> = delivered_logged(&out).iter().map(|(id, _)| *id).collect();
        hour_logs(&db).iter().all(|r| ids.contains(&r.id.0))
    });
    daemon.terminate();
    let text = std::fs::read_to_string(&log).unwrap();
    // One session: the clock, the month ends, the hour logger — and its cost.
    assert!(text.contains("(/#D /#5 /#7)"), "{text}");
    for key in ["requests=", "bytes=", "wall_ms=", "sessions=1"] {
        assert!(text.contains(key), "{key}: {text}");
    }
    assert!(
        !text.contains("/#6"),
        "the day logger is not needed: {text}"
    );
    // What the meter was asked: each of the session's data sets once.
    let asked = meter.requests();
    for set in ["/#D", "/#5", "/#7"] {
        assert_eq!(
            asked.iter().filter(|r| *r == set).count(),
            1,
            "{set}: {asked:?}"
        );
    }
    assert!(!asked.iter().any(|r| r == "/#6"), "{asked:?}");

    let all = stored(&db);
    let now = Utc::now();
    let (first, last) = (
        now.timestamp_millis().div_euclid(HOUR_MS) - WINDOW_H,
        now.timestamp_millis().div_euclid(HOUR_MS),
    );
    let mut per_hour: BTreeMap<i64, Vec<&StoredReading>> = BTreeMap::new();
    for r in &all {
        per_hour
            .entry(r.reading.taken_at.timestamp_millis().div_euclid(HOUR_MS))
            .or_default()
            .push(r);
    }
    for h in first..last {
        assert!(
            per_hour.contains_key(&h),
            "hour {h} of the window has no reading"
        );
    }
    let logged: Vec<&StoredReading> = all
        .iter()
        .filter(|r| r.reading.source.is_logged())
        .collect();
    // The gap's hours and the record at the start of the first polled hour after it: the
    // simulated 66C's clock is a second or so behind, so that record (in a polled hour) is what
    // ends the gap's last hour. One fewer when the window moved on by an hour meanwhile.
    let first_polled = polls[0].taken_at.timestamp_millis().div_euclid(HOUR_MS);
    let closed = closed_hours(&logged.iter().map(|r| (*r).clone()).collect::<Vec<_>>());
    assert!(
        closed.contains(&(first_polled - 1)),
        "the gap's last hour is ended: {closed:?}"
    );
    assert!(
        logged.len() == gaps + 1 || logged.len() == gaps,
        "{} of {gaps} + 1",
        logged.len()
    );
    for r in &logged {
        assert_eq!(r.reading.source.as_str(), "hour_log");
        // Alone in its hour, or the record ending the gap's last hour, early in the first polled
        // hour (the seeded polls sit on the quarter hours: the first may be at hh:00:00, at or
        // a second before that record).
        let h = r.reading.taken_at.timestamp_millis().div_euclid(HOUR_MS);
        let hour = &per_hour[&h];
        assert!(
            hour.iter()
                .all(|o| o.id == r.id || !o.reading.source.is_logged())
                && (hour.len() == 1 || h == first_polled),
            "a logged record shares its hour with another logged record or a polled hour not after the gap: {:?}",
            hour.iter()
                .map(|o| (o.id.0, o.reading.source.as_str(), o.reading.taken_at))
                .collect::<Vec<_>>()
        );
        // Stamped at the end of its hour (the meter clock's offset, a second or so, corrected).
        let stamp = DateTime::from_timestamp(
            (r.reading.taken_at.timestamp() + 1800).div_euclid(3600) * 3600,
            0,
        )
        .unwrap();
        assert!((r.reading.taken_at - stamp).num_seconds().abs() <= 3);
        // The counter equals what the meter's /#1 said at that moment.
        let [v] = &r.reading.registers[..] else {
            panic!("{:?}", r.reading.registers)
        };
        assert_eq!(v.name, "heat_energy");
        assert_eq!(v.value.to_string(), mc66c_energy_at(stamp), "at {stamp}");
        assert_eq!(v.unit.as_str(), "GJ");
    }
    // The file sink got each once, with its logged time.
    let delivered = delivered_logged(&out);
    let set: BTreeSet<(i64, DateTime<Utc>)> = delivered.iter().copied().collect();
    assert_eq!(
        set.len(),
        delivered.len(),
        "a logged record delivered twice"
    );
    let want: BTreeSet<(i64, DateTime<Utc>)> = logged
        .iter()
        .map(|r| (r.id.0, r.reading.taken_at))
        .collect();
    assert_eq!(set, want);

    // A restart with nothing new to fill: no second read of the loggers, nothing stored twice.
    let before = stored(&db).len();
    let daemon = start_daemon(&config, &log);
    wait_for("a poll", &log, || stored(&db).len() > before);
    std::thread::sleep(Duration::from_millis(500));
    daemon.terminate();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains("back-fill from the 66C's loggers"), "{text}");
    assert_eq!(hour_logs(&db).len(), logged.len());

    // `kamstrup log` reads the same hour logger from the same meter: every stored record is
    // one of its records, value for value.
    let doc = log_json(&[
        "--port",
        &port,
        "--protocol",
        "mc66c",
        "--program",
        "4-2-119",
        "--logger",
        "hour",
        "--zone",
        "+00:00",
        "--last",
        "60",
    ]);
    assert_eq!(doc["data_sets"], serde_json::json!(["/#D", "/#5", "/#7"]));
    let printed: BTreeMap<DateTime<Utc>, String> = doc["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let v = &r["registers"][0];
            assert_eq!(v["name"], "heat_energy");
            (
                r["utc"].as_str().unwrap().parse().unwrap(),
                v["value"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(printed.len(), 60);
    for r in hour_logs(&db) {
        let stamp = DateTime::from_timestamp(
            (r.reading.taken_at.timestamp() + 1800).div_euclid(3600) * 3600,
            0,
        )
        .unwrap();
        assert_eq!(
            printed.get(&stamp),
            Some(&r.reading.registers[0].value.to_string()),
            "kamstrup log at {stamp}"
        );
    }
}

/// The value of `key=` in a log line (tracing's `key=value` fields).
fn field(line: &str, key: &str) -> Option<i64> {
    let prefix = format!("{key}=");
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&prefix))
        .and_then(|v| v.parse().ok())
}

/// The first line of the daemon's log at `log` that contains `what`.
fn log_line(log: &Path, what: &str) -> String {
    let text = std::fs::read_to_string(log).unwrap();
    text.lines()
        .find(|l| l.contains(what))
        .unwrap_or_else(|| panic!("no line with {what:?} in the daemon's log:\n{text}"))
        .to_owned()
}

/// The UTC midnights (as unix hours; the simulated 66C's clock runs on UTC) in `hours`.
fn midnights(hours: std::ops::Range<i64>) -> BTreeSet<i64> {
    hours.filter(|h| h.rem_euclid(24) == 0).collect()
}

/// A gap older than the 66C's hour logger (960 h): the store holds an hourly poll for each of
/// the last 970 hours, the window reaches 55 days back, so the only missing hours are the
/// oldest ~350 — beyond `/#7`. One session reads `/#D`, `/#5` and the day logger `/#6` (not
/// `/#7`); its records fill the hours of the meter's midnights, one each, equal to what the
/// meter's `/#1` said then, and reach the file sink once with their logged times. A restart
/// reads no logger again: the old hours between midnights are not a gap any logger fills.
#[test]
fn a_66c_gap_older_than_its_hour_logger_is_filled_at_its_midnights_from_the_day_logger() {
    const WINDOW_D: i64 = 55;
    let dir = tempfile::tempdir().unwrap();
    let meter = simulated_66c();
    let (config, out) = mc66c_config(dir.path(), &meter.port, &format!("{WINDOW_D}d"), "6h");
    let db = dir.path().join("kamstrup.db");
    let log = dir.path().join("daemon.log");
    let t0 = Utc::now();
    let depth = kamstrup_meter::mc66c_logger::HOUR_LOG_DEPTH as u64;
    // Every hour of the hour logger's reach polled (and ten more), as the simulator answered.
    let mut polls = mc66c_history(
        Mc66cModel::default(),
        "sim:multical-66c",
        &HistorySpec {
            end: t0,
            span: Duration::from_secs((depth + 10) * 3600),
            step: Duration::from_secs(3600),
        },
    )
    .unwrap();
    // The gap must not end at a midnight: its record would then end the gap's last hour from
    // the first polled hour (kept apart here, the hour-logger test covers that case).
    if polls[0].taken_at.timestamp_millis().div_euclid(HOUR_MS) % 24 == 0 {
        polls.remove(0);
    }
    seed_66c(&db, &polls);
    let polled: BTreeSet<i64> = polls
        .iter()
        .map(|r| r.taken_at.timestamp_millis().div_euclid(HOUR_MS))
        .collect();
    let first_polled = *polled.first().unwrap();
    let t0_hour = t0.timestamp_millis().div_euclid(HOUR_MS);
    assert_eq!(
        polled.len() as i64,
        t0_hour - first_polled + 1,
        "every hour polled"
    );
    assert!(
        t0_hour - first_polled >= depth as i64,
        "the hour logger's reach is polled"
    );
    let window_start = |t: DateTime<Utc>| {
        (t - chrono::Duration::days(WINDOW_D))
            .timestamp_millis()
            .div_euclid(HOUR_MS)
    };
    // The midnights the daemon can fill: those of the missing hours (fewer by one when the
    // window's start passed a midnight before the daemon looked, or is one: the meter's clock
    // may put its record a second before it, outside the window).
    let at_most = midnights(window_start(t0)..first_polled);
    assert!(at_most.len() >= 13, "{at_most:?}");

    let started = Instant::now();
    let daemon = start_daemon(&config, &log);
    wait_for("the 66C back-fill", &log, || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("back-fill from the 66C's loggers")
    });
    let t1 = Utc::now();
    wait_for("the file sink", &log, || {
        let ids: BTreeSet<i64> = delivered_from(&out, "day_log")
            .iter()
            .map(|(id, _)| *id)
            .collect();
        // (Stored before the back-fill's line is logged.)
        hour_logs(&db).iter().all(|r| ids.contains(&r.id.0))
    });
    daemon.terminate();
    let first_run = started.elapsed();
    let at_least = midnights(window_start(t1) + 1..first_polled);

    // What the meter was asked: the clock, the month ends and the day logger, once each.
    let asked = meter.requests();
    for set in ["/#D", "/#5", "/#6"] {
        assert_eq!(
            asked.iter().filter(|r| *r == set).count(),
            1,
            "{set}: {asked:?}"
        );
    }
    assert!(!asked.iter().any(|r| r == "/#7"), "{asked:?}");
    // The log: the plan (the day logger only), then what it did and cost.
    let plan = log_line(&log, "reading them from the MULTICAL 66C's loggers");
    assert!(plan.contains("loggers=/#6"), "{plan}");
    let missing = field(&plan, "hours").unwrap();
    let done = log_line(&log, "back-fill from the 66C's loggers (/#D /#5 /#6)");
    assert_eq!(field(&done, "sessions"), Some(1), "{done}");
    assert!(field(&done, "requests").unwrap() >= 3, "{done}");
    assert!(field(&done, "bytes").unwrap() > 0, "{done}");
    assert!(field(&done, "wall_ms").is_some(), "{done}");
    assert_eq!(field(&done, "implausible"), Some(0), "{done}");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        !text.contains("/#7"),
        "the hour logger is not needed: {text}"
    );

    // The stored records: day_log, one at each missing midnight, none in a polled hour.
    let all = stored(&db);
    let logged: Vec<&StoredReading> = all
        .iter()
        .filter(|r| r.reading.source.is_logged())
        .collect();
    // A record sits at its midnight, give or take the meter clock's offset (the simulator
    // unpaced, measured ±1 s): in the midnight's hour, or a second before it in the hour
    // before. `filled`: the midnights, as the unix hours they begin.
    let nearest_hour = |t: DateTime<Utc>| (t.timestamp_millis() + HOUR_MS / 2).div_euclid(HOUR_MS);
    let hours: Vec<i64> = logged
        .iter()
        .map(|r| r.reading.taken_at.timestamp_millis().div_euclid(HOUR_MS))
        .collect();
    assert_eq!(
        hours.iter().collect::<BTreeSet<_>>().len(),
        hours.len(),
        "an hour filled twice: {hours:?}"
    );
    let filled: BTreeSet<i64> = logged
        .iter()
        .map(|r| nearest_hour(r.reading.taken_at))
        .collect();
    assert!(
        at_least.is_subset(&filled) && filled.is_subset(&at_most),
        "the missing midnights {at_least:?} (at most {at_most:?}) were filled: {filled:?}"
    );
    assert_eq!(field(&done, "stored"), Some(filled.len() as i64), "{done}");
    assert_eq!(
        field(&done, "still_missing"),
        Some(missing - filled.len() as i64),
        "{done}"
    );
    for r in &logged {
        assert_eq!(r.reading.source.as_str(), "day_log");
        let h = r.reading.taken_at.timestamp_millis().div_euclid(HOUR_MS);
        assert!(!polled.contains(&h), "a day record in a polled hour");
        assert!(
            all.iter()
                .all(|o| o.id == r.id
                    || o.reading.taken_at.timestamp_millis().div_euclid(HOUR_MS) != h),
            "an hour with a reading got a day record too"
        );
        // At the meter's midnight, its clock's offset (a second or so) corrected.
        let midnight =
            DateTime::from_timestamp(nearest_hour(r.reading.taken_at) * 3600, 0).unwrap();
        assert!(
            (r.reading.taken_at - midnight).num_seconds().abs() <= 3,
            "{}",
            r.reading.taken_at
        );
        // The counter equals what the meter's /#1 said at that moment.
        let [v] = &r.reading.registers[..] else {
            panic!("{:?}", r.reading.registers)
        };
        assert_eq!(v.name, "heat_energy");
        assert_eq!(
            v.value.to_string(),
            mc66c_energy_at(midnight),
            "at {midnight}"
        );
        assert_eq!(v.unit.as_str(), "GJ");
    }
    // The file sink got each once, with its logged time; no hour records.
    let delivered = delivered_from(&out, "day_log");
    let set: BTreeSet<(i64, DateTime<Utc>)> = delivered.iter().copied().collect();
    assert_eq!(set.len(), delivered.len(), "a day record delivered twice");
    let want: BTreeSet<(i64, DateTime<Utc>)> = logged
        .iter()
        .map(|r| (r.id.0, r.reading.taken_at))
        .collect();
    assert_eq!(set, want);
    assert!(delivered_logged(&out).is_empty());

    // A restart, after an hour whose poll failed (an hour without a reading, shorter than
    // backfill_min_gap). The hours between the old midnights still hold no reading: no logger
    // of the 66C holds them, so they call for no read — neither /#6 again (a minute of IR at
    // every start) nor, counted as a gap, /#7 for that one hour (11 min).
    let lost = Utc::now().timestamp_millis().div_euclid(HOUR_MS) - 3;
    let gone = forget_readings(&db, lost * HOUR_MS, (lost + 1) * HOUR_MS);
    assert_eq!(gone, 1, "one poll in hour {lost}");
    let before = stored(&db).len();
    let restarted = Instant::now();
    let daemon = start_daemon(&config, &log);
    wait_for("the restart's back-fill decision", &log, || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        text.contains("no gap as long as backfill_min_gap")
            || text.contains("back-fill from the 66C's loggers")
    });
    std::thread::sleep(Duration::from_millis(300));
    daemon.terminate();
    let second_run = restarted.elapsed();
    assert!(stored(&db).len() > before, "the restart polled");
    let said = log_line(&log, "no gap as long as backfill_min_gap");
    assert_eq!(field(&said, "longest_gap_h"), Some(1), "{said}");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains("back-fill from the 66C's loggers"), "{text}");
    let asked = meter.requests();
    for set in ["/#D", "/#5", "/#6"] {
        assert_eq!(
            asked.iter().filter(|r| *r == set).count(),
            1,
            "{set} again: {asked:?}"
        );
    }
    assert!(!asked.iter().any(|r| r == "/#7"), "{asked:?}");
    assert_eq!(hour_logs(&db).len(), logged.len(), "nothing stored twice");
    let delivered = delivered_from(&out, "day_log");
    assert_eq!(
        delivered.iter().copied().collect::<BTreeSet<_>>(),
        want,
        "nothing delivered twice"
    );
    eprintln!(
        "day-logger back-fill: {} midnights stored, requests={:?} bytes={:?} wall_ms={:?} clock_offset_s={:?}; first run {:.1} s, restart {:.1} s",
        filled.len(),
        field(&done, "requests"),
        field(&done, "bytes"),
        field(&done, "wall_ms"),
        field(&done, "clock_offset_s"),
        first_run.as_secs_f64(),
        second_run.as_secs_f64()
    );
}

/// A gap older than the 66C's day logger (60 days): the store holds an hourly poll for each of
/// the last 62 days, the window reaches 150 days back. One session reads `/#D` and `/#5` only —
/// the month-end counters, 32 months deep, which every 66C session reads anyway — and stores a
/// `month_log` record at each of the meter's month starts in the gap: heat energy and volume,
/// equal to what the meter's `/#1` said then, delivered once. A restart reads no logger again.
#[test]
fn a_66c_gap_older_than_its_day_logger_is_filled_at_its_month_starts_from_5() {
    const WINDOW_D: i64 = 150;
    const POLLED_D: u64 = 62;
    let dir = tempfile::tempdir().unwrap();
    let meter = simulated_66c();
    let (config, out) = mc66c_config(dir.path(), &meter.port, &format!("{WINDOW_D}d"), "6h");
    let db = dir.path().join("kamstrup.db");
    let log = dir.path().join("daemon.log");
    let t0 = Utc::now();
    let polls = mc66c_history(
        Mc66cModel::default(),
        "sim:multical-66c",
        &HistorySpec {
            end: t0,
            span: Duration::from_secs(POLLED_D * 86_400),
            step: Duration::from_secs(3600),
        },
    )
    .unwrap();
    seed_66c(&db, &polls);
    let first_polled = polls[0].taken_at.timestamp_millis().div_euclid(HOUR_MS);
    // The meter's month starts (UTC: the simulator's zone) in the hours `from_hour..to_hour`.
    let month_starts = |from_hour: i64, to_hour: i64| -> BTreeSet<i64> {
        (from_hour..to_hour)
            .filter(|h| {
                let t = DateTime::from_timestamp(h * 3600, 0).unwrap();
                t.format("%d %H").to_string() == "01 00"
            })
            .collect()
    };
    let window_start = |t: DateTime<Utc>| {
        (t - chrono::Duration::days(WINDOW_D))
            .timestamp_millis()
            .div_euclid(HOUR_MS)
    };
    // At most the month starts of the missing hours, and the one at the first polled hour: a
    // meter clock a second ahead puts its record in the last missing hour, which it fills.
    let want = month_starts(window_start(t0), first_polled + 1);
    assert!(want.len() >= 2, "{want:?}");

    let started = Instant::now();
    let daemon = start_daemon(&config, &log);
    wait_for("the 66C back-fill", &log, || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("back-fill from the 66C's loggers")
    });
    wait_for("the file sink", &log, || {
        delivered_from(&out, "month_log").len() >= hour_logs(&db).len()
            && !hour_logs(&db).is_empty()
    });
    daemon.terminate();
    let first_run = started.elapsed();

    // Asked: the clock and the month ends, once each; neither the hour nor the day logger.
    let asked = meter.requests();
    for set in ["/#D", "/#5"] {
        assert_eq!(
            asked.iter().filter(|r| *r == set).count(),
            1,
            "{set}: {asked:?}"
        );
    }
    assert!(!asked.iter().any(|r| r == "/#7" || r == "/#6"), "{asked:?}");
    let plan = log_line(&log, "reading them from the MULTICAL 66C's loggers");
    assert!(plan.contains("loggers=/#5"), "{plan}");
    let done = log_line(&log, "back-fill from the 66C's loggers (/#D /#5)");
    assert_eq!(field(&done, "implausible"), Some(0), "{done}");

    // One month_log record at each month start in the gap, with the meter's /#1 values then.
    let logged = hour_logs(&db);
    let nearest_hour = |t: DateTime<Utc>| (t.timestamp_millis() + HOUR_MS / 2).div_euclid(HOUR_MS);
    let filled: BTreeSet<i64> = logged
        .iter()
        .map(|r| nearest_hour(r.reading.taken_at))
        .collect();
    assert_eq!(filled.len(), logged.len(), "a month start filled twice");
    // (The window's start may pass a month start while the daemon starts.)
    let at_least = month_starts(window_start(Utc::now()) + 1, first_polled);
    assert!(at_least.len() >= 2, "{at_least:?}");
    assert!(
        at_least.is_subset(&filled) && filled.is_subset(&want),
        "month starts {want:?} filled as {filled:?}"
    );
    for r in &logged {
        assert_eq!(r.reading.source.as_str(), "month_log");
        let at = DateTime::from_timestamp(nearest_hour(r.reading.taken_at) * 3600, 0).unwrap();
        assert!(
            (r.reading.taken_at - at).num_seconds().abs() <= 3,
            "{}",
            r.reading.taken_at
        );
        let got: Vec<(String, String)> = r
            .reading
            .registers
            .iter()
            .map(|v| (v.name.clone(), v.value.to_string()))
            .collect();
        assert_eq!(
            got,
            [
                ("heat_energy".to_string(), mc66c_value_at(at, "heat_energy")),
                ("volume".to_string(), mc66c_value_at(at, "volume")),
            ],
            "at {at}"
        );
    }
    // The file sink: each once, at its logged time.
    let delivered = delivered_from(&out, "month_log");
    let set: BTreeSet<(i64, DateTime<Utc>)> = delivered.iter().copied().collect();
    assert_eq!(set.len(), delivered.len(), "a month record delivered twice");
    let want_delivered: BTreeSet<(i64, DateTime<Utc>)> = logged
        .iter()
        .map(|r| (r.id.0, r.reading.taken_at))
        .collect();
    assert_eq!(set, want_delivered);

    // A restart after an hour whose poll failed: nothing calls for a logger again.
    let lost = Utc::now().timestamp_millis().div_euclid(HOUR_MS) - 3;
    assert_eq!(
        forget_readings(&db, lost * HOUR_MS, (lost + 1) * HOUR_MS),
        1
    );
    let daemon = start_daemon(&config, &log);
    wait_for("the restart's back-fill decision", &log, || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        text.contains("no gap as long as backfill_min_gap")
            || text.matches("back-fill from the 66C's loggers").count() > 1
    });
    std::thread::sleep(Duration::from_millis(300));
    daemon.terminate();
    let said = log_line(&log, "no gap as long as backfill_min_gap");
    assert_eq!(field(&said, "longest_gap_h"), Some(1), "{said}");
    let asked = meter.requests();
    assert_eq!(asked.iter().filter(|r| *r == "/#5").count(), 1, "{asked:?}");
    assert_eq!(hour_logs(&db).len(), logged.len(), "nothing stored twice");
    // `kamstrup log --logger month` prints the same /#5 records, value for value.
    let doc = log_json(&[
        "--port",
        &meter.port,
        "--protocol",
        "mc66c",
        "--program",
        "4-2-119",
        "--logger",
        "month",
        "--zone",
        "+00:00",
        "--since",
        "2000-01-01",
    ]);
    assert_eq!(doc["data_sets"], serde_json::json!(["/#D", "/#5"]));
    let printed: BTreeMap<DateTime<Utc>, BTreeMap<String, String>> =
        records_of(&doc).into_iter().collect();
    assert_eq!(printed.len(), kamstrup_meter::mc66c_logger::MONTH_END_DEPTH);
    for r in &logged {
        let at = DateTime::from_timestamp(nearest_hour(r.reading.taken_at) * 3600, 0).unwrap();
        let stored: BTreeMap<String, String> = r
            .reading
            .registers
            .iter()
            .map(|v| (v.name.clone(), v.value.to_string()))
            .collect();
        assert_eq!(printed.get(&at), Some(&stored), "kamstrup log at {at}");
    }
    eprintln!(
        "month-start back-fill from /#5: {} month starts stored, requests={:?} bytes={:?} wall_ms={:?}; first run {:.1} s",
        filled.len(),
        field(&done, "requests"),
        field(&done, "bytes"),
        field(&done, "wall_ms"),
        first_run.as_secs_f64()
    );
}

/// A 66C whose clock is behind this host's, and a gap up to the hour before the one the bridge
/// comes back in: the meter has not yet logged the line that ends the gap (its clock has not
/// passed the hour). The daemon stops after `/#D`, comes back when the clock has passed it, and
/// reads `/#7` once: every gap hour gets its record, and — for a clock less than half an hour
/// behind, the case the gap-end rule is for — the record that ends the gap too.
#[test]
fn a_66c_behind_the_host_is_read_when_its_clock_has_passed_the_hour() {
    let start = Utc::now();
    let hour = start.timestamp_millis().div_euclid(HOUR_MS);
    // The meter's clock passes the hour this host is in 10 s from now.
    let behind_s = start.timestamp().rem_euclid(3600) + 10;
    let meter = Sim::start(&[
        "--model",
        "multical-66c",
        "--no-pace",
        "--latency-ms",
        "300",
        "--clock-offset-s",
        &(-behind_s).to_string(),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let (config, _out) = mc66c_config(dir.path(), &meter.port, "48h", "6h");
    let db = dir.path().join("kamstrup.db");
    let log = dir.path().join("daemon.log");
    // Polled up to 11 hours ago (as the meter answered then: its values at its own time); the
    // last 10 hours before this one missing.
    let offset = chrono::Duration::seconds(-behind_s);
    let mut polls = mc66c_history(
        Mc66cModel::default(),
        "sim:multical-66c",
        &HistorySpec {
            end: start - chrono::Duration::hours(11) + offset,
            span: Duration::from_secs(24 * 3600),
            step: Duration::from_secs(3600),
        },
    )
    .unwrap();
    for p in &mut polls {
        p.taken_at -= offset;
    }
    polls.retain(|p| p.taken_at.timestamp_millis().div_euclid(HOUR_MS) < hour - 10);
    seed_66c(&db, &polls);
    let gap: Vec<i64> = (hour - 10..hour).collect();

    let daemon = start_daemon(&config, &log);
    let said = |what: &str| {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .matches(what)
            .count()
    };
    wait_for("the wait for the meter's clock", &log, || {
        said("has not passed the hour yet") > 0
    });
    wait_for("the second back-fill session", &log, || {
        said("reading them from the MULTICAL 66C's loggers") > 1
    });
    wait_for("the 66C back-fill", &log, || {
        said("back-fill from the 66C's loggers") > 0
    });
    daemon.terminate();
    let text = std::fs::read_to_string(&log).unwrap();
    let waited = log_line(&log, "has not passed the hour yet");
    assert_eq!(
        field(&waited, "clock_offset_s").map(|o| (o + behind_s).abs() <= 2),
        Some(true),
        "{waited}"
    );
    // /#D twice (the first session stopped after it), /#5 and /#7 once, after the wait.
    let asked = meter.requests();
    let count = |set: &str| asked.iter().filter(|r| *r == set).count();
    assert_eq!(
        (count("/#D"), count("/#5"), count("/#7")),
        (2, 1, 1),
        "{asked:?}"
    );
    let at =
        |line: &str| -> DateTime<Utc> { line.split_whitespace().next().unwrap().parse().unwrap() };
    let read = log_line(&log, "back-fill from the 66C's loggers (/#D /#5 /#7)");
    let crossed =
        DateTime::from_timestamp(hour * 3600, 0).unwrap() + chrono::Duration::seconds(behind_s);
    assert!(
        at(&read) >= crossed + chrono::Duration::seconds(10),
        "read at {} before the meter's clock passed the hour (+10 s) at {crossed}:\n{text}",
        at(&read)
    );

    // Each gap hour once, from the hour logger; at most one logged record in any hour.
    let logged = hour_logs(&db);
    let hours: Vec<i64> = logged
        .iter()
        .map(|r| r.reading.taken_at.timestamp_millis().div_euclid(HOUR_MS))
        .collect();
    let unique: BTreeSet<i64> = hours.iter().copied().collect();
    assert_eq!(unique.len(), hours.len(), "an hour filled twice: {hours:?}");
    for h in &gap {
        assert!(unique.contains(h), "gap hour {h} not filled: {hours:?}");
    }
    // The record that ends the gap: the meter's line for its hour, at its corrected time (the
    // moment its clock passed the hour), equal to the meter's counter then. The gap-end rule
    // takes it in the first half of the next hour (a clock up to 30 min behind).
    let end: Vec<&StoredReading> = logged
        .iter()
        .filter(|r| r.reading.taken_at.timestamp_millis().div_euclid(HOUR_MS) == hour)
        .collect();
    if behind_s < 29 * 60 {
        assert_eq!(end.len(), 1, "the gap's end: {hours:?}");
        let r = end[0];
        assert!(
            (r.reading.taken_at - crossed).num_seconds().abs() <= 3,
            "{} vs {crossed}",
            r.reading.taken_at
        );
        assert_eq!(
            r.reading.registers[0].value.to_string(),
            mc66c_energy_at(DateTime::from_timestamp(hour * 3600, 0).unwrap())
        );
    } else {
        eprintln!("the meter is {behind_s} s behind (started late in the hour): the gap-end record is beyond the rule's half hour, not checked");
    }
}

#[test]
fn a_66c_gap_shorter_than_backfill_min_gap_is_left_and_said_so() {
    let dir = tempfile::tempdir().unwrap();
    let meter = simulated_66c();
    let (config, _out) = mc66c_config(dir.path(), &meter.port, &format!("{WINDOW_H}h"), "6h");
    let db = dir.path().join("kamstrup.db");
    let log = dir.path().join("daemon.log");
    let now = Utc::now();
    let hour = now.timestamp_millis().div_euclid(HOUR_MS);
    // The whole window polled every 15 min, but for 3 hours that the bridge was off.
    let polls: Vec<_> = mc66c_history(
        Mc66cModel::default(),
        "sim:multical-66c",
        &HistorySpec {
            end: now,
            span: Duration::from_secs(WINDOW_H as u64 * 3600 + 900),
            step: Duration::from_secs(15 * 60),
        },
    )
    .unwrap()
    .into_iter()
    .filter(|r| {
        let h = r.taken_at.timestamp_millis().div_euclid(HOUR_MS);
        !(hour - 10..hour - 7).contains(&h)
    })
    .collect();
    seed_66c(&db, &polls);
    let daemon = start_daemon(&config, &log);
    wait_for("the decision", &log, || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("no gap as long as backfill_min_gap")
    });
    daemon.terminate();
    let text = std::fs::read_to_string(&log).unwrap();
    let said = text
        .lines()
        .find(|l| l.contains("no gap as long as backfill_min_gap"))
        .unwrap();
    assert!(said.contains("INFO"), "{said}");
    assert!(said.contains("longest_gap_h=3"), "{said}");
    assert!(!text.contains("/#7"), "the hour logger was read: {text}");
    let asked = meter.requests();
    assert!(asked.iter().any(|r| r == "/#1"), "{asked:?}");
    assert!(
        !asked
            .iter()
            .any(|r| ["/#5", "/#6", "/#7", "/#D"].contains(&r.as_str())),
        "{asked:?}"
    );
    assert!(hour_logs(&db).is_empty());
}

/// `kamstrup simulate --model multical-403` on TCP `listen` (a network IR head).
fn simulated_403(listen: &str) -> Sim {
    Sim::start(&["--model", "multical-403", "--listen", listen])
}

/// The recovery trigger: a KMP meter behind a TCP head that goes away (polls fail) and comes
/// back is back-filled at its first good poll after the failures — not only at start. The
/// store is complete at start (no back-fill then); while the meter is unreachable, the test
/// removes six hours of readings, standing in for hours that passed unread (the test cannot
/// wait hours); when the head returns, those hours are read from the hour logger, once, equal
/// to what `kamstrup log` prints.
#[test]
fn a_kmp_meter_that_answers_again_after_failed_polls_is_back_filled() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("kamstrup.db");
    let log = dir.path().join("daemon.log");
    let config = dir.path().join("kamstrup.toml");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    std::fs::write(
        &config,
        format!(
            "[storage]\npath = {db:?}\n\n[[meter]]\nname = \"heat\"\nport = \"tcp://{listen}\"\ninterval = \"1s\"\nbackfill = \"{WINDOW_H}h\"\nzone = \"+01:00\"\n"
        ),
    )
    .unwrap();
    // The whole window polled every 15 min: nothing to fill at start.
    let now = Utc::now();
    let model = KmpModel::Multical403;
    let polls = kmp_history(
        model,
        &[60, 68, 86, 87, 80, 74, 1004, 99],
        "sim:multical-403",
        &HistorySpec {
            end: now,
            span: Duration::from_secs(WINDOW_H as u64 * 3600 + 900),
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
    let seeded = stored(&db).len();

    let head = simulated_403(&listen);
    let daemon = start_daemon(&config, &log);
    wait_for("polls", &log, || stored(&db).len() >= seeded + 2);
    assert!(hour_logs(&db).is_empty(), "nothing to fill at start");
    // The head goes away: polls fail.
    drop(head);
    wait_for("failed polls", &log, || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .matches("read failed")
            .count()
            >= 2
    });
    // Hours 10 … 5 before this one hold no reading now.
    let hour = Utc::now().timestamp_millis().div_euclid(HOUR_MS);
    let gap: BTreeSet<i64> = (hour - 10..hour - 4).collect();
    let gone = forget_readings(&db, (hour - 10) * HOUR_MS, (hour - 4) * HOUR_MS);
    assert_eq!(gone, 24, "4 polls an hour for 6 hours");
    assert!(
        !std::fs::read_to_string(&log)
            .unwrap()
            .contains("back-fill from the hour logger"),
        "no back-fill while the meter is away"
    );
    // The head comes back: the first good poll after the failures back-fills.
    let _head = simulated_403(&listen);
    wait_for("the back-fill after recovery", &log, || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("back-fill from the hour logger")
    });
    daemon.terminate();
    let text = std::fs::read_to_string(&log).unwrap();
    let answers = text.find("meter answers again").expect("recovery logged");
    let filled = text.find("back-fill from the hour logger").unwrap();
    assert!(answers < filled, "{text}");
    assert_eq!(
        text.matches("back-fill from the hour logger").count(),
        1,
        "{text}"
    );
    let logged: Vec<i64> = hour_logs(&db)
        .iter()
        .map(|r| r.reading.taken_at.timestamp_millis().div_euclid(HOUR_MS))
        .collect();
    // The simulated 403's clock runs ahead: each hour's record lies in the hour it ends, so
    // the gap's own hours hold every record needed.
    assert_eq!(
        logged.iter().copied().collect::<BTreeSet<_>>(),
        gap,
        "exactly the missing hours, from the logger"
    );
    assert_eq!(logged.len(), gap.len(), "each once");
    assert_eq!(closed_hours(&hour_logs(&db)), gap, "each gap hour ended");
    // Every hour of the window holds a reading; each logged one equals `kamstrup log`.
    assert_eq!(check_window(&db, Utc::now()), gap.len());
}

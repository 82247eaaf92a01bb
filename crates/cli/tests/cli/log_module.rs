//! End-to-end: the real `kamstrup log --address 0x7F` reads the logger module of a simulated
//! MULTICAL 601 (`kamstrup simulate` on a real pseudo-terminal) through A0–A3; every record must
//! equal what this test process computes for the same simulated meter (a function of UTC time).

use super::harness::*;

use kamstrup_meter::sim::logger_module::INTERVAL_LOG_SPEC;
use kamstrup_meter::sim::KmpModel;

/// `kamstrup simulate --model MODEL` on a pseudo-terminal with `extra` arguments.
fn spawn_sim(model: &str, extra: &[&str]) -> Sim {
    Sim::start(&[&["--model", model], extra].concat())
}

#[test]
fn a_day_from_the_601_logger_module_agrees_with_the_simulated_meter() {
    // Faults on replies 3 and 6: a damaged page is asked again from the last good record.
    let sim = spawn_sim("multical-601", &["--faults", "truncate@3,corrupt@6"]);
    let out = kamstrup(&[
        "log",
        "--port",
        &sim.port,
        "--address",
        "0x7F",
        "--logger",
        "hour",
        "--last",
        "24",
        "--zone",
        "+01:00",
        "--format",
        "json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = json(&out);
    assert_eq!(doc["address"], "0x7F");
    assert_eq!(doc["log"], 1);
    assert!(doc["pages"].as_u64().unwrap() >= 12, "{doc}");
    let records = doc["records"].as_array().unwrap();
    assert_eq!(records.len(), 24, "{doc}");
    let model = KmpModel::Multical601;
    let mut last = None;
    for r in records {
        let id = u32::try_from(r["id"].as_u64().unwrap()).unwrap();
        if let Some(prev) = last {
            assert_eq!(id, prev + 1, "consecutive, oldest first");
        }
        last = Some(id);
        let regs = r["registers"].as_array().unwrap();
        let names: Vec<&str> = regs.iter().map(|v| v["name"].as_str().unwrap()).collect();
        assert_eq!(
            names,
            ["heat_energy", "volume", "t1", "t2", "power", "flow"]
        );
        let ids: Vec<u16> = regs
            .iter()
            .map(|v| v["id"].as_u64().unwrap() as u16)
            .collect();
        let logged = model.logged_record(&INTERVAL_LOG_SPEC, id, &ids).unwrap();
        for v in regs {
            let want = logged.get(v["id"].as_u64().unwrap() as u16).unwrap();
            assert_eq!(v["value"], want.value.to_string(), "{v}");
            assert_eq!(v["unit"], want.unit.to_string());
        }
        // The meter's time of the record, and UTC by the zone (+01:00).
        let written = model.record_written_at(&INTERVAL_LOG_SPEC, id).unwrap();
        let standard = model.meter_clock(written).standard;
        assert_eq!(r["meter_time"], standard.to_string());
        let utc = standard.plus_seconds(-3600).unwrap();
        assert_eq!(r["utc"], format!("{}Z", utc.to_string().replace(' ', "T")));
    }
    // The 601's clock runs behind (−6 ppm since commissioning).
    assert!(doc["meter_clock_offset_s"].as_i64().unwrap() < 0, "{doc}");

    // Table and CSV show the meter's time and UTC, like the B8 loggers.
    let out = kamstrup(&[
        "log",
        "--port",
        &sim.port,
        "--address",
        "0x7F",
        "--logger",
        "hour",
        "--last",
        "3",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("log 1 of the logger module at 0x7F on"),
        "{text}"
    );
    assert!(
        text.contains("meter time (standard)") && text.contains("UTC"),
        "{text}"
    );
    assert_eq!(
        text.lines().filter(|l| l.contains(":00:04 ")).count(),
        3,
        "{text}"
    );
    let out = kamstrup(&[
        "log",
        "--port",
        &sim.port,
        "--address",
        "0x7F",
        "--logger",
        "hour",
        "--last",
        "2",
        "--format",
        "csv",
        "--registers",
        "heat_energy",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(
        text.lines().skip(1).all(|l| l.contains(",60,heat_energy,")),
        "{text}"
    );
}

#[test]
fn since_empty_range_and_usage_errors() {
    let sim = spawn_sim("multical-601", &[]);
    let since = (chrono::Utc::now() - chrono::Duration::hours(5)).to_rfc3339();
    let out = kamstrup(&[
        "log",
        "--port",
        &sim.port,
        "--address",
        "0x7F",
        "--logger",
        "hour",
        "--since",
        &since,
        "--format",
        "json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let n = json(&out)["records"].as_array().unwrap().len();
    assert!((4..=6).contains(&n), "{n}");
    // After the newest record: exit 6.
    let out = kamstrup(&[
        "log",
        "--port",
        &sim.port,
        "--address",
        "0x7F",
        "--logger",
        "hour",
        "--since",
        "2099-01-01",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(6));
    assert_eq!(json(&out)["error"]["kind"], "out-of-range");
    // Logs other than the interval log are numbered: --log-id.
    let out = kamstrup(&[
        "log",
        "--port",
        &sim.port,
        "--address",
        "0x7F",
        "--logger",
        "day",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--log-id"));
    let out = kamstrup(&[
        "log",
        "--port",
        &sim.port,
        "--address",
        "0x7F",
        "--logger",
        "day",
        "--log-id",
        "2",
        "--format",
        "json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(6),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn scan_reports_the_logger_module() {
    let sim = spawn_sim("multical-601", &[]);
    let out = kamstrup(&["scan", "--port", &sim.port, "--format", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = json(&out);
    assert_eq!(doc["loggers"].as_array().unwrap().len(), 0, "no B8 loggers");
    let modules = doc["logger_modules"].as_array().unwrap();
    assert_eq!(modules.len(), 1, "{doc}");
    assert_eq!(modules[0]["address"], 0x7F);
    let ids = modules[0]["ids"].as_array().unwrap();
    let kept = ids[1].as_u64().unwrap() - ids[0].as_u64().unwrap() + 1;
    assert_eq!(kept, u64::from(INTERVAL_LOG_SPEC.depth));
    let out = kamstrup(&["scan", "--port", &sim.port]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("logger module at 0x7F: log 1 records"),
        "{text}"
    );
}

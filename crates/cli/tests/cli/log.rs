//! End-to-end: the real `kamstrup log` reads the loggers of `kamstrup simulate` over a real
//! pseudo-terminal and real TCP; every record must equal what this test process computes for the
//! same simulated meter (its state is a function of UTC time), also through injected faults.

use super::harness::*;

use kamstrup_kmp::{LoggerType, MeterDateTime};
use kamstrup_meter::sim::KmpModel;
use serde_json::Value;

/// `kamstrup simulate --model MODEL` over `transport` with `extra` arguments.
fn spawn_sim(transport: &str, model: &str, extra: &[&str]) -> Sim {
    Sim::on(transport, &[&["--model", model], extra].concat())
}

/// Checks a JSON day of hourly records against the model, record by record.
fn check_against_model(doc: &Value, model: KmpModel, n: usize) {
    let records = doc["records"].as_array().unwrap();
    assert_eq!(records.len(), n, "{doc}");
    assert!(doc["pages"].as_u64().unwrap() >= 2, "paged: {doc}");
    let spec = model.logger(LoggerType::Hourly).unwrap();
    let mut last_id = None;
    for r in records {
        let id = u32::try_from(r["id"].as_u64().unwrap()).unwrap();
        if let Some(prev) = last_id {
            assert_eq!(id, prev + 1, "consecutive, oldest first");
        }
        last_id = Some(id);
        let regs = r["registers"].as_array().unwrap();
        let ids: Vec<u16> = std::iter::once(348)
            .chain(regs.iter().map(|v| v["id"].as_u64().unwrap() as u16))
            .collect();
        let logged = model.logged_record(spec, id, &ids).unwrap();
        let t = MeterDateTime::from_record(logged.get(348).unwrap()).unwrap();
        assert_eq!(r["meter_time"], t.standard.to_string());
        assert_eq!(r["dst_offset_min"], t.dst_offset_min);
        // UTC by the zone (+01:00): standard time minus one hour.
        let utc = t.standard.plus_seconds(-3600).unwrap();
        assert_eq!(
            r["utc"],
            format!("{}Z", utc.to_string().replace(' ', "T")),
            "{r}"
        );
        for v in regs {
            let want = logged.get(v["id"].as_u64().unwrap() as u16).unwrap();
            assert_eq!(v["value"], want.value.to_string(), "{v}");
            assert_eq!(v["unit"], want.unit.to_string());
        }
    }
}

#[test]
fn a_day_of_hours_over_a_pty_agrees_with_the_simulated_meter() {
    let sim = spawn_sim("pty", "multical-403", &[]);
    let out = kamstrup(&[
        "log", "--port", &sim.port, "--logger", "hour", "--last", "24", "--zone", "+01:00",
        "--format", "json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = json(&out);
    check_against_model(&doc, KmpModel::Multical403, 24);
    let regs: Vec<&str> = doc["records"][0]["registers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(regs, ["heat_energy", "volume", "t1", "t2", "power", "flow"]);
    assert_eq!(doc["depth"], 1392);
    assert!(
        doc["meter_clock_offset_s"].as_i64().unwrap() > 0,
        "the 403's clock runs ahead"
    );
}

#[test]
fn damaged_pages_over_tcp_with_echo_are_continued_exactly() {
    // Reply 4 is the second page, reply 6 the fourth request's answer.
    let sim = spawn_sim(
        "tcp",
        "multical-603",
        &["--echo", "--faults", "truncate@4,corrupt@6"],
    );
    let out = kamstrup(&[
        "log",
        "--port",
        &sim.port,
        "--logger",
        "hour",
        "--last",
        "24",
        "--format",
        "json",
        "--registers",
        "heat_energy,volume,t1,t2",
        "--zone",
        "+01:00",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    check_against_model(&json(&out), KmpModel::Multical603, 24);
}

#[test]
fn table_and_csv_show_meter_time_and_utc() {
    let sim = spawn_sim("pty", "multical-303", &[]);
    let out = kamstrup(&["log", "--port", &sim.port, "--logger", "day", "--last", "3"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("day logger of the meter on"), "{text}");
    assert!(
        text.contains("meter time (standard)") && text.contains("UTC"),
        "{text}"
    );
    assert_eq!(
        text.lines().filter(|l| l.contains(" 00:00:04 ")).count(),
        3,
        "{text}"
    );
    let out = kamstrup(&[
        "log", "--port", &sim.port, "--logger", "month", "--last", "2", "--format", "csv",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("record_id,meter_time,dst_offset_min,utc,id,name,value,unit")
    );
    assert!(lines.any(|l| l.contains(",60,heat_energy,")), "{text}");
}

#[test]
fn a_402_has_no_loggers_and_no_logger_module() {
    let sim = spawn_sim("pty", "multical-402", &[]);
    let out = kamstrup(&[
        "log",
        "--port",
        &sim.port,
        "--logger",
        "hour",
        "--format",
        "json",
        "--timeout",
        "500ms",
    ]);
    assert_eq!(out.status.code(), Some(4));
    let doc = json(&out);
    assert_eq!(doc["error"]["kind"], "no-loggers", "{doc}");
    let out = kamstrup(&[
        "log",
        "--port",
        &sim.port,
        "--logger",
        "hour",
        "--address",
        "0x7F",
        "--timeout",
        "500ms",
    ]);
    // A0–A3 at 0x7F: silence, while the meter answers at 0x3F: no logger module.
    assert_eq!(out.status.code(), Some(4));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no logger module answers at address 0x7F"),
        "{stderr}"
    );
}

#[test]
fn scan_lists_the_loggers() {
    let sim = spawn_sim("pty", "multical-603", &[]);
    let out = kamstrup(&["scan", "--port", &sim.port, "--format", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = json(&out);
    let loggers: Vec<(String, u64)> = doc["loggers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["logger"].as_str().unwrap().to_string(),
                l["depth"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        loggers,
        [
            ("hour".into(), 1392),
            ("day".into(), 460),
            ("month".into(), 36),
            ("year".into(), 20)
        ]
    );
}

#[test]
fn decode_shows_logger_frames() {
    // The synthetic hourly reply of the vectors file (DST +60, stuffed bytes).
    let out = kamstrup(&[
        "decode",
        "403FB81BF90500020300001BF21BBF00001BF2410000015C4F07003C18070F0A0005003C0804430005C4A600442804420001E21BF93C18070F0900050005C4A00001E1FE397B0D",
        "--format",
        "json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = json(&out);
    let logger = &doc[0]["logger"];
    assert_eq!(logger["logger"], "hour");
    assert_eq!(logger["first_id"], 3392);
    let rec = &logger["records"][1];
    assert_eq!(rec["id"], 3391);
    assert_eq!(rec["meter_time"], "2024-07-15 09:00:05");
    assert_eq!(rec["dst_offset_min"], 60);
    assert_eq!(rec["registers"][1]["value"], "378.016");
    assert_eq!(rec["registers"][1]["unit"], "GJ");
    let out = kamstrup(&["decode", "807FA20102003C0044031B7F10F352130D"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("GetLogIDPresent") && text.contains("0x10F3"),
        "{text}"
    );
}

/// `--since` with `--until`: only the records of the range, read from near its end — a range a
/// month back costs a few requests, where `--since` alone pages through every newer record.
#[test]
fn a_range_is_read_from_near_its_end_only() {
    let sim = spawn_sim("pty", "multical-403", &[]);
    let hour = chrono::Utc::now().timestamp().div_euclid(3600) * 3600;
    let at = |h: i64| {
        chrono::DateTime::from_timestamp(hour + h * 3600, 0)
            .unwrap()
            .format("%Y-%m-%d %H:%M")
            .to_string()
    };
    let (since, until) = (at(-30 * 24), at(-30 * 24 + 5));
    let read = |extra: &[&str]| {
        let out = kamstrup(
            &[
                &[
                    "log", "--port", &sim.port, "--logger", "hour", "--zone", "+01:00",
                ][..],
                &["--format", "json", "--since", &since],
                extra,
            ]
            .concat(),
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        json(&out)
    };
    let range = read(&["--until", &until]);
    let all = read(&[]);
    let records = range["records"].as_array().unwrap();
    // Stamped seconds after each hour: the hours since..until, the record at `until` not yet.
    assert_eq!(records.len(), 5, "{range}");
    let stamp = |r: &Value| r["utc"].as_str().unwrap().to_string();
    let (lo, hi) = (since.replace(' ', "T"), until.replace(' ', "T"));
    for r in records {
        assert!(
            stamp(r) >= lo && stamp(r) <= hi,
            "{r} outside {since} – {until}"
        );
    }
    // The same records as the open-ended read holds for the range, value for value.
    let first = all["records"].as_array().unwrap();
    assert_eq!(
        records[..],
        first[..5],
        "the range read and the --since read"
    );
    let requests = |d: &Value| d["requests"].as_u64().unwrap();
    assert!(
        requests(&range) * 10 < requests(&all),
        "range: {} requests, since: {} requests",
        requests(&range),
        requests(&all)
    );

    // Mistakes: a range that ends before it starts, --until alone.
    let out = kamstrup(&[
        "log", "--port", &sim.port, "--logger", "hour", "--since", &until, "--until", &since,
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is before --since"), "{err}");
    let out = kamstrup(&[
        "log", "--port", &sim.port, "--logger", "hour", "--until", &until,
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--since"), "{err}");
}

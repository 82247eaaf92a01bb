//! End-to-end for the MULTICAL 66C: the real `kamstrup` binary reads `kamstrup simulate --model
//! multical-66c` over a real pseudo-terminal (where the simulator sees the client's baud switch)
//! and over TCP; late-baud faults, auto-detection, scan, and decode of every vectors-file row.

use super::harness::*;
use std::process::Output;

use kamstrup_decimal::Decimal;
use serde_json::Value;

/// The vectors file, copied into the repository from the shared research folder (its `source`
/// column names where each row came from); compiled in, so no test reads outside the checkout.
const TSV: &str = include_str!("../../../../testdata/vectors/mc66c.tsv");

/// `kamstrup simulate --model multical-66c` over `transport` with `extra` arguments.
fn spawn_sim(transport: &str, extra: &[&str]) -> Sim {
    let sim = Sim::on(transport, &[&["--model", "multical-66c"], extra].concat());
    assert!(
        sim.announce.contains("simulated multical-66c"),
        "announce: {}",
        sim.announce
    );
    sim
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            stderr(out)
        )
    })
}

fn register<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["registers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no register {name} in {doc}"))
}

fn decimal(v: &Value) -> Decimal {
    v.as_str().expect("value is a string").parse().unwrap()
}

/// All ten `/#1` fields, the JSON contract, the units and decimals of the program's energy unit.
fn check_ten_fields(doc: &Value, energy_unit: &str, energy_decimals: i16) {
    assert_eq!(doc["meter"]["protocol"], "mc66c", "{doc}");
    let regs = doc["registers"].as_array().unwrap();
    let names: Vec<&str> = regs.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "heat_energy",
            "volume",
            "hours",
            "t1",
            "t2",
            "t1_t2",
            "power",
            "flow",
            "peak_power",
            "info"
        ]
    );
    let units: Vec<&str> = regs.iter().map(|r| r["unit"].as_str().unwrap()).collect();
    assert_eq!(
        units,
        [
            energy_unit,
            "m³",
            "h",
            "°C",
            "°C",
            "K",
            "kW",
            "l/h",
            "kW",
            ""
        ]
    );
    for r in regs {
        assert!(r["value"].is_string(), "exact decimal string: {r}");
    }
    assert_eq!(
        decimal(&register(doc, "heat_energy")["value"]).exponent(),
        -energy_decimals
    );
    assert_eq!(decimal(&register(doc, "volume")["value"]).exponent(), -2);
    assert_eq!(decimal(&register(doc, "power")["value"]).exponent(), -1);
    let t1 = decimal(&register(doc, "t1")["value"]);
    let t2 = decimal(&register(doc, "t2")["value"]);
    let dt = decimal(&register(doc, "t1_t2")["value"]);
    assert_eq!(dt, t1.checked_sub(&t2).unwrap());
}

#[test]
fn reads_every_field_over_a_real_pty_with_the_baud_switch_seen_by_the_meter() {
    let sim = spawn_sim(
        "pty",
        &["--program", "4-2-119", "--pace", "--latency-ms", "300"],
    );
    let out = kamstrup(&[
        "read",
        "--port",
        &sim.port,
        "--protocol",
        "mc66c",
        "--format",
        "json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let doc = json(&out);
    check_ten_fields(&doc, "GJ", 2);
    assert_eq!(
        doc["meter"]["serial"], 5_310_017,
        "customer number from /#2"
    );
    // The simulator read the client's termios on the pty: at 1200 Bd when each reply started.
    let log = sim.log();
    assert_eq!(log.matches("client_baud=1200").count(), 2, "{log}");
    assert!(!log.contains("still at"), "{log}");
}

#[test]
fn reads_over_tcp_like_ser2net_with_mwh() {
    let sim = spawn_sim("tcp", &["--program", "4-4-119", "--latency-ms", "200"]);
    let out = kamstrup(&[
        "read",
        "--port",
        &sim.port,
        "--protocol",
        "mc66c",
        "--format",
        "json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let doc = json(&out);
    check_ten_fields(&doc, "MWh", 3);
    assert!(doc["meter"]["meter_type"]
        .as_str()
        .unwrap()
        .contains("program 4-4-119 (read with /#2)"));
}

#[test]
fn a_given_program_skips_reading_it() {
    let sim = spawn_sim("pty", &["--program", "4-4-119", "--latency-ms", "200"]);
    let out = kamstrup(&[
        "-v",
        "read",
        "--port",
        &sim.port,
        "--protocol",
        "mc66c",
        "--program",
        "4-4-119",
        "--no-serial",
        "--format",
        "json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let doc = json(&out);
    check_ten_fields(&doc, "MWh", 3);
    assert!(doc["meter"]["serial"].is_null());
    assert!(stderr(&out).contains("requests=1"), "{}", stderr(&out));
    // A subset by name, including the 66C-only peak_power.
    let out = kamstrup(&[
        "read",
        "--port",
        &sim.port,
        "--protocol",
        "mc66c",
        "--program",
        "4-4-119",
        "--no-serial",
        "--format",
        "json",
        "peak_power",
        "E1",
        "flow",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let names: Vec<String> = json(&out)["registers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["peak_power", "heat_energy", "flow"]);
}

#[test]
fn a_known_program_costs_one_ir_session_and_identify_adds_one() {
    let sim = spawn_sim("pty", &["--program", "4-2-119", "--latency-ms", "150"]);
    let read = |extra: &[&str]| {
        let mut args = vec![
            "read",
            "--port",
            &sim.port,
            "--protocol",
            "mc66c",
            "--format",
            "json",
        ];
        args.extend_from_slice(extra);
        let out = kamstrup(&args);
        assert!(out.status.success(), "{}", stderr(&out));
        json(&out)
    };
    // Known program, nothing else asked: /#1 only, as the meter saw it.
    let doc = read(&["--program", "4-2-119"]);
    check_ten_fields(&doc, "GJ", 2);
    assert!(doc["meter"]["serial"].is_null(), "{doc}");
    assert_eq!(sim.requests(), ["/#1"], "{}", sim.log());
    // --identify: /#2 once more, for the customer number.
    let doc = read(&["--program", "4-2-119", "--identify"]);
    assert_eq!(doc["meter"]["serial"], 5_310_017);
    assert_eq!(sim.requests(), ["/#1", "/#1", "/#2"]);
    // Unknown program: /#2 is needed for the decimals, and then the customer number is known.
    let doc = read(&[]);
    assert_eq!(doc["meter"]["serial"], 5_310_017);
    assert_eq!(sim.requests(), ["/#1", "/#1", "/#2", "/#1", "/#2"]);
    // --identify and --no-serial contradict each other.
    let out = kamstrup(&["read", "--port", &sim.port, "--identify", "--no-serial"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn late_baud_corruption_is_rejected_and_the_retry_succeeds() {
    let sim = spawn_sim(
        "pty",
        &[
            "--faults",
            "late-baud@1",
            "--latency-ms",
            "200",
            "--no-pace",
        ],
    );
    let out = kamstrup(&[
        "read",
        "--port",
        &sim.port,
        "--protocol",
        "mc66c",
        "--retry-interval",
        "300ms",
        "--format",
        "json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    check_ten_fields(&json(&out), "GJ", 2);
    let log = stderr(&out);
    assert!(log.contains("retrying"), "{log}");
    assert!(
        log.contains("1200 Bd too late"),
        "the rejection says why: {log}"
    );
}

#[test]
fn persistent_late_baud_fails_with_the_parser_kind() {
    let sim = spawn_sim(
        "tcp",
        &["--faults", "late-baud", "--latency-ms", "150", "--no-pace"],
    );
    let out = kamstrup(&[
        "read",
        "--port",
        &sim.port,
        "--protocol",
        "mc66c",
        "--program",
        "4-2-119",
        "--retries",
        "1",
        "--retry-interval",
        "200ms",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let doc = json(&out);
    let kind = doc["error"]["kind"].as_str().unwrap();
    assert!(
        ["field-format", "fields", "garbage-prefix"].contains(&kind),
        "{doc}"
    );
    let message = doc["error"]["message"].as_str().unwrap();
    assert!(message.contains("(2 attempts)"), "{message}");
    assert!(message.contains("1200 Bd too late"), "{message}");
}

#[test]
fn auto_detection_reports_what_it_found() {
    let out = kamstrup(&[
        "read",
        "--protocol",
        "auto",
        "--port",
        "sim:multical-403",
        "--format",
        "json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json(&out)["meter"]["protocol"], "kmp");
    assert!(stderr(&out).contains("found a KMP meter, serial 71234567"));

    let out = kamstrup(&[
        "read",
        "--protocol",
        "auto",
        "--timeout",
        "300ms",
        "--port",
        "sim:multical-66c",
        "--format",
        "json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    check_ten_fields(&json(&out), "GJ", 2);
    assert!(
        stderr(&out).contains("found a MULTICAL 66C (/#1)"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_sim_port_defaults_to_its_models_protocol() {
    let out = kamstrup(&["read", "--port", "sim:multical-66c:4-4-119"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("customer no. 5310017"), "{text}");
    assert!(text.contains("MULTICAL 66C, program 4-4-119"), "{text}");
    for (name, unit) in [
        ("heat_energy (E1)", "MWh"),
        ("volume (V1)", "m³"),
        ("hours (HourCounter)", "h"),
        ("t1 (T1)", "°C"),
        ("t2 (T2)", "°C"),
        ("t1_t2 (T1-T2)", "K"),
        ("power (Power1)", "kW"),
        ("flow (Flow1)", "l/h"),
        ("peak_power (P.pwr)", "kW"),
        ("info (InfoCode)", ""),
    ] {
        let line = text
            .lines()
            .find(|l| l.contains(name))
            .unwrap_or_else(|| panic!("{name} missing: {text}"));
        assert!(line.trim_end().ends_with(unit), "{line}");
    }
}

#[test]
fn unknown_flow_meter_code_warns_loudly() {
    let sim = spawn_sim("pty", &["--program", "4-3-999", "--latency-ms", "150"]);
    let out = kamstrup(&[
        "read",
        "--port",
        &sim.port,
        "--protocol",
        "mc66c",
        "--format",
        "json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let log = stderr(&out);
    assert!(log.contains("WARN") && log.contains("CCC 999"), "{log}");
    assert!(log.contains("CCC-119 family"), "{log}");
    let doc = json(&out);
    assert_eq!(register(&doc, "heat_energy")["unit"], "kWh");
}

#[test]
fn scan_lists_every_data_set() {
    let sim = spawn_sim("pty", &["--latency-ms", "150", "--no-pace"]);
    let out = kamstrup(&[
        "scan",
        "--port",
        &sim.port,
        "--protocol",
        "mc66c",
        "--line-idle",
        "300ms",
        "--format",
        "json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let doc = json(&out);
    let sets = doc["data_sets"].as_array().unwrap();
    let requests: Vec<&str> = sets
        .iter()
        .map(|d| d["request"].as_str().unwrap())
        .collect();
    assert_eq!(
        requests,
        [
            "/#1", "/#2", "/#3", "/#4", "/#5", "/#6", "/#7", "/#8", "/#9", "/#B", "/#C", "/#D",
            "/#J", "/?!"
        ]
    );
    for d in sets {
        assert_eq!(d["status"], "ok", "{d}");
        assert!(d["raw"].is_string(), "{d}");
    }
    assert_eq!(doc["answered"], 14);
    assert_eq!(doc["customer_no"], 5_310_017);
    assert!(doc["meter_type"].as_str().unwrap().contains("4-2-119"));
    assert_eq!(sets[0]["registers"].as_array().unwrap().len(), 10);
    let field = |set: usize, name: &str| {
        sets[set]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {}", sets[set]))
            .clone()
    };
    assert_eq!(field(1, "abccc")["text"], "program 4-2-119");
    assert_eq!(field(2, "energy")["unit"], "GJ");
    assert_eq!(field(13, "ident")["text"], "KAM MC");
    assert_eq!(field(13, "energy")["unit"], "GJ");
    // A raw logger token keeps its TD name.
    assert!(field(5, "t3_avg[1]")["value"].is_string());
    // Every data set scaled with units: /#4 energy, /#B masses, logger temperatures and dates.
    assert_eq!(field(3, "energy")["unit"], "GJ");
    assert_eq!(field(3, "volume1")["unit"], "m³");
    assert_eq!(field(9, "mass1")["unit"], "t");
    assert_eq!(field(5, "t1_avg[1]")["unit"], "°C");
    assert_eq!(field(5, "energy[1]")["unit"], "GJ");
    assert_eq!(field(6, "mass1[1]")["unit"], "t");
    assert_eq!(field(7, "peak_power_eff[1]")["unit"], "kW");
    assert_eq!(field(8, "peak_date[1]")["text"].as_str().unwrap().len(), 10);
    let t1 = decimal(&field(5, "t1_avg[1]")["value"]);
    assert!(
        t1.cmp_value(&"40".parse().unwrap()).is_gt()
            && t1.cmp_value(&"90".parse().unwrap()).is_lt(),
        "{t1}"
    );
    // Yesterday's record is dated yesterday (the simulated meter's clock runs on UTC).
    let yesterday = (chrono::Utc::now() - chrono::Duration::days(1))
        .format("%Y-%m-%d")
        .to_string();
    assert_eq!(field(5, "date[1]")["text"], yesterday.as_str());
}

#[test]
fn decode_scales_every_data_set_with_units() {
    // The issue's examples: /#4 printed "energy 507109", /#6 temperatures "6759".
    let out = kamstrup(&[
        "decode",
        "--protocol",
        "mc66c",
        "--request",
        "/#4",
        "--program",
        "4-4-119",
        "0507109 0640641 0000000 1296626 0000000 0000490 0000000 0000000 0000000  \\r",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let line = |name: &str| {
        text.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("{name} in {text}"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(line("energy"), "energy 507.109 MWh", "{text}");
    assert_eq!(line("volume1"), "volume1 12966.26 m³", "{text}");
    assert_eq!(line("qsum1"), "qsum1 640641", "{text}");
    let out = kamstrup(&[
        "decode",
        "--protocol",
        "mc66c",
        "--request",
        "/#6",
        "--program",
        "4-4-119",
        "--format",
        "json",
        "0171027 00072 00188 00000 00000 00000 00000 00000 06759 21923 03473 0000000 \\r",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let doc = json(&out);
    let field = |name: &str| {
        doc["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {doc}"))
            .clone()
    };
    assert_eq!(field("date[1]")["text"], "2017-10-27");
    assert_eq!(field("energy[1]")["value"], "0.072");
    assert_eq!(field("energy[1]")["unit"], "MWh");
    assert_eq!(field("mass1[1]")["value"], "1.88");
    assert_eq!(field("mass1[1]")["unit"], "t");
    assert_eq!(field("t1_avg[1]")["value"], "67.59");
    assert_eq!(field("t1_avg[1]")["unit"], "°C");
    assert_eq!(field("t3_avg[1]")["value"], "219.23");
    assert_eq!(field("t2_avg[1]")["value"], "34.73");
}

fn program_for(source: &str) -> Option<&'static str> {
    source.contains("ABCCC 44119").then_some("4-4-119")
}

fn request_for(column: &str) -> String {
    if column.contains("/?!") {
        return "/?!".to_string();
    }
    let at = column.find("/#").unwrap();
    column[at..at + 3].to_string()
}

/// `name=value unit` pairs of the expected column, values that are decimals only.
fn expected_pairs(column: &str) -> Vec<(String, Decimal, Option<String>)> {
    let known_units = ["MWh", "GJ", "kWh", "m3", "h", "C", "K", "kW", "l/h"];
    column
        .split("; ")
        .filter_map(|pair| {
            let (key, rest) = pair.split_once('=')?;
            let mut words = rest.split(' ');
            let value: Decimal = words.next()?.parse().ok()?;
            let unit = words
                .next()
                .filter(|u| known_units.contains(u))
                .map(|u| match u {
                    "m3" => "m³".to_string(),
                    "C" => "°C".to_string(),
                    other => other.to_string(),
                });
            Some((key.to_lowercase(), value, unit))
        })
        .collect()
}

#[test]
fn decodes_every_vector_row_through_the_cli() {
    let tsv = TSV;
    let mut checked_values = 0;
    let mut rows = 0;
    for line in tsv.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let cols: Vec<&str> = line.split('\t').collect();
        let [source, request, raw, expected] = cols[..] else {
            panic!("bad row {line}");
        };
        rows += 1;
        let request = request_for(request);
        let mut args = vec![
            "decode",
            "--protocol",
            "mc66c",
            "--request",
            &request,
            "--format",
            "json",
        ];
        if let Some(p) = program_for(source) {
            args.extend(["--program", p]);
        }
        args.extend(["--", raw]);
        let out = kamstrup(&args);
        if expected.starts_with("status=REJECT") {
            assert_eq!(out.status.code(), Some(1), "{source}: {}", stderr(&out));
            let doc = json(&out);
            assert!(
                doc["error"]["kind"].as_str().is_some_and(|k| !k.is_empty()),
                "{doc}"
            );
            continue;
        }
        assert!(expected.starts_with("status=OK"), "{expected}");
        assert!(out.status.success(), "{source}: {}", stderr(&out));
        let doc = json(&out);
        assert_eq!(doc["protocol"], "mc66c");
        let items: Vec<Value> = doc["registers"]
            .as_array()
            .or(doc["fields"].as_array())
            .unwrap()
            .clone();
        for (key, value, unit) in expected_pairs(expected) {
            let name = match (request.as_str(), key.as_str()) {
                ("/#1", "energy") => "heat_energy",
                ("/#1", "dt") => "t1_t2",
                (_, k) => k,
            };
            let Some(item) = items.iter().find(|i| i["name"] == name) else {
                continue;
            };
            assert_eq!(decimal(&item["value"]), value, "{source} {name}: {item}");
            if let Some(unit) = unit {
                assert_eq!(item["unit"], unit.as_str(), "{source} {name}");
            }
            checked_values += 1;
        }
    }
    assert_eq!(rows, 10, "every row of the vectors file");
    assert!(checked_values > 40, "{checked_values}");
}

#[test]
fn decode_explains_bad_input() {
    // A bad escape is a usage error, named.
    let out = kamstrup(&["decode", "--protocol", "mc66c", "--format", "json", "\\q"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(json(&out)["error"]["kind"], "escape");
    // An unknown request.
    let out = kamstrup(&[
        "decode",
        "--protocol",
        "mc66c",
        "--request",
        "/#Z",
        "0000000 \\r",
    ]);
    assert_eq!(out.status.code(), Some(2));
    // A reply that stops before its CR.
    let out = kamstrup(&[
        "decode",
        "--protocol",
        "mc66c",
        "--format",
        "json",
        "0507109 1296626",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json(&out)["error"]["kind"], "truncated");
    // 66C options do not belong to KMP decoding.
    let out = kamstrup(&["decode", "--program", "4-4-119", "403F0201234567E9560D"]);
    assert_eq!(out.status.code(), Some(2));
}

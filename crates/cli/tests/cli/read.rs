//! End-to-end: the real `kamstrup` binary reads from `kamstrup simulate` over a real
//! pseudo-terminal and over real TCP, with echo and injected faults; plus decode and errors.

use super::harness::*;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn register<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["registers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no register {name} in {doc}"))
}

fn decimal(v: &Value) -> kamstrup_decimal::Decimal {
    v.as_str().expect("value is a string").parse().unwrap()
}

/// The standard set, checked for the JSON contract and for physical consistency.
fn check_standard_reading(doc: &Value, energy_unit: &str) {
    let regs = doc["registers"].as_array().unwrap();
    let ids: Vec<u64> = regs.iter().map(|r| r["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, vec![60, 68, 86, 87, 80, 74, 1004, 99, 89], "{doc}");
    for r in regs {
        assert!(
            r["value"].is_string(),
            "value must be an exact decimal string: {r}"
        );
        assert!(r["name"].is_string() && r["unit"].is_string());
    }
    assert_eq!(register(doc, "heat_energy")["unit"], energy_unit);
    assert_eq!(register(doc, "volume")["unit"], "m³");
    assert_eq!(register(doc, "t1")["unit"], "°C");
    assert_eq!(register(doc, "flow")["unit"], "l/h");
    let t1 = decimal(&register(doc, "t1")["value"]);
    let t2 = decimal(&register(doc, "t2")["value"]);
    let dt = &regs[8];
    assert_eq!(dt["derived"], true);
    assert_eq!(dt["unit"], "K");
    assert_eq!(decimal(&dt["value"]), t1.checked_sub(&t2).unwrap());
    assert!(t1.cmp_value(&t2).is_gt());
}

#[test]
fn reads_standard_set_over_a_real_pty() {
    let sim = Sim::on("pty", &[]);
    let out = kamstrup(&["read", "--port", &sim.port, "--format", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = json(&out);
    assert_eq!(doc["meter"]["serial"], 71_234_567);
    check_standard_reading(&doc, "GJ");
}

#[test]
fn reads_over_tcp_like_ser2net() {
    let sim = Sim::on("tcp", &["--model", "multical-602"]);
    let out = kamstrup(&["read", "--port", &sim.port, "--format", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = json(&out);
    check_standard_reading(&doc, "MWh");
    // MWh with 3 decimals, exactly as the meter sends it.
    let energy = register(&doc, "heat_energy")["value"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(energy.split('.').nth(1).map(str::len), Some(3), "{energy}");
    // A second client after the first has gone is served too.
    let again = kamstrup(&["read", "--port", &sim.port, "--no-serial", "t1"]);
    assert!(again.status.success());
}

#[test]
fn skips_the_echo_of_an_ir_head() {
    for transport in ["pty", "tcp"] {
        let sim = Sim::on(transport, &["--echo"]);
        let out = kamstrup(&["read", "--port", &sim.port, "--format", "json"]);
        assert!(
            out.status.success(),
            "{transport}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        check_standard_reading(&json(&out), "GJ");
    }
}

#[test]
fn retries_once_after_a_lost_or_corrupt_reply() {
    for fault in ["drop@1", "corrupt@2", "truncate@1"] {
        let sim = Sim::on("pty", &["--faults", fault, "--echo"]);
        let out = kamstrup(&[
            "read",
            "--port",
            &sim.port,
            "--timeout",
            "400ms",
            "--format",
            "json",
        ]);
        assert!(
            out.status.success(),
            "{fault}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        check_standard_reading(&json(&out), "GJ");
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(
            log.contains("retrying"),
            "{fault}: the retry is logged: {log}"
        );
    }
}

#[test]
fn persistent_faults_fail_with_a_typed_error() {
    let cases = [
        ("corrupt", "crc"),
        ("truncate", "truncated"),
        ("drop", "timeout"),
    ];
    for (fault, kind) in cases {
        let sim = Sim::on("tcp", &["--faults", fault]);
        let out = kamstrup(&[
            "read",
            "--port",
            &sim.port,
            "--timeout",
            "300ms",
            "--format",
            "json",
        ]);
        assert_eq!(out.status.code(), Some(1), "{fault}");
        let doc = json(&out);
        assert_eq!(doc["error"]["kind"], kind, "{fault}: {doc}");
        assert!(doc["error"]["message"].as_str().unwrap().len() > 20);
    }
}

#[test]
fn no_reply_explains_what_to_check() {
    let sim = Sim::on("pty", &["--faults", "drop"]);
    let out = kamstrup(&["read", "--port", &sim.port, "--timeout", "300ms"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no reply from the meter"), "{err}");
    assert!(err.contains("button"), "{err}");
}

#[test]
fn echo_only_is_told_apart_from_silence() {
    let sim = Sim::on("pty", &["--faults", "drop", "--echo"]);
    let out = kamstrup(&[
        "read",
        "--port",
        &sim.port,
        "--timeout",
        "300ms",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json(&out)["error"]["kind"], "echo-only");
}

#[test]
fn partial_read_exits_3_and_lists_missing() {
    let out = kamstrup(&[
        "read",
        "--port",
        "sim:multical-403",
        "heat_energy",
        "4242",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(3));
    let doc = json(&out);
    assert_eq!(doc["missing"], serde_json::json!([4242]));
    assert_eq!(doc["registers"][0]["name"], "heat_energy");
}

#[test]
fn more_than_eight_registers_are_split() {
    let out = kamstrup(&[
        "read",
        "--port",
        "sim:multical-602",
        "-vv",
        "--trace-frames",
        "--no-serial",
        "60",
        "68",
        "86",
        "87",
        "80",
        "74",
        "1004",
        "99",
        "1001",
        "1002",
        "1003",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = String::from_utf8_lossy(&out.stderr);
    // Two GetRegister requests: 8 ids, then 3. Frames are logged in hex.
    assert!(log.contains("80 3F 10 08"), "{log}");
    assert!(log.contains("80 3F 10 03"), "{log}");
}

#[test]
fn csv_and_table_formats() {
    let csv = kamstrup(&["read", "--port", "sim:multical-402", "--format", "csv"]);
    assert!(csv.status.success());
    let text = String::from_utf8_lossy(&csv.stdout);
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("taken_at,serial,id,name,value,unit,derived")
    );
    assert_eq!(lines.count(), 9);
    let table = kamstrup(&["read", "--port", "sim:multical-402"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("heat_energy") && text.contains("kWh"),
        "{text}"
    );
}

#[test]
fn bad_input_gets_clear_errors() {
    let out = kamstrup(&["read", "--port", "sim:multical-403", "no_such_register"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown register"));

    let out = kamstrup(&[
        "read",
        "--port",
        "/dev/does-not-exist-kamstrup",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json(&out)["error"]["kind"], "not-found");

    let out = kamstrup(&["read", "--port", "sim:multical-999"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("multical-403"));

    let out = kamstrup(&["read", "--port", "tcp://127.0.0.1"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn scan_lists_what_the_meter_answers() {
    let out = kamstrup(&["scan", "--port", "sim:multical-602", "--format", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = json(&out);
    assert_eq!(doc["serial"], 5_512_345);
    let regs = doc["registers"].as_array().unwrap();
    assert!(regs.len() > 20, "{}", regs.len());
    // A 602 has T3 (88); a 403-only register such as E1HighRes (266) is absent.
    assert!(regs.iter().any(|r| r["id"] == 88));
    assert!(!regs.iter().any(|r| r["id"] == 266));
    let requests = doc["requests"].as_u64().unwrap();
    let catalogued = kamstrup_kmp::registers::CATALOGUE.len() as u64;
    // GetType, GetSerialNo, the batches, then the logger probe: B8 (a 602 is silent to it) and
    // GetSerialNo to tell "no loggers" from "no meter"; then one A2 to each logger-module
    // address (0x7F, 0xBF), both silent.
    assert_eq!(requests, 2 + catalogued.div_ceil(8) + 2 + 2);
    assert_eq!(doc["loggers"].as_array().map(Vec::len), Some(0));
    assert_eq!(doc["logger_modules"].as_array().map(Vec::len), Some(0));
}

#[test]
fn decode_explains_frames_and_errors() {
    let out = kamstrup(&[
        "decode",
        "403F1000592604C2000000396BBC0D",
        "--format",
        "json",
    ]);
    assert!(out.status.success());
    let doc = json(&out);
    assert_eq!(doc[0]["frame"], "response");
    assert_eq!(doc[0]["registers"][0]["value"], "-0.57");
    assert_eq!(doc[0]["registers"][0]["unit"], "K");

    // An echoed request followed by the reply.
    let out = kamstrup(&[
        "decode",
        "80 3F 02 35 E9 0D",
        "40 3F 02 01 23 45 67 E9 56 0D",
        "--format",
        "json",
    ]);
    assert!(out.status.success());
    let doc = json(&out);
    assert_eq!(doc[0]["frame"], "request");
    assert_eq!(doc[1]["serial"], 19_088_743);

    let out = kamstrup(&["decode", "403F0201234567E9570D", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json(&out)["error"]["kind"], "crc");

    let out = kamstrup(&["decode", "401B120D", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json(&out)["error"]["kind"], "stuffing");

    let out = kamstrup(&["decode", "403F02012345", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json(&out)["error"]["kind"], "truncated");

    let out = kamstrup(&["decode", "40zz"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn simulator_removes_its_symlink_on_sigterm() {
    let sim = Sim::on("pty", &[]);
    let link = PathBuf::from(&sim.port);
    assert!(link.exists());
    let pid = sim.pid().to_string();
    let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(status.success());
    for _ in 0..100 {
        if !Path::new(&link).exists() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("symlink {} still there after SIGTERM", link.display());
}

#[test]
fn help_teaches_with_examples() {
    for sub in ["read", "scan", "decode", "simulate"] {
        let out = kamstrup(&[sub, "--help"]);
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Examples:"), "{sub} --help has examples");
    }
}

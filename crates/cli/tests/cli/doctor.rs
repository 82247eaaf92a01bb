//! End-to-end: `kamstrup doctor` against `kamstrup simulate` over a real pseudo-terminal and over
//! real TCP; every fault the simulator can inject gives its own verdict; `--watch` stops by itself.

use super::harness::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn doctor(port: &str, extra: &[&str]) -> (Output, Value) {
    let out = Command::new(BIN)
        .args([
            "doctor",
            "--port",
            port,
            "--format",
            "json",
            "--timeout",
            "600ms",
        ])
        .args(extra)
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out, doc)
}

fn step<'a>(doc: &'a Value, starts: &str) -> &'a Value {
    doc["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["question"].as_str().unwrap().starts_with(starts))
        .unwrap_or_else(|| panic!("no step {starts:?} in {doc}"))
}

fn assert_verdict(transport: &str, sim_args: &[&str], doctor_args: &[&str], kind: &str) -> Value {
    let sim = Sim::on(transport, sim_args);
    let (out, doc) = doctor(&sim.port, doctor_args);
    assert_eq!(
        doc["verdict"]["kind"], kind,
        "{transport} sim {sim_args:?} doctor {doctor_args:?}: {doc:#}"
    );
    let ok = doc["verdict"]["ok"].as_bool().unwrap();
    assert_eq!(out.status.code(), Some(if ok { 0 } else { 1 }), "{doc}");
    if !ok {
        assert!(
            !doc["verdict"]["fix"].as_array().unwrap().is_empty(),
            "{doc}"
        );
        assert!(!doc["verdict"]["cause"].as_str().unwrap().is_empty());
    }
    doc
}

#[test]
fn every_kmp_fault_has_its_own_verdict_on_a_pty() {
    let doc = assert_verdict("pty", &[], &[], "ok");
    assert_eq!(doc["found"]["protocol"], "kmp");
    assert_eq!(doc["found"]["line"], "1200 8N2");
    assert!(doc["found"]["serial"].as_u64().unwrap() > 0);
    assert_eq!(step(&doc, "is it ours alone")["answer"], "yes");
    assert_eq!(step(&doc, "CRC correct")["answer"], "yes");

    let doc = assert_verdict(
        "pty",
        &["--faults", "drop"],
        &["--protocol", "kmp"],
        "no-reply",
    );
    assert_eq!(step(&doc, "any byte")["answer"], "no");
    assert_eq!(
        step(&doc, "does our request come back")["answer"],
        "neutral"
    );

    let doc = assert_verdict(
        "pty",
        &["--echo", "--faults", "drop"],
        &["--protocol", "kmp"],
        "echo-only",
    );
    assert_eq!(step(&doc, "does our request come back")["answer"], "yes");
    assert_eq!(step(&doc, "any byte")["answer"], "no");

    let doc = assert_verdict("pty", &["--faults", "corrupt"], &[], "crc-errors");
    assert_eq!(step(&doc, "a whole frame")["answer"], "yes");
    assert_eq!(step(&doc, "CRC correct")["answer"], "no");

    let doc = assert_verdict("pty", &["--faults", "truncate"], &[], "truncated");
    assert_eq!(step(&doc, "any byte")["answer"], "yes");
    assert_eq!(step(&doc, "a whole frame")["answer"], "no");

    // Replies 1 and 3 lost, reply 2 answered: a head at the edge of the eye.
    assert_verdict(
        "pty",
        &["--faults", "drop@1,drop@3"],
        &["--attempts", "3"],
        "unstable",
    );
}

#[test]
fn kmp_faults_over_tcp_and_an_echoing_head() {
    let doc = assert_verdict("tcp", &["--echo"], &[], "ok");
    assert_eq!(step(&doc, "does our request come back")["answer"], "yes");
    assert_eq!(step(&doc, "is it ours alone")["answer"], "neutral");
    assert_verdict("tcp", &["--echo", "--faults", "corrupt"], &[], "crc-errors");
    assert_verdict(
        "tcp",
        &["--echo", "--faults", "drop"],
        &["--protocol", "kmp"],
        "echo-only",
    );
}

#[test]
fn mc66c_verdicts() {
    let sixty_six = ["--model", "multical-66c", "--latency-ms", "300"];
    // Auto finds a 66C after KMP silence and says which protocol to use.
    let doc = assert_verdict("pty", &sixty_six, &[], "ok");
    assert_eq!(doc["found"]["protocol"], "mc66c");
    assert!(doc["verdict"]["headline"]
        .as_str()
        .unwrap()
        .contains("--protocol mc66c"));
    // The field's corruption of a receiver that switches late.
    let late: Vec<&str> = sixty_six
        .iter()
        .copied()
        .chain(["--faults", "late-baud"])
        .collect();
    assert_verdict("pty", &late, &["--protocol", "mc66c"], "mc66c-late-baud");
    let truncated: Vec<&str> = sixty_six
        .iter()
        .copied()
        .chain(["--faults", "truncate"])
        .collect();
    assert_verdict(
        "tcp",
        &truncated,
        &["--protocol", "mc66c"],
        "mc66c-truncated",
    );
    let silent: Vec<&str> = sixty_six
        .iter()
        .copied()
        .chain(["--faults", "drop"])
        .collect();
    assert_verdict("tcp", &silent, &["--protocol", "mc66c"], "mc66c-no-reply");
    // KMP asked of a 66C: the doctor says it is a 66C.
    assert_verdict("tcp", &sixty_six, &["--protocol", "kmp"], "use-mc66c");
}

#[test]
fn a_missing_port_and_a_closed_bridge() {
    let (out, doc) = doctor("/dev/ttyUSB-kamstrup-none", &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(doc["verdict"]["kind"], "port-not-found");
    assert_eq!(step(&doc, "does the port open")["answer"], "no");
    assert_eq!(step(&doc, "a whole frame")["answer"], "skipped");
    // A port nobody listens on (bound, then closed).
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (_, doc) = doctor(&format!("tcp://{addr}"), &[]);
    assert_eq!(doc["verdict"]["kind"], "connect-failed");
    // Plain words on stdout without --format.
    let out = Command::new(BIN)
        .args(["doctor", "--port", "/dev/ttyUSB-kamstrup-none"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("verdict (port-not-found)"), "{text}");
    assert!(text.contains("what to do:"), "{text}");
}

#[test]
fn watch_shows_a_live_rate_and_stops_by_itself() {
    let sim = Sim::on("pty", &["--faults", "drop@2"]);
    let started = std::time::Instant::now();
    let out = Command::new(BIN)
        .args([
            "doctor",
            "--port",
            &sim.port,
            "--watch",
            "--watch-for",
            "2500ms",
            "--interval",
            "500ms",
            "--timeout",
            "300ms",
        ])
        .output()
        .unwrap();
    let took = started.elapsed();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(took < std::time::Duration::from_secs(8), "{took:?}");
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with('#')).collect();
    assert!(lines.len() >= 3, "{text}");
    assert!(lines[0].contains("answered 1/1 (100%)"), "{text}");
    assert!(
        lines[1].contains("no reply") && lines[1].contains("answered 1/2 (50%)"),
        "{text}"
    );
    assert!(lines[1].contains("last 10: #."), "{text}");
    let n = lines.len();
    assert!(
        text.contains(&format!("stopped: {} of {n} requests answered", n - 1)),
        "{text}"
    );
    // One request was lost: the verdict of the failure is shown, and the exit is non-zero.
    assert!(text.contains("verdict (no-reply)"), "{text}");
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn watch_a_66c_asks_at_most_every_five_seconds() {
    let sim = Sim::on(
        "tcp",
        &[
            "--model",
            "multical-66c",
            "--latency-ms",
            "300",
            "--faults",
            "late-baud@2",
        ],
    );
    let out = Command::new(BIN)
        .args([
            "doctor",
            "--port",
            &sim.port,
            "--protocol",
            "mc66c",
            "--watch",
            "--watch-for",
            "6s",
            "--interval",
            "1s",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("one /#1 every 5s"), "{text}");
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with('#')).collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].contains("ok") && lines[0].contains("answered 1/1"),
        "{text}"
    );
    assert!(
        lines[1].contains("mc66c-late-baud") && lines[1].contains("answered 1/2 (50%)"),
        "{text}"
    );
    assert!(text.contains("verdict (mc66c-late-baud)"), "{text}");
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn a_port_held_by_another_program_names_it() {
    let sim = Sim::on("pty", &[]);
    // Another reader holds the head (a watching doctor: it opens the port exclusively).
    let mut holder = Command::new(BIN)
        .args([
            "doctor",
            "--port",
            &sim.port,
            "--watch",
            "--watch-for",
            "20s",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(holder.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("watching"), "{first}");
    let (out, doc) = doctor(&sim.port, &[]);
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(doc["verdict"]["kind"], "busy", "{doc:#}");
    let headline = doc["verdict"]["headline"].as_str().unwrap();
    assert!(
        headline.contains(&format!("(pid {})", holder.id())),
        "{headline}"
    );
}

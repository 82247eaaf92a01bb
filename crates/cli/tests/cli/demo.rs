//! `kamstrup demo` end to end: the printed dashboard address answers, the API shows both
//! simulated meters read live on top of the seeded history (with no reading flagged
//! implausible at the seam), and SIGTERM stops everything promptly with exit code 0.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

const START_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// A running `kamstrup demo`, killed if the test fails half-way.
struct Demo {
    child: Child,
    lines: mpsc::Receiver<String>,
    printed: Vec<String>,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Demo {
    fn start(args: &[&str]) -> Demo {
        let mut child = Command::new(env!("CARGO_BIN_EXE_kamstrup"))
            .arg("demo")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Demo {
            child,
            lines,
            printed: Vec::new(),
        }
    }

    /// Waits for the printed dashboard address.
    fn address(&mut self) -> String {
        let deadline = Instant::now() + START_TIMEOUT;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            let Ok(line) = self.lines.recv_timeout(left) else {
                break;
            };
            self.printed.push(line.clone());
            if let Some(url) = line.strip_prefix("dashboard: ") {
                let addr = url
                    .strip_prefix("http://")
                    .and_then(|rest| rest.strip_suffix('/'))
                    .unwrap();
                assert!(
                    addr.starts_with("127.0.0.1:"),
                    "binds loopback only: {addr}"
                );
                return addr.to_string();
            }
        }
        panic!(
            "no dashboard address printed; stdout so far: {:?}",
            self.printed
        );
    }

    /// SIGTERM, then the exit code within the grace time.
    fn terminate(mut self) -> (i32, Duration, String) {
        let pid = self.child.id().to_string();
        let sent = Instant::now();
        let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(status.success());
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let mut stderr = String::new();
                if let Some(mut e) = self.child.stderr.take() {
                    let _ = e.read_to_string(&mut stderr);
                }
                return (status.code().unwrap_or(-1), sent.elapsed(), stderr);
            }
            assert!(
                sent.elapsed() < STOP_TIMEOUT,
                "demo still running {STOP_TIMEOUT:?} after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A plain HTTP/1.1 GET over a fresh connection: (status, body).
fn get(addr: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "{head}"
    );
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_string())
}

fn get_json(addr: &str, path: &str) -> Value {
    let (status, body) = get(addr, path);
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

#[test]
fn demo_serves_live_meters_over_seeded_history_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let dir_arg = dir.path().to_str().unwrap();
    let mut demo = Demo::start(&[
        "--dir",
        dir_arg,
        "--port",
        "0",
        "--weeks",
        "1",
        "--interval",
        "2s",
    ]);
    let addr = demo.address();

    let (status, page) = get(&addr, "/");
    assert_eq!(status, 200);
    assert!(page.contains("<title>Heat meters"), "{page}");
    let (status, script) = get(&addr, "/app.js");
    assert_eq!(status, 200);
    assert!(script.contains("drawBars"));

    // Both meters, read live (the demo prints its address after their first polls).
    let meters = get_json(&addr, "/api/meters");
    let list = meters["meters"].as_array().unwrap();
    let serials: Vec<&str> = list.iter().map(|m| m["serial"].as_str().unwrap()).collect();
    assert_eq!(serials, ["71234567", "5310017"]);
    for m in list {
        assert!(m["status"]["polls"].as_u64().unwrap() >= 1, "{m}");
        assert!(m["latest"]["values"].as_array().unwrap().len() >= 9, "{m}");
        assert_eq!(m["info"]["ok"], true, "{m}");
    }

    // A week of 15-minute history: energy per day has 7 or 8 buckets at once.
    let month_ago = (chrono::Utc::now() - chrono::Duration::days(30))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    for serial in serials {
        let days = get_json(
            &addr,
            &format!(
                "/api/meters/{serial}/readings?register=heat_energy&bucket=day&from={month_ago}"
            ),
        );
        let n = days["points"].as_array().unwrap().len();
        assert!((7..=9).contains(&n), "{serial}: {n} days");
        let raw = get_json(&addr, &format!("/api/meters/{serial}/readings?register=t1"));
        assert!(
            raw["points"].as_array().unwrap().len() >= 95,
            "{serial}: a day of raw values"
        );
    }

    // Let a few more polls happen, then check the seam: nothing implausible, and counters
    // never went backwards from the seeded history into the live readings.
    std::thread::sleep(Duration::from_secs(5));
    let status = get_json(&addr, "/api/status");
    for (name, m) in status["daemon"]["meters"].as_object().unwrap() {
        assert_eq!(m["implausible"], 0, "{name}: {m}");
        assert_eq!(m["failures"], 0, "{name}: {m}");
        assert!(m["polls"].as_u64().unwrap() >= 2, "{name}: {m}");
    }
    assert_eq!(status["sinks"][0]["name"], "file");

    let (status, metrics) = get(&addr, "/metrics");
    assert_eq!(status, 200);
    assert!(
        metrics.contains("kamstrup_heat_energy_joules_total{serial=\"71234567\""),
        "{metrics}"
    );
    assert!(metrics.ends_with("# EOF\n"));

    let (code, took, stderr) = demo.terminate();
    assert_eq!(code, 0, "exit code after SIGTERM; stderr:\n{stderr}");
    assert!(took < Duration::from_secs(10), "stopping took {took:?}");
    // --dir keeps the database, and the file sink wrote the live readings (not the history).
    assert!(dir.path().join("kamstrup-demo.db").exists());
    let jsonl = std::fs::read_to_string(dir.path().join("readings.jsonl")).unwrap();
    let lines = jsonl.lines().count();
    assert!((2..200).contains(&lines), "{lines} lines in readings.jsonl");
}

#[test]
fn demo_without_dir_cleans_up_its_temporary_directory() {
    let mut demo = Demo::start(&["--port", "0", "--weeks", "0", "--interval", "1h"]);
    let _ = demo.address();
    let db = demo
        .printed
        .iter()
        .find_map(|l| l.split(" in ").nth(1).filter(|_| l.starts_with("history:")))
        .map(std::path::PathBuf::from)
        .unwrap();
    assert!(db.exists(), "{}", db.display());
    let (code, _, stderr) = demo.terminate();
    assert_eq!(code, 0, "{stderr}");
    assert!(
        !db.parent().unwrap().exists(),
        "temporary directory left behind"
    );
}

#[test]
fn demo_refuses_a_port_in_use_with_a_clear_message() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_kamstrup"))
        .args(["demo", "--port", &port])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot listen on 127.0.0.1:"), "{stderr}");
    assert!(stderr.contains("--port"), "{stderr}");
}

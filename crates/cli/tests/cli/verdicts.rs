//! End-to-end: a failing meter under the real `kamstrup run` gets the same verdict as `kamstrup
//! doctor` — in the daemon's log, in the JSON API (streak, last good read) and for a meter that
//! has never answered.

use super::harness::*;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

fn simulator(args: &[&str]) -> Sim {
    Sim::start(args)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn get_json(port: u16, path: &str) -> Value {
    // Until the daemon's web server listens, there is nothing to see yet.
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return Value::Null;
    };
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    serde_json::from_str(body).unwrap_or(Value::Null)
}

fn daemon_meter(web: u16, name: &str) -> Value {
    get_json(web, "/api/status")["daemon"]["meters"][name].clone()
}

#[test]
fn failing_meters_show_the_doctors_verdict_in_log_and_api() {
    let dir = tempfile::tempdir().unwrap();
    let web = free_port();
    let head = format!("127.0.0.1:{}", free_port());
    let silent = dir.path().join("silent");
    let sim = simulator(&["--listen", &head, "--echo"]);
    let _silent = simulator(&[
        "--pty",
        "--link",
        silent.to_str().unwrap(),
        "--faults",
        "drop",
    ]);
    let config = dir.path().join("kamstrup.toml");
    std::fs::write(
        &config,
        format!(
            "[storage]\npath = \"k.db\"\n[web]\nlisten = \"127.0.0.1:{web}\"\n\
             [[meter]]\nname = \"heat\"\nport = \"tcp://{head}\"\ninterval = \"1s\"\ntimeout = \"500ms\"\n\
             [[meter]]\nname = \"cold\"\nport = \"{}\"\nprotocol = \"kmp\"\ninterval = \"1s\"\ntimeout = \"500ms\"\n",
            silent.display()
        ),
    )
    .unwrap();
    let log = dir.path().join("daemon.log");
    let daemon = Proc(
        Command::new(BIN)
            .args(["run", "--config"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );

    // The meter that never answers: no serial, so only the daemon's state knows it.
    wait_for(
        "a verdict for the silent meter",
        Duration::from_secs(30),
        || daemon_meter(web, "cold")["verdict"]["kind"] == "no-reply",
    );
    let cold = daemon_meter(web, "cold");
    assert!(cold["failure_streak"].as_u64().unwrap() >= 1, "{cold}");
    assert!(cold["last_ok"].is_null(), "{cold}");
    assert_eq!(
        cold["verdict"]["headline"],
        "no reply: the IR port may be asleep — press the meter's button"
    );
    assert!(!cold["verdict"]["fix"].as_array().unwrap().is_empty());

    // The good meter reads, then its meter stops answering while the head still echoes.
    wait_for("a good read", Duration::from_secs(30), || {
        !daemon_meter(web, "heat")["last_ok"].is_null()
    });
    let heat = daemon_meter(web, "heat");
    assert_eq!(heat["failure_streak"], 0, "{heat}");
    assert!(heat["verdict"].is_null(), "{heat}");
    drop(sim);
    let _sim = simulator(&["--listen", &head, "--echo", "--faults", "drop"]);
    wait_for(
        "two echo-only failures in a row",
        Duration::from_secs(40),
        || {
            let h = daemon_meter(web, "heat");
            h["verdict"]["kind"] == "echo-only" && h["failure_streak"].as_u64().unwrap_or(0) >= 2
        },
    );
    // The dashboard's meter list carries it too, with the last good read kept.
    let meters = get_json(web, "/api/meters");
    let listed = meters["meters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "heat")
        .unwrap_or_else(|| panic!("{meters}"))
        .clone();
    assert_eq!(listed["status"]["verdict"]["kind"], "echo-only", "{listed}");
    assert!(!listed["status"]["last_ok"].is_null(), "{listed}");
    assert!(!listed["latest"].is_null(), "{listed}");
    drop(daemon);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("no reply: the IR port may be asleep — press the meter's button"),
        "{text}"
    );
    assert!(
        text.contains("echo only: the head works, but the meter does not answer"),
        "{text}"
    );
    assert!(Path::new(&log).exists());
}

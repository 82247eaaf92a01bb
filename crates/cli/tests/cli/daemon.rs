//! End-to-end: the real `kamstrup run` daemon against simulated meters over TCP and a pty, a real
//! SQLite file, `kill -9` and restart, and a real MQTT broker (rumqttd, in a child process so it
//! can be stopped and started) that is down for several polls.

use super::harness::*;
use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kamstrup_store::{ReadingId, Store};
use serde_json::Value;

/// Starts `kamstrup simulate` and returns it with the port to configure.
fn simulator(args: &[&str], _dir: &Path) -> (Sim, String) {
    let sim = Sim::start(args);
    let port = sim.port.clone();
    (sim, port)
}

fn start_daemon(config: &Path) -> Proc {
    let child = Command::new(BIN)
        .args(["-v", "run", "--config"])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Proc(child)
}

/// Reading ids in a JSON-lines file written by the file sink.
fn delivered_ids(path: &Path) -> Vec<i64> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v["id"].as_i64())
        .collect()
}

/// Every deliverable reading id in the store.
fn stored_ids(db: &Path) -> BTreeSet<i64> {
    // Before the daemon has created the file there is nothing stored yet.
    let Ok(store) = Store::open_read_only(db) else {
        return BTreeSet::new();
    };
    store
        .readings_after(ReadingId(0), 100_000)
        .unwrap()
        .iter()
        .map(|r| r.id.0)
        .collect()
}

#[test]
fn polls_kmp_over_tcp_and_66c_over_a_pty_and_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let (_kmp, kmp_port) = simulator(
        &["--model", "multical-602", "--listen", "127.0.0.1:0"],
        dir.path(),
    );
    let link = dir.path().join("meter66");
    let (_mc, mc_port) = simulator(
        &[
            "--model",
            "multical-66c",
            "--program",
            "4-4-119",
            "--latency-ms",
            "300",
            "--pty",
            "--link",
            link.to_str().unwrap(),
        ],
        dir.path(),
    );
    let config = dir.path().join("kamstrup.toml");
    std::fs::write(
        &config,
        format!(
            "[storage]\npath = \"k.db\"\n\
             [[meter]]\nname = \"heat\"\nport = \"{kmp_port}\"\ninterval = \"1s\"\n\
             [[meter]]\nname = \"old\"\nport = \"{mc_port}\"\nprotocol = \"mc66c\"\ninterval = \"2s\"\nbackfill = \"0s\"\n\
             [file]\npath = \"out.jsonl\"\n"
        ),
    )
    .unwrap();
    let out = dir.path().join("out.jsonl");
    let daemon = start_daemon(&config);
    wait_for("readings of both meters", Duration::from_secs(40), || {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        text.matches("\"heat\"").count() >= 3 && text.matches("\"old\"").count() >= 2
    });
    let status = daemon.terminate();
    assert!(status.success(), "clean exit on SIGTERM: {status}");

    let text = std::fs::read_to_string(&out).unwrap();
    let old: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["meter"] == "old")
        .collect();
    // 4-4-119: energy in MWh with 3 decimals, exactly as the 66C sends it.
    assert_eq!(old[0]["units"]["heat_energy"], "MWh");
    // Everything stored was delivered, once each, in order.
    let ids = delivered_ids(&out);
    let stored: Vec<i64> = stored_ids(&dir.path().join("k.db")).into_iter().collect();
    assert_eq!(ids, stored);
    // The exported history has the same readings.
    let export = Command::new(BIN)
        .args(["history", "export", "--format", "jsonl", "--db"])
        .arg(dir.path().join("k.db"))
        .output()
        .unwrap();
    assert!(export.status.success());
    assert_eq!(
        String::from_utf8_lossy(&export.stdout).lines().count(),
        stored.len()
    );
}

#[test]
fn kill_9_and_restart_loses_nothing_that_was_stored() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("kamstrup.toml");
    std::fs::write(
        &config,
        "[storage]\npath = \"k.db\"\n[[meter]]\nname = \"heat\"\nport = \"sim:multical-403\"\ninterval = \"1s\"\n\
         [file]\npath = \"out.jsonl\"\n",
    )
    .unwrap();
    let out = dir.path().join("out.jsonl");
    let db = dir.path().join("k.db");
    let first = start_daemon(&config);
    wait_for("three readings", Duration::from_secs(20), || {
        delivered_ids(&out).len() >= 3
    });
    drop(first); // SIGKILL: no chance to flush or say goodbye
    let before = stored_ids(&db);
    assert!(before.len() >= 3);

    let second = start_daemon(&config);
    let target = before.len() + 2;
    wait_for(
        "more readings after the restart",
        Duration::from_secs(20),
        || stored_ids(&db).len() >= target,
    );
    assert!(second.terminate().success());
    let after = stored_ids(&db);
    assert!(
        before.is_subset(&after),
        "every reading stored before kill -9 is still there"
    );
    // At-least-once: every stored reading reached the sink (a reading whose delivery was cut by
    // the kill may arrive twice, never zero times).
    let delivered: BTreeSet<i64> = delivered_ids(&out).into_iter().collect();
    assert_eq!(delivered, after);
}

// ---- a real MQTT broker that can be stopped and started --------------------------------------

/// Subscribes to `kamstrup/#` and collects the reading ids of the JSON messages it sees.
fn observe(
    port: u16,
    seen: std::sync::Arc<std::sync::Mutex<BTreeSet<i64>>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut options = rumqttc::MqttOptions::new("observer", "127.0.0.1", port);
        options.set_keep_alive(Duration::from_secs(5));
        let (client, mut connection) = rumqttc::Client::new(options, 100);
        for event in connection.iter() {
            match event {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))) => {
                    let _ = client.subscribe("kamstrup/#", rumqttc::QoS::AtLeastOnce);
                }
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) => {
                    if let Ok(v) = serde_json::from_slice::<Value>(&p.payload) {
                        if let Some(t) = v["taken_at"].as_str() {
                            seen.lock().unwrap().insert(
                                chrono::DateTime::parse_from_rfc3339(t).unwrap().timestamp(),
                            );
                        }
                    }
                }
                Ok(_) => {}
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    })
}

#[test]
fn a_sink_that_was_down_gets_every_missed_reading_when_the_broker_returns() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start();
    let config = dir.path().join("kamstrup.toml");
    std::fs::write(
        &config,
        format!(
            "[storage]\npath = \"k.db\"\n[[meter]]\nname = \"heat\"\nport = \"sim:multical-403\"\ninterval = \"1s\"\n\
             [mqtt]\nurl = \"mqtt://127.0.0.1:{}\"\n[mqtt_json]\ntopic = \"kamstrup/{{meter}}\"\npreset = \"full\"\n",
            broker.port
        ),
    )
    .unwrap();
    let db = dir.path().join("k.db");
    let seen = std::sync::Arc::new(std::sync::Mutex::new(BTreeSet::new()));
    let _observer = observe(broker.port, seen.clone());
    let daemon = start_daemon(&config);
    wait_for("first deliveries", Duration::from_secs(20), || {
        seen.lock().unwrap().len() >= 2
    });

    broker.stop();
    let stored_when_down = stored_ids(&db).len();
    wait_for(
        "four polls while the broker is down",
        Duration::from_secs(20),
        || stored_ids(&db).len() >= stored_when_down + 4,
    );
    let cursor_when_down = Store::open_read_only(&db)
        .unwrap()
        .cursor("mqtt_json")
        .unwrap();
    assert!(
        cursor_when_down.0 < *stored_ids(&db).iter().max().unwrap(),
        "the outbox cursor stays behind while the broker is down"
    );
    broker.restart();
    // The sink catches up: its cursor reaches the newest reading, and the observer sees every
    // reading (by its timestamp) that was stored while the broker was away.
    wait_for("the backlog", Duration::from_secs(40), || {
        let store = Store::open_read_only(&db).unwrap();
        let cursor = store.cursor("mqtt_json").unwrap();
        cursor.0 >= *stored_ids(&db).iter().max().unwrap() - 1
    });
    std::thread::sleep(Duration::from_millis(500));
    assert!(daemon.terminate().success());
    let store = Store::open_read_only(&db).unwrap();
    let missed: Vec<i64> = store
        .readings_after(cursor_when_down, 10_000)
        .unwrap()
        .iter()
        .map(|r| r.reading.taken_at.timestamp())
        .collect();
    let got = seen.lock().unwrap().clone();
    let lost: Vec<&i64> = missed.iter().filter(|t| !got.contains(t)).collect();
    assert!(missed.len() >= 4, "{missed:?}");
    assert!(
        lost.is_empty(),
        "readings stored while the broker was down never arrived: {lost:?}"
    );
}

// ---- check, config errors, reconnect ---------------------------------------------------------

#[test]
fn check_gives_a_verdict_per_item() {
    let dir = tempfile::tempdir().unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.path().join("kamstrup.toml");
    std::fs::write(
        &config,
        format!(
            "[[meter]]\nname = \"heat\"\nport = \"sim:multical-403\"\n\
             [[meter]]\nname = \"gone\"\nport = \"tcp://127.0.0.1:{closed}\"\n\
             [file]\npath = \"out.jsonl\"\n"
        ),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["check", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a failing meter fails the check: {text}"
    );
    assert!(text.lines().any(|l| l.starts_with("ok   config")), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("ok   meter heat") && l.contains("71234567")),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.starts_with("FAIL meter gone")),
        "{text}"
    );
    assert!(text.lines().any(|l| l.starts_with("ok   file")), "{text}");
    assert!(!dir.path().join("k.db").exists(), "check stores nothing");
}

#[test]
fn a_bad_config_file_is_rejected_with_its_line_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("kamstrup.toml");
    std::fs::write(&config, "[[meter]]\nname = \"heat\"\nport = \"sim:multical-403\"\ninterval = \"every now and then\"\n").unwrap();
    let out = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("kamstrup.toml:4:"), "{err}");
    assert!(err.contains("not a duration"), "{err}");
    assert!(!dir.path().join("kamstrup.db").exists(), "nothing started");

    let missing = Command::new(BIN)
        .args(["run", "--config"])
        .arg(dir.path().join("nope.toml"))
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("kamstrup.example.toml"));
}

/// A sink mistake is a config mistake: `check` reports it with its line and column and stops
/// before it reaches any meter or broker (the listener below never sees a connection, and the
/// meter on a closed port is never tried).
#[test]
fn check_refuses_a_sink_mistake_before_connecting() {
    let dir = tempfile::tempdir().unwrap();
    let broker = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    broker.set_nonblocking(true).unwrap();
    let port = broker.local_addr().unwrap().port();
    let config = dir.path().join("kamstrup.toml");
    std::fs::write(
        &config,
        format!(
            "[[meter]]\nname = \"heat\"\nport = \"tcp://127.0.0.1:{port}\"\n\
             [mqtt]\nurl = \"mqtt://127.0.0.1:{port}\"\n\
             [mqtt_json]\nqos = 5\n\
             [homeassistant_rest]\nurl = \"ha.lan:8123\"\ntoken = \"t\"\n"
        ),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["check", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.starts_with("FAIL config"), "{text}");
    assert!(
        text.contains("kamstrup.toml:7:7: [mqtt_json] qos: qos must be 0, 1 or 2, not 5"),
        "{text}"
    );
    assert!(
        text.contains("kamstrup.toml:9:7: [homeassistant_rest] url:"),
        "{text}"
    );
    assert!(!text.contains("meter heat"), "no meter was tried: {text}");
    assert_eq!(
        broker.accept().map(|_| ()).unwrap_err().kind(),
        std::io::ErrorKind::WouldBlock,
        "nothing connected to the broker port"
    );
}

/// A broker that is down (nothing listens: the TCP connection is refused) is reported as soon
/// as the connection is refused, not after the sink's 30 s timeout.
#[test]
fn check_reports_a_refused_broker_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.path().join("kamstrup.toml");
    std::fs::write(
        &config,
        format!(
            "[[meter]]\nname = \"heat\"\nport = \"sim:multical-403\"\n\
             [mqtt]\nurl = \"mqtt://127.0.0.1:{closed}\"\ntimeout = \"30s\"\n\
             [mqtt_json]\n"
        ),
    )
    .unwrap();
    let started = Instant::now();
    let out = Command::new(BIN)
        .args(["check", "--no-meters", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let took = started.elapsed();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let line = text
        .lines()
        .find(|l| l.starts_with("FAIL mqtt_json"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("cannot connect"), "{line}");
    assert!(!line.contains("no answer within"), "{line}");
    assert!(
        took < Duration::from_secs(20),
        "check waited {took:?} for a refused connection (timeout 30 s)"
    );
}

#[test]
fn reconnects_when_the_tcp_head_goes_away_and_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let (sim, _) = simulator(&["--listen", &listen], dir.path());
    let config = dir.path().join("kamstrup.toml");
    std::fs::write(
        &config,
        format!("[storage]\npath = \"k.db\"\n[[meter]]\nname = \"heat\"\nport = \"tcp://{listen}\"\ninterval = \"1s\"\n"),
    )
    .unwrap();
    let db = dir.path().join("k.db");
    let daemon = start_daemon(&config);
    wait_for("two readings", Duration::from_secs(20), || {
        stored_ids(&db).len() >= 2
    });
    drop(sim);
    std::thread::sleep(Duration::from_secs(2));
    let during = stored_ids(&db).len();
    let (_sim, _) = simulator(&["--listen", &listen], dir.path());
    // Back-off after failures is 30 s in production; the first retry comes sooner than that.
    wait_for(
        "readings after the head came back",
        Duration::from_secs(45),
        || stored_ids(&db).len() >= during + 2,
    );
    assert!(daemon.terminate().success());
    let store = Store::open_read_only(&db).unwrap();
    assert_eq!(
        store.meters().unwrap().len(),
        1,
        "still the same meter (same serial)"
    );
    assert!(
        !store.recent_errors(10).unwrap().is_empty(),
        "the outage was recorded"
    );
}

/// A plain HTTP/1.1 GET over a real socket; returns (status, body).
fn http_get(port: u16, path: &str) -> (u16, String) {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn run_serves_the_dashboard_api_and_metrics_when_web_is_configured() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.path().join("kamstrup.toml");
    std::fs::write(
        &config,
        format!(
            "[storage]\npath = \"k.db\"\n[web]\nlisten = \"127.0.0.1:{port}\"\n\
             [[meter]]\nname = \"heat\"\nport = \"sim:multical-602\"\ninterval = \"1s\"\n"
        ),
    )
    .unwrap();
    let db = dir.path().join("k.db");
    let daemon = start_daemon(&config);
    wait_for("a reading", Duration::from_secs(20), || {
        !stored_ids(&db).is_empty()
    });
    let (status, body) = http_get(port, "/api/meters");
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("5512345") && body.contains("heat_energy"),
        "{body}"
    );
    let (status, metrics) = http_get(port, "/metrics");
    assert_eq!(status, 200);
    assert!(
        metrics.contains("kamstrup_heat_energy_joules_total"),
        "{metrics}"
    );
    let (status, page) = http_get(port, "/");
    assert_eq!(status, 200);
    assert!(page.contains("<html") || page.contains("<!doctype") || page.contains("<!DOCTYPE"));
    assert!(daemon.terminate().success());
}

// ---- Home Assistant discovery beside another bridge -------------------------------------------

/// Publishes `(topic, payload)` pairs retained, and waits until the broker has taken them.
fn publish_retained(port: u16, messages: &[(&str, &str)]) {
    let mut options = rumqttc::MqttOptions::new("seeder", "127.0.0.1", port);
    options.set_keep_alive(Duration::from_secs(5));
    let (client, mut connection) = rumqttc::Client::new(options, 100);
    for (topic, payload) in messages {
        client
            .publish(*topic, rumqttc::QoS::AtLeastOnce, true, payload.as_bytes())
            .unwrap();
    }
    let mut acked = 0;
    for event in connection.iter() {
        if let Ok(rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_))) = event {
            acked += 1;
            if acked == messages.len() {
                break;
            }
        }
    }
    let _ = client.disconnect();
}

/// The topics retained under `filter` now (what a new subscriber is sent within a second).
fn retained_topics(port: u16, filter: &str) -> BTreeSet<String> {
    static READS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = READS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut options = rumqttc::MqttOptions::new(format!("reader-{n}"), "127.0.0.1", port);
    options.set_keep_alive(Duration::from_secs(5));
    // Discovery configs are larger than rumqttc's 10 kB default.
    options.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut connection) = rumqttc::Client::new(options, 100);
    client.subscribe(filter, rumqttc::QoS::AtLeastOnce).unwrap();
    let mut topics = BTreeSet::new();
    let until = Instant::now() + Duration::from_secs(1);
    while Instant::now() < until {
        if let Ok(Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p)))) =
            connection.recv_timeout(Duration::from_millis(100))
        {
            if p.retain && !p.payload.is_empty() {
                topics.insert(p.topic.clone());
            }
        }
    }
    let _ = client.disconnect();
    topics
}

/// Two bridges on one broker (a head on each of two meters, one Home Assistant): the entities of
/// a meter dropped from this bridge's config (one its store has read) are cleared; those of the
/// other bridge's meter, which this bridge never read, are left.
#[test]
fn ha_discovery_clears_a_dropped_meter_but_not_another_bridges() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start();
    let db = dir.path().join("k.db");
    {
        let mut store = Store::open(&db).unwrap();
        store
            .upsert_meter(
                11_111_111,
                "old",
                kamstrup_meter::Protocol::Kmp,
                None,
                "/dev/ttyUSB1",
                chrono::Utc::now() - chrono::Duration::days(30),
            )
            .unwrap();
    }
    // Both as a bridge publishes them (per-entity discovery, under the same base topic).
    let config_of = |serial: u64| {
        format!(
            r#"{{"name":"Volume","unique_id":"kamstrup_{serial}_volume","state_topic":"kamstrup/{serial}/state","origin":{{"name":"kamstrup-bridge"}}}}"#
        )
    };
    let (dropped, other) = (config_of(11_111_111), config_of(22_222_222));
    publish_retained(
        broker.port,
        &[
            (
                "homeassistant/sensor/kamstrup_11111111_volume/config",
                &dropped,
            ),
            (
                "homeassistant/sensor/kamstrup_22222222_volume/config",
                &other,
            ),
        ],
    );
    let config = dir.path().join("kamstrup.toml");
    std::fs::write(
        &config,
        format!(
            "[storage]\npath = \"k.db\"\n[[meter]]\nname = \"heat\"\nport = \"sim:multical-403\"\ninterval = \"1s\"\nbackfill = \"0s\"\n\
             [mqtt]\nurl = \"mqtt://127.0.0.1:{}\"\n[homeassistant]\n",
            broker.port
        ),
    )
    .unwrap();
    let log = dir.path().join("daemon.log");
    let daemon = Proc(
        Command::new(BIN)
            .args(["-v", "run", "--config"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let cleared = Instant::now() + Duration::from_secs(30);
    loop {
        let topics = retained_topics(broker.port, "homeassistant/#");
        if !topics.contains("homeassistant/sensor/kamstrup_11111111_volume/config")
            && topics.contains("homeassistant/device/kamstrup_71234567/config")
        {
            break;
        }
        assert!(
            Instant::now() < cleared,
            "the dropped meter's entity was not cleared in 30 s: {topics:?}\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }
    std::thread::sleep(Duration::from_millis(1500));
    assert!(daemon.terminate().success());
    let topics = retained_topics(broker.port, "homeassistant/#");
    assert!(
        topics.contains("homeassistant/sensor/kamstrup_22222222_volume/config"),
        "another bridge's entity was removed: {topics:?}"
    );
    assert!(
        !topics.contains("homeassistant/sensor/kamstrup_11111111_volume/config"),
        "{topics:?}"
    );
}

//! Test harness: real MQTT brokers (rumqttd in a child process, so a test can stop and restart
//! one), an MQTT observer, fixtures and a build context with fake environment and files.

use std::collections::BTreeMap;
use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kamstrup_reading::{MeterIdentity, Protocol, Reading, RegisterValue};
use kamstrup_sinks::{BuildContext, Delivered};
use rumqttc::{AsyncClient, Event, Incoming, MqttOptions, QoS};

pub(crate) const BROKER_PORT_ENV: &str = "KAMSTRUP_SINKS_TEST_BROKER_PORT";
pub(crate) const BROKER_AUTH_ENV: &str = "KAMSTRUP_SINKS_TEST_BROKER_AUTH";

/// A real broker (rumqttd) running in a child process of this test binary.
pub(crate) struct Broker {
    pub(crate) port: u16,
    auth: Option<(String, String)>,
    child: Option<Child>,
}

pub(crate) fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

impl Broker {
    pub(crate) fn start() -> Broker {
        Self::start_on(free_port(), None)
    }

    pub(crate) fn start_with_auth(user: &str, pass: &str) -> Broker {
        Self::start_on(free_port(), Some((user.to_owned(), pass.to_owned())))
    }

    fn start_on(port: u16, auth: Option<(String, String)>) -> Broker {
        let mut b = Broker {
            port,
            auth,
            child: None,
        };
        b.restart();
        b
    }

    /// (Re)starts the broker process on the same port; retained messages start empty.
    pub(crate) fn restart(&mut self) {
        assert!(self.child.is_none(), "broker already running");
        let exe = std::env::current_exe().unwrap();
        let mut cmd = Command::new(exe);
        cmd.args([
            "broker_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(BROKER_PORT_ENV, self.port.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        if let Some((u, p)) = &self.auth {
            cmd.env(BROKER_AUTH_ENV, format!("{u}:{p}"));
        }
        self.child = Some(cmd.spawn().unwrap());
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "broker did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the broker process (connections drop, retained messages are gone).
    pub(crate) fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            assert!(Instant::now() < deadline, "broker did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Body of the child process: runs rumqttd until the parent goes away (stdin closes).
pub(crate) fn run_broker_child(port: u16, auth: Option<String>) {
    std::thread::spawn(|| {
        let mut buf = [0u8; 16];
        while let Ok(n) = std::io::stdin().read(&mut buf) {
            if n == 0 {
                break;
            }
        }
        std::process::exit(0);
    });
    let mut connections = serde_json::json!({
        "connection_timeout_ms": 60000,
        "max_payload_size": 1048576,
        "max_inflight_count": 200,
        "dynamic_filters": true
    });
    if let Some(a) = auth {
        let (u, p) = a.split_once(':').unwrap();
        connections["auth"] = serde_json::json!({ u: p });
    }
    let config = serde_json::json!({
        "id": 0,
        "router": {
            "max_connections": 100,
            "max_outgoing_packet_count": 500,
            "max_segment_size": 10485760,
            "max_segment_count": 10
        },
        "v4": { "1": {
            "name": "v4-1",
            "listen": format!("127.0.0.1:{port}"),
            "next_connection_delay_ms": 1,
            "connections": connections
        }}
    });
    let config: rumqttd::Config = serde_json::from_value(config).unwrap();
    let mut broker = rumqttd::Broker::new(config);
    broker.start().unwrap();
}

/// One message seen by an observer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Seen {
    pub(crate) topic: String,
    pub(crate) payload: String,
    pub(crate) retain: bool,
}

/// Connects a fresh client, subscribes to `filter` and returns what arrives within `window`
/// after the last message (so: the retained messages, with their retain flags).
///
/// rumqttd sometimes drops a fresh connection when the machine is loaded; reading retained
/// messages has no side effects, so that is tried again (at most three times).
pub(crate) async fn retained(port: u16, filter: &str) -> BTreeMap<String, Seen> {
    let mut last = String::new();
    for _ in 0..3 {
        match try_observe(port, &[filter], Duration::from_millis(400), None, |_| false).await {
            Ok(seen) => return seen.into_iter().map(|s| (s.topic.clone(), s)).collect(),
            Err(e) => last = e,
        }
    }
    panic!("observer lost the broker three times: {last}");
}

/// Runs `during` after subscribing, then collects messages until `done` returns true for the
/// list so far, or `quiet` passes without a message (and at least `min_wait` overall).
pub(crate) async fn observe(
    port: u16,
    filters: &[&str],
    quiet: Duration,
    during: Option<Box<dyn FnOnce(AsyncClient) + Send>>,
    done: impl Fn(&[Seen]) -> bool,
) -> Vec<Seen> {
    try_observe(port, filters, quiet, during, done)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

async fn try_observe(
    port: u16,
    filters: &[&str],
    quiet: Duration,
    during: Option<Box<dyn FnOnce(AsyncClient) + Send>>,
    done: impl Fn(&[Seen]) -> bool,
) -> Result<Vec<Seen>, String> {
    let mut opts = MqttOptions::new(format!("observer-{}", free_port()), "127.0.0.1", port);
    opts.set_keep_alive(Duration::from_secs(30));
    opts.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut eventloop) = AsyncClient::new(opts, 100);
    for f in filters {
        client.subscribe(*f, QoS::AtLeastOnce).await.unwrap();
    }
    let mut out = Vec::new();
    let mut subacks = 0;
    let mut during = during;
    let hard_deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let wait = if subacks < filters.len() {
            Duration::from_secs(5)
        } else {
            quiet
        };
        match tokio::time::timeout(wait, eventloop.poll()).await {
            Ok(Ok(Event::Incoming(Incoming::SubAck(_)))) => {
                subacks += 1;
                if subacks == filters.len() {
                    if let Some(f) = during.take() {
                        f(client.clone());
                    }
                }
            }
            Ok(Ok(Event::Incoming(Incoming::Publish(p)))) => {
                out.push(Seen {
                    topic: p.topic.clone(),
                    payload: String::from_utf8_lossy(&p.payload).into_owned(),
                    retain: p.retain,
                });
                if done(&out) {
                    break;
                }
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(format!("observer lost the broker: {e}")),
            Err(_) => break,
        }
        assert!(Instant::now() < hard_deadline, "observer ran too long");
    }
    let _ = client.disconnect().await;
    Ok(out)
}

/// Publishes one message from a separate client (e.g. HA's birth message).
pub(crate) async fn publish(port: u16, topic: &str, payload: &str, retain: bool) {
    let mut opts = MqttOptions::new(format!("pub-{}", free_port()), "127.0.0.1", port);
    opts.set_keep_alive(Duration::from_secs(30));
    let (client, mut eventloop) = AsyncClient::new(opts, 10);
    client
        .publish(topic, QoS::AtLeastOnce, retain, payload.as_bytes().to_vec())
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match tokio::time::timeout(Duration::from_secs(5), eventloop.poll()).await {
            Ok(Ok(Event::Incoming(Incoming::PubAck(_)))) => break,
            Ok(Ok(_)) => {}
            other => panic!("publish failed: {other:?}"),
        }
        assert!(Instant::now() < deadline);
    }
    let _ = client.disconnect().await;
}

pub(crate) fn reg(name: &str, value: &str, unit: &str) -> RegisterValue {
    RegisterValue {
        id: 0,
        name: name.into(),
        short: String::new(),
        value: value.parse().unwrap(),
        unit: unit.into(),
        unit_code: None,
        text: None,
        derived: false,
    }
}

pub(crate) fn reading(at: i64, registers: Vec<RegisterValue>) -> Reading {
    Reading {
        source: Default::default(),
        meter: MeterIdentity {
            protocol: Protocol::Kmp,
            port: "sim:multical-403".into(),
            serial: Some(67_123_456),
            meter_type: None,
        },
        taken_at: chrono::DateTime::from_timestamp(at, 0).unwrap(),
        registers,
        missing: vec![],
    }
}

pub(crate) const T0: i64 = 1_779_400_000;

/// A reading of the standard registers; `step` makes the counters grow.
pub(crate) fn standard(step: i64) -> Reading {
    let e = 84_817 + step * 3;
    let v = 520_410 + step * 50;
    reading(
        T0 + step * 900,
        vec![
            reg(
                "heat_energy",
                &format!("{}.{:03}", e / 1000, e % 1000),
                "GJ",
            ),
            reg("volume", &format!("{}.{:03}", v / 1000, v % 1000), "m³"),
            reg("t1", "76.85", "°C"),
            reg("t2", "25.26", "°C"),
            reg("t1_t2", "51.59", "K"),
            reg("power", "15.5", "kW"),
            reg("flow", "267", "l/h"),
            reg("hours", &(12_345 + step).to_string(), "h"),
            reg("info", "0", ""),
        ],
    )
}

pub(crate) fn delivered<'a>(id: i64, meter: &'a str, serial: u64, r: &'a Reading) -> Delivered<'a> {
    Delivered {
        id,
        meter_name: meter,
        serial,
        model: Some("MULTICAL 403"),
        read_errors_24h: None,
        reading: r,
    }
}

pub(crate) fn no_env(_: &str) -> Option<String> {
    None
}

pub(crate) fn no_files(p: &Path) -> std::io::Result<String> {
    Err(std::io::Error::new(
        std::io::ErrorKind::NotFound,
        format!("{} not found", p.display()),
    ))
}

pub(crate) fn ctx() -> BuildContext<'static> {
    BuildContext::new(&no_env, &no_files)
}

/// The log lines (WARN and above) of the code run on this thread while the guard lives: for
/// tests that a warning is given, and given once. Use with a current-thread runtime.
pub(crate) struct Logs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

struct LogWriter(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    pub(crate) fn capture() -> (Logs, tracing::subscriber::DefaultGuard) {
        let buf = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let writer = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::WARN)
            .with_ansi(false)
            .with_writer(move || LogWriter(writer.clone()))
            .finish();
        (Logs(buf), tracing::subscriber::set_default(subscriber))
    }

    /// Everything logged so far; clears it.
    pub(crate) fn take(&self) -> String {
        String::from_utf8_lossy(&std::mem::take(&mut *self.0.lock().unwrap())).into_owned()
    }
}

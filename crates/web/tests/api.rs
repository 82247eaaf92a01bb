//! The web server over a real socket: the JSON API on a seeded history database (shapes, exact
//! values, buckets, errors), the dashboard's files, read-only routing, and `/metrics` checked
//! with a small OpenMetrics parser.
#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use kamstrup_decimal::Decimal;
use kamstrup_reading::{MeterIdentity, Protocol, Reading, RegisterValue};
use kamstrup_store::{MeterId, Store};
use serde_json::{json, Value};
use tokio::sync::oneshot;

const HEAT: u64 = 71_234_567;
const OLD: u64 = 5_310_017;
const DAYS: i64 = 14;
const PER_DAY: i64 = 96;

fn start() -> DateTime<Utc> {
    "2026-03-02T00:00:00Z".parse().unwrap() // a Monday
}

fn dec(m: i64, e: i16) -> Decimal {
    Decimal::new(i128::from(m), e).unwrap()
}

fn reg(id: u16, name: &str, value: Decimal, unit: &str) -> RegisterValue {
    RegisterValue {
        id,
        name: name.into(),
        short: name.to_uppercase(),
        value,
        unit: unit.into(),
        unit_code: None,
        text: None,
        derived: false,
    }
}

/// Reading `k` of the 403: energy grows 0.01 GJ and volume 0.03 m³ per 15 minutes, so a day
/// uses exactly 0.96 GJ; T1 cycles 60.00, 60.25, 60.50, 60.75 °C.
fn heat_reading(k: i64) -> Reading {
    Reading {
        source: Default::default(),
        meter: MeterIdentity {
            protocol: Protocol::Kmp,
            port: "sim:multical-403".into(),
            serial: Some(HEAT),
            meter_type: None,
        },
        taken_at: start() + Duration::minutes(15 * k),
        registers: vec![
            reg(60, "heat_energy", dec(12_000 + k, -2), "GJ"),
            reg(68, "volume", dec(90_000 + 3 * k, -2), "m³"),
            reg(86, "t1", dec(6000 + 25 * (k % 4), -2), "°C"),
            reg(87, "t2", dec(3000, -2), "°C"),
            reg(89, "t1_t2", dec(3000 + 25 * (k % 4), -2), "K"),
            reg(80, "power", dec(42 + k % 3, -1), "kW"),
            reg(74, "flow", dec(360, 0), "l/h"),
            reg(1004, "hours", dec(9872 + k / 4, 0), "h"),
            reg(99, "info", dec(0, 0), ""),
        ],
        missing: vec![],
    }
}

fn old_reading(k: i64) -> Reading {
    let mut info = reg(99, "info", dec(8, 0), "");
    info.text = Some("flow sensor: air in the water".into());
    Reading {
        source: Default::default(),
        meter: MeterIdentity {
            protocol: Protocol::Mc66c,
            port: "sim:multical-66c".into(),
            serial: Some(OLD),
            meter_type: Some("MULTICAL 66C, program 4-4-119".into()),
        },
        taken_at: start() + Duration::hours(k),
        registers: vec![
            reg(60, "heat_energy", dec(125_431 + k, -3), "MWh"),
            reg(86, "t1", dec(680, -1), "°C"),
            info,
        ],
        missing: vec![],
    }
}

fn seed(path: &Path) -> (MeterId, MeterId) {
    let mut store = Store::open(path).unwrap();
    let seen = start();
    let heat = store
        .upsert_meter(
            HEAT,
            "heat",
            Protocol::Kmp,
            Some("MULTICAL 403"),
            "sim:multical-403",
            seen,
        )
        .unwrap();
    let old = store
        .upsert_meter(
            OLD,
            "old-heat",
            Protocol::Mc66c,
            None,
            "sim:multical-66c",
            seen,
        )
        .unwrap();
    let mut items: Vec<(MeterId, Reading, Option<String>)> = (0..DAYS * PER_DAY)
        .map(|k| (heat, heat_reading(k), None))
        .collect();
    items.extend((0..DAYS * 24).map(|k| (old, old_reading(k), None)));
    // A newer reading flagged implausible: stored, never shown.
    let mut bad = heat_reading(DAYS * PER_DAY);
    bad.registers[0].value = dec(1, -2);
    items.push((heat, bad, Some("heat_energy went backwards".into())));
    let ids = store.insert_readings(&items).unwrap();
    store.set_cursor("file", ids[100]).unwrap();
    store
        .record_error(
            "heat",
            start() + Duration::hours(3),
            "timeout",
            "no reply within 2 s",
        )
        .unwrap();
    store
        .record_error(
            "heat",
            start() + Duration::hours(4),
            "timeout",
            "no reply within 2 s",
        )
        .unwrap();
    store
        .record_error(
            "ghost",
            start() + Duration::hours(5),
            "bad-port",
            "no such device",
        )
        .unwrap();
    (heat, old)
}

fn daemon_status() -> Value {
    json!({
        "meters": {
            "heat": { "serial": HEAT, "schedule": "every 15m", "polls": 3, "failures": 0,
                      "last_ok": "2026-03-15T23:45:00Z", "last_error": null }
        },
        "sinks": {
            "file": { "cursor": 101, "last_ok": "2026-03-15T23:45:00Z", "last_error": null,
                      "delivered": 101, "failures": 0 },
            "mqtt": { "cursor": 0, "last_ok": null, "delivered": 0, "failures": 4,
                      "consecutive_failures": 4, "failing_since": "2026-03-15T23:30:00Z",
                      "last_error": { "at": "2026-03-15T23:40:00Z", "kind": "connect",
                                      "message": "connection refused" } }
        }
    })
}

struct Server {
    base: String,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), kamstrup_web::WebError>>,
    _dir: tempfile::TempDir,
    client: reqwest::Client,
}

impl Server {
    async fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kamstrup.db");
        seed(&path);
        Server::on(dir, path).await
    }

    async fn on(dir: tempfile::TempDir, path: PathBuf) -> Server {
        Server::on_for(dir, path, kamstrup_web::Access::anyone()).await
    }

    async fn on_for(dir: tempfile::TempDir, path: PathBuf, access: kamstrup_web::Access) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let status: kamstrup_web::StatusFn = Arc::new(daemon_status);
        let task = tokio::spawn(kamstrup_web::serve(listener, path, status, access, async {
            let _ = stopped.await;
        }));
        Server {
            base: format!("http://{addr}"),
            stop: Some(stop),
            task,
            _dir: dir,
            client: reqwest::Client::new(),
        }
    }

    async fn get(&self, path: &str) -> (u16, String, String) {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        (status, content_type, response.text().await.unwrap())
    }

    async fn json(&self, path: &str) -> (u16, Value) {
        let (status, content_type, body) = self.get(path).await;
        assert!(
            content_type.starts_with("application/json"),
            "{path}: {content_type}"
        );
        (status, serde_json::from_str(&body).unwrap())
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let done = tokio::time::timeout(std::time::Duration::from_secs(5), self.task).await;
        assert!(
            matches!(done, Ok(Ok(Ok(())))),
            "the server did not stop cleanly"
        );
    }
}

fn values_by_register(meter: &Value) -> BTreeMap<String, Value> {
    meter["latest"]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["register"].as_str().unwrap().to_string(), v.clone()))
        .collect()
}

#[tokio::test]
async fn meters_list_the_latest_exact_values() {
    let server = Server::start().await;
    let (status, body) = server.json("/api/meters").await;
    assert_eq!(status, 200);
    let meters = body["meters"].as_array().unwrap();
    assert_eq!(meters.len(), 2);
    let heat = &meters[0];
    assert_eq!(heat["serial"], "71234567");
    assert_eq!(heat["name"], "heat");
    assert_eq!(heat["protocol"], "kmp");
    assert_eq!(heat["model"], "MULTICAL 403");
    let last = DAYS * PER_DAY - 1;
    assert_eq!(
        heat["latest"]["taken_at"],
        (start() + Duration::minutes(15 * last))
            .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
    );
    assert!(heat["latest"]["age_seconds"].as_f64().unwrap() > 0.0);
    let values = values_by_register(heat);
    // The implausible newer reading (0.01 GJ) is not the latest; values keep their resolution.
    assert_eq!(values["heat_energy"]["value"], "133.43");
    assert_eq!(values["heat_energy"]["unit"], "GJ");
    assert_eq!(values["heat_energy"]["counter"], true);
    assert_eq!(values["t1"]["value"], "60.75");
    assert_eq!(values["t1"]["counter"], false);
    assert_eq!(values["flow"]["value"], "360");
    assert_eq!(
        heat["info"],
        json!({ "value": "0", "ok": true, "text": null, "family": "multical403", "flags": [] })
    );
    assert_eq!(heat["status"]["schedule"], "every 15m");

    let old = &meters[1];
    assert_eq!(old["serial"], "5310017");
    assert_eq!(old["model"], Value::Null);
    assert_eq!(old["info"]["ok"], false);
    assert_eq!(old["info"]["value"], "8");
    assert_eq!(old["info"]["text"], "flow sensor: air in the water");
    // Info 8 on a 66C (66-C/D/E table): T1 out of range, by name.
    assert_eq!(old["info"]["family"], "mc66_cde");
    assert_eq!(old["info"]["flags"][0]["name"], "t1_out_of_range");
    assert_eq!(old["info"]["flags"].as_array().unwrap().len(), 1);
    assert_eq!(values_by_register(old)["heat_energy"]["value"], "125.766");
    assert_eq!(old["status"], Value::Null);

    let (status, one) = server.json("/api/meters/5310017").await;
    assert_eq!(status, 200);
    assert_eq!(one["name"], "old-heat");
    server.stop().await;
}

#[tokio::test]
async fn unknown_meters_and_bad_requests_get_clear_json_errors() {
    let server = Server::start().await;
    let (status, body) = server.json("/api/meters/42").await;
    assert_eq!(status, 404);
    assert_eq!(body["error"], "not_found");
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains("no meter with serial 42"));

    let (status, body) = server.json("/api/meters/42/readings?register=t1").await;
    assert_eq!(status, 404);
    assert_eq!(body["error"], "not_found");

    let cases = [
        ("/api/meters/abc", "not a meter serial number"),
        ("/api/meters/71234567/readings", "missing parameter \\\"register\\\""),
        ("/api/meters/71234567/readings?register=t1&bucket=fortnight", "not one of raw"),
        ("/api/meters/71234567/readings?register=t1&from=yesterday", "RFC 3339"),
        ("/api/meters/71234567/readings?register=t1&colour=red", "unknown parameter"),
        ("/api/meters/71234567/readings?register=t1&from=2026-03-10T00:00:00Z&to=2026-03-09T00:00:00Z", "must be before"),
        ("/api/meters/71234567/readings?register=t1&from=2025-01-01T00:00:00Z", "at most 93 days"),
    ];
    for (path, expected) in cases {
        let (status, body) = server.json(path).await;
        assert_eq!(status, 400, "{path}");
        assert_eq!(body["error"], "bad_request", "{path}");
        let message = body["message"].to_string();
        assert!(message.contains(expected), "{path}: {message}");
    }

    let (status, body) = server
        .json("/api/meters/71234567/readings?register=cooling_energy")
        .await;
    assert_eq!(status, 404);
    assert!(body["message"].as_str().unwrap().contains("no register"));

    let (status, body) = server.json("/nothing/here").await;
    assert_eq!(status, 404);
    assert_eq!(body["error"], "not_found");
    server.stop().await;
}

#[tokio::test]
async fn readings_raw_and_per_bucket_are_exact() {
    let server = Server::start().await;
    let base = "/api/meters/71234567/readings";

    // Raw: one day of 15-minute values, exact strings, time-ordered, `to` exclusive.
    let (status, body) = server
        .json(&format!(
            "{base}?register=t1&from=2026-03-03T00:00:00Z&to=2026-03-04T00:00:00Z"
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["mode"], "raw");
    assert_eq!(body["bucket"], Value::Null);
    assert_eq!(body["unit"], "°C");
    let points = body["points"].as_array().unwrap();
    assert_eq!(points.len(), 96);
    assert_eq!(
        points[0],
        json!({ "t": "2026-03-03T00:00:00Z", "value": "60.00" })
    );
    assert_eq!(points[1]["value"], "60.25");

    // Energy per day is a usage: 96 steps of 0.01 GJ, exactly.
    let (_, body) = server
        .json(&format!("{base}?register=heat_energy&from=2026-03-03T00:00:00Z&to=2026-03-10T00:00:00Z&bucket=day"))
        .await;
    assert_eq!(body["mode"], "usage");
    assert_eq!(body["bucket"], "day");
    let points = body["points"].as_array().unwrap();
    assert_eq!(points.len(), 7);
    for p in points {
        assert_eq!(p["value"], "0.96", "{p}");
        assert!(p.get("min").is_none());
    }
    assert_eq!(points[0]["t"], "2026-03-03T00:00:00Z");

    // Per ISO week: a whole week is 7 × 0.96; the second week lacks its last quarter hour.
    let (_, body) = server
        .json(&format!("{base}?register=heat_energy&from=2026-03-04T00:00:00Z&to=2026-03-16T00:00:00Z&bucket=week"))
        .await;
    assert_eq!(
        body["points"],
        json!([
            { "t": "2026-03-02T00:00:00Z", "value": "6.72" },
            { "t": "2026-03-09T00:00:00Z", "value": "6.71" }
        ])
    );

    // Per month: the first bucket only has a baseline, so it counts from the first value.
    let (_, body) = server
        .json(&format!(
            "{base}?register=volume&from=2026-03-01T00:00:00Z&to=2026-04-01T00:00:00Z&bucket=month"
        ))
        .await;
    let expected = format!("{}", dec(3 * (DAYS * PER_DAY - 1), -2));
    assert_eq!(body["points"][0]["value"], expected.as_str());

    // Temperatures per day are averages with minimum and maximum, at the finest resolution.
    let (_, body) = server
        .json(&format!(
            "{base}?register=t1&from=2026-03-03T00:00:00Z&to=2026-03-05T00:00:00Z&bucket=day"
        ))
        .await;
    assert_eq!(body["mode"], "mean");
    let first = &body["points"][0];
    assert_eq!(first["value"], "60.38"); // 60.375 rounded half away from zero
    assert_eq!(first["min"], "60.00");
    assert_eq!(first["max"], "60.75");

    // A counter's mean on request, and a usage of an instantaneous value on request.
    let (_, body) = server
        .json(&format!("{base}?register=hours&from=2026-03-03T00:00:00Z&to=2026-03-04T00:00:00Z&bucket=day&mode=mean"))
        .await;
    assert_eq!(body["mode"], "mean");
    assert!(body["points"][0]["min"].is_string());

    // The hour bucket over a week: 168 points.
    let (_, body) = server
        .json(&format!(
            "{base}?register=power&from=2026-03-03T00:00:00Z&to=2026-03-10T00:00:00Z&bucket=hour"
        ))
        .await;
    assert_eq!(body["points"].as_array().unwrap().len(), 168);
    assert_eq!(body["unit"], "kW");

    // An empty range of a known register is an empty list, not an error.
    let (status, body) = server
        .json(&format!(
            "{base}?register=t1&from=2020-01-01T00:00:00Z&to=2020-01-02T00:00:00Z"
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["points"], json!([]));
    server.stop().await;
}

#[tokio::test]
async fn status_shows_sinks_and_read_errors() {
    let server = Server::start().await;
    let (status, body) = server.json("/api/status").await;
    assert_eq!(status, 200);
    let sinks = body["sinks"].as_array().unwrap();
    let names: Vec<&str> = sinks.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["file", "mqtt"]);
    assert!(sinks[0]["cursor"].as_i64().unwrap() > 0);
    assert_eq!(sinks[0]["status"]["delivered"], 101);
    assert_eq!(sinks[1]["cursor"], Value::Null);
    assert_eq!(sinks[1]["status"]["last_error"]["kind"], "connect");
    assert!(body["latest_reading_id"].as_i64().unwrap() > 1000);
    let errors = body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 3);
    assert_eq!(errors[0]["meter"], "ghost"); // newest first
    assert_eq!(
        body["error_counts"],
        json!([
            { "meter": "ghost", "kind": "bad-port", "count": 1 },
            { "meter": "heat", "kind": "timeout", "count": 2 }
        ])
    );
    assert_eq!(body["daemon"]["meters"]["heat"]["polls"], 3);
    server.stop().await;
}

#[tokio::test]
async fn dashboard_files_are_embedded_and_the_server_is_read_only() {
    let server = Server::start().await;
    let response = server
        .client
        .get(format!("{}/", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    let html = response.text().await.unwrap();
    assert!(html.contains(r#"<script src="app.js" defer></script>"#));
    assert!(!html.contains("<base"), "no prefix header, no <base>");
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no external resource"
    );
    for (path, kind) in [
        ("/app.js", "text/javascript"),
        ("/style.css", "text/css"),
        ("/favicon.svg", "image/svg+xml"),
    ] {
        let (status, content_type, body) = server.get(path).await;
        assert_eq!(status, 200, "{path}");
        assert!(content_type.starts_with(kind), "{path}: {content_type}");
        assert!(
            !body.contains("https://"),
            "{path} loads nothing from elsewhere"
        );
    }
    for path in ["/", "/api/meters", "/metrics"] {
        let response = server
            .client
            .post(format!("{}{path}", server.base))
            .body("x")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 405, "POST {path}");
        let response = server
            .client
            .delete(format!("{}{path}", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 405, "DELETE {path}");
    }
    server.stop().await;
}

#[tokio::test]
async fn behind_ingress_the_page_names_the_ingress_path_as_its_base() {
    let server = Server::start().await;
    let response = server
        .client
        .get(format!("{}/", server.base))
        .header("X-Ingress-Path", "/api/hassio_ingress/Tk3n_x-1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert!(response.headers()["vary"]
        .to_str()
        .unwrap()
        .contains("x-ingress-path"));
    let html = response.text().await.unwrap();
    assert!(
        html.contains(r#"<base href="/api/hassio_ingress/Tk3n_x-1/">"#),
        "{html}"
    );
    // A value that would point the page at another server is ignored.
    let html = server
        .client
        .get(format!("{}/", server.base))
        .header("X-Forwarded-Prefix", "//evil.example")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!html.contains("<base"), "{html}");
    server.stop().await;
}

#[tokio::test]
async fn a_missing_database_is_503_until_the_daemon_creates_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("not-yet.db");
    let server = Server::on(dir, path.clone()).await;
    let (status, body) = server.json("/api/meters").await;
    assert_eq!(status, 503);
    assert_eq!(body["error"], "unavailable");
    assert!(
        !path.exists(),
        "the web server must not create the database"
    );
    // The page itself still loads.
    let (status, _, _) = server.get("/").await;
    assert_eq!(status, 200);
    seed(&path);
    let (status, body) = server.json("/api/meters").await;
    assert_eq!(status, 200);
    assert_eq!(body["meters"].as_array().unwrap().len(), 2);
    server.stop().await;
}

// ------------------------------------------------------------------ /metrics

/// One metric family of an OpenMetrics exposition.
#[derive(Debug, Default)]
struct Family {
    kind: String,
    help: String,
    unit: Option<String>,
    samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

/// A strict-enough parser of the OpenMetrics text format: every sample must belong to a family
/// declared before it, with the suffix its type allows; the text must end with `# EOF`.
fn parse_exposition(text: &str) -> BTreeMap<String, Family> {
    let mut families: BTreeMap<String, Family> = BTreeMap::new();
    let mut lines = text.lines().peekable();
    assert!(text.ends_with("# EOF\n"), "exposition must end with # EOF");
    while let Some(line) = lines.next() {
        if line == "# EOF" {
            assert!(lines.peek().is_none(), "nothing may follow # EOF");
            break;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (keyword, name, value) = (
                parts.next().unwrap(),
                parts.next().unwrap().to_string(),
                parts.next().unwrap_or("").to_string(),
            );
            let family = families.entry(name).or_default();
            match keyword {
                "HELP" => family.help = value,
                "TYPE" => family.kind = value,
                "UNIT" => family.unit = Some(value),
                other => panic!("unknown descriptor {other}"),
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap();
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line}"));
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => (name, parse_labels(rest.strip_suffix('}').unwrap())),
            None => (series, BTreeMap::new()),
        };
        let (family_name, family) = families
            .iter_mut()
            .filter(|(f, _)| name.starts_with(f.as_str()))
            .max_by_key(|(f, _)| f.len())
            .unwrap_or_else(|| panic!("sample {name} before its family"));
        let suffix = &name[family_name.len()..];
        let allowed: &[&str] = match family.kind.as_str() {
            "counter" => &["_total", "_created"],
            "info" => &["_info"],
            "gauge" => &[""],
            other => panic!("unexpected type {other}"),
        };
        assert!(
            allowed.contains(&suffix),
            "{name} in a {} family",
            family.kind
        );
        family.samples.push((name.to_string(), labels, value));
    }
    families
}

fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut chars = text.chars().peekable();
    loop {
        let key: String = chars.by_ref().take_while(|&c| c != '=').collect();
        if key.is_empty() {
            break;
        }
        assert_eq!(chars.next(), Some('"'));
        let mut value = String::new();
        loop {
            match chars.next().unwrap() {
                '\\' => value.push(match chars.next().unwrap() {
                    'n' => '\n',
                    c => c,
                }),
                '"' => break,
                c => value.push(c),
            }
        }
        labels.insert(key, value);
        if chars.peek() == Some(&',') {
            chars.next();
        }
    }
    labels
}

fn sample<'a>(
    f: &'a BTreeMap<String, Family>,
    family: &str,
    want: &[(&str, &str)],
) -> &'a (String, BTreeMap<String, String>, f64) {
    f[family]
        .samples
        .iter()
        .find(|(_, labels, _)| {
            want.iter()
                .all(|(k, v)| labels.get(*k).map(String::as_str) == Some(*v))
        })
        .unwrap_or_else(|| panic!("no {family} sample with {want:?}"))
}

#[tokio::test]
async fn metrics_are_base_units_from_the_stored_values() {
    let server = Server::start().await;
    let (status, content_type, text) = server.get("/metrics").await;
    assert_eq!(status, 200);
    assert_eq!(content_type, kamstrup_web::CONTENT_TYPE_OPENMETRICS);
    let families = parse_exposition(&text);
    if std::env::var_os("SHOW_METRICS").is_some() {
        println!("{text}");
    }

    let expect = [
        ("kamstrup_heat_energy_joules", "counter", Some("joules")),
        (
            "kamstrup_volume_cubic_meters",
            "counter",
            Some("cubic_meters"),
        ),
        ("kamstrup_temperature_celsius", "gauge", Some("celsius")),
        (
            "kamstrup_temperature_difference_celsius",
            "gauge",
            Some("celsius"),
        ),
        ("kamstrup_power_watts", "gauge", Some("watts")),
        (
            "kamstrup_flow_cubic_meters_per_second",
            "gauge",
            Some("cubic_meters_per_second"),
        ),
        ("kamstrup_operating_seconds", "counter", Some("seconds")),
        ("kamstrup_info_code", "gauge", None),
        (
            "kamstrup_last_read_timestamp_seconds",
            "gauge",
            Some("seconds"),
        ),
        ("kamstrup_read_errors", "counter", None),
        ("kamstrup_build", "info", None),
    ];
    for (name, kind, unit) in expect {
        let family = families
            .get(name)
            .unwrap_or_else(|| panic!("{name} missing:\n{text}"));
        assert_eq!(family.kind, kind, "{name}");
        assert_eq!(family.unit.as_deref(), unit, "{name}");
        assert!(!family.help.is_empty(), "{name} has help");
        assert!(!family.samples.is_empty(), "{name} has samples");
    }
    assert!(families["kamstrup_heat_energy_joules"]
        .help
        .contains("never reads the meter"));

    let heat = [
        ("serial", "71234567"),
        ("model", "MULTICAL 403"),
        ("meter", "heat"),
    ];
    // 133.43 GJ, exactly 133 430 000 000 J.
    let (name, _, joules) = sample(&families, "kamstrup_heat_energy_joules", &heat);
    assert_eq!(name, "kamstrup_heat_energy_joules_total");
    assert_eq!(*joules, 133_430_000_000.0);
    // 125.766 MWh = 125.766 × 3.6e9 J.
    let old = [("serial", "5310017"), ("model", ""), ("meter", "old-heat")];
    let (_, _, joules) = sample(&families, "kamstrup_heat_energy_joules", &old);
    assert_eq!(*joules, 452_757_600_000.0);
    let volume = sample(&families, "kamstrup_volume_cubic_meters", &heat).2;
    assert_eq!(volume, "940.29".parse::<f64>().unwrap());
    let inlet = [("serial", "71234567"), ("sensor", "inlet")];
    assert_eq!(
        sample(&families, "kamstrup_temperature_celsius", &inlet).2,
        60.75
    );
    let outlet = [("serial", "71234567"), ("sensor", "outlet")];
    assert_eq!(
        sample(&families, "kamstrup_temperature_celsius", &outlet).2,
        30.0
    );
    assert_eq!(sample(&families, "kamstrup_power_watts", &heat).2, 4_400.0);
    assert_eq!(
        sample(&families, "kamstrup_flow_cubic_meters_per_second", &heat).2,
        0.000_1
    );
    let hours = 9872 + (DAYS * PER_DAY - 1) / 4;
    assert_eq!(
        sample(&families, "kamstrup_operating_seconds", &heat).2,
        (hours * 3600) as f64
    );
    assert_eq!(sample(&families, "kamstrup_info_code", &old).2, 8.0);
    let taken = start() + Duration::minutes(15 * (DAYS * PER_DAY - 1));
    assert_eq!(
        sample(&families, "kamstrup_last_read_timestamp_seconds", &heat).2,
        taken.timestamp() as f64
    );
    let (name, _, errors) = sample(
        &families,
        "kamstrup_read_errors",
        &[("meter", "heat"), ("kind", "timeout")],
    );
    assert_eq!(name, "kamstrup_read_errors_total");
    assert_eq!(*errors, 2.0);
    assert_eq!(
        sample(&families, "kamstrup_read_errors", &[("meter", "ghost")]).2,
        1.0
    );
    let (name, labels, one) = sample(&families, "kamstrup_build", &[]);
    assert_eq!(name, "kamstrup_build_info");
    assert_eq!(labels["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(*one, 1.0);
    // The old meter reports no volume: nothing is exported for it (never a 0).
    assert!(families["kamstrup_volume_cubic_meters"]
        .samples
        .iter()
        .all(|(_, l, _)| l["serial"] != "5310017"));
    server.stop().await;
}

#[tokio::test]
async fn metrics_show_each_sinks_backlog_and_whether_it_keeps_failing() {
    let server = Server::start().await;
    let (_, _, text) = server.get("/metrics").await;
    let families = parse_exposition(&text);
    let file = [("sink", "file")];
    let mqtt = [("sink", "mqtt")];
    assert_eq!(sample(&families, "kamstrup_sink_up", &file).2, 1.0);
    assert_eq!(sample(&families, "kamstrup_sink_up", &mqtt).2, 0.0);
    assert_eq!(
        sample(&families, "kamstrup_sink_delivery_failures", &mqtt).2,
        4.0
    );
    let file_backlog = sample(&families, "kamstrup_sink_pending_readings", &file).2;
    let mqtt_backlog = sample(&families, "kamstrup_sink_pending_readings", &mqtt).2;
    assert!(mqtt_backlog > file_backlog, "{text}");
    assert_eq!(
        sample(
            &families,
            "kamstrup_sink_last_success_timestamp_seconds",
            &file
        )
        .2,
        1_773_618_300.0
    );
    assert_eq!(families["kamstrup_sink_up"].kind, "gauge");
    assert_eq!(families["kamstrup_sink_delivery_failures"].kind, "counter");
}

/// `[web] allow`: a client outside the list gets 403 on every path, one inside is served (the
/// HA add-on lets only the Supervisor's ingress proxy in). Real sockets: the client's address is
/// 127.0.0.1, the server only knows it from the connection.
#[tokio::test]
async fn clients_outside_web_allow_are_refused() {
    let only = |text: &str| {
        kamstrup_web::Access::only(vec![kamstrup_web::Access::parse_entry(text).unwrap()])
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kamstrup.db");
    seed(&path);
    let refused = Server::on_for(dir, path, only("172.30.32.2")).await;
    for p in ["/", "/api/meters", "/metrics", "/nothing"] {
        let (status, _, body) = refused.get(p).await;
        assert_eq!(status, 403, "{p}: {body}");
        assert!(
            body.contains("127.0.0.1 may not use this dashboard"),
            "{body}"
        );
        assert!(body.contains("[web] allow"), "{body}");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kamstrup.db");
    seed(&path);
    let served = Server::on_for(dir, path, only("127.0.0.0/8")).await;
    let (status, _, body) = served.get("/api/meters").await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn back_filled_periods_are_marked_and_the_newest_polled_value_stays_now() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kamstrup.db");
    let (heat, _) = seed(&path);
    {
        // Three hours before the polls began, back-filled later from the meter's hour logger.
        let mut store = Store::open(&path).unwrap();
        let records: Vec<kamstrup_store::LoggedRecord> = (1..=3)
            .map(|h| {
                let mut reading = heat_reading(0);
                reading.taken_at = start() - Duration::hours(4 - h);
                reading.source = kamstrup_reading::ReadingSource::HourLog;
                kamstrup_store::LoggedRecord {
                    meter: heat,
                    logged_at: reading.taken_at,
                    reading,
                    implausible: None,
                }
            })
            .collect();
        assert!(store
            .insert_logged(&records)
            .unwrap()
            .iter()
            .all(|i| i.is_new()));
    }
    let server = Server::on(dir, path).await;
    let (status, body) = server
        .json(&format!(
            "/api/meters/{HEAT}/readings?register=t1&from=2026-03-01T18:00:00Z&to=2026-03-02T06:00:00Z"
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        body["backfilled"],
        json!([{ "from": "2026-03-01T21:00:00Z", "to": "2026-03-02T00:00:00Z" }])
    );
    let (_, body) = server
        .json(&format!(
            "/api/meters/{HEAT}/readings?register=t1&from=2026-03-03T00:00:00Z&to=2026-03-04T00:00:00Z"
        ))
        .await;
    assert_eq!(body["backfilled"], json!([]));
    // "Now" is still the newest polled reading, not the records stored after it.
    let (_, meters) = server.json("/api/meters").await;
    let heat_json = meters["meters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["serial"].as_str().and_then(|s| s.parse::<u64>().ok()) == Some(HEAT))
        .unwrap()
        .clone();
    assert_eq!(heat_json["latest"]["source"], "poll");
    assert_eq!(
        heat_json["latest"]["taken_at"],
        (start() + Duration::minutes(15 * (DAYS * PER_DAY - 1)))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    server.stop().await;
}

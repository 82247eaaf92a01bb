//! Domoticz against a server that follows its `json.htm?type=command` API (errors as HTTP 200 with
//! `"status":"ERR"`, 404 for the removed `type=devices`, Basic auth, getdevices), and over MQTT.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use kamstrup_sinks::{BuildContext, DomoticzConfig, DomoticzSink, MqttConfig, Sink};

use crate::common::{ctx, delivered, no_files, observe, reading, reg, Broker};

#[derive(Clone)]
struct Device {
    name: String,
    kind: &'static str,
    svalue: String,
}

#[derive(Default)]
struct Dz {
    devices: BTreeMap<u64, Device>,
    updates: Vec<(u64, String, String)>,
    /// idx → how many more udevice calls answer ERR.
    fail: HashMap<u64, usize>,
    basic: Option<String>,
}

type Shared = Arc<Mutex<Dz>>;

fn data(d: &Device) -> String {
    match d.kind {
        "temperature" => format!("{} C", d.svalue),
        "counter" => {
            let n: i64 = d.svalue.parse().unwrap_or(0);
            format!("{}.{:03} m3", n / 1000, n % 1000)
        }
        "kwh" => {
            let wh: i64 = d
                .svalue
                .split(';')
                .nth(1)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            format!("{}.{:03} kWh", wh / 1000, wh % 1000)
        }
        _ => format!("{} GJ", d.svalue),
    }
}

async fn json_htm(
    State(dz): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> (StatusCode, Json<serde_json::Value>) {
    let mut dz = dz.lock().unwrap();
    if let Some(expected) = &dz.basic {
        let sent = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if sent != expected {
            return (StatusCode::UNAUTHORIZED, Json(serde_json::json!({})));
        }
    }
    if q.get("type").map(String::as_str) != Some("command") {
        return (StatusCode::NOT_FOUND, Json(serde_json::json!({})));
    }
    let err = |title: &str| {
        (
            StatusCode::OK,
            Json(serde_json::json!({"status": "ERR", "title": title})),
        )
    };
    match q.get("param").map(String::as_str) {
        Some("udevice") => {
            let idx: u64 = match q.get("idx").and_then(|i| i.parse().ok()) {
                Some(i) => i,
                None => return err("Update Device"),
            };
            if q.get("nvalue")
                .and_then(|n| n.parse::<i64>().ok())
                .is_none()
            {
                return err("Update Device");
            }
            let Some(svalue) = q.get("svalue").cloned() else {
                return err("Update Device");
            };
            if let Some(n) = dz.fail.get_mut(&idx) {
                if *n > 0 {
                    *n -= 1;
                    return err("Update Device");
                }
            }
            let Some(device) = dz.devices.get_mut(&idx) else {
                return err("Update Device");
            };
            device.svalue = svalue.clone();
            let nvalue = q["nvalue"].clone();
            dz.updates.push((idx, nvalue, svalue));
            (
                StatusCode::OK,
                Json(serde_json::json!({"status": "OK", "title": "Update Device"})),
            )
        }
        Some("getdevices") => {
            let list: Vec<serde_json::Value> = dz
                .devices
                .iter()
                .filter(|(idx, _)| q.get("rid").is_none_or(|r| r == &idx.to_string()))
                .map(|(idx, d)| serde_json::json!({"idx": idx.to_string(), "Name": d.name, "Data": data(d), "Type": "General"}))
                .collect();
            let mut body = serde_json::json!({"status": "OK", "title": "getdevices"});
            if !list.is_empty() {
                body["result"] = serde_json::Value::Array(list);
            }
            (StatusCode::OK, Json(body))
        }
        _ => err("Invalid command"),
    }
}

async fn start(
    devices: &[(u64, &str, &'static str, &str)],
    basic: Option<&str>,
) -> (String, Shared) {
    let mut dz = Dz::default();
    for (idx, name, kind, svalue) in devices {
        dz.devices.insert(
            *idx,
            Device {
                name: (*name).into(),
                kind,
                svalue: (*svalue).into(),
            },
        );
    }
    dz.basic = basic.map(str::to_owned);
    let shared = Arc::new(Mutex::new(dz));
    let app = Router::new()
        .route("/json.htm", get(json_htm))
        .with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, shared)
}

fn sink(cfg: serde_json::Value, ctx: &BuildContext<'_>) -> DomoticzSink {
    let cfg: DomoticzConfig = serde_json::from_value(cfg).unwrap();
    DomoticzSink::new(&cfg, None, ctx).unwrap()
}

fn heat(at: i64, e: &str) -> kamstrup_reading::Reading {
    reading(
        at,
        vec![
            reg("heat_energy", e, "GJ"),
            reg("volume", "520.410", "m³"),
            reg("t1", "76.85", "°C"),
            reg("power", "15.5", "kW"),
        ],
    )
}

#[tokio::test]
async fn udevice_svalue_formats_and_err_in_200_body() {
    let (url, dz) = start(
        &[
            (12, "Heat GJ", "custom", "0"),
            (13, "Inlet", "temperature", "0"),
            (14, "Water", "counter", "0"),
            (15, "Heat kWh", "kwh", "0;0"),
        ],
        None,
    )
    .await;
    let ctx = ctx();
    let mut s = sink(
        serde_json::json!({"url": url, "devices": [
            {"register": "heat_energy", "idx": 12},
            {"register": "t1", "idx": 13, "type": "temperature"},
            {"meter": "heat", "register": "volume", "idx": 14, "type": "counter"},
            {"register": "heat_energy", "idx": 15, "type": "kwh"},
            {"meter": "other", "register": "t1", "idx": 13},
        ]}),
        &ctx,
    );
    let r = heat(1_779_400_000, "84.817");
    s.deliver(&[delivered(1, "heat", 67_123_456, &r)])
        .await
        .unwrap();
    assert_eq!(
        dz.lock().unwrap().updates,
        [
            (12, "0".into(), "84.817".into()),
            (13, "0".into(), "76.85".into()),
            (14, "0".into(), "520410".into()),
            (15, "0".into(), "15500;23560278".into()),
        ]
    );

    // An unknown idx: Domoticz says ERR with HTTP 200, which must be an error.
    let mut s = sink(
        serde_json::json!({"url": url, "devices": [{"register": "t1", "idx": 99}]}),
        &ctx,
    );
    let err = s
        .deliver(&[delivered(2, "heat", 67_123_456, &r)])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "rejected");
    assert!(
        err.to_string().contains("status ERR: Update Device"),
        "{err}"
    );
}

#[tokio::test]
async fn modes_subtract_and_add_delta_survive_retries_without_double_counting() {
    let (url, dz) = start(
        &[
            (20, "Heat this year", "custom", "0"),
            (21, "Heat on 1 January", "custom", "80.000"),
            (30, "Heat summed", "custom", "1.000"),
            (31, "Heat previous", "custom", "84.000"),
        ],
        None,
    )
    .await;
    let ctx = ctx();
    let mut s = sink(
        serde_json::json!({"url": url, "devices": [
            {"register": "heat_energy", "idx": 20, "mode": "subtract", "idx2": 21},
            {"register": "heat_energy", "idx": 30, "mode": 2, "idx2": 31},
            {"register": "heat_energy", "idx": 31, "mode": 0},
        ]}),
        &ctx,
    );
    let value = |idx: u64| dz.lock().unwrap().devices[&idx].svalue.clone();

    // Reading 1; the mirror device 31 fails once: Err, then the retry writes only the rest.
    dz.lock().unwrap().fail.insert(31, 1);
    let r1 = heat(1_779_400_000, "84.817");
    let err = s
        .deliver(&[delivered(1, "heat", 1, &r1)])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "rejected");
    assert_eq!(
        (value(20), value(30), value(31)),
        ("4.817".into(), "1.817".into(), "84.000".into())
    );
    s.deliver(&[delivered(1, "heat", 1, &r1)]).await.unwrap();
    assert_eq!(
        (value(20), value(30), value(31)),
        ("4.817".into(), "1.817".into(), "84.817".into())
    );
    assert_eq!(
        dz.lock()
            .unwrap()
            .updates
            .iter()
            .filter(|u| u.0 == 30)
            .count(),
        1
    );

    // Reading 2 fails on the mirror; the daemon then moves on to reading 3 (state sinks only
    // get the newest): reading 2 is finished first, so no delta is lost or counted twice.
    dz.lock().unwrap().fail.insert(31, 1);
    let r2 = heat(1_779_400_900, "84.820");
    assert!(s.deliver(&[delivered(2, "heat", 1, &r2)]).await.is_err());
    let r3 = heat(1_779_401_800, "84.830");
    s.deliver(&[delivered(3, "heat", 1, &r3)]).await.unwrap();
    assert_eq!(
        (value(20), value(30), value(31)),
        ("4.830".into(), "1.830".into(), "84.830".into())
    );
}

#[tokio::test]
async fn check_lists_devices_and_flags_missing_ones() {
    let (url, _dz) = start(
        &[
            (12, "Heat GJ", "custom", "84.817"),
            (13, "Inlet", "temperature", "76.85"),
        ],
        None,
    )
    .await;
    let ctx = ctx();
    let mut s = sink(
        serde_json::json!({"url": url, "devices": [{"register": "heat_energy", "idx": 12}, {"register": "t1", "idx": 77}]}),
        &ctx,
    );
    let lines = s.check().await.unwrap();
    let text: Vec<String> = lines
        .iter()
        .map(|l| format!("{} | {} | {}", l.ok, l.item, l.detail))
        .collect();
    assert_eq!(
        text[1..],
        [
            "true | idx 12 | Heat GJ: 84.817 GJ".to_owned(),
            "true | idx 13 | Inlet: 76.85 C".to_owned(),
            "false | idx 77 | configured in [domoticz] devices but not found in Domoticz"
                .to_owned(),
        ]
    );
    assert!(lines[0].ok && lines[0].detail == "2 devices", "{text:?}");
}

#[tokio::test]
async fn basic_auth_accepted_and_refused() {
    // "kamstrup:s3cret" in base64.
    let (url, dz) = start(
        &[(12, "Heat GJ", "custom", "0")],
        Some("Basic a2Ftc3RydXA6czNjcmV0"),
    )
    .await;
    let env = |n: &str| (n == "DZ_PW").then(|| "s3cret".to_string());
    let good_ctx = BuildContext::new(&env, &no_files);
    let mut good = sink(
        serde_json::json!({"url": url, "username": "kamstrup", "password": "env:DZ_PW", "devices": [{"register": "heat_energy", "idx": 12}]}),
        &good_ctx,
    );
    let r = heat(1_779_400_000, "84.817");
    good.deliver(&[delivered(1, "heat", 1, &r)]).await.unwrap();
    assert_eq!(dz.lock().unwrap().updates.len(), 1);
    let ctx = ctx();
    let mut bad = sink(
        serde_json::json!({"url": url, "username": "kamstrup", "password": "nope", "devices": [{"register": "heat_energy", "idx": 12}]}),
        &ctx,
    );
    let err = bad
        .deliver(&[delivered(1, "heat", 1, &r)])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "auth");
    assert!(!err.to_string().contains("nope"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_transport_publishes_domoticz_in() {
    let broker = Broker::start();
    let (url, _dz) = start(&[(21, "Heat on 1 January", "custom", "80.000")], None).await;
    let cfg: DomoticzConfig = serde_json::from_value(serde_json::json!({
        "url": url, "transport": "mqtt", "devices": [
            {"register": "heat_energy", "idx": 12},
            {"register": "heat_energy", "idx": 20, "mode": "subtract", "idx2": 21},
            {"register": "volume", "idx": 14, "type": "counter", "divider": 100},
        ]
    }))
    .unwrap();
    let mqtt: MqttConfig =
        serde_json::from_value(serde_json::json!({"url": broker.url(), "timeout": 3})).unwrap();
    let ctx = ctx();
    let mut s = DomoticzSink::new(&cfg, Some(&mqtt), &ctx).unwrap();
    let port = broker.port;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let observer = tokio::spawn(async move {
        observe(
            port,
            &["domoticz/in"],
            Duration::from_secs(5),
            Some(Box::new(move |_| {
                let _ = tx.send(());
            })),
            |seen| seen.len() >= 3,
        )
        .await
    });
    rx.await.unwrap();
    let r = heat(1_779_400_000, "84.817");
    s.deliver(&[delivered(1, "heat", 1, &r)]).await.unwrap();
    let seen = observer.await.unwrap();
    let payloads: Vec<&str> = seen.iter().map(|s| s.payload.as_str()).collect();
    assert_eq!(
        payloads,
        [
            r#"{"command":"udevice","idx":12,"nvalue":0,"svalue":"84.817"}"#,
            r#"{"command":"udevice","idx":20,"nvalue":0,"svalue":"4.817"}"#,
            r#"{"command":"udevice","idx":14,"nvalue":0,"svalue":"52041"}"#,
        ]
    );
    assert!(seen.iter().all(|s| !s.retain));
    let lines = s.check().await.unwrap();
    assert!(lines[0].ok, "{lines:?}");
    s.shutdown().await;
}

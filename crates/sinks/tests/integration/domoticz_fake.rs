//! A stand-in for Domoticz 2025.1, used because no Domoticz can run here. It copies what a real
//! server (build 16785, run on loopback) was seen to do — integrations.md §C.6 — quirks included:
//!
//! * it closes the TCP connection after every response unless the request said
//!   `Connection: Keep-Alive`, and never announces it (no `Connection: close` header). A request
//!   a client still sends on such a connection gets no answer (the client sees "connection closed
//!   before message completed"); the stand-in counts those in `late_requests`;
//! * a fresh install trusts no network (401); Basic auth over plain HTTP only when allowed, and a
//!   Basic header that is not allowed turns even a trusted request into a 401;
//! * `type=devices` (the pre-2023 API) → 404 with an empty body; `getdevices&rid=N` for an unknown
//!   N → `"status":"OK"` without `result`;
//! * `Data` is a display string: Custom Sensor `%g UNIT` (6 significant digits), temperature
//!   `%.1f C` plus the float field `Temp` (float fields as jsoncpp writes doubles: `%.17g`, so
//!   66.02 is `66.019999999999996` and 100 is `100.0`), counters `AddjValue + count ÷ Divider` as `%.3f kWh`
//!   (Energy), `%.3f m3` (Gas, Water) or `%.10g UNIT` (Counter) with `Counter` = `Data`, the float
//!   `Divider` (1000 for Energy, 100 for Gas/Water unless the user set one) and `SwitchTypeVal`;
//! * `udevice` always answers HTTP 200, `"status":"ERR"` for an unknown idx or missing
//!   nvalue/svalue, and stores any svalue text (a negative counter too);
//! * over MQTT it reads `domoticz/in` (integer `nvalue`, string `svalue`, else dropped) and echoes
//!   each update on `domoticz/out`.
//!
//! It is written on raw TCP (not axum) because the connection handling is the point.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use rumqttc::{AsyncClient, Event, Incoming, MqttOptions, QoS};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Domoticz's counter meter types (`SwitchTypeVal`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Meter {
    Energy = 0,
    Gas = 1,
    Water = 2,
    Counter = 3,
}

#[derive(Clone, Debug)]
pub(crate) enum Kind {
    Custom(&'static str),
    Temperature,
    /// Meter type, user divider (None = the type's default), meter offset, units.
    Counter(Meter, Option<f64>, f64, &'static str),
    Kwh,
}

#[derive(Clone, Debug)]
pub(crate) struct Device {
    pub(crate) name: String,
    pub(crate) kind: Kind,
    pub(crate) svalue: String,
}

#[derive(Default)]
pub(crate) struct State {
    pub(crate) devices: BTreeMap<u64, Device>,
    /// Every accepted update: (idx, nvalue, svalue).
    pub(crate) updates: Vec<(u64, String, String)>,
    /// idx → how many more udevice calls answer ERR.
    pub(crate) fail: HashMap<u64, usize>,
    /// idx → how many more udevice calls are applied, then the connection is closed unanswered.
    pub(crate) apply_then_drop: HashMap<u64, usize>,
    /// How many more requests are read and then dropped unanswered (not applied).
    pub(crate) drop_unanswered: usize,
    /// "Local Networks (no username/password)" contains 127.0.0.1.
    pub(crate) trusted: bool,
    /// The accepted `Authorization` header value, if a user/password is set up.
    pub(crate) basic: Option<String>,
    /// "Allow Basic-Auth authentication over plain HTTP".
    pub(crate) basic_over_http: bool,
    /// TCP connections accepted and HTTP requests read.
    pub(crate) connections: usize,
    pub(crate) requests: usize,
    /// Requests sent on a connection after Domoticz had answered and closed it (never answered).
    pub(crate) late_requests: usize,
    /// How long after the broker delivered it an update from `domoticz/in` is applied: the real
    /// server applies it when its MQTT thread gets to it, after the broker acknowledged it.
    pub(crate) mqtt_delay: std::time::Duration,
}

pub(crate) type Shared = Arc<Mutex<State>>;

/// C's `%g` with `precision` significant digits, as Domoticz's `sprintf` prints it.
pub(crate) fn c_g(v: f64, precision: usize) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let sci = format!("{:.*e}", precision - 1, v);
    let (mantissa, exp) = sci.split_once('e').unwrap();
    let exp: i32 = exp.parse().unwrap();
    let trim = |s: &str| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_owned()
        } else {
            s.to_owned()
        }
    };
    if exp < -4 || exp >= precision as i32 {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim(mantissa), exp.abs())
    } else {
        let decimals = (precision as i32 - 1 - exp).max(0) as usize;
        trim(&format!("{v:.decimals$}"))
    }
}

/// Marks a JSON string as a double that [`body_text`] writes as jsoncpp does.
const DOUBLE_MARK: char = '\u{1}';

/// A double field (`Temp`, `Divider`, `AddjValue`) as jsoncpp writes it: `%.17g`, with `.0`
/// added when that has neither a point nor an exponent.
fn double(v: f64) -> serde_json::Value {
    let mut text = c_g(v, 17);
    if !text.contains(['.', 'e']) {
        text.push_str(".0");
    }
    serde_json::Value::String(format!("{DOUBLE_MARK}{text}"))
}

/// The JSON text of an answer, with the [`double`] fields written as numbers.
fn body_text(v: &serde_json::Value) -> String {
    let text = v.to_string();
    let mark = "\"\\u0001";
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(at) = rest.find(mark) {
        out.push_str(&rest[..at]);
        let number = &rest[at + mark.len()..];
        let end = number.find('"').unwrap();
        out.push_str(&number[..end]);
        rest = &number[end + 1..];
    }
    out.push_str(rest);
    out
}

fn atof(s: &str) -> f64 {
    s.trim().parse().unwrap_or(0.0)
}

impl Device {
    pub(crate) fn new(name: &str, kind: Kind, svalue: &str) -> Device {
        Device {
            name: name.into(),
            kind,
            svalue: svalue.into(),
        }
    }

    /// The `getdevices` entry, formatted as Domoticz formats it.
    fn json(&self, idx: u64) -> serde_json::Value {
        let mut v = serde_json::json!({"idx": idx.to_string(), "Name": self.name});
        match &self.kind {
            Kind::Custom(unit) => {
                v["Type"] = "General".into();
                v["SubType"] = "Custom Sensor".into();
                v["SensorUnit"] = (*unit).into();
                v["Data"] = format!("{} {unit}", c_g(atof(&self.svalue), 6)).into();
            }
            Kind::Temperature => {
                let t = atof(&self.svalue);
                v["Type"] = "Temp".into();
                v["SubType"] = "LaCrosse TX3".into();
                v["Temp"] = double(t);
                v["Data"] = format!("{t:.1} C").into();
            }
            Kind::Counter(meter, divider, offset, units) => {
                let divider = divider.unwrap_or(match meter {
                    Meter::Energy => 1000.0,
                    _ => 100.0,
                });
                let shown = offset + atof(&self.svalue) / divider;
                let text = match meter {
                    Meter::Energy => format!("{shown:.3} kWh"),
                    Meter::Gas | Meter::Water => format!("{shown:.3} m3"),
                    Meter::Counter if units.is_empty() => c_g(shown, 10),
                    Meter::Counter => format!("{} {units}", c_g(shown, 10)),
                };
                v["Type"] = "RFXMeter".into();
                v["SubType"] = "RFXMeter counter".into();
                v["SwitchTypeVal"] = (*meter as i64).into();
                v["Divider"] = double(divider);
                v["AddjValue"] = double(*offset);
                v["ValueUnits"] = (*units).into();
                v["Counter"] = text.clone().into();
                v["Data"] = text.into();
            }
            Kind::Kwh => {
                let mut parts = self.svalue.split(';');
                let w = atof(parts.next().unwrap_or("0"));
                let wh = atof(parts.next().unwrap_or("0"));
                v["Type"] = "General".into();
                v["SubType"] = "kWh".into();
                v["Data"] = format!("{:.3} kWh", wh / 1000.0).into();
                v["Usage"] = format!("{} Watt", c_g(w, 6)).into();
            }
        }
        v
    }

    /// What the device shows, as a number (for assertions).
    pub(crate) fn shown(&self, idx: u64) -> String {
        let v = self.json(idx);
        v["Data"].as_str().unwrap().to_owned()
    }
}

pub(crate) struct FakeDomoticz {
    pub(crate) url: String,
    pub(crate) state: Shared,
}

enum Answer {
    Status(u16, String),
    /// Close the connection without any answer.
    Drop,
}

impl FakeDomoticz {
    /// A server that trusts 127.0.0.1 (as users set it up for the seed script).
    pub(crate) async fn start(devices: Vec<(u64, Device)>) -> FakeDomoticz {
        let state = State {
            devices: devices.into_iter().collect(),
            trusted: true,
            ..State::default()
        };
        let state = Arc::new(Mutex::new(state));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let shared = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                shared.lock().unwrap().connections += 1;
                tokio::spawn(serve(stream, shared.clone()));
            }
        });
        FakeDomoticz { url, state }
    }

    pub(crate) fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }

    pub(crate) fn svalue(&self, idx: u64) -> String {
        self.with(|s| s.devices[&idx].svalue.clone())
    }

    pub(crate) fn shown(&self, idx: u64) -> String {
        self.with(|s| s.devices[&idx].shown(idx))
    }

    pub(crate) fn set(&self, idx: u64, svalue: &str) {
        self.with(|s| s.devices.get_mut(&idx).unwrap().svalue = svalue.into());
    }

    /// Also consume `domoticz/in` on the broker at `port`, as the MQTT Client Gateway does.
    pub(crate) async fn listen_mqtt(&self, port: u16) {
        let mut opts = MqttOptions::new("fake-domoticz", "127.0.0.1", port);
        opts.set_keep_alive(std::time::Duration::from_secs(5));
        let (client, mut events) = AsyncClient::new(opts, 64);
        client
            .subscribe("domoticz/in", QoS::AtLeastOnce)
            .await
            .unwrap();
        let state = self.state.clone();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let mut ready_tx = Some(ready_tx);
        tokio::spawn(async move {
            loop {
                match events.poll().await {
                    Ok(Event::Incoming(Incoming::SubAck(_))) => {
                        if let Some(tx) = ready_tx.take() {
                            let _ = tx.send(());
                        }
                    }
                    Ok(Event::Incoming(Incoming::Publish(p))) => {
                        let Ok(msg) = serde_json::from_slice::<serde_json::Value>(&p.payload)
                        else {
                            continue;
                        };
                        let command = msg
                            .get("command")
                            .and_then(|c| c.as_str())
                            .unwrap_or("udevice");
                        let (Some(idx), Some(nvalue), Some(svalue)) = (
                            msg.get("idx").and_then(|i| i.as_u64()),
                            msg.get("nvalue").and_then(|n| n.as_i64()),
                            msg.get("svalue").and_then(|s| s.as_str()),
                        ) else {
                            continue; // dropped as invalid, as Domoticz does
                        };
                        if command != "udevice" {
                            continue;
                        }
                        let delay = state.lock().unwrap().mqtt_delay;
                        if !delay.is_zero() {
                            tokio::time::sleep(delay).await;
                        }
                        let echo = {
                            let mut s = state.lock().unwrap();
                            let Some(d) = s.devices.get_mut(&idx) else {
                                continue;
                            };
                            d.svalue = svalue.to_owned();
                            s.updates.push((idx, nvalue.to_string(), svalue.to_owned()));
                            serde_json::json!({"idx": idx, "nvalue": nvalue, "svalue1": svalue})
                        };
                        let _ = client
                            .publish("domoticz/out", QoS::AtLeastOnce, false, echo.to_string())
                            .await;
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
                }
            }
        });
        ready_rx.await.unwrap();
    }
}

async fn serve(mut stream: TcpStream, state: Shared) {
    let mut buf = Vec::new();
    loop {
        // Read one request head (GET has no body).
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 2048];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        buf.drain(..head_end);
        let mut lines = head.split("\r\n");
        let request_line = lines.next().unwrap_or_default().to_owned();
        let headers: HashMap<String, String> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let keep_alive = headers
            .get("connection")
            .is_some_and(|c| c.eq_ignore_ascii_case("keep-alive"));
        let target = request_line.split(' ').nth(1).unwrap_or("/").to_owned();
        let answer = answer(&state, &target, &headers);
        let (code, body) = match answer {
            Answer::Drop => return,
            Answer::Status(code, body) => (code, body),
        };
        let reason = match code {
            200 => "OK",
            401 => "Unauthorized",
            _ => "Not Found",
        };
        let mut response = format!(
            "HTTP/1.1 {code} {reason}\r\nContent-Length: {}\r\nContent-Type: application/json;charset=UTF-8\r\n",
            body.len()
        );
        if keep_alive {
            response.push_str("Connection: Keep-Alive\r\nKeep-Alive: max=20, timeout=20\r\n");
        }
        response.push_str("\r\n");
        response.push_str(&body);
        if stream.write_all(response.as_bytes()).await.is_err() {
            return;
        }
        if !keep_alive {
            // Closed without a word, as the real server does. A request that still arrives
            // (from a client that kept the socket in its pool) is counted, never answered. The
            // real server closes a moment after its answer and a pooling client loses that race
            // 20–50 % of the time; the pause makes it lose every time, so a test sees it.
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            let _ = stream.shutdown().await;
            let mut chunk = [0u8; 2048];
            if let Ok(Ok(n)) = tokio::time::timeout(
                std::time::Duration::from_millis(500),
                stream.read(&mut chunk),
            )
            .await
            {
                if n > 0 {
                    state.lock().unwrap().late_requests += 1;
                }
            }
            return;
        }
    }
}

fn answer(state: &Shared, target: &str, headers: &HashMap<String, String>) -> Answer {
    let mut s = state.lock().unwrap();
    s.requests += 1;
    if s.drop_unanswered > 0 {
        s.drop_unanswered -= 1;
        return Answer::Drop;
    }
    let unauthorised = Answer::Status(401, String::new());
    let allowed = match headers.get("authorization") {
        Some(sent) => s.basic_over_http && s.basic.as_deref() == Some(sent.as_str()),
        None => s.trusted,
    };
    if !allowed {
        return unauthorised;
    }
    let url = reqwest::Url::parse(&format!("http://domoticz{target}")).unwrap();
    if url.path() != "/json.htm" {
        return Answer::Status(404, String::new());
    }
    let q: HashMap<String, String> = url.query_pairs().into_owned().collect();
    if q.get("type").map(String::as_str) != Some("command") {
        return Answer::Status(404, String::new());
    }
    let ok = |v: serde_json::Value| Answer::Status(200, body_text(&v));
    let err = |title: &str| ok(serde_json::json!({"status": "ERR", "title": title}));
    match q.get("param").map(String::as_str) {
        Some("udevice") => {
            let (Some(idx), Some(nvalue), Some(svalue)) = (
                q.get("idx").and_then(|i| i.parse::<u64>().ok()),
                q.get("nvalue").and_then(|n| n.parse::<i64>().ok()),
                q.get("svalue").cloned(),
            ) else {
                return err("Update Device");
            };
            if let Some(n) = s.fail.get_mut(&idx) {
                if *n > 0 {
                    *n -= 1;
                    return err("Update Device");
                }
            }
            let Some(device) = s.devices.get_mut(&idx) else {
                return err("Update Device");
            };
            device.svalue = svalue.clone();
            s.updates.push((idx, nvalue.to_string(), svalue));
            if let Some(n) = s.apply_then_drop.get_mut(&idx) {
                if *n > 0 {
                    *n -= 1;
                    return Answer::Drop;
                }
            }
            ok(serde_json::json!({"status": "OK", "title": "Update Device"}))
        }
        Some("getdevices") => {
            let rid = q.get("rid").and_then(|r| r.parse::<u64>().ok());
            let list: Vec<serde_json::Value> = s
                .devices
                .iter()
                .filter(|(idx, _)| rid.is_none_or(|r| r == **idx))
                .map(|(idx, d)| d.json(*idx))
                .collect();
            let mut body = serde_json::json!({"status": "OK", "title": "getdevices"});
            if !list.is_empty() {
                body["result"] = serde_json::Value::Array(list);
            }
            ok(body)
        }
        _ => err("Invalid command"),
    }
}

#[test]
fn doubles_are_written_as_jsoncpp_writes_them() {
    let v = serde_json::json!({"Temp": double(66.02), "Divider": double(100.0), "AddjValue": double(0.0), "Data": "66.0 C"});
    assert_eq!(
        body_text(&v),
        r#"{"AddjValue":0.0,"Data":"66.0 C","Divider":100.0,"Temp":66.019999999999996}"#
    );
}

#[test]
fn c_g_prints_like_sprintf() {
    assert_eq!(c_g(12345.678, 6), "12345.7");
    assert_eq!(c_g(1_234_567.891, 6), "1.23457e+06");
    assert_eq!(c_g(84.817, 6), "84.817");
    assert_eq!(c_g(0.000_012_5, 6), "1.25e-05");
    assert_eq!(c_g(100.0, 6), "100");
    assert_eq!(c_g(1_000_000.123, 6), "1e+06");
}

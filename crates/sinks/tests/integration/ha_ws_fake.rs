//! A FAKE of Home Assistant's websocket API, for the statistics tests (the real HA 2024.3.3 and
//! 2026.2.3 are exercised by `scripts/e2e-ha-statistics.sh`; a real HA cannot run in
//! `cargo test`). It mirrors what HA does, as read in `websocket_api/auth.py`,
//! `recorder/websocket_api.py` and `recorder/statistics.py` of those releases:
//!
//! * `auth_required` on connect; `auth_ok` for the right token, else `auth_invalid` and close;
//! * one `result` per command id; `unknown_command` for commands HA does not have (every
//!   `recorder/*` one when the recorder is not loaded);
//! * `recorder/import_statistics`: the metadata schema of the chosen release (2024.3:
//!   `has_mean` required, extra keys such as `mean_type` refused with voluptuous' message as
//!   `invalid_format`; 2025.11+: `mean_type`/`unit_class` accepted, `has_mean` optional),
//!   `source` must be `recorder` for an entity id, starts must be whole hours, an
//!   administrator is required; rows are upserted by (statistic id, start) and kept as floats;
//! * `recorder/statistics_during_period` (period `hour`, or `5minute` for the short-term
//!   table that HA's own compile continues from and an import never writes): rows with `start >= start_time` and
//!   `start < end_time`, `start`/`end` in milliseconds, the asked-for `sum`/`state`/`change`,
//!   `change` = this row's sum minus the previous row's (also one before the window);
//! * `recorder/get_statistics_metadata`, `config/entity_registry/list`, `auth/current_user`,
//!   `recorder/info`;
//! * `history/history_during_period` (`minimal_response`: the first entry of an entity carries
//!   its state as `s`, later ones only `s` and `lu`; entities without states are left out) and
//!   `get_states` (every entity's current state, the state as a string).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Timelike, Utc};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

/// One statistics row as HA stores it (floats).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct StatRow {
    pub(crate) state: f64,
    pub(crate) sum: f64,
}

#[derive(Default)]
pub(crate) struct FakeState {
    /// statistic id → start → row.
    pub(crate) rows: BTreeMap<String, BTreeMap<DateTime<Utc>, StatRow>>,
    /// statistic id → start → 5-minute row (HA's own compile only).
    pub(crate) short: BTreeMap<String, BTreeMap<DateTime<Utc>, StatRow>>,
    /// statistic id → unit.
    pub(crate) units: BTreeMap<String, String>,
    /// Every import's metadata, as received.
    pub(crate) imports: Vec<Value>,
    /// The raw text of every message received after auth.
    pub(crate) raw: Vec<String>,
    /// entity id → its recorded states, oldest first (the state history).
    pub(crate) history: BTreeMap<String, Vec<String>>,
    /// entity id → its current state (the state machine).
    pub(crate) current: BTreeMap<String, String>,
}

pub(crate) struct FakeHa {
    pub(crate) url: String,
    pub(crate) state: Arc<Mutex<FakeState>>,
}

#[derive(Clone)]
pub(crate) struct FakeOptions {
    pub(crate) version: &'static str,
    pub(crate) token: &'static str,
    pub(crate) recorder: bool,
    pub(crate) admin: bool,
    /// (unique_id, entity_id) of MQTT entities in the entity registry.
    pub(crate) registry: Vec<(String, String)>,
}

impl FakeOptions {
    pub(crate) fn new(version: &'static str) -> Self {
        FakeOptions {
            version,
            token: "secret-token-123",
            recorder: true,
            admin: true,
            registry: Vec::new(),
        }
    }
}

fn new_schema(version: &str) -> bool {
    let mut parts = version.split('.');
    let y: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let m: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    (y, m) >= (2025, 11)
}

fn ms(t: DateTime<Utc>) -> f64 {
    t.timestamp_millis() as f64
}

fn parse_time(v: &Value) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(v.as_str()?)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

impl FakeHa {
    pub(crate) async fn start(opts: FakeOptions) -> FakeHa {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(FakeState::default()));
        let shared = state.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let opts = opts.clone();
                let state = shared.clone();
                tokio::spawn(async move {
                    let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                        return;
                    };
                    let hello = json!({"type": "auth_required", "ha_version": opts.version});
                    if ws.send(Message::text(hello.to_string())).await.is_err() {
                        return;
                    }
                    let Some(Ok(Message::Text(auth))) = ws.next().await else {
                        return;
                    };
                    let auth: Value = serde_json::from_str(auth.as_str()).unwrap_or(Value::Null);
                    if auth["type"] != "auth" || auth["access_token"] != opts.token {
                        let no = json!({"type": "auth_invalid", "message": "Invalid access token or password"});
                        let _ = ws.send(Message::text(no.to_string())).await;
                        let _ = ws.close(None).await;
                        return;
                    }
                    let ok = json!({"type": "auth_ok", "ha_version": opts.version});
                    if ws.send(Message::text(ok.to_string())).await.is_err() {
                        return;
                    }
                    while let Some(Ok(msg)) = ws.next().await {
                        let Message::Text(text) = msg else { continue };
                        let answer = handle(&opts, &state, text.as_str());
                        if ws.send(Message::text(answer.to_string())).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        FakeHa {
            url: format!("http://127.0.0.1:{port}"),
            state,
        }
    }

    /// Rows HA compiled itself (seeded by a test).
    pub(crate) fn seed(&self, id: &str, unit: &str, rows: &[(&str, f64, f64)]) {
        let mut s = self.state.lock().unwrap();
        s.units.insert(id.to_owned(), unit.to_owned());
        let table = s.rows.entry(id.to_owned()).or_default();
        for (start, state, sum) in rows {
            let t = DateTime::parse_from_rfc3339(start)
                .unwrap()
                .with_timezone(&Utc);
            table.insert(
                t,
                StatRow {
                    state: *state,
                    sum: *sum,
                },
            );
        }
    }

    /// A 5-minute row HA compiled itself.
    pub(crate) fn seed_short(&self, id: &str, start: DateTime<Utc>, state: f64, sum: f64) {
        let mut s = self.state.lock().unwrap();
        s.short
            .entry(id.to_owned())
            .or_default()
            .insert(start, StatRow { state, sum });
    }

    pub(crate) fn rows(&self, id: &str) -> BTreeMap<DateTime<Utc>, StatRow> {
        self.state
            .lock()
            .unwrap()
            .rows
            .get(id)
            .cloned()
            .unwrap_or_default()
    }
}

fn error(id: &Value, code: &str, message: &str) -> Value {
    json!({"id": id, "type": "result", "success": false,
           "error": {"code": code, "message": message}})
}

fn ok(id: &Value, result: Value) -> Value {
    json!({"id": id, "type": "result", "success": true, "result": result})
}

fn handle(opts: &FakeOptions, state: &Mutex<FakeState>, text: &str) -> Value {
    let msg: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(_) => return json!({"type": "result", "success": false}),
    };
    let id = msg["id"].clone();
    let kind = msg["type"].as_str().unwrap_or("");
    let mut s = state.lock().unwrap();
    s.raw.push(text.to_owned());
    if kind.starts_with("recorder/") && !opts.recorder {
        return error(&id, "unknown_command", "Unknown command.");
    }
    match kind {
        "auth/current_user" => ok(
            &id,
            json!({"id": "u1", "name": "e2e", "is_owner": opts.admin, "is_admin": opts.admin}),
        ),
        "history/history_during_period" => {
            let mut result = serde_json::Map::new();
            for eid in msg["entity_ids"].as_array().into_iter().flatten() {
                let eid = eid.as_str().unwrap_or("");
                let Some(states) = s.history.get(eid).filter(|h| !h.is_empty()) else {
                    continue;
                };
                let rows: Vec<Value> = states
                    .iter()
                    .enumerate()
                    .map(|(i, st)| json!({"s": st, "lu": 1_764_000_000.0 + i as f64}))
                    .collect();
                result.insert(eid.to_owned(), Value::Array(rows));
            }
            ok(&id, Value::Object(result))
        }
        "get_states" => ok(
            &id,
            Value::Array(
                s.current
                    .iter()
                    .map(|(e, st)| json!({"entity_id": e, "state": st, "attributes": {}}))
                    .collect(),
            ),
        ),
        "recorder/info" => ok(
            &id,
            json!({"backlog": 0, "max_backlog": 40000, "migration_in_progress": false,
                   "migration_is_live": false, "recording": true, "thread_running": true}),
        ),
        "config/entity_registry/list" => ok(
            &id,
            Value::Array(
                opts.registry
                    .iter()
                    .map(|(u, e)| json!({"platform": "mqtt", "unique_id": u, "entity_id": e}))
                    .collect(),
            ),
        ),
        "recorder/get_statistics_metadata" => {
            let ids: Vec<String> = msg["statistic_ids"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect();
            let list: Vec<Value> = ids
                .iter()
                .filter_map(|i| {
                    s.units.get(i).map(|u| {
                        json!({"statistic_id": i, "source": "recorder", "has_sum": true,
                               "statistics_unit_of_measurement": u, "name": null})
                    })
                })
                .collect();
            ok(&id, Value::Array(list))
        }
        "recorder/statistics_during_period" => {
            let Some(from) = parse_time(&msg["start_time"]) else {
                return error(&id, "invalid_start_time", "Invalid start_time");
            };
            let to = parse_time(&msg["end_time"]);
            let types: Vec<&str> = msg["types"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str())
                .collect();
            let (tables, length) = match msg["period"].as_str() {
                Some("hour") => (&s.rows, chrono::TimeDelta::hours(1)),
                Some("5minute") => (&s.short, chrono::TimeDelta::minutes(5)),
                _ => return error(&id, "invalid_format", "value must be one of ['5minute', 'day', 'hour', 'month', 'week'] for dictionary value @ data['period']"),
            };
            let mut result = serde_json::Map::new();
            for sid in msg["statistic_ids"].as_array().into_iter().flatten() {
                let sid = sid.as_str().unwrap_or("");
                let Some(table) = tables.get(sid) else {
                    continue;
                };
                let mut prev: Option<f64> = None;
                let mut out = Vec::new();
                for (start, row) in table {
                    let inside = *start >= from && to.is_none_or(|to| *start < to);
                    if inside {
                        let mut r = json!({"start": ms(*start), "end": ms(*start + length)});
                        if types.contains(&"sum") {
                            r["sum"] = json!(row.sum);
                        }
                        if types.contains(&"state") {
                            r["state"] = json!(row.state);
                        }
                        if types.contains(&"change") {
                            r["change"] = json!(row.sum - prev.unwrap_or(row.sum));
                        }
                        out.push(r);
                    }
                    prev = Some(row.sum);
                }
                if !out.is_empty() {
                    result.insert(sid.to_owned(), Value::Array(out));
                }
            }
            ok(&id, Value::Object(result))
        }
        "recorder/import_statistics" => {
            let meta = &msg["metadata"];
            let Some(meta_map) = meta.as_object() else {
                return error(
                    &id,
                    "invalid_format",
                    "expected a dictionary for dictionary value @ data['metadata']",
                );
            };
            let new = new_schema(opts.version);
            let mut allowed = vec![
                "has_sum",
                "name",
                "source",
                "statistic_id",
                "unit_of_measurement",
                "has_mean",
            ];
            if new {
                allowed.extend(["mean_type", "unit_class"]);
            }
            let mut required = vec![
                "has_sum",
                "name",
                "source",
                "statistic_id",
                "unit_of_measurement",
            ];
            if !new {
                required.push("has_mean");
            }
            if let Some(extra) = meta_map.keys().find(|k| !allowed.contains(&k.as_str())) {
                return error(
                    &id,
                    "invalid_format",
                    &format!(
                        "extra keys not allowed @ data['metadata']['{extra}']. Got {}",
                        meta[extra]
                    ),
                );
            }
            if let Some(missing) = required.iter().find(|k| !meta_map.contains_key(**k)) {
                return error(
                    &id,
                    "invalid_format",
                    &format!("required key not provided @ data['metadata']['{missing}']. Got None"),
                );
            }
            if !opts.admin {
                return error(&id, "unauthorized", "Unauthorized");
            }
            let sid = meta["statistic_id"].as_str().unwrap_or("").to_owned();
            if sid.starts_with("sensor.") && meta["source"] != "recorder" {
                return error(&id, "home_assistant_error", "Invalid source");
            }
            let mut parsed = Vec::new();
            for st in msg["stats"].as_array().into_iter().flatten() {
                let Some(start) = parse_time(&st["start"]) else {
                    return error(
                        &id,
                        "invalid_format",
                        "Invalid datetime @ data['stats'][0]['start']",
                    );
                };
                if start.minute() != 0 || start.second() != 0 {
                    return error(&id, "home_assistant_error", "Invalid timestamp");
                }
                parsed.push((
                    start,
                    StatRow {
                        state: st["state"].as_f64().unwrap_or(f64::NAN),
                        sum: st["sum"].as_f64().unwrap_or(f64::NAN),
                    },
                ));
            }
            s.imports.push(meta.clone());
            s.units.insert(
                sid.clone(),
                meta["unit_of_measurement"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
            );
            let table = s.rows.entry(sid).or_default();
            for (start, row) in parsed {
                table.insert(start, row);
            }
            ok(&id, Value::Null)
        }
        _ => error(&id, "unknown_command", "Unknown command."),
    }
}

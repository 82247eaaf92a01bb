//! InfluxDB against a server that follows the v1 `/write` and v2 `/api/v2/write` APIs (auth,
//! database/bucket lookup, precision, 204 on success) plus `/ping`, buckets and SHOW DATABASES.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use kamstrup_sinks::{BuildContext, InfluxConfig, InfluxSink, Sink};

use crate::common::{ctx, delivered, no_files, standard, T0};

#[derive(Default)]
struct Influx {
    writes: Vec<(String, Vec<String>)>,
}

type Shared = Arc<Mutex<Influx>>;

const TOKEN: &str = "influx-token";
const BASIC: &str = "Basic a2Ftc3RydXA6czNjcmV0"; // kamstrup:s3cret

fn error(code: StatusCode, body: serde_json::Value) -> (StatusCode, Json<serde_json::Value>) {
    (code, Json(body))
}

/// Minimal line-protocol check: measurement[,tags] fields timestamp, all three present.
fn valid_line(line: &str, precision: &str) -> bool {
    let mut parts = Vec::new();
    let mut current = String::new();
    let (mut escaped, mut quoted) = (false, false);
    for c in line.chars() {
        if escaped {
            current.push(c);
            escaped = false;
            continue;
        }
        match c {
            '\\' => {
                escaped = true;
                current.push(c);
            }
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            ' ' if !quoted => parts.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    parts.push(current);
    let digits = match precision {
        "s" => 10,
        "ms" => 13,
        "us" => 16,
        _ => 19,
    };
    parts.len() == 3
        && !parts[1].is_empty()
        && parts[1]
            .split(',')
            .all(|f| f.contains('=') && !f.ends_with('i'))
        && parts[2].len() == digits
        && parts[2].parse::<i64>().is_ok()
}

fn record(
    influx: &Shared,
    precision: &str,
    body: &str,
) -> Result<(), (StatusCode, Json<serde_json::Value>)> {
    if !matches!(precision, "s" | "ms" | "us" | "ns") {
        return Err(error(
            StatusCode::BAD_REQUEST,
            serde_json::json!({"code": "invalid", "message": "invalid precision"}),
        ));
    }
    let lines: Vec<String> = body
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    if lines.is_empty() || !lines.iter().all(|l| valid_line(l, precision)) {
        return Err(error(
            StatusCode::BAD_REQUEST,
            serde_json::json!({"code": "invalid", "message": "unable to parse points"}),
        ));
    }
    influx
        .lock()
        .unwrap()
        .writes
        .push((precision.to_owned(), lines));
    Ok(())
}

async fn write_v2(
    State(influx): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
    body: String,
) -> (StatusCode, Json<serde_json::Value>) {
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(&format!("Token {TOKEN}"))
    {
        return error(
            StatusCode::UNAUTHORIZED,
            serde_json::json!({"code": "unauthorized", "message": "unauthorized access"}),
        );
    }
    if q.get("org").map(String::as_str) != Some("home")
        || q.get("bucket").map(String::as_str) != Some("energy")
    {
        return error(
            StatusCode::NOT_FOUND,
            serde_json::json!({"code": "not found", "message": "bucket not found"}),
        );
    }
    match record(
        &influx,
        q.get("precision").map_or("ns", String::as_str),
        &body,
    ) {
        Ok(()) => (StatusCode::NO_CONTENT, Json(serde_json::json!(null))),
        Err(e) => e,
    }
}

async fn write_v1(
    State(influx): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
    body: String,
) -> (StatusCode, Json<serde_json::Value>) {
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(BASIC) {
        return error(
            StatusCode::UNAUTHORIZED,
            serde_json::json!({"error": "authorization failed"}),
        );
    }
    let db = q.get("db").cloned().unwrap_or_default();
    if db != "heat" {
        return error(
            StatusCode::NOT_FOUND,
            serde_json::json!({"error": format!("database not found: \"{db}\"")}),
        );
    }
    match record(
        &influx,
        q.get("precision").map_or("ns", String::as_str),
        &body,
    ) {
        Ok(()) => (StatusCode::NO_CONTENT, Json(serde_json::json!(null))),
        Err(e) => e,
    }
}

async fn buckets(
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> (StatusCode, Json<serde_json::Value>) {
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(&format!("Token {TOKEN}"))
    {
        return error(
            StatusCode::UNAUTHORIZED,
            serde_json::json!({"code": "unauthorized", "message": "unauthorized access"}),
        );
    }
    let list: Vec<_> = ["energy", "other"]
        .iter()
        .filter(|b| q.get("name").is_none_or(|n| n == *b))
        .map(|b| serde_json::json!({"name": b}))
        .collect();
    (StatusCode::OK, Json(serde_json::json!({"buckets": list})))
}

async fn query_v1(headers: HeaderMap) -> (StatusCode, Json<serde_json::Value>) {
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(BASIC) {
        return error(
            StatusCode::UNAUTHORIZED,
            serde_json::json!({"error": "authorization failed"}),
        );
    }
    (
        StatusCode::OK,
        Json(
            serde_json::json!({"results": [{"statement_id": 0, "series": [
        {"name": "databases", "columns": ["name"], "values": [["_internal"], ["heat"]]}]}]}),
        ),
    )
}

async fn start() -> (String, Shared) {
    let shared = Shared::default();
    let app = Router::new()
        .route("/api/v2/write", post(write_v2))
        .route("/write", post(write_v1))
        .route("/api/v2/buckets", get(buckets))
        .route("/query", get(query_v1))
        .route("/ping", get(|| async { StatusCode::NO_CONTENT }))
        .with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, shared)
}

fn sink(cfg: serde_json::Value, ctx: &BuildContext<'_>) -> InfluxSink {
    InfluxSink::new(&serde_json::from_value::<InfluxConfig>(cfg).unwrap(), ctx).unwrap()
}

#[tokio::test]
async fn v2_backlog_keeps_each_readings_time() {
    let (url, influx) = start().await;
    let env = |n: &str| (n == "INFLUX_TOKEN").then(|| TOKEN.to_string());
    let ctx = BuildContext::new(&env, &no_files);
    let mut s = sink(
        serde_json::json!({"url": url, "org": "home", "bucket": "energy", "token": "env:INFLUX_TOKEN"}),
        &ctx,
    );
    let readings: Vec<_> = (0..3).map(standard).collect();
    let batch: Vec<_> = readings
        .iter()
        .enumerate()
        .map(|(i, r)| delivered(i as i64 + 1, "heat", 67_123_456, r))
        .collect();
    s.deliver(&batch).await.unwrap();
    let writes = influx.lock().unwrap().writes.clone();
    assert_eq!(writes.len(), 1);
    assert_eq!(writes[0].0, "s");
    let stamps: Vec<String> = writes[0]
        .1
        .iter()
        .map(|l| l.rsplit(' ').next().unwrap().to_owned())
        .collect();
    assert_eq!(
        stamps,
        [
            T0.to_string(),
            (T0 + 900).to_string(),
            (T0 + 1800).to_string()
        ]
    );
    assert!(writes[0].1[2].starts_with(
        r"kamstrup,meter=heat,serial=67123456,model=MULTICAL\ 403 heat_energy_gj=84.823,volume_m3=520.510,"
    ), "{}", writes[0].1[2]);
    let lines = s.check().await.unwrap();
    assert!(lines.iter().all(|l| l.ok), "{lines:?}");
}

#[tokio::test]
async fn v1_basic_auth_precision_and_errors() {
    let (url, influx) = start().await;
    let env = |n: &str| (n == "PW").then(|| "s3cret".to_string());
    let ctx = BuildContext::new(&env, &no_files);
    let mut s = sink(
        serde_json::json!({"url": url, "version": 1, "database": "heat", "username": "kamstrup", "password": "env:PW", "precision": "ms"}),
        &ctx,
    );
    let r = standard(0);
    s.deliver(&[delivered(1, "heat", 67_123_456, &r)])
        .await
        .unwrap();
    assert_eq!(
        influx.lock().unwrap().writes[0].1[0]
            .rsplit(' ')
            .next()
            .unwrap(),
        format!("{T0}000")
    );
    assert!(s.check().await.unwrap().iter().all(|l| l.ok));

    let mut wrong_db = sink(
        serde_json::json!({"url": url, "version": 1, "database": "nope", "username": "kamstrup", "password": "env:PW"}),
        &ctx,
    );
    let err = wrong_db
        .deliver(&[delivered(1, "heat", 67_123_456, &r)])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "rejected");
    assert!(err.to_string().contains("database not found"), "{err}");
    let lines = wrong_db.check().await.unwrap();
    assert!(
        !lines[1].ok && lines[1].detail.contains("nope not found"),
        "{lines:?}"
    );

    let other = BuildContext::new(&env_wrong, &no_files);
    let mut wrong_pw = sink(
        serde_json::json!({"url": url, "version": 1, "database": "heat", "username": "kamstrup", "password": "env:PW"}),
        &other,
    );
    let err = wrong_pw
        .deliver(&[delivered(1, "heat", 67_123_456, &r)])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "auth");
    assert!(!err.to_string().contains("wrong"));
}

fn env_wrong(n: &str) -> Option<String> {
    (n == "PW").then(|| "wrong".to_string())
}

#[tokio::test]
async fn v2_bad_token_and_backwards_counters() {
    let (url, influx) = start().await;
    let ctx = ctx();
    let mut bad = sink(
        serde_json::json!({"url": url, "org": "home", "bucket": "energy", "token": "nope"}),
        &ctx,
    );
    let r = standard(0);
    let err = bad
        .deliver(&[delivered(1, "heat", 1, &r)])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "auth");
    assert!(!bad.check().await.unwrap()[1].ok);

    let mut s = sink(
        serde_json::json!({"url": url, "org": "home", "bucket": "energy", "token": TOKEN, "field_units": false}),
        &ctx,
    );
    let later = standard(2);
    let earlier = standard(1);
    s.deliver(&[
        delivered(1, "heat", 1, &later),
        delivered(2, "heat", 1, &earlier),
    ])
    .await
    .unwrap();
    let writes = influx.lock().unwrap().writes.clone();
    let second = &writes[0].1[1];
    assert!(
        !second.contains("heat_energy") && !second.contains("volume") && !second.contains("hours"),
        "{second}"
    );
    assert!(second.contains("t1=76.85"), "{second}");
}

//! HA REST against a server that behaves like HA's `/api/states` (bearer auth, 201 then 200,
//! 401 for a bad token, 400 with a message for a bad body or entity id).

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use kamstrup_sinks::{BuildContext, HomeAssistantRestConfig, HomeAssistantRestSink, Sink};

use crate::common::{delivered, no_files, reading, reg, standard};

const TOKEN: &str = "long-lived-token";

#[derive(Default)]
struct Ha {
    states: BTreeMap<String, serde_json::Value>,
    known: HashSet<String>,
    codes: Vec<u16>,
}

type Shared = Arc<Mutex<Ha>>;

fn authorised(headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {TOKEN}"))
}

fn valid_entity_id(id: &str) -> bool {
    id.split_once('.').is_some_and(|(d, o)| {
        !d.is_empty()
            && !o.is_empty()
            && id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.')
    })
}

async fn post_state(
    State(ha): State<Shared>,
    Path(entity_id): Path<String>,
    headers: HeaderMap,
    body: String,
) -> (StatusCode, Json<serde_json::Value>) {
    let reply = |code: StatusCode, msg: &str| (code, Json(serde_json::json!({"message": msg})));
    if !authorised(&headers) {
        return reply(StatusCode::UNAUTHORIZED, "401: Unauthorized");
    }
    let Ok(data) = serde_json::from_str::<serde_json::Value>(&body) else {
        return reply(StatusCode::BAD_REQUEST, "Invalid JSON specified.");
    };
    if !valid_entity_id(&entity_id) {
        return reply(StatusCode::BAD_REQUEST, "Invalid entity ID specified.");
    }
    let Some(state) = data.get("state").and_then(|s| s.as_str()) else {
        return reply(StatusCode::BAD_REQUEST, "No state specified.");
    };
    if state.len() > 255 {
        return reply(StatusCode::BAD_REQUEST, "Invalid state specified.");
    }
    let mut ha = ha.lock().unwrap();
    let code = if ha.known.insert(entity_id.clone()) {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    ha.codes.push(code.as_u16());
    ha.states.insert(entity_id.clone(), data.clone());
    (
        code,
        Json(
            serde_json::json!({"entity_id": entity_id, "state": state, "attributes": data["attributes"]}),
        ),
    )
}

async fn api_root(headers: HeaderMap) -> (StatusCode, Json<serde_json::Value>) {
    if authorised(&headers) {
        (
            StatusCode::OK,
            Json(serde_json::json!({"message": "API running."})),
        )
    } else {
        (
            StatusCode::UNAUTHORIZED,
            Json(serde_json::json!({"message": "401: Unauthorized"})),
        )
    }
}

async fn start() -> (String, Shared) {
    let shared = Shared::default();
    let app = Router::new()
        .route("/api/", get(api_root))
        .route("/api/states/:entity_id", post(post_state))
        .with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, shared)
}

fn sink(url: &str, token: &str, entities: serde_json::Value) -> HomeAssistantRestSink {
    let cfg: HomeAssistantRestConfig = serde_json::from_value(serde_json::json!({
        "url": url, "token_file": "/etc/kamstrup/ha-token", "entities": entities, "timeout": "3s",
    }))
    .unwrap();
    let token = token.to_owned();
    let files = move |p: &std::path::Path| {
        if p == std::path::Path::new("/etc/kamstrup/ha-token") {
            Ok(format!("{token}\n"))
        } else {
            no_files(p)
        }
    };
    let env = |_: &str| -> Option<String> { None };
    HomeAssistantRestSink::new(&cfg, &BuildContext::new(&env, &files)).unwrap()
}

#[tokio::test]
async fn posts_states_201_then_200_with_seed_entities() {
    let (url, ha) = start().await;
    let mut rest = sink(
        &url,
        TOKEN,
        serde_json::json!([
            {"register": "heat_energy", "entity_id": "sensor.stadsverwarming_energy",
             "friendly_name": "Stadsverwarming energie", "icon": "mdi:gauge"},
            {"meter": "heat", "register": "t1", "entity_id": "sensor.stadsverwarming_temperature_in"},
        ]),
    );
    let r0 = standard(0);
    rest.deliver(&[delivered(1, "heat", 67_123_456, &r0)])
        .await
        .unwrap();
    let r1 = standard(1);
    rest.deliver(&[delivered(2, "heat", 67_123_456, &r1)])
        .await
        .unwrap();
    let checks = rest.check().await.unwrap();
    assert!(checks[0].ok, "{checks:?}");
    let ha = ha.lock().unwrap();
    assert_eq!(ha.codes, [201, 201, 200, 200]);
    assert_eq!(
        ha.states["sensor.stadsverwarming_energy"],
        serde_json::json!({"state": "84.820", "attributes": {
            "unit_of_measurement": "GJ", "device_class": "energy", "state_class": "total_increasing",
            "friendly_name": "Stadsverwarming energie", "icon": "mdi:gauge"}})
    );
    assert_eq!(
        ha.states["sensor.stadsverwarming_temperature_in"]["state"],
        "76.85"
    );
    assert_eq!(ha.states.len(), 2);
}

#[tokio::test]
async fn bad_token_is_an_auth_error_without_the_token() {
    let (url, ha) = start().await;
    let mut rest = sink(&url, "expired-token", serde_json::json!([]));
    let r = standard(0);
    let err = rest
        .deliver(&[delivered(1, "heat", 67_123_456, &r)])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "auth");
    assert!(err.to_string().contains("401"), "{err}");
    assert!(!err.to_string().contains("expired-token"));
    let checks = rest.check().await.unwrap();
    assert!(!checks[0].ok);
    assert!(ha.lock().unwrap().states.is_empty());
}

#[tokio::test]
async fn rejected_body_reports_has_reason_and_unavailable_is_posted() {
    let (url, ha) = start().await;
    // A state longer than 255 characters: HA answers 400 "Invalid state specified."
    let mut rest = sink(&url, TOKEN, serde_json::json!([]));
    let mut long = reg("note", "0", "");
    long.text = Some("x".repeat(300));
    let r = reading(1_779_400_000, vec![long]);
    let err = rest
        .deliver(&[delivered(1, "heat", 1, &r)])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "rejected");
    assert!(
        err.to_string()
            .contains("HTTP 400: Invalid state specified."),
        "{err}"
    );

    let r = standard(0);
    rest.deliver(&[delivered(2, "heat", 67_123_456, &r)])
        .await
        .unwrap();
    rest.meter_unavailable("heat", 67_123_456).await.unwrap();
    let ha = ha.lock().unwrap();
    assert_eq!(ha.states.len(), 9);
    assert!(ha.states.values().all(|s| s["state"] == "unavailable"));
    assert_eq!(
        ha.states["sensor.kamstrup_heat_flow_rest"]["attributes"]["unit_of_measurement"],
        "L/h"
    );
}

#[tokio::test]
async fn unreachable_is_a_connect_error() {
    let port = crate::common::free_port();
    let mut rest = sink(
        &format!("http://127.0.0.1:{port}"),
        TOKEN,
        serde_json::json!([]),
    );
    let r = standard(0);
    let err = rest
        .deliver(&[delivered(1, "heat", 1, &r)])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "connect", "{err}");
    assert!(err.to_string().contains(&format!("127.0.0.1:{port}")));
}

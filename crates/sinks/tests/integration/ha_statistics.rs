//! HA discovery with statistics import: batches that mix polled readings and hour-log records,
//! delivered through a real broker (states) and a fake of HA's websocket API (statistics; see
//! `ha_ws_fake` for what it mirrors). The real HAs are checked by scripts/e2e-ha-statistics.sh.

use std::time::Duration;

use kamstrup_reading::{Reading, ReadingSource};
use kamstrup_sinks::{HomeAssistantConfig, HomeAssistantSink, MqttConfig, Sink};

use crate::common::{ctx, delivered, reading, reg, retained, Broker};
use crate::ha_ws_fake::{FakeHa, FakeOptions};

const TOKEN: &str = "secret-token-123";
const ENERGY: &str = "sensor.kamstrup_heat_heat_energy";
const VOLUME: &str = "sensor.kamstrup_heat_volume";

fn at(text: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap()
        .timestamp()
}

fn sink(broker: &Broker, ha: &FakeHa, compat: &str, token: &str) -> HomeAssistantSink {
    let cfg: HomeAssistantConfig = serde_json::from_value(serde_json::json!({
        "republish_delay": "0s", "discovery": "entity", "compat": compat,
        "url": ha.url, "token": token,
    }))
    .unwrap();
    let mqtt: MqttConfig =
        serde_json::from_value(serde_json::json!({"url": broker.url(), "timeout": "5s"})).unwrap();
    HomeAssistantSink::new(&cfg, &mqtt, &ctx()).unwrap()
}

/// Hour-log records closing 08:00–09:00, 09:00–10:00 and 10:00–11:00 (the meter's clock a few
/// seconds off, as the simulator's), then the reading polled at 11:55 after the bridge came
/// back.
fn batch() -> Vec<Reading> {
    let mut out = Vec::new();
    for (t, e, v) in [
        ("2026-11-30T09:00:04Z", "320.25", "2482.19"),
        ("2026-11-30T10:00:04Z", "320.40", "2482.51"),
        ("2026-11-30T11:00:04Z", "320.55", "2482.80"),
    ] {
        let mut r = reading(
            at(t),
            vec![
                reg("heat_energy", e, "GJ"),
                reg("volume", v, "m³"),
                reg("t1", "67.71", "°C"),
                reg("flow", "148", "l/h"),
            ],
        );
        r.source = ReadingSource::HourLog;
        out.push(r);
    }
    out.push(reading(
        at("2026-11-30T11:55:00Z"),
        vec![
            reg("heat_energy", "320.62", "GJ"),
            reg("volume", "2482.95", "m³"),
            reg("t1", "70.01", "°C"),
        ],
    ));
    out
}

/// What HA compiled itself: rows up to the hour the bridge died in (its last state 320.10),
/// no rows in the gap, and the hour it came back in with the whole gap's increase. The volume
/// entity is new: no hourly row yet, only HA's first 5-minute row (its zero point).
fn seed(ha: &FakeHa) {
    let five_min_ago = chrono::Utc::now() - chrono::TimeDelta::minutes(5);
    ha.seed_short(VOLUME, five_min_ago, 2483.0, 0.0);
    ha.seed(
        ENERGY,
        "GJ",
        &[
            ("2026-11-30T06:00:00Z", 320.0, 10.0),
            ("2026-11-30T07:00:00Z", 320.1, 10.1),
            ("2026-11-30T11:00:00Z", 320.62, 10.62),
        ],
    );
}

fn changes(ha: &FakeHa, id: &str) -> Vec<(String, String, String)> {
    let rows = ha.rows(id);
    let mut prev: Option<f64> = None;
    rows.iter()
        .map(|(start, r)| {
            let change = prev.map_or(0.0, |p| r.sum - p);
            prev = Some(r.sum);
            (
                start.format("%H:%M").to_string(),
                format!("{:.4}", r.sum),
                format!("{change:.4}"),
            )
        })
        .collect()
}

async fn mixed_batch_on(version: &'static str, compat: &str) {
    let broker = Broker::start();
    let ha = FakeHa::start(FakeOptions::new(version)).await;
    seed(&ha);
    let mut sink = sink(&broker, &ha, compat, TOKEN);
    assert!(sink.accepts_logged());
    let readings = batch();
    let ds: Vec<_> = readings
        .iter()
        .enumerate()
        .map(|(i, r)| delivered(i as i64 + 1, "heat", 67_123_456, r))
        .collect();
    sink.deliver(&ds).await.unwrap();

    // States: the polled reading only.
    let seen = retained(broker.port, "kamstrup/#").await;
    let state: serde_json::Value =
        serde_json::from_str(&seen["kamstrup/67123456/state"].payload).unwrap();
    assert_eq!(state["heat_energy"].to_string(), "320.62");
    assert_eq!(state["taken_at"], "2026-11-30T11:55:00Z");
    assert!(
        seen.values().all(|s| !s.payload.contains("320.55")),
        "a logged value was published as state: {seen:?}"
    );

    // Energy: the gap hours continue HA's sum; the hour the bridge came back keeps its own
    // hour only (0.07 GJ = 320.62 − 320.55), nothing else of HA's changed.
    assert_eq!(
        changes(&ha, ENERGY),
        [
            ("06:00", "10.0000", "0.0000"),
            ("07:00", "10.1000", "0.1000"),
            ("08:00", "10.2500", "0.1500"),
            ("09:00", "10.4000", "0.1500"),
            ("10:00", "10.5500", "0.1500"),
            ("11:00", "10.6200", "0.0700"),
        ]
        .map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned()))
    );
    // Volume has no hourly row yet: the sums take the basis of HA's 5-minute row (state
    // 2483.00 at sum 0), which HA's next own compile continues from, so the hour after the
    // imported ones gets exactly its own increase too.
    assert_eq!(
        changes(&ha, VOLUME),
        [
            ("08:00", "-0.8100", "0.0000"),
            ("09:00", "-0.4900", "0.3200"),
            ("10:00", "-0.2000", "0.2900"),
        ]
        .map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned()))
    );
    {
        let s = ha.state.lock().unwrap();
        let new = compat != "2024.3";
        for meta in &s.imports {
            assert_eq!(meta["source"], "recorder");
            assert_eq!(meta.get("mean_type").is_some(), new, "{meta}");
            assert_eq!(meta.get("has_mean").is_some(), !new, "{meta}");
        }
        assert_eq!(s.units[VOLUME], "m³");
        // Exact decimal text on the wire (the sum continues HA's 10.1 exactly).
        assert!(
            s.raw
                .iter()
                .any(|m| m.contains(r#""start":"2026-11-30T08:00:00Z","state":320.25,"sum":10.25"#)),
            "{:?}",
            s.raw
        );
    }
    // A retry (the outbox re-sends the batch) writes the same rows again.
    let before = ha.rows(ENERGY);
    sink.deliver(&ds).await.unwrap();
    assert_eq!(ha.rows(ENERGY), before);
    sink.shutdown().await;
}

/// A first start: HA has no statistics of the entities yet. The energy entity's first recorded
/// state is where HA's own first compile will start its sum (0), so the imported hours end on
/// that basis and HA's first compiled hour continues them without a step; the volume entity's
/// state is not in the history yet (HA commits about once a second), so its current state is
/// the basis; with neither, the newest imported hour ends at sum 0. An entity HA has not
/// registered yet is waited for (HA creates discovered entities asynchronously).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_start_meets_the_first_compile_of_ha_without_a_step() {
    let broker = Broker::start();
    let ha = FakeHa::start(FakeOptions::new("2026.2.3")).await;
    {
        let mut s = ha.state.lock().unwrap();
        s.history.insert(
            ENERGY.into(),
            vec!["unavailable".into(), "320.62".into(), "320.63".into()],
        );
        s.current.insert(ENERGY.into(), "320.63".into());
    }
    // The volume entity appears in HA a moment after the import began (HA is still creating it).
    let state = ha.state.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let mut s = state.lock().unwrap();
        s.current.insert(VOLUME.into(), "2482.95".into());
    });
    let mut sink = sink(&broker, &ha, "2025.11", TOKEN);
    let readings = batch();
    let ds: Vec<_> = readings
        .iter()
        .enumerate()
        .map(|(i, r)| delivered(i as i64 + 1, "heat", 67_123_456, r))
        .collect();
    sink.deliver(&ds).await.unwrap();
    // sum = counter − 320.62 (HA's first state), so HA's first compiled hour (from 320.62 at
    // sum 0) meets the last imported hour (320.55 at −0.07) with exactly its own 0.07 GJ.
    assert_eq!(
        changes(&ha, ENERGY),
        [
            ("08:00", "-0.3700", "0.0000"),
            ("09:00", "-0.2200", "0.1500"),
            ("10:00", "-0.0700", "0.1500"),
        ]
        .map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned()))
    );
    assert_eq!(
        changes(&ha, VOLUME),
        [
            ("08:00", "-0.7600", "0.0000"),
            ("09:00", "-0.4400", "0.3200"),
            ("10:00", "-0.1500", "0.2900"),
        ]
        .map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned()))
    );
    sink.shutdown().await;

    // What HA 2024.3.3 was seen to do on a first start: the discovered entities are in its
    // registry and `unavailable` before the import asks, their first number arrives a moment
    // later (HA subscribes to the state topic after creating the entity). The number is
    // awaited, not mistaken for "no state".
    let mut opts = FakeOptions::new("2026.2.3");
    opts.registry = vec![
        ("kamstrup_67123456_heat_energy".into(), ENERGY.into()),
        ("kamstrup_67123456_volume".into(), VOLUME.into()),
    ];
    let ha = FakeHa::start(opts.clone()).await;
    {
        let mut s = ha.state.lock().unwrap();
        s.history.insert(ENERGY.into(), vec!["unavailable".into()]);
        s.current.insert(ENERGY.into(), "unavailable".into());
        s.current.insert(VOLUME.into(), "unknown".into());
    }
    let state = ha.state.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(700)).await;
        let mut s = state.lock().unwrap();
        s.current.insert(ENERGY.into(), "320.62".into());
        s.current.insert(VOLUME.into(), "2482.91".into());
    });
    let mut sink = self::sink(&broker, &ha, "2025.11", TOKEN);
    sink.deliver(&ds).await.unwrap();
    assert_eq!(
        changes(&ha, ENERGY).last().map(|(_, sum, _)| sum.clone()),
        Some("-0.0700".to_owned())
    );
    assert_eq!(
        changes(&ha, VOLUME).last().map(|(_, sum, _)| sum.clone()),
        Some("-0.1100".to_owned())
    );
    sink.shutdown().await;

    // Entities HA has (in its registry) that never get a number (10 s awaited): the newest
    // imported hour ends at sum 0.
    let ha = FakeHa::start(opts).await;
    {
        let mut s = ha.state.lock().unwrap();
        s.current.insert(ENERGY.into(), "unavailable".into());
    }
    let mut sink = self::sink(&broker, &ha, "2025.11", TOKEN);
    sink.deliver(&ds).await.unwrap();
    assert_eq!(
        changes(&ha, ENERGY).last().map(|(_, sum, _)| sum.clone()),
        Some("0.0000".to_owned())
    );
    sink.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_batch_ha_2024_3() {
    mixed_batch_on("2024.3.3", "2024.3").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_batch_current_ha() {
    mixed_batch_on("2026.2.3", "2025.11").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renamed_entity_found_by_unique_id() {
    let broker = Broker::start();
    let mut opts = FakeOptions::new("2026.2.3");
    opts.registry = vec![(
        "kamstrup_67123456_heat_energy".into(),
        "sensor.stadsverwarming".into(),
    )];
    let ha = FakeHa::start(opts).await;
    let mut sink = sink(&broker, &ha, "2025.11", TOKEN);
    let readings = batch();
    let ds: Vec<_> = readings
        .iter()
        .map(|r| delivered(1, "heat", 67_123_456, r))
        .collect();
    sink.deliver(&ds).await.unwrap();
    // Nothing in HA at all: the newest imported hour ends at sum 0, where HA's own first
    // compile starts.
    assert_eq!(
        changes(&ha, "sensor.stadsverwarming"),
        [
            ("08:00", "-0.3000", "0.0000"),
            ("09:00", "-0.1500", "0.1500"),
            ("10:00", "0.0000", "0.1500"),
        ]
        .map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned()))
    );
    assert!(ha.rows(ENERGY).is_empty());
    sink.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_typed_errors_and_never_show_the_token() {
    let broker = Broker::start();
    let readings = batch();
    let ds: Vec<_> = readings
        .iter()
        .map(|r| delivered(1, "heat", 67_123_456, r))
        .collect();

    // Current metadata keys sent to an HA 2024.3: HA's schema message comes back.
    let old = FakeHa::start(FakeOptions::new("2024.3.3")).await;
    let mut s = sink(&broker, &old, "2025.11", TOKEN);
    let e = s.deliver(&ds).await.unwrap_err();
    assert_eq!(e.kind(), "rejected", "{e}");
    assert!(e.to_string().contains("extra keys not allowed"), "{e}");
    s.shutdown().await;

    // A wrong token.
    let ha = FakeHa::start(FakeOptions::new("2026.2.3")).await;
    let wrong = "wrong-token-456";
    let mut s = sink(&broker, &ha, "2025.11", wrong);
    let e = s.deliver(&ds).await.unwrap_err();
    assert_eq!(e.kind(), "auth", "{e}");
    assert!(!format!("{e} {e:?}").contains(wrong));
    let lines = s.check().await.unwrap();
    let ws = lines
        .iter()
        .find(|l| l.item.contains("statistics"))
        .unwrap();
    assert!(!ws.ok && ws.detail.contains("auth"), "{ws:?}");
    assert!(!format!("{lines:?}").contains(wrong));
    s.shutdown().await;

    // No recorder: a clear error, and check says so.
    let mut opts = FakeOptions::new("2026.2.3");
    opts.recorder = false;
    let norec = FakeHa::start(opts).await;
    let mut s = sink(&broker, &norec, "2025.11", TOKEN);
    let e = s.deliver(&ds).await.unwrap_err();
    assert!(e.to_string().contains("no recorder"), "{e}");
    let lines = s.check().await.unwrap();
    assert!(lines
        .iter()
        .any(|l| !l.ok && l.detail.contains("no recorder")));
    s.shutdown().await;

    // Not an administrator.
    let mut opts = FakeOptions::new("2026.2.3");
    opts.admin = false;
    let user = FakeHa::start(opts).await;
    let mut s = sink(&broker, &user, "2025.11", TOKEN);
    let e = s.deliver(&ds).await.unwrap_err();
    assert_eq!(e.kind(), "auth", "{e}");
    assert!(e.to_string().contains("administrator"), "{e}");
    s.shutdown().await;

    // Nothing listening: a connect error (the outbox retries).
    let port = crate::common::free_port();
    let gone = FakeHa {
        url: format!("http://127.0.0.1:{port}"),
        state: Default::default(),
    };
    let mut s = sink(&broker, &gone, "2025.11", TOKEN);
    let e = s.deliver(&ds).await.unwrap_err();
    assert_eq!(e.kind(), "connect", "{e}");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_the_websocket_verdict() {
    let broker = Broker::start();
    let ha = FakeHa::start(FakeOptions::new("2024.3.3")).await;
    let mut s = sink(&broker, &ha, "2024.3", TOKEN);
    let lines = s.check().await.unwrap();
    let ws = lines
        .iter()
        .find(|l| l.item.contains("statistics"))
        .unwrap();
    assert!(ws.ok, "{ws:?}");
    assert!(ws.detail.contains("2024.3.3"), "{ws:?}");
    assert!(ws.detail.contains("without mean_type"), "{ws:?}");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_logged_records_are_not_taken_and_never_states() {
    let broker = Broker::start();
    let cfg: HomeAssistantConfig =
        serde_json::from_value(serde_json::json!({"republish_delay": "0s", "discovery": "entity"}))
            .unwrap();
    let mqtt: MqttConfig =
        serde_json::from_value(serde_json::json!({"url": broker.url(), "timeout": "5s"})).unwrap();
    let mut s = HomeAssistantSink::new(&cfg, &mqtt, &ctx()).unwrap();
    assert!(!s.accepts_logged());
    let readings = batch();
    let logged: Vec<_> = readings[..3]
        .iter()
        .map(|r| delivered(1, "heat", 67_123_456, r))
        .collect();
    // Should a logged record reach it anyway, nothing is published.
    s.deliver(&logged).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let seen = retained(broker.port, "kamstrup/+/state").await;
    assert!(seen.is_empty(), "{seen:?}");
    s.shutdown().await;
}

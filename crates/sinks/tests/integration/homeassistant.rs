//! Home Assistant MQTT discovery against a real broker: exact topics, payloads and retain flags,
//! HA's birth message, broker restart, stale-entity removal, availability and last will.

use std::time::Duration;

use kamstrup_sinks::{HomeAssistantConfig, HomeAssistantSink, MeterContext, MqttConfig, Sink};

use crate::common::{
    ctx, delivered, observe, publish, reading, reg, retained, standard, Broker, Seen,
};

fn meter(name: &str, registers: &[&str]) -> MeterContext {
    MeterContext {
        name: name.into(),
        interval: Some(Duration::from_secs(900)),
        registers: registers.iter().map(|r| (*r).to_owned()).collect(),
    }
}

const STANDARD: [&str; 9] = [
    "heat_energy",
    "volume",
    "t1",
    "t2",
    "t1_t2",
    "power",
    "flow",
    "hours",
    "info",
];

fn sink(
    broker: &Broker,
    extra: serde_json::Value,
    meters: Vec<MeterContext>,
    timeout: u64,
) -> HomeAssistantSink {
    // Per-entity discovery unless a test asks for device discovery (the topic-level tests below
    // were written for it; device discovery and the migration have their own tests).
    let mut cfg = serde_json::json!({"republish_delay": "0s", "discovery": "entity"});
    if let serde_json::Value::Object(m) = extra {
        for (k, v) in m {
            cfg[k] = v;
        }
    }
    let cfg: HomeAssistantConfig = serde_json::from_value(cfg).unwrap();
    let mqtt: MqttConfig = serde_json::from_value(
        serde_json::json!({"url": broker.url(), "timeout": format!("{timeout}s")}),
    )
    .unwrap();
    HomeAssistantSink::new(&cfg, &mqtt, &ctx().with_meters(meters)).unwrap()
}

/// A sink whose bridge has read the meters `known` before (its store's meters).
fn sink_knowing(
    broker: &Broker,
    client_id: &str,
    meters: Vec<MeterContext>,
    known: &[u64],
) -> HomeAssistantSink {
    let cfg: HomeAssistantConfig =
        serde_json::from_value(serde_json::json!({"republish_delay": "0s", "discovery": "entity"}))
            .unwrap();
    let mqtt: MqttConfig = serde_json::from_value(
        serde_json::json!({"url": broker.url(), "timeout": "5s", "client_id": client_id}),
    )
    .unwrap();
    let ctx = ctx().with_meters(meters).with_known_serials(known.to_vec());
    HomeAssistantSink::new(&cfg, &mqtt, &ctx).unwrap()
}

fn summary(seen: &std::collections::BTreeMap<String, Seen>) -> String {
    seen.values()
        .map(|s| {
            format!(
                "{} retain={} {}",
                s.topic,
                s.retain,
                if s.topic.ends_with("/config") && !s.topic.contains("heat_energy") {
                    "<config>"
                } else {
                    &s.payload
                }
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_topics_payloads_and_retain_flags() {
    let broker = Broker::start();
    let mut ha = sink(
        &broker,
        serde_json::json!({}),
        vec![meter("heat", &STANDARD)],
        5,
    );
    let r = standard(0);
    ha.deliver(&[delivered(1, "heat", 67_123_456, &r)])
        .await
        .unwrap();
    let seen = retained(broker.port, "#").await;
    insta::assert_snapshot!("broker_after_first_delivery", summary(&seen));
    assert!(seen.values().all(|s| s.retain));
    let energy = &seen["homeassistant/sensor/kamstrup_67123456_heat_energy/config"].payload;
    let v: serde_json::Value = serde_json::from_str(energy).unwrap();
    assert_eq!(v["device_class"], "energy");
    assert_eq!(v["state_class"], "total_increasing");
    assert_eq!(v["unit_of_measurement"], "GJ");
    assert_eq!(v["default_entity_id"], "sensor.kamstrup_heat_heat_energy");
    assert_eq!(v["expire_after"], 2700);
    assert_eq!(v["origin"]["name"], "kamstrup-bridge");
    assert_eq!(v["device"]["serial_number"], "67123456");
    let dt: serde_json::Value =
        serde_json::from_str(&seen["homeassistant/sensor/kamstrup_67123456_t1_t2/config"].payload)
            .unwrap();
    assert_eq!(dt["device_class"], "temperature_delta");
    let flow: serde_json::Value =
        serde_json::from_str(&seen["homeassistant/sensor/kamstrup_67123456_flow/config"].payload)
            .unwrap();
    assert_eq!(flow["unit_of_measurement"], "L/h");
    ha.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_ha_gets_m3_per_hour_exactly_and_no_delta_class() {
    let broker = Broker::start();
    let mut ha = sink(
        &broker,
        serde_json::json!({"compat": "2024.3", "base_topic": "heat", "discovery_prefix": "ha"}),
        vec![],
        5,
    );
    let r = standard(0);
    ha.deliver(&[delivered(1, "heat", 67_123_456, &r)])
        .await
        .unwrap();
    let seen = retained(broker.port, "#").await;
    let state = &seen["heat/67123456/state"].payload;
    assert!(
        state.starts_with(r#"{"heat_energy":84.817,"volume":520.410,"t1":76.85,"t2":25.26,"t1_t2":51.59,"power":15.5,"flow":0.267,"hours":12345,"info":0,"info_flags":{"#),
        "{state}"
    );
    assert!(state.contains(r#""problem":"OFF""#), "{state}");
    assert!(
        state.ends_with(r#"},"taken_at":"2026-05-21T21:46:40Z"}"#),
        "{state}"
    );
    let dt: serde_json::Value =
        serde_json::from_str(&seen["ha/sensor/kamstrup_67123456_t1_t2/config"].payload).unwrap();
    assert!(dt.get("device_class").is_none());
    assert_eq!(dt["unit_of_measurement"], "K");
    assert_eq!(dt["object_id"], "kamstrup_heat_t1_t2");
    let flow: serde_json::Value =
        serde_json::from_str(&seen["ha/sensor/kamstrup_67123456_flow/config"].payload).unwrap();
    assert_eq!(flow["unit_of_measurement"], "m³/h");
    assert_eq!(flow["device_class"], "volume_flow_rate");
    assert_eq!(dt["availability"][0]["topic"], "heat/status");
    ha.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn birth_message_republishes_configs_then_state() {
    let broker = Broker::start();
    let mut ha = sink(
        &broker,
        serde_json::json!({"republish_delay": "50ms"}),
        vec![],
        5,
    );
    let r = standard(0);
    ha.deliver(&[delivered(1, "heat", 67_123_456, &r)])
        .await
        .unwrap();
    let port = broker.port;
    let seen = observe(
        port,
        &["homeassistant/sensor/+/config", "kamstrup/+/state"],
        Duration::from_secs(3),
        Some(Box::new(move |_client| {
            tokio::spawn(
                async move { publish(port, "homeassistant/status", "online", false).await },
            );
        })),
        |seen| seen.iter().filter(|s| !s.retain).count() >= 11,
    )
    .await;
    let live: Vec<&Seen> = seen.iter().filter(|s| !s.retain).collect();
    assert_eq!(live.len(), 11, "{seen:#?}");
    // Nine registers and the bridge's "last successful read".
    assert_eq!(
        live.iter().filter(|s| s.topic.ends_with("/config")).count(),
        10
    );
    // Configs first, then the state, so HA knows the entities before the value arrives.
    assert_eq!(live[10].topic, "kamstrup/67123456/state");
    assert!(live[10].payload.contains(r#""heat_energy":84.817"#));
    // "offline" from HA (its last will) does not trigger anything.
    publish(port, "homeassistant/status", "offline", false).await;
    ha.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restart_fails_then_recovers_and_republishes() {
    let mut broker = Broker::start();
    let mut ha = sink(&broker, serde_json::json!({}), vec![], 2);
    let r0 = standard(0);
    ha.deliver(&[delivered(1, "heat", 67_123_456, &r0)])
        .await
        .unwrap();
    broker.stop();
    let r1 = standard(1);
    let err = ha
        .deliver(&[delivered(2, "heat", 67_123_456, &r1)])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "connect", "{err}");
    broker.restart();
    // The link reconnects with backoff (≤ 5 s); retry like the daemon would.
    let mut result = Err(err);
    for _ in 0..5 {
        result = ha.deliver(&[delivered(2, "heat", 67_123_456, &r1)]).await;
        if result.is_ok() {
            break;
        }
    }
    result.unwrap();
    // The new broker lost everything retained: configs were re-published on reconnect.
    let seen = retained(broker.port, "#").await;
    // Nine registers, "last successful read", "info problem" and the 15 named bits of a
    // MULTICAL 403.
    assert_eq!(
        seen.keys().filter(|t| t.ends_with("/config")).count(),
        26,
        "{seen:#?}"
    );
    assert!(seen["kamstrup/67123456/state"]
        .payload
        .contains(r#""heat_energy":84.820"#));
    assert_eq!(seen["kamstrup/status"].payload, "online");
    ha.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_entities_are_removed_but_nothing_else() {
    let broker = Broker::start();
    // A foreign retained config must survive.
    publish(
        broker.port,
        "homeassistant/sensor/zigbee_lamp/config",
        r#"{"name":"Lamp","state_topic":"zigbee2mqtt/lamp","origin":{"name":"Zigbee2MQTT"}}"#,
        true,
    )
    .await;
    // First run: two meters, three registers each.
    let mut first = sink(&broker, serde_json::json!({}), vec![], 5);
    let a = reading(
        1_779_400_000,
        vec![
            reg("heat_energy", "1.000", "GJ"),
            reg("volume", "2.00", "m³"),
            reg("t1", "70.0", "°C"),
        ],
    );
    first
        .deliver(&[delivered(1, "heat", 111, &a), delivered(2, "old", 222, &a)])
        .await
        .unwrap();
    first.shutdown().await;
    // Another bridge on the same broker (its own head on its own meter, 333): its entities are
    // not ours to remove.
    let mut other = sink_knowing(
        &broker,
        "kamstrup-other",
        vec![meter("flat", &["volume"])],
        &[333],
    );
    other
        .deliver(&[delivered(
            1,
            "flat",
            333,
            &reading(1_779_400_000, vec![reg("volume", "9.00", "m³")]),
        )])
        .await
        .unwrap();
    other.shutdown().await;
    // Second run: meter "old" is gone, and "heat" no longer reads t1. This bridge's store knows
    // both meters it read.
    let mut second = sink_knowing(
        &broker,
        "kamstrup",
        vec![meter("heat", &["heat_energy", "volume"])],
        &[111, 222],
    );
    let b = reading(
        1_779_400_900,
        vec![
            reg("heat_energy", "1.001", "GJ"),
            reg("volume", "2.01", "m³"),
        ],
    );
    second
        .deliver(&[delivered(3, "heat", 111, &b)])
        .await
        .unwrap();
    // The retained configs arrive on the subscription shortly after connecting.
    tokio::time::sleep(Duration::from_millis(300)).await;
    second
        .deliver(&[delivered(4, "heat", 111, &b)])
        .await
        .unwrap();
    let seen = retained(broker.port, "homeassistant/#").await;
    let mut topics: Vec<&String> = seen.keys().collect();
    topics.sort();
    assert_eq!(
        topics,
        [
            "homeassistant/sensor/kamstrup_111_heat_energy/config",
            "homeassistant/sensor/kamstrup_111_last_read/config",
            "homeassistant/sensor/kamstrup_111_volume/config",
            "homeassistant/sensor/kamstrup_333_last_read/config",
            "homeassistant/sensor/kamstrup_333_volume/config",
            "homeassistant/sensor/zigbee_lamp/config",
        ]
    );
    second.shutdown().await;
}

/// A reading stored under the old config and delivered after the restart (the daemon stopped
/// before delivering it) still carries the dropped register: it must not keep its entity.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reading_from_before_the_config_change_does_not_revive_dropped_registers() {
    let broker = Broker::start();
    let old = reading(
        1_779_400_000,
        vec![
            reg("heat_energy", "1.000", "GJ"),
            reg("volume", "2.00", "m³"),
            reg("t1", "70.0", "°C"),
        ],
    );
    let mut first = sink(&broker, serde_json::json!({}), vec![], 5);
    first
        .deliver(&[delivered(1, "heat", 111, &old)])
        .await
        .unwrap();
    first.shutdown().await;
    let mut second = sink(
        &broker,
        serde_json::json!({}),
        vec![meter("heat", &["heat_energy", "volume"])],
        5,
    );
    second
        .deliver(&[delivered(1, "heat", 111, &old)])
        .await
        .unwrap();
    let seen = retained(broker.port, "homeassistant/#").await;
    let mut topics: Vec<&String> = seen.keys().collect();
    topics.sort();
    assert_eq!(
        topics,
        [
            "homeassistant/sensor/kamstrup_111_heat_energy/config",
            "homeassistant/sensor/kamstrup_111_last_read/config",
            "homeassistant/sensor/kamstrup_111_volume/config",
        ]
    );
    let state = retained(broker.port, "kamstrup/111/state").await;
    let state = &state["kamstrup/111/state"].payload;
    assert!(!state.contains("\"t1\""), "{state}");
    second.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unavailable_shutdown_and_last_will() {
    let broker = Broker::start();
    let mut ha = sink(&broker, serde_json::json!({}), vec![], 5);
    let r = standard(0);
    ha.deliver(&[delivered(1, "heat", 67_123_456, &r)])
        .await
        .unwrap();
    ha.meter_unavailable("heat", 67_123_456).await.unwrap();
    let seen = retained(broker.port, "kamstrup/#").await;
    assert_eq!(seen["kamstrup/67123456/availability"].payload, "offline");
    assert_eq!(seen["kamstrup/status"].payload, "online");
    // The state keeps the last real value: never a 0.
    assert!(seen["kamstrup/67123456/state"].payload.contains("84.817"));
    ha.shutdown().await;
    let seen = retained(broker.port, "kamstrup/status").await;
    assert_eq!(seen["kamstrup/status"].payload, "offline");
}

/// `kamstrup check` beside a running daemon: the check's sink connects under its own client id
/// (the broker would otherwise end the daemon's session) and leaves "online" as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_beside_a_running_daemon_changes_nothing() {
    let broker = Broker::start();
    let mut daemon = sink(&broker, serde_json::json!({}), vec![], 5);
    let r = standard(0);
    daemon
        .deliver(&[delivered(1, "heat", 67_123_456, &r)])
        .await
        .unwrap();
    let cfg: HomeAssistantConfig =
        serde_json::from_value(serde_json::json!({"republish_delay": "0s"})).unwrap();
    let mqtt: MqttConfig =
        serde_json::from_value(serde_json::json!({"url": broker.url(), "timeout": "5s"})).unwrap();
    let mut check = HomeAssistantSink::new(&cfg, &mqtt, &ctx().for_probe()).unwrap();
    let lines = check.check().await.unwrap();
    assert!(lines.iter().all(|l| l.ok), "{lines:?}");
    assert!(
        lines[0].detail.contains("kamstrup-bridge-ha-check"),
        "{}",
        lines[0].detail
    );
    check.shutdown().await;
    let seen = retained(broker.port, "kamstrup/#").await;
    assert_eq!(seen["kamstrup/status"].payload, "online");
    assert_eq!(seen["kamstrup/67123456/availability"].payload, "online");
    // The daemon's connection was not taken over: it delivers at once, without reconnecting.
    daemon
        .deliver(&[delivered(2, "heat", 67_123_456, &standard(1))])
        .await
        .unwrap();
    daemon.shutdown().await;
}

/// The last will travels in CONNECT: `<base>/status` = `offline`, QoS 1, retained. (Checked on
/// the wire: rumqttd's own will publishing races with its disconnect handling.)
#[tokio::test]
async fn connect_carries_the_last_will() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = tokio::sync::oneshot::channel::<Vec<u8>>();
    tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 1024];
        let n = sock.read(&mut buf).await.unwrap();
        buf.truncate(n);
        let _ = tx.send(buf);
        let _ = sock.write_all(&[0x20, 0x02, 0x00, 0x00]).await;
        let mut rest = [0u8; 1024];
        while sock.read(&mut rest).await.unwrap_or(0) > 0 {}
    });
    let cfg: HomeAssistantConfig =
        serde_json::from_value(serde_json::json!({"base_topic": "dying"})).unwrap();
    let mqtt: MqttConfig = serde_json::from_value(
        serde_json::json!({"url": format!("mqtt://127.0.0.1:{port}"), "client_id": "dying"}),
    )
    .unwrap();
    let _ha = HomeAssistantSink::new(&cfg, &mqtt, &ctx()).unwrap();
    let packet = tokio::time::timeout(Duration::from_secs(5), rx)
        .await
        .unwrap()
        .unwrap();
    // Fixed header (CONNECT), remaining length (< 128 here), "MQTT", level 4, flags.
    assert_eq!(packet[0], 0x10);
    let body = &packet[2..];
    assert_eq!(&body[..7], b"\x00\x04MQTT\x04");
    let flags = body[7];
    assert_eq!(flags & 0x02, 0x02, "clean session");
    assert_eq!(flags & 0x04, 0x04, "will flag");
    assert_eq!((flags >> 3) & 0x03, 1, "will QoS 1");
    assert_eq!(flags & 0x20, 0x20, "will retain");
    let mut rest = &body[10..];
    let mut take = || {
        let len = usize::from(rest[0]) << 8 | usize::from(rest[1]);
        let s = String::from_utf8(rest[2..2 + len].to_vec()).unwrap();
        rest = &rest[2 + len..];
        s
    };
    assert_eq!(take(), "dying-ha");
    assert_eq!(take(), "dying/status");
    assert_eq!(take(), "offline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_zero_never_backwards_never_empty() {
    let broker = Broker::start();
    let mut ha = sink(&broker, serde_json::json!({}), vec![], 5);
    let r5 = standard(5);
    ha.deliver(&[delivered(5, "heat", 67_123_456, &r5)])
        .await
        .unwrap();
    let before = retained(broker.port, "kamstrup/67123456/state").await;
    // A reading with nothing in it publishes nothing.
    let empty = reading(1_779_500_000, vec![]);
    ha.deliver(&[delivered(6, "heat", 67_123_456, &empty)])
        .await
        .unwrap();
    assert_eq!(
        retained(broker.port, "kamstrup/67123456/state").await,
        before
    );
    // Counters that went backwards are left out; the temperatures still go through.
    let back = reading(
        1_779_600_000,
        vec![reg("heat_energy", "84.818", "GJ"), reg("t1", "60.00", "°C")],
    );
    ha.deliver(&[delivered(7, "heat", 67_123_456, &back)])
        .await
        .unwrap();
    let after = retained(broker.port, "kamstrup/67123456/state").await;
    assert_eq!(
        after["kamstrup/67123456/state"].payload,
        r#"{"t1":60.00,"taken_at":"2026-05-24T05:20:00Z"}"#
    );
    ha.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_discovery_one_config_per_meter_with_problems_and_health() {
    let broker = Broker::start();
    let mut ha = sink(
        &broker,
        serde_json::json!({"discovery": "auto"}),
        vec![meter("heat", &STANDARD)],
        5,
    );
    let r = standard(0);
    let mut d = delivered(1, "heat", 67_123_456, &r);
    d.read_errors_24h = Some(3);
    ha.deliver(&[d]).await.unwrap();
    let seen = retained(broker.port, "#").await;
    let configs: Vec<&String> = seen.keys().filter(|t| t.ends_with("/config")).collect();
    assert_eq!(
        configs,
        ["homeassistant/device/kamstrup_67123456/config"],
        "compat 2025.11: one device config, no per-entity configs"
    );
    let v: serde_json::Value =
        serde_json::from_str(&seen["homeassistant/device/kamstrup_67123456/config"].payload)
            .unwrap();
    assert_eq!(v["origin"]["name"], "kamstrup-bridge");
    assert_eq!(v["device"]["identifiers"][0], "kamstrup_67123456");
    let cmps = v["cmps"].as_object().unwrap();
    // 9 registers + "info problem" + 15 bits of a MULTICAL 403 + last read + read errors.
    assert_eq!(cmps.len(), 27, "{:?}", cmps.keys());
    let air = &cmps["kamstrup_67123456_info_v1_air"];
    assert_eq!(air["platform"], "binary_sensor");
    assert_eq!(air["device_class"], "problem");
    assert_eq!(air["entity_category"], "diagnostic");
    let errors = &cmps["kamstrup_67123456_read_errors_24h"];
    assert_eq!(errors["platform"], "sensor");
    // Health stays available while the meter is not: only the bridge's status counts.
    assert_eq!(errors["availability"].as_array().unwrap().len(), 1);
    assert_eq!(
        seen["kamstrup/67123456/health"].payload,
        r#"{"last_read":"2026-05-21T21:46:40Z","read_errors_24h":3}"#
    );
    // A failed read: the meter goes offline and the count goes up at once.
    ha.meter_unavailable("heat", 67_123_456).await.unwrap();
    let seen = retained(broker.port, "kamstrup/#").await;
    assert_eq!(seen["kamstrup/67123456/availability"].payload, "offline");
    assert_eq!(
        seen["kamstrup/67123456/health"].payload,
        r#"{"last_read":"2026-05-21T21:46:40Z","read_errors_24h":4}"#
    );
    ha.shutdown().await;
}

/// Switches layout from per-entity to device discovery and back; HA keeps entities through
/// `migrate_discovery` sent to each old topic before the new config, then the old ones go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_discovery_layout_migrates_then_clears_old_topics() {
    let broker = Broker::start();
    let meters = vec![meter("heat", &STANDARD)];
    let r = standard(0);
    let mut first = sink(
        &broker,
        serde_json::json!({"discovery": "entity"}),
        meters.clone(),
        5,
    );
    first
        .deliver(&[delivered(1, "heat", 67_123_456, &r)])
        .await
        .unwrap();
    first.shutdown().await;
    let before = retained(broker.port, "homeassistant/#").await;
    let old: Vec<String> = before.keys().cloned().collect();
    assert_eq!(old.len(), 26);

    for (mode, new_topic_is_device) in [("device", true), ("entity", false)] {
        let mut next = sink(
            &broker,
            serde_json::json!({"discovery": mode}),
            meters.clone(),
            5,
        );
        let r1 = standard(1);
        let port = broker.port;
        let (go, ready) = tokio::sync::oneshot::channel::<()>();
        let (seen, delivered_ok) = tokio::join!(
            observe(
                port,
                &["homeassistant/#"],
                Duration::from_millis(800),
                Some(Box::new(move |_| {
                    let _ = go.send(());
                })),
                |_| false
            ),
            async {
                // Deliver as soon as the observer listens, with the sink just connected: it
                // must wait for its own retained configs before choosing what to migrate.
                let _ = ready.await;
                next.deliver(&[delivered(2, "heat", 67_123_456, &r1)]).await
            }
        );
        delivered_ok.unwrap();
        let live: Vec<&Seen> = seen.iter().filter(|s| !s.retain).collect();
        let device = "homeassistant/device/kamstrup_67123456/config";
        let new_at = |t: &str| {
            live.iter()
                .position(|s| s.topic == t && !s.payload.is_empty())
        };
        let first_new = if new_topic_is_device {
            new_at(device).expect("device config published")
        } else {
            new_at("homeassistant/sensor/kamstrup_67123456_heat_energy/config")
                .expect("entity config published")
        };
        let olds: Vec<String> = if new_topic_is_device {
            old.clone()
        } else {
            vec![device.to_owned()]
        };
        for t in &olds {
            let migrate = live
                .iter()
                .position(|s| &s.topic == t && s.payload.contains("migrate_discovery"));
            let cleared = live
                .iter()
                .position(|s| &s.topic == t && s.payload.is_empty());
            assert!(
                matches!((migrate, cleared), (Some(m), Some(c)) if m < first_new && c > first_new),
                "{mode}: {t}: migrate {migrate:?}, new {first_new}, cleared {cleared:?}"
            );
        }
        let after = retained(port, "homeassistant/#").await;
        if new_topic_is_device {
            assert_eq!(after.keys().collect::<Vec<_>>(), [device]);
        } else {
            assert_eq!(after.len(), 26);
            assert!(!after.contains_key(device));
        }
        next.shutdown().await;
    }
}

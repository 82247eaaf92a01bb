//! MQTT JSON against a real broker: the seed payload, retain and QoS, login and its refusal.

use std::time::Duration;

use kamstrup_sinks::{BuildContext, MqttConfig, MqttJsonConfig, MqttJsonSink, Sink};

use crate::common::{ctx, delivered, no_files, observe, reading, reg, retained, standard, Broker};

fn sink(
    broker: &Broker,
    cfg: serde_json::Value,
    mqtt_extra: serde_json::Value,
    ctx: &BuildContext<'_>,
) -> MqttJsonSink {
    let cfg: MqttJsonConfig = serde_json::from_value(cfg).unwrap();
    let mut mqtt = serde_json::json!({"url": broker.url(), "timeout": "3s"});
    if let serde_json::Value::Object(m) = mqtt_extra {
        for (k, v) in m {
            mqtt[k] = v;
        }
    }
    let mqtt: MqttConfig = serde_json::from_value(mqtt).unwrap();
    MqttJsonSink::new(&cfg, &mqtt, ctx).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_preset_live_not_retained() {
    let broker = Broker::start();
    let ctx = ctx();
    let mut json = sink(
        &broker,
        serde_json::json!({"preset": "seed", "topic": "home-assistant/stadsverwarming"}),
        serde_json::json!({}),
        &ctx,
    );
    let r = standard(0);
    let port = broker.port;
    // Subscribe first, then deliver: a non-retained message is only seen live.
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let observer = tokio::spawn(async move {
        observe(
            port,
            &["home-assistant/#"],
            Duration::from_secs(5),
            Some(Box::new(move |_| {
                let _ = tx.send(());
            })),
            |seen| !seen.is_empty(),
        )
        .await
    });
    rx.await.unwrap();
    json.deliver(&[delivered(1, "heat", 67_123_456, &r)])
        .await
        .unwrap();
    let seen = observer.await.unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].topic, "home-assistant/stadsverwarming");
    assert_eq!(
        seen[0].payload,
        r#"{"Energy":84.817,"Volume":520.410,"Temperature_in":76.85,"Temperature_out":25.26}"#
    );
    assert!(retained(port, "home-assistant/#").await.is_empty());
    json.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retained_full_payload_per_meter_topic_qos0() {
    let broker = Broker::start();
    let ctx = ctx();
    let mut json = sink(
        &broker,
        serde_json::json!({"topic": "meters/{meter}/{serial}", "retain": true, "qos": 0}),
        serde_json::json!({}),
        &ctx,
    );
    let a = standard(0);
    let b = reading(1_779_400_000, vec![reg("t1", "70.5", "°C")]);
    json.deliver(&[
        delivered(1, "heat", 67_123_456, &a),
        delivered(2, "cold", 42, &b),
    ])
    .await
    .unwrap();
    let seen = retained(broker.port, "meters/#").await;
    assert_eq!(seen.len(), 2);
    assert!(seen["meters/heat/67123456"].retain);
    assert_eq!(
        seen["meters/cold/42"].payload,
        r#"{"meter":"cold","serial":42,"taken_at":"2026-05-21T21:46:40Z","t1":70.5,"units":{"t1":"°C"}}"#
    );
    // Nothing to say: nothing published (the retained message stays as it was).
    let empty = reading(1_779_401_000, vec![]);
    json.deliver(&[delivered(3, "cold", 42, &empty)])
        .await
        .unwrap();
    assert_eq!(
        retained(broker.port, "meters/cold/42").await["meters/cold/42"].payload,
        seen["meters/cold/42"].payload
    );
    json.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_accepted_and_refused() {
    let broker = Broker::start_with_auth("kamstrup", "s3cret");
    let env = |n: &str| (n == "MQTT_PW").then(|| "s3cret".to_string());
    let good_ctx = BuildContext::new(&env, &no_files);
    let mut good = sink(
        &broker,
        serde_json::json!({"retain": true}),
        serde_json::json!({"username": "kamstrup", "password": "env:MQTT_PW", "client_id": "good"}),
        &good_ctx,
    );
    let r = standard(0);
    good.deliver(&[delivered(1, "heat", 67_123_456, &r)])
        .await
        .unwrap();
    let lines = good.check().await.unwrap();
    assert!(lines[0].ok, "{lines:?}");

    let ctx = ctx();
    let mut bad = sink(
        &broker,
        serde_json::json!({}),
        serde_json::json!({"username": "kamstrup", "password": "badpass", "client_id": "bad"}),
        &ctx,
    );
    // rumqttd drops a bad login without a CONNACK code: a connect error with a hint.
    let err = bad
        .deliver(&[delivered(1, "heat", 67_123_456, &r)])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "connect", "{err}");
    assert!(
        err.to_string().contains("wrong username or password?"),
        "{err}"
    );
    assert!(!err.to_string().contains("wrong\""));
    let lines = bad.check().await.unwrap();
    assert!(!lines[0].ok, "{lines:?}");
    good.shutdown().await;
    bad.shutdown().await;
}

/// Brokers such as Mosquitto answer a bad login with CONNACK "not authorised" (code 5).
#[tokio::test]
async fn connack_not_authorised_is_an_auth_error() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 512];
                if sock.read(&mut buf).await.unwrap_or(0) > 0 && buf[0] == 0x10 {
                    // CONNACK: no session, return code 5 = not authorised.
                    let _ = sock.write_all(&[0x20, 0x02, 0x00, 0x05]).await;
                }
                let _ = sock.read(&mut buf).await;
            });
        }
    });
    let cfg: MqttJsonConfig = serde_json::from_value(serde_json::json!({})).unwrap();
    let mqtt: MqttConfig = serde_json::from_value(serde_json::json!({
        "url": format!("mqtt://127.0.0.1:{port}"), "timeout": "2s", "username": "u", "password": "secret-pw"
    }))
    .unwrap();
    let ctx = ctx();
    let mut s = MqttJsonSink::new(&cfg, &mqtt, &ctx).unwrap();
    let r = standard(0);
    let err = s.deliver(&[delivered(1, "heat", 1, &r)]).await.unwrap_err();
    assert_eq!(err.kind(), "auth", "{err}");
    assert!(err.to_string().contains("NotAuthorized"), "{err}");
    assert!(!err.to_string().contains("secret-pw"));
}

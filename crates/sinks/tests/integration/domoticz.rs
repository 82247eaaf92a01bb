//! Domoticz over HTTP and MQTT against [`FakeDomoticz`], a server that behaves as a real
//! Domoticz 2025.1 was seen to (connections closed after each answer, 401s, display strings):
//! every mapping type and mode, the user's counter types, exactness, exactly-once across restarts.

use std::sync::Arc;
use std::time::Duration;

use kamstrup_sinks::{
    BuildContext, DomoticzConfig, DomoticzSink, MqttConfig, Sink, SinkMemory, VolatileMemory,
};

use crate::common::{ctx, delivered, free_port, no_files, reading, reg, Broker, Logs};
use crate::domoticz_fake::{Device, FakeDomoticz, Kind, Meter};

fn sink(cfg: serde_json::Value, ctx: &BuildContext<'_>) -> DomoticzSink {
    let cfg: DomoticzConfig = serde_json::from_value(cfg).unwrap();
    DomoticzSink::new(&cfg, None, ctx).unwrap()
}

fn heat(at: i64, e: &str, v: &str) -> kamstrup_reading::Reading {
    reading(
        at,
        vec![
            reg("heat_energy", e, "GJ"),
            reg("volume", v, "m³"),
            reg("t1", "76.85", "°C"),
            reg("power", "15.5", "kW"),
        ],
    )
}

fn kwh_meter(at: i64, e: &str) -> kamstrup_reading::Reading {
    reading(at, vec![reg("heat_energy", e, "kWh")])
}

#[tokio::test]
async fn every_type_shows_the_meters_value_on_the_users_devices() {
    let dz = FakeDomoticz::start(vec![
        (12, Device::new("Heat GJ", Kind::Custom("GJ"), "0")),
        (13, Device::new("Inlet", Kind::Temperature, "0")),
        // What users pick for m³: Water and Gas (divider 100), and an Energy counter (1000, kWh).
        (
            14,
            Device::new("Water", Kind::Counter(Meter::Water, None, 0.0, ""), "0"),
        ),
        (
            16,
            Device::new("Gas", Kind::Counter(Meter::Gas, None, 0.0, ""), "0"),
        ),
        (
            17,
            Device::new(
                "Heat kWh counter",
                Kind::Counter(Meter::Energy, None, 0.0, ""),
                "0",
            ),
        ),
        // A meter offset of 500 m³ and a user-set divider of 1000 on a Water counter.
        (
            18,
            Device::new(
                "Water offset",
                Kind::Counter(Meter::Water, Some(1000.0), 500.0, ""),
                "0",
            ),
        ),
        (
            19,
            Device::new(
                "Heat GJ counter",
                Kind::Counter(Meter::Counter, Some(1000.0), 0.0, "GJ"),
                "0",
            ),
        ),
        (15, Device::new("Heat kWh", Kind::Kwh, "0;0")),
    ])
    .await;
    let ctx = ctx();
    let mut s = sink(
        serde_json::json!({"url": dz.url, "devices": [
            {"register": "heat_energy", "idx": 12},
            // Named meters on both writers of idx 13: a mapping for any meter beside one for
            // "other" would be two writers of one device (refused by validate).
            {"meter": "heat", "register": "t1", "idx": 13, "type": "temperature"},
            {"meter": "heat", "register": "volume", "idx": 14, "type": "counter"},
            {"register": "volume", "idx": 16, "type": "counter"},
            {"register": "heat_energy", "idx": 17, "type": "counter"},
            {"register": "volume", "idx": 18, "type": "counter"},
            {"register": "heat_energy", "idx": 19, "type": "counter"},
            {"register": "heat_energy", "idx": 15, "type": "kwh"},
            {"meter": "other", "register": "t1", "idx": 13},
        ]}),
        &ctx,
    );
    let r = heat(1_779_400_000, "84.817", "951.33");
    s.deliver(&[delivered(1, "heat", 67_123_456, &r)])
        .await
        .unwrap();
    let shown: Vec<String> = [12, 13, 14, 16, 17, 18, 19, 15]
        .iter()
        .map(|i| dz.shown(*i))
        .collect();
    assert_eq!(
        shown,
        [
            "84.817 GJ",
            "76.8 C",
            "951.330 m3",
            "951.330 m3",
            "23560.278 kWh",
            "951.330 m3",
            "84.817 GJ",
            "23560.278 kWh",
        ]
    );
    let svalues: Vec<String> = [12, 13, 14, 16, 17, 18, 19, 15]
        .iter()
        .map(|i| dz.svalue(*i))
        .collect();
    assert_eq!(
        svalues,
        [
            "84.817",
            "76.85",
            "95133",
            "95133",
            "23560278",
            "451330",
            "84817",
            "15500;23560278"
        ]
    );
    // Every request went on its own connection: nothing was sent on a socket Domoticz closed.
    let (connections, requests, late) = dz.with(|s| (s.connections, s.requests, s.late_requests));
    assert_eq!((connections, late), (requests, 0));
    assert!(requests >= 8 + 5, "{requests}");

    // An unknown idx: Domoticz says ERR with HTTP 200, which must be an error.
    let mut s = sink(
        serde_json::json!({"url": dz.url, "devices": [{"register": "t1", "idx": 99, "type": "temperature"}]}),
        &ctx,
    );
    let err = s
        .deliver(&[delivered(2, "heat", 67_123_456, &r)])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "rejected");
    assert!(
        err.to_string()
            .contains("idx 99: status ERR: Update Device"),
        "{err}"
    );
}

#[tokio::test]
async fn a_negative_count_is_refused_and_nothing_is_written() {
    let dz = FakeDomoticz::start(vec![(
        18,
        Device::new(
            "Water offset",
            Kind::Counter(Meter::Water, None, 1000.0, ""),
            "0",
        ),
    )])
    .await;
    let ctx = ctx();
    let mut s = sink(
        serde_json::json!({"url": dz.url, "devices": [{"register": "volume", "idx": 18, "type": "counter"}]}),
        &ctx,
    );
    let r = heat(1_779_400_000, "84.817", "951.33");
    let err = s.deliver(&[delivered(1, "heat", 1, &r)]).await.unwrap_err();
    assert_eq!(err.kind(), "rejected");
    assert!(err.to_string().contains("negative count"), "{err}");
    assert!(err.to_string().contains("meter offset 1000"), "{err}");
    assert!(dz.with(|s| s.updates.is_empty()));
    // The user lowers the offset: the same reading (kept in the outbox) goes through.
    dz.with(|s| {
        s.devices.get_mut(&18).unwrap().kind = Kind::Counter(Meter::Water, None, 900.0, "")
    });
    s.deliver(&[delivered(1, "heat", 1, &r)]).await.unwrap();
    assert_eq!(dz.shown(18), "951.330 m3");
}

#[tokio::test]
async fn modes_stay_exact_for_values_domoticz_shows_with_six_digits() {
    // A kWh meter past a million: Domoticz shows custom sensors as "1.23457e+06 kWh".
    let dz = FakeDomoticz::start(vec![
        (20, Device::new("Heat this year", Kind::Custom("kWh"), "0")),
        // The user's baseline on 1 January, typed in by hand: only Domoticz has it.
        (
            21,
            Device::new("Heat on 1 January", Kind::Custom("kWh"), "1000000"),
        ),
        (30, Device::new("Heat summed", Kind::Custom("kWh"), "1")),
        (
            31,
            Device::new("Heat previous", Kind::Custom("kWh"), "1234000"),
        ),
    ])
    .await;
    let ctx = ctx();
    let mut s = sink(
        serde_json::json!({"url": dz.url, "devices": [
            {"register": "heat_energy", "idx": 20, "mode": "subtract", "idx2": 21},
            {"register": "heat_energy", "idx": 30, "mode": "add-delta", "idx2": 31},
            {"register": "heat_energy", "idx": 31},
        ]}),
        &ctx,
    );
    let r1 = kwh_meter(1_779_400_000, "1234567.891");
    s.deliver(&[delivered(1, "heat", 1, &r1)]).await.unwrap();
    assert_eq!(dz.svalue(20), "234567.891");
    assert_eq!(dz.svalue(30), "568.891"); // 1 + (1234567.891 − 1234000)
    assert_eq!(dz.svalue(31), "1234567.891");
    assert_eq!(dz.shown(31), "1.23457e+06 kWh");

    // Next readings: idx 30 and 31 hold values we wrote; their display is rounded, ours is not.
    for (id, value, sum) in [
        (2, "1234568.002", "569.002"),
        (3, "1234568.113", "569.113"),
        (4, "1234570.000", "571.000"),
    ] {
        let r = kwh_meter(1_779_400_000 + id * 900, value);
        s.deliver(&[delivered(id, "heat", 1, &r)]).await.unwrap();
        assert_eq!(dz.svalue(30), sum, "reading {id}");
    }
    // Someone resets the sum by hand: detected, and counting goes on from their value.
    dz.set(30, "5.5");
    let r5 = kwh_meter(1_779_404_500, "1234570.100");
    s.deliver(&[delivered(5, "heat", 1, &r5)]).await.unwrap();
    assert_eq!(dz.svalue(30), "5.600");
    assert_eq!(dz.svalue(20), "234570.100");
}

#[tokio::test]
async fn add_delta_is_applied_exactly_once_across_restarts() {
    let dz = FakeDomoticz::start(vec![
        (30, Device::new("Heat summed", Kind::Custom("GJ"), "1")),
        (31, Device::new("Heat previous", Kind::Custom("GJ"), "84")),
        (
            32,
            Device::new(
                "Volume summed",
                Kind::Counter(Meter::Water, None, 0.0, ""),
                "0",
            ),
        ),
        (
            33,
            Device::new(
                "Volume previous",
                Kind::Counter(Meter::Water, None, 0.0, ""),
                "95000",
            ),
        ),
    ])
    .await;
    let ctx = ctx();
    // The daemon's store in production; shared by the sink "before" and "after" the restart.
    let memory: Arc<dyn SinkMemory> = Arc::new(VolatileMemory::default());
    let cfg = serde_json::json!({"url": dz.url, "devices": [
        {"register": "heat_energy", "idx": 30, "mode": "add-delta", "idx2": 31},
        {"register": "heat_energy", "idx": 31},
        {"register": "volume", "idx": 32, "type": "counter", "mode": "add-delta", "idx2": 33},
        {"register": "volume", "idx": 33, "type": "counter"},
    ]});
    let start = || {
        let mut s = sink(cfg.clone(), &ctx);
        s.use_memory(memory.clone());
        s
    };
    let mut s = start();
    let r1 = heat(1_779_400_000, "84.817", "951.33");
    s.deliver(&[delivered(1, "heat", 1, &r1)]).await.unwrap();
    assert_eq!(
        (dz.svalue(30), dz.svalue(32)),
        ("1.817".into(), "133".into())
    );

    // Reading 2: idx 30 is written, then the mirror 31 fails, and the process dies.
    dz.with(|st| st.fail.insert(31, 1));
    let r2 = heat(1_779_400_900, "84.820", "951.40");
    assert!(s.deliver(&[delivered(2, "heat", 1, &r2)]).await.is_err());
    drop(s);
    assert_eq!(dz.svalue(30), "1.820");
    assert_eq!(dz.svalue(31), "84.817");

    // After the restart the daemon hands over the newest reading, 3: reading 2 is finished
    // first with the values saved for it, then 3 adds only its own growth.
    let mut s = start();
    let r3 = heat(1_779_401_800, "84.830", "951.50");
    s.deliver(&[delivered(3, "heat", 1, &r3)]).await.unwrap();
    assert_eq!(
        (dz.svalue(30), dz.svalue(31), dz.svalue(32), dz.svalue(33)),
        (
            "1.830".into(),
            "84.830".into(),
            "150".into(),
            "95150".into()
        )
    );

    // Reading 4: Domoticz applies the write to 30 but the answer never arrives (twice, so the
    // one resend fails too) and the process dies. Re-sent after the restart: still once.
    dz.with(|st| st.apply_then_drop.insert(30, 2));
    let r4 = heat(1_779_402_700, "84.900", "951.60");
    assert!(s.deliver(&[delivered(4, "heat", 1, &r4)]).await.is_err());
    drop(s);
    let mut s = start();
    s.deliver(&[delivered(4, "heat", 1, &r4)]).await.unwrap();
    assert_eq!(
        (dz.svalue(30), dz.svalue(31)),
        ("1.900".into(), "84.900".into())
    );
    let writes_30: Vec<String> = dz.with(|st| {
        st.updates
            .iter()
            .filter(|u| u.0 == 30)
            .map(|u| u.2.clone())
            .collect()
    });
    assert_eq!(
        writes_30,
        ["1.817", "1.820", "1.830", "1.900", "1.900", "1.900"]
    );
}

#[tokio::test]
async fn a_connection_closed_before_the_answer_is_sent_again() {
    let dz = FakeDomoticz::start(vec![(12, Device::new("Heat GJ", Kind::Custom("GJ"), "0"))]).await;
    dz.with(|s| s.drop_unanswered = 1);
    let ctx = ctx();
    let mut s = sink(
        serde_json::json!({"url": dz.url, "devices": [{"register": "heat_energy", "idx": 12}]}),
        &ctx,
    );
    let r = heat(1_779_400_000, "84.817", "951.33");
    s.deliver(&[delivered(1, "heat", 1, &r)]).await.unwrap();
    assert_eq!(dz.svalue(12), "84.817");
    assert_eq!(dz.with(|s| (s.requests, s.connections)), (2, 2));
}

#[tokio::test]
async fn unauthorised_answers_name_the_fix_and_never_the_password() {
    let dz = FakeDomoticz::start(vec![(12, Device::new("Heat GJ", Kind::Custom("GJ"), "0"))]).await;
    let r = heat(1_779_400_000, "84.817", "951.33");
    let devices = serde_json::json!([{"register": "heat_energy", "idx": 12}]);
    let ctx = ctx();
    // A fresh Domoticz trusts nobody.
    dz.with(|s| s.trusted = false);
    let mut anonymous = sink(serde_json::json!({"url": dz.url, "devices": devices}), &ctx);
    let err = anonymous
        .deliver(&[delivered(1, "heat", 1, &r)])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "auth");
    assert!(err.to_string().contains("Trusted Networks"), "{err}");
    let lines = anonymous.check().await.unwrap();
    assert!(
        !lines[0].ok && lines[0].detail.contains("Trusted Networks"),
        "{lines:?}"
    );

    // "kamstrup:s3cret" in base64; Basic over plain HTTP is off by default: refused even from a
    // trusted network.
    dz.with(|s| {
        s.trusted = true;
        s.basic = Some("Basic a2Ftc3RydXA6czNjcmV0".into());
    });
    let env = |n: &str| (n == "DZ_PW").then(|| "s3cret".to_string());
    let with_password = BuildContext::new(&env, &no_files);
    let cfg = serde_json::json!({"url": dz.url, "username": "kamstrup", "password": "env:DZ_PW", "devices": devices});
    let mut basic = sink(cfg.clone(), &with_password);
    let err = basic
        .deliver(&[delivered(1, "heat", 1, &r)])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "auth");
    assert!(err.to_string().contains("Allow Basic-Auth"), "{err}");
    assert!(!err.to_string().contains("s3cret"));
    // `check` gives the same fix.
    let lines = basic.check().await.unwrap();
    assert!(
        !lines[0].ok
            && lines[0].detail.contains("Allow Basic-Auth")
            && !lines[0].detail.contains("s3cret"),
        "{lines:?}"
    );

    dz.with(|s| s.basic_over_http = true);
    basic.deliver(&[delivered(1, "heat", 1, &r)]).await.unwrap();
    assert_eq!(dz.svalue(12), "84.817");
    let mut wrong = sink(
        serde_json::json!({"url": dz.url, "username": "kamstrup", "password": "nope", "devices": devices}),
        &ctx,
    );
    let err = wrong
        .deliver(&[delivered(2, "heat", 1, &r)])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "auth");
    assert!(!err.to_string().contains("nope"));
}

#[tokio::test]
async fn check_does_what_run_will_do_and_names_each_problem() {
    let dz = FakeDomoticz::start(vec![
        (12, Device::new("Heat GJ", Kind::Custom("GJ"), "84.817")),
        (13, Device::new("Inlet", Kind::Temperature, "76.85")),
        (
            14,
            Device::new("Water", Kind::Counter(Meter::Water, None, 0.0, ""), "95133"),
        ),
        (
            21,
            Device::new("Heat on 1 January", Kind::Custom("GJ"), "80"),
        ),
    ])
    .await;
    let ctx = ctx();
    let mut s = sink(
        serde_json::json!({"url": dz.url, "devices": [
            {"register": "heat_energy", "idx": 12},
            {"register": "t1", "idx": 13},
            {"register": "volume", "idx": 14, "type": "counter", "divider": 1000},
            {"register": "heat_energy", "idx": 20, "mode": "subtract", "idx2": 21},
            {"register": "t2", "idx": 77, "type": "temperature"},
        ]}),
        &ctx,
    );
    let lines = s.check().await.unwrap();
    let text: Vec<String> = lines
        .iter()
        .map(|l| format!("{} | {} | {}", l.ok, l.item, l.detail))
        .collect();
    assert_eq!(text[0], format!("true | domoticz {} | 4 devices", dz.url));
    assert_eq!(text[1], "true | idx 12 | Heat GJ: 84.817 GJ");
    assert_eq!(text[3], "true | idx 14 | Water: 951.330 m3");
    let mapped = &text[5..];
    assert_eq!(mapped.len(), 5, "{text:#?}");
    assert_eq!(
        mapped[0],
        "true | devices[0] heat_energy → idx 12 | Heat GJ: Custom Sensor (GJ), 84.817 GJ"
    );
    assert!(
        mapped[1].starts_with("false | devices[1] t1 → idx 13 | idx 13 is a Temperature device in Domoticz, mapped as type \"custom\": set type = \"temperature\""),
        "{}",
        mapped[1]
    );
    assert!(
        mapped[2].contains(
            "divider = 1000 in the config, but Domoticz divides this Water counter by 100"
        ),
        "{}",
        mapped[2]
    );
    assert!(
        mapped[3]
            .starts_with("false | devices[3] heat_energy → idx 20 (idx2 21) | idx 20 not found"),
        "{}",
        mapped[3]
    );
    assert!(
        mapped[4].starts_with("false | devices[4] t2 → idx 77 | idx 77 not found"),
        "{}",
        mapped[4]
    );
    // Several requests in a row, each answered.
    let (connections, requests) = dz.with(|s| (s.connections, s.requests));
    assert_eq!((connections, requests), (7, 7));

    // A subtract whose idx2 shows another unit than idx (kWh against GJ) is named.
    dz.with(|s| {
        s.devices
            .insert(40, Device::new("This year GJ", Kind::Custom("GJ"), "0"));
        s.devices.insert(
            41,
            Device::new(
                "1 Jan kWh",
                Kind::Counter(Meter::Energy, None, 0.0, ""),
                "100",
            ),
        );
    });
    let mut units = sink(
        serde_json::json!({"url": dz.url, "devices": [
            {"register": "heat_energy", "idx": 40, "mode": "subtract", "idx2": 41},
        ]}),
        &ctx,
    );
    let lines = units.check().await.unwrap();
    let line = lines.last().unwrap();
    assert!(!line.ok, "{line:?}");
    assert!(
        line.detail.contains("idx2 41 (Counter (Energy, divider 1000)) shows kWh, idx 40 shows GJ: mode subtract needs both in one unit"),
        "{line:?}"
    );
    dz.with(|s| {
        s.devices.remove(&40);
        s.devices.remove(&41);
    });

    // The precision note for a user's custom baseline.
    dz.with(|s| {
        s.devices
            .insert(20, Device::new("This year", Kind::Custom("GJ"), "0"))
    });
    let lines = s.check().await.unwrap();
    let subtract = lines.iter().find(|l| l.item.contains("(idx2 21)")).unwrap();
    assert!(subtract.ok, "{subtract:?}");
    assert!(
        subtract.detail.contains("6 significant digits"),
        "{subtract:?}"
    );
}

#[tokio::test]
async fn the_old_rtype_api_is_gone_as_on_a_real_server() {
    let dz = FakeDomoticz::start(vec![(12, Device::new("Heat GJ", Kind::Custom("GJ"), "1"))]).await;
    let old = reqwest::get(format!("{}/json.htm?type=devices&rid=12", dz.url))
        .await
        .unwrap();
    assert_eq!(old.status(), 404);
    assert_eq!(old.text().await.unwrap(), "");
    let unknown = reqwest::get(format!(
        "{}/json.htm?type=command&param=getdevices&rid=5",
        dz.url
    ))
    .await
    .unwrap();
    let body: serde_json::Value = unknown.json().await.unwrap();
    assert_eq!(body["status"], "OK");
    assert!(body.get("result").is_none());
    // A negative count is taken without complaint (which is why the sink never sends one).
    dz.with(|s| {
        s.devices.insert(
            14,
            Device::new("Water", Kind::Counter(Meter::Water, None, 0.0, ""), "0"),
        )
    });
    let negative = reqwest::get(format!(
        "{}/json.htm?type=command&param=udevice&idx=14&nvalue=0&svalue=-5",
        dz.url
    ))
    .await
    .unwrap();
    assert_eq!(negative.status(), 200);
    let body: serde_json::Value = negative.json().await.unwrap();
    assert_eq!(body["status"], "OK");
    assert_eq!(dz.shown(14), "-0.050 m3");
}

#[tokio::test]
async fn the_stand_in_closes_unless_asked_to_keep_alive_as_a_real_server() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dz = FakeDomoticz::start(vec![(12, Device::new("Heat GJ", Kind::Custom("GJ"), "1"))]).await;
    let request = |keep_alive: bool| {
        format!(
            "GET /json.htm?type=command&param=getdevices&rid=12 HTTP/1.1\r\nHost: x\r\n{}\r\n",
            if keep_alive {
                "Connection: Keep-Alive\r\n"
            } else {
                ""
            }
        )
    };
    // Without keep-alive: one answer, no `Connection: close`, then the socket is closed; a
    // second request on it is never answered.
    let mut tcp = tokio::net::TcpStream::connect(dz.url.trim_start_matches("http://"))
        .await
        .unwrap();
    tcp.write_all(request(false).as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let _ = tcp.write_all(request(false).as_bytes()).await;
    let mut text = String::new();
    tcp.read_to_string(&mut text).await.unwrap();
    assert_eq!(text.matches("HTTP/1.1 200 OK").count(), 1, "{text}");
    assert!(!text.to_ascii_lowercase().contains("connection:"), "{text}");
    assert!(text.contains(r#""Data":"1 GJ""#), "{text}");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(dz.with(|s| s.late_requests), 1);
    // With `Connection: Keep-Alive`: both answered on one socket, with Domoticz's limits.
    let mut tcp = tokio::net::TcpStream::connect(dz.url.trim_start_matches("http://"))
        .await
        .unwrap();
    tcp.write_all(format!("{}{}", request(true), request(true)).as_bytes())
        .await
        .unwrap();
    let mut buf = vec![0u8; 8192];
    let mut text = String::new();
    while text.matches("Keep-Alive: max=20, timeout=20").count() < 2 {
        let n = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "closed: {text}");
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert_eq!(dz.with(|s| (s.connections, s.requests)), (2, 3));
}

#[tokio::test]
async fn a_config_divider_that_disagrees_is_warned_once_and_the_devices_own_is_used() {
    let (logs, _guard) = Logs::capture();
    let dz = FakeDomoticz::start(vec![(
        14,
        Device::new("Water", Kind::Counter(Meter::Water, None, 0.0, ""), "0"),
    )])
    .await;
    let ctx = ctx();
    let mut s = sink(
        serde_json::json!({"url": dz.url, "devices": [
            {"register": "volume", "idx": 14, "type": "counter", "divider": 1000},
        ]}),
        &ctx,
    );
    for (id, v, counts) in [(1, "951.33", "95133"), (2, "951.40", "95140")] {
        let r = heat(1_779_400_000 + id * 900, "84.817", v);
        s.deliver(&[delivered(id, "heat", 1, &r)]).await.unwrap();
        assert_eq!(dz.svalue(14), counts);
    }
    let warned = logs.take();
    assert_eq!(
        warned.matches("divider in the config disagrees").count(),
        1,
        "{warned}"
    );
    assert!(
        warned.contains("config=1000") && warned.contains("domoticz=100"),
        "{warned}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_transport_delivers_every_mode_exactly_once_across_a_restart() {
    let broker = Broker::start();
    let dz = FakeDomoticz::start(vec![
        (12, Device::new("Heat GJ", Kind::Custom("GJ"), "84.817")),
        (
            14,
            Device::new("Water", Kind::Counter(Meter::Water, None, 0.0, ""), "0"),
        ),
        (20, Device::new("Heat this year", Kind::Custom("GJ"), "0")),
        (
            21,
            Device::new("Heat on 1 January", Kind::Custom("GJ"), "80"),
        ),
        (30, Device::new("Heat summed", Kind::Custom("GJ"), "1")),
        (13, Device::new("Inlet", Kind::Temperature, "0")),
        (15, Device::new("Heat kWh", Kind::Kwh, "0;0")),
    ])
    .await;
    dz.listen_mqtt(broker.port).await;
    let cfg: DomoticzConfig = serde_json::from_value(serde_json::json!({
        "url": dz.url, "transport": "mqtt", "devices": [
            {"register": "heat_energy", "idx": 12},
            {"register": "volume", "idx": 14, "type": "counter"},
            {"register": "heat_energy", "idx": 20, "mode": "subtract", "idx2": 21},
            {"register": "heat_energy", "idx": 30, "mode": "add-delta", "idx2": 12},
            {"register": "t1", "idx": 13, "type": "temperature"},
            {"register": "heat_energy", "idx": 15, "type": "kwh"},
        ]
    }))
    .unwrap();
    let mqtt: MqttConfig =
        serde_json::from_value(serde_json::json!({"url": broker.url(), "timeout": "3s"})).unwrap();
    let ctx = ctx();
    let memory: Arc<dyn SinkMemory> = Arc::new(VolatileMemory::default());
    let start = || {
        let mut s = DomoticzSink::new(&cfg, Some(&mqtt), &ctx).unwrap();
        s.use_memory(memory.clone());
        s
    };
    let updates = || dz.with(|s| s.updates.len());
    let wait_for = |n: usize| async move {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while updates() < n {
            assert!(
                std::time::Instant::now() < deadline,
                "only {} updates",
                updates()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let mut s = start();
    assert!(s.check().await.unwrap()[0].ok);
    let r1 = heat(1_779_400_000, "84.817", "951.33");
    s.deliver(&[delivered(1, "heat", 1, &r1)]).await.unwrap();
    wait_for(6).await;
    assert_eq!(
        [dz.svalue(12), dz.svalue(14), dz.svalue(20), dz.svalue(30)],
        ["84.817", "95133", "4.817", "1.000"].map(String::from)
    );
    assert_eq!(
        [dz.svalue(13), dz.svalue(15)],
        ["76.85", "15500;23560278"].map(String::from)
    );
    s.shutdown().await;
    drop(s);
    // Restart; the add-delta base and idx2 are the exact values we wrote.
    let mut s = start();
    let r2 = heat(1_779_400_900, "84.830", "951.50");
    s.deliver(&[delivered(2, "heat", 1, &r2)]).await.unwrap();
    wait_for(12).await;
    assert_eq!(
        [dz.svalue(12), dz.svalue(14), dz.svalue(20), dz.svalue(30)],
        ["84.830", "95150", "4.830", "1.013"].map(String::from)
    );
    s.shutdown().await;
}

/// The devices of [`every_mapping_and_mode`]: each type in each mode it supports, on the counter
/// types users pick (Water, Gas, Energy) with and without a meter offset, and user baselines.
fn matrix_devices() -> Vec<(u64, Device)> {
    let counter = |m, offset| Kind::Counter(m, None, offset, "");
    vec![
        // write
        (12, Device::new("Heat GJ", Kind::Custom("GJ"), "0")),
        (13, Device::new("Inlet", Kind::Temperature, "0")),
        (14, Device::new("Water", counter(Meter::Water, 0.0), "0")),
        (
            16,
            Device::new("Gas, offset", counter(Meter::Gas, 100_000.0), "0"),
        ),
        (
            17,
            Device::new("Heat kWh", counter(Meter::Energy, 0.0), "0"),
        ),
        (15, Device::new("Heat General kWh", Kind::Kwh, "0;0")),
        // subtract, from baselines the user typed in (only Domoticz has them)
        (20, Device::new("Heat this year", Kind::Custom("GJ"), "0")),
        (21, Device::new("Heat 1 Jan", Kind::Custom("GJ"), "12000.5")),
        (
            22,
            Device::new("Water this year", counter(Meter::Water, 0.0), "0"),
        ),
        (
            23,
            Device::new("Water 1 Jan", counter(Meter::Water, 0.0), "12000000"),
        ),
        (
            24,
            Device::new("kWh this year", counter(Meter::Energy, 1000.0), "0"),
        ),
        (
            25,
            Device::new("kWh 1 Jan", counter(Meter::Energy, 0.0), "3000000000"),
        ),
        (26, Device::new("Inlet above", Kind::Temperature, "0")),
        (27, Device::new("Reference", Kind::Temperature, "20.37")),
        // add-delta, each with its write-mode mirror as idx2
        (30, Device::new("Heat summed", Kind::Custom("GJ"), "1.5")),
        (
            31,
            Device::new("Heat previous", Kind::Custom("GJ"), "12345"),
        ),
        (
            32,
            Device::new("Gas summed, offset", counter(Meter::Gas, 5.0), "0"),
        ),
        (
            33,
            Device::new("Gas previous", counter(Meter::Gas, 0.0), "12345600"),
        ),
        (
            34,
            Device::new("kWh summed", counter(Meter::Energy, 0.0), "0"),
        ),
        (
            35,
            Device::new("kWh previous", counter(Meter::Energy, 0.0), "3429000000"),
        ),
        (36, Device::new("Inlet summed", Kind::Temperature, "10")),
        (37, Device::new("Inlet previous", Kind::Temperature, "76.5")),
    ]
}

fn matrix_mappings() -> serde_json::Value {
    serde_json::json!([
        {"register": "heat_energy", "idx": 12},
        {"register": "t1", "idx": 13, "type": "temperature"},
        {"register": "volume", "idx": 14, "type": "counter"},
        {"register": "volume", "idx": 16, "type": "counter"},
        {"register": "heat_energy", "idx": 17, "type": "counter"},
        {"register": "heat_energy", "idx": 15, "type": "kwh"},
        {"register": "heat_energy", "idx": 20, "mode": "subtract", "idx2": 21},
        {"register": "volume", "idx": 22, "type": "counter", "mode": "subtract", "idx2": 23},
        {"register": "heat_energy", "idx": 24, "type": "counter", "mode": "subtract", "idx2": 25},
        {"register": "t1", "idx": 26, "type": "temperature", "mode": "subtract", "idx2": 27},
        {"register": "heat_energy", "idx": 30, "mode": "add-delta", "idx2": 31},
        {"register": "heat_energy", "idx": 31},
        {"register": "volume", "idx": 32, "type": "counter", "mode": "add-delta", "idx2": 33},
        {"register": "volume", "idx": 33, "type": "counter"},
        {"register": "heat_energy", "idx": 34, "type": "counter", "mode": "add-delta", "idx2": 35},
        {"register": "heat_energy", "idx": 35, "type": "counter"},
        {"register": "t1", "idx": 36, "type": "temperature", "mode": "add-delta", "idx2": 37},
        {"register": "t1", "idx": 37, "type": "temperature"},
    ])
}

/// One reading of [`MATRIX`]: energy (GJ), volume (m³), t1 (°C), and idx → svalue after it.
type MatrixRow = (
    &'static str,
    &'static str,
    &'static str,
    [(u64, &'static str); 18],
);

/// Three readings of a big meter (more digits than Domoticz's 6-digit display), in GJ whose
/// kWh are whole Wh, and what every device must hold after each — worked out by hand (Python's
/// `decimal`), not by the sink's code: counters hold `(value − offset) × divider` counts.
const MATRIX: [MatrixRow; 3] = [
    (
        "12345.678",
        "123456.78",
        "76.85",
        [
            (12, "12345.678"),
            (13, "76.85"),
            (14, "12345678"),
            (16, "2345678"),
            (17, "3429355000"),
            (15, "15500;3429355000"),
            (20, "345.178"),
            (22, "345678"),
            (24, "428355000"),
            (26, "56.48"),
            (30, "2.178"),
            (31, "12345.678"),
            (32, "78"),
            (33, "12345678"),
            (34, "355000"),
            (35, "3429355000"),
            (36, "10.35"),
            (37, "76.85"),
        ],
    ),
    (
        "12345.912",
        "123457.13",
        "77.02",
        [
            (12, "12345.912"),
            (13, "77.02"),
            (14, "12345713"),
            (16, "2345713"),
            (17, "3429420000"),
            (15, "15500;3429420000"),
            (20, "345.412"),
            (22, "345713"),
            (24, "428420000"),
            (26, "56.65"),
            (30, "2.412"),
            (31, "12345.912"),
            (32, "113"),
            (33, "12345713"),
            (34, "420000"),
            (35, "3429420000"),
            (36, "10.52"),
            (37, "77.02"),
        ],
    ),
    (
        "12346.101",
        "123457.99",
        "76.99",
        [
            (12, "12346.101"),
            (13, "76.99"),
            (14, "12345799"),
            (16, "2345799"),
            (17, "3429472500"),
            (15, "15500;3429472500"),
            (20, "345.601"),
            (22, "345799"),
            (24, "428472500"),
            (26, "56.62"),
            (30, "2.601"),
            (31, "12346.101"),
            (32, "199"),
            (33, "12345799"),
            (34, "472500"),
            (35, "3429472500"),
            (36, "10.49"),
            (37, "76.99"),
        ],
    ),
];

fn matrix_reading(i: usize) -> kamstrup_reading::Reading {
    let (e, v, t, _) = MATRIX[i];
    reading(
        1_779_400_000 + i as i64 * 900,
        vec![
            reg("heat_energy", e, "GJ"),
            reg("volume", v, "m³"),
            reg("t1", t, "°C"),
            reg("power", "15.5", "kW"),
        ],
    )
}

/// Every mapping type in every mode over `transport`, three readings with a restart of the sink
/// (its memory kept, as the daemon's store keeps it) between the second and the third.
async fn every_mapping_and_mode(transport: &str) {
    let broker = (transport == "mqtt").then(Broker::start);
    let dz = FakeDomoticz::start(matrix_devices()).await;
    if let Some(b) = &broker {
        dz.listen_mqtt(b.port).await;
    }
    let cfg: DomoticzConfig = serde_json::from_value(serde_json::json!({
        "url": dz.url, "transport": transport, "devices": matrix_mappings()
    }))
    .unwrap();
    let mqtt: Option<MqttConfig> = broker.as_ref().map(|b| {
        serde_json::from_value(serde_json::json!({"url": b.url(), "timeout": "3s"})).unwrap()
    });
    let ctx = ctx();
    let memory: Arc<dyn SinkMemory> = Arc::new(VolatileMemory::default());
    let start = || {
        let mut s = DomoticzSink::new(&cfg, mqtt.as_ref(), &ctx).unwrap();
        s.use_memory(memory.clone());
        s
    };
    let mut s = start();
    let mut expected_updates = 0;
    for (i, (_, _, _, expected)) in MATRIX.iter().enumerate() {
        if i == 2 {
            // A restart: a new sink on the same memory.
            s.shutdown().await;
            drop(s);
            s = start();
        }
        let r = matrix_reading(i);
        s.deliver(&[delivered(i as i64 + 1, "heat", 1, &r)])
            .await
            .unwrap_or_else(|e| panic!("{transport} reading {}: {e}", i + 1));
        // MQTT is applied by Domoticz when it gets there: wait for every update.
        expected_updates += expected.len();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while dz.with(|s| s.updates.len()) < expected_updates {
            assert!(
                std::time::Instant::now() < deadline,
                "{transport}: updates missing"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let got: Vec<(u64, String)> = expected
            .iter()
            .map(|(idx, _)| (*idx, dz.svalue(*idx)))
            .collect();
        let want: Vec<(u64, String)> = expected
            .iter()
            .map(|(idx, v)| (*idx, v.to_string()))
            .collect();
        assert_eq!(got, want, "{transport}, after reading {}", i + 1);
    }
    // Each device written once per reading: nothing applied twice, no request on a dead socket.
    assert_eq!(dz.with(|s| s.updates.len()), 3 * 18);
    assert_eq!(dz.with(|s| s.late_requests), 0);
    // What Domoticz shows: the meter's values, in the device's unit, with the offsets.
    assert_eq!(dz.shown(16), "123457.990 m3");
    assert_eq!(dz.shown(17), "3429472.500 kWh");
    assert_eq!(dz.shown(12), "12346.1 GJ");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mapping_and_mode_over_http() {
    every_mapping_and_mode("http").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mapping_and_mode_over_mqtt() {
    every_mapping_and_mode("mqtt").await;
}

#[tokio::test]
async fn a_hand_change_and_a_coarse_baseline_are_warned_and_followed() {
    let (logs, _guard) = Logs::capture();
    let dz = FakeDomoticz::start(vec![
        (20, Device::new("Since 80", Kind::Custom("GJ"), "0")),
        // "80" is 80.0000 to Domoticz's 6 digits: exact enough for a meter counting 0.001 GJ.
        (21, Device::new("Baseline 80", Kind::Custom("GJ"), "80")),
        (22, Device::new("This year", Kind::Custom("GJ"), "0")),
        // 12000.456 typed in, shown as "12000.5": the digits the meter has are not shown.
        (
            23,
            Device::new("Heat 1 Jan", Kind::Custom("GJ"), "12000.456"),
        ),
        (30, Device::new("Heat summed", Kind::Custom("GJ"), "1.5")),
        (
            31,
            Device::new("Heat previous", Kind::Custom("GJ"), "12345"),
        ),
    ])
    .await;
    let ctx = ctx();
    let mut s = sink(
        serde_json::json!({"url": dz.url, "devices": [
            {"register": "heat_energy", "idx": 20, "mode": "subtract", "idx2": 21},
            {"register": "heat_energy", "idx": 22, "mode": "subtract", "idx2": 23},
            {"register": "heat_energy", "idx": 30, "mode": "add-delta", "idx2": 31},
            {"register": "heat_energy", "idx": 31},
        ]}),
        &ctx,
    );
    let gj = |at: i64, e: &str| reading(at, vec![reg("heat_energy", e, "GJ")]);
    s.deliver(&[delivered(1, "heat", 1, &gj(1_779_400_000, "12345.678"))])
        .await
        .unwrap();
    assert_eq!(dz.svalue(20), "12265.678");
    // Only Domoticz's rounded display of the baseline exists: what it shows is used, loudly.
    assert_eq!(dz.svalue(22), "345.178");
    assert_eq!(dz.svalue(30), "2.178");
    let warned = logs.take();
    let coarse: Vec<&str> = warned
        .lines()
        .filter(|l| l.contains("fewer digits than the meter's value"))
        .collect();
    assert_eq!(coarse.len(), 2, "{warned}");
    assert!(
        coarse[0].contains("WARN") && coarse[0].contains("idx=23"),
        "{warned}"
    );
    assert!(coarse[0].contains("12000.5 GJ"), "{warned}");
    // idx 31 before kamstrup wrote it: the user's "12345".
    assert!(coarse[1].contains("idx=31"), "{warned}");
    assert!(!warned.contains("idx=21"), "{warned}");

    // The next reading: the same coarse baseline is not warned again; idx 30 and 31 are ours.
    s.deliver(&[delivered(2, "heat", 1, &gj(1_779_400_900, "12345.912"))])
        .await
        .unwrap();
    assert_eq!(dz.svalue(30), "2.412");
    assert_eq!(logs.take(), "");

    // Someone sets the sum to 2.41 by hand, a hair from our 2.412 (Domoticz shows "2.41"): that
    // is a change, found and followed.
    dz.set(30, "2.41");
    s.deliver(&[delivered(3, "heat", 1, &gj(1_779_401_800, "12346.101"))])
        .await
        .unwrap();
    assert_eq!(dz.svalue(30), "2.599");
    let warned = logs.take();
    assert!(
        warned.contains("WARN")
            && warned.contains("changed outside kamstrup")
            && warned.contains("idx=30"),
        "{warned}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_mqtt_a_write_domoticz_has_not_applied_yet_is_no_hand_change() {
    let (logs, _guard) = Logs::capture();
    let broker = Broker::start();
    let dz = FakeDomoticz::start(vec![
        (30, Device::new("Heat summed", Kind::Custom("GJ"), "1.5")),
        (
            31,
            Device::new("Heat previous", Kind::Custom("GJ"), "12345.6"),
        ),
    ])
    .await;
    dz.listen_mqtt(broker.port).await;
    let ctx = ctx();
    let memory: Arc<dyn SinkMemory> = Arc::new(VolatileMemory::default());
    let start = |broker_url: String| {
        let cfg: DomoticzConfig = serde_json::from_value(serde_json::json!({
            "url": dz.url, "transport": "mqtt", "devices": [
                {"register": "heat_energy", "idx": 30, "mode": "add-delta", "idx2": 31},
                {"register": "heat_energy", "idx": 31},
            ]
        }))
        .unwrap();
        let mqtt: MqttConfig =
            serde_json::from_value(serde_json::json!({"url": broker_url, "timeout": "1s"}))
                .unwrap();
        let mut s = DomoticzSink::new(&cfg, Some(&mqtt), &ctx).unwrap();
        s.use_memory(memory.clone());
        s
    };
    let gj = |at: i64, e: &str| reading(at, vec![reg("heat_energy", e, "GJ")]);
    // Reading 1 is computed and saved, but the broker cannot be reached: nothing is applied.
    let mut s = start(format!("mqtt://127.0.0.1:{}", free_port()));
    assert!(s
        .deliver(&[delivered(1, "heat", 1, &gj(1_779_400_000, "12345.678"))])
        .await
        .is_err());
    s.shutdown().await;
    drop(s);
    assert!(dz.with(|s| s.updates.is_empty()));

    // With the broker back, reading 2 first finishes reading 1 and then reads idx 30 and 31 at
    // once, while Domoticz has not yet applied what it was just sent.
    dz.with(|s| s.mqtt_delay = Duration::from_millis(300));
    let mut s = start(broker.url());
    s.deliver(&[delivered(2, "heat", 1, &gj(1_779_400_900, "12345.912"))])
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while dz.with(|s| s.updates.len()) < 4 {
        assert!(std::time::Instant::now() < deadline, "updates missing");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        (dz.svalue(30), dz.svalue(31)),
        ("1.812".into(), "12345.912".into())
    );
    let warned = logs.take();
    assert!(!warned.contains("changed outside kamstrup"), "{warned}");
    s.shutdown().await;
}

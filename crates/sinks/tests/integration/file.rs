//! File sink on a real temporary file, and `build` from the TOML shape the daemon embeds.

use kamstrup_sinks::{build, BuildContext, Delivery, FileConfig, FileSink, Sink, SinksConfig};

use crate::common::{ctx, delivered, no_files, standard};

#[tokio::test]
async fn csv_header_once_and_appends() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("readings.csv");
    let cfg = FileConfig {
        enabled: true,
        path: path.clone(),
        format: kamstrup_sinks::FileFormat::Csv,
    };
    let mut s = FileSink::new(&cfg).unwrap();
    assert_eq!(s.delivery(), Delivery::Every);
    let a = standard(0);
    let b = standard(1);
    s.deliver(&[delivered(1, "heat", 7, &a)]).await.unwrap();
    s.deliver(&[delivered(2, "heat", 7, &b)]).await.unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "taken_at,meter,serial,register,value,unit");
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("taken_at")).count(),
        1
    );
    assert_eq!(lines.len(), 1 + 9 + 9);
    assert_eq!(
        lines[1],
        "2026-05-21T21:46:40Z,heat,7,heat_energy,84.817,GJ"
    );
    assert_eq!(
        lines[10],
        "2026-05-21T22:01:40Z,heat,7,heat_energy,84.820,GJ"
    );
    assert!(s.check().await.unwrap()[0].ok);
}

#[tokio::test]
async fn jsonl_one_line_per_reading_and_unwritable_path_is_io() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("readings.jsonl");
    let cfg = FileConfig {
        enabled: true,
        path: path.clone(),
        format: kamstrup_sinks::FileFormat::Jsonl,
    };
    let mut s = FileSink::new(&cfg).unwrap();
    let readings: Vec<_> = (0..3).map(standard).collect();
    let batch: Vec<_> = readings
        .iter()
        .enumerate()
        .map(|(i, r)| delivered(i as i64, "heat", 7, r))
        .collect();
    s.deliver(&batch).await.unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 3);
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["values"]["t1"], serde_json::json!(76.85));
    assert!(text.contains(r#""volume":520.410"#));

    let cfg = FileConfig {
        enabled: true,
        path: dir.path().join("missing/dir/x.jsonl"),
        format: kamstrup_sinks::FileFormat::Jsonl,
    };
    let mut bad = FileSink::new(&cfg).unwrap();
    let err = bad.deliver(&batch).await.unwrap_err();
    assert_eq!(err.kind(), "io");
    assert!(!bad.check().await.unwrap()[0].ok);
}

#[tokio::test]
async fn build_from_the_daemons_toml() {
    let toml_text = r#"
        [mqtt]
        url = "mqtt://127.0.0.1:9"
        username = "kamstrup"
        password = "env:KAMSTRUP_MQTT_PASSWORD"

        [homeassistant]
        discovery_prefix = "homeassistant"
        compat = "2024.3"

        [homeassistant_rest]
        url = "http://127.0.0.1:8123"
        token_file = "/etc/kamstrup/ha-token"
        entities = [{ register = "heat_energy", entity_id = "sensor.stadsverwarming_energy", friendly_name = "Stadsverwarming energie", icon = "mdi:gauge" }]

        [domoticz]
        url = "http://127.0.0.1:8080"
        devices = [
          { meter = "heat", register = "heat_energy", idx = 12 },
          { meter = "heat", register = "heat_energy", idx = 20, mode = "subtract", idx2 = 21 },
          { meter = "heat", register = "heat_energy", idx = 22, mode = 2, idx2 = 12 },
          { meter = "heat", register = "volume", idx = 14, type = "counter", divider = 1000 },
        ]

        [mqtt_json]
        topic = "kamstrup/{meter}"
        preset = "seed"

        [influxdb]
        url = "http://127.0.0.1:8086"
        bucket = "energy"
        org = "home"
        token_file = "/etc/kamstrup/influx-token"

        [file]
        path = "-"
        format = "csv"
    "#;
    let config: SinksConfig = toml::from_str(toml_text).unwrap();
    let env = |n: &str| (n == "KAMSTRUP_MQTT_PASSWORD").then(|| "pw".to_string());
    let files = |p: &std::path::Path| match p.to_str() {
        Some("/etc/kamstrup/ha-token") => Ok("ha\n".to_string()),
        Some("/etc/kamstrup/influx-token") => Ok("influx\n".to_string()),
        _ => no_files(p),
    };
    let sinks = build(&config, &BuildContext::new(&env, &files)).unwrap();
    let names: Vec<(&str, Delivery)> = sinks.iter().map(|s| (s.name(), s.delivery())).collect();
    assert_eq!(
        names,
        [
            ("homeassistant", Delivery::Latest),
            ("homeassistant_rest", Delivery::Latest),
            ("mqtt_json", Delivery::Latest),
            ("domoticz", Delivery::Latest),
            ("influxdb", Delivery::Every),
            ("file", Delivery::Every),
        ]
    );
    // A missing secret is a config error naming the variable, not the value.
    let err = build(&config, &ctx()).err().unwrap();
    assert_eq!(err.kind(), "config");
    assert!(err.to_string().contains("KAMSTRUP_MQTT_PASSWORD"), "{err}");
    // Unknown keys are refused.
    assert!(toml::from_str::<SinksConfig>("[file]\npath = \"x\"\nformt = \"csv\"\n").is_err());
    assert!(toml::from_str::<SinksConfig>("[prometheus]\n").is_err());
    // A sink section without [mqtt].
    let only_ha: SinksConfig = toml::from_str("[homeassistant]\n").unwrap();
    assert!(build(&only_ha, &ctx())
        .err()
        .unwrap()
        .to_string()
        .contains("[mqtt]"));
    let off: SinksConfig = toml::from_str("[homeassistant]\nenabled = false\n").unwrap();
    assert!(build(&off, &ctx()).unwrap().is_empty());
}

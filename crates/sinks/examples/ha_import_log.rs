//! Delivers the hour-log records of `kamstrup log --format json` (read from stdin) to Home
//! Assistant's statistics through the HA discovery sink, as the daemon's back-fill does: the
//! tool `scripts/e2e-ha-statistics.sh` uses against real HA releases.
//!
//! Usage: `ha_import_log --url URL --token-file FILE --meter NAME --serial N [--compat V]`
//!
//! Only logged records are delivered, so the sink publishes nothing on MQTT; its MQTT link
//! points at a port where nothing listens and uses topics of its own.

use std::collections::HashMap;
use std::io::Read;

use kamstrup_reading::{MeterIdentity, Protocol, Reading, ReadingSource, RegisterValue};
use kamstrup_sinks::{BuildContext, Delivered, HomeAssistantConfig, HomeAssistantSink, Sink};
use serde::Deserialize;

#[derive(Deserialize)]
struct LogOutput {
    port: String,
    /// The meter's clock against the host's: `kamstrup log` prints the meter's own times, the
    /// daemon delivers them corrected by this, and so does this tool.
    #[serde(default)]
    meter_clock_offset_s: Option<i64>,
    records: Vec<Record>,
}

#[derive(Deserialize)]
struct Record {
    utc: chrono::DateTime<chrono::Utc>,
    registers: Vec<RegisterValue>,
}

fn args() -> Result<HashMap<String, String>, String> {
    let mut out = HashMap::new();
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let key = k
            .strip_prefix("--")
            .ok_or_else(|| format!("unexpected argument {k}"))?;
        let v = it.next().ok_or_else(|| format!("{k} needs a value"))?;
        out.insert(key.to_owned(), v);
    }
    Ok(out)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a = args()?;
    let need = |k: &str| a.get(k).cloned().ok_or(format!("--{k} is required"));
    let mut text = String::new();
    std::io::stdin().read_to_string(&mut text)?;
    let log: LogOutput = serde_json::from_str(&text)?;
    let serial: u64 = need("serial")?.parse()?;
    let meter = need("meter")?;
    let mut cfg = serde_json::json!({
        "url": need("url")?,
        "token_file": need("token-file")?,
        "statistics": true,
        // Own topics and no stale removal: this process must not touch the daemon's entities.
        "discovery_prefix": "kamstrup-import-tool",
        "base_topic": "kamstrup-import-tool",
        "remove_stale": false,
    });
    if let Some(c) = a.get("compat") {
        cfg["compat"] = serde_json::json!(c);
    }
    let cfg: HomeAssistantConfig = serde_json::from_value(cfg)?;
    let mqtt = serde_json::from_value(serde_json::json!({"url": "mqtt://127.0.0.1:9"}))?;
    let env = |n: &str| std::env::var(n).ok();
    let files = |p: &std::path::Path| std::fs::read_to_string(p);
    let ctx = BuildContext::new(&env, &files);
    let mut sink = HomeAssistantSink::new(&cfg, &mqtt, &ctx)?;
    let offset = chrono::TimeDelta::seconds(log.meter_clock_offset_s.unwrap_or(0));
    let readings: Vec<Reading> = log
        .records
        .into_iter()
        .map(|r| Reading {
            meter: MeterIdentity {
                protocol: Protocol::Kmp,
                port: log.port.clone(),
                serial: Some(serial),
                meter_type: None,
            },
            taken_at: r.utc - offset,
            source: ReadingSource::HourLog,
            registers: r.registers,
            missing: Vec::new(),
        })
        .collect();
    let batch: Vec<Delivered<'_>> = readings
        .iter()
        .enumerate()
        .map(|(i, r)| Delivered {
            id: i64::try_from(i).unwrap_or(i64::MAX),
            meter_name: &meter,
            serial,
            model: None,
            read_errors_24h: None,
            reading: r,
        })
        .collect();
    let t0 = std::time::Instant::now();
    sink.deliver(&batch).await?;
    println!(
        "delivered {} hour-log records to Home Assistant's statistics in {} ms",
        batch.len(),
        t0.elapsed().as_millis()
    );
    Ok(())
}

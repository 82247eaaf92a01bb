//! `/metrics`: the latest stored value of every meter register in Prometheus base units, read
//! from the history database on each scrape — a scrape never talks to a meter (battery).

use std::collections::HashMap;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use kamstrup_store::{MeterRecord, Store, StoredReading};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use crate::error::ApiError;
use crate::units::to_base;
use crate::App;
use kamstrup_reading::Quantity;

/// The OpenMetrics text format that `prometheus-client` writes (Prometheus reads it natively).
pub const CONTENT_TYPE_OPENMETRICS: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Labels of one sample, in order.
type Labels = Vec<(String, String)>;

/// What one family is made of: name (after the `kamstrup_` prefix and before the unit), help,
/// unit, type.
#[derive(Clone, Copy, Debug)]
struct Spec {
    name: &'static str,
    help: &'static str,
    unit: Option<&'static str>,
    counter: bool,
}

/// An extra label of one register's samples (`sensor="inlet"`).
type ExtraLabel = Option<(&'static str, &'static str)>;

/// Register name → (family, quantity, extra label). The `sensor` label of the temperatures
/// follows integrations.md §D.2.
const REGISTERS: &[(&str, Spec, Quantity, ExtraLabel)] = &[
    ("heat_energy", HEAT_ENERGY, Quantity::Energy, None),
    ("cooling_energy", COOLING_ENERGY, Quantity::Energy, None),
    ("volume", VOLUME, Quantity::Volume, None),
    (
        "t1",
        TEMPERATURE,
        Quantity::Temperature,
        Some(("sensor", "inlet")),
    ),
    (
        "t2",
        TEMPERATURE,
        Quantity::Temperature,
        Some(("sensor", "outlet")),
    ),
    (
        "t3",
        TEMPERATURE,
        Quantity::Temperature,
        Some(("sensor", "t3")),
    ),
    (
        "t1_t2",
        TEMPERATURE_DIFFERENCE,
        Quantity::TemperatureDifference,
        None,
    ),
    ("power", POWER, Quantity::Power, None),
    ("flow", FLOW, Quantity::Flow, None),
    ("hours", OPERATING, Quantity::Duration, None),
];

const CACHED: &str = "(cached: the latest stored reading; a scrape never reads the meter)";

const HEAT_ENERGY: Spec = Spec {
    name: "heat_energy",
    help: "Heat energy counter of the meter (E1) in joules",
    unit: Some("joules"),
    counter: true,
};
const COOLING_ENERGY: Spec = Spec {
    name: "cooling_energy",
    help: "Cooling energy counter of the meter (E3) in joules",
    unit: Some("joules"),
    counter: true,
};
const VOLUME: Spec = Spec {
    name: "volume",
    help: "Volume counter of the meter (V1) in cubic metres",
    unit: Some("cubic_meters"),
    counter: true,
};
const TEMPERATURE: Spec = Spec {
    name: "temperature",
    help: "Water temperature at the meter's sensor (inlet = T1, outlet = T2)",
    unit: Some("celsius"),
    counter: false,
};
const TEMPERATURE_DIFFERENCE: Spec = Spec {
    name: "temperature_difference",
    help: "Temperature difference T1 - T2",
    unit: Some("celsius"),
    counter: false,
};
const POWER: Spec = Spec {
    name: "power",
    help: "Heat power in watts",
    unit: Some("watts"),
    counter: false,
};
const FLOW: Spec = Spec {
    name: "flow",
    help: "Water flow in cubic metres per second",
    unit: Some("cubic_meters_per_second"),
    counter: false,
};
const OPERATING: Spec = Spec {
    name: "operating",
    help: "Operating time of the meter in seconds",
    unit: Some("seconds"),
    counter: true,
};
const INFO_CODE: Spec = Spec {
    name: "info_code",
    help: "Info code of the meter (0 = no alarm; a bit field, see the meter's manual)",
    unit: None,
    counter: false,
};
const LAST_READ: Spec = Spec {
    name: "last_read_timestamp",
    help: "Unix time of the latest stored reading of the meter",
    unit: Some("seconds"),
    counter: false,
};
const READ_ERRORS: Spec = Spec {
    name: "read_errors",
    help: "Failed meter reads recorded in the history database (within retention), by kind",
    unit: None,
    counter: true,
};

const SINK_UP: Spec = Spec {
    name: "sink_up",
    help: "1 when the sink's last delivery attempt succeeded (or none failed), 0 while it keeps failing; only sinks the running daemon has",
    unit: None,
    counter: false,
};

const SINK_FAILURES: Spec = Spec {
    name: "sink_delivery_failures",
    help: "Failed delivery attempts of the sink since the daemon started",
    unit: None,
    counter: true,
};

const SINK_PENDING: Spec = Spec {
    name: "sink_pending_readings",
    help: "Readings stored beyond the sink's cursor (not yet delivered)",
    unit: None,
    counter: false,
};

const SINK_LAST_OK: Spec = Spec {
    name: "sink_last_success_timestamp",
    help: "When the sink last delivered successfully (Unix time)",
    unit: Some("seconds"),
    counter: false,
};

/// Live names of metric families that describe the daemon itself, not cached meter values.
const LIVE: &[&str] = &[
    READ_ERRORS.name,
    SINK_UP.name,
    SINK_FAILURES.name,
    SINK_PENDING.name,
    SINK_LAST_OK.name,
];

/// One family and its samples.
#[derive(Debug)]
struct Family {
    spec: Spec,
    unit: Option<Unit>,
    samples: Vec<(Labels, f64)>,
}

/// The values of one scrape, encoded by `prometheus-client`.
#[derive(Debug, Default)]
struct Scrape {
    families: Vec<Family>,
}

impl Scrape {
    fn add(&mut self, spec: Spec, labels: Labels, value: f64) {
        if !value.is_finite() {
            return;
        }
        match self.families.iter_mut().find(|f| f.spec.name == spec.name) {
            Some(f) => f.samples.push((labels, value)),
            None => self.families.push(Family {
                spec,
                unit: spec.unit.map(unit_of),
                samples: vec![(labels, value)],
            }),
        }
    }
}

fn unit_of(name: &str) -> Unit {
    match name {
        "joules" => Unit::Joules,
        "celsius" => Unit::Celsius,
        "seconds" => Unit::Seconds,
        other => Unit::Other(other.to_string()),
    }
}

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for family in &self.families {
            let help = if LIVE.contains(&family.spec.name) {
                family.spec.help.to_string()
            } else {
                format!("{} {CACHED}", family.spec.help)
            };
            let kind = if family.spec.counter {
                MetricType::Counter
            } else {
                MetricType::Gauge
            };
            let mut metric =
                encoder.encode_descriptor(family.spec.name, &help, family.unit.as_ref(), kind)?;
            for (labels, value) in &family.samples {
                let sample = metric.encode_family(labels)?;
                if family.spec.counter {
                    ConstCounter::new(*value).encode(sample)?;
                } else {
                    ConstGauge::new(*value).encode(sample)?;
                }
            }
        }
        Ok(())
    }
}

fn meter_labels(m: &MeterRecord) -> Labels {
    vec![
        ("serial".to_string(), m.serial.to_string()),
        ("model".to_string(), m.model.clone().unwrap_or_default()),
        ("meter".to_string(), m.name.clone()),
    ]
}

/// Builds the scrape from what the store holds.
fn collect(
    meters: &[MeterRecord],
    latest: &[StoredReading],
    errors: &[(String, String, u64)],
) -> Scrape {
    let mut scrape = Scrape::default();
    let by_id: HashMap<i64, &MeterRecord> = meters.iter().map(|m| (m.id.0, m)).collect();
    for stored in latest {
        let Some(meter) = by_id.get(&stored.meter.0) else {
            continue;
        };
        let labels = meter_labels(meter);
        let reading = &stored.reading;
        for (register, spec, quantity, extra) in REGISTERS {
            let Some(v) = reading.get(register) else {
                continue;
            };
            let Some(value) = to_base(*quantity, &v.value, &v.unit) else {
                tracing::debug!(register, unit = %v.unit, "no base unit known; not exported");
                continue;
            };
            let mut l = labels.clone();
            if let Some((k, val)) = extra {
                l.push(((*k).to_string(), (*val).to_string()));
            }
            scrape.add(*spec, l, value);
        }
        if let Some(info) = reading.get("info") {
            scrape.add(INFO_CODE, labels.clone(), info.value.to_f64());
        }
        let ms = reading.taken_at.timestamp_millis();
        scrape.add(LAST_READ, labels, ms as f64 / 1000.0);
    }
    let by_name: HashMap<&str, &MeterRecord> =
        meters.iter().map(|m| (m.name.as_str(), m)).collect();
    for (name, kind, count) in errors {
        let mut labels = match by_name.get(name.as_str()) {
            Some(m) => meter_labels(m),
            // A meter that was never identified (it never answered) has no serial yet.
            None => vec![
                ("serial".to_string(), String::new()),
                ("model".to_string(), String::new()),
                ("meter".to_string(), name.clone()),
            ],
        };
        labels.push(("kind".to_string(), kind.clone()));
        scrape.add(READ_ERRORS, labels, *count as f64);
    }
    scrape
}

/// Each sink's state: from the store (cursor, backlog) and from the running daemon's status
/// (`{"sinks": {name: {failures, consecutive_failures, last_ok, …}}}`).
fn collect_sinks(scrape: &mut Scrape, sinks: &SinkRows, live: &serde_json::Value) {
    let (cursors, max_id) = sinks;
    let live = live.get("sinks").and_then(serde_json::Value::as_object);
    let mut names: Vec<&str> = cursors.iter().map(|(n, _)| n.as_str()).collect();
    if let Some(live) = live {
        names.extend(live.keys().map(String::as_str));
    }
    names.sort_unstable();
    names.dedup();
    for name in names {
        let labels = vec![("sink".to_string(), name.to_string())];
        let cursor = cursors
            .iter()
            .find(|(n, _)| n == name)
            .map_or(0, |(_, c)| *c);
        scrape.add(
            SINK_PENDING,
            labels.clone(),
            max_id.saturating_sub(cursor).max(0) as f64,
        );
        let Some(state) = live.and_then(|l| l.get(name)) else {
            continue;
        };
        let number = |key: &str| state.get(key).and_then(serde_json::Value::as_f64);
        let failing = number("consecutive_failures").unwrap_or(0.0) > 0.0;
        scrape.add(SINK_UP, labels.clone(), if failing { 0.0 } else { 1.0 });
        scrape.add(
            SINK_FAILURES,
            labels.clone(),
            number("failures").unwrap_or(0.0),
        );
        if let Some(at) = state
            .get("last_ok")
            .and_then(serde_json::Value::as_str)
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        {
            scrape.add(SINK_LAST_OK, labels, at.timestamp_millis() as f64 / 1000.0);
        }
    }
}

/// Sink cursors by name, and the newest reading id.
type SinkRows = (Vec<(String, i64)>, i64);

type Rows = (
    Vec<MeterRecord>,
    Vec<StoredReading>,
    Vec<(String, String, u64)>,
    SinkRows,
);

fn load(store: &Store) -> Result<Rows, ApiError> {
    let cursors = store
        .cursors()?
        .into_iter()
        .map(|(name, id, _)| (name, id.0))
        .collect();
    Ok((
        store.meters()?,
        store.latest_deliverable()?,
        store.error_counts()?,
        (cursors, store.max_reading_id()?.0),
    ))
}

/// The exposition text for what the store holds now.
pub(crate) fn render(
    meters: &[MeterRecord],
    latest: &[StoredReading],
    errors: &[(String, String, u64)],
    sinks: &SinkRows,
    live: &serde_json::Value,
) -> Result<String, ApiError> {
    let mut registry = Registry::with_prefix("kamstrup");
    registry.register(
        "build",
        "Version of kamstrup-bridge serving these metrics",
        Info::new(vec![(
            "version".to_string(),
            env!("CARGO_PKG_VERSION").to_string(),
        )]),
    );
    let mut scrape = collect(meters, latest, errors);
    collect_sinks(&mut scrape, sinks, live);
    registry.register_collector(Box::new(scrape));
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry)
        .map_err(|_| ApiError::internal("the metrics could not be encoded"))?;
    Ok(text)
}

pub(crate) async fn metrics(State(app): State<App>) -> Result<Response, ApiError> {
    let (meters, latest, errors, sinks) = app.pool.with(load).await?;
    let live = (app.status)();
    let text = render(&meters, &latest, &errors, &sinks, &live)?;
    Ok((
        [(CONTENT_TYPE, CONTENT_TYPE_OPENMETRICS)],
        crate::no_store(),
        text,
    )
        .into_response())
}

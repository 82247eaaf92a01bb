//! The JSON API the dashboard is drawn from: meters with their latest exact values, register
//! series over a range (raw or per calendar bucket), and the daemon's state (sinks, errors).

use std::collections::HashMap;

use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use kamstrup_decimal::Decimal;
use kamstrup_reading::Protocol;
use kamstrup_store::{Bucket, MeterRecord, Point, Store, StoredReading};
use serde::Serialize;
use serde_json::Value;

use crate::error::ApiError;
use crate::query::{parse_readings_query, parse_serial, Mode};
use crate::units::is_counter;
use crate::App;

/// How many recent read errors `/api/status` lists.
const RECENT_ERRORS: usize = 50;

/// `GET /api/meters`.
#[derive(Serialize)]
struct MetersBody {
    now: DateTime<Utc>,
    meters: Vec<MeterJson>,
}

/// One meter with its latest deliverable reading.
#[derive(Serialize)]
struct MeterJson {
    /// Decimal digits in a string: serials may exceed what JavaScript numbers hold exactly.
    serial: String,
    name: String,
    protocol: Protocol,
    model: Option<String>,
    port: String,
    first_seen: DateTime<Utc>,
    last_seen: DateTime<Utc>,
    latest: Option<LatestJson>,
    info: Option<InfoJson>,
    /// The daemon's live state of this meter (by name), `null` when the daemon does not know it.
    status: Value,
}

#[derive(Serialize)]
struct LatestJson {
    reading_id: i64,
    taken_at: DateTime<Utc>,
    age_seconds: f64,
    /// `poll`, or the logger a back-filled record came from (`hour_log` …).
    source: kamstrup_reading::ReadingSource,
    values: Vec<ValueJson>,
    missing: Vec<u16>,
}

#[derive(Serialize)]
struct ValueJson {
    register: String,
    /// What people call it (`Inlet temperature`): the one label table in `kamstrup_reading`.
    label: String,
    id: u16,
    short: String,
    value: Decimal,
    unit: kamstrup_reading::ValueUnit,
    text: Option<String>,
    derived: bool,
    counter: bool,
}

/// The info code: zero means no alarm; `flags` are the set bits by name (when the meter family
/// is known, see `kamstrup_reading::info`), `text` the same names for display.
#[derive(Serialize)]
struct InfoJson {
    value: Decimal,
    ok: bool,
    text: Option<String>,
    family: Option<kamstrup_reading::InfoFamily>,
    flags: Vec<FlagJson>,
}

/// One set info bit.
#[derive(Serialize)]
struct FlagJson {
    name: String,
    description: Option<&'static str>,
}

fn meter_json(
    record: &MeterRecord,
    latest: Option<&StoredReading>,
    now: DateTime<Utc>,
    daemon: &Value,
) -> MeterJson {
    let latest_json = latest.map(|stored| {
        let r = &stored.reading;
        let age = (now - r.taken_at).num_milliseconds() as f64 / 1000.0;
        LatestJson {
            reading_id: stored.id.0,
            taken_at: r.taken_at,
            age_seconds: age.max(0.0),
            source: r.source,
            values: r
                .registers
                .iter()
                .map(|v| ValueJson {
                    register: v.name.clone(),
                    label: kamstrup_reading::label(&v.name),
                    id: v.id,
                    short: v.short.clone(),
                    value: v.value,
                    unit: v.unit.clone(),
                    text: v.text.clone(),
                    derived: v.derived,
                    counter: v.counter().is_some(),
                })
                .collect(),
            missing: r.missing.clone(),
        }
    });
    let model = record
        .model
        .as_deref()
        .and_then(|m| kamstrup_reading::ModelText::parse(m).model);
    let info = latest.and_then(|s| {
        let v = s.reading.get("info")?;
        let status = kamstrup_reading::InfoStatus::of_reading(&s.reading, model);
        let flags: Vec<FlagJson> = status.map_or_else(Vec::new, |st| {
            let named = st.flags().map(|f| FlagJson {
                name: f.name.to_owned(),
                description: Some(f.description),
            });
            let unknown = (0..32)
                .map(|i| 1u32 << i)
                .filter(|b| st.unknown_bits() & b != 0);
            named
                .chain(unknown.map(|b| FlagJson {
                    name: format!("bit_{b}"),
                    description: None,
                }))
                .collect()
        });
        let names: Vec<&str> = flags.iter().map(|f| f.name.as_str()).collect();
        Some(InfoJson {
            value: v.value,
            ok: v.value.is_zero(),
            text: v
                .text
                .clone()
                .or_else(|| (!names.is_empty()).then(|| names.join(", "))),
            family: status.and_then(|st| st.family),
            flags,
        })
    });
    MeterJson {
        serial: record.serial.to_string(),
        name: record.name.clone(),
        protocol: record.protocol,
        model: record.model.clone(),
        port: record.port.clone(),
        first_seen: record.first_seen,
        last_seen: record.last_seen,
        latest: latest_json,
        info,
        status: daemon
            .get("meters")
            .and_then(|m| m.get(&record.name))
            .cloned()
            .unwrap_or(Value::Null),
    }
}

/// Every meter and its newest deliverable reading.
fn load_meters(store: &Store) -> Result<Vec<(MeterRecord, Option<StoredReading>)>, ApiError> {
    let mut latest: HashMap<i64, StoredReading> = store
        .latest_deliverable()?
        .into_iter()
        .map(|r| (r.meter.0, r))
        .collect();
    Ok(store
        .meters()?
        .into_iter()
        .map(|m| {
            let l = latest.remove(&m.id.0);
            (m, l)
        })
        .collect())
}

pub(crate) async fn meters(State(app): State<App>) -> Result<Response, ApiError> {
    let list = app.pool.with(load_meters).await?;
    let now = Utc::now();
    let daemon = (app.status)();
    let meters = list
        .iter()
        .map(|(m, l)| meter_json(m, l.as_ref(), now, &daemon))
        .collect();
    Ok(json(&MetersBody { now, meters }))
}

pub(crate) async fn meter(
    State(app): State<App>,
    Path(serial): Path<String>,
) -> Result<Response, ApiError> {
    let serial = parse_serial(&serial).map_err(ApiError::bad_request)?;
    let list = app.pool.with(load_meters).await?;
    let now = Utc::now();
    let daemon = (app.status)();
    let (m, l) = list
        .iter()
        .find(|(m, _)| m.serial == serial)
        .ok_or_else(|| no_meter(serial))?;
    Ok(json(&meter_json(m, l.as_ref(), now, &daemon)))
}

fn no_meter(serial: u64) -> ApiError {
    ApiError::not_found(format!(
        "no meter with serial {serial}; /api/meters lists the known ones"
    ))
}

/// `GET /api/meters/{serial}/readings`.
#[derive(Serialize)]
struct ReadingsBody {
    serial: String,
    meter: String,
    register: String,
    unit: Option<kamstrup_reading::ValueUnit>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    bucket: Option<Bucket>,
    mode: &'static str,
    points: Vec<Point>,
    /// Periods of the range whose readings were back-filled from the meter's own logger.
    backfilled: Vec<Span>,
}

/// A period of time.
#[derive(Serialize)]
struct Span {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
}

pub(crate) async fn readings(
    State(app): State<App>,
    Path(serial): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let serial = parse_serial(&serial).map_err(ApiError::bad_request)?;
    let q = parse_readings_query(raw.as_deref(), Utc::now()).map_err(ApiError::bad_request)?;
    let body = app
        .pool
        .with(move |store| {
            let meter = store
                .meter_by_serial(serial)?
                .ok_or_else(|| no_meter(serial))?;
            let known = store
                .latest_deliverable()?
                .into_iter()
                .find(|r| r.meter == meter.id)
                .and_then(|r| r.reading.get(&q.register).cloned());
            let counter = known
                .as_ref()
                .is_some_and(|v| is_counter(&v.name, &v.unit, v.derived));
            let mode = match (q.bucket, q.mode) {
                (None, _) => Mode::Raw,
                (Some(_), Some(m)) => m,
                (Some(_), None) if counter => Mode::Usage,
                (Some(_), None) => Mode::Mean,
            };
            let points = match (mode, q.bucket) {
                (Mode::Usage, Some(b)) => {
                    store.usage_series(meter.id, &q.register, q.from, q.to, b)?
                }
                (_, b) => store.series(meter.id, &q.register, q.from, q.to, b)?,
            };
            if points.is_empty() && known.is_none() {
                return Err(ApiError::not_found(format!(
                    "meter {serial} ({}) has no register {:?} in its latest reading and no values of it in the range",
                    meter.name, q.register
                )));
            }
            Ok(ReadingsBody {
                serial: serial.to_string(),
                meter: meter.name,
                register: q.register,
                unit: known.map(|v| v.unit),
                from: q.from,
                to: q.to,
                bucket: q.bucket,
                mode: mode.as_str(),
                points,
                backfilled: store
                    .logged_spans(meter.id, q.from, q.to)?
                    .into_iter()
                    .map(|(from, to)| Span { from, to })
                    .collect(),
            })
        })
        .await?;
    Ok(json(&body))
}

/// `GET /api/status`.
#[derive(Serialize)]
struct StatusBody {
    now: DateTime<Utc>,
    version: &'static str,
    /// The highest reading id stored so far (sinks whose cursor equals it are up to date).
    latest_reading_id: i64,
    sinks: Vec<SinkJson>,
    errors: Vec<ErrorJson>,
    error_counts: Vec<ErrorCountJson>,
    /// The daemon's whole live state, as it reports it.
    daemon: Value,
}

#[derive(Serialize)]
struct SinkJson {
    name: String,
    /// Id of the last reading the sink has received, as stored (survives restarts).
    cursor: Option<i64>,
    cursor_moved_at: Option<DateTime<Utc>>,
    /// The daemon's live state of the sink, `null` when it does not run it.
    status: Value,
}

#[derive(Serialize)]
struct ErrorJson {
    meter: String,
    at: DateTime<Utc>,
    kind: String,
    message: String,
}

#[derive(Serialize)]
struct ErrorCountJson {
    meter: String,
    kind: String,
    count: u64,
}

type StatusRows = (
    Vec<(String, kamstrup_store::ReadingId, DateTime<Utc>)>,
    Vec<kamstrup_store::ReadError>,
    Vec<(String, String, u64)>,
    i64,
);

pub(crate) async fn status(State(app): State<App>) -> Result<Response, ApiError> {
    let (cursors, errors, counts, latest): StatusRows = app
        .pool
        .with(|store| {
            Ok((
                store.cursors()?,
                store.recent_errors(RECENT_ERRORS)?,
                store.error_counts()?,
                store.max_reading_id()?.0,
            ))
        })
        .await?;
    let daemon = (app.status)();
    let live = daemon.get("sinks").and_then(Value::as_object);
    let mut sinks: Vec<SinkJson> = cursors
        .into_iter()
        .map(|(name, id, at)| SinkJson {
            status: live
                .and_then(|l| l.get(&name))
                .cloned()
                .unwrap_or(Value::Null),
            name,
            cursor: Some(id.0),
            cursor_moved_at: Some(at),
        })
        .collect();
    // Sinks the daemon runs that have not received anything yet have no stored cursor.
    if let Some(live) = live {
        for (name, state) in live {
            if !sinks.iter().any(|s| &s.name == name) {
                sinks.push(SinkJson {
                    name: name.clone(),
                    cursor: None,
                    cursor_moved_at: None,
                    status: state.clone(),
                });
            }
        }
    }
    sinks.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(json(&StatusBody {
        now: Utc::now(),
        version: env!("CARGO_PKG_VERSION"),
        latest_reading_id: latest,
        sinks,
        errors: errors
            .into_iter()
            .map(|e| ErrorJson {
                meter: e.meter_name,
                at: e.at,
                kind: e.kind,
                message: e.message,
            })
            .collect(),
        error_counts: counts
            .into_iter()
            .map(|(meter, kind, count)| ErrorCountJson { meter, kind, count })
            .collect(),
        daemon,
    }))
}

/// A JSON answer that browsers and proxies must not cache (the values change with every poll).
fn json<T: Serialize>(body: &T) -> Response {
    (crate::no_store(), Json(body)).into_response()
}

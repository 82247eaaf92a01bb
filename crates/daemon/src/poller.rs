//! One task per meter: poll on schedule, identify the meter by serial once per connection, check
//! plausibility, add derived usage, store the reading, then wake the sinks. Failures back off.

use std::time::Duration;

use chrono::{DateTime, Datelike, Local, TimeZone, Utc};
use kamstrup_decimal::Decimal;
use kamstrup_meter::{
    open_port, KmpMeter, KmpOptions, Mc66cMeter, Mc66cOptions, MeterError, OpenError, Reading,
    RegisterValue, Verdict,
};
use kamstrup_optical::{LineSettings, Timeouts};
use kamstrup_store::{MeterId, ReadingId};
use tokio::sync::{broadcast, watch};
use tracing::{debug, info, warn};

use crate::db::Db;
use crate::plausibility::Plausibility;
use crate::status::{Failure, StatusHandle};
use crate::{MeterSettings, ProtocolChoice, SinkEvent};

/// The driver for whichever protocol the meter speaks.
enum Driver {
    Kmp(KmpMeter),
    Mc66c(Box<Mc66cMeter>),
}

/// An open connection to a meter; identified (serial, store id) after its first reading.
struct Connection {
    driver: Driver,
    serial: Option<u64>,
    model: Option<String>,
    meter_id: Option<MeterId>,
}

/// Why one poll failed.
#[derive(Debug, thiserror::Error)]
enum PollError {
    #[error(transparent)]
    Meter(#[from] MeterError),
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error("store: {0}")]
    Store(#[from] crate::db::DbError),
    #[error("{0}")]
    Unsupported(String),
}

impl PollError {
    fn kind(&self) -> &'static str {
        match self {
            PollError::Meter(e) => e.kind(),
            PollError::Open(OpenError::Link(e)) => e.kind(),
            PollError::Open(_) => "bad-port",
            PollError::Store(_) => "store",
            PollError::Unsupported(_) => "unsupported",
        }
    }

    /// The same verdict `kamstrup doctor` gives for this failure, for logs and the dashboard.
    fn verdict(&self) -> Verdict {
        match self {
            PollError::Meter(e) => Verdict::from_error(e),
            PollError::Open(OpenError::Link(e)) => Verdict::from_link_error(e),
            other => Verdict::Other {
                message: other.to_string(),
            },
        }
    }

    /// Whether the link must be closed and opened again (port vanished, TCP dropped, or a
    /// protocol mix-up that a fresh connection may clear).
    fn needs_reopen(&self) -> bool {
        match self {
            PollError::Meter(MeterError::Link(e)) => e.needs_reopen(),
            PollError::Open(_) => true,
            _ => false,
        }
    }
}

/// Wait before the n-th retry after consecutive failures: 30 s, 60 s, 120 s … at most 10 min.
pub fn backoff(failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(5);
    Duration::from_secs(30 * (1u64 << exp)).min(Duration::from_secs(600))
}

/// Everything a poller needs besides its meter's settings.
pub struct PollerContext {
    pub(crate) db: Db,
    pub(crate) status: StatusHandle,
    pub(crate) plausibility: Plausibility,
    pub(crate) new_reading: watch::Sender<ReadingId>,
    pub(crate) events: broadcast::Sender<SinkEvent>,
    pub(crate) retry_scale: f64,
}

/// Runs one meter until `shutdown` flips to true. A poll in progress is finished first, so a
/// frame is never cut in half and a reading in flight is still stored.
pub async fn run_meter(
    meter: MeterSettings,
    ctx: PollerContext,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut conn: Option<Connection> = None;
    let mut failures: u32 = 0;
    let mut next = Local::now();
    ctx.status
        .meter(&meter.name, |s| s.schedule = meter.schedule.to_string());
    loop {
        ctx.status.meter(&meter.name, |s| {
            s.next_poll = Some(next.with_timezone(&Utc))
        });
        let wait = (next - Local::now()).to_std().unwrap_or(Duration::ZERO);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => break,
        }
        if *shutdown.borrow() {
            break;
        }
        let started = Local::now();
        match poll_once(&meter, &ctx, &mut conn).await {
            Ok(()) => {
                if failures > 0 {
                    info!(meter = %meter.name, "meter answers again");
                    ctx.status.meter(&meter.name, |s| {
                        s.failure_streak = 0;
                        s.verdict = None;
                    });
                }
                failures = 0;
                next = meter.schedule.next_after(started);
            }
            Err(e) => {
                failures += 1;
                let kind = e.kind();
                let message = e.to_string();
                // Known before a reopen drops the connection: sinks mark this meter by serial.
                let serial = conn.as_ref().and_then(|c| c.serial);
                if e.needs_reopen() {
                    conn = None;
                }
                let now = Utc::now();
                let verdict = e.verdict().report();
                let headline = verdict.headline.clone();
                ctx.status.meter(&meter.name, |s| {
                    s.failure_streak = failures;
                    s.verdict = Some(verdict);
                    s.failures += 1;
                    s.polls += 1;
                    s.last_error = Some(Failure {
                        at: now,
                        kind: kind.to_string(),
                        message: message.clone(),
                    });
                });
                let name = meter.name.clone();
                let (k, m) = (kind.to_string(), message.clone());
                if let Err(store_err) = ctx
                    .db
                    .call(move |s| s.record_error(&name, now, &k, &m))
                    .await
                {
                    warn!(meter = %meter.name, error = %store_err, "could not record the read error");
                }
                let _ = ctx.events.send(SinkEvent::MeterUnavailable {
                    meter: meter.name.clone(),
                    serial,
                });
                let retry = backoff(failures).mul_f64(ctx.retry_scale);
                let regular = meter.schedule.next_after(started);
                let soon = Local::now()
                    + chrono::Duration::from_std(retry).unwrap_or(chrono::Duration::seconds(30));
                next = regular.min(soon);
                warn!(meter = %meter.name, verdict = %headline, streak = failures, error = %message, retry_at = %next.format("%H:%M:%S"), "read failed; nothing delivered");
            }
        }
    }
    debug!(meter = %meter.name, "poller stopped");
}

fn kmp_options(meter: &MeterSettings, retries: u32) -> KmpOptions {
    let defaults = KmpOptions::default();
    KmpOptions {
        timeouts: Timeouts {
            first_byte: meter.timeout,
            ..defaults.timeouts
        },
        retries,
        ..defaults
    }
}

fn mc66c_options(meter: &MeterSettings) -> Result<Mc66cOptions, PollError> {
    Ok(Mc66cOptions {
        program: meter.program,
        // The customer number from /#2 is what identifies a 66C (it has no serial register).
        identify: true,
        ..Mc66cOptions::default()
    })
}

/// Opens the port and, for KMP, identifies the meter at once (GetSerialNo, GetType). A 66C is
/// identified by the customer number in its first reading. `auto` probes KMP once, then the 66C.
async fn connect(meter: &MeterSettings) -> Result<Connection, PollError> {
    let port = meter.port.to_string();
    let kmp_line = LineSettings {
        baud: meter.baud.unwrap_or(LineSettings::KMP.baud),
        ..LineSettings::KMP
    };
    let (line, try_kmp) = match meter.protocol {
        ProtocolChoice::Mc66c => (LineSettings::MC66C_REQUEST, false),
        ProtocolChoice::Kmp | ProtocolChoice::Auto => (kmp_line, true),
    };
    let link = open_port(&meter.port, line, Duration::from_secs(5)).await?;
    if !try_kmp {
        let driver = Mc66cMeter::new(link, port, mc66c_options(meter)?);
        return Ok(Connection {
            driver: Driver::Mc66c(Box::new(driver)),
            serial: None,
            model: Some("MULTICAL 66C".into()),
            meter_id: None,
        });
    }
    let probing = meter.protocol == ProtocolChoice::Auto;
    let retries = if probing {
        0
    } else {
        KmpOptions::default().retries
    };
    let mut driver = KmpMeter::new(link, port.clone(), kmp_options(meter, retries));
    let serial = match driver.get_serial().await {
        Ok(s) => u64::from(s),
        Err(e @ MeterError::Link(_)) => return Err(e.into()),
        Err(e) if probing => {
            info!(meter = %meter.name, error = %e, "no KMP reply; trying the MULTICAL 66C protocol");
            let driver = Mc66cMeter::new(driver.into_link(), port, mc66c_options(meter)?);
            return Ok(Connection {
                driver: Driver::Mc66c(Box::new(driver)),
                serial: None,
                model: Some("MULTICAL 66C".into()),
                meter_id: None,
            });
        }
        Err(e) => return Err(e.into()),
    };
    if probing {
        driver = KmpMeter::new(
            driver.into_link(),
            port,
            kmp_options(meter, KmpOptions::default().retries),
        );
    }
    let hw = match driver.get_type().await {
        Ok(t) => Some(format!("KMP type 0x{:04X} rev {}", t.type_code, t.revision)),
        Err(e) => {
            debug!(meter = %meter.name, error = %e, "GetType not answered");
            None
        }
    };
    // A human model name only where it is known for sure (a simulator the user named); the
    // type code's mapping to models is not public, so it stays the raw hw version.
    let human = match &meter.port {
        kamstrup_optical::PortSpec::Sim { model } => {
            kamstrup_reading::ModelText::of_simulator(model)
        }
        _ => None,
    };
    let model = kamstrup_reading::ModelText::compose(human.as_deref(), hw.as_deref());
    Ok(Connection {
        driver: Driver::Kmp(driver),
        serial: Some(serial),
        model,
        meter_id: None,
    })
}

/// Records the meter in the store once per connection (keyed by serial, not port).
async fn identify(
    meter: &MeterSettings,
    ctx: &PollerContext,
    c: &mut Connection,
    reading: &Reading,
) -> Result<MeterId, PollError> {
    if let Some(id) = c.meter_id {
        return Ok(id);
    }
    let serial = c.serial.or(reading.meter.serial).ok_or_else(|| {
        PollError::Unsupported(
            "the meter did not report a serial or customer number; cannot tell it apart".into(),
        )
    })?;
    c.serial = Some(serial);
    let protocol = reading.meter.protocol;
    let (name, port, model) = (meter.name.clone(), meter.port.to_string(), c.model.clone());
    let meter_id = ctx
        .db
        .call(move |s| s.upsert_meter(serial, &name, protocol, model.as_deref(), &port, Utc::now()))
        .await?;
    info!(meter = %meter.name, serial, model = c.model.as_deref().unwrap_or("?"), port = %meter.port, "meter identified");
    ctx.status.meter(&meter.name, |s| {
        s.serial = Some(serial);
        s.protocol = Some(protocol.to_string());
    });
    c.meter_id = Some(meter_id);
    Ok(meter_id)
}

async fn poll_once(
    meter: &MeterSettings,
    ctx: &PollerContext,
    conn: &mut Option<Connection>,
) -> Result<(), PollError> {
    if conn.is_none() {
        *conn = Some(connect(meter).await?);
    }
    let Some(c) = conn.as_mut() else {
        return Err(PollError::Unsupported("no connection".into()));
    };
    let mut reading = match &mut c.driver {
        Driver::Kmp(d) => d.read(&meter.registers, false).await?,
        Driver::Mc66c(d) => d.read_standard().await?,
    };
    let meter_id = identify(meter, ctx, c, &reading).await?;
    reading.meter.serial = c.serial;

    let verdict = plausibility_verdict(ctx, meter_id, &reading).await?;
    if verdict.is_none() {
        add_usage(ctx, meter_id, &mut reading).await?;
    }
    let why = verdict.clone();
    let stored = reading.clone();
    let id = ctx
        .db
        .call(move |s| s.insert_reading(meter_id, &stored, why.as_deref()))
        .await?;
    let now = Utc::now();
    ctx.status.meter(&meter.name, |s| {
        s.polls += 1;
        s.last_ok = Some(now);
        if verdict.is_some() {
            s.implausible += 1;
        }
    });
    match &verdict {
        Some(why) => {
            warn!(meter = %meter.name, reading = id.0, reason = %why, "implausible reading stored, not delivered")
        }
        None => {
            debug!(meter = %meter.name, reading = id.0, "reading stored");
            ctx.new_reading.send_replace(id);
        }
    }
    Ok(())
}

/// The first reason any counter of `reading` is implausible against the last good value.
async fn plausibility_verdict(
    ctx: &PollerContext,
    meter: MeterId,
    reading: &Reading,
) -> Result<Option<String>, PollError> {
    for value in &reading.registers {
        if value.counter().is_none() {
            continue;
        }
        let name = value.name.clone();
        let last = ctx.db.call(move |s| s.last_value(meter, &name)).await?;
        if let Some((last_at, last)) = last {
            if let Some(why) = ctx
                .plausibility
                .check(value, last_at, &last, reading.taken_at)
            {
                return Ok(Some(why));
            }
        }
    }
    Ok(None)
}

/// The counters whose usage per period is derived (`<counter>_<period>`, e.g.
/// `heat_energy_today`); the config checks sink mappings against these names.
pub const USAGE_COUNTERS: [&str; 2] = ["heat_energy", "volume"];
/// The periods of [`USAGE_COUNTERS`], in the order of `period_starts`.
pub const USAGE_PERIODS: [&str; 3] = ["today", "month", "year"];

/// Start of today, this month and this year in local time, as UTC instants.
fn period_starts(now: DateTime<Local>) -> [(&'static str, DateTime<Utc>); 3] {
    let date = now.date_naive();
    let midnight = |d: chrono::NaiveDate| {
        Local
            .from_local_datetime(&d.and_time(chrono::NaiveTime::MIN))
            .earliest()
            .map_or(now.with_timezone(&Utc), |t| t.with_timezone(&Utc))
    };
    let month = date.with_day(1).unwrap_or(date);
    let year = date.with_ordinal(1).unwrap_or(date);
    [
        (USAGE_PERIODS[0], midnight(date)),
        (USAGE_PERIODS[1], midnight(month)),
        (USAGE_PERIODS[2], midnight(year)),
    ]
}

/// Adds `<counter>_today`, `_month`, `_year` for heat energy and volume: the exact difference
/// between this reading and the last stored value before the period began — or, when recording
/// started inside the period, the first value stored in it. Skipped for a meter's first reading
/// (a usage of "0" would be a guess, not a measurement).
async fn add_usage(
    ctx: &PollerContext,
    meter: MeterId,
    reading: &mut Reading,
) -> Result<(), PollError> {
    let starts = period_starts(reading.taken_at.with_timezone(&Local));
    let mut derived = Vec::new();
    for value in &reading.registers {
        if !USAGE_COUNTERS.contains(&value.name.as_str()) || value.derived {
            continue;
        }
        for (period, since) in starts {
            let name = value.name.clone();
            let found = ctx
                .db
                .call(move |s| {
                    if let Some((_, base)) = s.value_at_or_before(meter, &name, since)? {
                        return Ok(Some(base));
                    }
                    // No value before the period: base on the first value inside it
                    // (= latest − usage since the period start).
                    match (
                        s.usage_since(meter, &name, since)?,
                        s.last_value(meter, &name)?,
                    ) {
                        (Some(used), Some((_, latest))) => Ok(latest.checked_sub(&used)),
                        _ => Ok(None),
                    }
                })
                .await?;
            let Some(base) = found else { continue };
            let Some(usage) = value.value.checked_sub(&base) else {
                continue;
            };
            derived.push(usage_value(value, period, usage));
        }
    }
    reading.registers.extend(derived);
    Ok(())
}

fn usage_value(counter: &RegisterValue, period: &str, usage: Decimal) -> RegisterValue {
    RegisterValue {
        id: 0,
        name: format!("{}_{period}", counter.name),
        short: format!("{} {period}", counter.short),
        value: usage,
        unit: counter.unit.clone(),
        unit_code: counter.unit_code,
        text: None,
        derived: true,
    }
}

/// Connects to a meter and reads it once, for `kamstrup check`: a verdict line on success, the
/// error (with its hint) on failure. Nothing is stored.
pub async fn probe(meter: &MeterSettings) -> Result<String, String> {
    let mut conn = connect(meter).await.map_err(|e| e.to_string())?;
    let reading = match &mut conn.driver {
        Driver::Kmp(d) => d.read(&meter.registers, false).await,
        Driver::Mc66c(d) => d.read_standard().await,
    }
    .map_err(|e| e.to_string())?;
    let serial = conn.serial.or(reading.meter.serial);
    let first = reading
        .registers
        .first()
        .map(|r| format!("{} = {} {}", r.name, r.value, r.unit))
        .unwrap_or_default();
    Ok(format!(
        "{} meter, {} {}, {} registers read ({first}{})",
        reading.meter.protocol,
        if reading.meter.protocol == kamstrup_reading::Protocol::Mc66c {
            "customer no."
        } else {
            "serial"
        },
        serial.map_or("?".to_string(), |s| s.to_string()),
        reading.registers.len(),
        if reading.missing.is_empty() {
            String::new()
        } else {
            format!("; not answered: {:?}", reading.missing)
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        assert_eq!(backoff(1), Duration::from_secs(30));
        assert_eq!(backoff(2), Duration::from_secs(60));
        assert_eq!(backoff(4), Duration::from_secs(240));
        assert_eq!(backoff(50), Duration::from_secs(600));
    }

    #[test]
    fn periods_start_at_local_midnight() {
        let now = Local.with_ymd_and_hms(2026, 5, 17, 14, 30, 0).unwrap();
        let [(_, today), (_, month), (_, year)] = period_starts(now);
        assert_eq!(
            today.with_timezone(&Local),
            Local.with_ymd_and_hms(2026, 5, 17, 0, 0, 0).unwrap()
        );
        assert_eq!(
            month.with_timezone(&Local),
            Local.with_ymd_and_hms(2026, 5, 1, 0, 0, 0).unwrap()
        );
        assert_eq!(
            year.with_timezone(&Local),
            Local.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
        );
    }
}

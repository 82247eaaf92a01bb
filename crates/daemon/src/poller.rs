//! One task per meter: poll on schedule, identify the meter by serial once per connection, check
//! plausibility, add derived usage, store the reading, then wake the sinks. Failures back off.

use std::time::Duration;

use chrono::{DateTime, Datelike, Local, TimeZone, Utc};
use kamstrup_decimal::Decimal;
use kamstrup_meter::{
    open_port, KmpMeter, KmpOptions, LogError, LoggerType, Mc66cLogReadError, Mc66cMeter,
    Mc66cOptions, MeterError, MeterIdentity, OpenError, Reading, RegisterValue, Verdict,
};
use kamstrup_meter::{LineSettings, Timeouts};
use kamstrup_reading::ReadingSource;
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
    pub(crate) clock: crate::Clock,
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
    let mut next = ctx.clock.local();
    // Gaps are looked for at start, after a run of failed polls and after the host slept.
    let mut gaps = GapState {
        due: meter.backfill.enabled(),
        ..GapState::default()
    };
    ctx.status.meter(&meter.name, |s| {
        s.schedule = meter.schedule.to_string();
        if !meter.backfill.enabled() {
            s.logger = Some(crate::LoggerStatus {
                state: "off".into(),
                ..Default::default()
            });
        }
    });
    // `mode = "logger"`: the hour logger is read at these wall-clock times (a poll and a
    // back-fill in one IR session), besides the light polls of `schedule`.
    let logger_reads = (!meter.backfill.logger_at.is_empty())
        .then(|| crate::Schedule::At(meter.backfill.logger_at.clone()));
    let mut next_logger = logger_reads
        .as_ref()
        .map(|s| s.next_after(ctx.clock.local()));
    loop {
        ctx.status.meter(&meter.name, |s| {
            s.next_poll = Some(next.with_timezone(&Utc))
        });
        let follow_up = gaps.follow_up.map(|t| t.with_timezone(&Local));
        let wake = [next_logger, follow_up]
            .into_iter()
            .flatten()
            .fold(next, |a, b| a.min(b));
        let wait = (wake - ctx.clock.local())
            .to_std()
            .unwrap_or(Duration::ZERO);
        // tokio's instant is the monotonic clock in production (and virtual in tests).
        let (slept_mono, slept_wall) = (tokio::time::Instant::now(), ctx.clock.now());
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => break,
        }
        if *shutdown.borrow() {
            break;
        }
        // The monotonic clock stops while the host is suspended, the wall clock does not.
        if host_slept(slept_mono.elapsed(), ctx.clock.now() - slept_wall)
            && meter.backfill.enabled()
        {
            info!(meter = %meter.name, "the host was asleep; looking for gaps to back-fill");
            gaps.due = true;
        }
        let started = ctx.clock.local();
        if follow_up.is_some_and(|f| f <= started) {
            gaps.follow_up = None;
            gaps.due = true;
        }
        if let (Some(due), Some(reads)) = (next_logger, &logger_reads) {
            if due <= started {
                gaps.due = true;
                next_logger = Some(reads.next_after(started));
            }
        }
        if started < next {
            // Woken for a logger read (or a gap's end) only: the light poll keeps its own time.
            match poll_once(&meter, &ctx, &mut conn).await {
                Ok(identity) => {
                    let backfill = backfill_once(&meter, &ctx, &mut conn, &identity, &mut gaps);
                    if cut_short_by_shutdown(backfill, &mut shutdown, &meter.name).await {
                        break;
                    }
                }
                // The back-fill stays due: the next good poll does it.
                Err(e) => {
                    warn!(meter = %meter.name, error = %e, "logger read: the meter did not answer; back-filling after the next good poll")
                }
            }
            continue;
        }
        match poll_once(&meter, &ctx, &mut conn).await {
            Ok(identity) => {
                if failures > 0 {
                    info!(meter = %meter.name, "meter answers again");
                    ctx.status.meter(&meter.name, |s| {
                        s.failure_streak = 0;
                        s.verdict = None;
                    });
                    gaps.due |= meter.backfill.enabled();
                }
                failures = 0;
                if gaps.due {
                    let backfill = backfill_once(&meter, &ctx, &mut conn, &identity, &mut gaps);
                    if cut_short_by_shutdown(backfill, &mut shutdown, &meter.name).await {
                        break;
                    }
                }
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
                let now = ctx.clock.now();
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
                let soon = ctx.clock.local()
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

/// A human model name only where it is known for sure: the config's `model` (the user read the
/// label) or a simulator the user named. A KMP type code's mapping to models is not public, so
/// it never names a model; it stays the raw hw version.
pub(crate) fn known_model(meter: &MeterSettings) -> Option<String> {
    if let Some(model) = &meter.model {
        return Some(model.clone());
    }
    match &meter.port {
        kamstrup_meter::PortSpec::Sim { model } => kamstrup_reading::ModelText::of_simulator(model),
        _ => None,
    }
}

/// The model of a MULTICAL 66C connection: the configured one, else the protocol's family.
fn mc66c_model(meter: &MeterSettings) -> Option<String> {
    Some(
        meter
            .model
            .clone()
            .unwrap_or_else(|| "MULTICAL 66C".to_owned()),
    )
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
            model: mc66c_model(meter),
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
                model: mc66c_model(meter),
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
    let model = kamstrup_reading::ModelText::compose(known_model(meter).as_deref(), hw.as_deref());
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
    let now = ctx.clock.now();
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
        .call(move |s| s.upsert_meter(serial, &name, protocol, model.as_deref(), &port, now))
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
) -> Result<MeterIdentity, PollError> {
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
    // The poller's clock stamps the reading as the read ends (the system clock, as the driver's
    // own stamp; virtual time in tests).
    reading.taken_at = ctx.clock.now();
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
    let now = ctx.clock.now();
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
    Ok(reading.meter)
}

/// Runs a back-fill unless shutdown comes first. A back-fill is one long IR session (weeks of
/// hours take minutes at 1200 Bd), longer than a service manager waits for a stop: on shutdown
/// it is dropped, and whatever it had not stored yet is read again at the next start.
async fn cut_short_by_shutdown(
    backfill: impl std::future::Future<Output = ()>,
    shutdown: &mut watch::Receiver<bool>,
    meter: &str,
) -> bool {
    if *shutdown.borrow() {
        return true;
    }
    tokio::select! {
        () = backfill => false,
        _ = shutdown.changed() => {
            info!(meter = %meter, "shutting down: back-fill cut short; the next start reads the rest");
            true
        }
    }
}

/// Whether a sleep of `mono` (monotonic) took `wall` on the wall clock: more than a minute
/// more means the host was suspended (or its clock was set forward) meanwhile.
fn host_slept(mono: Duration, wall: chrono::Duration) -> bool {
    let mono = chrono::Duration::from_std(mono).unwrap_or(chrono::Duration::MAX);
    wall - mono > chrono::Duration::seconds(60)
}

/// Whether a meter keeps a logger the daemon can back-fill from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Loggers {
    /// Not asked yet.
    #[default]
    Unknown,
    /// The hour logger (a 66C: its loggers) answered.
    Hourly,
    /// Silent to the logger command: never asked again (said once at INFO).
    None,
}

/// One meter's back-fill state.
#[derive(Debug, Default)]
struct GapState {
    /// Look for gaps after the next good poll.
    due: bool,
    loggers: Loggers,
    /// The oldest record the hour logger holds (after a read reached it): older hours are not
    /// asked for again.
    floor: Option<DateTime<Utc>>,
    /// A KMP hour logger to read again at this time, for the record that ends a gap's last hour
    /// but was not logged yet ([`crate::backfill::gap_end_follow_up`]).
    follow_up: Option<DateTime<Utc>>,
    /// That gap's last hour (a unix hour): missing for the follow-up read, though its own
    /// record is stored, so the record that ends it is wanted. Asked once.
    gap_end: Option<i64>,
    /// A 66C back-fill already waited for its clock to pass the start of this unix hour: not
    /// again (a clock that still has not is read as it is).
    waited_for: Option<i64>,
}

/// The meter's zone: configured, or the simulator's CET for `sim:` ports, or this host's.
fn meter_zone(meter: &MeterSettings) -> i32 {
    if let Some(z) = meter.backfill.zone_standard_offset_min {
        return z;
    }
    if let kamstrup_meter::PortSpec::Sim { model } = &meter.port {
        // The simulated 66C's clock runs on UTC; the KMP simulators' on CET.
        return match model.parse::<kamstrup_meter::SimModel>() {
            Ok(kamstrup_meter::SimModel::Mc66c(_)) => 0,
            _ => kamstrup_meter::sim::kmp_loggers::ZONE_STANDARD_OFFSET_MIN,
        };
    }
    use chrono::Offset;
    let year = Utc::now().year();
    [1, 7]
        .into_iter()
        .filter_map(|month| Local.with_ymd_and_hms(year, month, 1, 12, 0, 0).single())
        .map(|t| t.offset().fix().local_minus_utc() / 60)
        .min()
        .unwrap_or(0)
}

/// What one back-fill session read, whichever the protocol.
struct Session {
    /// Logged rows per source, in the order they are stored.
    batches: Vec<(ReadingSource, Vec<crate::backfill::LoggedRow>)>,
    clock_offset_s: Option<i64>,
    requests: u64,
    bytes: u64,
    pages: u32,
    wall: Duration,
    /// The oldest record the loggers read hold, when the read reached it: older hours are not
    /// asked for again.
    floor: Option<DateTime<Utc>>,
    /// For the log line: "the hour logger", "the 66C's loggers (/#D /#5 /#7)".
    what: String,
    /// For the dashboard: `hour-logger`, `day-logger`.
    state: &'static str,
    /// The newest record the hour logger read returned (the meter's stamp), when the read
    /// reaches the newest and a later read would cost little (KMP): see `follow_up`.
    newest_hour_stamp: Option<DateTime<Utc>>,
}

/// Fills the hours without a reading from the meter's loggers, in this IR session: a KMP
/// meter's hour logger from the oldest missing hour it holds on, its day logger for older
/// midnights still wanted ([`read_kmp`]); a MULTICAL 66C's `/#7` (and `/#6` for
/// hours beyond it) when a gap is at least `backfill_min_gap` long. Never fails the poll: a
/// failed back-fill is logged and tried again after the next good poll.
async fn backfill_once(
    meter: &MeterSettings,
    ctx: &PollerContext,
    conn: &mut Option<Connection>,
    identity: &MeterIdentity,
    gaps: &mut GapState,
) {
    let Some(c) = conn.as_mut() else { return };
    let Some(meter_id) = c.meter_id else { return };
    if gaps.loggers == Loggers::None {
        gaps.due = false;
        return;
    }
    let now = ctx.clock.now();
    let window =
        chrono::Duration::from_std(meter.backfill.window).unwrap_or(chrono::Duration::days(31));
    let from = gaps.floor.map_or(now - window, |f| f.max(now - window));
    // From the start of the window's first hour: a reading earlier in that hour than `from`
    // covers it (else a window start at :50 calls a polled hour missing).
    let first_hour =
        DateTime::from_timestamp(from.timestamp().div_euclid(3600) * 3600, 0).unwrap_or(from);
    let covered = match ctx
        .db
        .call(move |s| s.hours_with_readings(meter_id, first_hour, now))
        .await
    {
        Ok(c) => c,
        Err(e) => {
            warn!(meter = %meter.name, error = %e, "back-fill: cannot read the store");
            return;
        }
    };
    let mut missing = crate::backfill::missing_hours(from, now, &covered);
    // A follow-up for a gap's end: its last hour holds its own logged record, but the record
    // that ends it is wanted now.
    let follow_up_of = gaps.gap_end.take();
    if let Some(hour) = follow_up_of {
        if let Err(at) = missing.binary_search(&hour) {
            missing.insert(at, hour);
        }
    }
    let Some(&oldest) = missing.first() else {
        debug!(meter = %meter.name, "back-fill: no gaps");
        gaps.due = false;
        return;
    };
    let oldest_at = DateTime::from_timestamp(oldest * 3600, 0).unwrap_or(from);
    let zone = meter_zone(meter);
    let read = match &mut c.driver {
        Driver::Kmp(driver) => read_kmp(meter, ctx, driver, &missing, zone, gaps).await,
        Driver::Mc66c(driver) => {
            read_66c(meter, ctx, driver, &missing, oldest_at, now, zone, gaps).await
        }
    };
    let session = match read {
        Ok(Some(s)) => s,
        Ok(None) => return,
        Err(reopen) => {
            if reopen {
                *conn = None;
            }
            // Tried again after the next good poll, for the same gap's end.
            gaps.gap_end = follow_up_of;
            return;
        }
    };
    if let Some(off) = session.clock_offset_s {
        if off.unsigned_abs() > crate::backfill::CLOCK_WARN.as_secs() {
            let side = if off > 0 { "ahead of" } else { "behind" };
            warn!(meter = %meter.name, offset_s = off, "the meter's clock is {} s {side} this host's; logged times are corrected by it, but the meter's own day boundaries are off (set its clock with a service tool)", off.abs());
        }
    }
    if session.floor.is_some() {
        gaps.floor = session.floor;
    }
    let missing: std::collections::BTreeSet<i64> = missing.into_iter().collect();
    // The record that ends the gap's last hour may not be logged yet (a meter clock behind the
    // host's): read it once when it is. (A 66C's /#7, ~11 min of IR, is not read twice for
    // it: `read_66c` waits for the meter's clock to pass the hour before reading it at all.)
    let follow_up = session.newest_hour_stamp.and_then(|newest| {
        crate::backfill::gap_end_follow_up(newest, session.clock_offset_s, &missing, now)
    });
    let plausibility = ctx.plausibility;
    let identity = identity.clone();
    let records_read = session.batches.iter().map(|(_, rows)| rows.len()).sum();
    let batches = session.batches;
    let (requests, bytes, pages, wall, clock_offset_s) = (
        session.requests,
        session.bytes,
        session.pages,
        session.wall,
        session.clock_offset_s,
    );
    let stored = ctx
        .db
        .call(move |s| {
            let mut report = crate::backfill::BackfillReport {
                missing_hours: missing.len(),
                records_read,
                requests,
                bytes,
                pages,
                wall,
                clock_offset_s,
                ..Default::default()
            };
            crate::backfill::store_batches(
                s,
                meter_id,
                &identity,
                &batches,
                clock_offset_s,
                &missing,
                &plausibility,
                &mut report,
            )?;
            Ok(report)
        })
        .await;
    let report = match stored {
        Ok(r) => r,
        Err(e) => {
            warn!(meter = %meter.name, error = %e, "back-fill: storing the logged records failed; trying again after the next good poll");
            gaps.gap_end = follow_up_of;
            return;
        }
    };
    gaps.due = false;
    if let Some((at, ends)) = follow_up {
        // Only for a gap that was not itself a follow-up's: asked once.
        if follow_up_of.is_none() {
            info!(meter = %meter.name, at = %at.format("%H:%M:%S UTC"), "the record that ends the gap's last hour is not logged yet (the meter's clock is behind); reading the hour logger again then");
            gaps.follow_up = Some(at);
            gaps.gap_end = Some(ends);
        }
    }
    let span = report
        .span
        .map(|(a, b)| {
            format!(
                "{} – {}",
                a.format("%Y-%m-%d %H:%M"),
                b.format("%Y-%m-%d %H:%M UTC")
            )
        })
        .unwrap_or_else(|| "nothing new".into());
    info!(
        meter = %meter.name,
        stored = report.stored,
        already_stored = report.already_stored,
        implausible = report.implausible,
        records_read = report.records_read,
        still_missing = report.still_missing,
        sessions = 1,
        requests = report.requests,
        pages = report.pages,
        bytes = report.bytes,
        wall_ms = report.wall.as_millis() as u64,
        clock_offset_s = report.clock_offset_s.unwrap_or(0),
        "back-fill from {}: {span}",
        session.what
    );
    if report.implausible > 0 {
        warn!(meter = %meter.name, count = report.implausible, "implausible logged records stored, not delivered");
    }
    let now = ctx.clock.now();
    ctx.status.meter(&meter.name, |s| {
        let l = s.logger.get_or_insert_with(Default::default);
        l.state = session.state.into();
        l.last_backfill = Some(now);
        l.last_records = report.stored as u64;
        l.records_total += report.stored as u64;
        // A session that read no records (nothing the loggers could fill) measured no clock.
        if report.clock_offset_s.is_some() {
            l.clock_offset_s = report.clock_offset_s;
        }
    });
    if let Some(id) = report.newest_id {
        // Sinks read what lies beyond their cursors; the id only has to be new to wake them.
        ctx.new_reading.send_replace(id);
    }
}

/// A logger error of a KMP back-fill: `Ok(None)` when there is nothing to store (no logger, or
/// an empty one; said once), `Err(reopen)` when it failed (logged).
fn kmp_log_error(
    meter: &MeterSettings,
    ctx: &PollerContext,
    gaps: &mut GapState,
    e: LogError,
) -> Result<Option<Session>, bool> {
    match e {
        LogError::NoLoggers { .. } => {
            info!(meter = %meter.name, "the meter keeps no logger readable over KMP (a MULTICAL 402/602 only answers register reads): no back-fill, polling as usual");
            gaps.loggers = Loggers::None;
            gaps.due = false;
            set_logger_state(ctx, &meter.name, "none");
            Ok(None)
        }
        LogError::Empty { .. } => {
            info!(meter = %meter.name, "the meter's hour logger holds no record yet");
            gaps.due = false;
            Ok(None)
        }
        e => {
            warn!(meter = %meter.name, error = %e, "back-fill from the hour logger failed; trying again after the next good poll");
            Err(matches!(&e, LogError::Meter(MeterError::Link(l)) if l.needs_reopen()))
        }
    }
}

/// A KMP meter's loggers for the `missing` hours (sorted): the hour logger from the oldest
/// missing hour it still holds, and the day, month and year loggers for the meter's period
/// starts older than that whose hours hold no reading yet ([`read_period_loggers`]).
/// `Ok(None)`: nothing to store (no logger, or an empty one; said once); `Err(reopen)`: failed,
/// logged.
async fn read_kmp(
    meter: &MeterSettings,
    ctx: &PollerContext,
    driver: &mut KmpMeter,
    missing: &[i64],
    zone: i32,
    gaps: &mut GapState,
) -> Result<Option<Session>, bool> {
    let hour_of = |t: DateTime<Utc>| t.timestamp().div_euclid(3600);
    let hour_start = |h: i64| DateTime::from_timestamp(h * 3600, 0).unwrap_or_default();
    let mut session = Session {
        batches: Vec::new(),
        clock_offset_s: None,
        requests: 0,
        bytes: 0,
        pages: 0,
        wall: Duration::ZERO,
        floor: None,
        what: "the hour logger's oldest record (nothing the loggers can fill)".into(),
        state: "hour-logger",
        newest_hour_stamp: None,
    };
    // How far back the hour logger reaches, unless this poller learnt it (`gaps.floor`; the
    // missing hours then start there): one short request for its oldest record. Missing hours
    // older than that record can never come from it, and after a restart over a store a long
    // window filled there are always some (the hours between the day logger's midnights):
    // reading "from the oldest missing hour" would read the whole hour logger at every start.
    let mut reach: Option<DateTime<Utc>> = None;
    if gaps.floor.is_none() {
        match crate::backfill::oldest_stamp(driver, LoggerType::Hourly, zone).await {
            Ok((Some(stamp), requests, bytes, wall)) => {
                reach = Some(stamp);
                session.requests += requests;
                session.bytes += bytes;
                session.wall += wall;
            }
            Ok((None, ..)) => {
                return kmp_log_error(
                    meter,
                    ctx,
                    gaps,
                    LogError::Empty {
                        port: meter.port.to_string(),
                        logger: "hour",
                    },
                )
            }
            Err(e) => return kmp_log_error(meter, ctx, gaps, e),
        }
    }
    gaps.loggers = Loggers::Hourly;
    // By the stamp's hour (the meter's clock, uncorrected): the oldest record is written seconds
    // after its hour began, so with a clock up to ~30 min behind it lies in that hour, and a
    // clock ahead moves it into the hour before, which that record then fills (read below when
    // any later hour is, as `read_hours` starts an hour early).
    let reach_hour = reach.map(hour_of);
    // The hour logger's oldest record in the meter's stamps, when known, and corrected.
    let mut hour_floor: Option<(DateTime<Utc>, DateTime<Utc>)> = reach.map(|r| (r, r));
    if let Some(&first) = missing.iter().find(|&&h| reach_hour.is_none_or(|r| h >= r)) {
        let oldest_at = hour_start(first);
        info!(meter = %meter.name, hours = missing.len(), since = %oldest_at.format("%Y-%m-%d %H:%M UTC"), "hours without a reading; reading them from the meter's hour logger");
        let (read, wall, bytes) = match crate::backfill::read_hours(driver, oldest_at, zone).await {
            Ok(r) => r,
            Err(e) => return kmp_log_error(meter, ctx, gaps, e),
        };
        let offset = chrono::Duration::seconds(read.clock_offset_s.unwrap_or(0));
        if read.reached_oldest {
            if let Some(stamp) = read.rows.first().and_then(|r| r.utc) {
                hour_floor = Some((stamp, stamp - offset));
            }
        }
        let rows = read
            .rows
            .iter()
            .filter_map(|r| {
                Some(crate::backfill::LoggedRow {
                    stamp: r.utc?,
                    values: r.values.clone(),
                })
            })
            .collect();
        session.batches.push((ReadingSource::HourLog, rows));
        // A read since a time runs to the newest record.
        session.newest_hour_stamp = read.rows.last().and_then(|r| r.utc);
        session.clock_offset_s = read.clock_offset_s;
        session.requests += read.requests;
        session.bytes += bytes;
        session.pages += read.pages;
        session.wall += wall;
        session.what = "the hour logger".into();
    } else {
        info!(meter = %meter.name, hours = missing.len(), "hours without a reading, none within the hour logger's reach");
    }
    // The hours older than the hour logger's reach are as filled as they can be after this
    // session (the day, month and year loggers' period starts below): not asked for again by
    // this poller.
    session.floor = hour_floor.map(|(_, corrected)| corrected);
    // Missing hours older than the hour logger's oldest record: its day, month and year
    // loggers, in the same session, for the period starts there whose hours hold no reading.
    if let Some(floor) = hour_floor {
        read_period_loggers(meter, driver, missing, zone, floor, &mut session).await;
    }
    Ok(Some(session))
}

/// The day, month and year loggers of a KMP meter, in this IR session, for the `missing` hours
/// older than the hour logger's oldest record (`floor`: its stamp and its corrected time): each
/// for the starts of its periods older than the next finer logger's oldest record whose hours
/// hold no reading yet ([`crate::backfill::period_starts`]), read bounded to those, its records
/// after the finer ones' in `session`. A logger the meter does not keep, or an empty one, is
/// passed over; one that fails ends the reads (the finer loggers' records are stored, the
/// older hours asked for again after the next poll).
async fn read_period_loggers(
    meter: &MeterSettings,
    driver: &mut KmpMeter,
    missing: &[i64],
    zone: i32,
    floor: (DateTime<Utc>, DateTime<Utc>),
    session: &mut Session,
) {
    use crate::backfill::LogPeriod;
    let hour_of = |t: DateTime<Utc>| t.timestamp().div_euclid(3600);
    let missing_set: std::collections::BTreeSet<i64> = missing.iter().copied().collect();
    // The finer logger's oldest record: its stamp (the meter's) and corrected time.
    let (mut floor_stamp, mut floor_at) = floor;
    let mut names: Vec<&str> = Vec::new();
    if session
        .batches
        .iter()
        .any(|(s, _)| *s == ReadingSource::HourLog)
    {
        names.push("hour");
    }
    for period in [LogPeriod::Day, LogPeriod::Month, LogPeriod::Year] {
        let name = period.name();
        // A month or year start is a midnight: none wanted here, none for the coarser ones.
        // The offset this session measured: the hours its records land in, exactly.
        let starts = crate::backfill::period_starts_for_clock(
            period,
            &missing_set,
            hour_of(floor_at),
            zone,
            session.clock_offset_s,
        );
        let (Some(&first), Some(&last)) = (starts.first(), starts.last()) else {
            break;
        };
        info!(meter = %meter.name, periods = starts.len(), since = %first.format("%Y-%m-%d %H:%M UTC"), older_than = %floor_at.format("%Y-%m-%d %H:%M UTC"), "hours older than the finer loggers hold; reading the meter's {name} logger for those {name}s");
        // The logger's own reach (one short request): starts older than its oldest record
        // (beyond its depth, before the meter was commissioned) it cannot fill.
        let oldest = match crate::backfill::oldest_stamp(driver, period.logger(), zone).await {
            Ok((stamp, requests, bytes, wall)) => {
                session.requests += requests;
                session.bytes += bytes;
                session.wall += wall;
                stamp
            }
            Err(LogError::NoLoggers { .. }) => {
                info!(meter = %meter.name, "the meter keeps no {name} logger");
                continue;
            }
            Err(e) => {
                // The finer records are stored; the old hours are asked for again after the
                // next poll.
                warn!(meter = %meter.name, error = %e, "back-fill from the {name} logger failed; the finer loggers' records are stored");
                session.floor = None;
                break;
            }
        };
        let Some(oldest) = oldest else {
            info!(meter = %meter.name, "the meter's {name} logger holds no record yet");
            continue;
        };
        // An hour's slack: a record is stamped seconds after its period began.
        if last + chrono::Duration::hours(1) >= oldest {
            let since = first.max(oldest - chrono::Duration::hours(1));
            // Up to the last wanted start (its record is stamped seconds after it), and never
            // past the finer logger's oldest record: its record is the one kept where both are.
            let until = (last + chrono::Duration::hours(1)).min(floor_stamp);
            match crate::backfill::read_periods(driver, period, since, until, zone).await {
                Ok((read, wall, bytes)) => {
                    let rows = crate::backfill::rows_before(&read, floor_at);
                    info!(meter = %meter.name, records = rows.len(), records_read = read.rows.len(), requests = read.requests, pages = read.pages, bytes, wall_ms = wall.as_millis() as u64, "{name} logger read");
                    session.batches.push((period.source(), rows));
                    session.clock_offset_s = session.clock_offset_s.or(read.clock_offset_s);
                    session.requests += read.requests;
                    session.bytes += bytes;
                    session.pages += read.pages;
                    session.wall += wall;
                    names.push(name);
                    session.what = match names.as_slice() {
                        [one] => format!("the {one} logger"),
                        [init @ .., end] => format!("the {} and {end} loggers", init.join(", ")),
                        [] => String::new(),
                    };
                }
                Err(e) => {
                    warn!(meter = %meter.name, error = %e, "back-fill from the {name} logger failed; the finer loggers' records are stored");
                    session.floor = None;
                    break;
                }
            }
        } else {
            info!(meter = %meter.name, "the {name} logger holds none of those {name}s");
        }
        // Older starts only from the coarser loggers (never newer than the finer logger's
        // floor: a logger younger than a finer one leaves nothing new to the coarser ones).
        let offset = chrono::Duration::seconds(session.clock_offset_s.unwrap_or(0));
        if oldest - offset < floor_at {
            floor_stamp = oldest;
            floor_at = oldest - offset;
        }
    }
}

/// A MULTICAL 66C's loggers, when a run of missing hours is at least `backfill_min_gap`: `/#D`
/// (its clock), `/#5` (month-end counters, themselves records of the month starts), `/#7`
/// and/or `/#6`, each whole.
#[allow(clippy::too_many_arguments)]
async fn read_66c(
    meter: &MeterSettings,
    ctx: &PollerContext,
    driver: &mut Mc66cMeter,
    missing: &[i64],
    oldest_at: DateTime<Utc>,
    now: DateTime<Utc>,
    zone: i32,
    gaps: &mut GapState,
) -> Result<Option<Session>, bool> {
    let min_gap = meter.backfill.min_gap;
    let logs = match crate::backfill::plan_66c(missing, now, min_gap, zone) {
        crate::backfill::Mc66cPlan::TooShort { longest_hours } => {
            info!(meter = %meter.name, hours = missing.len(), longest_gap_h = longest_hours, min_gap_h = min_gap.as_secs_f64() / 3600.0, "hours without a reading, but no gap as long as backfill_min_gap: not reading the MULTICAL 66C's loggers (each is sent whole; the hour logger takes ~11 min of IR); the counters still hold the heat of those hours");
            gaps.due = false;
            return Ok(None);
        }
        crate::backfill::Mc66cPlan::Read(logs) => logs,
    };
    let names: Vec<&str> = logs.iter().map(|l| l.request()).collect();
    info!(meter = %meter.name, hours = missing.len(), since = %oldest_at.format("%Y-%m-%d %H:%M UTC"), loggers = %names.join(" "), "hours without a reading; reading them from the MULTICAL 66C's loggers (whole data sets: minutes of IR)");
    set_logger_state(ctx, &meter.name, "reading");
    // A gap up to the hour before this one ends with /#7's line for that hour, which a meter
    // clock behind this host's has not written yet just after the hour: then the session stops
    // after /#D and the loggers are read once it has (else that hour would stay without its
    // end, its heat booked in this one).
    let now_hour = now.timestamp().div_euclid(3600);
    let hour_end = missing
        .last()
        .filter(|&&h| h == now_hour - 1 && gaps.waited_for != Some(now_hour))
        .and_then(|_| DateTime::from_timestamp(now_hour * 3600, 0));
    let read = match driver
        .read_counter_logs_through(&logs, zone, hour_end)
        .await
    {
        Ok(kamstrup_meter::Mc66cSession::Read(r)) => r,
        Ok(kamstrup_meter::Mc66cSession::NotYet(wait)) => {
            info!(meter = %meter.name, clock_offset_s = wait.clock_offset_s, requests = wait.requests, bytes = wait.bytes, at = %wait.due.format("%H:%M:%S UTC"), "the MULTICAL 66C's clock has not passed the hour yet: its hour logger lacks the line that ends the gap; reading the loggers then");
            set_logger_state(ctx, &meter.name, "waiting");
            gaps.waited_for = Some(now_hour);
            gaps.follow_up = Some(wait.due);
            gaps.due = false;
            return Ok(None);
        }
        Err(e) => {
            warn!(meter = %meter.name, error = %e, "back-fill from the 66C's loggers failed; trying again after the next good poll");
            set_logger_state(ctx, &meter.name, "failed");
            return Err(
                matches!(&e, Mc66cLogReadError::Meter(MeterError::Link(l)) if l.needs_reopen()),
            );
        }
    };
    gaps.loggers = Loggers::Hourly;
    let offset = chrono::Duration::seconds(read.clock_offset_s.unwrap_or(0));
    // The hours older than what was read are as filled as they can be: not asked for again.
    let floor = read
        .logs
        .iter()
        .filter_map(|(_, rows)| rows.first().map(|r| r.utc - offset))
        .min();
    let state = if logs.contains(&kamstrup_meter::Mc66cLog::Hour) {
        "hour-logger"
    } else if logs.contains(&kamstrup_meter::Mc66cLog::Day) {
        "day-logger"
    } else {
        "month-logger"
    };
    let batches = crate::backfill::mc66c_batches(&read);
    Ok(Some(Session {
        batches,
        clock_offset_s: read.clock_offset_s,
        requests: read.requests,
        bytes: read.bytes,
        pages: u32::try_from(read.data_sets.len()).unwrap_or(u32::MAX),
        wall: read.wall,
        floor,
        what: format!("the 66C's loggers ({})", read.data_sets.join(" ")),
        state,
        // /#7 is not read again for one record (see `backfill_once`).
        newest_hour_stamp: None,
    }))
}

fn set_logger_state(ctx: &PollerContext, meter: &str, state: &str) {
    ctx.status.meter(meter, |s| {
        s.logger.get_or_insert_with(Default::default).state = state.into();
    });
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

    #[tokio::test(start_paused = true)]
    async fn shutdown_cuts_a_long_back_fill_short() {
        let (stop, mut stopped) = watch::channel(false);
        let long = tokio::time::sleep(Duration::from_secs(300));
        let stopper = async {
            tokio::time::sleep(Duration::from_secs(2)).await;
            stop.send(true).unwrap();
        };
        let started = tokio::time::Instant::now();
        let (cut, ()) = tokio::join!(cut_short_by_shutdown(long, &mut stopped, "heat"), stopper);
        assert!(cut);
        assert!(started.elapsed() < Duration::from_secs(3));
        // A back-fill that ends first is not cut.
        let (_stop, mut idle) = watch::channel(false);
        assert!(!cut_short_by_shutdown(async {}, &mut idle, "heat").await);
    }

    #[test]
    fn a_wall_clock_ahead_of_the_monotonic_clock_means_the_host_slept() {
        let secs = chrono::Duration::seconds;
        assert!(!host_slept(Duration::from_secs(900), secs(900)));
        assert!(
            !host_slept(Duration::from_secs(900), secs(930)),
            "jitter, NTP slew"
        );
        assert!(
            host_slept(Duration::from_secs(900), secs(4 * 3600)),
            "suspended for hours"
        );
        assert!(
            !host_slept(Duration::from_secs(900), secs(-3600)),
            "clock set back"
        );
    }

    fn settings(port: &str, protocol: ProtocolChoice, model: Option<&str>) -> MeterSettings {
        MeterSettings {
            name: "heat".into(),
            port: port.parse().unwrap(),
            protocol,
            registers: vec![60],
            schedule: crate::Schedule::Every(Duration::from_secs(900)),
            baud: None,
            timeout: Duration::from_secs(2),
            program: None,
            model: model.map(str::to_owned),
            backfill: crate::Backfill::OFF,
        }
    }

    #[test]
    fn a_model_name_only_from_the_config_or_a_named_simulator() {
        let kmp = ProtocolChoice::Kmp;
        assert_eq!(known_model(&settings("/dev/ttyUSB0", kmp, None)), None);
        assert_eq!(
            known_model(&settings("tcp://10.0.0.5:4001", kmp, None)),
            None
        );
        assert_eq!(
            known_model(&settings("/dev/ttyUSB0", kmp, Some("MULTICAL 403"))).as_deref(),
            Some("MULTICAL 403")
        );
        assert_eq!(
            known_model(&settings("sim:multical-602", kmp, None)).as_deref(),
            Some("MULTICAL 602")
        );
    }

    /// Through a real (simulated) meter connection: the stored model text is the configured
    /// name with the type the meter reported as the hw version; a 66C keeps a configured name.
    #[tokio::test]
    async fn connect_stores_the_configured_model_beside_the_reported_type() {
        let c = connect(&settings("sim:multical-403", ProtocolChoice::Kmp, None))
            .await
            .unwrap();
        assert_eq!(
            c.model.as_deref(),
            Some("MULTICAL 403 (KMP type 0x0403 rev F1)")
        );
        let c = connect(&settings(
            "sim:multical-403",
            ProtocolChoice::Kmp,
            Some("MULTICAL 603"),
        ))
        .await
        .unwrap();
        assert_eq!(
            c.model.as_deref(),
            Some("MULTICAL 603 (KMP type 0x0403 rev F1)")
        );
        let c = connect(&settings("sim:multical-66c", ProtocolChoice::Mc66c, None))
            .await
            .unwrap();
        assert_eq!(c.model.as_deref(), Some("MULTICAL 66C"));
        let c = connect(&settings(
            "sim:multical-66c",
            ProtocolChoice::Mc66c,
            Some("MULTICAL 66-D"),
        ))
        .await
        .unwrap();
        assert_eq!(c.model.as_deref(), Some("MULTICAL 66-D"));
    }

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

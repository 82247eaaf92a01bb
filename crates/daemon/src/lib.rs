//! The kamstrup daemon: per-meter pollers on schedules, plausibility, SQLite first, then every
//! sink through its own outbox cursor — so a reading, once read, is never lost.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod backfill;
pub mod clock;
pub mod db;
pub mod outbox;
pub mod plausibility;
pub mod poller;
pub mod schedule;
pub mod status;

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use kamstrup_meter::PortSpec;
use kamstrup_sinks::Sink;
use kamstrup_store::{ReadingId, Store};
use tokio::sync::{broadcast, watch};
use tracing::{info, warn};

pub use clock::Clock;
pub use db::Db;
pub use plausibility::Plausibility;
pub use poller::probe;
pub use schedule::Schedule;
pub use status::{LoggerStatus, Status, StatusHandle};

/// Which protocol to speak to a meter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtocolChoice {
    /// Kamstrup Meter Protocol.
    Kmp,
    /// MULTICAL 66C `/#1`.
    Mc66c,
    /// Try KMP, then the 66C protocol.
    Auto,
}

/// One meter, as validated from the config.
#[derive(Clone, Debug)]
pub struct MeterSettings {
    /// The user's name for it (`heat`).
    pub name: String,
    /// Where the head is.
    pub port: PortSpec,
    /// Protocol.
    pub protocol: ProtocolChoice,
    /// KMP register ids to read.
    pub registers: Vec<u16>,
    /// When to read.
    pub schedule: Schedule,
    /// Baud rate override.
    pub baud: Option<u32>,
    /// First-byte timeout.
    pub timeout: Duration,
    /// 66C program number (A-B-CCC), when given; validated by the config.
    pub program: Option<kamstrup_meter::ProgramNumber>,
    /// The model as the user read it on the label (`MULTICAL 403`), when given: the stored
    /// model name, so HA's device model and the names of the info bits.
    pub model: Option<String>,
    /// Filling gaps from the meter's own loggers.
    pub backfill: Backfill,
}

/// How a meter's gaps are filled from its own hour logger (KMP: MULTICAL 303/403/603).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backfill {
    /// How far back hours without a reading are filled (also bounded by the logger's depth);
    /// zero turns back-fill off.
    pub window: Duration,
    /// The meter's zone as its standard-time offset from UTC in minutes (the meter stamps
    /// records in standard time); `None`: this host's (the simulator's CET for `sim:` ports).
    pub zone_standard_offset_min: Option<i32>,
    /// `mode = "logger"`: local wall-clock times at which the hour logger is read (a poll plus a
    /// back-fill in one IR session); the meter's `schedule` is then only the optional light
    /// poll. Empty: polls only (`mode = "poll"`), back-fill when gaps appear.
    pub logger_at: Vec<chrono::NaiveTime>,
    /// MULTICAL 66C: its loggers are read only for a run of at least this many missing hours
    /// (each read is a whole data set: `/#7` takes ~11 min of IR at 1200 Bd, whatever the gap).
    pub min_gap: Duration,
}

impl Backfill {
    /// The default window: 31 days (a month of hours; the 3-series keep more).
    pub const DEFAULT_WINDOW: Duration = Duration::from_secs(31 * 86_400);

    /// The default `backfill_min_gap` of a MULTICAL 66C: 6 h. A shorter outage (a reboot, an
    /// update, a few failed polls) loses no heat — the next poll's counter holds it — only its
    /// split into hours, and is not worth ~11 min of IR (the hour logger is sent whole, during
    /// which the meter answers nothing else; the energy of a 66C's battery-powered display
    /// and IR interface is the user's). Six hours — a night, a day at work — is where the
    /// hourly shape the dashboard and Home Assistant's Energy view show is worth it.
    pub const DEFAULT_MIN_GAP: Duration = Duration::from_secs(6 * 3600);

    /// Back-fill turned off.
    pub const OFF: Backfill = Backfill {
        window: Duration::ZERO,
        zone_standard_offset_min: None,
        logger_at: Vec::new(),
        min_gap: Backfill::DEFAULT_MIN_GAP,
    };

    /// Whether gaps are filled at all.
    pub fn enabled(&self) -> bool {
        !self.window.is_zero()
    }
}

impl Default for Backfill {
    fn default() -> Self {
        Backfill {
            window: Backfill::DEFAULT_WINDOW,
            zone_standard_offset_min: None,
            logger_at: Vec::new(),
            min_gap: Backfill::DEFAULT_MIN_GAP,
        }
    }
}

/// Everything the daemon needs, already validated (secrets resolved, sinks built).
#[derive(Clone, Debug)]
pub struct DaemonConfig {
    /// SQLite file.
    pub store_path: PathBuf,
    /// Readings older than this are pruned (none when `None`).
    pub retention: Option<Duration>,
    /// The meters.
    pub meters: Vec<MeterSettings>,
    /// Counter bounds.
    pub plausibility: Plausibility,
    /// Multiplies every retry delay; 1.0 in production, small in tests.
    pub retry_scale: f64,
}

/// Something every sink task should hear about.
#[derive(Clone, Debug)]
pub enum SinkEvent {
    /// A meter could not be read; state sinks may show it as unavailable (never as 0).
    MeterUnavailable {
        /// Meter name.
        meter: String,
        /// Its serial, if it was ever identified.
        serial: Option<u64>,
    },
}

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The store could not be opened.
    #[error("cannot open the history database {path}: {source}")]
    Store {
        /// File.
        path: PathBuf,
        /// Cause.
        source: kamstrup_store::StoreError,
    },
}

/// Prints the start-up advice: IR sessions per day and sleep/battery warnings per meter.
pub fn log_advice(meters: &[MeterSettings]) {
    for m in meters {
        let kmp = m.protocol != ProtocolChoice::Mc66c;
        let cost = if kmp {
            schedule::SessionCost::kmp(m.registers.len())
        } else {
            schedule::SessionCost::MC66C
        };
        let (line, warnings) = schedule::advice(&m.name, kmp, &m.schedule, cost);
        info!("{line}");
        if !m.backfill.logger_at.is_empty() {
            info!(
                "{}",
                schedule::logger_advice(&m.name, &m.backfill.logger_at, &m.schedule, cost)
            );
        }
        for w in warnings {
            warn!("{w}");
        }
    }
}

/// Runs the daemon until `shutdown` completes: pollers stop after the poll in flight, sinks get
/// one last chance to deliver, the store is closed cleanly.
pub async fn run(
    config: DaemonConfig,
    sinks: Vec<Box<dyn Sink>>,
    status: StatusHandle,
    shutdown: impl Future<Output = ()>,
) -> Result<(), DaemonError> {
    run_with_clock(config, sinks, status, shutdown, Clock::system()).await
}

/// [`run`] with the pollers' wall clock given: [`Clock::following_tokio`] lets a test run hours
/// of schedules, failures and back-off in paused tokio time.
pub async fn run_with_clock(
    config: DaemonConfig,
    sinks: Vec<Box<dyn Sink>>,
    status: StatusHandle,
    shutdown: impl Future<Output = ()>,
    clock: Clock,
) -> Result<(), DaemonError> {
    let store = Store::open(&config.store_path).map_err(|source| DaemonError::Store {
        path: config.store_path.clone(),
        source,
    })?;
    let db = Db::new(store);
    log_advice(&config.meters);
    let latest = db
        .call(|s| s.max_reading_id())
        .await
        .unwrap_or(ReadingId(0));
    let (new_reading, _) = watch::channel(latest);
    let (events, _) = broadcast::channel(64);
    let (stop, stopped) = watch::channel(false);
    // Pollers stop first, so a reading stored by a poll (or back-fill) in flight at shutdown is
    // still in the sinks' last delivery attempt.
    let (stop_pollers, pollers_stopped) = watch::channel(false);

    let mut tasks = tokio::task::JoinSet::new();
    let mut pollers = tokio::task::JoinSet::new();
    for mut sink in sinks {
        sink.use_memory(std::sync::Arc::new(db::StoreMemory(db.clone())));
        let name = sink.name().to_string();
        info!(sink = %name, "sink ready");
        tasks.spawn(outbox::run_sink(
            sink,
            db.clone(),
            status.clone(),
            new_reading.subscribe(),
            events.subscribe(),
            stopped.clone(),
            config.retry_scale,
        ));
    }
    for meter in config.meters.clone() {
        let ctx = poller::PollerContext {
            db: db.clone(),
            status: status.clone(),
            plausibility: config.plausibility,
            new_reading: new_reading.clone(),
            events: events.clone(),
            retry_scale: config.retry_scale,
            clock,
        };
        pollers.spawn(poller::run_meter(meter, ctx, pollers_stopped.clone()));
    }
    if let Some(keep) = config.retention {
        let db = db.clone();
        let mut stopped = stopped.clone();
        tasks.spawn(async move {
            loop {
                let cutoff = chrono::Utc::now()
                    - chrono::Duration::from_std(keep).unwrap_or(chrono::Duration::days(3650));
                match db.call(move |s| s.prune(cutoff)).await {
                    Ok(n) if n > 0 => info!(pruned = n, "old readings removed (retention)"),
                    Ok(_) => {}
                    Err(e) => warn!(error = %e, "retention pruning failed"),
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(6 * 3600)) => {}
                    _ = stopped.changed() => break,
                }
            }
        });
    }
    shutdown.await;
    info!("shutting down: finishing reads in flight");
    let _ = stop_pollers.send(true);
    while pollers.join_next().await.is_some() {}
    let _ = stop.send(true);
    while tasks.join_next().await.is_some() {}
    info!("stopped");
    Ok(())
}

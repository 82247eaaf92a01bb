//! Live state of the daemon — per meter and per sink — for logs, the dashboard and `/metrics`.
//! Written by the pollers and outbox tasks, read by anyone holding a [`StatusHandle`].

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use kamstrup_meter::VerdictReport;
use serde::Serialize;

/// The last failure of something.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// When.
    pub at: DateTime<Utc>,
    /// Machine name of the failure (`timeout`, `crc`, `connect`…).
    pub kind: String,
    /// What happened, for people.
    pub message: String,
}

/// One meter's state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MeterStatus {
    /// Serial number, once read.
    pub serial: Option<u64>,
    /// Protocol found (kmp / mc66c).
    pub protocol: Option<String>,
    /// How the meter is read (`every 15m`).
    pub schedule: String,
    /// Last successful read.
    pub last_ok: Option<DateTime<Utc>>,
    /// Last failed read.
    pub last_error: Option<Failure>,
    /// Polls done.
    pub polls: u64,
    /// Polls that failed.
    pub failures: u64,
    /// Readings stored but flagged implausible.
    pub implausible: u64,
    /// When the next poll is due.
    pub next_poll: Option<DateTime<Utc>>,
    /// Failed polls in a row (0 after a good read).
    pub failure_streak: u32,
    /// While failing: the same verdict `kamstrup doctor` gives (kind, headline, cause, fix).
    pub verdict: Option<VerdictReport>,
    /// The meter's loggers and the last back-fill from them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logger: Option<LoggerStatus>,
}

/// What the daemon knows of a meter's loggers (back-fill).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LoggerStatus {
    /// `hour-logger`, `day-logger` (a 66C gap beyond its hour logger), `month-logger` (a 66C
    /// gap beyond its day logger: the month ends of `/#5`), `reading` (a 66C's
    /// loggers are being read: minutes of IR), `waiting` (a 66C's clock, behind this host's,
    /// has not passed the hour a gap needs: read when it has), `failed` (the last 66C logger
    /// read failed),
    /// `none` (the meter keeps no logger readable over KMP), `off` (`backfill = "0s"`).
    pub state: String,
    /// When the last back-fill read ended.
    pub last_backfill: Option<DateTime<Utc>>,
    /// Records stored by it.
    pub last_records: u64,
    /// Records stored by back-fills since start.
    pub records_total: u64,
    /// Meter clock minus host clock at the last back-fill, seconds.
    pub clock_offset_s: Option<i64>,
}

/// One sink's state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SinkStatus {
    /// Id of the last reading this sink has received.
    pub cursor: i64,
    /// Last successful delivery.
    pub last_ok: Option<DateTime<Utc>>,
    /// Last failed delivery.
    pub last_error: Option<Failure>,
    /// Readings delivered since start.
    pub delivered: u64,
    /// Failed delivery attempts since start.
    pub failures: u64,
    /// Failed attempts since the last success (0 when the sink is fine).
    pub consecutive_failures: u32,
    /// When the current run of failures began (`None` when the sink is fine).
    pub failing_since: Option<DateTime<Utc>>,
}

/// Everything the daemon knows about itself right now.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Status {
    /// By meter name.
    pub meters: BTreeMap<String, MeterStatus>,
    /// By sink name.
    pub sinks: BTreeMap<String, SinkStatus>,
}

/// Shared, cheap to clone.
#[derive(Clone, Default)]
pub struct StatusHandle(Arc<RwLock<Status>>);

impl StatusHandle {
    /// A copy of the current status.
    pub fn snapshot(&self) -> Status {
        match self.0.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Changes the status of one meter.
    pub fn meter(&self, name: &str, f: impl FnOnce(&mut MeterStatus)) {
        let mut guard = match self.0.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(guard.meters.entry(name.to_string()).or_default());
    }

    /// Changes the status of one sink.
    pub fn sink(&self, name: &str, f: impl FnOnce(&mut SinkStatus)) {
        let mut guard = match self.0.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(guard.sinks.entry(name.to_string()).or_default());
    }
}

//! A meter simulator that speaks the real protocol bytes over any link: in memory (`sim:`),
//! on a pseudo-terminal, or on a TCP port — with wire pacing, IR-head echo and injected faults.

pub mod faults;
pub mod kmp_model;
pub mod physics;

use std::time::{Duration, Instant};

use kamstrup_kmp::decoder::{Decoder, Event};
use kamstrup_kmp::Direction;
use kamstrup_optical::{hex, memory_pair, LineSettings, Link, LinkError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::{debug, info};

pub use faults::{FaultKind, FaultPlan, FaultSpecError};
pub use kmp_model::{KmpModel, MeterAction, IGNORE_AFTER_INVALID};

/// A model the simulator can play.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SimModel {
    /// A KMP meter.
    Kmp(KmpModel),
}

impl SimModel {
    /// Every model, for help and error texts.
    pub fn all() -> impl Iterator<Item = SimModel> {
        KmpModel::ALL.into_iter().map(SimModel::Kmp)
    }

    /// Command-line name (`multical-403`).
    pub fn name(&self) -> &'static str {
        match self {
            SimModel::Kmp(m) => m.name(),
        }
    }

    /// The line settings the model speaks.
    pub fn line_settings(&self) -> LineSettings {
        match self {
            SimModel::Kmp(_) => LineSettings::KMP,
        }
    }
}

impl std::str::FromStr for SimModel {
    type Err = UnknownModel;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        KmpModel::from_name(s)
            .map(SimModel::Kmp)
            .ok_or_else(|| UnknownModel(s.to_string()))
    }
}

/// A model name the simulator does not know.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown simulated meter model {0:?}; available: {list}", list = model_list())]
pub struct UnknownModel(pub String);

fn model_list() -> String {
    SimModel::all()
        .map(|m| m.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// How the simulated meter behaves on the wire.
#[derive(Clone, Debug)]
pub struct SimOptions {
    /// Send at the real baud rate (and account for the request's own air time).
    pub pace: bool,
    /// Time between the end of a request and the start of the reply.
    pub latency: Duration,
    /// Reflect every request back first, as some IR heads do.
    pub echo: bool,
    /// Faults to inject into replies.
    pub faults: FaultPlan,
    /// Simulated seconds per real second (1 = real time); makes counters move in demos.
    pub speed: f64,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            pace: false,
            latency: Duration::from_millis(50),
            echo: false,
            faults: FaultPlan::none(),
            speed: 1.0,
        }
    }
}

/// Serves one client on `link` until it goes away. For a KMP model: answers each valid request
/// as a meter would, stays silent for [`IGNORE_AFTER_INVALID`] after a bad frame.
pub async fn serve(
    link: &mut dyn Link,
    model: SimModel,
    options: &mut SimOptions,
) -> Result<(), LinkError> {
    let SimModel::Kmp(kmp) = model;
    let installation = kmp.installation();
    let started = Instant::now();
    let line = model.line_settings();
    let mut decoder = Decoder::new(Direction::ToMeter);
    let mut ignore_until: Option<Instant> = None;
    let mut frame_started: Option<Instant> = None;
    let mut buf = [0u8; 512];
    loop {
        let n = link.read(&mut buf).await?;
        if n == 0 {
            debug!(port = %link.describe(), "simulator: client closed the link");
            return Ok(());
        }
        let arrived = Instant::now();
        for &byte in buf.get(..n).unwrap_or_default() {
            if frame_started.is_none() {
                frame_started = Some(arrived);
            }
            let frame = match decoder.feed(byte) {
                None => continue,
                Some(Err(e)) => {
                    debug!(error = %e, "simulator: invalid frame; ignoring requests for a while");
                    ignore_until = Some(Instant::now() + IGNORE_AFTER_INVALID);
                    frame_started = None;
                    continue;
                }
                Some(Ok(Event::Frame(frame))) => frame,
                Some(Ok(_)) => continue,
            };
            let first_byte_at = frame_started.take().unwrap_or(arrived);
            if ignore_until.is_some_and(|t| Instant::now() < t) {
                debug!("simulator: still ignoring after an invalid frame");
                continue;
            }
            let wire = frame.emit();
            if options.echo {
                link.write_all(&wire).await?;
                link.flush().await?;
            }
            let elapsed = started.elapsed().as_secs_f64() * options.speed;
            let snap = installation.at(elapsed);
            let now = chrono::Local::now().naive_local();
            let mut reply = match kmp_model::respond(kmp, &frame, &snap, now) {
                MeterAction::Reply(bytes) => bytes,
                MeterAction::Silent(why) => {
                    debug!(why, "simulator: no reply");
                    continue;
                }
            };
            // The request's last byte reaches a real meter one air time after its first byte.
            let mut start_at = if options.pace {
                first_byte_at + line.air_time(wire.len())
            } else {
                Instant::now()
            };
            start_at += options.latency;
            match options.faults.next_reply() {
                Some(FaultKind::Drop) => {
                    info!("simulator fault: reply dropped");
                    continue;
                }
                Some(FaultKind::Delay) => {
                    info!(
                        delay_ms = options.faults.delay.as_millis() as u64,
                        "simulator fault: reply delayed"
                    );
                    start_at += options.faults.delay;
                }
                Some(kind) => {
                    options.faults.damage(kind, &mut reply);
                    info!(?kind, "simulator fault injected");
                }
                None => {}
            }
            debug!(reply = %hex(&reply), "simulator: replying");
            send_paced(
                link,
                &reply,
                start_at,
                options.pace.then(|| line.char_time()),
            )
            .await?;
        }
    }
}

/// Writes `bytes` so that byte i is complete at `start + (i+1) × char_time` (as on a real wire),
/// or all at once at `start` when not pacing. Deadlines are absolute, so sleeps do not drift.
async fn send_paced(
    link: &mut dyn Link,
    bytes: &[u8],
    start: Instant,
    char_time: Option<Duration>,
) -> Result<(), LinkError> {
    match char_time {
        None => {
            tokio::time::sleep_until(start.into()).await;
            link.write_all(bytes).await?;
        }
        Some(ct) => {
            for (i, byte) in bytes.iter().enumerate() {
                let due = start + ct * (i as u32 + 1);
                tokio::time::sleep_until(due.into()).await;
                link.write_all(std::slice::from_ref(byte)).await?;
                link.flush().await?;
            }
        }
    }
    link.flush().await?;
    Ok(())
}

/// An in-process simulated meter: returns the host end of an in-memory link whose other end is
/// served by the simulator on the current tokio runtime.
pub fn sim_link(model: SimModel, options: SimOptions) -> Box<dyn Link> {
    let (host, meter) = memory_pair(model.line_settings());
    tokio::spawn(async move {
        let mut meter = meter;
        let mut options = options;
        if let Err(e) = serve(&mut meter, model, &mut options).await {
            debug!(error = %e, "in-process simulator stopped");
        }
    });
    Box::new(host)
}

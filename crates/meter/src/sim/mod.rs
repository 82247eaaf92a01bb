//! A meter simulator that speaks the real protocol bytes over any link: in memory (`sim:`),
//! on a pseudo-terminal, or on a TCP port — with wire pacing, IR-head echo and injected faults.

pub mod faults;
pub mod history;
pub mod kmp_loggers;
pub mod kmp_model;
pub mod logger_module;
pub mod mc66c_model;
pub mod physics;

use std::time::{Duration, Instant};

use kamstrup_kmp::decoder::{Decoder, Event};
use kamstrup_kmp::Direction;
use kamstrup_mc66c::{escape, timing, DataSet, Request};
use kamstrup_optical::{hex, memory_pair, LineSettings, Link, LinkError};
use rand::Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::{debug, info};

use crate::reading::Protocol;

pub use faults::{misread, FaultKind, FaultPlan, FaultSpecError};
pub use kmp_model::{KmpModel, MeterAction, IGNORE_AFTER_INVALID};
pub use mc66c_model::Mc66cModel;

/// A model the simulator can play.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SimModel {
    /// A KMP meter.
    Kmp(KmpModel),
    /// A MULTICAL 66C with its program number.
    Mc66c(Mc66cModel),
}

impl SimModel {
    /// Every model, for help and error texts.
    pub fn all() -> impl Iterator<Item = SimModel> {
        KmpModel::ALL
            .into_iter()
            .map(SimModel::Kmp)
            .chain([SimModel::Mc66c(Mc66cModel::default())])
    }

    /// Command-line name (`multical-403`, `multical-66c`).
    pub fn name(&self) -> &'static str {
        match self {
            SimModel::Kmp(m) => m.name(),
            SimModel::Mc66c(_) => Mc66cModel::NAME,
        }
    }

    /// The line settings the model answers with (the 66C listens at 300 Bd 7E2).
    pub fn line_settings(&self) -> LineSettings {
        match self {
            SimModel::Kmp(_) => LineSettings::KMP,
            SimModel::Mc66c(_) => LineSettings::MC66C_REPLY,
        }
    }

    /// The protocol the model speaks.
    pub fn protocol(&self) -> Protocol {
        match self {
            SimModel::Kmp(_) => Protocol::Kmp,
            SimModel::Mc66c(_) => Protocol::Mc66c,
        }
    }
}

impl std::str::FromStr for SimModel {
    type Err = UnknownModel;

    /// A model name (`multical-403`); for the 66C optionally with its program number,
    /// `multical-66c:4-4-119`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let unknown = || UnknownModel(s.to_string());
        let t = s.trim();
        let (name, program) = match t.split_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (t, None),
        };
        if name.eq_ignore_ascii_case(Mc66cModel::NAME) {
            let program = match program {
                Some(p) => p.parse().map_err(|_| unknown())?,
                None => Mc66cModel::DEFAULT_PROGRAM,
            };
            return Ok(SimModel::Mc66c(Mc66cModel::new(program)));
        }
        if program.is_some() {
            return Err(unknown());
        }
        KmpModel::from_name(name)
            .map(SimModel::Kmp)
            .ok_or_else(unknown)
    }
}

/// A model name the simulator does not know.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown simulated meter model {0:?}; available: {list} (the 66C with a program number: multical-66c:4-4-119)", list = model_list())]
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
    /// Time between the end of a request and the start of the reply (the shortest, if
    /// `latency_jitter` is not zero).
    pub latency: Duration,
    /// A random extra latency, uniform in 0..=this, drawn for every reply (the 66C answers
    /// 0.3–2 s after a request).
    pub latency_jitter: Duration,
    /// Reflect every request back first, as some IR heads do.
    pub echo: bool,
    /// Faults to inject into replies.
    pub faults: FaultPlan,
    /// Simulated seconds per real second (1 = real time); makes counters move in demos. At 1 a
    /// KMP meter's state is a function of UTC time alone (every process agrees); faster, its
    /// time runs ahead of UTC from the moment the simulator starts.
    pub speed: f64,
    /// The link shows the client's line settings (pseudo-terminal, in-memory link), so a 66C
    /// reply sent while the client is not yet at 1200 Bd arrives garbled, as on a real wire.
    /// False on TCP, where the server cannot see the client's baud rate.
    pub baud_visible: bool,
    /// A MULTICAL 66C's clock minus the real one (its clock set wrong, or drifted): it answers
    /// as of that time, its `/#D` clock and its logger lines included. KMP models keep their
    /// own drift.
    pub mc66c_clock_offset: chrono::Duration,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            pace: false,
            latency: Duration::from_millis(50),
            latency_jitter: Duration::ZERO,
            echo: false,
            faults: FaultPlan::none(),
            speed: 1.0,
            baud_visible: true,
            mc66c_clock_offset: chrono::Duration::zero(),
        }
    }
}

impl SimOptions {
    /// The defaults for a model: KMP meters answer at once (50 ms), unpaced; the 66C answers
    /// 0.3–2 s after the request, paced at 300/1200 Bd as on the wire.
    pub fn for_model(model: SimModel) -> SimOptions {
        match model {
            SimModel::Kmp(_) => SimOptions::default(),
            SimModel::Mc66c(_) => SimOptions {
                pace: true,
                latency: timing::EARLIEST_REPLY,
                latency_jitter: Duration::from_millis(1700),
                ..SimOptions::default()
            },
        }
    }

    /// One latency draw.
    fn next_latency(&self) -> Duration {
        if self.latency_jitter.is_zero() {
            return self.latency;
        }
        let jitter_ms = u64::try_from(self.latency_jitter.as_millis()).unwrap_or(u64::MAX);
        self.latency + Duration::from_millis(rand::thread_rng().gen_range(0..=jitter_ms))
    }
}

/// Serves one client on `link` until it goes away. For a KMP model: answers each valid request
/// as a meter would, stays silent for [`IGNORE_AFTER_INVALID`] after a bad frame. For the 66C:
/// answers `/#n` and `/?!` (with or without CR / CR LF after them) after the latency, at
/// 1200 Bd (the readout at 300 Bd), garbling what it sends while the client's receiver is
/// still at the wrong baud rate (see [`SimOptions::baud_visible`]).
pub async fn serve(
    link: &mut dyn Link,
    model: SimModel,
    options: &mut SimOptions,
) -> Result<(), LinkError> {
    match model {
        SimModel::Kmp(kmp) => serve_kmp(link, model, kmp, options).await,
        SimModel::Mc66c(m) => serve_mc66c(link, m, options).await,
    }
}

async fn serve_kmp(
    link: &mut dyn Link,
    model: SimModel,
    kmp: KmpModel,
    options: &mut SimOptions,
) -> Result<(), LinkError> {
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
            // The meter's time: UTC now, run ahead by `speed` since the simulator started.
            let ahead = started.elapsed().as_secs_f64() * (options.speed - 1.0);
            let at = chrono::Utc::now()
                + chrono::Duration::milliseconds((ahead * 1000.0).clamp(0.0, 1e15) as i64);
            let mut reply = match kmp_model::respond(kmp, &frame, at) {
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
            start_at += options.next_latency();
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

/// Finds "/#n" and "/?!" requests in the bytes a 66C receives; everything else (a CR or CR LF
/// after a request, an EN 61107 ACK, KMP frames, noise) is ignored, as by the meter.
#[derive(Debug, Default)]
struct RequestScanner {
    /// Bytes of a request in progress (`/`, `/#`, `/?`) and when its first byte arrived.
    partial: Vec<u8>,
    started: Option<Instant>,
}

impl RequestScanner {
    /// Feeds one byte; returns a complete request, the arrival time of its first byte and its
    /// length on the wire.
    fn feed(&mut self, byte: u8, arrived: Instant) -> Option<(Request, Instant, usize)> {
        if byte == b'/' {
            self.partial.clear();
            self.partial.push(byte);
            self.started = Some(arrived);
            return None;
        }
        let started = self.started?;
        match (self.partial.as_slice(), byte) {
            ([b'/'], b'#' | b'?') => {
                self.partial.push(byte);
                None
            }
            ([b'/', b'#'], code) => {
                self.reset();
                DataSet::from_code(code).map(|d| (Request::Data(d), started, 3))
            }
            ([b'/', b'?'], b'!') => {
                self.reset();
                Some((Request::Readout, started, 3))
            }
            _ => {
                self.reset();
                None
            }
        }
    }

    fn reset(&mut self) {
        self.partial.clear();
        self.started = None;
    }
}

async fn serve_mc66c(
    link: &mut dyn Link,
    model: Mc66cModel,
    options: &mut SimOptions,
) -> Result<(), LinkError> {
    // The 66C's state is a function of absolute UTC time (see `Mc66cModel::respond_at`).
    let started_utc = chrono::Utc::now();
    let started = Instant::now();
    let mut scanner = RequestScanner::default();
    let mut buf = [0u8; 512];
    loop {
        let n = link.read(&mut buf).await?;
        if n == 0 {
            debug!(port = %link.describe(), "simulator: client closed the link");
            return Ok(());
        }
        let arrived = Instant::now();
        let mut requests = Vec::new();
        for &byte in buf.get(..n).unwrap_or_default() {
            if let Some(found) = scanner.feed(byte, arrived) {
                requests.push(found);
            }
        }
        for (request, first_byte_at, len) in requests {
            answer_mc66c(
                link,
                model,
                started_utc,
                started,
                options,
                request,
                first_byte_at,
                len,
            )
            .await?;
        }
    }
}

#[allow(clippy::too_many_arguments)] // one reply's worth of state, used once
async fn answer_mc66c(
    link: &mut dyn Link,
    model: Mc66cModel,
    started_utc: chrono::DateTime<chrono::Utc>,
    started: Instant,
    options: &mut SimOptions,
    request: Request,
    first_byte_at: Instant,
    len: usize,
) -> Result<(), LinkError> {
    if options.echo {
        link.write_all(request.bytes()).await?;
        link.flush().await?;
    }
    // At speed 1 this is the wall clock, so every process agrees on every register and
    // logger record; a faster simulation runs ahead from its start.
    let elapsed = started.elapsed().as_secs_f64() * options.speed;
    let at = started_utc
        + chrono::Duration::milliseconds((elapsed * 1000.0) as i64)
        + options.mc66c_clock_offset;
    let mut reply = match model.respond_at(request, at) {
        Ok(bytes) => bytes,
        Err(e) => {
            debug!(error = %e, "simulator: reply could not be formatted; staying silent");
            return Ok(());
        }
    };
    let request_line = LineSettings::MC66C_REQUEST;
    let reply_line = match request {
        Request::Data(_) => LineSettings::MC66C_REPLY,
        Request::Readout => LineSettings {
            baud: 300,
            ..LineSettings::MC66C_REPLY
        },
    };
    // Paced or not, the request took its air time at 300 Bd before the meter could start
    // its latency: a client's baud switch is timed from exactly that.
    let mut start_at = first_byte_at + request_line.air_time(len) + options.next_latency();
    match options.faults.next_reply() {
        Some(FaultKind::Drop) => {
            info!(%request, "simulator fault: reply dropped");
            return Ok(());
        }
        Some(FaultKind::Delay) => {
            info!(
                delay_ms = options.faults.delay.as_millis() as u64,
                "simulator fault: reply delayed"
            );
            start_at += options.faults.delay;
        }
        Some(kind) => {
            options.faults.damage_text(kind, &mut reply, reply_line);
            info!(?kind, %request, "simulator fault injected");
        }
        None => {}
    }
    let char_time = options.pace.then(|| reply_line.char_time());
    let check = options.baud_visible.then_some(reply_line.baud);
    if request == Request::Readout {
        // The identification line first, then (as the 66-CDE does, ACK or not) the data after
        // a short pause; an ACK from the client is simply ignored by the request scanner.
        let split = reply
            .windows(2)
            .position(|w| w == b"\r\n")
            .map_or(reply.len(), |i| i + 2);
        let (ident, data) = reply.split_at(split);
        debug!(reply = %escape(&reply), "simulator: readout");
        send_paced_checked(link, ident, start_at, char_time, check).await?;
        let data_at = Instant::now() + Duration::from_millis(200);
        send_paced_checked(link, data, data_at, char_time, check).await?;
    } else {
        debug!(%request, reply = %escape(&reply), "simulator: replying");
        send_paced_checked(link, &reply, start_at, char_time, check).await?;
    }
    Ok(())
}

/// Like [`send_paced`], but when `expected_baud` is given, checks before every byte whether the
/// client's receiver is at that baud rate (the link shows it: pty or memory). Bytes sent while
/// it is not are delivered as a receiver at the wrong rate would decode them (see
/// [`misread`]) — the late-baud-switch corruption seen in the field.
async fn send_paced_checked(
    link: &mut dyn Link,
    bytes: &[u8],
    start: Instant,
    char_time: Option<Duration>,
    expected_baud: Option<u32>,
) -> Result<(), LinkError> {
    let Some(expected) = expected_baud else {
        return send_paced(link, bytes, start, char_time).await;
    };
    let sent_line = LineSettings {
        baud: expected,
        ..LineSettings::MC66C_REPLY
    };
    tokio::time::sleep_until(start.into()).await;
    let client_baud = link.line_settings().baud;
    if client_baud == expected {
        debug!(
            client_baud,
            "simulator: reply starts; the client's receiver is at the meter's baud rate"
        );
    } else {
        info!(
            client_baud,
            meter_baud = expected,
            "simulator: reply starts while the client's receiver is still at {client_baud} Bd: it will see garbage"
        );
    }
    let mut garbled: Vec<u8> = Vec::new();
    let mut wrong_baud = 0u32;
    for (i, byte) in bytes.iter().enumerate() {
        if let Some(ct) = char_time {
            let due = start + ct * (i as u32 + 1);
            tokio::time::sleep_until(due.into()).await;
        }
        let client = link.line_settings().baud;
        if client != expected && client != 0 {
            // One character at the client's rate spans this many of ours.
            let group = (expected / client).max(1) as usize;
            garbled.push(*byte);
            wrong_baud = client;
            if garbled.len() >= group {
                let out = misread(&garbled, sent_line, client);
                garbled.clear();
                link.write_all(&out).await?;
                link.flush().await?;
            }
            continue;
        }
        if !garbled.is_empty() {
            let out = misread(&garbled, sent_line, wrong_baud);
            garbled.clear();
            link.write_all(&out).await?;
        }
        link.write_all(std::slice::from_ref(byte)).await?;
        if char_time.is_some() {
            link.flush().await?;
        }
    }
    if !garbled.is_empty() {
        let out = misread(&garbled, sent_line, wrong_baud);
        link.write_all(&out).await?;
    }
    link.flush().await?;
    Ok(())
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
///
/// The two ends share their line settings, so a 66C model sees the client's baud switch.
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

//! Reads a MULTICAL 66C over any IR link: request at 300 Bd 7E2, switch to 1200 Bd 7E1 as soon as
//! the request has left the wire, read to CR, retry ≥ 5 s apart; scaling from the program number.
//!
//! The 66C has no serial-number register: [`MeterIdentity::serial`] carries the customer number
//! from `/#2` (the utility's number for the installation, 0 on many meters). Its `/#1` fields are
//! mapped onto KMP catalogue ids and names in [`crate::mc66c_registers`]; the listings of every
//! data set for `decode` and `scan` are in [`crate::mc66c_present`] (both re-exported here).

use std::time::Duration;

use kamstrup_mc66c::{
    escape, timing, DataSet, Expect, ProgramNumber, Provenance, Readout, ReadoutStage, Reply,
    ReplyReader, Request, Resolution, Scaling, StandardData1, Terminator, Value, READOUT_ACK,
};
use kamstrup_optical::{
    DataBits, LineSettings, Link, LinkError, Parity, StopBits, TimeoutPhase, Timeouts, Transceiver,
};
use serde::Serialize;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::error::MeterError;
use crate::kmp_driver::DriverStats;
pub use crate::mc66c_present::{readout_fields, reply_fields, DataField};
pub use crate::mc66c_registers::{scaling_from_readout, standard_registers, STANDARD_REGISTERS};
use crate::reading::{MeterIdentity, Protocol, Reading};

/// How a [`Mc66cMeter`] talks to the meter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mc66cOptions {
    /// What follows a `/#n` request (the TD sends nothing; CR and CR LF are answered too).
    pub terminator: Terminator,
    /// Extra attempts after a timeout or a rejected reply (TD: repeat until data arrives; we stop
    /// after 3 to spare the battery).
    pub retries: u32,
    /// Minimum time from one request to its retry (TD p.33: at least 5 s). Tests shorten it.
    pub retry_interval: Duration,
    /// Deadline for a one-line reply, counted from the end of the request (0.3–2 s latency plus
    /// ~0.7 s on the wire).
    pub reply_deadline: Duration,
    /// Longest pause inside a one-line reply before it counts as truncated.
    pub inter_byte: Duration,
    /// Silence that ends a multi-line reply (`/#5`–`/#9`, `/#J`), whose line counts vary.
    pub multiline_idle: Duration,
    /// Added to the request's computed air time before the receiver switches to 1200 Bd, for
    /// USB adapters that report "drained" early.
    pub switch_margin: Duration,
    /// How long to wait for STX after the EN 61107 identification line before acknowledging.
    pub readout_ack_wait: Duration,
    /// The program number A-B-CCC if the user knows it; otherwise it is read from the meter.
    pub program: Option<ProgramNumber>,
    /// Read `/#2` once per connection even when the program is known, for the customer number
    /// (one more IR session). Without it a known program makes a read cost `/#1` only.
    pub identify: bool,
}

impl Default for Mc66cOptions {
    fn default() -> Self {
        Mc66cOptions {
            terminator: Terminator::None,
            retries: u32::from(timing::MAX_RETRIES),
            retry_interval: timing::MIN_RETRY_INTERVAL,
            reply_deadline: timing::REPLY_DEADLINE,
            // 60 character times at 1200 Bd; a meter sends a line in one go.
            inter_byte: Duration::from_millis(500),
            multiline_idle: timing::MULTILINE_IDLE,
            switch_margin: timing::BAUD_SWITCH_MARGIN,
            // About 18 characters at 300 Bd: a meter that sends on by itself has started by then.
            readout_ack_wait: Duration::from_millis(600),
            program: None,
            identify: true,
        }
    }
}

/// Where the scaling of a [`Mc66cMeter`] came from, in the order they are tried.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScalingSource {
    /// The program number was given (configuration or `--program`).
    Configured,
    /// The program number was read with `/#2`.
    Standard2,
    /// The program number was read with `/#D`.
    Programming,
    /// Energy and volume decimals from an EN 61107 readout; flow and power assumed.
    Readout,
    /// The program number this meter told with `/#2` on an earlier connection, remembered by
    /// the caller (`kamstrup read`'s cache) and handed in with [`Mc66cMeter::remember_program`].
    Remembered,
}

impl std::fmt::Display for ScalingSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ScalingSource::Configured => "given",
            ScalingSource::Standard2 => "read with /#2",
            ScalingSource::Programming => "read with /#D",
            ScalingSource::Readout => "from the EN 61107 readout",
            ScalingSource::Remembered => "remembered from an earlier /#2",
        })
    }
}

/// The decimals and units in use, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScalingInfo {
    /// Decimals and units.
    pub scaling: Scaling,
    /// The program number, when known.
    pub program: Option<ProgramNumber>,
    /// Where it came from.
    pub source: ScalingSource,
}

impl ScalingInfo {
    /// One line for people and for [`MeterIdentity::meter_type`]:
    /// `MULTICAL 66C, program 4-2-119 (read with /#2)`.
    pub fn describe(&self) -> String {
        let mut text = match self.program {
            Some(p) => format!("MULTICAL 66C, program {p} ({})", self.source),
            None => format!("MULTICAL 66C, scaling {}", self.source),
        };
        match self.scaling.provenance {
            Provenance::Fallback => {
                text.push_str(", flow-meter code not in the table: CCC-119 family assumed")
            }
            Provenance::TableUncertain => text.push_str(", table row uncertain"),
            Provenance::Table | Provenance::Custom => {}
        }
        text
    }
}

/// A parsed `/#n` reply with the bytes it was parsed from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataSetReply {
    /// The data set asked for.
    pub data_set: DataSet,
    /// The parsed reply.
    pub reply: Reply,
    /// The reply as received.
    pub raw: Vec<u8>,
}

/// One register of an EN 61107 readout, owned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReadoutRegister {
    /// Register address (`6.8`).
    pub id: String,
    /// The value as sent, decimal point included.
    pub value: String,
    /// The unit as sent (`MWh`, `m3`).
    pub unit: Option<String>,
}

/// A checked EN 61107 readout, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadoutReply {
    /// The identification line after `/` (`KAM MC`).
    pub ident: String,
    /// The registers in frame order.
    pub registers: Vec<ReadoutRegister>,
    /// Customer number (register `0.0`).
    pub customer_no: Option<String>,
    /// Energy (`6.8`) with its decimals and unit.
    pub energy: Option<Value>,
    /// Volume (`6.26`).
    pub volume: Option<Value>,
    /// Operating hours (`6.31`).
    pub hours: Option<Value>,
    /// The frame as received.
    pub raw: Vec<u8>,
}

impl ReadoutReply {
    /// Checks and copies a readout frame.
    pub fn parse(raw: &[u8]) -> Result<ReadoutReply, kamstrup_mc66c::Error> {
        let r = Readout::parse(raw)?;
        Ok(ReadoutReply {
            ident: r.ident.line.to_string(),
            registers: r
                .registers()
                .map(|reg| ReadoutRegister {
                    id: reg.id.to_string(),
                    value: reg.value.to_string(),
                    unit: reg.unit.map(str::to_string),
                })
                .collect(),
            customer_no: r.customer_no().map(str::to_string),
            energy: r.energy(),
            volume: r.volume(),
            hours: r.hours(),
            raw: raw.to_vec(),
        })
    }
}

/// The optical crate's line settings for a protocol-crate line description.
fn link_settings(line: kamstrup_mc66c::LineSettings) -> LineSettings {
    LineSettings {
        baud: line.baud,
        data_bits: if line.data_bits == 8 {
            DataBits::Eight
        } else {
            DataBits::Seven
        },
        parity: Parity::Even,
        stop_bits: if line.stop_bits == 2 {
            StopBits::Two
        } else {
            StopBits::One
        },
    }
}

/// Why one attempt failed.
enum Failure {
    /// Nothing (or only an echo) came back.
    NoReply(Duration),
    /// Something came back and was rejected.
    Rejected(kamstrup_mc66c::Error, Vec<u8>),
    /// The link failed: no point retrying.
    Link(LinkError),
}

impl From<LinkError> for Failure {
    fn from(e: LinkError) -> Self {
        Failure::Link(e)
    }
}

/// What a readout receive call stopped for.
enum ReadoutStep {
    Done(Result<kamstrup_mc66c::RawReply, kamstrup_mc66c::Error>),
    IdentComplete,
}

/// Overall limit for a multi-line reply: the hourly logger is 960 lines (~6–7 min at 1200 Bd).
const MULTILINE_OVERALL: Duration = Duration::from_secs(20 * 60);

/// A MULTICAL 66C behind an IR link.
pub struct Mc66cMeter {
    tx: Transceiver,
    port: String,
    options: Mc66cOptions,
    stats: DriverStats,
    last_request: Option<Instant>,
    program: Option<(ProgramNumber, ScalingSource)>,
    customer_no: Option<u64>,
    scaling: Option<ScalingInfo>,
}

impl std::fmt::Debug for Mc66cMeter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mc66cMeter")
            .field("port", &self.port)
            .field("options", &self.options)
            .field("scaling", &self.scaling)
            .finish()
    }
}

impl Mc66cMeter {
    /// Wraps an open link. `port` is how errors name it (the user's spelling). The link's line
    /// settings are changed by every request (300 Bd out, 1200 Bd in).
    pub fn new(link: Box<dyn Link>, port: impl Into<String>, options: Mc66cOptions) -> Self {
        Mc66cMeter {
            tx: Transceiver::new(link),
            port: port.into(),
            options,
            stats: DriverStats::default(),
            last_request: None,
            program: None,
            customer_no: None,
            scaling: None,
        }
    }

    /// Traffic counters so far.
    pub fn stats(&self) -> DriverStats {
        DriverStats {
            link: self.tx.stats(),
            ..self.stats
        }
    }

    /// The options in use.
    pub fn options(&self) -> &Mc66cOptions {
        &self.options
    }

    /// Changes the options (e.g. fewer retries for a scan).
    pub fn set_options(&mut self, options: Mc66cOptions) {
        self.options = options;
    }

    /// Gives the link back.
    pub fn into_link(self) -> Box<dyn Link> {
        self.tx.into_link()
    }

    /// The customer number, once `/#2` or `/#D` has been read.
    pub fn customer_no(&self) -> Option<u64> {
        self.customer_no
    }

    /// Uses a program number the meter told on an earlier connection, so that the next read
    /// needs no `/#2`: like a configured one, but reported as [`ScalingSource::Remembered`].
    /// A configured program ([`Mc66cOptions::program`]) still wins, and with
    /// [`Mc66cOptions::identify`] the meter is asked anyway (`/#2` tells the program too).
    pub fn remember_program(&mut self, program: ProgramNumber) {
        if self.program.is_none() && !self.options.identify {
            self.program = Some((program, ScalingSource::Remembered));
        }
    }

    /// The program number as this connection knows it, and from where (`None`: not yet).
    pub fn program_known(&self) -> Option<(ProgramNumber, ScalingSource)> {
        match (self.options.program, self.program) {
            (Some(p), _) => Some((p, ScalingSource::Configured)),
            (None, known) => known,
        }
    }

    /// The scaling, once resolved.
    pub fn scaling_info(&self) -> Option<ScalingInfo> {
        self.scaling
    }

    /// `/#1` as a [`Reading`]: the ten fields in wire order under KMP ids and names, exactly
    /// scaled. Then `/#2` once, only if the program number is not known (see
    /// [`Mc66cMeter::scaling`]) or [`Mc66cOptions::identify`] asks for the customer number and
    /// it is not known yet; `taken_at` is when the `/#1` reply arrived. With a known program
    /// and no `identify` this is exactly one IR session.
    pub async fn read_standard(&mut self) -> Result<Reading, MeterError> {
        let reply = self.read_data_set(DataSet::Standard1).await?;
        let taken_at = chrono::Utc::now();
        let Reply::Standard1(data) = reply.reply else {
            return Err(MeterError::Unexpected {
                port: self.port.clone(),
                what: "a reply of another data set".to_string(),
            });
        };
        self.reading_from(&data, taken_at).await
    }

    /// A [`Reading`] from `/#1` data already read (resolves the scaling if needed).
    pub async fn reading_from(
        &mut self,
        data: &StandardData1,
        taken_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<Reading, MeterError> {
        let info = self.scaling().await?;
        if self.options.identify && self.customer_no.is_none() {
            if let Err(e) = self.program().await {
                warn!(port = %self.port, error = %e, "could not read the customer number (/#2); reading without it");
            }
        }
        let registers =
            standard_registers(data, &info.scaling).map_err(|source| MeterError::Mc66cReply {
                port: self.port.clone(),
                request: "/#1".to_string(),
                attempts: 1,
                source: Box::new(source),
                raw: String::new(),
            })?;
        Ok(Reading {
            source: Default::default(),
            meter: MeterIdentity {
                protocol: Protocol::Mc66c,
                port: self.port.clone(),
                // Known whenever /#2 or /#D was read on this connection (for the program or
                // for identity); never worth an IR session of its own unless `identify` asks.
                serial: self.customer_no,
                meter_type: Some(info.describe()),
            },
            taken_at,
            registers,
            missing: Vec::new(),
        })
    }

    /// Reads one data set and parses it with its strict parser. `/#2` and `/#D` also teach the
    /// driver the program number and customer number.
    pub async fn read_data_set(&mut self, data_set: DataSet) -> Result<DataSetReply, MeterError> {
        let request = Request::Data(data_set);
        let (reply, raw) = self
            .exchange(request, self.options.retries, |bytes| {
                Reply::parse(data_set, bytes)
            })
            .await?;
        match &reply {
            Reply::Standard2(d) => {
                self.customer_no = Some(d.customer_no());
                self.program = Some((d.program(), ScalingSource::Standard2));
            }
            Reply::Programming(d) => {
                self.customer_no = Some(d.customer_no());
                if self.program.is_none() {
                    self.program = Some((d.program(), ScalingSource::Programming));
                }
            }
            _ => {}
        }
        Ok(DataSetReply {
            data_set,
            reply,
            raw,
        })
    }

    /// The EN 61107 readout: `/?!` CR LF at 300 Bd, reply at 300 Bd; ACK `000` if no STX follows
    /// the identification line. Energy and volume come with their decimal point and unit.
    pub async fn readout(&mut self) -> Result<ReadoutReply, MeterError> {
        let (reply, _) = self
            .exchange(Request::Readout, self.options.retries, ReadoutReply::parse)
            .await?;
        if let Some(c) = reply.customer_no.as_deref().and_then(|c| c.parse().ok()) {
            self.customer_no.get_or_insert(c);
        }
        Ok(reply)
    }

    /// The program number A-B-CCC, read once with `/#2` (or `/#D` if `/#2` fails) and cached.
    pub async fn program(&mut self) -> Result<ProgramNumber, MeterError> {
        if let Some((p, _)) = self.program {
            return Ok(p);
        }
        match self.read_data_set(DataSet::Standard2).await {
            Ok(_) => {}
            Err(e) if e.is_retryable() => {
                warn!(port = %self.port, error = %e, "/#2 failed; asking /#D for the program number");
                let saved = self.options.retries;
                self.options.retries = 0;
                let second = self.read_data_set(DataSet::Programming).await;
                self.options.retries = saved;
                if second.is_err() {
                    return Err(e);
                }
            }
            Err(e) => return Err(e),
        }
        self.program
            .map(|(p, _)| p)
            .ok_or_else(|| MeterError::Unexpected {
                port: self.port.clone(),
                what: "a reply without a program number".to_string(),
            })
    }

    /// The scaling, resolved once: the configured program number; else the one read from the
    /// meter (`/#2`, `/#D`) and looked up in the CCC table; else an EN 61107 readout. A program
    /// whose flow-meter code is not in the table gets the CCC-119 family with a loud warning.
    pub async fn scaling(&mut self) -> Result<ScalingInfo, MeterError> {
        if let Some(info) = self.scaling {
            return Ok(info);
        }
        let info = if let Some(p) = self.options.program {
            self.resolve(p, ScalingSource::Configured)?
        } else {
            match self.program().await {
                Ok(p) => {
                    let source = self.program.map_or(ScalingSource::Standard2, |(_, s)| s);
                    self.resolve(p, source)?
                }
                Err(e) if e.is_retryable() => {
                    warn!(port = %self.port, error = %e, "no program number from the meter; trying the EN 61107 readout for the decimals");
                    let saved = self.options.retries;
                    self.options.retries = 0;
                    let readout = self.readout().await;
                    self.options.retries = saved;
                    let readout = readout.map_err(|e2| MeterError::ScalingUnknown {
                        port: self.port.clone(),
                        why: e2.to_string(),
                    })?;
                    let scaling = scaling_from_readout(&readout).ok_or_else(|| {
                        MeterError::ScalingUnknown {
                            port: self.port.clone(),
                            why: "the readout has no energy or volume with a known unit"
                                .to_string(),
                        }
                    })?;
                    warn!(port = %self.port, "energy and volume decimals taken from the EN 61107 readout; flow and power decimals ASSUMED to be those of the CCC-119 family — give --program A-B-CCC to be sure");
                    ScalingInfo {
                        scaling,
                        program: None,
                        source: ScalingSource::Readout,
                    }
                }
                Err(e) => return Err(e),
            }
        };
        self.scaling = Some(info);
        Ok(info)
    }

    fn resolve(
        &self,
        program: ProgramNumber,
        source: ScalingSource,
    ) -> Result<ScalingInfo, MeterError> {
        let scaling = match Scaling::resolve(&program) {
            Ok(Resolution::Known(s)) => {
                if s.provenance == Provenance::TableUncertain {
                    warn!(port = %self.port, %program, "the CCC table row for this flow-meter code is marked uncertain; check the values against the meter's display");
                }
                s
            }
            Ok(Resolution::UnknownCcc { ccc, energy_unit }) => {
                warn!(
                    port = %self.port,
                    %program,
                    "!!! flow-meter code CCC {ccc:03} is NOT in the built-in table: ASSUMING the CCC-119 family (energy MWh 3 / GJ 2 / kWh 0 decimals, volume 2, flow l/h 0, power kW 1). Values may be off by powers of ten: compare them with the meter's display !!!"
                );
                Scaling::ccc119_fallback(energy_unit)
            }
            Err(source_error) => {
                return Err(MeterError::Mc66cProgram {
                    port: self.port.clone(),
                    program: program.to_string(),
                    origin: source.to_string(),
                    source: Box::new(source_error),
                })
            }
        };
        Ok(ScalingInfo {
            scaling,
            program: Some(program),
            source,
        })
    }

    /// Sends `request` and parses the reply, retrying up to `retries` times, each retry at least
    /// [`Mc66cOptions::retry_interval`] after the previous request.
    async fn exchange<T>(
        &mut self,
        request: Request,
        retries: u32,
        parse: impl Fn(&[u8]) -> Result<T, kamstrup_mc66c::Error>,
    ) -> Result<(T, Vec<u8>), MeterError> {
        let mut attempt: u32 = 0;
        loop {
            if attempt > 0 {
                if let Some(last) = self.last_request {
                    tokio::time::sleep_until(last + self.options.retry_interval).await;
                }
            }
            attempt += 1;
            let failure = match self.attempt(request).await {
                Ok(raw) => match parse(&raw) {
                    Ok(value) => {
                        if attempt > 1 {
                            info!(port = %self.port, %request, attempt, "66C request succeeded after retrying");
                        }
                        return Ok((value, raw));
                    }
                    Err(e) => Failure::Rejected(e, raw),
                },
                Err(f) => f,
            };
            let error = match failure {
                Failure::Link(e) => return Err(e.into()),
                Failure::NoReply(waited) => MeterError::Mc66cNoReply {
                    port: self.port.clone(),
                    request: request.to_string(),
                    attempts: attempt,
                    waited,
                },
                Failure::Rejected(source, raw) => MeterError::Mc66cReply {
                    port: self.port.clone(),
                    request: request.to_string(),
                    attempts: attempt,
                    source: Box::new(source),
                    raw: escape(&raw),
                },
            };
            if attempt > retries {
                return Err(error);
            }
            self.stats.retries += 1;
            warn!(
                port = %self.port,
                %request,
                attempt,
                error = %error,
                "66C request failed; retrying at least {} ms after the previous request",
                self.options.retry_interval.as_millis()
            );
        }
    }

    /// Sends `bytes` with `request_line`, then switches the receiver to `reply_line` once the
    /// request has left the wire and drops whatever arrived meanwhile (an echo at 300 Bd).
    ///
    /// This is the one place the baud switch happens. On a serial port [`Transceiver::send`]
    /// returns when the UART has shifted the last bit out (`tcdrain`), which is about the air
    /// time; TCP, pseudo-terminal and in-memory links cannot drain, so the switch waits until the
    /// computed air time (+ margin) has passed since the send started — whichever is later.
    /// Never a fixed sleep: the reply can start 0.3 s after the request.
    async fn send_and_switch(
        &mut self,
        bytes: &[u8],
        request_line: LineSettings,
        reply_line: LineSettings,
        drop_input: bool,
    ) -> Result<Instant, LinkError> {
        if self.tx.link().line_settings() != request_line {
            self.tx.link_mut().set_line_settings(request_line)?;
        }
        let started = Instant::now();
        self.tx.send(bytes).await?;
        let on_wire_until = started + request_line.air_time(bytes.len());
        tokio::time::sleep_until(on_wire_until + self.options.switch_margin).await;
        if request_line != reply_line {
            self.tx.link_mut().set_line_settings(reply_line)?;
        }
        if drop_input {
            let dropped = self.tx.clear_input().await?;
            if dropped > 0 {
                debug!(port = %self.port, bytes = dropped, "dropped input received while sending (echo)");
            }
        }
        Ok(on_wire_until)
    }

    /// One request and its reply bytes (not parsed).
    async fn attempt(&mut self, request: Request) -> Result<Vec<u8>, Failure> {
        let request_line = link_settings(request.request_line());
        let reply_line = link_settings(request.reply_line());
        if self.tx.link().line_settings() != request_line {
            self.tx.link_mut().set_line_settings(request_line)?;
        }
        let stale = self.tx.clear_input().await?;
        if stale > 0 {
            debug!(port = %self.port, bytes = stale, "discarded stale input before the request");
        }
        let terminator = match request {
            Request::Data(_) => self.options.terminator,
            Request::Readout => request.usual_terminator(),
        };
        let bytes = request.bytes_with(terminator);
        self.last_request = Some(Instant::now());
        self.stats.requests += 1;
        let request_end = self
            .send_and_switch(bytes, request_line, reply_line, true)
            .await?;
        match request.expect() {
            Expect::Readout => self.receive_readout(request_end, request_line).await,
            Expect::UntilIdle => self.receive_lines(request, request_end).await,
            Expect::Line | Expect::Lines(_) => self.receive_line(request, request_end).await,
        }
    }

    fn remaining(&self, request_end: Instant, deadline: Duration) -> Duration {
        (request_end + deadline).saturating_duration_since(Instant::now())
    }

    async fn receive_line(
        &mut self,
        request: Request,
        request_end: Instant,
    ) -> Result<Vec<u8>, Failure> {
        let left = self.remaining(request_end, self.options.reply_deadline);
        let timeouts = Timeouts::new(left, self.options.inter_byte, left);
        let mut reader = ReplyReader::for_request(&request);
        let outcome = self.tx.receive(timeouts, |b| reader.feed(b)).await;
        match outcome {
            Ok(Ok(raw)) => Ok(raw.bytes),
            Ok(Err(e)) => Err(Failure::Rejected(e, reader.received().to_vec())),
            Err(LinkError::Timeout { .. }) => {
                let received = reader.received().to_vec();
                if received.is_empty() {
                    Err(Failure::NoReply(self.options.reply_deadline))
                } else {
                    let e = reader
                        .finish()
                        .err()
                        .unwrap_or(kamstrup_mc66c::Error::Empty);
                    Err(Failure::Rejected(e, received))
                }
            }
            Err(e) => Err(Failure::Link(e)),
        }
    }

    async fn receive_lines(
        &mut self,
        request: Request,
        request_end: Instant,
    ) -> Result<Vec<u8>, Failure> {
        let first = self.remaining(request_end, self.options.reply_deadline);
        let timeouts = Timeouts::new(first, self.options.multiline_idle, MULTILINE_OVERALL);
        let mut reader = ReplyReader::for_request(&request);
        let outcome = self.tx.receive(timeouts, |b| reader.feed(b)).await;
        match outcome {
            // Only the length cap ends a multi-line receive by itself.
            Ok(Ok(raw)) => Ok(raw.bytes),
            Ok(Err(e)) => Err(Failure::Rejected(e, Vec::new())),
            Err(LinkError::Timeout { phase, .. }) => {
                let received = reader.received().to_vec();
                if received.is_empty() && phase == TimeoutPhase::FirstByte {
                    return Err(Failure::NoReply(self.options.reply_deadline));
                }
                reader
                    .finish()
                    .map(|raw| raw.bytes)
                    .map_err(|e| Failure::Rejected(e, received))
            }
            Err(e) => Err(Failure::Link(e)),
        }
    }

    async fn receive_readout(
        &mut self,
        request_end: Instant,
        request_line: LineSettings,
    ) -> Result<Vec<u8>, Failure> {
        let deadline = timing::READOUT_DEADLINE;
        let reply_line = link_settings(Request::Readout.reply_line());
        let mut reader = ReplyReader::for_request(&Request::Readout);
        let mut acked = false;
        loop {
            let left = self.remaining(request_end, deadline);
            let awaiting_stx = !acked && reader.readout_stage() == ReadoutStage::AwaitingStx;
            let first = if awaiting_stx {
                self.options.readout_ack_wait.min(left)
            } else if reader.received().is_empty() {
                // The identification line starts as late as a "/#n" reply does.
                self.remaining(request_end, self.options.reply_deadline)
            } else {
                left
            };
            // At 300 Bd a character takes 33–37 ms; a meter silent for a second has stopped.
            let timeouts = Timeouts::new(first, Duration::from_secs(1), left);
            let outcome = self
                .tx
                .receive(timeouts, |b| match reader.feed(b) {
                    Some(done) => Some(ReadoutStep::Done(done)),
                    None if !acked && reader.readout_stage() == ReadoutStage::AwaitingStx => {
                        Some(ReadoutStep::IdentComplete)
                    }
                    None => None,
                })
                .await;
            match outcome {
                Ok(ReadoutStep::Done(Ok(raw))) => return Ok(raw.bytes),
                Ok(ReadoutStep::Done(Err(e))) => {
                    return Err(Failure::Rejected(e, reader.received().to_vec()))
                }
                // Next round waits `readout_ack_wait` for the STX.
                Ok(ReadoutStep::IdentComplete) => {}
                Err(LinkError::Timeout {
                    phase: TimeoutPhase::FirstByte,
                    ..
                }) if awaiting_stx => {
                    debug!(port = %self.port, "no STX after the identification line: sending ACK 000");
                    // No input is dropped here: the data may follow the ACK at once, and the
                    // readout parser skips an echoed ACK line.
                    self.send_and_switch(READOUT_ACK, request_line, reply_line, false)
                        .await?;
                    acked = true;
                }
                Err(LinkError::Timeout { .. }) => {
                    let received = reader.received().to_vec();
                    if received.is_empty() {
                        return Err(Failure::NoReply(self.options.reply_deadline));
                    }
                    let e = reader
                        .finish()
                        .err()
                        .unwrap_or(kamstrup_mc66c::Error::Empty);
                    return Err(Failure::Rejected(e, received));
                }
                Err(e) => return Err(Failure::Link(e)),
            }
        }
    }
}

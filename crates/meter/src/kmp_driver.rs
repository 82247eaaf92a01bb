//! Reads a KMP meter over any IR link: batched GetRegister requests, echo skipping, one retry.
//! Turns wire failures into errors that say what happened and what the user can do about it.

use std::time::Duration;

use kamstrup_decimal::Decimal;
use kamstrup_kmp::decoder::{Decoder, Event};
use kamstrup_kmp::registers;
use kamstrup_kmp::{
    Direction, Frame, MeterType, RegisterId, RegisterRecord, Request, Response,
    DESTINATION_HEAT_METER, MAX_REGISTERS_PER_REQUEST,
};
use kamstrup_optical::{Link, LinkError, LinkStats, TimeoutPhase, Timeouts, Transceiver};
use tracing::{debug, warn};

pub use crate::error::MeterError;
use crate::reading::{MeterIdentity, Protocol, Reading, RegisterValue, Unit, ValueUnit};

/// KMP register id of T1 − T2, which we derive when it was not read.
const DELTA_T_ID: u16 = 89;
const T1_ID: u16 = 86;
const T2_ID: u16 = 87;

/// How a [`KmpMeter`] talks to the meter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KmpOptions {
    /// Destination address (0x3F = heat meter).
    pub destination: u8,
    /// Timeouts for one reply.
    pub timeouts: Timeouts,
    /// Extra attempts after a timeout or a corrupt reply.
    pub retries: u32,
}

impl Default for KmpOptions {
    fn default() -> Self {
        KmpOptions {
            destination: DESTINATION_HEAT_METER,
            // Meters answer within 20–150 ms; USB heads add buffering. 2 s is generous without
            // making a dead link slow to report. 250 ms between bytes is ~27 byte times at 1200 Bd.
            timeouts: Timeouts {
                first_byte: Duration::from_secs(2),
                inter_byte: Duration::from_millis(250),
                overall: Duration::from_secs(6),
            },
            retries: 1,
        }
    }
}

/// Counters of one driver's traffic, for benchmarks and diagnostics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DriverStats {
    /// Requests sent, retries included.
    pub requests: u64,
    /// Retries after a timeout or corrupt reply.
    pub retries: u64,
    /// Echoes of our own request seen (the IR head reflects what it sends).
    pub echoes: u64,
    /// Bytes on the wire, both directions, from the link.
    pub link: LinkStats,
}

/// What one `receive` call ended with.
enum Outcome {
    Echo(Frame),
    Reply(Frame),
    Ack,
    Bad(kamstrup_kmp::Error),
}

/// A KMP meter behind an IR link.
pub struct KmpMeter {
    tx: Transceiver,
    port: String,
    options: KmpOptions,
    stats: DriverStats,
}

impl KmpMeter {
    /// Wraps an open link. `port` is how errors name it (the user's spelling).
    pub fn new(link: Box<dyn Link>, port: impl Into<String>, options: KmpOptions) -> Self {
        KmpMeter {
            tx: Transceiver::new(link),
            port: port.into(),
            options,
            stats: DriverStats::default(),
        }
    }

    /// Traffic counters so far.
    pub fn stats(&self) -> DriverStats {
        DriverStats {
            link: self.tx.stats(),
            ..self.stats
        }
    }

    /// How the driver talks to the meter.
    pub fn options(&self) -> KmpOptions {
        self.options
    }

    /// Changes timeouts, retries or the destination for the following requests.
    pub fn set_options(&mut self, options: KmpOptions) {
        self.options = options;
    }

    /// The port as the user named it.
    pub fn port(&self) -> &str {
        &self.port
    }

    /// Gives the link back (e.g. to close it or hand it to another driver).
    pub fn into_link(self) -> Box<dyn Link> {
        self.tx.into_link()
    }

    /// GetType: meter type code and software revision.
    pub async fn get_type(&mut self) -> Result<MeterType, MeterError> {
        match self.transact(&Request::GetType).await? {
            Response::Type(t) => Ok(t),
            other => Err(self.unexpected(&other)),
        }
    }

    /// GetSerialNo: the meter's serial number.
    pub async fn get_serial(&mut self) -> Result<u32, MeterError> {
        match self.transact(&Request::GetSerialNo).await? {
            Response::SerialNo(s) => Ok(s),
            other => Err(self.unexpected(&other)),
        }
    }

    /// Reads registers in as few requests as the protocol allows (≤ 8 ids each). Registers the
    /// meter does not know are simply absent from the result.
    pub async fn get_registers(&mut self, ids: &[u16]) -> Result<Vec<RegisterRecord>, MeterError> {
        let mut wanted: Vec<u16> = Vec::with_capacity(ids.len());
        for id in ids {
            if !wanted.contains(id) {
                wanted.push(*id);
            }
        }
        let mut records = Vec::with_capacity(wanted.len());
        for chunk in wanted.chunks(MAX_REGISTERS_PER_REQUEST) {
            let request = Request::GetRegister(chunk.iter().map(|&id| RegisterId(id)).collect());
            match self.transact(&request).await? {
                Response::Registers(got) => {
                    for record in got {
                        // Parse by id, never by position; ignore ids we did not ask for.
                        if chunk.contains(&record.id.0) {
                            records.retain(|r: &RegisterRecord| r.id != record.id);
                            records.push(record);
                        } else {
                            warn!(port = %self.port, id = record.id.0, "meter sent a register we did not ask for; ignored");
                        }
                    }
                }
                other => return Err(self.unexpected(&other)),
            }
        }
        Ok(records)
    }

    /// One complete reading: optionally the serial number, then the registers, in the order
    /// asked, with ΔT derived exactly from T1 and T2 when it was not read itself.
    pub async fn read(&mut self, ids: &[u16], identify: bool) -> Result<Reading, MeterError> {
        let serial = if identify {
            Some(u64::from(self.get_serial().await?))
        } else {
            None
        };
        let records = self.get_registers(ids).await?;
        let taken_at = chrono::Utc::now();
        let mut registers = Vec::with_capacity(records.len() + 1);
        let mut missing = Vec::new();
        for id in ids {
            if registers.iter().any(|r: &RegisterValue| r.id == *id) {
                continue;
            }
            match records.iter().find(|r| r.id.0 == *id) {
                Some(record) => registers.push(register_value(record)),
                None => missing.push(*id),
            }
        }
        if let Some(dt) = derive_delta_t(&registers) {
            registers.push(dt);
        }
        Ok(Reading {
            source: Default::default(),
            meter: MeterIdentity {
                protocol: Protocol::Kmp,
                port: self.port.clone(),
                serial,
                meter_type: None,
            },
            taken_at,
            registers,
            missing,
        })
    }

    /// Sends one request and returns the meter's answer, retrying once on timeout or corruption.
    pub async fn transact(&mut self, request: &Request) -> Result<Response, MeterError> {
        let wire =
            request
                .encode(self.options.destination)
                .map_err(|source| MeterError::Protocol {
                    port: self.port.clone(),
                    source,
                })?;
        let mut attempt = 0;
        loop {
            match self.exchange(request, &wire).await {
                Ok(response) => return Ok(response),
                Err(e) if e.is_retryable() && attempt < self.options.retries => {
                    attempt += 1;
                    self.stats.retries += 1;
                    warn!(port = %self.port, error = %e, "KMP request failed; retrying once");
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn exchange(&mut self, request: &Request, wire: &[u8]) -> Result<Response, MeterError> {
        let stale = self.tx.clear_input().await?;
        if stale > 0 {
            debug!(port = %self.port, bytes = stale, "discarded stale input before request");
        }
        self.tx.send(wire).await?;
        self.stats.requests += 1;
        let mut decoder = Decoder::new(Direction::FromMeter);
        let mut echoed = false;
        // An echo ends one receive call; the meter's reply then gets a fresh first-byte timeout,
        // because the meter only starts answering once the request is fully on the wire.
        for _ in 0..4 {
            let outcome = self
                .tx
                .receive(self.options.timeouts, |byte| match decoder.feed(byte)? {
                    Ok(Event::Frame(frame)) => Some(Outcome::Reply(frame)),
                    Ok(Event::Echo(frame)) => Some(Outcome::Echo(frame)),
                    Ok(Event::Ack) => Some(Outcome::Ack),
                    Err(e) => Some(Outcome::Bad(e)),
                })
                .await;
            match outcome {
                Ok(Outcome::Echo(frame)) => {
                    self.stats.echoes += 1;
                    echoed = true;
                    if frame.emit() != wire {
                        debug!(port = %self.port, "a request frame that is not ours came back; ignored");
                    }
                }
                Ok(Outcome::Reply(frame)) => return self.check_reply(request, &frame),
                Ok(Outcome::Ack) => return Ok(Response::Ack),
                Ok(Outcome::Bad(source)) => {
                    return Err(MeterError::Protocol {
                        port: self.port.clone(),
                        source,
                    })
                }
                Err(LinkError::Timeout {
                    phase,
                    received,
                    waited,
                }) => {
                    let partial = received.len();
                    return Err(match phase {
                        _ if partial == 0 && echoed => MeterError::EchoOnly {
                            port: self.port.clone(),
                        },
                        TimeoutPhase::FirstByte => MeterError::NoReply {
                            port: self.port.clone(),
                            waited,
                        },
                        _ if partial == 0 => MeterError::NoReply {
                            port: self.port.clone(),
                            waited,
                        },
                        _ => MeterError::Truncated {
                            port: self.port.clone(),
                            received: partial,
                        },
                    });
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(MeterError::EchoOnly {
            port: self.port.clone(),
        })
    }

    fn check_reply(&self, request: &Request, frame: &Frame) -> Result<Response, MeterError> {
        if frame.destination != self.options.destination {
            return Err(MeterError::Unexpected {
                port: self.port.clone(),
                what: format!("a reply from address 0x{:02X}", frame.destination),
            });
        }
        let response = Response::from_frame(frame).map_err(|source| MeterError::Protocol {
            port: self.port.clone(),
            source,
        })?;
        let fits = matches!(
            (request, &response),
            (Request::GetType, Response::Type(_))
                | (Request::GetSerialNo, Response::SerialNo(_))
                | (Request::GetRegister(_), Response::Registers(_))
                | (Request::GetEventStatus, Response::EventStatus(_))
                | (Request::Logger(_), Response::Logger(_))
                | (Request::SetClock(_), Response::Ack)
        ) || matches!((request, &response), (Request::Log(q), Response::Log(r)) if q.selector.cid() == r.cid);
        if fits {
            Ok(response)
        } else {
            Err(self.unexpected(&response))
        }
    }

    /// The error for a valid reply that does not answer what was asked.
    pub(crate) fn unexpected_reply(&self, response: &Response) -> MeterError {
        self.unexpected(response)
    }

    fn unexpected(&self, response: &Response) -> MeterError {
        let what = match response {
            Response::Type(_) => "a GetType reply",
            Response::SerialNo(_) => "a GetSerialNo reply",
            Response::Registers(_) => "a GetRegister reply",
            Response::Ack => "an ACK",
            Response::EventStatus(_) => "an event-status reply",
            Response::Logger(_) => "a logger (B8) reply",
            Response::Log(_) => "a log (A0–A3) reply",
        };
        MeterError::Unexpected {
            port: self.port.clone(),
            what: what.to_string(),
        }
    }
}

/// Names a register record from the catalogue; unknown ids get a generic name.
pub fn register_value(record: &RegisterRecord) -> RegisterValue {
    let info = registers::by_id(record.id.0);
    RegisterValue {
        id: record.id.0,
        name: info
            .map(|i| i.name.to_string())
            .unwrap_or_else(|| format!("register_{}", record.id.0)),
        short: info
            .map(|i| i.short.to_string())
            .unwrap_or_else(|| record.id.0.to_string()),
        value: record.value,
        unit: crate::units::kmp_unit(record.unit),
        unit_code: Some(record.unit.0),
        text: record.date_time_text(),
        derived: false,
    }
}

/// ΔT = T1 − T2, exact, when both temperatures were read in °C and ΔT itself was not.
pub fn derive_delta_t(values: &[RegisterValue]) -> Option<RegisterValue> {
    if values.iter().any(|v| v.id == DELTA_T_ID) {
        return None;
    }
    let t1 = values.iter().find(|v| v.id == T1_ID)?;
    let t2 = values.iter().find(|v| v.id == T2_ID)?;
    let celsius = ValueUnit::Physical(Unit::Celsius);
    if t1.unit != celsius || t2.unit != celsius {
        return None;
    }
    let value: Decimal = t1.value.checked_sub(&t2.value)?;
    let info = registers::by_id(DELTA_T_ID);
    Some(RegisterValue {
        id: DELTA_T_ID,
        name: info.map_or("t1_t2", |i| i.name).to_string(),
        short: info.map_or("T1-T2", |i| i.short).to_string(),
        value,
        unit: ValueUnit::Physical(Unit::Kelvin),
        unit_code: None,
        text: None,
        derived: true,
    })
}

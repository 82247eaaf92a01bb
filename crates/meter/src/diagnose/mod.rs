//! Diagnoses a link step by step (port, exclusivity, echo, bytes, frames, CRC, protocol, baud)
//! and gives a typed [`Verdict`] with cause and fix; shared by `kamstrup doctor`, setup and the daemon.
//!
//! The probes send only read requests (KMP GetSerialNo, the 66C's `/#1`), never a write.

pub mod ports;
mod verdict;

use std::time::Duration;

use crate::PortSpec;
use kamstrup_kmp::decoder::{Decoder, Event};
use kamstrup_kmp::{Direction, Request, Response, DESTINATION_HEAT_METER};
use kamstrup_mc66c::DataSet;
use kamstrup_optical::{LineSettings, Link, LinkError, Timeouts, Transceiver};
use serde::Serialize;

pub use verdict::{Verdict, VerdictReport};

use crate::mc66c_driver::{Mc66cMeter, Mc66cOptions};
use crate::{open_port, OpenError};

/// Which protocol to probe first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProbeProtocol {
    /// KMP, then the 66C if KMP gets no frame; either answering is fine.
    Auto,
    /// KMP is expected; the 66C is tried only to explain a silence.
    Kmp,
    /// The 66C is expected; KMP is tried only to explain a silence.
    Mc66c,
}

/// How thoroughly to probe.
#[derive(Clone, Copy, Debug)]
pub struct DiagnoseOptions {
    /// Protocol expected.
    pub protocol: ProbeProtocol,
    /// KMP baud rate to try first.
    pub baud: u32,
    /// KMP requests to send (the success rate needs more than one).
    pub attempts: u32,
    /// Timeouts of one KMP reply.
    pub timeouts: Timeouts,
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// Options of the 66C probe (retries are forced to 0: one request).
    pub mc66c: Mc66cOptions,
}

impl Default for DiagnoseOptions {
    fn default() -> Self {
        DiagnoseOptions {
            protocol: ProbeProtocol::Auto,
            baud: LineSettings::KMP.baud,
            attempts: 3,
            timeouts: Timeouts::new(
                Duration::from_secs(2),
                Duration::from_millis(250),
                Duration::from_secs(6),
            ),
            connect_timeout: Duration::from_secs(5),
            mc66c: Mc66cOptions::default(),
        }
    }
}

/// The answer to one question of the diagnosis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Answer {
    /// Yes (good).
    Yes,
    /// No (a problem, or a hint).
    No,
    /// Not asked, because an earlier step decided it.
    Skipped,
    /// Neither good nor bad (e.g. no echo: most heads do not echo).
    Neutral,
}

/// One question and what was found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Step {
    /// The question, e.g. "does the port open?".
    pub question: &'static str,
    /// The answer.
    pub answer: Answer,
    /// What was seen.
    pub detail: String,
}

/// What answered, when something did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Found {
    /// `kmp` or `mc66c`.
    pub protocol: crate::Protocol,
    /// Line settings that worked (`1200 8N2`; the 66C: `300 7E2 out, 1200 7E1 back`).
    pub line: String,
    /// KMP serial number (the 66C's customer number is not read by the probe).
    pub serial: Option<u64>,
}

/// The whole diagnosis of one port.
#[derive(Clone, Debug, Serialize)]
pub struct Diagnosis {
    /// The port as given.
    pub port: String,
    /// Every question in order.
    pub steps: Vec<Step>,
    /// The conclusion.
    #[serde(serialize_with = "serialize_verdict")]
    pub verdict: Verdict,
    /// What answered.
    pub found: Option<Found>,
    /// Advice that holds whatever the verdict (e.g. the stable by-id name).
    pub notes: Vec<String>,
}

fn serialize_verdict<S: serde::Serializer>(v: &Verdict, s: S) -> Result<S::Ok, S::Error> {
    v.report().serialize(s)
}

/// One KMP GetSerialNo request and what came back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KmpOutcome {
    /// A valid reply.
    Answered {
        /// The serial number.
        serial: u32,
        /// Whether our request was echoed first.
        echo: bool,
    },
    /// Nothing at all.
    Silence,
    /// Only our own request came back.
    EchoOnly,
    /// Bytes without a frame start.
    Garbage {
        /// Bytes received that were not the echo.
        bytes: usize,
        /// Whether our request was echoed first.
        echo: bool,
    },
    /// A frame started and stopped before its end.
    Truncated {
        /// Bytes received that were not the echo.
        bytes: usize,
        /// Whether our request was echoed first.
        echo: bool,
    },
    /// A whole frame with a wrong CRC.
    Crc {
        /// Whether our request was echoed first.
        echo: bool,
    },
    /// A frame that is malformed or not an answer to GetSerialNo.
    Malformed {
        /// What is wrong.
        what: String,
        /// Whether our request was echoed first.
        echo: bool,
    },
}

impl KmpOutcome {
    /// True for [`KmpOutcome::Answered`].
    pub fn is_answered(&self) -> bool {
        matches!(self, KmpOutcome::Answered { .. })
    }

    fn echo(&self) -> bool {
        match self {
            KmpOutcome::Answered { echo, .. }
            | KmpOutcome::Garbage { echo, .. }
            | KmpOutcome::Truncated { echo, .. }
            | KmpOutcome::Crc { echo }
            | KmpOutcome::Malformed { echo, .. } => *echo,
            KmpOutcome::EchoOnly => true,
            KmpOutcome::Silence => false,
        }
    }

    fn meter_bytes(&self) -> bool {
        !matches!(self, KmpOutcome::Silence | KmpOutcome::EchoOnly)
    }

    fn whole_frame(&self) -> bool {
        matches!(
            self,
            KmpOutcome::Answered { .. } | KmpOutcome::Crc { .. } | KmpOutcome::Malformed { .. }
        )
    }

    /// The verdict if every attempt ended like this one.
    pub fn verdict(&self) -> Verdict {
        match self {
            KmpOutcome::Answered { serial, .. } => Verdict::Ok {
                found: format!("KMP meter, serial {serial}"),
            },
            KmpOutcome::Silence => Verdict::NoReply,
            KmpOutcome::EchoOnly => Verdict::EchoOnly,
            KmpOutcome::Garbage { .. } => Verdict::Garbage,
            KmpOutcome::Truncated { .. } => Verdict::Truncated,
            KmpOutcome::Crc { .. } => Verdict::CrcErrors,
            KmpOutcome::Malformed { .. } => Verdict::Corrupt,
        }
    }

    /// Short text for a live display: `ok 71234567`, `silence`, `echo only`, `crc`…
    pub fn short(&self) -> String {
        match self {
            KmpOutcome::Answered { serial, .. } => format!("ok (serial {serial})"),
            KmpOutcome::Silence => "no reply".to_string(),
            KmpOutcome::EchoOnly => "echo only".to_string(),
            KmpOutcome::Garbage { bytes, .. } => format!("{bytes} bytes, no frame"),
            KmpOutcome::Truncated { bytes, .. } => format!("stopped after {bytes} bytes"),
            KmpOutcome::Crc { .. } => "CRC error".to_string(),
            KmpOutcome::Malformed { what, .. } => format!("malformed: {what}"),
        }
    }

    /// Priority when attempts disagree and none answered: the most telling first.
    fn rank(&self) -> u8 {
        match self {
            KmpOutcome::Answered { .. } => 0,
            KmpOutcome::Crc { .. } => 1,
            KmpOutcome::Truncated { .. } => 2,
            KmpOutcome::Malformed { .. } => 3,
            KmpOutcome::Garbage { .. } => 4,
            KmpOutcome::EchoOnly => 5,
            KmpOutcome::Silence => 6,
        }
    }
}

/// Sends one KMP GetSerialNo and classifies what comes back. Only link failures (port gone)
/// are errors; every kind of silence or damage is an outcome.
pub async fn kmp_attempt(
    tx: &mut Transceiver,
    timeouts: Timeouts,
) -> Result<KmpOutcome, LinkError> {
    let wire = Request::GetSerialNo
        .encode(DESTINATION_HEAT_METER)
        .map_err(|e| LinkError::Unsupported(e.to_string()))?;
    tx.clear_input().await?;
    tx.send(&wire).await?;
    let mut decoder = Decoder::new(Direction::FromMeter);
    let mut echo = false;
    let mut meter_bytes = 0usize;
    // An echo ends one receive call; the reply then gets a fresh first-byte timeout.
    for _ in 0..4 {
        let mut consumed = 0usize;
        let got = tx
            .receive(timeouts, |b| {
                consumed += 1;
                match decoder.feed(b)? {
                    Ok(Event::Frame(f)) => Some(Ok(Some(f))),
                    Ok(Event::Echo(_)) => Some(Ok(None)),
                    Ok(Event::Ack) => Some(Err("a bare ACK byte".to_string())),
                    Err(kamstrup_kmp::Error::Crc { .. }) => Some(Err("crc".to_string())),
                    Err(kamstrup_kmp::Error::Truncated { .. }) => {
                        Some(Err("truncated".to_string()))
                    }
                    Err(e) => Some(Err(e.to_string())),
                }
            })
            .await;
        match got {
            Ok(Ok(None)) => {
                echo = true;
                continue;
            }
            Ok(Ok(Some(frame))) => {
                return Ok(match Response::from_frame(&frame) {
                    Ok(Response::SerialNo(serial)) => KmpOutcome::Answered { serial, echo },
                    Ok(_) => KmpOutcome::Malformed {
                        what: "an answer to another request".to_string(),
                        echo,
                    },
                    Err(e) => KmpOutcome::Malformed {
                        what: e.to_string(),
                        echo,
                    },
                });
            }
            Ok(Err(what)) => {
                meter_bytes += consumed;
                return Ok(match what.as_str() {
                    "crc" => KmpOutcome::Crc { echo },
                    "truncated" => KmpOutcome::Truncated {
                        bytes: meter_bytes,
                        echo,
                    },
                    _ => KmpOutcome::Malformed { what, echo },
                });
            }
            Err(LinkError::Timeout { received, .. }) => {
                meter_bytes += received.len();
                return Ok(if meter_bytes == 0 {
                    if echo {
                        KmpOutcome::EchoOnly
                    } else {
                        KmpOutcome::Silence
                    }
                } else if decoder.in_frame() {
                    KmpOutcome::Truncated {
                        bytes: meter_bytes,
                        echo,
                    }
                } else {
                    KmpOutcome::Garbage {
                        bytes: meter_bytes,
                        echo,
                    }
                });
            }
            Err(e) => return Err(e),
        }
    }
    Ok(KmpOutcome::EchoOnly)
}

/// One `/#1` request to a MULTICAL 66C; `Ok` when a valid reply came back, else the verdict.
pub async fn mc66c_attempt(meter: &mut Mc66cMeter) -> Result<(), Verdict> {
    match meter.read_data_set(DataSet::Standard1).await {
        Ok(_) => Ok(()),
        Err(e) => Err(Verdict::from_error(&e)),
    }
}

/// The 66C's line as people read it.
pub const MC66C_LINE: &str = "300 7E2 out, 1200 7E1 back";

struct Probe {
    steps: Vec<Step>,
    notes: Vec<String>,
}

impl Probe {
    fn step(&mut self, question: &'static str, answer: Answer, detail: impl Into<String>) {
        self.steps.push(Step {
            question,
            answer,
            detail: detail.into(),
        });
    }
}

const Q_OPENS: &str = "does the port open?";
const Q_ALONE: &str = "is it ours alone?";
const Q_ECHO: &str = "does our request come back (head present)?";
const Q_BYTES: &str = "any byte from the meter?";
const Q_FRAME: &str = "a whole frame?";
const Q_CRC: &str = "CRC correct?";
const Q_PROTOCOL: &str = "which protocol and baud rate?";

/// Runs the whole diagnosis of `spec` (`port` is how the user spelled it).
pub async fn diagnose(spec: &PortSpec, port: &str, options: DiagnoseOptions) -> Diagnosis {
    let mut probe = Probe {
        steps: Vec::new(),
        notes: Vec::new(),
    };
    if let PortSpec::Serial { path } = spec {
        if let Some(stable) = ports::stable_name_for(path) {
            probe.notes.push(format!(
                "use the stable name {stable}: {path} can become another ttyUSB number after a replug"
            ));
        }
    }
    let (verdict, found) = run(&mut probe, spec, port, options).await;
    Diagnosis {
        port: port.to_string(),
        steps: probe.steps,
        verdict,
        found,
        notes: probe.notes,
    }
}

async fn open(
    spec: &PortSpec,
    line: LineSettings,
    options: &DiagnoseOptions,
) -> Result<Box<dyn Link>, Verdict> {
    open_port(spec, line, options.connect_timeout)
        .await
        .map_err(|e| match e {
            OpenError::Link(e) => Verdict::from_link_error(&e),
            OpenError::UnknownModel(e) => Verdict::CannotOpen { why: e.to_string() },
        })
}

async fn run(
    probe: &mut Probe,
    spec: &PortSpec,
    port: &str,
    options: DiagnoseOptions,
) -> (Verdict, Option<Found>) {
    let kmp_line = LineSettings {
        baud: options.baud,
        ..LineSettings::KMP
    };
    let first_line = match options.protocol {
        ProbeProtocol::Mc66c => LineSettings::MC66C_REQUEST,
        _ => kmp_line,
    };
    let link = match open(spec, first_line, &options).await {
        Ok(link) => {
            probe.step(
                Q_OPENS,
                Answer::Yes,
                format!("opened {port} at {first_line}"),
            );
            link
        }
        Err(v) => {
            probe.step(Q_OPENS, Answer::No, v.headline());
            for q in [Q_ALONE, Q_ECHO, Q_BYTES, Q_FRAME, Q_CRC, Q_PROTOCOL] {
                probe.step(q, Answer::Skipped, "");
            }
            return (v, None);
        }
    };
    let holders = match spec {
        PortSpec::Serial { path } => {
            let holders = ports::holders(path);
            if holders.is_empty() {
                probe.step(
                    Q_ALONE,
                    Answer::Yes,
                    "opened exclusively; no other program has it open",
                );
            } else {
                probe.step(
                    Q_ALONE,
                    Answer::No,
                    format!("also open in: {}", holders.join(", ")),
                );
            }
            holders
        }
        PortSpec::Tcp { .. } => {
            probe.step(
                Q_ALONE,
                Answer::Neutral,
                "a TCP bridge: the bridge decides (ser2net serves one client at a time)",
            );
            Vec::new()
        }
        PortSpec::Sim { .. } => {
            probe.step(Q_ALONE, Answer::Yes, "an in-process simulator");
            Vec::new()
        }
    };
    let (verdict, found) = match options.protocol {
        ProbeProtocol::Mc66c => probe_mc66c_first(probe, spec, port, link, &options).await,
        ProbeProtocol::Auto | ProbeProtocol::Kmp => {
            probe_kmp_first(probe, spec, port, link, kmp_line, &options).await
        }
    };
    if !verdict.is_ok() && !holders.is_empty() && found.is_none() {
        return (Verdict::Shared { holders }, found);
    }
    (verdict, found)
}

/// Answers the echo/bytes/frame/CRC questions from the KMP attempts.
fn kmp_steps(probe: &mut Probe, outcomes: &[KmpOutcome], line: LineSettings) {
    let n = outcomes.len();
    let count = |f: &dyn Fn(&KmpOutcome) -> bool| outcomes.iter().filter(|o| f(o)).count();
    let echoes = count(&|o| o.echo());
    if echoes > 0 {
        probe.step(
            Q_ECHO,
            Answer::Yes,
            format!("{echoes} of {n}: the head reflects our request, so it is powered and its LED works"),
        );
    } else {
        probe.step(
            Q_ECHO,
            Answer::Neutral,
            "no echo — normal for most heads; says nothing by itself",
        );
    }
    let with_bytes = count(&|o| o.meter_bytes());
    probe.step(
        Q_BYTES,
        if with_bytes > 0 {
            Answer::Yes
        } else {
            Answer::No
        },
        format!("{with_bytes} of {n} KMP requests at {line} got bytes back"),
    );
    if with_bytes == 0 {
        probe.step(Q_FRAME, Answer::Skipped, "");
        probe.step(Q_CRC, Answer::Skipped, "");
        return;
    }
    let frames = count(&|o| o.whole_frame());
    let garbage = count(&|o| matches!(o, KmpOutcome::Garbage { .. }));
    let truncated = count(&|o| matches!(o, KmpOutcome::Truncated { .. }));
    let mut detail = format!("{frames} of {n}");
    if truncated > 0 {
        detail.push_str(&format!("; {truncated} stopped halfway"));
    }
    if garbage > 0 {
        detail.push_str(&format!("; {garbage} had bytes but no frame start"));
    }
    probe.step(
        Q_FRAME,
        if frames > 0 { Answer::Yes } else { Answer::No },
        detail,
    );
    if frames == 0 {
        probe.step(Q_CRC, Answer::Skipped, "");
        return;
    }
    let crc = count(&|o| matches!(o, KmpOutcome::Crc { .. }));
    let malformed = count(&|o| matches!(o, KmpOutcome::Malformed { .. }));
    let mut detail = format!("{crc} of {frames} frames had a wrong CRC");
    if malformed > 0 {
        detail.push_str(&format!("; {malformed} were malformed"));
    }
    probe.step(
        Q_CRC,
        if crc == 0 && malformed == 0 {
            Answer::Yes
        } else {
            Answer::No
        },
        detail,
    );
}

async fn kmp_round(
    tx: &mut Transceiver,
    attempts: u32,
    timeouts: Timeouts,
) -> Result<Vec<KmpOutcome>, LinkError> {
    let mut outcomes = Vec::new();
    for _ in 0..attempts.max(1) {
        outcomes.push(kmp_attempt(tx, timeouts).await?);
    }
    Ok(outcomes)
}

/// The verdict of a round with no answer: the most frequent outcome, ties to the most telling.
fn dominant(outcomes: &[KmpOutcome]) -> Verdict {
    let mut best: Option<(&KmpOutcome, usize)> = None;
    for o in outcomes {
        let n = outcomes
            .iter()
            .filter(|x| std::mem::discriminant(*x) == std::mem::discriminant(o))
            .count();
        let better = match best {
            None => true,
            Some((b, bn)) => n > bn || (n == bn && o.rank() < b.rank()),
        };
        if better {
            best = Some((o, n));
        }
    }
    best.map_or(Verdict::NoReply, |(o, _)| o.verdict())
}

async fn probe_kmp_first(
    probe: &mut Probe,
    spec: &PortSpec,
    port: &str,
    link: Box<dyn Link>,
    line: LineSettings,
    options: &DiagnoseOptions,
) -> (Verdict, Option<Found>) {
    let mut tx = Transceiver::new(link);
    let outcomes = match kmp_round(&mut tx, options.attempts, options.timeouts).await {
        Ok(o) => o,
        Err(e) => return link_broke(probe, &e),
    };
    kmp_steps(probe, &outcomes, line);
    let answered = outcomes.iter().filter(|o| o.is_answered()).count() as u32;
    let serial = outcomes.iter().find_map(|o| match o {
        KmpOutcome::Answered { serial, .. } => Some(u64::from(*serial)),
        _ => None,
    });
    if answered > 0 {
        probe.step(Q_PROTOCOL, Answer::Yes, format!("KMP at {line}"));
        let found = Some(Found {
            protocol: crate::Protocol::Kmp,
            line: line.to_string(),
            serial,
        });
        let attempts = outcomes.len() as u32;
        let verdict = if answered == attempts {
            Verdict::Ok {
                found: format!(
                    "KMP meter, serial {}, at {line}",
                    serial.unwrap_or_default()
                ),
            }
        } else {
            Verdict::Unstable { answered, attempts }
        };
        return (verdict, found);
    }
    let kmp_verdict = dominant(&outcomes);
    let mut link = tx.into_link();
    // Garbage at our baud rate: a KMP meter configured for another rate would answer there.
    if kmp_verdict == Verdict::Garbage && matches!(spec, PortSpec::Serial { .. }) {
        for baud in [2400, 9600].into_iter().filter(|b| *b != line.baud) {
            let other = LineSettings { baud, ..line };
            if link.set_line_settings(other).is_err() {
                continue;
            }
            let mut tx = Transceiver::new(link);
            let outcome = kmp_attempt(&mut tx, options.timeouts).await;
            link = tx.into_link();
            if let Ok(KmpOutcome::Answered { serial, .. }) = outcome {
                probe.step(
                    Q_PROTOCOL,
                    Answer::No,
                    format!("KMP at {other}, not {line}"),
                );
                let _ = link.set_line_settings(line);
                return (
                    Verdict::OtherBaud { baud },
                    Some(Found {
                        protocol: crate::Protocol::Kmp,
                        line: other.to_string(),
                        serial: Some(u64::from(serial)),
                    }),
                );
            }
        }
        let _ = link.set_line_settings(line);
    }
    // No KMP frame at all: a MULTICAL 66C stays silent to KMP; ask it its own way.
    if matches!(
        kmp_verdict,
        Verdict::NoReply | Verdict::EchoOnly | Verdict::Garbage
    ) {
        let mut meter = Mc66cMeter::new(
            link,
            port.to_string(),
            Mc66cOptions {
                retries: 0,
                ..options.mc66c
            },
        );
        match mc66c_attempt(&mut meter).await {
            Ok(()) => {
                probe.step(
                    Q_PROTOCOL,
                    if options.protocol == ProbeProtocol::Auto {
                        Answer::Yes
                    } else {
                        Answer::No
                    },
                    format!("not KMP: a MULTICAL 66C answered /#1 ({MC66C_LINE})"),
                );
                let found = Some(Found {
                    protocol: crate::Protocol::Mc66c,
                    line: MC66C_LINE.to_string(),
                    serial: None,
                });
                let verdict = if options.protocol == ProbeProtocol::Auto {
                    Verdict::Ok {
                        found: format!(
                            "a MULTICAL 66C (\"/#1\" protocol, {MC66C_LINE}) — use --protocol mc66c"
                        ),
                    }
                } else {
                    Verdict::UseMc66c
                };
                return (verdict, found);
            }
            Err(Verdict::Mc66cNoReply) => {
                probe.step(
                    Q_PROTOCOL,
                    Answer::No,
                    format!("neither KMP at {line} nor the 66C's /#1 ({MC66C_LINE}) answered"),
                );
            }
            Err(v) if is_mc66c_damage(&v) => {
                // The 66C answered, damaged: that says more than the KMP silence.
                probe.step(
                    Q_PROTOCOL,
                    Answer::No,
                    format!("a MULTICAL 66C answered /#1, damaged: {}", v.headline()),
                );
                if options.protocol == ProbeProtocol::Kmp {
                    return (Verdict::UseMc66c, None);
                }
                return (v, None);
            }
            Err(v) => {
                probe.step(
                    Q_PROTOCOL,
                    Answer::No,
                    format!("no KMP frame; the 66C's /#1: {}", v.headline()),
                );
            }
        }
    } else {
        probe.step(
            Q_PROTOCOL,
            Answer::No,
            format!("KMP frames at {line}, but none intact"),
        );
    }
    (kmp_verdict, None)
}

fn is_mc66c_damage(v: &Verdict) -> bool {
    matches!(
        v,
        Verdict::Mc66cLateBaud | Verdict::Mc66cTruncated | Verdict::Mc66cCorrupt
    )
}

async fn probe_mc66c_first(
    probe: &mut Probe,
    spec: &PortSpec,
    port: &str,
    link: Box<dyn Link>,
    options: &DiagnoseOptions,
) -> (Verdict, Option<Found>) {
    let _ = spec;
    probe.step(
        Q_ECHO,
        Answer::Neutral,
        "not checked for the 66C (its echo arrives at 300 Bd while we listen at 1200 Bd)",
    );
    let mut meter = Mc66cMeter::new(
        link,
        port.to_string(),
        Mc66cOptions {
            retries: 0,
            ..options.mc66c
        },
    );
    let result = mc66c_attempt(&mut meter).await;
    let stats = meter.stats();
    let got_bytes = stats.link.bytes_received > 0;
    match result {
        Ok(()) => {
            probe.step(Q_BYTES, Answer::Yes, "the 66C answered /#1");
            probe.step(Q_FRAME, Answer::Yes, "a complete, valid /#1 line");
            probe.step(Q_CRC, Answer::Skipped, "the 66C's protocol has no checksum");
            probe.step(
                Q_PROTOCOL,
                Answer::Yes,
                format!("MULTICAL 66C at {MC66C_LINE}"),
            );
            (
                Verdict::Ok {
                    found: format!("a MULTICAL 66C at {MC66C_LINE}"),
                },
                Some(Found {
                    protocol: crate::Protocol::Mc66c,
                    line: MC66C_LINE.to_string(),
                    serial: None,
                }),
            )
        }
        Err(Verdict::Mc66cNoReply) => {
            probe.step(Q_BYTES, Answer::No, "nothing came back to /#1");
            probe.step(Q_FRAME, Answer::Skipped, "");
            probe.step(Q_CRC, Answer::Skipped, "");
            // Explain the silence: is it a KMP meter?
            let mut link = meter.into_link();
            let kmp_line = LineSettings {
                baud: options.baud,
                ..LineSettings::KMP
            };
            if link.set_line_settings(kmp_line).is_ok() {
                let mut tx = Transceiver::new(link);
                if let Ok(KmpOutcome::Answered { serial, .. }) =
                    kmp_attempt(&mut tx, options.timeouts).await
                {
                    probe.step(
                        Q_PROTOCOL,
                        Answer::No,
                        format!("not a 66C: a KMP meter (serial {serial}) answered at {kmp_line}"),
                    );
                    return (
                        Verdict::Other {
                            message: format!(
                                "a KMP meter answered (serial {serial}), not a 66C: use --protocol kmp"
                            ),
                        },
                        Some(Found {
                            protocol: crate::Protocol::Kmp,
                            line: kmp_line.to_string(),
                            serial: Some(u64::from(serial)),
                        }),
                    );
                }
            }
            probe.step(
                Q_PROTOCOL,
                Answer::No,
                "neither the 66C's /#1 nor KMP answered",
            );
            (Verdict::Mc66cNoReply, None)
        }
        Err(v) => {
            probe.step(
                Q_BYTES,
                if got_bytes { Answer::Yes } else { Answer::No },
                format!("{} bytes came back to /#1", stats.link.bytes_received),
            );
            probe.step(Q_FRAME, Answer::No, v.headline());
            probe.step(Q_CRC, Answer::Skipped, "the 66C's protocol has no checksum");
            probe.step(
                Q_PROTOCOL,
                Answer::No,
                format!("a MULTICAL 66C answered at {MC66C_LINE}, damaged"),
            );
            (v, None)
        }
    }
}

fn link_broke(probe: &mut Probe, e: &LinkError) -> (Verdict, Option<Found>) {
    let v = Verdict::from_link_error(e);
    probe.step(Q_BYTES, Answer::No, format!("the link failed: {e}"));
    (v, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kamstrup_optical::memory_pair;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A fake meter on the far end of an in-memory link that answers every request with
    /// `reply` (after echoing it when `echo`): for byte patterns the simulator has no fault for.
    fn fake_meter(reply: Vec<u8>, echo: bool) -> Box<dyn Link> {
        let (host, mut meter) = memory_pair(LineSettings::KMP);
        tokio::spawn(async move {
            let mut buf = [0u8; 64];
            let mut request = Vec::new();
            while let Ok(n) = meter.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                request.extend_from_slice(&buf[..n]);
                if request.last() != Some(&0x0D) {
                    continue;
                }
                if echo && meter.write_all(&request).await.is_err() {
                    break;
                }
                request.clear();
                if meter.write_all(&reply).await.is_err() {
                    break;
                }
            }
        });
        Box::new(host)
    }

    fn quick() -> Timeouts {
        Timeouts::new(
            Duration::from_millis(200),
            Duration::from_millis(50),
            Duration::from_secs(1),
        )
    }

    #[tokio::test]
    async fn outcomes_from_byte_patterns() {
        let good = vec![0x40, 0x3F, 0x02, 0x01, 0x23, 0x45, 0x67, 0xE9, 0x56, 0x0D];
        let mut crc = good.clone();
        crc[4] ^= 0x01;
        let cases: Vec<(Vec<u8>, bool, KmpOutcome)> = vec![
            (
                good.clone(),
                false,
                KmpOutcome::Answered {
                    serial: 0x0123_4567,
                    echo: false,
                },
            ),
            (
                good.clone(),
                true,
                KmpOutcome::Answered {
                    serial: 0x0123_4567,
                    echo: true,
                },
            ),
            (Vec::new(), false, KmpOutcome::Silence),
            (Vec::new(), true, KmpOutcome::EchoOnly),
            (crc, false, KmpOutcome::Crc { echo: false }),
            (
                good[..5].to_vec(),
                false,
                KmpOutcome::Truncated {
                    bytes: 5,
                    echo: false,
                },
            ),
            (
                vec![0xF0, 0x0F, 0xFF, 0x00],
                true,
                KmpOutcome::Garbage {
                    bytes: 4,
                    echo: true,
                },
            ),
        ];
        for (reply, echo, want) in cases {
            let mut tx = Transceiver::new(fake_meter(reply.clone(), echo));
            let got = kmp_attempt(&mut tx, quick()).await.unwrap();
            assert_eq!(got, want, "reply {reply:02X?} echo {echo}");
        }
    }

    /// A KMP meter whose optical port runs at `baud`: a request at that rate gets `reply`; at
    /// another rate the receiver sees misframed bits, sent back as bytes without a frame start.
    /// The shared line settings of the in-memory pair stand for the wire's rate.
    fn meter_at(baud: u32, reply: Vec<u8>) -> Box<dyn Link> {
        let (host, mut meter) = memory_pair(LineSettings::KMP);
        tokio::spawn(async move {
            let mut buf = [0u8; 64];
            while let Ok(n) = meter.read(&mut buf).await {
                if n == 0 || buf[..n].last() != Some(&0x0D) {
                    continue;
                }
                let answer = if meter.line_settings().baud == baud {
                    reply.clone()
                } else {
                    vec![0xF0, 0x0F, 0xFF, 0x00]
                };
                if meter.write_all(&answer).await.is_err() {
                    break;
                }
            }
        });
        Box::new(host)
    }

    #[tokio::test]
    async fn a_meter_at_another_baud_rate_is_found_there() {
        let good = vec![0x40, 0x3F, 0x02, 0x01, 0x23, 0x45, 0x67, 0xE9, 0x56, 0x0D];
        let options = DiagnoseOptions {
            timeouts: quick(),
            ..DiagnoseOptions::default()
        };
        let mut probe = Probe {
            steps: Vec::new(),
            notes: Vec::new(),
        };
        let spec = PortSpec::Serial {
            path: "/dev/ttyUSB0".to_string(),
        };
        let (verdict, found) = probe_kmp_first(
            &mut probe,
            &spec,
            "/dev/ttyUSB0",
            meter_at(2400, good),
            LineSettings::KMP,
            &options,
        )
        .await;
        assert_eq!(verdict, Verdict::OtherBaud { baud: 2400 });
        assert_eq!(verdict.fix(), vec!["use --baud 2400 (config: baud = 2400)"]);
        let found = found.unwrap();
        assert_eq!(found.serial, Some(0x0123_4567));
        assert!(found.line.starts_with("2400"), "{}", found.line);
        let step = probe
            .steps
            .iter()
            .find(|s| s.question == Q_PROTOCOL)
            .unwrap();
        assert!(step.detail.contains("2400"), "{}", step.detail);
    }

    #[test]
    fn dominant_prefers_the_most_frequent_then_the_most_telling() {
        use KmpOutcome as O;
        assert_eq!(
            dominant(&[O::Silence, O::Silence, O::Crc { echo: false }]),
            Verdict::NoReply
        );
        assert_eq!(
            dominant(&[O::Silence, O::Crc { echo: false }]),
            Verdict::CrcErrors
        );
        assert_eq!(dominant(&[]), Verdict::NoReply);
    }
}

//! The verdicts on a link, in plain words: what was seen, its likely cause and what to do.
//! One table shared by `kamstrup doctor`, the daemon's logs and the dashboard.

use serde::Serialize;

use kamstrup_optical::LinkError;

use crate::error::MeterError;

/// What is wrong with a link to a meter (or that nothing is).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// The meter answered.
    Ok {
        /// What answered, e.g. "KMP meter, serial 71234567, at 1200 8N2".
        found: String,
    },
    /// Only some attempts were answered: the head sits at the edge of the eye.
    Unstable {
        /// Attempts answered.
        answered: u32,
        /// Attempts made.
        attempts: u32,
    },
    /// A MULTICAL 66C answered, but KMP was asked for.
    UseMc66c,
    /// A KMP meter answered at another baud rate than asked.
    OtherBaud {
        /// The baud rate that worked.
        baud: u32,
    },
    /// The serial device does not exist.
    PortNotFound {
        /// Candidate heads found on this machine (by-id names first).
        candidates: Vec<String>,
    },
    /// No permission to open the device.
    NoPermission,
    /// Another program holds the device.
    Busy {
        /// Programs seen holding it (`name (pid N)`), when they could be found.
        holders: Vec<String>,
    },
    /// The device opened, but another program has it open too and may take the replies.
    Shared {
        /// Programs seen holding it.
        holders: Vec<String>,
    },
    /// The path is not a serial device, or it refused the settings.
    CannotOpen {
        /// The system's reason.
        why: String,
    },
    /// The TCP bridge could not be reached.
    ConnectFailed {
        /// The system's reason.
        why: String,
    },
    /// The device went away (unplugged) or the TCP peer closed the connection.
    Disconnected,
    /// Nothing at all came back to a KMP request (no echo either).
    NoReply,
    /// Only the IR head's reflection of our request came back.
    EchoOnly,
    /// Bytes came back, but no frame start: wrong baud rate or another protocol.
    Garbage,
    /// A frame started but stopped before its end.
    Truncated,
    /// Whole frames arrived, but their CRC was wrong.
    CrcErrors,
    /// A frame arrived but was malformed (stuffing, length, wrong answer).
    Corrupt,
    /// A MULTICAL 66C sent nothing back.
    Mc66cNoReply,
    /// A MULTICAL 66C reply with a garbled start: the receiver switched to 1200 Bd too late.
    Mc66cLateBaud,
    /// A MULTICAL 66C reply that stopped early.
    Mc66cTruncated,
    /// A MULTICAL 66C reply with a bad character or layout.
    Mc66cCorrupt,
    /// The 66C answered, but its program number is unknown or unusable.
    Mc66cProgram,
    /// Anything else (the message says what).
    Other {
        /// The error as text.
        message: String,
    },
}

/// A verdict as data for JSON (dashboard, `doctor --format json`): stable `kind`, one-line
/// `headline`, `cause` and the steps of `fix`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VerdictReport {
    /// Stable machine name (`echo-only`, `no-reply`, …).
    pub kind: String,
    /// True when the meter answered.
    pub ok: bool,
    /// One line for people: "no reply: the IR port may be asleep — press the meter's button".
    pub headline: String,
    /// The likely cause.
    pub cause: String,
    /// What to do, in order.
    pub fix: Vec<String>,
}

const HEAD_POSITION: &str = "seat the head squarely on the meter's eye, cable side as the \
                             meter's label shows (many heads go on \"upside down\")";
const MAGNET: &str = "turn the head (or its magnet) by 180°: the magnet wakes the IR port on \
                      newer meters and its polarity matters";
const BUTTON: &str = "press a button on the meter's front, then try again within a minute: a \
                      MULTICAL 40x switches its IR port off ~30 min after the last read";
const WATCH: &str = "position the head with `kamstrup doctor --port PORT --watch`, which shows \
                     the success rate live";

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none found".to_string()
    } else {
        items.join(", ")
    }
}

impl Verdict {
    /// Stable machine name, for JSON and tests.
    pub fn kind(&self) -> &'static str {
        match self {
            Verdict::Ok { .. } => "ok",
            Verdict::Unstable { .. } => "unstable",
            Verdict::UseMc66c => "use-mc66c",
            Verdict::OtherBaud { .. } => "other-baud",
            Verdict::PortNotFound { .. } => "port-not-found",
            Verdict::NoPermission => "no-permission",
            Verdict::Busy { .. } => "busy",
            Verdict::Shared { .. } => "shared",
            Verdict::CannotOpen { .. } => "cannot-open",
            Verdict::ConnectFailed { .. } => "connect-failed",
            Verdict::Disconnected => "disconnected",
            Verdict::NoReply => "no-reply",
            Verdict::EchoOnly => "echo-only",
            Verdict::Garbage => "garbage",
            Verdict::Truncated => "truncated",
            Verdict::CrcErrors => "crc-errors",
            Verdict::Corrupt => "corrupt",
            Verdict::Mc66cNoReply => "mc66c-no-reply",
            Verdict::Mc66cLateBaud => "mc66c-late-baud",
            Verdict::Mc66cTruncated => "mc66c-truncated",
            Verdict::Mc66cCorrupt => "mc66c-corrupt",
            Verdict::Mc66cProgram => "mc66c-program",
            Verdict::Other { .. } => "other",
        }
    }

    /// True when the meter answered as asked.
    pub fn is_ok(&self) -> bool {
        matches!(self, Verdict::Ok { .. })
    }

    /// One line for people, as logged by the daemon and shown on the dashboard.
    pub fn headline(&self) -> String {
        match self {
            Verdict::Ok { found } => format!("the meter answers: {found}"),
            Verdict::Unstable { answered, attempts } => format!(
                "unstable: {answered} of {attempts} requests answered — the head is at the edge of the eye"
            ),
            Verdict::UseMc66c => {
                "a MULTICAL 66C answered: this meter needs the 66C protocol, not KMP".to_string()
            }
            Verdict::OtherBaud { baud } => format!("the meter answers at {baud} Bd only"),
            Verdict::PortNotFound { .. } => "the port does not exist: the head is not plugged in, or it got another name".to_string(),
            Verdict::NoPermission => "no permission to open the port".to_string(),
            Verdict::Busy { holders } if !holders.is_empty() => {
                format!("the port is held by another program: {}", list(holders))
            }
            Verdict::Busy { .. } => "the port is held by another program".to_string(),
            Verdict::Shared { holders } => format!(
                "another program also has the port open and may take the replies: {}",
                list(holders)
            ),
            Verdict::CannotOpen { why } => format!("the port cannot be opened: {why}"),
            Verdict::ConnectFailed { why } => format!("the TCP bridge cannot be reached: {why}"),
            Verdict::Disconnected => "the head went away (unplugged, or the TCP bridge closed the connection)".to_string(),
            Verdict::NoReply => {
                "no reply: the IR port may be asleep — press the meter's button".to_string()
            }
            Verdict::EchoOnly => {
                "echo only: the head works, but the meter does not answer".to_string()
            }
            Verdict::Garbage => {
                "bytes but no frame: wrong baud rate or another protocol".to_string()
            }
            Verdict::Truncated => "replies stop halfway: the head is not steady on the eye".to_string(),
            Verdict::CrcErrors => "replies arrive damaged (CRC errors): stray light or a loose head".to_string(),
            Verdict::Corrupt => "replies arrive malformed".to_string(),
            Verdict::Mc66cNoReply => "no reply from the MULTICAL 66C".to_string(),
            Verdict::Mc66cLateBaud => "the 66C's replies lose their start: the receiver switches to 1200 Bd too late".to_string(),
            Verdict::Mc66cTruncated => "the 66C's replies stop halfway: the head is not steady on the eye".to_string(),
            Verdict::Mc66cCorrupt => "the 66C's replies arrive garbled".to_string(),
            Verdict::Mc66cProgram => "the 66C answers, but its program number (which sets the decimals) is unknown".to_string(),
            Verdict::Other { message } => message.clone(),
        }
    }

    /// The likely cause, in a sentence.
    pub fn cause(&self) -> String {
        match self {
            Verdict::Ok { .. } => "nothing is wrong".to_string(),
            Verdict::Unstable { .. } => "light reaches the meter's eye only part of the time: the head is slightly off centre, too far from the eye, or ambient light interferes".to_string(),
            Verdict::UseMc66c => "the MULTICAL 66C (and 401) predate KMP; they speak the ASCII \"/#1\" protocol at 300/1200 Bd".to_string(),
            Verdict::OtherBaud { baud } => format!("this meter is configured for {baud} Bd on its optical port"),
            Verdict::PortNotFound { candidates } => format!(
                "USB devices are renamed when replugged (ttyUSB0 becomes ttyUSB1); heads found now: {}",
                list(candidates)
            ),
            Verdict::NoPermission => "serial devices belong to the 'dialout' group, which this user is not in".to_string(),
            Verdict::Busy { .. } | Verdict::Shared { .. } => "two programs reading one head take each other's replies (another kamstrup, a Home Assistant integration, ModemManager)".to_string(),
            Verdict::CannotOpen { .. } => "the path is not a serial device, or the driver refused the line settings".to_string(),
            Verdict::ConnectFailed { .. } => "the bridge (ser2net, esp-link) is not running, or the host or port is wrong".to_string(),
            Verdict::Disconnected => "the USB head was unplugged or re-enumerated, or the network bridge restarted".to_string(),
            Verdict::NoReply => "the meter never saw our request: its IR port is asleep, the head is not on the eye, or the magnet is turned the wrong way".to_string(),
            Verdict::EchoOnly => "the head's light comes back into its own receiver, so the head is alive; the meter is asleep or the head is not aligned with the eye".to_string(),
            Verdict::Garbage => "the receiver runs at another baud rate than the meter sends, or this is not a KMP meter (a MULTICAL 66C/401?)".to_string(),
            Verdict::Truncated | Verdict::Mc66cTruncated => "the light path broke during the reply: the head moved, or it sits at the edge of the eye".to_string(),
            Verdict::CrcErrors => "bits were flipped on the way: ambient light on the eye, a head that moves, or a dirty window".to_string(),
            Verdict::Corrupt => "the reply does not follow the protocol: interference, or another kind of device on this port".to_string(),
            Verdict::Mc66cNoReply => "the 66C's eye is not reached, or the meter is busy: it ignores the eye while the water flow is at its maximum".to_string(),
            Verdict::Mc66cLateBaud => "the reply starts 0.3 s after the request; a USB adapter with a long latency timer, or a TCP bridge that cannot switch 300→1200 Bd, still listens at 300 Bd then".to_string(),
            Verdict::Mc66cCorrupt => "interference on the eye, or a receiver with the wrong character format (the 66C sends 7E1 at 1200 Bd)".to_string(),
            Verdict::Mc66cProgram => "the 66C's registers carry digits only; the program number A-B-CCC gives the unit and the decimals".to_string(),
            Verdict::Other { .. } => "see the message".to_string(),
        }
    }

    /// What to do, in order of likelihood.
    pub fn fix(&self) -> Vec<String> {
        let s = |t: &str| t.to_string();
        match self {
            Verdict::Ok { .. } => Vec::new(),
            Verdict::Unstable { .. } => vec![s(HEAD_POSITION), s(WATCH), s("shade the eye from daylight and clean the meter's window")],
            Verdict::UseMc66c => vec![s("use --protocol mc66c (config: protocol = \"mc66c\")"), s("give the program number from the label or display with --program A-B-CCC, or let kamstrup read it (/#2)")],
            Verdict::OtherBaud { baud } => vec![format!("use --baud {baud} (config: baud = {baud})")],
            Verdict::PortNotFound { candidates } => {
                let mut v = vec![s("plug the head in and check `ls -l /dev/serial/by-id/`")];
                if let Some(first) = candidates.first() {
                    v.push(format!("use the stable name, e.g. --port {first}"));
                } else {
                    v.push(s("use the stable /dev/serial/by-id/… name, which survives replugging"));
                }
                v
            }
            Verdict::NoPermission => vec![s("sudo usermod -aG dialout $USER, then log out and in again"), s("as a service: run it in the 'dialout' group (packaging/kamstrup.service does)")],
            Verdict::Busy { .. } | Verdict::Shared { .. } => vec![s("stop the other program, or give each program its own head"), s("ModemManager probes new serial devices: disable it or add a udev rule with ENV{ID_MM_DEVICE_IGNORE}=\"1\"")],
            Verdict::CannotOpen { .. } => vec![s("give the IR head's device: a /dev/serial/by-id/… name, /dev/ttyUSB0 or /dev/ttyACM0")],
            Verdict::ConnectFailed { .. } => vec![s("check that the bridge runs and listens in raw mode on that port (ser2net: `4001:raw:0:/dev/ttyUSB0:1200 8DATABITS NONE 2STOPBIT`)"), s("try `nc HOST PORT` from this machine")],
            Verdict::Disconnected => vec![s("check the USB cable or the bridge; use the /dev/serial/by-id/… name so a replug keeps the name"), s("the daemon reopens the port at its next poll by itself")],
            Verdict::NoReply => vec![s(BUTTON), s(HEAD_POSITION), s(MAGNET), s("a MULTICAL 66C or 401 stays silent to KMP: try --protocol mc66c")],
            Verdict::EchoOnly => vec![s(BUTTON), s(HEAD_POSITION), s(MAGNET)],
            Verdict::Garbage => vec![s("try --protocol mc66c (MULTICAL 66C/401)"), s("try --baud 2400 (a few meters use it)"), s(HEAD_POSITION)],
            Verdict::Truncated | Verdict::Mc66cTruncated => vec![s(HEAD_POSITION), s(WATCH)],
            Verdict::CrcErrors => vec![s("shade the eye from daylight and clean the meter's window"), s(HEAD_POSITION), s(WATCH)],
            Verdict::Corrupt => vec![s(HEAD_POSITION), s("check that nothing else writes to this port")],
            Verdict::Mc66cNoReply => vec![s(HEAD_POSITION), s("try again later: the meter answers at lower flow; requests at least 5 s apart"), s("if this is a KMP meter (MULTICAL 30x/40x/60x), use --protocol kmp")],
            Verdict::Mc66cLateBaud => vec![s("USB head: set the adapter's latency timer to 1 ms (echo 1 > /sys/bus/usb-serial/devices/ttyUSB0/latency_timer)"), s("TCP bridge: it must send at 300 Bd and receive at 1200 Bd by itself, or use a local USB head")],
            Verdict::Mc66cCorrupt => vec![s(HEAD_POSITION), s("shade the eye from daylight and clean the meter's window")],
            Verdict::Mc66cProgram => vec![s("give the program number from the meter's label or display: --program A-B-CCC (config: program = \"4-2-119\")")],
            Verdict::Other { .. } => vec![s("run `kamstrup doctor --port PORT` for a step-by-step diagnosis")],
        }
    }

    /// The verdict as data.
    pub fn report(&self) -> VerdictReport {
        VerdictReport {
            kind: self.kind().to_string(),
            ok: self.is_ok(),
            headline: self.headline(),
            cause: self.cause(),
            fix: self.fix(),
        }
    }

    /// The verdict for a failed read (what the daemon logs and shows for a failing meter).
    pub fn from_error(error: &MeterError) -> Verdict {
        use kamstrup_mc66c::Error as M;
        match error {
            MeterError::NoReply { .. } => Verdict::NoReply,
            MeterError::EchoOnly { .. } => Verdict::EchoOnly,
            MeterError::Truncated { .. } => Verdict::Truncated,
            MeterError::Protocol { source, .. } => match source {
                kamstrup_kmp::Error::Crc { .. } => Verdict::CrcErrors,
                kamstrup_kmp::Error::Truncated { .. } => Verdict::Truncated,
                _ => Verdict::Corrupt,
            },
            MeterError::Unexpected { .. } => Verdict::Corrupt,
            MeterError::Mc66cNoReply { .. } => Verdict::Mc66cNoReply,
            MeterError::Mc66cReply { source, .. } => match **source {
                M::GarbagePrefix { .. } | M::Fields { .. } | M::FieldFormat { position: 1, .. } => {
                    Verdict::Mc66cLateBaud
                }
                M::Truncated { .. } | M::Empty => Verdict::Mc66cTruncated,
                _ => Verdict::Mc66cCorrupt,
            },
            MeterError::Mc66cProgram { .. } | MeterError::ScalingUnknown { .. } => {
                Verdict::Mc66cProgram
            }
            MeterError::Link(e) => Verdict::from_link_error(e),
        }
    }

    /// The verdict for a link that failed to open or broke.
    pub fn from_link_error(error: &LinkError) -> Verdict {
        match error {
            LinkError::NotFound { .. } => Verdict::PortNotFound {
                candidates: super::ports::candidates()
                    .into_iter()
                    .map(|c| c.path)
                    .collect(),
            },
            LinkError::PermissionDenied { .. } => Verdict::NoPermission,
            LinkError::Busy { port } => Verdict::Busy {
                holders: super::ports::holders(port),
            },
            LinkError::Open { source, .. } => Verdict::CannotOpen {
                why: source.to_string(),
            },
            LinkError::Connect { source, .. } => Verdict::ConnectFailed {
                why: source.to_string(),
            },
            LinkError::Disconnected { .. } => Verdict::Disconnected,
            LinkError::Timeout { received, .. } if received.is_empty() => Verdict::NoReply,
            LinkError::Timeout { .. } => Verdict::Truncated,
            other => Verdict::Other {
                message: other.to_string(),
            },
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.headline())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn driver_errors_map_to_their_own_verdicts() {
        let port = || "/dev/x".to_string();
        let cases: Vec<(MeterError, &str)> = vec![
            (
                MeterError::NoReply {
                    port: port(),
                    waited: Duration::from_secs(2),
                },
                "no-reply",
            ),
            (MeterError::EchoOnly { port: port() }, "echo-only"),
            (
                MeterError::Truncated {
                    port: port(),
                    received: 3,
                },
                "truncated",
            ),
            (
                MeterError::Protocol {
                    port: port(),
                    source: kamstrup_kmp::Error::Crc {
                        expected: 1,
                        actual: 2,
                    },
                },
                "crc-errors",
            ),
            (
                MeterError::Mc66cNoReply {
                    port: port(),
                    request: "/#1".into(),
                    attempts: 1,
                    waited: Duration::from_secs(3),
                },
                "mc66c-no-reply",
            ),
            (
                MeterError::Link(LinkError::PermissionDenied { port: port() }),
                "no-permission",
            ),
            (
                MeterError::Link(LinkError::Disconnected { port: port() }),
                "disconnected",
            ),
        ];
        for (error, kind) in cases {
            let v = Verdict::from_error(&error);
            assert_eq!(v.kind(), kind, "{error}");
            assert!(!v.is_ok());
            let r = v.report();
            assert!(!r.headline.is_empty() && !r.cause.is_empty() && !r.fix.is_empty());
        }
    }

    #[test]
    fn the_asleep_headline_says_what_to_do() {
        assert_eq!(
            Verdict::NoReply.headline(),
            "no reply: the IR port may be asleep — press the meter's button"
        );
    }
}

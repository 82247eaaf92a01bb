//! The one error type of the meter drivers (KMP and MULTICAL 66C), worded to say what happened
//! and what the user can do about it, with a stable `kind()` for JSON output.

use std::time::Duration;

use kamstrup_optical::LinkError;

/// Extra advice for a rejected 66C reply: corruption at the start of the line is the signature
/// of a receiver that switched to 1200 Bd too late (mc66c.md §2).
fn mc66c_hint(error: &kamstrup_mc66c::Error) -> &'static str {
    use kamstrup_mc66c::Error as E;
    match error {
        E::GarbagePrefix { .. } | E::Fields { .. } | E::FieldFormat { position: 1, .. } => {
            " — a garbled or missing start of the line is what a receiver that switched to 1200 Bd \
             too late sees"
        }
        E::Truncated { .. } | E::Empty => {
            " — the reply stopped early: the head may have moved, or the meter was interrupted"
        }
        _ => "",
    }
}

/// Why a meter read failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MeterError {
    /// Nothing came back at all.
    #[error(
        "no reply from the meter on {port} within {:.1} s: is the head on the meter's eye, with the \
         cable side as the meter's label shows and the magnet turned the right way? A MULTICAL 40x \
         switches its IR port off ~30 min after the last read: press a button on the meter and try \
         again",
        waited.as_secs_f64()
    )]
    NoReply {
        /// Port description.
        port: String,
        /// How long we waited for the first byte.
        waited: Duration,
    },
    /// Only the IR head's reflection of our request came back.
    #[error(
        "only the echo of our own request came back on {port}: the IR head works, but the meter \
         did not answer — check the head's alignment on the eye and wake the meter with a button press"
    )]
    EchoOnly {
        /// Port description.
        port: String,
    },
    /// The reply started but stopped before its end.
    #[error(
        "the reply from the meter on {port} stopped after {received} bytes: the head may have moved, \
         or the baud rate is wrong (KMP meters use 1200 8N2)"
    )]
    Truncated {
        /// Port description.
        port: String,
        /// Bytes that did arrive.
        received: usize,
    },
    /// A reply arrived but was corrupt or not KMP.
    #[error("bad reply from the meter on {port}: {source}")]
    Protocol {
        /// Port description.
        port: String,
        /// What the KMP layer found wrong.
        source: kamstrup_kmp::Error,
    },
    /// The reply was valid KMP but not an answer to what we asked.
    #[error("the meter on {port} answered with {what}, which does not fit the request")]
    Unexpected {
        /// Port description.
        port: String,
        /// What came back.
        what: String,
    },
    /// A MULTICAL 66C sent nothing back to a "/#n" or "/?!" request, on every attempt.
    #[error(
        "no reply from the MULTICAL 66C on {port} to {request} ({attempts} attempt{s}, {:.1} s \
         each): the 66C answers 0.3–2 s after the request, so check that the head sits on the \
         meter's eye; the meter also ignores optical requests while the water flow is at its \
         maximum (energy calculation comes first) — try again later, with requests at least 5 s \
         apart",
        waited.as_secs_f64(),
        s = if *attempts == 1 { "" } else { "s" }
    )]
    Mc66cNoReply {
        /// Port description.
        port: String,
        /// The request text (`/#1`, `/?!`).
        request: String,
        /// Attempts made, the first one included.
        attempts: u32,
        /// How long each attempt waited for the reply.
        waited: Duration,
    },
    /// A MULTICAL 66C reply arrived but was rejected (corrupt, truncated, or not the expected
    /// layout) on every attempt.
    #[error(
        "bad reply from the MULTICAL 66C on {port} to {request} ({attempts} attempt{s}): {source}; \
         received \"{raw}\"{hint}",
        s = if *attempts == 1 { "" } else { "s" },
        hint = mc66c_hint(source)
    )]
    Mc66cReply {
        /// Port description.
        port: String,
        /// The request text.
        request: String,
        /// Attempts made, the first one included.
        attempts: u32,
        /// Why the last reply was rejected.
        source: Box<kamstrup_mc66c::Error>,
        /// The last reply as received, in the escaped text form of the vectors file.
        raw: String,
    },
    /// The program number A-B-CCC cannot give a scaling (unknown energy digit B, or a unit the
    /// flow-meter code does not allow).
    #[error(
        "program number {program} of the MULTICAL 66C on {port} ({origin}) is unusable: {source}"
    )]
    Mc66cProgram {
        /// Port description.
        port: String,
        /// The program number as read or given.
        program: String,
        /// Where it came from ("given with --program", "read with /#2").
        origin: String,
        /// What is wrong.
        source: Box<kamstrup_mc66c::Error>,
    },
    /// Nothing told us where the decimal point of the 66C's registers is.
    #[error(
        "cannot tell the decimals of the MULTICAL 66C on {port}: it answered neither /#2, /#D nor \
         the EN 61107 readout ({why}); give the program number A-B-CCC from the meter's label or \
         display (e.g. --program 4-2-119)"
    )]
    ScalingUnknown {
        /// Port description.
        port: String,
        /// The last failure.
        why: String,
    },
    /// The link itself failed (port gone, permission, TCP reset).
    #[error(transparent)]
    Link(#[from] LinkError),
}

impl MeterError {
    /// Stable machine name of the failure, used as `error.kind` in JSON output.
    pub fn kind(&self) -> &'static str {
        match self {
            MeterError::NoReply { .. } => "timeout",
            MeterError::EchoOnly { .. } => "echo-only",
            MeterError::Truncated { .. } => "truncated",
            MeterError::Protocol { source, .. } => source.kind(),
            MeterError::Unexpected { .. } => "unexpected",
            MeterError::Mc66cNoReply { .. } => "timeout",
            MeterError::Mc66cReply { source, .. } => source.kind(),
            MeterError::Mc66cProgram { source, .. } => source.kind(),
            MeterError::ScalingUnknown { .. } => "scaling-unknown",
            MeterError::Link(e) => e.kind(),
        }
    }

    /// Whether one more attempt may help (timeouts and corrupt replies do; a missing port doesn't).
    pub(crate) fn is_retryable(&self) -> bool {
        matches!(
            self,
            MeterError::NoReply { .. }
                | MeterError::EchoOnly { .. }
                | MeterError::Truncated { .. }
                | MeterError::Protocol { .. }
                | MeterError::Mc66cNoReply { .. }
                | MeterError::Mc66cReply { .. }
        )
    }
}

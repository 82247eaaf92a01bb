//! Errors of the link layer, worded to tell the user what to check (plugged in, permissions,
//! another program holding the head) rather than only what failed.

use std::fmt;
use std::io;
use std::time::Duration;

/// Which receive timeout expired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeoutPhase {
    /// Nothing arrived at all.
    FirstByte,
    /// Bytes arrived, then the line went quiet.
    InterByte,
    /// The whole receive call took too long.
    Overall,
}

impl TimeoutPhase {
    /// Short stable name: "first-byte", "inter-byte", "overall".
    pub const fn as_str(self) -> &'static str {
        match self {
            TimeoutPhase::FirstByte => "first-byte",
            TimeoutPhase::InterByte => "inter-byte",
            TimeoutPhase::Overall => "overall",
        }
    }
}

impl fmt::Display for TimeoutPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Formats a duration for people: "50 ms" below one second, "2.0 s" above.
pub(crate) fn human_duration(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

fn timeout_message(phase: TimeoutPhase, received: &[u8], waited: Duration) -> String {
    let waited = human_duration(waited);
    match phase {
        TimeoutPhase::FirstByte => format!("no byte within {waited}"),
        TimeoutPhase::InterByte => format!(
            "reply stopped after {} bytes (nothing more within {waited})",
            received.len()
        ),
        TimeoutPhase::Overall => format!(
            "no complete reply within {waited} ({} bytes received)",
            received.len()
        ),
    }
}

/// Everything that can go wrong on a link.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// The serial device does not exist.
    #[error(
        "serial port {port} not found: is the IR head plugged in? Stable names are under /dev/serial/by-id/"
    )]
    NotFound {
        /// Port as given.
        port: String,
    },
    /// The user may not open the serial device.
    #[error(
        "no permission to open serial port {port}: add your user to the 'dialout' group \
         (sudo usermod -aG dialout $USER, then log in again) or run as that group"
    )]
    PermissionDenied {
        /// Port as given.
        port: String,
    },
    /// Another process holds the serial device.
    #[error(
        "serial port {port} is in use by another program (another kamstrup, ModemManager, a Home Assistant integration?)"
    )]
    Busy {
        /// Port as given.
        port: String,
    },
    /// Opening or configuring the serial device failed otherwise.
    #[error("cannot open serial port {port}: {source}")]
    Open {
        /// Port as given.
        port: String,
        /// Underlying error.
        source: io::Error,
    },
    /// The TCP connection could not be made.
    #[error("cannot connect to {addr}: {source} (is ser2net/the network head running and the port right?)")]
    Connect {
        /// `tcp://host:port`.
        addr: String,
        /// Underlying error.
        source: io::Error,
    },
    /// A receive timeout expired.
    #[error("{}", timeout_message(*.phase, .received, *.waited))]
    Timeout {
        /// Which timeout expired.
        phase: TimeoutPhase,
        /// The bytes consumed by the receive call before it gave up.
        received: Vec<u8>,
        /// For `FirstByte`/`InterByte`: time since the call started or since the last byte;
        /// for `Overall`: time since the call started.
        waited: Duration,
    },
    /// The device went away or the peer closed the connection.
    #[error("{port} disconnected (IR head unplugged, or the TCP peer closed the connection)")]
    Disconnected {
        /// Port description.
        port: String,
    },
    /// Any other I/O error.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    /// The operation is not available for this kind of port.
    #[error("{0}")]
    Unsupported(String),
    /// A port string could not be parsed.
    #[error("{0}")]
    BadSpec(String),
    /// A line-settings string could not be parsed.
    #[error("{0}")]
    BadSettings(String),
}

impl LinkError {
    /// Short stable name for logs and JSON: "not-found", "permission", "busy", "open",
    /// "connect", "timeout", "disconnected", "io", "unsupported", "bad-port", "bad-settings".
    pub fn kind(&self) -> &'static str {
        match self {
            LinkError::NotFound { .. } => "not-found",
            LinkError::PermissionDenied { .. } => "permission",
            LinkError::Busy { .. } => "busy",
            LinkError::Open { .. } => "open",
            LinkError::Connect { .. } => "connect",
            LinkError::Timeout { .. } => "timeout",
            LinkError::Disconnected { .. } => "disconnected",
            LinkError::Io(_) => "io",
            LinkError::Unsupported(_) => "unsupported",
            LinkError::BadSpec(_) => "bad-port",
            LinkError::BadSettings(_) => "bad-settings",
        }
    }

    /// True for errors after which the link should be closed and opened again (the device or
    /// connection is gone), as opposed to a meter that merely did not answer.
    pub fn needs_reopen(&self) -> bool {
        matches!(self, LinkError::Disconnected { .. } | LinkError::Io(_))
    }
}

/// True when an I/O error means the other side is gone for good.
pub(crate) fn is_disconnect(e: &io::Error) -> bool {
    use io::ErrorKind as K;
    if matches!(
        e.kind(),
        K::BrokenPipe
            | K::ConnectionReset
            | K::ConnectionAborted
            | K::NotConnected
            | K::UnexpectedEof
    ) {
        return true;
    }
    // A serial device that was unplugged answers reads and writes with EIO/ENXIO/ENODEV.
    #[cfg(unix)]
    {
        use rustix::io::Errno;
        let gone = [Errno::IO, Errno::NXIO, Errno::NODEV];
        if let Some(code) = e.raw_os_error() {
            return gone.iter().any(|g| g.raw_os_error() == code);
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_teach() {
        let e = LinkError::NotFound {
            port: "/dev/ttyUSB0".into(),
        };
        assert_eq!(
            e.to_string(),
            "serial port /dev/ttyUSB0 not found: is the IR head plugged in? Stable names are under /dev/serial/by-id/"
        );
        let e = LinkError::Busy {
            port: "/dev/ttyUSB0".into(),
        };
        assert!(e.to_string().contains("in use by another program"));
        let e = LinkError::Timeout {
            phase: TimeoutPhase::FirstByte,
            received: vec![],
            waited: Duration::from_secs(2),
        };
        assert_eq!(e.to_string(), "no byte within 2.0 s");
        let e = LinkError::Timeout {
            phase: TimeoutPhase::InterByte,
            received: vec![0; 12],
            waited: Duration::from_millis(50),
        };
        assert_eq!(
            e.to_string(),
            "reply stopped after 12 bytes (nothing more within 50 ms)"
        );
        assert_eq!(e.kind(), "timeout");
        let e = LinkError::Timeout {
            phase: TimeoutPhase::Overall,
            received: vec![1, 2],
            waited: Duration::from_millis(3000),
        };
        assert_eq!(
            e.to_string(),
            "no complete reply within 3.0 s (2 bytes received)"
        );
    }
}

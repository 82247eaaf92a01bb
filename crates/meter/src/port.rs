//! Where a meter is: a link to an IR head (serial device or TCP, the link layer's `LinkSpec`) or
//! an in-process simulated meter (`sim:MODEL`), parsed from and printed as the strings users type.

use std::fmt;
use std::str::FromStr;

use kamstrup_optical::{LinkError, LinkSpec};

/// A meter's port as the user names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PortSpec {
    /// A local serial device: `/dev/ttyUSB0`, `/dev/serial/by-id/...`, `COM3`.
    Serial {
        /// Device path as given.
        path: String,
    },
    /// A raw TCP socket: `tcp://host:port` (alias `socket://host:port`).
    Tcp {
        /// Host name or IP address (IPv6 without brackets).
        host: String,
        /// TCP port.
        port: u16,
    },
    /// An in-process simulated meter: `sim:multical-403`.
    Sim {
        /// Simulated meter model, as given after `sim:`.
        model: String,
    },
}

/// What opening a port means: a link for the link layer, or a simulated meter in process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PortTarget<'a> {
    /// A serial device or TCP socket.
    Link(LinkSpec),
    /// A simulated meter of this model.
    Sim(&'a str),
}

impl PortSpec {
    /// What opening this port means.
    pub fn target(&self) -> PortTarget<'_> {
        match self {
            PortSpec::Serial { path } => PortTarget::Link(LinkSpec::Serial { path: path.clone() }),
            PortSpec::Tcp { host, port } => PortTarget::Link(LinkSpec::Tcp {
                host: host.clone(),
                port: *port,
            }),
            PortSpec::Sim { model } => PortTarget::Sim(model),
        }
    }
}

impl From<LinkSpec> for PortSpec {
    fn from(link: LinkSpec) -> Self {
        match link {
            LinkSpec::Serial { path } => PortSpec::Serial { path },
            LinkSpec::Tcp { host, port } => PortSpec::Tcp { host, port },
        }
    }
}

impl FromStr for PortSpec {
    type Err = LinkError;

    /// `sim:model` → [`PortSpec::Sim`]; anything else as the link layer reads it
    /// (`tcp://host:port`, `socket://host:port`, a serial device path).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let trimmed = s.trim();
        if trimmed.is_empty() {
            return Err(LinkError::BadSpec(
                "empty port: give a serial device (/dev/ttyUSB0, /dev/serial/by-id/..., COM3), \
                 tcp://HOST:PORT or sim:MODEL"
                    .into(),
            ));
        }
        let sim = trimmed
            .get(..4)
            .filter(|p| p.eq_ignore_ascii_case("sim:"))
            .and_then(|_| trimmed.get(4..));
        if let Some(model) = sim {
            let model = model.trim();
            if model.is_empty() {
                return Err(LinkError::BadSpec(
                    "simulator port 'sim:' needs a model, e.g. sim:multical-403 or sim:multical-66c"
                        .into(),
                ));
            }
            return Ok(PortSpec::Sim {
                model: model.to_string(),
            });
        }
        match trimmed.parse::<LinkSpec>() {
            Ok(link) => Ok(link.into()),
            Err(LinkError::BadSpec(why)) if why.starts_with("unsupported port scheme") => Err(
                LinkError::BadSpec(format!("{why} (or sim:MODEL for a simulated meter)")),
            ),
            Err(e) => Err(e),
        }
    }
}

impl fmt::Display for PortSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.target() {
            PortTarget::Sim(model) => write!(f, "sim:{model}"),
            PortTarget::Link(link) => link.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulators_and_links() {
        for (text, want, display) in [
            (
                "sim:multical-403",
                PortSpec::Sim {
                    model: "multical-403".into(),
                },
                "sim:multical-403",
            ),
            (
                "SIM: multical-66c",
                PortSpec::Sim {
                    model: "multical-66c".into(),
                },
                "sim:multical-66c",
            ),
            (
                " /dev/ttyUSB0 ",
                PortSpec::Serial {
                    path: "/dev/ttyUSB0".into(),
                },
                "/dev/ttyUSB0",
            ),
            (
                "socket://[::1]:4001",
                PortSpec::Tcp {
                    host: "::1".into(),
                    port: 4001,
                },
                "tcp://[::1]:4001",
            ),
        ] {
            let got: PortSpec = text.parse().unwrap();
            assert_eq!(got, want, "{text}");
            assert_eq!(got.to_string(), display, "{text}");
            assert_eq!(display.parse::<PortSpec>().unwrap(), want, "{display}");
        }
        for (text, needle) in [
            ("", "sim:MODEL"),
            ("sim:", "needs a model"),
            ("sim:  ", "needs a model"),
            ("rfc2217://host:4001", "sim:MODEL"),
            ("tcp://host", "no port"),
        ] {
            let err = text.parse::<PortSpec>().unwrap_err();
            assert_eq!(err.kind(), "bad-port", "{text}");
            assert!(err.to_string().contains(needle), "{text}: {err}");
        }
    }
}

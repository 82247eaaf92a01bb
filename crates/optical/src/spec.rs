//! Where the IR head is: a serial device path, a raw TCP socket (ser2net, esp-link) or an
//! in-process simulator; parsed from and printed as the strings users type.

use std::fmt;
use std::str::FromStr;

use crate::error::LinkError;

/// A port as the user names it.
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
    /// An in-process simulator: `sim:multical-403`.
    Sim {
        /// Simulated meter model, as given after `sim:`.
        model: String,
    },
}

const TCP_EXAMPLE: &str = "tcp://HOST:PORT, e.g. tcp://192.168.1.50:4001";

fn split_scheme(s: &str) -> Option<(&str, &str)> {
    let at = s.find("://")?;
    let scheme = s.get(..at)?;
    let rest = s.get(at + 3..)?;
    Some((scheme, rest))
}

fn parse_tcp(original: &str, rest: &str) -> Result<PortSpec, LinkError> {
    let bad = |why: String| LinkError::BadSpec(format!("bad TCP port '{original}': {why}"));
    // A trailing slash is a common copy-paste leftover from URLs; anything after it is not.
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains('/') {
        return Err(bad(format!("unexpected path; use {TCP_EXAMPLE}")));
    }
    let (host, port_text) = if let Some(after_bracket) = rest.strip_prefix('[') {
        let Some((host, tail)) = after_bracket.split_once(']') else {
            return Err(bad("missing ']' after IPv6 address".into()));
        };
        let Some(port_text) = tail.strip_prefix(':') else {
            return Err(bad(format!("no port given; use {TCP_EXAMPLE}")));
        };
        (host, port_text)
    } else {
        let Some((host, port_text)) = rest.rsplit_once(':') else {
            return Err(bad(format!("no port given; use {TCP_EXAMPLE}")));
        };
        if host.contains(':') {
            return Err(bad(
                "write IPv6 addresses in brackets: tcp://[::1]:4001".into()
            ));
        }
        (host, port_text)
    };
    if host.is_empty() {
        return Err(bad(format!("no host given; use {TCP_EXAMPLE}")));
    }
    if port_text.is_empty() {
        return Err(bad(format!("no port given; use {TCP_EXAMPLE}")));
    }
    let port = port_text
        .parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| {
            bad(format!(
                "port '{port_text}' must be a number from 1 to 65535"
            ))
        })?;
    Ok(PortSpec::Tcp {
        host: host.to_string(),
        port,
    })
}

impl FromStr for PortSpec {
    type Err = LinkError;

    /// `tcp://host:port` or `socket://host:port` → [`PortSpec::Tcp`]; `sim:model` →
    /// [`PortSpec::Sim`]; any other non-empty string without `://` → [`PortSpec::Serial`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let trimmed = s.trim();
        if trimmed.is_empty() {
            return Err(LinkError::BadSpec(
                "empty port: give a serial device (/dev/ttyUSB0, /dev/serial/by-id/..., COM3), \
                 tcp://HOST:PORT or sim:MODEL"
                    .into(),
            ));
        }
        if let Some((scheme, rest)) = split_scheme(trimmed) {
            return match scheme.to_ascii_lowercase().as_str() {
                "tcp" | "socket" => parse_tcp(trimmed, rest),
                _ => Err(LinkError::BadSpec(format!(
                    "unsupported port scheme '{scheme}://' in '{trimmed}': use {TCP_EXAMPLE}, \
                     sim:MODEL or a serial device path"
                ))),
            };
        }
        if let Some(model) = trimmed
            .get(..4)
            .filter(|p| p.eq_ignore_ascii_case("sim:"))
            .and_then(|_| trimmed.get(4..))
        {
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
        Ok(PortSpec::Serial {
            path: trimmed.to_string(),
        })
    }
}

impl fmt::Display for PortSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortSpec::Serial { path } => f.write_str(path),
            PortSpec::Tcp { host, port } if host.contains(':') => {
                write!(f, "tcp://[{host}]:{port}")
            }
            PortSpec::Tcp { host, port } => write!(f, "tcp://{host}:{port}"),
            PortSpec::Sim { model } => write!(f, "sim:{model}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(host: &str, port: u16) -> PortSpec {
        PortSpec::Tcp {
            host: host.into(),
            port,
        }
    }
    fn serial(path: &str) -> PortSpec {
        PortSpec::Serial { path: path.into() }
    }

    #[test]
    fn parse_table() {
        let ok = [
            ("/dev/ttyUSB0", serial("/dev/ttyUSB0"), "/dev/ttyUSB0"),
            (
                "/dev/serial/by-id/usb-FTDI_FT230X-if00-port0",
                serial("/dev/serial/by-id/usb-FTDI_FT230X-if00-port0"),
                "/dev/serial/by-id/usb-FTDI_FT230X-if00-port0",
            ),
            ("COM3", serial("COM3"), "COM3"),
            (r"\\.\COM12", serial(r"\\.\COM12"), r"\\.\COM12"),
            (" /dev/ttyACM0 ", serial("/dev/ttyACM0"), "/dev/ttyACM0"),
            (
                "tcp://192.168.1.50:4001",
                tcp("192.168.1.50", 4001),
                "tcp://192.168.1.50:4001",
            ),
            (
                "TCP://head.local:23",
                tcp("head.local", 23),
                "tcp://head.local:23",
            ),
            ("tcp://head:4001/", tcp("head", 4001), "tcp://head:4001"),
            (
                "socket://10.0.0.2:2000",
                tcp("10.0.0.2", 2000),
                "tcp://10.0.0.2:2000",
            ),
            ("tcp://[::1]:4001", tcp("::1", 4001), "tcp://[::1]:4001"),
            (
                "sim:multical-403",
                PortSpec::Sim {
                    model: "multical-403".into(),
                },
                "sim:multical-403",
            ),
            (
                "SIM:multical-66c",
                PortSpec::Sim {
                    model: "multical-66c".into(),
                },
                "sim:multical-66c",
            ),
        ];
        for (text, want, display) in ok {
            let got: PortSpec = text.parse().unwrap();
            assert_eq!(got, want, "{text}");
            assert_eq!(got.to_string(), display, "{text}");
            assert_eq!(
                display.parse::<PortSpec>().unwrap(),
                want,
                "round trip {display}"
            );
        }
        let bad = [
            ("", "empty port"),
            ("   ", "empty port"),
            ("tcp://host", "no port"),
            ("tcp://host:", "no port"),
            ("tcp://:4001", "no host"),
            ("tcp://host:abc", "1 to 65535"),
            ("tcp://host:70000", "1 to 65535"),
            ("tcp://host:0", "1 to 65535"),
            ("tcp://host:4001/x", "unexpected path"),
            ("tcp://::1:4001", "brackets"),
            ("tcp://[::1]", "no port"),
            ("tcp://[::1:4001", "missing ']'"),
            ("rfc2217://host:4001", "unsupported port scheme"),
            ("sim:", "needs a model"),
            ("sim:  ", "needs a model"),
        ];
        for (text, needle) in bad {
            let err = text.parse::<PortSpec>().unwrap_err();
            assert_eq!(err.kind(), "bad-port", "{text}");
            assert!(err.to_string().contains(needle), "{text}: {err}");
        }
    }
}

//! Where the IR head is: a serial device path or a raw TCP socket (ser2net, esp-link); parsed
//! from and printed as the strings users type. (Simulated meters are the meter layer's port kind.)

use std::fmt;
use std::str::FromStr;

use crate::error::LinkError;

/// A link to an IR head as the user names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkSpec {
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
}

const TCP_EXAMPLE: &str = "tcp://HOST:PORT, e.g. tcp://192.168.1.50:4001";

fn split_scheme(s: &str) -> Option<(&str, &str)> {
    let at = s.find("://")?;
    let scheme = s.get(..at)?;
    let rest = s.get(at + 3..)?;
    Some((scheme, rest))
}

fn parse_tcp(original: &str, rest: &str) -> Result<LinkSpec, LinkError> {
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
    Ok(LinkSpec::Tcp {
        host: host.to_string(),
        port,
    })
}

impl FromStr for LinkSpec {
    type Err = LinkError;

    /// `tcp://host:port` or `socket://host:port` → [`LinkSpec::Tcp`]; any other non-empty
    /// string without `://` → [`LinkSpec::Serial`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let trimmed = s.trim();
        if trimmed.is_empty() {
            return Err(LinkError::BadSpec(
                "empty port: give a serial device (/dev/ttyUSB0, /dev/serial/by-id/..., COM3) \
                 or tcp://HOST:PORT"
                    .into(),
            ));
        }
        if let Some((scheme, rest)) = split_scheme(trimmed) {
            return match scheme.to_ascii_lowercase().as_str() {
                "tcp" | "socket" => parse_tcp(trimmed, rest),
                _ => Err(LinkError::BadSpec(format!(
                    "unsupported port scheme '{scheme}://' in '{trimmed}': use {TCP_EXAMPLE} \
                     or a serial device path"
                ))),
            };
        }
        Ok(LinkSpec::Serial {
            path: trimmed.to_string(),
        })
    }
}

impl fmt::Display for LinkSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkSpec::Serial { path } => f.write_str(path),
            LinkSpec::Tcp { host, port } if host.contains(':') => {
                write!(f, "tcp://[{host}]:{port}")
            }
            LinkSpec::Tcp { host, port } => write!(f, "tcp://{host}:{port}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(host: &str, port: u16) -> LinkSpec {
        LinkSpec::Tcp {
            host: host.into(),
            port,
        }
    }
    fn serial(path: &str) -> LinkSpec {
        LinkSpec::Serial { path: path.into() }
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
        ];
        for (text, want, display) in ok {
            let got: LinkSpec = text.parse().unwrap();
            assert_eq!(got, want, "{text}");
            assert_eq!(got.to_string(), display, "{text}");
            assert_eq!(
                display.parse::<LinkSpec>().unwrap(),
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
        ];
        for (text, needle) in bad {
            let err = text.parse::<LinkSpec>().unwrap_err();
            assert_eq!(err.kind(), "bad-port", "{text}");
            assert!(err.to_string().contains(needle), "{text}: {err}");
        }
    }
}

//! IR-head link layer for Kamstrup meters: serial, TCP (ser2net), pseudo-terminal and
//! in-memory links on tokio, with a protocol-agnostic transceiver that times and traces frames.
//!
//! This crate knows nothing about KMP or the MULTICAL 66C protocol: it moves bytes, switches
//! line settings (the 66C talks 300 baud one way and 1200 baud the other), enforces receive
//! timeouts and logs every frame as hex on the tracing target [`FRAMES_TARGET`]
//! (`kamstrup::frames`, level DEBUG), with fields `direction` ("TX"/"RX"), `port`, `len` and
//! `outcome`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), kamstrup_optical::LinkError> {
//! use std::time::Duration;
//! use kamstrup_optical::{open, LineSettings, LinkSpec, Timeouts, Transceiver};
//!
//! let spec: LinkSpec = "/dev/ttyUSB0".parse()?;
//! let link = open(&spec, LineSettings::KMP, Duration::from_secs(5)).await?;
//! let mut trx = Transceiver::new(link);
//! trx.clear_input().await?;
//! trx.send(&[0x80, 0x3F, 0x01, 0x05, 0x8A, 0x0D]).await?;
//! let t = Timeouts::new(Duration::from_secs(2), Duration::from_millis(200), Duration::from_secs(5));
//! let mut frame = Vec::new();
//! let reply = trx
//!     .receive(t, |b| {
//!         frame.push(b);
//!         (b == 0x0D).then(|| frame.clone())
//!     })
//!     .await?;
//! # let _ = reply; Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;
mod link;
mod memory;
mod pty;
mod serial;
mod settings;
mod spec;
mod tcp;
mod transceiver;

pub use error::{LinkError, TimeoutPhase};
pub use link::{open, Link};
pub use memory::{memory_pair, MemoryLink};
pub use pty::{open_pty, open_pty_with, PtyLink};
pub use serial::{open_serial, SerialLink};
pub use settings::{DataBits, LineSettings, Parity, StopBits};
pub use spec::LinkSpec;
pub use tcp::{connect_tcp, TcpLink};
pub use transceiver::{LinkStats, Timeouts, Transceiver};

/// Tracing target of the per-frame hex logs (enable it for `--trace-frames`).
pub const FRAMES_TARGET: &str = "kamstrup::frames";

/// Bytes as spaced uppercase hex: `[0x80, 0x3F, 0x10]` → `"80 3F 10"`; empty → `""`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(bytes.len().saturating_mul(3));
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0F)]));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_format() {
        assert_eq!(super::hex(&[]), "");
        assert_eq!(super::hex(&[0x80, 0x3F, 0x10, 0x0d]), "80 3F 10 0D");
        assert_eq!(super::hex(&[0x00, 0xFF]), "00 FF");
    }
}

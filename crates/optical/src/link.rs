//! The `Link` abstraction every transport implements, and `open`, which turns a user's
//! [`LinkSpec`] into a ready link.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};

use crate::error::LinkError;
use crate::serial::open_serial;
use crate::settings::LineSettings;
use crate::spec::LinkSpec;
use crate::tcp::connect_tcp;

/// A byte pipe to an IR head (or to a simulated meter) plus its line settings.
pub trait Link: AsyncRead + AsyncWrite + Send + Unpin {
    /// Changes the line settings. Serial: reconfigures the port at once (the 66C baud
    /// switch); TCP: remembered only (the ser2net side is fixed); memory: shared with the peer.
    fn set_line_settings(&mut self, settings: LineSettings) -> Result<(), LinkError>;
    /// The current line settings.
    fn line_settings(&self) -> LineSettings;
    /// Human-readable port name for logs: "/dev/ttyUSB0", "tcp://127.0.0.1:4001", "memory".
    fn describe(&self) -> String;
}

impl<L: Link + ?Sized> Link for Box<L> {
    fn set_line_settings(&mut self, settings: LineSettings) -> Result<(), LinkError> {
        (**self).set_line_settings(settings)
    }
    fn line_settings(&self) -> LineSettings {
        (**self).line_settings()
    }
    fn describe(&self) -> String {
        (**self).describe()
    }
}

/// Opens a serial or TCP port. `connect_timeout` bounds the TCP connect only.
pub async fn open(
    spec: &LinkSpec,
    settings: LineSettings,
    connect_timeout: Duration,
) -> Result<Box<dyn Link>, LinkError> {
    match spec {
        LinkSpec::Serial { path } => Ok(Box::new(open_serial(path, settings)?)),
        LinkSpec::Tcp { host, port } => Ok(Box::new(
            connect_tcp(host, *port, settings, connect_timeout).await?,
        )),
    }
}

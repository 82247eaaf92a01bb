//! Raw TCP link to a network IR head (ser2net, esp-link): the same bytes as on a local port,
//! no extra framing; the serial side's settings are fixed on the server.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::error::{human_duration, LinkError};
use crate::link::Link;
use crate::settings::LineSettings;

/// A link over a TCP connection.
#[derive(Debug)]
pub struct TcpLink {
    stream: TcpStream,
    settings: LineSettings,
    name: String,
}

fn tcp_name(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("tcp://[{host}]:{port}")
    } else {
        format!("tcp://{host}:{port}")
    }
}

/// Connects to `host:port` within `timeout` and disables Nagle's algorithm so that request
/// frames leave at once. `settings` is only remembered (the server's serial side is fixed).
pub async fn connect_tcp(
    host: &str,
    port: u16,
    settings: LineSettings,
    timeout: Duration,
) -> Result<TcpLink, LinkError> {
    let name = tcp_name(host, port);
    let stream = match tokio::time::timeout(timeout, TcpStream::connect((host, port))).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(source)) => return Err(LinkError::Connect { addr: name, source }),
        Err(_) => {
            return Err(LinkError::Connect {
                addr: name,
                source: io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no answer within {}", human_duration(timeout)),
                ),
            })
        }
    };
    stream
        .set_nodelay(true)
        .map_err(|source| LinkError::Connect {
            addr: name.clone(),
            source,
        })?;
    Ok(TcpLink {
        stream,
        settings,
        name,
    })
}

impl TcpLink {
    /// Wraps an accepted connection (the simulator's server side). Sets TCP_NODELAY on a best
    /// effort basis; the description is `tcp://<peer address>`.
    pub fn from_stream(stream: TcpStream, settings: LineSettings) -> TcpLink {
        // Nagle only delays small writes; failing to disable it is not worth refusing the peer.
        let _ = stream.set_nodelay(true);
        let name = match stream.peer_addr() {
            Ok(addr) => format!("tcp://{addr}"),
            Err(_) => "tcp://(unknown peer)".to_string(),
        };
        TcpLink {
            stream,
            settings,
            name,
        }
    }

    /// The underlying stream.
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }
}

impl AsyncRead for TcpLink {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for TcpLink {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

impl Link for TcpLink {
    /// Remembers the settings only: a raw ser2net port has its serial side configured on the
    /// server, and there is no in-band way to change it.
    fn set_line_settings(&mut self, settings: LineSettings) -> Result<(), LinkError> {
        self.settings = settings;
        Ok(())
    }

    fn line_settings(&self) -> LineSettings {
        self.settings
    }

    fn describe(&self) -> String {
        self.name.clone()
    }
}

//! In-memory link pair for simulators and tests: a duplex byte pipe whose two ends share one
//! line-settings cell, like two devices on the same wire.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf};

use crate::error::LinkError;
use crate::link::Link;
use crate::settings::LineSettings;

/// Bytes buffered in each direction before a writer waits; far above any meter frame.
const PIPE_CAPACITY: usize = 64 * 1024;

/// One end of an in-memory link (see [`memory_pair`]).
#[derive(Debug)]
pub struct MemoryLink {
    stream: DuplexStream,
    settings: Arc<Mutex<LineSettings>>,
}

/// Creates two connected in-memory links. Bytes written to one are read from the other; both
/// ends share one [`LineSettings`] cell, so when one end calls
/// [`Link::set_line_settings`] the other end's [`Link::line_settings`] reports it. Dropping
/// one end makes the other end read EOF (and thus `LinkError::Disconnected` in a receive).
pub fn memory_pair(settings: LineSettings) -> (MemoryLink, MemoryLink) {
    let (a, b) = tokio::io::duplex(PIPE_CAPACITY);
    let cell = Arc::new(Mutex::new(settings));
    (
        MemoryLink {
            stream: a,
            settings: Arc::clone(&cell),
        },
        MemoryLink {
            stream: b,
            settings: cell,
        },
    )
}

impl AsyncRead for MemoryLink {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for MemoryLink {
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

impl Link for MemoryLink {
    fn set_line_settings(&mut self, settings: LineSettings) -> Result<(), LinkError> {
        // A poisoned lock only means another holder panicked; the value itself is a plain Copy.
        *self.settings.lock().unwrap_or_else(|p| p.into_inner()) = settings;
        Ok(())
    }

    fn line_settings(&self) -> LineSettings {
        *self.settings.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn describe(&self) -> String {
        "memory".to_string()
    }
}

//! Frame-agnostic send/receive on top of a link: byte-wise feeding with three timeouts,
//! no lost read-ahead, counters, and hex tracing of every frame on `kamstrup::frames`.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use crate::error::{is_disconnect, LinkError, TimeoutPhase};
use crate::link::Link;
use crate::{hex, FRAMES_TARGET};

/// Receive timeouts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// From the start of the receive call until the first byte.
    pub first_byte: Duration,
    /// Between two bytes once the first has arrived.
    pub inter_byte: Duration,
    /// For the whole receive call.
    pub overall: Duration,
}

impl Timeouts {
    /// Builds timeouts from their parts.
    pub const fn new(first_byte: Duration, inter_byte: Duration, overall: Duration) -> Self {
        Timeouts {
            first_byte,
            inter_byte,
            overall,
        }
    }
}

/// Counters of a [`Transceiver`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Bytes written successfully.
    pub bytes_sent: u64,
    /// Bytes read from the link (including read-ahead not yet consumed and discarded bytes).
    pub bytes_received: u64,
    /// Successful `send` calls (= frames sent).
    pub sends: u64,
}

/// Size of one read from the link; bytes beyond what a receive needs are kept for the next.
const READ_CHUNK: usize = 512;

/// Upper bound for [`Transceiver::clear_input`], so a head that streams garbage cannot hold
/// the caller.
const CLEAR_LIMIT: Duration = Duration::from_millis(3);

/// Extra time allowed for a send beyond twice the frame's wire time (USB latency, a slow
/// ser2net peer).
const SEND_SLACK: Duration = Duration::from_secs(2);

/// Owns a link and moves frames over it.
///
/// Bytes read ahead by [`Transceiver::receive`] are buffered here: do not read from
/// [`Transceiver::link_mut`] directly while that buffer may hold bytes (see
/// [`Transceiver::buffered`]).
pub struct Transceiver {
    link: Box<dyn Link>,
    pending: VecDeque<u8>,
    stats: LinkStats,
}

impl std::fmt::Debug for Transceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transceiver")
            .field("link", &self.link.describe())
            .field("pending", &self.pending.len())
            .field("stats", &self.stats)
            .finish()
    }
}

fn log_frame(direction: &str, port: &dyn Link, bytes: &[u8], outcome: &str) {
    if tracing::enabled!(target: FRAMES_TARGET, tracing::Level::DEBUG) {
        tracing::debug!(
            target: FRAMES_TARGET,
            direction,
            port = %port.describe(),
            len = bytes.len(),
            outcome,
            "{direction}{}{} {}",
            if matches!(outcome, "sent" | "complete") { "" } else { " " },
            if matches!(outcome, "sent" | "complete") { "" } else { outcome },
            if bytes.is_empty() { "(none)".to_string() } else { hex(bytes) }
        );
    }
}

impl Transceiver {
    /// Wraps a link.
    pub fn new(link: Box<dyn Link>) -> Self {
        Transceiver {
            link,
            pending: VecDeque::new(),
            stats: LinkStats::default(),
        }
    }

    /// The link.
    pub fn link(&self) -> &dyn Link {
        &*self.link
    }

    /// The link, mutably (e.g. for [`Link::set_line_settings`]).
    pub fn link_mut(&mut self) -> &mut dyn Link {
        &mut *self.link
    }

    /// Gives the link back; bytes still buffered (see [`Transceiver::buffered`]) are lost.
    pub fn into_link(self) -> Box<dyn Link> {
        self.link
    }

    /// Bytes already read from the link but not yet consumed by a receive.
    pub fn buffered(&self) -> Vec<u8> {
        self.pending.iter().copied().collect()
    }

    /// Counters since creation.
    pub fn stats(&self) -> LinkStats {
        self.stats
    }

    fn disconnected(&self) -> LinkError {
        LinkError::Disconnected {
            port: self.link.describe(),
        }
    }

    fn io_error(&self, e: std::io::Error) -> LinkError {
        if is_disconnect(&e) {
            self.disconnected()
        } else {
            LinkError::Io(e)
        }
    }

    /// Writes `bytes` and flushes. On a serial port the flush waits until the last bit has
    /// left the UART (so a baud switch may follow at once); on TCP it means handed to the
    /// kernel; on memory links, handed to the peer's buffer. Gives up with an I/O "timed out"
    /// error after twice the frame's wire time plus 2 s.
    pub async fn send(&mut self, bytes: &[u8]) -> Result<(), LinkError> {
        log_frame("TX", &*self.link, bytes, "sent");
        let limit = self
            .link
            .line_settings()
            .air_time(bytes.len())
            .saturating_mul(2)
            .saturating_add(SEND_SLACK);
        let link = &mut self.link;
        let written = tokio::time::timeout(limit, async {
            link.write_all(bytes).await?;
            link.flush().await
        })
        .await;
        match written {
            Ok(Ok(())) => {
                self.stats.bytes_sent = self.stats.bytes_sent.saturating_add(bytes.len() as u64);
                self.stats.sends = self.stats.sends.saturating_add(1);
                Ok(())
            }
            Ok(Err(e)) => Err(self.io_error(e)),
            Err(_) => Err(LinkError::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "writing {} bytes to {} did not finish within {}",
                    bytes.len(),
                    self.link.describe(),
                    crate::error::human_duration(limit)
                ),
            ))),
        }
    }

    /// Discards input that has already arrived (buffered read-ahead and whatever the link can
    /// deliver right now) without waiting for more; takes at most a few milliseconds. Returns
    /// how many bytes were discarded and logs them as "RX discarded".
    pub async fn clear_input(&mut self) -> Result<usize, LinkError> {
        let mut discarded: Vec<u8> = self.pending.drain(..).collect();
        let limit = Instant::now() + CLEAR_LIMIT;
        let mut chunk = [0u8; READ_CHUNK];
        let outcome = loop {
            // Let the runtime poll its I/O driver once, so bytes that arrived while this task
            // was busy are seen as ready; then take only what is ready without waiting.
            tokio::task::yield_now().await;
            let read = tokio::time::timeout(Duration::ZERO, self.link.read(&mut chunk)).await;
            match read {
                Err(_) => break Ok(()),
                Ok(Ok(0)) => break Err(self.disconnected()),
                Ok(Ok(n)) => {
                    self.stats.bytes_received = self.stats.bytes_received.saturating_add(n as u64);
                    discarded.extend_from_slice(chunk.get(..n).unwrap_or_default());
                }
                Ok(Err(e)) => break Err(self.io_error(e)),
            }
            if Instant::now() >= limit {
                break Ok(());
            }
        };
        if !discarded.is_empty() {
            log_frame("RX", &*self.link, &discarded, "discarded");
        }
        outcome.map(|()| discarded.len())
    }

    /// Reads bytes and hands them one by one to `feed` until it returns `Some`, which is then
    /// returned. Bytes read beyond that point stay buffered for the next call.
    ///
    /// `timeouts.first_byte` runs from the call's start until the first byte consumed,
    /// `timeouts.inter_byte` from each read that delivered bytes until the next, and
    /// `timeouts.overall` bounds the call. EOF gives [`LinkError::Disconnected`]. All bytes
    /// consumed by the call are logged as one RX line, on timeout too.
    ///
    /// Not cancel-safe: if the future is dropped midway, the bytes it had consumed are gone
    /// (bytes it had only read ahead stay buffered).
    pub async fn receive<T>(
        &mut self,
        timeouts: Timeouts,
        mut feed: impl FnMut(u8) -> Option<T>,
    ) -> Result<T, LinkError> {
        let start = Instant::now();
        let overall_deadline = start.checked_add(timeouts.overall);
        let mut last_progress = start;
        let mut consumed: Vec<u8> = Vec::new();
        let mut chunk = [0u8; READ_CHUNK];
        loop {
            while let Some(byte) = self.pending.pop_front() {
                consumed.push(byte);
                if let Some(done) = feed(byte) {
                    log_frame("RX", &*self.link, &consumed, "complete");
                    return Ok(done);
                }
            }
            let (phase, phase_limit) = if consumed.is_empty() {
                (TimeoutPhase::FirstByte, timeouts.first_byte)
            } else {
                (TimeoutPhase::InterByte, timeouts.inter_byte)
            };
            let (deadline, phase) = match (last_progress.checked_add(phase_limit), overall_deadline)
            {
                // On a tie the specific phase is the more useful diagnosis.
                (Some(p), Some(o)) if o < p => (Some(o), TimeoutPhase::Overall),
                (Some(p), _) => (Some(p), phase),
                (None, Some(o)) => (Some(o), TimeoutPhase::Overall),
                (None, None) => (None, phase),
            };
            let read = self.link.read(&mut chunk);
            let result = match deadline {
                Some(deadline) => match tokio::time::timeout_at(deadline, read).await {
                    Ok(result) => result,
                    Err(_) => {
                        let now = Instant::now();
                        let waited = match phase {
                            TimeoutPhase::Overall => now - start,
                            TimeoutPhase::FirstByte | TimeoutPhase::InterByte => {
                                now - last_progress
                            }
                        };
                        log_frame("RX", &*self.link, &consumed, phase.as_str());
                        return Err(LinkError::Timeout {
                            phase,
                            received: consumed,
                            waited,
                        });
                    }
                },
                None => read.await,
            };
            match result {
                Ok(0) => {
                    log_frame("RX", &*self.link, &consumed, "disconnected");
                    return Err(self.disconnected());
                }
                Ok(n) => {
                    self.stats.bytes_received = self.stats.bytes_received.saturating_add(n as u64);
                    self.pending
                        .extend(chunk.get(..n).unwrap_or_default().iter().copied());
                    last_progress = Instant::now();
                }
                Err(e) => {
                    log_frame("RX", &*self.link, &consumed, "error");
                    return Err(self.io_error(e));
                }
            }
        }
    }
}

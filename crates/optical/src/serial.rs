//! Local serial port (USB IR head) via tokio-serial: exclusive open with teaching errors,
//! runtime re-configuration for the 66C baud switch, and a non-blocking output drain.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_serial::{SerialPort, SerialStream};

use crate::error::LinkError;
use crate::link::Link;
use crate::settings::{DataBits, LineSettings, Parity, StopBits};

#[cfg(unix)]
use std::os::fd::OwnedFd;
#[cfg(unix)]
use std::sync::Arc;

/// A local serial port.
///
/// Opened exclusively: `TIOCEXCL` plus an exclusive `flock()` (both applied by serialport-rs)
/// so a second program cannot read the same head. `TIOCEXCL` does not stop root, the `flock()`
/// does stop every cooperating program (including another `kamstrup`, even as root).
///
/// Flushing (and so [`crate::Transceiver::send`]) waits until the UART has shifted the last
/// bit out (`tcdrain`, run on tokio's blocking pool so the runtime is not stalled). For a USB
/// adapter the kernel driver's estimate of its hardware FIFO is included. The caller of a
/// baud switch can therefore change settings right after `send` returns.
#[derive(Debug)]
pub struct SerialLink {
    stream: SerialStream,
    path: String,
    settings: LineSettings,
    /// A second descriptor on the same tty, opened before the exclusive one, for the calls
    /// tokio-serial does not expose without `unsafe` (drain, releasing exclusivity).
    #[cfg(unix)]
    control: Arc<OwnedFd>,
    #[cfg(unix)]
    drain: Option<tokio::task::JoinHandle<io::Result<()>>>,
}

fn to_serial_data_bits(d: DataBits) -> tokio_serial::DataBits {
    match d {
        DataBits::Seven => tokio_serial::DataBits::Seven,
        DataBits::Eight => tokio_serial::DataBits::Eight,
    }
}

fn to_serial_parity(p: Parity) -> tokio_serial::Parity {
    match p {
        Parity::None => tokio_serial::Parity::None,
        Parity::Even => tokio_serial::Parity::Even,
        Parity::Odd => tokio_serial::Parity::Odd,
    }
}

fn to_serial_stop_bits(s: StopBits) -> tokio_serial::StopBits {
    match s {
        StopBits::One => tokio_serial::StopBits::One,
        StopBits::Two => tokio_serial::StopBits::Two,
    }
}

fn map_serial_error(port: &str, e: tokio_serial::Error) -> LinkError {
    use tokio_serial::ErrorKind as K;
    match e.kind() {
        // serialport-rs reports both EBUSY from TIOCEXCL and a held flock() as NoDevice.
        K::NoDevice => LinkError::Busy { port: port.into() },
        K::Io(io::ErrorKind::NotFound) => LinkError::NotFound { port: port.into() },
        K::Io(io::ErrorKind::PermissionDenied) => LinkError::PermissionDenied { port: port.into() },
        K::Io(kind) => LinkError::Open {
            port: port.into(),
            source: io::Error::new(kind, e.description),
        },
        K::InvalidInput | K::Unknown => LinkError::Open {
            port: port.into(),
            source: io::Error::other(e.description),
        },
    }
}

#[cfg(unix)]
fn open_control(path: &str) -> Result<OwnedFd, LinkError> {
    use rustix::fs::{Mode, OFlags};
    use rustix::io::Errno;
    let flags = OFlags::RDWR | OFlags::NOCTTY | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let fd = rustix::fs::open(path, flags, Mode::empty()).map_err(|errno| match errno {
        Errno::NOENT | Errno::NXIO | Errno::NODEV | Errno::NOTDIR => {
            LinkError::NotFound { port: path.into() }
        }
        Errno::ACCESS | Errno::PERM | Errno::ROFS => {
            LinkError::PermissionDenied { port: path.into() }
        }
        Errno::BUSY => LinkError::Busy { port: path.into() },
        other => LinkError::Open {
            port: path.into(),
            source: other.into(),
        },
    })?;
    if !rustix::termios::isatty(&fd) {
        return Err(LinkError::Open {
            port: path.into(),
            source: io::Error::other(
                "not a serial device (not a tty); give the IR head's device, e.g. /dev/ttyUSB0",
            ),
        });
    }
    Ok(fd)
}

/// Opens a local serial port exclusively with the given settings, raw mode, no flow control.
///
/// Errors: [`LinkError::NotFound`], [`LinkError::PermissionDenied`], [`LinkError::Busy`]
/// (another program holds it), [`LinkError::Open`] (not a tty, settings rejected, …).
/// Works on a pseudo-terminal slave (tests and simulators use ptys). Must be called inside a
/// tokio runtime ([`LinkError::Unsupported`] otherwise).
pub fn open_serial(path: &str, settings: LineSettings) -> Result<SerialLink, LinkError> {
    if path.is_empty() {
        return Err(LinkError::NotFound { port: path.into() });
    }
    // tokio-serial registers the port with the reactor and would panic without one.
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(LinkError::Unsupported(
            "open_serial must be called inside a tokio runtime".into(),
        ));
    }
    // Opened first, before serialport sets TIOCEXCL, which would refuse a second open.
    #[cfg(unix)]
    let control = open_control(path)?;
    let builder = tokio_serial::new(path, settings.baud)
        .data_bits(to_serial_data_bits(settings.data_bits))
        .parity(to_serial_parity(settings.parity))
        .stop_bits(to_serial_stop_bits(settings.stop_bits))
        .flow_control(tokio_serial::FlowControl::None);
    let stream = SerialStream::open(&builder).map_err(|e| map_serial_error(path, e))?;
    tracing::debug!(port = path, %settings, "serial port opened");
    Ok(SerialLink {
        stream,
        path: path.to_string(),
        settings,
        #[cfg(unix)]
        control: Arc::new(control),
        #[cfg(unix)]
        drain: None,
    })
}

impl SerialLink {
    /// The device path as given to [`open_serial`].
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Bytes waiting in the kernel's input queue.
    pub fn bytes_to_read(&self) -> Result<u32, LinkError> {
        self.stream
            .bytes_to_read()
            .map_err(|e| map_serial_error(&self.path, e))
    }
}

impl Drop for SerialLink {
    fn drop(&mut self) {
        // TIOCEXCL lives on the tty, not on our descriptor: if anything else keeps the tty
        // open (a simulator's pty), the flag would outlive us and lock out the next opener.
        #[cfg(unix)]
        let _ = rustix::termios::ioctl_tiocnxcl(&*self.control);
    }
}

impl AsyncRead for SerialLink {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

#[cfg(unix)]
fn drain_blocking(fd: &OwnedFd) -> io::Result<()> {
    loop {
        match rustix::termios::tcdrain(fd) {
            Err(rustix::io::Errno::INTR) => continue,
            other => return other.map_err(io::Error::from),
        }
    }
}

impl AsyncWrite for SerialLink {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    /// Waits until the output has physically left the UART (`tcdrain`).
    #[cfg(unix)]
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        use std::future::Future;
        // tokio-serial's own flush runs tcdrain on the runtime thread; ours goes to the
        // blocking pool. A tty write has no user-space buffer, so draining is all flush means.
        let this = self.get_mut();
        let handle = match &mut this.drain {
            Some(handle) => handle,
            None => {
                let fd = Arc::clone(&this.control);
                let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                    return Poll::Ready(drain_blocking(&fd));
                };
                this.drain
                    .insert(runtime.spawn_blocking(move || drain_blocking(&fd)))
            }
        };
        let joined = std::task::ready!(Pin::new(handle).poll(cx));
        this.drain = None;
        Poll::Ready(joined.unwrap_or_else(|e| Err(io::Error::other(e))))
    }

    #[cfg(not(unix))]
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_flush(cx)
    }
}

impl Link for SerialLink {
    /// Reconfigures the port immediately (`TCSANOW`): pending output is not waited for, so
    /// drain first (a `send` has already drained). Input already received is kept.
    fn set_line_settings(&mut self, settings: LineSettings) -> Result<(), LinkError> {
        let path = self.path.clone();
        let map = |e| map_serial_error(&path, e);
        self.stream.set_baud_rate(settings.baud).map_err(map)?;
        self.stream
            .set_data_bits(to_serial_data_bits(settings.data_bits))
            .map_err(map)?;
        self.stream
            .set_parity(to_serial_parity(settings.parity))
            .map_err(map)?;
        self.stream
            .set_stop_bits(to_serial_stop_bits(settings.stop_bits))
            .map_err(map)?;
        self.settings = settings;
        Ok(())
    }

    fn line_settings(&self) -> LineSettings {
        self.settings
    }

    fn describe(&self) -> String {
        self.path.clone()
    }
}

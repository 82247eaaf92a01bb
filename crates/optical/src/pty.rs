//! Pseudo-terminal link for simulators: the master side of a new pty whose slave path a
//! client opens like a real IR head, surviving any number of client close/re-open cycles.

use std::path::PathBuf;

use crate::error::LinkError;
use crate::settings::LineSettings;

#[cfg(unix)]
pub use imp::PtyLink;

/// Opens a new pseudo-terminal and returns its master side plus the slave path (for example
/// `/dev/pts/5`) that a client opens with [`crate::open_serial`].
///
/// The slave starts raw, without echo, at [`LineSettings::KMP`].
pub fn open_pty() -> Result<(PtyLink, PathBuf), LinkError> {
    open_pty_with(LineSettings::KMP)
}

/// Like [`open_pty`], with the slave's initial settings given.
pub fn open_pty_with(settings: LineSettings) -> Result<(PtyLink, PathBuf), LinkError> {
    #[cfg(unix)]
    {
        imp::open(settings)
    }
    #[cfg(not(unix))]
    {
        let _ = settings;
        Err(LinkError::Unsupported(
            "pseudo-terminals exist only on Unix-like systems".into(),
        ))
    }
}

#[cfg(unix)]
mod imp {
    use std::io;
    use std::os::fd::OwnedFd;
    use std::path::PathBuf;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use rustix::fs::{Mode, OFlags};
    use rustix::pty::OpenptFlags;
    use rustix::termios::{ControlModes, OptionalActions, Termios};
    use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
    use tokio::net::unix::pipe;

    use crate::error::LinkError;
    use crate::link::Link;
    use crate::settings::{DataBits, LineSettings, Parity, StopBits};

    /// The master side of a pseudo-terminal (see [`super::open_pty`]).
    ///
    /// It keeps a descriptor of its own slave open, so the pty never hangs up (on Linux the
    /// master would otherwise read EIO whenever no client has the slave open): a client may
    /// close and re-open the slave path at will, and reads simply wait meanwhile. Bytes written
    /// while no client is connected wait in the slave's input queue for the next client (as
    /// `clear_input` on the client side discards them).
    ///
    /// [`Link::line_settings`] reads the slave's termios, so it shows what the *client* last
    /// set: the baud rate and stop bits come from the tty. Linux ptys do not store character
    /// size or parity (the kernel forces 8 bits, no parity), so those two are reported from the
    /// tty only if it shows something other than 8N, and otherwise from the last value given to
    /// [`Link::set_line_settings`] on this link (or [`super::open_pty_with`]).
    #[derive(Debug)]
    pub struct PtyLink {
        // The master registered twice with tokio (read and write halves on two descriptors of
        // the same file); tokio's pipe types poll any non-blocking character device safely.
        reader: pipe::Receiver,
        writer: pipe::Sender,
        slave: OwnedFd,
        path: PathBuf,
        settings: LineSettings,
    }

    fn pty_error(what: &str, e: impl Into<io::Error>) -> LinkError {
        LinkError::Open {
            port: "pseudo-terminal".into(),
            source: io::Error::other(format!("{what}: {}", e.into())),
        }
    }

    pub(super) fn open(settings: LineSettings) -> Result<(PtyLink, PathBuf), LinkError> {
        // Registering with tokio's reactor would panic outside a runtime.
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(LinkError::Unsupported(
                "open_pty must be called inside a tokio runtime".into(),
            ));
        }
        #[allow(unused_mut)] // CLOEXEC exists only on some systems
        let mut flags = OpenptFlags::RDWR | OpenptFlags::NOCTTY;
        // Child processes (a test spawning a client tool) must not inherit the master.
        #[cfg(any(target_os = "linux", target_os = "freebsd", target_os = "netbsd"))]
        {
            flags |= OpenptFlags::CLOEXEC;
        }
        let master = rustix::pty::openpt(flags).map_err(|e| pty_error("posix_openpt", e))?;
        rustix::pty::grantpt(&master).map_err(|e| pty_error("grantpt", e))?;
        rustix::pty::unlockpt(&master).map_err(|e| pty_error("unlockpt", e))?;
        let name =
            rustix::pty::ptsname(&master, Vec::new()).map_err(|e| pty_error("ptsname", e))?;
        let path = PathBuf::from(
            name.into_string()
                .map_err(|_| pty_error("ptsname", io::Error::other("path is not UTF-8")))?,
        );
        rustix::fs::fcntl_setfl(&master, OFlags::NONBLOCK)
            .map_err(|e| pty_error("set non-blocking", e))?;
        let slave = rustix::fs::open(
            &path,
            OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC | OFlags::NONBLOCK,
            Mode::empty(),
        )
        .map_err(|e| pty_error("open slave", e))?;
        let mut termios =
            rustix::termios::tcgetattr(&slave).map_err(|e| pty_error("tcgetattr", e))?;
        termios.make_raw();
        apply(&mut termios, settings)?;
        rustix::termios::tcsetattr(&slave, OptionalActions::Now, &termios)
            .map_err(|e| pty_error("tcsetattr", e))?;
        let write_half = master
            .try_clone()
            .map_err(|e| pty_error("duplicate master", e))?;
        let reader = pipe::Receiver::from_owned_fd_unchecked(master)
            .map_err(|e| pty_error("register with tokio", e))?;
        let writer = pipe::Sender::from_owned_fd_unchecked(write_half)
            .map_err(|e| pty_error("register with tokio", e))?;
        tracing::debug!(path = %path.display(), "pseudo-terminal opened");
        Ok((
            PtyLink {
                reader,
                writer,
                slave,
                path: path.clone(),
                settings,
            },
            path,
        ))
    }

    fn apply(termios: &mut Termios, settings: LineSettings) -> Result<(), LinkError> {
        termios
            .set_speed(settings.baud)
            .map_err(|e| pty_error("set speed", e))?;
        let mut c = termios.control_modes;
        c.remove(
            ControlModes::CSIZE
                | ControlModes::PARENB
                | ControlModes::PARODD
                | ControlModes::CSTOPB,
        );
        c.insert(ControlModes::CREAD | ControlModes::CLOCAL);
        c.insert(match settings.data_bits {
            DataBits::Seven => ControlModes::CS7,
            DataBits::Eight => ControlModes::CS8,
        });
        match settings.parity {
            Parity::None => {}
            Parity::Even => c.insert(ControlModes::PARENB),
            Parity::Odd => c.insert(ControlModes::PARENB | ControlModes::PARODD),
        }
        if settings.stop_bits == StopBits::Two {
            c.insert(ControlModes::CSTOPB);
        }
        termios.control_modes = c;
        Ok(())
    }

    impl PtyLink {
        /// The slave path clients open.
        pub fn slave_path(&self) -> &std::path::Path {
            &self.path
        }
    }

    impl AsyncRead for PtyLink {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            Pin::new(&mut self.reader).poll_read(cx, buf)
        }
    }

    impl AsyncWrite for PtyLink {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            Pin::new(&mut self.writer).poll_write(cx, buf)
        }

        fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            // The master hands bytes straight to the slave's input queue: nothing to drain.
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    impl Link for PtyLink {
        /// Applies the settings to the slave (what a client would see before it sets its own)
        /// and remembers data bits and parity for [`Link::line_settings`].
        fn set_line_settings(&mut self, settings: LineSettings) -> Result<(), LinkError> {
            let mut termios =
                rustix::termios::tcgetattr(&self.slave).map_err(|e| pty_error("tcgetattr", e))?;
            apply(&mut termios, settings)?;
            rustix::termios::tcsetattr(&self.slave, OptionalActions::Now, &termios)
                .map_err(|e| pty_error("tcsetattr", e))?;
            self.settings = settings;
            Ok(())
        }

        fn line_settings(&self) -> LineSettings {
            let Ok(termios) = rustix::termios::tcgetattr(&self.slave) else {
                return self.settings;
            };
            let c = termios.control_modes;
            let baud = termios.output_speed();
            let stop_bits = if c.contains(ControlModes::CSTOPB) {
                StopBits::Two
            } else {
                StopBits::One
            };
            let size = c & ControlModes::CSIZE;
            let tty_says_8n = size == ControlModes::CS8 && !c.contains(ControlModes::PARENB);
            let (data_bits, parity) = if tty_says_8n {
                (self.settings.data_bits, self.settings.parity)
            } else {
                let data_bits = if size == ControlModes::CS7 {
                    DataBits::Seven
                } else {
                    DataBits::Eight
                };
                let parity = if !c.contains(ControlModes::PARENB) {
                    Parity::None
                } else if c.contains(ControlModes::PARODD) {
                    Parity::Odd
                } else {
                    Parity::Even
                };
                (data_bits, parity)
            };
            LineSettings {
                baud: if baud == 0 { self.settings.baud } else { baud },
                data_bits,
                parity,
                stop_bits,
            }
        }

        fn describe(&self) -> String {
            format!("pty:{}", self.path.display())
        }
    }
}

/// Placeholder on systems without pseudo-terminals; [`open_pty`] never returns one there.
#[cfg(not(unix))]
#[derive(Debug)]
pub struct PtyLink {
    never: std::convert::Infallible,
}

#[cfg(not(unix))]
mod stub {
    use super::PtyLink;
    use crate::error::LinkError;
    use crate::link::Link;
    use crate::settings::LineSettings;
    use std::io;
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

    impl AsyncRead for PtyLink {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            match self.never {}
        }
    }
    impl AsyncWrite for PtyLink {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &[u8],
        ) -> Poll<io::Result<usize>> {
            match self.never {}
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            match self.never {}
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            match self.never {}
        }
    }
    impl Link for PtyLink {
        fn set_line_settings(&mut self, _: LineSettings) -> Result<(), LinkError> {
            match self.never {}
        }
        fn line_settings(&self) -> LineSettings {
            match self.never {}
        }
        fn describe(&self) -> String {
            match self.never {}
        }
    }
}

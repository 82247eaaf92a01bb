//! The one error type every sink returns, with a short machine-readable kind.
//! Messages name the target (a URL without credentials, a topic, a path) and never a secret.

/// Why a sink could not deliver, check or be built.
///
/// `target` is always safe to log: URLs are stripped of user info and query strings before
/// they get here, and no variant carries a token or password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    /// The peer could not be reached or the connection broke.
    #[error("{target}: cannot connect: {detail}")]
    Connect {
        /// What we tried to reach.
        target: String,
        /// What went wrong.
        detail: String,
    },
    /// The peer refused our credentials (or we sent none where some are needed).
    #[error("{target}: not authorised: {detail}")]
    Auth {
        /// What we tried to reach.
        target: String,
        /// What the peer said.
        detail: String,
    },
    /// The peer answered but refused the data (bad request, unknown device, ...).
    #[error("{target}: rejected: {detail}")]
    Rejected {
        /// What we tried to reach.
        target: String,
        /// What the peer said.
        detail: String,
    },
    /// No answer in time.
    #[error("{target}: no answer within {seconds} s")]
    Timeout {
        /// What we tried to reach.
        target: String,
        /// The limit that passed.
        seconds: u64,
    },
    /// The configuration cannot work (found when building or resolving a secret).
    #[error("configuration: {0}")]
    Config(String),
    /// A local I/O failure (file sink, stdout).
    #[error("{target}: {detail}")]
    Io {
        /// The path or stream.
        target: String,
        /// What went wrong.
        detail: String,
    },
}

impl SinkError {
    /// `"connect"`, `"auth"`, `"rejected"`, `"timeout"`, `"config"` or `"io"`.
    pub fn kind(&self) -> &'static str {
        match self {
            SinkError::Connect { .. } => "connect",
            SinkError::Auth { .. } => "auth",
            SinkError::Rejected { .. } => "rejected",
            SinkError::Timeout { .. } => "timeout",
            SinkError::Config(_) => "config",
            SinkError::Io { .. } => "io",
        }
    }

    pub(crate) fn connect(target: impl Into<String>, detail: impl Into<String>) -> Self {
        SinkError::Connect {
            target: target.into(),
            detail: detail.into(),
        }
    }

    pub(crate) fn auth(target: impl Into<String>, detail: impl Into<String>) -> Self {
        SinkError::Auth {
            target: target.into(),
            detail: detail.into(),
        }
    }

    pub(crate) fn rejected(target: impl Into<String>, detail: impl Into<String>) -> Self {
        SinkError::Rejected {
            target: target.into(),
            detail: detail.into(),
        }
    }

    pub(crate) fn timeout(target: impl Into<String>, after: std::time::Duration) -> Self {
        SinkError::Timeout {
            target: target.into(),
            seconds: after.as_secs().max(1),
        }
    }

    pub(crate) fn config(detail: impl Into<String>) -> Self {
        SinkError::Config(detail.into())
    }

    pub(crate) fn io(target: impl Into<String>, detail: impl Into<String>) -> Self {
        SinkError::Io {
            target: target.into(),
            detail: detail.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_stable() {
        assert_eq!(SinkError::connect("a", "b").kind(), "connect");
        assert_eq!(SinkError::auth("a", "b").kind(), "auth");
        assert_eq!(SinkError::rejected("a", "b").kind(), "rejected");
        assert_eq!(
            SinkError::timeout("a", std::time::Duration::from_millis(10)).kind(),
            "timeout"
        );
        assert_eq!(SinkError::config("x").kind(), "config");
        assert_eq!(SinkError::io("a", "b").kind(), "io");
        assert_eq!(
            SinkError::timeout("mqtt://h:1", std::time::Duration::from_millis(10)).to_string(),
            "mqtt://h:1: no answer within 1 s"
        );
    }
}

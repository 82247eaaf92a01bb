//! Meter drivers that join a protocol crate to an IR link and produce [`Reading`]s (KMP and the
//! MULTICAL 66C), plus a simulator that answers with the real protocol bytes, so that nothing
//! needs a meter to test.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod diagnose;
pub mod error;
pub mod kmp_driver;
pub mod kmp_logger;
pub mod kmp_logger_module;
pub mod mc66c_driver;
pub mod mc66c_logger;
pub mod mc66c_present;
pub mod mc66c_registers;
pub mod port;
pub mod sim;
pub mod units;

/// The domain types, re-exported from `kamstrup-reading`.
pub use kamstrup_reading as reading;

use std::time::Duration;

use kamstrup_optical::{Link, LinkError};

pub use diagnose::{Verdict, VerdictReport};
pub use error::MeterError;
/// The protocol types that are part of this crate's API (a log query's logger, a 66C's program).
pub use kamstrup_kmp::LoggerType;
pub use kamstrup_mc66c::ProgramNumber;
/// What a meter is opened with: the port as the user wrote it, the line settings and timeouts.
/// Re-exported so that the layers above reach links only through this crate.
pub use kamstrup_optical::{LineSettings, Timeouts};
pub use kmp_driver::{DriverStats, KmpMeter, KmpOptions};
pub use kmp_logger::{LogError, LogQuery, LogRead, LogRow, Selection};
pub use kmp_logger_module::{ModuleLogError, ModuleLogQuery, ModuleLogRead, ModuleProbe};
pub use mc66c_driver::{Mc66cMeter, Mc66cOptions, ScalingInfo, ScalingSource};
pub use mc66c_logger::{
    Mc66cLog, Mc66cLogError, Mc66cLogRead, Mc66cLogReadError, Mc66cLogRow, Mc66cNotYet,
    Mc66cSession,
};
pub use port::{PortSpec, PortTarget};
pub use reading::{MeterIdentity, Protocol, Reading, RegisterValue};
pub use sim::{sim_link, SimModel, SimOptions};

/// Why a port could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The link layer failed.
    #[error(transparent)]
    Link(#[from] LinkError),
    /// `sim:` named a model we do not simulate.
    #[error(transparent)]
    UnknownModel(#[from] sim::UnknownModel),
}

/// Opens any port a user can name: a serial device, `tcp://host:port`, or `sim:MODEL` (an
/// in-process simulated meter with the model's default behaviour, [`SimOptions::for_model`];
/// `settings` do not apply to it).
pub async fn open_port(
    spec: &PortSpec,
    settings: LineSettings,
    connect_timeout: Duration,
) -> Result<Box<dyn Link>, OpenError> {
    match spec.target() {
        PortTarget::Sim(model) => {
            let model: SimModel = model.parse()?;
            Ok(sim_link(model, SimOptions::for_model(model)))
        }
        PortTarget::Link(link) => {
            Ok(kamstrup_optical::open(&link, settings, connect_timeout).await?)
        }
    }
}

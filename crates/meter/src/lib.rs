//! Meter drivers that join a protocol crate to an IR link and produce [`Reading`]s, plus a
//! simulator that answers with the real protocol bytes so that nothing needs a meter to test.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod kmp_driver;
pub mod sim;

/// The domain types, re-exported from `kamstrup-reading`.
pub use kamstrup_reading as reading;

use std::time::Duration;

use kamstrup_optical::{LineSettings, Link, LinkError, PortSpec};

pub use kmp_driver::{DriverStats, KmpMeter, KmpOptions, MeterError};
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
/// in-process simulated meter with default behaviour).
pub async fn open_port(
    spec: &PortSpec,
    settings: LineSettings,
    connect_timeout: Duration,
) -> Result<Box<dyn Link>, OpenError> {
    match spec {
        PortSpec::Sim { model } => {
            let model: SimModel = model.parse()?;
            Ok(sim_link(model, SimOptions::default()))
        }
        other => Ok(kamstrup_optical::open(other, settings, connect_timeout).await?),
    }
}

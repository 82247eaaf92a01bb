//! MQTT plumbing shared by the MQTT-based sinks: the `[mqtt]` broker settings (`config`), TLS
//! (`tls`), and a connection task that reports a publish as done only when the broker
//! acknowledged it (`link`).

mod config;
mod link;
mod tls;

pub use config::MqttConfig;
pub(crate) use config::{qos_from, MqttSettings};
pub(crate) use link::{LinkHooks, MqttLink, NoHooks, OutMsg};

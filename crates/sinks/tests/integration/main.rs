//! Integration tests of every sink against real peers on loopback: a real MQTT broker (rumqttd
//! in a child process), and HTTP servers that follow the documented HA, Domoticz and InfluxDB
//! APIs. One test binary so that it links once.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod common;
mod domoticz;
mod domoticz_fake;
mod file;
mod ha_rest;
mod ha_statistics;
mod ha_ws_fake;
mod homeassistant;
mod influxdb;
mod mqtt_json;
mod tls;

/// Not a test: the body of the broker child process that [`common::Broker`] starts.
#[test]
#[ignore = "helper process for the MQTT tests"]
fn broker_child() {
    if let Ok(port) = std::env::var(common::BROKER_PORT_ENV) {
        common::run_broker_child(
            port.parse().unwrap(),
            std::env::var(common::BROKER_AUTH_ENV).ok(),
        );
    }
}

//! `KmpMeter` in-process against the simulator over the in-memory link: the standard set in one
//! request, the serial number, ΔT derived exactly, batches of at most 8, one retry after a lost or corrupt
//! reply, and typed errors when the meter stays silent or a register is unknown.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::time::Duration;

use kamstrup_kmp::registers::DEFAULT_SET;
use kamstrup_meter::sim::faults::FaultPlan;
use kamstrup_meter::sim::kmp_model::KmpModel;
use kamstrup_meter::{sim_link, KmpMeter, KmpOptions, SimModel, SimOptions};

fn meter(model: KmpModel, faults: &str) -> KmpMeter {
    let options = SimOptions {
        latency: Duration::from_millis(5),
        faults: FaultPlan::parse(faults, 7).unwrap(),
        ..SimOptions::default()
    };
    let link = sim_link(SimModel::Kmp(model), options);
    let mut o = KmpOptions::default();
    o.timeouts.first_byte = Duration::from_millis(300);
    KmpMeter::new(link, "sim:test", o)
}

#[tokio::test]
async fn the_standard_set_in_one_request_with_units_and_exact_delta_t() {
    let mut m = meter(KmpModel::Multical403, "");
    let r = m.read(&DEFAULT_SET, true).await.unwrap();
    assert_eq!(m.stats().requests, 2, "GetSerialNo, then one GetRegister");
    assert!(r.meter.serial.is_some());
    m.get_type().await.unwrap();
    assert_eq!(m.stats().requests, 3, "GetType is one more request");
    let names: Vec<&str> = r.registers.iter().map(|v| v.name.as_str()).collect();
    for name in [
        "heat_energy",
        "volume",
        "t1",
        "t2",
        "power",
        "flow",
        "hours",
        "info",
    ] {
        assert!(names.contains(&name), "{name} in {names:?}");
    }
    let unit = |n: &str| r.get(n).unwrap().unit.clone();
    assert_eq!(unit("heat_energy"), "GJ");
    assert_eq!(unit("volume"), "m³");
    assert_eq!(unit("t1"), "°C");
    let (t1, t2, dt) = (
        r.get("t1").unwrap().value,
        r.get("t2").unwrap().value,
        r.get("t1_t2").unwrap(),
    );
    assert!(dt.derived);
    assert!(dt.value.eq_value(&t1.checked_sub(&t2).unwrap()));
    assert!(r.missing.is_empty());
}

#[tokio::test]
async fn more_than_eight_registers_go_in_batches_of_eight() {
    let mut m = meter(KmpModel::Multical603, "");
    let ids: Vec<u16> = DEFAULT_SET.iter().copied().chain([1003, 1002]).collect();
    let r = m.read(&ids, false).await.unwrap();
    assert_eq!(m.stats().requests, 2);
    assert!(r.registers.len() >= 10, "{:?}", r.registers);
}

#[tokio::test]
async fn a_lost_or_corrupt_reply_is_retried_once() {
    for fault in ["drop@1", "corrupt@1"] {
        let mut m = meter(KmpModel::Multical403, fault);
        let r = m.read(&DEFAULT_SET, false).await.unwrap();
        assert_eq!((m.stats().requests, m.stats().retries), (2, 1), "{fault}");
        assert!(r.get("heat_energy").is_some());
    }
}

#[tokio::test]
async fn a_silent_meter_is_a_timeout_after_one_retry() {
    let mut m = meter(KmpModel::Multical403, "drop");
    let err = m.read(&DEFAULT_SET, false).await.unwrap_err();
    assert_eq!(err.kind(), "timeout");
    assert_eq!(m.stats().requests, 2);
}

#[tokio::test]
async fn a_register_the_meter_does_not_have_is_reported_missing() {
    let mut m = meter(KmpModel::Multical402, "");
    let r = m.read(&[60, 0x7FFE], false).await.unwrap();
    assert!(r.get("heat_energy").is_some());
    assert_eq!(r.missing, [0x7FFE]);
}

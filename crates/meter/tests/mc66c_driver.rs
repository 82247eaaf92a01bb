//! The MULTICAL 66C driver against the simulated 66C on an in-memory link, in real time: the
//! baud switch is visible to the simulator through the shared line settings.

#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

use std::time::{Duration, Instant};

use kamstrup_mc66c::{DataSet, ProgramNumber, Provenance, Record, Reply, StandardData1};
use kamstrup_meter::sim::{sim_link, FaultPlan, Mc66cModel, SimModel, SimOptions};
use kamstrup_meter::{Mc66cMeter, Mc66cOptions, MeterError, Protocol, ScalingSource};
use kamstrup_optical::{memory_pair, LineSettings, Link, Timeouts, Transceiver};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn model(program: &str) -> SimModel {
    SimModel::Mc66c(Mc66cModel::new(program.parse().unwrap()))
}

/// A quick simulator: real request air time, 150 ms latency, unpaced reply.
fn quick(faults: &str) -> SimOptions {
    SimOptions {
        pace: false,
        latency: Duration::from_millis(150),
        faults: FaultPlan::parse(faults, 1).unwrap(),
        ..SimOptions::for_model(model("4-2-119"))
    }
    .with_no_jitter()
}

trait NoJitter {
    fn with_no_jitter(self) -> Self;
}

impl NoJitter for SimOptions {
    fn with_no_jitter(mut self) -> Self {
        self.latency_jitter = Duration::ZERO;
        self
    }
}

fn fast_options() -> Mc66cOptions {
    Mc66cOptions {
        retry_interval: Duration::from_millis(100),
        reply_deadline: Duration::from_millis(1500),
        multiline_idle: Duration::from_millis(250),
        ..Mc66cOptions::default()
    }
}

fn meter(program: &str, sim: SimOptions, options: Mc66cOptions) -> Mc66cMeter {
    Mc66cMeter::new(sim_link(model(program), sim), "sim:multical-66c", options)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_all_ten_fields_with_units_paced() {
    let sim = SimOptions {
        latency: Duration::from_millis(300),
        ..SimOptions::for_model(model("4-2-119"))
    }
    .with_no_jitter();
    let mut m = meter("4-2-119", sim, fast_options());
    let reading = m.read_standard().await.unwrap();
    assert_eq!(reading.meter.protocol, Protocol::Mc66c);
    assert_eq!(reading.meter.serial, Some(Mc66cModel::CUSTOMER_NO));
    let names: Vec<&str> = reading.registers.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "heat_energy",
            "volume",
            "hours",
            "t1",
            "t2",
            "t1_t2",
            "power",
            "flow",
            "peak_power",
            "info"
        ]
    );
    let ids: Vec<u16> = reading.registers.iter().map(|r| r.id).collect();
    assert_eq!(ids, [60, 68, 1004, 86, 87, 89, 80, 74, 143, 99]);
    let units: Vec<&str> = reading.registers.iter().map(|r| r.unit.as_str()).collect();
    assert_eq!(
        units,
        ["GJ", "m³", "h", "°C", "°C", "K", "kW", "l/h", "kW", ""]
    );
    let energy = reading.get("heat_energy").unwrap();
    assert_eq!(
        energy.value.exponent(),
        -2,
        "GJ with 2 decimals for CCC 119"
    );
    let t1 = reading.get("t1").unwrap().value;
    let t2 = reading.get("t2").unwrap().value;
    let dt = reading.get("t1_t2").unwrap();
    assert!(!dt.derived, "the 66C sends ΔT itself");
    assert!(dt.value.eq_value(&t1.checked_sub(&t2).unwrap()));
    let info = m.scaling_info().unwrap();
    assert_eq!(info.source, ScalingSource::Standard2);
    assert_eq!(info.program, Some("4-2-119".parse().unwrap()));
    assert!(reading
        .meter
        .meter_type
        .as_deref()
        .unwrap()
        .contains("program 4-2-119 (read with /#2)"));
    let stats = m.stats();
    assert_eq!((stats.requests, stats.retries), (2, 0), "/#1 then /#2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_given_program_needs_one_request() {
    let options = Mc66cOptions {
        program: Some("4-4-119".parse().unwrap()),
        identify: false,
        ..fast_options()
    };
    let mut m = meter("4-4-119", quick(""), options);
    let reading = m.read_standard().await.unwrap();
    assert_eq!(m.stats().requests, 1);
    assert_eq!(reading.meter.serial, None);
    let energy = reading.get("heat_energy").unwrap();
    assert_eq!((energy.unit.as_str(), energy.value.exponent()), ("MWh", -3));
    assert_eq!(m.scaling_info().unwrap().source, ScalingSource::Configured);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_baud_switch_is_timed_from_the_request_not_a_fixed_sleep() {
    // 3 chars at 300 7E2 = 110 ms on the wire; the reply must be complete soon after
    // 110 ms + latency + 81 chars at 1200 7E1 (675 ms).
    let sim = SimOptions {
        latency: Duration::from_millis(300),
        ..SimOptions::for_model(model("4-2-119"))
    }
    .with_no_jitter();
    let options = Mc66cOptions {
        program: Some("4-2-119".parse().unwrap()),
        identify: false,
        ..fast_options()
    };
    let mut m = meter("4-2-119", sim, options);
    let started = Instant::now();
    m.read_standard().await.unwrap();
    let wall = started.elapsed();
    let bound = Duration::from_millis(110 + 300 + 675);
    assert!(wall >= bound, "{wall:?}");
    // Far below the 1 s a fixed sleep would cost; the slack is for a loaded test machine.
    assert!(wall < bound + Duration::from_millis(400), "{wall:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_switches_late_gets_garbage() {
    // The seed scripts' way against a 300 ms meter: request, sleep 1 s, switch, read.
    let sim = SimOptions {
        latency: Duration::from_millis(300),
        ..SimOptions::for_model(model("4-2-119"))
    }
    .with_no_jitter();
    let mut tx = Transceiver::new(sim_link(model("4-2-119"), sim));
    tx.link_mut()
        .set_line_settings(LineSettings::MC66C_REQUEST)
        .unwrap();
    tx.send(b"/#1").await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    tx.link_mut()
        .set_line_settings(LineSettings::MC66C_REPLY)
        .unwrap();
    let dropped = tx.clear_input().await.unwrap();
    let mut line = Vec::new();
    let t = Timeouts::new(
        Duration::from_secs(2),
        Duration::from_millis(300),
        Duration::from_secs(2),
    );
    tx.receive(t, |b| {
        line.push(b);
        (b == b'\r').then_some(())
    })
    .await
    .unwrap();
    assert!(dropped > 0, "garbage arrived before the switch");
    assert!(line.len() < 30, "only the tail: {line:?}");
    let e = StandardData1::parse(&line).unwrap_err();
    assert_eq!(e.kind(), "fields", "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_baud_is_rejected_then_the_retry_succeeds() {
    let mut m = meter("4-2-119", quick("late-baud@1"), fast_options());
    let started = Instant::now();
    let reading = m.read_standard().await.unwrap();
    assert_eq!(reading.registers.len(), 10);
    assert_eq!(m.stats().retries, 1);
    assert!(
        started.elapsed() >= Duration::from_millis(100),
        "retry spacing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_late_baud_fails_with_a_typed_error() {
    let options = Mc66cOptions {
        retries: 2,
        program: Some("4-2-119".parse().unwrap()),
        ..fast_options()
    };
    let mut m = meter("4-2-119", quick("late-baud"), options);
    let started = Instant::now();
    let e = m.read_standard().await.unwrap_err();
    assert!(
        matches!(e, MeterError::Mc66cReply { attempts: 3, .. }),
        "{e:?}"
    );
    assert!(
        ["field-format", "fields", "garbage-prefix"].contains(&e.kind()),
        "{}",
        e.kind()
    );
    let text = e.to_string();
    assert!(text.contains("1200 Bd too late"), "{text}");
    assert!(text.contains("to /#1 (3 attempts)"), "{text}");
    // Three requests, each retry at least 100 ms after the previous request.
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(m.stats().requests, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silence_is_a_timeout_with_advice() {
    let options = Mc66cOptions {
        retries: 1,
        reply_deadline: Duration::from_millis(400),
        ..fast_options()
    };
    let mut m = meter("4-2-119", quick("drop"), options);
    let e = m.read_standard().await.unwrap_err();
    assert_eq!(e.kind(), "timeout");
    let text = e.to_string();
    assert!(text.contains("0.3–2 s after the request"), "{text}");
    assert!(text.contains("maximum"), "{text}");
    assert!(text.contains("2 attempts"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_flow_meter_code_falls_back_to_the_119_family() {
    let mut m = meter("4-4-999", quick(""), fast_options());
    let reading = m.read_standard().await.unwrap();
    let info = m.scaling_info().unwrap();
    assert_eq!(info.scaling.provenance, Provenance::Fallback);
    assert!(reading
        .meter
        .meter_type
        .as_deref()
        .unwrap()
        .contains("CCC-119 family"));
    assert_eq!(reading.get("heat_energy").unwrap().unit, "MWh");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_energy_digit_is_a_program_error() {
    let options = Mc66cOptions {
        program: Some(ProgramNumber::new(4, 7, 119).unwrap()),
        ..fast_options()
    };
    let mut m = meter("4-2-119", quick(""), options);
    let e = m.read_standard().await.unwrap_err();
    assert_eq!(e.kind(), "energy-unit", "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_2_and_d_the_readout_gives_the_decimals() {
    // Replies: 1 = /#1, 2 = /#2 (dropped, no retry), 3 = /#D (dropped), 4 = readout.
    let options = Mc66cOptions {
        retries: 0,
        reply_deadline: Duration::from_millis(500),
        ..fast_options()
    };
    let mut m = meter("4-4-119", quick("drop@2,drop@3"), options);
    let reading = m.read_standard().await.unwrap();
    let info = m.scaling_info().unwrap();
    assert_eq!(info.source, ScalingSource::Readout);
    let energy = reading.get("heat_energy").unwrap();
    assert_eq!((energy.unit.as_str(), energy.value.exponent()), ("MWh", -3));
    assert_eq!(reading.meter.serial, Some(Mc66cModel::CUSTOMER_NO));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_data_set_and_the_readout_answer() {
    let mut m = meter("4-2-119", quick(""), fast_options());
    for d in DataSet::ALL {
        let got = m
            .read_data_set(d)
            .await
            .unwrap_or_else(|e| panic!("{d}: {e}"));
        assert_eq!(got.data_set, d);
        if d == DataSet::Standard2 {
            assert!(matches!(got.reply, Reply::Standard2(_)));
        }
    }
    let readout = m.readout().await.unwrap();
    assert_eq!(readout.ident, "KAM MC");
    assert_eq!(readout.energy.unwrap().unit.unwrap().as_str(), "GJ");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminators_and_echo_are_handled() {
    for terminator in [
        kamstrup_mc66c::Terminator::Cr,
        kamstrup_mc66c::Terminator::CrLf,
    ] {
        let sim = SimOptions {
            echo: true,
            ..quick("")
        };
        let options = Mc66cOptions {
            terminator,
            program: Some("4-2-119".parse().unwrap()),
            ..fast_options()
        };
        let mut m = meter("4-2-119", sim, options);
        m.read_standard().await.unwrap();
    }
}

/// A meter that waits for the ACK after its identification line (as MULTICAL III does).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readout_acknowledges_when_no_stx_follows() {
    let (host, mut peer) = memory_pair(LineSettings::MC66C_REQUEST);
    let frame = b"/KAM MC\r\n\x020.0(00000000040)\r\n6.8(00000.00*MWh)\r\n6.26(000000.0*m3)\r\n6.31(0053189*h)!\r\n\x03\x0e";
    let meter_side = tokio::spawn(async move {
        let mut got = Vec::new();
        let mut buf = [0u8; 64];
        while !got.ends_with(b"/?!\r\n") {
            let n = peer.read(&mut buf).await.unwrap();
            got.extend_from_slice(&buf[..n]);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        peer.write_all(&frame[..9]).await.unwrap();
        let mut ack = Vec::new();
        while !ack.ends_with(b"\x06000\r\n") {
            let n = peer.read(&mut buf).await.unwrap();
            ack.extend_from_slice(&buf[..n]);
        }
        // The ACK goes out at 7E2; the reader is back at 7E1 one ACK air time (257 ms) later.
        assert_eq!(peer.line_settings().stop_bits.count(), 2, "ACK sent at 7E2");
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(peer.line_settings().stop_bits.count(), 1, "back to 7E1");
        peer.write_all(&frame[9..]).await.unwrap();
        peer
    });
    let options = Mc66cOptions {
        readout_ack_wait: Duration::from_millis(200),
        ..fast_options()
    };
    let mut m = Mc66cMeter::new(Box::new(host), "memory", options);
    let readout = m.readout().await.unwrap();
    assert_eq!(readout.customer_no.as_deref(), Some("00000000040"));
    assert_eq!(readout.hours.unwrap().value.to_string(), "53189");
    assert_eq!(m.customer_no(), Some(40));
    let _peer = meter_side.await.unwrap();
}

/// A 66C whose clock is behind this host's, asked for `/#7` to end a gap at the hour just
/// begun: its clock has not passed that hour, so the session stops after `/#D` with the time to
/// come back (one short data set, not ~11 min of a logger that lacks the line). Asked to end
/// the hour before, which its clock has passed, it reads `/#7`, whose newest line ends there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clock_behind_the_hour_defers_the_hour_logger_read() {
    use chrono::{DateTime, Utc};
    use kamstrup_meter::{Mc66cLog, Mc66cSession};
    let now = Utc::now().timestamp();
    let hour = DateTime::from_timestamp(now.div_euclid(3600) * 3600, 0).unwrap();
    // The meter shows 40 s before the hour this host is in began.
    let behind = chrono::Duration::seconds(now.rem_euclid(3600) + 40);
    let sim = SimOptions {
        mc66c_clock_offset: -behind,
        ..quick("")
    };
    let options = Mc66cOptions {
        program: Some("4-2-119".parse().unwrap()),
        ..fast_options()
    };
    let mut m = meter("4-2-119", sim, options);
    let session = m
        .read_counter_logs_through(&[Mc66cLog::Hour], 0, Some(hour))
        .await
        .unwrap();
    let Mc66cSession::NotYet(wait) = session else {
        panic!("read although the meter's clock is before {hour}: {session:?}")
    };
    assert!(
        (wait.clock_offset_s + behind.num_seconds()).abs() <= 2,
        "{wait:?}, behind {behind}"
    );
    let due = hour + behind + chrono::Duration::seconds(10);
    assert!(
        (wait.due - due).num_seconds().abs() <= 2,
        "{wait:?}: due {due}"
    );
    assert_eq!(wait.requests, 1, "/#D only: {wait:?}");
    assert!(wait.bytes < 200, "{wait:?}");

    let hour_before = hour - chrono::Duration::hours(1);
    let session = m
        .read_counter_logs_through(&[Mc66cLog::Hour], 0, Some(hour_before))
        .await
        .unwrap();
    let Mc66cSession::Read(read) = session else {
        panic!("not read although the meter's clock passed {hour_before}: {session:?}")
    };
    assert_eq!(read.data_sets, ["/#D", "/#5", "/#7"]);
    let rows = &read.logs[0].1;
    assert_eq!(rows.last().unwrap().utc, hour_before, "the newest line");
}

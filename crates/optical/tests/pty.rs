//! Real pseudo-terminals: a simulator side from `open_pty`, a client side from `open_serial`
//! on the slave path; exchange both ways, reconnects, exclusivity, errors and settings.

use std::time::Duration;

use kamstrup_optical::{
    open_pty, open_serial, DataBits, LineSettings, Link, LinkError, Parity, StopBits, Timeouts,
    Transceiver,
};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[allow(clippy::unwrap_used)] // a test helper, outside #[test] for clippy
async fn frame(trx: &mut Transceiver) -> Vec<u8> {
    let mut buf = Vec::new();
    trx.receive(Timeouts::new(ms(2000), ms(500), ms(5000)), |b| {
        buf.push(b);
        (b == b'\r').then(|| std::mem::take(&mut buf))
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn exchange_and_reconnect() {
    let (pty, path) = open_pty().unwrap();
    let path = path.to_str().unwrap().to_string();
    assert!(path.starts_with("/dev/pts/"), "{path}");
    assert_eq!(pty.describe(), format!("pty:{path}"));
    let mut meter = Transceiver::new(Box::new(pty));

    for round in 0..3u8 {
        let client = open_serial(&path, LineSettings::KMP).unwrap();
        assert_eq!(client.describe(), path);
        let mut host = Transceiver::new(Box::new(client));
        // Bytes the meter wrote while nobody listened may wait for the new client.
        host.clear_input().await.unwrap();
        // Every byte value passes unchanged (raw mode: no CR/LF mapping, no echo, no signals).
        let mut request: Vec<u8> = (0u8..=255).filter(|b| *b != b'\r').collect();
        request.push(round);
        request.push(b'\r');
        host.send(&request).await.unwrap();
        assert_eq!(frame(&mut meter).await, request, "round {round}");
        meter.send(b"\x40reply\x03\r").await.unwrap();
        assert_eq!(frame(&mut host).await, b"\x40reply\x03\r");
        // No echo of our own request came back.
        assert_eq!(host.clear_input().await.unwrap(), 0);
        drop(host);
    }
    // Written while no client is connected: waits in the slave's queue, discarded on connect.
    meter.send(b"late reply\r").await.unwrap();
    let mut host = Transceiver::new(Box::new(open_serial(&path, LineSettings::KMP).unwrap()));
    tokio::time::sleep(ms(10)).await;
    assert_eq!(host.clear_input().await.unwrap(), 11);
}

#[tokio::test]
async fn simulator_sees_the_clients_baud_switch() {
    let (pty, path) = open_pty().unwrap();
    let path = path.to_str().unwrap().to_string();
    let mut client = open_serial(&path, LineSettings::MC66C_REQUEST).unwrap();
    let seen = pty.line_settings();
    assert_eq!((seen.baud, seen.stop_bits), (300, StopBits::Two), "{seen}");
    client.set_line_settings(LineSettings::MC66C_REPLY).unwrap();
    assert_eq!(client.line_settings(), LineSettings::MC66C_REPLY);
    let seen = pty.line_settings();
    assert_eq!((seen.baud, seen.stop_bits), (1200, StopBits::One), "{seen}");
    client.set_line_settings(LineSettings::KMP).unwrap();
    let seen = pty.line_settings();
    assert_eq!(seen, LineSettings::KMP, "{seen}");
    let odd = LineSettings::new(9600, DataBits::Eight, Parity::None, StopBits::One);
    client.set_line_settings(odd).unwrap();
    assert_eq!(pty.line_settings(), odd);
}

#[tokio::test]
async fn simulator_side_settings() {
    let (mut pty, _path) = open_pty().unwrap();
    assert_eq!(pty.line_settings(), LineSettings::KMP);
    pty.set_line_settings(LineSettings::MC66C_REQUEST).unwrap();
    assert_eq!(pty.line_settings(), LineSettings::MC66C_REQUEST);
}

#[tokio::test]
async fn baud_switch_round_trip_with_drain() {
    // The 66C sequence: request at 300 7E2, drain, switch to 1200 7E1, read the reply.
    let (pty, path) = open_pty().unwrap();
    let mut meter = Transceiver::new(Box::new(pty));
    let client = open_serial(path.to_str().unwrap(), LineSettings::MC66C_REQUEST).unwrap();
    let mut host = Transceiver::new(Box::new(client));
    host.send(b"/#1\r").await.unwrap();
    host.link_mut()
        .set_line_settings(LineSettings::MC66C_REPLY)
        .unwrap();
    assert_eq!(frame(&mut meter).await, b"/#1\r");
    assert_eq!(meter.link().line_settings().baud, 1200);
    meter.send(b"0000001 0000002 \r").await.unwrap();
    assert_eq!(frame(&mut host).await, b"0000001 0000002 \r");
}

#[tokio::test]
async fn second_open_is_busy_until_the_first_closes() {
    let (_pty, path) = open_pty().unwrap();
    let path = path.to_str().unwrap().to_string();
    let first = open_serial(&path, LineSettings::KMP).unwrap();
    // As root TIOCEXCL does not stop the second open; the exclusive flock() does.
    let err = open_serial(&path, LineSettings::KMP).unwrap_err();
    assert!(matches!(err, LinkError::Busy { .. }), "{err:?}");
    assert_eq!(err.kind(), "busy");
    assert!(
        err.to_string().contains("in use by another program"),
        "{err}"
    );
    drop(first);
    let again = open_serial(&path, LineSettings::KMP).unwrap();
    drop(again);
}

#[tokio::test]
async fn missing_port_is_not_found() {
    let err = open_serial("/dev/ttyKAMSTRUP-NOPE", LineSettings::KMP).unwrap_err();
    assert!(matches!(err, LinkError::NotFound { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "serial port /dev/ttyKAMSTRUP-NOPE not found: is the IR head plugged in? Stable names are under /dev/serial/by-id/"
    );
    let err = open_serial("", LineSettings::KMP).unwrap_err();
    assert_eq!(err.kind(), "not-found");
}

#[tokio::test]
async fn a_regular_file_is_not_a_serial_port() {
    let file = std::env::temp_dir().join(format!("kamstrup-optical-{}", std::process::id()));
    std::fs::write(&file, b"x").unwrap();
    let err = open_serial(file.to_str().unwrap(), LineSettings::KMP).unwrap_err();
    std::fs::remove_file(&file).unwrap();
    assert_eq!(err.kind(), "open", "{err}");
    assert!(err.to_string().contains("not a tty"), "{err}");
}

#[tokio::test]
async fn pty_latency_is_small() {
    let (pty, path) = open_pty().unwrap();
    let mut meter = Transceiver::new(Box::new(pty));
    let mut host = Transceiver::new(Box::new(
        open_serial(path.to_str().unwrap(), LineSettings::KMP).unwrap(),
    ));
    let mut worst = Duration::ZERO;
    for _ in 0..20 {
        let start = std::time::Instant::now();
        host.send(b"ping\r").await.unwrap();
        frame(&mut meter).await;
        meter.send(b"pong\r").await.unwrap();
        frame(&mut host).await;
        worst = worst.max(start.elapsed());
    }
    assert!(worst < ms(50), "round trip took {worst:?}");
}

#[test]
fn outside_a_runtime_is_an_error_not_a_panic() {
    let err = open_serial("/dev/null", LineSettings::KMP).unwrap_err();
    assert_eq!(err.kind(), "unsupported", "{err}");
    let err = open_pty().err().unwrap();
    assert_eq!(err.kind(), "unsupported", "{err}");
}

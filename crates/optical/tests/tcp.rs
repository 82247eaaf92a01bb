//! TCP links against a real loopback listener: connect, exchange through a transceiver,
//! the server side via `from_stream`, `open()` dispatch, and connect errors.

use std::time::Duration;

use kamstrup_optical::{
    connect_tcp, open, LineSettings, Link, LinkError, LinkSpec, TcpLink, Timeouts, Transceiver,
};
use tokio::net::TcpListener;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[allow(clippy::unwrap_used)] // a test helper, outside #[test] for clippy
async fn frame(trx: &mut Transceiver) -> Vec<u8> {
    let mut buf = Vec::new();
    trx.receive(Timeouts::new(ms(2000), ms(500), ms(5000)), |b| {
        buf.push(b);
        (b == 0x0D).then(|| std::mem::take(&mut buf))
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn loopback_exchange() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let link = TcpLink::from_stream(stream, LineSettings::KMP);
        assert!(link.describe().starts_with("tcp://127.0.0.1:"));
        assert!(link.stream().nodelay().unwrap());
        let mut meter = Transceiver::new(Box::new(link));
        let request = frame(&mut meter).await;
        assert_eq!(request, [0x80, 0x3F, 0x01, 0x05, 0x8A, 0x0D]);
        meter.send(&[0x40, 0x3F, 0x01, 0x0D]).await.unwrap();
        meter
    });
    let mut link = connect_tcp("127.0.0.1", port, LineSettings::KMP, ms(2000))
        .await
        .unwrap();
    assert_eq!(link.describe(), format!("tcp://127.0.0.1:{port}"));
    assert!(link.stream().nodelay().unwrap());
    // The ser2net side is fixed: settings are only remembered.
    link.set_line_settings(LineSettings::MC66C_REPLY).unwrap();
    assert_eq!(link.line_settings(), LineSettings::MC66C_REPLY);
    let mut host = Transceiver::new(Box::new(link));
    host.send(&[0x80, 0x3F, 0x01, 0x05, 0x8A, 0x0D])
        .await
        .unwrap();
    assert_eq!(frame(&mut host).await, [0x40, 0x3F, 0x01, 0x0D]);
    let meter = server.await.unwrap();
    assert_eq!(meter.stats().bytes_received, 6);
    assert_eq!(host.stats().sends, 1);

    // The server hanging up shows as Disconnected, not as a timeout.
    drop(meter);
    let err = host
        .receive(Timeouts::new(ms(2000), ms(500), ms(5000)), |_| Some(()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "disconnected", "{err}");
}

#[tokio::test]
async fn clear_input_sees_bytes_that_already_arrived() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let link = connect_tcp("127.0.0.1", port, LineSettings::KMP, ms(2000))
        .await
        .unwrap();
    let (stream, _) = listener.accept().await.unwrap();
    let mut peer = Transceiver::new(Box::new(TcpLink::from_stream(stream, LineSettings::KMP)));
    let mut host = Transceiver::new(Box::new(link));
    peer.send(b"stale echo\r").await.unwrap();
    tokio::time::sleep(ms(20)).await;
    assert_eq!(host.clear_input().await.unwrap(), 11);
    assert_eq!(host.clear_input().await.unwrap(), 0);
}

#[tokio::test]
async fn open_dispatches_on_the_spec() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let spec: LinkSpec = format!("socket://127.0.0.1:{port}").parse().unwrap();
    let link = open(&spec, LineSettings::KMP, ms(2000)).await.unwrap();
    assert_eq!(link.describe(), format!("tcp://127.0.0.1:{port}"));

    let missing: LinkSpec = "/dev/kamstrup-does-not-exist".parse().unwrap();
    let err = open(&missing, LineSettings::KMP, ms(100))
        .await
        .err()
        .unwrap();
    assert!(matches!(err, LinkError::NotFound { .. }), "{err}");
}

#[tokio::test]
async fn refused_connection_is_a_connect_error() {
    // Bind then drop to get a port nobody listens on.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap().port()
    };
    let err = connect_tcp("127.0.0.1", port, LineSettings::KMP, ms(2000))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "connect");
    assert!(
        err.to_string()
            .starts_with(&format!("cannot connect to tcp://127.0.0.1:{port}")),
        "{err}"
    );
}

#[tokio::test]
async fn unresolvable_host_is_a_connect_error() {
    let err = connect_tcp("no-such-host.invalid", 4001, LineSettings::KMP, ms(3000))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "connect", "{err}");
}

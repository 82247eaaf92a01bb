//! In-memory link pair and the transceiver on top of it: round trips, shared line settings,
//! the three receive timeouts (tokio's paused clock), read-ahead kept, clear_input.

use std::time::Duration;

use kamstrup_optical::{
    memory_pair, LineSettings, Link, LinkError, LinkStats, TimeoutPhase, Timeouts, Transceiver,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

fn until_cr(buf: &mut Vec<u8>) -> impl FnMut(u8) -> Option<Vec<u8>> + '_ {
    move |b| {
        buf.push(b);
        (b == b'\r').then(|| std::mem::take(buf))
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[tokio::test]
async fn round_trip_both_ways() {
    let (mut a, mut b) = memory_pair(LineSettings::KMP);
    a.write_all(b"hello").await.unwrap();
    let mut got = [0u8; 5];
    b.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"hello");
    b.write_all(&[0x40, 0x3F, 0x0D]).await.unwrap();
    let mut got = [0u8; 3];
    a.read_exact(&mut got).await.unwrap();
    assert_eq!(got, [0x40, 0x3F, 0x0D]);
    assert_eq!(a.describe(), "memory");
}

#[tokio::test]
async fn line_settings_are_shared_like_a_wire() {
    let (mut host, meter) = memory_pair(LineSettings::MC66C_REQUEST);
    assert_eq!(meter.line_settings(), LineSettings::MC66C_REQUEST);
    host.set_line_settings(LineSettings::MC66C_REPLY).unwrap();
    assert_eq!(meter.line_settings(), LineSettings::MC66C_REPLY);
    assert_eq!(host.line_settings(), LineSettings::MC66C_REPLY);
    // Through a boxed transceiver too.
    let mut trx = Transceiver::new(Box::new(host));
    trx.link_mut()
        .set_line_settings(LineSettings::MC66C_REQUEST)
        .unwrap();
    assert_eq!(meter.line_settings(), LineSettings::MC66C_REQUEST);
    assert_eq!(trx.link().line_settings(), LineSettings::MC66C_REQUEST);
}

#[tokio::test(start_paused = true)]
async fn first_byte_timeout() {
    let (host, _meter) = memory_pair(LineSettings::KMP);
    let mut trx = Transceiver::new(Box::new(host));
    let t = Timeouts::new(ms(50), ms(20), ms(1000));
    let start = Instant::now();
    let mut buf = Vec::new();
    let err = trx.receive(t, until_cr(&mut buf)).await.unwrap_err();
    match &err {
        LinkError::Timeout {
            phase: TimeoutPhase::FirstByte,
            received,
            waited,
        } => {
            assert!(received.is_empty());
            assert_eq!(*waited, ms(50));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(start.elapsed(), ms(50));
    assert_eq!(err.to_string(), "no byte within 50 ms");
}

#[tokio::test(start_paused = true)]
async fn inter_byte_timeout_keeps_what_arrived() {
    let (host, mut meter) = memory_pair(LineSettings::KMP);
    let mut trx = Transceiver::new(Box::new(host));
    let peer = tokio::spawn(async move {
        tokio::time::sleep(ms(30)).await;
        meter.write_all(b"abc").await.unwrap();
        tokio::time::sleep(ms(500)).await;
        meter
    });
    let t = Timeouts::new(ms(100), ms(40), ms(1000));
    let start = Instant::now();
    let mut buf = Vec::new();
    let err = trx.receive(t, until_cr(&mut buf)).await.unwrap_err();
    match &err {
        LinkError::Timeout {
            phase: TimeoutPhase::InterByte,
            received,
            waited,
        } => {
            assert_eq!(received, b"abc");
            assert_eq!(*waited, ms(40));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(start.elapsed(), ms(70));
    assert!(err.to_string().starts_with("reply stopped after 3 bytes"));
    drop(peer);
}

#[tokio::test(start_paused = true)]
async fn overall_timeout_on_a_trickle() {
    let (host, mut meter) = memory_pair(LineSettings::KMP);
    let mut trx = Transceiver::new(Box::new(host));
    let peer = tokio::spawn(async move {
        loop {
            tokio::time::sleep(ms(30)).await;
            if meter.write_all(b"x").await.is_err() {
                break;
            }
        }
    });
    let t = Timeouts::new(ms(50), ms(50), ms(200));
    let start = Instant::now();
    let mut buf = Vec::new();
    let err = trx.receive(t, until_cr(&mut buf)).await.unwrap_err();
    match &err {
        LinkError::Timeout {
            phase: TimeoutPhase::Overall,
            received,
            waited,
        } => {
            assert_eq!(received.len(), 6, "bytes at 30, 60, ..., 180 ms");
            assert_eq!(*waited, ms(200));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(start.elapsed(), ms(200));
    peer.abort();
}

#[tokio::test(start_paused = true)]
async fn overall_shorter_than_first_byte_reports_overall() {
    let (host, _meter) = memory_pair(LineSettings::KMP);
    let mut trx = Transceiver::new(Box::new(host));
    let t = Timeouts::new(ms(500), ms(50), ms(100));
    let err = trx.receive(t, |_| Some(())).await.unwrap_err();
    assert!(matches!(
        err,
        LinkError::Timeout {
            phase: TimeoutPhase::Overall,
            ..
        }
    ));
}

#[tokio::test(start_paused = true)]
async fn huge_timeouts_do_not_overflow() {
    let (host, mut meter) = memory_pair(LineSettings::KMP);
    let mut trx = Transceiver::new(Box::new(host));
    meter.write_all(b"ok\r").await.unwrap();
    let t = Timeouts::new(Duration::MAX, Duration::MAX, Duration::MAX);
    let mut buf = Vec::new();
    assert_eq!(trx.receive(t, until_cr(&mut buf)).await.unwrap(), b"ok\r");
}

#[tokio::test(start_paused = true)]
async fn read_ahead_is_kept_for_the_next_receive() {
    let (host, mut meter) = memory_pair(LineSettings::KMP);
    let mut trx = Transceiver::new(Box::new(host));
    // Both frames arrive in one chunk; the first receive must not swallow the second.
    meter.write_all(b"AB\rCD\rE").await.unwrap();
    let t = Timeouts::new(ms(100), ms(100), ms(1000));
    let mut buf = Vec::new();
    assert_eq!(trx.receive(t, until_cr(&mut buf)).await.unwrap(), b"AB\r");
    assert_eq!(trx.buffered(), b"CD\rE");
    assert_eq!(trx.receive(t, until_cr(&mut buf)).await.unwrap(), b"CD\r");
    // "E" is read-ahead; the rest of the frame arrives later.
    let later = tokio::spawn(async move {
        tokio::time::sleep(ms(30)).await;
        meter.write_all(b"F\r").await.unwrap();
        meter
    });
    assert_eq!(trx.receive(t, until_cr(&mut buf)).await.unwrap(), b"EF\r");
    let _meter = later.await.unwrap();
    assert_eq!(
        trx.stats(),
        LinkStats {
            bytes_sent: 0,
            bytes_received: 9,
            sends: 0
        }
    );
}

#[tokio::test(start_paused = true)]
async fn clear_input_discards_only_what_is_there() {
    let (host, mut meter) = memory_pair(LineSettings::KMP);
    let mut trx = Transceiver::new(Box::new(host));
    meter.write_all(b"old\rjunk").await.unwrap();
    let t = Timeouts::new(ms(100), ms(100), ms(1000));
    let mut buf = Vec::new();
    // Leave "junk" in the transceiver's read-ahead buffer, then more junk in the pipe.
    assert_eq!(trx.receive(t, until_cr(&mut buf)).await.unwrap(), b"old\r");
    meter.write_all(b"!!").await.unwrap();
    let start = Instant::now();
    assert_eq!(trx.clear_input().await.unwrap(), 6);
    assert!(start.elapsed() <= ms(5), "clear_input must not wait");
    assert!(trx.buffered().is_empty());
    // Nothing waiting: returns 0 at once.
    assert_eq!(trx.clear_input().await.unwrap(), 0);
    meter.write_all(b"new\r").await.unwrap();
    assert_eq!(trx.receive(t, until_cr(&mut buf)).await.unwrap(), b"new\r");
}

#[tokio::test]
async fn send_counts_and_arrives() {
    let (host, mut meter) = memory_pair(LineSettings::KMP);
    let mut trx = Transceiver::new(Box::new(host));
    trx.send(&[0x80, 0x3F, 0x01, 0x05, 0x8A, 0x0D])
        .await
        .unwrap();
    trx.send(b"/#1").await.unwrap();
    let mut got = [0u8; 9];
    meter.read_exact(&mut got).await.unwrap();
    assert_eq!(got, [0x80, 0x3F, 0x01, 0x05, 0x8A, 0x0D, b'/', b'#', b'1']);
    let s = trx.stats();
    assert_eq!((s.bytes_sent, s.sends), (9, 2));
}

#[tokio::test]
async fn peer_gone_is_disconnected() {
    let (host, meter) = memory_pair(LineSettings::KMP);
    let mut trx = Transceiver::new(Box::new(host));
    drop(meter);
    let t = Timeouts::new(ms(100), ms(100), ms(1000));
    let err = trx.receive(t, |_| Some(())).await.unwrap_err();
    assert_eq!(err.kind(), "disconnected", "{err}");
    assert!(err.to_string().starts_with("memory disconnected"));
    let err = trx.send(b"x").await.unwrap_err();
    assert_eq!(err.kind(), "disconnected", "{err}");
}

#[tokio::test]
async fn receive_adds_no_latency() {
    // Real clock: the reply must be delivered as soon as its last byte is written.
    let (host, mut meter) = memory_pair(LineSettings::KMP);
    let mut trx = Transceiver::new(Box::new(host));
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        tokio::time::sleep(ms(30)).await;
        let sent_at = std::time::Instant::now();
        meter.write_all(b"reply\r").await.unwrap();
        tx.send(sent_at).unwrap();
        meter
    });
    let t = Timeouts::new(ms(2000), ms(500), ms(5000));
    let mut buf = Vec::new();
    trx.receive(t, until_cr(&mut buf)).await.unwrap();
    let done = std::time::Instant::now();
    let sent_at = rx.await.unwrap();
    assert!(done.duration_since(sent_at) < ms(20));
}

/// Collects everything a `fmt` subscriber writes.
#[derive(Clone, Default)]
struct Capture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn frames_are_traced_as_hex() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("kamstrup::frames=debug"))
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let (host, mut meter) = memory_pair(LineSettings::KMP);
    let mut trx = Transceiver::new(Box::new(host));
    trx.send(&[0x80, 0x3F, 0x10, 0x0D]).await.unwrap();
    meter.write_all(&[0xAA, 0x40, 0x3F, 0x0D]).await.unwrap();
    tokio::task::yield_now().await;
    trx.receive(Timeouts::new(ms(100), ms(100), ms(100)), |b| {
        (b == 0xAA).then_some(())
    })
    .await
    .unwrap();
    trx.clear_input().await.unwrap();
    trx.receive(Timeouts::new(ms(100), ms(100), ms(100)), |_| None::<()>)
        .await
        .unwrap_err();

    let text = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(
        lines[0].contains("kamstrup::frames: TX 80 3F 10 0D"),
        "{text}"
    );
    assert!(lines[0].contains("direction=\"TX\""), "{text}");
    assert!(lines[0].contains("port=memory"), "{text}");
    assert!(lines[1].contains("RX AA "), "{text}");
    assert!(lines[2].contains("RX discarded 40 3F 0D"), "{text}");
    assert!(lines[3].contains("RX first-byte (none)"), "{text}");
}

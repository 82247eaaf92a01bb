//! mqtts:// through a real TLS terminator (rustls, a fresh self-signed certificate) in front of
//! the real broker: trusted by `ca_file`, refused without it, accepted with `insecure`.

use std::sync::Arc;

use kamstrup_sinks::{BuildContext, MqttConfig, MqttJsonConfig, MqttJsonSink, Sink};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::common::{delivered, no_env, retained, standard, Broker};

struct Tls {
    port: u16,
    ca_pem: String,
}

/// Accepts TLS on a loopback port and forwards the plain bytes to the broker.
async fn tls_front(broker_port: u16) -> Tls {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    let ca_pem = certified.cert.pem();
    let cert_der: CertificateDer<'static> = certified.cert.der().clone();
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert_der], key_der)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(sock).await else {
                    return;
                };
                let Ok(mut plain) =
                    tokio::net::TcpStream::connect(("127.0.0.1", broker_port)).await
                else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    Tls { port, ca_pem }
}

fn sink(port: u16, extra: serde_json::Value, ctx: &BuildContext<'_>) -> MqttJsonSink {
    let mut mqtt = serde_json::json!({"url": format!("mqtts://127.0.0.1:{port}"), "timeout": "2s"});
    if let serde_json::Value::Object(m) = extra {
        for (k, v) in m {
            mqtt[k] = v;
        }
    }
    let mqtt: MqttConfig = serde_json::from_value(mqtt).unwrap();
    let cfg: MqttJsonConfig =
        serde_json::from_value(serde_json::json!({"retain": true, "topic": "tls/{meter}"}))
            .unwrap();
    MqttJsonSink::new(&cfg, &mqtt, ctx).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtts_with_ca_file_insecure_and_untrusted() {
    let broker = Broker::start();
    let tls = tls_front(broker.port).await;
    let r = standard(0);

    let ca = tls.ca_pem.clone();
    let files = move |p: &std::path::Path| {
        if p == std::path::Path::new("/etc/kamstrup/ca.pem") {
            Ok(ca.clone())
        } else {
            crate::common::no_files(p)
        }
    };
    let ctx = BuildContext::new(&no_env, &files);
    let mut trusted = sink(
        tls.port,
        serde_json::json!({"ca_file": "/etc/kamstrup/ca.pem", "client_id": "trusted"}),
        &ctx,
    );
    trusted.deliver(&[delivered(1, "a", 1, &r)]).await.unwrap();

    let mut insecure = sink(
        tls.port,
        serde_json::json!({"insecure": true, "client_id": "insecure"}),
        &ctx,
    );
    insecure.deliver(&[delivered(1, "b", 1, &r)]).await.unwrap();

    // Default roots do not know the self-signed certificate.
    let mut untrusted = sink(
        tls.port,
        serde_json::json!({"client_id": "untrusted"}),
        &ctx,
    );
    let err = untrusted
        .deliver(&[delivered(1, "c", 1, &r)])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "connect");
    assert!(err.to_string().contains("TLS"), "{err}");

    let seen = retained(broker.port, "tls/#").await;
    assert_eq!(
        seen.keys().map(String::as_str).collect::<Vec<_>>(),
        ["tls/a", "tls/b"]
    );
    for s in [&mut trusted, &mut insecure, &mut untrusted] {
        s.shutdown().await;
    }
}

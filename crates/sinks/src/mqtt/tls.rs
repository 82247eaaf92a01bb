//! TLS for the broker connection: CA and client certificate files read through the build
//! context, rustls with ring, and the `insecure = true` verifier.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::MqttConfig;
use crate::SinkError;

fn read_pem(
    read_file: &dyn Fn(&Path) -> std::io::Result<String>,
    path: &Path,
    what: &str,
) -> Result<String, SinkError> {
    read_file(path).map_err(|e| {
        SinkError::config(format!("[mqtt] cannot read {what} {}: {e}", path.display()))
    })
}

pub(super) fn tls_config(
    cfg: &MqttConfig,
    read_file: &dyn Fn(&Path) -> std::io::Result<String>,
) -> Result<Arc<ClientConfig>, SinkError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| SinkError::config(format!("[mqtt] TLS: {e}")))?;
    let builder = if cfg.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyServerCert(provider)))
    } else {
        let mut roots = RootCertStore::empty();
        match &cfg.ca_file {
            Some(path) => {
                let pem = read_pem(read_file, path, "ca_file")?;
                for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                    let cert = cert.map_err(|e| {
                        SinkError::config(format!("[mqtt] ca_file {}: {e}", path.display()))
                    })?;
                    roots.add(cert).map_err(|e| {
                        SinkError::config(format!("[mqtt] ca_file {}: {e}", path.display()))
                    })?;
                }
                if roots.is_empty() {
                    return Err(SinkError::config(format!(
                        "[mqtt] ca_file {} holds no certificate",
                        path.display()
                    )));
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        builder.with_root_certificates(roots)
    };
    let config = match (&cfg.client_cert, &cfg.client_key) {
        (Some(cert_path), Some(key_path)) => {
            let pem = read_pem(read_file, cert_path, "client_cert")?;
            let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| {
                    SinkError::config(format!("[mqtt] client_cert {}: {e}", cert_path.display()))
                })?;
            if certs.is_empty() {
                return Err(SinkError::config(format!(
                    "[mqtt] client_cert {} holds no certificate",
                    cert_path.display()
                )));
            }
            let key_pem = read_pem(read_file, key_path, "client_key")?;
            let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| {
                // The key's content is never part of the message, only its path.
                SinkError::config(format!("[mqtt] client_key {}: {e}", key_path.display()))
            })?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| SinkError::config(format!("[mqtt] client certificate: {e}")))?
        }
        // Only one of the two is refused by `MqttConfig::validate`.
        _ => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// The `insecure = true` verifier: any certificate is accepted, but handshake signatures are
/// still checked so the session keys belong to whoever holds that certificate.
#[derive(Debug)]
struct AcceptAnyServerCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

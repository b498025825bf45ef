//! TLS to the coordinator: a certificate pinned by its SHA-256
//! fingerprint (a development network's self-signed one), or one a public
//! certificate authority vouches for.
//!
//! A man in the middle must show its own certificate: a pinned client
//! refuses it at the handshake. Even one whose certificate a public
//! authority was fooled into signing gains nothing from relaying what a
//! client signs to prove its key: the signature names the TLS channel it
//! was made on ([`iog_proto::auth::channel_of_exporter`]), which is not the
//! one the relay holds to the real coordinator. TLS 1.3 only, whose exporter
//! gives that channel binding.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

pub use iog_proto::auth::{Fingerprint, FingerprintParseError};

/// The crypto every TLS connection of iog uses: rustls with *ring*.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Checks the coordinator's certificate against a pin, or against the web
/// PKI when there is none.
#[derive(Debug)]
pub(crate) struct CoordinatorVerifier {
    pin: Option<Fingerprint>,
    /// Verifies a certificate by the public authorities when nothing is pinned.
    webpki: Arc<dyn ServerCertVerifier>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for CoordinatorVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let fingerprint = Fingerprint::of(end_entity.as_ref());
        match self.pin {
            // A pinned certificate is trusted for exactly what it is; its
            // names and dates do not matter (a self-signed one has no
            // authority to check them against).
            Some(pin) if pin == fingerprint => {}
            Some(pin) => {
                return Err(rustls::Error::General(format!(
                    "the coordinator's certificate is {fingerprint}, not the pinned {pin}: someone may be \
                     intercepting the connection, or the coordinator's certificate changed (ask its operator \
                     for the new fingerprint)"
                )));
            }
            None => {
                self.webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)?;
            }
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A client TLS configuration for the coordinator (TLS 1.3 only).
pub(crate) fn client_config(pin: Option<Fingerprint>) -> Result<rustls::ClientConfig, rustls::Error> {
    let provider = crypto_provider();
    let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    let webpki = rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|err| rustls::Error::General(format!("build the certificate verifier: {err}")))?;
    let verifier = CoordinatorVerifier { pin, webpki, algorithms: provider.signature_verification_algorithms };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(config)
}

/// The channel a signature sent over `connection` must name (see
/// [`iog_proto::auth::channel_of_exporter`]): for a worker's WebSocket,
/// whose TLS connection it holds itself.
pub fn channel_of(connection: &rustls::ClientConnection) -> Result<String, rustls::Error> {
    let mut exporter = [0u8; iog_proto::auth::CHANNEL_BINDING_BYTES];
    connection.export_keying_material(&mut exporter, iog_proto::auth::CHANNEL_BINDING_LABEL, None)?;
    Ok(iog_proto::auth::channel_of_exporter(Some(&exporter)))
}

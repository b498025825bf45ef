//! TLS to the coordinator: a certificate pinned by its SHA-256
//! fingerprint (a development network's self-signed one), or one a public
//! certificate authority vouches for.
//!
//! Either way the client remembers the fingerprint of the certificate it
//! saw, and what it signs to prove its key names it
//! ([`iog_proto::auth::channel_of`]). A man in the middle must show its own
//! certificate: a pinned client refuses it at the handshake, and what an
//! unpinned client signs through it does not verify at the real coordinator.

use std::sync::{Arc, Mutex};

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
/// PKI when there is none, and records what it saw.
#[derive(Debug)]
pub(crate) struct CoordinatorVerifier {
    pin: Option<Fingerprint>,
    /// Verifies a certificate by the public authorities when nothing is pinned.
    webpki: Arc<dyn ServerCertVerifier>,
    algorithms: WebPkiSupportedAlgorithms,
    seen: Seen,
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
        *self.seen.lock().expect("fingerprint lock") = Some(fingerprint);
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

/// Where the fingerprint of the certificate a client accepted is kept.
pub(crate) type Seen = Arc<Mutex<Option<Fingerprint>>>;

/// A client TLS configuration for the coordinator, and where the
/// fingerprint of the certificate it accepted is kept.
pub(crate) fn client_config(pin: Option<Fingerprint>) -> Result<(rustls::ClientConfig, Seen), rustls::Error> {
    let provider = crypto_provider();
    let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    let webpki = rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|err| rustls::Error::General(format!("build the certificate verifier: {err}")))?;
    let seen = Arc::new(Mutex::new(None));
    let verifier =
        CoordinatorVerifier { pin, webpki, algorithms: provider.signature_verification_algorithms, seen: seen.clone() };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok((config, seen))
}

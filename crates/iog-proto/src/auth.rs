//! Proving a key: what workers and users sign to open a session, and the
//! REST bodies of user authentication.
//!
//! Nobody is taken at their word. A worker proves its id by signing a fresh
//! nonce the coordinator sent on its stream; a user proves a wallet address
//! by signing a nonce the coordinator issued over REST and gets a
//! short-lived bearer token for it. Every signed message names what it is
//! for, the coordinator it is meant for (`audience`, the coordinator's
//! public key) and the channel it travelled on, so a signature made for one
//! purpose, one coordinator or one connection is worthless for another.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

/// Bytes of every nonce the coordinator issues (written as 64 hex digits).
pub const NONCE_BYTES: usize = 32;

/// Header of an authenticated REST request: `Authorization: Bearer <token>`.
pub const BEARER_PREFIX: &str = "Bearer ";

/// What a worker signs to open a stream session: the nonce of the
/// coordinator's `SessionChallenge`, its own id, the coordinator it expects
/// and the channel it sees (see [`channel_of_exporter`]).
pub fn session_signing_message(nonce: &str, worker_id: &str, audience: &str, channel: &str) -> Vec<u8> {
    format!("iog worker session v1\n{nonce}\n{worker_id}\n{audience}\n{channel}\n").into_bytes()
}

/// What a wallet signs to get a bearer token: the nonce from
/// `POST /v1/auth/nonce`, its address, the coordinator and the channel.
pub fn token_signing_message(nonce: &str, address: &str, audience: &str, channel: &str) -> Vec<u8> {
    format!("iog auth token v1\n{nonce}\n{address}\n{audience}\n{channel}\n").into_bytes()
}

/// The label of the TLS exporter that binds a signature to its connection
/// (RFC 9266's `tls-exporter` channel binding, over TLS 1.3).
pub const CHANNEL_BINDING_LABEL: &[u8] = b"EXPORTER-Channel-Binding";

/// Bytes of the exporter value a channel binding takes.
pub const CHANNEL_BINDING_BYTES: usize = 32;

/// The channel a signature is bound to: `tls-exporter:<hex>` of the TLS
/// connection it is sent over ([`CHANNEL_BINDING_LABEL`], no context), or
/// `plain` on an unencrypted loopback connection.
///
/// Both ends of one TLS connection, and only they, derive the same value
/// from its secrets. A man in the middle holds two connections with two
/// values, so a signature it relays names the wrong one at the real
/// coordinator, whatever certificate it showed and whoever vouched for it.
pub fn channel_of_exporter(exporter: Option<&[u8; CHANNEL_BINDING_BYTES]>) -> String {
    match exporter {
        Some(exporter) => format!("tls-exporter:{}", hex::encode(exporter)),
        None => "plain".to_owned(),
    }
}

/// The SHA-256 of a certificate's DER bytes, written `sha256:<64 hex>`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    pub fn of(certificate_der: &[u8]) -> Fingerprint {
        Fingerprint(Sha256::digest(certificate_der).into())
    }

    /// The 64 hex digits, without the `sha256:` prefix.
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Text that is not a `sha256:<64 hex>` fingerprint.
#[derive(Debug, thiserror::Error)]
#[error(
    "certificate pin {text:?} is not valid: {reason}; write it as the coordinator prints it, \
     sha256: followed by 64 hex digits"
)]
pub struct FingerprintParseError {
    text: String,
    reason: &'static str,
}

impl FromStr for Fingerprint {
    type Err = FingerprintParseError;

    fn from_str(text: &str) -> Result<Fingerprint, FingerprintParseError> {
        let bad = |reason| FingerprintParseError { text: text.to_owned(), reason };
        let digits = text.trim().strip_prefix("sha256:").ok_or_else(|| bad("it must start with sha256:"))?;
        // Colon-separated pairs, as some tools print them, are accepted too.
        let digits: String = digits.chars().filter(|c| *c != ':').collect();
        let bytes = hex::decode(&digits).map_err(|_| bad("the part after sha256: is not hex"))?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| bad("a SHA-256 fingerprint is 64 hex digits"))?;
        Ok(Fingerprint(bytes))
    }
}

/// Answer to `POST /v1/auth/nonce`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuthNonce {
    /// 64 hex digits, good for one token request.
    pub nonce: String,
    /// The coordinator's public key (base58), to put in the signed message.
    pub audience: String,
    /// When the nonce stops being accepted, Unix milliseconds.
    pub expires_ms: u64,
}

/// `POST /v1/auth/token`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TokenRequest {
    /// The wallet address (a worker's id is one too).
    pub address: String,
    /// The nonce from `POST /v1/auth/nonce`, unused.
    pub nonce: String,
    /// Hex of the ed25519 signature over [`token_signing_message`].
    pub signature: String,
}

/// Answer to `POST /v1/auth/token`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuthToken {
    /// Send as `Authorization: Bearer <token>`.
    pub token: String,
    /// The address the token acts for.
    pub address: String,
    /// When it stops being accepted, Unix milliseconds.
    pub expires_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_parse_from_what_is_printed() {
        let fingerprint = Fingerprint::of(b"certificate");
        assert_eq!(fingerprint.to_string().parse::<Fingerprint>().unwrap(), fingerprint);
        let pairs: Vec<String> =
            fingerprint.hex().as_bytes().chunks(2).map(|c| String::from_utf8_lossy(c).into_owned()).collect();
        let colons = format!("sha256:{}", pairs.join(":"));
        assert_eq!(colons.parse::<Fingerprint>().unwrap(), fingerprint);
        for bad in ["", "md5:00", "sha256:zz", "sha256:00"] {
            let err = bad.parse::<Fingerprint>().unwrap_err().to_string();
            assert!(err.contains("sha256: followed by 64 hex digits"), "{err}");
        }
    }

    #[test]
    fn signed_messages_differ_by_purpose_and_channel() {
        let session = session_signing_message("n", "a", "c", "plain");
        let token = token_signing_message("n", "a", "c", "plain");
        assert_ne!(session, token);
        assert_ne!(token, token_signing_message("n", "a", "c", &channel_of_exporter(Some(&[0xab; 32]))));
        assert_eq!(channel_of_exporter(Some(&[0xab; 32])), format!("tls-exporter:{}", "ab".repeat(32)));
        assert_eq!(channel_of_exporter(None), "plain");
    }
}

//! Who is calling: nonces, bearer tokens issued against a wallet's
//! signature, and the [`Caller`] every owner-checked handler takes.
//!
//! Nonces and tokens live in memory only. A restart forgets them, and
//! clients simply sign a new nonce (the SDK does it on `bad_token`); in
//! exchange nothing secret is ever written to the store. Only a token's
//! blake3 hash is kept, so a memory dump shows no usable token either.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::routing::post;
use axum::{Json, Router};
use iog_ledger::Address;
use iog_proto::api::ApiError;
use iog_proto::auth::{AuthNonce, AuthToken, BEARER_PREFIX, NONCE_BYTES, TokenRequest};

use crate::api::{Failure, parse_address};
use crate::engine::now_ms;
use crate::server::AppState;

/// How long an issued nonce may wait for its signature.
pub(crate) const NONCE_TTL_MS: u64 = 60_000;
/// Most nonces waiting at once; past it the oldest are dropped (their
/// holders get `bad_nonce` and ask again).
const NONCES_MAX: usize = 100_000;
/// Most live tokens at once, all addresses together.
const TOKENS_MAX: usize = 100_000;
/// How long a token lives unless the coordinator is told otherwise: 15 minutes.
pub const TOKEN_TTL_MS_DEFAULT: u64 = 15 * 60_000;

/// Nonces and tokens, shared by the handlers and the worker sessions.
pub(crate) struct Auth {
    /// The coordinator's public key (base58): what signers name as the
    /// coordinator they mean.
    pub(crate) audience: String,
    /// The channel signatures must name (see `iog_proto::auth::channel_of`).
    pub(crate) channel: String,
    token_ttl_ms: u64,
    /// Issued nonce → when it expires.
    nonces: Mutex<HashMap<String, u64>>,
    /// blake3 of a token → its address and expiry.
    tokens: Mutex<HashMap<[u8; 32], (Address, u64)>>,
}

/// Fresh random bytes as hex, from the operating system's generator
/// through the thread's ChaCha generator.
pub(crate) fn fresh_hex() -> String {
    hex::encode(rand::random::<[u8; NONCE_BYTES]>())
}

/// Drops expired entries, and when still at `max`, the ones closest to
/// expiring, so that a flood of requests costs old entries, not memory.
fn make_room<K: Clone + Eq + std::hash::Hash, V>(map: &mut HashMap<K, V>, max: usize, expiry: impl Fn(&V) -> u64) {
    let now = now_ms();
    if map.len() < max {
        return;
    }
    map.retain(|_, value| expiry(value) > now);
    if map.len() >= max {
        let mut by_expiry: Vec<(u64, K)> = map.iter().map(|(key, value)| (expiry(value), key.clone())).collect();
        by_expiry.sort_unstable_by_key(|(expires, _)| *expires);
        for (_, key) in by_expiry.into_iter().take(map.len() + 1 - max) {
            map.remove(&key);
        }
    }
}

impl Auth {
    pub(crate) fn new(audience: String, channel: String, token_ttl_ms: u64) -> Auth {
        Auth { audience, channel, token_ttl_ms, nonces: Mutex::default(), tokens: Mutex::default() }
    }

    /// A nonce good for one signature within [`NONCE_TTL_MS`].
    pub(crate) fn issue_nonce(&self) -> AuthNonce {
        let nonce = fresh_hex();
        let expires_ms = now_ms() + NONCE_TTL_MS;
        let mut nonces = self.nonces.lock().expect("nonce lock");
        make_room(&mut nonces, NONCES_MAX, |expires| *expires);
        nonces.insert(nonce.clone(), expires_ms);
        AuthNonce { nonce, audience: self.audience.clone(), expires_ms }
    }

    /// Takes a nonce out of the issued set: true when it was issued, unused
    /// and not expired. A second use of the same nonce is always false.
    fn spend_nonce(&self, nonce: &str) -> bool {
        let expires = self.nonces.lock().expect("nonce lock").remove(nonce);
        expires.is_some_and(|expires_ms| expires_ms > now_ms())
    }

    /// Checks a token request and issues the token.
    pub(crate) fn issue_token(&self, request: &TokenRequest) -> Result<AuthToken, Failure> {
        let address = parse_address(&request.address)?;
        if !self.spend_nonce(&request.nonce) {
            let message = "the nonce was not issued by this coordinator, was used already or expired; \
                           ask POST /v1/auth/nonce for a fresh one";
            return Err(Failure::new(StatusCode::UNAUTHORIZED, "bad_nonce", message));
        }
        let message =
            iog_proto::auth::token_signing_message(&request.nonce, &request.address, &self.audience, &self.channel);
        crate::money::check_signature(&address, &message, &request.signature)?;
        let token = fresh_hex();
        let expires_ms = now_ms() + self.token_ttl_ms;
        let mut tokens = self.tokens.lock().expect("token lock");
        make_room(&mut tokens, TOKENS_MAX, |(_, expires)| *expires);
        tokens.insert(*blake3::hash(token.as_bytes()).as_bytes(), (address, expires_ms));
        Ok(AuthToken { token, address: address.to_string(), expires_ms })
    }

    /// The address a bearer token acts for.
    fn caller(&self, token: &str) -> Result<Address, Failure> {
        let key = *blake3::hash(token.as_bytes()).as_bytes();
        let mut tokens = self.tokens.lock().expect("token lock");
        match tokens.get(&key) {
            Some((address, expires_ms)) if *expires_ms > now_ms() => Ok(*address),
            Some(_) => {
                tokens.remove(&key);
                let message = "the token expired; sign a fresh nonce for a new one (the iog CLI and SDK do this)";
                Err(Failure::new(StatusCode::UNAUTHORIZED, "token_expired", message))
            }
            None => {
                let message = "this coordinator issued no such token (or restarted since); sign a fresh nonce \
                               for a new one";
                Err(Failure::new(StatusCode::UNAUTHORIZED, "bad_token", message))
            }
        }
    }
}

/// The wallet address a request proved it acts for, by its bearer token.
/// A handler that takes a `Caller` refuses every request without a valid one.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Caller(pub(crate) Address);

impl FromRequestParts<AppState> for Caller {
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, Failure> {
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            let message = "this request needs `Authorization: Bearer <token>`; get a token by signing a nonce \
                           (POST /v1/auth/nonce, then POST /v1/auth/token)";
            return Err(Failure::new(StatusCode::UNAUTHORIZED, "unauthenticated", message));
        };
        let token = value.to_str().ok().and_then(|text| text.strip_prefix(BEARER_PREFIX)).ok_or_else(|| {
            Failure::new(StatusCode::UNAUTHORIZED, "bad_token", "the Authorization header must be `Bearer <token>`")
        })?;
        let address = state.auth.caller(token)?;
        state.limiter.check_address(&address)?;
        Ok(Caller(address))
    }
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/v1/auth/nonce", post(nonce)).route("/v1/auth/token", post(token))
}

/// Issues a nonce for a wallet to sign for a bearer token.
///
/// The nonce is good for one token request within a minute.
#[utoipa::path(
    post,
    path = "/v1/auth/nonce",
    tag = "auth",
    responses((status = 200, description = "A fresh nonce.", body = AuthNonce)),
)]
pub(crate) async fn nonce(State(state): State<AppState>) -> Json<AuthNonce> {
    Json(state.auth.issue_nonce())
}

/// Issues a bearer token to a wallet that signed a fresh nonce.
///
/// The wallet signs the nonce, its address, the coordinator's key (`audience`) and the TLS channel it sees; the
/// token then acts for that wallet in `Authorization: Bearer <token>` until it expires.
#[utoipa::path(
    post,
    path = "/v1/auth/token",
    tag = "auth",
    responses(
        (status = 200, description = "The token.", body = AuthToken),
        (status = 400, description = "The address is not one (`bad_address`), or the body is not the JSON asked \
            for.", body = ApiError),
        (status = 401, description = "The nonce was not issued here, was used or expired (`bad_nonce`), or the \
            signature is not the wallet's over this request (`bad_signature`).", body = ApiError),
    ),
)]
pub(crate) async fn token(
    State(state): State<AppState>,
    Json(request): Json<TokenRequest>,
) -> Result<Json<AuthToken>, Failure> {
    let issued = state.auth.issue_token(&request)?;
    tracing::debug!(address = %issued.address, "token issued");
    Ok(Json(issued))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn make_room_drops_the_soonest_to_expire_when_full() {
        let far = now_ms() + 1_000_000;
        let mut map: HashMap<u32, u64> = (0..4).map(|k| (k, far + u64::from(k))).collect();
        map.insert(9, 0); // expired
        make_room(&mut map, 5, |expires| *expires);
        assert!(!map.contains_key(&9), "expired entries go first");
        make_room(&mut map, 4, |expires| *expires);
        assert_eq!(map.len(), 3, "room for one more");
        assert!(!map.contains_key(&0), "the soonest to expire goes");
    }
}

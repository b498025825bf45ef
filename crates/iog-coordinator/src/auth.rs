//! Who is calling: nonces, bearer tokens issued against a wallet's
//! signature, and the [`Caller`] every owner-checked handler takes.
//!
//! Nonces and tokens live in memory only. A restart forgets them, and
//! clients simply sign a new nonce (the SDK does it on `bad_token`); in
//! exchange nothing secret is ever written to the store. Only a token's
//! blake3 hash is kept, so a memory dump shows no usable token either.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::routing::post;
use axum::{Extension, Json, Router};
use iog_ledger::Address;
use iog_proto::api::ApiError;
use iog_proto::auth::{AuthNonce, AuthToken, BEARER_PREFIX, NONCE_BYTES, TokenRequest};

use crate::api::{Failure, parse_address};
use crate::engine::now_ms;
use crate::listener::Channel;
use crate::server::AppState;

/// How long an issued nonce may wait for its signature.
pub(crate) const NONCE_TTL_MS: u64 = 60_000;
/// Most nonces waiting at once; past it new ones are refused (429) until
/// some are used or expire.
const NONCES_MAX: usize = 100_000;
/// Most live tokens at once, all addresses together; past it new ones are
/// refused (429).
const TOKENS_MAX: usize = 100_000;
/// How long a token lives unless the coordinator is told otherwise: 15 minutes.
pub const TOKEN_TTL_MS_DEFAULT: u64 = 15 * 60_000;

/// Nonces and tokens, shared by the handlers and the worker sessions.
pub(crate) struct Auth {
    /// The coordinator's public key (base58): what signers name as the
    /// coordinator they mean.
    pub(crate) audience: String,
    token_ttl_ms: u64,
    /// Issued nonces, until they expire.
    nonces: Mutex<Expiring<String, ()>>,
    /// blake3 of each token → the address it acts for, until it expires.
    tokens: Mutex<Expiring<[u8; 32], Address>>,
}

/// Fresh random bytes as hex, from the operating system's generator
/// through the thread's ChaCha generator.
pub(crate) fn fresh_hex() -> String {
    hex::encode(rand::random::<[u8; NONCE_BYTES]>())
}

/// Entries that expire in the order they were made (every nonce and every
/// token lives a fixed time), with a bound on how many live at once.
/// Expired entries leave from the front of a queue as new ones come, so no
/// operation scans the map; when it is full of live entries a new one is
/// refused (nobody's entry is evicted to make room for an attacker's).
struct Expiring<K, V> {
    live: HashMap<K, (V, u64)>,
    /// (expiry, key) in the order entries were made; an entry taken out
    /// early leaves its place here until it would have expired.
    order: VecDeque<(u64, K)>,
    max: usize,
}

impl<K: Clone + Eq + std::hash::Hash, V> Expiring<K, V> {
    fn new(max: usize) -> Expiring<K, V> {
        Expiring { live: HashMap::new(), order: VecDeque::new(), max }
    }

    fn drop_expired(&mut self, now: u64) {
        while let Some((expires_ms, _)) = self.order.front()
            && *expires_ms <= now
        {
            let (expires_ms, key) = self.order.pop_front().expect("the front exists");
            if self.live.get(&key).is_some_and(|(_, live_expires)| *live_expires == expires_ms) {
                self.live.remove(&key);
            }
        }
    }

    /// Adds an entry; false when `max` live entries (or twice as many
    /// places in the queue) leave no room.
    fn insert(&mut self, key: K, value: V, expires_ms: u64) -> bool {
        self.drop_expired(now_ms());
        if self.live.len() >= self.max || self.order.len() >= 2 * self.max {
            return false;
        }
        self.order.push_back((expires_ms, key.clone()));
        self.live.insert(key, (value, expires_ms));
        true
    }

    fn remove(&mut self, key: &K) -> Option<(V, u64)> {
        self.live.remove(key)
    }

    fn get(&self, key: &K) -> Option<&(V, u64)> {
        self.live.get(key)
    }
}

/// The refusal when nonces or tokens are at their bound.
fn busy(what: &str) -> Failure {
    Failure::rate_limited(format!("the coordinator holds as many {what} as it may; try again shortly"), 1)
}

impl Auth {
    pub(crate) fn new(audience: String, token_ttl_ms: u64) -> Auth {
        Auth {
            audience,
            token_ttl_ms,
            nonces: Mutex::new(Expiring::new(NONCES_MAX)),
            tokens: Mutex::new(Expiring::new(TOKENS_MAX)),
        }
    }

    /// A nonce good for one signature within [`NONCE_TTL_MS`].
    pub(crate) fn issue_nonce(&self) -> Result<AuthNonce, Failure> {
        let nonce = fresh_hex();
        let expires_ms = now_ms() + NONCE_TTL_MS;
        if !self.nonces.lock().expect("nonce lock").insert(nonce.clone(), (), expires_ms) {
            return Err(busy("nonces waiting for a signature"));
        }
        Ok(AuthNonce { nonce, audience: self.audience.clone(), expires_ms })
    }

    /// Takes a nonce out of the issued set: true when it was issued, unused
    /// and not expired. A second use of the same nonce is always false.
    fn spend_nonce(&self, nonce: &str) -> bool {
        let spent = self.nonces.lock().expect("nonce lock").remove(&nonce.to_owned());
        spent.is_some_and(|((), expires_ms)| expires_ms > now_ms())
    }

    /// Checks a token request that came over `channel` (see
    /// [`iog_proto::auth::channel_of_exporter`]) and issues the token.
    pub(crate) fn issue_token(&self, request: &TokenRequest, channel: &str) -> Result<AuthToken, Failure> {
        let address = parse_address(&request.address)?;
        if !self.spend_nonce(&request.nonce) {
            let message = "the nonce was not issued by this coordinator, was used already or expired; \
                           ask POST /v1/auth/nonce for a fresh one";
            return Err(Failure::new(StatusCode::UNAUTHORIZED, "bad_nonce", message));
        }
        let message = iog_proto::auth::token_signing_message(&request.nonce, &request.address, &self.audience, channel);
        crate::money::check_signature(&address, &message, &request.signature)?;
        let token = fresh_hex();
        let expires_ms = now_ms() + self.token_ttl_ms;
        let key = *blake3::hash(token.as_bytes()).as_bytes();
        if !self.tokens.lock().expect("token lock").insert(key, address, expires_ms) {
            return Err(busy("live tokens"));
        }
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
pub(crate) async fn nonce(State(state): State<AppState>) -> Result<Json<AuthNonce>, Failure> {
    state.auth.issue_nonce().map(Json)
}

/// Issues a bearer token to a wallet that signed a fresh nonce.
///
/// The wallet signs the nonce, its address, the coordinator's key (`audience`) and the TLS channel of the
/// connection this request comes over (`tls-exporter:<hex>`, RFC 9266); the token then acts for that wallet in
/// `Authorization: Bearer <token>`, on any connection, until it expires.
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
    Extension(Channel(channel)): Extension<Channel>,
    Json(request): Json<TokenRequest>,
) -> Result<Json<AuthToken>, Failure> {
    let issued = state.auth.issue_token(&request, &channel)?;
    tracing::debug!(address = %issued.address, "token issued");
    Ok(Json(issued))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_in_order_and_a_full_set_refuses_rather_than_evicts() {
        let now = now_ms();
        let mut set: Expiring<u32, ()> = Expiring::new(3);
        assert!(set.insert(1, (), now - 1), "an entry that is already expired still goes in");
        assert!(set.insert(2, (), now + 60_000));
        assert!(set.insert(3, (), now + 60_000));
        assert!(set.get(&1).is_none() || set.live.len() <= 3);
        // The expired one left; room for one more, then none.
        assert!(set.insert(4, (), now + 60_000));
        assert!(!set.insert(5, (), now + 60_000), "full of live entries: refused");
        assert!(set.get(&2).is_some() && set.get(&3).is_some() && set.get(&4).is_some(), "nobody was evicted");
        // Taking one out makes room.
        assert!(set.remove(&2).is_some());
        assert!(set.insert(5, (), now + 60_000));
        assert!(set.remove(&2).is_none(), "an entry is taken out once");
    }
}

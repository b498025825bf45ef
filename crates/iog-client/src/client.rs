use std::sync::Arc;
use std::time::Duration;

use iog_host::Identity;
use iog_proto::api::{
    AccountStatus, ApiError, CheckpointRow, FaucetRequest, GrantOutcome, Health, HistoryEntry, JobBilling, JobStatus,
    JournalPage, KeyRequest, PaymentAuthorization, SendRequest, StakeRequest, StakeStatus, SubmitJob, SubmittedJob,
    TaskKeyGrant, TaskStatus, WalletStatus, WorkerStatus,
};
use iog_proto::auth::{AuthNonce, AuthToken, TokenRequest};
use iog_types::{BlobId, JobId};
use reqwest::{Method, RequestBuilder, Response};
use serde::de::DeserializeOwned;

use crate::ClientError;
use crate::tls::Fingerprint;

/// How long to wait for a TCP connection to the coordinator.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one request may take, blob transfers included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// A token is renewed this long before it expires, so a request never
/// leaves with one that lapses on the way.
const TOKEN_RENEW_BEFORE_MS: u64 = 30_000;

/// The key a client proves, and the bearer token it holds for it.
struct Session {
    identity: Identity,
    /// The current token and when it expires (Unix ms).
    token: tokio::sync::Mutex<Option<(String, u64)>>,
}

/// A client's TLS: its configuration and its pin.
struct TlsState {
    config: Arc<rustls::ClientConfig>,
    pin: Option<Fingerprint>,
}

/// Whether `host_port` (`host:port`) names this machine.
fn is_loopback_host(host_port: &str) -> bool {
    let host = match host_port.rsplit_once(':') {
        Some((host, _)) => host,
        None => host_port,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Times one request refused `429 rate_limited` is sent again.
pub const RATE_LIMITED_RETRIES_MAX: u32 = 5;
/// The longest `Retry-After` honoured, in seconds.
pub const RETRY_AFTER_S_MAX: u64 = 10;

/// A handle to one coordinator. Cheap to clone; clones share connections
/// and the bearer token.
#[derive(Clone)]
pub struct Client {
    base: String,
    http: reqwest::Client,
    session: Option<Arc<Session>>,
    tls: Option<Arc<TlsState>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let address = self.session.as_ref().map(|s| s.identity.worker_id().0);
        f.debug_struct("Client").field("base", &self.base).field("address", &address).finish_non_exhaustive()
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl Client {
    /// A client for the coordinator at `url`: `https://host:port` with a
    /// certificate a public authority vouches for, or `http://` to a
    /// loopback address (a local development network started with
    /// `--insecure`). A self-signed coordinator needs [`Client::connect`]
    /// with its pin.
    pub fn new(url: &str) -> Result<Client, ClientError> {
        Client::connect(url, None)
    }

    /// A client for the coordinator at `url` whose certificate must have
    /// the fingerprint `pin` (as the coordinator prints it on start).
    pub fn connect(url: &str, pin: Option<Fingerprint>) -> Result<Client, ClientError> {
        let base = url.trim_end_matches('/').to_owned();
        let bad = |reason: &str| ClientError::BadUrl { url: url.to_owned(), reason: reason.to_owned() };
        let (tls, rest) = match (base.strip_prefix("https://"), base.strip_prefix("http://")) {
            (Some(rest), _) => (true, rest),
            (None, Some(rest)) => (false, rest),
            (None, None) => return Err(bad("it must start with https:// (or http:// to this machine)")),
        };
        if rest.is_empty() || rest.contains('/') {
            return Err(bad("it must name a host and port and no path"));
        }
        if !tls && !is_loopback_host(rest) {
            return Err(bad("plain http:// is only for a coordinator on this machine; use https:// and the \
                 coordinator's --pin"));
        }
        if !tls && pin.is_some() {
            return Err(bad("a certificate pin needs an https:// url"));
        }
        let mut builder = reqwest::Client::builder().connect_timeout(CONNECT_TIMEOUT).timeout(REQUEST_TIMEOUT);
        let mut tls_state = None;
        if tls {
            let config = crate::tls::client_config(pin)
                .map_err(|err| ClientError::Tls { url: base.clone(), reason: err.to_string() })?;
            let config = Arc::new(config);
            builder = builder.use_preconfigured_tls((*config).clone());
            tls_state = Some(TlsState { config, pin });
        }
        let http = builder.build().map_err(|source| ClientError::Http { url: base.clone(), source })?;
        Ok(Client { base, http, session: None, tls: tls_state.map(Arc::new) })
    }

    /// The TLS configuration of this client (pin and all), for the
    /// worker's WebSocket; `None` on plain http.
    pub fn tls_config(&self) -> Option<Arc<rustls::ClientConfig>> {
        self.tls.as_ref().map(|tls| tls.config.clone())
    }

    /// The certificate pin this client checks, if any.
    pub fn pin(&self) -> Option<Fingerprint> {
        self.tls.as_ref().and_then(|tls| tls.pin)
    }

    /// The same client acting for `identity` (a wallet's or a worker's
    /// key): requests about the caller's own objects carry a bearer token
    /// that the client gets by signing a nonce of the coordinator's, and
    /// renews when it expires or the coordinator restarted.
    pub fn with_identity(mut self, identity: Identity) -> Client {
        self.session = Some(Arc::new(Session { identity, token: tokio::sync::Mutex::new(None) }));
        self
    }

    /// The address this client acts for, if it has a key.
    pub fn address(&self) -> Option<String> {
        self.session.as_ref().map(|session| session.identity.worker_id().0)
    }

    /// The coordinator's base URL.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// The WebSocket URL of the worker stream.
    pub fn stream_url(&self) -> String {
        let ws = if let Some(rest) = self.base.strip_prefix("https://") {
            format!("wss://{rest}")
        } else {
            format!("ws://{}", self.base.trim_start_matches("http://"))
        };
        format!("{ws}{}", iog_proto::STREAM_PATH)
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, format!("{}{path}", self.base))
    }

    /// Sends a request. One refused `429 rate_limited` is sent again after
    /// the `Retry-After` the coordinator names, up to
    /// [`RATE_LIMITED_RETRIES_MAX`] times, so that a burst of uploads (a
    /// sealed job's inputs) slows down instead of failing.
    async fn send(&self, request: RequestBuilder) -> Result<Response, ClientError> {
        let mut request = request;
        let mut retries = 0;
        let response = loop {
            let again = request.try_clone();
            let response = request.send().await.map_err(|source| {
                if source.is_connect() || source.is_timeout() {
                    ClientError::Unreachable { url: self.base.clone(), source }
                } else {
                    ClientError::Http { url: self.base.clone(), source }
                }
            })?;
            match again {
                Some(again)
                    if response.status() == reqwest::StatusCode::TOO_MANY_REQUESTS
                        && retries < RATE_LIMITED_RETRIES_MAX =>
                {
                    let wait_s = response
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|value| value.to_str().ok()?.trim().parse::<u64>().ok())
                        .unwrap_or(1)
                        .clamp(1, RETRY_AFTER_S_MAX);
                    tracing::debug!(wait_s, retries, "rate limited by the coordinator; waiting");
                    tokio::time::sleep(Duration::from_secs(wait_s)).await;
                    retries += 1;
                    request = again;
                }
                _ => break response,
            }
        };
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        let error = serde_json::from_str::<ApiError>(&text).unwrap_or(ApiError {
            code: format!("http_{status}"),
            message: if text.is_empty() { format!("the coordinator answered HTTP {status}") } else { text },
        });
        Err(ClientError::Api { status, code: error.code, message: error.message })
    }

    async fn json<T: DeserializeOwned>(&self, request: RequestBuilder) -> Result<T, ClientError> {
        let response = self.send(request).await?;
        response.json().await.map_err(|source| ClientError::Http { url: self.base.clone(), source })
    }

    /// A fresh bearer token for this client's key, with the address it acts
    /// for and when it expires (for callers that use the REST API directly).
    pub async fn bearer_token(&self) -> Result<AuthToken, ClientError> {
        let token = self.token(true).await?;
        let session = self.session.as_ref().ok_or(ClientError::NoIdentity)?;
        let cached = session.token.lock().await;
        let expires_ms = cached.as_ref().map_or(0, |(_, expires_ms)| *expires_ms);
        Ok(AuthToken { token, address: session.identity.worker_id().0, expires_ms })
    }

    /// A bearer token for this client's key: the cached one, or (when
    /// `renew`, or none is left with time to spare) a new one.
    async fn token(&self, renew: bool) -> Result<String, ClientError> {
        let Some(session) = &self.session else {
            return Err(ClientError::NoIdentity);
        };
        let mut cached = session.token.lock().await;
        if let Some((token, expires_ms)) = cached.as_ref()
            && !renew
            && *expires_ms > now_ms() + TOKEN_RENEW_BEFORE_MS
        {
            return Ok(token.clone());
        }
        // The signature names the TLS channel it goes over, so the nonce
        // and the token are asked for on one connection of their own.
        let mut bound = crate::BoundConnection::open(self).await?;
        let nonce: AuthNonce = bound.post_json("/v1/auth/nonce", &serde_json::json!({})).await?;
        let address = session.identity.worker_id().0;
        let message = iog_proto::auth::token_signing_message(&nonce.nonce, &address, &nonce.audience, bound.channel());
        let request =
            TokenRequest { address, nonce: nonce.nonce, signature: hex::encode(session.identity.sign(&message)) };
        let issued: AuthToken = bound.post_json("/v1/auth/token", &request).await?;
        *cached = Some((issued.token.clone(), issued.expires_ms));
        Ok(issued.token)
    }

    /// Sends the request `make` builds with this client's bearer token; a
    /// token the coordinator no longer knows is renewed once and the
    /// request sent again.
    async fn send_authed(&self, make: impl Fn() -> RequestBuilder) -> Result<Response, ClientError> {
        let token = self.token(false).await?;
        match self.send(make().bearer_auth(token)).await {
            Err(err) if matches!(err.code(), Some("bad_token" | "token_expired")) => {
                let token = self.token(true).await?;
                self.send(make().bearer_auth(token)).await
            }
            other => other,
        }
    }

    async fn json_authed<T: DeserializeOwned>(&self, make: impl Fn() -> RequestBuilder) -> Result<T, ClientError> {
        let response = self.send_authed(make).await?;
        response.json().await.map_err(|source| ClientError::Http { url: self.base.clone(), source })
    }

    pub async fn health(&self) -> Result<Health, ClientError> {
        self.json(self.request(Method::GET, "/v1/health")).await
    }

    /// Submits a job spec (a parsed job file with its scene inlined).
    pub async fn submit(&self, spec: serde_json::Value) -> Result<SubmittedJob, ClientError> {
        self.submit_authorized(spec, None).await
    }

    /// Submits a job spec with its payer's authorization, which a spec with
    /// a `[payment]` section needs: the wallet's signature over
    /// [`submit_signing_message`](iog_proto::api::submit_signing_message)
    /// of `serde_json::to_vec(&spec)`, the bytes sent.
    pub async fn submit_authorized(
        &self,
        spec: serde_json::Value,
        authorization: Option<PaymentAuthorization>,
    ) -> Result<SubmittedJob, ClientError> {
        // A sealed job's workload never leaves this machine; its wire spec
        // names the sealed inputs in a `sealed` section instead.
        if spec["job"]["sealed"] == serde_json::Value::Bool(true) && spec.get("sealed").is_none() {
            return Err(ClientError::SealedInTheClear);
        }
        let spec =
            serde_json::value::RawValue::from_string(spec.to_string()).expect("a Value serializes to valid JSON");
        let body = SubmitJob { spec, authorization };
        self.json_authed(|| self.request(Method::POST, "/v1/jobs").json(&body)).await
    }

    /// What a paid job has cost so far.
    pub async fn billing(&self, job_id: JobId) -> Result<JobBilling, ClientError> {
        self.json_authed(|| self.request(Method::GET, &format!("/v1/jobs/{job_id}/billing"))).await
    }

    /// Any ledger account's balances, by its text form (`payout:<worker id>`).
    pub async fn account(&self, account: &str) -> Result<AccountStatus, ClientError> {
        self.json(self.request(Method::GET, &format!("/v1/accounts/{account}"))).await
    }

    /// The newest `limit` ledger operations that touched an account.
    pub async fn history(&self, account: &str, limit: usize) -> Result<Vec<HistoryEntry>, ClientError> {
        self.json(self.request(Method::GET, &format!("/v1/accounts/{account}/history?limit={limit}"))).await
    }

    /// One page of the ledger's journal, after sequence number `after`.
    pub async fn journal_page(&self, after: Option<u64>) -> Result<JournalPage, ClientError> {
        let path = match after {
            Some(after) => format!("/v1/ledger/journal?after={after}"),
            None => "/v1/ledger/journal".to_owned(),
        };
        self.json(self.request(Method::GET, &path)).await
    }

    /// The journal's signed checkpoints, oldest first.
    pub async fn checkpoints(&self) -> Result<Vec<CheckpointRow>, ClientError> {
        self.json(self.request(Method::GET, "/v1/ledger/checkpoints")).await
    }

    /// A worker's stake.
    pub async fn stake_status(&self, worker_id: &str) -> Result<StakeStatus, ClientError> {
        self.json(self.request(Method::GET, &format!("/v1/workers/{worker_id}/stake"))).await
    }

    /// Stakes (`unstake` false) or starts unstaking; `request.signature` is the worker's.
    pub async fn change_stake(
        &self,
        worker_id: &str,
        unstake: bool,
        request: &StakeRequest,
    ) -> Result<StakeStatus, ClientError> {
        let verb = if unstake { "unstake" } else { "stake" };
        self.json(self.request(Method::POST, &format!("/v1/workers/{worker_id}/{verb}")).json(request)).await
    }

    /// Moves a worker's earnings to its own wallet; `request.signature` is the worker's.
    pub async fn withdraw(&self, worker_id: &str, request: &StakeRequest) -> Result<WalletStatus, ClientError> {
        self.json(self.request(Method::POST, &format!("/v1/workers/{worker_id}/withdraw")).json(request)).await
    }

    /// Sends $IO from wallet `from`; `request.signature` is `from`'s.
    pub async fn send_io(&self, from: &str, request: &SendRequest) -> Result<WalletStatus, ClientError> {
        self.json(self.request(Method::POST, &format!("/v1/wallets/{from}/send")).json(request)).await
    }

    pub async fn job(&self, job_id: JobId) -> Result<JobStatus, ClientError> {
        self.json_authed(|| self.request(Method::GET, &format!("/v1/jobs/{job_id}"))).await
    }

    /// The most recent jobs, newest first.
    pub async fn jobs(&self, limit: u32) -> Result<Vec<JobStatus>, ClientError> {
        self.json_authed(|| self.request(Method::GET, &format!("/v1/jobs?limit={limit}"))).await
    }

    pub async fn tasks(&self, job_id: JobId) -> Result<Vec<TaskStatus>, ClientError> {
        self.json_authed(|| self.request(Method::GET, &format!("/v1/jobs/{job_id}/tasks"))).await
    }

    /// The task keys that workers holding tasks of one's sealed job wait
    /// for (see [`crate::sealed`]); empty for a job that is not sealed or
    /// has ended.
    pub async fn key_requests(&self, job_id: JobId) -> Result<Vec<KeyRequest>, ClientError> {
        self.json_authed(|| self.request(Method::GET, &format!("/v1/jobs/{job_id}/key-requests"))).await
    }

    /// Hands task keys, each wrapped to the worker that asked for it, to
    /// the coordinator to relay (see [`crate::sealed::serve_keys`]).
    pub async fn grant_task_keys(&self, job_id: JobId, grants: &[TaskKeyGrant]) -> Result<GrantOutcome, ClientError> {
        self.json_authed(|| self.request(Method::POST, &format!("/v1/jobs/{job_id}/task-keys")).json(grants)).await
    }

    pub async fn cancel(&self, job_id: JobId) -> Result<JobStatus, ClientError> {
        self.json_authed(|| self.request(Method::POST, &format!("/v1/jobs/{job_id}/cancel"))).await
    }

    pub async fn workers(&self) -> Result<Vec<WorkerStatus>, ClientError> {
        self.json(self.request(Method::GET, "/v1/workers")).await
    }

    /// Device groups of online workers matching a market query (empty: all).
    pub async fn market(&self, query: &str) -> Result<iog_proto::api::Market, ClientError> {
        self.json(self.request(Method::GET, "/v1/market").query(&[("q", query)])).await
    }

    /// A wallet's balance.
    pub async fn wallet(&self, address: &str) -> Result<WalletStatus, ClientError> {
        self.json(self.request(Method::GET, &format!("/v1/wallets/{address}"))).await
    }

    /// Asks a development network's faucet for `amount` (e.g. `"5"`);
    /// `request_id` (`t-<32 hex>`) makes a retry grant only once.
    pub async fn faucet(&self, address: &str, amount: &str, request_id: &str) -> Result<WalletStatus, ClientError> {
        let body = FaucetRequest { amount: amount.to_owned(), request_id: request_id.to_owned() };
        self.json_authed(|| self.request(Method::POST, &format!("/v1/wallets/{address}/faucet")).json(&body)).await
    }

    /// Downloads a blob and checks that its content matches its id.
    pub async fn get_blob(&self, blob_id: BlobId) -> Result<Vec<u8>, ClientError> {
        let response = self.send_authed(|| self.request(Method::GET, &format!("/v1/blobs/{blob_id}"))).await?;
        let bytes = response.bytes().await.map_err(|source| ClientError::Http { url: self.base.clone(), source })?;
        if BlobId::of(&bytes) != blob_id {
            return Err(ClientError::BlobMismatch { expected: blob_id });
        }
        Ok(bytes.to_vec())
    }

    /// Uploads a blob and returns its id.
    pub async fn put_blob(&self, bytes: Vec<u8>) -> Result<BlobId, ClientError> {
        let blob_id = BlobId::of(&bytes);
        let bytes = bytes::Bytes::from(bytes);
        self.send_authed(|| self.request(Method::PUT, &format!("/v1/blobs/{blob_id}")).body(bytes.clone())).await?;
        Ok(blob_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_and_mapped_to_the_stream() {
        let client = Client::new("http://127.0.0.1:7070/").unwrap();
        assert_eq!(client.url(), "http://127.0.0.1:7070");
        assert_eq!(client.stream_url(), "ws://127.0.0.1:7070/v1/worker/stream");
        let client = Client::new("https://coordinator.example:7070").unwrap();
        assert_eq!(client.stream_url(), "wss://coordinator.example:7070/v1/worker/stream");
        assert!(client.tls_config().is_some());
        let err = Client::new("127.0.0.1:7070").unwrap_err();
        assert_eq!(
            err.to_string(),
            "coordinator url \"127.0.0.1:7070\" is not valid: it must start with https:// (or http:// to this \
             machine); write it like https://127.0.0.1:7070"
        );
        assert!(Client::new("http://host:1/path").is_err());
        for local in ["http://localhost:1", "http://[::1]:1", "http://127.0.0.2:1"] {
            assert!(Client::new(local).is_ok(), "{local}");
        }
        let err = Client::new("http://10.0.0.1:7070").unwrap_err().to_string();
        assert!(err.contains("plain http:// is only for a coordinator on this machine"), "{err}");
        let pin = Some(crate::Fingerprint([7; 32]));
        assert!(Client::connect("http://127.0.0.1:1", pin).unwrap_err().to_string().contains("needs an https://"));
        let pinned = Client::connect("https://127.0.0.1:1", pin).unwrap();
        assert_eq!(pinned.pin(), pin);
    }
}

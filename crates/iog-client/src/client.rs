use std::time::Duration;

use iog_proto::api::{
    AccountStatus, ApiError, CheckpointRow, FaucetRequest, Health, HistoryEntry, JobBilling, JobStatus, JournalPage,
    PaymentAuthorization, SendRequest, StakeRequest, StakeStatus, SubmitJob, SubmittedJob, TaskStatus, WalletStatus,
    WorkerStatus,
};
use iog_types::{BlobId, JobId};
use reqwest::{Method, RequestBuilder, Response};
use serde::de::DeserializeOwned;

use crate::ClientError;

/// How long to wait for a TCP connection to the coordinator.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one request may take, blob transfers included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// A handle to one coordinator. Cheap to clone; clones share connections.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    http: reqwest::Client,
}

impl Client {
    /// A client for the coordinator at `url` (`http://host:port`).
    pub fn new(url: &str) -> Result<Client, ClientError> {
        let base = url.trim_end_matches('/').to_owned();
        let bad = |reason: &str| ClientError::BadUrl { url: url.to_owned(), reason: reason.to_owned() };
        let rest = base
            .strip_prefix("http://")
            .or_else(|| base.strip_prefix("https://"))
            .ok_or_else(|| bad("it must start with http:// or https://"))?;
        if rest.is_empty() || rest.contains('/') {
            return Err(bad("it must name a host and port and no path"));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|source| ClientError::Http { url: base.clone(), source })?;
        Ok(Client { base, http })
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

    async fn send(&self, request: RequestBuilder) -> Result<Response, ClientError> {
        let response = request.send().await.map_err(|source| {
            if source.is_connect() || source.is_timeout() {
                ClientError::Unreachable { url: self.base.clone(), source }
            } else {
                ClientError::Http { url: self.base.clone(), source }
            }
        })?;
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
        let spec =
            serde_json::value::RawValue::from_string(spec.to_string()).expect("a Value serializes to valid JSON");
        self.json(self.request(Method::POST, "/v1/jobs").json(&SubmitJob { spec, authorization })).await
    }

    /// What a paid job has cost so far.
    pub async fn billing(&self, job_id: JobId) -> Result<JobBilling, ClientError> {
        self.json(self.request(Method::GET, &format!("/v1/jobs/{job_id}/billing"))).await
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
        self.json(self.request(Method::GET, &format!("/v1/jobs/{job_id}"))).await
    }

    /// The most recent jobs, newest first.
    pub async fn jobs(&self, limit: u32) -> Result<Vec<JobStatus>, ClientError> {
        self.json(self.request(Method::GET, &format!("/v1/jobs?limit={limit}"))).await
    }

    pub async fn tasks(&self, job_id: JobId) -> Result<Vec<TaskStatus>, ClientError> {
        self.json(self.request(Method::GET, &format!("/v1/jobs/{job_id}/tasks"))).await
    }

    pub async fn cancel(&self, job_id: JobId) -> Result<JobStatus, ClientError> {
        self.json(self.request(Method::POST, &format!("/v1/jobs/{job_id}/cancel"))).await
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
        self.json(self.request(Method::POST, &format!("/v1/wallets/{address}/faucet")).json(&body)).await
    }

    /// Downloads a blob and checks that its content matches its id.
    pub async fn get_blob(&self, blob_id: BlobId) -> Result<Vec<u8>, ClientError> {
        let response = self.send(self.request(Method::GET, &format!("/v1/blobs/{blob_id}"))).await?;
        let bytes = response.bytes().await.map_err(|source| ClientError::Http { url: self.base.clone(), source })?;
        if BlobId::of(&bytes) != blob_id {
            return Err(ClientError::BlobMismatch { expected: blob_id });
        }
        Ok(bytes.to_vec())
    }

    /// Uploads a blob and returns its id.
    pub async fn put_blob(&self, bytes: Vec<u8>) -> Result<BlobId, ClientError> {
        let blob_id = BlobId::of(&bytes);
        self.send(self.request(Method::PUT, &format!("/v1/blobs/{blob_id}")).body(bytes)).await?;
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
        let err = Client::new("127.0.0.1:7070").unwrap_err();
        assert_eq!(
            err.to_string(),
            "coordinator url \"127.0.0.1:7070\" is not valid: it must start with http:// or https://; \
             write it like http://127.0.0.1:7070"
        );
        assert!(Client::new("http://host:1/path").is_err());
    }
}

//! One connection to the coordinator whose TLS channel is known, for the
//! requests that sign it.
//!
//! A signature that proves a key names the channel it travels on: the TLS
//! exporter value of its connection (RFC 9266, see
//! [`iog_proto::auth::channel_of_exporter`]). Only the two ends of one TLS
//! connection derive that value, so the request that carries the signature
//! must go over the very connection whose value it names: a pooled HTTP
//! client cannot promise that. A [`BoundConnection`] is one HTTP/1.1
//! connection, opened for the purpose, that can.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use iog_proto::api::ApiError;
use iog_proto::auth::channel_of_exporter;
use rustls::pki_types::ServerName;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Client, ClientError};

/// How long opening the connection (TCP and TLS) may take.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one request on it may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// One HTTP/1.1 connection to the coordinator and the channel binding of
/// its TLS session (`plain` on a loopback `http://` coordinator).
pub struct BoundConnection {
    sender: SendRequest<Full<Bytes>>,
    channel: String,
    /// `host:port`, for the `Host` header.
    authority: String,
    url: String,
}

impl std::fmt::Debug for BoundConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundConnection").field("url", &self.url).field("channel", &self.channel).finish()
    }
}

impl BoundConnection {
    /// Opens a connection to `client`'s coordinator, checked by the same
    /// pin or authorities as every other connection of the client.
    pub async fn open(client: &Client) -> Result<BoundConnection, ClientError> {
        let url = client.url().to_owned();
        let refused = |reason: String| ClientError::NotConnected { url: url.clone(), reason };
        let (authority, tls) = match (url.strip_prefix("https://"), url.strip_prefix("http://")) {
            (Some(rest), _) => (rest.to_owned(), true),
            (None, Some(rest)) => (rest.to_owned(), false),
            (None, None) => unreachable!("Client::connect admits only http:// and https:// urls"),
        };
        let authority = with_port(authority, tls);
        let tcp = tokio::time::timeout(OPEN_TIMEOUT, tokio::net::TcpStream::connect(&authority))
            .await
            .map_err(|_| refused(format!("connecting took over {OPEN_TIMEOUT:?}")))?
            .map_err(|err| refused(err.to_string()))?;
        tcp.set_nodelay(true).map_err(|err| refused(err.to_string()))?;
        let (sender, channel) = match client.tls_config().filter(|_| tls) {
            None => (handshake(tcp, &url).await?, channel_of_exporter(None)),
            Some(config) => {
                let host = host_of(&authority);
                let name = ServerName::try_from(host.to_owned())
                    .map_err(|err| ClientError::BadUrl { url: url.clone(), reason: err.to_string() })?;
                let stream =
                    tokio::time::timeout(OPEN_TIMEOUT, tokio_rustls::TlsConnector::from(config).connect(name, tcp))
                        .await
                        .map_err(|_| refused(format!("the TLS handshake took over {OPEN_TIMEOUT:?}")))?
                        .map_err(|err| ClientError::Tls { url: url.clone(), reason: err.to_string() })?;
                let channel = crate::tls::channel_of(stream.get_ref().1).map_err(|err| ClientError::Tls {
                    url: url.clone(),
                    reason: format!("no TLS channel binding: {err}"),
                })?;
                (handshake(stream, &url).await?, channel)
            }
        };
        Ok(BoundConnection { sender, channel, authority, url })
    }

    /// What a signature sent over this connection names as its channel.
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// Sends one request and returns the status and body as they came.
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        json_body: Option<Vec<u8>>,
    ) -> Result<(u16, Vec<u8>), ClientError> {
        let failed = |reason: String| ClientError::Connection { url: self.url.clone(), reason };
        let mut request = hyper::Request::builder().method(method).uri(path).header("host", &self.authority);
        if json_body.is_some() {
            request = request.header("content-type", "application/json");
        }
        let request = request
            .body(Full::new(Bytes::from(json_body.unwrap_or_default())))
            .map_err(|err| failed(format!("build the request: {err}")))?;
        let exchange = async {
            self.sender.ready().await?;
            let response = self.sender.send_request(request).await?;
            let status = response.status().as_u16();
            let body = response.into_body().collect().await?.to_bytes();
            Ok::<_, hyper::Error>((status, body.to_vec()))
        };
        tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| failed(format!("no answer within {REQUEST_TIMEOUT:?}")))?
            .map_err(|err| failed(err.to_string()))
    }

    /// Posts `body` as JSON and decodes the answer, or the API's error.
    pub async fn post_json<T: Serialize, R: DeserializeOwned>(
        &mut self,
        path: &str,
        body: &T,
    ) -> Result<R, ClientError> {
        let body = serde_json::to_vec(body).expect("request bodies serialize");
        let (status, bytes) = self.request("POST", path, Some(body)).await?;
        if !(200..300).contains(&status) {
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let error = serde_json::from_str::<ApiError>(&text).unwrap_or(ApiError {
                code: format!("http_{status}"),
                message: if text.is_empty() { format!("the coordinator answered HTTP {status}") } else { text },
            });
            return Err(ClientError::Api { status, code: error.code, message: error.message });
        }
        serde_json::from_slice(&bytes).map_err(|err| ClientError::Connection {
            url: self.url.clone(),
            reason: format!("the answer to POST {path} is not the JSON expected: {err}"),
        })
    }
}

/// `authority` with the scheme's own port when it names none.
fn with_port(authority: String, tls: bool) -> String {
    if authority.ends_with(']') || !authority.contains(':') {
        format!("{authority}:{}", if tls { 443 } else { 80 })
    } else {
        authority
    }
}

/// The host of `host:port` (an IPv6 address without its brackets).
fn host_of(authority: &str) -> &str {
    let host = authority.rsplit_once(':').map_or(authority, |(host, _)| host);
    host.trim_start_matches('[').trim_end_matches(']')
}

/// Starts HTTP/1.1 on `io` and drives the connection in the background.
async fn handshake<I>(io: I, url: &str) -> Result<SendRequest<Full<Bytes>>, ClientError>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|err| ClientError::Connection { url: url.to_owned(), reason: err.to_string() })?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_come_out_of_authorities() {
        assert_eq!(host_of("127.0.0.1:7070"), "127.0.0.1");
        assert_eq!(host_of("[::1]:7070"), "::1");
        assert_eq!(host_of("coordinator.example:443"), "coordinator.example");
        assert_eq!(with_port("coordinator.example".into(), true), "coordinator.example:443");
        assert_eq!(with_port("[::1]".into(), false), "[::1]:80");
        assert_eq!(with_port("[::1]:7070".into(), true), "[::1]:7070");
        assert_eq!(with_port("127.0.0.1:7070".into(), true), "127.0.0.1:7070");
    }
}

//! The coordinator's OpenAPI document at `GET /openapi.json`: it lists
//! every REST route the router serves with its method and parameters,
//! marks exactly the routes that take a bearer token as needing one, and
//! the answers a live coordinator really sends, successes and errors,
//! conform to what it declares for them.

mod common;

use std::time::Duration;

use common::Cluster;
use iog_host::Identity;
use iog_proto::auth::{AuthNonce, AuthToken, TokenRequest};
use iog_types::JobState;
use reqwest::{Method, RequestBuilder};
use serde_json::{Value, json};

/// Every REST route of the coordinator (the worker stream, a WebSocket, is
/// left out of the document), and whether it takes a bearer token.
const ROUTES: &[(&str, &str, bool)] = &[
    ("get", "/openapi.json", false),
    ("get", "/v1/health", false),
    ("post", "/v1/auth/nonce", false),
    ("post", "/v1/auth/token", false),
    ("post", "/v1/jobs", true),
    ("get", "/v1/jobs", true),
    ("get", "/v1/jobs/{job_id}", true),
    ("get", "/v1/jobs/{job_id}/tasks", true),
    ("post", "/v1/jobs/{job_id}/cancel", true),
    ("get", "/v1/jobs/{job_id}/billing", true),
    ("get", "/v1/jobs/{job_id}/key-requests", true),
    ("post", "/v1/jobs/{job_id}/task-keys", true),
    ("get", "/v1/blobs/{blob_id}", true),
    ("put", "/v1/blobs/{blob_id}", true),
    ("get", "/v1/wallets/{address}", false),
    ("post", "/v1/wallets/{address}/faucet", true),
    ("post", "/v1/wallets/{address}/send", false),
    ("get", "/v1/workers", false),
    ("get", "/v1/workers/{worker_id}/stake", false),
    ("post", "/v1/workers/{worker_id}/stake", false),
    ("post", "/v1/workers/{worker_id}/unstake", false),
    ("post", "/v1/workers/{worker_id}/withdraw", false),
    ("get", "/v1/market", false),
    ("get", "/v1/accounts/{account}", false),
    ("get", "/v1/accounts/{account}/history", false),
    ("get", "/v1/ledger/journal", false),
    ("get", "/v1/ledger/checkpoints", false),
];

/// Query parameters each route declares.
const QUERIES: &[(&str, &str, &[&str])] = &[
    ("get", "/v1/jobs", &["limit"]),
    ("get", "/v1/accounts/{account}/history", &["limit"]),
    ("get", "/v1/ledger/journal", &["after", "limit"]),
    ("get", "/v1/market", &["q"]),
];

const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/// `template` with its `{name}` parameters filled in by `fill`.
fn fill_template(template: &str, mut fill: impl FnMut(&str) -> String) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let end = rest[start..].find('}').unwrap() + start;
        out.push_str(&rest[..start]);
        out.push_str(&fill(&rest[start + 1..end]));
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Adds `additionalProperties: false` to every schema that lists its
/// properties, so that a field the server sends but the document does not
/// declare fails validation too.
fn close_objects(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if map.contains_key("properties") && !map.contains_key("additionalProperties") {
                map.insert("additionalProperties".into(), Value::Bool(false));
            }
            map.values_mut().for_each(close_objects);
        }
        Value::Array(items) => items.iter_mut().for_each(close_objects),
        _ => {}
    }
}

/// The document, and a client that checks every answer against it.
struct Api {
    document: Value,
    /// The document's components, closed (see [`close_objects`]), for `$ref`s to resolve into.
    components: Value,
    http: reqwest::Client,
    url: String,
    token: Option<String>,
}

impl Api {
    /// What the document declares for `status` of `method` `template`.
    fn declared(&self, method: &str, template: &str, status: u16) -> &Value {
        let operation = &self.document["paths"][template][method];
        assert!(operation.is_object(), "{method} {template} is not in the document");
        let declared = &operation["responses"][status.to_string()];
        assert!(declared.is_object(), "{method} {template} answered {status}, which the document does not declare");
        declared
    }

    /// Checks an answer against the document: its status is declared, its
    /// media type too, and a JSON body validates against its schema.
    /// Returns the JSON body (null for none or bytes).
    fn conform(&self, method: &str, template: &str, status: u16, media_type: Option<&str>, body: &[u8]) -> Value {
        let declared = self.declared(method, template, status);
        let Some(content) = declared.get("content") else {
            assert!(body.is_empty(), "{method} {template} {status} declares no body but sent {} bytes", body.len());
            return Value::Null;
        };
        let media_type = media_type.unwrap_or_else(|| panic!("{method} {template} {status} sent no content type"));
        let media_type = media_type.split(';').next().unwrap().trim();
        let schema = content
            .get(media_type)
            .unwrap_or_else(|| panic!("{method} {template} {status} sent {media_type}, declared: {content}"))
            .get("schema")
            .unwrap_or_else(|| panic!("{method} {template} {status} {media_type} has no schema"));
        if media_type != "application/json" {
            return Value::Null;
        }
        let instance: Value = serde_json::from_slice(body)
            .unwrap_or_else(|err| panic!("{method} {template} {status}: not JSON ({err}): {body:?}"));
        let mut root = schema.as_object().unwrap().clone();
        root.insert("components".into(), self.components.clone());
        let root = Value::Object(root);
        let validator = jsonschema::draft202012::new(&root)
            .unwrap_or_else(|err| panic!("{method} {template} {status}: the schema does not compile: {err}"));
        let errors: Vec<String> =
            validator.iter_errors(&instance).map(|err| format!("{} at {}", err, err.instance_path())).collect();
        assert!(
            errors.is_empty(),
            "{method} {template} {status} does not conform:\n{}\n{instance:#}",
            errors.join("\n")
        );
        instance
    }

    /// A request to `template` filled by `path`, with the bearer token when `authorized`.
    fn request(&self, method: &str, path: &str, authorized: bool) -> RequestBuilder {
        let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
        let request = self.http.request(method, format!("{}{path}", self.url));
        match (&self.token, authorized) {
            (Some(token), true) => request.bearer_auth(token),
            _ => request,
        }
    }

    /// Sends `request` for `method` `template`, checks the answer and
    /// returns its status and JSON body.
    async fn check(&self, method: &str, template: &str, request: RequestBuilder) -> (u16, Value) {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let media_type = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
        let body = response.bytes().await.unwrap();
        (status, self.conform(method, template, status, media_type.as_deref(), &body))
    }

    /// `check` for a request to `template` with its parameters `args`, in order.
    async fn call(&self, method: &str, template: &str, args: &[&str], body: Option<Value>) -> (u16, Value) {
        let mut args = args.iter();
        let path = fill_template(template, |_| args.next().unwrap().to_string());
        let mut request = self.request(method, &path, true);
        if let Some(body) = body {
            request = request.json(&body);
        }
        self.check(method, template, request).await
    }
}

fn hash_job(name: &str) -> Value {
    json!({
        "job": { "name": name, "workload": "hash" },
        "hash": { "algorithm": "blake3", "data": name, "nonce_start": 0, "nonce_count": 40000,
                  "nonces_per_task": 20000, "difficulty_bits": 8 },
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_lists_every_route_and_real_answers_conform_to_it() {
    let cluster = Cluster::start_with(1, &["--faucet-max-io", "100"]).await;
    let http = reqwest::Client::builder()
        .use_preconfigured_tls((*cluster.client.tls_config().unwrap()).clone())
        .build()
        .unwrap();
    let url = cluster.url();

    // The document, as JSON, is OpenAPI 3.
    let response = http.get(format!("{url}/openapi.json")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    let document: Value = response.json().await.unwrap();
    let version = document["openapi"].as_str().expect("an openapi version");
    assert!(version.starts_with("3."), "OpenAPI 3.x, not {version}");
    assert!(document["info"]["title"].is_string() && document["info"]["version"].is_string());
    let scheme = &document["components"]["securitySchemes"]["bearer"];
    assert_eq!((scheme["type"].as_str(), scheme["scheme"].as_str()), (Some("http"), Some("bearer")), "{scheme}");

    // It lists exactly the routes the router serves, and requires the
    // bearer token exactly where the handler takes a `Caller`.
    let paths = document["paths"].as_object().unwrap();
    let mut listed = Vec::new();
    for (path, item) in paths {
        for method in METHODS {
            if item.get(method).is_some() {
                listed.push((method.to_owned(), path.clone()));
            }
        }
    }
    let mut expected: Vec<(String, String)> =
        ROUTES.iter().map(|(m, p, _)| ((*m).to_owned(), (*p).to_owned())).collect();
    listed.sort();
    expected.sort();
    assert_eq!(listed, expected, "the document's routes");
    assert!(!paths.contains_key(iog_proto::STREAM_PATH), "the worker stream is a WebSocket, not REST");
    for (method, template, needs_token) in ROUTES {
        let operation = &document["paths"][template][method];
        let security = operation.get("security").and_then(Value::as_array).cloned().unwrap_or_default();
        if *needs_token {
            assert_eq!(security, vec![json!({ "bearer": [] })], "{method} {template} takes a bearer token");
            assert!(operation["responses"]["401"].is_object(), "{method} {template} declares 401");
        } else {
            assert!(security.is_empty(), "{method} {template} is public: {security:?}");
        }
        assert!(operation["responses"]["429"]["headers"]["Retry-After"].is_object(), "{method} {template} 429");
        // Every `{name}` in the path is a declared path parameter.
        let parameters = operation.get("parameters").and_then(Value::as_array).cloned().unwrap_or_default();
        let declared = |name: &str, place: &str| parameters.iter().any(|p| p["name"] == name && p["in"] == place);
        fill_template(template, |name| {
            assert!(declared(name, "path"), "{method} {template} declares path parameter {name}");
            String::new()
        });
        let queries = QUERIES.iter().find(|(m, p, _)| m == method && p == template).map_or(&[][..], |q| q.2);
        for name in queries {
            assert!(declared(name, "query"), "{method} {template} declares query parameter {name}");
        }
        let n_query = parameters.iter().filter(|p| p["in"] == "query").count();
        assert_eq!(n_query, queries.len(), "{method} {template} query parameters: {parameters:?}");
    }
    // Every schema compiles as JSON Schema.
    let mut components = document["components"].clone();
    close_objects(&mut components);
    for (name, schema) in components["schemas"].as_object().unwrap() {
        let mut root = schema.as_object().unwrap().clone();
        root.insert("components".into(), components.clone());
        jsonschema::draft202012::new(&Value::Object(root)).unwrap_or_else(|err| panic!("schema {name}: {err}"));
    }
    let mut api = Api { document, components, http, url: url.clone(), token: None };

    // Every protected route refuses a request without a token, with an
    // answer that conforms; every listed route is served (a route the
    // router does not serve answers 404 `not_found` or 405).
    for (method, template, needs_token) in ROUTES {
        let path = fill_template(template, |_| "x".to_owned());
        let (status, body) = api.check(method, template, api.request(method, &path, false)).await;
        assert_ne!(status, 405, "{method} {template} is served");
        assert_ne!(body["code"], "not_found", "{method} {template} is served");
        if *needs_token {
            assert_eq!((status, body["code"].as_str()), (401, Some("unauthenticated")), "{method} {template}");
        }
    }

    // A token, by the nonce and token endpoints themselves, on one
    // connection: the signature names its TLS channel.
    let identity = Identity::load_or_create(&cluster.wallet_dir()).unwrap();
    let address = identity.worker_id().0;
    let mut bound = iog_client::BoundConnection::open(&cluster.client).await.unwrap();
    let channel = bound.channel().to_owned();
    let mut bound_call = async |path: &str, body: Vec<u8>| {
        let (status, bytes) = bound.request("POST", path, Some(body)).await.unwrap();
        (status, api.conform("post", path, status, Some("application/json"), &bytes))
    };
    let (status, nonce) = bound_call("/v1/auth/nonce", b"{}".to_vec()).await;
    assert_eq!(status, 200);
    let nonce: AuthNonce = serde_json::from_value(nonce).unwrap();
    let message = iog_proto::auth::token_signing_message(&nonce.nonce, &address, &nonce.audience, &channel);
    let request =
        TokenRequest { address: address.clone(), nonce: nonce.nonce, signature: hex::encode(identity.sign(&message)) };
    let (status, token) = bound_call("/v1/auth/token", serde_json::to_vec(&request).unwrap()).await;
    assert_eq!(status, 200);
    let token: AuthToken = serde_json::from_value(token).unwrap();
    let (status, _) = bound_call("/v1/auth/token", serde_json::to_vec(&request).unwrap()).await;
    assert_eq!(status, 401, "a nonce is good once");
    // The same signature over another connection names the wrong channel.
    let (status, fresh) = api.call("post", "/v1/auth/nonce", &[], None).await;
    assert_eq!(status, 200);
    let fresh: AuthNonce = serde_json::from_value(fresh).unwrap();
    let message = iog_proto::auth::token_signing_message(&fresh.nonce, &address, &fresh.audience, &channel);
    let elsewhere =
        TokenRequest { address: address.clone(), nonce: fresh.nonce, signature: hex::encode(identity.sign(&message)) };
    let (status, body) = api.call("post", "/v1/auth/token", &[], Some(serde_json::to_value(&elsewhere).unwrap())).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("bad_signature")), "signed for another connection");
    api.token = Some(token.token);

    // Public reads.
    assert_eq!(api.call("get", "/openapi.json", &[], None).await.0, 200);
    let (status, health) = api.call("get", "/v1/health", &[], None).await;
    assert_eq!((status, health["status"].as_str()), (200, Some("ok")));
    let (status, workers) = api.call("get", "/v1/workers", &[], None).await;
    assert_eq!(status, 200);
    assert_eq!(workers.as_array().unwrap().len(), 1, "{workers}");
    let worker_id = workers[0]["worker_id"].as_str().unwrap().to_owned();
    let (status, market) = api.call("get", "/v1/market", &[], None).await;
    assert_eq!(status, 200);
    assert!(!market["offers"].as_array().unwrap().is_empty(), "{market}");
    assert_eq!(api.call("get", "/v1/market", &[], None).await.0, 200);
    assert_eq!(api.check("get", "/v1/market", api.request("get", "/v1/market?q=nosuchfield%3E1", false)).await.0, 400);
    assert_eq!(api.call("get", "/v1/workers/{worker_id}/stake", &[&worker_id], None).await.0, 200);

    // Money: the faucet, a signed send, balances, histories and the journal.
    let (status, _) = api
        .call(
            "post",
            "/v1/wallets/{address}/faucet",
            &[&address],
            Some(json!({"amount": "5", "request_id": format!("t-{:032x}", 1)})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = api
        .call(
            "post",
            "/v1/wallets/{address}/faucet",
            &[&address],
            Some(json!({"amount": "500", "request_id": format!("t-{:032x}", 2)})),
        )
        .await;
    assert_eq!(status, 400, "over the faucet's limit");
    let to = Identity::generate().worker_id().0;
    let request_id = format!("t-{:032x}", 3);
    let amount: iog_ledger::Amount = "1".parse().unwrap();
    let message = iog_proto::api::send_signing_message(&address, &to, amount.base_units(), &request_id);
    let send =
        json!({"to": to, "amount": "1", "request_id": request_id, "signature": hex::encode(identity.sign(&message))});
    let (status, wallet) = api.call("post", "/v1/wallets/{address}/send", &[&address], Some(send.clone())).await;
    assert_eq!(status, 200);
    assert_eq!(wallet["address"], address.as_str());
    let mut forged = send.clone();
    forged["signature"] = json!("00".repeat(64));
    assert_eq!(api.call("post", "/v1/wallets/{address}/send", &[&address], Some(forged)).await.0, 401);
    assert_eq!(api.call("get", "/v1/wallets/{address}", &[&address], None).await.0, 200);
    let account = format!("wallet:{address}");
    assert_eq!(api.call("get", "/v1/accounts/{account}", &[&account], None).await.0, 200);
    let (status, history) = api.call("get", "/v1/accounts/{account}/history", &[&account], None).await;
    assert_eq!(status, 200);
    assert!(history.as_array().unwrap().len() >= 2, "{history}");
    let (status, page) = api.call("get", "/v1/ledger/journal", &[], None).await;
    assert_eq!(status, 200);
    assert!(!page["entries"].as_array().unwrap().is_empty(), "{page}");
    let journal_again = api.request("get", "/v1/ledger/journal?after=0&limit=1", false);
    assert_eq!(api.check("get", "/v1/ledger/journal", journal_again).await.0, 200);
    assert_eq!(api.call("get", "/v1/ledger/checkpoints", &[], None).await.0, 200);
    let stake = json!({"amount": "1", "request_id": format!("t-{:032x}", 4), "signature": "00".repeat(64)});
    for verb in ["stake", "unstake", "withdraw"] {
        let template = format!("/v1/workers/{{worker_id}}/{verb}");
        let (status, _) = api.call("post", &template, &[&worker_id], Some(stake.clone())).await;
        assert_eq!(status, 401, "{verb} with another's signature");
    }

    // A job through its life: submission, listings, tasks, blobs.
    let (status, submitted) = api.call("post", "/v1/jobs", &[], Some(json!({ "spec": hash_job("openapi") }))).await;
    assert_eq!(status, 201);
    let job_id = submitted["job_id"].as_str().unwrap().to_owned();
    assert_eq!(api.call("get", "/v1/jobs/{job_id}", &[&job_id], None).await.0, 200);
    let status = cluster.wait_job(job_id.parse().unwrap(), Duration::from_secs(60), |s| s.is_settled()).await;
    assert_eq!(status.state, JobState::Done, "{status:?}");
    let (code, job) = api.call("get", "/v1/jobs/{job_id}", &[&job_id], None).await;
    assert_eq!((code, job["state"].as_str()), (200, Some("done")));
    let (code, jobs) = api.call("get", "/v1/jobs", &[], None).await;
    assert_eq!((code, jobs.as_array().unwrap().len()), (200, 1));
    assert_eq!(api.check("get", "/v1/jobs", api.request("get", "/v1/jobs?limit=1", true)).await.0, 200);
    assert_eq!(api.check("get", "/v1/jobs", api.request("get", "/v1/jobs?limit=many", true)).await.0, 400);
    let (code, tasks) = api.call("get", "/v1/jobs/{job_id}/tasks", &[&job_id], None).await;
    assert_eq!(code, 200);
    assert!(tasks[0]["output"].is_string(), "{tasks}");
    // The key desk of sealed jobs: nothing waits for a plain job that has
    // ended; a grant for a task of the job whose lease is gone is stale, one
    // that is not a wrapped key or names another job is refused.
    let (code, requests) = api.call("get", "/v1/jobs/{job_id}/key-requests", &[&job_id], None).await;
    assert_eq!((code, requests), (200, json!([])));
    let task_id = tasks[0]["task_id"].as_str().unwrap().to_owned();
    let grant = |task_id: &str, wrapped: String| json!([{ "task_id": task_id, "token": 1, "worker_id": worker_id, "wrapped": wrapped }]);
    let wrapped = "00".repeat(iog_seal::WRAPPED_KEY_BYTES);
    let (code, outcome) =
        api.call("post", "/v1/jobs/{job_id}/task-keys", &[&job_id], Some(grant(&task_id, wrapped.clone()))).await;
    assert_eq!((code, outcome), (200, json!({ "delivered": 0, "stale": 1 })));
    let (code, error) =
        api.call("post", "/v1/jobs/{job_id}/task-keys", &[&job_id], Some(grant(&task_id, "zz".into()))).await;
    assert_eq!((code, error["code"].as_str()), (400, Some("bad_grant")));
    let other = grant("j-0000000000000001/0", wrapped);
    let (code, error) = api.call("post", "/v1/jobs/{job_id}/task-keys", &[&job_id], Some(other)).await;
    assert_eq!((code, error["code"].as_str()), (400, Some("bad_grant")));
    assert_eq!(api.call("post", "/v1/jobs/{job_id}/cancel", &[&job_id], None).await.0, 409);
    let (code, bill) = api.call("get", "/v1/jobs/{job_id}/billing", &[&job_id], None).await;
    assert_eq!((code, bill["code"].as_str()), (404, Some("job_not_paid")));
    let missing = "j-0123456789abcdef";
    assert_eq!(api.call("get", "/v1/jobs/{job_id}", &[missing], None).await.0, 404);
    assert_eq!(api.call("get", "/v1/jobs/{job_id}", &["not-a-job"], None).await.0, 400);
    let artifact = job["artifacts"][0]["blob"].as_str().unwrap().to_owned();
    let (code, _) = api.call("get", "/v1/blobs/{blob_id}", &[&artifact], None).await;
    assert_eq!(code, 200);
    let bytes = b"bytes for the openapi test".to_vec();
    let blob_id = iog_types::BlobId::of(&bytes).to_string();
    let put = api.request("put", &format!("/v1/blobs/{blob_id}"), true).body(bytes.clone());
    assert_eq!(api.check("put", "/v1/blobs/{blob_id}", put).await.0, 201);
    let wrong = api.request("put", &format!("/v1/blobs/{artifact}"), true).body(bytes);
    assert_eq!(api.check("put", "/v1/blobs/{blob_id}", wrong).await.0, 400);

    // Bodies that are not what the endpoint takes are refused with an
    // `ApiError` and a declared status, whoever refuses them.
    let jobs = api.request("post", "/v1/jobs", true);
    let not_json = jobs.try_clone().unwrap().header("content-type", "application/json").body("{");
    assert_eq!(api.check("post", "/v1/jobs", not_json).await.0, 400);
    let plain = jobs.try_clone().unwrap().header("content-type", "text/plain").body("{}");
    assert_eq!(api.check("post", "/v1/jobs", plain).await.0, 415);
    let no_spec = jobs.try_clone().unwrap().json(&json!({ "specification": {} }));
    assert_eq!(api.check("post", "/v1/jobs", no_spec).await.0, 422);
    // A sealed job sent with its workload section (what only a client that
    // does not seal would send) is refused, not run in the clear.
    let unsealed =
        json!({ "spec": { "job": { "name": "x", "workload": "noop", "sealed": true }, "noop": { "n_tasks": 1 } } });
    let (code, error) = api.check("post", "/v1/jobs", jobs.try_clone().unwrap().json(&unsealed)).await;
    assert_eq!((code, error["code"].as_str()), (400, Some("invalid_spec")));
    assert!(error["message"].as_str().unwrap().contains("which a sealed job never sends"), "{error}");
    let bad_spec = jobs.json(&json!({ "spec": { "job": { "name": "x", "workload": "nothing" } } }));
    assert_eq!(api.check("post", "/v1/jobs", bad_spec).await.0, 400);

    // Routes nobody serves answer an `ApiError` as well.
    let response = api.http.get(format!("{url}/v1/nothing")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 404);
    let error: iog_proto::api::ApiError = response.json().await.unwrap();
    assert_eq!(error.code, "not_found");
    let response = api.http.delete(format!("{url}/v1/health")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 405);
    let error: iog_proto::api::ApiError = response.json().await.unwrap();
    assert_eq!(error.code, "method_not_allowed");
}

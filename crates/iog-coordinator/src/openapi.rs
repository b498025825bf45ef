//! The OpenAPI document of the REST API, served at `GET /openapi.json`.
//!
//! It is generated from the handlers' `#[utoipa::path]` attributes and the
//! wire types of `iog_proto`, so it changes with the code. The answers that
//! do not depend on the handler are added here, to every operation they
//! apply to: 429 (every request counts against its address), 401 where a
//! bearer token is needed, and the refusals of a JSON body (400, 413, 415
//! and 422).

use axum::Json;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{KnownFormat, SchemaFormat};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Content, Object, Ref, RefOr, Response, ResponseBuilder, Type};
use utoipa::{Modify, OpenApi};

/// Where the document is served.
pub(crate) const OPENAPI_PATH: &str = "/openapi.json";

/// The name of the security scheme of bearer tokens.
pub(crate) const BEARER_SCHEME: &str = "bearer";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "iog coordinator",
        description = "The REST API of an iog coordinator: jobs, blobs, wallets, the ledger, workers and their \
            market.\n\nRequests that act for a wallet carry a bearer token (`Authorization: Bearer <token>`), got \
            by signing a nonce: `POST /v1/auth/nonce`, then `POST /v1/auth/token`, both on one TLS 1.3 \
            connection, whose RFC 9266 `tls-exporter` value the signature names (`iog wallet token` prints a \
            token for tools that cannot derive it). Requests that move $IO \
            (send, stake, unstake, withdraw) carry the wallet's or worker's signature in their body instead. \
            Every error is an `ApiError` with a stable `code`; every request counts against its address's rate \
            limit and may be answered 429 with `Retry-After`.\n\nWorkers talk to the coordinator over a \
            WebSocket at `GET /v1/worker/stream` (JSON text frames, see `iog_proto::stream`), which this \
            document leaves out."
    ),
    paths(
        document,
        crate::api::health,
        crate::auth::nonce,
        crate::auth::token,
        crate::api::submit,
        crate::api::list_jobs,
        crate::api::job_status,
        crate::api::job_tasks,
        crate::api::cancel,
        crate::keys::key_requests,
        crate::keys::task_keys,
        crate::money::billing,
        crate::api::get_blob,
        crate::api::put_blob,
        crate::api::wallet,
        crate::api::faucet,
        crate::money::send,
        crate::api::workers,
        crate::money::stake_status,
        crate::money::stake,
        crate::money::unstake,
        crate::money::withdraw,
        crate::market::market,
        crate::money::account,
        crate::money::history,
        crate::money::journal,
        crate::money::checkpoints,
    ),
    modifiers(&Conventions),
    tags(
        (name = "health", description = "Whether the coordinator is up, and this document."),
        (name = "auth", description = "Bearer tokens for wallets that prove their key."),
        (name = "jobs", description = "The caller's jobs: submission, status, tasks, cancellation and bills."),
        (name = "blobs", description = "Content-addressed bytes: job inputs, task outputs and artifacts."),
        (name = "wallets", description = "Wallet balances and signed sends of $IO."),
        (name = "workers", description = "The workers that joined, and their stakes and earnings."),
        (name = "market", description = "What online workers offer, searched by query."),
        (name = "ledger", description = "Ledger accounts, their histories, the journal and its checkpoints."),
    ),
)]
struct ApiDoc;

/// `{job_id}` in a path.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[expect(dead_code, reason = "describes a path parameter to the document; handlers read it as text")]
pub(crate) struct JobIdPath {
    /// The job's id.
    #[param(pattern = "^j-[0-9a-f]{16}$", example = "j-0123456789abcdef")]
    job_id: String,
}

/// `{worker_id}` in a path.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[expect(dead_code, reason = "describes a path parameter to the document; handlers read it as text")]
pub(crate) struct WorkerIdPath {
    /// The worker's id: the base58 of its ed25519 public key, which is its wallet's address too.
    #[param(example = "6MXwkPPy2pDsJDnqcUKmEJBtQY1Ryp5PAyfFjdyNd6hM")]
    worker_id: String,
}

/// `{blob_id}` in a path.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[expect(dead_code, reason = "describes a path parameter to the document; handlers read it as text")]
pub(crate) struct BlobIdPath {
    /// The blob's id: the blake3 hash of its bytes, 64 hex digits.
    #[param(pattern = "^[0-9a-f]{64}$", example = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262")]
    blob_id: String,
}

/// `{address}` in a path.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[expect(dead_code, reason = "describes a path parameter to the document; handlers read it as text")]
pub(crate) struct AddressPath {
    /// The wallet's address: the base58 of its ed25519 public key.
    #[param(example = "6MXwkPPy2pDsJDnqcUKmEJBtQY1Ryp5PAyfFjdyNd6hM")]
    address: String,
}

/// `{account}` in a path.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[expect(dead_code, reason = "describes a path parameter to the document; handlers read it as text")]
pub(crate) struct AccountPath {
    /// The ledger account: `wallet:<address>`, `payout:<worker id>`, `stake:<worker id>`, `escrow:<job id>`,
    /// `fees`, `rewards` or `mint`.
    #[param(example = "wallet:6MXwkPPy2pDsJDnqcUKmEJBtQY1Ryp5PAyfFjdyNd6hM")]
    account: String,
}

/// The OpenAPI document.
pub(crate) fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// Serves this API's OpenAPI document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "health",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API.", body = serde_json::Value)),
)]
pub(crate) async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(openapi())
}

/// Adds the bearer scheme and the answers every operation of a kind shares.
struct Conventions;

impl Modify for Conventions {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let bearer = Http::builder()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some(
                "A token from `POST /v1/auth/token`, good for 15 minutes unless the coordinator says otherwise.",
            ))
            .build();
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(BEARER_SCHEME, SecurityScheme::Http(bearer));
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.options,
                &mut item.head,
                &mut item.patch,
                &mut item.trace,
            ];
            for operation in operations.into_iter().flatten() {
                add_shared_responses(operation);
                describe_bytes(operation);
            }
        }
    }
}

/// Describes every `application/octet-stream` body of `operation` as the bytes it is, not as the array of
/// numbers its Rust type would be in JSON.
fn describe_bytes(operation: &mut Operation) {
    let bytes =
        || Object::builder().schema_type(Type::String).format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)));
    let request = operation.request_body.iter_mut().flat_map(|body| body.content.iter_mut());
    let responses = operation.responses.responses.values_mut().flat_map(|response| match response {
        RefOr::T(response) => Some(response.content.iter_mut()),
        RefOr::Ref(_) => None,
    });
    for (media_type, content) in request.chain(responses.flatten()) {
        if media_type == "application/octet-stream" {
            content.schema = Some(bytes().build().into());
        }
    }
}

/// An error answer with an [`iog_proto::api::ApiError`] body.
fn error_response(description: &str) -> ResponseBuilder {
    Response::builder()
        .description(description)
        .content("application/json", Content::new(Some(Ref::from_schema_name("ApiError"))))
}

/// Adds to `operation` the answers that do not depend on its handler, unless it names them itself.
fn add_shared_responses(operation: &mut Operation) {
    let mut shared: Vec<(&str, Response)> = Vec::new();
    let retry_after = HeaderBuilder::new()
        .schema(Object::with_type(Type::Integer))
        .description(Some("Seconds to wait before asking again."))
        .build();
    shared.push((
        "429",
        error_response("Too many requests from this address or wallet (`rate_limited`).")
            .header("Retry-After", retry_after)
            .build(),
    ));
    let bearer = SecurityRequirement::new(BEARER_SCHEME, Vec::<String>::new());
    let needs_bearer = operation.security.as_ref().is_some_and(|requirements| requirements.contains(&bearer));
    if needs_bearer {
        shared.push((
            "401",
            error_response(
                "No bearer token (`unauthenticated`), or one this coordinator did not issue (`bad_token`) or that \
                 expired (`token_expired`).",
            )
            .build(),
        ));
    }
    let takes_json = operation.request_body.as_ref().is_some_and(|body| body.content.contains_key("application/json"));
    if takes_json {
        shared.extend([
            ("400", error_response("The body is not JSON (`bad_request`).").build()),
            ("413", error_response("The body is larger than the endpoint takes (`payload_too_large`).").build()),
            ("415", error_response("The body is not sent as `application/json` (`unsupported_media_type`).").build()),
            (
                "422",
                error_response("The body is JSON but not what the endpoint asks for (`unprocessable_entity`).").build(),
            ),
        ]);
    }
    for (status, response) in shared {
        operation.responses.responses.entry(status.to_owned()).or_insert(RefOr::T(response));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `$ref` under `value`.
    fn refs<'a>(value: &'a serde_json::Value, out: &mut Vec<&'a str>) {
        match value {
            serde_json::Value::Object(map) => {
                if let Some(serde_json::Value::String(target)) = map.get("$ref") {
                    out.push(target);
                }
                map.values().for_each(|v| refs(v, out));
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn every_reference_names_a_schema_of_the_document() {
        let document = serde_json::to_value(openapi()).unwrap();
        let schemas = document["components"]["schemas"].as_object().unwrap();
        let mut found = Vec::new();
        refs(&document, &mut found);
        assert!(!found.is_empty());
        for target in found {
            let name = target.strip_prefix("#/components/schemas/").unwrap_or_else(|| panic!("{target}"));
            assert!(schemas.contains_key(name), "{target} is not in the document");
        }
    }
}

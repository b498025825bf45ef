//! `GET /v1/market?q=…`: what online workers offer, searched with the
//! market query language of `iog_sched::query`.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use iog_proto::api::{ApiError, Market, MarketOffer};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::api::Failure;
use crate::server::AppState;

/// Most device groups one answer lists; the rest are counted.
const MARKET_LISTING_MAX: usize = 500;

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/v1/market", get(market))
}

/// The query of a market search.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct MarketQuery {
    /// A query in the market query language, such as `gpu_mem>=24 price<=0.8 region=eu`; everything when left out.
    q: Option<String>,
}

/// Searches what online workers offer.
///
/// Answers with the matching device groups of connected workers, cheapest first (ties: most free devices
/// first), at most 500 of them.
#[utoipa::path(
    get,
    path = "/v1/market",
    tag = "market",
    params(MarketQuery),
    responses(
        (status = 200, description = "The matching device groups.", body = Market),
        (status = 400, description = "The query is not valid (`bad_query`), or the query string is not.",
            body = ApiError),
        (status = 503, description = "The coordinator's engine is stopping (`unavailable`).", body = ApiError),
    ),
)]
pub(crate) async fn market(
    State(state): State<AppState>,
    Query(query): Query<MarketQuery>,
) -> Result<Json<Market>, Failure> {
    let text = query.q.unwrap_or_default();
    let parsed: iog_sched::query::Query = text.parse().map_err(|err: iog_sched::query::QueryError| {
        Failure::new(StatusCode::BAD_REQUEST, "bad_query", err.to_string())
    })?;
    let mut offers: Vec<MarketOffer> = Vec::new();
    for view in state.engine.workers().await? {
        if !view.connected {
            continue;
        }
        for (group, in_use) in view.offer.groups.iter().zip(view.in_use_by_group.iter().copied()) {
            if group.count == 0 || !parsed.matches(&view.offer, group, view.trust) {
                continue;
            }
            offers.push(MarketOffer {
                worker_id: view.worker_id.clone(),
                region: view.offer.region.clone(),
                price_io_per_device_hour: view.offer.price_io_per_device_hour.to_string(),
                group: group.clone(),
                free: group.count.saturating_sub(in_use),
                trust: view.trust,
                idle_only: view.offer.idle_only,
                available: view.available,
                software: view.offer.software.iter().map(|s| format!("{} {}", s.name, s.version)).collect(),
            });
        }
    }
    offers.sort_by(|a, b| {
        let price = |o: &MarketOffer| {
            o.price_io_per_device_hour.parse::<iog_ledger::Amount>().unwrap_or(iog_ledger::Amount::MAX)
        };
        price(a).cmp(&price(b)).then(b.free.cmp(&a.free)).then(a.worker_id.cmp(&b.worker_id))
    });
    let n_more = offers.len().saturating_sub(MARKET_LISTING_MAX) as u32;
    offers.truncate(MARKET_LISTING_MAX);
    Ok(Json(Market { query: parsed.to_string(), offers, n_more }))
}

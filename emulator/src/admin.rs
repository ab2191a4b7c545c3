//! The admin API under `/_emulator/` (no SiteWise path starts with `_`): the request journal,
//! per-operation counters, the current state, seeding, faults, quotas, timings, forcing an
//! asset into FAILED, and reset.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::Deserialize;
use serde_json::json;

use crate::Shared;
use crate::config::{Quotas, Timings};
use crate::faults::{FaultConfig, ScriptedFault};
use crate::seed::{self, Seed};

pub const PREFIX: &str = "/_emulator";

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/journal", get(journal))
        .route("/counters", get(counters))
        .route("/state", get(state))
        .route("/seed", post(seed_state))
        .route("/reset", post(reset))
        .route("/faults", get(get_faults).put(put_faults))
        .route("/faults/scripted", post(add_scripted))
        .route("/quotas", get(get_quotas).put(put_quotas))
        .route("/timings", put(put_timings))
        .route("/assets/{id}/fail", post(fail_asset))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct JournalFilter {
    operation: Option<String>,
    target: Option<String>,
    since: Option<u64>,
}

async fn journal(State(store): State<Shared>, Query(filter): Query<JournalFilter>) -> Response {
    let store = crate::tenants::current(&store);
    let store = crate::lock(&store);
    let entries: Vec<_> = store
        .journal()
        .iter()
        .filter(|e| filter.since.is_none_or(|s| e.seq > s))
        .filter(|e| {
            filter
                .operation
                .as_deref()
                .is_none_or(|op| e.operation.as_str() == op)
        })
        .filter(|e| {
            filter.target.as_deref().is_none_or(|t| {
                e.target.as_deref() == Some(t) || e.resolved_id.as_deref() == Some(t)
            })
        })
        .collect();
    axum::Json(json!({ "entries": entries })).into_response()
}

async fn counters(State(store): State<Shared>) -> Response {
    let store = crate::tenants::current(&store);
    axum::Json(json!(crate::lock(&store).counters())).into_response()
}

async fn state(State(store): State<Shared>) -> Response {
    let store = crate::tenants::current(&store);
    let mut store = crate::lock(&store);
    store.settle(std::time::Instant::now());
    axum::Json(store.snapshot()).into_response()
}

async fn seed_state(State(store): State<Shared>, axum::Json(seed): axum::Json<Seed>) -> Response {
    let store = crate::tenants::current(&store);
    match seed::apply(&mut crate::lock(&store), &seed) {
        Ok(seeded) => axum::Json(seeded).into_response(),
        Err(err) => err.into_response(),
    }
}

async fn reset(State(store): State<Shared>) -> Response {
    let store = crate::tenants::current(&store);
    crate::lock(&store).reset();
    StatusCode::NO_CONTENT.into_response()
}

async fn get_faults(State(store): State<Shared>) -> Response {
    let store = crate::tenants::current(&store);
    axum::Json(crate::lock(&store).settings.faults.clone()).into_response()
}

async fn put_faults(
    State(store): State<Shared>,
    axum::Json(faults): axum::Json<FaultConfig>,
) -> Response {
    let store = crate::tenants::current(&store);
    crate::lock(&store).settings.faults = faults;
    StatusCode::NO_CONTENT.into_response()
}

async fn add_scripted(
    State(store): State<Shared>,
    axum::Json(fault): axum::Json<ScriptedFault>,
) -> Response {
    let store = crate::tenants::current(&store);
    crate::lock(&store).settings.faults.scripted.push(fault);
    StatusCode::NO_CONTENT.into_response()
}

async fn get_quotas(State(store): State<Shared>) -> Response {
    let store = crate::tenants::current(&store);
    axum::Json(crate::lock(&store).settings.quotas.clone()).into_response()
}

async fn put_quotas(
    State(store): State<Shared>,
    axum::Json(quotas): axum::Json<Quotas>,
) -> Response {
    let store = crate::tenants::current(&store);
    let mut store = crate::lock(&store);
    store.settings.quotas = quotas;
    store.reset_limiter();
    StatusCode::NO_CONTENT.into_response()
}

async fn put_timings(
    State(store): State<Shared>,
    axum::Json(timings): axum::Json<Timings>,
) -> Response {
    let store = crate::tenants::current(&store);
    crate::lock(&store).settings.timings = timings;
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct FailRequest {
    code: Option<String>,
    message: Option<String>,
}

async fn fail_asset(
    State(store): State<Shared>,
    Path(id): Path<String>,
    body: Option<axum::Json<FailRequest>>,
) -> Response {
    let store = crate::tenants::current(&store);
    let request = body.map(|b| b.0).unwrap_or_default();
    let code = request.code.unwrap_or_else(|| "VALIDATION_ERROR".into());
    let message = request
        .message
        .unwrap_or_else(|| "Forced into FAILED by the emulator admin API".into());
    match crate::lock(&store).force_failed(&id, &code, &message) {
        Ok(id) => axum::Json(json!({"assetId": id, "state": "FAILED"})).into_response(),
        Err(err) => err.into_response(),
    }
}

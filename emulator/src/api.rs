//! The SiteWise REST-JSON routes: exact methods, paths and status codes, percent-decoded path
//! labels, repeated query keys, JSON bodies, the error wire format and a request id on every
//! response. Any `Host` is accepted (clients send `api.<host>`); SigV4 is not checked.

use std::collections::HashMap;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::Shared;
use crate::error::{ApiError, ApiResult};
use crate::ops::Op;
use crate::store::{Call, Reply, Store};

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/asset-models", post(create_asset_model))
        .route(
            "/asset-models/{id}",
            get(describe_asset_model)
                .put(update_asset_model)
                .delete(delete_asset_model),
        )
        .route("/assets", post(create_asset).get(list_assets))
        .route(
            "/assets/{id}",
            get(describe_asset).put(update_asset).delete(delete_asset),
        )
        .route("/assets/{id}/associate", post(associate_assets))
        .route("/assets/{id}/disassociate", post(disassociate_assets))
        .route("/assets/{id}/hierarchies", get(list_associated_assets))
        .route(
            "/assets/{id}/properties/{property}",
            axum::routing::put(update_asset_property),
        )
        .route(
            "/tags",
            post(tag_resource).delete(untag_resource).get(list_tags),
        )
}

tokio::task_local! {
    /// The app name of the client whose request is being served.
    static CLIENT_APP: Option<String>;
}

/// Serves the request knowing the client's app name: the `app/<name>` part of its user agent
/// (`x-amz-user-agent`, else `user-agent`), which SDKs send when an app name is configured and
/// CloudTrail records. The journal names the client of every call with it.
pub async fn with_client_app(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let headers = request.headers();
    let app = ["x-amz-user-agent", "user-agent"]
        .iter()
        .filter_map(|h| headers.get(*h).and_then(|v| v.to_str().ok()))
        .flat_map(str::split_whitespace)
        .find_map(|part| part.strip_prefix("app/"))
        .map(str::to_string);
    CLIENT_APP.scope(app, next.run(request)).await
}

/// The app name of the client being served, if it sent one.
pub fn client_app() -> Option<String> {
    CLIENT_APP.try_with(Clone::clone).ok().flatten()
}

/// Query pairs in order (repeated keys kept).
fn query_pairs(raw: Option<String>) -> Vec<(String, String)> {
    raw.and_then(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(&q).ok())
        .unwrap_or_default()
}

fn query_map(pairs: &[(String, String)]) -> HashMap<String, String> {
    pairs.iter().cloned().collect()
}

/// The JSON body; an empty body is an empty object.
fn json_body(bytes: &Bytes) -> ApiResult<Value> {
    if bytes.is_empty() {
        return Ok(json!({}));
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(ApiError::invalid("The request body must be a JSON object")),
        Err(e) => Err(ApiError::invalid(format!(
            "The request body is not valid JSON: {e}"
        ))),
    }
}

/// Canonical parameters without the token (serde_json maps are sorted).
fn fingerprint(path: &str, body: &ApiResult<Value>) -> String {
    let mut body = body.clone().unwrap_or(Value::Null);
    if let Some(obj) = body.as_object_mut() {
        obj.remove("clientToken");
    }
    json!({"path": path, "body": body}).to_string()
}

/// The body's clientToken. A member of the wrong JSON type is kept as its JSON text, which
/// no valid token looks like (`\S{36,64}` of a string), so it is refused, never ignored: an
/// ignored token would silently remove the call's idempotency.
fn body_token(body: &ApiResult<Value>) -> Option<String> {
    match body.as_ref().ok()?.get("clientToken")? {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(format!("(not a string: {other})")),
    }
}

fn reply_response(reply: Reply) -> Response {
    let mut response = match reply.body {
        Some(body) => (reply.status, axum::Json(body)).into_response(),
        None => reply.status.into_response(),
    };
    if let Some(etag) = reply.etag
        && let Ok(value) = HeaderValue::from_str(&etag)
    {
        response.headers_mut().insert("ETag", value);
    }
    response
}

/// Runs one request to completion in a task of its own: like AWS, the emulator finishes a call
/// it received even when the client hangs up meanwhile (during injected latency, for one).
async fn serve(
    store: &Shared,
    op: Op,
    call: Call,
    run: impl FnOnce(&mut Store) -> ApiResult<Reply> + Send + 'static,
) -> Response {
    let store = crate::tenants::current(store);
    let app = client_app();
    let work = tokio::spawn(CLIENT_APP.scope(app, async move {
        let latency = crate::lock(&store).settings.faults.latency(op);
        if latency > Duration::ZERO {
            tokio::time::sleep(latency).await;
        }
        let result = crate::lock(&store).execute(op, call, run);
        // The call took effect; its answer is held back (a client that gives up or dies
        // meanwhile never learns the outcome, as with a lost response from AWS).
        let late = crate::lock(&store)
            .settings
            .faults
            .answer_delay(op, &mut rand::rng());
        if late > Duration::ZERO {
            tokio::time::sleep(late).await;
        }
        result
    }));
    match work.await {
        Ok(Ok(reply)) => reply_response(reply),
        Ok(Err(err)) => err.into_response(),
        Err(e) => ApiError::new(
            crate::error::ErrorCode::InternalFailureException,
            format!("the request failed inside the emulator: {e}"),
        )
        .into_response(),
    }
}

async fn create_asset_model(State(store): State<Shared>, bytes: Bytes) -> Response {
    let body = json_body(&bytes);
    let call = Call {
        target: None,
        child: None,
        client_token: body_token(&body),
        fingerprint: fingerprint("", &body),
    };
    serve(&store, Op::CreateAssetModel, call, move |s| {
        s.create_asset_model(&body?)
    })
    .await
}

async fn describe_asset_model(
    State(store): State<Shared>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let query = query_map(&query_pairs(q));
    let call = Call {
        target: Some(id.clone()),
        ..Default::default()
    };
    serve(&store, Op::DescribeAssetModel, call, move |s| {
        s.describe_asset_model(&id, query.get("assetModelVersion").map(String::as_str))
    })
    .await
}

async fn delete_asset_model(
    State(store): State<Shared>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    headers: axum::http::HeaderMap,
) -> Response {
    let call = delete_call(&id, q);
    let if_match = if_match(&headers);
    serve(&store, Op::DeleteAssetModel, call, move |s| {
        s.delete_asset_model(&id, if_match.as_deref())
    })
    .await
}

async fn update_asset_model(
    State(store): State<Shared>,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
    bytes: Bytes,
) -> Response {
    let body = json_body(&bytes);
    let call = update_call(&id, &body);
    let if_match = if_match(&headers);
    serve(&store, Op::UpdateAssetModel, call, move |s| {
        s.update_asset_model(&id, &body?, if_match.as_deref())
    })
    .await
}

/// The journal entry of an update of `id` whose body carries the clientToken.
fn update_call(id: &str, body: &ApiResult<Value>) -> Call {
    Call {
        target: Some(id.to_string()),
        child: None,
        client_token: body_token(body),
        fingerprint: fingerprint(id, body),
    }
}

/// The `If-Match` header (an ETag), when sent.
fn if_match(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get("If-Match")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

async fn create_asset(State(store): State<Shared>, bytes: Bytes) -> Response {
    let body = json_body(&bytes);
    let call = Call {
        target: None,
        child: None,
        client_token: body_token(&body),
        fingerprint: fingerprint("", &body),
    };
    serve(&store, Op::CreateAsset, call, move |s| {
        s.create_asset(&body?)
    })
    .await
}

async fn describe_asset(
    State(store): State<Shared>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let query = query_map(&query_pairs(q));
    let exclude = query.get("excludeProperties").map(String::as_str) == Some("true");
    let call = Call {
        target: Some(id.clone()),
        ..Default::default()
    };
    serve(&store, Op::DescribeAsset, call, move |s| {
        s.describe_asset(&id, exclude)
    })
    .await
}

async fn update_asset_property(
    State(store): State<Shared>,
    Path((id, property)): Path<(String, String)>,
    bytes: Bytes,
) -> Response {
    let body = json_body(&bytes);
    let call = Call {
        target: Some(id.clone()),
        child: Some(property.clone()),
        client_token: body_token(&body),
        fingerprint: fingerprint(&format!("{id}/{property}"), &body),
    };
    serve(&store, Op::UpdateAssetProperty, call, move |s| {
        s.update_asset_property(&id, &property, &body?)
    })
    .await
}

async fn update_asset(
    State(store): State<Shared>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Response {
    let body = json_body(&bytes);
    let call = update_call(&id, &body);
    serve(&store, Op::UpdateAsset, call, move |s| {
        s.update_asset(&id, &body?)
    })
    .await
}

async fn delete_asset(
    State(store): State<Shared>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let call = delete_call(&id, q);
    serve(&store, Op::DeleteAsset, call, move |s| s.delete_asset(&id)).await
}

/// DELETE operations take their clientToken from the query string and have no body.
fn delete_call(id: &str, raw_query: Option<String>) -> Call {
    Call {
        target: Some(id.to_string()),
        child: None,
        client_token: query_map(&query_pairs(raw_query))
            .get("clientToken")
            .cloned(),
        fingerprint: fingerprint(id, &Ok(Value::Null)),
    }
}

fn association_call(id: &str, body: &ApiResult<Value>) -> Call {
    Call {
        target: Some(id.to_string()),
        child: body
            .as_ref()
            .ok()
            .and_then(|b| b.get("childAssetId"))
            .and_then(Value::as_str)
            .map(str::to_string),
        client_token: body_token(body),
        fingerprint: fingerprint(id, body),
    }
}

async fn associate_assets(
    State(store): State<Shared>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Response {
    let body = json_body(&bytes);
    let call = association_call(&id, &body);
    serve(&store, Op::AssociateAssets, call, move |s| {
        s.associate_assets(&id, &body?)
    })
    .await
}

async fn disassociate_assets(
    State(store): State<Shared>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Response {
    let body = json_body(&bytes);
    let call = association_call(&id, &body);
    serve(&store, Op::DisassociateAssets, call, move |s| {
        s.disassociate_assets(&id, &body?)
    })
    .await
}

async fn list_associated_assets(
    State(store): State<Shared>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let query = query_map(&query_pairs(q));
    let call = Call {
        target: Some(id.clone()),
        ..Default::default()
    };
    serve(&store, Op::ListAssociatedAssets, call, move |s| {
        s.list_associated_assets(&id, &query)
    })
    .await
}

async fn list_assets(State(store): State<Shared>, RawQuery(q): RawQuery) -> Response {
    let query = query_map(&query_pairs(q));
    serve(&store, Op::ListAssets, Call::default(), move |s| {
        s.list_assets(&query)
    })
    .await
}

fn resource_arn(query: &HashMap<String, String>) -> ApiResult<String> {
    query.get("resourceArn").cloned().ok_or_else(|| {
        ApiError::invalid(
            "1 validation error detected: Value null at 'resourceArn' failed to satisfy constraint: Member must not be null",
        )
    })
}

async fn tag_resource(
    State(store): State<Shared>,
    RawQuery(q): RawQuery,
    bytes: Bytes,
) -> Response {
    let query = query_map(&query_pairs(q));
    let body = json_body(&bytes);
    let call = Call {
        target: query.get("resourceArn").cloned(),
        ..Default::default()
    };
    serve(&store, Op::TagResource, call, move |s| {
        s.tag_resource(&resource_arn(&query)?, &body?)
    })
    .await
}

async fn untag_resource(State(store): State<Shared>, RawQuery(q): RawQuery) -> Response {
    let pairs = query_pairs(q);
    let query = query_map(&pairs);
    let keys: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| k == "tagKeys")
        .map(|(_, v)| v.clone())
        .collect();
    let call = Call {
        target: query.get("resourceArn").cloned(),
        ..Default::default()
    };
    serve(&store, Op::UntagResource, call, move |s| {
        s.untag_resource(&resource_arn(&query)?, &keys)
    })
    .await
}

async fn list_tags(State(store): State<Shared>, RawQuery(q): RawQuery) -> Response {
    let query = query_map(&query_pairs(q));
    let call = Call {
        target: query.get("resourceArn").cloned(),
        ..Default::default()
    };
    serve(&store, Op::ListTagsForResource, call, move |s| {
        s.list_tags(&resource_arn(&query)?)
    })
    .await
}

/// Anything else: the route does not exist in SiteWise.
pub async fn unknown_operation() -> Response {
    let mut response = (
        StatusCode::NOT_FOUND,
        axum::Json(json!({"message": "No SiteWise operation matches this method and path"})),
    )
        .into_response();
    response.headers_mut().insert(
        "x-amzn-ErrorType",
        HeaderValue::from_static("UnknownOperationException"),
    );
    response
}

/// Refusals made below the operations (a method a path does not serve, a body over the size
/// limit, a path or query that does not decode) come from the web framework as plain text.
/// They are answered the way SiteWise answers, so SDKs decode them: `x-amzn-ErrorType` and a
/// JSON `message`. The admin API is left as it is.
pub async fn aws_shaped_refusals(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let admin = request.uri().path().starts_with(crate::admin::PREFIX);
    let response = next.run(request).await;
    let status = response.status();
    if admin || status.as_u16() < 400 || response.headers().contains_key("x-amzn-ErrorType") {
        return response;
    }
    let detail = axum::body::to_bytes(response.into_body(), 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let (status, code, message) = match status {
        StatusCode::METHOD_NOT_ALLOWED => (
            StatusCode::NOT_FOUND,
            "UnknownOperationException",
            "No SiteWise operation matches this method and path".to_string(),
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLargeException",
            format!("The request body is too large: {detail}"),
        ),
        _ => (
            StatusCode::BAD_REQUEST,
            "InvalidRequestException",
            format!("The request could not be read: {detail}"),
        ),
    };
    let mut response = (status, axum::Json(json!({ "message": message }))).into_response();
    response
        .headers_mut()
        .insert("x-amzn-ErrorType", HeaderValue::from_static(code));
    response
}

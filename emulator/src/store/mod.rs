//! The emulated account: asset models, assets, hierarchy links, remembered clientTokens, the
//! request journal and counters, and the SiteWise operations on them.
//!
//! Asynchronous transitions (CREATING/UPDATING -> ACTIVE, DELETING -> gone) are stored with
//! their due time and applied lazily at the start of every request, so there are no timers and
//! a delay of zero resolves on the very next call. Every request goes through
//! [`Store::execute`]: quota, faults, clientToken replay, the operation, journal.

use std::collections::{BTreeMap, HashMap};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Serialize;
use serde_json::{Value, json};

use crate::config::Settings;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::ops::Op;
use crate::quota::RateLimiter;
use crate::rules;
use crate::validate;

mod assets;
mod links;
mod model_update;
mod models;
mod properties;
mod tags;

/// A successful answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    pub status: StatusCode,
    /// `None` for operations without an output shape (empty body).
    pub body: Option<Value>,
    pub etag: Option<String>,
}

impl Reply {
    pub fn ok(body: Value) -> Self {
        Self {
            status: StatusCode::OK,
            body: Some(body),
            etag: None,
        }
    }

    pub fn accepted(body: Value) -> Self {
        Self {
            status: StatusCode::ACCEPTED,
            body: Some(body),
            etag: None,
        }
    }

    pub fn empty() -> Self {
        Self {
            status: StatusCode::OK,
            body: None,
            etag: None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Active,
    Gone,
}

#[derive(Clone, Copy, Debug)]
struct Pending {
    to: Target,
    due: Instant,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Hierarchy {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    pub name: String,
    pub child_asset_model_id: String,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Model {
    pub id: String,
    pub external_id: Option<String>,
    pub arn: String,
    pub name: String,
    pub description: Option<String>,
    pub model_type: String,
    pub hierarchies: Vec<Hierarchy>,
    pub properties: Vec<Value>,
    pub state: String,
    #[serde(skip)]
    pending: Option<Pending>,
    pub created: f64,
    pub updated: f64,
    pub tags: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Asset {
    pub id: String,
    pub external_id: Option<String>,
    pub arn: String,
    pub name: String,
    pub description: Option<String>,
    pub model_id: String,
    pub state: String,
    pub error: Option<Value>,
    #[serde(skip)]
    pending: Option<Pending>,
    pub created: f64,
    pub updated: f64,
    pub tags: BTreeMap<String, String>,
    /// The asset's properties, one per property definition of its model.
    pub properties: Vec<AssetProperty>,
    #[serde(skip)]
    seq: u64,
}

/// A property of an asset: the model's definition plus the settings UpdateAssetProperty
/// changes. It has the ID of the definition, as in SiteWise.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AssetProperty {
    pub id: String,
    pub external_id: Option<String>,
    pub name: String,
    pub data_type: String,
    pub unit: Option<String>,
    pub alias: Option<String>,
    /// `ENABLED` or `DISABLED`.
    pub notification_state: String,
}

/// A child's link to its parent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Link {
    pub parent_id: String,
    pub hierarchy_id: String,
}

#[derive(Clone, Debug)]
struct TokenRecord {
    fingerprint: String,
    reply: Reply,
    at: Instant,
}

/// One request as the emulator saw it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JournalEntry {
    pub seq: u64,
    /// Epoch seconds.
    pub time: f64,
    pub operation: Op,
    /// The asset or model the request addressed, as sent.
    pub target: Option<String>,
    /// The UUID it resolved to, when it did.
    pub resolved_id: Option<String>,
    /// Child asset of association calls.
    pub child: Option<String>,
    pub client_token: Option<String>,
    pub status: u16,
    pub error_code: Option<String>,
    /// Answered from a remembered clientToken, without effect.
    pub replay: bool,
    /// The client's app name (`app/<name>` in its user agent), when it sent one.
    pub app: Option<String>,
}

/// What a request addresses, for faults and the journal.
#[derive(Clone, Debug, Default)]
pub struct Call {
    pub target: Option<String>,
    pub child: Option<String>,
    pub client_token: Option<String>,
    /// Canonical form of the parameters, compared on clientToken replay.
    pub fingerprint: String,
}

pub struct Store {
    pub settings: Settings,
    models: BTreeMap<String, Model>,
    assets: BTreeMap<String, Asset>,
    /// child -> parent link
    links: BTreeMap<String, Link>,
    seq: u64,
    tokens: HashMap<(Op, String), TokenRecord>,
    limiter: RateLimiter,
    journal: Vec<JournalEntry>,
    counters: BTreeMap<String, BTreeMap<String, u64>>,
    /// Key of the page tokens this store issues.
    token_secret: uuid::Uuid,
}

fn epoch_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| (d.as_millis() as f64) / 1000.0)
        .unwrap_or_default()
}

fn status_json(state: &str, error: Option<&Value>) -> Value {
    match error {
        Some(e) => json!({"state": state, "error": e}),
        None => json!({"state": state}),
    }
}

/// The first 16 hex digits of a name-based UUID of `secret`, `listing` and `offset`: a tag
/// only this store can make, so a token it never issued (or one issued for another listing) is
/// refused like an expired one.
fn token_tag(secret: &uuid::Uuid, listing: &str, offset: usize) -> String {
    uuid::Uuid::new_v5(secret, format!("{listing}#{offset}").as_bytes())
        .simple()
        .to_string()
        .chars()
        .take(16)
        .collect()
}

fn page<T: Clone>(
    secret: &uuid::Uuid,
    listing: &str,
    items: &[T],
    next_token: Option<&str>,
    max: usize,
) -> ApiResult<(Vec<T>, Option<String>)> {
    let invalid = || ApiError::invalid("The nextToken is invalid or expired");
    let offset = match next_token {
        None => 0,
        Some(token) => {
            validate::next_token(token)?;
            let text = B64
                .decode(token)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(invalid)?;
            let (offset, tag) = text
                .strip_prefix("v1:")
                .and_then(|rest| rest.split_once(':'))
                .ok_or_else(invalid)?;
            let offset = offset.parse::<usize>().map_err(|_| invalid())?;
            if tag != token_tag(secret, listing, offset) {
                return Err(invalid());
            }
            offset
        }
    };
    let start = offset.min(items.len());
    let end = start.saturating_add(max).min(items.len());
    let slice = items.get(start..end).unwrap_or(&[]).to_vec();
    let next = (end < items.len())
        .then(|| B64.encode(format!("v1:{end}:{}", token_tag(secret, listing, end))));
    Ok((slice, next))
}

impl Store {
    /// One page of `summaries` for `listing` (which a page token belongs to), as the body of
    /// a List* answer.
    fn paged(
        &self,
        listing: &str,
        summaries: &[Value],
        query: &HashMap<String, String>,
        max: usize,
    ) -> ApiResult<Reply> {
        let token = query.get("nextToken").map(String::as_str);
        let (items, next) = page(&self.token_secret, listing, summaries, token, max)?;
        let mut body = json!({"assetSummaries": items});
        if let Some(next) = next {
            body["nextToken"] = json!(next);
        }
        Ok(Reply::ok(body))
    }

    pub fn new(settings: Settings) -> Self {
        Self {
            settings,
            models: BTreeMap::new(),
            assets: BTreeMap::new(),
            links: BTreeMap::new(),
            seq: 0,
            tokens: HashMap::new(),
            limiter: RateLimiter::default(),
            journal: Vec::new(),
            counters: BTreeMap::new(),
            token_secret: uuid::Uuid::new_v4(),
        }
    }

    /// Forgets everything but the settings.
    pub fn reset(&mut self) {
        *self = Self::new(self.settings.clone());
    }

    fn arn(&self, kind: &str, id: &str) -> String {
        format!(
            "arn:aws:iotsitewise:{}:{}:{kind}/{id}",
            self.settings.region, self.settings.account_id
        )
    }

    /// Applies the transitions that are due.
    pub fn settle(&mut self, now: Instant) {
        let due = |p: &Option<Pending>| p.is_some_and(|p| p.due <= now);
        let mut gone = Vec::new();
        for asset in self.assets.values_mut().filter(|a| due(&a.pending)) {
            match asset.pending.take().map(|p| p.to) {
                Some(Target::Gone) => gone.push(asset.id.clone()),
                _ => asset.state = "ACTIVE".into(),
            }
        }
        for id in gone {
            self.assets.remove(&id);
            self.links
                .retain(|child, l| *child != id && l.parent_id != id);
        }
        let mut gone = Vec::new();
        for model in self.models.values_mut().filter(|m| due(&m.pending)) {
            match model.pending.take().map(|p| p.to) {
                Some(Target::Gone) => gone.push(model.id.clone()),
                _ => model.state = "ACTIVE".into(),
            }
        }
        for id in gone {
            self.models.remove(&id);
        }
    }

    fn after(&self, delay: std::time::Duration, to: Target) -> Option<Pending> {
        Some(Pending {
            to,
            due: Instant::now() + delay,
        })
    }

    // ---- resolution -------------------------------------------------------------------

    pub fn find_asset(&self, reference: &str) -> Option<&Asset> {
        match reference.strip_prefix("externalId:") {
            Some(ext) => self
                .assets
                .values()
                .find(|a| a.external_id.as_deref() == Some(ext)),
            None => self.assets.get(reference),
        }
    }

    fn asset(&self, reference: &str) -> ApiResult<&Asset> {
        self.find_asset(reference)
            .ok_or_else(|| ApiError::not_found(format!("Asset {reference} does not exist")))
    }

    pub fn find_model(&self, reference: &str) -> Option<&Model> {
        match reference.strip_prefix("externalId:") {
            Some(ext) => self
                .models
                .values()
                .find(|m| m.external_id.as_deref() == Some(ext)),
            None => self.models.get(reference),
        }
    }

    fn model(&self, reference: &str) -> ApiResult<&Model> {
        self.find_model(reference)
            .ok_or_else(|| ApiError::not_found(format!("Asset model {reference} does not exist")))
    }

    /// The hierarchy `reference` (UUID or `externalId:`) of `model_id`.
    fn hierarchy(&self, model_id: &str, reference: &str) -> ApiResult<Hierarchy> {
        let model = self.model(model_id)?;
        let ext = reference.strip_prefix("externalId:");
        model
            .hierarchies
            .iter()
            .find(|h| match ext {
                Some(ext) => h.external_id.as_deref() == Some(ext),
                None => h.id == reference,
            })
            .cloned()
            .ok_or_else(|| {
                ApiError::invalid(format!(
                    "Hierarchy {reference} is not defined in asset model {}",
                    model.id
                ))
            })
    }

    fn children_of(&self, parent: &str, hierarchy: Option<&str>) -> Vec<&Asset> {
        let mut children: Vec<&Asset> = self
            .links
            .iter()
            .filter(|(_, l)| l.parent_id == parent && hierarchy.is_none_or(|h| l.hierarchy_id == h))
            .filter_map(|(child, _)| self.assets.get(child))
            .collect();
        children.sort_by_key(|a| a.seq);
        children
    }

    /// Levels from the root down to `id` (a root has depth 1).
    fn depth(&self, id: &str) -> usize {
        let mut depth = 1;
        let mut current = id;
        while let Some(link) = self.links.get(current) {
            depth += 1;
            current = &link.parent_id;
        }
        depth
    }

    /// Levels of the subtree below `id`, `id` included.
    fn height(&self, id: &str) -> usize {
        1 + self
            .links
            .iter()
            .filter(|(_, l)| l.parent_id == id)
            .map(|(child, _)| self.height(child))
            .max()
            .unwrap_or(0)
    }

    fn is_ancestor(&self, candidate: &str, of: &str) -> bool {
        let mut current = of;
        while let Some(link) = self.links.get(current) {
            if link.parent_id == candidate {
                return true;
            }
            current = &link.parent_id;
        }
        false
    }

    // ---- request pipeline -------------------------------------------------------------

    /// Runs one SiteWise request: quota, injected faults, clientToken replay, the operation,
    /// then the journal and counters.
    pub fn execute(
        &mut self,
        op: Op,
        call: Call,
        run: impl FnOnce(&mut Store) -> ApiResult<Reply>,
    ) -> ApiResult<Reply> {
        let now = Instant::now();
        self.settle(now);
        let resolved_id = call.target.as_deref().and_then(|t| {
            self.find_asset(t)
                .map(|a| a.id.clone())
                .or_else(|| self.find_model(t).map(|m| m.id.clone()))
        });
        let mut replay = false;
        let outcome = (|| {
            if !self.limiter.try_acquire(&self.settings.quotas, op, now) {
                return Err(ApiError::new(
                    ErrorCode::ThrottlingException,
                    "Rate exceeded",
                ));
            }
            let targets: Vec<&str> = call
                .target
                .iter()
                .chain(resolved_id.iter())
                .map(String::as_str)
                .collect();
            if let Some(err) = self.settings.faults.pick(op, &targets, &mut rand::rng()) {
                return Err(err);
            }
            if let Some(token) = &call.client_token {
                validate::client_token(token)?;
                let retention = self.settings.token_retention;
                self.tokens
                    .retain(|_, r| now.saturating_duration_since(r.at) < retention);
                if let Some(record) = self.tokens.get(&(op, token.clone())) {
                    if record.fingerprint != call.fingerprint {
                        return Err(rules::token_reused(token));
                    }
                    replay = true;
                    return Ok(record.reply.clone());
                }
            }
            let reply = run(self)?;
            if let Some(token) = &call.client_token {
                self.tokens.insert(
                    (op, token.clone()),
                    TokenRecord {
                        fingerprint: call.fingerprint.clone(),
                        reply: reply.clone(),
                        at: now,
                    },
                );
            }
            Ok(reply)
        })();
        // A create addresses no existing resource: the journal names the one it made.
        let resolved_id = resolved_id.or_else(|| match &outcome {
            Ok(reply) => reply.body.as_ref().and_then(|b| {
                b.get("assetId")
                    .or_else(|| b.get("assetModelId"))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            }),
            Err(_) => None,
        });
        let (status, error_code) = match &outcome {
            Ok(reply) => (reply.status.as_u16(), None),
            Err(e) => (e.code.status().as_u16(), Some(e.code.as_str().to_string())),
        };
        let outcome_label = error_code
            .clone()
            .unwrap_or_else(|| if replay { "replay".into() } else { "ok".into() });
        *self
            .counters
            .entry(op.as_str().to_string())
            .or_default()
            .entry(outcome_label)
            .or_default() += 1;
        let seq = self.journal.len() as u64 + 1;
        self.journal.push(JournalEntry {
            seq,
            time: epoch_now(),
            operation: op,
            target: call.target,
            resolved_id,
            child: call.child,
            client_token: call.client_token,
            status,
            error_code,
            replay,
            app: crate::api::client_app(),
        });
        match &outcome {
            Ok(_) => tracing::debug!(operation = op.as_str(), status, "request"),
            Err(e) => {
                tracing::info!(operation = op.as_str(), status, code = e.code.as_str(), message = %e.message, "request failed")
            }
        }
        outcome
    }

    pub fn journal(&self) -> &[JournalEntry] {
        &self.journal
    }

    pub fn counters(&self) -> &BTreeMap<String, BTreeMap<String, u64>> {
        &self.counters
    }

    pub fn reset_limiter(&mut self) {
        self.limiter.reset();
    }

    // ---- control (admin API) ----------------------------------------------------------

    /// Makes a resource ACTIVE at once (seeding).
    pub fn force_active(&mut self, id: &str) {
        if let Some(a) = self.assets.get_mut(id) {
            a.state = "ACTIVE".into();
            a.pending = None;
        }
        if let Some(m) = self.models.get_mut(id) {
            m.state = "ACTIVE".into();
            m.pending = None;
        }
    }

    /// Puts an asset in FAILED with the given error details.
    pub fn force_failed(
        &mut self,
        reference: &str,
        code: &str,
        message: &str,
    ) -> ApiResult<String> {
        let id = self.asset(reference)?.id.clone();
        if let Some(a) = self.assets.get_mut(&id) {
            a.state = "FAILED".into();
            a.pending = None;
            a.error = Some(json!({"code": code, "message": message}));
        }
        Ok(id)
    }

    pub fn snapshot(&self) -> Value {
        let assets: Vec<Value> = self
            .assets
            .values()
            .map(|a| {
                let mut v = serde_json::to_value(a).unwrap_or_default();
                v["parent"] = serde_json::to_value(self.links.get(&a.id)).unwrap_or_default();
                v
            })
            .collect();
        let associations: Vec<Value> = self
            .links
            .iter()
            .map(|(child, l)| json!({"parentId": l.parent_id, "hierarchyId": l.hierarchy_id, "childId": child}))
            .collect();
        json!({
            "models": self.models.values().collect::<Vec<_>>(),
            "assets": assets,
            "associations": associations,
        })
    }
}

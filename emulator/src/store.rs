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
    #[serde(skip)]
    seq: u64,
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

fn page<T: Clone>(
    items: &[T],
    next_token: Option<&str>,
    max: usize,
) -> ApiResult<(Vec<T>, Option<String>)> {
    let offset = match next_token {
        None => 0,
        Some(token) => {
            validate::next_token(token)?;
            B64.decode(token)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|s| {
                    s.strip_prefix("offset:")
                        .and_then(|n| n.parse::<usize>().ok())
                })
                .ok_or_else(|| ApiError::invalid("The nextToken is invalid or expired"))?
        }
    };
    let end = (offset + max).min(items.len());
    let slice = items
        .get(offset.min(items.len())..end)
        .unwrap_or(&[])
        .to_vec();
    let next = (end < items.len()).then(|| B64.encode(format!("offset:{end}")));
    Ok((slice, next))
}

impl Store {
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

    fn find_model(&self, reference: &str) -> Option<&Model> {
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

    // ---- asset models -----------------------------------------------------------------

    pub fn create_asset_model(&mut self, body: &Value) -> ApiResult<Reply> {
        let name = validate::req_str(body, "assetModelName")?;
        validate::name("assetModelName", name)?;
        let own_id = validate::opt_checked(body, "assetModelId", validate::id)?;
        let external_id =
            validate::opt_checked(body, "assetModelExternalId", validate::external_id)?;
        let description =
            validate::opt_checked(body, "assetModelDescription", validate::description)?;
        let model_type = validate::opt_str(body, "assetModelType")?.unwrap_or("ASSET_MODEL");
        validate::one_of(
            "assetModelType",
            model_type,
            &["ASSET_MODEL", "COMPONENT_MODEL", "INTERFACE"],
        )?;
        let tags = match body.get("tags") {
            Some(t) if !t.is_null() => validate::tags(t)?,
            _ => Vec::new(),
        };
        if let Some(existing) = self.models.values().find(|m| m.name == name) {
            return Err(ApiError::already_exists(
                format!("An asset model named {name} already exists"),
                &existing.id,
                &existing.arn,
            ));
        }
        if let Some(id) = own_id
            && let Some(existing) = self.models.get(id)
        {
            return Err(ApiError::already_exists(
                format!("Asset model {id} already exists"),
                &existing.id,
                &existing.arn,
            ));
        }
        if let Some(ext) = external_id
            && let Some(existing) = self.find_model(&format!("externalId:{ext}"))
        {
            return Err(ApiError::already_exists(
                format!(
                    "External ID {ext} is already used by asset model {}",
                    existing.id
                ),
                &existing.id,
                &existing.arn,
            ));
        }
        let mut hierarchies: Vec<Hierarchy> = Vec::new();
        if let Some(list) = body.get("assetModelHierarchies").filter(|v| !v.is_null()) {
            let list = list.as_array().ok_or_else(|| {
                ApiError::validation(
                    "assetModelHierarchies",
                    &list.to_string(),
                    "Member must be a list",
                )
            })?;
            for (i, h) in list.iter().enumerate() {
                let field = |f: &str| format!("assetModelHierarchies.{}.member.{f}", i + 1);
                let h_name = validate::req_str(h, "name")
                    .map_err(|_| ApiError::invalid(format!("{} is required", field("name"))))?;
                validate::name(&field("name"), h_name)?;
                let child_ref = validate::req_str(h, "childAssetModelId").map_err(|_| {
                    ApiError::invalid(format!("{} is required", field("childAssetModelId")))
                })?;
                validate::custom_id(&field("childAssetModelId"), child_ref)?;
                let child = self.model(child_ref)?;
                if child.state != "ACTIVE" {
                    return Err(rules::busy(
                        "asset model",
                        &child.id,
                        &child.arn,
                        &child.state,
                    ));
                }
                let child_id = child.id.clone();
                let h_id = match validate::opt_str(h, "id")? {
                    Some(id) => {
                        validate::id(&field("id"), id)?;
                        id.to_string()
                    }
                    None => uuid::Uuid::new_v4().to_string(),
                };
                let h_ext = validate::opt_str(h, "externalId")?;
                if let Some(ext) = h_ext {
                    validate::external_id(&field("externalId"), ext)?;
                }
                if hierarchies.iter().any(|o| o.name == h_name || o.id == h_id)
                    || h_ext.is_some()
                        && hierarchies
                            .iter()
                            .any(|o| o.external_id.as_deref() == h_ext)
                {
                    return Err(ApiError::invalid(format!(
                        "Hierarchy {h_name} duplicates the name, id or externalId of another hierarchy"
                    )));
                }
                hierarchies.push(Hierarchy {
                    id: h_id,
                    external_id: h_ext.map(str::to_string),
                    name: h_name.to_string(),
                    child_asset_model_id: child_id,
                });
            }
        }
        let properties = match body.get("assetModelProperties") {
            Some(Value::Array(props)) => props
                .iter()
                .map(|p| {
                    let mut p = p.clone();
                    if let Some(obj) = p.as_object_mut() {
                        obj.entry("id")
                            .or_insert_with(|| json!(uuid::Uuid::new_v4().to_string()));
                    }
                    p
                })
                .collect(),
            _ => Vec::new(),
        };
        let id = own_id
            .map(str::to_string)
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let arn = self.arn("asset-model", &id);
        let now = epoch_now();
        let pending = self.after(self.settings.timings.create, Target::Active);
        self.models.insert(
            id.clone(),
            Model {
                id: id.clone(),
                external_id: external_id.map(str::to_string),
                arn: arn.clone(),
                name: name.to_string(),
                description: description.map(str::to_string),
                model_type: model_type.to_string(),
                hierarchies,
                properties,
                state: "CREATING".into(),
                pending,
                created: now,
                updated: now,
                tags: tags.into_iter().collect(),
            },
        );
        Ok(Reply::accepted(json!({
            "assetModelId": id,
            "assetModelArn": arn,
            "assetModelStatus": {"state": "CREATING"}
        })))
    }

    pub fn describe_asset_model(&self, reference: &str, version: Option<&str>) -> ApiResult<Reply> {
        validate::custom_id("assetModelId", reference)?;
        if let Some(v) = version {
            validate::one_of("assetModelVersion", v, &["LATEST", "ACTIVE"])?;
        }
        let m = self.model(reference)?;
        let mut body = json!({
            "assetModelId": m.id,
            "assetModelArn": m.arn,
            "assetModelName": m.name,
            "assetModelType": m.model_type,
            "assetModelDescription": m.description.clone().unwrap_or_default(),
            "assetModelProperties": m.properties,
            "assetModelHierarchies": m.hierarchies,
            "assetModelCompositeModels": [],
            "assetModelCreationDate": m.created,
            "assetModelLastUpdateDate": m.updated,
            "assetModelStatus": {"state": m.state},
            "assetModelVersion": "1"
        });
        if let Some(ext) = &m.external_id {
            body["assetModelExternalId"] = json!(ext);
        }
        let mut reply = Reply::ok(body);
        // A stable 43-character ETag (`^[\w-]{43}$`) derived from the model and its update time.
        let digest = uuid::Uuid::new_v5(
            &uuid::Uuid::NAMESPACE_OID,
            format!("{}{}", m.id, m.updated).as_bytes(),
        );
        reply.etag = Some(
            format!("{}{}", digest.simple(), "-etag-v1-sitewise")
                .chars()
                .take(43)
                .collect(),
        );
        Ok(reply)
    }

    pub fn delete_asset_model(&mut self, reference: &str) -> ApiResult<Reply> {
        validate::custom_id("assetModelId", reference)?;
        let m = self.model(reference)?.clone();
        if !matches!(m.state.as_str(), "ACTIVE" | "FAILED") {
            return Err(rules::busy("asset model", &m.id, &m.arn, &m.state));
        }
        let assets = self.assets.values().filter(|a| a.model_id == m.id).count();
        if assets > 0 {
            return Err(rules::delete_model_with_assets(&m.id, assets));
        }
        if let Some(parent) = self
            .models
            .values()
            .find(|p| p.hierarchies.iter().any(|h| h.child_asset_model_id == m.id))
        {
            return Err(ApiError::invalid(format!(
                "Cannot delete asset model {}: a hierarchy of asset model {} uses it",
                m.id, parent.id
            )));
        }
        let pending = self.after(self.settings.timings.delete, Target::Gone);
        if let Some(model) = self.models.get_mut(&m.id) {
            model.state = "DELETING".into();
            model.pending = pending;
        }
        Ok(Reply::accepted(json!({
            "assetModelId": m.id,
            "assetModelStatus": {"state": "DELETING"}
        })))
    }

    // ---- assets -----------------------------------------------------------------------

    pub fn create_asset(&mut self, body: &Value) -> ApiResult<Reply> {
        let name = validate::req_str(body, "assetName")?;
        validate::name("assetName", name)?;
        let model_ref = validate::req_str(body, "assetModelId")?;
        validate::custom_id("assetModelId", model_ref)?;
        let own_id = validate::opt_checked(body, "assetId", validate::id)?;
        let external_id = validate::opt_checked(body, "assetExternalId", validate::external_id)?;
        let description = validate::opt_checked(body, "assetDescription", validate::description)?;
        let tags = match body.get("tags") {
            Some(t) if !t.is_null() => validate::tags(t)?,
            _ => Vec::new(),
        };
        let model = self.model(model_ref)?;
        if model.state != "ACTIVE" {
            return Err(rules::busy(
                "asset model",
                &model.id,
                &model.arn,
                &model.state,
            ));
        }
        if model.model_type != "ASSET_MODEL" {
            return Err(ApiError::invalid(format!(
                "Assets can only be created from models of type ASSET_MODEL; {} is {}",
                model.id, model.model_type
            )));
        }
        let model_id = model.id.clone();
        if let Some(id) = own_id
            && let Some(existing) = self.assets.get(id)
        {
            return Err(ApiError::already_exists(
                format!("Asset {id} already exists"),
                &existing.id,
                &existing.arn,
            ));
        }
        if let Some(ext) = external_id
            && let Some(existing) = self.find_asset(&format!("externalId:{ext}"))
        {
            return Err(ApiError::already_exists(
                format!("External ID {ext} is already used by asset {}", existing.id),
                &existing.id,
                &existing.arn,
            ));
        }
        let id = own_id
            .map(str::to_string)
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let arn = self.arn("asset", &id);
        let now = epoch_now();
        self.seq += 1;
        let pending = self.after(self.settings.timings.create, Target::Active);
        self.assets.insert(
            id.clone(),
            Asset {
                id: id.clone(),
                external_id: external_id.map(str::to_string),
                arn: arn.clone(),
                name: name.to_string(),
                description: description.map(str::to_string),
                model_id,
                state: "CREATING".into(),
                error: None,
                pending,
                created: now,
                updated: now,
                tags: tags.into_iter().collect(),
                seq: self.seq,
            },
        );
        Ok(Reply::accepted(json!({
            "assetId": id,
            "assetArn": arn,
            "assetStatus": {"state": "CREATING"}
        })))
    }

    fn hierarchies_json(&self, model_id: &str) -> Vec<Value> {
        self.models
            .get(model_id)
            .map(|m| {
                m.hierarchies
                    .iter()
                    .map(|h| {
                        let mut v = json!({"id": h.id, "name": h.name});
                        if let Some(ext) = &h.external_id {
                            v["externalId"] = json!(ext);
                        }
                        v
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn describe_asset(&self, reference: &str) -> ApiResult<Reply> {
        validate::custom_id("assetId", reference)?;
        let a = self.asset(reference)?;
        let mut body = json!({
            "assetId": a.id,
            "assetArn": a.arn,
            "assetName": a.name,
            "assetModelId": a.model_id,
            "assetProperties": [],
            "assetHierarchies": self.hierarchies_json(&a.model_id),
            "assetCompositeModels": [],
            "assetCreationDate": a.created,
            "assetLastUpdateDate": a.updated,
            "assetStatus": status_json(&a.state, a.error.as_ref()),
        });
        if let Some(ext) = &a.external_id {
            body["assetExternalId"] = json!(ext);
        }
        if let Some(d) = &a.description {
            body["assetDescription"] = json!(d);
        }
        Ok(Reply::ok(body))
    }

    pub fn update_asset(&mut self, reference: &str, body: &Value) -> ApiResult<Reply> {
        validate::custom_id("assetId", reference)?;
        let name = validate::req_str(body, "assetName")?;
        validate::name("assetName", name)?;
        let external_id = validate::opt_checked(body, "assetExternalId", validate::external_id)?;
        let description = validate::opt_checked(body, "assetDescription", validate::description)?;
        let a = self.asset(reference)?.clone();
        if a.state != "ACTIVE" {
            return Err(rules::busy("asset", &a.id, &a.arn, &a.state));
        }
        if let Some(ext) = external_id {
            match &a.external_id {
                Some(current) if current != ext => {
                    return Err(ApiError::invalid(format!(
                        "Asset {} already has the external ID {current}; external IDs cannot be changed",
                        a.id
                    )));
                }
                Some(_) => {}
                None => {
                    if let Some(other) = self.find_asset(&format!("externalId:{ext}")) {
                        return Err(ApiError::already_exists(
                            format!("External ID {ext} is already used by asset {}", other.id),
                            &other.id,
                            &other.arn,
                        ));
                    }
                }
            }
        }
        let pending = self.after(self.settings.timings.update, Target::Active);
        if let Some(asset) = self.assets.get_mut(&a.id) {
            asset.name = name.to_string();
            if let Some(ext) = external_id {
                asset.external_id = Some(ext.to_string());
            }
            if let Some(d) = description {
                asset.description = Some(d.to_string());
            }
            asset.state = "UPDATING".into();
            asset.updated = epoch_now();
            asset.pending = pending;
        }
        Ok(Reply::accepted(json!({
            "assetId": a.id,
            "assetStatus": {"state": "UPDATING"}
        })))
    }

    pub fn delete_asset(&mut self, reference: &str) -> ApiResult<Reply> {
        validate::custom_id("assetId", reference)?;
        let a = self.asset(reference)?.clone();
        if !matches!(a.state.as_str(), "ACTIVE" | "FAILED") {
            return Err(rules::busy("asset", &a.id, &a.arn, &a.state));
        }
        let children = self.children_of(&a.id, None).len();
        let has_parent = self.links.contains_key(&a.id);
        if children > 0 || has_parent {
            return Err(rules::delete_asset_while_associated(
                &a.id, children, has_parent,
            ));
        }
        let pending = self.after(self.settings.timings.delete, Target::Gone);
        if let Some(asset) = self.assets.get_mut(&a.id) {
            asset.state = "DELETING".into();
            asset.pending = pending;
        }
        Ok(Reply::accepted(json!({
            "assetId": a.id,
            "assetStatus": {"state": "DELETING"}
        })))
    }

    /// Parent, hierarchy and child of an association call, resolved and checked for state
    /// (no state check when `allowed_states` is empty).
    fn association_parties(
        &self,
        parent_ref: &str,
        body: &Value,
        allowed_states: &[&str],
    ) -> ApiResult<(Asset, Hierarchy, Asset)> {
        validate::custom_id("assetId", parent_ref)?;
        let hierarchy_ref = validate::req_str(body, "hierarchyId")?;
        validate::custom_id("hierarchyId", hierarchy_ref)?;
        let child_ref = validate::req_str(body, "childAssetId")?;
        validate::custom_id("childAssetId", child_ref)?;
        let parent = self.asset(parent_ref)?.clone();
        let child = self.asset(child_ref)?.clone();
        let hierarchy = self.hierarchy(&parent.model_id, hierarchy_ref)?;
        for asset in [&parent, &child] {
            if !allowed_states.is_empty() && !allowed_states.contains(&asset.state.as_str()) {
                return Err(rules::busy("asset", &asset.id, &asset.arn, &asset.state));
            }
        }
        Ok((parent, hierarchy, child))
    }

    pub fn associate_assets(&mut self, parent_ref: &str, body: &Value) -> ApiResult<Reply> {
        let (parent, hierarchy, child) = self.association_parties(parent_ref, body, &["ACTIVE"])?;
        if child.model_id != hierarchy.child_asset_model_id {
            return Err(ApiError::invalid(format!(
                "Asset {} is of model {}, but hierarchy {} takes assets of model {}",
                child.id, child.model_id, hierarchy.id, hierarchy.child_asset_model_id
            )));
        }
        if let Some(link) = self.links.get(&child.id) {
            return Err(ApiError::already_exists(
                format!(
                    "Asset {} is already associated with parent asset {} (hierarchy {})",
                    child.id, link.parent_id, link.hierarchy_id
                ),
                &child.id,
                &child.arn,
            ));
        }
        if parent.id == child.id || self.is_ancestor(&child.id, &parent.id) {
            return Err(ApiError::invalid(format!(
                "Associating asset {} under asset {} would create a cycle",
                child.id, parent.id
            )));
        }
        let quotas = &self.settings.quotas;
        let children = self.children_of(&parent.id, None).len();
        if children >= quotas.max_children_per_parent {
            return Err(ApiError::new(
                ErrorCode::LimitExceededException,
                format!(
                    "Asset {} already has {children} child assets, the maximum is {}",
                    parent.id, quotas.max_children_per_parent
                ),
            ));
        }
        let depth = self.depth(&parent.id) + self.height(&child.id);
        if depth > quotas.max_hierarchy_depth {
            return Err(ApiError::new(
                ErrorCode::LimitExceededException,
                format!(
                    "The hierarchy would be {depth} levels deep, the maximum is {}",
                    quotas.max_hierarchy_depth
                ),
            ));
        }
        self.links.insert(
            child.id.clone(),
            Link {
                parent_id: parent.id,
                hierarchy_id: hierarchy.id,
            },
        );
        Ok(Reply::empty())
    }

    pub fn disassociate_assets(&mut self, parent_ref: &str, body: &Value) -> ApiResult<Reply> {
        // A link that does not exist is reported as such whatever state the assets are in.
        let (parent, hierarchy, child) = self.association_parties(parent_ref, body, &[])?;
        let expected = Link {
            parent_id: parent.id.clone(),
            hierarchy_id: hierarchy.id.clone(),
        };
        if self.links.get(&child.id) != Some(&expected) {
            return Err(rules::association_missing(
                &parent.id,
                &hierarchy.id,
                &child.id,
            ));
        }
        self.association_parties(parent_ref, body, &["ACTIVE", "FAILED"])?;
        self.links.remove(&child.id);
        Ok(Reply::empty())
    }

    fn summary(&self, a: &Asset) -> Value {
        let mut v = json!({
            "id": a.id,
            "arn": a.arn,
            "name": a.name,
            "assetModelId": a.model_id,
            "creationDate": a.created,
            "lastUpdateDate": a.updated,
            "status": status_json(&a.state, a.error.as_ref()),
            "hierarchies": self.hierarchies_json(&a.model_id),
        });
        if let Some(ext) = &a.external_id {
            v["externalId"] = json!(ext);
        }
        if let Some(d) = &a.description {
            v["description"] = json!(d);
        }
        v
    }

    pub fn list_associated_assets(
        &self,
        reference: &str,
        query: &HashMap<String, String>,
    ) -> ApiResult<Reply> {
        validate::custom_id("assetId", reference)?;
        let direction = query
            .get("traversalDirection")
            .map(String::as_str)
            .unwrap_or("CHILD");
        validate::one_of("traversalDirection", direction, &["CHILD", "PARENT"])?;
        let hierarchy_ref = query.get("hierarchyId").map(String::as_str);
        if let Some(h) = hierarchy_ref {
            validate::custom_id("hierarchyId", h)?;
        }
        let max = validate::max_results(query.get("maxResults").map(String::as_str))?;
        let asset = self.asset(reference)?;
        let listed: Vec<&Asset> = if direction == "PARENT" {
            self.links
                .get(&asset.id)
                .and_then(|l| self.assets.get(&l.parent_id))
                .into_iter()
                .collect()
        } else {
            let hierarchy = match hierarchy_ref {
                Some(h) => Some(self.hierarchy(&asset.model_id, h)?.id),
                None => None,
            };
            self.children_of(&asset.id, hierarchy.as_deref())
        };
        let summaries: Vec<Value> = listed.iter().map(|a| self.summary(a)).collect();
        let (items, next) = page(&summaries, query.get("nextToken").map(String::as_str), max)?;
        let mut body = json!({"assetSummaries": items});
        if let Some(next) = next {
            body["nextToken"] = json!(next);
        }
        Ok(Reply::ok(body))
    }

    pub fn list_assets(&self, query: &HashMap<String, String>) -> ApiResult<Reply> {
        let filter = query.get("filter").map(String::as_str).unwrap_or("ALL");
        validate::one_of("filter", filter, &["ALL", "TOP_LEVEL"])?;
        let max = validate::max_results(query.get("maxResults").map(String::as_str))?;
        let model_id = match query.get("assetModelId") {
            Some(m) => {
                validate::custom_id("assetModelId", m)?;
                Some(self.model(m)?.id.clone())
            }
            None if filter == "ALL" => {
                return Err(ApiError::invalid(
                    "assetModelId is required when filter is ALL",
                ));
            }
            None => None,
        };
        let mut assets: Vec<&Asset> = self
            .assets
            .values()
            .filter(|a| model_id.as_ref().is_none_or(|m| a.model_id == *m))
            .filter(|a| filter == "ALL" || !self.links.contains_key(&a.id))
            .collect();
        assets.sort_by_key(|a| a.seq);
        let summaries: Vec<Value> = assets.iter().map(|a| self.summary(a)).collect();
        let (items, next) = page(&summaries, query.get("nextToken").map(String::as_str), max)?;
        let mut body = json!({"assetSummaries": items});
        if let Some(next) = next {
            body["nextToken"] = json!(next);
        }
        Ok(Reply::ok(body))
    }

    // ---- tags -------------------------------------------------------------------------

    fn tags_of(&mut self, arn: &str) -> ApiResult<&mut BTreeMap<String, String>> {
        if arn.is_empty() || arn.len() > 1011 {
            return Err(ApiError::validation(
                "resourceArn",
                arn,
                "Member must have length between 1 and 1011",
            ));
        }
        if let Some(a) = self.assets.values_mut().find(|a| a.arn == arn) {
            return Ok(&mut a.tags);
        }
        if let Some(m) = self.models.values_mut().find(|m| m.arn == arn) {
            return Ok(&mut m.tags);
        }
        Err(ApiError::not_found(format!(
            "Resource {arn} does not exist"
        )))
    }

    pub fn tag_resource(&mut self, arn: &str, body: &Value) -> ApiResult<Reply> {
        let new_tags = validate::tags(body.get("tags").unwrap_or(&Value::Null))?;
        let tags = self.tags_of(arn)?;
        let mut merged = tags.clone();
        merged.extend(new_tags);
        if merged.len() > 50 {
            let mut err = ApiError::new(
                ErrorCode::TooManyTagsException,
                format!(
                    "A resource can have at most 50 tags; this request would leave {}",
                    merged.len()
                ),
            );
            err.members.insert("resourceName".into(), json!(arn));
            return Err(err);
        }
        *tags = merged;
        Ok(Reply::ok(json!({})))
    }

    pub fn untag_resource(&mut self, arn: &str, keys: &[String]) -> ApiResult<Reply> {
        if keys.len() > 200 {
            return Err(ApiError::validation(
                "tagKeys",
                &keys.len().to_string(),
                "Member must have length less than or equal to 200",
            ));
        }
        let tags = self.tags_of(arn)?;
        for key in keys {
            tags.remove(key);
        }
        Ok(Reply::ok(json!({})))
    }

    pub fn list_tags(&mut self, arn: &str) -> ApiResult<Reply> {
        let tags = self.tags_of(arn)?.clone();
        Ok(Reply::ok(json!({"tags": tags})))
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

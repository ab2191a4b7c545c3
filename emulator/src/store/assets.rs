//! Asset operations: CreateAsset, DescribeAsset, UpdateAsset, DeleteAsset, ListAssets.

use serde_json::{Value, json};

use super::*;

impl Store {
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
        let properties = Self::asset_properties(&model.properties);
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
                properties,
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

    pub fn describe_asset(&self, reference: &str, exclude_properties: bool) -> ApiResult<Reply> {
        validate::custom_id("assetId", reference)?;
        let a = self.asset(reference)?;
        let properties = if exclude_properties {
            Vec::new()
        } else {
            self.asset_properties_json(a)
        };
        let mut body = json!({
            "assetId": a.id,
            "assetArn": a.arn,
            "assetName": a.name,
            "assetModelId": a.model_id,
            "assetProperties": properties,
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
            asset.description =
                rules::description_after_update(asset.description.take(), description);
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

    pub(super) fn summary(&self, a: &Asset) -> Value {
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
        let listing = format!("assets/{}/{filter}", model_id.clone().unwrap_or_default());
        self.paged(&listing, &summaries, query, max)
    }
}

//! Asset model operations: CreateAssetModel, DescribeAssetModel, DeleteAssetModel (and the
//! hierarchy definitions UpdateAssetModel shares, in `model_update`).

use serde_json::{Value, json};

use super::*;

impl Store {
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
        let hierarchies = self.hierarchy_definitions(body.get("assetModelHierarchies"), None)?;
        let properties = Self::property_definitions(body.get("assetModelProperties"))?;
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

    /// Validates `assetModelHierarchies`. For an update, `existing` holds the model's
    /// hierarchies: an `id` sent must be one of them (it keeps that hierarchy and its links).
    pub(super) fn hierarchy_definitions(
        &self,
        list: Option<&Value>,
        existing: Option<&[Hierarchy]>,
    ) -> ApiResult<Vec<Hierarchy>> {
        let mut hierarchies: Vec<Hierarchy> = Vec::new();
        let Some(list) = list.filter(|v| !v.is_null()) else {
            return Ok(hierarchies);
        };
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
            // "The child model must be ACTIVE or have a previous ACTIVE version": a model
            // being updated qualifies, one never ACTIVE yet or on its way out does not.
            if matches!(child.state.as_str(), "CREATING" | "DELETING") {
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
                    if existing.is_some_and(|e| !e.iter().any(|o| o.id == id)) {
                        return Err(ApiError::invalid(format!(
                            "{} {id} is not a hierarchy of this asset model; omit id to add a hierarchy",
                            field("id")
                        )));
                    }
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
        Ok(hierarchies)
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
        reply.etag = Some(etag_of(m));
        Ok(reply)
    }

    /// DeleteAssetModel; with `If-Match`, only while the model's ETag is that one (a model
    /// changed since it was read is not deleted blind).
    pub fn delete_asset_model(
        &mut self,
        reference: &str,
        if_match: Option<&str>,
    ) -> ApiResult<Reply> {
        validate::custom_id("assetModelId", reference)?;
        let m = self.model(reference)?.clone();
        check_if_match(&m, if_match)?;
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
}

/// `If-Match`: the request goes ahead only while the model's ETag is the one sent.
pub(super) fn check_if_match(m: &Model, if_match: Option<&str>) -> ApiResult<()> {
    match if_match {
        Some(expected) if expected.trim_matches('"') != etag_of(m) => Err(ApiError::new(
            ErrorCode::PreconditionFailedException,
            format!(
                "Asset model {} has changed: its ETag is not {expected}",
                m.id
            ),
        )
        .on_resource(&m.id, &m.arn)),
        _ => Ok(()),
    }
}

/// A stable 43-character ETag (`^[\w-]{43}$`) of a model's current version (its ID and last
/// update time): it changes with every update.
pub(super) fn etag_of(m: &Model) -> String {
    let digest = uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_OID,
        format!("{}{}", m.id, m.updated).as_bytes(),
    );
    format!("{}{}", digest.simple(), "-etag-v1-sitewise")
        .chars()
        .take(43)
        .collect()
}

//! Properties: the definitions of a model (CreateAssetModel), the properties each asset gets
//! from them, and UpdateAssetProperty, which overwrites a property's alias, notification state
//! and unit (an omitted alias is removed, an omitted state is DISABLED, an omitted unit falls
//! back to the model's).

use std::collections::HashSet;

use serde_json::{Value, json};

use super::*;

const DATA_TYPES: &[&str] = &["STRING", "INTEGER", "DOUBLE", "BOOLEAN", "STRUCT"];
const PROPERTY_TYPES: &[&str] = &["attribute", "measurement", "transform", "metric"];

impl Store {
    /// Validates `assetModelProperties` and gives every definition an ID.
    pub(super) fn property_definitions(list: Option<&Value>) -> ApiResult<Vec<Value>> {
        let Some(list) = list.filter(|v| !v.is_null()) else {
            return Ok(Vec::new());
        };
        let list = list.as_array().ok_or_else(|| {
            ApiError::validation(
                "assetModelProperties",
                &list.to_string(),
                "Member must be a list",
            )
        })?;
        let mut names = HashSet::new();
        let mut external_ids = HashSet::new();
        let mut out = Vec::new();
        for (i, p) in list.iter().enumerate() {
            let field = |f: &str| format!("assetModelProperties.{}.member.{f}", i + 1);
            let name = validate::req_str(p, "name")
                .map_err(|_| ApiError::invalid(format!("{} is required", field("name"))))?;
            validate::name(&field("name"), name)?;
            let data_type = validate::req_str(p, "dataType")
                .map_err(|_| ApiError::invalid(format!("{} is required", field("dataType"))))?;
            validate::one_of(&field("dataType"), data_type, DATA_TYPES)?;
            let kind = p.get("type").and_then(Value::as_object).ok_or_else(|| {
                ApiError::invalid(format!(
                    "{} is required: one of {}",
                    field("type"),
                    PROPERTY_TYPES.join(", ")
                ))
            })?;
            if kind.len() != 1 || !kind.keys().all(|k| PROPERTY_TYPES.contains(&k.as_str())) {
                return Err(ApiError::invalid(format!(
                    "{} must have exactly one of {}",
                    field("type"),
                    PROPERTY_TYPES.join(", ")
                )));
            }
            let external_id = validate::opt_str(p, "externalId")?;
            if let Some(ext) = external_id {
                validate::external_id(&field("externalId"), ext)?;
            }
            if let Some(unit) = validate::opt_str(p, "unit")? {
                validate::name(&field("unit"), unit)?;
            }
            if !names.insert(name.to_string())
                || external_id.is_some_and(|e| !external_ids.insert(e.to_string()))
            {
                return Err(ApiError::invalid(format!(
                    "Property {name} duplicates the name or externalId of another property"
                )));
            }
            let mut p = p.clone();
            match validate::opt_str(&p, "id")? {
                Some(id) => validate::id(&field("id"), id)?,
                None => p["id"] = json!(uuid::Uuid::new_v4().to_string()),
            }
            out.push(p);
        }
        Ok(out)
    }

    /// The properties an asset gets from its model's definitions.
    pub(super) fn asset_properties(definitions: &[Value]) -> Vec<AssetProperty> {
        let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_string);
        definitions
            .iter()
            .map(|d| AssetProperty {
                id: text(d, "id").unwrap_or_default(),
                external_id: text(d, "externalId"),
                name: text(d, "name").unwrap_or_default(),
                data_type: text(d, "dataType").unwrap_or_default(),
                unit: text(d, "unit"),
                alias: None,
                notification_state: "DISABLED".into(),
            })
            .collect()
    }

    /// `assetProperties` of DescribeAsset.
    pub(super) fn asset_properties_json(&self, asset: &Asset) -> Vec<Value> {
        asset
            .properties
            .iter()
            .map(|p| {
                let mut v = json!({
                    "id": p.id,
                    "name": p.name,
                    "dataType": p.data_type,
                    "notification": {
                        "topic": format!(
                            "$aws/sitewise/asset-models/{}/assets/{}/properties/{}",
                            asset.model_id, asset.id, p.id
                        ),
                        "state": p.notification_state
                    },
                    "path": [{"id": asset.id, "name": asset.name}, {"id": p.id, "name": p.name}]
                });
                if let Some(ext) = &p.external_id {
                    v["externalId"] = json!(ext);
                }
                if let Some(alias) = &p.alias {
                    v["alias"] = json!(alias);
                }
                if let Some(unit) = &p.unit {
                    v["unit"] = json!(unit);
                }
                v
            })
            .collect()
    }

    pub fn update_asset_property(
        &mut self,
        asset_ref: &str,
        property_ref: &str,
        body: &Value,
    ) -> ApiResult<Reply> {
        validate::custom_id("assetId", asset_ref)?;
        validate::custom_id("propertyId", property_ref)?;
        let alias = validate::opt_str(body, "propertyAlias")?;
        if let Some(alias) = alias
            && (alias.is_empty() || alias.chars().any(char::is_control))
        {
            return Err(ApiError::validation(
                "propertyAlias",
                alias,
                "Member must satisfy regular expression pattern: [^\\u0000-\\u001F\\u007F]+",
            ));
        }
        let state = validate::opt_str(body, "propertyNotificationState")?.unwrap_or("DISABLED");
        validate::one_of("propertyNotificationState", state, &["ENABLED", "DISABLED"])?;
        let unit = validate::opt_checked(body, "propertyUnit", validate::name)?;
        let asset = self.asset(asset_ref)?.clone();
        let ext = property_ref.strip_prefix("externalId:");
        let index = asset
            .properties
            .iter()
            .position(|p| match ext {
                Some(ext) => p.external_id.as_deref() == Some(ext),
                None => p.id == property_ref,
            })
            .ok_or_else(|| {
                ApiError::not_found(format!(
                    "Property {property_ref} does not exist in asset {}",
                    asset.id
                ))
            })?;
        if asset.state != "ACTIVE" {
            return Err(rules::busy("asset", &asset.id, &asset.arn, &asset.state));
        }
        if let Some(alias) = alias
            && let Some((owner, property)) = self.alias_owner(alias)
            && (owner != asset.id || property != asset.properties[index].id)
        {
            return Err(rules::alias_taken(alias, &owner, &property));
        }
        let model_unit = self
            .models
            .get(&asset.model_id)
            .and_then(|m| {
                m.properties.iter().find(|d| {
                    d.get("id").and_then(Value::as_str) == Some(&asset.properties[index].id)
                })
            })
            .and_then(|d| d.get("unit").and_then(Value::as_str))
            .map(str::to_string);
        let pending = self.after(self.settings.timings.update, Target::Active);
        if let Some(a) = self.assets.get_mut(&asset.id) {
            let p = &mut a.properties[index];
            p.alias = alias.map(str::to_string);
            p.notification_state = state.to_string();
            p.unit = unit.map(str::to_string).or(model_unit);
            a.state = rules::property_update_state().into();
            a.updated = epoch_now();
            a.pending = pending;
        }
        Ok(Reply::empty())
    }

    /// The asset and property that use `alias`, if any.
    fn alias_owner(&self, alias: &str) -> Option<(String, String)> {
        self.assets.values().find_map(|a| {
            a.properties
                .iter()
                .find(|p| p.alias.as_deref() == Some(alias))
                .map(|p| (a.id.clone(), p.id.clone()))
        })
    }
}

//! UpdateAssetModel: replaces a model's name, description, properties and hierarchies. With
//! `If-Match`, only while the model's ETag is that one. A property or hierarchy sent with its
//! ID is kept (with its data and links); one sent without an ID is new; one not sent is
//! removed, from the model and from every asset of it (a removed hierarchy disassociates the
//! assets linked through it). The model and its assets are busy for the update delay.

use serde_json::{Value, json};

use super::models::check_if_match;
use super::*;

impl Store {
    pub fn update_asset_model(
        &mut self,
        reference: &str,
        body: &Value,
        if_match: Option<&str>,
    ) -> ApiResult<Reply> {
        validate::custom_id("assetModelId", reference)?;
        let name = validate::req_str(body, "assetModelName")?;
        validate::name("assetModelName", name)?;
        let description =
            validate::opt_checked(body, "assetModelDescription", validate::description)?;
        let external_id =
            validate::opt_checked(body, "assetModelExternalId", validate::external_id)?;
        let m = self.model(reference)?.clone();
        check_if_match(&m, if_match)?;
        if !matches!(m.state.as_str(), "ACTIVE" | "FAILED") {
            return Err(rules::busy("asset model", &m.id, &m.arn, &m.state));
        }
        if let Some(other) = self
            .models
            .values()
            .find(|o| o.id != m.id && o.name == name)
        {
            return Err(ApiError::already_exists(
                format!("An asset model named {name} already exists"),
                &other.id,
                &other.arn,
            ));
        }
        if let (Some(have), Some(want)) = (&m.external_id, external_id)
            && have != want
        {
            return Err(ApiError::invalid(format!(
                "The external ID of asset model {} is {have} and cannot be changed",
                m.id
            )));
        }
        let hierarchies =
            self.hierarchy_definitions(body.get("assetModelHierarchies"), Some(&m.hierarchies))?;
        let properties = Self::property_definitions(body.get("assetModelProperties"))?;
        for p in &properties {
            let id = p.get("id").and_then(Value::as_str).unwrap_or_default();
            let known = m
                .properties
                .iter()
                .any(|q| q.get("id").and_then(Value::as_str) == Some(id));
            if body_has_id(body, id) && !known {
                return Err(ApiError::invalid(format!(
                    "Property {id} is not a property of asset model {}; omit id to add a property",
                    m.id
                )));
            }
        }
        let kept: Vec<&str> = hierarchies.iter().map(|h| h.id.as_str()).collect();
        self.links.retain(|_, link| {
            m.hierarchies.iter().all(|h| h.id != link.hierarchy_id)
                || kept.contains(&link.hierarchy_id.as_str())
        });
        let has_assets = self.assets.values().any(|a| a.model_id == m.id);
        let state = rules::model_update_state(has_assets);
        let pending = self.after(self.settings.timings.update, Target::Active);
        let now = epoch_now();
        for asset in self.assets.values_mut().filter(|a| a.model_id == m.id) {
            asset.properties = refreshed(&asset.properties, &properties);
            asset.state = "UPDATING".into();
            asset.updated = now;
            asset.pending = pending;
        }
        if let Some(model) = self.models.get_mut(&m.id) {
            model.name = name.to_string();
            model.description = description.map(str::to_string);
            if model.external_id.is_none() {
                model.external_id = external_id.map(str::to_string);
            }
            model.hierarchies = hierarchies;
            model.properties = properties;
            model.state = state.into();
            model.updated = now;
            model.pending = pending;
        }
        Ok(Reply::accepted(json!({
            "assetModelStatus": {"state": state}
        })))
    }
}

/// Whether the request named property `id` itself (rather than the emulator giving it one).
fn body_has_id(body: &Value, id: &str) -> bool {
    body.get("assetModelProperties")
        .and_then(Value::as_array)
        .is_some_and(|list| {
            list.iter()
                .any(|p| p.get("id").and_then(Value::as_str) == Some(id))
        })
}

/// An asset's properties after its model's definitions changed: kept ones keep their alias
/// and notification state, new ones start empty, removed ones go.
fn refreshed(current: &[AssetProperty], definitions: &[Value]) -> Vec<AssetProperty> {
    Store::asset_properties(definitions)
        .into_iter()
        .map(|fresh| match current.iter().find(|p| p.id == fresh.id) {
            Some(old) => AssetProperty {
                alias: old.alias.clone(),
                notification_state: old.notification_state.clone(),
                unit: old.unit.clone().or(fresh.unit.clone()),
                ..fresh
            },
            None => fresh,
        })
        .collect()
}

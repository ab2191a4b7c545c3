//! Seeding: models, assets and associations created directly in their final ACTIVE state,
//! through the same operations (and so the same rules) as SiteWise requests, but without
//! quotas, faults or journal entries.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::ApiResult;
use crate::store::Store;

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Seed {
    /// Child models before the models whose hierarchies use them.
    pub models: Vec<SeedModel>,
    /// Parents before their children.
    pub assets: Vec<SeedAsset>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SeedModel {
    pub name: String,
    pub id: Option<String>,
    pub external_id: Option<String>,
    pub hierarchies: Vec<SeedHierarchy>,
    /// Property definitions, as `assetModelProperties` of CreateAssetModel.
    pub properties: Vec<Value>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SeedHierarchy {
    pub name: String,
    pub id: Option<String>,
    pub external_id: Option<String>,
    /// UUID or `externalId:` of the child model.
    pub child_model: String,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SeedAsset {
    pub name: String,
    pub id: Option<String>,
    pub external_id: Option<String>,
    /// UUID or `externalId:` of the model.
    pub model: String,
    /// UUID or `externalId:` of the parent asset.
    pub parent: Option<String>,
    /// UUID or `externalId:` of the parent's hierarchy.
    pub hierarchy: Option<String>,
}

/// IDs of what was created, by name.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Seeded {
    pub models: BTreeMap<String, String>,
    pub assets: BTreeMap<String, String>,
}

fn created_id(reply: &Value, key: &str) -> String {
    reply
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

pub fn apply(store: &mut Store, seed: &Seed) -> ApiResult<Seeded> {
    let mut seeded = Seeded::default();
    for m in &seed.models {
        let hierarchies: Vec<Value> = m
            .hierarchies
            .iter()
            .map(|h| {
                let mut v = json!({"name": h.name, "childAssetModelId": h.child_model});
                if let Some(id) = &h.id {
                    v["id"] = json!(id);
                }
                if let Some(ext) = &h.external_id {
                    v["externalId"] = json!(ext);
                }
                v
            })
            .collect();
        let mut body = json!({
            "assetModelName": m.name,
            "assetModelHierarchies": hierarchies,
            "assetModelProperties": m.properties,
        });
        if let Some(id) = &m.id {
            body["assetModelId"] = json!(id);
        }
        if let Some(ext) = &m.external_id {
            body["assetModelExternalId"] = json!(ext);
        }
        let reply = store.create_asset_model(&body)?;
        let id = created_id(reply.body.as_ref().unwrap_or(&Value::Null), "assetModelId");
        store.force_active(&id);
        seeded.models.insert(m.name.clone(), id);
    }
    for a in &seed.assets {
        let mut body = json!({"assetName": a.name, "assetModelId": a.model});
        if let Some(id) = &a.id {
            body["assetId"] = json!(id);
        }
        if let Some(ext) = &a.external_id {
            body["assetExternalId"] = json!(ext);
        }
        let reply = store.create_asset(&body)?;
        let id = created_id(reply.body.as_ref().unwrap_or(&Value::Null), "assetId");
        store.force_active(&id);
        if let (Some(parent), Some(hierarchy)) = (&a.parent, &a.hierarchy) {
            store.associate_assets(
                parent,
                &json!({"hierarchyId": hierarchy, "childAssetId": id}),
            )?;
        }
        seeded.assets.insert(a.name.clone(), id);
    }
    Ok(seeded)
}

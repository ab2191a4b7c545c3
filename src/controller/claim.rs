//! Ownership claims: the tags that say which resource owns an asset, read and written the same
//! way by apply (claim on adoption) and cleanup (check before every destructive pass).
//!
//! `sitewise.operator.dev/owner` is `<cluster id>/<resource UID>`: unique, never reused, and
//! the value an IAM policy can match on (`aws:ResourceTag`, prefix `<cluster id>/`).
//! `sitewise.operator.dev/owner-resource` is `<namespace>/<name>`, for people.

use std::collections::BTreeMap;

use super::Context;
use super::plan::ClaimState;
use crate::crd::{SiteWiseAsset, SiteWiseAssetModel};
use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};

pub const OWNER_TAG: &str = "sitewise.operator.dev/owner";
pub const OWNER_RESOURCE_TAG: &str = "sitewise.operator.dev/owner-resource";

/// The live `SiteWiseAsset`s the operator sees (its watch cache), for parent references and to
/// tell a stale claim from a live one; and the `SiteWiseAssetModel`s, for the models assets
/// and hierarchies name.
pub trait Resources: Send + Sync {
    fn get(&self, namespace: &str, name: &str) -> Option<std::sync::Arc<SiteWiseAsset>>;
    /// Every resource in the cache.
    fn all(&self) -> Vec<std::sync::Arc<SiteWiseAsset>>;
    fn model(&self, _namespace: &str, _name: &str) -> Option<std::sync::Arc<SiteWiseAssetModel>> {
        None
    }
    /// Every model resource in the cache.
    fn models(&self) -> Vec<std::sync::Arc<SiteWiseAssetModel>> {
        Vec::new()
    }
}

/// No resources at all (unit tests that need none).
pub struct NoResources;

impl Resources for NoResources {
    fn get(&self, _: &str, _: &str) -> Option<std::sync::Arc<SiteWiseAsset>> {
        None
    }

    fn all(&self) -> Vec<std::sync::Arc<SiteWiseAsset>> {
        Vec::new()
    }
}

/// Resources held in memory (unit tests).
#[derive(Default)]
pub struct MemoryResources(
    pub std::sync::Mutex<Vec<SiteWiseAsset>>,
    pub std::sync::Mutex<Vec<SiteWiseAssetModel>>,
);

impl MemoryResources {
    /// Puts `obj` in the cache in place of the object with the same UID.
    pub fn upsert(&self, obj: &SiteWiseAsset) {
        upsert_into(&self.0, obj)
    }

    /// Puts model `obj` in the cache in place of the object with the same UID.
    pub fn upsert_model(&self, obj: &SiteWiseAssetModel) {
        upsert_into(&self.1, obj)
    }
}

fn upsert_into<K: kube::Resource + Clone>(cache: &std::sync::Mutex<Vec<K>>, obj: &K) {
    let mut objs = cache.lock().unwrap_or_else(|e| e.into_inner());
    objs.retain(|o| o.meta().uid != obj.meta().uid);
    objs.push(obj.clone());
}

fn shared<K: Clone>(cache: &std::sync::Mutex<Vec<K>>) -> Vec<std::sync::Arc<K>> {
    let objs = cache.lock().unwrap_or_else(|e| e.into_inner());
    objs.iter().cloned().map(std::sync::Arc::new).collect()
}

impl Resources for MemoryResources {
    fn get(&self, namespace: &str, name: &str) -> Option<std::sync::Arc<SiteWiseAsset>> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|o| o.namespace().as_deref() == Some(namespace) && o.name_any() == name)
            .cloned()
            .map(std::sync::Arc::new)
    }

    fn all(&self) -> Vec<std::sync::Arc<SiteWiseAsset>> {
        shared(&self.0)
    }

    fn model(&self, namespace: &str, name: &str) -> Option<std::sync::Arc<SiteWiseAssetModel>> {
        self.models()
            .into_iter()
            .find(|o| o.namespace().as_deref() == Some(namespace) && o.name_any() == name)
    }

    fn models(&self) -> Vec<std::sync::Arc<SiteWiseAssetModel>> {
        shared(&self.1)
    }
}

/// The controller's watch caches of both kinds.
pub struct Caches {
    pub assets: Store<SiteWiseAsset>,
    pub models: Store<SiteWiseAssetModel>,
}

impl Resources for Caches {
    fn get(&self, namespace: &str, name: &str) -> Option<std::sync::Arc<SiteWiseAsset>> {
        self.assets.get(&ObjectRef::new(name).within(namespace))
    }

    fn all(&self) -> Vec<std::sync::Arc<SiteWiseAsset>> {
        self.assets.state()
    }

    fn model(&self, namespace: &str, name: &str) -> Option<std::sync::Arc<SiteWiseAssetModel>> {
        self.models.get(&ObjectRef::new(name).within(namespace))
    }

    fn models(&self) -> Vec<std::sync::Arc<SiteWiseAssetModel>> {
        self.models.state()
    }
}

/// This resource's claim value.
pub fn claim_value(cluster_id: &str, uid: &str) -> String {
    format!("{cluster_id}/{uid}")
}

/// The tags that claim an asset (or a model) for `obj`.
pub fn claim_tags<K: kube::Resource>(cluster_id: &str, obj: &K) -> BTreeMap<String, String> {
    let uid = obj.meta().uid.as_deref().unwrap_or_default();
    let resource: String = format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any())
        .chars()
        .take(256)
        .collect();
    BTreeMap::from([
        (OWNER_TAG.to_string(), claim_value(cluster_id, uid)),
        (OWNER_RESOURCE_TAG.to_string(), resource),
    ])
}

/// Reads the claim out of an asset's tags.
pub fn claim_state(tags: &BTreeMap<String, String>, cluster_id: &str, uid: &str) -> ClaimState {
    match tags.get(OWNER_TAG) {
        None => ClaimState::Unclaimed,
        Some(value) if *value == claim_value(cluster_id, uid) => ClaimState::Ours,
        Some(value) => ClaimState::Other {
            holder: describe_holder(tags, value),
        },
    }
}

fn describe_holder(tags: &BTreeMap<String, String>, value: &str) -> String {
    match tags.get(OWNER_RESOURCE_TAG) {
        Some(resource) => format!("{resource} (claim {value})"),
        None => format!("claim {value}"),
    }
}

/// True when the claim names a resource of this cluster that no longer exists: its
/// `owner-resource` is not in the watch cache, or is there with another UID. A claim of
/// another cluster, or of a namespace this operator does not watch, is never called gone.
pub fn holder_gone<S>(ctx: &Context<S>, tags: &BTreeMap<String, String>) -> bool {
    let Some((cluster, uid)) = tags.get(OWNER_TAG).and_then(|v| v.split_once('/')) else {
        return false;
    };
    if cluster != ctx.cluster_id {
        return false;
    }
    let Some((namespace, name)) = tags.get(OWNER_RESOURCE_TAG).and_then(|r| r.split_once('/'))
    else {
        return false;
    };
    if !ctx.watches(namespace) {
        return false;
    }
    ctx.resources
        .get(namespace, name)
        .is_none_or(|live| live.metadata.uid.as_deref() != Some(uid))
}

/// The default cluster identity: the kube-system namespace's UID, which lives as long as the
/// cluster does.
pub async fn cluster_id_from_kube_system(client: &kube::Client) -> anyhow::Result<String> {
    let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> =
        kube::Api::all(client.clone());
    let ns = namespaces.get("kube-system").await.map_err(|e| {
        anyhow::anyhow!(
            "cannot read the kube-system namespace for the cluster ID ({e}); grant `get` on it \
             (deploy/rbac.yaml) or set --cluster-id"
        )
    })?;
    ns.metadata
        .uid
        .ok_or_else(|| anyhow::anyhow!("the kube-system namespace has no UID; set --cluster-id"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn claims_are_read_from_the_owner_tag() {
        assert_eq!(claim_state(&tags(&[]), "c1", "u1"), ClaimState::Unclaimed);
        assert_eq!(
            claim_state(&tags(&[(OWNER_TAG, "c1/u1")]), "c1", "u1"),
            ClaimState::Ours
        );
        // The same UID from another cluster is another claim.
        assert_eq!(
            claim_state(
                &tags(&[(OWNER_TAG, "c2/u1"), (OWNER_RESOURCE_TAG, "plant/site")]),
                "c1",
                "u1"
            ),
            ClaimState::Other {
                holder: "plant/site (claim c2/u1)".into()
            }
        );
    }

    #[test]
    fn the_claim_names_the_resource_within_tag_limits() {
        let mut obj = SiteWiseAsset::new("n".repeat(253).as_str(), Default::default());
        obj.metadata.namespace = Some("ns".repeat(31));
        obj.metadata.uid = Some("u1".into());
        let t = claim_tags("c1", &obj);
        assert_eq!(t[OWNER_TAG], "c1/u1");
        assert_eq!(t[OWNER_RESOURCE_TAG].chars().count(), 256);
    }
}

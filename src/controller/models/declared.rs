//! What a `SiteWiseAssetModel` declares, decided without calling anyone: the child models its
//! hierarchies name (found in the cache, or a cycle, or missing), the definition to send
//! (keeping the IDs SiteWise gave to properties and hierarchies that stay, so their data and
//! links survive an update), and the differences from what SiteWise has.

use std::collections::BTreeSet;

use kube::ResourceExt;

use crate::crd::{ModelPropertyKind, SiteWiseAssetModel};
use crate::sitewise::{ModelDefinition, ModelHierarchy, ModelProperty, PropertyKind};

/// A child model a hierarchy names, as far as the cache tells.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Child {
    /// The UUID to use.
    Known(String),
    /// A UUID or `externalId:` reference that SiteWise has to resolve.
    ById(String),
    /// The named resource does not exist in the namespace.
    Missing(String),
    /// The named resource exists but its model is not Ready yet.
    NotReady(String),
}

/// The child of every hierarchy, in spec order.
pub fn children(
    obj: &SiteWiseAssetModel,
    models: &[std::sync::Arc<SiteWiseAssetModel>],
) -> Vec<Child> {
    let namespace = obj.namespace();
    obj.spec
        .hierarchies
        .iter()
        .map(
            |h| match (&h.child_model.name, &h.child_model.asset_model_id) {
                (Some(name), _) => match models
                    .iter()
                    .find(|m| m.namespace() == namespace && m.name_any() == *name)
                {
                    None => Child::Missing(name.clone()),
                    Some(m) => match m.model_id() {
                        Some(id) if m.is_ready() => Child::Known(id.to_string()),
                        _ => Child::NotReady(name.clone()),
                    },
                },
                (None, Some(id)) => Child::ById(id.clone()),
                (None, None) => Child::Missing("(none)".into()),
            },
        )
        .collect()
}

/// A cycle of model resources through hierarchies that include `obj`, as the names along
/// it (`a -> b -> a`), when there is one. SiteWise needs a child model before its parent, so
/// a cycle of resources can never be created.
pub fn cycle(
    obj: &SiteWiseAssetModel,
    models: &[std::sync::Arc<SiteWiseAssetModel>],
) -> Option<Vec<String>> {
    let namespace = obj.namespace();
    let start = obj.name_any();
    let next = |name: &str| -> Vec<String> {
        if name == start {
            return obj.child_model_names().map(str::to_string).collect();
        }
        models
            .iter()
            .find(|m| m.namespace() == namespace && m.name_any() == name)
            .map(|m| m.child_model_names().map(str::to_string).collect())
            .unwrap_or_default()
    };
    let mut path = vec![start.clone()];
    let mut seen = BTreeSet::from([start.clone()]);
    walk(&start, &next, &mut path, &mut seen).then_some(path)
}

/// Depth-first search for a way back to `path[0]`; each model is explored once, since a
/// model from which the start was not reachable the first time is not the second time.
fn walk(
    name: &str,
    next: &dyn Fn(&str) -> Vec<String>,
    path: &mut Vec<String>,
    seen: &mut BTreeSet<String>,
) -> bool {
    for child in next(name) {
        if child == path[0] {
            path.push(child);
            return true;
        }
        if seen.insert(child.clone()) {
            path.push(child.clone());
            if walk(&child, next, path, seen) {
                return true;
            }
            path.pop();
        }
    }
    false
}

fn property_kind(kind: ModelPropertyKind, default_value: &Option<String>) -> PropertyKind {
    match kind {
        ModelPropertyKind::Attribute => PropertyKind::Attribute {
            default_value: default_value.clone(),
        },
        ModelPropertyKind::Measurement => PropertyKind::Measurement,
    }
}

/// The definition to send, given the child model IDs (in spec order) and what SiteWise has
/// now (`None` before the model exists). A property or hierarchy keeps its SiteWise ID when
/// one of the same external ID (when declared) or else the same name exists.
pub fn definition(
    obj: &SiteWiseAssetModel,
    child_ids: &[String],
    current: Option<&ModelDefinition>,
) -> ModelDefinition {
    let properties = obj
        .spec
        .properties
        .iter()
        .map(|p| ModelProperty {
            id: current.and_then(|c| {
                c.properties
                    .iter()
                    .find(|q| same(&q.external_id, &q.name, &p.external_id, &p.name))
                    .and_then(|q| q.id.clone())
            }),
            name: p.name.clone(),
            external_id: p.external_id.clone(),
            data_type: p.data_type.as_str().to_string(),
            unit: p.unit.clone(),
            kind: property_kind(p.kind, &p.default_value),
        })
        .collect();
    let hierarchies = obj
        .spec
        .hierarchies
        .iter()
        .zip(child_ids)
        .map(|(h, child)| ModelHierarchy {
            id: current.and_then(|c| {
                c.hierarchies
                    .iter()
                    .find(|g| same(&g.external_id, &g.name, &h.external_id, &h.name))
                    .and_then(|g| g.id.clone())
            }),
            name: h.name.clone(),
            external_id: h.external_id.clone(),
            child_model_id: child.clone(),
        })
        .collect();
    ModelDefinition {
        name: obj.model_name(),
        description: obj.spec.description.clone(),
        external_id: obj.spec.external_id.clone(),
        properties,
        hierarchies,
    }
}

fn same(
    have_ext: &Option<String>,
    have_name: &str,
    want_ext: &Option<String>,
    want_name: &str,
) -> bool {
    match want_ext {
        Some(ext) => have_ext.as_deref() == Some(ext.as_str()),
        None => have_name == want_name,
    }
}

/// What differs between the wanted definition and SiteWise's, one line per difference, for
/// the event that announces the update. Empty when the model is as declared.
pub fn differences(want: &ModelDefinition, have: &ModelDefinition) -> Vec<String> {
    let mut out = Vec::new();
    if want.name != have.name {
        out.push(format!("name {:?} -> {:?}", have.name, want.name));
    }
    if want.description != have.description {
        out.push("description".into());
    }
    if want.external_id.is_some() && want.external_id != have.external_id {
        out.push("externalId".into());
    }
    for p in &want.properties {
        match have
            .properties
            .iter()
            .find(|q| q.id.is_some() && q.id == p.id)
        {
            None => out.push(format!("add property {}", p.name)),
            Some(q) if !same_property(p, q) => out.push(format!("change property {}", p.name)),
            Some(_) => {}
        }
    }
    for q in &have.properties {
        if !want
            .properties
            .iter()
            .any(|p| p.id.is_some() && p.id == q.id)
        {
            out.push(format!("remove property {}", q.name));
        }
    }
    for h in &want.hierarchies {
        match have
            .hierarchies
            .iter()
            .find(|g| g.id.is_some() && g.id == h.id)
        {
            None => out.push(format!("add hierarchy {}", h.name)),
            Some(g) if g.name != h.name || g.child_model_id != h.child_model_id => {
                out.push(format!("change hierarchy {}", h.name))
            }
            Some(_) => {}
        }
    }
    for g in &have.hierarchies {
        if !want
            .hierarchies
            .iter()
            .any(|h| h.id.is_some() && h.id == g.id)
        {
            out.push(format!("remove hierarchy {}", g.name));
        }
    }
    out
}

fn same_property(p: &ModelProperty, q: &ModelProperty) -> bool {
    p.name == q.name
        && p.data_type == q.data_type
        && p.unit == q.unit
        && p.kind == q.kind
        && (p.external_id.is_none() || p.external_id == q.external_id)
}

#[cfg(test)]
mod tests;

//! The decisions of a live resource, each a pure function: which asset the resource holds
//! ([`identity`]), whether it owns it ([`claim`]), what must change to match the spec
//! ([`changes`]) and what to do about its parent link ([`link`]).

use std::collections::BTreeMap;

use kube::ResourceExt;

use crate::crd::{
    Mode, NotificationState, Ownership, ParentLinkStatus, PropertySpec, SiteWiseAsset,
};
use crate::sitewise::{AssetDescription, AssetUpdate, Hierarchy, Property, PropertySettings};

use super::delete::ClaimState;

/// What a DescribeAsset of one reference found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    Found { asset_id: String },
    NotFound,
}

/// Which asset the resource holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Identity {
    /// The asset; pin it in status if it is not pinned yet.
    Holds { asset_id: String },
    /// Create mode, nothing created yet: send CreateAsset.
    Create,
    /// Adopt mode: SiteWise has no asset by the reference.
    Missing,
    /// The asset this resource held is gone, and was not deleted by it.
    DeletedOutside { asset_id: String },
    /// The pinned asset is gone and the external ID now names another asset, which this
    /// resource must never follow.
    Replaced { pinned: String, now: String },
}

/// Decides the identity. `pinned` is `status.assetId`; `first` is the lookup of the pinned
/// UUID (or, when nothing is pinned, of the created asset's derived ID or of `spec.assetId`);
/// `by_reference` is the lookup of the declared `externalId:` reference, made only when the
/// pinned asset is gone.
pub fn identity(
    creating: bool,
    pinned: Option<&str>,
    first: &Lookup,
    by_reference: Option<&Lookup>,
) -> Identity {
    match (first, pinned) {
        (Lookup::Found { asset_id }, _) => Identity::Holds {
            asset_id: asset_id.clone(),
        },
        (Lookup::NotFound, None) if creating => Identity::Create,
        (Lookup::NotFound, None) => Identity::Missing,
        (Lookup::NotFound, Some(pinned)) => match by_reference {
            Some(Lookup::Found { asset_id }) if asset_id != pinned => Identity::Replaced {
                pinned: pinned.to_string(),
                now: asset_id.clone(),
            },
            _ => Identity::DeletedOutside {
                asset_id: pinned.to_string(),
            },
        },
    }
}

/// What to do about the asset's ownership claim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClaimStep {
    /// The claim is this resource's.
    Keep,
    /// Tag the asset with this resource's claim.
    Claim,
    /// The claim belongs to a resource of this cluster that no longer exists (released with
    /// force-orphan): take it over.
    TakeOver { previous: String },
    /// Another live resource (or one this operator cannot see) claims it.
    NotOwned { holder: String },
}

/// Decides the claim. `holder_gone` is true only when the claim names a resource of this
/// cluster that the operator can see does not exist.
pub fn claim(state: &ClaimState, holder_gone: bool) -> ClaimStep {
    match state {
        ClaimState::Ours => ClaimStep::Keep,
        ClaimState::Unclaimed => ClaimStep::Claim,
        ClaimState::Other { holder } if holder_gone => ClaimStep::TakeOver {
            previous: holder.clone(),
        },
        ClaimState::Other { holder } => ClaimStep::NotOwned {
            holder: holder.clone(),
        },
    }
}

/// The ownership status records for a claim step.
pub fn ownership(creating: bool, step: &ClaimStep) -> Ownership {
    match step {
        ClaimStep::NotOwned { .. } => Ownership::NotOwned,
        _ if creating => Ownership::Created,
        _ => Ownership::Adopted,
    }
}

/// The fields the spec declares; `None` and empty mean "not managed".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Desired {
    pub name: Option<String>,
    pub description: Option<String>,
    pub external_id: Option<String>,
    pub properties: Vec<PropertySpec>,
    pub tags: BTreeMap<String, String>,
}

impl Desired {
    /// What `obj`'s spec declares; a created asset is named after its resource unless the
    /// spec names it.
    pub fn of(obj: &SiteWiseAsset) -> Self {
        let spec = &obj.spec;
        let creating = matches!(obj.mode(), Some(Mode::Create { .. }));
        Self {
            name: match (&spec.name, creating) {
                (Some(name), _) => Some(name.clone()),
                (None, true) => Some(obj.name_any()),
                (None, false) => None,
            },
            description: spec.description.clone(),
            external_id: spec.external_id.clone(),
            properties: spec.properties.clone(),
            tags: spec.tags.clone(),
        }
    }
}

/// One change that brings the asset closer to the spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// `UpdateAsset`; `what` says what differs, for events and the token.
    Asset { update: AssetUpdate, what: String },
    /// `UpdateAssetProperty` with the complete settings.
    Property {
        property_id: String,
        settings: PropertySettings,
        what: String,
    },
    /// `TagResource` of declared tags that are missing or differ.
    Tag(BTreeMap<String, String>),
    /// `UntagResource` of keys this resource applied earlier and no longer declares.
    Untag(Vec<String>),
}

/// A declaration the asset cannot satisfy; a person must change the spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unsatisfiable {
    UnknownProperty {
        property: String,
        known: Vec<String>,
    },
    ExternalIdTaken {
        wanted: String,
        actual: String,
    },
}

impl std::fmt::Display for Unsatisfiable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::UnknownProperty { property, known } => write!(
                f,
                "spec.properties names {property}, which the asset's model does not define; its properties are: {}",
                known.join(", ")
            ),
            Self::ExternalIdTaken { wanted, actual } => write!(
                f,
                "spec.externalId is {wanted} but the asset already has the external ID {actual}, and SiteWise never changes one"
            ),
        }
    }
}

/// Everything that differs between the spec and the asset, asset fields first. `tags` is the
/// asset's tags when they were read (`None`: tags are not compared).
pub fn changes(
    desired: &Desired,
    asset: &AssetDescription,
    tags: Option<&BTreeMap<String, String>>,
    managed_tag_keys: &[String],
) -> Result<Vec<Change>, Unsatisfiable> {
    let mut out = Vec::new();
    if let Some(change) = asset_change(desired, asset)? {
        out.push(change);
    }
    for spec in &desired.properties {
        let property = find_property(&asset.properties, &spec.property).ok_or_else(|| {
            Unsatisfiable::UnknownProperty {
                property: spec.property.clone(),
                known: asset.properties.iter().map(|p| p.name.clone()).collect(),
            }
        })?;
        if let Some(change) = property_change(spec, property) {
            out.push(change);
        }
    }
    if let Some(tags) = tags {
        let missing: BTreeMap<String, String> = desired
            .tags
            .iter()
            .filter(|(k, v)| tags.get(*k) != Some(*v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if !missing.is_empty() {
            out.push(Change::Tag(missing));
        }
        let dropped: Vec<String> = managed_tag_keys
            .iter()
            .filter(|k| !desired.tags.contains_key(*k) && tags.contains_key(*k))
            .cloned()
            .collect();
        if !dropped.is_empty() {
            out.push(Change::Untag(dropped));
        }
    }
    Ok(out)
}

fn asset_change(
    desired: &Desired,
    asset: &AssetDescription,
) -> Result<Option<Change>, Unsatisfiable> {
    let mut what = Vec::new();
    let name = match &desired.name {
        Some(name) if *name != asset.name => {
            what.push(format!("name {:?} -> {name:?}", asset.name));
            name.clone()
        }
        _ => asset.name.clone(),
    };
    let description = match &desired.description {
        Some(d) if asset.description.as_ref() != Some(d) => {
            what.push(format!("description -> {d:?}"));
            Some(d.clone())
        }
        _ => asset.description.clone(),
    };
    let external_id = match (&desired.external_id, &asset.external_id) {
        (Some(wanted), Some(actual)) if wanted != actual => {
            return Err(Unsatisfiable::ExternalIdTaken {
                wanted: wanted.clone(),
                actual: actual.clone(),
            });
        }
        (Some(wanted), None) => {
            what.push(format!("externalId -> {wanted}"));
            Some(wanted.clone())
        }
        _ => None,
    };
    Ok((!what.is_empty()).then(|| Change::Asset {
        update: AssetUpdate {
            name,
            description,
            external_id,
        },
        what: what.join(", "),
    }))
}

fn property_change(spec: &PropertySpec, property: &Property) -> Option<Change> {
    let mut settings = PropertySettings {
        alias: property.alias.clone(),
        unit: property.unit.clone(),
        notification_state: property.notification_state.clone(),
    };
    let mut what = Vec::new();
    if let Some(alias) = &spec.alias
        && property.alias.as_ref() != Some(alias)
    {
        what.push(format!("alias -> {alias}"));
        settings.alias = Some(alias.clone());
    }
    if let Some(unit) = &spec.unit
        && property.unit.as_ref() != Some(unit)
    {
        what.push(format!("unit -> {unit}"));
        settings.unit = Some(unit.clone());
    }
    let state = spec.notification_state.map(NotificationState::as_str);
    if let Some(state) = state
        && property.notification_state.as_deref().unwrap_or("DISABLED") != state
    {
        what.push(format!("notification -> {state}"));
        settings.notification_state = Some(state.to_string());
    }
    (!what.is_empty()).then(|| Change::Property {
        property_id: property.id.clone(),
        settings,
        what: format!("property {}: {}", property.name, what.join(", ")),
    })
}

/// A property by UUID, `externalId:<id>` or name.
pub fn find_property<'a>(properties: &'a [Property], reference: &str) -> Option<&'a Property> {
    properties
        .iter()
        .find(|p| match reference.strip_prefix("externalId:") {
            Some(ext) => p.external_id.as_deref() == Some(ext),
            None => p.id == reference || p.name == reference,
        })
}

/// A hierarchy by UUID, `externalId:<id>` or name.
pub fn find_hierarchy<'a>(hierarchies: &'a [Hierarchy], reference: &str) -> Option<&'a Hierarchy> {
    hierarchies
        .iter()
        .find(|h| match reference.strip_prefix("externalId:") {
            Some(ext) => h.external_id.as_deref() == Some(ext),
            None => h.id == reference || h.name == reference,
        })
}

/// A parent link: the parent asset and the hierarchy of its model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub parent_id: String,
    pub hierarchy_id: String,
}

/// What to do about the parent link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkStep {
    /// Nothing is declared or recorded: the link is not managed.
    Unmanaged,
    /// The asset is where it should be (record it if it is not recorded yet).
    InPlace,
    /// `AssociateAssets` with the token of `round`.
    Associate { link: Link, round: u32 },
    /// `DisassociateAssets` from a parent the spec no longer names (a move or a removal).
    Detach { link: Link, round: u32 },
    /// A link the operator made is gone and nothing is declared: forget it.
    Forget,
}

/// Decides the link from the declared parent (`wanted`), the link SiteWise reports
/// (`current`) and the link recorded in status.
pub fn link(
    wanted: Option<&Link>,
    current: Option<&Link>,
    recorded: Option<&ParentLinkStatus>,
) -> LinkStep {
    let recorded_link = recorded.map(|r| Link {
        parent_id: r.parent_id.clone(),
        hierarchy_id: r.hierarchy_id.clone(),
    });
    let round = recorded.map(|r| r.round).unwrap_or(0);
    match (wanted, current) {
        (None, None) if recorded.is_some() => LinkStep::Forget,
        (None, None) => LinkStep::Unmanaged,
        // Only a link this resource made is removed when the spec stops naming a parent.
        (None, Some(current)) if recorded_link.as_ref() == Some(current) => LinkStep::Detach {
            link: current.clone(),
            round,
        },
        (None, Some(_)) if recorded.is_some() => LinkStep::Forget,
        (None, Some(_)) => LinkStep::Unmanaged,
        (Some(wanted), Some(current)) if wanted == current => LinkStep::InPlace,
        (Some(_), Some(current)) => LinkStep::Detach {
            link: current.clone(),
            round,
        },
        (Some(wanted), None) => {
            // Every association gets a round of its own, so no two share a token: an attempt
            // not yet known to have succeeded is retried in its round; anything else (a link
            // made before and since removed, another parent) starts the next one.
            let round = match recorded {
                None => 0,
                Some(r) if recorded_link.as_ref() == Some(wanted) && !r.associated => r.round,
                Some(r) => r.round + 1,
            };
            LinkStep::Associate {
                link: wanted.clone(),
                round,
            }
        }
    }
}

#[cfg(test)]
mod tests;

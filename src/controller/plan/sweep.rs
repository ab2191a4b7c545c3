//! The sweep's decisions, each a pure function: which resources bulk listings can vouch for
//! ([`settled_asset`]), and whether what `ListAssets` ([`fields_reason`]) and the parent's
//! `ListAssociatedAssets` ([`link_reason`]) show is what the spec declares. A resource they
//! cannot vouch for is reconciled on its own, exactly as a resync would.

use crate::crd::{Ownership, ParentTarget, SiteWiseAsset, SiteWiseAssetStatus};
use crate::sitewise::{AssetState, AssetSummary};

use super::apply::{Desired, changes};
use crate::controller::status::{self, READY};

/// The asset of a resource the listings can vouch for: applied at its current generation,
/// Ready, owned, ACTIVE, not being deleted, and managing nothing the listings leave out
/// (tags, property settings). `None` for any other resource, which keeps its own resync.
pub fn settled_asset(obj: &SiteWiseAsset) -> Option<&str> {
    let s = obj.status.as_ref()?;
    if obj.metadata.deletion_timestamp.is_some() || !listable(obj, s) {
        return None;
    }
    let ready = status::condition(s, READY).is_some_and(|c| c.status == "True");
    let owned = matches!(s.ownership, Some(Ownership::Created | Ownership::Adopted));
    let applied =
        s.observed_generation.is_some() && s.observed_generation == obj.metadata.generation;
    let active = s.state.as_deref() == Some(AssetState::Active.as_str());
    (ready && owned && applied && active)
        .then_some(s.asset_id.as_deref())
        .flatten()
}

/// Whether listings show everything `obj` manages: not tags (its own or ones it applied
/// earlier, `status.managedTagKeys`), not property settings.
pub fn listable(obj: &SiteWiseAsset, status: &SiteWiseAssetStatus) -> bool {
    obj.spec.tags.is_empty() && obj.spec.properties.is_empty() && status.managed_tag_keys.is_empty()
}

/// Why the asset `ListAssets` summarised differs from the spec of `obj`; `None` when it is as
/// declared.
pub fn fields_reason(obj: &SiteWiseAsset, summary: &AssetSummary) -> Option<&'static str> {
    if summary.state != AssetState::Active {
        return Some("state");
    }
    let listed = crate::sitewise::AssetDescription {
        id: summary.id.clone(),
        name: summary.name.clone(),
        description: summary.description.clone(),
        external_id: summary.external_id.clone(),
        state: summary.state.clone(),
        ..Default::default()
    };
    match changes(&Desired::of(obj), &listed, None, &[]) {
        Ok(changes) if changes.is_empty() => None,
        _ => Some("fields"),
    }
}

/// The parent link the sweep checks for `obj`: `(parent asset, hierarchy)` as recorded when it
/// was made.
pub fn recorded_link(obj: &SiteWiseAsset) -> Option<(&str, &str)> {
    let link = obj.status.as_ref()?.parent_link.as_ref()?;
    Some((link.parent_id.as_str(), link.hierarchy_id.as_str()))
}

/// Why the parent link of `obj` is not as declared; `None` when it is. `parent_now` is the asset
/// of the parent resource the spec names, as the cache shows it (`None` when the spec names
/// no resource or its status has no asset); `listed` whether the recorded parent lists the
/// asset under the recorded hierarchy (`None` when nothing is recorded).
pub fn link_reason(
    obj: &SiteWiseAsset,
    parent_now: Option<&str>,
    listed: Option<bool>,
) -> Option<&'static str> {
    let recorded = obj.status.as_ref().and_then(|s| s.parent_link.as_ref());
    let Some(parent) = &obj.spec.parent else {
        return recorded.map(|_| "parent removed from the spec");
    };
    let Some(recorded) = recorded.filter(|r| r.associated) else {
        return Some("not linked");
    };
    let declared = match parent.target() {
        Some(ParentTarget::Resource(_)) => parent_now,
        // An external ID cannot be resolved from a listing; it was when the link was made, and
        // SiteWise never gives an external ID to another asset while this one holds it.
        Some(ParentTarget::Asset(id)) if id.starts_with("externalId:") => {
            Some(recorded.parent_id.as_str())
        }
        Some(ParentTarget::Asset(id)) => Some(id),
        None => None,
    };
    if declared != Some(recorded.parent_id.as_str()) {
        return Some("parent changed");
    }
    match listed {
        Some(true) => None,
        _ => Some("link"),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::controller::status::set_condition;
    use crate::crd::{
        ParentLinkStatus, ParentRef, PropertySpec, SiteWiseAssetSpec, SiteWiseAssetStatus,
    };

    const ASSET: &str = "10000000-0000-4000-8000-000000000001";
    const PARENT: &str = "10000000-0000-4000-8000-000000000002";
    const HIERARCHY: &str = "20000000-0000-4000-8000-000000000001";

    fn settled(spec: SiteWiseAssetSpec) -> SiteWiseAsset {
        settled_as("press", ASSET, spec)
    }

    /// A resource named `name`, Ready with asset `asset_id` at its current generation.
    pub(crate) fn settled_as(name: &str, asset_id: &str, spec: SiteWiseAssetSpec) -> SiteWiseAsset {
        let mut obj = SiteWiseAsset::new(name, spec);
        obj.metadata.namespace = Some("plant".into());
        obj.metadata.generation = Some(3);
        let mut status = SiteWiseAssetStatus {
            asset_id: Some(asset_id.into()),
            state: Some("ACTIVE".into()),
            ownership: Some(Ownership::Created),
            observed_generation: Some(3),
            ..Default::default()
        };
        set_condition(
            &mut status.conditions,
            READY,
            true,
            "AssetReady",
            "",
            Some(3),
        );
        obj.status = Some(status);
        obj
    }

    fn created(name: &str) -> SiteWiseAssetSpec {
        SiteWiseAssetSpec {
            asset_model_id: Some("externalId:machine".into()),
            name: Some(name.into()),
            ..Default::default()
        }
    }

    fn summary(name: &str) -> AssetSummary {
        AssetSummary {
            id: ASSET.into(),
            name: name.into(),
            state: AssetState::Active,
            ..Default::default()
        }
    }

    fn under(parent: ParentRef, recorded: Option<&str>) -> SiteWiseAsset {
        let mut obj = settled(SiteWiseAssetSpec {
            parent: Some(Box::new(parent)),
            ..created("Press")
        });
        if let Some(s) = obj.status.as_mut() {
            s.parent_link = recorded.map(|p| ParentLinkStatus {
                parent_id: p.into(),
                hierarchy_id: HIERARCHY.into(),
                associated: true,
                round: 0,
            });
        }
        obj
    }

    fn by_name() -> ParentRef {
        ParentRef {
            name: Some("line".into()),
            hierarchy: "Machines".into(),
            ..Default::default()
        }
    }

    #[test]
    fn only_settled_resources_that_manage_what_listings_show_are_swept() {
        assert_eq!(settled_asset(&settled(created("Press"))), Some(ASSET));
        let mut changed = settled(created("Press"));
        changed.metadata.generation = Some(4);
        assert_eq!(settled_asset(&changed), None, "a spec not applied yet");
        let mut busy = settled(created("Press"));
        if let Some(s) = busy.status.as_mut() {
            s.state = Some("UPDATING".into());
        }
        assert_eq!(settled_asset(&busy), None);
        let mut observer = settled(created("Press"));
        if let Some(s) = observer.status.as_mut() {
            s.ownership = Some(Ownership::NotOwned);
        }
        assert_eq!(settled_asset(&observer), None);
        let tagged = settled(SiteWiseAssetSpec {
            tags: [("site".to_string(), "north".to_string())].into(),
            ..created("Press")
        });
        assert_eq!(settled_asset(&tagged), None, "tags are not listed");
        let with_properties = settled(SiteWiseAssetSpec {
            properties: vec![PropertySpec {
                property: "temperature".into(),
                alias: Some("/north/press/t".into()),
                ..Default::default()
            }],
            ..created("Press")
        });
        assert_eq!(
            settled_asset(&with_properties),
            None,
            "properties are not listed"
        );
        let mut deleting = settled(created("Press"));
        deleting.metadata.deletion_timestamp = Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::now()),
        );
        assert_eq!(settled_asset(&deleting), None);
        let mut unready = settled(created("Press"));
        if let Some(s) = unready.status.as_mut() {
            set_condition(&mut s.conditions, READY, false, "Waiting", "", Some(3));
        }
        assert_eq!(settled_asset(&unready), None);
    }

    #[test]
    fn a_listed_asset_is_current_only_as_declared_and_active() {
        let obj = settled(SiteWiseAssetSpec {
            description: Some("Hydraulic press".into()),
            ..created("Press")
        });
        let listed = AssetSummary {
            description: Some("Hydraulic press".into()),
            ..summary("Press")
        };
        assert_eq!(fields_reason(&obj, &listed), None);
        let renamed = AssetSummary {
            name: "Renamed in the console".into(),
            ..listed.clone()
        };
        assert_eq!(fields_reason(&obj, &renamed), Some("fields"));
        let described = AssetSummary {
            description: None,
            ..listed.clone()
        };
        assert_eq!(fields_reason(&obj, &described), Some("fields"));
        let updating = AssetSummary {
            state: AssetState::Updating,
            ..listed
        };
        assert_eq!(fields_reason(&obj, &updating), Some("state"));
        // Fields the spec does not manage may differ.
        let unmanaged = settled(created("Press"));
        let other = AssetSummary {
            description: Some("set in the console".into()),
            ..summary("Press")
        };
        assert_eq!(fields_reason(&unmanaged, &other), None);
    }

    #[test]
    fn a_link_is_current_when_the_recorded_parent_lists_it_and_is_still_declared() {
        let obj = under(by_name(), Some(PARENT));
        assert_eq!(recorded_link(&obj), Some((PARENT, HIERARCHY)));
        assert_eq!(link_reason(&obj, Some(PARENT), Some(true)), None);
        assert_eq!(link_reason(&obj, Some(PARENT), Some(false)), Some("link"));
        let replaced = "10000000-0000-4000-8000-000000000009";
        assert_eq!(
            link_reason(&obj, Some(replaced), Some(true)),
            Some("parent changed"),
            "the parent resource now holds another asset"
        );
        assert_eq!(link_reason(&obj, None, Some(true)), Some("parent changed"));
        let unlinked = under(by_name(), None);
        assert_eq!(
            link_reason(&unlinked, Some(PARENT), None),
            Some("not linked")
        );
    }

    #[test]
    fn links_to_assets_by_id_and_unlinked_resources() {
        let by_id = ParentRef {
            asset_id: Some(PARENT.into()),
            hierarchy: "Machines".into(),
            ..Default::default()
        };
        assert_eq!(
            link_reason(&under(by_id, Some(PARENT)), None, Some(true)),
            None
        );
        let by_external_id = ParentRef {
            asset_id: Some("externalId:line-1".into()),
            hierarchy: "Machines".into(),
            ..Default::default()
        };
        let obj = under(by_external_id, Some(PARENT));
        assert_eq!(link_reason(&obj, None, Some(true)), None);
        assert_eq!(link_reason(&obj, None, Some(false)), Some("link"));
        let flat = settled(created("Press"));
        assert_eq!(recorded_link(&flat), None);
        assert_eq!(link_reason(&flat, None, None), None);
        let mut dropped = under(by_name(), Some(PARENT));
        dropped.spec.parent = None;
        assert_eq!(
            link_reason(&dropped, None, Some(true)),
            Some("parent removed from the spec")
        );
    }
}
